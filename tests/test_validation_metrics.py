"""The validation metrics of AttLocModule: macro over the classes the split can score."""
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from skattloc import AttLocTagger
from skattloc.metrics import equal_error_rate
from skattloc.module import MacroAP, MacroAUROC, MacroEER

from .conftest import SMALL


def _data(rng, n=40, k=4):
    t = (rng.random((n, k)) < 0.4).astype(np.float32)
    t[:, 2] = 0.0  # class 2: no positive clip in this validation set
    t[:, 3] = 1.0  # class 3: no negative clip
    s = np.clip(t * 0.3 + rng.random((n, k)) * 0.7, 0, 1).astype(np.float32)
    return s, t


@pytest.mark.parametrize("metric, fn", [(MacroAUROC, roc_auc_score), (MacroAP, average_precision_score),
                                        (MacroEER, lambda y, s: equal_error_rate(y, s))])
def test_classes_a_split_cannot_score_are_left_out_without_warnings(metric, fn):
    s, t = _data(np.random.default_rng(0))
    m = metric()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchmetrics' AUROC warned (and scored such a class 0) every epoch
        m.update(torch.from_numpy(s[:25]), torch.from_numpy(t[:25]))
        m.update(torch.from_numpy(s[25:]), torch.from_numpy(t[25:]))  # batches are concatenated
        value = float(m.compute())
    expected = np.mean([fn(t[:, k], s[:, k]) for k in (0, 1)])
    assert value == pytest.approx(expected, abs=1e-6)


def test_no_scorable_class_gives_the_worst_value_and_nonfinite_scores_nan():
    t = torch.ones(6, 2)
    for metric, worst in ((MacroAUROC, 0.0), (MacroAP, 0.0), (MacroEER, 1.0)):
        m = metric()
        m.update(torch.rand(6, 2), t)
        assert float(m.compute()) == worst
        m = metric()
        m.update(torch.tensor([[float("nan"), 0.5]] * 6), torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 3))
        assert np.isnan(float(m.compute()))


def test_a_fit_whose_validation_split_lacks_a_tag_logs_finite_metrics_without_warnings():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 16, 8)).astype(np.float32)
    Y = np.zeros((40, 3), dtype=int)
    Y[:, 0] = np.arange(40) % 2
    Y[:, 1] = (np.arange(40) % 3 == 0)
    Y[:2, 2] = 1  # a rare tag: at most 2 clips, often none in the validation split
    X_val, Y_val = X[30:], Y[30:].copy()
    Y_val[:, 2] = 0
    est = AttLocTagger(**dict(SMALL, max_epochs=2), random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*No positive samples.*")
        est.fit(X[:30], Y[:30], X_val=X_val, y_val=Y_val)
    h = est.history_[-1]
    assert 0.0 <= h["val_auroc"] <= 1.0 and 0.0 <= h["val_map"] <= 1.0 and 0.0 <= h["val_eer"] <= 1.0
