"""Split long recordings into overlapping windows and stitch the frame outputs back.

A tagger trained on clips of ``W`` frames is applied to a recording of ``n > W`` frames
window by window (windows of ``W`` frames, ``hop = round(W * (1 - overlap))`` frames
apart), a batch of windows at a time, so memory holds one batch of windows plus the
frame output of the whole recording, never the network's activations for all of it.

Conventions
-----------
* Window ``k`` covers input frames ``[s_k, s_k + W)`` with ``s_k = k * hop``; the last
  window is moved left to end exactly at frame ``n`` (``s = n - W``). Every window is a
  full ``W`` frames of the recording: there is no padding anywhere, so nothing can leak
  from it.
* Output frame ``t`` is the output for input frame ``t`` (the network has no temporal
  stride), so frame times are those of :meth:`LogMelExtractor.frame_times`, exactly as
  for a short clip.
* Stitching: overlap-add with a Hann taper. A frame's output is the weighted mean of the
  outputs of the windows that contain it, with weight ``w(u) = sin^2(pi (u + 0.5) / W)``
  at position ``u`` inside the window. Frames near a window's edges, where the
  bidirectional GRU has seen little context on one side, count little when another
  window holds them near its centre. With ``overlap=0.5`` the weights of neighbouring
  windows sum to a constant (the taper is COLA), so interior frames are a smooth
  cross-fade between two windows; with ``overlap=0`` each frame comes from exactly one
  window.
* Clip probability of a long recording: the **maximum over windows** of the window clip
  probabilities, per class. A weak tag means "the event occurs somewhere", so a 1 s event
  in an hour of silence must be found as surely as in a short clip; the mean over windows
  would dilute it by the recording's length.
* A recording of at most ``W`` frames is a single window: it is run unchanged, exactly as
  without windowing.
"""
from __future__ import annotations

import numbers
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ._checks import check_number

__all__ = ["check_window_frames", "check_window_params", "clip_reader", "hop_frames", "resolve_window", "stitch_windows", "taper", "window_starts"]


def check_window_frames(window_frames, name="window_frames"):
    """Validate the estimator's ``window_frames`` parameter: ``"auto"``, None or a positive int.

    Examples
    --------
    >>> from skattloc.windowing import check_window_frames
    >>> check_window_frames("auto"), check_window_frames(None), check_window_frames(500)
    ('auto', None, 500)
    """
    ok = window_frames is None or (isinstance(window_frames, str) and window_frames == "auto")
    ok = ok or (isinstance(window_frames, numbers.Integral) and not isinstance(window_frames, bool) and window_frames >= 1)
    if not ok:
        raise ValueError(
            f"{name} must be 'auto' (the training clip length), None (never split) or "
            f"a positive int (frames), got {window_frames!r}"
        )
    return window_frames


def check_window_params(window_frames, window_overlap) -> None:
    """Validate the estimator's ``window_frames`` and ``window_overlap`` parameters.

    Raises
    ------
    ValueError
        ``window_frames`` is not ``"auto"``, None or a positive int, or ``window_overlap``
        is not a number in [0, 1).
    """
    check_window_frames(window_frames)
    check_number(window_overlap, "window_overlap", 0, 1, closed="[)")


def resolve_window(window_frames, window_overlap, n_frames_train: Optional[int]) -> Tuple[Optional[int], int]:
    """Window and hop length in frames, or ``(None, 0)`` when recordings are never split.

    Parameters
    ----------
    window_frames : "auto", None or int
        ``"auto"``: ``n_frames_train`` (None if unknown, e.g. a model fitted before this
        parameter existed); None: never split; int: that many frames.
    window_overlap : float in [0, 1)
        Fraction of a window shared with the next one.
    n_frames_train : int or None
        Longest training clip, in frames.

    Returns
    -------
    window : int or None
    hop : int

    Examples
    --------
    >>> from skattloc.windowing import resolve_window
    >>> resolve_window("auto", 0.5, 249), resolve_window(None, 0.5, 249)
    ((249, 124), (None, 0))
    """
    check_window_params(window_frames, window_overlap)
    window = n_frames_train if isinstance(window_frames, str) else window_frames
    if window is None:
        return None, 0
    window = int(window)
    return window, hop_frames(window, window_overlap)


def hop_frames(window: int, overlap: float) -> int:
    """Frames between window starts: ``max(1, round(window * (1 - overlap)))``.

    Examples
    --------
    >>> from skattloc.windowing import hop_frames
    >>> hop_frames(249, 0.5), hop_frames(249, 0.0)
    (124, 249)
    """
    return max(1, int(round(window * (1.0 - float(overlap)))))


