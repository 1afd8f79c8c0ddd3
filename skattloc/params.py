"""The parameter table of :class:`~skattloc.AttLocTagger`: every parameter declared once.

Each :class:`Param` holds a parameter's default, the rule its value must obey, its group
(``"network"``: the :class:`~skattloc.model.CGRNN` arguments; ``"training"``: the
LightningModule, the data split and stopping; ``"inference"``; ``"lightning"``: the
Trainer, checkpoints and logging), whether a resumed fit must match it, its value in model
files written before it existed, its value in the paper's configuration, and its
documentation. Everything else is derived from this table:

- the estimator's checks (:func:`validate_params`) and its docstring's Parameters section;
- ``AttLocTagger._build_model`` (the ``"network"`` group is ``CGRNN``'s keyword list);
- the resume fingerprint (:func:`resume_params`) and the defaults that older model files
  are read with (:func:`legacy_values`);
- :data:`PAPER_CONFIG` and the command line's ``choices=`` (:func:`choices`);
- the tests that the ``__init__`` signature matches the table.

Adding a parameter is one :class:`Param` here plus its ``__init__`` line (the signature's
default must equal the declared one; ``tests/test_params.py`` checks). Adding a pooling
is its code in :mod:`skattloc.model`, its name in :data:`POOLINGS` here, a test and the docs.

The option lists live here, not in the torch modules, so that checking a parameter, or
``skattloc --help``, imports neither torch nor Lightning. The rules follow scikit-learn's
``_parameter_constraints`` (one declarative constraint per parameter, checked at ``fit``),
with skattloc's own messages; see :func:`validate_params`.
"""
from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import _checks
from .windowing import check_window_frames

__all__ = [
    "CONV_ACTIVATIONS", "CONV_POOLS", "DESED_CONFIG", "EARLY_STOPPING_METRICS", "FRONTENDS", "GROUPS", "LOCALIZATIONS", "LOC_ACTIVATIONS", "LOC_DENOMINATORS",
    "LOC_INPUTS", "LR_SCHEDULES", "PAPER_CONFIG", "PARAMETERS", "POOLINGS", "Param", "check_architecture",
    "check_callbacks", "check_logger",
    "choices", "defaults", "docstring_section", "legacy_values", "names", "resume_params", "validate_params",
]

# ---------------------------------------------------------------------------- option lists
#: The paper's three poolings (eq. 8 "att_loc", eq. 5 "att", eq. 2 "mean"), then two
#: multiple-instance poolings built for localization under weak labels: linear softmax
#: (Wang, Li & Metze, ICASSP 2019) and auto-pool with a learned per-class alpha (McFee,
#: Salamon & Bello, IEEE/ACM TASLP 2018). Implemented in :mod:`skattloc.model`.
#: ``"loc"`` is eq. (7)-(8) without the attention unit, the DESED baseline's pooling.
POOLINGS = ("att_loc", "att", "mean", "linear_softmax", "auto", "loc")
#: How z_loc(t) of eq. (6) is normalized: "softmax" over classes (the paper) or a per-class
#: "sigmoid" (each class weighs frames on its own; eq. 8 still normalizes over time).
LOC_ACTIVATIONS = ("softmax", "sigmoid")
#: Denominator of eq. (8): sum_t z_loc(t) (the paper) or sum_t z_att(t) z_loc(t).
LOC_DENOMINATORS = ("loc", "att_loc")
#: What eq. (6) reads: the attention-scaled CNN output of eq. (4) (the paper) or the GRU output.
LOC_INPUTS = ("cnn", "rnn")
#: The front end before the GRUs: the paper's per-frame CNN over frequency, or a stack of
#: 2-D conv blocks over time and frequency (3x3 kernels, batch norm, ReLU, max-pooling).
FRONTENDS = ("frame_cnn", "conv2d")
#: The conv blocks' activation: ReLU, or the gated linear unit of the DESED baseline.
CONV_ACTIVATIONS = ("relu", "glu")
#: The conv blocks' pooling over time and frequency.
CONV_POOLS = ("max", "avg")
#: Learning-rate schedules of :class:`skattloc.module.AttLocModule`.
LR_SCHEDULES = ("constant", "cosine")
#: What ``AttLocTagger.localize`` returns per frame.
LOCALIZATIONS = ("att_frame", "paper", "frame", "loc")
#: Early stopping and best-epoch selection: the validation metric, and whether lower is better.
EARLY_STOPPING_METRICS = {"val_loss": "min", "val_eer": "min", "val_map": "max", "val_auroc": "max"}
#: The groups of :class:`Param`, in the order of the docstring.
GROUPS = ("network", "training", "inference", "lightning")
#: ``validation_fraction="auto"``: this fraction, from this many clips on (else no split).
AUTO_VALIDATION_FRACTION, AUTO_VALIDATION_MIN_CLIPS = 0.1, 100
#: ``batch_size="auto"``: the paper's batch, made smaller when the training clips would give
#: an epoch fewer than this many optimizer steps, but not below this many clips.
AUTO_BATCH_SIZE, AUTO_BATCH_MIN_STEPS, AUTO_BATCH_MIN = 100, 10, 8

_UNSET = object()


