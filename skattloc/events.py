"""Conversion between frame-level activity matrices and sound event lists.

An *event* is a tuple ``(filename, onset_s, offset_s, event_label)`` with
times in seconds; an *event list* is a list of such tuples, the format used by
:func:`skattloc.metrics.segment_based_metrics`,
:func:`skattloc.metrics.event_based_metrics` and the DCASE TSV files read by
``sed_eval``, ``psds_eval`` and ``sed_scores_eval``.

Frame timing
------------
Every function here that turns frames into seconds or back takes ``timing``, the
:class:`~skattloc.timing.FrameTiming` of the frames (or anything
:func:`~skattloc.timing.as_frame_timing` reads: a :class:`~skattloc.LogMelExtractor`, a
dict, a hop in seconds, a pair ``(hop_s, offset_s)``). It is required: there is no
default, because a hop that does not match the features shifts every event time without
a warning. Frame ``i`` covers ``[offset_s + i * hop_s, offset_s + (i + 1) * hop_s)``
seconds (:meth:`FrameTiming.frame_edges <skattloc.timing.FrameTiming.frame_edges>`); its
centre is ``offset_s + (i + 0.5) * hop_s``
(:meth:`~skattloc.timing.FrameTiming.frame_times`).

Decoding
--------
:func:`frames_to_events` and :meth:`EventPostprocessor.decode
<skattloc.postprocessing.EventPostprocessor.decode>` share one decoder (this module's):
per class, a median filter of the scores, a threshold with hysteresis, runs of active
frames as events, gaps shorter than ``min_gap`` bridged, events shorter than
``min_duration`` dropped, times cut to the clip.
"""
from __future__ import annotations

import csv
import math
import numbers
import os
import warnings

import numpy as np
from scipy.ndimage import median_filter as _nd_median_filter

from . import _checks
from .timing import FrameTiming, as_frame_timing

__all__ = [
    "frames_to_events",
    "median_filter_frames",
    "events_to_frames",
    "write_events_tsv",
    "read_events_tsv",
    "tune_thresholds",
]

_TIME_TOL = 1e-9  # seconds; durations/gaps this close to a limit count as equal


# ---------------------------------------------------------------------- frame timing
def check_timing(timing) -> FrameTiming:
    """``timing`` as a :class:`~skattloc.timing.FrameTiming`; the check every function that
    converts frames to seconds makes of its ``timing`` argument.

    Parameters
    ----------
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        What :func:`skattloc.timing.as_frame_timing` accepts. Required: None is refused.

    Returns
    -------
    FrameTiming

    Raises
    ------
    ValueError
        ``timing`` is None or not a frame timing, or its hop is not > 0 seconds or its
        offset not >= 0 seconds (the message names ``timing`` and the field).

    Examples
    --------
    >>> from skattloc.events import check_timing
    >>> check_timing((0.01, 0.0075))
    FrameTiming(hop_s=0.01, offset_s=0.0075)
    >>> check_timing(None)
    Traceback (most recent call last):
    ...
    ValueError: timing is required: the frame timing of the scores (...); there is no default, ...
    """
    if timing is None:
        raise ValueError(
            "timing is required: the frame timing of the scores (a FrameTiming, a LogMelExtractor, a dict "
            "{'hop_s', 'offset_s'}, a hop in seconds or a pair (hop_s, offset_s)); there is no default, since a "
            "hop that does not match the features shifts every time."
        )
    return as_frame_timing(timing, "timing")


