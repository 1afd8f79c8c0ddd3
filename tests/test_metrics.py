"""Tests for skattloc.metrics (EER, scorer, frame and event metrics)."""
import math
import pickle
import random
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.multioutput import MultiOutputClassifier

from skattloc.metrics import (
    eer_score,
    eer_scorer,
    equal_error_rate,
    event_based_metrics,
    frame_auc,
    frame_average_precision,
    segment_based_metrics,
    within_clip_auc,
)


# ---------------------------------------------------------------------------
# EER
# ---------------------------------------------------------------------------
def _reference_eer(y, s):
    """Straight loop transcription of the DCASE 2016 Task 4 procedure."""
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=True)
    pts = [(0.0, 0.0)] + list(zip(fpr.tolist(), tpr.tolist()))
    for i, (x, t) in enumerate(pts):
        if x + 1e-6 >= 1 - t:
            break
    (x1, y1), (x2, y2) = pts[i - 1], pts[i]
    if abs(x2 - x1) < 1e-6:
        return x1
    m = (y2 - y1) / (x2 - x1)
    o = y1 - m * x1
    return (1 - o) / (1 + m)


def test_eer_perfect_separation_is_zero():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    assert equal_error_rate(y, s) == 0.0


def test_eer_fully_inverted_is_one():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.3])
    assert equal_error_rate(y, s) == pytest.approx(1.0)


def test_eer_interpolation_by_hand_slope_one():
    # ROC (after the prepended point): (0,0) (0,0) (0,2/3) (1/3,1) (1,1).
    # First point with fpr + 1e-6 >= 1 - tpr is (1/3, 1); the line through
    # (0, 2/3) and (1/3, 1) is tpr = fpr + 2/3, meeting tpr = 1 - fpr at 1/6.
    y = np.array([1, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.5, 0.5, 0.2, 0.1])
    assert equal_error_rate(y, s) == pytest.approx(1 / 6)


def test_eer_interpolation_by_hand_non_unit_slope():
    # Tie of 1 positive (of 2) and 3 negatives (of 5): segment from (0, .5)
    # to (.6, 1); slope m = 5/6, o = .5 -> EER = (1 - .5) / (1 + 5/6) = 3/11.
    y = np.array([1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.2, 0.1])
    assert equal_error_rate(y, s) == pytest.approx(3 / 11)
    # The nearest-ROC-point definition would give something else.
    fpr, tpr, _ = roc_curve(y, s)
    i = np.argmin(np.abs(fpr - (1 - tpr)))
    assert (fpr[i] + 1 - tpr[i]) / 2 != pytest.approx(3 / 11)


def test_eer_horizontal_segment_by_hand():
    # ROC: (0,.5) -> (.5,.5) horizontal: EER = 1 - .5 = .5
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.4, 0.3])
    assert equal_error_rate(y, s) == pytest.approx(0.5)


def test_eer_matches_loop_reference_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(4, 40))
        y = rng.integers(0, 2, n)
        y[0], y[1] = 0, 1
        s = np.round(rng.normal(size=n) + y * rng.uniform(0, 2), 1)  # ties on purpose
        assert equal_error_rate(y, s) == pytest.approx(_reference_eer(y, s), abs=1e-12)


def test_eer_per_class_and_macro():
    y = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 1]])
    s = np.array(
        [[0.9, 0.6, 0.2], [0.8, 0.7, 0.3], [0.2, 0.4, 0.9], [0.1, 0.5, 0.1], [0.7, 0.1, 0.8], [0.3, 0.9, 0.7]]
    )
    per = equal_error_rate(y, s, average=None)
    assert per.shape == (3,)
    for k in range(3):
        assert per[k] == pytest.approx(_reference_eer(y[:, k], s[:, k]))
    assert equal_error_rate(y, s) == pytest.approx(per.mean())
    assert equal_error_rate(y, s, average="macro") == pytest.approx(per.mean())


def test_eer_class_without_positives_is_nan_and_skipped_from_macro():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    s = np.array([[0.9, 0.3], [0.1, 0.2], [0.8, 0.9], [0.2, 0.1]])
    with pytest.warns(UndefinedMetricWarning, match="class 1"):
        per = equal_error_rate(y, s, average=None)
    assert per[0] == 0.0 and np.isnan(per[1])
    with pytest.warns(UndefinedMetricWarning):
        assert equal_error_rate(y, s) == 0.0


