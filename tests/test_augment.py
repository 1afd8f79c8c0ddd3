"""skattloc.augment: mixing as sound mixes, circular time shift and FilterAugment (issue 19,
part 2), and how AttLocModule applies them with frame targets and kinds of clips."""
import math

import numpy as np
import pytest
import torch

from skattloc import AttLocTagger
from skattloc.augment import filter_augment, power_mix, time_shift
from skattloc.model import CGRNN
from skattloc.module import AttLocModule

from .conftest import SMALL

DB = math.log(10) / 10


# ---------------------------------------------------------------------------- power_mix
def test_power_mix_adds_power_and_unites_tags():
    torch.manual_seed(0)
    x = torch.randn(6, 10, 4)
    y = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 0, 0], [0, 1, 1]], dtype=torch.float32)
    x_mix, y_mix, lengths, f_mix, perm = power_mix(x, y, None, gain_db=0.0)
    assert lengths is None and f_mix is None
    torch.testing.assert_close(x_mix, torch.log(torch.exp(x) + torch.exp(x[perm])))
    torch.testing.assert_close(y_mix, torch.maximum(y, y[perm]))  # the union, not a convex combination
    assert set(y_mix.unique().tolist()) <= {0.0, 1.0}


def test_power_mix_gain_stays_within_its_decibels():
    torch.manual_seed(1)
    x = torch.full((200, 1, 1), -50.0)  # silence ...
    x[:100] = 0.0  # ... or power 1; all with perm partners of either kind
    groups = torch.cat([torch.zeros(100), torch.ones(100)]).long()  # silence mixes with silence
    x_mix, _, _, _, perm = power_mix(x, torch.zeros(200, 1), None, groups=groups, gain_db=6.0)
    added = torch.exp(x_mix[:100]) - 1.0  # power 1 plus g * 1
    assert float(added.min()) >= 10 ** (-0.6) - 1e-4 and float(added.max()) <= 10 ** 0.6 + 1e-4
    assert float(added.max()) > 2.0 and float(added.min()) < 0.5  # the gains spread over the range
    assert bool((groups[perm] == groups).all())


def test_power_mix_keeps_kinds_apart_and_frame_targets_take_the_maximum_ignoring_nan():
    torch.manual_seed(2)
    x = torch.randn(8, 5, 3)
    x[7, 0, 0] = -40.0  # the batch's quietest value: LogMelExtractor's floor, log(log_offset)
    y = torch.tensor([[1.0, 0.0]] * 4 + [[float("nan")] * 2] * 4)  # 4 labelled, 4 unlabeled
    f = torch.full((8, 5, 2), float("nan"))
    f[:4, :3] = torch.tensor([1.0, 0.0])
    lengths = torch.tensor([5, 3, 5, 3, 5, 5, 5, 5])
    groups = torch.tensor([0, 0, 0, 0, 2, 2, 2, 2])
    x_mix, y_mix, l_mix, f_mix, perm = power_mix(x, y, lengths, groups=groups, f=f)
    assert bool((groups[perm] == groups).all())
    assert torch.isnan(y_mix[4:]).all() and not torch.isnan(y_mix[:4]).any()
    torch.testing.assert_close(l_mix, torch.maximum(lengths, lengths[perm]))
    assert not torch.isnan(f_mix[:4, :3]).any() and torch.isnan(f_mix[:4, 3:]).all()
    # a clip's padding is silence: where only the longer partner is valid, the mix is the
    # partner at the clip's relative gain
    for i in range(4):
        j = int(perm[i])
        if int(lengths[i]) == 3 and int(lengths[j]) == 5:
            assert torch.allclose(x_mix[i, 3:], x[j, 3:] + (x_mix[i, 3:] - x[j, 3:]).mean(), atol=1e-3)


# ---------------------------------------------------------------------------- time_shift
def test_time_shift_rolls_each_clip_inside_its_length_with_its_frame_targets():
    torch.manual_seed(3)
    n, T = 16, 12
    x = torch.arange(T, dtype=torch.float32).view(1, T, 1).repeat(n, 1, 2) + 100 * torch.arange(n).view(n, 1, 1)
    f = x[..., :1].clone()
    lengths = torch.randint(4, T + 1, (n,))
    xs, fs = time_shift(x, lengths, 0.5, f)
    shifts = set()
    for i in range(n):
        L = int(lengths[i])
        valid = xs[i, :L, 0] - 100 * i
        s = int(valid[0].item())  # frame 0 now holds frame (0 - shift) mod L
        assert torch.equal(valid, torch.remainder(torch.arange(L) + s, L).float())
        assert min(s, L - s) <= L // 2  # within max_share of the length
        assert torch.equal(xs[i, L:], x[i, L:])  # padding untouched
        assert torch.equal(fs[i], xs[i, :, :1])  # the targets moved with the frames
        shifts.add(s)
    assert len(shifts) > 3
    x0, f0 = time_shift(x, None, 0.0, f)
    assert torch.equal(x0, x) and torch.equal(f0, f)