def median_filter_frames(seconds, timing):
    """The median filter window, in frames, closest to ``seconds``: an odd number of frames.

    The ``median_filter`` argument of :func:`frames_to_events` for a window given in
    seconds: ``2 * round(seconds / hop_s / 2) + 1`` frames, or None (no filter) when that
    is 1 frame or ``seconds`` is 0. :class:`~skattloc.postprocessing.EventPostprocessor`
    converts its per-class ``median_filter`` (seconds) with this function too.

    Parameters
    ----------
    seconds : float
        Window length in seconds, >= 0.
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        The frames' timing (:func:`check_timing`); only the hop counts, so a number
        (the hop in seconds) will do.

    Returns
    -------
    int or None
        Odd window length in frames (>= 3), or None.

    Examples
    --------
    >>> from skattloc.events import median_filter_frames
    >>> median_filter_frames(0.1, 0.016), median_filter_frames(0.0, 0.016)
    (7, None)
    >>> median_filter_frames(0.1, (0.032, 0.0))  # a hop twice as long: fewer frames
    5
    """
    seconds = _checks.check_seconds(seconds, "median filter length", allow_zero=True)
    timing = check_timing(timing)
    n = 2 * int(round(timing.seconds_to_frames(seconds) / 2)) + 1
    return n if n > 1 else None


