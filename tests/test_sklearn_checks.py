"""scikit-learn's own estimator checks.

`AttLocTagger` declares its tags honestly: 3-D input (clips x frames x features) and
multi-label output. sklearn's check generator only builds 2-D data, so for such an
estimator it yields no checks at all. To still run them, `_OneFrameClips` presents each
2-D row as a clip of one frame, (n, f) -> (n, 1, f), and forwards everything else to the
real estimator code, and a 1-D single-label y becomes a one-hot indicator matrix. The checks listed in `EXPECTED_FAILURES` fail for the stated reason.
"""
import numpy as np
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from skattloc import AttLocTagger

# The paper's per-frame CNN: sklearn's invariance checks compare predictions to 1e-7, and
# oneDNN's 2-D convolutions (frontend="conv2d") round differently for a sample's position
# in the batch, by up to one float32 ulp (6e-8 measured); the API under test is the same.
TINY = dict(frontend="frame_cnn", time_pool=1, n_filters=4, kernel_size=1, rnn_hidden=4, rnn_layers=1, dense_units=4,
            max_epochs=2, random_state=0)


def _clips(X):
    a = np.asarray(X) if not hasattr(X, "toarray") else X
    if isinstance(a, np.ndarray) and a.ndim == 2:
        return a[:, None, :]
    return X


def _indicator(y):
    """1-D labels -> a one-column-per-label 0/1 matrix; anything else unchanged."""
    a = np.asarray(y) if y is not None and not hasattr(y, "toarray") else y
    if isinstance(a, np.ndarray) and (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)):
        a = a.ravel()
        if np.all(np.isin(a, (0, 1))):
            return a[:, None].astype(int)
        if a.dtype.kind == "f" and (not np.isfinite(a).all() or np.any(a != np.round(a))):
            return a[:, None]  # continuous: let the estimator refuse it
        return (a[:, None] == np.unique(a)[None, :]).astype(int)
    return y


class _OneFrameClips(AttLocTagger):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = False
        return tags

    def fit(self, X, y):
        return super().fit(_clips(X), _indicator(y))

    def predict_proba(self, X):
        return super().predict_proba(_clips(X))

    def localize(self, X):
        return super().localize(_clips(X))

    def score(self, X, y, sample_weight=None):
        return super().score(_clips(X), _indicator(y), sample_weight)


_OUTPUT = (
    "AttLocTagger is multi-label: predict returns an (n, n_classes) indicator matrix, so "
    "sklearn's single-label comparison of predict(X) with a 1-D y cannot hold"
)
_ULP = ("compares float32 outputs to rtol 1e-7, under one float32 ulp; the order and subset "
        "invariance are checked to 1e-6 by test_predictions_do_not_depend_on_sample_order_or_subset")
EXPECTED_FAILURES = {
    "check_classifiers_one_label": _OUTPUT,
    "check_classifiers_train": _OUTPUT,
    # Both compare outputs to rtol 1e-7, less than one float32 ulp (1.19e-7): the BLAS kernels
    # behind the GRU and the convolutions may round a sample's last bit differently with its
    # position in the batch or the batch size (seen once in CI, 6e-8 on 1 of 60 values).
    # test_predictions_do_not_depend_on_sample_order_or_subset checks the same at 1e-6.
    "check_methods_sample_order_invariance": _ULP,
    "check_methods_subset_invariance": _ULP,
    "check_classifiers_classes": (
        "the adapter turns sklearn's string labels into indicator columns, so classes_ is "
        "0..k-1; string tags are covered by test_tag_names_give_sorted_classes_and_round_trip"
    ),
}


def test_real_estimator_declares_3d_multilabel_tags():
    tags = get_tags(AttLocTagger())
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    assert tags.classifier_tags.multi_label and tags.target_tags.multi_output


@parametrize_with_checks([_OneFrameClips(**TINY)], expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_predictions_do_not_depend_on_sample_order_or_subset():
    """What sklearn's order/subset invariance checks test, on real 3-D clips of several
    lengths with the default front end, at float32 tolerance."""
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(t), 8)).astype(np.float32) for t in rng.integers(6, 14, size=24)]
    Y = rng.integers(0, 2, size=(24, 3))
    Y[0], Y[1] = 1, 0
    tagger = AttLocTagger(n_filters=8, rnn_hidden=4, rnn_layers=1, dense_units=4, max_epochs=2, batch_size=8,
                          random_state=0).fit(X, Y)
    full, loc = tagger.predict_proba(X), tagger.localize(X)
    perm = rng.permutation(len(X))
    np.testing.assert_allclose(tagger.predict_proba([X[i] for i in perm]), full[perm], rtol=0, atol=1e-6)
    for i, frames in zip(perm, tagger.localize([X[i] for i in perm])):
        np.testing.assert_allclose(frames, loc[i], rtol=0, atol=1e-6)
    for start in (0, 5, 17):  # subsets, down to one clip
        part = X[start:start + 7] if start != 17 else [X[17]]
        np.testing.assert_allclose(tagger.predict_proba(part), full[start:start + len(part)], rtol=0, atol=1e-6)
    assert not np.allclose(full, full[perm])  # the outputs differ from clip to clip: the check has teeth
