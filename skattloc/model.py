"""The CGRNN with attention and localization heads (Xu et al., Interspeech 2017).

This module holds the architecture only. It imports torch and nothing from Lightning or
scikit-learn, so :class:`CGRNN` can be used in any training loop.

Shapes used throughout:

- ``x``: ``(batch, n_frames, n_mels)`` log-mel frames, time first.
- ``lengths``: ``(batch,)`` number of valid frames per clip; frames at or beyond a clip's
  length are padding and never influence that clip's outputs.

Equation numbers refer to the paper (``../shared/paper/attention-localization-cgrnn.md``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import _fastpath

POOLINGS = ("att_loc", "att", "mean")
# How z_loc(t) of eq. (6) is normalized: "softmax" over classes (the paper) or a per-class
# "sigmoid" (each class weighs frames on its own; eq. 8 still normalizes over time).
LOC_ACTIVATIONS = ("softmax", "sigmoid")
# Denominator of eq. (8): sum_t z_loc(t) (the paper) or sum_t z_att(t) z_loc(t).
LOC_DENOMINATORS = ("loc", "att_loc")

# Lower bound on the eq. (8) denominator and the attention-weighted mean, so that a class
# whose localization weight vanishes everywhere gives 0 rather than NaN.
_EPS = 1e-7


@dataclass
class CGRNNOutput:
    """Everything the network computes for a batch.

    Attributes
    ----------
    clip : Tensor, shape (batch, n_classes)
        Clip-level tag probabilities: eq. (2) for ``"mean"``, the attention-weighted
        mean of eq. (5) for ``"att"``, and eq. (8) for ``"att_loc"``.
    frame : Tensor, shape (batch, n_frames, n_classes)
        ``O(t)``, the per-frame sigmoid outputs.
    att : Tensor or None, shape (batch, n_frames)
        ``z_att(t)`` of eq. (3), in (0, 1); None for ``"mean"``.
    loc : Tensor or None, shape (batch, n_frames, n_classes)
        ``z_loc(t)`` of eq. (6): a softmax over classes (``loc_activation="softmax"``) or
        a per-class sigmoid (``"sigmoid"``); None unless ``"att_loc"``.
    mask : Tensor, shape (batch, n_frames), bool
        True on valid frames, False on padding.
    """

    clip: torch.Tensor
    frame: torch.Tensor
    att: Optional[torch.Tensor]
    loc: Optional[torch.Tensor]
    mask: torch.Tensor

    def weighted_frame(self) -> torch.Tensor:
        """The paper's frame output: ``O'(t)`` of eq. (7) (att_loc), eq. (5) (att), or ``O(t)``.

        Returns
        -------
        Tensor, shape (batch, n_frames, n_classes), values in [0, 1].
        """
        out = self.frame
        if self.att is not None:
            out = self.att.unsqueeze(-1) * out
        if self.loc is not None:
            out = out * self.loc
        return out


def length_mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Boolean mask of shape ``(batch, n_frames)``: True where ``t < lengths[b]``."""
    steps = torch.arange(n_frames, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def masked_weighted_mean(values: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum_t w(t) v(t) / sum_t w(t)`` over valid frames.

    Parameters
    ----------
    values : Tensor, shape (batch, n_frames, n_classes)
    weights : Tensor, shape (batch, n_frames, n_classes) or (batch, n_frames, 1)
    mask : Tensor, shape (batch, n_frames), bool

    Returns
    -------
    Tensor, shape (batch, n_classes)
    """
    w = weights * mask.unsqueeze(-1).to(weights.dtype)
    num = (w * values).sum(dim=1)
    den = w.sum(dim=1).clamp_min(_EPS)
    return num / den


class CGRNN(nn.Module):
    """Chunk-level convolutional gated recurrent network with attention and localization.

    Parameters
    ----------
    n_mels : int
        Number of input features per frame (mel bands). The paper uses 40.
    n_classes : int
        Number of tags.
    n_filters : int, default=128
        Convolution filters applied to each frame over frequency.
    kernel_size : int, default=30
        Convolution kernel length in mel bins ("valid" convolution, so it must not exceed
        ``n_mels``). The positions left are max-pooled, giving ``n_filters`` values a frame.
    rnn_hidden : int, default=128
        GRU units per direction.
    rnn_layers : int, default=3
        Stacked bidirectional GRU layers.
    dense_units : int, default=500
        Units of the ReLU layer after the GRUs.
    dropout : float, default=0.2
        Dropout after the ReLU layer.
    pooling : {"att_loc", "att", "mean"}, default="att_loc"
        How frame outputs become the clip output: ``"att_loc"`` is the paper's full model
        (eq. 3-8), ``"att"`` attention only (eq. 3-5, weighted mean over frames), ``"mean"``
        the CGRNN baseline (eq. 2).
    loc_activation : {"softmax", "sigmoid"}, default="softmax"
        Normalization of the localization output ``z_loc(t)`` (``"att_loc"`` only).
        ``"softmax"`` is the paper's eq. (6): the classes compete in every frame, and
        ``z_loc(t)`` sums to 1 over classes. ``"sigmoid"`` gives each class its own
        ``sigmoid(W_loc y'(t) + b_loc)`` in (0, 1), so no class can take the frames of
        another. Eq. (7)-(8) are unchanged: eq. (8) divides by ``sum_t z_loc(t)`` per class,
        so the clip output stays a ``z_loc``-weighted mean over time of ``z_att(t) O(t)``
        with either activation. The softmax can collapse, one class taking the argmax of
        almost every frame (measured on domestic-mix, see ``docs/benchmarks.md``); the
        clip output survives that, but ``z_loc`` then localizes poorly.
    loc_denominator : {"loc", "att_loc"}, default="loc"
        Denominator of eq. (8) (``"att_loc"`` pooling only). ``"loc"`` is the paper's
        ``sum_t z_loc(t)``: since the numerator ``sum_t z_att(t) O(t) z_loc(t)`` carries
        ``z_att(t) < 1``, the clip output is capped by the attention of the frames that
        ``z_loc`` weighs. ``"att_loc"`` divides by ``sum_t z_att(t) z_loc(t)``, which makes
        the clip output a true weighted mean of ``O(t)`` with weights ``z_att z_loc``, as
        ``"att"`` pooling is for eq. (5).

    Notes
    -----
    With 40 mel bands, 5 classes and the defaults the ``"att_loc"`` network has 926,699
    trainable parameters.

    The input standardization (``input_mean``, ``input_scale``) is held as buffers, so a
    saved or exported network takes raw log-mel frames.

    Examples
    --------
    >>> import torch
    >>> from skattloc.model import CGRNN
    >>> net = CGRNN(n_mels=40, n_classes=5)
    >>> sum(p.numel() for p in net.parameters())
    926699
    >>> out = net(torch.randn(2, 249, 40))
    >>> tuple(out.clip.shape), tuple(out.frame.shape), tuple(out.loc.shape)
    ((2, 5), (2, 249, 5), (2, 249, 5))
    """

    def __init__(
        self,
        n_mels: int,
        n_classes: int,
        n_filters: int = 128,
        kernel_size: int = 30,
        rnn_hidden: int = 128,
        rnn_layers: int = 3,
        dense_units: int = 500,
        dropout: float = 0.2,
        pooling: str = "att_loc",
        loc_activation: str = "softmax",
        loc_denominator: str = "loc",
    ):
        super().__init__()
        if loc_denominator not in LOC_DENOMINATORS:
            raise ValueError(f"loc_denominator must be one of {LOC_DENOMINATORS}, got {loc_denominator!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if loc_activation not in LOC_ACTIVATIONS:
            raise ValueError(f"loc_activation must be one of {LOC_ACTIVATIONS}, got {loc_activation!r}")
        if kernel_size > n_mels:
            raise ValueError(
                f"kernel_size={kernel_size} is larger than the {n_mels} input features per "
                f"frame; the valid convolution over frequency needs kernel_size <= n_mels"
            )
        self.n_mels = n_mels
        self.n_classes = n_classes
        self.pooling = pooling
        self.loc_activation = loc_activation
        self.loc_denominator = loc_denominator
        self.register_buffer("input_mean", torch.zeros(n_mels))
        self.register_buffer("input_scale", torch.ones(n_mels))
        # CNN over frequency, the same for every frame (Fig. 1). Stored as a Conv1d so its
        # weights match a plain build; run as one matmul over all frames (see _cnn).
        self.conv = nn.Conv1d(1, n_filters, kernel_size)
        # eq. (3): one sigmoid unit on the input frame.
        self.att = nn.Linear(n_mels, 1) if pooling in ("att", "att_loc") else None
        # eq. (6): a softmax layer over the classes on the attention-weighted CNN output.
        self.loc = nn.Linear(n_filters, n_classes) if pooling == "att_loc" else None
        self.gru = nn.GRU(
            n_filters, rnn_hidden, num_layers=rnn_layers, batch_first=True, bidirectional=True
        )
        self.dense = nn.Linear(2 * rnn_hidden, dense_units)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dense_units, n_classes)
        # On the CPU in float32, run the CNN and the GRU through skattloc._fastpath: the
        # same function with fewer, larger ops (docs/performance.md). False: plain layers.
        self.cpu_fast_path = True

    def set_input_stats(self, mean, scale) -> None:
        """Set the per-feature standardization applied before everything else.

        Parameters
        ----------
        mean, scale : array-like, shape (n_mels,)
            The network computes ``(x - mean) / scale``.
        """
        self.input_mean.copy_(torch.as_tensor(mean, dtype=self.input_mean.dtype))
        self.input_scale.copy_(torch.as_tensor(scale, dtype=self.input_scale.dtype))

    def _cnn(self, x: torch.Tensor) -> torch.Tensor:
        # Per-frame valid convolution over frequency, ReLU, max over positions: (B, T, C).
        # unfold gives every kernel-wide window of every frame, so the convolution of all
        # frames is a single matmul. Max-pooling commutes with the monotone ReLU.
        if getattr(self, "cpu_fast_path", True) and _fastpath.enabled(x, self.conv.weight):
            return torch.relu(_fastpath.frame_conv_max(x, self.conv))
        k = self.conv.kernel_size[0]
        windows = x.unfold(-1, k, 1)  # (B, T, P, k)
        weight = self.conv.weight.view(self.conv.out_channels, k)
        y = torch.nn.functional.linear(windows, weight, self.conv.bias)  # (B, T, P, C)
        return torch.relu(y.amax(dim=2))

    def _rnn(self, y: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
        """The biGRU; ``lengths`` is None when every frame of every clip is valid."""
        n_frames = y.shape[1]
        if getattr(self, "cpu_fast_path", True) and _fastpath.supports(self.gru, y) and (torch.is_grad_enabled() or y.shape[0] >= 8):
            return _fastpath.bigru(self.gru, y, lengths)
        if lengths is None:
            h, _ = self.gru(y)
            return h
        # Variable lengths: pack, so the backward direction starts at each clip's last
        # valid frame and padding never leaks into valid frames.
        packed = pack_padded_sequence(y, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.gru(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=n_frames)
        return h

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> CGRNNOutput:
        """Run the network.

        Parameters
        ----------
        x : Tensor, shape (batch, n_frames, n_mels)
            Raw log-mel frames (standardized inside).
        lengths : Tensor of int, shape (batch,), optional
            Valid frames per clip. None means all frames are valid.

        Returns
        -------
        CGRNNOutput
        """
        batch, n_frames, _ = x.shape
        if lengths is not None and bool((lengths == n_frames).all()):
            lengths = None  # checked once here; the estimator keeps lengths on the host, so no device round trip
        if lengths is None:
            mask = torch.ones(batch, n_frames, dtype=torch.bool, device=x.device)
        else:
            mask = length_mask(lengths.to(x.device, non_blocking=True), n_frames)
        x = (x - self.input_mean) / self.input_scale
        y_cnn = self._cnn(x)
        att = loc = None
        if self.att is not None:
            att = torch.sigmoid(self.att(x)).squeeze(-1)  # eq. (3)
            y_cnn = att.unsqueeze(-1) * y_cnn  # eq. (4)
        if self.loc is not None:
            logits = self.loc(y_cnn)
            if self.loc_activation == "softmax":
                loc = torch.softmax(logits, dim=-1)  # eq. (6)
            else:
                loc = torch.sigmoid(logits)  # eq. (6) with a per-class sigmoid
        h = self._rnn(y_cnn, lengths)
        h = self.dropout(torch.relu(self.dense(h)))
        frame = torch.sigmoid(self.out(h))  # O(t)
        # Pool in float32, so the eq. (8) division is stable under mixed precision.
        frame32 = frame.float()
        if self.pooling == "mean":
            clip = masked_weighted_mean(frame32, torch.ones_like(frame32[..., :1]), mask)  # eq. (2)
        elif self.pooling == "att":
            clip = masked_weighted_mean(frame32, att.float().unsqueeze(-1), mask)  # eq. (5), weighted mean
        else:
            # eq. (7)-(8): sum_t z_att O z_loc / sum_t z_loc, per class.
            w = mask.unsqueeze(-1).to(torch.float32) * loc.float()
            aw = att.float().unsqueeze(-1) * w
            num = (aw * frame32).sum(dim=1)
            den = w.sum(dim=1) if self.loc_denominator == "loc" else aw.sum(dim=1)
            clip = num / den.clamp_min(_EPS)
        return CGRNNOutput(clip=clip, frame=frame, att=att, loc=loc, mask=mask)


def clip_bce(clip: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Binary cross-entropy of eq. (1) on clip probabilities, stable in half precision.

    Computed in float32 with the probabilities clamped to ``[eps, 1 - eps]`` (the eq. (8)
    output can reach exactly 0), and averaged over clips and classes.

    Parameters
    ----------
    clip : Tensor, shape (batch, n_classes)
        Clip probabilities.
    target : Tensor, shape (batch, n_classes)
        0/1 tags.

    Returns
    -------
    Tensor, scalar.
    """
    p = clip.float().clamp(eps, 1.0 - eps)
    t = target.float()
    return -(t * torch.log(p) + (1.0 - t) * torch.log1p(-p)).mean()
