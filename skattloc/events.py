"""Conversion between frame-level activity matrices and sound event lists.

An *event* is a tuple ``(filename, onset_s, offset_s, event_label)`` with
times in seconds; an *event list* is a list of such tuples, the format used by
:func:`skattloc.metrics.segment_based_metrics`,
:func:`skattloc.metrics.event_based_metrics` and the DCASE TSV files read by
``sed_eval``, ``psds_eval`` and ``sed_scores_eval``.

Frame-time convention
---------------------
Frame ``i`` covers ``[offset_s + i * hop_s, offset_s + (i + 1) * hop_s)``
seconds, where ``hop_s = hop_length / sr`` and
``offset_s = (n_fft - hop_length) / 2 / sr`` (the convention of
:class:`skattloc.features.LogMelExtractor`; defaults 256 / 16000 = 0.016 s and
0.008 s).  Its center is ``offset_s + (i + 0.5) * hop_s``.
"""
from __future__ import annotations

import csv
import math
import numbers
import os
import warnings
from collections.abc import Mapping

import numpy as np
from scipy.ndimage import median_filter as _nd_median_filter

from . import _checks

__all__ = [
    "frames_to_events",
    "median_filter_frames",
    "events_to_frames",
    "write_events_tsv",
    "read_events_tsv",
    "tune_thresholds",
]

_TIME_TOL = 1e-9  # seconds; durations/gaps this close to a limit count as equal


def _frame_clips(frame_scores):
    """Accept (n_clips, n_frames, n_classes), list of 2-D, or one 2-D array."""
    if isinstance(frame_scores, np.ndarray) and frame_scores.ndim == 2:
        clips = _checks.as_clip_list([frame_scores], "frame_scores")
    else:
        clips = _checks.as_clip_list(frame_scores, "frame_scores")
    if len(clips) == 0:
        raise ValueError("Empty input: frame_scores contains no clips.")
    n_classes = clips[0].shape[1]
    for i, c in enumerate(clips):
        if c.shape[1] != n_classes:
            raise ValueError(
                f"frame_scores[{i}] has {c.shape[1]} classes but clip 0 has {n_classes}."
            )
        _checks.check_finite(c, f"frame_scores[{i}]")
    return clips


def _thresholds(threshold, classes):
    return _checks.per_class(threshold, "threshold", classes)


