"""Training choices beyond the paper: z_loc activation, eq. (8) denominator, learning-rate
schedule, SpecAugment and mixup. The paper's values are the defaults; each option is tested
for what it does and for leaving inference alone."""
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from skattloc import AttLocTagger
from skattloc.model import CGRNN
from skattloc.module import AttLocModule, mixup, spec_augment

from .conftest import SMALL


def _net(**kw):
    torch.manual_seed(0)
    return CGRNN(n_mels=40, n_classes=5, pooling="att_loc", **kw).eval()


def _data(n=48, n_frames=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_frames, 40)).astype(np.float32)
    Y = (rng.random((n, 3)) < 0.4).astype(int)
    Y[0], Y[1] = 1, 0  # every class positive and negative at least once
    return X, Y


# ---------------------------------------------------------------- z_loc activation (eq. 6)
def test_paper_config_and_the_network_defaults_are_the_papers():
    # AttLocTagger's own defaults are the screened recipe (docs/screening.md); the paper's
    # configuration is skattloc.PAPER_CONFIG, and CGRNN's defaults stay the paper's.
    from skattloc import PAPER_CONFIG

    t = AttLocTagger(**PAPER_CONFIG)
    assert (t.loc_activation, t.loc_denominator, t.lr_schedule) == ("softmax", "loc", "constant")
    assert (t.spec_augment, t.mixup_alpha) == (0, 0.0)
    net = CGRNN(n_mels=40, n_classes=5)
    assert (net.loc_activation, net.loc_denominator) == ("softmax", "loc")


def test_sigmoid_loc_is_per_class_and_adds_no_parameters():
    soft, sig = _net(), _net(loc_activation="sigmoid")
    assert sum(p.numel() for p in sig.parameters()) == sum(p.numel() for p in soft.parameters()) == 926699
    with torch.no_grad():
        x = torch.randn(3, 25, 40) * 3
        out_soft, out_sig = soft(x), sig(x)
    # Same weights (same seed): the sigmoid is applied to the same logits, class by class.
    logits = torch.logit(out_sig.loc.double())
    torch.testing.assert_close(torch.softmax(logits, -1).float(), out_soft.loc, rtol=1e-4, atol=1e-5)
    assert bool(((out_sig.loc > 0) & (out_sig.loc < 1)).all())
    assert not torch.allclose(out_sig.loc.sum(-1), torch.ones(3, 25), atol=1e-2)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("denominator", ["loc", "att_loc"])
def test_eq8_by_hand_for_each_activation_and_denominator(activation, denominator):
    with torch.no_grad():
        out = _net(loc_activation=activation, loc_denominator=denominator)(torch.randn(2, 6, 40))
    att, frame, loc = out.att.numpy().astype(np.float64), out.frame.numpy(), out.loc.numpy()
    num = (att[..., None] * frame * loc).sum(1)
    den = loc.sum(1) if denominator == "loc" else (att[..., None] * loc).sum(1)
    np.testing.assert_allclose(out.clip.numpy(), num / den, rtol=1e-5)
    assert bool(((out.clip >= 0) & (out.clip <= 1)).all())


def test_att_loc_denominator_makes_a_true_weighted_mean():
    # With O(t) = c everywhere, a weighted mean of O is c; the paper's eq. (8) gives c times
    # a z_loc-weighted mean of z_att < 1 (the cap that slows att_loc's training).
    net = _net(loc_denominator="att_loc")
    paper = _net()
    for m in (net, paper):
        with torch.no_grad():
            m.out.weight.zero_()
            m.out.bias.fill_(0.0)  # sigmoid(0) = 0.5 on every frame
    x = torch.randn(2, 9, 40)
    with torch.no_grad():
        np.testing.assert_allclose(net(x).clip.numpy(), 0.5, rtol=1e-6)
        assert bool((paper(x).clip < 0.5).all())


def test_invalid_activation_and_denominator_are_refused():
    with pytest.raises(ValueError, match="loc_activation must be one of"):
        CGRNN(n_mels=40, n_classes=2, loc_activation="relu")
    with pytest.raises(ValueError, match="loc_denominator must be one of"):
        CGRNN(n_mels=40, n_classes=2, loc_denominator="frame")


