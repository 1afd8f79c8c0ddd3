"""Fuzzing (hypothesis): random shapes, dtypes and values never crash the estimator with
anything but its documented errors (ValueError, TypeError; NotFittedError is a ValueError),
and whatever it returns is a finite probability matrix of the documented shape.

Small budgets (max_examples) and a tiny network keep this in the default suite.
"""
import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import rankdata

from skattloc import AttLocTagger
from skattloc.metrics import equal_error_rate

TINY = dict(n_filters=3, kernel_size=2, rnn_hidden=3, rnn_layers=1, dense_units=3, batch_size=8, max_epochs=1, random_state=0)
DOCUMENTED = (ValueError, TypeError)
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

DTYPES = [np.float32, np.float64, np.float16, np.int8, np.int64, np.uint8, np.bool_, np.complex64, np.dtype("<U2"), np.dtype(object)]


def _elements(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        width = 16 if dtype.itemsize == 2 else 32
        return st.floats(-1e4, 1e4, width=width) | st.sampled_from([np.nan, np.inf, -np.inf])
    if dtype.kind == "O":
        return st.one_of(st.none(), st.text(max_size=2), st.floats(allow_nan=True), st.integers(-5, 5))
    return None  # hypothesis' default for the dtype


@st.composite
def clips(draw, n_features=None, plausible=3):
    """A 0-4-D array of any of DTYPES, or a list of arrays with random shapes; one time in
    ``plausible`` a 3-D numeric array (``n_features`` features when given) that may fit."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    if draw(st.integers(1, plausible)) == 1:
        dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_])))
        f = n_features if n_features is not None else draw(st.integers(1, 5))
        shape = (draw(st.integers(1, 6)), draw(st.integers(1, 5)), f)
        return draw(hnp.arrays(dtype, shape, elements=st.floats(-1e4, 1e4) if dtype.kind == "f" else None))
    if draw(st.booleans()):
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
        return draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    n = draw(st.integers(0, 4))
    return [
        draw(hnp.arrays(dtype, draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)), elements=_elements(dtype)))
        for _ in range(n)
    ]


@st.composite
def targets(draw, n):
    rows = draw(st.sampled_from([n] * 6 + [max(n - 1, 0), n + 1]))
    cols = draw(st.sampled_from([1, 2, 3, 1, 2, 3, 0]))
    values = draw(st.sampled_from([(0, 1)] * 6 + [(0, 1, 2), (0.0, 0.5, 1.0)]))
    return np.asarray(draw(st.lists(st.lists(st.sampled_from(values), min_size=cols, max_size=cols), min_size=rows, max_size=rows))).reshape(rows, cols)


def _check_proba(p, n, n_classes):
    assert isinstance(p, np.ndarray) and p.shape == (n, n_classes)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()


@pytest.mark.filterwarnings("ignore:classes .*(never positive|positive in every clip):UserWarning")
@FUZZ
@given(st.data())
def test_fit_never_crashes_with_an_undocumented_error(data):
    X = data.draw(clips(plausible=2))
    n = len(X) if isinstance(X, list) or (isinstance(X, np.ndarray) and X.ndim > 0) else 1
    Y = data.draw(targets(n))
    tagger = AttLocTagger(**TINY)
    try:
        with np.errstate(all="ignore"):
            tagger.fit(X, Y)
    except DOCUMENTED as exc:
        assert str(exc), "an error without a message"
        event(f"refused: {type(exc).__name__}")
        return
    event("fitted")
    _check_proba(tagger.predict_proba(X), len(X), len(tagger.classes_))


@functools.lru_cache(maxsize=1)
def _fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 4, 3)).astype(np.float32)
    return AttLocTagger(**TINY).fit(X, np.eye(2, dtype=int)[np.arange(8) % 2])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(clips(n_features=3))
def test_predict_never_crashes_with_an_undocumented_error(X):
    tagger = _fitted()
    for method in ("predict_proba", "localize"):
        try:
            out = getattr(tagger, method)(X)
        except DOCUMENTED as exc:
            assert str(exc)
            event(f"{method} refused: {type(exc).__name__}")
            continue
        event(f"{method} returned")
        if method == "predict_proba":
            _check_proba(out, len(X), 2)
        else:
            assert len(out) == len(X) and all(np.isfinite(o).all() for o in out)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(clips())
def test_unfitted_estimator_raises_not_fitted_whatever_the_input(X):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AttLocTagger(**TINY).predict_proba(X)


# ------------------------------------------------------------------ EER on float score matrices
# tests/test_metrics_properties.py covers the four EER properties (in [0, 1],
# monotone invariance, label swap with negated scores, 0 for perfect separation) on integer
# scores of one class. What it leaves out: real-valued scores, several classes at once, and
# classes that are never or always positive (NaN, left out of the macro mean).
@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.data())
def test_macro_eer_of_float_scores_in_unit_interval_and_rank_invariant(data):
    n = data.draw(st.integers(2, 30))
    k = data.draw(st.integers(1, 4))
    Y = data.draw(hnp.arrays(np.int64, (n, k), elements=st.integers(0, 1)))
    S = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-1e6, 1e6)))
    defined = [j for j in range(k) if 0 < Y[:, j].sum() < n]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined classes warn
        per = equal_error_rate(Y, S, average=None)
        macro = equal_error_rate(Y, S)
        ranked = equal_error_rate(Y, np.column_stack([rankdata(S[:, j], method="dense") for j in range(k)]), average=None)
    assert np.isnan(per[[j for j in range(k) if j not in defined]]).all()
    assert ((per[defined] >= 0) & (per[defined] <= 1)).all()
    np.testing.assert_allclose(ranked[defined], per[defined], atol=1e-9)  # only the ranking matters
    if defined:
        assert macro == pytest.approx(per[defined].mean())
    else:
        assert np.isnan(macro)
