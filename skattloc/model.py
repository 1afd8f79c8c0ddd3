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

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import _fastpath
# The option lists and the argument checks live in the torch-free parameter table.
from .params import FRONTENDS, LOC_ACTIVATIONS, LOC_DENOMINATORS, LOC_INPUTS, POOLINGS, validate_params  # noqa: F401


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


class ConvBlocks(nn.Module):
    """A stack of 2-D convolution blocks over time and frequency (``frontend="conv2d"``).

    Block ``i`` is a 3x3 convolution (padding 1, no bias), batch normalization, an
    activation, dropout and a pooling over frequency by 2 (while at least 2 bands are
    left) and over time by 2 in the first ``log2(time_pool)`` blocks. By default the
    channels double from block to block up to ``n_filters`` in the last one, the
    activation is a ReLU and the pooling takes the maximum; ``channels``, ``activation``
    and ``pool`` give other layouts, such as the DESED baseline's (7 blocks of
    16-32-64-128-128-128-128 channels, GLU, average pooling, dropout 0.5:
    :data:`skattloc.DESED_CONFIG`). The output of frame ``t'`` is the flattened
    ``(channels, bands)`` map: ``channels[-1] * n_bands_out`` values.

    Padding never leaks: frames at or beyond a clip's length are set to 0 before the first
    convolution and after every block, which is what a clip alone sees at its border (zero
    padding). A last partial pooling window covers the clip's own frames only (ceil mode):
    the maximum or the mean of its valid frames. So a clip alone and the same clip in a
    padded batch give the same output.

    Parameters
    ----------
    n_mels : int
        Input bands per frame.
    n_filters : int
        Channels of the last block when ``channels`` is None; block ``i`` of ``n_blocks``
        has ``max(1, n_filters // 2 ** (n_blocks - 1 - i))``.
    n_blocks : int
        Number of blocks.
    time_pool : int
        Total time downsampling, a power of 2 up to ``2 ** n_blocks``.
    channels : sequence of int, optional
        The channels of each block (``n_blocks`` of them), instead of the doubling rule.
    activation : {"relu", "glu"}, default="relu"
        ``"glu"``: the gated linear unit of the DESED baseline, ``W x * sigmoid(x)`` with a
        per-position linear map ``W`` over the channels (with bias).
    pool : {"max", "avg"}, default="max"
        Max- or average-pooling.
    dropout : float, default=0.0
        Dropout rate after each block's activation.
    """

    def __init__(self, n_mels: int, n_filters: int, n_blocks: int, time_pool: int, channels=None,
                 activation: str = "relu", pool: str = "max", dropout: float = 0.0):
        super().__init__()
        if channels is None:
            channels = [max(1, n_filters // 2 ** (n_blocks - 1 - i)) for i in range(n_blocks)]
        channels = [int(c) for c in channels]
        if len(channels) != n_blocks:
            raise ValueError(f"channels has {len(channels)} entries, one per block is needed ({n_blocks} blocks)")
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        # GLU's linear map over the channels, a 1x1 convolution (None for ReLU).
        self.gates = nn.ModuleList() if activation == "glu" else None
        self.pools = []  # (time, freq) pooling factor of each block
        self.pool = pool
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        c_in, bands = 1, n_mels
        n_time = max(0, int(time_pool).bit_length() - 1)
        for i, c_out in enumerate(channels):
            self.convs.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(c_out))
            if self.gates is not None:
                self.gates.append(nn.Conv2d(c_out, c_out, 1))
            fp = 2 if bands >= 2 else 1
            tp = 2 if i < n_time else 1
            self.pools.append((tp, fp))
            bands = -(-bands // fp)
            c_in = c_out
        self.out_features = c_in * bands
        self.time_pool = int(time_pool)

    def _activate(self, y: torch.Tensor, i: int) -> torch.Tensor:
        if self.gates is None:
            return torch.relu(y)
        return self.gates[i](y) * torch.sigmoid(y)

    def _pool(self, y: torch.Tensor, m: Optional[torch.Tensor], tp: int, fp: int) -> torch.Tensor:
        """Pool ``y`` (B, C, T, F) by ``(tp, fp)`` in ceil mode, over valid frames only.

        The input is padded (tp - 1 frames always, so floor-mode pooling yields
        ceil(n / tp) windows with no data-dependent padding, which an export with a dynamic
        frame axis can keep symbolic; the bands are static)."""
        pad_f = (-y.shape[3]) % fp
        if self.pool == "avg":
            # Sum over the window, divided by its count of valid cells.
            ones = torch.ones_like(y[:1, :1]) if m is None else m.expand(-1, 1, -1, y.shape[3])
            y = y if m is None else y * m
            total = nn.functional.avg_pool2d(nn.functional.pad(y, (0, pad_f, 0, tp - 1)), (tp, fp))
            count = nn.functional.avg_pool2d(nn.functional.pad(ones, (0, pad_f, 0, tp - 1)), (tp, fp))
            return total / count.clamp_min(1.0 / (tp * fp))
        if self.gates is None:
            # ReLU outputs are >= 0 and padded frames are 0: zero padding is ceil mode.
            if tp > 1 or pad_f:
                y = nn.functional.pad(y, (0, pad_f, 0, tp - 1))
            return nn.functional.max_pool2d(y, (tp, fp))
        # GLU outputs can be negative: padded cells must lose every maximum.
        if m is not None:
            y = y.masked_fill(m == 0, float("-inf"))
        if tp > 1 or pad_f:
            y = nn.functional.pad(y, (0, pad_f, 0, tp - 1), value=float("-inf"))
        y = nn.functional.max_pool2d(y, (tp, fp))
        return y.masked_fill(torch.isinf(y), 0.0)  # windows wholly past a clip's end

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """``x``: (batch, n_frames, n_mels) standardized; ``mask``: (batch, n_frames) or None.

        Returns (batch, ceil(n_frames / time_pool), out_features).
        """
        m = None if mask is None else mask[:, None, :, None].to(x.dtype)
        y = x.unsqueeze(1)  # (B, 1, T, F)
        if m is not None:
            y = y * m
        for i, (conv, norm, (tp, fp)) in enumerate(zip(self.convs, self.norms, self.pools)):
            y = self._activate(norm(conv(y)), i)
            if self.drop is not None:
                y = self.drop(y)
            if m is not None:  # padded frames back to 0: the next conv and the pooling see what a clip alone sees
                y = y * m
            if tp > 1 or fp > 1:
                y = self._pool(y, m, tp, fp)
            if m is not None and tp > 1:
                m = m[:, :, ::tp]  # every pooling gives 0 to a window wholly past a clip's end
        b, c, t, f = y.shape
        return y.permute(0, 2, 1, 3).reshape(b, t, c * f)


class CGRNN(nn.Module):
    """Chunk-level convolutional gated recurrent network with attention and localization.

    Parameters
    ----------
    n_mels : int
        Number of input features per frame (mel bands). The paper uses 40.
    n_classes : int
        Number of tags.
    n_filters : int, default=128
        ``frontend="frame_cnn"``: convolution filters applied to each frame over
        frequency. ``"conv2d"``: channels of the last conv block.
    kernel_size : int, default=30
        ``frontend="frame_cnn"`` only: convolution kernel length in mel bins ("valid"
        convolution, so it must not exceed ``n_mels``). The positions left are max-pooled,
        giving ``n_filters`` values a frame.
    rnn_hidden : int, default=128
        GRU units per direction.
    rnn_layers : int, default=3
        Stacked bidirectional GRU layers.
    dense_units : int, default=500
        Units of the ReLU layer after the GRUs. 0: none, ``O(t)`` reads the GRU output
        (after the dropout), as in the DESED baseline.
    dropout : float, default=0.2
        Dropout after the ReLU layer (after the GRUs with ``dense_units=0``).
    pooling : {"att_loc", "att", "mean", "linear_softmax", "auto", "loc"}, default="att_loc"
        How frame outputs become the clip output: ``"att_loc"`` is the paper's full model
        (eq. 3-8), ``"att"`` attention only (eq. 3-5, weighted mean over frames), ``"mean"``
        the CGRNN baseline (eq. 2). ``"linear_softmax"``: ``sum_t O(t)^2 / sum_t O(t)`` per
        class (Wang, Li & Metze, ICASSP 2019). ``"auto"``: auto-pool,
        ``sum_t O(t) softmax_t(alpha O(t))`` with a learned ``alpha`` per class, which moves
        between the mean (``alpha = 0``, the initial value) and the max (McFee, Salamon &
        Bello, 2018). ``"loc"``: eq. (7)-(8) without the attention unit (``z_att = 1``),
        ``sum_t O(t) z_loc(t) / sum_t z_loc(t)``, the DESED baseline's attention pooling.
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
    loc_background : bool, default=False
        ``"att_loc"`` with the softmax only (ignored with the sigmoid, which normalizes each
        class on its own): give the eq. (6) softmax one output more than
        there are classes, a background slot that takes frames where no tag is active (the
        authors' released code has one: CHiME-Home's silence label). The slot is left out
        of eq. (7)-(8) and of every output, so ``z_loc(t)`` has ``n_classes`` columns that
        sum to at most 1. Without it one real class must absorb every background frame.
    loc_input : {"cnn", "rnn"}, default="cnn"
        What eq. (6) reads (``"att_loc"`` only): ``"cnn"`` is the paper's attention-scaled
        CNN output ``y'(t)`` of eq. (4); ``"rnn"`` is the GRU output, as the DCASE/DESED
        CRNN baseline computes its class softmax. With ``"cnn"``, frames of low ``z_att``
        shrink the logits toward the bias, so every quiet frame gets the same class.
    frontend : {"frame_cnn", "conv2d"}, default="frame_cnn"
        ``"frame_cnn"``: the paper's CNN, one valid convolution over frequency applied to
        each frame (Fig. 1). ``"conv2d"``: :class:`ConvBlocks`, ``conv_blocks`` 3x3 conv
        blocks over time and frequency with batch norm (a CRNN front end as in the DCASE
        baselines). With ``"conv2d"`` the attention of eq. (3) reads the front end's
        output frame rather than the input frame.
    conv_blocks : int, default=3
        Number of 2-D conv blocks (``frontend="conv2d"`` only).
    conv_channels : sequence of int, optional
        Channels of each conv block (``conv_blocks`` of them) instead of doubling up to
        ``n_filters``.
    conv_activation : {"relu", "glu"}, default="relu"
        The conv blocks' activation (see :class:`ConvBlocks`).
    conv_pool : {"max", "avg"}, default="max"
        The conv blocks' pooling.
    conv_dropout : float, default=0.0
        Dropout after each conv block's activation.
    time_pool : int, default=1
        Time downsampling inside the conv blocks (``frontend="conv2d"`` only): 1, 2, 4...
        up to ``2 ** conv_blocks``. The GRUs, the heads and the pooling run on
        ``ceil(n_frames / time_pool)`` frames, which divides their cost; every frame-level
        output is repeated back to the input's frame rate, so ``frame``, ``att`` and
        ``loc`` still have one row per input frame.

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
    >>> crnn = CGRNN(n_mels=40, n_classes=5, frontend="conv2d", n_filters=64, time_pool=2,
    ...              rnn_hidden=64, rnn_layers=2, pooling="linear_softmax")
    >>> tuple(crnn(torch.randn(2, 249, 40)).frame.shape)
    (2, 249, 5)
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
        loc_background: bool = False,
        loc_input: str = "cnn",
        frontend: str = "frame_cnn",
        conv_blocks: int = 3,
        time_pool: int = 1,
        conv_channels=None,
        conv_activation: str = "relu",
        conv_pool: str = "max",
        conv_dropout: float = 0.0,
    ):
        super().__init__()
        validate_params(  # the parameter table's rules for the network (skattloc.params)
            dict(n_filters=n_filters, kernel_size=kernel_size, rnn_hidden=rnn_hidden, rnn_layers=rnn_layers,
                 dense_units=dense_units, dropout=dropout, pooling=pooling, loc_activation=loc_activation,
                 loc_denominator=loc_denominator, loc_background=loc_background, loc_input=loc_input,
                 frontend=frontend, conv_blocks=conv_blocks, time_pool=time_pool, conv_channels=conv_channels,
                 conv_activation=conv_activation, conv_pool=conv_pool, conv_dropout=conv_dropout),
            group="network", n_features=n_mels,
        )
        self.n_mels = n_mels
        self.n_classes = n_classes
        self.pooling = pooling
        self.loc_activation = loc_activation
        self.loc_denominator = loc_denominator
        # The slot belongs to the softmax: a per-class sigmoid has none to add.
        self.loc_background = bool(loc_background) and loc_activation == "softmax"
        self.loc_input = loc_input
        self.frontend = frontend
        self.time_pool = int(time_pool) if frontend == "conv2d" else 1
        self.register_buffer("input_mean", torch.zeros(n_mels))
        self.register_buffer("input_scale", torch.ones(n_mels))
        if frontend == "frame_cnn":
            # CNN over frequency, the same for every frame (Fig. 1). Stored as a Conv1d so
            # its weights match a plain build; run as one matmul over all frames (see _cnn).
            self.conv = nn.Conv1d(1, n_filters, kernel_size)
            self.blocks = None
            cnn_out = n_filters
            att_in = n_mels  # eq. (3) reads the input frame
        else:
            self.conv = None
            self.blocks = ConvBlocks(n_mels, n_filters, conv_blocks, time_pool, channels=conv_channels,
                                     activation=conv_activation, pool=conv_pool, dropout=conv_dropout)
            cnn_out = self.blocks.out_features
            att_in = cnn_out  # frames are pooled: eq. (3) reads the front end's frame
        # eq. (3): one sigmoid unit per frame.
        self.att = nn.Linear(att_in, 1) if pooling in ("att", "att_loc") else None
        # eq. (6): a softmax (or sigmoid) layer over the classes (+ a background slot).
        n_loc = n_classes + int(self.loc_background)
        loc_in = cnn_out if loc_input == "cnn" else 2 * rnn_hidden
        self.loc = nn.Linear(loc_in, n_loc) if pooling in ("att_loc", "loc") else None
        # auto-pool's alpha, one per class, starting at the mean (alpha = 0).
        self.alpha = nn.Parameter(torch.zeros(n_classes)) if pooling == "auto" else None
        self.gru = nn.GRU(cnn_out, rnn_hidden, num_layers=rnn_layers, batch_first=True, bidirectional=True)
        # dense_units=0: no ReLU layer, O(t) reads the GRU output (the DESED baseline).
        self.dense = nn.Linear(2 * rnn_hidden, dense_units) if dense_units else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dense_units or 2 * rnn_hidden, n_classes)
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

    def _pool(self, frame32, att, loc, mask):
        """Clip output from float32 frame outputs (all at the pooled frame rate)."""
        m = mask.unsqueeze(-1).to(torch.float32)
        if self.pooling == "mean":
            return masked_weighted_mean(frame32, torch.ones_like(frame32[..., :1]), mask)  # eq. (2)
        if self.pooling == "att":
            return masked_weighted_mean(frame32, att.float().unsqueeze(-1), mask)  # eq. (5), weighted mean
        if self.pooling == "linear_softmax":
            return masked_weighted_mean(frame32, frame32, mask)  # sum O^2 / sum O
        if self.pooling == "auto":
            # softmax over valid frames of alpha * O, per class (masked frames get weight 0).
            z = (self.alpha.float() * frame32).masked_fill(m == 0, float("-inf"))
            w = torch.softmax(z, dim=1).nan_to_num(0.0)  # a clip of 0 valid frames gives 0
            return (w * frame32).sum(dim=1)
        # eq. (7)-(8): sum_t z_att O z_loc / sum_t z_loc, per class ("loc": z_att = 1).
        w = m * loc.float()
        aw = w if att is None else att.float().unsqueeze(-1) * w
        num = (aw * frame32).sum(dim=1)
        den = w.sum(dim=1) if self.loc_denominator == "loc" else aw.sum(dim=1)
        return num / den.clamp_min(_EPS)

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
            Frame-level outputs have ``n_frames`` rows whatever ``time_pool``.
        """
        batch, n_frames, _ = x.shape
        if lengths is not None and bool((lengths == n_frames).all()):
            lengths = None  # checked once here; the estimator keeps lengths on the host, so no device round trip
        if lengths is None:
            mask = torch.ones(batch, n_frames, dtype=torch.bool, device=x.device)
        else:
            mask = length_mask(lengths.to(x.device, non_blocking=True), n_frames)
        x = (x - self.input_mean) / self.input_scale
        tp = self.time_pool
        if self.blocks is None:
            y_cnn, att_src = self._cnn(x), x
            mask_p, lengths_p = mask, lengths
        else:
            y_cnn = self.blocks(x, None if lengths is None else mask)
            att_src = y_cnn
            # The pooled frames' mask, sized from the pooled tensor itself (so an export with a
            # dynamic frame axis needs no guard tying ceil(n_frames / tp) to the conv's output).
            n_pooled = y_cnn.shape[1]
            if lengths is None:
                lengths_p = None
                mask_p = torch.ones(batch, n_pooled, dtype=torch.bool, device=x.device)
            else:
                lengths_p = (lengths + tp - 1) // tp
                mask_p = length_mask(lengths_p.to(x.device, non_blocking=True), n_pooled)
        att = loc = None
        if self.att is not None:
            att = torch.sigmoid(self.att(att_src)).squeeze(-1)  # eq. (3)
            y_cnn = att.unsqueeze(-1) * y_cnn  # eq. (4)
        h_rnn = self._rnn(y_cnn, lengths_p)
        if self.loc is not None:
            logits = self.loc(y_cnn if self.loc_input == "cnn" else h_rnn)
            if self.loc_activation == "softmax":
                loc = torch.softmax(logits, dim=-1)  # eq. (6)
                if self.loc_background:
                    loc = loc[..., : self.n_classes]  # the background slot leaves eq. (7)-(8)
            else:
                loc = torch.sigmoid(logits)  # eq. (6) with a per-class sigmoid
        h = self.dropout(h_rnn if self.dense is None else torch.relu(self.dense(h_rnn)))
        frame = torch.sigmoid(self.out(h))  # O(t)
        # Pool in float32, so the eq. (8) division is stable under mixed precision.
        clip = self._pool(frame.float(), att, loc, mask_p)
        if tp > 1:  # back to one row per input frame
            frame = _upsample(frame, tp, n_frames)
            att = None if att is None else _upsample(att, tp, n_frames)
            loc = None if loc is None else _upsample(loc, tp, n_frames)
        return CGRNNOutput(clip=clip, frame=frame, att=att, loc=loc, mask=mask)


def _upsample(a: torch.Tensor, factor: int, n_frames: int) -> torch.Tensor:
    """Repeat each frame ``factor`` times along dim 1 and keep ``n_frames`` rows.

    An expand and a reshape rather than ``repeat_interleave``, whose decomposition does not
    survive an ONNX export with a dynamic frame axis."""
    b, t = a.shape[0], a.shape[1]
    rest = tuple(a.shape[2:])
    a = a.unsqueeze(2).expand(b, t, factor, *rest)
    return a.reshape(b, t * factor, *rest)[:, :n_frames]


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
