"""``AttLocTagger``: the scikit-learn estimator, where sklearn meets Lightning.

The estimator joins the pieces and holds the fitted state; each piece lives elsewhere:
its parameters (defaults, rules, groups, documentation) in the table of
:mod:`skattloc.params`; the network in :mod:`skattloc.model`; loss, optimizer and metrics
in :mod:`skattloc.module`; the Lightning machinery of ``fit`` (Trainer, callbacks,
checkpoints, resume) in :mod:`skattloc.training`; batches and the validation split in
:mod:`skattloc.data`; the forward loop in :mod:`skattloc.inference`; the frame timing in
:mod:`skattloc.timing`; event post-processing in :mod:`skattloc.postprocessing`; the model
file in :mod:`skattloc.persistence`.

torch and Lightning are imported by the methods that need them (``fit``, inference,
``load``), not with this module: ``from skattloc import AttLocTagger``, ``clone`` and
``get_params`` import neither, and ``skattloc --help`` reads the parameter table.
"""
from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, List

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from . import _checks
from . import params as _params
from .params import DESED_CONFIG, EARLY_STOPPING_METRICS, LOCALIZATIONS, PAPER_CONFIG  # noqa: F401  (public names of this module)
from .supervision import TIMED, UNLABELED, check_groups, parse_supervision, split_by_groups, split_by_kind
from .tags import decode_tags, encode_tags, tagger_sklearn_tags
from .timing import as_frame_timing, common_timing, frame_timing_of, known_timing

if TYPE_CHECKING:  # for readers and type checkers; imported where used
    from .model import CGRNN

_DOC = '''Weakly supervised audio tagger and event localizer (Xu et al., Interspeech 2017).

    A convolutional gated recurrent network (CGRNN) with an attention and a localization
    head, trained on clip-level tags only, that predicts clip tags and, per frame, when each
    tagged event happens. Training runs through a Lightning ``Trainer`` (CPU, GPU,
    mixed precision, several devices). The parameters are declared, with their rules, in
    :mod:`skattloc.params`; ``AttLocTagger(**skattloc.PAPER_CONFIG)`` is the paper's
    configuration.

    Parameters
    ----------
{parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Tag names (sorted) when ``fit`` got tag collections, else ``0 .. n_classes-1``.
    n_features_in_ : int
        Features (mel bands) per frame seen in ``fit``.
    n_frames_train_ : int
        Frames of the longest training clip: the inference window with
        ``window_frames="auto"``.
    batch_size_ : int
        Clips per training step and per inference batch: ``batch_size``, with ``"auto"``
        resolved for the training clips.
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
    label_counts_ : dict
        How many clips of each kind ``fit`` was given: ``{"tagged": n, "timed": n,
        "unlabeled": n}`` (see :mod:`skattloc.supervision`).
    frame_timing_ : FrameTiming or None
        The :class:`~skattloc.timing.FrameTiming` of the training features (hop and start
        of frame 0, in seconds): the ``frame_timing`` parameter, else what the features
        carried (:class:`~skattloc.LogMelExtractor` output does), else None. Every result
        in seconds reads it; with None they refuse. Stored in model files.

    See Also
    --------
    skattloc.LogMelExtractor : raw audio or paths to log-mel frames.
    skattloc.metrics.eer_scorer : the equal-error-rate scorer for model selection.
    skattloc.evaluation.evaluate_tagger : EER, event and segment F1, PSDS in one report.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
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
    >>> tagger.frame_timing_  # recorded from the extractor's frames
    FrameTiming(hop_s=0.016, offset_s=0.008)
    >>> pipe = make_pipeline(LogMelExtractor(hop_length=512), AttLocTagger(
    ...     rnn_hidden=16, rnn_layers=1, dense_units=32, max_epochs=1, random_state=0)).fit(audio, Y)
    >>> pipe[-1].frame_timing_.hop_s  # a Pipeline's tagger records its extractor's hop
    0.032
    '''


