"""CPU fast paths of the CGRNN: the same functions as the plain layers, fewer and larger ops.

Two pieces, each used by :class:`skattloc.model.CGRNN` on the CPU in float32 (see
:func:`enabled`), each tested to compute what the plain build computes:

1. :func:`frame_conv_max`: the per-frame convolution over frequency followed by the max
   over positions (:class:`_ConvMax`). The plain ``nn.Conv1d`` on every frame, or one
   matmul over ``unfold``-ed windows followed by ``amax``, both write and differentiate a
   ``(frames, positions, filters)`` tensor (35 M values for 100 clips of 249 frames);
   ``amax``'s backward pass alone costs several passes over it. Here the forward pass is
   one matmul with a banded weight matrix and a ``max`` that keeps the argmax, and the
   backward pass needs only the argmax: per position, one small matmul.
2. :func:`bigru`: a bidirectional GRU (:class:`_BiGRULayer`).

GRU details. :class:`torch.nn.GRU` on the CPU runs each direction of each layer as its own loop of small
matrix products, and autograd differentiates every step separately: per step and direction
two small products for the backward pass, one of them accumulated into the recurrent
weight gradient 249 times. Here

- both directions of a layer advance together, so each time step costs one batched product
  (``baddbmm`` over the 2 directions) forward and one backward;
- the backward pass is written by hand (:class:`_BiGRULayer`): the step loop only carries
  the hidden-state gradient, and the weight gradients of the whole sequence are formed
  afterwards by one large product per weight matrix;
- padding is handled by masking the hidden state, which gives exactly what
  ``pack_padded_sequence`` gives: each backward direction starts at its clip's last valid
  frame, and outputs at padded frames are 0.

The parameters stay those of the ``nn.GRU`` (same ``state_dict``); :func:`bigru` only reads
them. Equations (PyTorch's GRU, ``*`` elementwise)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h = n + z * (h - n)
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


def _step_mask(lengths: Tensor, n_frames: int, dtype) -> Tensor:
    """(2, T, B, 1) mask in step order: direction 0 at frame s, direction 1 at frame T-1-s."""
    steps = torch.arange(n_frames, device=lengths.device)
    m = (steps.unsqueeze(1) < lengths.unsqueeze(0)).to(dtype).unsqueeze(-1)  # (T, B, 1)
    return torch.stack((m, m.flip(0)))


def _forward_loop(gi: Tensor, w_hh_t: Tensor, b_hh: Tensor, mask: Optional[Tensor], store: bool):
    """Run the recurrence in step order.

    gi : (2, T, B, 3H) input projections, direction 1 already reversed in time.
    Returns hs (2, T+1, B, H) with hs[:, 0] = 0, and, if ``store``, rz (2, T, B, 2H),
    n (2, T, B, H) and gh (2, T, B, 3H) for the backward pass.
    """
    _, T, B, H3 = gi.shape
    H = H3 // 3
    hs = gi.new_empty(2, T + 1, B, H)
    hs[:, 0] = 0
    if store:
        rz = gi.new_empty(2, T, B, 2 * H)
        nn_ = gi.new_empty(2, T, B, H)
        gh_all = gi.new_empty(2, T, B, 3 * H)
    for s in range(T):
        h = hs[:, s]
        g = gi[:, s]
        # with ``store``, the step writes straight into the tensors kept for the backward pass
        gh = torch.baddbmm(b_hh, h, w_hh_t, out=gh_all[:, s] if store else None)
        r_z = torch.add(g[..., : 2 * H], gh[..., : 2 * H], out=rz[:, s] if store else None).sigmoid_()
        n = torch.addcmul(g[..., 2 * H :], r_z[..., :H], gh[..., 2 * H :], out=nn_[:, s] if store else None).tanh_()
        h_new = torch.addcmul(n, r_z[..., H:], h - n, out=hs[:, s + 1])
        if mask is not None:
            h_new.mul_(mask[:, s])
    if store:
        return hs, rz, nn_, gh_all
    return hs, None, None, None


def _to_time_order(y: Tensor) -> Tensor:
    """(2, T, B, H) in step order -> (T, B, 2H) in time order."""
    return torch.cat((y[0], y[1].flip(0)), dim=-1)


class _BiGRULayer(torch.autograd.Function):
    """One bidirectional GRU layer, time-major, with a hand-written backward pass."""

    @staticmethod
    def forward(ctx, xs, mask, w_ih, b_ih, w_hh, b_hh):
        # xs: (2, T, B, I) the input, direction 1 reversed in time; mask: (2, T, B, 1) or None;
        # w_ih: (2, 3H, I); b_ih: (2, 1, 3H); w_hh: (2, 3H, H); b_hh: (2, 1, 3H).
        _, T, B, I = xs.shape
        H3 = w_ih.shape[1]
        gi = torch.baddbmm(b_ih, xs.reshape(2, T * B, I), w_ih.transpose(1, 2)).view(2, T, B, H3)
        store = any(ctx.needs_input_grad)
        hs, rz, nn_, gh = _forward_loop(gi, w_hh.transpose(1, 2), b_hh, mask, store)
        if store:
            ctx.save_for_backward(xs, mask, w_ih, w_hh, hs, rz, nn_, gh)
        return hs[:, 1:]

    @staticmethod
    def backward(ctx, dys):
        xs, mask, w_ih, w_hh, hs, rz, nn_, gh = ctx.saved_tensors
        _, T, B, I = xs.shape
        H = w_hh.shape[2]
        dgh = dys.new_empty(2, T, B, 3 * H)  # d(W_h h + b_h) per gate
        dn_pre = dys.new_empty(2, T, B, H)  # d(pre-activation of n) = d(W_in x + b_in)
        dh = dys.new_zeros(2, B, H)
        for s in range(T - 1, -1, -1):
            dh = dh + dys[:, s]
            if mask is not None:
                dh.mul_(mask[:, s])
            r = rz[:, s, :, :H]
            z = rz[:, s, :, H:]
            n = nn_[:, s]
            # dn_pre = dh * (1 - z) * (1 - n^2)
            dn = torch.mul(torch.addcmul(dh, dh, z, value=-1), torch.addcmul(torch.ones_like(n), n, n, value=-1), out=dn_pre[:, s])
            # dz_pre = dh * (h_prev - n) * z * (1 - z)
            torch.mul(dh * (hs[:, s] - n), torch.addcmul(z, z, z, value=-1), out=dgh[:, s, :, H : 2 * H])
            # dr_pre = dn_pre * gh_n * r * (1 - r)
            torch.mul(dn * gh[:, s, :, 2 * H :], torch.addcmul(r, r, r, value=-1), out=dgh[:, s, :, :H])
            # d(gh_n) = dn_pre * r
            torch.mul(dn, r, out=dgh[:, s, :, 2 * H :])
            dh = torch.baddbmm(dh * z, dgh[:, s], w_hh)
        dgi = torch.cat((dgh[..., : 2 * H], dn_pre), dim=-1).view(2, T * B, 3 * H)
        dgh2 = dgh.view(2, T * B, 3 * H)
        dw_hh = torch.bmm(dgh2.transpose(1, 2), hs[:, :-1].reshape(2, T * B, H))
        db_hh = dgh2.sum(1, keepdim=True)
        dw_ih = torch.bmm(dgi.transpose(1, 2), xs.reshape(2, T * B, I))
        db_ih = dgi.sum(1, keepdim=True)
        dxs = torch.bmm(dgi, w_ih).view(2, T, B, I) if ctx.needs_input_grad[0] else None
        return dxs, None, dw_ih, db_ih, dw_hh, db_hh


# bigru is used from this many intra-op threads up (see supports).
GRU_MIN_THREADS = 2


def _autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def enabled(x: Tensor, *params: Tensor) -> bool:
    """Whether the fast paths apply: CPU, float32 input and parameters, no autocast."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)
        and not _autocast_on()
    )


