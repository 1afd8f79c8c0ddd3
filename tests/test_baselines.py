"""The DCASE 2016 Task 4 baseline: MFCCs from log-mel frames, per-tag GMMs, LLR scores."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from skattloc import LogMelExtractor, make_weak_events
from skattloc.baselines import GMMTagger, logmel_to_mfcc
from skattloc.metrics import equal_error_rate, frame_average_precision, within_clip_auc

FAST = dict(n_components=4, max_iter=50, random_state=0)


@pytest.fixture(scope="module")
def gmm_fit(synth):
    tr = synth["train"]
    return GMMTagger(**FAST).fit(synth["X"][tr], synth["Y"][tr])


def test_mfcc_equals_librosa_on_the_same_mel_spectrogram():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    mel_power = rng.gamma(1.0, 1.0, size=(40, 30)) + 1e-6  # (n_mels, n_frames), librosa layout
    expected = librosa.feature.mfcc(S=librosa.power_to_db(mel_power, top_db=None), n_mfcc=14)
    got = logmel_to_mfcc(np.log(mel_power).T, n_mfcc=14)  # our frames are time first
    np.testing.assert_allclose(got, expected.T, rtol=1e-5, atol=1e-4)


def test_mfcc_checks_its_arguments():
    with pytest.raises(ValueError, match="n_mfcc must be an int in"):
        logmel_to_mfcc(np.zeros((5, 10)), n_mfcc=11)
    with pytest.raises(ValueError, match="n_mfcc must be an int in"):
        logmel_to_mfcc(np.zeros((5, 10)), n_mfcc=0)


def test_gmm_tags_distinct_synthetic_events(gmm_fit, synth):
    te = synth["test"]
    proba = gmm_fit.predict_proba(synth["X"][te])
    assert proba.shape == (80, 3)
    assert np.all((proba > 0) & (proba < 1))
    eer = equal_error_rate(synth["Y"][te], proba)
    assert eer < 0.2, f"macro EER {eer:.3f}: the baseline should separate tone, chirp and noise bursts"
    # predict_proba is a monotone map of the mean log-likelihood ratio; predict is LLR > 0.
    llr = gmm_fit.decision_function(synth["X"][te])
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-llr)), rtol=1e-6)
    np.testing.assert_array_equal(gmm_fit.predict(synth["X"][te]), (llr > 0).astype(int))
    assert gmm_fit.score(synth["X"][te], synth["Y"][te]) == pytest.approx(-eer)


def test_gmm_frame_scores_localize_above_chance(gmm_fit, synth):
    te = synth["test"]
    frames = gmm_fit.localize(synth["X"][te])
    truth = synth["truth"][te]
    assert frames.shape == truth.shape
    ap = frame_average_precision(truth, frames, average=None)
    prior = truth.reshape(-1, 3).mean(axis=0)
    assert np.all(ap > prior + 0.1), (ap, prior)
    assert within_clip_auc(truth, frames) > 0.6
    llr = gmm_fit.frame_llr(synth["X"][te])
    assert len(llr) == 80 and llr[0].shape == truth.shape[1:]
    np.testing.assert_allclose(gmm_fit.decision_function(synth["X"][te]), np.stack([f.mean(0) for f in llr]))


def test_tag_names_lists_and_universal_background(synth):
    X = synth["X"][:120]
    names = [[synth["classes"][k] for k in np.flatnonzero(row)] for row in synth["Y"][:120]]
    ragged = [x[: 100 + i % 20] for i, x in enumerate(X)]
    gmm = GMMTagger(**FAST, background="universal").fit(ragged, names)
    assert list(gmm.classes_) == sorted(synth["classes"])
    assert gmm.background_models_[0] is gmm.background_models_[-1]
    out = gmm.localize(ragged[:3])
    assert isinstance(out, list) and [o.shape for o in out] == [(100, 3), (101, 3), (102, 3)]


def test_pipeline_on_waveforms():
    audio, Y, _ = make_weak_events(n_clips=30, n_classes=2, duration=1.0, random_state=1)
    pipe = make_pipeline(LogMelExtractor(), GMMTagger(n_components=2, random_state=0)).fit(audio, Y)
    assert pipe.predict_proba(audio).shape == (30, 2)


def test_sklearn_plumbing_and_errors(gmm_fit, synth):
    assert clone(gmm_fit).get_params() == gmm_fit.get_params()
    with pytest.raises(NotFittedError):
        GMMTagger().predict_proba(synth["X"][:2])
    with pytest.raises(ValueError, match="expecting 40 features"):
        gmm_fit.predict_proba(synth["X"][:2, :, :30])
    X, Y = synth["X"][:20], synth["Y"][:20].copy()
    Y[:, 0] = 0
    with pytest.raises(ValueError, match="no training frames for the tag"):
        GMMTagger(**FAST).fit(X, Y)
    with pytest.raises(ValueError, match="requires y"):
        GMMTagger().fit(X, None)
    with pytest.raises(ValueError, match="0/1 indicator"):
        GMMTagger().fit(X, Y * 2 + 1)
    for params, msg in (
        ({"n_components": 0}, "n_components must be a positive int"),
        ({"background": "all"}, "background must be one of"),
        ({"covariance_type": "banded"}, "covariance_type must be one of"),
        ({"max_frames": 0}, "max_frames must be None or a positive int"),
    ):
        with pytest.raises(ValueError, match=msg):
            GMMTagger(**params).fit(X, synth["Y"][:20])


def test_max_frames_subsamples_reproducibly(synth):
    X, Y = synth["X"][:60], synth["Y"][:60]
    a = GMMTagger(**FAST, max_frames=500).fit(X, Y)
    b = GMMTagger(**FAST, max_frames=500).fit(X, Y)
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X))
    full = GMMTagger(**FAST).fit(X, Y)
    assert not np.allclose(a.decision_function(X), full.decision_function(X))
