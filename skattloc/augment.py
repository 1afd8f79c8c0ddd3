"""Training-time augmentations of log-mel batches (torch, on the batch's device).

Each takes a batch ``x`` of raw log-mel frames, shape ``(batch, n_frames, n_mels)`` (before
the network's standardization), and the clips' valid lengths in frames (``None``: every
frame valid), and returns new tensors; nothing is modified in place. Frame targets ``f``,
shape ``(batch, n_frames, n_classes)`` (NaN where a clip has no event times, and on
padding), move and mix with their clips. :class:`skattloc.module.AttLocModule` applies them
in this order: :func:`time_shift`, :func:`filter_augment`, :func:`spec_augment`, then one
mixing, :func:`power_mix` on a share of the batches and :func:`mixup` on the others.
Validation and inference never see them.

:func:`power_mix` and :func:`filter_augment` read ``x`` as the natural log of mel power,
as :class:`skattloc.LogMelExtractor` writes it; their gains are in decibels of power.
"""
from __future__ import annotations

import math

import torch

from .model import length_mask

#: decibels of power -> natural-log units of power: ln(10) / 10
_DB = math.log(10.0) / 10.0

#: The relative gain of the added clip in :func:`power_mix`: uniform in +-6 dB.
POWER_MIX_GAIN_DB = 6.0

#: FilterAugment's band count: 2 to 5 bands per clip (Nam et al., 2022).
FILTER_BANDS = (2, 5)


def spec_augment(x, lengths, n_masks, time_width, freq_width, fill):
    """SpecAugment-style time and frequency masking of a batch of log-mel clips.

    Each clip gets ``n_masks`` time masks and ``n_masks`` frequency masks (Park et al.,
    2019, without time warping). A time mask sets ``w ~ U{0..time_width}`` consecutive
    valid frames to ``fill``; a frequency mask sets ``f ~ U{0..freq_width}`` consecutive
    mel bands of every frame to ``fill``. Runs on the batch's device, with no host sync.

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
        Raw log-mel frames (before the network's standardization).
    lengths : Tensor of int, shape (batch,), or None
        Valid frames per clip; time masks stay inside them. None: all frames are valid.
    n_masks : int
        Time masks and frequency masks per clip (0 returns ``x`` unchanged).
    time_width : int
        Largest time mask, in frames.
    freq_width : int
        Largest frequency mask, in mel bands.
    fill : Tensor, shape (n_mels,) or scalar
        Value written into masked cells; the network's ``input_mean`` makes a masked
        cell 0 after standardization.

    Returns
    -------
    Tensor, shape (batch, n_frames, n_mels)
        A new tensor; ``x`` is not modified.
    """
    if n_masks <= 0:
        return x
    batch, n_frames, n_mels = x.shape
    dev = x.device
    if lengths is None:
        lengths = torch.full((batch,), n_frames, device=dev, dtype=torch.long)
    lengths = lengths.to(dev)
    t = torch.arange(n_frames, device=dev)
    f = torch.arange(n_mels, device=dev)
    drop_t = torch.zeros(batch, n_frames, dtype=torch.bool, device=dev)
    drop_f = torch.zeros(batch, n_mels, dtype=torch.bool, device=dev)
    for _ in range(int(n_masks)):
        w = torch.minimum((torch.rand(batch, device=dev) * (time_width + 1)).long(), lengths)
        start = (torch.rand(batch, device=dev) * (lengths - w + 1)).long()
        drop_t |= (t >= start[:, None]) & (t < (start + w)[:, None])
        fw = (torch.rand(batch, device=dev) * (min(freq_width, n_mels) + 1)).long()
        fstart = (torch.rand(batch, device=dev) * (n_mels - fw + 1)).long()
        drop_f |= (f >= fstart[:, None]) & (f < (fstart + fw)[:, None])
    drop = drop_t[:, :, None] | drop_f[:, None, :]
    fill = torch.as_tensor(fill, dtype=x.dtype, device=dev)
    return torch.where(drop, fill, x)


def _grouped_permutation(groups, device):
    """A random permutation that maps every row to a row of its own group."""
    perm = torch.arange(len(groups), device=device)
    for g in torch.unique(groups):
        idx = torch.nonzero(groups == g).squeeze(1)
        perm[idx] = idx[torch.randperm(len(idx), device=device)]
    return perm