class AttLocTagger(ClassifierMixin, BaseEstimator):
    __doc__ = _DOC.replace("{parameters}", _params.docstring_section())


    def __init__(
        self,
        pooling="att_loc",
        loc_activation="softmax",
        loc_denominator="att_loc",
        loc_background=True,
        loc_input="rnn",
        frontend="conv2d",
        conv_blocks=3,
        conv_channels=None,
        conv_activation="relu",
        conv_pool="max",
        conv_dropout=0.0,
        time_pool=2,
        n_filters=64,
        kernel_size=30,
        rnn_hidden=64,
        rnn_layers=2,
        dense_units=128,
        dropout=0.2,
        learning_rate=1e-3,
        weight_decay=0.0,
        batch_size="auto",
        max_epochs=80,
        lr_schedule="constant",
        spec_augment=2,
        time_mask_width=10,
        freq_mask_width=6,
        mixup_alpha=0.2,
        power_mix=0.0,
        time_shift=0.5,
        filter_augment=6.0,
        ema_decay=0.99,
        validation_fraction="auto",
        early_stopping="auto",
        early_stopping_metric="val_eer",
        patience=15,
        frame_loss_weight=1.0,
        consistency_weight=2.0,
        consistency_rampup=20,
        teacher_decay=0.999,
        unlabeled_ratio=0.5,
        threshold=0.5,
        localization="att_frame",
        calibrate_events=True,
        window_frames="auto",
        window_overlap=0.5,
        frame_timing=None,
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
        # sklearn's rule: __init__ stores its arguments and nothing else. Each parameter is
        # declared in skattloc.params (tests/test_params.py checks this signature against it).
        vars(self).update((name, value) for name, value in locals().items() if name != "self")

    # ------------------------------------------------------------------ sklearn plumbing
    def __sklearn_tags__(self):
        tags = tagger_sklearn_tags(super().__sklearn_tags__())
        tags.non_deterministic = self.random_state is None
        return tags

    def _validate_params(self) -> None:
        """Check every parameter against the table of :mod:`skattloc.params`."""
        _params.validate_params(self.get_params(deep=False))

    def _build_model(self, n_features: int, n_classes: int) -> CGRNN:
        from .model import CGRNN

        return CGRNN(n_mels=n_features, n_classes=n_classes, **{k: getattr(self, k) for k in _params.names("network")})

    def _forget_fit(self) -> None:
        """Drop every fitted attribute (``classes_``, ``model_``...)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, X_val=None, y_val=None, events=None, filenames=None, groups=None):
        """Train on clips with clip-level tags, event times on some clips, and unlabeled clips.

        Parameters
        ----------
        X : array of shape (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)
            Log-mel frames, time first (e.g. from :class:`~skattloc.LogMelExtractor`, whose
            output carries its frame timing: ``frame_timing_`` records it). For
            corpora larger than memory, a :class:`~skattloc.store.FeatureStore` (features
            cached on disk) or :class:`~skattloc.store.AudioFeatures` (computed on the fly
            from audio paths): clips are then read in the DataLoader (its ``num_workers``
            processes) and the feature statistics are streamed.
        y : array of shape (n_clips, n_classes) of 0/1, or a list of tag-name collections
            Clip-level tags ("Y"). With tag names, ``classes_`` holds the sorted names. An
            unlabeled clip is a row of -1 (matrix) or None (list), scikit-learn's
            semi-supervised convention: it trains through the mean teacher
            (``consistency_weight``, ``unlabeled_ratio``); see :mod:`skattloc.supervision`.
        X_val, y_val : like ``X`` and ``y``, optional
            Validation clips and their tags, given together. They replace the random
            ``validation_fraction`` split (every clip of ``X`` then trains). Use this for a
            validation set that shares no recording source with the training clips, e.g.
            one fold of a source-disjoint split: ``val_*`` metrics are logged each epoch,
            ``early_stopping`` selects the epoch on them, and the event post-processing is
            calibrated on them. The tags are encoded against the classes found in ``y``.
        events : list of (clip, onset_s, offset_s, tag), or a DCASE TSV path, optional
            Event times for some training clips (``clip``: an index into ``X``, or a name of
            ``filenames``). Those clips also train on frame targets (``frame_loss_weight``),
            converted with the frame timing; their tags follow from their events (their row
            of ``y`` must agree, or be -1 / None). The validation split draws its share of
            timed clips separately, and event settings are then tuned on their times.
        filenames : sequence of str, optional
            The name of each clip of ``X``, when ``events`` names clips by file name.
        groups : array-like of shape (n_clips,), optional
            The recording (or source, speaker, session) each clip comes from, as for
            scikit-learn's ``GroupShuffleSplit``. The ``validation_fraction`` split then
            holds out whole groups, so that no recording is on both sides and the
            validation scores, early stopping and the event calibration are not set on
            clips that share a recording with the training clips
            (:func:`skattloc.supervision.split_by_groups`). Unlabeled clips of a validation
            group do not train. Needs a validation split (``validation_fraction`` > 0, no
            ``X_val``).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Before any work: parameters out of range or refused by Lightning's ``Trainer``;
            ``X`` with the wrong dimensions, no clips, NaN/Inf, too few features; ``y`` with
            another row count, values other than 0/1 (or -1 rows), other columns than
            ``classes_`` (``warm_start``); events for clips not in ``X``, outside a clip or
            with unknown tags; frame timings that disagree; a ``resume`` checkpoint from
            another fit.
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
            A class that is never, or always, positive in ``y``; validation clips but no
            frame timing, so the event settings are not calibrated.
        """
        from . import data as _data
        from . import training as _training
        self._validate_params()
        _training.check_trainer_settings(self)  # bad Lightning settings fail before any work
        resume_from = _training.resume_checkpoint(self)
        warm = bool(self.warm_start) and hasattr(self, "model_") and resume_from is None
        timing = common_timing(("frame_timing", as_frame_timing(self.frame_timing)), ("X", frame_timing_of(X)),
                               ("X_val", frame_timing_of(X_val)),
                               ("the fitted frame_timing_", getattr(self, "frame_timing_", None) if warm else None))
        if not warm:  # a fit that then fails leaves the estimator unfitted, never half old, half new
            self._forget_fit()
        min_features = _data.min_features(self.frontend, self.kernel_size)
        X = _data.check_clips(X, n_features=self.n_features_in_ if warm else None, min_features=min_features)
        n = _data.n_clips(X)
        sup = parse_supervision(y, n, _data.clip_lengths(X), _encode, getattr(self, "classes_", None) if self.warm_start else None,
                                events=events, filenames=filenames, timing=timing)
        Yb, self.classes_ = sup.Y, sup.classes
        _warn_degenerate(Yb[sup.kinds != UNLABELED], self.classes_)
        if (X_val is None) != (y_val is None):
            raise ValueError("give X_val and y_val together (validation clips and their tags), or neither")
        fraction = self._validation_fraction(n)
        if groups is not None:
            groups = check_groups(groups, n)
            if X_val is not None:
                raise ValueError("groups picks the validation clips out of X, but X_val and y_val replace that split; "
                                 "give one or the other")
            if fraction == 0:
                raise ValueError(f"groups picks the validation clips, but validation_fraction={self.validation_fraction!r} "
                                 f"makes no validation split of these {n} clips: set validation_fraction > 0 (e.g. 0.1) "
                                 f"or drop groups")
        if self.early_stopping is True and fraction == 0 and X_val is None:
            raise ValueError(
                "early_stopping=True needs a validation split: set validation_fraction > 0, e.g. 0.1, "
                "or pass X_val and y_val to fit"
            )
        if X_val is not None:
            X_val = _data.check_clips(X_val, n_features=_data.clip_feature_count(X), min_features=min_features, name="X_val")
            Y_val, _ = _encode(y_val, _data.n_clips(X_val), self.classes_)
        seed = _checks.check_random_seed(self.random_state)
        if resume_from is not None:  # the interrupted fit's seed: the same split and batches
            saved = _training.read_checkpoint_fingerprint(resume_from)
            seed = int(saved["seed"])
            _training.check_resume_request(resume_from, saved, self.random_state, self.max_epochs)
        # X_val replaces the random split; with timed or unlabeled clips each kind gives its share
        if groups is not None:  # whole recordings on one side
            train_idx, val_idx = split_by_groups(sup.kinds, groups, fraction, np.random.RandomState(seed),
                                                 self.validation_fraction)
        else:
            split = _data.split_validation if sup.plain else split_by_kind
            train_idx, val_idx = split(n if sup.plain else sup.kinds, 0.0 if X_val is not None else fraction,
                                       np.random.RandomState(seed), self.validation_fraction)
        if self.consistency_weight == 0:  # no mean teacher: unlabeled clips have nothing to teach
            train_idx = train_idx[sup.kinds[train_idx] != UNLABELED]
        self.batch_size_ = (_params.auto_batch_size(len(train_idx)) if self.batch_size == "auto"
                            else int(self.batch_size))
        timed = [sup.frames[i] for i in train_idx]
        X_train = _data.subset(X, train_idx)  # X itself when there is no validation split
        val = (_data.subset(X, val_idx), Yb[val_idx]) if val_idx is not None else None if X_val is None else (X_val, Y_val)
        with _training.seeded(seed, self.verbose):
            if warm:  # a copy: a fit that fails (e.g. NaN loss) leaves model_ as it was
                model = copy.deepcopy(self.model_).train()
            else:
                mean, scale = _data.feature_stats(X_train)
                model = self._build_model(len(mean), Yb.shape[1])
                model.set_input_stats(mean, scale)
            module = _training.train_network(self, model, (X_train, Yb[train_idx]), val, seed, Yb,
                                             resume_from, saved if resume_from is not None else None,
                                             frames=timed if any(f is not None for f in timed) else None, groups=groups)
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
        self.frame_timing_ = timing
        self.label_counts_ = sup.counts
        self.event_settings_ = _default_event_settings(self.classes_, self.threshold)
        if self.calibrate_events and (val_idx is not None or X_val is not None):
            if timing is None:
                warnings.warn(
                    "the event settings were not calibrated on the validation clips: their frame timing is "
                    "unknown (X is a plain array). Give AttLocTagger(frame_timing=...), or features from "
                    "LogMelExtractor, which carry it; tune_events() calibrates later", UserWarning, stacklevel=2,
                )
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a class never/always tagged in a small split keeps the defaults
                    self.tune_events(*((X_val, Y_val) if val_idx is None else (_data.subset(X, val_idx), Yb[val_idx])))
                timed_val = [] if val_idx is None else val_idx[sup.kinds[val_idx] == TIMED]
                if len(timed_val):  # event times among the validation clips: tune on them (from the weak settings)
                    names = [f"clip{i}" for i in timed_val]
                    self.tune_events(_data.subset(X, timed_val), reference=sup.reference(timed_val, names), filenames=names)
        return self

    def _validation_fraction(self, n_clips: int) -> float:
        """The fraction of ``n_clips`` held out: ``validation_fraction``, with ``"auto"``
        resolved (0.1 from 100 clips on, else 0)."""
        if self.validation_fraction == "auto":
            return _params.AUTO_VALIDATION_FRACTION if n_clips >= _params.AUTO_VALIDATION_MIN_CLIPS else 0.0
        return float(self.validation_fraction)

    # ------------------------------------------------------------------ inference
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
        from .inference import forward

        return forward(self, X)[0]

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
            its valid frames). Values in [0, 1]: by default ``z_att(t) O(t)``; the
            ``localization`` parameter picks the quantity (the paper's eq. 7 output,
            ``O(t)`` or ``z_loc(t)``). Frame ``t`` is the feature frame ``t`` of the input,
            centred at ``frame_timing_.frame_times(n_frames)[t]`` seconds. Recordings
            longer than ``window_frames`` run on overlapping windows whose frame outputs
            are stitched (:mod:`skattloc.windowing`).
        """
        from .inference import frame_scores

        frames, _ = frame_scores(self, X)
        return np.stack(frames) if isinstance(X, np.ndarray) and X.ndim == 3 else frames

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
        from .inference import frame_outputs

        return frame_outputs(self, X)

    # ------------------------------------------------------------------ events
    def _timing(self):
        """The frame timing every answer in seconds reads (:func:`skattloc.timing.known_timing`)."""
        check_is_fitted(self, "model_")
        return known_timing(getattr(self, "frame_timing_", None), as_frame_timing(self.frame_timing))

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

    def detect_events(self, X, filenames=None, clip_duration=None, **overrides):
        """Sound events: when each tag's event starts and ends, as a DCASE event list.

        The frame scores of :meth:`localize` and the clip probabilities of
        :meth:`predict_proba` (one forward pass) go through the per-class post-processing
        of ``event_settings_`` (median filter, hysteresis thresholds, gap bridging, minimum
        duration, clip gate; see :mod:`skattloc.postprocessing`). Frames become seconds
        with ``frame_timing_``.

        Parameters
        ----------
        X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)
            Log-mel frames.
        filenames : sequence of str, optional
            One name per clip for the event list (default ``clip_00000``...).
        clip_duration : float or sequence of float, optional
            Clip lengths in seconds (event times are clipped to them); default: what the
            frames cover (``frame_timing_.clip_duration(n_frames)``).
        **overrides
            Event settings for this call (see :meth:`get_event_postprocessor`).

        Returns
        -------
        list of tuple
            ``(filename, onset_s, offset_s, tag)``, sorted by file and onset; write it with
            :func:`skattloc.events.write_events_tsv`.

        Raises
        ------
        ValueError
            The frame timing is unknown (see ``frame_timing``).

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
        from .inference import frame_scores

        pp = self.get_event_postprocessor(**overrides)
        frames, clip = frame_scores(self, X)
        return pp.decode(frames, clip, filenames, timing=self._timing(), clip_duration=clip_duration)

    def event_scores(self, X):
        """Threshold-free event scores per frame: the :meth:`localize` output, median-filtered
        per class with the ``event_settings_`` filter lengths, times the clip probability.

        The scores :meth:`detect_events` thresholds, with the clip gate made soft: what
        threshold-free event metrics such as PSDS (:func:`skattloc.metrics.psds`) should be
        given.

        Parameters
        ----------
        X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)

        Returns
        -------
        ndarray (n_clips, n_frames, n_classes) for a 3-D ``X``, else a list of
        (n_frames_i, n_classes) arrays; values in [0, 1].
        """
        from .inference import frame_scores

        frames, clip = frame_scores(self, X)
        out = self.get_event_postprocessor().scores(frames, clip, timing=self._timing())
        lengths = {len(f) for f in out}
        return np.stack(out) if len(lengths) == 1 and getattr(X, "ndim", 0) == 3 else out

    def tune_events(self, X, y=None, *, reference=None, filenames=None, clip_duration=None, verbose=False, **tune_kwargs):
        """Set ``event_settings_`` from held-out clips: their clip tags, or their event times.

        Give clips the network did not train on (e.g. ``X[tagger.validation_indices_]``
        or a separate validation set). ``fit`` calls it with ``y`` on its validation clips
        (``calibrate_events``).

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
            Exactly one of ``y`` and ``reference``; a non-empty list of events.
        filenames : sequence of str
            With ``reference``: the name of each clip of ``X``, as used in ``reference``.
        clip_duration : float or sequence of float, optional
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
        from .inference import frame_scores
        from .postprocessing import EventPostprocessor

        check_is_fitted(self, "model_")
        if (y is None) == (reference is None):
            raise ValueError("give exactly one of y (clip tags: weak calibration) and reference (event times: strong tuning)")
        timing = self._timing()
        frames, clip = frame_scores(self, X)
        classes = [str(c) for c in self.classes_]
        if y is not None:
            Y, _ = _encode(y, len(frames), self.classes_)
            pp = EventPostprocessor.calibrate(frames, clip, Y.astype(int), classes, timing=timing, **tune_kwargs)
        else:
            if filenames is None:
                raise ValueError("tune_events(reference=...) needs filenames: the name of each clip of X as used in reference")
            reference = [(e[0], float(e[1]), float(e[2]), str(e[3])) for e in reference]
            if not reference:
                raise ValueError("tune_events(reference=[]) has no events to tune on: give the event times of the clips of X")
            pp = EventPostprocessor.tune(frames, clip, reference, classes, filenames, timing=timing,
                                         clip_duration=clip_duration,
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
        Yb, _ = _encode(y, len(proba), self.classes_)
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
            them), is not a skattloc model file, has another format version, is damaged
            (a zip member fails its CRC-32 check, or the file is truncated), or holds values
            this version refuses (parameters, feature settings, duplicate classes, event
            settings for other classes, an invalid frame timing).
        FileNotFoundError
            If ``path`` does not exist.
        """
        from . import persistence

        def build(params, n_features, n_classes):
            # A file written before a parameter existed was fitted with the behaviour that
            # parameter's old value stands for, whatever today's default.
            estimator = cls(**{**_params.legacy_values(), **params})
            return estimator, estimator._build_model(n_features, n_classes)

        return persistence.restore_tagger(path, build, cls().get_params(deep=False))


def _encode(y, n_clips: int, classes=None):
    """``(Y float32 (n_clips, n_classes), classes)``; see :func:`skattloc.tags.encode_tags`."""
    Y, classes = encode_tags(y, classes, n_clips=n_clips, owner="AttLocTagger")
    return Y.astype(np.float32), classes


def _warn_degenerate(Y: np.ndarray, classes) -> None:
    """Warn about classes never, or always, positive in ``Y`` (their EER is undefined)."""
    pos = Y.sum(axis=0)
    # ndarray.tolist(): plain Python values whether classes holds ints, numpy strings or
    # (tag names from lists) Python str objects, which have no .item()
    for which, cols, value in (("never", pos == 0, 0), ("always", pos == len(Y), 1)):
        names = np.asarray(classes)[np.flatnonzero(cols)].tolist()
        if names:
            positive = "never positive in Y" if which == "never" else "positive in every clip"
            warnings.warn(
                f"classes {names} are {positive}: the model learns to always predict {value} for them, "
                f"and their EER is undefined (NaN, left out of the macro mean)",
                UserWarning,
            )


def _default_event_settings(classes, clip_threshold=0.5) -> dict:
    """Event settings without calibration data (what ``skattloc localize`` did before they
    were calibrated): frame threshold 0.5, a 0.1 s median filter, the clip gate at the
    tagger's ``threshold``."""
    from .postprocessing import EventPostprocessor

    pp = EventPostprocessor([str(c) for c in classes], threshold=0.5, median_filter=0.1, clip_threshold=clip_threshold)
    pp.source = "default"
    return pp.to_dict()