def test_eer_all_classes_undefined_gives_nan():
    y = np.ones((4, 2))
    with pytest.warns(UndefinedMetricWarning, match="no negative"):
        assert math.isnan(equal_error_rate(y, np.random.default_rng(0).random((4, 2))))


def test_eer_accepts_bool_and_1d():
    y = np.array([True, False, True, False])
    s = [0.9, 0.1, 0.8, 0.2]
    assert equal_error_rate(y, s) == 0.0
    assert equal_error_rate(y, s, average=None).shape == (1,)


@pytest.mark.parametrize(
    "y, s, match",
    [
        (np.array([[0, 1], [1, 0]]), np.array([0.1, 0.2]), "same shape"),
        (np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]), "binary"),
        (np.array([0, 1]), np.array([0.1, np.nan]), "NaN"),
        (np.array([0, 1]), np.array([0.1, np.inf]), "infinite"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "Empty"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), "1-D"),
    ],
)
def test_eer_input_errors(y, s, match):
    with pytest.raises(ValueError, match=match):
        equal_error_rate(y, s)


def test_eer_bad_average():
    with pytest.raises(ValueError, match="macro"):
        equal_error_rate([0, 1], [0.1, 0.9], average="micro")


# ---------------------------------------------------------------------------
# sklearn scorer
# ---------------------------------------------------------------------------
class NoisyTagger(ClassifierMixin, BaseEstimator):
    """Toy multi-label tagger: columns of X are already per-class evidence.

    ``predict_proba`` returns a sigmoid of X plus deterministic noise of size
    ``noise`` -- larger noise means a worse model.
    """

    def __init__(self, noise=0.0, tags=None):
        self.noise = noise
        self.tags = tags

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        if self.tags is not None:
            self.classes_ = np.asarray(self.tags, dtype=object)
        else:
            self.classes_ = np.arange(X.shape[1])
        return self

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float)
        seed = int(np.abs(X).sum() * 1000) % (2**32)
        noise = np.random.default_rng(seed).normal(size=X.shape) * self.noise
        return 1.0 / (1.0 + np.exp(-(X + noise)))

    def predict(self, X):
        return (self.predict_proba(X) >= 0.5).astype(int)