def mixup(x, y, lengths, alpha, fill, groups=None):
    """Mixup (Zhang et al., 2018) of log-mel clips and their clip tags.

    Clip ``i`` becomes ``lam_i x_i + (1 - lam_i) x_j`` with ``j`` a random permutation of
    the batch and ``lam_i ~ Beta(alpha, alpha)``; its tags become the same convex
    combination ``lam_i y_i + (1 - lam_i) y_j`` (soft targets for the BCE of eq. 1).
    Padding is replaced by ``fill`` before mixing, and a mixed clip's length is the longer
    of the two.

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
        Raw log-mel frames.
    y : Tensor, shape (batch, n_classes)
        0/1 (or already soft) clip tags.
    lengths : Tensor of int, shape (batch,), or None
        Valid frames per clip.
    alpha : float
        Beta distribution parameter (> 0).
    fill : Tensor, shape (n_mels,) or scalar
        Value of padded frames before mixing (the network's ``input_mean``).
    groups : Tensor of int, shape (batch,), optional
        Clips mix only with clips of their own group (e.g. tagged, timed, unlabeled, whose
        targets differ in kind).

    Returns
    -------
    x_mix : Tensor, shape (batch, n_frames, n_mels)
    y_mix : Tensor, shape (batch, n_classes), values in [0, 1]
    lengths_mix : Tensor of int, shape (batch,), or None
    lam : Tensor, shape (batch,), values in [0, 1]
    perm : Tensor of int, shape (batch,)
    """
    batch, n_frames, _ = x.shape
    dev = x.device
    a = torch.tensor(float(alpha), device=dev)
    lam = torch.distributions.Beta(a, a).sample((batch,)).to(x.dtype)
    perm = torch.randperm(batch, device=dev) if groups is None else _grouped_permutation(groups, dev)
    if lengths is not None:
        valid = length_mask(lengths.to(dev), n_frames).unsqueeze(-1)
        x = torch.where(valid, x, torch.as_tensor(fill, dtype=x.dtype, device=dev))
        lengths = torch.maximum(lengths, lengths[perm.to(lengths.device)])
    lx = lam.view(batch, 1, 1)
    x_mix = lx * x + (1 - lx) * x[perm]
    ly = lam.to(y.dtype).view(batch, 1)
    y_mix = ly * y + (1 - ly) * y[perm]
    return x_mix, y_mix, lengths, lam, perm


def power_mix(x, y, lengths, groups=None, f=None, gain_db=POWER_MIX_GAIN_DB):
    """Mix clips as sound mixes: add their mel power, and take the union of their tags.

    Clip ``i`` becomes ``log(exp(x_i) + g_i exp(x_j))``, with ``j`` a random permutation of
    the batch and a relative gain ``g_i`` uniform in ``+-gain_db`` decibels; its tags become
    ``max(y_i, y_j)`` (a mixture holds the events of both), and its frame targets the
    frame-wise maximum. This is how domestic-mix and DESED's synthetic sets are made, while
    :func:`mixup` interpolates log-mel frames and soft tags. Padding is silence (the batch's
    smallest value: :class:`~skattloc.LogMelExtractor`'s floor ``log(log_offset)`` in
    practice), and a mixed clip's length is the longer of the two.

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
        Natural log of mel power (:class:`skattloc.LogMelExtractor`).
    y : Tensor, shape (batch, n_classes)
        0/1 clip tags (NaN rows: unlabeled clips, which ``groups`` keeps among themselves).
    lengths : Tensor of int, shape (batch,), or None
        Valid frames per clip.
    groups : Tensor of int, shape (batch,), optional
        Clips mix only with clips of their own group (tagged, timed, unlabeled).
    f : Tensor, shape (batch, n_frames, n_classes), optional
        Frame targets (NaN where unknown); the maximum ignores NaN.
    gain_db : float, default=6.0
        Largest relative gain of the added clip, in dB of power.

    Returns
    -------
    x_mix : Tensor, shape (batch, n_frames, n_mels)
    y_mix : Tensor, shape (batch, n_classes)
    lengths_mix : Tensor of int, shape (batch,), or None
    f_mix : Tensor, shape (batch, n_frames, n_classes), or None
    perm : Tensor of int, shape (batch,)

    Examples
    --------
    >>> import torch
    >>> from skattloc.augment import power_mix
    >>> x = torch.log(torch.tensor([[[1.0, 1e-6]], [[1e-6, 1.0]]]))  # 2 clips, 1 frame, 2 bands
    >>> y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> x_mix, y_mix, _, _, perm = power_mix(x, y, None, gain_db=0.0)
    >>> perm.tolist() in ([1, 0], [0, 1])
    True
    """
    batch, n_frames, _ = x.shape
    dev = x.device
    perm = torch.randperm(batch, device=dev) if groups is None else _grouped_permutation(groups, dev)
    if lengths is not None:
        valid = length_mask(lengths.to(dev), n_frames).unsqueeze(-1)
        x = torch.where(valid, x, x.detach().amin())
        lengths = torch.maximum(lengths, lengths[perm.to(lengths.device)])
    gain = (torch.rand(batch, device=dev, dtype=x.dtype) * 2 - 1) * (gain_db * _DB)
    x_mix = torch.logaddexp(x, x[perm] + gain.view(batch, 1, 1))
    y_mix = torch.maximum(y, y[perm])
    f_mix = None if f is None else torch.fmax(f, f[perm])
    return x_mix, y_mix, lengths, f_mix, perm