# ---------------------------------------------------------------- SpecAugment
def test_spec_augment_masks_runs_of_frames_and_bands_with_the_fill_value():
    torch.manual_seed(0)
    x = torch.randn(64, 50, 40) + 10.0  # no value equals the fill
    fill = torch.full((40,), -3.0)
    lengths = torch.full((64,), 50)
    y = spec_augment(x, lengths, n_masks=1, time_width=8, freq_width=5, fill=fill)
    assert y.shape == x.shape and not torch.equal(x, y)
    masked = y == -3.0
    kept = ~masked
    torch.testing.assert_close(y[kept], x[kept])
    for b in range(64):
        full_t = masked[b].all(dim=1)  # frames masked in every band: the time mask
        full_f = masked[b].all(dim=0)  # bands masked in every frame: the frequency mask
        assert int(full_t.sum()) <= 8 and int(full_f.sum()) <= 5
        for runs in (full_t, full_f):
            idx = torch.nonzero(runs).flatten()
            if len(idx):
                assert int(idx[-1] - idx[0]) + 1 == len(idx), "a mask is one contiguous run"
        # every masked cell lies in a masked frame or a masked band
        assert bool((masked[b] == (full_t[:, None] | full_f[None, :])).all())
    assert int(masked.all(dim=2).any(dim=1).sum()) > 32  # most clips got a time mask


def test_spec_augment_keeps_masks_inside_valid_frames_and_off_when_zero():
    torch.manual_seed(1)
    x = torch.randn(32, 30, 40) + 10.0
    lengths = torch.randint(5, 31, (32,))
    y = spec_augment(x, lengths, n_masks=3, time_width=10, freq_width=0, fill=0.0)
    for b in range(32):
        torch.testing.assert_close(y[b, int(lengths[b]):], x[b, int(lengths[b]):])
    assert spec_augment(x, lengths, 0, 10, 5, 0.0) is x


