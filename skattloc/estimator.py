"""``AttLocTagger``: the scikit-learn estimator, where sklearn meets Lightning.

torch and Lightning are imported by the methods that need them (``fit``, inference,
``load``), not with this module: ``from skattloc import AttLocTagger``, ``clone`` and
``get_params`` import neither, and ``skattloc --help`` reads the parameters' defaults here.
The Lightning machinery that ``fit`` hands over (Trainer, callbacks, checkpoints, resume)
is in :mod:`skattloc.training`; the model-file format in :mod:`skattloc.persistence`.
"""
from __future__ import annotations

import copy
import functools
import os
import warnings
from typing import TYPE_CHECKING, List

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from . import _checks
from . import windowing as _windowing
from .tags import decode_tags, encode_tags, tagger_sklearn_tags

if TYPE_CHECKING:  # for readers and type checkers; imported where used
    import torch

    from .model import CGRNN

LOCALIZATIONS = ("att_frame", "paper", "frame", "loc")

#: The paper's configuration (Xu et al., Interspeech 2017, Section 4): the per-frame CNN
#: (128 filters of 30 mel bins), 3 bidirectional GRU layers of 128 units, a 500-unit ReLU
#: layer with dropout 0.2, attention and localization (eq. 3-8, softmax z_loc, eq. 8 over
#: sum z_loc), Adam at 1e-3, batches of 100, 20 epochs, no augmentation or averaging.
#: ``AttLocTagger(**PAPER_CONFIG)`` trains exactly that network; the estimator's own
#: defaults are the recipe chosen on domestic-mix (``docs/benchmarks.md``).
PAPER_CONFIG = {
    "frontend": "frame_cnn", "n_filters": 128, "kernel_size": 30, "conv_blocks": 3, "time_pool": 1,
    "rnn_hidden": 128, "rnn_layers": 3, "dense_units": 500, "dropout": 0.2,
    "pooling": "att_loc", "loc_activation": "softmax", "loc_denominator": "loc", "loc_background": False,
    "loc_input": "cnn", "learning_rate": 1e-3, "weight_decay": 0.0, "batch_size": 100, "max_epochs": 20,
    "lr_schedule": "constant", "spec_augment": 0, "mixup_alpha": 0.0, "ema_decay": 0.0,
    "validation_fraction": 0.0, "early_stopping": False,
}
# Early stopping and best-epoch selection: the metric logged on the validation data, and
# whether lower is better.
EARLY_STOPPING_METRICS = {"val_loss": "min", "val_eer": "min", "val_map": "max", "val_auroc": "max"}


#: ``validation_fraction="auto"``: this fraction, from this many clips on (else no split).
AUTO_VALIDATION_FRACTION, AUTO_VALIDATION_MIN_CLIPS = 0.1, 100


def _validation_fraction_rule(value, name):
    if isinstance(value, str) and value == "auto":
        return value
    return _checks.check_number(value, name, 0.0, 1.0, closed="[)", hint='or "auto"')


@functools.lru_cache(maxsize=None)
def _parameter_rules() -> dict:
    """Every parameter of :class:`AttLocTagger` -> the check of its value on its own.

    A check is ``check(value, name)`` and raises ValueError naming the parameter; None means
    any value (or one that something else checks: Lightning's ``Trainer`` the accelerator,
    devices, precision and strategy; ``fit`` the ``random_state``, whose seed it draws, as
    drawing it here would advance a ``RandomState``). Rules that tie parameters together
    stay explicit in :meth:`AttLocTagger._validate_params` (``check_architecture`` of
    :mod:`skattloc.model`, ``localization="loc"``, ``resume``) and in ``fit`` (early
    stopping needs validation data).

    scikit-learn's own machinery (``_parameter_constraints`` checked by
    ``sklearn.utils._param_validation``) is not used: it is private API that changes
    between scikit-learn releases, it raises ``InvalidParameterError`` with its own wording
    while the messages here are part of skattloc's interface (the command line prints them),
    and it cannot express the Lightning objects (callbacks, loggers) nor defer the torch
    and Lightning imports to ``fit``. Built on first use, for the same reason.
    """
    from . import training
    from .model import FRONTENDS, LOC_ACTIVATIONS, LOC_DENOMINATORS, LOC_INPUTS, POOLINGS
    from .module import LR_SCHEDULES

    partial = functools.partial
    positive_int = _checks.check_positive_int
    mask_count = partial(_checks.check_int, minimum=0, allow_bool=True, hint="False counts as 0")

    def one_of(options):
        return partial(_checks.check_option, options=options)

    def number(low, high=None, closed="[]", **message):
        return partial(_checks.check_number, low=low, high=high, closed=closed, **message)

    return {
        # the network (skattloc.model)
        "pooling": one_of(POOLINGS),
        "loc_activation": one_of(LOC_ACTIVATIONS),
        "loc_denominator": one_of(LOC_DENOMINATORS),
        "loc_background": _checks.check_bool,
        "loc_input": one_of(LOC_INPUTS),
        "frontend": one_of(FRONTENDS),
        "conv_blocks": positive_int,
        "time_pool": positive_int,
        "n_filters": positive_int,
        "kernel_size": positive_int,
        "rnn_hidden": positive_int,
        "rnn_layers": positive_int,
        "dense_units": positive_int,
        "dropout": number(0.0, 1.0, "[)"),
        # training (skattloc.module)
        # Above 10, Adam's bias-corrected step overflows float32 for large values
        # (RuntimeError inside torch) long before it is a sensible step size.
        "learning_rate": number(0, 10, "(]", word="a finite number", hint="Adam's step size; the paper uses 1e-3"),
        "weight_decay": number(0, word="a finite number"),
        "batch_size": positive_int,
        "max_epochs": positive_int,
        "lr_schedule": one_of(LR_SCHEDULES),
        "spec_augment": mask_count,
        "time_mask_width": mask_count,
        "freq_mask_width": mask_count,
        "mixup_alpha": number(0, word="a finite number", hint="0 disables mixup"),
        "ema_decay": number(0, 1, "[)", hint="0 turns weight averaging off"),
        "validation_fraction": _validation_fraction_rule,
        "early_stopping": partial(_checks.check_option, options=("auto", True, False)),
        "early_stopping_metric": one_of(tuple(EARLY_STOPPING_METRICS)),
        "patience": positive_int,
        # inference
        "threshold": number(0.0, 1.0, "[]"),
        "localization": one_of(LOCALIZATIONS),
        "calibrate_events": _checks.check_bool,
        "window_frames": _windowing.check_window_frames,
        "window_overlap": number(0, 1, "[)"),
        # Lightning (skattloc.training)
        "accelerator": None,
        "devices": None,
        "precision": None,
        "strategy": None,
        "callbacks": training.check_callbacks,
        "logger": training.check_logger,
        "trainer_kwargs": _checks.check_dict,
        "num_workers": partial(_checks.check_int, minimum=0),
        "warm_start": None,
        "checkpoint_dir": _checks.check_folder_path,
        "resume": _checks.check_bool,
        "keep_checkpoints": _checks.check_bool,
        "random_state": None,
        "verbose": None,
    }


