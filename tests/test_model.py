"""The network: parameter count, equations (2)-(8), masks, and the loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skattloc.model import CGRNN, clip_bce


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def _net(pooling="att_loc", **kw):
    torch.manual_seed(0)
    kw = {"n_mels": 40, "n_classes": 5, **kw}
    return CGRNN(pooling=pooling, **kw).eval()


def test_paper_network_has_926699_parameters():
    net = CGRNN(n_mels=40, n_classes=5)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 926_699


def test_poolings_share_one_class_and_differ_only_by_heads():
    counts = {p: sum(q.numel() for q in _net(p).parameters()) for p in ("att_loc", "att", "mean")}
    # eq. (6) adds a 128 -> 5 softmax layer; eq. (3) a 40 -> 1 sigmoid unit.
    assert counts["att_loc"] - counts["att"] == 128 * 5 + 5
    assert counts["att"] - counts["mean"] == 40 + 1


def test_unknown_pooling_and_oversized_kernel_are_refused():
    with pytest.raises(ValueError, match="pooling must be one of"):
        CGRNN(n_mels=40, n_classes=2, pooling="max")
    with pytest.raises(ValueError, match="kernel_size=30 is larger than the 20 input features"):
        CGRNN(n_mels=20, n_classes=2)


def test_cnn_as_one_matmul_equals_a_per_frame_conv1d():
    net = _net()
    x = torch.randn(3, 17, 40)
    naive = F.conv1d(x.reshape(-1, 1, 40), net.conv.weight, net.conv.bias)
    naive = torch.relu(naive).amax(dim=-1).reshape(3, 17, -1)
    torch.testing.assert_close(net._cnn(x), naive, rtol=1e-5, atol=1e-5)


def test_attention_in_unit_interval_and_localization_sums_to_one():
    out = _net()(torch.randn(4, 30, 40) * 5)
    assert out.att.shape == (4, 30)
    assert bool(((out.att > 0) & (out.att < 1)).all())
    assert out.loc.shape == (4, 30, 5)
    torch.testing.assert_close(out.loc.sum(-1), torch.ones(4, 30))
    assert bool(((out.clip >= 0) & (out.clip <= 1)).all())


def test_eq8_pooling_matches_a_hand_computation():
    out = _net()(torch.randn(2, 6, 40))
    att, frame, loc = out.att.numpy(), out.frame.numpy(), out.loc.numpy()
    expected = np.zeros((2, 5))
    for b in range(2):
        for k in range(5):
            num = sum(att[b, t] * frame[b, t, k] * loc[b, t, k] for t in range(6))
            den = sum(loc[b, t, k] for t in range(6))
            expected[b, k] = num / den
    np.testing.assert_allclose(out.clip.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        out.weighted_frame().numpy(), att[..., None] * frame * loc, rtol=1e-6
    )


def test_eq2_mean_and_eq5_attention_pooling_by_hand():
    x = torch.randn(2, 7, 40)
    out = _net("mean")(x)
    assert out.att is None and out.loc is None
    np.testing.assert_allclose(out.clip.numpy(), out.frame.numpy().mean(axis=1), rtol=1e-5)
    out = _net("att")(x)
    a, f = out.att.numpy()[..., None], out.frame.numpy()
    np.testing.assert_allclose(out.clip.numpy(), (a * f).sum(1) / a.sum(1), rtol=1e-5)


@pytest.mark.parametrize("pooling", ["att_loc", "att", "mean"])
def test_padding_never_leaks(pooling):
    net = _net(pooling, rnn_layers=2)
    torch.manual_seed(1)
    long = torch.randn(1, 40, 40)
    short = torch.randn(1, 23, 40)
    alone = net(short)
    batch = torch.cat([long, F.pad(short, (0, 0, 0, 17), value=1e3)])  # loud garbage padding
    both = net(batch, torch.tensor([40, 23]))
    torch.testing.assert_close(both.clip[1], alone.clip[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both.frame[1, :23], alone.frame[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both.clip[0], net(long).clip[0], rtol=1e-5, atol=1e-6)


def test_input_standardization_is_part_of_the_network():
    net = _net()
    x = torch.randn(2, 10, 40) * 3 + 7
    mean, scale = x.reshape(-1, 40).mean(0), x.reshape(-1, 40).std(0)
    net.set_input_stats(mean, scale)
    ref = _net()
    torch.testing.assert_close(net(x).clip, ref((x - mean) / scale).clip, rtol=1e-5, atol=1e-6)


def test_clip_bce_matches_torch_and_survives_exact_zero_and_one():
    p = torch.tensor([[0.2, 0.7], [0.9, 0.4]])
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    torch.testing.assert_close(clip_bce(p, y), F.binary_cross_entropy(p, y))
    extreme = clip_bce(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    assert torch.isfinite(extreme) and extreme > 10


def test_bf16_forward_keeps_clip_output_finite_and_in_range():
    net = _net()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(2, 20, 40))
        loss = clip_bce(out.clip, torch.ones(2, 5))
    assert out.clip.dtype == torch.float32
    assert torch.isfinite(loss)
    assert bool(((out.clip >= 0) & (out.clip <= 1)).all())
