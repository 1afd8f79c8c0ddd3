"""Mixed-precision training: the clip output, the eq. (8) division and the BCE in half precision.

The CUDA tests run wherever a GPU exists (``pytest -m gpu``) and are skipped, with a
reason, where none does. The CPU tests run in the default suite: Lightning's
``"bf16-mixed"`` on the CPU, and the network under CPU autocast in bfloat16 and float16
with saturating inputs.
"""
import numpy as np
import pytest
import torch

from skattloc import AttLocTagger
from skattloc.metrics import equal_error_rate
from skattloc.model import CGRNN, clip_bce

from .conftest import SMALL

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


def _check_learned(tagger, synth, bound):
    X, Y, te = synth["X"], synth["Y"], synth["test"]
    proba = tagger.predict_proba(X[te])
    assert proba.dtype == np.float32 and np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    frames = tagger.localize(X[te])
    assert np.isfinite(frames).all()
    assert all(np.isfinite(row["train_loss"]) for row in tagger.history_)
    # predict runs in float32 whatever the training precision
    assert all(p.dtype == torch.float32 for p in tagger.model_.parameters())
    eer = equal_error_rate(Y[te], proba)
    assert eer < bound, f"macro EER {eer:.3f} with precision={tagger.precision!r}"
    return eer


# ---------------------------------------------------------------------------------- CPU
def test_bf16_mixed_on_cpu_trains(synth):
    # Lightning's CPU "bf16-mixed" (torch.autocast on the CPU). Kept tiny: CPUs without
    # native bfloat16 run it many times slower than float32 (docs/performance.md). Short
    # clips (the first 0.5 s) and a small network; it must still learn.
    tr = synth["train"]
    X = synth["X"][:, :31]
    tagger = AttLocTagger(rnn_hidden=16, rnn_layers=1, dense_units=32, batch_size=48, learning_rate=1e-2,
                          max_epochs=3, precision="bf16-mixed", accelerator="cpu", random_state=0)
    tagger.fit(X[tr], synth["Y"][tr])
    losses = [row["train_loss"] for row in tagger.history_]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    _check_learned(tagger, {**synth, "X": X}, bound=0.4)  # float32 reaches 0.32 in this setting


def _autocast_or_skip(dtype):
    try:
        with torch.autocast("cpu", dtype=dtype):
            torch.nn.GRU(4, 4, batch_first=True)(torch.randn(1, 3, 4))
    except (RuntimeError, TypeError) as exc:  # pragma: no cover - depends on the torch build
        pytest.skip(f"CPU autocast to {dtype} is not supported by this torch build: {exc}")


@pytest.mark.parametrize("pooling", ["att_loc", "att", "mean"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_saturated_network_stays_finite_under_autocast(pooling, dtype):
    # Inputs 1e4 times the training scale drive every sigmoid and softmax to exactly 0 or 1
    # in half precision: O(t) = 1, z_loc = 0 for all but one class, z_att = 0 or 1.
    # The eq. (8) denominator, the clip output and the BCE must still be finite.
    _autocast_or_skip(dtype)
    torch.manual_seed(0)
    net = CGRNN(n_mels=40, n_classes=4, rnn_hidden=16, rnn_layers=1, dense_units=16, pooling=pooling)
    x = 1e4 * torch.randn(3, 50, 40)
    lengths = torch.tensor([50, 20, 1])
    y = torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    with torch.autocast("cpu", dtype=dtype):
        out = net(x, lengths)
        loss = clip_bce(out.clip, y)
    assert out.clip.dtype == torch.float32  # pooled in float32
    assert torch.isfinite(out.clip).all() and ((out.clip >= 0) & (out.clip <= 1)).all()
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_clip_bce_is_finite_for_half_probabilities_of_exactly_0_and_1(dtype):
    clip = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 1e-8]], dtype=dtype, requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    loss = clip_bce(clip, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(clip.grad.float()).all()
    # Probabilities are clamped to [1e-7, 1 - 1e-7] in float32: the worst term is about 16.
    p = np.clip(clip.detach().float().numpy().astype(np.float64), np.float32(1e-7), np.float32(1 - 1e-7))
    t = target.numpy()
    expected = -(t * np.log(p) + (1 - t) * np.log1p(-p)).mean()
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert float(loss.detach()) < 17


# ---------------------------------------------------------------------------------- CUDA
@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "32-true"])
def test_cuda_training_in_each_precision_learns(synth, precision):
    if precision.startswith("bf16") and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU does not support bfloat16")
    tr = synth["train"]
    tagger = AttLocTagger(**SMALL, max_epochs=10, precision=precision, accelerator="gpu", devices=1, random_state=0)
    tagger.fit(synth["X"][tr], synth["Y"][tr])
    _check_learned(tagger, synth, bound=0.15)


@pytest.mark.gpu
@needs_cuda
def test_cuda_predictions_match_the_cpu(synth, fitted):
    # The same fitted network gives the same probabilities on the GPU and on the CPU: to
    # float32 rounding with TF32 off, and within the documented 1e-4 with PyTorch's default,
    # which lets cuDNN's GRU run its matmuls in TF32 (10-bit mantissa) on Ampere and later
    # (measured on an H200: up to 3.5e-5 apart with the default, 2e-7 with TF32 off).
    X = synth["X"][synth["test"]]
    fitted.set_params(accelerator="cpu")
    cpu = fitted.predict_proba(X)
    fitted.set_params(accelerator="gpu")
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        gpu_default = fitted.predict_proba(X)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        gpu_strict = fitted.predict_proba(X)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags
        fitted.set_params(accelerator="auto")
    np.testing.assert_allclose(gpu_strict, cpu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu_default, cpu, rtol=0, atol=1e-4)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("resident", [True, False], ids=["data-on-gpu", "data-on-host"])
def test_cuda_fit_with_data_on_the_device_or_the_host(synth, resident, monkeypatch):
    # Small in-memory training data sit on the GPU for the fit; above the cap they stay on
    # the host and each batch is copied. Both learn; the data's place is as expected.
    from lightning.pytorch.callbacks import Callback

    from skattloc import data as D

    if not resident:
        monkeypatch.setattr(D, "DEVICE_RESIDENT_MAX_BYTES", 0)
    seen = []

    class Where(Callback):
        def on_train_start(self, trainer, pl_module):
            seen.append(trainer.train_dataloader.dataset._x.device.type)

    tr = synth["train"]
    tagger = AttLocTagger(**SMALL, max_epochs=10, accelerator="gpu", devices=1, random_state=0, callbacks=[Where()])
    tagger.fit(synth["X"][tr], synth["Y"][tr])
    assert seen == ["cuda" if resident else "cpu"]
    _check_learned(tagger, synth, bound=0.15)
