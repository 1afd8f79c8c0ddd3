"""Evaluation metrics for audio tagging and weakly supervised localization.

This module works on plain arrays and event lists; it knows nothing about the
model.  It depends only on :mod:`numpy`, :mod:`scipy` and :mod:`sklearn`.

Three families of metrics are provided:

* **Clip-level tagging** -- :func:`equal_error_rate` (the DCASE 2016 Task 4
  EER used in Xu et al., 2017) and the scikit-learn scorer :data:`eer_scorer`.
* **Frame-level localization** -- :func:`frame_average_precision`,
  :func:`frame_auc` and :func:`within_clip_auc` on frame activity matrices of
  shape ``(n_clips, n_frames, n_classes)``.
* **Event-list metrics** in the style of ``sed_eval`` --
  :func:`segment_based_metrics` and :func:`event_based_metrics` on lists of
  ``(filename, onset_s, offset_s, event_label)`` tuples such as those produced
  by :func:`skattloc.events.frames_to_events`.

Notes
-----
Undefined per-class values (a class without positives or negatives) are
reported as ``NaN`` together with an
:class:`sklearn.exceptions.UndefinedMetricWarning`, and are left out of macro
averages.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from . import _checks
from .tags import encode_tags

__all__ = [
    "equal_error_rate",
    "eer_score",
    "eer_scorer",
    "frame_average_precision",
    "frame_auc",
    "within_clip_auc",
    "segment_based_metrics",
    "event_based_metrics",
    "merge_overlapping_events",
    "psds",
    "intersection_f1",
    "intersection_f1_from_scores",
]

_EER_EPS = 1e-6
_AVERAGES = ("macro", None)


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _check_average(average):
    if average not in _AVERAGES:
        raise ValueError(
            f"average={average!r} is not supported; expected one of {list(_AVERAGES)}."
        )


def _check_clip_arrays(y_true, y_score):
    """Validate clip-level inputs; return 2-D ``(n_samples, n_classes)`` arrays."""
    y_true = _checks.check_binary(y_true, "y_true")
    y_score = _checks.as_float_array(y_score, "y_score")
    if y_true.ndim not in (1, 2):
        raise ValueError(
            f"y_true must be 1-D (n_samples,) or 2-D (n_samples, n_classes); "
            f"got shape {y_true.shape}."
        )
    if y_true.shape != y_score.shape:
        raise ValueError(
            f"y_true and y_score must have the same shape; got {y_true.shape} and "
            f"{y_score.shape}."
        )
    if y_true.shape[0] == 0 or y_true.size == 0:
        raise ValueError(f"Empty input: y_true has shape {y_true.shape}; need at least one sample and one class.")
    _checks.check_finite(y_score, "y_score")
    if y_true.ndim == 1:
        y_true = y_true[:, None]
        y_score = y_score[:, None]
    return y_true, y_score


def _reduce(values, average):
    """Per-class values (``average=None``) or their mean over defined (non-NaN) classes."""
    return np.asarray(values, dtype=np.float64) if average is None else _nanmean(values)


def _warn_undefined(metric, k, reason, stacklevel=3):
    warnings.warn(
        f"{metric} is undefined for class {k}: {reason}. Returning NaN for this class "
        "and leaving it out of the macro average.",
        UndefinedMetricWarning,
        stacklevel=stacklevel,
    )


# --------------------------------------------------------------------------
# clip-level EER
# --------------------------------------------------------------------------
def _eer_one_class(y, s):
    """DCASE 2016 Task 4 EER for one binary problem (both classes present)."""
    fpr, tpr, _ = roc_curve(y, s, pos_label=1, drop_intermediate=True)
    # The DCASE 2016 evaluation prepends (0, 0) to sklearn's curve.
    x = np.concatenate(([0.0], fpr))
    t = np.concatenate(([0.0], tpr))
    reached = x + _EER_EPS >= 1.0 - t
    # The last ROC point is (1, 1), so ``reached`` is true somewhere; the first
    # point (0, 0) never satisfies it, hence i >= 1.
    i = int(np.argmax(reached))
    x1, y1, x2, y2 = x[i - 1], t[i - 1], x[i], t[i]
    if abs(x2 - x1) < _EER_EPS:
        return float(x1)
    m = (y2 - y1) / (x2 - x1)
    o = y1 - m * x1
    return float((1.0 - o) / (1.0 + m))


def equal_error_rate(y_true, y_score, average="macro"):
    """Equal error rate (EER) as computed by the DCASE 2016 Task 4 evaluation.

    For each class the ROC curve is taken from
    ``sklearn.metrics.roc_curve(y, s, drop_intermediate=True)``, the point
    (0, 0) is prepended, and the first point ``i`` with
    ``fpr_i + 1e-6 >= 1 - tpr_i`` is located.  With ``P1 = point i-1`` and
    ``P2 = point i``: if ``|fpr_2 - fpr_1| < 1e-6`` the EER is ``fpr_1``;
    otherwise it is the false positive rate where the line through P1 and P2
    meets ``fpr = 1 - tpr``, i.e. ``(1 - o) / (1 + m)`` for the line
    ``tpr = m * fpr + o``.  This is the metric of Xu et al. (2017); it differs
    from e.g. ``torchmetrics``' EER, which picks the nearest ROC point.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_classes) or (n_samples,)
        Binary (0/1 or bool) clip-level labels; 1-D means a single class.
    y_score : array-like, same shape as ``y_true``
        Real-valued scores (e.g. probabilities); higher means more likely
        positive.  Only the ranking matters.
    average : {"macro", None}, default="macro"
        ``"macro"``: unweighted mean over classes, ignoring undefined (NaN)
        classes; ``None``: return the per-class values.

    Returns
    -------
    eer : float or ndarray of shape (n_classes,)
        EER in [0, 1] (lower is better).  A class with no positive or no
        negative sample gives ``NaN`` and an
        :class:`~sklearn.exceptions.UndefinedMetricWarning`; the macro mean is
        ``NaN`` only if every class is undefined.

    Raises
    ------
    ValueError
        On shape mismatch, empty input, non-binary ``y_true``, non-finite
        scores or an unknown ``average``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.metrics import equal_error_rate
    >>> y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    >>> s = np.array([[0.9, 0.1], [0.8, 0.7], [0.2, 0.3], [0.1, 0.4]])
    >>> equal_error_rate(y, s, average=None)
    array([0. , 0.5])
    >>> equal_error_rate(y, s)
    0.25
    """
    _check_average(average)
    y_true, y_score = _check_clip_arrays(y_true, y_score)
    n_classes = y_true.shape[1]
    eers = np.full(n_classes, np.nan)
    for k in range(n_classes):
        y = y_true[:, k].astype(np.int64)
        n_pos = int(y.sum())
        if n_pos == 0:
            _warn_undefined("EER", k, "y_true has no positive sample")
            continue
        if n_pos == y.size:
            _warn_undefined("EER", k, "y_true has no negative sample")
            continue
        eers[k] = _eer_one_class(y, y_score[:, k])
    return _reduce(eers, average)


# --------------------------------------------------------------------------
# sklearn scorer
# --------------------------------------------------------------------------
def _proba_matrix(estimator, X):
    proba = estimator.predict_proba(X)
    if isinstance(proba, list):
        # e.g. MultiOutputClassifier: list of (n_samples, 2) arrays
        proba = np.column_stack([np.asarray(p)[:, -1] for p in proba])
    proba = _checks.as_float_array(proba, "predict_proba(X)")
    if proba.ndim == 1:
        proba = proba[:, None]
    if proba.ndim != 2:
        raise ValueError(
            f"predict_proba(X) must return a 2-D (n_samples, n_classes) array; got shape "
            f"{proba.shape}."
        )
    return proba


def _is_tag_collection(item):
    return isinstance(item, (list, tuple, set, frozenset, np.ndarray)) and not isinstance(
        item, (str, bytes)
    )


def _binarize_for_scorer(y, proba, classes):
    """Return (Y, P): Y binary targets aligned with the scores P."""
    n_samples, n_cols = proba.shape
    try:
        arr = np.asarray(y)
    except ValueError:  # ragged lists of tags
        arr = None
    if arr is not None and arr.ndim == 2 and (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        # indicator matrix (array, DataFrame or equal-length lists of 0/1)
        if arr.shape != proba.shape:
            raise ValueError(
                f"y is a {arr.shape} indicator matrix but predict_proba(X) returned shape "
                f"{proba.shape}; they must match (to pass numeric tags, give one set of "
                "tags per clip instead)."
            )
        return arr, proba
    items = list(y)
    if len(items) == 0:
        raise ValueError("Empty input: y has no samples.")
    if len(items) != n_samples:
        raise ValueError(
            f"y has {len(items)} samples but predict_proba(X) returned {n_samples} rows."
        )
    if classes is not None:
        classes = list(np.ravel(np.asarray(classes, dtype=object)))
        if len(classes) != n_cols:
            raise ValueError(
                f"estimator.classes_ has {len(classes)} entries but predict_proba(X) has "
                f"{n_cols} columns."
            )
    if all(_is_tag_collection(it) for it in items):
        # lists of tag names -> indicator matrix in the order of classes_
        if classes is None:
            raise ValueError(
                "y is given as lists of tags but the estimator has no `classes_` "
                "attribute to align them with the columns of predict_proba."
            )
        Y, _ = encode_tags(items, classes, kind="names", name="y", known_as=f"the estimator's classes_ {classes}")
        return Y, proba
    # one label per sample
    if n_cols == 1:
        return np.asarray(items), proba
    if classes is None:
        raise ValueError(
            "y holds one label per sample but the estimator has no `classes_` "
            "attribute to map labels onto the columns of predict_proba."
        )
    index = {c: j for j, c in enumerate(classes)}
    unknown = [lab for lab in items if lab not in index]
    if unknown:
        raise ValueError(
            f"y contains labels {unknown[:5]} that are not in the estimator's "
            f"classes_ {classes}."
        )
    cols = np.array([index[lab] for lab in items])
    if n_cols == 2:
        # ordinary binary classifier: the positive class is classes_[1]
        return (cols == 1).astype(np.float64), proba[:, 1]
    Y = np.zeros((n_samples, n_cols))
    Y[np.arange(n_samples), cols] = 1.0
    return Y, proba


def eer_score(estimator, X, y):
    """Negative macro EER of a fitted estimator, for model selection.

    This is the function behind :data:`eer_scorer`.  It calls
    ``estimator.predict_proba(X)`` (an ``(n_clips, n_classes)`` array of
    per-class probabilities, or a list of ``(n_clips, 2)`` arrays as returned
    by :class:`~sklearn.multioutput.MultiOutputClassifier`), aligns ``y`` with
    its columns and returns ``-equal_error_rate(Y, proba, average="macro")``.

    The sign follows the scikit-learn convention that **higher is better**:
    a perfect tagger scores ``0.0`` and the worst possible ``-1.0``.

    Parameters
    ----------
    estimator : fitted estimator
        Must implement ``predict_proba``; ``classes_`` is needed when ``y`` is
        given by tag names.
    X : array-like
        Input passed unchanged to ``predict_proba``.
    y : array-like or sequence
        One of: an indicator matrix ``(n_clips, n_classes)`` aligned with the
        columns of ``predict_proba`` (any 2-D numeric array-like of that shape
        is read this way); a sequence of per-clip tag collections
        (e.g. ``[["c", "m"], [], ["v"]]``), binarized with
        ``estimator.classes_``; or one label per clip (single-label
        classifiers; the binary case uses the column of ``classes_[1]``).

    Returns
    -------
    score : float
        ``-EER`` (macro over the classes defined in this ``y``).

    Raises
    ------
    ValueError
        If ``y`` cannot be aligned with ``predict_proba(X)`` (shape mismatch,
        unknown tag, missing ``classes_``).

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.metrics import eer_score
    >>> class Fixed:
    ...     classes_ = np.array(["a", "b"])
    ...     def predict_proba(self, X):
    ...         return np.asarray(X, dtype=float)
    >>> X = [[0.9, 0.2], [0.1, 0.8], [0.7, 0.6], [0.2, 0.1]]
    >>> float(eer_score(Fixed(), X, [["a"], ["b"], ["a", "b"], []]))
    -0.0
    """
    proba = _proba_matrix(estimator, X)
    Y, P = _binarize_for_scorer(y, proba, getattr(estimator, "classes_", None))
    return -equal_error_rate(Y, P, average="macro")


class _EERScorer:
    """Callable scikit-learn scorer returning ``-EER`` (higher is better)."""

    _sign = -1  # for introspection only: the value returned is -EER

    def __call__(self, estimator, X, y_true, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("eer_scorer does not support sample_weight; the DCASE EER is unweighted.")
        return eer_score(estimator, X, y_true)

    def __repr__(self):
        return "eer_scorer"

    def __reduce__(self):
        return "eer_scorer"


eer_scorer = _EERScorer()
eer_scorer.__doc__ = """Scikit-learn scorer: negative macro DCASE EER from ``predict_proba``.

