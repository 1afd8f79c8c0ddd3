"""AttLocTagger: learning, localization, padding, and scikit-learn citizenship."""
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import soundfile as sf
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GridSearchCV, GroupKFold, PredefinedSplit, cross_val_score
from sklearn.pipeline import make_pipeline

from skattloc import AttLocTagger, LogMelExtractor
from skattloc.metrics import eer_scorer, equal_error_rate

from .conftest import SMALL


def test_model_learns_tags_and_where_events_are(synth, fitted):
    te = synth["test"]
    X, Y, truth = synth["X"][te], synth["Y"][te], synth["truth"][te]
    eer = equal_error_rate(Y, fitted.predict_proba(X))
    assert eer < 0.1, f"macro EER {eer:.3f} after 10 epochs"
    loc = fitted.localize(X)
    assert loc.shape == truth.shape
    assert loc.min() >= 0 and loc.max() <= 1
    for k in range(truth.shape[-1]):
        prior = truth[..., k].mean()
        ap = average_precision_score(truth[..., k].ravel(), loc[..., k].ravel())
        assert ap > max(3 * prior, 0.5), f"class {k}: frame AP {ap:.2f}, prior {prior:.2f}"
    # Higher inside true events than outside them. The paper's frame output O'(t) (eq. 7)
    # is the one that separates them: its z_loc (with the background slot) gives background
    # frames away; O(t) itself is free outside the frames that attention pooling weighs.
    paper = np.stack([o["paper"] for o in fitted.frame_outputs(X)])
    inside = paper[truth == 1].mean()
    outside = paper[truth == 0].mean()
    assert inside > 3 * outside


def test_predict_threshold_and_shapes(synth, fitted):
    X = synth["X"][:5]
    proba = fitted.predict_proba(X)
    assert proba.shape == (5, 3) and proba.dtype == np.float32
    np.testing.assert_array_equal(fitted.predict(X), (proba >= 0.5).astype(int))
    high = clone(fitted).set_params(threshold=0.99)
    high.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    assert high.predict(X).sum() <= fitted.predict(X).sum()
    assert fitted.n_features_in_ == 40
    assert fitted.n_epochs_ == 10 and len(fitted.history_) == 10
    assert fitted.history_[-1]["train_loss"] < fitted.history_[0]["train_loss"]


def test_score_is_negative_eer_like_the_scorer(synth, fitted):
    te = synth["test"]
    X, Y = synth["X"][te], synth["Y"][te]
    s = fitted.score(X, Y)
    assert s == pytest.approx(-equal_error_rate(Y, fitted.predict_proba(X)))
    assert s == pytest.approx(eer_scorer(fitted, X, Y))