# ---------------------------------------------------------------------- the decoder
def _runs(active):
    """Start/stop (exclusive) frame indices of runs of True in a 1-D bool array."""
    padded = np.concatenate(([False], active, [False]))
    d = np.diff(padded.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _hysteresis(s, high, low):
    """(starts, stops) of the runs of ``s >= low`` that hold at least one frame ``>= high``."""
    starts, stops = _runs(s >= low)
    if starts.size == 0 or high <= low:
        return starts, stops
    hi = np.concatenate(([0], np.cumsum(s >= high)))
    keep = hi[stops] - hi[starts] > 0
    return starts[keep], stops[keep]


def _median(x, width):
    """1-D scores median-filtered over ``width`` frames (odd; 1: unchanged), edges repeated."""
    if width > 1 and len(x):
        return _nd_median_filter(x, size=int(width), mode="nearest")
    return x


def _smooth(clip, widths):
    """A clip's ``(n_frames, n_classes)`` scores, column ``k`` median-filtered over ``widths[k]`` frames."""
    out = clip.copy()
    for k, w in enumerate(widths):
        out[:, k] = _median(clip[:, k], w)
    return out


def _segments(onsets, offsets, min_gap, min_duration, duration):
    """Run times (s) -> merged across gaps < ``min_gap``, cut to ``[0, duration]``, without
    events shorter than ``min_duration``: a list of (onset, offset) pairs."""
    merged = []
    for on, off in zip(onsets.tolist(), offsets.tolist()):
        if merged and on - merged[-1][1] < min_gap - _TIME_TOL:
            merged[-1][1] = off
        else:
            merged.append([on, off])
    out = []
    for on, off in merged:
        on, off = min(max(on, 0.0), duration), min(max(off, 0.0), duration)
        if off > on and off - on >= min_duration - _TIME_TOL:
            out.append((on, off))
    return out


def _sort_events(events):
    try:
        events.sort(key=lambda e: (e[0], e[1], e[3], e[2]))
    except TypeError:  # labels or names of mixed types
        events.sort(key=lambda e: (str(e[0]), e[1], str(e[3]), e[2]))
    return events


def _names_and_durations(filenames, clip_duration, clips, timing):
    """One name and one duration (seconds) per clip; durations default to the seconds
    the clip's frames cover, ``timing.clip_duration(n_frames)``."""
    n_clips = len(clips)
    if filenames is None:
        filenames = [f"clip_{i:05d}" for i in range(n_clips)]
    else:
        filenames = [filenames] if isinstance(filenames, (str, bytes)) else list(filenames)
        if len(filenames) != n_clips:
            raise ValueError(f"filenames has {len(filenames)} entries but frame_scores has {n_clips} clips.")
    if clip_duration is None:
        return filenames, [timing.clip_duration(len(c)) for c in clips]
    try:
        d = np.asarray(clip_duration, dtype=np.float64)
    except (TypeError, ValueError):
        d = np.full(1, np.nan)
    if d.ndim == 0:
        d = np.full(n_clips, float(d))
    if d.shape != (n_clips,) or not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError(
            f"clip_duration must be one finite duration > 0 seconds, or one per clip ({n_clips}); got "
            f"{clip_duration!r}."
        )
    return filenames, d.tolist()


def _decode(clips, classes, timing, high, low, widths, min_gap, min_duration, names, durations, gate=None):
    """The decoder of :func:`frames_to_events` and ``EventPostprocessor.decode``, on checked input.

    Per clip ``i`` and class ``k`` (every setting one value per class; ``widths`` in frames,
    ``min_gap`` / ``min_duration`` / ``durations`` in seconds): median filter, hysteresis
    (runs of ``>= low[k]`` holding a frame ``>= high[k]``), runs to seconds through
    ``timing.frame_edges``, gaps bridged, short events dropped. ``gate`` (bool, n_clips x
    n_classes) leaves out a class in a clip where it is False.
    """
    events = []
    for i, (clip, name, dur) in enumerate(zip(clips, names, durations)):
        s = _smooth(clip, widths)
        edges = timing.frame_edges(len(clip))
        for k, label in enumerate(classes):
            if gate is not None and not gate[i, k]:
                continue
            a, b = _hysteresis(s[:, k], high[k], low[k])
            for on, off in _segments(edges[a], edges[b], min_gap[k], min_duration[k], dur):
                events.append((name, float(on), float(off), label))
    return _sort_events(events)


def frames_to_events(
    frame_scores,
    classes,
    *,
    timing,
    threshold=0.5,
    median_filter=None,
    min_duration=0.0,
    min_gap=0.0,
    filenames=None,
    clip_duration=None,
):
    """Turn frame-level scores into a list of sound events.

    Processing, per clip and class: (1) a frame is active when its score is
    ``>= threshold``; (2) optional median filtering of the activity over
    ``median_filter`` frames; (3) runs of active frames ``start .. stop`` (stop
    exclusive) become events ``[offset_s + start * hop_s, offset_s + stop * hop_s)``;
    (4) events of the same class separated by a gap shorter than ``min_gap`` seconds are
    merged; (5) times are cut to ``[0, clip_duration]``; (6) events shorter than
    ``min_duration`` seconds are dropped. This is :meth:`EventPostprocessor.decode
    <skattloc.postprocessing.EventPostprocessor.decode>` with a single threshold, one
    setting for all classes and no clip gate: the two share one decoder and give the same
    events for the same settings.

    Parameters
    ----------
    frame_scores : ndarray or list of ndarray
        Frame scores (e.g. probabilities) of shape ``(n_clips, n_frames,
        n_classes)``, a list of ``(n_frames_i, n_classes)`` arrays, or a
        single ``(n_frames, n_classes)`` array (one clip).  Binary 0/1
        matrices work too.
    classes : sequence of str
        Label of each class column, length ``n_classes``.
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        The frames' timing (keyword only, required): a
        :class:`~skattloc.timing.FrameTiming`, the
        :class:`~skattloc.LogMelExtractor` that made the features, ``{"hop_s", "offset_s"}``,
        a hop in seconds (frame 0 at 0 s) or a pair ``(hop_s, offset_s)``.
    threshold : float, sequence of float or dict, default=0.5
        Activation threshold: one value for all classes, one per class (in
        ``classes`` order), or ``{label: value}`` covering every class.
        Per-class thresholds are typically from :func:`tune_thresholds`.
    median_filter : int or None, default=None
        Median filter window length in **frames** (odd positive int; ``None``
        or 1 disables), with edge replication. Median-filtering the scores and
        then thresholding is the same as median-filtering the thresholded
        activity. For a window of ``w_s`` seconds use :func:`median_filter_frames`
        (``2 * round(w_s / hop_s / 2) + 1``).
    min_duration : float, default=0.0
        Drop events shorter than this many seconds (after merging/clipping).
    min_gap : float, default=0.0
        Merge consecutive events of one class whose gap (next onset minus
        previous offset) is shorter than this many seconds.
    filenames : sequence of str, optional
        One name per clip; default ``"clip_00000"``, ``"clip_00001"``, ...
    clip_duration : float or sequence of float, optional
        Clip length(s) in seconds; onsets/offsets are cut to ``[0, clip_duration]``.
        Default: the seconds each clip's frames cover,
        ``timing.clip_duration(n_frames)``.

    Returns
    -------
    events : list of tuple
        ``(filename, onset_s, offset_s, event_label)`` with float times,
        sorted by filename, onset, label.

    Raises
    ------
    TypeError
        Without ``timing``.
    ValueError
        On malformed shapes, non-finite scores, mismatched ``classes`` /
        ``filenames`` / thresholds, an invalid ``timing``, or invalid filter and time
        parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.events import frames_to_events
    >>> from skattloc.timing import FrameTiming
    >>> p = np.array([[0.1, 0.9], [0.8, 0.9], [0.7, 0.2], [0.2, 0.1]])   # 4 frames
    >>> frames_to_events(p, ["dog", "cat"], timing=FrameTiming(0.5, 0.0), filenames=["a.wav"])
    [('a.wav', 0.0, 1.0, 'cat'), ('a.wav', 0.5, 1.5, 'dog')]
    """
    timing = check_timing(timing)
    classes = _checks.check_classes(classes)
    clips = _checks.check_frame_scores(frame_scores, len(classes))
    min_duration = _checks.check_seconds(min_duration, "min_duration", allow_zero=True)
    min_gap = _checks.check_seconds(min_gap, "min_gap", allow_zero=True)
    thr = _checks.per_class(threshold, "threshold", classes)
    if median_filter is not None and (
        isinstance(median_filter, bool)
        or not isinstance(median_filter, numbers.Integral)
        or median_filter < 1
        or median_filter % 2 == 0
    ):
        raise ValueError(
            "median_filter must be None or an odd positive int (window length in "
            f"frames); got {median_filter!r}."
        )
    names, durations = _names_and_durations(filenames, clip_duration, clips, timing)
    n = len(classes)
    return _decode(clips, classes, timing, thr, thr, [int(median_filter or 1)] * n, [min_gap] * n,
                   [min_duration] * n, names, durations)


def events_to_frames(events, filenames, classes, n_frames, *, timing, n_clips=None):
    """Rasterize an event list into a binary frame activity matrix.

    Frame ``i`` of a clip is active for a class when its centre time
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
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        The frames' timing (keyword only, required; see :func:`frames_to_events`).
    n_clips : int, optional
        Number of clips when ``filenames`` is ``None``.

    Returns
    -------
    frames : ndarray of shape (n_clips, n_frames, n_classes), dtype uint8
        Reference activity matrix.

    Examples
    --------
    >>> from skattloc.events import events_to_frames
    >>> from skattloc.timing import FrameTiming
    >>> ev = [("a.wav", 0.5, 1.5, "dog"), (1, 0.0, 0.5, "cat")]
    >>> events_to_frames(ev, ["a.wav", "b.wav"], ["dog", "cat"], n_frames=4,
    ...                  timing=FrameTiming(0.5, 0.0))[:, :, 0]
    array([[0, 1, 1, 0],
           [0, 0, 0, 0]], dtype=uint8)
    """
    timing = check_timing(timing)
    classes = _checks.check_classes(classes)
    _checks.check_int(n_frames, "n_frames", 0)
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
    centers = timing.frame_times(n_frames)
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


def _best_f1_threshold(y, s, default=0.5):
    """The threshold on ``s`` that maximizes the F1 of ``s >= threshold`` against 0/1 ``y``:
    exact, the midpoint between the lowest score kept and the next lower one (the minimum
    score when every value is kept); ``default`` when ``y`` has no positive.

    Used for frames (:func:`tune_thresholds`) and for clips
    (``EventPostprocessor.calibrate``)."""
    y = np.asarray(y, dtype=bool)
    if not y.any():
        return default
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