def _toy_multilabel(n=90, k=3, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.integers(0, 2, size=(n, k))
    X = (2 * Y - 1) * 1.0 + rng.normal(scale=1.2, size=(n, k))  # imperfect evidence
    return X, Y


def test_scorer_sign_and_value_on_fitted_estimator():
    X, Y = _toy_multilabel()
    est = NoisyTagger(noise=0.0).fit(X, Y)
    eer = equal_error_rate(Y, est.predict_proba(X))
    assert 0 < eer < 0.5
    assert eer_scorer(est, X, Y) == pytest.approx(-eer)
    assert eer_score(est, X, Y) == pytest.approx(-eer)


def test_gridsearch_picks_lower_eer_and_best_score_is_minus_eer():
    X, Y = _toy_multilabel()
    cv = KFold(3, shuffle=True, random_state=0)
    gs = GridSearchCV(NoisyTagger(), {"noise": [4.0, 0.0, 2.0]}, scoring=eer_scorer, cv=cv)
    gs.fit(X, Y)
    assert gs.best_params_ == {"noise": 0.0}
    # best_score_ is the mean over folds of -EER for the chosen setting
    folds = []
    for train, test in cv.split(X, Y):
        est = NoisyTagger(noise=0.0).fit(X[train], Y[train])
        folds.append(equal_error_rate(Y[test], est.predict_proba(X[test])))
    assert gs.best_score_ == pytest.approx(-np.mean(folds))
    assert gs.best_score_ < 0
    scores = dict(zip([p["noise"] for p in gs.cv_results_["params"]], gs.cv_results_["mean_test_score"]))
    assert scores[0.0] > scores[2.0] > scores[4.0]


def test_scorer_keeps_both_columns_for_two_tag_estimator():
    # classes_ == ["c", "m"] looks "binary" to sklearn; a make_scorer-based
    # scorer would keep one column only.  Ours must use both.
    X, Y = _toy_multilabel(k=2, seed=3)
    X[:, 1] = -X[:, 1]  # make column 1 a bad (inverted) predictor
    est = NoisyTagger(tags=["c", "m"]).fit(X, Y)
    proba = est.predict_proba(X)
    per = equal_error_rate(Y, proba, average=None)
    assert per[0] < 0.5 < per[1]
    assert eer_scorer(est, X, Y) == pytest.approx(-per.mean())


def test_scorer_binarizes_tag_name_lists_with_classes():
    X, Y = _toy_multilabel(k=3, seed=1)
    tags = ["b", "c", "v"]
    tag_lists = [[tags[j] for j in np.flatnonzero(row)] for row in Y]
    est = NoisyTagger(tags=tags).fit(X, Y)
    assert eer_scorer(est, X, tag_lists) == pytest.approx(eer_scorer(est, X, Y))
    # order of tags inside a clip does not matter; sets are fine
    assert eer_scorer(est, X, [set(t) for t in tag_lists]) == pytest.approx(eer_scorer(est, X, Y))
    with pytest.raises(ValueError, match="not in the estimator's classes_"):
        eer_scorer(est, X, [["zzz"]] + tag_lists[1:])


def test_cross_val_score_with_tag_lists():
    X, Y = _toy_multilabel(k=3, seed=2)
    tags = ["b", "c", "v"]
    tag_lists = [[tags[j] for j in np.flatnonzero(row)] for row in Y]
    cv = KFold(3)
    s_tags = cross_val_score(NoisyTagger(tags=tags), X, tag_lists, scoring=eer_scorer, cv=cv)
    s_ind = cross_val_score(NoisyTagger(tags=tags), X, Y, scoring=eer_scorer, cv=cv)
    np.testing.assert_allclose(s_tags, s_ind)
    assert np.all(s_ind <= 0)


def test_scorer_with_multioutput_list_predict_proba():
    X, Y = _toy_multilabel(k=2, seed=4)
    est = MultiOutputClassifier(LogisticRegression()).fit(X, Y)
    proba = np.column_stack([p[:, 1] for p in est.predict_proba(X)])
    assert eer_scorer(est, X, Y) == pytest.approx(-equal_error_rate(Y, proba))


def test_scorer_with_ordinary_binary_classifier():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 2))
    y = np.where(X[:, 0] + rng.normal(scale=0.8, size=60) > 0, "yes", "no")
    est = LogisticRegression().fit(X, y)
    pos = list(est.classes_).index("yes")
    expected = -equal_error_rate(y == "yes", est.predict_proba(X)[:, pos])
    assert eer_scorer(est, X, y) == pytest.approx(expected)
    assert np.all(cross_val_score(LogisticRegression(), X, y, scoring=eer_scorer, cv=3) <= 0)


def test_scorer_errors_and_pickle():
    X, Y = _toy_multilabel(k=2)
    est = NoisyTagger().fit(X, Y)
    with pytest.raises(ValueError, match="must match"):
        eer_scorer(est, X, Y[:, :1].repeat(3, axis=1))
    with pytest.raises(ValueError, match="sample_weight"):
        eer_scorer(est, X, Y, sample_weight=np.ones(len(Y)))
    assert pickle.loads(pickle.dumps(eer_scorer)) is eer_scorer
    assert repr(eer_scorer) == "eer_scorer"


# ---------------------------------------------------------------------------
# frame-level metrics
# ---------------------------------------------------------------------------
def _random_frames(n_clips=6, n_frames=20, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n_clips, n_frames, n_classes)) < 0.3).astype(int)
    s = rng.random(y.shape) + 0.5 * y
    return y, s


def test_frame_average_precision_equals_sklearn_on_flattened():
    y, s = _random_frames()
    per = frame_average_precision(y, s, average=None)
    yf, sf = y.reshape(-1, 3), s.reshape(-1, 3)
    expected = [average_precision_score(yf[:, k], sf[:, k]) for k in range(3)]
    np.testing.assert_allclose(per, expected)
    assert frame_average_precision(y, s) == pytest.approx(np.mean(expected))