# ---------------------------------------------------------------------------- filter_augment
def test_filter_augment_is_a_per_clip_step_equalizer_within_its_decibels():
    torch.manual_seed(4)
    x = torch.randn(64, 7, 40)
    out = filter_augment(x, 6.0)
    gain = out - x
    torch.testing.assert_close(gain, gain[:, :1].expand_as(gain))  # the same gain on every frame
    assert float(gain.abs().max()) <= 6.0 * DB + 1e-5
    steps = ((gain[:, 0, 1:] - gain[:, 0, :-1]).abs() > 1e-4).sum(dim=1)  # band edges
    assert int(steps.max()) <= 4 and int(steps.min()) >= 0 and float(steps.float().mean()) > 1.0


# ---------------------------------------------------------------------------- in training
def _module(**kw):
    torch.manual_seed(0)
    return AttLocModule(CGRNN(n_mels=8, n_classes=2, pooling="att_loc", kernel_size=3), **kw)


def test_module_applies_power_mix_on_its_share_of_the_batches_only():
    x, y = torch.randn(6, 10, 8), torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 3)
    lengths = torch.full((6,), 10)
    union = 0
    m = _module(power_mix=0.5)
    for _ in range(40):
        xa, la, ya, _ = m.augment(x, lengths, y)
        union += bool(((ya == 0) | (ya == 1)).all() and not torch.equal(ya, y))
    assert 5 < union < 35  # about half of the batches are power-mixed; the others are left alone
    m = _module(power_mix=1.0, mixup_alpha=0.2)
    _, _, ya, _ = m.augment(x, lengths, y)
    assert set(ya.unique().tolist()) <= {0.0, 1.0}  # never mixup's soft tags


def test_module_time_shift_moves_frame_targets_in_every_label_batches():
    m = _module(time_shift=0.5)
    x = torch.randn(4, 10, 8)
    f = torch.zeros(4, 10, 2)
    f[:, 2:4, 0] = 1.0
    y = torch.tensor([[1.0, 0.0]] * 4)
    torch.manual_seed(5)
    xa, _, _, fa = m.augment(x, torch.full((4,), 10), y, f.clone(), groups=torch.ones(4).long())
    moved = 0
    for i in range(4):
        k = int(torch.nonzero(torch.all(x[i] == xa[i, 0], dim=1))[0, 0])  # xa[i, 0] is x[i, k]
        assert torch.equal(xa[i], torch.roll(x[i], -k, 0))
        assert torch.equal(fa[i], torch.roll(f[i], -k, 0))  # the event moved with its clip
        moved += k != 0
    assert moved >= 2


@pytest.mark.parametrize("opts", [dict(power_mix=0.5), dict(time_shift=0.2), dict(filter_augment=6.0)])
def test_each_augmentation_trains_changes_the_model_and_leaves_inference_alone(opts):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 24, 16)).astype(np.float32)
    Y = (rng.random((40, 2)) < 0.5).astype(int)
    Y[0], Y[1] = 1, 0
    off = dict(power_mix=0.0, time_shift=0.0, filter_augment=0.0)  # the default has some on
    base = AttLocTagger(**SMALL, **off, max_epochs=2, validation_fraction=0, random_state=0).fit(X, Y)
    aug = AttLocTagger(**SMALL, **{**off, **opts}, max_epochs=2, validation_fraction=0, random_state=0).fit(X, Y)
    again = AttLocTagger(**SMALL, **{**off, **opts}, max_epochs=2, validation_fraction=0, random_state=0).fit(X, Y)
    assert not np.array_equal(base.predict_proba(X), aug.predict_proba(X))
    np.testing.assert_array_equal(aug.predict_proba(X), again.predict_proba(X))  # reproducible
    np.testing.assert_array_equal(aug.predict_proba(X), aug.predict_proba(X))  # inference unaugmented


@pytest.mark.parametrize("name, bad", [("power_mix", 1.5), ("power_mix", -0.1), ("time_shift", 1.0),
                                       ("filter_augment", -3.0), ("filter_augment", float("nan"))])
def test_augmentation_parameters_are_checked_in_fit(name, bad):
    X = np.zeros((4, 8, 16), np.float32)
    with pytest.raises(ValueError, match=name):
        AttLocTagger(**{name: bad}).fit(X, np.array([[1], [0], [1], [0]]))
