"""Evaluating a tagger on labelled clips: one report of every tagging and event metric.

:func:`evaluate_tagger` runs a fitted :class:`~skattloc.AttLocTagger` on clips with clip
tags (and, optionally, event times) and returns an :class:`EvaluationReport`:

- per-tag **EER** (DCASE 2016 Task 4, :func:`skattloc.metrics.equal_error_rate`) and its
  macro mean;
- with event times (``reference``): the events of the tagger's own post-processing
  (:meth:`AttLocTagger.detect_events <skattloc.AttLocTagger.detect_events>`), scored by
  **segment-based** F1/ER (1 s segments) and **event-based** F1/ER (onset collar 0.2 s,
  offset collar max(0.2 s, 20 %)), :mod:`skattloc.metrics`;
- with event times and the optional ``sed_scores_eval`` (``pip install "skattloc[psds]"``):
  **intersection-based F1** of the events (DTC = GTC = 0.5) and **PSDS1/PSDS2** (DCASE
  task 4 scenarios) of the threshold-free event scores
  (:meth:`AttLocTagger.event_scores <skattloc.AttLocTagger.event_scores>`),
  :mod:`skattloc.sed_scores`. Without it, :attr:`EvaluationReport.notes` says so, and why.

``skattloc evaluate`` prints this report, and ``examples/benchmark_domestic_mix.py``
records it. :func:`evaluate_scores` computes the same report from frame scores and clip
probabilities already computed (e.g. chunk by chunk over a corpus larger than memory).

This module imports neither torch nor Lightning; :func:`evaluate_tagger` runs the model
through :func:`skattloc.inference.frame_scores`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import _checks

__all__ = ["EvaluationReport", "evaluate_scores", "evaluate_tagger", "percentile_interval"]

#: The scoring conventions of the report (DCASE task 4 practice); each is a keyword of
#: :func:`evaluate_tagger`.
DEFAULT_SETTINGS = dict(segment_length=1.0, t_collar=0.2, percentage_of_length=0.2, dtc_threshold=0.5,
                        gtc_threshold=0.5)

_SUMMARY_LABEL = "macro (EER, PSDS, intersection F1) / overall (segment, event F1)"
_NAN = float("nan")


@dataclass
class EvaluationReport:
    """Every metric of one evaluation, per tag and over all tags.

    Built by :func:`evaluate_tagger` (or :func:`evaluate_scores`); read it as attributes,
    as table rows (:meth:`rows`, what ``skattloc evaluate -o report.csv`` writes), as text
    (:meth:`to_text`) or as plain data (:meth:`to_dict`).

    Attributes
    ----------
    classes : list of str
        The tags, in the tagger's column order.
    n_clips : int
        Clips evaluated.
    positives : ndarray of int, shape (n_classes,)
        Clips tagged with each tag (the clip labels).
    eer : ndarray of float, shape (n_classes,)
        Equal error rate of each tag's clip probability; NaN where undefined (a tag in
        every clip or in none).
    eer_macro : float
        Mean of the defined per-tag EERs (NaN if none is defined).
    segment, event : dict or None
        :func:`skattloc.metrics.segment_based_metrics` and
        :func:`~skattloc.metrics.event_based_metrics` of the events (overall, i.e. micro,
        values at the top level: ``f_measure``, ``precision``, ``recall``, ``error_rate``;
        per tag under ``class_wise``; their class-macro mean under ``class_wise_average``);
        None without event times. ``event`` scores against the reference with overlapping
        events of one tag in one clip merged into one
        (:func:`~skattloc.metrics.merge_overlapping_events`), as psds_eval and
        sed_scores_eval count them: the headline event F1.
    event_raw : dict or None
        The same event-based metrics against the reference as given, unmerged (equal to
        ``event`` when no two reference events of one tag overlap).
    intersection : dict or None
        :func:`skattloc.sed_scores.intersection_f1` of the events (macro values at the top
        level, ``class_wise``); None without event times or ``sed_scores_eval``.
    psds1, psds2 : float or None
        PSDS of the event scores in DCASE task 4 scenario 1 and 2, over the tags that have
        reference events; None when not computed (see ``notes``).
    psds1_per_class : dict
        ``{tag: PSDS1 of that tag alone}`` (the tag's own area under its ROC).
    events : list of tuple or None
        The detected events ``(filename, onset_s, offset_s, tag)``; None without event times.
    n_reference_events : int or None
        Reference events scored against; None without event times.
    settings : dict
        The scoring conventions: ``segment_length`` (s), ``t_collar`` (s),
        ``percentage_of_length``, ``dtc_threshold``, ``gtc_threshold``.
    notes : list of str
        What was not computed and why (no event times, no ``sed_scores_eval``, no reference
        events), and how the metrics were computed.
    intervals : dict
        With ``bootstrap=``: ``{metric: (low, high)}`` confidence intervals of
        ``eer_macro``, ``event_f1``, ``event_f1_macro``, ``segment_f1``, ``psds1`` and
        ``psds2`` (those computed); empty otherwise. ``settings`` then also holds
        ``bootstrap`` and ``confidence``.
    resamples : dict
        With ``bootstrap=``: ``{metric: ndarray}``, the value of each metric of ``intervals``
        on every resample. The resamples depend only on the number of clips and
        ``random_state`` (PSDS: on the number of clips), so two reports of the same clips in
        the same order are paired draw by draw: the difference of two systems, or the mean
        of several seeds, has its own interval (``examples/compare_systems.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.evaluation import evaluate_scores
    >>> from skattloc.timing import FrameTiming
    >>> from skattloc.postprocessing import EventPostprocessor
    >>> frames = [np.r_[np.zeros((20, 1)), np.ones((40, 1)), np.zeros((40, 1))], np.zeros((100, 1))]
    >>> report = evaluate_scores(frames, np.array([[0.9], [0.2]]), [["dog"], []], classes=["dog"],
    ...                          postprocessor=EventPostprocessor(["dog"]), timing=FrameTiming(0.01),
    ...                          reference=[("a.wav", 0.2, 0.6, "dog")], filenames=["a.wav", "b.wav"],
    ...                          psds=False)
    >>> report.eer.tolist(), report.event["f_measure"], report.events
    ([0.0], 1.0, [('a.wav', 0.2, 0.6, 'dog')])
    >>> [row["tag"] for row in report.rows()]
    ['dog', 'macro (EER, PSDS, intersection F1) / overall (segment, event F1)']
    """

    classes: list
    n_clips: int
    positives: np.ndarray
    eer: np.ndarray
    eer_macro: float
    segment: Optional[dict] = None
    event: Optional[dict] = None
    event_raw: Optional[dict] = None
    intersection: Optional[dict] = None
    psds1: Optional[float] = None
    psds2: Optional[float] = None
    psds1_per_class: dict = field(default_factory=dict)
    events: Optional[list] = None
    n_reference_events: Optional[int] = None
    settings: dict = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    notes: list = field(default_factory=list)
    intervals: dict = field(default_factory=dict)
    resamples: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ table
    def rows(self) -> list:
        """The report as table rows: one dict per tag, then the summary row.

        Columns: ``tag``, ``n_clips`` (clips with the tag; all clips in the summary),
        ``eer``; with event times also ``segment_f1``, ``segment_precision``,
        ``segment_recall``, ``segment_error_rate``, ``event_f1``, ``event_error_rate`` (merged
        reference), ``event_f1_raw`` (reference as given); with
        ``sed_scores_eval`` also ``intersection_f1``, ``psds1``, ``psds2`` (per tag: its own
        PSDS1, PSDS2 not defined per tag). Values are float (NaN: undefined), int or str.

        Returns
        -------
        list of dict
            ``len(classes) + 1`` rows with the same keys, in column order.
        """
        out = []
        for k, c in enumerate(self.classes):
            row = {"tag": c, "n_clips": int(self.positives[k]), "eer": float(self.eer[k])}
            if self.segment is not None:
                seg, ev = self.segment["class_wise"][c], self.event["class_wise"][c]
                row.update(segment_f1=seg["f_measure"], segment_precision=seg["precision"],
                           segment_recall=seg["recall"], segment_error_rate=seg["error_rate"],
                           event_f1=ev["f_measure"], event_error_rate=ev["error_rate"],
                           event_f1_raw=self.event_raw["class_wise"][c]["f_measure"])
            if self.intersection is not None:
                row["intersection_f1"] = self.intersection["class_wise"][c]["f_measure"]
            if self.psds1 is not None:
                row.update(psds1=self.psds1_per_class.get(c, _NAN), psds2=_NAN)
            out.append({k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
        summary = {"tag": _SUMMARY_LABEL, "n_clips": int(self.n_clips), "eer": float(self.eer_macro)}
        if self.segment is not None:
            summary.update(segment_f1=self.segment["f_measure"], segment_precision=self.segment["precision"],
                           segment_recall=self.segment["recall"], segment_error_rate=self.segment["error_rate"],
                           event_f1=self.event["f_measure"], event_error_rate=self.event["error_rate"],
                           event_f1_raw=self.event_raw["f_measure"])
        if self.intersection is not None:
            summary["intersection_f1"] = self.intersection["f_measure"]
        if self.psds1 is not None:
            summary.update(psds1=self.psds1, psds2=self.psds2)
        out.append({k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in summary.items()})
        return out

    def table(self, decimals: int = 6):
        """``(header, rows)`` for a CSV writer: floats as text with ``decimals`` decimals
        (``nan`` where undefined), the other cells as they are.

        Returns
        -------
        header : list of str
        rows : list of list
        """
        rows = self.rows()
        header = list(rows[0])
        return header, [[f"{r[k]:.{decimals}f}" if isinstance(r[k], float) else r[k] for k in header] for r in rows]

    def to_text(self, notes: bool = True) -> str:
        """The table as aligned text (3 decimals, ``n/a`` where undefined), then the notes.

        Parameters
        ----------
        notes : bool, default=True
            Add the :attr:`notes`, one per line in parentheses.

        Returns
        -------
        str
            Lines without a trailing newline.
        """
        rows = self.rows()
        cols = list(rows[0])

        def fmt(v):
            if isinstance(v, float):
                return "n/a" if not math.isfinite(v) else f"{v:.3f}"
            return str(v)

        cells = [[fmt(r[c]) for c in cols] for r in rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
        return "\n".join(lines + ([f"({n})" for n in self.notes] if notes else []))

    def __str__(self) -> str:
        return self.to_text()

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        """Every field as plain Python data (lists, dicts, floats with NaN; JSON-able with
        ``json.dumps``, which writes NaN as ``NaN``).

        Returns
        -------
        dict
            The attributes by name, plus ``"rows"`` (:meth:`rows`).
        """
        def plain(v):
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, np.ndarray):
                return plain(v.tolist())
            if isinstance(v, np.generic):
                return v.item()
            return v

        keys = ("classes", "n_clips", "positives", "eer", "eer_macro", "segment", "event", "event_raw", "intersection",
                "psds1", "psds2", "psds1_per_class", "events", "n_reference_events", "settings", "notes", "intervals")
        return {**{k: plain(getattr(self, k)) for k in keys}, "rows": plain(self.rows())}


# ----------------------------------------------------------------------------- computing it
def evaluate_tagger(tagger, X, y=None, *, reference=None, filenames=None, clip_duration=None, psds=True,
                    segment_length=1.0, t_collar=0.2, percentage_of_length=0.2, dtc_threshold=0.5,
                    gtc_threshold=0.5, bootstrap=0, confidence=0.95, random_state=0, **overrides) -> EvaluationReport:
    """Evaluate a fitted tagger on labelled clips: EER per tag, and event metrics with event times.

    One forward pass (:func:`skattloc.inference.frame_scores`) gives the clip
    probabilities and frame scores; the events are those of the tagger's own event
    post-processing (``event_settings_``, as :meth:`AttLocTagger.detect_events
    <skattloc.AttLocTagger.detect_events>` makes them, with ``overrides``), timed with the
    tagger's ``frame_timing_``.

    Parameters
    ----------
    tagger : AttLocTagger
        A fitted tagger.
    X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features) arrays
        Log-mel frames of the clips, as the tagger was trained on.
    y : 0/1 matrix (n_clips, n_classes) or one collection of tag names per clip, optional
        The clip tags. None with ``reference``: each clip's tags are those of its events.
    reference : list of tuple, optional
        Event times ``(filename, onset_s, offset_s, tag)`` of these clips (strong labels);
        clips without an event have none. Every event must name a clip of ``filenames``
        and a tag of ``tagger.classes_``. Without it, the report holds EERs only.
    filenames : sequence of str, optional
        One name per clip, as ``reference`` names them; required with ``reference``.
    clip_duration : float, sequence of float or dict, optional
        Clip lengths in seconds (one number, one per clip, or ``{filename: seconds}``);
        default: what the frames cover (``tagger.frame_timing_.clip_duration``).
    psds : bool, default=True
        Compute PSDS1/PSDS2 (the slowest part); False leaves them None.
    segment_length : float, default=1.0
        Segment length in seconds of the segment-based metrics.
    t_collar, percentage_of_length : float, default=0.2
        Event-based matching: onset within ``t_collar`` s, offset within
        ``max(t_collar, percentage_of_length * reference length)``.
    dtc_threshold, gtc_threshold : float in (0, 1], default=0.5
        Detection tolerance and ground-truth intersection criteria of the intersection F1.
    bootstrap : int, default=0
        Resamples for confidence intervals (:attr:`EvaluationReport.intervals`); 0: none.
        The clips are drawn with replacement ``bootstrap`` times, and the macro EER, the
        event F1 (micro and class-macro) and the segment F1 are recomputed on each draw;
        PSDS1/2 take sed_scores_eval's scheme (``bootstrap`` subsets that each leave out a
        fifth of the clips, :func:`skattloc.sed_scores.psds_bootstrap`). 1000 is usual.
    confidence : float in (0, 1), default=0.95
        Coverage of the intervals (percentiles of the resampled values).
    random_state : int, default=0
        Seed of the clip resampling.
    **overrides
        Event settings for this evaluation (``threshold``, ``median_filter``,
        ``clip_threshold=False``, ...; see :meth:`AttLocTagger.get_event_postprocessor
        <skattloc.AttLocTagger.get_event_postprocessor>`).

    Returns
    -------
    EvaluationReport

    Raises
    ------
    ValueError
        Tags outside ``tagger.classes_``; ``reference`` without ``filenames``; events that
        name no clip of ``filenames``; ``filenames`` or ``clip_duration`` of the wrong length.

    Examples
    --------
    >>> from skattloc import AttLocTagger, LogMelExtractor, make_weak_events
    >>> from skattloc.evaluation import evaluate_tagger
    >>> audio, Y, events = make_weak_events(n_clips=40, n_classes=2, duration=1.0, random_state=0)
    >>> X = LogMelExtractor().fit_transform(audio)
    >>> tags = [[c for c, y in zip(("tone", "chirp"), row) if y] for row in Y]  # tag names, as events have
    >>> tagger = AttLocTagger(rnn_hidden=8, rnn_layers=1, dense_units=16, max_epochs=2,
    ...                       validation_fraction=0.25, random_state=0).fit(X, tags)
    >>> names = [f"clip{i}.wav" for i in range(40)]
    >>> reference = [(names[i], on, off, tag) for i, on, off, tag in events]
    >>> report = evaluate_tagger(tagger, X, tags, reference=reference, filenames=names, psds=False)
    >>> report.eer.shape, 0 <= report.eer_macro <= 1, "f_measure" in report.event
    ((2,), True, True)
    >>> print(report.to_text().splitlines()[0].split()[:4])
    ['tag', 'n_clips', 'eer', 'segment_f1']
    """
    from .inference import frame_scores

    pp = tagger.get_event_postprocessor(**overrides)
    frames, proba = frame_scores(tagger, X)
    return evaluate_scores(
        frames, proba, y, classes=tagger.classes_, postprocessor=pp, timing=tagger.frame_timing_,
        reference=reference, filenames=filenames, clip_duration=clip_duration, psds=psds,
        segment_length=segment_length, t_collar=t_collar, percentage_of_length=percentage_of_length,
        dtc_threshold=dtc_threshold, gtc_threshold=gtc_threshold, bootstrap=bootstrap, confidence=confidence,
        random_state=random_state,
    )


def evaluate_scores(frame_scores, clip_proba, y=None, *, classes, postprocessor, timing, reference=None,
                    filenames=None, clip_duration=None, psds=True, segment_length=1.0, t_collar=0.2,
                    percentage_of_length=0.2, dtc_threshold=0.5, gtc_threshold=0.5, events=None, bootstrap=0,
                    confidence=0.95, random_state=0) -> EvaluationReport:
    """The :class:`EvaluationReport` of frame scores and clip probabilities computed already.

    What :func:`evaluate_tagger` computes after its forward pass: use it to evaluate clips
    processed chunk by chunk (collect :func:`skattloc.inference.frame_scores` of each
    chunk), or outputs of another model.

    Parameters
    ----------
    frame_scores : list of (n_frames_i, n_classes) arrays, array (n_clips, n_frames, n_classes), or None
        Frame scores in [0, 1] (``AttLocTagger.localize``); may be None without ``reference``.
    clip_proba : array of shape (n_clips, n_classes)
        Clip probabilities (``AttLocTagger.predict_proba``).
    y : 0/1 matrix (n_clips, n_classes) or one collection of tag names per clip, optional
        The clip tags; None with ``reference``: the tags of each clip's events.
    classes : sequence of str
        The tag of each column.
    postprocessor : EventPostprocessor
        Turns frame scores into events (``tagger.get_event_postprocessor()``).
    timing : FrameTiming or anything :func:`skattloc.timing.as_frame_timing` accepts
        Where the frames sit in time (``tagger.frame_timing_``).
    reference, filenames, clip_duration, psds, segment_length, t_collar, percentage_of_length, dtc_threshold, gtc_threshold
        As for :func:`evaluate_tagger`.
    bootstrap, confidence, random_state
        As for :func:`evaluate_tagger`.
    events : list of tuple, optional
        The detected events ``(filename, onset_s, offset_s, tag)`` to score, when they were
        made already (e.g. by ``tagger.detect_events``); default: ``postprocessor`` decodes
        them from ``frame_scores``. PSDS still reads the frame scores.

    Returns
    -------
    EvaluationReport

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.evaluation import evaluate_scores
    >>> from skattloc.postprocessing import EventPostprocessor
    >>> r = evaluate_scores(None, np.array([[0.9], [0.1], [0.4]]), [["dog"], [], ["dog"]], classes=["dog"],
    ...                     postprocessor=EventPostprocessor(["dog"]), timing=0.016)
    >>> r.eer_macro, r.segment is None, r.notes[0][:24]
    (0.0, True, 'no event times (strong l')
    """
    from .metrics import equal_error_rate, event_based_metrics, merge_overlapping_events, segment_based_metrics
    from .tags import encode_tags
    from .timing import as_frame_timing

    classes = [str(c) for c in classes]
    proba = np.asarray(clip_proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"clip_proba must have shape (n_clips, {len(classes)}) (one column per class), got {proba.shape}")
    n = len(proba)
    settings = dict(segment_length=segment_length, t_collar=t_collar, percentage_of_length=percentage_of_length,
                    dtc_threshold=dtc_threshold, gtc_threshold=gtc_threshold)
    _checks.check_int(bootstrap, "bootstrap", minimum=0)
    _checks.check_number(confidence, "confidence", 0, 1, closed="()")
    if bootstrap:
        settings.update(bootstrap=int(bootstrap), confidence=float(confidence))
        draws = np.random.default_rng(random_state).integers(0, n, size=(int(bootstrap), n))
    if reference is not None:
        timing = as_frame_timing(timing, "timing")
        names, durations, reference = _check_reference(reference, filenames, clip_duration, frame_scores, n,
                                                       classes, timing)
        if y is None:
            tagged = {}
            for e in reference:
                tagged.setdefault(e[0], set()).add(e[3])
            y = [sorted(tagged.get(f, ())) for f in names]
    if y is None:
        raise ValueError("give y (the clip tags), or reference (event times) to take the tags from")
    kind = "auto" if isinstance(y, np.ndarray) else "names"
    Y, _ = encode_tags(y, classes, n_clips=n, kind=kind, name="y", known_as=f"the tagger's classes {classes}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined EERs (a tag in every clip or none) are NaN
        eer = np.atleast_1d(equal_error_rate(Y, proba, average=None)).astype(np.float64)
    report = EvaluationReport(
        classes=classes, n_clips=n, positives=Y.sum(axis=0).astype(np.int64), eer=eer,
        eer_macro=float(np.nanmean(eer)) if np.isfinite(eer).any() else _NAN, settings=settings,
    )
    if bootstrap:
        report.resamples["eer_macro"] = np.array([_macro_eer(Y[d], proba[d]) for d in draws])
        report.intervals["eer_macro"] = percentile_interval(report.resamples["eer_macro"], confidence)
    if reference is None:
        report.notes.append("no event times (strong labels): EER only; give event times for the segment- and "
                            "event-based metrics, intersection F1 and PSDS")
        _bootstrap_note(report)
        return report
    est = events if events is not None else postprocessor.decode(
        frame_scores, proba, names, timing=timing, clip_duration=[durations[f] for f in names])
    report.events, report.n_reference_events = est, len(reference)
    report.segment = segment_based_metrics(reference, est, classes, segment_length=segment_length, filenames=names,
                                           durations=durations)
    merged = merge_overlapping_events(reference)
    report.event, report.event_raw = (
        event_based_metrics(ref, est, classes, t_collar=t_collar, percentage_of_length=percentage_of_length,
                            filenames=names) for ref in (merged, reference))
    report.notes.append(
        f"event F1: onset collar {t_collar:g} s, offset collar max({t_collar:g} s, {percentage_of_length:.0%}), "
        f"against the reference with overlapping events of one tag merged ({len(merged)} of {len(reference)} "
        f"events left), as PSDS counts them: micro {_fmt(report.event['f_measure'])}, class-macro "
        f"{_fmt(report.event['class_wise_average']['f_measure'])}; against the reference as given (event_f1_raw): "
        f"micro {_fmt(report.event_raw['f_measure'])}; segment F1 and ER over {segment_length:g} s segments")
    _sed_scores_metrics(report, reference, est, frame_scores, proba, postprocessor, timing, names, durations, psds,
                        int(bootstrap))
    if bootstrap:
        counts = _clip_counts(merged, est, classes, names, durations, settings)
        for key, values in _resampled_f1(counts, draws).items():
            report.resamples[key] = np.asarray(values, dtype=np.float64)
            report.intervals[key] = percentile_interval(values, confidence)
    _bootstrap_note(report)
    return report


def _macro_eer(Y, proba) -> float:
    from .metrics import equal_error_rate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tag absent from a draw: its EER is NaN, left out
        return float(equal_error_rate(Y, proba, average="macro"))


def percentile_interval(values, confidence=0.95):
    """``(low, high)``: the central ``confidence`` percentile interval of the finite values
    (NaN, NaN when none is finite), as :attr:`EvaluationReport.intervals` holds them.

    Parameters
    ----------
    values : array-like of float
        Resampled values of a metric, e.g. ``report.resamples["event_f1"]``, or the
        difference of two systems' paired resamples.
    confidence : float in (0, 1), default=0.95

    Examples
    --------
    >>> from skattloc.evaluation import percentile_interval
    >>> percentile_interval([0.2, 0.4, float("nan"), 0.6, 0.8, 1.0], 0.5)
    (0.4, 0.8)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return (_NAN, _NAN)
    tail = 100 * (1 - confidence) / 2
    return (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))