@dataclass(frozen=True)
class Param:
    """One parameter of :class:`~skattloc.AttLocTagger`, declared once.

    Parameters
    ----------
    name : str
    default : object
        The ``__init__`` default.
    group : {"network", "training", "inference", "lightning"}
    rule : callable or None
        ``rule(value, name)`` raises ValueError (naming the parameter) for a value that is
        wrong on its own; None: any value, or one that something else checks (Lightning's
        Trainer the accelerator, devices, precision and strategy; ``fit`` the seed).
    doc : str
        The numpydoc description.
    kind : str
        The numpydoc type (without the default); for ``choices`` it is written from them.
    choices : tuple, optional
        The allowed values, for the docs and the command line's ``choices=``.
    resume : bool
        A resumed fit must have the same value as the interrupted one (the network's shape,
        what decides the data split and the batches).
    legacy : object, optional
        The value that gives the behaviour of model files written before the parameter
        existed (they were fitted with it, whatever today's default).
    paper : object, optional
        The value in the paper's configuration (:data:`PAPER_CONFIG`).
    """

    name: str
    default: Any
    group: str
    rule: Optional[Callable]
    doc: str = ""
    kind: str = ""
    choices: Optional[tuple] = None
    resume: bool = False
    legacy: Any = field(default=_UNSET, repr=False)
    paper: Any = field(default=_UNSET, repr=False)

    def type_line(self) -> str:
        """``name : type, default=value`` (numpydoc); an ``optional`` kind has no default."""
        kind = "{" + ", ".join(repr(c).replace("'", '"') for c in self.choices) + "}" if self.choices else self.kind
        if kind.endswith("optional"):
            return f"{self.name} : {kind}"
        return f"{self.name} : {kind}, default=" + repr(self.default).replace("'", '"')


# ---------------------------------------------------------------------------- rules
partial = functools.partial
positive_int = _checks.check_positive_int
mask_count = partial(_checks.check_int, minimum=0, allow_bool=True, hint="False counts as 0")


def one_of(options):
    return partial(_checks.check_option, options=options)


def number(low, high=None, closed="[]", **message):
    return partial(_checks.check_number, low=low, high=high, closed=closed, **message)


def _validation_fraction_rule(value, name):
    if isinstance(value, str) and value == "auto":
        return value
    return _checks.check_number(value, name, 0.0, 1.0, closed="[)", hint='or "auto"')


def _batch_size_rule(value, name):
    if isinstance(value, str) and value == "auto":
        return value
    return _checks.check_positive_int(value, name)


def auto_batch_size(n_train: int) -> int:
    """The batch of ``batch_size="auto"`` for ``n_train`` training clips.

    The paper's 100 clips (:data:`AUTO_BATCH_SIZE`) wherever that gives an epoch at least
    :data:`AUTO_BATCH_MIN_STEPS` optimizer steps (1,000 clips and more: every
    domestic-mix protocol), else ``ceil(n_train / AUTO_BATCH_MIN_STEPS)``, but at least
    :data:`AUTO_BATCH_MIN` clips (or all of them). The epoch budget, the early-stopping
    patience and the weight averaging were chosen for epochs of 10-20 steps; with 100-clip
    batches a few hundred clips give 3 steps an epoch, and a fit can stop before it learns.
    ``n_train`` counts every training clip, unlabeled ones included, and not the processes
    of a multi-device fit (where ``batch_size`` is per process): give an int there.

    Examples
    --------
    >>> from skattloc.params import auto_batch_size
    >>> auto_batch_size(1620), auto_batch_size(400), auto_batch_size(50), auto_batch_size(5)
    (100, 40, 8, 5)
    """
    n_train = int(n_train)
    by_steps = -(-n_train // AUTO_BATCH_MIN_STEPS)
    return max(1, min(AUTO_BATCH_SIZE, max(by_steps, min(AUTO_BATCH_MIN, n_train))))


def _conv_channels_rule(value, name):
    if value is None:
        return value
    if (isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in value)):
        raise ValueError(f"{name} must be None or a non-empty list of positive ints (one per conv block), got {value!r}")
    return value


def _frame_timing_rule(value, name):
    from .timing import as_frame_timing

    return as_frame_timing(value, name)


def check_callbacks(value, name="callbacks"):
    """Raise ``ValueError`` unless ``value`` is None or a list of Lightning callbacks
    (Lightning is imported only to check a list).

    Examples
    --------
    >>> from skattloc.params import check_callbacks
    >>> check_callbacks(None) is None
    True
    """
    if value is None:
        return value
    from lightning.pytorch.callbacks import Callback

    if not isinstance(value, (list, tuple)) or not all(isinstance(c, Callback) for c in value):
        raise ValueError(f"{name} must be None or a list of lightning.pytorch Callback objects, got {value!r}")
    return value


def check_logger(value, name="logger"):
    """Raise ``ValueError`` unless ``value`` is a bool, a Lightning logger or a list of them
    (Lightning is imported only to check a logger).

    Examples
    --------
    >>> from skattloc.params import check_logger
    >>> check_logger(False)
    False
    """
    if isinstance(value, bool):
        return value
    from lightning.pytorch.loggers import Logger

    loggers = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(lg, Logger) for lg in loggers):
        raise ValueError(f"{name} must be True, False or a lightning.pytorch logger (or a list of them), got {value!r}")
    return value


