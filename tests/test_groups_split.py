"""fit(groups=...): a validation split that holds out whole recordings (issue 19, part 3)."""
import numpy as np
import pytest

from skattloc import AttLocTagger
from skattloc.supervision import TAGGED, TIMED, UNLABELED, split_by_groups

SMALL = dict(rnn_hidden=8, rnn_layers=1, dense_units=8, n_filters=8, max_epochs=1, batch_size=8)


def test_whole_groups_go_to_validation_until_the_fraction_is_reached():
    rng = np.random.RandomState(0)
    groups = np.repeat(np.arange(20), rng.randint(1, 6, size=20))
    kinds = np.full(len(groups), TAGGED)
    train, val = split_by_groups(kinds, groups, 0.2, np.random.RandomState(3))
    assert not set(groups[train]) & set(groups[val])
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(groups)))
    target = round(0.2 * len(groups))
    # whole groups: at least the target, at most the target plus one group's clips
    assert target <= len(val) < target + np.bincount(groups).max()
    again = split_by_groups(kinds, groups, 0.2, np.random.RandomState(3))
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    other = split_by_groups(kinds, groups, 0.2, np.random.RandomState(4))[1]
    assert not np.array_equal(val, other)


def test_unlabeled_clips_of_a_validation_group_do_not_train():
    groups = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])
    kinds = np.array([TAGGED, TIMED, UNLABELED, TAGGED, TAGGED, UNLABELED, TAGGED, UNLABELED])
    for seed in range(6):
        train, val = split_by_groups(kinds, groups, 0.3, np.random.RandomState(seed))
        held = set(groups[val])
        assert all(kinds[i] != UNLABELED for i in val)
        assert not any(groups[i] in held for i in train)  # not even the unlabeled clips


@pytest.mark.parametrize(
    "groups, kw, match",
    [
        (np.zeros(6), {}, "at least 2"),
        (np.arange(5), {}, "one label per clip of X"),
        (np.array([0, 1, np.nan, 2, 3, 4]), {}, "NaN"),
        (np.array([0, 1, None, 2, 3, 4], dtype=object), {}, "None"),
        (np.arange(6), dict(validation_fraction=0.0), "makes no validation split"),
    ],
)
def test_bad_groups_are_refused_before_training(synth, groups, kw, match):
    X, Y = synth["X"][:6], synth["Y"][:6]
    with pytest.raises(ValueError, match=match):
        AttLocTagger(**{**SMALL, "validation_fraction": 0.34, **kw}).fit(X, Y, groups=groups)


def test_groups_with_x_val_is_refused(synth):
    X, Y = synth["X"][:8], synth["Y"][:8]
    with pytest.raises(ValueError, match="give one or the other"):
        AttLocTagger(**SMALL, validation_fraction=0.25).fit(X, Y, X_val=X[:2], y_val=Y[:2], groups=np.arange(8))


def test_fit_validates_on_whole_recordings_and_is_reproducible(synth):
    X, Y = synth["X"][:24], synth["Y"][:24]
    groups = np.repeat([f"rec{i}" for i in range(8)], 3)  # 8 recordings of 3 clips
    kw = dict(SMALL, validation_fraction=0.25, random_state=0)
    t = AttLocTagger(**kw).fit(X, Y, groups=groups)
    val = t.validation_indices_
    assert len(val) == 6 and all(np.sum(groups[val] == g) == 3 for g in set(groups[val]))
    again = AttLocTagger(**kw).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(again.validation_indices_, val)
    np.testing.assert_array_equal(again.predict_proba(X), t.predict_proba(X))
    plain = AttLocTagger(**kw).fit(X, Y)
    assert len(plain.validation_indices_) == 6
    assert any(np.sum(groups[plain.validation_indices_] == g) < 3 for g in set(groups[plain.validation_indices_]))


def test_resume_with_other_groups_is_refused(synth, tmp_path):
    from skattloc.training import check_resume, fit_fingerprint

    t = AttLocTagger(**SMALL)
    t.classes_ = np.array([0, 1, 2])
    a = fit_fingerprint(t, 0, 40, t.classes_, synth["Y"][:6], groups=np.arange(6))
    b = fit_fingerprint(t, 0, 40, t.classes_, synth["Y"][:6], groups=np.arange(6) // 2)
    check_resume("last.ckpt", a, a)
    with pytest.raises(ValueError, match="groups"):
        check_resume("last.ckpt", a, b)