def _runs(active):
    """Start/stop (exclusive) frame indices of runs of True in a 1-D bool array."""
    padded = np.concatenate(([False], active, [False]))
    d = np.diff(padded.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def median_filter_frames(seconds, hop_s):
    """The median filter window, in frames, closest to ``seconds``: an odd number of frames.

    The ``median_filter`` argument of :func:`frames_to_events` for a window given in
    seconds: ``2 * round(seconds / hop_s / 2) + 1`` frames, or None (no filter) when that
    is 1 frame or ``seconds`` is 0.

    Parameters
    ----------
    seconds : float
        Window length in seconds, >= 0.
    hop_s : float
        Frame hop in seconds (``LogMelExtractor().hop_seconds``), > 0.

    Returns
    -------
    int or None
        Odd window length in frames (>= 3), or None.

    Examples
    --------
    >>> from skattloc.events import median_filter_frames
    >>> median_filter_frames(0.1, 0.016), median_filter_frames(0.0, 0.016)
    (7, None)
    """
    seconds = _checks.check_seconds(seconds, "median filter length", allow_zero=True)
    hop_s = _checks.check_seconds(hop_s, "hop_s")
    n = 2 * int(round(seconds / hop_s / 2)) + 1
    return n if n > 1 else None


def frames_to_events(
    frame_scores,
    classes,
    hop_s=0.016,
    offset_s=0.008,
    threshold=0.5,
    median_filter=None,
    min_duration=0.0,
    min_gap=0.0,
    filenames=None,
    clip_duration=None,
):
    """Turn frame-level scores into a list of sound events.

    Processing, per clip and class: (1) a frame is active when its score is
    ``>= threshold``; (2) optional median filtering of the binary activity
    over ``median_filter`` frames; (3) runs of active frames become events
    ``[offset_s + start * hop_s, offset_s + stop * hop_s)``; (4) events of the
    same class separated by a gap shorter than ``min_gap`` seconds are merged;
    (5) times are clipped to ``[0, clip_duration]`` if given; (6) events
    shorter than ``min_duration`` seconds are dropped.

    Parameters
    ----------
    frame_scores : ndarray or list of ndarray
        Frame scores (e.g. probabilities) of shape ``(n_clips, n_frames,
        n_classes)``, a list of ``(n_frames_i, n_classes)`` arrays, or a
        single ``(n_frames, n_classes)`` array (one clip).  Binary 0/1
        matrices work too.
    classes : sequence of str
        Label of each class column, length ``n_classes``.
    hop_s : float, default=0.016
        Frame hop in seconds (``hop_length / sr``).
    offset_s : float, default=0.008
        Start time of frame 0 in seconds (``(n_fft - hop_length) / 2 / sr``).
    threshold : float, sequence of float or dict, default=0.5
        Activation threshold: one value for all classes, one per class (in
        ``classes`` order), or ``{label: value}`` covering every class.
        Per-class thresholds are typically from :func:`tune_thresholds`.
    median_filter : int or None, default=None
        Median filter window length in **frames** (odd positive int; ``None``
        or 1 disables).  It is applied to the thresholded binary activity with
        edge replication; since thresholding commutes with a median, this is
        the same as median-filtering the scores first.  For a window of
        ``w_s`` seconds use :func:`median_filter_frames` (``2 * round(w_s / hop_s / 2) + 1``).
    min_duration : float, default=0.0
        Drop events shorter than this many seconds (after merging/clipping).
    min_gap : float, default=0.0
        Merge consecutive events of one class whose gap (next onset minus
        previous offset) is shorter than this many seconds.
    filenames : sequence of str, optional
        One name per clip; default ``"clip_00000"``, ``"clip_00001"``, ...
    clip_duration : float or sequence of float, optional
        Clip length(s) in seconds; onsets/offsets are clipped to
        ``[0, clip_duration]``.

    Returns
    -------
    events : list of tuple
        ``(filename, onset_s, offset_s, event_label)`` with float times,
        sorted by filename, onset, label.

    Raises
    ------
    ValueError
        On malformed shapes, non-finite scores, mismatched ``classes`` /
        ``filenames`` / thresholds, or invalid filter and time parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.events import frames_to_events
    >>> p = np.array([[0.1, 0.9], [0.8, 0.9], [0.7, 0.2], [0.2, 0.1]])   # 4 frames
    >>> frames_to_events(p, ["dog", "cat"], hop_s=0.5, offset_s=0.0, filenames=["a.wav"])
    [('a.wav', 0.0, 1.0, 'cat'), ('a.wav', 0.5, 1.5, 'dog')]
    """
    clips = _frame_clips(frame_scores)
    n_clips = len(clips)
    classes = _checks.check_classes(classes, clips[0].shape[1])
    hop_s = _checks.check_seconds(hop_s, "hop_s")
    if not isinstance(offset_s, numbers.Real) or not math.isfinite(offset_s):
        raise ValueError(f"offset_s must be a finite number of seconds; got {offset_s!r}.")
    offset_s = float(offset_s)
    min_duration = _checks.check_seconds(min_duration, "min_duration", allow_zero=True)
    min_gap = _checks.check_seconds(min_gap, "min_gap", allow_zero=True)
    thr = _thresholds(threshold, classes)

    if median_filter is not None:
        if (
            isinstance(median_filter, bool)
            or not isinstance(median_filter, numbers.Integral)
            or median_filter < 1
            or median_filter % 2 == 0
        ):
            raise ValueError(
                "median_filter must be None or an odd positive int (window length in "
                f"frames); got {median_filter!r}."
            )
        median_filter = int(median_filter)

    if filenames is None:
        filenames = [f"clip_{i:05d}" for i in range(n_clips)]
    else:
        if isinstance(filenames, (str, bytes)):
            filenames = [filenames]
        filenames = list(filenames)
        if len(filenames) != n_clips:
            raise ValueError(
                f"filenames has {len(filenames)} entries but frame_scores has {n_clips} clips."
            )

    if clip_duration is None:
        durations = [None] * n_clips
    else:
        dur = np.asarray(clip_duration, dtype=np.float64)
        if dur.ndim == 0:
            dur = np.full(n_clips, float(dur))
        if dur.shape != (n_clips,):
            raise ValueError(
                f"clip_duration must be a scalar or one value per clip ({n_clips}); got "
                f"shape {dur.shape}."
            )
        if not np.all(np.isfinite(dur)) or np.any(dur <= 0):
            raise ValueError(f"clip_duration values must be finite and > 0 seconds; got {dur.tolist()}.")
        durations = dur.tolist()

    events = []
    for clip, fname, dur in zip(clips, filenames, durations):
        active = clip >= thr[None, :]
        if median_filter is not None and median_filter > 1 and clip.shape[0] > 0:
            active = _nd_median_filter(
                active.astype(np.uint8), size=(median_filter, 1), mode="nearest"
            ).astype(bool)
        for k, label in enumerate(classes):
            starts, stops = _runs(active[:, k])
            if starts.size == 0:
                continue
            onsets = offset_s + starts * hop_s
            offsets = offset_s + stops * hop_s
            merged = []
            for on, off in zip(onsets.tolist(), offsets.tolist()):
                if merged and on - merged[-1][1] < min_gap - _TIME_TOL:
                    merged[-1][1] = off
                else:
                    merged.append([on, off])
            for on, off in merged:
                if dur is not None:
                    on = min(max(on, 0.0), dur)
                    off = min(max(off, 0.0), dur)
                else:
                    on = max(on, 0.0)
                    off = max(off, 0.0)
                if off <= on or off - on < min_duration - _TIME_TOL:
                    continue
                events.append((fname, float(on), float(off), label))
    try:
        events.sort(key=lambda e: (e[0], e[1], e[3], e[2]))
    except TypeError:  # labels or names of mixed types
        events.sort(key=lambda e: (str(e[0]), e[1], str(e[3]), e[2]))
    return events


def events_to_frames(
    events, filenames, classes, n_frames, hop_s=0.016, offset_s=0.008, n_clips=None
):
    """Rasterize an event list into a binary frame activity matrix.

    Frame ``i`` of a clip is active for a class when its center time
    ``offset_s + (i + 0.5) * hop_s`` lies in ``[onset, offset)`` of an event
    of that class; for clean inputs this inverts :func:`frames_to_events`.

    Parameters
    ----------
    events : list of tuple
        ``(filename_or_index, onset_s, offset_s, event_label)``.  The first
        element is a file name from ``filenames`` or an integer clip index.
    filenames : sequence of str or None
        Clip names defining the row order.  May be ``None`` when events use
        integer clip indices; then ``n_clips`` gives the number of clips
        (default: largest index + 1).
    classes : sequence of str
        Class labels defining the column order.
    n_frames : int
        Number of frames per clip.
    hop_s, offset_s : float, default=0.016, 0.008
        Frame hop and start of frame 0, in seconds.
    n_clips : int, optional
        Number of clips when ``filenames`` is ``None``.

    Returns
    -------
    frames : ndarray of shape (n_clips, n_frames, n_classes), dtype uint8
        Reference activity matrix.

    Examples
    --------
    >>> from skattloc.events import events_to_frames
    >>> ev = [("a.wav", 0.5, 1.5, "dog"), (1, 0.0, 0.5, "cat")]
    >>> events_to_frames(ev, ["a.wav", "b.wav"], ["dog", "cat"], n_frames=4,
    ...                  hop_s=0.5, offset_s=0.0)[:, :, 0]
    array([[0, 1, 1, 0],
           [0, 0, 0, 0]], dtype=uint8)
    """
    classes = _checks.check_classes(classes)
    _checks.check_int(n_frames, "n_frames", 0)
    hop_s = _checks.check_seconds(hop_s, "hop_s")
    if not isinstance(offset_s, numbers.Real) or not math.isfinite(offset_s):
        raise ValueError(f"offset_s must be a finite number of seconds; got {offset_s!r}.")
    events = list(events)
    if filenames is not None:
        if isinstance(filenames, (str, bytes)):
            raise ValueError("filenames must be a sequence of names, not a string.")
        filenames = list(filenames)
        file_index = {f: i for i, f in enumerate(filenames)}
        if len(file_index) != len(filenames):
            raise ValueError("filenames contains duplicates.")
        total = len(filenames)
        if n_clips is not None and n_clips != total:
            raise ValueError(f"n_clips={n_clips} disagrees with len(filenames)={total}.")
    else:
        file_index = None
        if n_clips is None:
            idx = [e[0] for e in events]
            if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in idx):
                raise ValueError(
                    "filenames is None, so every event must name its clip by an integer index."
                )
            total = (max(idx) + 1) if idx else 0
        else:
            total = int(n_clips)
    class_index = {c: k for k, c in enumerate(classes)}
    out = np.zeros((total, int(n_frames), len(classes)), dtype=np.uint8)
    centers = offset_s + (np.arange(n_frames) + 0.5) * hop_s
    for n, ev in enumerate(events):
        clip, onset, offset, label = _checks.event_fields(ev, n, "events", mappings=False)
        if isinstance(clip, numbers.Integral) and not isinstance(clip, bool):
            row = int(clip)
            if not 0 <= row < total:
                raise ValueError(f"events[{n}] has clip index {row}, outside [0, {total}).")
        else:
            if file_index is None or clip not in file_index:
                raise ValueError(f"events[{n}] refers to file {clip!r}, which is not in filenames.")
            row = file_index[clip]
        if label not in class_index:
            raise ValueError(f"events[{n}] has label {label!r}, which is not in classes {classes}.")
        onset, offset = float(onset), float(offset)
        if not (math.isfinite(onset) and math.isfinite(offset)) or offset < onset:
            raise ValueError(
                f"events[{n}] must have finite times with onset <= offset; got ({onset}, {offset})."
            )
        a = np.searchsorted(centers, onset, side="left")
        b = np.searchsorted(centers, offset, side="left")
        out[row, a:b, class_index[label]] = 1
    return out


