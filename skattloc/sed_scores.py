"""PSDS and intersection-based F1 through ``sed_scores_eval`` (an optional extra).

The Polyphonic Sound Detection Score (PSDS; Bilen et al., ICASSP 2020) has
ranked DCASE task 4 systems since 2020 (scenarios 1 and 2 since 2021).  This
module does not compute it by hand: it converts skattloc's frame scores and
event lists to the input format of ``sed_scores_eval`` (Ebbers, Serizel &
Haeb-Umbach, ICASSP 2022; https://github.com/fgnt/sed_scores_eval), the
reference implementation used by the DCASE task 4 baselines, and calls it.
That package is optional: install it with ``pip install "skattloc[psds]"``.
Importing this module does not need it; each function imports it when called
and raises :class:`ImportError` with the install command when it is missing.

Frame times come from the required keyword argument ``timing``, the
:class:`~skattloc.timing.FrameTiming` of the scores (or a
:class:`~skattloc.LogMelExtractor`, a pair ``(hop_s, offset_s)``, ...; see
:func:`skattloc.events.check_timing`): frame ``i`` of a clip covers
``[offset_s + i * hop_s, offset_s + (i + 1) * hop_s)`` seconds.
Given the clip's duration ``d`` (seconds), frames that start at or after ``d``
are dropped, the first frame is extended back to 0 s and the last remaining one
is stretched or cut to end at exactly ``d``, so that the scores cover the clip
``[0, d]`` as ``sed_scores_eval`` expects.  If the frames leave more than one
hop uncovered at either end, a :class:`ValueError` says so (usually a wrong
``timing`` or ``durations``).

Reference events are ``(filename, onset_s, offset_s, event_label)`` tuples (or
dicts with those keys), as :func:`skattloc.events.read_events_tsv` returns.
``sed_scores_eval`` refuses overlapping or touching reference events of one
class in one file, so such events are merged into one event (their union)
before scoring; offsets after the end of the clip are cut to its duration.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import numbers
import re
import types
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ._checks import check_classes, check_frame_scores, event_fields, per_class
from .events import check_timing

__all__ = [
    "PSDS_SCENARIOS",
    "check_available",
    "scores_to_dataframes",
    "psds",
    "psds_bootstrap",
    "intersection_f1",
    "intersection_f1_from_scores",
]

#: PSDS parameters of DCASE task 4 (2021-2024), as passed to
#: ``sed_scores_eval.intersection_based.psds`` by the DESED_task baselines.
#: Scenario 1 rewards precise localization, scenario 2 rewards telling the
#: classes apart (it penalizes cross-triggers).
PSDS_SCENARIOS = types.MappingProxyType({
    1: types.MappingProxyType(dict(
        dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None,
        alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0,
    )),
    2: types.MappingProxyType(dict(
        dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3,
        alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0,
    )),
})

_PSDS_OVERRIDES = ("dtc_threshold", "gtc_threshold", "cttc_threshold", "alpha_ct", "alpha_st")
_INSTALL_HINT = 'pip install "skattloc[psds]"'
_TIME_TOL = 1e-9  # seconds; a frame edge this close to the clip edge counts as on it


# --------------------------------------------------------------------------
# the optional dependency
# --------------------------------------------------------------------------
def _version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _sse_problem():
    """Why ``sed_scores_eval`` cannot be used here (str), or None; no import needed."""
    try:
        found = importlib.util.find_spec("sed_scores_eval") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["sed_scores_eval"] is None
        found = False
    if not found:
        return "sed_scores_eval is not installed"
    try:
        sse_version = importlib.metadata.version("sed_scores_eval")
        pandas_version = importlib.metadata.version("pandas")
    except importlib.metadata.PackageNotFoundError:
        return None
    # sed_scores_eval 0.0.4 hands read-only arrays from DataFrame.to_numpy() to a
    # Cython routine that needs writable buffers; under pandas 3 (copy-on-write)
    # that fails with "ValueError: buffer source array is read-only".
    if _version_tuple(sse_version) <= (0, 0, 4) and _version_tuple(pandas_version) >= (3,):
        return (
            f"sed_scores_eval {sse_version} does not work with pandas {pandas_version} "
            "(pandas >= 3 returns read-only arrays that its Cython code cannot take); "
            'install pandas < 3, e.g. pip install "pandas<3"'
        )
    return None


_SSE_PROBLEM = _sse_problem()


def _sed_scores_eval():
    """Import ``sed_scores_eval`` or raise an ImportError that says how to install it."""
    if _SSE_PROBLEM is not None and _SSE_PROBLEM != "sed_scores_eval is not installed":
        raise ImportError(f"{_SSE_PROBLEM}. The psds extra pins it: {_INSTALL_HINT}")
    try:
        with warnings.catch_warnings():
            # sed_scores_eval imports sed_eval -> dcase_util -> pkg_resources, which warns.
            warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated", category=UserWarning)
            import sed_scores_eval
            import sed_scores_eval.intersection_based  # noqa: F401
            from sed_scores_eval.base_modules import detection, precision_recall, scores  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "PSDS and intersection-based F1 need the optional package sed_scores_eval "
            f"(import failed: {exc}). Install it with: {_INSTALL_HINT}"
        ) from exc
    return sed_scores_eval


def check_available():
    """Raise ImportError (saying how to install it) unless ``sed_scores_eval`` can be used.

    Examples
    --------
    >>> from skattloc import sed_scores
    >>> try:
    ...     sed_scores.check_available()
    ... except ImportError as exc:
    ...     print("skattloc[psds]" in str(exc))
    """
    _sed_scores_eval()


def _doctest_needs_sed_scores_eval(func):
    """Mark the docstring examples of ``func`` as skipped when sed_scores_eval is unusable."""
    if _SSE_PROBLEM is not None and func.__doc__:
        func.__doc__ = re.sub(r"^(\s*>>> .*)$", r"\1  # doctest: +SKIP", func.__doc__, flags=re.M)
    return func


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------
def _finite_number(value, name):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}.")
    return float(value)


def _check_classes(classes):
    """:func:`skattloc._checks.check_classes`, plus what sed_scores_eval cannot take."""
    classes = check_classes(classes)
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (str, numbers.Integral)):
            raise ValueError(f"class labels must be strings (or ints); got {c!r} in {classes}.")
        if c in ("onset", "offset"):
            raise ValueError(
                f"a class may not be called {c!r}: sed_scores_eval uses 'onset' and 'offset' "
                "as the names of its time columns."
            )
        if isinstance(c, str) and "\\" in c:
            raise ValueError(f"class labels may not contain a backslash (sed_scores_eval); got {c!r}.")
    return classes


def _check_filenames(filenames):
    if isinstance(filenames, (str, bytes)) or not isinstance(filenames, (Sequence, np.ndarray)):
        raise ValueError(
            f"filenames must be a sequence of file names (str), one per clip; got "
            f"{type(filenames).__name__}."
        )
    files = list(filenames)
    if len(files) == 0:
        raise ValueError("Empty input: filenames contains no files.")
    bad = [f for f in files if not isinstance(f, str)]
    if bad:
        raise ValueError(f"filenames must be strings; got {bad[:3]!r}.")
    dup = sorted(f for f, n in Counter(files).items() if n > 1)
    if dup:
        raise ValueError(f"filenames contains duplicates: {dup[:5]}.")
    return files


def _check_durations(durations, files):
    """Return {filename: duration_s} for every file in ``files``."""
    if durations is None:
        raise ValueError("durations is required: the clip length(s) in seconds.")
    if isinstance(durations, Mapping):
        missing = [f for f in files if f not in durations]
        if missing:
            raise ValueError(
                f"durations has no entry for {len(missing)} file(s) in filenames, e.g. "
                f"{missing[:3]}; expected a duration in seconds for every file."
            )
        values = [durations[f] for f in files]
    elif isinstance(durations, numbers.Real) and not isinstance(durations, bool):
        values = [durations] * len(files)
    elif isinstance(durations, (Sequence, np.ndarray)) and not isinstance(durations, (str, bytes)):
        values = list(np.ravel(np.asarray(durations, dtype=object)))
        if len(values) != len(files):
            raise ValueError(
                f"durations has {len(values)} values but filenames has {len(files)} files; "
                "expected one duration per file (or one number for all, or a dict)."
            )
    else:
        raise ValueError(
            "durations must be a number of seconds (all clips), a sequence with one "
            f"value per file or a dict {{filename: seconds}}; got {type(durations).__name__}."
        )
    out = {}
    for f, d in zip(files, values):
        if isinstance(d, np.generic):
            d = d.item()
        d = _finite_number(d, f"durations[{f!r}]")
        if d <= 0:
            raise ValueError(f"durations[{f!r}] must be > 0 seconds; got {d}.")
        out[f] = d
    return out


def _check_unit(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    value = _finite_number(value, name)
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1]; got {value}.")
    return value


def _frame_clips(frame_scores, n_files, n_classes):
    """Checked frame scores (:func:`skattloc._checks.check_frame_scores`, no empty clip),
    one clip per file name: a list of (n_frames_i, n_classes) float arrays."""
    clips = check_frame_scores(frame_scores, n_classes, min_frames=1)
    if len(clips) != n_files:
        raise ValueError(
            f"frame_scores has {len(clips)} clips but filenames has {n_files} names; "
            "expected one name per clip, in the same order."
        )
    return clips


def _clip_timestamps(n_frames, timing, duration, name):
    """How many frames to keep (the first ``b``) and their b + 1 timestamps, placed on [0, duration]."""
    hop_s = timing.hop_s
    t = timing.frame_edges(n_frames)
    b = n_frames
    if duration is not None:
        b = int(np.count_nonzero(t[:-1] < duration - _TIME_TOL))
        if b == 0:
            raise ValueError(
                f"{name}: none of its {n_frames} frames ({t[0]:g} to {t[-1]:g} s) lies inside the "
                f"clip [0, {duration:g}] s; check timing and durations."
            )
    ts = t[:b + 1].copy()
    if ts[0] > hop_s + _TIME_TOL:
        raise ValueError(
            f"{name}: its first frame starts at {ts[0]:g} s, more than one hop ({hop_s:g} s) "
            "after the start of the clip; check the offset_s of timing."
        )
    ts[0] = 0.0
    if duration is not None:
        if duration - ts[-1] > hop_s + _TIME_TOL:
            raise ValueError(
                f"{name}: its {n_frames} frames end at {ts[-1]:g} s, more than one hop "
                f"({hop_s:g} s) before the end of the clip ({duration:g} s); check timing "
                "and durations."
            )
        ts[-1] = duration
    return b, ts


def _events_by_file(events, name, classes, durations, reference):
    """Validate events; return {filename: [(onset, offset, label), ...]} clipped to the clip."""
    if events is None:
        events = []
    if isinstance(events, (str, bytes)) or not hasattr(events, "__iter__"):
        raise ValueError(
            f"{name} must be a list of (filename, onset_s, offset_s, event_label) tuples; "
            f"got {type(events).__name__}."
        )
    class_set = set(classes)
    out = {f: [] for f in durations}
    for i, ev in enumerate(events):
        fn, onset, offset, label = event_fields(ev, i, name)
        try:
            onset, offset = float(onset), float(offset)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] has a non-numeric onset/offset: {ev!r}.") from None
        if not (math.isfinite(onset) and math.isfinite(offset)):
            raise ValueError(f"{name}[{i}] has a NaN or infinite onset/offset: {ev!r}.")
        if label not in class_set:
            raise ValueError(f"{name}[{i}] has event_label {label!r}, which is not in classes {list(classes)}.")
        if fn not in out:
            raise ValueError(
                f"{name}[{i}] is in file {fn!r}, which is not in filenames; every event's file "
                "must be listed (with its scores and duration)."
            )
        if onset < 0 or offset < onset or (reference and offset == onset):
            raise ValueError(
                f"{name}[{i}] must satisfy 0 <= onset {'<' if reference else '<='} offset "
                f"(seconds); got onset={onset}, offset={offset}."
            )
        d = durations[fn]
        if (onset >= d) if reference else (onset > d + _TIME_TOL):
            raise ValueError(
                f"{name}[{i}] {ev!r} starts at or after the end of its clip ({d:g} s); check durations."
            )
        offset = min(offset, d)
        if offset > onset:  # estimated events of zero length detect nothing
            out[fn].append((onset, offset, label))
    return out


def _merge_per_class(events):
    """Union of overlapping or touching events of one class (sorted by onset)."""
    merged = []
    by_class = {}
    for on, off, label in events:
        by_class.setdefault(label, []).append((on, off))
    for label, spans in by_class.items():
        spans.sort()
        cur_on, cur_off = spans[0]
        for on, off in spans[1:]:
            if on <= cur_off:
                cur_off = max(cur_off, off)
            else:
                merged.append((cur_on, cur_off, label))
                cur_on, cur_off = on, off
        merged.append((cur_on, cur_off, label))
    return sorted(merged, key=lambda e: (e[0], e[1], str(e[2])))


def _ground_truth(ref_events, classes, durations):
    """sed_scores_eval ground truth {filename: [(onset, offset, label)]} and per-class counts."""
    by_file = _events_by_file(ref_events, "ref_events", classes, durations, reference=True)
    gt = {f: _merge_per_class(evs) for f, evs in by_file.items()}
    n_ref = {c: 0 for c in classes}
    for evs in gt.values():
        for _, _, label in evs:
            n_ref[label] += 1
    return gt, n_ref


def _score_dataframes(clips, classes, files, timing, durations):
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    out = {}
    for f, clip in zip(files, clips):
        d = None if durations is None else durations[f]
        b, ts = _clip_timestamps(len(clip), timing, d, f"frame_scores for {f!r}")
        out[f] = create_score_dataframe(clip[:b], ts, list(classes))
    return out


def _binary_dataframes(est_by_file, classes, durations):
    """0/1 score DataFrames whose frames are the intervals between event boundaries."""
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    col = {c: k for k, c in enumerate(classes)}
    out = {}
    for f, evs in est_by_file.items():
        bounds = np.unique(np.array([0.0, durations[f]] + [t for e in evs for t in e[:2]]))
        scores = np.zeros((len(bounds) - 1, len(classes)))
        for on, off, label in evs:
            i0, i1 = np.searchsorted(bounds, [on, off])
            scores[i0:i1, col[label]] = 1.0
        out[f] = create_score_dataframe(scores, bounds, list(classes))
    return out


def _thresholds(threshold, classes):
    return dict(zip(classes, per_class(threshold, "threshold", classes).tolist()))

# --------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------
@_doctest_needs_sed_scores_eval
def scores_to_dataframes(frame_scores, classes, filenames, *, timing, durations=None):
    """Frame scores as the per-clip score tables of ``sed_scores_eval``.

    Parameters
    ----------
    frame_scores : ndarray or list of ndarray
        Frame scores (typically probabilities in [0, 1]; any finite values
        work), shape ``(n_clips, n_frames, n_classes)``, a list of
        ``(n_frames_i, n_classes)`` arrays, or one ``(n_frames, n_classes)``
        array (one clip).
    classes : sequence of str
        Label of each class column, length ``n_classes``.
    filenames : sequence of str
        One file name per clip, in the order of ``frame_scores``.
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        The frames' timing (keyword only, required): frame ``i`` covers
        ``[offset_s + i * hop_s, offset_s + (i + 1) * hop_s)`` seconds.
    durations : float, sequence of float or dict, optional
        Clip duration(s) in seconds: one number for all clips, one per file
        (in ``filenames`` order) or ``{filename: seconds}``.  When given, the
        frames are clipped to ``[0, duration]`` as described in the module
        docstring; otherwise the first frame is extended back to 0 s and the
        last one ends at ``offset_s + n_frames * hop_s``.

    Returns
    -------
    scores : dict of str to pandas.DataFrame
        ``{filename: DataFrame}`` in ``filenames`` order; each DataFrame has
        one row per frame and the columns ``onset``, ``offset`` (seconds) and
        one score column per class, as made by
        ``sed_scores_eval.base_modules.scores.create_score_dataframe``.  Pass
        it to any ``sed_scores_eval`` function that takes ``scores``.

    Raises
    ------
    ImportError
        If ``sed_scores_eval`` is not installed (``pip install "skattloc[psds]"``).
    ValueError
        On malformed shapes, non-finite scores, a clip count that differs
        from ``len(filenames)``, bad labels, durations or time parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.sed_scores import scores_to_dataframes
    >>> s = np.array([[[0.1, 0.9], [0.8, 0.2], [0.3, 0.4]]])   # 1 clip, 3 frames
    >>> df = scores_to_dataframes(s, ["dog", "cat"], ["a.wav"], timing=(0.016, 0.008),
    ...                           durations=0.05)["a.wav"]
    >>> df.round(3).values.tolist()
    [[0.0, 0.024, 0.1, 0.9], [0.024, 0.04, 0.8, 0.2], [0.04, 0.05, 0.3, 0.4]]
    """
    _sed_scores_eval()
    timing = check_timing(timing)
    classes = _check_classes(classes)
    files = _check_filenames(filenames)
    dur = None if durations is None else _check_durations(durations, files)
    clips = _frame_clips(frame_scores, len(files), len(classes))
    return _score_dataframes(clips, classes, files, timing, dur)


def _psds_params(scenario, max_efpr, overrides):
    if isinstance(scenario, bool) or scenario not in PSDS_SCENARIOS:
        raise ValueError(f"scenario must be 1 or 2 (DCASE task 4 PSDS scenarios); got {scenario!r}.")
    unknown = sorted(set(overrides) - set(_PSDS_OVERRIDES))
    if unknown:
        raise ValueError(f"unknown PSDS parameter(s) {unknown}; expected some of {list(_PSDS_OVERRIDES)}.")
    p = dict(PSDS_SCENARIOS[scenario])
    p.update(overrides)
    p["max_efpr"] = _finite_number(max_efpr, "max_efpr")
    if p["max_efpr"] <= 0:
        raise ValueError(f"max_efpr must be > 0 (false positives per hour); got {p['max_efpr']}.")
    p["dtc_threshold"] = _check_unit(p["dtc_threshold"], "dtc_threshold")
    p["gtc_threshold"] = _check_unit(p["gtc_threshold"], "gtc_threshold")
    p["cttc_threshold"] = _check_unit(p["cttc_threshold"], "cttc_threshold", allow_none=True)
    for name in ("alpha_ct", "alpha_st"):
        p[name] = _finite_number(p[name], name)
        if p[name] < 0:
            raise ValueError(f"{name} must be >= 0; got {p[name]}.")
    if (p["alpha_ct"] == 0) != (p["cttc_threshold"] is None):
        raise ValueError(
            "cttc_threshold and alpha_ct go together: give cttc_threshold=None with "
            f"alpha_ct=0, or a cttc_threshold with alpha_ct > 0; got cttc_threshold="
            f"{p['cttc_threshold']}, alpha_ct={p['alpha_ct']}."
        )
    return p


@_doctest_needs_sed_scores_eval
def psds(
    ref_events,
    frame_scores,
    classes,
    filenames,
    durations,
    scenario=1,
    *,
    timing,
    max_efpr=100.0,
    return_details=False,
    time_decimals=6,
    **overrides,
):
    """Polyphonic Sound Detection Score of frame scores (DCASE task 4 scenarios).

    Computed exactly (over every decision threshold, not a grid of
    operating points) by ``sed_scores_eval.intersection_based.psds``.  A
    detection is a run of frames whose score is strictly above the threshold.
    Its criteria (Bilen et al., 2020): a detection is a false positive unless
    at least ``dtc_threshold`` of its length overlaps reference events of its
    class (detection tolerance criterion, DTC); a reference event is detected
    when such detections cover at least ``gtc_threshold`` of it (ground truth
    intersection criterion, GTC); a false positive that overlaps a reference
    event of another class by at least ``cttc_threshold`` of its length is a
    cross-trigger.  PSDS is the area under the PSD-ROC (effective TP ratio
    ``mean - alpha_st * std`` over classes versus effective FP rate per hour
    ``FPR + alpha_ct * mean cross-trigger rate``) up to ``max_efpr``, divided
    by ``max_efpr``; it lies in [0, 1].

    Parameters
    ----------
    ref_events : list of tuple
        Reference events ``(filename, onset_s, offset_s, event_label)`` (or
        dicts with those keys), e.g. from
        :func:`skattloc.events.read_events_tsv`.  Every class needs at least
        one event.
    frame_scores : ndarray or list of ndarray
        Frame scores, shape ``(n_clips, n_frames, n_classes)``, a list of
        ``(n_frames_i, n_classes)`` arrays or one ``(n_frames, n_classes)``
        array.  Only their order matters (any finite values work).
    classes : sequence of str
        Label of each class column.
    filenames : sequence of str
        One file name per clip, in the order of ``frame_scores``.  Files
        without reference events count (for false positives and duration).
    durations : float, sequence of float or dict
        Clip duration(s) in seconds: one number, one per file or
        ``{filename: seconds}``; their sum is the data set duration that
        false positive rates are divided by.
    scenario : {1, 2}, default=1
        DCASE task 4 (2021-2024) parameters, see :data:`PSDS_SCENARIOS`:
        1: ``dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None,
        alpha_ct=0, alpha_st=1``; 2: ``dtc_threshold=0.1,
        gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5, alpha_st=1``;
        both ``max_efpr=100`` per hour. With one class there are no cross-triggers
        (no other class to trigger on): ``cttc_threshold`` and ``alpha_ct`` are then unused.
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        The frames' timing (keyword only, required; see :func:`scores_to_dataframes`).
    max_efpr : float, default=100.0
        Largest effective false positive rate (per hour) of the ROC area.
    return_details : bool, default=False
        Also return a dict of per-class results and the ROC.
    time_decimals : int, default=6
        Decimals to which ``sed_scores_eval`` rounds times when it compares
        intersections with the criteria.
    **overrides
        Replace scenario parameters: ``dtc_threshold``, ``gtc_threshold``,
        ``cttc_threshold`` (None or in (0, 1]), ``alpha_ct``, ``alpha_st``
        (>= 0).  ``cttc_threshold`` must be None exactly when ``alpha_ct`` is 0.

    Returns
    -------
    psds : float
        The PSDS in [0, 1].
    details : dict
        Only if ``return_details``: ``class_wise`` ``{label: PSDS of that
        class alone}`` (its own ROC, no ``alpha_st``), ``roc`` ``{"etpr":
        ndarray, "efpr": ndarray}`` (the PSD-ROC staircase, eFPR per hour),
        ``class_wise_roc`` ``{label: {"tpr", "efpr", "thresholds"}}`` and
        ``params`` (the parameters used).

    Raises
    ------
    ImportError
        If ``sed_scores_eval`` is not installed (``pip install "skattloc[psds]"``).
    ValueError
        On malformed inputs, a class without reference events, events in
        files that are not in ``filenames``, an unknown ``scenario`` or
        invalid parameters.

    Examples
    --------
    One 10 s clip in 1 s frames, scored perfectly, then with a constant score:

    >>> import numpy as np
    >>> from skattloc.sed_scores import psds
    >>> ref = [("a.wav", 2.0, 5.0, "dog"), ("a.wav", 6.0, 8.0, "cat")]
    >>> s = np.zeros((1, 10, 2))
    >>> s[0, 2:5, 0] = 0.9
    >>> s[0, 6:8, 1] = 0.8
    >>> psds(ref, s, ["dog", "cat"], ["a.wav"], 10.0, timing=(1.0, 0.0))
    1.0
    >>> flat = np.full((1, 10, 2), 0.5)   # one clip-long detection per class
    >>> [psds(ref, flat, ["dog", "cat"], ["a.wav"], 10.0, scenario=k, timing=(1.0, 0.0))
    ...  for k in (1, 2)]
    [0.0, 1.0]
    """
    sse, params, classes, scores, gt, dur = _psds_inputs(ref_events, frame_scores, classes, filenames, durations,
                                                         scenario, timing, max_efpr, overrides)
    value, class_psds, (etpr, efpr), class_rocs = sse.intersection_based.psds(
        scores=scores, ground_truth=gt, audio_durations=dur,
        unit_of_time="hour", time_decimals=int(time_decimals), num_jobs=1, **params,
    )
    value = float(value)
    if not return_details:
        return value
    details = {
        "class_wise": {c: float(class_psds[c]) for c in classes},
        "roc": {"etpr": np.asarray(etpr, dtype=float), "efpr": np.asarray(efpr, dtype=float)},
        "class_wise_roc": {
            c: {"tpr": np.asarray(class_rocs[c][0], dtype=float),
                "efpr": np.asarray(class_rocs[c][1], dtype=float),
                "thresholds": np.asarray(class_rocs[c][2], dtype=float)}
            for c in classes
        },
        "params": dict(params, scenario=scenario, unit_of_time="hour"),
    }
    return value, details


def _psds_inputs(ref_events, frame_scores, classes, filenames, durations, scenario, timing, max_efpr, overrides):
    """The checked inputs of sed_scores_eval's PSDS: ``(module, params, classes, score
    tables, ground truth, durations)``."""
    sse = _sed_scores_eval()
    timing = check_timing(timing)
    params = _psds_params(scenario, max_efpr, overrides)
    classes = _check_classes(classes)
    files = _check_filenames(filenames)
    dur = _check_durations(durations, files)
    clips = _frame_clips(frame_scores, len(files), len(classes))
    gt, n_ref = _ground_truth(ref_events, classes, dur)
    missing = [c for c in classes if n_ref[c] == 0]
    if missing:
        raise ValueError(
            f"PSDS needs at least one reference event of every class; ref_events has none of "
            f"{missing}. Evaluate only the classes that occur (drop their score columns)."
        )
    if len(classes) == 1 and params.get("cttc_threshold") is not None:
        # Cross-triggers are detections on another class's events: with one class there is
        # none, so the effective FP rate is the FP rate (sed_scores_eval fails on the empty
        # cross-trigger table instead of saying so).
        params = dict(params, cttc_threshold=None, alpha_ct=0.0)
    return sse, params, classes, _score_dataframes(clips, classes, files, timing, dur), gt, dur


@_doctest_needs_sed_scores_eval
def psds_bootstrap(ref_events, frame_scores, classes, filenames, durations, scenario=1, *, timing, n_folds=5,
                   n_iterations=20, max_efpr=100.0, time_decimals=6, **overrides):
    """PSDS on many subsets of the clips, for a confidence interval: sed_scores_eval's
    ``bootstrapped_psds``.

    The clips are shuffled ``n_iterations`` times (seeds 0, 1, ...: the same subsets on
    every call) and cut into ``n_folds`` parts; each subset leaves one part out. The
    PSDS of every subset is returned; their percentiles are the interval that the DCASE
    task 4 evaluation reports (:func:`skattloc.evaluation.evaluate_tagger` with
    ``bootstrap=``). Intermediate statistics are computed once per clip, so this costs
    little more than one :func:`psds`.

    Parameters
    ----------
    ref_events, frame_scores, classes, filenames, durations, scenario, timing, max_efpr, time_decimals, **overrides
        As for :func:`psds`.
    n_folds : int, default=5
        Parts the clips are cut into; a subset holds ``(n_folds - 1) / n_folds`` of them.
    n_iterations : int, default=20
        Reshuffles.

    Returns
    -------
    ndarray of float, shape (n_folds * n_iterations,)
        The PSDS of each subset, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.sed_scores import psds_bootstrap
    >>> ref = [(f"c{i}.wav", 2.0, 5.0, "dog") for i in range(10)]
    >>> s = np.zeros((10, 10, 1))
    >>> s[:, 2:5] = 0.9
    >>> v = psds_bootstrap(ref, s, ["dog"], [f"c{i}.wav" for i in range(10)], 10.0, timing=(1.0, 0.0),
    ...                    n_iterations=2)
    >>> v.shape, float(v.min())
    ((10,), 1.0)
    """
    for name, v, low in (("n_folds", n_folds, 2), ("n_iterations", n_iterations, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ValueError(f"{name} must be an int >= {low}; got {v!r}")
    sse, params, classes, scores, gt, dur = _psds_inputs(ref_events, frame_scores, classes, filenames, durations,
                                                         scenario, timing, max_efpr, overrides)
    if len(dur) < n_folds:
        raise ValueError(f"n_folds={n_folds} needs at least {n_folds} clips; got {len(dur)}")
    out = sse.intersection_based.bootstrapped_psds(
        scores=scores, ground_truth=gt, audio_durations=dur, unit_of_time="hour", time_decimals=int(time_decimals),
        num_jobs=1, n_folds=int(n_folds), n_iterations=int(n_iterations), **params,
    )
    return np.asarray(out[0], dtype=np.float64)


def _intersection_fscore(sse, scores, gt, n_ref, classes, threshold, dtc_threshold, gtc_threshold,
                         time_decimals):
    """Shared tail of the two intersection_f1 functions."""
    from sed_scores_eval.base_modules.detection import scores_to_event_list
    from sed_scores_eval.base_modules.precision_recall import micro_average

    dtc_threshold = _check_unit(dtc_threshold, "dtc_threshold")
    gtc_threshold = _check_unit(gtc_threshold, "gtc_threshold")
    scored = [c for c in classes if n_ref[c] > 0]
    if not scored:
        raise ValueError("ref_events contains no events: intersection-based recall is undefined.")
    n_sys = {c: 0 for c in classes}
    for f, df in scores.items():
        for _, _, label in scores_to_event_list(df, threshold, event_classes=list(classes)):
            n_sys[label] += 1
    unscored = [c for c in classes if n_ref[c] == 0]
    if unscored:
        warnings.warn(
            f"classes {unscored} have no reference events: their recall and F1 are undefined "
            "(NaN) and they are left out of the macro averages (their detections still count "
            "as false positives in the micro average).",
            UserWarning,
            stacklevel=3,
        )
        scores = {f: df[["onset", "offset", *scored]] for f, df in scores.items()}
    f, p, r, stats = sse.intersection_based.fscore(
        scores, gt, {c: threshold[c] for c in scored},
        dtc_threshold=dtc_threshold, gtc_threshold=gtc_threshold,
        time_decimals=int(time_decimals), num_jobs=1,
    )
    class_wise = {}
    all_stats = {}
    for c in classes:
        if c in stats:
            tp, fp = int(round(float(stats[c]["tps"]))), int(round(float(stats[c]["fps"])))
            class_wise[c] = {"f_measure": float(f[c]), "precision": float(p[c]), "recall": float(r[c])}
        else:
            tp, fp = 0, n_sys[c]
            class_wise[c] = {"f_measure": math.nan, "precision": 0.0 if fp else math.nan, "recall": math.nan}
        class_wise[c].update(n_ref=int(n_ref[c]), n_sys=int(n_sys[c]), n_tp=tp, n_fp=fp)
        all_stats[c] = {"tps": tp, "fps": fp, "n_ref": int(n_ref[c])}
    mf, mp, mr = micro_average(all_stats)
    macro = {"f_measure": float(f["macro_average"]), "precision": float(p["macro_average"]),
             "recall": float(r["macro_average"])}
    return {
        **macro,
        "micro": {"f_measure": float(mf), "precision": float(mp), "recall": float(mr)},
        "n_ref": sum(cw["n_ref"] for cw in class_wise.values()),
        "n_sys": sum(cw["n_sys"] for cw in class_wise.values()),
        "n_tp": sum(cw["n_tp"] for cw in class_wise.values()),
        "n_fp": sum(cw["n_fp"] for cw in class_wise.values()),
        "n_files": len(scores),
        "class_wise": class_wise,
        "class_wise_average": dict(macro),
    }


# The end of the two intersection_f1 docstrings: their last parameter, what they return,
# and the first error they raise.
_F1_TAIL = """    time_decimals : int, default=6
        Decimals to which ``sed_scores_eval`` rounds times in the criteria.

    Returns
    -------
    results : dict
        ``f_measure``, ``precision``, ``recall``: **macro** averages over the
        classes that have reference events (the DCASE convention; note that
        the top-level values of
        :func:`skattloc.metrics.event_based_metrics` are micro averages);
        ``class_wise_average``: the same three values, under the key that
        :func:`~skattloc.metrics.event_based_metrics` uses for them;
        ``micro``: ``{"f_measure", "precision", "recall"}`` from the summed
        counts; ``n_ref``, ``n_sys``, ``n_tp``, ``n_fp`` (totals) and
        ``n_files``; ``class_wise``: ``{label: {"f_measure", "precision",
        "recall", "n_ref", "n_sys", "n_tp", "n_fp"}}``.  ``n_tp`` counts
        detected *reference* events (GTC), ``n_fp`` detections that fail the
        DTC and ``n_sys`` all detections, so ``n_tp + n_fp`` may differ from
        ``n_sys``; precision is ``n_tp / (n_tp + n_fp)``, taken as 1 when
        both are 0 (``sed_scores_eval``'s convention).  A class without
        reference events gets NaN recall and F1, precision 0 (or NaN without
        detections), is left out of the macro averages and triggers a
        :class:`UserWarning`.

    Raises
    ------
    ImportError
        If ``sed_scores_eval`` is not installed (``pip install "skattloc[psds]"``).
"""


@_doctest_needs_sed_scores_eval
def intersection_f1(
    ref_events,
    est_events,
    classes,
    filenames,
    durations,
    dtc_threshold=0.7,
    gtc_threshold=0.7,
    time_decimals=6,
):
    """Intersection-based F1 of an event list (DCASE task 4), via ``sed_scores_eval``.

    For binary output such as that of ``skattloc localize`` or
    :func:`skattloc.events.frames_to_events`.  The estimated events become
    0/1 score tables (one frame per interval between event boundaries, so
    no time is quantized) scored at threshold 0.5 by
    ``sed_scores_eval.intersection_based.fscore``.  A detection is a false
    positive unless at least ``dtc_threshold`` of its length overlaps
    reference events of its class (DTC); a reference event is a true
    positive when such detections cover at least ``gtc_threshold`` of it
    (GTC).  Cross-triggers are ordinary false positives here
    (``sed_scores_eval``'s F-score has no cross-trigger criterion).

    Parameters
    ----------
    ref_events, est_events : list of tuple
        Reference and estimated events ``(filename, onset_s, offset_s,
        event_label)`` (or dicts with those keys).  Estimated events of one
        class that overlap or touch within a file are one detection (their
        union); zero-length estimated events are ignored; offsets after the
        end of the clip are cut to its duration.
    classes : sequence of str
        All event labels.
    filenames : sequence of str
        Files to evaluate; every event must be in one of them.  Files
        without events count (detections there are false positives).
    durations : float, sequence of float or dict
        Clip duration(s) in seconds: one number, one per file or
        ``{filename: seconds}``.
    dtc_threshold, gtc_threshold : float in (0, 1], default=0.7
        Detection tolerance and ground-truth intersection criteria (0.7 is
        PSDS scenario 1's; the DESED baseline reported intersection F1 with
        0.5 and 0.5).
    {time_decimals_returns_raises}
    ValueError
        On malformed events, labels not in ``classes``, events in files not
        in ``filenames``, no reference events at all, bad durations or
        criteria.

    Examples
    --------
    >>> from skattloc.sed_scores import intersection_f1
    >>> ref = [("a.wav", 2.0, 6.0, "dog"), ("a.wav", 7.0, 9.0, "cat")]
    >>> est = [("a.wav", 4.0, 8.0, "dog"), ("a.wav", 7.0, 9.0, "cat")]
    >>> r = intersection_f1(ref, est, ["dog", "cat"], ["a.wav"], 10.0)
    >>> r["f_measure"], r["class_wise"]["dog"]["f_measure"]   # dog: half inside, half covered
    (0.5, 0.0)
    >>> intersection_f1(ref, est, ["dog", "cat"], ["a.wav"], 10.0, 0.5, 0.5)["f_measure"]
    1.0
    """
    sse = _sed_scores_eval()
    classes = _check_classes(classes)
    files = _check_filenames(filenames)
    dur = _check_durations(durations, files)
    gt, n_ref = _ground_truth(ref_events, classes, dur)
    est = _events_by_file(est_events, "est_events", classes, dur, reference=False)
    scores = _binary_dataframes(est, classes, dur)
    return _intersection_fscore(
        sse, scores, gt, n_ref, classes, {c: 0.5 for c in classes},
        dtc_threshold, gtc_threshold, time_decimals,
    )


@_doctest_needs_sed_scores_eval
def intersection_f1_from_scores(
    ref_events,
    frame_scores,
    classes,
    filenames,
    durations,
    threshold=0.5,
    *,
    timing,
    dtc_threshold=0.7,
    gtc_threshold=0.7,
    time_decimals=6,
):
    """Intersection-based F1 of frame scores at a decision threshold, via ``sed_scores_eval``.

    A detection is a run of frames whose score is strictly above the
    threshold of its class (no median filter or other post-processing:
    smooth the scores first if wanted).  Criteria as in
    :func:`intersection_f1`; frames are placed and clipped as in
    :func:`scores_to_dataframes`.

    Parameters
    ----------
    ref_events : list of tuple
        Reference events ``(filename, onset_s, offset_s, event_label)``.
    frame_scores : ndarray or list of ndarray
        Frame scores, shape ``(n_clips, n_frames, n_classes)``, a list of
        ``(n_frames_i, n_classes)`` arrays or one ``(n_frames, n_classes)``
        array.
    classes : sequence of str
        Label of each class column.
    filenames : sequence of str
        One file name per clip, in the order of ``frame_scores``.
    durations : float, sequence of float or dict
        Clip duration(s) in seconds: one number, one per file or
        ``{filename: seconds}``.
    threshold : float, sequence of float or dict, default=0.5
        Decision threshold: one for all classes, one per class (``classes``
        order) or ``{label: value}``.
    timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
        The frames' timing (keyword only, required; see :func:`scores_to_dataframes`).
    dtc_threshold, gtc_threshold : float in (0, 1], default=0.7
        Detection tolerance and ground-truth intersection criteria.
    {time_decimals_returns_raises}
    ValueError
        On malformed inputs or thresholds (see :func:`psds`).

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.sed_scores import intersection_f1_from_scores
    >>> s = np.zeros((1, 10, 1))
    >>> s[0, 2:5, 0] = 0.9                       # detected at 2-5 s if threshold < 0.9
    >>> ref = [("a.wav", 2.0, 5.0, "dog")]
    >>> [intersection_f1_from_scores(ref, s, ["dog"], ["a.wav"], 10.0, t,
    ...                              timing=(1.0, 0.0))["f_measure"] for t in (0.5, 0.95)]
    [1.0, 0.0]
    """
    sse = _sed_scores_eval()
    timing = check_timing(timing)
    classes = _check_classes(classes)
    files = _check_filenames(filenames)
    dur = _check_durations(durations, files)
    clips = _frame_clips(frame_scores, len(files), len(classes))
    thr = _thresholds(threshold, classes)
    gt, n_ref = _ground_truth(ref_events, classes, dur)
    scores = _score_dataframes(clips, classes, files, timing, dur)
    return _intersection_fscore(sse, scores, gt, n_ref, classes, thr, dtc_threshold, gtc_threshold,
                                time_decimals)


for _f in (intersection_f1, intersection_f1_from_scores):
    _f.__doc__ = _f.__doc__.replace("    {time_decimals_returns_raises}\n", _F1_TAIL)
del _f