def supports(gru: nn.GRU, x: Tensor) -> bool:
    """Whether :func:`bigru` should compute this GRU on this input (else ``gru`` itself).

    Only with 2 or more intra-op threads: its gain is that both directions advance in one
    batched op, which keeps the threads busy; on one thread ``nn.GRU`` is as fast or
    faster (docs/performance.md).
    """
    return (
        torch.get_num_threads() >= GRU_MIN_THREADS
        and gru.bidirectional
        and gru.bias
        and gru.batch_first
        and gru.proj_size == 0
        and (gru.dropout == 0 or not gru.training or gru.num_layers == 1)
        and enabled(x, *gru.parameters())
    )


# ------------------------------------------------------------------------------- conv + max
def _banded(weight: Tensor, n_in: int) -> Tensor:
    """(n_in, P * F) matrix whose column block p holds the kernels at offset p.

    ``x @ _banded(w, M)`` is the valid convolution of every row of ``x`` (length M) with
    each of the F kernels of length k, at every position p = 0 .. M - k, as ``(N, P * F)``.
    """
    n_filters, k = weight.shape
    P = n_in - k + 1
    band = weight.new_zeros(n_in, P, n_filters)
    wt = weight.t()
    for p in range(P):
        band[p : p + k, p] = wt
    return band.view(n_in, P * n_filters)


def _band_grad(dband: Tensor, k: int) -> Tensor:
    """Gradient of the (F, k) kernels from the gradient of the banded matrix (M, P, F)."""
    n_in, P, n_filters = dband.shape
    dwt = dband.new_zeros(k, n_filters)
    for p in range(P):
        dwt += dband[p : p + k, p]
    return dwt.t()


# Values of the (rows, positions, filters) block computed at once: 1 MiB, so that block
# stays in cache between the matmul that writes it and the reductions that read it; but
# at most _MAX_BLOCKS blocks, since every op is a parallel region whose barrier gets slow
# when other processes share the cores (measured in docs/performance.md).
_BLOCK = 1 << 18
_MAX_BLOCKS = 8