_TSV_HEADER = ("filename", "onset", "offset", "event_label")


def write_events_tsv(events, path):
    """Write an event list as a DCASE tab-separated file.

    The file has the header ``filename<TAB>onset<TAB>offset<TAB>event_label``
    and one row per event with times in seconds, 3 decimals -- the format
    read by ``sed_eval``, ``psds_eval`` and ``sed_scores_eval``.  Clips
    without events do not appear.

    Parameters
    ----------
    events : list of tuple
        ``(filename, onset_s, offset_s, event_label)``.
    path : str or os.PathLike
        Output file (overwritten).

    Examples
    --------
    >>> import os, tempfile
    >>> from skattloc.events import write_events_tsv, read_events_tsv
    >>> path = os.path.join(tempfile.mkdtemp(), "events.tsv")
    >>> write_events_tsv([("a.wav", 0.5, 1.25, "dog")], path)
    >>> open(path).read().splitlines()
    ['filename\\tonset\\toffset\\tevent_label', 'a.wav\\t0.500\\t1.250\\tdog']
    >>> read_events_tsv(path)
    [('a.wav', 0.5, 1.25, 'dog')]
    """
    rows = []
    for n, ev in enumerate(events):
        fname, onset, offset, label = _checks.event_fields(ev, n, "events", mappings=False)
        onset, offset = float(onset), float(offset)
        if not (math.isfinite(onset) and math.isfinite(offset)):
            raise ValueError(f"events[{n}] has a non-finite time: {ev!r}.")
        for field in (fname, label):
            if any(ch in str(field) for ch in "\t\n\r"):
                raise ValueError(f"events[{n}] has a tab or newline inside {field!r}.")
        rows.append(f"{fname}\t{onset:.3f}\t{offset:.3f}\t{label}\n")
    with open(os.fspath(path), "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(_TSV_HEADER) + "\n")
        fh.writelines(rows)


def read_events_tsv(path):
    """Read a DCASE tab-separated event file.

    The header must name the columns ``filename``, ``onset``, ``offset`` and
    ``event_label`` (any order; extra columns are ignored).  Rows with an
    empty onset or label (a clip listed without events) are skipped.

    Parameters
    ----------
    path : str or os.PathLike
        TSV file.

    Returns
    -------
    events : list of tuple
        ``(filename, onset_s, offset_s, event_label)`` in file order, times as
        float seconds.

    Examples
    --------
    >>> import os, tempfile
    >>> from skattloc.events import read_events_tsv
    >>> path = os.path.join(tempfile.mkdtemp(), "ref.tsv")
    >>> _ = open(path, "w").write("filename\\tevent_label\\tonset\\toffset\\nb.wav\\tcat\\t1\\t2.5\\n")
    >>> read_events_tsv(path)
    [('b.wav', 1.0, 2.5, 'cat')]
    """
    with open(os.fspath(path), newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file; expected the header columns {list(_TSV_HEADER)}.")
        header = [h.strip() for h in header]
        missing = [c for c in _TSV_HEADER if c not in header]
        if missing:
            raise ValueError(
                f"{path}: header {header} lacks column(s) {missing}; expected "
                f"{list(_TSV_HEADER)}."
            )
        col = {c: header.index(c) for c in _TSV_HEADER}
        events = []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not x.strip() for x in row):
                continue
            row = row + [""] * (len(header) - len(row))
            onset, offset, label = (row[col[c]].strip() for c in ("onset", "offset", "event_label"))
            if onset == "" or offset == "" or label == "":
                continue
            try:
                on, off = float(onset), float(offset)
            except ValueError:
                raise ValueError(
                    f"{path}, line {line_no}: onset/offset must be numbers; got {onset!r}, {offset!r}."
                ) from None
            events.append((row[col["filename"]], on, off, label))
    return events


def _best_f1_threshold(y, s):
    """Exact frame-F1-optimal threshold (midpoint between distinct scores)."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.flatnonzero(np.diff(s_sorted) != 0)
    last = np.concatenate((distinct, [s_sorted.size - 1]))  # last index of each score group
    tp = np.cumsum(y_sorted)[last]
    n_pred = last + 1
    n_pos = y.sum()
    f1 = 2.0 * tp / (n_pred + n_pos)
    g = int(np.argmax(f1))  # first best = highest threshold reaching the best F1
    upper = s_sorted[last[g]]
    if g + 1 < last.size:
        lower = s_sorted[last[g + 1]]
        return float((upper + lower) / 2.0)
    return float(upper)  # every frame active: threshold at the minimum score


def _grid_f1_threshold(y, s, grid):
    s_sorted = np.sort(s)
    y_by_score = y[np.argsort(s, kind="stable")]
    # number of frames (and positives) with score >= t
    idx = np.searchsorted(s_sorted, grid, side="left")
    n_pred = s.size - idx
    cum_pos = np.concatenate(([0.0], np.cumsum(y_by_score)))
    tp = cum_pos[-1] - cum_pos[idx]
    f1 = 2.0 * tp / (n_pred + y.sum())
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(grid[best[len(best) // 2]])


def tune_thresholds(frame_true, frame_scores, classes=None, metric="f1", grid=None, default=0.5):
    """Per-class thresholds maximizing frame-level F1 on the given data.

    Choose thresholds on **training folds only** and apply them, unchanged,
    to the held-out fold; tuning on the fold being scored inflates every
    threshold-based metric.

    Parameters
    ----------
    frame_true : ndarray or list of ndarray
        Binary frame activity, ``(n_clips, n_frames, n_classes)`` or a list
        of ``(n_frames_i, n_classes)`` arrays.
    frame_scores : same structure as ``frame_true``
        Frame scores.
    classes : sequence of str, optional
        Labels of the class columns.  If given the result is a dict.
    metric : {"f1"}, default="f1"
        Frame-level F1 of the class (frames active when ``score >=
        threshold``, as in :func:`frames_to_events`).
    grid : array-like of float, optional
        Candidate thresholds.  If omitted, the search is exact over all
        distinct scores and the returned value is the midpoint between the
        lowest score kept active and the next lower score.  With a grid, ties
        of the best F1 resolve to the middle of the tied candidates.
    default : float, default=0.5
        Returned (with a ``UserWarning``) for a class without any active frame.

    Returns
    -------
    thresholds : ndarray of shape (n_classes,) or dict {label: float}
        Usable as ``threshold=`` in :func:`frames_to_events`.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.events import tune_thresholds
    >>> y = np.array([[[0], [0], [1], [1]]])
    >>> s = np.array([[[0.1], [0.3], [0.7], [0.9]]])
    >>> tune_thresholds(y, s)
    array([0.5])
    >>> tune_thresholds(y, s, classes=["dog"], grid=[0.2, 0.4, 0.6, 0.8])
    {'dog': 0.6}
    """
    if metric != "f1":
        raise ValueError(f"metric={metric!r} is not supported; expected one of ['f1'].")
    true_clips, score_clips = _checks.check_frame_pairs(frame_true, frame_scores, ("frame_true", "frame_scores"))
    yt, ys = np.concatenate(true_clips, axis=0), np.concatenate(score_clips, axis=0)
    n_classes = yt.shape[1]
    if classes is not None:
        classes = _checks.check_classes(classes, n_classes)
    if grid is not None:
        grid = np.sort(np.asarray(grid, dtype=np.float64).ravel())
        if grid.size == 0 or not np.all(np.isfinite(grid)):
            raise ValueError("grid must be a non-empty array of finite thresholds.")
    thr = np.empty(n_classes)
    for k in range(n_classes):
        y, s = yt[:, k], ys[:, k]
        if y.sum() == 0:
            name = classes[k] if classes is not None else k
            warnings.warn(
                f"Class {name!r} has no active frame; F1 is undefined, using default "
                f"threshold {default}.",
                UserWarning,
                stacklevel=2,
            )
            thr[k] = default
        elif grid is None:
            thr[k] = _best_f1_threshold(y, s)
        else:
            thr[k] = _grid_f1_threshold(y, s, grid)
    if classes is None:
        return thr
    return {c: float(t) for c, t in zip(classes, thr)}
