"""The optimized network computes the same function as the plain build of the paper's model.

``examples/benchmark_speed.py`` times :class:`skattloc.model.CGRNN` against
``PlainCGRNN``, the model written the obvious way (a per-frame ``nn.Conv1d``, ``nn.GRU``
with packed sequences, ...). Speed-ups only count if both compute the same outputs and the
same gradients from the same weights; these tests load one ``state_dict`` into both and
compare, for every pooling, with padded batches, on the CPU fast paths
(``skattloc._fastpath``) and on the plain-layer path.
"""
import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from skattloc import _fastpath
from skattloc.model import CGRNN, clip_bce

_SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark_speed.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_speed", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _load_benchmark()

POOLINGS = ["att_loc", "att", "mean"]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # Tiny networks: one thread is faster, and immune to other processes on shared cores.
    # The GRU fast path is normally taken from 2 threads up; take it here too.
    monkeypatch.setattr(_fastpath, "GRU_MIN_THREADS", 1)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
SIZES = dict(n_filters=24, kernel_size=7, rnn_hidden=12, rnn_layers=2, dense_units=20)


def _pair(pooling, fast, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    net = CGRNN(n_mels=16, n_classes=4, pooling=pooling, dropout=dropout, **SIZES)
    net.set_input_stats(torch.linspace(-1, 1, 16), torch.linspace(0.5, 2, 16))
    net.cpu_fast_path = fast
    plain = bench.PlainCGRNN(n_mels=16, n_classes=4, pooling=pooling, dropout=dropout, **SIZES)
    plain.load_state_dict(net.state_dict())  # same names, same shapes
    return net, plain


def _batch(seed=1, batch=9, n_frames=23):
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(batch, n_frames, 16, generator=g) + 0.5
    lengths = torch.tensor([n_frames, 1, 5, n_frames, 17, 2, 11, n_frames - 1, 8][:batch])
    for i, n in enumerate(lengths):  # padding as pad_collate makes it: zeros
        x[i, n:] = 0
    y = (torch.rand(batch, 4, generator=g) < 0.4).float()
    return x, lengths, y


def _close(a, b, what):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "plain-layers"])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "full-length"])
def test_same_outputs_as_the_plain_build(pooling, fast, padded):
    net, plain = _pair(pooling, fast)
    net.eval(), plain.eval()
    x, lengths, _ = _batch()
    lengths = lengths if padded else None
    with torch.no_grad():
        out = net(x, lengths)
        ref = plain(x, lengths)
    _close(out.clip, ref["clip"], "clip")
    _close(out.frame, ref["frame"], "frame O(t)")
    if pooling == "mean":
        assert out.att is None and ref["att"] is None
    else:
        _close(out.att, ref["att"], "z_att")
    if pooling == "att_loc":
        _close(out.loc, ref["loc"], "z_loc")


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "plain-layers"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_same_gradients_as_the_plain_build(pooling, fast):
    # Training mode (dropout 0 so both draw nothing): the clip BCE and every parameter's
    # gradient agree, so both train the same way.
    net, plain = _pair(pooling, fast)
    net.train(), plain.train()
    x, lengths, y = _batch(seed=2)
    loss = clip_bce(net(x, lengths).clip, y)
    ref_loss = clip_bce(plain(x, lengths)["clip"], y)
    _close(loss, ref_loss, "loss")
    loss.backward()
    ref_loss.backward()
    ref_grads = dict(plain.named_parameters())
    for name, p in net.named_parameters():
        _close(p.grad, ref_grads[name].grad, f"grad of {name}")


@pytest.mark.parametrize("pooling", POOLINGS)
def test_paper_sized_network_same_outputs(pooling):
    # The paper's sizes (128 filters of 30 bins, 3 x 128 biGRU, dense 500), 40 mel bands.
    torch.manual_seed(0)
    net = CGRNN(n_mels=40, n_classes=5, pooling=pooling).eval()
    plain = bench.PlainCGRNN(n_mels=40, n_classes=5, pooling=pooling).eval()
    plain.load_state_dict(net.state_dict())
    x = torch.randn(8, 60, 40)
    lengths = torch.tensor([60, 60, 31, 1, 59, 60, 12, 45])
    with torch.no_grad():
        out, ref = net(x, lengths), plain(x, lengths)
    _close(out.clip, ref["clip"], "clip")
    _close(out.frame, ref["frame"], "frame O(t)")


def test_fast_paths_are_what_runs():
    # Guard against a silent fallback: on the CPU in float32 the fast paths are taken.
    net, _ = _pair("att_loc", fast=True)
    x, lengths, _ = _batch()
    calls = []
    orig_conv, orig_gru = _fastpath.frame_conv_max, _fastpath.bigru
    try:
        _fastpath.frame_conv_max = lambda *a: calls.append("conv") or orig_conv(*a)
        _fastpath.bigru = lambda *a: calls.append("gru") or orig_gru(*a)
        net.train()(x, lengths)
    finally:
        _fastpath.frame_conv_max, _fastpath.bigru = orig_conv, orig_gru
    assert calls == ["conv", "gru"]
    assert not _fastpath.enabled(x.double(), net.conv.weight)
    # One intra-op thread: nn.GRU itself (as fast there), unless the threshold says otherwise.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_fastpath, "GRU_MIN_THREADS", 2)
        assert torch.get_num_threads() == 1 and not _fastpath.supports(net.gru, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _fastpath.enabled(x, net.conv.weight)


# ------------------------------------------------------------------ the kernels themselves
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_bigru_gradcheck_float64(layers, with_lengths):
    torch.manual_seed(0)
    gru = nn.GRU(4, 3, num_layers=layers, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 5, 4, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([5, 1, 3]) if with_lengths else None
    params = list(gru.parameters())
    assert torch.autograd.gradcheck(lambda x: _fastpath.bigru(gru, x, lengths), (x,))
    # parameter gradients against nn.GRU's own autograd
    out = _fastpath.bigru(gru, x, lengths)
    if with_lengths:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        ref = pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=5)[0]
    else:
        ref = gru(x)[0]
    torch.testing.assert_close(out, ref)
    w = torch.randn_like(out)
    g1 = torch.autograd.grad((out * w).sum(), params)
    g2 = torch.autograd.grad((ref * w).sum(), params)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("blocks", [1, 4], ids=["one-block", "four-blocks"])
def test_conv_max_gradcheck_float64(blocks, monkeypatch):
    if blocks > 1:  # rows are processed in blocks of 4 (13 rows: 4 blocks, the last one short)
        monkeypatch.setattr(_fastpath, "_BLOCK", 4 * 8 * 6)
        monkeypatch.setattr(_fastpath, "_MAX_BLOCKS", 100)
    assert -(-13 // _fastpath._block_rows(13, 8 * 6)) == blocks
    torch.manual_seed(0)
    x = torch.randn(13, 12, dtype=torch.double, requires_grad=True)
    w = torch.randn(6, 5, dtype=torch.double, requires_grad=True)
    b = torch.randn(6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_fastpath._ConvMax.apply, (x, w, b))
    ref = torch.nn.functional.conv1d(x.unsqueeze(1), w.unsqueeze(1), b).amax(dim=2)
    torch.testing.assert_close(_fastpath._ConvMax.apply(x, w, b), ref)