def time_shift(x, lengths, max_share, f=None):
    """Roll each clip circularly in time, with its frame targets.

    Clip ``i`` of ``L_i`` valid frames is rolled by ``s_i`` frames, uniform in
    ``-floor(max_share L_i) .. floor(max_share L_i)``: frame ``t`` takes frame
    ``(t - s_i) mod L_i``. Padding stays where it is, and the clip's tags are unchanged (a
    rolled clip holds the same events, moved; an event cut by the clip's end continues at
    its start).

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
    lengths : Tensor of int, shape (batch,), or None
        Valid frames per clip (None: all).
    max_share : float in [0, 1)
        Largest shift, as a share of each clip's length.
    f : Tensor, shape (batch, n_frames, n_classes), optional
        Frame targets, rolled with their clip.

    Returns
    -------
    x_shift : Tensor, shape (batch, n_frames, n_mels)
    f_shift : Tensor or None

    Examples
    --------
    >>> import torch
    >>> from skattloc.augment import time_shift
    >>> x = torch.arange(6.0).view(1, 6, 1)
    >>> x_s, _ = time_shift(x, None, 0.5)
    >>> sorted(x_s.flatten().tolist()) == x.flatten().tolist()  # the same frames, rolled
    True
    """
    batch, n_frames, _ = x.shape
    dev = x.device
    lengths = (torch.full((batch,), n_frames, device=dev, dtype=torch.long) if lengths is None
               else lengths.to(dev).long())
    reach = torch.floor(lengths.to(torch.float64) * float(max_share)).long()
    shift = (torch.rand(batch, device=dev, dtype=torch.float64) * (2 * reach + 1)).long() - reach
    t = torch.arange(n_frames, device=dev).unsqueeze(0)
    src = torch.where(t < lengths[:, None], torch.remainder(t - shift[:, None], lengths[:, None].clamp_min(1)), t)
    x = torch.gather(x, 1, src.unsqueeze(-1).expand_as(x))
    if f is not None:
        f = torch.gather(f, 1, src.unsqueeze(-1).expand(-1, -1, f.shape[-1]))
    return x, f


def filter_augment(x, max_db, bands=FILTER_BANDS):
    """FilterAugment (Nam et al., ICASSP 2022), step type: random gains on random mel bands.

    Each clip's mel axis is cut at random into ``k`` bands (``k`` uniform in ``bands``),
    and each band gets one gain uniform in ``+-max_db`` decibels of power, on every frame:
    a random equalizer, as different rooms and microphones colour the same sound.

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
        Natural log of mel power.
    max_db : float
        Largest band gain, in dB.
    bands : (int, int), default=(2, 5)
        Fewest and most bands per clip.

    Returns
    -------
    Tensor, shape (batch, n_frames, n_mels)

    Examples
    --------
    >>> import torch
    >>> from skattloc.augment import filter_augment
    >>> x = torch.zeros(2, 3, 8)
    >>> g = filter_augment(x, 6.0)
    >>> bool((g[:, 0] == g[:, 2]).all()), bool(g.abs().max() <= 6.0 * 0.2303)  # one gain per band, every frame
    (True, True)
    """
    batch, _, n_mels = x.shape
    dev = x.device
    lo, hi = int(bands[0]), int(bands[1])
    k = torch.randint(lo, hi + 1, (batch, 1), device=dev)
    cuts = torch.sort(torch.randint(1, max(2, n_mels), (batch, hi - 1), device=dev), dim=1).values
    cuts = torch.where(torch.arange(hi - 1, device=dev).unsqueeze(0) < k - 1, cuts, n_mels)  # only k - 1 cuts
    band = (torch.arange(n_mels, device=dev).view(1, 1, n_mels) >= cuts.unsqueeze(-1)).sum(dim=1)  # (batch, n_mels)
    gains = (torch.rand(batch, hi, device=dev, dtype=x.dtype) * 2 - 1) * (float(max_db) * _DB)
    return x + torch.gather(gains, 1, band).unsqueeze(1)