Use as ``GridSearchCV(est, grid, scoring=eer_scorer)`` or
``cross_val_score(est, X, Y, scoring=eer_scorer)``.  The value is ``-EER``, so
higher is better and ``best_score_ == -EER`` of the best setting.

It is a custom scorer rather than
``make_scorer(equal_error_rate, greater_is_better=False,
response_method="predict_proba")`` because scikit-learn post-processes
``predict_proba`` from ``estimator.classes_``: for a multi-label estimator with
exactly two tags (``classes_`` such as ``["c", "m"]`` looks "binary"), it
would keep only one column; and ``y`` given as lists of tag names must be
binarized with ``classes_``.  Here the ``(n_clips, n_classes)`` array is used
unchanged.  See :func:`eer_score` for the accepted ``y`` formats.

Notes
-----
With ``cv=<int>`` scikit-learn inspects ``y`` itself (``type_of_target``),
which rejects lists of tag names; pass an indicator matrix, or a splitter such
as ``KFold(5)``, in that case.
"""


# --------------------------------------------------------------------------
# frame-level localization metrics
# --------------------------------------------------------------------------
def _pooled_per_class(y_true, y_score, average, metric, score, need_inactive):
    """``score(y, s)`` per class on the frames of every clip pooled, reduced by ``average``;
    NaN with a warning for a class with no active frame (or, with ``need_inactive``, no
    inactive frame)."""
    _check_average(average)
    true_clips, score_clips = _checks.check_frame_pairs(y_true, y_score)
    yt, ys = np.concatenate(true_clips, axis=0), np.concatenate(score_clips, axis=0)
    out = np.full(yt.shape[1], np.nan)
    for k in range(yt.shape[1]):
        n_pos = yt[:, k].sum()
        if n_pos == 0 or (need_inactive and n_pos == yt.shape[0]):
            reason = "y_true has no active frame" if n_pos == 0 else "y_true has no inactive frame"
            _warn_undefined(metric, k, reason, stacklevel=4)
            continue
        out[k] = score(yt[:, k], ys[:, k])
    return _reduce(out, average)


def frame_average_precision(y_true, y_score, average="macro"):
    """Frame-level average precision, pooled over all frames of all clips.

    For each class, :func:`sklearn.metrics.average_precision_score` is computed
    on the concatenation of every clip's frames.

    Parameters
    ----------
    y_true : ndarray of shape (n_clips, n_frames, n_classes) or list of ndarray
        Binary frame activity; a list holds one ``(n_frames_i, n_classes)``
        array per clip (unequal lengths allowed).
    y_score : same structure as ``y_true``
        Frame-level scores (e.g. the localization output).
    average : {"macro", None}, default="macro"
        Mean over defined classes, or per-class array.

    Returns
    -------
    ap : float or ndarray of shape (n_classes,)
        Average precision in [0, 1] (higher is better).  A class with no
        active frame is ``NaN`` with an ``UndefinedMetricWarning``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.metrics import frame_average_precision
    >>> y = np.array([[[0], [1], [1], [0]]])          # 1 clip, 4 frames, 1 class
    >>> s = np.array([[[0.1], [0.9], [0.4], [0.6]]])
    >>> round(frame_average_precision(y, s), 4)
    0.8333
    """
    return _pooled_per_class(y_true, y_score, average, "Frame average precision", average_precision_score,
                             need_inactive=False)


def frame_auc(y_true, y_score, average="macro"):
    """Frame-level ROC AUC, pooled over all frames of all clips.

    For each class, :func:`sklearn.metrics.roc_auc_score` on the concatenation
    of every clip's frames.

    Parameters
    ----------
    y_true : ndarray of shape (n_clips, n_frames, n_classes) or list of ndarray
        Binary frame activity (list: one ``(n_frames_i, n_classes)`` per clip).
    y_score : same structure as ``y_true``
        Frame-level scores; only their order within each class counts (pooled over clips).
    average : {"macro", None}, default="macro"
        Mean over defined classes, or per-class array.

    Returns
    -------
    auc : float or ndarray of shape (n_classes,)
        AUC in [0, 1].  A class with no active or no inactive frame is
        ``NaN`` with an ``UndefinedMetricWarning``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.metrics import frame_auc
    >>> y = [np.array([[0], [1]]), np.array([[1], [0], [0]])]   # unequal lengths
    >>> s = [np.array([[0.2], [0.7]]), np.array([[0.6], [0.1], [0.65]])]
    >>> round(frame_auc(y, s), 4)
    0.8333
    """
    return _pooled_per_class(y_true, y_score, average, "Frame AUC", roc_auc_score, need_inactive=True)


def within_clip_auc(y_true, y_score, average="macro", return_counts=False):
    """ROC AUC of frame scores against true activity *within* each clip.

    Measures localization independently of the tagging decision: for each
    class and each clip whose true frames of that class contain both active
    and inactive frames, the AUC of that clip's frame scores is computed
    (ties count one half, so a score constant within the clip gives exactly
    0.5).  Per class these AUCs are averaged over clips; then classes are
    averaged (macro).

    Clips where the event covers all frames, or none, are skipped for that
    class (AUC is undefined there); ``return_counts=True`` reports how many
    clips were used.

    Parameters
    ----------
    y_true : ndarray of shape (n_clips, n_frames, n_classes) or list of ndarray
        Binary frame activity (list: one ``(n_frames_i, n_classes)`` per clip).
    y_score : same structure as ``y_true``
        Frame-level scores; only their order within each clip counts.
    average : {"macro", None}, default="macro"
        Mean over classes with at least one usable clip, or per-class array.
    return_counts : bool, default=False
        Also return the number of usable clips per class.

    Returns
    -------
    auc : float or ndarray of shape (n_classes,)
        Mean within-clip AUC in [0, 1].  A class without any usable clip is
        ``NaN`` with an ``UndefinedMetricWarning``.
    counts : ndarray of shape (n_classes,), dtype int
        Only if ``return_counts``: usable clips per class.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.metrics import within_clip_auc
    >>> y = np.array([[[0], [1], [1], [0]],
    ...               [[1], [1], [1], [1]]])      # clip 1 is skipped (all active)
    >>> s = np.array([[[0.1], [0.8], [0.7], [0.2]],
    ...               [[0.3], [0.3], [0.3], [0.3]]])
    >>> within_clip_auc(y, s, return_counts=True)
    (1.0, array([1]))
    """
    _check_average(average)
    if not isinstance(return_counts, (bool, np.bool_)):
        raise ValueError(f"return_counts must be a bool; got {return_counts!r}.")
    true_clips, score_clips = _checks.check_frame_pairs(y_true, y_score)
    n_classes = true_clips[0].shape[1]
    sums = np.zeros(n_classes)
    counts = np.zeros(n_classes, dtype=np.int64)
    for t, s in zip(true_clips, score_clips):
        n_frames = t.shape[0]
        if n_frames < 2:
            continue
        n_pos = t.sum(axis=0)
        n_neg = n_frames - n_pos
        usable = (n_pos > 0) & (n_neg > 0)
        if not usable.any():
            continue
        ranks = rankdata(s[:, usable], axis=0)  # average ranks for ties
        tp = t[:, usable]
        npos = n_pos[usable]
        auc = ((ranks * tp).sum(axis=0) - npos * (npos + 1) / 2.0) / (npos * n_neg[usable])
        sums[usable] += auc
        counts[usable] += 1
    out = np.full(n_classes, np.nan)
    for k in range(n_classes):
        if counts[k] == 0:
            _warn_undefined(
                "Within-clip AUC", k, "no clip has both active and inactive frames"
            )
        else:
            out[k] = sums[k] / counts[k]
    result = _reduce(out, average)
    return (result, counts) if return_counts else result


# --------------------------------------------------------------------------
# event-list metrics (sed_eval semantics)
# --------------------------------------------------------------------------
def _normalize_events(events, name, classes):
    """Return list of (filename, onset, offset, label) with validated values."""
    if events is None:
        return []
    if isinstance(events, (str, bytes)) or not isinstance(events, (Sequence, np.ndarray)):
        if hasattr(events, "__iter__"):
            events = list(events)
        else:
            raise ValueError(
                f"{name} must be a list of (filename, onset, offset, event_label) tuples; "
                f"got {type(events).__name__}."
            )
    class_set = set(classes)
    out = []
    for i, ev in enumerate(events):
        fn, onset, offset, label = _checks.event_fields(ev, i, name)
        try:
            onset = float(onset)
            offset = float(offset)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name}[{i}] has non-numeric onset/offset ({onset!r}, {offset!r})."
            ) from None
        if not (math.isfinite(onset) and math.isfinite(offset)):
            raise ValueError(f"{name}[{i}] has a NaN or infinite onset/offset: {ev!r}.")
        if onset < 0 or offset < onset:
            raise ValueError(
                f"{name}[{i}] must satisfy 0 <= onset <= offset (seconds); got onset="
                f"{onset}, offset={offset}."
            )
        if label not in class_set:
            raise ValueError(
                f"{name}[{i}] has event_label {label!r}, which is not in classes "
                f"{list(classes)}."
            )
        out.append((fn, onset, offset, label))
    return out


def merge_overlapping_events(events):
    """Count overlapping events of one tag in one clip as one event.

    Reference lists made by mixing sources (domestic-mix, DESED's synthetic sets) hold
    events of one tag that overlap, e.g. two people speaking at once. A system that
    outputs one event per tag cannot match both, so event-based F1 against such a list
    is capped below 1. psds_eval and sed_scores_eval therefore merge them before
    scoring; this does the same for :func:`event_based_metrics`.

    Parameters
    ----------
    events : list of tuple
        Events ``(filename, onset_s, offset_s, event_label)`` (or dicts with those
        keys), times in seconds.

    Returns
    -------
    list of tuple
        ``(filename, onset_s, offset_s, event_label)``, sorted; events of one tag in one
        file that overlap or touch (``onset <= previous offset``) are one event from the
        first onset to the last offset.

    Examples
    --------
    >>> from skattloc.metrics import merge_overlapping_events
    >>> merge_overlapping_events([("a.wav", 0.5, 2.0, "m"), ("a.wav", 1.5, 3.0, "m"),
    ...                           ("a.wav", 1.0, 1.2, "b")])
    [('a.wav', 0.5, 3.0, 'm'), ('a.wav', 1.0, 1.2, 'b')]
    """
    spans = {}
    for i, ev in enumerate(events):
        fn, onset, offset, label = _checks.event_fields(ev, i, "events")
        spans.setdefault((str(fn), str(label)), []).append((float(onset), float(offset)))
    out = []
    for (fn, label), runs in spans.items():
        runs.sort()
        cur = list(runs[0])
        for onset, offset in runs[1:]:
            if onset <= cur[1]:
                cur[1] = max(cur[1], offset)
            else:
                out.append((fn, cur[0], cur[1], label))
                cur = [onset, offset]
        out.append((fn, cur[0], cur[1], label))
    return sorted(out, key=lambda e: (e[0], e[1], e[2], e[3]))


def _group_by_file(ref, est, filenames):
    """Ordered mapping filename -> (ref events, est events), order preserved."""
    if filenames is not None:
        if isinstance(filenames, (str, bytes)):
            raise ValueError("filenames must be a sequence of file names, not a string.")
        files = list(dict.fromkeys(filenames))
        allowed = set(files)
        for name, evs in (("reference", ref), ("estimated", est)):
            for ev in evs:
                if ev[0] not in allowed:
                    raise ValueError(
                        f"{name} has an event in file {ev[0]!r}, which is not in filenames."
                    )
    else:
        files = list(dict.fromkeys([e[0] for e in ref] + [e[0] for e in est]))
    groups = {f: ([], []) for f in files}
    for ev in ref:
        groups[ev[0]][0].append(ev)
    for ev in est:
        groups[ev[0]][1].append(ev)
    return groups


def _f_measure(p, r):
    if p == 0 and r == 0:
        return 0.0
    return float(2.0 * p * r / (p + r))


def _rate(count, total):
    """``count / total``, NaN when ``total`` is 0 (precision, recall, error rates)."""
    return float(count / total) if total > 0 else float("nan")


def _nanmean(values):
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def _class_wise_block(classes, cw):
    class_wise = {}
    for c in classes:
        d = cw[c]
        p = _rate(d["tp"], d["sys"])  # precision
        r = _rate(d["tp"], d["ref"])  # recall
        dr = _rate(d["ref"] - d["tp"], d["ref"])  # missed (false negatives) per reference
        ir = _rate(d["sys"] - d["tp"], d["ref"])  # false positives per reference
        class_wise[c] = {
            "f_measure": _f_measure(p, r),
            "precision": p,
            "recall": r,
            "error_rate": dr + ir,
            "deletion_rate": dr,
            "insertion_rate": ir,
            "n_ref": int(d["ref"]),
            "n_sys": int(d["sys"]),
            "n_tp": int(d["tp"]),
        }
    average = {
        key: _nanmean([class_wise[c][key] for c in classes])
        for key in ("f_measure", "precision", "recall", "error_rate", "deletion_rate", "insertion_rate")
    }
    return class_wise, average


def _overall_block(ntp, nref, nsys, S, D, I):
    p = _rate(ntp, nsys)  # precision
    r = _rate(ntp, nref)  # recall
    sr, dr, ir = _rate(S, nref), _rate(D, nref), _rate(I, nref)
    return {
        "f_measure": _f_measure(p, r),
        "precision": p,
        "recall": r,
        "error_rate": sr + dr + ir,
        "substitution_rate": sr,
        "deletion_rate": dr,
        "insertion_rate": ir,
        "n_ref": int(nref),
        "n_sys": int(nsys),
        "n_tp": int(ntp),
    }


def _segment_roll(events, class_index, n_seg, res):
    roll = np.zeros((n_seg, len(class_index)), dtype=bool)
    for _, onset, offset, label in events:
        # same arithmetic as sed_eval.util.event_list_to_event_roll
        a = int(math.floor(onset * 1 / float(res)))
        b = min(int(math.ceil(offset * 1 / float(res))), n_seg)
        if b > a:
            roll[a:b, class_index[label]] = True
    return roll


def segment_based_metrics(
    reference, estimated, classes, segment_length=1.0, filenames=None, durations=None
):
    """Segment-based F-measure and error rate, as ``sed_eval.sound_event.SegmentBasedMetrics``.

    Each file's activity is rasterized to segments of ``segment_length``
    seconds: an event ``[onset, offset)`` activates segments
    ``floor(onset / L)`` to ``ceil(offset / L) - 1``.  Counts are accumulated
    over all segments of all files.  Per segment, with ``Nref``/``Nsys`` the
    numbers of active reference/system classes and ``Ntp`` their overlap,
    ``S = min(Nref, Nsys) - Ntp`` (= min(FN, FP)), ``D = max(0, Nref - Nsys)``,
    ``I = max(0, Nsys - Nref)``; ``ER = (S + D + I) / N`` with ``N`` the total
    number of active reference segment-classes.  Overall F is micro-averaged.
    Class-wise ``ER = (FN + FP) / Nref`` of that class.

    Parameters
    ----------
    reference, estimated : list of tuple
        Events ``(filename, onset_s, offset_s, event_label)`` (dicts with
        ``filename``/``onset``/``offset``/``event_label`` keys are accepted too),
        with ``0 <= onset <= offset`` in seconds and labels from ``classes``.
    classes : sequence of str
        All event labels (defines ``class_wise``).
    segment_length : float, default=1.0
        Segment length in seconds (sed_eval's ``time_resolution``).
    filenames : sequence of str, optional
        Files to evaluate.  Files listed here without any event count as
        all-inactive (they matter only when a duration is known).  If omitted,
        the files that appear in either list are evaluated.  An event in a file
        not listed raises ``ValueError``.
    durations : float or dict {filename: float}, optional
        Clip length(s) in seconds; the file is evaluated on
        ``ceil(duration / segment_length)`` segments (events beyond are cut).
        If omitted: the largest event offset in that file (reference or
        estimated), rounded up to whole segments -- sed_eval's default.

    Returns
    -------
    results : dict
        ``f_measure``, ``precision``, ``recall``, ``error_rate``,
        ``substitution_rate``, ``deletion_rate``, ``insertion_rate``
        (overall), ``n_ref``, ``n_sys``, ``n_tp`` (segment-class counts),
        ``n_files``, ``class_wise`` ``{label: {"f_measure", "precision",
        "recall", "error_rate", "deletion_rate", "insertion_rate", "n_ref",
        "n_sys", "n_tp"}}`` and ``class_wise_average`` (NaN-mean over classes
        of the class-wise values, like sed_eval's class-wise average).

    Notes
    -----
    Precision is NaN when the system outputs nothing, recall when the
    reference is empty (sed_eval's default ``empty_system_output_handling``).
    Rates with ``Nref == 0`` are NaN; sed_eval instead divides by
    ``Nref + eps`` (giving 0 or ~1e15).  Otherwise the values equal sed_eval
    0.2.1's.

    Examples
    --------
    >>> from skattloc.metrics import segment_based_metrics
    >>> ref = [("a.wav", 0.0, 2.0, "dog"), ("a.wav", 3.0, 4.0, "cat")]
    >>> est = [("a.wav", 0.5, 2.5, "dog"), ("a.wav", 3.0, 3.5, "dog")]
    >>> r = segment_based_metrics(ref, est, ["cat", "dog"], durations=5.0)
    >>> round(r["f_measure"], 4), round(r["error_rate"], 4), r["n_ref"], r["n_sys"]
    (0.5714, 0.6667, 3, 4)
    >>> r["class_wise"]["dog"]["precision"], r["class_wise"]["dog"]["recall"]
    (0.5, 1.0)
    """
    classes = _checks.check_classes(classes)
    try:
        res = float(segment_length)
    except (TypeError, ValueError):
        raise ValueError(f"segment_length must be a positive number of seconds; got {segment_length!r}.") from None
    if not (math.isfinite(res) and res > 0):
        raise ValueError(f"segment_length must be a positive number of seconds; got {segment_length!r}.")
    ref = _normalize_events(reference, "reference", classes)
    est = _normalize_events(estimated, "estimated", classes)
    groups = _group_by_file(ref, est, filenames)
    if not groups:
        raise ValueError("Empty input: no events and no filenames to evaluate.")
    class_index = {c: k for k, c in enumerate(classes)}

    tot = dict(tp=0, ref=0, sys=0, S=0, D=0, I=0)
    cw = {c: dict(tp=0, ref=0, sys=0) for c in classes}
    for fn, (r_ev, e_ev) in groups.items():
        if durations is None:
            length = max([e[2] for e in r_ev + e_ev], default=0.0)
        elif isinstance(durations, Mapping):
            if fn not in durations:
                raise ValueError(f"durations has no entry for file {fn!r}.")
            length = durations[fn]
        else:
            length = durations
        try:
            length = float(length)
        except (TypeError, ValueError):
            raise ValueError(f"Duration of file {fn!r} must be a number of seconds; got {length!r}.") from None
        if not (math.isfinite(length) and length >= 0):
            raise ValueError(f"Duration of file {fn!r} must be finite and >= 0 seconds; got {length}.")
        n_seg = int(math.ceil(length * 1 / float(res)))
        R = _segment_roll(r_ev, class_index, n_seg, res)
        E = _segment_roll(e_ev, class_index, n_seg, res)
        tp = R & E
        nref_seg = R.sum(axis=1)
        nsys_seg = E.sum(axis=1)
        ntp_seg = tp.sum(axis=1)
        tot["tp"] += int(ntp_seg.sum())
        tot["ref"] += int(nref_seg.sum())
        tot["sys"] += int(nsys_seg.sum())
        tot["S"] += int((np.minimum(nref_seg, nsys_seg) - ntp_seg).sum())
        tot["D"] += int(np.maximum(0, nref_seg - nsys_seg).sum())
        tot["I"] += int(np.maximum(0, nsys_seg - nref_seg).sum())
        for c, k in class_index.items():
            cw[c]["tp"] += int(tp[:, k].sum())
            cw[c]["ref"] += int(R[:, k].sum())
            cw[c]["sys"] += int(E[:, k].sum())

    out = _overall_block(tot["tp"], tot["ref"], tot["sys"], tot["S"], tot["D"], tot["I"])
    out["n_files"] = len(groups)
    out["class_wise"], out["class_wise_average"] = _class_wise_block(classes, cw)
    return out


def _onset_ok(r, e, t_collar):
    return math.fabs(r[1] - e[1]) <= t_collar


def _offset_ok(r, e, t_collar, pol):
    return math.fabs(r[2] - e[2]) <= max(t_collar, pol * (r[2] - r[1]))


def _max_matching(hit):
    """Maximum bipartite matching on a (n_ref, n_est) boolean hit matrix.

    Starts from the same greedy matching that sed_eval's optimal matcher
    starts from (estimated events in order of their first matching
    reference event, each taking its first free reference event) and then
    augments along alternating paths (Kuhn's algorithm).  Returns a dict
    ``ref_index -> est_index``.
    """
    n_ref, n_est = hit.shape
    adj = {}
    for j, i in zip(*np.nonzero(hit)):  # row-major: by ref, then est
        adj.setdefault(int(i), []).append(int(j))
    match_ref = {}
    for i, refs in adj.items():
        for j in refs:
            if j not in match_ref:
                match_ref[j] = i
                break
    matched_est = set(match_ref.values())

    def augment(i, seen):
        for j in adj[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in match_ref or augment(match_ref[j], seen):
                match_ref[j] = i
                return True
        return False

    for i in adj:
        if i not in matched_est:
            if augment(i, set()):
                matched_est = set(match_ref.values())
    return match_ref


def event_based_metrics(
    reference,
    estimated,
    classes,
    t_collar=0.2,
    percentage_of_length=0.2,
    evaluate_onset=True,
    evaluate_offset=True,
    filenames=None,
):
    """Event-based F-measure and error rate, as ``sed_eval.sound_event.EventBasedMetrics``.

    Within each file, an estimated event matches a reference event of the same
    label when ``|onset_est - onset_ref| <= t_collar`` (if
    ``evaluate_onset``) and ``|offset_est - offset_ref| <= max(t_collar,
    percentage_of_length * (offset_ref - onset_ref))`` (if
    ``evaluate_offset``).  Each event is matched at most once and the number
    of matches is maximized (maximum bipartite matching -- sed_eval's default
    ``event_matching_type="optimal"``).  Unmatched reference and estimated
    events that would match apart from their labels are then paired greedily
    in list order as substitutions.  Overall: ``ER = (S + D + I) / Nref`` with
    ``D = Nref - Ntp - S`` and ``I = Nsys - Ntp - S``; class-wise:
    ``ER = (FN + FP) / Nref``.

    Parameters
    ----------
    reference, estimated : list of tuple
        Events ``(filename, onset_s, offset_s, event_label)`` (or dicts with
        those keys).  The order of events within a file only affects the
        greedy substitution count, exactly as in sed_eval.
    classes : sequence of str
        All event labels.
    t_collar : float, default=0.2
        Onset (and minimum offset) collar in seconds.
    percentage_of_length : float in [0, 1], default=0.2
        Offset collar as a fraction of the reference event length (the DCASE
        2017+ setting; sed_eval's own default is 0.5).
    evaluate_onset, evaluate_offset : bool, default=True
        Which boundaries must match (not both False).
    filenames : sequence of str, optional
        Files to evaluate; default: every file in either list.  Files without
        events contribute nothing.

    Returns
    -------
    results : dict
        ``f_measure``, ``precision``, ``recall``, ``error_rate``,
        ``substitution_rate``, ``deletion_rate``, ``insertion_rate``,
        ``n_ref``, ``n_sys``, ``n_tp``, ``n_files``, ``class_wise`` and
        ``class_wise_average`` (see :func:`segment_based_metrics`).

    Notes
    -----
    The number of matches (hence F-measure, precision, recall and all
    class-wise values) equals sed_eval's.  sed_eval counts substitutions
    greedily among the events left unmatched; when several maximum matchings
    exist, which events are left over can depend on the matching algorithm.
    This implementation starts from the same greedy matching as sed_eval's
    Hopcroft-Karp matcher, so results agree whenever that greedy matching is
    already maximum (the usual case); otherwise ``substitution_rate`` (and the
    split of ``error_rate``) can differ in rare ambiguous cases.  Rates with
    ``Nref == 0`` are NaN (sed_eval divides by ``Nref + eps``).

    Examples
    --------
    >>> from skattloc.metrics import event_based_metrics
    >>> ref = [("a.wav", 1.0, 3.0, "dog"), ("a.wav", 5.0, 6.0, "cat")]
    >>> est = [("a.wav", 1.1, 3.3, "dog"), ("a.wav", 5.0, 6.0, "dog")]
    >>> r = event_based_metrics(ref, est, ["cat", "dog"])
    >>> r["f_measure"], r["error_rate"], r["substitution_rate"]
    (0.5, 0.5, 0.5)
    """
    classes = _checks.check_classes(classes)
    for name, val in (("t_collar", t_collar), ("percentage_of_length", percentage_of_length)):
        if not isinstance(val, numbers.Real) or not math.isfinite(val):
            raise ValueError(f"{name} must be a finite number; got {val!r}.")
    if t_collar <= 0:
        raise ValueError(f"t_collar must be > 0 seconds; got {t_collar}.")
    if not 0 <= percentage_of_length <= 1:
        raise ValueError(f"percentage_of_length must be in [0, 1]; got {percentage_of_length}.")
    if not evaluate_onset and not evaluate_offset:
        raise ValueError("evaluate_onset and evaluate_offset cannot both be False.")
    ref = _normalize_events(reference, "reference", classes)
    est = _normalize_events(estimated, "estimated", classes)
    groups = _group_by_file(ref, est, filenames)
    if not groups:
        raise ValueError("Empty input: no events and no filenames to evaluate.")

    def boundary_ok(r, e):
        if evaluate_onset and not _onset_ok(r, e, t_collar):
            return False
        if evaluate_offset and not _offset_ok(r, e, t_collar, percentage_of_length):
            return False
        return True

    tot = dict(tp=0, ref=0, sys=0, subs=0)
    cw = {c: dict(tp=0, ref=0, sys=0) for c in classes}
    for r_ev, e_ev in groups.values():
        ref_matched = np.zeros(len(r_ev), dtype=bool)
        est_matched = np.zeros(len(e_ev), dtype=bool)
        ntp_file = 0
        for c in classes:
            r_idx = [j for j, e in enumerate(r_ev) if e[3] == c]
            e_idx = [i for i, e in enumerate(e_ev) if e[3] == c]
            ntp = 0
            if r_idx and e_idx:
                hit = np.array(
                    [[boundary_ok(r_ev[j], e_ev[i]) for i in e_idx] for j in r_idx], dtype=bool
                )
                matching = _max_matching(hit)
                for jj, ii in matching.items():
                    ref_matched[r_idx[jj]] = True
                    est_matched[e_idx[ii]] = True
                ntp = len(matching)
            cw[c]["tp"] += ntp
            cw[c]["ref"] += len(r_idx)
            cw[c]["sys"] += len(e_idx)
            ntp_file += ntp
        # greedy substitutions among leftovers, in list order (as sed_eval)
        nsubs = 0
        est_left = [i for i in range(len(e_ev)) if not est_matched[i]]
        counted = set()
        for j in range(len(r_ev)):
            if ref_matched[j]:
                continue
            for i in est_left:
                if i not in counted and boundary_ok(r_ev[j], e_ev[i]):
                    counted.add(i)
                    nsubs += 1
                    break
        tot["tp"] += ntp_file
        tot["ref"] += len(r_ev)
        tot["sys"] += len(e_ev)
        tot["subs"] += nsubs

    S = tot["subs"]
    D = tot["ref"] - tot["tp"] - S
    I = tot["sys"] - tot["tp"] - S
    out = _overall_block(tot["tp"], tot["ref"], tot["sys"], S, D, I)
    out["n_files"] = len(groups)
    out["class_wise"], out["class_wise_average"] = _class_wise_block(classes, cw)
    return out


# PSDS and intersection-based F1 come from sed_scores_eval (the DCASE task 4 reference
# implementation, the optional "psds" extra); skattloc.sed_scores wraps it and imports it
# only when called.
from .sed_scores import intersection_f1, intersection_f1_from_scores, psds  # noqa: E402