def _clip_counts(reference, est, classes, names, durations, settings):
    """Per clip and tag, ``(tp, n_ref, n_sys)`` of the event-based and the segment-based
    metrics: an array (n_clips, 2, n_classes, 3). Both metrics count clip by clip, so the
    counts of a resample are sums of these rows."""
    from .metrics import event_based_metrics, segment_based_metrics

    ref_by, est_by = {}, {}
    for e in reference:
        ref_by.setdefault(e[0], []).append(e)
    for e in est:
        est_by.setdefault(e[0], []).append(e)
    out = np.zeros((len(names), 2, len(classes), 3), dtype=np.int64)
    for i, f in enumerate(names):
        r, e = ref_by.get(f, []), est_by.get(f, [])
        if not r and not e:
            continue
        ev = event_based_metrics(r, e, classes, t_collar=settings["t_collar"],
                                 percentage_of_length=settings["percentage_of_length"], filenames=[f])
        seg = segment_based_metrics(r, e, classes, segment_length=settings["segment_length"], filenames=[f],
                                    durations={f: durations[f]})
        for m, res in enumerate((ev, seg)):
            out[i, m] = [[res["class_wise"][c][k] for k in ("n_tp", "n_ref", "n_sys")] for c in classes]
    return out


def _resampled_f1(counts, draws) -> dict:
    """Event F1 (micro, class-macro) and segment F1 (micro) of each resample of the clips."""
    totals = np.stack([counts[d].sum(axis=0) for d in draws])  # (n_draws, 2, n_classes, 3)
    tp, ref, sys = totals[..., 0], totals[..., 1], totals[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where((ref > 0) & (sys > 0), 2 * tp / (ref + sys), np.nan)  # as metrics' class-wise F1
        micro = np.where((ref.sum(-1) > 0) & (sys.sum(-1) > 0), 2 * tp.sum(-1) / (ref.sum(-1) + sys.sum(-1)), np.nan)
        macro = np.array([np.nanmean(row) if np.isfinite(row).any() else np.nan for row in per_class[:, 0]])
    return {"event_f1": micro[:, 0], "event_f1_macro": macro, "segment_f1": micro[:, 1]}


def _bootstrap_note(report):
    if not report.intervals:
        return
    st = report.settings
    parts = [f"{k} [{_fmt(lo)}, {_fmt(hi)}]" for k, (lo, hi) in report.intervals.items()]
    report.notes.append(
        f"{st['confidence']:.0%} intervals, {st['bootstrap']} resamples of the clips (with replacement; PSDS: "
        f"subsets leaving out a fifth of the clips, as sed_scores_eval): " + ", ".join(parts))


def _fmt(v) -> str:
    return f"{v:.3f}" if v is not None and math.isfinite(v) else "n/a"


def _check_reference(reference, filenames, clip_duration, frame_scores, n, classes, timing):
    """``(names, {name: seconds}, events)`` after checking the event times against the clips."""
    if filenames is None:
        raise ValueError("reference (event times) needs filenames: the name of each clip, as the events name them")
    names = [str(f) for f in filenames]
    if len(names) != n:
        raise ValueError(f"filenames has {len(names)} names but there are {n} clips; give one name per clip")
    dupes = _checks.repeated(names)
    if dupes:
        raise ValueError(f"filenames names clips twice: {_checks.preview(dupes)}; give each clip one name")
    if frame_scores is None:
        raise ValueError("reference (event times) needs frame_scores to make events from")
    if len(frame_scores) != n:
        raise ValueError(f"frame_scores has {len(frame_scores)} clips but clip_proba has {n}; they must match")
    if clip_duration is None:
        durations = {f: timing.clip_duration(len(s)) for f, s in zip(names, frame_scores)}
    elif isinstance(clip_duration, dict):
        missing = [f for f in names if f not in clip_duration]
        if missing:
            raise ValueError(f"clip_duration has no length for {len(missing)} clip(s): {_checks.preview(missing)}")
        durations = {f: float(clip_duration[f]) for f in names}
    elif np.ndim(clip_duration) == 0:
        durations = {f: float(clip_duration) for f in names}
    else:
        if len(clip_duration) != n:
            raise ValueError(f"clip_duration has {len(clip_duration)} lengths but there are {n} clips")
        durations = {f: float(d) for f, d in zip(names, clip_duration)}
    events = [_checks.event_fields(e, i, "reference", mappings=False) for i, e in enumerate(reference)]
    events = [(str(f), float(on), float(off), str(tag)) for f, on, off, tag in events]
    known = set(names)
    stray = sorted({e[0] for e in events} - known)
    if stray:
        raise ValueError(
            f"reference has events of {len(stray)} file(s) that are not among the {n} clips: {_checks.preview(stray)}; "
            "an event's filename must be the name of one of its clips in filenames"
        )
    unknown = sorted({e[3] for e in events} - set(classes))
    if unknown:
        raise ValueError(f"reference has tags {unknown} that the tagger does not know (its tags: {classes})")
    return names, durations, events


def _sed_scores_metrics(report, reference, est, frame_scores, proba, postprocessor, timing, names, durations,
                        psds, bootstrap=0):
    """Intersection F1 of the events and PSDS1/2 of the event scores, into ``report``; a
    note saying why when they cannot be computed."""
    from . import sed_scores

    try:
        sed_scores.check_available()
    except ImportError as exc:
        report.notes.append(f"no PSDS or intersection F1: {exc}")
        return
    tagged = sorted({e[3] for e in reference}, key=report.classes.index)
    if not tagged:
        report.notes.append("no PSDS or intersection F1: the reference holds no event, so their recall is undefined")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tags without reference events: NaN, as documented
        report.intersection = sed_scores.intersection_f1(reference, est, report.classes, names, durations,
                                                         dtc_threshold=report.settings["dtc_threshold"],
                                                         gtc_threshold=report.settings["gtc_threshold"])
        if psds:
            # PSDS needs reference events of every tag it scores: the tags that have some.
            scores = postprocessor.scores(frame_scores, proba, timing=timing)
            idx = [report.classes.index(c) for c in tagged]
            sub = [np.asarray(s)[:, idx] for s in scores]
            p1, d1 = sed_scores.psds(reference, sub, tagged, names, durations, scenario=1, timing=timing,
                                     return_details=True)
            report.psds1 = float(p1)
            report.psds2 = float(sed_scores.psds(reference, sub, tagged, names, durations, scenario=2, timing=timing))
            report.psds1_per_class = {c: float(v) for c, v in d1.get("class_wise", {}).items()}
            if bootstrap and len(names) >= 5:
                for k in (1, 2):
                    values = sed_scores.psds_bootstrap(reference, sub, tagged, names, durations, scenario=k,
                                                       timing=timing, n_iterations=max(1, -(-bootstrap // 5)))
                    report.resamples[f"psds{k}"] = np.asarray(values, dtype=np.float64)
                    report.intervals[f"psds{k}"] = percentile_interval(values, report.settings["confidence"])
    left = [c for c in report.classes if c not in tagged]
    report.notes.append(
        f"intersection F1: DTC {report.settings['dtc_threshold']:g}, GTC {report.settings['gtc_threshold']:g}"
        + ("; PSDS1/PSDS2 of the event scores (frame scores median-filtered, times the clip probability), "
           "DCASE task 4 scenarios; per-tag psds1 is the tag's own area" if psds else "; PSDS not computed")
        + (f"; tags without reference events ({', '.join(left)}) are left out of PSDS and the macro "
           "intersection F1" if left else "")
    )