# ---------------------------------------------------------------------------- the table
_TABLE = [
    Param(
        "pooling", "att_loc", "network", one_of(POOLINGS), choices=POOLINGS, resume=True, paper="att_loc",
        doc="""
        How frame outputs ``O(t)`` become the clip output. ``"att_loc"``: the paper's
        attention and localization, eq. (3)-(8). ``"att"``: attention only, the
        ``z_att``-weighted mean of ``O(t)`` (eq. 3-5). ``"mean"``: the CGRNN baseline, the
        plain mean of ``O(t)`` (eq. 2). ``"linear_softmax"``: ``sum_t O(t)^2 / sum_t O(t)``
        (Wang, Li & Metze, 2019). ``"auto"``: auto-pool with a learned per-tag ``alpha``
        (McFee, Salamon & Bello, 2018). ``"loc"``: eq. (7)-(8) without the attention unit
        (``z_att = 1``), ``sum_t O(t) z_loc(t) / sum_t z_loc(t)``, the DESED baseline's
        pooling (:data:`DESED_CONFIG`).
        """,
    ),
    Param(
        "loc_activation", "softmax", "network", one_of(LOC_ACTIVATIONS), choices=LOC_ACTIVATIONS, resume=True, paper="softmax",
        doc="""
        Normalization of the localization output ``z_loc(t)`` (``pooling="att_loc"`` or ``"loc"``).
        ``"softmax"`` over classes is the paper's eq. (6). ``"sigmoid"`` is a per-class
        variant: each class weighs the frames on its own, so one class cannot take every
        frame's ``z_loc`` (the softmax's collapse); eq. (7)-(8) are unchanged, since eq. (8)
        normalizes each class over time either way.
        """,
    ),
    Param(
        "loc_denominator", "att_loc", "network", one_of(LOC_DENOMINATORS), choices=LOC_DENOMINATORS, resume=True, paper="loc",
        doc="""
        Denominator of eq. (8) (``pooling="att_loc"`` only; with ``"loc"`` both are the same): the paper's ``sum_t z_loc(t)``
        (``"loc"``), or ``sum_t z_att(t) z_loc(t)``, which makes the clip output a true
        ``z_att z_loc``-weighted mean of ``O(t)`` instead of one capped by ``z_att``.
        """,
    ),
    Param(
        "loc_background", True, "network", _checks.check_bool, kind="bool", resume=True, legacy=False, paper=False,
        doc="""
        Give the eq. (6) softmax a background slot, left out of eq. (7)-(8) and of every
        output, so frames where no tag is active need not be given to a real tag (the
        authors' released code has one). Softmax ``z_loc`` only (ignored with
        ``loc_activation="sigmoid"``); False is the paper's text.
        """,
    ),
    Param(
        "loc_input", "rnn", "network", one_of(LOC_INPUTS), choices=LOC_INPUTS, resume=True, legacy="cnn", paper="cnn",
        doc="""
        What eq. (6) reads: the attention-scaled CNN output of eq. (4) (``"cnn"``, the
        paper) or the GRU output (``"rnn"``, as the DCASE/DESED CRNN baseline).
        """,
    ),
    Param(
        "frontend", "conv2d", "network", one_of(FRONTENDS), choices=FRONTENDS, resume=True, legacy="frame_cnn", paper="frame_cnn",
        doc="""
        The network before the GRUs. ``"frame_cnn"``: the paper's CNN, one convolution over
        the mel bands of each frame (``n_filters`` kernels of ``kernel_size`` bands).
        ``"conv2d"``: ``conv_blocks`` blocks of 3x3 convolutions over time and frequency
        with batch norm, ReLU and max-pooling (:class:`skattloc.model.ConvBlocks`); the
        attention then reads the front end's frame.
        """,
    ),
    Param(
        "conv_blocks", 3, "network", positive_int, kind="int", resume=True, legacy=3, paper=3,
        doc="""
        Number of 2-D conv blocks (``frontend="conv2d"``); channels double from block to
        block up to ``n_filters`` unless ``conv_channels`` lists them.
        """,
    ),
    Param(
        "conv_channels", None, "network", _conv_channels_rule, kind="tuple of int or None", resume=True,
        legacy=None, paper=None,
        doc="""
        Channels of each conv block (``frontend="conv2d"``; ``conv_blocks`` entries), e.g.
        ``(16, 32, 64, 128, 128, 128, 128)`` for the DESED baseline. None: double from block
        to block up to ``n_filters``.
        """,
    ),
    Param(
        "conv_activation", "relu", "network", one_of(CONV_ACTIVATIONS), choices=CONV_ACTIVATIONS, resume=True,
        legacy="relu", paper="relu",
        doc="""
        Activation of the conv blocks (``frontend="conv2d"``): ReLU, or the gated linear unit
        ``W x * sigmoid(x)`` of the DESED baseline (``W``: a linear map over the channels).
        """,
    ),
    Param(
        "conv_pool", "max", "network", one_of(CONV_POOLS), choices=CONV_POOLS, resume=True, legacy="max", paper="max",
        doc="""
        Pooling of the conv blocks (``frontend="conv2d"``): maximum or mean (the DESED
        baseline's) of each window's valid frames.
        """,
    ),
    Param(
        "conv_dropout", 0.0, "network", number(0.0, 1.0, "[)"), kind="float", legacy=0.0, paper=0.0,
        doc="""
        Dropout rate after each conv block's activation (``frontend="conv2d"``), in [0, 1);
        0.5 in the DESED baseline.
        """,
    ),
    Param(
        "time_pool", 2, "network", positive_int, kind="int", resume=True, legacy=1, paper=1,
        doc="""
        Time downsampling inside the conv blocks (``frontend="conv2d"``; 1, 2, 4...): the
        GRUs run on ``ceil(n_frames / time_pool)`` frames, and the frame outputs are
        repeated back to one row per input frame (resolution ``time_pool`` frames,
        32 ms with the default extractor).
        """,
    ),
    Param(
        "n_filters", 64, "network", positive_int, kind="int", resume=True, paper=128,
        doc="""
        ``"conv2d"``: channels of the last conv block. ``"frame_cnn"``: CNN filters.
        """,
    ),
    Param(
        "kernel_size", 30, "network", positive_int, kind="int", resume=True, paper=30,
        doc="""
        ``"frame_cnn"`` only: CNN kernel length in mel bins (valid convolution; at most the
        number of mel bands).
        """,
    ),
    Param(
        "rnn_hidden", 64, "network", positive_int, kind="int", resume=True, paper=128,
        doc="""
        GRU units per direction.
        """,
    ),
    Param(
        "rnn_layers", 2, "network", positive_int, kind="int", resume=True, paper=3,
        doc="""
        Bidirectional GRU layers.
        """,
    ),
    Param(
        "dense_units", 128, "network", partial(_checks.check_int, minimum=0, hint="0: no ReLU layer"), kind="int",
        resume=True, paper=500,
        doc="""
        Units of the ReLU layer after the GRUs. 0: no such layer, the frame output reads the
        GRU output (after the dropout), as in the DESED baseline.
        """,
    ),
    Param(
        "dropout", 0.2, "network", number(0.0, 1.0, "[)"), kind="float", paper=0.2,
        doc="""
        Dropout rate after the ReLU layer (after the GRUs with ``dense_units=0``), in [0, 1).
        """,
    ),
    Param(
        "learning_rate", 0.001, "training", number(0, 10, "(]", word="a finite number", hint="Adam's step size; the paper uses 1e-3"), kind="float", paper=0.001,
        doc="""
        Adam's step size.
        """,
    ),
    Param(
        "weight_decay", 0.0, "training", number(0, word="a finite number"), kind="float", paper=0.0,
        doc="""
        Adam's L2 penalty.
        """,
    ),
    Param(
        "batch_size", "auto", "training", _batch_size_rule, kind='int or "auto"', resume=True, paper=100,
        doc="""
        Clips per training step; also the inference batch size. ``"auto"``: the paper's 100,
        or fewer where the training clips (after the validation split) would give an epoch
        fewer than 10 steps: ``ceil(n_train / 10)``, at least 8
        (:func:`skattloc.params.auto_batch_size`). From 1,000 training clips on it is 100.
        The value used is ``batch_size_``.
        """,
    ),
    Param(
        "max_epochs", 80, "training", positive_int, kind="int", paper=20,
        doc="""
        Passes over the training data (fewer if ``early_stopping`` stops the fit).
        """,
    ),
    Param(
        "lr_schedule", "constant", "training", one_of(LR_SCHEDULES), choices=LR_SCHEDULES, paper="constant",
        doc="""
        Learning-rate schedule. ``"constant"`` is the paper's Adam at ``learning_rate``;
        ``"cosine"`` anneals it to 0 over all training steps (updated every step).
        """,
    ),
    Param(
        "spec_augment", 2, "training", mask_count, kind="int", paper=0,
        doc="""
        Time masks and frequency masks (SpecAugment, without time warping) applied to each
        training clip's log-mel frames; masked cells are set to the feature mean. 0 is off
        (the paper). Validation, ``predict_proba`` and ``localize`` never see masks.
        """,
    ),
    Param(
        "time_mask_width", 10, "training", mask_count, kind="int",
        doc="""
        Longest time mask, in frames (10 frames = 0.16 s with the default extractor).
        """,
    ),
    Param(
        "freq_mask_width", 6, "training", mask_count, kind="int",
        doc="""
        Widest frequency mask, in mel bands.
        """,
    ),
    Param(
        "mixup_alpha", 0.2, "training", number(0, word="a finite number", hint="0 disables mixup"), kind="float", paper=0.0,
        doc="""
        Mixup of training clips: each clip's frames and tags become the same convex
        combination ``lam * a + (1 - lam) * b`` with another clip of the batch,
        ``lam ~ Beta(mixup_alpha, mixup_alpha)``. 0.0 is off (the paper).
        """,
    ),
    Param(
        "power_mix", 0.0, "training", number(0, 1, hint="0 turns it off"), kind="float in [0, 1]", legacy=0.0, paper=0.0,
        doc="""
        Share of the training batches mixed as sound mixes instead of by mixup: each clip's
        mel power plus another clip's (at a random relative gain of up to +-6 dB), with the
        union of their tags (:func:`skattloc.augment.power_mix`). Assumes natural-log mel
        power, as :class:`LogMelExtractor` writes it. 0.0 is off.
        """,
    ),
    Param(
        "time_shift", 0.5, "training", number(0, 1, "[)", hint="0 turns it off"), kind="float in [0, 1)", legacy=0.0, paper=0.0,
        doc="""
        Largest circular time shift of a training clip, as a share of its length
        (:func:`skattloc.augment.time_shift`); event times move with the clip. 0.0 is off.
        """,
    ),
    Param(
        "filter_augment", 6.0, "training", number(0, word="a finite number of dB", hint="0 turns it off"),
        kind="float", legacy=0.0, paper=0.0,
        doc="""
        FilterAugment (Nam et al., 2022): each training clip's mel axis is cut into 2 to 5
        random bands, each raised or lowered by a gain of up to this many dB
        (:func:`skattloc.augment.filter_augment`). 0.0 is off.
        """,
    ),
    Param(
        "ema_decay", 0.99, "training", number(0, 1, "[)", hint="0 turns weight averaging off"), kind="float", legacy=0.0, paper=0.0,
        doc="""
        Weight averaging: an exponential moving average of the weights after every
        training step (Lightning's ``WeightAveraging``; the decay ramps up as
        ``min(ema_decay, (1 + n) / (10 + n))`` over the first updates, see
        :class:`skattloc.training.WarmupEMA`). The averaged weights are validated and kept.
        0 turns it off (the paper).
        """,
    ),
    Param(
        "validation_fraction", "auto", "training", _validation_fraction_rule, kind='float in [0, 1) or "auto"', resume=True, paper=0.0,
        doc="""
        Fraction of the training clips held out (at random, seeded by ``random_state``)
        to log ``val_loss``, ``val_auroc``, ``val_map`` and ``val_eer`` each epoch (in
        ``history_``), to stop early, and to calibrate the event post-processing; their
        indices are ``validation_indices_``. ``"auto"``: 0.1 with at least 100 clips (10
        validation clips or more), else 0. 0 disables validation (then give ``X_val`` to
        ``fit`` for any of these).
        """,
    ),
    Param(
        "early_stopping", "auto", "training", one_of(("auto", True, False)), kind='{"auto", True, False}', paper=False,
        doc="""
        Stop when ``early_stopping_metric`` has not improved for ``patience`` epochs, and
        restore the best epoch's weights. ``"auto"``: whenever there is validation data
        (a validation split or ``X_val``), else train ``max_epochs``; True: always,
        and ``fit`` refuses to run without validation data; False: never.
        """,
    ),
    Param(
        "early_stopping_metric", "val_eer", "training", one_of(tuple(EARLY_STOPPING_METRICS)), choices=tuple(EARLY_STOPPING_METRICS), legacy="val_loss",
        doc="""
        The validation metric that early stopping watches and that picks the best epoch:
        the macro equal error rate (lower is better), macro average precision, macro AUROC
        (higher is better) or the BCE loss.
        """,
    ),
    Param(
        "patience", 15, "training", positive_int, kind="int",
        doc="""
        Epochs without improvement before early stopping.
        """,
    ),
    Param(
        "frame_loss_weight", 1.0, "training", number(0, word="a finite number", hint="0 trains timed clips on their tags only"),
        kind="float",
        doc="""
        Weight of the frame loss on clips with event times (``fit(..., events=...)``): the
        BCE of the :meth:`localize` output ``z_att(t) O(t)`` against the events' frames,
        added to the clip loss. DESED's baseline weighs its strong and weak losses equally.
        """,
    ),
    Param(
        "consistency_weight", 2.0, "training", number(0, word="a finite number", hint="0 turns the mean teacher off"),
        kind="float",
        doc="""
        Largest weight of the mean teacher's consistency loss (Tarvainen & Valpola, 2017), used
        when ``y`` marks unlabeled clips: the mean squared error between the student's clip
        and frame outputs and those of a teacher whose weights are an exponential moving
        average of the student's. 2 is DESED's ``const_max``; 0 trains on labelled clips only.
        """,
    ),
    Param(
        "consistency_rampup", 20, "training", partial(_checks.check_int, minimum=0), kind="int",
        doc="""
        Epochs over which the consistency weight ramps up from 0 (``exp(-5 (1 - t)^2)``, as
        DESED; a quarter of ``max_epochs``, DESED's 50 of 200).
        """,
    ),
    Param(
        "teacher_decay", 0.999, "training", number(0, 1, "[)"), kind="float",
        doc="""
        Decay of the teacher's moving average of the student's weights (DESED's 0.999).
        """,
    ),
    Param(
        "unlabeled_ratio", 0.5, "training", number(0, 1, "()"), kind="float", resume=True,
        doc="""
        Share of each training batch taken by unlabeled clips when there are any (DESED: half);
        an epoch is one pass over the labelled clips.
        """,
    ),
    Param(
        "threshold", 0.5, "inference", number(0.0, 1.0, "[]"), kind="float",
        doc="""
        Decision threshold of :meth:`predict` on the clip probabilities.
        """,
    ),
    Param(
        "localization", "att_frame", "inference", one_of(LOCALIZATIONS), choices=LOCALIZATIONS,
        doc="""
        What :meth:`localize` returns for frame ``t`` and class ``k``:

        - ``"att_frame"``: ``z_att(t) O(t)``, eq. (5)'s frame output without ``z_loc``, for
          ``"att"`` and ``"att_loc"`` (``O(t)`` for the other poolings). On domestic-mix it
          localized best within clips for every attention model (within-clip AUC 0.885
          against 0.845 for the paper's ``O'(t)``, att_loc, 20 epochs, 4-fold CV;
          ``docs/benchmarks.md``).
        - ``"paper"``: the frame output that the pooling averages into the clip output:
          ``O'(t) = z_att(t) O(t) z_loc(t)`` (eq. 7) for ``"att_loc"``, ``z_att(t) O(t)``
          (eq. 5) for ``"att"``, ``O(t)`` for ``"mean"``.
        - ``"frame"``: ``O(t)``, the per-frame sigmoid output, for every pooling.
        - ``"loc"``: ``z_loc(t)`` (eq. 6), the localization softmax over classes
          (``"att_loc"`` only); it sums to 1 over classes in every frame.
        """,
    ),
    Param(
        "calibrate_events", True, "inference", _checks.check_bool, kind="bool", legacy=False,
        doc="""
        When ``fit`` has validation clips (a validation split or ``X_val``), end
        by calibrating the event post-processing of :meth:`detect_events` on them from their
        clip tags alone (:meth:`skattloc.postprocessing.EventPostprocessor.calibrate`):
        per class a clip threshold, an event threshold with hysteresis, and a median filter
        and a gap to bridge from the typical event length. The settings land in
        ``event_settings_``; :meth:`tune_events` replaces them (e.g. from strong labels).
        """,
    ),
    Param(
        "window_frames", "auto", "inference", check_window_frames, kind='"auto", int or None',
        doc="""
        Inference on recordings longer than this many frames runs on overlapping windows
        of this length whose frame outputs are stitched back (Hann-weighted overlap-add),
        a batch of ``batch_size`` windows at a time, so memory stays bounded for hours
        of audio; such a recording's clip probability is the maximum over its windows.
        ``"auto"``: the longest training clip (``n_frames_train_``); None: never split.
        Clips of at most this length are run whole, exactly as without windowing. See
        :mod:`skattloc.windowing`.
        """,
    ),
    Param(
        "window_overlap", 0.5, "inference", number(0, 1, "[)"), kind="float",
        doc="""
        Fraction of a window shared with the next one, in [0, 1).
        """,
    ),
    Param(
        "frame_timing", None, "inference", _frame_timing_rule,
        kind="FrameTiming, LogMelExtractor, dict, float, (hop_s, offset_s) or None",
        doc="""
        Where the feature frames sit in time (:class:`skattloc.timing.FrameTiming`: the hop
        and the start of frame 0, in seconds), which every result in seconds reads: event
        times, clip durations, the event settings' filter and gap lengths, event scores.
        None: recorded in ``fit`` from the features, as :class:`~skattloc.LogMelExtractor`
        hands its timing on with its frames (in a ``Pipeline`` too). Give it for features
        from elsewhere, e.g. ``frame_timing=(0.01, 0.0)`` for a 10 ms hop; ``fit`` refuses
        features that carry another timing. Without either, the tagger tags and localizes
        in frames, and every method that answers in seconds refuses, naming the timing.
        """,
    ),
    Param(
        "accelerator", "auto", "lightning", None, kind="str",
        doc="""
        Lightning accelerator: ``"cpu"``, ``"gpu"``, ``"auto"``...
        """,
    ),
    Param(
        "devices", 1, "lightning", None, kind="int, list or str",
        doc="""
        Lightning devices. One device by default, so a script is never re-launched for
        multi-device training unless asked for (see ``strategy``).
        """,
    ),
    Param(
        "precision", "32-true", "lightning", None, kind="str or int",
        doc="""
        Lightning precision, e.g. ``"bf16-mixed"`` or ``"16-mixed"`` on a GPU.
        """,
    ),
    Param(
        "strategy", "auto", "lightning", None, kind="str or Strategy",
        doc="""
        Lightning strategy, e.g. ``"ddp_spawn"`` for several devices from a plain script.
        """,
    ),
    Param(
        "callbacks", None, "lightning", check_callbacks, kind="list of lightning Callback, optional",
        doc="""
        Extra Lightning callbacks.
        """,
    ),
    Param(
        "logger", False, "lightning", check_logger, kind="bool or Lightning logger",
        doc="""
        Lightning logger. False logs nothing to disk; metrics still go to ``history_``.
        """,
    ),
    Param(
        "trainer_kwargs", None, "lightning", _checks.check_dict, kind="dict, optional",
        doc="""
        Any other ``lightning.pytorch.Trainer`` arguments; they override the above.
        """,
    ),
    Param(
        "num_workers", 0, "lightning", partial(_checks.check_int, minimum=0), kind="int",
        doc="""
        DataLoader worker processes for training.
        """,
    ),
    Param(
        "warm_start", False, "lightning", None, kind="bool",
        doc="""
        If True and already fitted, ``fit`` continues training the current network (the
        tags must then match ``classes_``) instead of starting anew.
        """,
    ),
    Param(
        "checkpoint_dir", None, "lightning", _checks.check_folder_path, kind="str, path or None",
        doc="""
        Folder where ``fit`` writes a Lightning checkpoint, ``last.ckpt``, at the end of
        every epoch (atomically: a killed process leaves the previous one intact). With
        None, ``fit`` writes no file at all. Lightning's ``default_root_dir`` is this folder,
        so a ``logger`` writes there too. Do not share one folder between fits that run at
        the same time (e.g. in ``GridSearchCV(n_jobs=2)``).
        """,
    ),
    Param(
        "resume", False, "lightning", _checks.check_bool, kind="bool",
        doc="""
        If True and ``checkpoint_dir`` holds ``last.ckpt``, ``fit(X, y)`` continues that
        interrupted fit from its last finished epoch and stops at ``max_epochs``, restoring
        the weights, optimizer, ``history_``, the seed and the random states: on the CPU
        the result is the same as an uninterrupted fit. Call it with the same ``X``, ``y``
        and parameters (checked: a mismatch raises ValueError). Without a checkpoint it
        warns and trains from the first epoch. Needs ``checkpoint_dir``.
        """,
    ),
    Param(
        "keep_checkpoints", True, "lightning", _checks.check_bool, kind="bool",
        doc="""
        If False, a fit that succeeds deletes its checkpoint (and ``checkpoint_dir`` when
        ``fit`` created it and it is left empty). A fit that fails keeps it, for ``resume``.
        """,
    ),
    Param(
        "random_state", None, "training", None, kind="int, RandomState or None",
        doc="""
        Seeds weight initialization, shuffling, dropout and the validation split. An int
        gives the same model on the CPU every time. Global RNG states are left untouched.
        """,
    ),
    Param(
        "verbose", False, "lightning", None, kind="bool or int",
        doc="""
        Show Lightning's progress bar and model summary. Quiet otherwise (no banners).
        """,
    ),
]

