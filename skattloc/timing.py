"""Frame timing: the one record of where each feature frame sits in time.

Every conversion between frame indices and seconds in skattloc (event times, clip
durations, median-filter and gap lengths, PSDS time stamps, plots) reads a
:class:`FrameTiming`; nothing else knows a hop. Its owner is the feature extractor:
:attr:`skattloc.LogMelExtractor.frame_timing` builds it from the extractor's ``sr``,
``n_fft`` and ``hop_length``, and :meth:`LogMelExtractor.transform
<skattloc.LogMelExtractor.transform>` hands it on with the frames it returns
(:class:`FrameArray` / :class:`FrameList`), so that a tagger fitted in a
``Pipeline`` records the timing of the features it was actually given
(``AttLocTagger.frame_timing_``). Features from elsewhere carry no timing: give it once
with ``AttLocTagger(frame_timing=...)``.

Convention (:mod:`skattloc.features`): frame ``i`` stands for the hop-wide span
``[offset_s + i * hop_s, offset_s + (i + 1) * hop_s)`` seconds, centred on the centre of
its analysis window, and ``n`` frames cover ``n * hop_s + 2 * offset_s`` seconds of audio
(the analysis window is ``hop_s + 2 * offset_s`` long). With the default extractor
(16 kHz, ``n_fft=512``, ``hop_length=256``): ``hop_s=0.016``, ``offset_s=0.008``.

This module imports only numpy.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["FrameArray", "FrameList", "FrameTiming", "as_frame_timing", "common_timing", "frame_timing_of", "known_timing",
           "with_frame_timing"]


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return value


@dataclass(frozen=True)
class FrameTiming:
    """Where feature frames sit in time: the hop and the start of frame 0, in seconds.

    Parameters
    ----------
    hop_s : float
        Seconds from one frame to the next (``hop_length / sr``), > 0.
    offset_s : float, default=0.0
        Start in seconds of frame 0's hop-wide span, >= 0 (``(n_fft - hop_length) / 2 / sr``
        for :class:`~skattloc.LogMelExtractor`). Frame ``i`` covers
        ``[offset_s + i * hop_s, offset_s + (i + 1) * hop_s)``.

    Raises
    ------
    ValueError
        A hop that is not a finite number > 0, or an offset that is not finite and >= 0.

    Examples
    --------
    >>> from skattloc.timing import FrameTiming
    >>> t = FrameTiming(hop_s=0.016, offset_s=0.008)
    >>> t.clip_duration(249)  # the frames of a 4 s clip
    4.0
    >>> t.frame_times(3).round(3).tolist()  # centres of frames 0, 1, 2
    [0.016, 0.032, 0.048]
    >>> t.seconds_to_frames(0.1)
    6.25
    """

    hop_s: float
    offset_s: float = 0.0

    def __post_init__(self):
        hop = _finite(self.hop_s, "hop_s")
        offset = _finite(self.offset_s, "offset_s")
        if hop <= 0:
            raise ValueError(f"hop_s must be > 0 seconds (the time from one frame to the next), got {hop!r}")
        if offset < 0:
            raise ValueError(f"offset_s must be >= 0 seconds (where frame 0's span starts), got {offset!r}")
        object.__setattr__(self, "hop_s", hop)
        object.__setattr__(self, "offset_s", offset)

    # ------------------------------------------------------------------ conversions
    def frame_times(self, n_frames: int) -> np.ndarray:
        """Centre of each frame in seconds, ``offset_s + (i + 0.5) * hop_s``; float64 (n_frames,)."""
        return self.offset_s + (np.arange(int(n_frames), dtype=np.float64) + 0.5) * self.hop_s

    def frame_edges(self, n_frames: int) -> np.ndarray:
        """Span boundaries in seconds, ``offset_s + i * hop_s`` for ``i = 0 .. n_frames``; (n_frames + 1,)."""
        return self.offset_s + np.arange(int(n_frames) + 1, dtype=np.float64) * self.hop_s

    def clip_duration(self, n_frames: int) -> float:
        """Seconds of audio that ``n_frames`` frames cover: ``n_frames * hop_s + 2 * offset_s``.

        For :class:`~skattloc.LogMelExtractor` features this is its
        :meth:`~skattloc.LogMelExtractor.clip_duration`: ``((n - 1) * hop_length + n_fft) / sr``.
        """
        return int(n_frames) * self.hop_s + 2 * self.offset_s

    def seconds_to_frames(self, seconds: float) -> float:
        """A duration in seconds as a (fractional) number of frames, ``seconds / hop_s``."""
        return float(seconds) / self.hop_s

    def frames_to_seconds(self, frames) -> float:
        """A duration in frames as seconds, ``frames * hop_s``."""
        return float(frames) * self.hop_s

    def matches(self, other: "FrameTiming", rel: float = 1e-9) -> bool:
        """The same timing up to float rounding (``hop_length / sr`` computed two ways)."""
        return math.isclose(self.hop_s, other.hop_s, rel_tol=rel) and math.isclose(
            self.offset_s, other.offset_s, rel_tol=rel, abs_tol=rel * self.hop_s
        )

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        """``{"hop_s": ..., "offset_s": ...}``: what a model file stores."""
        return {"hop_s": self.hop_s, "offset_s": self.offset_s}

    @classmethod
    def from_dict(cls, data) -> "FrameTiming":
        """The inverse of :meth:`to_dict`; refuses other keys (names them)."""
        if not isinstance(data, dict):
            raise TypeError(f"a frame timing record must be a dict with hop_s and offset_s, got {type(data).__name__}")
        unknown = sorted(set(data) - {"hop_s", "offset_s"})
        if unknown or "hop_s" not in data:
            raise ValueError(
                f"a frame timing record has the keys hop_s and offset_s (seconds), got {sorted(data)}"
            )
        return cls(data["hop_s"], data.get("offset_s", 0.0))

    def __str__(self) -> str:
        return f"hop {self.hop_s * 1000:g} ms, frame 0 from {self.offset_s * 1000:g} ms"


def as_frame_timing(value, name: str = "frame_timing"):
    """Any way of giving a frame timing, as a :class:`FrameTiming` (None stays None).

    Accepted: a :class:`FrameTiming`; anything with a ``frame_timing`` attribute (a
    :class:`~skattloc.LogMelExtractor`, a :class:`FrameArray`); a dict
    ``{"hop_s": ..., "offset_s": ...}``; a number (the hop, frame 0 at 0 s); a pair
    ``(hop_s, offset_s)``.

    Examples
    --------
    >>> from skattloc.timing import as_frame_timing
    >>> as_frame_timing((0.01, 0.0))
    FrameTiming(hop_s=0.01, offset_s=0.0)
    >>> from skattloc import LogMelExtractor
    >>> as_frame_timing(LogMelExtractor(hop_length=512)).hop_s
    0.032
    """
    if value is None or isinstance(value, FrameTiming):
        return value
    inner = getattr(value, "frame_timing", None)
    if isinstance(inner, FrameTiming):
        return inner
    try:
        if isinstance(value, dict):
            return FrameTiming.from_dict(value)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return FrameTiming(value, 0.0)
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return FrameTiming(*value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    raise ValueError(
        f"{name} must be a FrameTiming, a LogMelExtractor, a dict {{'hop_s', 'offset_s'}}, a hop in "
        f"seconds or a pair (hop_s, offset_s), got {type(value).__name__} {value!r}"
    )


# ---------------------------------------------------------------------- frames that carry it
class FrameArray(np.ndarray):
    """A float array of frames ``(n_clips, n_frames, n_features)`` that knows its timing.

    What :meth:`LogMelExtractor.transform <skattloc.LogMelExtractor.transform>` returns:
    an ordinary :class:`numpy.ndarray` in every respect, plus ``frame_timing``, which
    indexing keeps (``X[train_idx]`` still knows it) and arithmetic drops (``X + 1`` is a
    plain array). ``AttLocTagger.fit`` reads it, so a Pipeline's tagger records the timing
    of its extractor.
    """

    frame_timing: FrameTiming | None

    def __array_finalize__(self, obj):
        self.frame_timing = getattr(obj, "frame_timing", None)

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        out = np.asarray(obj).view(np.ndarray)
        return out[()] if return_scalar else out

    def __reduce__(self):  # pickling (joblib, Pipeline(memory=...)) keeps the timing
        build, args, state = super().__reduce__()
        return build, args, (state, self.frame_timing)

    def __setstate__(self, state):
        base, timing = state
        super().__setstate__(base)
        self.frame_timing = timing


class FrameList(list):
    """A list of per-clip frame arrays ``(n_frames_i, n_features)`` that knows its timing
    (clips of different lengths); see :class:`FrameArray`."""

    def __init__(self, items=(), frame_timing=None):
        super().__init__(items)
        self.frame_timing = frame_timing

    def __getitem__(self, index):
        out = super().__getitem__(index)
        return FrameList(out, self.frame_timing) if isinstance(index, slice) else out

    def __reduce__(self):
        return (FrameList, (list(self), self.frame_timing))


def with_frame_timing(frames, timing: FrameTiming):
    """``frames`` (a 3-D array or a list of 2-D arrays) marked with ``timing``; no copy of the data."""
    if isinstance(frames, np.ndarray):
        out = frames.view(FrameArray)
        out.frame_timing = timing
        return out
    return FrameList(frames, timing)


def common_timing(*named):
    """The one timing of ``(name, FrameTiming or None)`` pairs (None when all are None).

    Raises
    ------
    ValueError
        Two of them differ (naming both): one tagger needs one frame timing.

    Examples
    --------
    >>> from skattloc.timing import FrameTiming, common_timing
    >>> common_timing(("frame_timing", None), ("X", FrameTiming(0.032)))
    FrameTiming(hop_s=0.032, offset_s=0.0)
    """
    found = [(name, t) for name, t in named if t is not None]
    for name, t in found[1:]:
        if not t.matches(found[0][1]):
            raise ValueError(
                f"{name} has frames with {t}, but {found[0][0]} says {found[0][1]}: one tagger "
                f"needs one frame timing (compute every clip with the same extractor settings)"
            )
    return found[0][1] if found else None


def known_timing(fitted, given):
    """The timing a fitted tagger answers in: the one recorded at fit (``fitted``), else the
    one set since (``given``); ValueError when they disagree or neither is known (it never
    guesses a hop)."""
    if fitted is not None and given is not None and not given.matches(fitted):
        raise ValueError(f"frame_timing={given} contradicts the timing of the training features, {fitted}")
    if fitted is None and given is None:
        raise ValueError(
            "this tagger does not know the frame timing of its features (the hop and the start of frame 0 "
            "in seconds): it was fitted on arrays that carry none, so it cannot answer in seconds. Set it "
            "with tagger.set_params(frame_timing=...), e.g. frame_timing=(0.01, 0.0) for a 10 ms hop or "
            "frame_timing=LogMelExtractor(...) for that extractor's frames"
        )
    return fitted or given


def frame_timing_of(X):
    """The :class:`FrameTiming` that ``X`` carries, or None (a plain array or list)."""
    timing = getattr(X, "frame_timing", None)
    return timing if isinstance(timing, FrameTiming) else None