class AttLocTagger(ClassifierMixin, BaseEstimator):
    """Weakly supervised audio tagger and event localizer (Xu et al., Interspeech 2017).

    A convolutional gated recurrent network (CGRNN) with an attention and a localization
    head, trained on clip-level tags only, that predicts clip tags and, per frame, when each
    tagged event happens. Training runs through a Lightning ``Trainer`` (CPU, GPU,
    mixed precision, several devices).

    Parameters
    ----------
    pooling : {"att_loc", "att", "mean", "linear_softmax", "auto"}, default="att_loc"
        How frame outputs ``O(t)`` become the clip output. ``"att_loc"``: the paper's
        attention and localization, eq. (3)-(8). ``"att"``: attention only, the
        ``z_att``-weighted mean of ``O(t)`` (eq. 3-5). ``"mean"``: the CGRNN baseline, the
        plain mean of ``O(t)`` (eq. 2). ``"linear_softmax"``: ``sum_t O(t)^2 / sum_t O(t)``
        (Wang, Li & Metze, 2019). ``"auto"``: auto-pool with a learned per-tag ``alpha``
        (McFee, Salamon & Bello, 2018).
    loc_activation : {"softmax", "sigmoid"}, default="softmax"
        Normalization of the localization output ``z_loc(t)`` (``pooling="att_loc"`` only).
        ``"softmax"`` over classes is the paper's eq. (6). ``"sigmoid"`` is a per-class
        variant: each class weighs the frames on its own, so one class cannot take every
        frame's ``z_loc`` (the softmax's collapse); eq. (7)-(8) are unchanged, since eq. (8)
        normalizes each class over time either way.
    loc_denominator : {"loc", "att_loc"}, default="att_loc"
        Denominator of eq. (8) (``pooling="att_loc"`` only): the paper's ``sum_t z_loc(t)``
        (``"loc"``), or ``sum_t z_att(t) z_loc(t)``, which makes the clip output a true
        ``z_att z_loc``-weighted mean of ``O(t)`` instead of one capped by ``z_att``.
    loc_background : bool, default=True
        Give the eq. (6) softmax a background slot, left out of eq. (7)-(8) and of every
        output, so frames where no tag is active need not be given to a real tag (the
        authors' released code has one). Softmax ``z_loc`` only (ignored with
        ``loc_activation="sigmoid"``); False is the paper's text.
    loc_input : {"cnn", "rnn"}, default="rnn"
        What eq. (6) reads: the attention-scaled CNN output of eq. (4) (``"cnn"``, the
        paper) or the GRU output (``"rnn"``, as the DCASE/DESED CRNN baseline).
    frontend : {"frame_cnn", "conv2d"}, default="conv2d"
        The network before the GRUs. ``"frame_cnn"``: the paper's CNN, one convolution over
        the mel bands of each frame (``n_filters`` kernels of ``kernel_size`` bands).
        ``"conv2d"``: ``conv_blocks`` blocks of 3x3 convolutions over time and frequency
        with batch norm, ReLU and max-pooling (:class:`skattloc.model.ConvBlocks`); the
        attention then reads the front end's frame.
    conv_blocks : int, default=3
        Number of 2-D conv blocks (``frontend="conv2d"``); channels double from block to
        block up to ``n_filters``.
    time_pool : int, default=2
        Time downsampling inside the conv blocks (``frontend="conv2d"``; 1, 2, 4...): the
        GRUs run on ``ceil(n_frames / time_pool)`` frames, and the frame outputs are
        repeated back to one row per input frame (resolution ``time_pool`` frames,
        32 ms with the default extractor).
    n_filters : int, default=64
        ``"conv2d"``: channels of the last conv block. ``"frame_cnn"``: CNN filters.
    kernel_size : int, default=30
        ``"frame_cnn"`` only: CNN kernel length in mel bins (valid convolution; at most the
        number of mel bands).
    rnn_hidden : int, default=64
        GRU units per direction.
    rnn_layers : int, default=2
        Bidirectional GRU layers.
    dense_units : int, default=128
        Units of the ReLU layer after the GRUs.
    dropout : float, default=0.2
        Dropout rate after the ReLU layer, in [0, 1).
    learning_rate : float, default=1e-3
        Adam's step size.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    batch_size : int, default=100
        Clips per training step (the paper's value). Also the inference batch size.
    max_epochs : int, default=80
        Passes over the training data (fewer if ``early_stopping`` stops the fit).
    lr_schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule. ``"constant"`` is the paper's Adam at ``learning_rate``;
        ``"cosine"`` anneals it to 0 over all training steps (updated every step).
    spec_augment : int, default=2
        Time masks and frequency masks (SpecAugment, without time warping) applied to each
        training clip's log-mel frames; masked cells are set to the feature mean. 0 is off
        (the paper). Validation, ``predict_proba`` and ``localize`` never see masks.
    time_mask_width : int, default=10
        Longest time mask, in frames (10 frames = 0.16 s with the default extractor).
    freq_mask_width : int, default=6
        Widest frequency mask, in mel bands.
    mixup_alpha : float, default=0.2
        Mixup of training clips: each clip's frames and tags become the same convex
        combination ``lam * a + (1 - lam) * b`` with another clip of the batch,
        ``lam ~ Beta(mixup_alpha, mixup_alpha)``. 0.0 is off (the paper).
    ema_decay : float, default=0.99
        Weight averaging: an exponential moving average of the weights after every
        training step (Lightning's ``WeightAveraging``; the decay ramps up as
        ``min(ema_decay, (1 + n) / (10 + n))`` over the first updates, see
        :class:`skattloc.training.WarmupEMA`). The averaged weights are validated and kept.
        0 turns it off (the paper).
    validation_fraction : float in [0, 1) or "auto", default="auto"
        Fraction of the training clips held out (at random, seeded by ``random_state``)
        to log ``val_loss``, ``val_auroc``, ``val_map`` and ``val_eer`` each epoch (in
        ``history_``), to stop early, and to calibrate the event post-processing; their
        indices are ``validation_indices_``. ``"auto"``: 0.1 with at least 100 clips (10
        validation clips or more), else 0. 0 disables validation (then give ``X_val`` to
        ``fit`` for any of these).
    early_stopping : {"auto", True, False}, default="auto"
        Stop when ``early_stopping_metric`` has not improved for ``patience`` epochs, and
        restore the best epoch's weights. ``"auto"``: whenever there is validation data
        (a validation split or ``X_val``), else train ``max_epochs``; True: always,
        and ``fit`` refuses to run without validation data; False: never.
    early_stopping_metric : {"val_eer", "val_map", "val_auroc", "val_loss"}, default="val_eer"
        The validation metric that early stopping watches and that picks the best epoch:
        the macro equal error rate (lower is better), macro average precision, macro AUROC
        (higher is better) or the BCE loss.
    patience : int, default=15
        Epochs without improvement before early stopping.
    threshold : float, default=0.5
        Decision threshold of :meth:`predict` on the clip probabilities.
    localization : {"att_frame", "paper", "frame", "loc"}, default="att_frame"
        What :meth:`localize` returns per frame; see its documentation. The default,
        ``z_att(t) O(t)``, localized best within clips on domestic-mix (4-fold CV,
        ``docs/benchmarks.md``); ``"paper"`` is the paper's eq. (7) output.
    calibrate_events : bool, default=True
        When ``fit`` has validation clips (a validation split or ``X_val``), end
        by calibrating the event post-processing of :meth:`detect_events` on them from their
        clip tags alone (:meth:`skattloc.postprocessing.EventPostprocessor.calibrate`):
        per class a clip threshold, an event threshold with hysteresis, and a median filter
        and a gap to bridge from the typical event length. The settings land in
        ``event_settings_``; :meth:`tune_events` replaces them (e.g. from strong labels).
    window_frames : "auto", int or None, default="auto"
        Inference on recordings longer than this many frames runs on overlapping windows
        of this length whose frame outputs are stitched back (Hann-weighted overlap-add),
        a batch of ``batch_size`` windows at a time, so memory stays bounded for hours
        of audio; such a recording's clip probability is the maximum over its windows.
        ``"auto"``: the longest training clip (``n_frames_train_``); None: never split.
        Clips of at most this length are run whole, exactly as without windowing. See
        :mod:`skattloc.windowing`.
    window_overlap : float, default=0.5
        Fraction of a window shared with the next one, in [0, 1).
    accelerator : str, default="auto"
        Lightning accelerator: ``"cpu"``, ``"gpu"``, ``"auto"``...
    devices : int, list or str, default=1
        Lightning devices. One device by default, so a script is never re-launched for
        multi-device training unless asked for (see ``strategy``).
    precision : str or int, default="32-true"
        Lightning precision, e.g. ``"bf16-mixed"`` or ``"16-mixed"`` on a GPU.
    strategy : str or Strategy, default="auto"
        Lightning strategy, e.g. ``"ddp_spawn"`` for several devices from a plain script.
    callbacks : list of lightning Callback, optional
        Extra Lightning callbacks.
    logger : bool or Lightning logger, default=False
        Lightning logger. False logs nothing to disk; metrics still go to ``history_``.
    trainer_kwargs : dict, optional
        Any other ``lightning.pytorch.Trainer`` arguments; they override the above.
    num_workers : int, default=0
        DataLoader worker processes for training.
    warm_start : bool, default=False
        If True and already fitted, ``fit`` continues training the current network (the
        tags must then match ``classes_``) instead of starting anew.
    checkpoint_dir : str, path or None, default=None
        Folder where ``fit`` writes a Lightning checkpoint, ``last.ckpt``, at the end of
        every epoch (atomically: a killed process leaves the previous one intact). With
        None, ``fit`` writes no file at all. Lightning's ``default_root_dir`` is this folder,
        so a ``logger`` writes there too. Do not share one folder between fits that run at
        the same time (e.g. in ``GridSearchCV(n_jobs=2)``).
    resume : bool, default=False
        If True and ``checkpoint_dir`` holds ``last.ckpt``, ``fit(X, y)`` continues that
        interrupted fit from its last finished epoch and stops at ``max_epochs``, restoring
        the weights, optimizer, ``history_``, the seed and the random states: on the CPU
        the result is the same as an uninterrupted fit. Call it with the same ``X``, ``y``
        and parameters (checked: a mismatch raises ValueError). Without a checkpoint it
        warns and trains from the first epoch. Needs ``checkpoint_dir``.
    keep_checkpoints : bool, default=True
        If False, a fit that succeeds deletes its checkpoint (and ``checkpoint_dir`` when
        ``fit`` created it and it is left empty). A fit that fails keeps it, for ``resume``.
    random_state : int, RandomState or None, default=None
        Seeds weight initialization, shuffling, dropout and the validation split. An int
        gives the same model on the CPU every time. Global RNG states are left untouched.
    verbose : bool or int, default=False
        Show Lightning's progress bar and model summary. Quiet otherwise (no banners).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Tag names (sorted) when ``fit`` got tag collections, else ``0 .. n_classes-1``.
    n_features_in_ : int
        Features (mel bands) per frame seen in ``fit``.
    n_frames_train_ : int
        Frames of the longest training clip: the inference window with
        ``window_frames="auto"``.
    model_ : skattloc.model.CGRNN
        The trained network, on the CPU, in eval mode. It holds the feature
        standardization learned in ``fit`` (``input_mean``/``input_scale`` buffers).
    feature_mean_, feature_scale_ : ndarray of shape (``n_features_in_``,)
        Per-feature standardization learned in ``fit``.
    history_ : list of dict
        Per-epoch metrics: ``epoch``, ``train_loss`` and, with validation, ``val_loss``,
        ``val_auroc``, ``val_map``, ``val_eer``.
    n_epochs_ : int
        Epochs actually trained (fewer than ``max_epochs`` after early stopping).
    validation_indices_ : ndarray of int
        Indices into ``X`` of the clips ``fit`` held out with ``validation_fraction``
        (sorted; empty without a split or with ``X_val``). They did not train the network,
        so their predictions are out of sample: :meth:`tune_events` can use them.
    event_settings_ : dict
        The per-class event post-processing of :meth:`detect_events`, as plain data
        (:meth:`skattloc.postprocessing.EventPostprocessor.to_dict`); its ``"source"`` says
        where it came from: ``"weak"`` (calibrated in ``fit`` on the validation clips'
        tags), ``"strong"`` or ``"weak"`` again (:meth:`tune_events`), or ``"default"``
        (no validation data: threshold 0.5, a 0.1 s median filter, the clip gate at
        ``threshold``).
    feature_params_ : dict
        Only on a tagger loaded from a file saved with ``save(path, extractor=...)`` (as
        ``skattloc fit`` does): the :class:`~skattloc.LogMelExtractor` settings of its
        training features; ``LogMelExtractor(**feature_params_)`` computes the same.

    See Also
    --------
    skattloc.LogMelExtractor : raw audio or paths to log-mel frames.
    skattloc.metrics.eer_scorer : the equal-error-rate scorer for model selection.

    Examples
    --------
    >>> from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
    >>> audio, Y, events = make_weak_events(n_clips=40, n_classes=2, duration=1.0, random_state=0)
    >>> X = LogMelExtractor().fit_transform(audio)
    >>> X.shape
    (40, 61, 40)
    >>> tagger = AttLocTagger(rnn_hidden=16, rnn_layers=1, dense_units=32, max_epochs=2,
    ...                       random_state=0).fit(X, Y)
    >>> tagger.predict_proba(X).shape
    (40, 2)
    >>> tagger.localize(X).shape
    (40, 61, 2)
    """

    def __init__(
        self,
        pooling="att_loc",
        loc_activation="softmax",
        loc_denominator="att_loc",
        loc_background=True,
        loc_input="rnn",
        frontend="conv2d",
        conv_blocks=3,
        time_pool=2,
        n_filters=64,
        kernel_size=30,
        rnn_hidden=64,
        rnn_layers=2,
        dense_units=128,
        dropout=0.2,
        learning_rate=1e-3,
        weight_decay=0.0,
        batch_size=100,
        max_epochs=80,
        lr_schedule="constant",
        spec_augment=2,
        time_mask_width=10,
        freq_mask_width=6,
        mixup_alpha=0.2,
        ema_decay=0.99,
        validation_fraction="auto",
        early_stopping="auto",
        early_stopping_metric="val_eer",
        patience=15,
        threshold=0.5,
        localization="att_frame",
        calibrate_events=True,
        window_frames="auto",
        window_overlap=0.5,
        accelerator="auto",
        devices=1,
        precision="32-true",
        strategy="auto",
        callbacks=None,
        logger=False,
        trainer_kwargs=None,
        num_workers=0,
        warm_start=False,
        checkpoint_dir=None,
        resume=False,
        keep_checkpoints=True,
        random_state=None,
        verbose=False,
    ):
        self.pooling = pooling
        self.loc_activation = loc_activation
        self.loc_denominator = loc_denominator
        self.loc_background = loc_background
        self.loc_input = loc_input
        self.frontend = frontend
        self.conv_blocks = conv_blocks
        self.time_pool = time_pool
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.rnn_hidden = rnn_hidden
        self.rnn_layers = rnn_layers
        self.dense_units = dense_units
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.spec_augment = spec_augment
        self.time_mask_width = time_mask_width
        self.freq_mask_width = freq_mask_width
        self.mixup_alpha = mixup_alpha
        self.ema_decay = ema_decay
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.early_stopping_metric = early_stopping_metric
        self.patience = patience
        self.threshold = threshold
        self.localization = localization
        self.calibrate_events = calibrate_events
        self.window_frames = window_frames
        self.window_overlap = window_overlap
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.strategy = strategy
        self.callbacks = callbacks
        self.logger = logger
        self.trainer_kwargs = trainer_kwargs
        self.num_workers = num_workers
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.keep_checkpoints = keep_checkpoints
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn plumbing
    def __sklearn_tags__(self):
        tags = tagger_sklearn_tags(super().__sklearn_tags__())
        tags.non_deterministic = self.random_state is None
        return tags

    def _validate_params(self) -> None:
        """Check each parameter against its rule (:func:`_parameter_rules`), then the rules
        that tie parameters together."""
        from .model import check_architecture

        for name, check in _parameter_rules().items():
            if check is not None:
                check(getattr(self, name), name)
        # The architecture's own rules (kernel_size vs frontend, time_pool vs conv_blocks,
        # loc_background vs loc_activation); the feature count is checked with X in fit.
        check_architecture(
            n_mels=10**9, pooling=self.pooling, loc_activation=self.loc_activation,
            loc_denominator=self.loc_denominator, loc_background=self.loc_background, loc_input=self.loc_input,
            frontend=self.frontend, kernel_size=self.kernel_size, conv_blocks=self.conv_blocks,
            time_pool=self.time_pool,
        )
        if self.localization == "loc" and self.pooling != "att_loc":
            raise ValueError("localization='loc' returns z_loc(t), which only pooling='att_loc' has")
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir: the folder whose last.ckpt the fit continues from")

    # ------------------------------------------------------------------ targets
    def _encode(self, y, n_clips: int, classes=None):
        """``(Y float32 (n_clips, n_classes), classes)``; see :func:`skattloc.tags.encode_tags`."""
        Y, classes = encode_tags(y, classes, n_clips=n_clips, owner=type(self).__name__)
        return Y.astype(np.float32), classes

    def _warn_degenerate(self, Y: np.ndarray) -> None:
        pos = Y.sum(axis=0)
        # ndarray.tolist(): plain Python values whether classes_ holds ints, numpy strings or
        # (tag names from lists) Python str objects, which have no .item()
        never = np.asarray(self.classes_)[np.flatnonzero(pos == 0)].tolist()
        always = np.asarray(self.classes_)[np.flatnonzero(pos == len(Y))].tolist()
        if never:
            warnings.warn(
                f"classes {never} are never positive in Y: the model learns to always predict "
                f"0 for them, and their EER is undefined (NaN, left out of the macro mean)",
                UserWarning,
            )
        if always:
            warnings.warn(
                f"classes {always} are positive in every clip: the model learns to always "
                f"predict 1 for them, and their EER is undefined (NaN, left out of the macro mean)",
                UserWarning,
            )

    # ------------------------------------------------------------------ fit
    def _forget_fit(self) -> None:
        """Drop every fitted attribute (``classes_``, ``model_``...)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    def _build_model(self, n_features: int, n_classes: int) -> CGRNN:
        from .model import CGRNN

        return CGRNN(
            n_mels=n_features,
            n_classes=n_classes,
            n_filters=self.n_filters,
            kernel_size=self.kernel_size,
            rnn_hidden=self.rnn_hidden,
            rnn_layers=self.rnn_layers,
            dense_units=self.dense_units,
            dropout=self.dropout,
            pooling=self.pooling,
            loc_activation=self.loc_activation,
            loc_denominator=self.loc_denominator,
            loc_background=bool(self.loc_background),
            loc_input=self.loc_input,
            frontend=self.frontend,
            conv_blocks=self.conv_blocks,
            time_pool=self.time_pool,
        )

    def fit(self, X, y, *, X_val=None, y_val=None):
        """Train on clips with clip-level tags.

        Parameters
        ----------
        X : array of shape (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)
            Log-mel frames, time first (e.g. from :class:`~skattloc.LogMelExtractor`). For
            corpora larger than memory, a :class:`~skattloc.store.FeatureStore` (features
            cached on disk) or :class:`~skattloc.store.AudioFeatures` (computed on the fly
            from audio paths): clips are then read in the DataLoader (its ``num_workers``
            processes) and the feature statistics are streamed.
        y : array of shape (n_clips, n_classes) of 0/1, or a list of tag-name collections
            Clip-level tags ("Y"). With tag names, ``classes_`` holds the sorted names.
        X_val, y_val : like ``X`` and ``y``, optional
            Validation clips and their tags, given together. They replace the random
            ``validation_fraction`` split (every clip of ``X`` then trains). Use this for a
            validation set that shares no recording source with the training clips, e.g.
            one fold of a source-disjoint split: ``val_*`` metrics are logged each epoch,
            ``early_stopping`` selects the epoch on them, and the event post-processing is
            calibrated on them. The tags are encoded against the classes found in ``y``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Parameters out of range; ``X`` with the wrong dimensions, no clips, clips of
            zero frames, NaN/Inf, fewer features than ``kernel_size``; ``y`` with another
            row count, values other than 0/1, or (``warm_start``) other columns than
            ``classes_``; a ``resume`` checkpoint from another fit; Lightning settings
            (``accelerator``, ``devices``, ``precision``, ``strategy``, ``trainer_kwargs``
            keys) that the ``Trainer`` refuses, before any work.
        TypeError
            Non-numeric ``X`` (strings, objects).
        skattloc.module.NonFiniteLossError
            The training loss became NaN or Inf (checked each epoch); no model is kept
            (with ``warm_start`` the previous one is), and the last checkpoint is the last
            good epoch.
        KeyboardInterrupt
            Ctrl-C (SIGINT) during training, as anywhere in Python (Lightning alone would
            turn it into ``SystemExit(1)``). No model is kept (with ``warm_start`` the
            previous one is); ``checkpoint_dir/last.ckpt`` holds the last finished epoch,
            and ``resume=True`` continues from it.

        Warns
        -----
        UserWarning
            A class that is never, or always, positive in ``y``.
        """
        from . import data as _data
        from . import training as _training
        from .module import AttLocModule

        self._validate_params()
        _training.check_trainer_settings(self)  # bad Lightning settings fail before any work
        resume_from = _training.resume_checkpoint(self)
        warm = bool(self.warm_start) and hasattr(self, "model_") and resume_from is None
        if not warm:  # a fit that then fails leaves the estimator unfitted, never half old, half new
            self._forget_fit()
        X = _data.check_clips(
            X, n_features=self.n_features_in_ if warm else None, min_features=self._min_features()
        )
        n = _data.n_clips(X)
        Yb, self.classes_ = self._encode(y, n, getattr(self, "classes_", None) if self.warm_start else None)
        self._warn_degenerate(Yb)
        if (X_val is None) != (y_val is None):
            raise ValueError("give X_val and y_val together (validation clips and their tags), or neither")
        fraction = self._validation_fraction(n)
        if self.early_stopping is True and fraction == 0 and X_val is None:
            raise ValueError(
                "early_stopping=True needs a validation split: set validation_fraction > 0, e.g. 0.1, "
                "or pass X_val and y_val to fit"
            )
        if X_val is not None:
            X_val = _data.check_clips(X_val, n_features=_data.clip_feature_count(X), min_features=self._min_features(), name="X_val")
            Y_val, _ = self._encode(y_val, _data.n_clips(X_val), self.classes_)
        seed = _checks.check_random_seed(self.random_state)
        if resume_from is not None:  # the interrupted fit's seed: the same split and batches
            saved = _training.read_checkpoint_fingerprint(resume_from)
            seed = int(saved["seed"])
        rng = np.random.RandomState(seed)

        train_idx = np.arange(n)
        val_idx = None
        if fraction > 0 and X_val is None:  # X_val replaces the random split
            n_val = int(round(fraction * n))
            if n_val < 1 or n - n_val < 1:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves {n_val} validation and "
                    f"{n - n_val} training clips out of {n}; both must be at least 1 (n_samples={n}): "
                    f"give more clips, or set validation_fraction=0"
                )
            perm = rng.permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

        X_train = _data.subset(X, train_idx)  # X itself when there is no validation split
        with _training.seeded(seed, self.verbose):
            if warm:  # a copy: a fit that fails (e.g. NaN loss) leaves model_ as it was
                model = copy.deepcopy(self.model_).train()
            else:
                mean, scale = _data.feature_stats(X_train)
                model = self._build_model(len(mean), Yb.shape[1])
                model.set_input_stats(mean, scale)
            module = AttLocModule(
                model,
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
                lr_schedule=self.lr_schedule,
                spec_augment=int(self.spec_augment),
                time_mask_width=self.time_mask_width,
                freq_mask_width=self.freq_mask_width,
                mixup_alpha=self.mixup_alpha,
            )
            train_dl = _data.train_loader(X_train, Yb[train_idx], self.batch_size, seed, self.num_workers)
            val_dl = None
            if val_idx is not None:
                val_dl = _data.train_loader(
                    _data.subset(X, val_idx), Yb[val_idx], self.batch_size, seed, 0, shuffle=False
                )
            elif X_val is not None:
                val_dl = _data.train_loader(X_val, Y_val, self.batch_size, seed, 0, shuffle=False)
            history = _training.History()
            ckpt_callbacks, plugins, created_dir = [], [], False
            if self.checkpoint_dir is not None:
                fingerprint = _training.fit_fingerprint(self, seed, model.n_mels, self.classes_, Yb)
                if resume_from is not None:
                    _training.check_resume(resume_from, saved, fingerprint)
                created_dir = not os.path.isdir(self.checkpoint_dir)
                ckpt_callbacks, plugins = _training.checkpoint_callbacks(self, fingerprint, train_dl.generator)
            stopping = (self.early_stopping_metric, EARLY_STOPPING_METRICS[self.early_stopping_metric])
            trainer = _training.make_trainer(
                self, history, ckpt_callbacks, plugins, early_stopping=stopping if (self.early_stopping and val_dl is not None) else None
            )
            _training.place_small_data(trainer, [train_dl, val_dl])
            _training.run_fit(  # Ctrl-C raises KeyboardInterrupt (Lightning's is SystemExit(1))
                trainer, module, train_dataloaders=train_dl, val_dataloaders=val_dl,
                ckpt_path=None if resume_from is None else os.fspath(resume_from),
                weights_only=True if resume_from is not None else None,
            )
        if self.checkpoint_dir is not None:
            _training.clean_checkpoint_dir(self, created_dir)
        model = module.model.cpu().float().eval()  # float32 whatever the training precision ("bf16-true", "64-true")
        self.model_ = model
        self.n_features_in_ = model.n_mels
        n_frames = int(_data.clip_lengths(X).max())
        self.n_frames_train_ = max(n_frames, getattr(self, "n_frames_train_", 0)) if warm else n_frames
        self.feature_mean_ = model.input_mean.numpy().astype(np.float64)
        self.feature_scale_ = model.input_scale.numpy().astype(np.float64)
        self.history_ = (self.history_ if warm else []) + list(module.epoch_history)  # rank 0's under DDP
        self.n_epochs_ = len(self.history_)
        self.validation_indices_ = np.empty(0, dtype=np.int64) if val_idx is None else np.asarray(val_idx, dtype=np.int64)
        self.event_settings_ = _default_event_settings(self.classes_, self.threshold)
        if self.calibrate_events:
            if val_idx is not None:
                self._calibrate_events(_data.subset(X, val_idx), Yb[val_idx])
            elif X_val is not None:
                self._calibrate_events(X_val, Y_val)
        return self

    def _calibrate_events(self, X_val, Y_val) -> None:
        """Weak calibration of ``event_settings_`` on held-out clips and their 0/1 tags."""
        from .postprocessing import EventPostprocessor

        frames, clip = self._frame_scores(X_val)
        hop_s, offset_s = self._frame_timing(None, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class never/always tagged in a small split keeps the defaults
            pp = EventPostprocessor.calibrate(frames, clip, Y_val, [str(c) for c in self.classes_], hop_s, offset_s)
        self.event_settings_ = pp.to_dict()

    def _validation_fraction(self, n_clips: int) -> float:
        """The fraction of ``n_clips`` held out: ``validation_fraction``, with ``"auto"``
        resolved (0.1 from 100 clips on, else 0)."""
        if self.validation_fraction == "auto":
            return AUTO_VALIDATION_FRACTION if n_clips >= AUTO_VALIDATION_MIN_CLIPS else 0.0
        return float(self.validation_fraction)

    def _min_features(self) -> int:
        """Fewest features per frame the network takes: the paper's CNN needs a kernel's width."""
        return self.kernel_size if getattr(self, "frontend", "frame_cnn") == "frame_cnn" else 1

    # ------------------------------------------------------------------ inference
    def _device(self) -> torch.device:
        import torch

        if self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def _forward(self, X, frames=()):
        """Clip probabilities and per-clip frame quantities, in input order.

        ``frames`` names the frame quantities to return (see ``_frame_quantity``); the
        network runs once whatever their number. Returns ``(clip, {key: [per-clip arrays]}, X)``.
        """
        import torch

        from . import data as _data

        check_is_fitted(self, "model_")
        X = _data.check_clips(
            X, n_features=self.n_features_in_, min_features=self._min_features(), estimator=type(self).__name__
        )
        n = _data.n_clips(X)
        device = self._device()
        model = self.model_.to(device).eval()
        # Recordings longer than the window run window by window (skattloc.windowing).
        window, hop = _windowing.resolve_window(
            getattr(self, "window_frames", None), getattr(self, "window_overlap", 0.5), getattr(self, "n_frames_train_", None)
        )
        all_lengths = _data.clip_lengths(X)
        long_idx = np.flatnonzero(all_lengths > window) if window else np.empty(0, dtype=np.int64)
        short_idx = np.setdiff1d(np.arange(n), long_idx)
        loader = _data.inference_loader(_data.subset(X, short_idx), self.batch_size)  # X itself if none is long
        order = short_idx[loader.batch_sampler.order]
        clip = np.empty((n, len(self.classes_)), dtype=np.float32)
        per_clip = {key: [None] * n for key in frames}
        pos = 0
        try:
            with torch.inference_mode():
                for x, lengths, _ in loader:
                    out = model(x.to(device), lengths)  # lengths stay on the host (read there below)
                    idx = order[pos : pos + len(lengths)]
                    pos += len(lengths)
                    clip[idx] = out.clip.float().cpu().numpy()
                    for key in frames:
                        f = _frame_quantity(out, key).float().cpu().numpy()
                        for j, i in enumerate(idx):
                            per_clip[key][i] = f[j, : int(lengths[j])]
                for i in long_idx:
                    clip[i], stitched = _windowing.stitch_windows(
                        lambda x: _run_windows(model, x, device, frames),
                        _windowing.clip_reader(X, i), int(all_lengths[i]), window, hop, self.batch_size,
                    )
                    for key in frames:
                        per_clip[key][i] = stitched[key]
        finally:
            self.model_.cpu()
        bad = np.flatnonzero(~np.isfinite(clip).all(axis=1))
        if len(bad):  # never hand back NaN probabilities
            raise ValueError(
                f"the network's output is NaN or Inf for {len(bad)} clip(s) (first: index "
                f"{int(bad[0])}): their features are so far outside the range seen in fit "
                f"(feature_mean_, feature_scale_) that float32 overflows, or the weights are not "
                f"finite; expected log-mel frames like those seen in fit"
            )
        return clip, per_clip, X

    def predict_proba(self, X) -> np.ndarray:
        """Clip-level tag probabilities.

        Parameters
        ----------
        X : array of shape (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)

        Returns
        -------
        ndarray of shape (n_clips, n_classes), float32 in [0, 1]
            Column ``k`` is the probability of ``classes_[k]``: eq. (8) for ``"att_loc"``,
            the attention-weighted mean (eq. 5) for ``"att"``, the mean (eq. 2) for ``"mean"``.
            A recording longer than ``window_frames`` gets the maximum over its windows.
        """
        return self._forward(X)[0]

    def predict(self, X) -> np.ndarray:
        """Clip tags as a 0/1 indicator matrix: ``predict_proba(X) >= threshold``.

        Returns
        -------
        ndarray of shape (n_clips, n_classes), int
        """
        return (self.predict_proba(X) >= self.threshold).astype(int)

    def predict_tags(self, X) -> List[tuple]:
        """Clip tags as tuples of class names (``classes_`` entries), one per clip."""
        return decode_tags(self.predict(X), self.classes_)

    def localize(self, X):
        """Frame-level event activity: when each event happens in each clip.

        Parameters
        ----------
        X : array of shape (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)

        Returns
        -------
        ndarray of shape (n_clips, n_frames, n_classes), or list of (n_frames_i, n_classes)
            A 3-D array when ``X`` is a 3-D array, else a list with one array per clip (only
            its valid frames). Values in [0, 1]. Frame ``t`` of clip ``i`` for class ``k``
            depends on ``localization``:

            - ``"att_frame"`` (default): ``z_att(t) O(t)``, eq. (5)'s frame output without
              ``z_loc``, for ``"att"`` and ``"att_loc"`` (``O(t)`` for ``"mean"``). On
              domestic-mix it localized best within clips for every attention model
              (within-clip AUC 0.885 against 0.845 for the paper's ``O'(t)``, att_loc, 20
              epochs, 4-fold CV; ``docs/benchmarks.md``).
            - ``"paper"``: the frame output that the pooling averages into the clip output.
              ``"att_loc"``: ``O'(t) = z_att(t) O(t) z_loc(t)`` (eq. 7); ``"att"``:
              ``z_att(t) O(t)`` (eq. 5); ``"mean"``: ``O(t)``.
            - ``"frame"``: ``O(t)``, the per-frame sigmoid output, for every pooling.
            - ``"loc"``: ``z_loc(t)`` (eq. 6), the localization softmax over classes
              (``"att_loc"`` only); it sums to 1 over classes in every frame.

            Frame ``t`` is the log-mel frame ``t`` of the input; with the default
            :class:`~skattloc.LogMelExtractor` it is centred at ``t * 0.016 + 0.016`` s.
            Recordings of any length: those longer than ``window_frames`` run on
            overlapping windows, a batch at a time, and their frame outputs are stitched
            (see :mod:`skattloc.windowing`), with the same frame-to-time mapping.
        """
        _, per_clip, Xc = self._forward(X, frames=(self.localization,))
        per_clip = per_clip[self.localization]
        if isinstance(Xc, np.ndarray):
            return np.stack(per_clip)
        return per_clip

    def frame_outputs(self, X) -> List[dict]:
        """Every frame-level quantity of the network, per clip, from one forward pass.

        For analysis, plots and event detection: every :meth:`localize` output (whatever
        ``localization`` is set to), the attention and the clip probabilities at once.

        Parameters
        ----------
        X : array of shape (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)

        Returns
        -------
        list of dict, one per clip, with arrays over that clip's valid frames:
            ``"clip"``: the clip probabilities (:meth:`predict_proba`), shape (n_classes,);
            ``"frame"``: ``O(t)``, shape (n_frames_i, n_classes);
            ``"weighted"``, also under ``"paper"``: the paper's frame output (see
            :meth:`localize`), shape (n_frames_i, n_classes);
            ``"att_frame"``: ``z_att(t) O(t)`` (``O(t)`` for ``"mean"``), shape
            (n_frames_i, n_classes);
            ``"att"``: ``z_att(t)``, shape (n_frames_i,) (``"att"``/``"att_loc"`` only);
            ``"loc"``: ``z_loc(t)``, shape (n_frames_i, n_classes) (``"att_loc"`` only).

            So ``frame_outputs(X)[i][tagger.localization]`` is ``localize(X)[i]``.

        Examples
        --------
        >>> import numpy as np
        >>> from skattloc import AttLocTagger
        >>> rng = np.random.default_rng(0)
        >>> X, Y = rng.normal(size=(6, 5, 4)), np.eye(2, dtype=int)[np.arange(6) % 2]
        >>> tagger = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1,
        ...                       dense_units=4, max_epochs=1, random_state=0).fit(X, Y)
        >>> out = tagger.frame_outputs(X)
        >>> sorted(out[0]), out[0]["att"].shape, out[0]["loc"].shape
        (['att', 'att_frame', 'clip', 'frame', 'loc', 'paper', 'weighted'], (5,), (5, 2))
        >>> bool(np.allclose(out[2][tagger.localization], tagger.localize(X)[2]))
        True
        """
        check_is_fitted(self, "model_")
        keys = ["frame", "weighted", "att_frame"] + (["att"] if self.model_.att is not None else [])
        keys += ["loc"] if self.model_.loc is not None else []
        clip, per_clip, _ = self._forward(X, frames=keys)
        per_clip["paper"] = per_clip["weighted"]  # the name that localization uses
        return [{"clip": c, **{key: frames[i] for key, frames in per_clip.items()}} for i, c in enumerate(clip)]

    # ------------------------------------------------------------------ events
    def _frame_timing(self, hop_s, offset_s):
        """Frame hop and start of frame 0 in seconds: given, else from ``feature_params_``,
        else the default :class:`~skattloc.LogMelExtractor` (0.016 s, 0.008 s)."""
        from .features import LogMelExtractor

        fp = getattr(self, "feature_params_", None)
        ext = LogMelExtractor(**fp) if isinstance(fp, dict) else LogMelExtractor()
        return (ext.hop_seconds if hop_s is None else float(hop_s),
                ext.frame_offset_seconds if offset_s is None else float(offset_s))

    def _frame_scores(self, X):
        """``(list of localize() outputs per clip, clip probabilities)`` in one forward pass."""
        out = self.frame_outputs(X)
        return [o[self.localization] for o in out], np.stack([o["clip"] for o in out])

    def get_event_postprocessor(self, **overrides):
        """The :class:`~skattloc.postprocessing.EventPostprocessor` of ``event_settings_``.

        Parameters
        ----------
        **overrides
            Settings to replace for this object only (``threshold``, ``threshold_low``,
            ``median_filter``, ``min_gap``, ``min_duration``, ``clip_threshold``; a
            scalar, one value per class or a dict; ``clip_threshold=False`` turns the clip
            gate off).

        Returns
        -------
        EventPostprocessor
        """
        from .postprocessing import EventPostprocessor

        check_is_fitted(self, "model_")
        settings = getattr(self, "event_settings_", None) or _default_event_settings(self.classes_, self.threshold)
        pp = EventPostprocessor.from_dict(settings)
        return pp.replace(**overrides) if any(v is not None for v in overrides.values()) else pp

    def detect_events(self, X, filenames=None, clip_duration=None, hop_s=None, offset_s=None, **overrides):
        """Sound events: when each tag's event starts and ends, as a DCASE event list.

        The frame scores of :meth:`localize` and the clip probabilities of
        :meth:`predict_proba` (one forward pass) go through the per-class post-processing
        of ``event_settings_`` (median filter, hysteresis thresholds, gap bridging, minimum
        duration, clip gate; see :mod:`skattloc.postprocessing`).

        Parameters
        ----------
        X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)
            Log-mel frames.
        filenames : sequence of str, optional
            One name per clip for the event list (default ``clip_00000``...).
        clip_duration : float or sequence of float, optional
            Clip lengths in seconds (event times are clipped to them); default: what the
            frames cover (:meth:`LogMelExtractor.clip_duration
            <skattloc.LogMelExtractor.clip_duration>`).
        hop_s, offset_s : float, optional
            Frame hop and start of frame 0 in seconds; default: from ``feature_params_``,
            else the default extractor's 0.016 s and 0.008 s.
        **overrides
            Event settings for this call (see :meth:`get_event_postprocessor`).

        Returns
        -------
        list of tuple
            ``(filename, onset_s, offset_s, tag)``, sorted by file and onset; write it with
            :func:`skattloc.events.write_events_tsv`.

        Examples
        --------
        >>> from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
        >>> audio, Y, events = make_weak_events(n_clips=40, n_classes=2, duration=1.0, random_state=0)
        >>> X = LogMelExtractor().fit_transform(audio)
        >>> tagger = AttLocTagger(rnn_hidden=16, rnn_layers=1, dense_units=32, max_epochs=2,
        ...                       validation_fraction=0.25, random_state=0).fit(X, Y)
        >>> tagger.event_settings_["source"]
        'weak'
        >>> ev = tagger.detect_events(X[:5], filenames=[f"c{i}.wav" for i in range(5)])
        >>> all(0 <= on < off <= 1.0 for _, on, off, _ in ev)
        True
        """
        from .features import LogMelExtractor

        pp = self.get_event_postprocessor(**overrides)
        frames, clip = self._frame_scores(X)
        hop_s, offset_s = self._frame_timing(hop_s, offset_s)
        if clip_duration is None:
            fp = getattr(self, "feature_params_", None)
            ext = LogMelExtractor(**fp) if isinstance(fp, dict) else LogMelExtractor()
            clip_duration = [ext.clip_duration(len(f)) for f in frames]
        return pp.decode(frames, clip, filenames, hop_s, offset_s, clip_duration)

    def event_scores(self, X, hop_s=None):
        """Threshold-free event scores per frame: the :meth:`localize` output, median-filtered
        per class with the ``event_settings_`` filter lengths, times the clip probability.

        The scores :meth:`detect_events` thresholds, with the clip gate made soft: what
        threshold-free event metrics such as PSDS (:func:`skattloc.metrics.psds`) should be
        given.

        Parameters
        ----------
        X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)
        hop_s : float, optional
            Frame hop in seconds; default as for :meth:`detect_events`.

        Returns
        -------
        ndarray (n_clips, n_frames, n_classes) for a 3-D ``X``, else a list of
        (n_frames_i, n_classes) arrays; values in [0, 1].
        """
        frames, clip = self._frame_scores(X)
        hop_s, _ = self._frame_timing(hop_s, None)
        out = self.get_event_postprocessor().scores(frames, clip, hop_s)
        lengths = {len(f) for f in out}
        return np.stack(out) if len(lengths) == 1 and getattr(X, "ndim", 0) == 3 else out

    def tune_events(self, X, y=None, *, reference=None, filenames=None, clip_duration=None, hop_s=None,
                    offset_s=None, verbose=False, **tune_kwargs):
        """Set ``event_settings_`` from held-out clips: their clip tags, or their event times.

        Give clips the network did not train on (e.g. ``X[tagger.validation_indices_]``
        or a separate validation set).

        - ``y`` (clip tags only): weak calibration,
          :meth:`EventPostprocessor.calibrate <skattloc.postprocessing.EventPostprocessor.calibrate>`.
        - ``reference`` (strong labels: events ``(filename, onset_s, offset_s, tag)``):
          per class, the settings with the best event-based F1 on these clips,
          :meth:`EventPostprocessor.tune <skattloc.postprocessing.EventPostprocessor.tune>`
          (starting from ``event_settings_``).

        Parameters
        ----------
        X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)
        y : 0/1 matrix (n_clips, n_classes) or tag-name collections, optional
        reference : list of tuple, optional
            Exactly one of ``y`` and ``reference``.
        filenames : sequence of str
            With ``reference``: the name of each clip of ``X``, as used in ``reference``.
        clip_duration, hop_s, offset_s : optional
            As for :meth:`detect_events`.
        verbose : bool, default=False
            A progress bar over classes while tuning.
        **tune_kwargs
            Passed to ``EventPostprocessor.tune`` (``t_collar``, ``grids``, ...) or
            ``calibrate``.

        Returns
        -------
        self
            ``detect_events``, ``save`` and ``skattloc localize`` then use the new settings.
        """
        from .features import LogMelExtractor
        from .postprocessing import EventPostprocessor

        check_is_fitted(self, "model_")
        if (y is None) == (reference is None):
            raise ValueError("give exactly one of y (clip tags: weak calibration) and reference (event times: strong tuning)")
        frames, clip = self._frame_scores(X)
        hop_s, offset_s = self._frame_timing(hop_s, offset_s)
        classes = [str(c) for c in self.classes_]
        if y is not None:
            Y, _ = self._encode(y, len(frames), self.classes_)
            pp = EventPostprocessor.calibrate(frames, clip, Y.astype(int), classes, hop_s, offset_s, **tune_kwargs)
        else:
            if filenames is None:
                raise ValueError("tune_events(reference=...) needs filenames: the name of each clip of X as used in reference")
            if clip_duration is None:
                fp = getattr(self, "feature_params_", None)
                ext = LogMelExtractor(**fp) if isinstance(fp, dict) else LogMelExtractor()
                clip_duration = [ext.clip_duration(len(f)) for f in frames]
            reference = [(e[0], float(e[1]), float(e[2]), str(e[3])) for e in reference]
            pp = EventPostprocessor.tune(frames, clip, reference, classes, filenames, hop_s, offset_s, clip_duration,
                                         start=self.get_event_postprocessor(), verbose=verbose, **tune_kwargs)
        self.event_settings_ = pp.to_dict()
        return self

    def score(self, X, y, sample_weight=None) -> float:
        """Negative macro equal error rate of :meth:`predict_proba` (higher is better).

        The same value as :data:`skattloc.metrics.eer_scorer`.
        """
        from .metrics import equal_error_rate

        if sample_weight is not None:
            raise ValueError("score does not support sample_weight; the EER is unweighted")
        check_is_fitted(self, "model_")
        proba = self.predict_proba(X)
        Yb, _ = self._encode(y, len(proba), self.classes_)
        return -float(equal_error_rate(Yb, proba, average="macro"))

    # ------------------------------------------------------------------ export
    def to_onnx(self, path, opset_version=None, verify="auto"):
        """Export the network as ONNX; see :func:`skattloc.export.to_onnx`.

        Input: raw log-mel frames ``(batch, n_frames, n_mels)``; outputs: clip
        probabilities and the frame-level ``O(t)``, paper output, ``z_att``, ``z_loc``.
        """
        from .export import to_onnx

        return to_onnx(self, path, opset_version=opset_version, verify=verify)

    def to_torchscript(self, path):
        """Export the network as TorchScript; see :func:`skattloc.export.to_torchscript`."""
        from .export import to_torchscript

        return to_torchscript(self, path)

    # ------------------------------------------------------------------ safe save / load
    def save(self, path, extractor=None):
        """Save the fitted tagger to a file that holds only tensors and plain data.

        Unlike pickle or joblib, loading the file with :meth:`load` cannot run code. The
        file records the skattloc version, the format version and ``classes_``; see
        :mod:`skattloc.persistence` for the format. Parameters that are not plain data
        (callbacks, logger objects...) are left out with a warning.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file, written atomically (e.g. ``"tagger.skattloc"``).
        extractor : LogMelExtractor, optional
            The feature extractor of the training clips. Its settings
            (:meth:`~skattloc.LogMelExtractor.feature_params`: sample rate, mel bands, FFT
            and hop lengths...) are recorded, and the loaded tagger has them as
            ``feature_params_``: ``LogMelExtractor(**tagger.feature_params_)`` computes the
            features the tagger expects. ``skattloc fit`` records them this way.

        Returns
        -------
        pathlib.Path
            The path written.

        Examples
        --------
        >>> import os, tempfile, numpy as np
        >>> from skattloc import AttLocTagger, LogMelExtractor
        >>> rng = np.random.default_rng(0)
        >>> X, Y = rng.normal(size=(8, 5, 6)), np.eye(2, dtype=int)[np.arange(8) % 2]
        >>> tagger = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1,
        ...                       dense_units=4, max_epochs=1, random_state=0).fit(X, Y)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = tagger.save(os.path.join(d, "tagger.skattloc"), extractor=LogMelExtractor(n_mels=6))
        ...     loaded = AttLocTagger.load(path)
        >>> bool((loaded.predict_proba(X) == tagger.predict_proba(X)).all())
        True
        >>> loaded.feature_params_["n_mels"]
        6
        """
        from . import persistence

        return persistence.save_tagger(self, path, extractor=extractor)

    @classmethod
    def load(cls, path):
        """Load a tagger written by :meth:`save`, on the CPU, without running code from the file.

        Read with ``torch.load(weights_only=True, map_location="cpu")``, so a model saved
        on a GPU machine loads on a CPU-only one.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        AttLocTagger
            A fitted tagger (network on the CPU, in eval mode).

        Raises
        ------
        skattloc.persistence.ModelFileError
            A ValueError: the file holds pickled Python objects (refused without running
            them), is not a skattloc model file, has another format version, or is
            inconsistent.
        FileNotFoundError
            If ``path`` does not exist.
        """
        from . import persistence

        def build(params, n_features, n_classes):
            # A file written before a parameter existed was fitted with the behaviour that
            # parameter's old value stands for, whatever today's default.
            estimator = cls(**{**_PARAMS_BEFORE_THEY_EXISTED, **params})
            return estimator, estimator._build_model(n_features, n_classes)

        return persistence.restore_tagger(path, build, cls().get_params(deep=False))


# Parameters added after the first model files were written, with the value that gives
# those files' behaviour (skattloc 0.1: the paper's network, no weight averaging, no
# event calibration). AttLocTagger.load fills them in when a file lacks them.
_PARAMS_BEFORE_THEY_EXISTED = {
    "frontend": "frame_cnn", "conv_blocks": 3, "time_pool": 1, "loc_background": False, "loc_input": "cnn",
    "ema_decay": 0.0, "early_stopping_metric": "val_loss", "calibrate_events": False,
}


def _default_event_settings(classes, clip_threshold=0.5) -> dict:
    """Event settings without calibration data (what ``skattloc localize`` did before they
    were calibrated): frame threshold 0.5, a 0.1 s median filter, the clip gate at the
    tagger's ``threshold``."""
    from .postprocessing import EventPostprocessor

    pp = EventPostprocessor([str(c) for c in classes], threshold=0.5, median_filter=0.1, clip_threshold=clip_threshold)
    pp.source = "default"
    return pp.to_dict()


def _run_windows(model, x: np.ndarray, device, keys):
    """Clip and frame outputs of full-length windows ``x`` (no padding, so no lengths)."""
    import torch

    out = model(torch.from_numpy(x).to(device))
    return out.clip.float().cpu().numpy(), {k: _frame_quantity(out, k).float().cpu().numpy() for k in keys}


def _frame_quantity(out, key: str) -> torch.Tensor:
    if key == "paper" or key == "weighted":
        return out.weighted_frame()
    if key == "frame":
        return out.frame
    if key == "att":
        return out.att
    if key == "loc":
        return out.loc
    if key == "att_frame":
        return out.frame if out.att is None else out.att.unsqueeze(-1) * out.frame
    raise ValueError(key)