#: Every parameter, in ``__init__`` order.
PARAMETERS = {p.name: p for p in _TABLE}
del _TABLE

#: The paper's configuration (Xu et al., Interspeech 2017, Section 4): the per-frame CNN
#: (128 filters of 30 mel bins), 3 bidirectional GRU layers of 128 units, a 500-unit ReLU
#: layer with dropout 0.2, attention and localization (eq. 3-8, softmax z_loc, eq. 8 over
#: sum z_loc), Adam at 1e-3, batches of 100, 20 epochs, no augmentation or averaging.
#: ``AttLocTagger(**PAPER_CONFIG)`` trains exactly that network; the estimator's own
#: defaults are the recipe chosen on domestic-mix (``docs/benchmarks.md``).
PAPER_CONFIG = {p.name: p.paper for p in PARAMETERS.values() if p.paper is not _UNSET}

#: The DCASE task 4 (DESED) baseline CRNN, as DCASE 2022-2024 ship it, from scratch: 7
#: blocks of 3x3 convolution, batch norm, GLU, dropout 0.5 and average pooling
#: (16-32-64-128-128-128-128 channels; time pooled by 2 in the first two blocks, frequency
#: by 2 in each while 2 bands are left), 2 bidirectional GRU layers of 128 units, dropout
#: 0.5, a sigmoid frame output read straight from the GRUs, and the attention pooling
#: ``sum_t O(t) softmax_c(t) / sum_t softmax_c(t)`` (``pooling="loc"``, no background
#: class); Adam at 1e-3, batches of 48, mixup (alpha 0.2), up to 200 epochs with the best
#: epoch kept. It is built from this table's parameters, over the same keys as
#: :data:`PAPER_CONFIG`. What differs from DESED's own recipe, on purpose: no mean teacher
#: or unlabeled data (``consistency_weight`` does not apply), a constant learning rate
#: (DESED warms it up over 50 epochs), mixup on every batch (DESED: half of them), early
#: stopping with ``patience`` epochs (DESED trains all 200 and keeps the best), and the
#: features are the user's extractor (DESED: 128 mel bands, 2048-point FFT, hop 256 at
#: 16 kHz). Smaller differences: the batch norm keeps torch's defaults (DESED: eps 1e-3,
#: momentum 0.99), and the class softmax reads the GRU output before the dropout (DESED:
#: after). ``docs/benchmarks.md`` runs it beside the default recipe.
DESED_CONFIG = {
    **PAPER_CONFIG,
    "pooling": "loc", "loc_activation": "softmax", "loc_denominator": "loc", "loc_background": False,
    "loc_input": "rnn", "frontend": "conv2d", "conv_blocks": 7, "conv_channels": (16, 32, 64, 128, 128, 128, 128),
    "conv_activation": "glu", "conv_pool": "avg", "conv_dropout": 0.5, "time_pool": 4, "n_filters": 128,
    "rnn_hidden": 128, "rnn_layers": 2, "dense_units": 0, "dropout": 0.5, "learning_rate": 0.001,
    "weight_decay": 0.0, "batch_size": 48, "max_epochs": 200, "lr_schedule": "constant", "spec_augment": 0,
    "mixup_alpha": 0.2, "power_mix": 0.0, "time_shift": 0.0, "filter_augment": 0.0, "ema_decay": 0.0,
    "validation_fraction": 0.1, "early_stopping": True,
}


