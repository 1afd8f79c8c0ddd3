"""Inference: a fitted tagger's network run over clips of any length.

The estimator's ``predict_proba``, ``localize``, ``frame_outputs`` and event methods, the
command line and the evaluation report all run the network through :func:`forward`: one
pass, in batches of ``batch_size`` clips sorted by length, with recordings longer than the
tagger's window cut into overlapping windows and stitched back (:mod:`skattloc.windowing`).
Outputs come back in input order, each clip's frame outputs cut to its valid frames.

The frames a tagger is given must have the timing of the frames it was fitted on: frames
that carry another timing (:class:`skattloc.timing.FrameArray`, e.g. from a
:class:`~skattloc.LogMelExtractor` with another hop) are refused.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Sequence, Tuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

from . import data as _data
from . import windowing as _windowing
from .timing import frame_timing_of

if TYPE_CHECKING:  # imported where used
    import torch

__all__ = ["FRAME_QUANTITIES", "forward", "frame_outputs", "frame_scores"]

#: The frame-level quantities :func:`forward` can return (see
#: :meth:`AttLocTagger.localize <skattloc.AttLocTagger.localize>`): ``"frame"`` ``O(t)``;
#: ``"paper"`` (also ``"weighted"``) the frame output that the pooling averages; ``"att_frame"``
#: ``z_att(t) O(t)``; ``"att"`` ``z_att(t)``; ``"loc"`` ``z_loc(t)``.
FRAME_QUANTITIES = ("frame", "paper", "weighted", "att_frame", "att", "loc")


def inference_batch_size(tagger) -> int:
    """Clips (or windows) per inference batch: the fitted ``batch_size_``; for a model
    file written before it existed, ``batch_size`` (always an int there: ``"auto"`` came
    with ``batch_size_``)."""
    return int(getattr(tagger, "batch_size_", tagger.batch_size))


def _device(accelerator) -> "torch.device":
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _frame_quantity(out, key: str) -> "torch.Tensor":
    if key in ("paper", "weighted"):
        return out.weighted_frame()
    if key == "att_frame":
        return out.frame if out.att is None else out.att.unsqueeze(-1) * out.frame
    if key in ("frame", "att", "loc"):
        return getattr(out, key)
    raise ValueError(f"unknown frame quantity {key!r}; expected one of {FRAME_QUANTITIES}")


def _run_windows(model, x: np.ndarray, device, keys):
    """Clip and frame outputs of full-length windows ``x`` (no padding, so no lengths)."""
    import torch

    out = model(torch.from_numpy(x).to(device))
    return out.clip.float().cpu().numpy(), {k: _frame_quantity(out, k).float().cpu().numpy() for k in keys}


def _check_timing(tagger, X) -> None:
    """Refuse frames whose carried timing differs from the one the tagger was fitted on."""
    carried, fitted = frame_timing_of(X), getattr(tagger, "frame_timing_", None)
    if carried is not None and fitted is not None and not carried.matches(fitted):
        raise ValueError(
            f"X holds frames with {carried}, but this tagger was fitted on frames with {fitted}: "
            f"compute the features with the extractor the tagger was trained with"
        )


def forward(tagger, X, frames: Sequence[str] = ()) -> Tuple[np.ndarray, dict, object]:
    """Clip probabilities and per-clip frame quantities of a fitted tagger, in input order.

    Parameters
    ----------
    tagger : AttLocTagger
        A fitted tagger.
    X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)
        Log-mel frames (or a :class:`~skattloc.FeatureStore` / :class:`~skattloc.AudioFeatures`).
    frames : sequence of str
        The frame quantities to return (:data:`FRAME_QUANTITIES`); the network runs once
        whatever their number.

    Returns
    -------
    clip : ndarray (n_clips, n_classes), float32
        Clip probabilities.
    per_clip : dict
        ``{key: [ndarray (n_frames_i, n_classes) or (n_frames_i,) per clip]}``.
    X : the checked clips
        A 3-D array stays one, so that callers can return the same kind.

    Raises
    ------
    ValueError
        Clips the tagger cannot take (wrong feature count, NaN/Inf...), frames with
        another timing than the tagger's, or a network output that is not finite.
    """
    import torch

    check_is_fitted(tagger, "model_")
    _check_timing(tagger, X)
    X = _data.check_clips(
        X, n_features=tagger.n_features_in_, min_features=_data.min_features(tagger.frontend, tagger.kernel_size),
        estimator=type(tagger).__name__,
    )
    n = _data.n_clips(X)
    device = _device(tagger.accelerator)
    model = tagger.model_.to(device).eval()
    # Recordings longer than the window run window by window (skattloc.windowing).
    window, hop = _windowing.resolve_window(
        getattr(tagger, "window_frames", None), getattr(tagger, "window_overlap", 0.5), getattr(tagger, "n_frames_train_", None)
    )
    all_lengths = _data.clip_lengths(X)
    long_idx = np.flatnonzero(all_lengths > window) if window else np.empty(0, dtype=np.int64)
    short_idx = np.setdiff1d(np.arange(n), long_idx)
    loader = _data.inference_loader(_data.subset(X, short_idx), inference_batch_size(tagger))  # X itself if none is long
    order = short_idx[loader.batch_sampler.order]
    clip = np.empty((n, len(tagger.classes_)), dtype=np.float32)
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
                    _windowing.clip_reader(X, i), int(all_lengths[i]), window, hop, inference_batch_size(tagger),
                )
                for key in frames:
                    per_clip[key][i] = stitched[key]
    finally:
        tagger.model_.cpu()
    bad = np.flatnonzero(~np.isfinite(clip).all(axis=1))
    if len(bad):  # never hand back NaN probabilities
        raise ValueError(
            f"the network's output is NaN or Inf for {len(bad)} clip(s) (first: index "
            f"{int(bad[0])}): their features are so far outside the range seen in fit "
            f"(feature_mean_, feature_scale_) that float32 overflows, or the weights are not "
            f"finite; expected log-mel frames like those seen in fit"
        )
    return clip, per_clip, X


def frame_scores(tagger, X) -> Tuple[List[np.ndarray], np.ndarray]:
    """What event detection reads, from one forward pass: the :meth:`localize
    <skattloc.AttLocTagger.localize>` output of each clip and the clip probabilities.

    Parameters
    ----------
    tagger : AttLocTagger
        A fitted tagger; its ``localization`` picks the frame quantity.
    X : array (n_clips, n_frames, n_features) or list of (n_frames_i, n_features)

    Returns
    -------
    frames : list of ndarray (n_frames_i, n_classes)
        Per clip, values in [0, 1].
    clip : ndarray (n_clips, n_classes)
        Clip probabilities (:meth:`predict_proba <skattloc.AttLocTagger.predict_proba>`).

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc import AttLocTagger
    >>> from skattloc.inference import frame_scores
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(6, 5, 4)), np.eye(2, dtype=int)[np.arange(6) % 2]
    >>> tagger = AttLocTagger(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1,
    ...                       dense_units=4, max_epochs=1, random_state=0).fit(X, Y)
    >>> frames, clip = frame_scores(tagger, X)
    >>> len(frames), frames[0].shape, clip.shape
    (6, (5, 2), (6, 2))
    """
    clip, per_clip, _ = forward(tagger, X, frames=(tagger.localization,))
    return per_clip[tagger.localization], clip


def frame_outputs(tagger, X) -> List[dict]:
    """Every frame-level quantity of a fitted tagger's network, per clip, from one pass;
    see :meth:`AttLocTagger.frame_outputs <skattloc.AttLocTagger.frame_outputs>`."""
    check_is_fitted(tagger, "model_")
    keys = ["frame", "weighted", "att_frame"] + (["att"] if tagger.model_.att is not None else [])
    keys += ["loc"] if tagger.model_.loc is not None else []
    clip, per_clip, _ = forward(tagger, X, frames=keys)
    per_clip["paper"] = per_clip["weighted"]  # the name that localization uses
    return [{"clip": c, **{key: frames[i] for key, frames in per_clip.items()}} for i, c in enumerate(clip)]