def test_spec_augment_changes_training_batches_but_not_inference():
    X, Y = _data()
    tagger = AttLocTagger(**SMALL, max_epochs=1, spec_augment=2, time_mask_width=8, random_state=0).fit(X, Y)
    module = AttLocModule(tagger.model_, spec_augment=2, time_mask_width=8, freq_mask_width=6)
    x = torch.from_numpy(X[:16])
    lengths = torch.full((16,), X.shape[1])
    xa, _, ya, _ = module.augment(x, lengths, torch.from_numpy(Y[:16]).float())
    assert not torch.equal(xa, x)
    torch.testing.assert_close(ya, torch.from_numpy(Y[:16]).float())  # SpecAugment keeps tags
    # Inference: predict_proba is the plain network output, the same on every call.
    p1, p2 = tagger.predict_proba(X), tagger.predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    with torch.no_grad():
        direct = tagger.model_.eval()(torch.from_numpy(X)).clip.numpy()
    np.testing.assert_allclose(p1, direct, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- mixup
@pytest.mark.parametrize("alpha", [0.2, 1.0, 5.0])
def test_mixup_targets_and_frames_are_the_same_convex_combinations(alpha):
    torch.manual_seed(0)
    x = torch.randn(40, 12, 40)
    y = (torch.rand(40, 5) < 0.4).float()
    lengths = torch.full((40,), 12)
    xm, ym, lm, lam, perm = mixup(x, y, lengths, alpha, fill=0.0)
    assert bool(((lam >= 0) & (lam <= 1)).all())
    torch.testing.assert_close(ym, lam[:, None] * y + (1 - lam[:, None]) * y[perm])
    torch.testing.assert_close(xm, lam[:, None, None] * x + (1 - lam[:, None, None]) * x[perm])
    assert bool(((ym >= 0) & (ym <= 1)).all())
    # a soft target lies between the two clips' tags
    lo, hi = torch.minimum(y, y[perm]), torch.maximum(y, y[perm])
    assert bool(((ym >= lo - 1e-6) & (ym <= hi + 1e-6)).all())
    assert not torch.equal(perm, torch.arange(40))
    torch.testing.assert_close(lm, lengths)


def test_mixup_fills_padding_and_takes_the_longer_length():
    torch.manual_seed(0)
    x = torch.ones(4, 10, 40)
    x[0, 4:] = 0.0  # clip 0 has 4 valid frames, zero padded
    lengths = torch.tensor([4, 10, 10, 10])
    fill = torch.full((40,), 7.0)
    xm, _, lm, lam, perm = mixup(x, torch.zeros(4, 2), lengths, 1.0, fill)
    xf = x.clone()
    xf[0, 4:] = 7.0  # padding replaced by the fill before mixing
    l3 = lam[:, None, None]
    torch.testing.assert_close(xm, l3 * xf + (1 - l3) * xf[perm])
    torch.testing.assert_close(lm, torch.maximum(lengths, lengths[perm]))


# ---------------------------------------------------------------- learning-rate schedule
class _LRRecorder(Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_end(self, trainer, pl_module):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_lr_schedule(schedule):
    X, Y = _data(n=64)
    rec = _LRRecorder()
    AttLocTagger(
        **dict(SMALL, batch_size=16), max_epochs=3, lr_schedule=schedule, callbacks=[rec], random_state=0
    ).fit(X, Y)
    lrs = np.array(rec.lrs)
    assert len(lrs) == 3 * 4 + 1
    assert lrs[0] == pytest.approx(SMALL["learning_rate"])
    if schedule == "constant":
        np.testing.assert_allclose(lrs, SMALL["learning_rate"])
    else:
        assert np.all(np.diff(lrs) <= 1e-12), "cosine annealing never increases the step size"
        assert lrs[-1] < 1e-3 * SMALL["learning_rate"]  # ends near 0
        assert lrs[len(lrs) // 2] == pytest.approx(SMALL["learning_rate"] / 2, rel=0.1)


# ---------------------------------------------------------------- estimator plumbing
@pytest.mark.parametrize(
    "params, message",
    [
        ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
        ({"spec_augment": -1}, "spec_augment must be an int >= 0"),
        ({"spec_augment": 1.5}, "spec_augment must be an int >= 0"),
        ({"time_mask_width": -2}, "time_mask_width must be an int >= 0"),
        ({"freq_mask_width": "6"}, "freq_mask_width must be an int >= 0"),
        ({"mixup_alpha": -0.1}, "mixup_alpha must be a finite number >= 0"),
        ({"mixup_alpha": float("nan")}, "mixup_alpha must be a finite number >= 0"),
        ({"loc_activation": "tanh"}, "loc_activation must be one of"),
        ({"loc_denominator": "att"}, "loc_denominator must be one of"),
    ],
)
def test_bad_training_options_are_refused_in_fit(params, message):
    X, Y = _data(n=8, n_frames=10)
    tagger = AttLocTagger(**SMALL, max_epochs=1, **params)  # __init__ only stores
    with pytest.raises(ValueError, match=message):
        tagger.fit(X, Y)


def test_all_options_together_train_and_reach_the_network():
    X, Y = _data()
    tagger = AttLocTagger(
        **SMALL, max_epochs=2, loc_activation="sigmoid", loc_denominator="att_loc", lr_schedule="cosine",
        spec_augment=True, mixup_alpha=0.4, random_state=0,
    ).fit(X, Y)
    assert tagger.model_.loc_activation == "sigmoid" and tagger.model_.loc_denominator == "att_loc"
    assert all(np.isfinite(r["train_loss"]) for r in tagger.history_)
    loc = tagger.set_params(localization="loc").localize(X[:4])
    assert not np.allclose(loc.sum(-1), 1.0, atol=1e-2)  # per-class sigmoid, not a softmax


def test_att_frame_localization_is_attention_times_frame_output():
    X, Y = _data(n=32)
    tagger = AttLocTagger(**SMALL, max_epochs=1, random_state=0).fit(X, Y)
    fo = tagger.frame_outputs(X[:5])
    got = tagger.set_params(localization="att_frame").localize(X[:5])
    np.testing.assert_allclose(got, np.stack([r["att"][:, None] * r["frame"] for r in fo]), rtol=1e-5)
    mean = AttLocTagger(**SMALL, pooling="mean", max_epochs=1, localization="att_frame", random_state=0).fit(X, Y)
    np.testing.assert_allclose(
        mean.localize(X[:5]), mean.set_params(localization="frame").localize(X[:5]), rtol=1e-6
    )


@pytest.mark.parametrize("n_train, expected", [(5000, 100), (1000, 100), (999, 100), (990, 99), (400, 40),
                                               (248, 25), (80, 8), (50, 8), (5, 5), (1, 1)])
def test_auto_batch_size_gives_an_epoch_at_least_10_steps_up_to_the_papers_100(n_train, expected):
    from skattloc.params import auto_batch_size

    assert auto_batch_size(n_train) == expected


def test_batch_size_auto_trains_exactly_as_the_batch_it_resolves_to():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 16, 8)).astype(np.float32)
    Y = (rng.random((60, 2)) < 0.5).astype(int)
    params = dict(SMALL, max_epochs=2, random_state=0)
    params.pop("batch_size")
    auto = AttLocTagger(**params).fit(X, Y)  # 60 clips: no split (under 100), ceil(60 / 10) = 6 -> at least 8
    assert auto.batch_size == "auto" and auto.batch_size_ == 8
    fixed = AttLocTagger(**params, batch_size=8).fit(X, Y)
    assert fixed.batch_size_ == 8
    np.testing.assert_array_equal(auto.predict_proba(X), fixed.predict_proba(X))
    assert AttLocTagger(**params, batch_size=32).fit(X, Y).batch_size_ == 32  # an int is used as given


@pytest.mark.parametrize("bad", [0, -3, 2.5, "big", None])
def test_bad_batch_sizes_are_refused_in_fit(bad):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 16, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="batch_size"):
        AttLocTagger(batch_size=bad).fit(X, np.eye(2, dtype=int)[np.arange(10) % 2])
