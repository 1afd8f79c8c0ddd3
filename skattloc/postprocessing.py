"""From frame scores to event lists: per-class post-processing, calibrated or tuned.

:class:`EventPostprocessor` turns the frame scores of :meth:`AttLocTagger.localize
<skattloc.AttLocTagger.localize>` (values in [0, 1], one row per frame) into DCASE event
lists. Every setting is per class, because a door knock and a spoken sentence need
different smoothing:

1. **Median filter** of the frame scores over ``median_filter`` seconds.
2. **Hysteresis** (a double threshold, as in CDur and the PANNs SED post-processing): an
   event starts where the score reaches ``threshold`` and extends, both ways, while it stays
   at or above ``threshold_low``. ``threshold_low == threshold`` is a single threshold.
3. Events of one class separated by less than ``min_gap`` seconds are **merged**; events
   shorter than ``min_duration`` seconds are **dropped**.
4. **Clip gating**: a class yields events only in clips whose clip probability reaches
   ``clip_threshold`` (None: no gating).

Where the settings come from:

- :meth:`EventPostprocessor.calibrate` needs **clip tags only** (weak labels) on clips the
  model did not train on: the clip threshold maximizes the clip-level F1 of the clip
  probabilities, the event threshold maximizes the clip-level F1 of "the clip has an event"
  (the smoothed frame maximum), the low threshold is a fixed fraction of it, and the
  smoothing follows the typical length of the events detected in tagged clips. This is
  what :meth:`AttLocTagger.fit <skattloc.AttLocTagger.fit>` does with its validation
  clips.
- :meth:`EventPostprocessor.tune` needs a few **strongly labelled** clips: per class, a
  coordinate search over the settings that maximizes the event-based F1 (onset collar
  ``t_collar``, offset collar ``max(t_collar, percentage_of_length * length)``).

Every method that turns frames into seconds takes ``timing`` (required, keyword only): the
:class:`~skattloc.timing.FrameTiming` of the scores, or what
:func:`~skattloc.timing.as_frame_timing` reads (a :class:`~skattloc.LogMelExtractor`, a
pair ``(hop_s, offset_s)``...). Frame ``i`` covers
``[offset_s + i * hop_s, offset_s + (i + 1) * hop_s)`` seconds. Decoding is
:mod:`skattloc.events`'s decoder, the one :func:`~skattloc.events.frames_to_events` uses.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ._checks import check_classes, check_frame_scores, per_class
from .events import (
    _best_f1_threshold,
    _decode,
    _hysteresis,
    _median,
    _names_and_durations,
    _smooth,
    check_timing,
    median_filter_frames,
)

__all__ = ["EventPostprocessor", "SETTINGS"]

#: The per-class settings, in seconds or probabilities.
SETTINGS = ("threshold", "threshold_low", "median_filter", "min_gap", "min_duration", "clip_threshold")

# Weak calibration (EventPostprocessor.calibrate). These constants were chosen on the inner
# validation split of domestic-mix (models trained on folds 1-2; fold 3's outputs split in
# halves, calibrate on one, score event F1 on the other, both ways; fold 4 never read) for
# two models, the paper's network and a CRNN; see docs/screening.md. A plateau: gap
# fractions 1.0-2.0 scored within 0.002; the smallest was kept. Background quantile:
# 0.9 scored 0.352, 0 (off) 0.348, 0.95 0.313, 0.99 0.278 (mean event F1 of 4 half-splits).
LOW_RATIO = 0.3  # threshold_low = LOW_RATIO * threshold
MEDIAN_FRACTION = 0.5  # median filter = this fraction of the typical event length...
MEDIAN_MAX = 1.0  # ... up to this many seconds
GAP_FRACTION = 1.0  # min_gap = this fraction of the typical event length
DURATION_FRACTION = 0.1  # min_duration = this fraction of the typical event length
BACKGROUND_QUANTILE = 0.9  # threshold_low >= this quantile of the scores in untagged clips
# Issue 19: both thresholds end scaled by this. The clip-F1 threshold on the peak decides
# whether a clip has an event, which the clip gate decides too; the events themselves want a
# lower one. Chosen on the screening split (2 models trained on folds 1-2, fold 3 scored,
# fold 4 never read; docs/screening.md): 1.0 (off) 0.470 / 0.466, 0.7 0.477 / 0.483,
# 0.6 0.486 / 0.486, 0.5 0.483 / 0.484, 0.4 0.476 / 0.475, 0.3 0.457 / 0.461 (event F1,
# merged references, calibrated on the fit's own validation clips / on halves of fold 3).
THRESHOLD_SCALE = 0.6


def _per_class(value, name, classes, lo=None, hi=None, allow_none=False):
    """:func:`skattloc._checks.per_class`, or None for a None that ``allow_none`` permits."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} must be a number, one per class, or a dict {{label: value}}; got None")
    return per_class(value, name, classes, lo, hi)