def defaults() -> dict:
    """``{name: default}`` for every parameter."""
    return {name: p.default for name, p in PARAMETERS.items()}


def names(group: Optional[str] = None) -> list:
    """Parameter names, in ``__init__`` order; only those of ``group`` if given."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    return [name for name, p in PARAMETERS.items() if group is None or p.group == group]


def choices(name: str) -> Optional[tuple]:
    """The allowed values of parameter ``name`` (None: not a list of options).

    Examples
    --------
    >>> from skattloc.params import choices
    >>> choices("pooling")
    ('att_loc', 'att', 'mean', 'linear_softmax', 'auto', 'loc')
    """
    return PARAMETERS[name].choices


def resume_params() -> tuple:
    """The parameters a resumed fit must share with the interrupted one."""
    return tuple(name for name, p in PARAMETERS.items() if p.resume)


def legacy_values() -> dict:
    """``{name: value}`` for the parameters model files may lack (added later), with the
    value that gives those files' behaviour (skattloc 0.1: the paper's network, no weight
    averaging, no event calibration)."""
    return {name: p.legacy for name, p in PARAMETERS.items() if p.legacy is not _UNSET}


def check_architecture(*, n_mels, pooling, loc_activation, loc_background, frontend, kernel_size, conv_blocks,
                       time_pool, conv_channels=None, **_other) -> None:
    """Raise ValueError for a combination of network parameters that
    :class:`~skattloc.model.CGRNN` cannot build (each value is assumed valid on its own)."""
    if not isinstance(loc_background, bool) and type(loc_background).__name__ != "bool_":
        raise ValueError(f"loc_background must be True or False, got {loc_background!r}")
    if frontend == "frame_cnn":
        if kernel_size > n_mels:
            raise ValueError(
                f"kernel_size={kernel_size} is larger than the {n_mels} input features per "
                f"frame; the valid convolution over frequency needs kernel_size <= n_mels"
            )
        if time_pool != 1:
            raise ValueError(f"time_pool={time_pool} needs frontend='conv2d'; the paper's frame_cnn keeps every frame (time_pool=1)")
    else:
        if not (isinstance(time_pool, int) and time_pool >= 1 and time_pool & (time_pool - 1) == 0):
            raise ValueError(f"time_pool must be a power of 2 (1, 2, 4...), got {time_pool!r}")
        if time_pool > 2 ** conv_blocks:
            raise ValueError(
                f"time_pool={time_pool} needs at least {time_pool.bit_length() - 1} conv blocks "
                f"(each halves time at most once), got conv_blocks={conv_blocks}"
            )
        if conv_channels is not None and len(conv_channels) != conv_blocks:
            raise ValueError(
                f"conv_channels lists {len(conv_channels)} blocks but conv_blocks={conv_blocks}; "
                f"give one channel count per block"
            )


def validate_params(params: dict, group: Optional[str] = None, n_features: Optional[int] = None) -> None:
    """Check parameter values against their rules, then the rules that tie them together.

    Parameters
    ----------
    params : dict
        ``{name: value}``, e.g. ``AttLocTagger().get_params(deep=False)``; names not in the
        table raise ValueError. Parameters left out are not checked (the combination rules
        then read their defaults).
    group : str, optional
        Check only this group's parameters (``"network"``: what ``CGRNN`` checks).
    n_features : int, optional
        Features per frame of the input, when known (``kernel_size`` must not exceed it).

    Raises
    ------
    ValueError
        Naming the parameter and what it must be.

    Examples
    --------
    >>> from skattloc.params import validate_params
    >>> validate_params({"pooling": "max"})
    Traceback (most recent call last):
    ...
    ValueError: pooling must be one of ('att_loc', 'att', 'mean', 'linear_softmax', 'auto', 'loc'), got 'max'
    """
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; AttLocTagger's parameters are {names()}")
    for name, value in params.items():
        p = PARAMETERS[name]
        if p.rule is not None and (group is None or p.group == group):
            p.rule(value, name)
    values = {**defaults(), **params}
    # Without n_features (before fit has X) only the combinations are checked.
    check_architecture(n_mels=10**9 if n_features is None else n_features, **{k: values[k] for k in names("network")})
    if group is None:
        if values["localization"] == "loc" and values["pooling"] not in ("att_loc", "loc"):
            raise ValueError("localization='loc' returns z_loc(t), which only pooling='att_loc' or 'loc' has")
        if values["resume"] and values["checkpoint_dir"] is None:
            raise ValueError("resume=True needs checkpoint_dir: the folder whose last.ckpt the fit continues from")


def docstring_section(indent: str = "    ") -> str:
    """The numpydoc Parameters section of :class:`~skattloc.AttLocTagger`, from the table."""
    lines = []
    for p in PARAMETERS.values():
        lines.append(indent + p.type_line())
        lines += [indent + "    " + line if line else "" for line in textwrap.dedent(p.doc).strip("\n").split("\n")]
    return "\n".join(lines)
