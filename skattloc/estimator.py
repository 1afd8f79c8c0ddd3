"""``AttLocTagger``: the scikit-learn estimator, where sklearn meets Lightning."""
from __future__ import annotations

import contextlib
import copy
import logging
import numbers
import os
import warnings
from typing import List

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.utils.validation import check_is_fitted

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.callbacks.weight_averaging import EMAWeightAveraging
from lightning.pytorch.loggers import Logger
from lightning.fabric.utilities.exceptions import MisconfigurationException

from . import data as _data
from . import persistence as _persist
from . import windowing as _windowing
from .model import CGRNN, check_architecture
from .module import LR_SCHEDULES, AttLocModule

LOCALIZATIONS = ("att_frame", "paper", "frame", "loc")
# Early stopping and best-epoch selection: the metric logged on the validation data, and
# whether lower is better.
EARLY_STOPPING_METRICS = {"val_loss": "min", "val_eer": "min", "val_map": "max", "val_auroc": "max"}
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


class AttLocTagger(ClassifierMixin, BaseEstimator):
    """Weakly supervised audio tagger and event localizer (Xu et al., Interspeech 2017).

    A convolutional gated recurrent network (CGRNN) with an attention and a localization
    head, trained on clip-level tags only, that predicts clip tags and, per frame, when each
    tagged event happens. Training runs through a Lightning ``Trainer`` (CPU, GPU,
    mixed precision, several devices).

    Parameters
    ----------
    pooling : {"att_loc", "att", "mean"}, default="att_loc"
        How frame outputs ``O(t)`` become the clip output. ``"att_loc"``: the paper's full
        model, eq. (3)-(8). ``"att"``: attention only, the ``z_att``-weighted mean of
        ``O(t)`` (eq. 3-5). ``"mean"``: the CGRNN baseline, the plain mean of ``O(t)`` (eq. 2).
    loc_activation : {"softmax", "sigmoid"}, default="softmax"
        Normalization of the localization output ``z_loc(t)`` (``pooling="att_loc"`` only).
        ``"softmax"`` over classes is the paper's eq. (6). ``"sigmoid"`` is a per-class
        variant: each class weighs the frames on its own, so one class cannot take every
        frame's ``z_loc`` (the softmax's collapse); eq. (7)-(8) are unchanged, since eq. (8)
        normalizes each class over time either way.
    loc_denominator : {"loc", "att_loc"}, default="loc"
        Denominator of eq. (8) (``pooling="att_loc"`` only): the paper's ``sum_t z_loc(t)``,
        or ``sum_t z_att(t) z_loc(t)``, which makes the clip output a true
        ``z_att z_loc``-weighted mean of ``O(t)`` instead of one capped by ``z_att``.
    n_filters : int, default=128
        CNN filters, each applied to every frame over frequency.
    kernel_size : int, default=30
        CNN kernel length in mel bins (valid convolution; at most the number of mel bands).
    rnn_hidden : int, default=128
        GRU units per direction.
    rnn_layers : int, default=3
        Bidirectional GRU layers.
    dense_units : int, default=500
        Units of the ReLU layer after the GRUs.
    dropout : float, default=0.2
        Dropout rate after the ReLU layer, in [0, 1).
    learning_rate : float, default=1e-3
        Adam's step size.
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    batch_size : int, default=100
        Clips per training step (the paper's value). Also the inference batch size.
    max_epochs : int, default=20
        Passes over the training data.
    lr_schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule. ``"constant"`` is the paper's Adam at ``learning_rate``;
        ``"cosine"`` anneals it to 0 over all training steps (updated every step).
    spec_augment : int, default=0
        Time masks and frequency masks (SpecAugment, without time warping) applied to each
        training clip's log-mel frames; masked cells are set to the feature mean. 0 is off
        (the paper). Validation, ``predict_proba`` and ``localize`` never see masks.
    time_mask_width : int, default=10
        Longest time mask, in frames (10 frames = 0.16 s with the default extractor).
    freq_mask_width : int, default=6
        Widest frequency mask, in mel bands.
    mixup_alpha : float, default=0.0
        Mixup of training clips: each clip's frames and tags become the same convex
        combination ``lam * a + (1 - lam) * b`` with another clip of the batch,
        ``lam ~ Beta(mixup_alpha, mixup_alpha)``. 0.0 is off (the paper).
    validation_fraction : float, default=0.0
        Fraction of the training clips held out to log ``val_loss``, ``val_auroc`` and
        ``val_map`` each epoch (in ``history_``). 0 disables validation.
    early_stopping : bool, default=False
        Stop when ``val_loss`` has not improved for ``patience`` epochs and restore the best
        epoch's weights. Needs ``validation_fraction > 0``.
    patience : int, default=5
        Epochs without improvement before early stopping.
    threshold : float, default=0.5
        Decision threshold of :meth:`predict` on the clip probabilities.
    localization : {"att_frame", "paper", "frame", "loc"}, default="att_frame"
        What :meth:`localize` returns per frame; see its documentation. The default,
        ``z_att(t) O(t)``, localized best within clips on domestic-mix (4-fold CV,
        ``docs/benchmarks.md``); ``"paper"`` is the paper's eq. (7) output.
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
        ``val_auroc``, ``val_map``.
    n_epochs_ : int
        Epochs actually trained (fewer than ``max_epochs`` after early stopping).

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
        loc_denominator="loc",
        loc_background=False,
        loc_input="cnn",
        frontend="frame_cnn",
        conv_blocks=3,
        time_pool=1,
        n_filters=128,
        kernel_size=30,
        rnn_hidden=128,
        rnn_layers=3,
        dense_units=500,
        dropout=0.2,
        learning_rate=1e-3,
        weight_decay=0.0,
        batch_size=100,
        max_epochs=20,
        lr_schedule="constant",
        spec_augment=0,
        time_mask_width=10,
        freq_mask_width=6,
        mixup_alpha=0.0,
        ema_decay=0.0,
        validation_fraction=0.0,
        early_stopping=False,
        early_stopping_metric="val_loss",
        patience=5,
        threshold=0.5,
        localization="att_frame",
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
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = self.random_state is None
        return tags

    def _validate_params(self) -> None:
        for name in ("n_filters", "kernel_size", "rnn_hidden", "rnn_layers", "dense_units", "batch_size", "max_epochs", "patience", "conv_blocks", "time_pool"):
            _data.check_positive_int(getattr(self, name), name)
        # The architecture's own rules (allowed values, kernel_size vs frontend, time_pool vs
        # conv_blocks); the feature count is checked against kernel_size with X in fit.
        check_architecture(
            n_mels=10**9, pooling=self.pooling, loc_activation=self.loc_activation,
            loc_denominator=self.loc_denominator, loc_background=self.loc_background, loc_input=self.loc_input,
            frontend=self.frontend, kernel_size=self.kernel_size, conv_blocks=self.conv_blocks,
            time_pool=self.time_pool,
        )
        if self.early_stopping_metric not in EARLY_STOPPING_METRICS:
            raise ValueError(f"early_stopping_metric must be one of {tuple(EARLY_STOPPING_METRICS)}, got {self.early_stopping_metric!r}")
        ema = self.ema_decay
        if not isinstance(ema, numbers.Real) or isinstance(ema, bool) or not np.isfinite(ema) or not 0 <= ema < 1:
            raise ValueError(f"ema_decay must be a number in [0, 1) (0 turns weight averaging off), got {ema!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("spec_augment", "time_mask_width", "freq_mask_width"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{name} must be an int >= 0 (False counts as 0), got {v!r}")
        if (
            not isinstance(self.mixup_alpha, numbers.Real)
            or isinstance(self.mixup_alpha, bool)
            or not np.isfinite(self.mixup_alpha)
            or self.mixup_alpha < 0
        ):
            raise ValueError(f"mixup_alpha must be a finite number >= 0 (0 disables mixup), got {self.mixup_alpha!r}")
        if self.localization not in LOCALIZATIONS:
            raise ValueError(f"localization must be one of {LOCALIZATIONS}, got {self.localization!r}")
        if self.localization == "loc" and self.pooling != "att_loc":
            raise ValueError("localization='loc' returns z_loc(t), which only pooling='att_loc' has")
        _windowing.check_window_params(self.window_frames, self.window_overlap)
        checks = {
            "dropout": (0.0, 1.0, True, False),
            "validation_fraction": (0.0, 1.0, True, False),
            "threshold": (0.0, 1.0, True, True),
        }
        for name, (lo, hi, lo_closed, hi_closed) in checks.items():
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)
            ok = ok and (v >= lo if lo_closed else v > lo) and (v <= hi if hi_closed else v < hi)
            if not ok:
                interval = f"{'[' if lo_closed else '('}{lo}, {hi}{']' if hi_closed else ')'}"
                raise ValueError(f"{name} must be a number in {interval}, got {v!r}")
        for name in ("learning_rate",):
            v = getattr(self, name)
            # Above 10, Adam's bias-corrected step overflows float32 for large values
            # (RuntimeError inside torch) long before it is a sensible step size.
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not np.isfinite(v) or not 0 < v <= 10:
                raise ValueError(f"{name} must be a finite number in (0, 10] (Adam's step size; the paper uses 1e-3), got {v!r}")
        wd = self.weight_decay
        if not isinstance(wd, numbers.Real) or isinstance(wd, bool) or not np.isfinite(wd) or wd < 0:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {wd!r}")
        if not isinstance(self.num_workers, numbers.Integral) or isinstance(self.num_workers, bool) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {self.num_workers!r}")
        cd = self.checkpoint_dir
        if cd is not None and (not isinstance(cd, (str, os.PathLike)) or os.fspath(cd) == ""):
            raise ValueError(f"checkpoint_dir must be None or a folder path (str or os.PathLike), got {cd!r}")
        for name in ("resume", "keep_checkpoints"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.resume and cd is None:
            raise ValueError("resume=True needs checkpoint_dir: the folder whose last.ckpt the fit continues from")
        if self.callbacks is not None and (
            not isinstance(self.callbacks, (list, tuple)) or not all(isinstance(c, Callback) for c in self.callbacks)
        ):
            raise ValueError(f"callbacks must be None or a list of lightning.pytorch Callback objects, got {self.callbacks!r}")
        loggers = self.logger if isinstance(self.logger, (list, tuple)) else [self.logger]
        if not (isinstance(self.logger, bool) or all(isinstance(lg, Logger) for lg in loggers)):
            raise ValueError(f"logger must be True, False or a lightning.pytorch logger (or a list of them), got {self.logger!r}")
        if self.trainer_kwargs is not None and not isinstance(self.trainer_kwargs, dict):
            raise ValueError(f"trainer_kwargs must be a dict or None, got {type(self.trainer_kwargs).__name__}")

    # ------------------------------------------------------------------ targets
    def _encode_targets(self, Y, n: int, fitting: bool) -> np.ndarray:
        if Y is None:
            raise ValueError("AttLocTagger requires y to be passed, but the target y is None; give clip tags Y: an (n_clips, n_classes) 0/1 matrix or one collection of tag names per clip")
        if hasattr(Y, "toarray"):
            Y = Y.toarray()
        if isinstance(Y, torch.Tensor):
            Y = Y.detach().cpu().numpy()
        if not isinstance(Y, (np.ndarray, list, tuple)) and hasattr(Y, "__array__"):
            Y = np.asarray(Y)
        as_names = not isinstance(Y, np.ndarray) and len(Y) > 0 and not _is_number_row(Y[0])
        if isinstance(Y, np.ndarray) and Y.dtype == object:
            as_names = True
        if len(Y) != n:
            raise ValueError(f"X has {n} clips but Y has {len(Y)} rows; they must match")
        if as_names:
            for i, tags in enumerate(Y):
                if isinstance(tags, (str, bytes)):
                    raise ValueError(
                        f"Y[{i}] is the string {tags!r}; give each clip's tags as a list, tuple or "
                        f"set of tag names (e.g. ['b', 'p']), or an (n_clips, n_classes) 0/1 matrix"
                    )
            if fitting and not (self.warm_start and hasattr(self, "classes_")):
                self._mlb = MultiLabelBinarizer()
                Ybin = self._mlb.fit_transform(Y)
                if Ybin.shape[1] == 0:
                    raise ValueError("Y has no tag in any clip; at least 1 class is required (each clip's tags as a list of names, e.g. [['dog'], []])")
                self.classes_ = self._mlb.classes_
            else:
                self._check_names_known(Y)
                Ybin = self._binarizer().transform(Y)
            return Ybin.astype(np.float32)
        Ybin = np.asarray(Y)
        if Ybin.ndim == 1:
            raise ValueError(
                f"Y must be 2-D (n_clips, n_classes), got a 1-D array of shape {Ybin.shape}; "
                f"for one tag use Y.reshape(-1, 1)"
            )
        if Ybin.ndim != 2:
            raise ValueError(f"Y must be a 2-D (n_clips, n_classes) 0/1 matrix, got shape {Ybin.shape}")
        if Ybin.shape[1] == 0:
            raise ValueError(f"Y has 0 columns (shape {Ybin.shape}); at least 1 class is required: an (n_clips, n_classes) 0/1 matrix with n_classes >= 1")
        if not (np.issubdtype(Ybin.dtype, np.number) or Ybin.dtype == bool):
            raise ValueError(f"Y must hold 0/1 values, got dtype {Ybin.dtype}")
        bad = ~np.isin(Ybin, (0, 1))
        if bad.any():
            vals = np.unique(Ybin[bad])[:5]
            kind = "continuous" if np.any(vals != np.round(vals)) else "multiclass"
            raise ValueError(
                f"Unknown label type: {kind}. Y must be a 0/1 indicator matrix (n_clips, n_classes); "
                f"found other values such as {vals.tolist()}"
            )
        if fitting and not (self.warm_start and hasattr(self, "classes_")):
            self.classes_ = np.arange(Ybin.shape[1])
            self._mlb = None
        elif Ybin.shape[1] != len(self.classes_):
            raise ValueError(
                f"Y has {Ybin.shape[1]} columns but the model has {len(self.classes_)} classes "
                f"(classes_={np.asarray(self.classes_).tolist()}); the columns must match classes_"
            )
        return Ybin.astype(np.float32)

    def _binarizer(self) -> MultiLabelBinarizer:
        if getattr(self, "_mlb", None) is None:
            mlb = MultiLabelBinarizer(classes=list(self.classes_))
            mlb.fit([])
            return mlb
        return self._mlb

    def _check_names_known(self, Y) -> None:
        known = set(self.classes_.tolist())
        unknown = sorted({t for tags in Y for t in tags} - known, key=str)
        if unknown:
            raise ValueError(f"Y has tags {unknown} that are not in classes_={np.asarray(self.classes_).tolist()}")

    def _warn_degenerate(self, Y: np.ndarray) -> None:
        pos = Y.sum(axis=0)
        never = [np.asarray(self.classes_)[j].item() for j in np.flatnonzero(pos == 0)]
        always = [np.asarray(self.classes_)[j].item() for j in np.flatnonzero(pos == len(Y))]
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
        self.__dict__.pop("_mlb", None)

    def _build_model(self, n_features: int, n_classes: int) -> CGRNN:
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
            Validation clips and their tags, given together, instead of a random
            ``validation_fraction`` of ``X`` (the two cannot be combined). Use this for a
            validation set that shares no recording source with the training clips, e.g.
            one fold of a source-disjoint split: ``val_*`` metrics are logged each epoch,
            and ``early_stopping`` selects the epoch on them. The tags are encoded against
            the classes found in ``y``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Parameters out of range; ``X`` with the wrong dimensions, no clips, clips of
            zero frames, NaN/Inf, fewer features than ``kernel_size``; ``y`` with another
            row count, values other than 0/1, or (``warm_start``) other columns than
            ``classes_``; a ``resume`` checkpoint from another fit.
        TypeError
            Non-numeric ``X`` (strings, objects).
        skattloc.module.NonFiniteLossError
            The training loss became NaN or Inf (checked each epoch); no model is kept
            (with ``warm_start`` the previous one is), and the last checkpoint is the last
            good epoch.

        Warns
        -----
        UserWarning
            A class that is never, or always, positive in ``y``.
        """
        self._validate_params()
        resume_from = _persist.resume_checkpoint(self)
        warm = bool(self.warm_start) and hasattr(self, "model_") and resume_from is None
        if not warm:  # a fit that then fails leaves the estimator unfitted, never half old, half new
            self._forget_fit()
        X = _data.check_clips(
            X, n_features=self.n_features_in_ if warm else None, min_features=self._min_features()
        )
        n = _data.n_clips(X)
        Yb = self._encode_targets(y, n, fitting=True)
        self._warn_degenerate(Yb)
        if (X_val is None) != (y_val is None):
            raise ValueError("give X_val and y_val together (validation clips and their tags), or neither")
        if X_val is not None and self.validation_fraction > 0:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} and X_val/y_val both ask for validation "
                f"data; set validation_fraction=0 to validate on X_val, or drop X_val"
            )
        if self.early_stopping and self.validation_fraction == 0 and X_val is None:
            raise ValueError(
                "early_stopping=True needs a validation split: set validation_fraction > 0, e.g. 0.1, "
                "or pass X_val and y_val to fit"
            )
        if X_val is not None:
            X_val = _data.check_clips(X_val, n_features=_data.clip_feature_count(X), min_features=self._min_features(), name="X_val")
            Y_val = self._encode_targets(y_val, _data.n_clips(X_val), fitting=False)
        seed = _data.check_random_seed(self.random_state)
        if resume_from is not None:  # the interrupted fit's seed: the same split and batches
            saved = _persist.read_checkpoint_fingerprint(resume_from)
            seed = int(saved["seed"])
        rng = np.random.RandomState(seed)

        train_idx = np.arange(n)
        val_idx = None
        if self.validation_fraction > 0:
            n_val = int(round(self.validation_fraction * n))
            if n_val < 1 or n - n_val < 1:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves {n_val} validation and "
                    f"{n - n_val} training clips out of {n}; both must be at least 1"
                )
            perm = rng.permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        X_train = _data.subset(X, train_idx)  # X itself when there is no validation split
        with torch.random.fork_rng(devices=devices), _quiet(self.verbose):
            torch.manual_seed(seed)
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
            history = _History()
            ckpt_callbacks, plugins, created_dir = [], [], False
            if self.checkpoint_dir is not None:
                fingerprint = _persist.fit_fingerprint(self, seed, model.n_mels, self.classes_, Yb)
                if resume_from is not None:
                    _persist.check_resume(resume_from, saved, fingerprint)
                created_dir = not os.path.isdir(self.checkpoint_dir)
                ckpt_callbacks, plugins = _persist.training_callbacks(self, fingerprint, train_dl.generator)
            trainer = self._make_trainer(history, ckpt_callbacks, plugins)
            root = trainer.strategy.root_device
            if root.type == "cuda" and trainer.world_size == 1:
                # One GPU: small in-memory data live on it for the fit (docs/performance.md).
                _data.move_to_device_if_small([train_dl, val_dl], root, torch.cuda.mem_get_info(root)[0])
            trainer.fit(
                module, train_dataloaders=train_dl, val_dataloaders=val_dl,
                ckpt_path=None if resume_from is None else os.fspath(resume_from),
                weights_only=True if resume_from is not None else None,
            )
        if self.checkpoint_dir is not None:
            _persist.clean_checkpoint_dir(self, created_dir)
        model = module.model.cpu().float().eval()  # float32 whatever the training precision ("bf16-true", "64-true")
        self.model_ = model
        self.n_features_in_ = model.n_mels
        n_frames = int(_data.clip_lengths(X).max())
        self.n_frames_train_ = max(n_frames, getattr(self, "n_frames_train_", 0)) if warm else n_frames
        self.feature_mean_ = model.input_mean.numpy().astype(np.float64)
        self.feature_scale_ = model.input_scale.numpy().astype(np.float64)
        self.history_ = (self.history_ if warm else []) + list(module.epoch_history)  # rank 0's under DDP
        self.n_epochs_ = len(self.history_)
        return self

    def _min_features(self) -> int:
        """Fewest features per frame the network takes: the paper's CNN needs a kernel's width."""
        return self.kernel_size if getattr(self, "frontend", "frame_cnn") == "frame_cnn" else 1

    def _make_trainer(self, history, checkpoint_callbacks=(), plugins=()):
        callbacks = [history, *checkpoint_callbacks]
        if self.early_stopping:
            metric = self.early_stopping_metric
            mode = EARLY_STOPPING_METRICS[metric]
            # _BestWeights before the weight averaging: at the end of a validation epoch it
            # must see the averaged weights, which the averaging swaps out right after.
            callbacks += [EarlyStopping(monitor=metric, patience=self.patience, mode=mode), _BestWeights(metric, mode)]
        if self.ema_decay > 0:
            callbacks.append(EMAWeightAveraging(decay=float(self.ema_decay)))
        callbacks += list(self.callbacks or [])
        kwargs = dict(
            accelerator=self.accelerator,
            devices=self.devices,
            precision=self.precision,
            strategy=self.strategy,
            max_epochs=self.max_epochs,
            callbacks=callbacks,
            logger=self.logger,
            enable_progress_bar=bool(self.verbose),
            enable_model_summary=bool(self.verbose),
            enable_checkpointing=bool(checkpoint_callbacks),
            num_sanity_val_steps=0,
        )
        if self.checkpoint_dir is not None:  # Lightning writes nowhere else (logs included)
            kwargs.update(default_root_dir=os.fspath(self.checkpoint_dir), plugins=list(plugins))
        kwargs.update(self.trainer_kwargs or {})
        try:
            return Trainer(**kwargs)
        except MisconfigurationException as exc:  # an sklearn user expects a ValueError
            raise ValueError(
                f"invalid Lightning setting (accelerator={self.accelerator!r}, devices={self.devices!r}, "
                f"precision={self.precision!r}, strategy={self.strategy!r}, trainer_kwargs): {exc}"
            ) from exc

    # ------------------------------------------------------------------ inference
    def _device(self) -> torch.device:
        if self.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def _forward(self, X, frames=()):
        """Clip probabilities and per-clip frame quantities, in input order.

        ``frames`` names the frame quantities to return (see ``_frame_quantity``); the
        network runs once whatever their number. Returns ``(clip, {key: [per-clip arrays]}, X)``.
        """
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
        return [tuple(self.classes_[np.flatnonzero(row)].tolist()) for row in self.predict(X)]

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
        """Every frame-level quantity of the network, per clip, for analysis and plots.

        Returns
        -------
        list of dict, one per clip, with arrays over that clip's valid frames:
            ``"frame"``: ``O(t)``, shape (n_frames_i, n_classes);
            ``"att"``: ``z_att(t)``, shape (n_frames_i,) (``"att"``/``"att_loc"`` only);
            ``"loc"``: ``z_loc(t)``, shape (n_frames_i, n_classes) (``"att_loc"`` only);
            ``"weighted"``: the paper's frame output (see :meth:`localize`);
            ``"clip"``: the clip probabilities, shape (n_classes,).
        """
        keys = ["frame", "weighted"] + (["att"] if self.pooling != "mean" else []) + (["loc"] if self.pooling == "att_loc" else [])
        clip, per_clip, _ = self._forward(X, frames=keys)
        return [{"clip": c, **{key: per_clip[key][i] for key in keys}} for i, c in enumerate(clip)]

    def score(self, X, y, sample_weight=None) -> float:
        """Negative macro equal error rate of :meth:`predict_proba` (higher is better).

        The same value as :data:`skattloc.metrics.eer_scorer`.
        """
        from .metrics import equal_error_rate

        if sample_weight is not None:
            raise ValueError("score does not support sample_weight; the EER is unweighted")
        check_is_fitted(self, "model_")
        proba = self.predict_proba(X)
        Yb = self._encode_targets(y, len(proba), fitting=False)
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
    def save(self, path):
        """Save the fitted tagger to a file that holds only tensors and plain data.

        Unlike pickle or joblib, loading the file with :meth:`load` cannot run code. The
        file records the skattloc version, the format version and ``classes_``; see
        :mod:`skattloc.persistence` for the format. Parameters that are not plain data
        (callbacks, logger objects...) are left out with a warning.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file, written atomically (e.g. ``"tagger.skattloc"``).

        Returns
        -------
        pathlib.Path
            The path written.

        Examples
        --------
        >>> import os, tempfile, numpy as np
        >>> from skattloc import AttLocTagger
        >>> rng = np.random.default_rng(0)
        >>> X, Y = rng.normal(size=(8, 5, 6)), np.eye(2, dtype=int)[np.arange(8) % 2]
        >>> tagger = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1,
        ...                       dense_units=4, max_epochs=1, random_state=0).fit(X, Y)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = tagger.save(os.path.join(d, "tagger.skattloc"))
        ...     loaded = AttLocTagger.load(path)
        >>> bool((loaded.predict_proba(X) == tagger.predict_proba(X)).all())
        True
        """
        return _persist.save_tagger(self, path)

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
        return _persist.load_tagger(path, cls=cls)