def test_padding_never_leaks_through_the_estimator(synth, fitted):
    X = synth["X"]
    clips = [X[0][:60], X[1], X[2][:90]]
    together = fitted.localize(clips)
    assert [c.shape for c in together] == [(60, 3), (124, 3), (90, 3)]
    proba_together = fitted.predict_proba(clips)
    for i, c in enumerate(clips):
        np.testing.assert_allclose(fitted.localize([c])[0], together[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fitted.predict_proba([c])[0], proba_together[i], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "pooling,mode",
    [("att_loc", "att_frame"), ("att_loc", "paper"), ("att_loc", "frame"), ("att_loc", "loc"),
     ("att", "paper"), ("att", "att_frame"), ("mean", "paper"), ("mean", "att_frame")],
)
def test_localize_returns_what_is_documented(synth, pooling, mode):
    X, Y = synth["X"][:40], synth["Y"][:40]
    # the paper's softmax z_loc, without the background slot: it sums to 1 over classes
    tagger = AttLocTagger(**SMALL, pooling=pooling, localization=mode, loc_background=False, max_epochs=1,
                          random_state=0).fit(X, Y)
    loc = tagger.localize(X[:4])
    out = tagger.frame_outputs(X[:4])
    for i in range(4):
        o = out[i]
        expected = {"frame": o["frame"], "loc": o.get("loc")}.get(mode)
        att = o["att"][:, None] if "att" in o else 1
        if mode == "paper":
            expected = o["frame"] * att * (o["loc"] if "loc" in o else 1)
        if mode == "att_frame":
            expected = o["frame"] * att
        np.testing.assert_allclose(loc[i], expected, rtol=1e-5, atol=1e-7)
    if mode == "loc":
        np.testing.assert_allclose(loc.sum(-1), 1.0, rtol=1e-5)


def test_default_localization_is_attention_weighted_frame_output():
    assert AttLocTagger().localization == "att_frame"


def test_localization_loc_needs_att_loc(synth):
    with pytest.raises(ValueError, match="only pooling='att_loc'"):
        AttLocTagger(pooling="mean", localization="loc").fit(synth["X"][:8], synth["Y"][:8])


def test_tag_names_give_sorted_classes_and_round_trip(synth):
    names = np.array(synth["classes"])
    tags = [list(names[row == 1]) for row in synth["Y"][:60]]
    tagger = AttLocTagger(**SMALL, max_epochs=2, random_state=0).fit(synth["X"][:60], tags)
    assert list(tagger.classes_) == sorted(synth["classes"])
    pred = tagger.predict_tags(synth["X"][:5])
    assert len(pred) == 5 and all(set(p) <= set(names) for p in pred)
    assert np.isfinite(tagger.score(synth["X"][:60], tags))
    with pytest.raises(ValueError, match=r"tags \['dog'\] that are not in classes_"):
        tagger.score(synth["X"][:2], [["dog"], []])
    with pytest.raises(ValueError, match="is the string 'tone'"):
        AttLocTagger().fit(synth["X"][:2], ["tone", "chirp"])


def test_same_random_state_same_model_different_state_different_model(synth):
    X, Y = synth["X"][:64], synth["Y"][:64]
    a = AttLocTagger(**SMALL, max_epochs=2, random_state=3).fit(X, Y).predict_proba(X)
    b = AttLocTagger(**SMALL, max_epochs=2, random_state=3).fit(X, Y).predict_proba(X)
    c = AttLocTagger(**SMALL, max_epochs=2, random_state=4).fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_fit_leaves_global_rng_untouched(synth):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AttLocTagger(**SMALL, max_epochs=1, random_state=0).fit(synth["X"][:16], synth["Y"][:16])
    torch.testing.assert_close(torch.rand(3), expected)


def test_validation_split_and_early_stopping_restore_best(synth):
    X, Y = synth["X"][:120], synth["Y"][:120]
    tagger = AttLocTagger(
        **SMALL, max_epochs=30, validation_fraction=0.25, early_stopping=True, patience=2, random_state=0
    ).fit(X, Y)
    keys = set(tagger.history_[0])
    assert {"train_loss", "val_loss", "val_auroc", "val_map"} <= keys
    assert tagger.n_epochs_ <= 30
    assert all(0 <= h["val_auroc"] <= 1 for h in tagger.history_)
    with pytest.raises(ValueError, match="early_stopping=True needs a validation split"):
        AttLocTagger(early_stopping=True, validation_fraction=0.0).fit(X, Y)


def test_warm_start_continues_and_checks_classes(synth):
    X, Y = synth["X"][:40], synth["Y"][:40]
    tagger = AttLocTagger(**SMALL, max_epochs=1, warm_start=True, random_state=0).fit(X, Y)
    first = tagger.predict_proba(X)
    tagger.fit(X, Y)
    assert tagger.n_epochs_ == 2
    assert np.abs(tagger.predict_proba(X) - first).max() > 0
    with pytest.raises(ValueError, match="Y has 2 columns but the model has 3 classes"):
        tagger.fit(X, Y[:, :2])


def test_unfitted_estimator_raises_not_fitted(synth):
    for method in ("predict_proba", "predict", "localize", "frame_outputs"):
        with pytest.raises(NotFittedError):
            getattr(AttLocTagger(), method)(synth["X"][:2])


def test_params_are_flat_and_clone_works():
    tagger = AttLocTagger(rnn_hidden=64, pooling="att")
    params = tagger.get_params()
    assert params["rnn_hidden"] == 64 and params["pooling"] == "att"
    assert {"n_filters", "kernel_size", "rnn_layers", "dense_units", "dropout", "learning_rate",
            "batch_size", "max_epochs", "accelerator", "devices", "precision", "strategy",
            "callbacks", "logger", "trainer_kwargs"} <= set(params)
    other = clone(tagger).set_params(rnn_hidden=16)
    assert other.rnn_hidden == 16 and tagger.rnn_hidden == 64


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_round_trip_gives_identical_predictions_in_a_fresh_process(synth, fitted, tmp_path, how):
    path = tmp_path / f"tagger.{how}"
    X = synth["X"][:10]
    np.save(tmp_path / "X.npy", X)
    if how == "pickle":
        path.write_bytes(pickle.dumps(fitted))
        load = "import pickle; m = pickle.loads(open(p, 'rb').read())"
    else:
        joblib.dump(fitted, path)
        load = "import joblib; m = joblib.load(p)"
    import torch

    # Same intra-op thread count as this process: a matmul's summation order (and so the
    # last bit of float32 results) may depend on it.
    code = textwrap.dedent(f"""
        import numpy as np, torch
        torch.set_num_threads({torch.get_num_threads()})
        p = {str(path)!r}
        {load}
        np.save({str(tmp_path / 'out.npy')!r}, m.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), fitted.predict_proba(X))


def test_pipeline_on_waveforms_and_on_paths(synth, tmp_path):
    audio, Y = synth["audio"][:24], synth["Y"][:24]
    paths = []
    for i, a in enumerate(audio):
        paths.append(str(tmp_path / f"clip{i}.wav"))
        sf.write(paths[-1], a, 16000, subtype="FLOAT")
    make = lambda: make_pipeline(LogMelExtractor(), AttLocTagger(**SMALL, max_epochs=1, random_state=0))
    from_waves = make().fit(audio, Y)
    from_paths = make().fit(paths, Y)
    p1, p2 = from_waves.predict_proba(audio), from_paths.predict_proba(paths)
    assert p1.shape == (24, 3)
    np.testing.assert_allclose(p1, p2, rtol=1e-4, atol=1e-5)
    assert from_paths[-1].localize(LogMelExtractor().transform(paths[:2])).shape == (2, 124, 3)


def test_grid_search_with_eer_scorer_picks_the_better_setting(synth):
    X, Y = synth["X"][:120], synth["Y"][:120]
    search = GridSearchCV(
        AttLocTagger(**{**SMALL, "learning_rate": None}, max_epochs=6, random_state=0),
        {"learning_rate": [1e-7, 3e-3]},
        scoring=eer_scorer,
        cv=2,
        n_jobs=2,
    ).fit(X, Y)
    assert search.best_params_ == {"learning_rate": 3e-3}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] and scores[1] > -0.2 and scores[0] < -0.25
    best = search.best_estimator_
    assert best.score(X, Y) == pytest.approx(-equal_error_rate(Y, best.predict_proba(X)))


def test_grid_search_over_hidden_sizes_just_works(synth):
    search = GridSearchCV(
        AttLocTagger(**{**SMALL, "rnn_hidden": None}, max_epochs=1, random_state=0),
        {"rnn_hidden": [8, 16]}, scoring=eer_scorer, cv=2,
    ).fit(synth["X"][:40], synth["Y"][:40])
    assert search.best_estimator_.model_.gru.hidden_size in (8, 16)
    assert len(search.cv_results_["params"]) == 2


@pytest.mark.parametrize("splitter", ["predefined", "groups"])
def test_cross_val_score_with_predefined_split_and_group_kfold(synth, splitter):
    X, Y = synth["X"][:60], synth["Y"][:60]
    folds = np.repeat([0, 1, 2], 20)
    est = AttLocTagger(**SMALL, max_epochs=1, random_state=0)
    if splitter == "predefined":
        scores = cross_val_score(est, X, Y, cv=PredefinedSplit(folds), scoring=eer_scorer)
    else:
        scores = cross_val_score(est, X, Y, cv=GroupKFold(3), groups=folds, scoring=eer_scorer)
    assert scores.shape == (3,) and np.all((scores <= 0) & (scores >= -1))