def test_frame_auc_equals_sklearn_on_flattened_and_accepts_lists():
    y, s = _random_frames(seed=1)
    yf, sf = y.reshape(-1, 3), s.reshape(-1, 3)
    expected = [roc_auc_score(yf[:, k], sf[:, k]) for k in range(3)]
    np.testing.assert_allclose(frame_auc(y, s, average=None), expected)
    # unequal lengths as lists
    y_list = [y[0, :5], y[1], y[2, :13]]
    s_list = [s[0, :5], s[1], s[2, :13]]
    yc, sc = np.concatenate(y_list), np.concatenate(s_list)
    exp_list = [roc_auc_score(yc[:, k], sc[:, k]) for k in range(3)]
    np.testing.assert_allclose(frame_auc(y_list, s_list, average=None), exp_list)


def test_frame_metrics_nan_for_class_without_active_frames():
    y, s = _random_frames(seed=2)
    y[:, :, 1] = 0
    with pytest.warns(UndefinedMetricWarning, match="class 1"):
        ap = frame_average_precision(y, s, average=None)
    assert np.isnan(ap[1]) and not np.isnan(ap[0])
    with pytest.warns(UndefinedMetricWarning):
        macro = frame_auc(y, s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert macro == pytest.approx(np.nanmean(frame_auc(y, s, average=None)))


def test_within_clip_auc_constant_perfect_inverted():
    y = np.array([[[0], [1], [1], [0], [0]], [[1], [0], [0], [0], [1]]])
    assert within_clip_auc(y, np.full(y.shape, 0.3)) == 0.5
    assert within_clip_auc(y, y * 0.8 + 0.1) == 1.0
    assert within_clip_auc(y, 1.0 - y) == 0.0


def test_within_clip_auc_matches_sklearn_and_skips_clips():
    y, s = _random_frames(n_clips=8, n_frames=12, seed=3)
    y[0, :, 0] = 1  # all active -> skipped for class 0
    y[1, :, 0] = 0  # none active -> skipped for class 0
    per, counts = within_clip_auc(y, s, average=None, return_counts=True)
    for k in range(3):
        aucs = [
            roc_auc_score(y[i, :, k], s[i, :, k])
            for i in range(len(y))
            if 0 < y[i, :, k].sum() < y.shape[1]
        ]
        assert counts[k] == len(aucs)
        assert per[k] == pytest.approx(np.mean(aucs))
    assert counts[0] <= 6
    assert within_clip_auc(y, s) == pytest.approx(per.mean())


def test_within_clip_auc_lists_and_undefined_class():
    y = [np.array([[0, 1], [1, 1], [0, 1]]), np.array([[1, 1], [0, 1]])]
    s = [np.array([[0.1, 0.5], [0.9, 0.2], [0.2, 0.3]]), np.array([[0.3, 0.1], [0.6, 0.2]])]
    with pytest.warns(UndefinedMetricWarning, match="class 1"):
        per, counts = within_clip_auc(y, s, average=None, return_counts=True)
    assert per[0] == pytest.approx((1.0 + 0.0) / 2)
    assert np.isnan(per[1])
    assert counts.tolist() == [2, 0]


@pytest.mark.parametrize("fn", [frame_average_precision, frame_auc, within_clip_auc])
def test_frame_metric_input_errors(fn):
    y, s = _random_frames()
    with pytest.raises(ValueError, match="same shape"):
        fn(y, s[:, :-1])
    with pytest.raises(ValueError, match="binary"):
        fn(y * 2, s)
    s_nan = s.copy()
    s_nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(y, s_nan)
    with pytest.raises(ValueError, match="n_clips, n_frames, n_classes"):
        fn(y[0], s[0])
    with pytest.raises(ValueError, match="Empty"):
        fn([], [])
    with pytest.raises(ValueError, match="average"):
        fn(y, s, average="weighted")


# ---------------------------------------------------------------------------
# event-list metrics: hand-computed values
# ---------------------------------------------------------------------------
SEG_REF = [
    ("f1", 0.0, 2.0, "a"),
    ("f1", 3.0, 4.0, "b"),
    ("f2", 0.2, 0.4, "b"),
]
SEG_EST = [
    ("f1", 0.5, 2.5, "a"),
    ("f1", 3.0, 3.5, "a"),
]


@pytest.mark.parametrize("durations", [None, 5.0, {"f1": 5.0, "f2": 5.0, "f3": 5.0}])
def test_segment_based_hand_computed(durations):
    # 1-s segments.  f1: seg0,1 a/a (TP), seg2 -/a (I), seg3 b/a (S); f2: seg0 b/- (D)
    filenames = ["f1", "f2", "f3"] if durations is not None else None
    r = segment_based_metrics(SEG_REF, SEG_EST, ["a", "b"], 1.0, filenames=filenames, durations=durations)
    assert (r["n_ref"], r["n_sys"], r["n_tp"]) == (4, 4, 2)
    assert r["precision"] == 0.5 and r["recall"] == 0.5 and r["f_measure"] == 0.5
    assert r["substitution_rate"] == pytest.approx(0.25)
    assert r["deletion_rate"] == pytest.approx(0.25)
    assert r["insertion_rate"] == pytest.approx(0.25)
    assert r["error_rate"] == pytest.approx(0.75)
    a, b = r["class_wise"]["a"], r["class_wise"]["b"]
    assert (a["precision"], a["recall"]) == (0.5, 1.0)
    assert a["f_measure"] == pytest.approx(2 / 3)
    assert a["error_rate"] == pytest.approx(1.0)  # (FN 0 + FP 2) / 2
    assert math.isnan(b["precision"]) and b["recall"] == 0.0 and math.isnan(b["f_measure"])
    assert b["error_rate"] == pytest.approx(1.0)
    assert r["class_wise_average"]["f_measure"] == pytest.approx(2 / 3)  # NaN skipped
    assert r["n_files"] == (3 if durations is not None else 2)


def test_segment_based_half_second_segments_and_truncation():
    ref = [("x", 0.0, 1.0, "a")]
    est = [("x", 0.4, 1.2, "a")]
    # 0.5-s segments: ref -> 0,1 ; est -> 0,1,2
    r = segment_based_metrics(ref, est, ["a"], segment_length=0.5)
    assert (r["n_ref"], r["n_sys"], r["n_tp"]) == (2, 3, 2)
    # duration 1.0 cuts the estimate to segments 0,1
    r = segment_based_metrics(ref, est, ["a"], segment_length=0.5, durations=1.0)
    assert r["f_measure"] == 1.0 and r["error_rate"] == 0.0


def test_segment_based_errors():
    with pytest.raises(ValueError, match="not in filenames"):
        segment_based_metrics(SEG_REF, SEG_EST, ["a", "b"], filenames=["f1"])
    with pytest.raises(ValueError, match="durations has no entry"):
        segment_based_metrics(SEG_REF, SEG_EST, ["a", "b"], durations={"f1": 5.0})
    with pytest.raises(ValueError, match="not in classes"):
        segment_based_metrics(SEG_REF, SEG_EST, ["a"])
    with pytest.raises(ValueError, match="onset <= offset"):
        segment_based_metrics([("f", 2.0, 1.0, "a")], [], ["a"])
    with pytest.raises(ValueError, match="segment_length"):
        segment_based_metrics(SEG_REF, SEG_EST, ["a", "b"], segment_length=0)
    with pytest.raises(ValueError, match="Empty"):
        segment_based_metrics([], [], ["a"])


EV_REF = [
    ("f1", 1.0, 3.0, "a"),
    ("f1", 5.0, 6.0, "b"),
    ("f1", 7.0, 8.0, "a"),
    ("f2", 0.5, 2.5, "b"),
]
EV_EST = [
    ("f1", 1.1, 3.3, "a"),  # TP: onset .1, offset .3 <= max(.2, .2*2)
    ("f1", 5.1, 6.1, "a"),  # wrong label, boundaries fine -> substitution
    ("f1", 7.5, 8.0, "a"),  # onset off by .5 -> insertion (+ deletion of ref)
    ("f2", 0.6, 2.4, "b"),  # TP
]


def test_event_based_hand_computed():
    r = event_based_metrics(EV_REF, EV_EST, ["a", "b"])
    assert (r["n_ref"], r["n_sys"], r["n_tp"]) == (4, 4, 2)
    assert r["f_measure"] == 0.5
    assert r["substitution_rate"] == pytest.approx(0.25)
    assert r["deletion_rate"] == pytest.approx(0.25)
    assert r["insertion_rate"] == pytest.approx(0.25)
    assert r["error_rate"] == pytest.approx(0.75)
    a, b = r["class_wise"]["a"], r["class_wise"]["b"]
    assert a["precision"] == pytest.approx(1 / 3) and a["recall"] == 0.5
    assert a["f_measure"] == pytest.approx(0.4)
    assert a["error_rate"] == pytest.approx(1.5)
    assert (b["precision"], b["recall"]) == (1.0, 0.5)
    assert b["f_measure"] == pytest.approx(2 / 3)
    assert r["class_wise_average"]["f_measure"] == pytest.approx((0.4 + 2 / 3) / 2)


def test_event_based_collars_and_offset_percentage():
    ref = [("f", 0.0, 10.0, "a")]
    est = [("f", 0.0, 11.5, "a")]
    # offset collar = max(0.2, 0.2 * 10) = 2.0 >= 1.5
    assert event_based_metrics(ref, est, ["a"])["f_measure"] == 1.0
    r = event_based_metrics(ref, est, ["a"], percentage_of_length=0.1)  # collar 1.0
    assert r["f_measure"] == 0.0
    assert (r["deletion_rate"], r["insertion_rate"], r["substitution_rate"]) == (1.0, 1.0, 0.0)
    assert event_based_metrics(ref, est, ["a"], percentage_of_length=0.1, evaluate_offset=False)["f_measure"] == 1.0
    est2 = [("f", 0.5, 10.0, "a")]
    assert event_based_metrics(ref, est2, ["a"], evaluate_onset=False)["f_measure"] == 1.0
    assert event_based_metrics(ref, est2, ["a"], t_collar=0.6)["f_measure"] == 1.0
    assert event_based_metrics(ref, est2, ["a"])["f_measure"] == 0.0


def test_event_based_uses_maximum_matching():
    # e1 matches both references, e2 only r1: greedy in list order would give
    # one hit, the optimal (sed_eval default) matching gives two.
    ref = [("f", 1.0, 2.0, "a"), ("f", 1.3, 2.3, "a")]
    est = [("f", 1.15, 2.15, "a"), ("f", 1.0, 2.0, "a")]
    r = event_based_metrics(ref, est, ["a"])
    assert r["n_tp"] == 2 and r["f_measure"] == 1.0 and r["error_rate"] == 0.0


def test_event_based_errors():
    with pytest.raises(ValueError, match="both be False"):
        event_based_metrics(EV_REF, EV_EST, ["a", "b"], evaluate_onset=False, evaluate_offset=False)
    with pytest.raises(ValueError, match="t_collar"):
        event_based_metrics(EV_REF, EV_EST, ["a", "b"], t_collar=0.0)
    with pytest.raises(ValueError, match="percentage_of_length"):
        event_based_metrics(EV_REF, EV_EST, ["a", "b"], percentage_of_length=1.5)
    with pytest.raises(ValueError, match="tuple"):
        event_based_metrics([("f1", 1.0, "a")], [], ["a"])


def test_event_metrics_accept_dict_events():
    ref = [dict(filename=f, onset=a, offset=b, event_label=l) for f, a, b, l in EV_REF]
    assert event_based_metrics(ref, EV_EST, ["a", "b"]) == event_based_metrics(EV_REF, EV_EST, ["a", "b"])


# ---------------------------------------------------------------------------
# event-list metrics: cross-check against sed_eval itself (optional dependency)
# ---------------------------------------------------------------------------
def _cross_cases():
    cases = [(SEG_REF, SEG_EST), (EV_REF, EV_EST)]
    # hand-made: overlapping events of several classes, collars, three files
    ref = [
        ("s1", 0.0, 1.5, "speech"), ("s1", 1.0, 4.0, "dog"), ("s1", 2.2, 2.9, "speech"),
        ("s1", 6.0, 9.5, "music"), ("s2", 0.3, 0.7, "dog"), ("s2", 0.6, 3.0, "music"),
        ("s3", 5.0, 5.4, "speech"),
    ]
    est = [
        ("s1", 0.1, 1.6, "speech"), ("s1", 1.15, 3.5, "dog"), ("s1", 2.0, 3.4, "speech"),
        ("s1", 6.1, 9.0, "dog"), ("s1", 6.05, 9.4, "music"), ("s2", 0.45, 0.75, "dog"),
        ("s2", 0.5, 3.8, "speech"), ("s3", 5.1, 5.3, "music"), ("s3", 7.0, 7.2, "speech"),
    ]
    cases.append((ref, est))
    # seeded random cases
    rng = random.Random(1234)
    labels = ["a", "b", "c"]
    for _ in range(15):
        ref, est = [], []
        for f in ("r1", "r2", "r3"):
            for _ in range(rng.randint(0, 4)):
                on = round(rng.uniform(0, 8), 2)
                ref.append((f, on, round(on + rng.uniform(0.1, 3), 2), rng.choice(labels)))
        for f, on, off, lab in ref:
            if rng.random() < 0.7:
                e_on = round(max(0.0, on + rng.uniform(-0.3, 0.3)), 2)
                e_off = round(max(e_on, off + rng.uniform(-0.6, 0.6)), 2)
                est.append((f, e_on, e_off, lab if rng.random() < 0.7 else rng.choice(labels)))
        for _ in range(rng.randint(0, 3)):
            on = round(rng.uniform(0, 8), 2)
            est.append((rng.choice(["r1", "r2", "r3"]), on, round(on + rng.uniform(0.1, 2), 2), rng.choice(labels)))
        rng.shuffle(est)
        cases.append((ref, est))
    return cases


def _same(mine, theirs):
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return isinstance(mine, float) and math.isnan(mine)
    return mine == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def _compare(mine, res, classes):
    o = res["overall"]
    for key in ("f_measure", "precision", "recall"):
        assert _same(mine[key], o["f_measure"][key]), key
    if o["f_measure"] and mine["n_ref"] > 0:
        for key in ("error_rate", "substitution_rate", "deletion_rate", "insertion_rate"):
            assert _same(mine[key], o["error_rate"][key]), key
    for c in classes:
        cw = res["class_wise"][c]
        for key in ("f_measure", "precision", "recall"):
            assert _same(mine["class_wise"][c][key], cw["f_measure"][key]), (c, key)
        if cw["count"]["Nref"] > 0:  # sed_eval divides by Nref + eps
            for key in ("error_rate", "deletion_rate", "insertion_rate"):
                assert _same(mine["class_wise"][c][key], cw["error_rate"][key]), (c, key)


@pytest.mark.filterwarnings("ignore")
def test_event_metrics_match_sed_eval():
    sed_eval = pytest.importorskip("sed_eval", exc_type=ImportError)
    dcase_util = pytest.importorskip("dcase_util", exc_type=ImportError)
    MDC = dcase_util.containers.MetaDataContainer

    def container(events, f):
        return MDC([dict(filename=x, onset=a, offset=b, event_label=l) for x, a, b, l in events if x == f])

    for ref, est in _cross_cases():
        classes = sorted({e[3] for e in ref + est})
        files = list(dict.fromkeys(e[0] for e in ref + est))
        for seg_len in (1.0, 0.5):
            sb = sed_eval.sound_event.SegmentBasedMetrics(classes, time_resolution=seg_len)
            for f in files:
                sb.evaluate(container(ref, f), container(est, f))
            _compare(segment_based_metrics(ref, est, classes, segment_length=seg_len), sb.results(), classes)
        for kw in (
            dict(t_collar=0.2, percentage_of_length=0.2),
            dict(t_collar=0.25, percentage_of_length=0.5),
            dict(t_collar=0.2, percentage_of_length=0.2, evaluate_offset=False),
            dict(t_collar=0.3, percentage_of_length=0.2, evaluate_onset=False),
        ):
            eb = sed_eval.sound_event.EventBasedMetrics(classes, **kw)
            for f in files:
                eb.evaluate(container(ref, f), container(est, f))
            _compare(event_based_metrics(ref, est, classes, **kw), eb.results(), classes)