def _block_rows(n_rows: int, per_row: int) -> int:
    return max(1, _BLOCK // per_row, -(-n_rows // _MAX_BLOCKS))


class _ConvMax(torch.autograd.Function):
    """``max_p (x[:, p:p+k] @ w.T) + b`` for x (N, M), w (F, k), b (F,) -> (N, F).

    Rows are processed in blocks: one matmul with the banded kernels gives every position
    of every filter, ``amax`` over positions the output, and (when a gradient is needed)
    the winning position of each (row, filter) is kept as one byte. The backward pass
    rebuilds, block by block, the gradient of the banded matmul from those positions.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        N, M = x.shape
        n_filters, k = weight.shape
        P = M - k + 1
        band = _banded(weight, M)
        rows = _block_rows(N, P * n_filters)
        values = x.new_empty(N, n_filters)
        need_grad = any(ctx.needs_input_grad)
        if need_grad:
            if P > 255:
                raise ValueError(f"at most 255 convolution positions per frame, got {P}")
            winner = torch.empty(N, n_filters, dtype=torch.uint8, device=x.device)
            positions = torch.arange(P, dtype=torch.uint8, device=x.device).view(1, P, 1)
        for s in range(0, N, rows):
            y = torch.mm(x[s : s + rows], band).view(-1, P, n_filters)
            v = torch.amax(y, dim=1, out=values[s : s + rows])
            if need_grad:
                torch.amax((y == v.unsqueeze(1)) * positions, dim=1, out=winner[s : s + rows])
        if need_grad:
            ctx.save_for_backward(x, weight, winner)
        return values + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight, winner = ctx.saved_tensors
        N, M = x.shape
        n_filters, k = weight.shape
        P = M - k + 1
        need_x, need_w, need_b = ctx.needs_input_grad
        rows = _block_rows(N, P * n_filters)
        positions = torch.arange(P, dtype=torch.uint8, device=x.device).view(1, P, 1)
        dband = x.new_zeros(M, P * n_filters) if need_w else None
        band = _banded(weight, M) if need_x else None
        dx = torch.empty_like(x) if need_x else None
        zero = grad.new_zeros(())
        for s in range(0, N, rows):
            # The gradient reaches only the winning position of each (row, filter).
            g = torch.where(winner[s : s + rows].unsqueeze(1) == positions, grad[s : s + rows].unsqueeze(1), zero)
            g = g.view(-1, P * n_filters)
            if need_w:
                dband.addmm_(x[s : s + rows].t(), g)
            if need_x:
                torch.mm(g, band.t(), out=dx[s : s + rows])
        dw = _band_grad(dband.view(M, P, n_filters), k) if need_w else None
        db = grad.sum(0) if need_b else None
        return dx, dw, db


def frame_conv_max(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """Valid convolution of every frame over frequency, then the max over positions.

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
    conv : torch.nn.Conv1d
        One input channel, ``F`` filters of length ``k`` (stride 1, no padding).

    Returns
    -------
    Tensor, shape (batch, n_frames, F)
        ``max_p conv(x[b, t])[f, p]``; apply the ReLU after (it commutes with the max).
    """
    B, T, M = x.shape
    w = conv.weight.view(conv.out_channels, conv.kernel_size[0])
    return _ConvMax.apply(x.reshape(B * T, M), w, conv.bias).view(B, T, -1)


def bigru(gru: nn.GRU, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
    """The output of ``gru`` (bidirectional, ``batch_first``) on ``x``, computed faster on CPU.

    Parameters
    ----------
    gru : torch.nn.GRU
        Bidirectional, ``batch_first=True``, with biases. Its parameters are used as they are.
    x : Tensor, shape (batch, n_frames, input_size)
    lengths : Tensor of int, shape (batch,), optional
        Valid frames per sequence. Gives what ``pack_padded_sequence`` then
        ``pad_packed_sequence(total_length=n_frames)`` give: padded frames output 0.

    Returns
    -------
    Tensor, shape (batch, n_frames, 2 * hidden_size)
        Forward direction in the first ``hidden_size`` features, backward in the rest.
    """
    B, T, _ = x.shape
    mask = None if lengths is None else _step_mask(lengths.to(x.device), T, x.dtype)
    y = x.transpose(0, 1)  # (T, B, I)
    for layer in range(gru.num_layers):
        sfx = f"_l{layer}"
        w_ih = torch.stack((getattr(gru, "weight_ih" + sfx), getattr(gru, "weight_ih" + sfx + "_reverse")))
        b_ih = torch.stack((getattr(gru, "bias_ih" + sfx), getattr(gru, "bias_ih" + sfx + "_reverse"))).unsqueeze(1)
        w_hh = torch.stack((getattr(gru, "weight_hh" + sfx), getattr(gru, "weight_hh" + sfx + "_reverse")))
        b_hh = torch.stack((getattr(gru, "bias_hh" + sfx), getattr(gru, "bias_hh" + sfx + "_reverse"))).unsqueeze(1)
        xs = torch.stack((y, y.flip(0)))  # (2, T, B, I), step order
        ys = _BiGRULayer.apply(xs, mask, w_ih, b_ih, w_hh, b_hh)  # (2, T, B, H), step order
        y = _to_time_order(ys)
    return y.transpose(0, 1)
