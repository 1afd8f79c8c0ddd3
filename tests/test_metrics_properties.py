"""Property-based tests (hypothesis) for skattloc.metrics."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from skattloc.metrics import equal_error_rate, within_clip_auc

SETTINGS = settings(max_examples=100, deadline=None)


@st.composite
def labels_and_int_scores(draw, max_n=40):
    """Binary labels with both classes present and integer-valued scores (ties allowed)."""
    n = draw(st.integers(2, max_n))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    i, j = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
    y[i], y[j] = 0, 1
    s = draw(st.lists(st.integers(-20, 20), min_size=n, max_size=n))
    return np.array(y), np.array(s, dtype=float)


@SETTINGS
@given(labels_and_int_scores())
def test_eer_in_unit_interval(data):
    y, s = data
    eer = equal_error_rate(y, s)
    assert 0.0 <= eer <= 1.0


@SETTINGS
@given(labels_and_int_scores(), st.floats(0.1, 10.0), st.floats(-5.0, 5.0))
def test_eer_invariant_under_strictly_monotone_transforms(data, slope, intercept):
    y, s = data
    eer = equal_error_rate(y, s)
    # integer scores stay distinct (and ties stay ties) under these maps
    assert equal_error_rate(y, slope * s + intercept) == pytest.approx(eer, abs=1e-12)
    assert equal_error_rate(y, np.exp(s / 10.0)) == pytest.approx(eer, abs=1e-12)
    assert equal_error_rate(y, s**3) == pytest.approx(eer, abs=1e-12)


@SETTINGS
@given(labels_and_int_scores())
def test_eer_symmetric_under_label_swap_with_negated_scores(data):
    y, s = data
    assert equal_error_rate(1 - y, -s) == pytest.approx(equal_error_rate(y, s), abs=1e-9)


@SETTINGS
@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=20),
    st.lists(st.integers(-50, 50), min_size=1, max_size=20),
    st.integers(1, 10),
)
def test_eer_zero_for_perfect_separation(neg, pos, margin):
    neg = np.array(neg, dtype=float)
    pos = np.array(pos, dtype=float) - min(pos) + max(neg) + margin  # all above every negative
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    s = np.r_[neg, pos]
    assert equal_error_rate(y, s) == 0.0
    assert equal_error_rate(y, -s) == pytest.approx(1.0)


@SETTINGS
@given(st.lists(labels_and_int_scores(max_n=15), min_size=1, max_size=4))
def test_eer_macro_is_mean_of_per_class(columns):
    n = min(len(y) for y, _ in columns)
    # keep columns valid after truncation
    cols = [(y[:n], s[:n]) for y, s in columns if 0 < y[:n].sum() < n]
    if not cols:
        return
    Y = np.column_stack([y for y, _ in cols])
    S = np.column_stack([s for _, s in cols])
    per = equal_error_rate(Y, S, average=None)
    assert equal_error_rate(Y, S) == pytest.approx(per.mean())
    for k, (y, s) in enumerate(cols):
        assert per[k] == pytest.approx(equal_error_rate(y, s))


@SETTINGS
@given(st.data())
def test_within_clip_auc_matches_sklearn_and_flips(data):
    n_clips = data.draw(st.integers(1, 4))
    n_frames = data.draw(st.integers(2, 12))
    y = np.array(
        data.draw(st.lists(st.integers(0, 1), min_size=n_clips * n_frames, max_size=n_clips * n_frames))
    ).reshape(n_clips, n_frames, 1)
    s = np.array(
        data.draw(st.lists(st.integers(0, 5), min_size=n_clips * n_frames, max_size=n_clips * n_frames)),
        dtype=float,
    ).reshape(n_clips, n_frames, 1)
    usable = [i for i in range(n_clips) if 0 < y[i, :, 0].sum() < n_frames]
    if not usable:
        return
    auc = within_clip_auc(y, s)
    expected = np.mean([roc_auc_score(y[i, :, 0], s[i, :, 0]) for i in usable])
    assert auc == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= auc <= 1.0
    assert within_clip_auc(y, -s) == pytest.approx(1.0 - auc, abs=1e-12)