def _width(seconds, timing) -> int:
    """Median filter length in frames (odd; 1: no filter) for a window of ``seconds``."""
    return median_filter_frames(seconds, timing) or 1


def _check_clip_scores(clip_scores, n_clips, n_classes):
    if clip_scores is None:
        return None
    a = np.asarray(clip_scores, dtype=np.float64)
    if a.shape != (n_clips, n_classes):
        raise ValueError(f"clip_scores must have shape (n_clips, n_classes) = ({n_clips}, {n_classes}); got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("clip_scores holds NaN or Inf; expected clip probabilities in [0, 1]")
    return a


class EventPostprocessor:
    """Per-class settings that turn frame scores into events.

    Parameters
    ----------
    classes : sequence of str
        Event labels, one per score column.
    threshold : float, sequence or dict, default=0.5
        Score at which an event starts (the high threshold), in [0, 1].
    threshold_low : float, sequence, dict or None, default=None
        Score down to which an event extends (hysteresis); at most ``threshold``. None:
        equal to ``threshold`` (a single threshold).
    median_filter : float, sequence or dict, default=0.0
        Median filter length in seconds applied to the scores (0: none). It becomes the odd
        number of frames nearest to it.
    min_gap : float, sequence or dict, default=0.0
        Merge events of a class whose gap is shorter than this, in seconds.
    min_duration : float, sequence or dict, default=0.0
        Drop events shorter than this, in seconds.
    clip_threshold : float, sequence, dict or None, default=None
        Only clips whose clip probability reaches this get events of the class. None: no
        gating.

    Each per-class value is a scalar (all classes), a sequence in ``classes`` order, or a
    dict ``{label: value}`` with every class.

    Attributes
    ----------
    source : str
        How the settings were made: ``"manual"``, ``"weak"`` (:meth:`calibrate`) or
        ``"strong"`` (:meth:`tune`).
    info : dict
        What the calibration or tuning measured (plain data; e.g. the validation F1).

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.postprocessing import EventPostprocessor
    >>> s = np.array([[0.1], [0.45], [0.9], [0.5], [0.3], [0.1]])  # 6 frames, 1 class
    >>> pp = EventPostprocessor(["knock"], threshold=0.8, threshold_low=0.4)
    >>> pp.decode(s, filenames=["a.wav"], timing=(0.5, 0.0))  # hop 0.5 s, frame 0 at 0 s
    [('a.wav', 0.5, 2.0, 'knock')]
    """

    def __init__(self, classes, threshold=0.5, threshold_low=None, median_filter=0.0, min_gap=0.0,
                 min_duration=0.0, clip_threshold=None):
        self.classes = check_classes(classes)
        c = self.classes
        self.threshold = _per_class(threshold, "threshold", c, 0.0, 1.0)
        low = self.threshold.copy() if threshold_low is None else _per_class(threshold_low, "threshold_low", c, 0.0, 1.0)
        if np.any(low > self.threshold + 1e-12):
            raise ValueError(f"threshold_low must not exceed threshold, class by class; got threshold_low={low.tolist()} and threshold={self.threshold.tolist()}")
        self.threshold_low = low
        self.median_filter = _per_class(median_filter, "median_filter", c, 0.0)
        self.min_gap = _per_class(min_gap, "min_gap", c, 0.0)
        self.min_duration = _per_class(min_duration, "min_duration", c, 0.0)
        self.clip_threshold = _per_class(clip_threshold, "clip_threshold", c, 0.0, 1.0, allow_none=True)
        self.source = "manual"
        self.info = {}

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        """The settings as plain data (lists of floats), for model files and JSON."""
        d = {"classes": [str(c) for c in self.classes], "source": self.source, "info": self.info}
        for name in SETTINGS:
            v = getattr(self, name)
            d[name] = None if v is None else [float(x) for x in v]
        return d

    @classmethod
    def from_dict(cls, d) -> "EventPostprocessor":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or "classes" not in d:
            raise ValueError(f"expected a dict written by EventPostprocessor.to_dict, got {type(d).__name__}")
        unknown = set(d) - set(SETTINGS) - {"classes", "source", "info"}
        if unknown:
            raise ValueError(f"unknown event settings {sorted(unknown)}; known: {list(SETTINGS)}")
        pp = cls(d["classes"], **{k: d[k] for k in SETTINGS if k in d})
        pp.source = str(d.get("source", "manual"))
        pp.info = dict(d.get("info") or {})
        return pp

    def replace(self, **settings) -> "EventPostprocessor":
        """A copy with some settings replaced (each a scalar, sequence or dict; None keeps it,
        except ``clip_threshold=False``, which turns gating off)."""
        d = self.to_dict()
        for name, value in settings.items():
            if name not in SETTINGS:
                raise ValueError(f"unknown event setting {name!r}; known: {list(SETTINGS)}")
            if value is None:
                continue
            if name == "clip_threshold" and value is False:
                d[name] = None
                continue
            d[name] = value.tolist() if isinstance(value, np.ndarray) else value
            if name == "threshold" and settings.get("threshold_low") is None:
                # a new event threshold keeps the hysteresis ratio
                old_hi = np.asarray(self.threshold)
                ratio = np.divide(self.threshold_low, old_hi, out=np.ones_like(old_hi), where=old_hi > 0)
                d["threshold_low"] = (ratio * _per_class(value, "threshold", self.classes, 0.0, 1.0)).tolist()
        pp = EventPostprocessor.from_dict(d)
        pp.source = self.source if not settings else f"{self.source}+manual"
        return pp

    def __repr__(self):
        def fmt(v):
            return "None" if v is None else "[" + ", ".join(f"{x:.3g}" for x in v) + "]"

        body = ", ".join(f"{n}={fmt(getattr(self, n))}" for n in SETTINGS)
        return f"EventPostprocessor(classes={self.classes}, {body}, source={self.source!r})"

    # ------------------------------------------------------------------ decoding
    def smooth(self, frame_scores, *, timing):
        """The median-filtered scores, per class, as :meth:`decode` filters them.

        Parameters
        ----------
        frame_scores : ndarray (n_clips, n_frames, n_classes), list of (n_frames_i, n_classes), or one 2-D array
        timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
            The frames' timing (required): converts each class's ``median_filter``
            (seconds) to an odd number of frames (:func:`~skattloc.events.median_filter_frames`).

        Returns
        -------
        list of ndarray
            One float64 ``(n_frames_i, n_classes)`` array per clip.

        Examples
        --------
        >>> import numpy as np
        >>> from skattloc.postprocessing import EventPostprocessor
        >>> s = np.array([[0.0], [1.0], [0.0], [0.0]])  # a one-frame blip
        >>> pp = EventPostprocessor(["knock"], median_filter=0.3)  # 3 frames of 0.1 s
        >>> pp.smooth(s, timing=(0.1, 0.0))[0].ravel().tolist()
        [0.0, 0.0, 0.0, 0.0]
        """
        timing = check_timing(timing)
        clips = check_frame_scores(frame_scores, len(self.classes))
        widths = [_width(w, timing) for w in self.median_filter]
        return [_smooth(c, widths) for c in clips]

    def scores(self, frame_scores, clip_scores=None, *, timing):
        """Threshold-free detection scores: the median-filtered frame scores (per class, as
        :meth:`decode` filters them), times each clip's probability of the class.

        What a threshold sweep such as PSDS should see: the clip probability stands in for
        the clip gate (a soft one), the median filter for the smoothing. On domestic-mix
        validation data (docs/screening.md) PSDS1 of a CRNN's ``localize`` output rose from
        0.08 (raw) to 0.29 this way.

        Parameters
        ----------
        frame_scores : ndarray (n_clips, n_frames, n_classes) or list of (n_frames_i, n_classes)
        clip_scores : ndarray of shape (n_clips, n_classes), optional
            Clip probabilities; without them the smoothed scores are returned.
        timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
            The frames' timing (required; for the median filter lengths).

        Returns
        -------
        list of ndarray, (n_frames_i, n_classes) each, values in [0, 1] for inputs in [0, 1]

        Examples
        --------
        >>> import numpy as np
        >>> from skattloc.postprocessing import EventPostprocessor
        >>> s = np.array([[[0.2], [0.8], [0.6]]])  # 1 clip, 3 frames
        >>> EventPostprocessor(["knock"]).scores(s, [[0.5]], timing=(0.1, 0.0))[0].ravel().tolist()
        [0.1, 0.4, 0.3]
        """
        clips = self.smooth(frame_scores, timing=timing)
        cs = _check_clip_scores(clip_scores, len(clips), len(self.classes))
        if cs is None:
            return clips
        return [c * p[None, :] for c, p in zip(clips, cs)]

    def decode(self, frame_scores, clip_scores=None, filenames=None, *, timing, clip_duration=None):
        """Events from frame scores.

        Per clip and class: the median filter, the hysteresis thresholds, runs of frames
        to seconds through ``timing``, gaps shorter than ``min_gap`` bridged, events shorter
        than ``min_duration`` dropped, and the clip gate. The decoder is
        :func:`skattloc.events.frames_to_events`'s: with a single threshold, one setting
        for all classes and no gate the two give the same events.

        Parameters
        ----------
        frame_scores : ndarray (n_clips, n_frames, n_classes), list of (n_frames_i, n_classes), or one 2-D array
            Frame scores in [0, 1] (e.g. :meth:`AttLocTagger.localize`).
        clip_scores : ndarray of shape (n_clips, n_classes), optional
            Clip probabilities (:meth:`AttLocTagger.predict_proba`); needed when
            ``clip_threshold`` is set, ignored otherwise.
        filenames : sequence of str, optional
            One name per clip (default ``clip_00000``...).
        timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
            The frames' timing (keyword only, required): a
            :class:`~skattloc.timing.FrameTiming`, the extractor of the features, or a pair
            ``(hop_s, offset_s)`` in seconds.
        clip_duration : float or sequence of float, optional
            Clip lengths in seconds; event times are cut to them. Default: the seconds each
            clip's frames cover, ``timing.clip_duration(n_frames)``.

        Returns
        -------
        list of tuple
            ``(filename, onset_s, offset_s, label)``, sorted by file, onset and label.

        Examples
        --------
        >>> import numpy as np
        >>> from skattloc.postprocessing import EventPostprocessor
        >>> from skattloc.timing import FrameTiming
        >>> s = np.zeros((40, 1)); s[10:20] = 0.9  # an event on frames 10..19
        >>> pp = EventPostprocessor(["knock"])
        >>> pp.decode(s, filenames=["a.wav"], timing=FrameTiming(0.032, 0.0))
        [('a.wav', 0.32, 0.64, 'knock')]
        """
        timing = check_timing(timing)
        clips = check_frame_scores(frame_scores, len(self.classes))
        cs = _check_clip_scores(clip_scores, len(clips), len(self.classes))
        if self.clip_threshold is not None and cs is None:
            raise ValueError("clip_threshold is set (clip gating): give clip_scores, the clip probabilities (n_clips, n_classes)")
        names, durations = _names_and_durations(filenames, clip_duration, clips, timing)
        widths = [_width(w, timing) for w in self.median_filter]
        gate = None if self.clip_threshold is None else cs >= self.clip_threshold[None, :]
        return _decode(clips, self.classes, timing, self.threshold, self.threshold_low, widths, self.min_gap,
                       self.min_duration, names, durations, gate)

    # ------------------------------------------------------------------ weak calibration
    @classmethod
    def calibrate(cls, frame_scores, clip_scores, y, classes, *, timing,
                  low_ratio=LOW_RATIO, median_fraction=MEDIAN_FRACTION, gap_fraction=GAP_FRACTION,
                  median_max=MEDIAN_MAX, duration_fraction=DURATION_FRACTION,
                  background_quantile=BACKGROUND_QUANTILE, smooth_quantile=None, threshold_scale=THRESHOLD_SCALE):
        """Settings from clip tags only, on clips the model did not train on.

        Per class ``k``:

        1. ``clip_threshold``: the threshold on the clip probabilities with the best
           clip-level F1 against the tags.
        2. ``threshold``: the threshold on each clip's highest frame score (after the
           median filter) with the best clip-level F1 against the tags: an event is
           detected in a clip exactly when the clip should have one.
        3. ``threshold_low = max(low_ratio * threshold, q)`` (at most ``threshold``), with
           ``q`` the ``background_quantile`` of the frame scores in the clips *not* tagged
           ``k``: an event never extends into what the model outputs on background.
        4. The typical event length ``L``: the length-weighted median length of the events
           that steps 2-3 detect in the clips tagged ``k`` (a long event counts more than a
           fragment); ``min_gap = gap_fraction * L``, ``min_duration = duration_fraction * L``.
           The smoothing has its own length ``S``: ``L`` by default, or with
           ``smooth_quantile=q`` the plain ``q``-quantile of the detected lengths (every
           fragment counts once, so a tag of short events gets a short filter);
           ``median_filter = min(median_fraction * S, median_max[k])``, with a cap per tag.
           Steps 2-4 run twice, the second time with the median filter of the first.
        5. Both thresholds are multiplied by ``threshold_scale``: step 2's threshold decides
           whether a clip holds an event, which the clip gate (step 1) decides as well,
           and the events themselves are better found with a lower one. The low threshold
           may then fall below step 3's background quantile; that is what was screened.

        Parameters
        ----------
        frame_scores : ndarray (n_clips, n_frames, n_classes) or list of (n_frames_i, n_classes)
        clip_scores : ndarray of shape (n_clips, n_classes)
        y : ndarray of shape (n_clips, n_classes)
            0/1 clip tags of the same clips.
        classes : sequence of str
        timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
            The frames' timing (keyword only, required): event lengths in seconds and
            median filter lengths in frames are measured with it.
        low_ratio, median_fraction, gap_fraction, duration_fraction, background_quantile : float
            The method's constants (module defaults chosen on domestic-mix validation data:
            0.3, 0.5, 1.0, 0.1, 0.9).
        median_max : float, sequence or dict, default=1.0
            The longest median filter, in seconds: one value for every tag, one per class
            in ``classes`` order, or a dict ``{label: seconds}`` (a cap per tag).
        smooth_quantile : float in [0, 1] or None, default=None
            Where the smoothing length ``S`` comes from (step 4): None, the
            length-weighted median ``L`` that also sets the gap; a number ``q``, the
            ``q``-quantile of the detected event lengths. On domestic-mix's screening split
            (docs/screening.md) 0.1-0.5 scored 0.001-0.04 below None, which stays the default.
        threshold_scale : float in (0, 1], default=0.6
            Step 5's factor (1: the thresholds of steps 2-3 as they are). Chosen on
            domestic-mix's screening split: 0.6 raised the event F1 of two models by
            0.005-0.034 over 1.0 (docs/screening.md).

        Returns
        -------
        EventPostprocessor
            With ``source="weak"`` and ``info`` holding per class the validation clip F1
            and the typical event length.

        Examples
        --------
        >>> import numpy as np
        >>> from skattloc.postprocessing import EventPostprocessor
        >>> rng = np.random.default_rng(0)
        >>> y = np.array([[1], [0]] * 10)
        >>> s = rng.uniform(0, 0.05, size=(20, 50, 1)); s[::2, 10:30] = 0.9  # events in tagged clips
        >>> pp = EventPostprocessor.calibrate(s, s.max(axis=1), y, ["dog"], timing=(0.1, 0.0))
        >>> pp.decode(s[:1], s[:1].max(axis=1), filenames=["a"], timing=(0.1, 0.0))
        [('a', 1.0, 3.0, 'dog')]
        """
        timing = check_timing(timing)
        pp = cls(classes)
        clips = check_frame_scores(frame_scores, len(pp.classes))
        cs = _check_clip_scores(clip_scores, len(clips), len(pp.classes))
        y = np.asarray(y)
        if y.shape != cs.shape or not np.isin(y, (0, 1)).all():
            raise ValueError(f"y must be a 0/1 matrix of shape {cs.shape} (clips x classes); got shape {y.shape}")
        caps = _per_class(median_max, "median_max", pp.classes, 0.0)
        checked = [("low_ratio", low_ratio), ("median_fraction", median_fraction), ("gap_fraction", gap_fraction),
                   ("duration_fraction", duration_fraction), ("background_quantile", background_quantile)]
        if smooth_quantile is not None:  # None: the smoothing follows the typical length
            checked.append(("smooth_quantile", smooth_quantile))
        for name, v in checked:
            unit = name in ("low_ratio", "background_quantile", "smooth_quantile")
            if not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0 or (unit and v > 1):
                raise ValueError(f"{name} must be a finite number >= 0{' and <= 1' if unit else ''}; got {v!r}")
        if (not isinstance(threshold_scale, numbers.Real) or not math.isfinite(threshold_scale)
                or not 0 < threshold_scale <= 1):
            raise ValueError(f"threshold_scale must be a number in (0, 1]; got {threshold_scale!r}")
        K = len(pp.classes)
        clip_thr, thr, low, med, gap, typical, short, f1s = (np.zeros(K) for _ in range(8))
        for k in range(K):
            yk = y[:, k].astype(bool)
            if not yk.any() or yk.all():
                warnings.warn(
                    f"class {pp.classes[k]!r} is {'never' if not yk.any() else 'always'} tagged in the "
                    f"calibration clips; its event settings stay at the defaults (threshold 0.5, no smoothing)",
                    UserWarning, stacklevel=2,
                )
                clip_thr[k], thr[k], low[k], typical[k], short[k], f1s[k] = 0.5, 0.5, 0.5, float("nan"), float("nan"), float("nan")
                continue
            clip_thr[k] = _best_f1_threshold(yk, cs[:, k])
            width = 1
            for _ in range(2):
                sk = [_median(c[:, k], width) for c in clips]
                peak = np.array([x.max() if len(x) else 0.0 for x in sk])
                thr[k] = _best_f1_threshold(yk, peak)
                # the low threshold stays above the scores of clips without the tag (background)
                neg = np.concatenate([x for x, tagged in zip(sk, yk) if not tagged and len(x)] or [np.zeros(1)])
                low[k] = min(thr[k], max(low_ratio * thr[k], float(np.quantile(neg, background_quantile))))
                lengths = []
                for x, tagged in zip(sk, yk):
                    if tagged:
                        a, b = _hysteresis(x, thr[k], low[k])
                        lengths.extend(timing.frames_to_seconds(n) for n in (b - a).tolist())
                if lengths:
                    L = np.sort(np.asarray(lengths))
                    cum = np.cumsum(L)
                    typical[k] = float(L[np.searchsorted(cum, cum[-1] / 2)])
                    short[k] = typical[k] if smooth_quantile is None else float(np.quantile(L, smooth_quantile))
                else:
                    typical[k] = short[k] = 0.0
                med[k] = min(median_fraction * short[k], caps[k])
                width = _width(med[k], timing)
            gap[k] = gap_fraction * typical[k]
            pred = peak >= thr[k]
            tp = float((pred & yk).sum())
            f1s[k] = 2 * tp / (pred.sum() + yk.sum())
        scale = np.where(np.isfinite(typical), threshold_scale, 1.0)  # a class left at the defaults keeps 0.5
        out = cls(pp.classes, threshold=np.clip(scale * thr, 0, 1), threshold_low=np.clip(scale * low, 0, 1),
                  median_filter=med, min_gap=gap, min_duration=duration_fraction * np.nan_to_num(typical),
                  clip_threshold=np.clip(clip_thr, 0, 1))
        out.source = "weak"
        out.info = {
            "n_clips": len(clips),
            "clip_event_f1": {c: float(v) for c, v in zip(pp.classes, f1s)},
            "typical_event_length_s": {c: float(v) for c, v in zip(pp.classes, typical)},
            "smoothing_length_s": {c: float(v) for c, v in zip(pp.classes, short)},
            "constants": {"low_ratio": low_ratio, "median_fraction": median_fraction, "gap_fraction": gap_fraction,
                          "median_max": {c: float(v) for c, v in zip(pp.classes, caps)},
                          "duration_fraction": duration_fraction,
                          "background_quantile": background_quantile, "smooth_quantile": smooth_quantile,
                          "threshold_scale": threshold_scale},
        }
        return out

    # ------------------------------------------------------------------ strong tuning
    @classmethod
    def tune(cls, frame_scores, clip_scores, reference, classes, filenames, *, timing,
             clip_duration=None, start=None, t_collar=0.2, percentage_of_length=0.2, grids=None, n_rounds=2,
             verbose=False):
        """Settings that maximize the event-based F1 on strongly labelled clips.

        Per class, a coordinate search: starting from ``start`` (default: :meth:`calibrate`
        on the clips' own tags, derived from ``reference``), each setting in turn is set to
        the grid value with the best event-based F1 of that class (ties: the value closest
        to the current one), for ``n_rounds`` rounds.

        Parameters
        ----------
        frame_scores, clip_scores
            As for :meth:`decode`, on clips the model did not train on.
        reference : list of tuple
            Reference events ``(filename, onset_s, offset_s, label)`` of these clips.
        classes : sequence of str
        filenames : sequence of str
            One per clip, as used in ``reference``.
        timing : FrameTiming, LogMelExtractor, dict, float or (float, float)
            The frames' timing (keyword only, required; see :meth:`decode`).
        clip_duration : float or sequence of float, optional
            Clip lengths in seconds (default: ``timing.clip_duration(n_frames)`` per clip).
        start : EventPostprocessor, optional
        t_collar, percentage_of_length : float
            The event-based F1's onset collar (s) and offset collar fraction.
        grids : dict, optional
            Candidate values per setting name, replacing the defaults.
        n_rounds : int, default=2
        verbose : bool, default=False
            Show a progress bar over classes.

        Returns
        -------
        EventPostprocessor
            With ``source="strong"``; ``info`` holds the tuned F1 per class.

        Examples
        --------
        >>> import numpy as np
        >>> from skattloc.postprocessing import EventPostprocessor
        >>> s = np.full((4, 20, 1), 0.1); s[:2, 5:10] = 0.8  # events in clips a and b, 0.5-1.0 s
        >>> ref = [("a", 0.5, 1.0, "dog"), ("b", 0.5, 1.0, "dog")]
        >>> pp = EventPostprocessor.tune(s, s.max(axis=1), ref, ["dog"], ["a", "b", "c", "d"], timing=(0.1, 0.0))
        >>> pp.source, pp.info["event_f1"]
        ('strong', {'dog': 1.0})
        """
        from .metrics import event_based_metrics

        timing = check_timing(timing)
        pp0 = cls(classes)
        clips = check_frame_scores(frame_scores, len(pp0.classes))
        cs = _check_clip_scores(clip_scores, len(clips), len(pp0.classes))
        names, durations = _names_and_durations(filenames, clip_duration, clips, timing)
        ref = [tuple(e) for e in reference]
        labels = set(pp0.classes)
        bad = sorted({str(e[3]) for e in ref if e[3] not in labels})
        if bad:
            raise ValueError(f"reference has labels {bad} that are not in classes {pp0.classes}")
        unknown = sorted({str(e[0]) for e in ref} - set(map(str, names)))
        if unknown:
            raise ValueError(f"reference names {len(unknown)} file(s) not in filenames (first: {unknown[0]!r})")
        if start is None:
            index = {n: i for i, n in enumerate(names)}
            y = np.zeros((len(clips), len(pp0.classes)), dtype=int)
            for e in ref:
                y[index[e[0]], pp0.classes.index(e[3])] = 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = cls.calibrate(clips, cs, y, pp0.classes, timing=timing)
        default_grids = {
            "threshold": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
            "low_ratio": [0.2, 0.35, 0.5, 0.65, 0.8, 1.0],
            "median_filter": [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0],
            "min_gap": [0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0],
            "min_duration": [0.0, 0.05, 0.1, 0.2, 0.3, 0.5],
            "clip_threshold": [None, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        }
        grids = {**default_grids, **(grids or {})}
        cur = start.to_dict()
        cur["low_ratio"] = [lo / hi if hi > 0 else 1.0 for lo, hi in zip(cur["threshold_low"], cur["threshold"])]
        if cur["clip_threshold"] is None:
            cur["clip_threshold"] = [None] * len(pp0.classes)
        tuned_f1 = {}
        it = range(len(pp0.classes))
        if verbose:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="tuning event settings", unit="class")
        for k in it:
            label = pp0.classes[k]
            ref_k = [e for e in ref if e[3] == label]
            sk = [c[:, k : k + 1] for c in clips]
            cache = {}

            def f1_of(setting):
                key = tuple(sorted(setting.items()))
                if key not in cache:
                    pk = cls([label], threshold=setting["threshold"], threshold_low=setting["threshold"] * setting["low_ratio"],
                             median_filter=setting["median_filter"], min_gap=setting["min_gap"],
                             min_duration=setting["min_duration"],
                             clip_threshold=setting["clip_threshold"])
                    est = pk.decode(sk, None if setting["clip_threshold"] is None else cs[:, k : k + 1], names,
                                   timing=timing, clip_duration=durations)
                    if not ref_k and not est:
                        cache[key] = 0.0
                    else:
                        r = event_based_metrics(ref_k, est, [label], t_collar=t_collar, percentage_of_length=percentage_of_length, filenames=names)
                        f = r["f_measure"]
                        cache[key] = 0.0 if f is None or not np.isfinite(f) else float(f)
                return cache[key]

            setting = {n: cur[n][k] for n in ("threshold", "low_ratio", "median_filter", "min_gap", "min_duration", "clip_threshold")}
            best = f1_of(setting)
            for _ in range(int(n_rounds)):
                changed = False
                for name in ("threshold", "low_ratio", "median_filter", "min_gap", "min_duration", "clip_threshold"):
                    for v in grids[name]:
                        trial = dict(setting, **{name: v})
                        f = f1_of(trial)
                        if f > best + 1e-12:
                            best, setting, changed = f, trial, True
                if not changed:
                    break
            for name in setting:
                cur[name][k] = setting[name]
            tuned_f1[label] = best
        gate = None if all(v is None for v in cur["clip_threshold"]) else [0.0 if v is None else v for v in cur["clip_threshold"]]
        out = cls(pp0.classes, threshold=cur["threshold"], threshold_low=np.asarray(cur["threshold"]) * np.asarray(cur["low_ratio"]),
                  median_filter=cur["median_filter"], min_gap=cur["min_gap"], min_duration=cur["min_duration"], clip_threshold=gate)
        out.source = "strong"
        out.info = {"n_clips": len(clips), "event_f1": tuned_f1, "t_collar": t_collar, "percentage_of_length": percentage_of_length}
        return out