def _run_windows(model, x: np.ndarray, device, keys):
    """Clip and frame outputs of full-length windows ``x`` (no padding, so no lengths)."""
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


def _is_number_row(row) -> bool:
    a = np.asarray(row) if not isinstance(row, (set, frozenset)) else None
    return a is not None and a.dtype != object and (np.issubdtype(a.dtype, np.number) or a.dtype == bool) and a.ndim == 1


@contextlib.contextmanager
def _quiet(verbose):
    """Silence Lightning's banners, tips and data-loader hints unless ``verbose``."""
    if verbose:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*The number of training batches.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


class _History(Callback):
    """Collects the epoch-level metrics that Lightning logged."""

    def __init__(self):
        self.rows = []

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        row = {"epoch": int(trainer.current_epoch)}
        for k, v in trainer.callback_metrics.items():
            row[k] = float(v)
        self.rows.append(row)
        # Also on the module: Lightning's spawn/fork launchers send it back (extra state).
        pl_module.epoch_history = [dict(r) for r in self.rows]

    # Saved in checkpoints, so a resumed fit's history_ holds every epoch.
    def state_dict(self):
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state):
        self.rows = [dict(r) for r in state["rows"]]


class _BestWeights(Callback):
    """Keeps the weights of the epoch with the best ``metric`` (``mode`` "min" or "max") and restores them."""

    def __init__(self, metric="val_loss", mode="min"):
        self.metric, self.sign = metric, (1.0 if mode == "min" else -1.0)
        self.best = float("inf")
        self.state = None

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is not None and self.sign * float(value) < self.best:
            self.best = self.sign * float(value)
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()}

    def on_fit_end(self, trainer, pl_module):
        if self.state is not None:
            pl_module.model.load_state_dict(self.state)

    def state_dict(self):
        return {"best": self.best, "state": self.state}

    def load_state_dict(self, state):
        self.best, self.state = float(state["best"]), state["state"]