def window_starts(n_frames: int, window: int, hop: int) -> np.ndarray:
    """First frame of each window, int64 array.

    Parameters
    ----------
    n_frames : int
        Frames in the recording.
    window, hop : int
        Window length and hop in frames.

    Returns
    -------
    ndarray of shape (n_windows,)
        ``0, hop, 2 hop, ...`` and ``n_frames - window`` last, so that every window lies
        inside the recording and the last one ends at its end. ``[0]`` when
        ``n_frames <= window``.

    Examples
    --------
    >>> from skattloc.windowing import window_starts
    >>> window_starts(10, 4, 2)
    array([0, 2, 4, 6])
    >>> window_starts(11, 4, 2)
    array([0, 2, 4, 6, 7])
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be >= 1 frame, got window={window}, hop={hop}")
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    last = n_frames - window
    starts = np.arange(0, last, hop, dtype=np.int64)
    return np.append(starts, np.int64(last))


def taper(window: int) -> np.ndarray:
    """Hann stitching weights ``sin^2(pi (u + 0.5) / window)``, float64 of shape (window,).

    Strictly positive, so the recording's first and last frames (held by one window
    only) are defined.

    Examples
    --------
    >>> from skattloc.windowing import taper
    >>> w = taper(4)
    >>> w.round(3), float((w[:2] + w[2:]).min())  # half overlap: weights sum to 1
    (array([0.146, 0.854, 0.854, 0.146]), 1.0)
    """
    u = np.arange(window, dtype=np.float64)
    return np.sin(np.pi * (u + 0.5) / window) ** 2


def clip_reader(X, i: int) -> Callable[[int, int], np.ndarray]:
    """``read(start, stop)`` for clip ``i`` of validated clips ``X``.

    A :class:`~skattloc.store.ClipSequence` reads only that frame range from disk; an
    in-memory clip is sliced.
    """
    from .store import ClipSequence

    if isinstance(X, ClipSequence):
        return lambda start, stop: X.read(i, start, stop)
    clip = X[i]
    return lambda start, stop: clip[start:stop]


def stitch_windows(
    run: Callable[[np.ndarray], Tuple[np.ndarray, Dict[str, np.ndarray]]],
    read: Callable[[int, int], np.ndarray],
    n_frames: int,
    window: int,
    hop: int,
    batch_size: int,
):
    """Run ``run`` on the windows of one recording and stitch its frame outputs.

    Parameters
    ----------
    run : callable
        ``run(x)`` with ``x`` float32 of shape (batch, window, n_features) returns the clip
        outputs, shape (batch, n_classes), and a dict of frame outputs, each of shape
        (batch, window, ...) (e.g. ``(batch, window, n_classes)`` or ``(batch, window)``);
        the dict may be empty.
    read : callable
        ``read(start, stop)`` returns frames ``start:stop`` of the recording, shape
        (stop - start, n_features). Called once per batch, for the span the batch's
        windows cover.
    n_frames : int
        Frames in the recording.
    window, hop : int
        Window length and hop, in frames.
    batch_size : int
        Windows per call of ``run``.

    Returns
    -------
    clip : ndarray of shape (n_classes,)
        Maximum over windows of the window clip outputs.
    frames : dict of ndarray of shape (n_frames, ...), float32
        Hann-weighted overlap-add of each frame output (see the module notes),
        accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.windowing import stitch_windows
    >>> x = np.arange(10, dtype=np.float32)[:, None]  # 10 frames, 1 feature
    >>> run = lambda xb: (xb.max(axis=1), {"f": 2 * xb})  # a per-frame "network"
    >>> clip, frames = stitch_windows(run, lambda a, b: x[a:b], 10, window=4, hop=2, batch_size=3)
    >>> clip, frames["f"][:, 0]
    (array([9.], dtype=float32), array([ 0.,  2.,  4.,  6.,  8., 10., 12., 14., 16., 18.], dtype=float32))
    >>> frames["f"].dtype, frames["f"].shape
    (dtype('float32'), (10, 1))
    """
    starts = window_starts(n_frames, window, hop)
    w = taper(window)
    clip = None
    acc: Dict[str, np.ndarray] = {}
    wsum = np.zeros(n_frames, dtype=np.float64)
    for b in range(0, len(starts), batch_size):
        s = starts[b : b + batch_size]
        lo, hi = int(s[0]), int(s[-1]) + window
        span = np.asarray(read(lo, hi), dtype=np.float32)
        if span.shape[0] != hi - lo:
            raise ValueError(f"read({lo}, {hi}) returned {span.shape[0]} frames, expected {hi - lo}")
        x = np.stack([span[k - lo : k - lo + window] for k in s])
        c, fs = run(x)
        c = np.asarray(c).max(axis=0)
        clip = c if clip is None else np.maximum(clip, c)
        for key, f in fs.items():
            f = np.asarray(f, dtype=np.float32)
            if key not in acc:
                acc[key] = np.zeros((n_frames,) + f.shape[2:], dtype=np.float64)
            wf = w.reshape((window,) + (1,) * (f.ndim - 2))
            for j, k in enumerate(s):
                acc[key][k : k + window] += wf * f[j]
        for k in s:
            wsum[k : k + window] += w
    frames = {}
    for key in list(acc):  # one float64 accumulator at a time becomes float32
        a = acc.pop(key)
        a /= wsum.reshape((n_frames,) + (1,) * (a.ndim - 1))
        frames[key] = a.astype(np.float32)
        del a
    return clip, frames
