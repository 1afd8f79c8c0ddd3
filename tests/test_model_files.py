"""Model files written by a release load with today's code and predict the same (issue 16).

The files in ``tests/fixtures/`` were written by skattloc at commit 9b13d76 (the last
release state) with ``tests/fixtures/make_fixtures.py``; next to each are its inputs and
the outputs that release computed from the loaded file (see ``tests/fixtures/README.md``).
A failure here means that today's skattloc reads or runs a user's existing model file
differently.
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from skattloc import AttLocTagger
from skattloc.persistence import safe_torch_load
from skattloc.timing import FrameTiming

FIXTURES = Path(__file__).parent / "fixtures"
NAMES = ["release_with_extractor", "release_without_extractor"]


def _fixture(name):
    data = np.load(FIXTURES / f"{name}.npz")
    info = json.loads((FIXTURES / f"{name}.json").read_text())
    return FIXTURES / f"{name}.skattloc", data, info


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a release's file loads without a warning
        return AttLocTagger.load(path)


def _as_json(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("name", NAMES)
def test_fixture_files_are_small_and_from_the_release(name):
    path, _, info = _fixture(name)
    for suffix in (".skattloc", ".npz", ".json"):
        assert path.with_suffix(suffix).stat().st_size < 200_000
    assert info["written_by"]["commit"] == "9b13d76"
    assert "frame_timing" not in safe_torch_load(path)  # written before frame timings were stored


@pytest.mark.parametrize("name", NAMES)
def test_a_release_file_predicts_what_the_release_predicted(name):
    path, data, info = _fixture(name)
    tagger = _load(path)
    X = data["X"]
    np.testing.assert_allclose(tagger.predict_proba(X), data["predict_proba"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(tagger.localize(X), data["localize"], rtol=0, atol=1e-6)
    assert np.asarray(tagger.classes_).tolist() == info["classes"]


@pytest.mark.parametrize("name", NAMES)
def test_a_release_file_keeps_its_parameters_and_settings(name):
    path, _, info = _fixture(name)
    tagger = _load(path)
    params = _as_json(tagger.get_params(deep=False))
    assert {k: params[k] for k in info["params"]} == info["params"]
    assert _as_json(tagger.event_settings_) == info["event_settings_"]
    assert _as_json(getattr(tagger, "feature_params_", None)) == info["feature_params_"]


def test_a_release_file_with_an_extractor_has_its_frame_timing():
    path, _, info = _fixture("release_with_extractor")
    tagger = _load(path)
    assert info["feature_params_"]["hop_length"] == 512
    assert tagger.frame_timing_ == FrameTiming(hop_s=0.032, offset_s=0.0)


def test_a_release_file_without_an_extractor_has_no_frame_timing():
    path, _, _ = _fixture("release_without_extractor")
    assert _load(path).frame_timing_ is None


@pytest.mark.parametrize("name", NAMES)
def test_a_release_file_finds_the_events_the_release_found(name):
    path, data, info = _fixture(name)
    tagger = _load(path)
    X = data["X"]
    kwargs = dict(info["detect_events_kwargs"])
    if "hop_s" in kwargs:  # the release took the timing per call; today it is the frame_timing parameter
        assert tagger.frame_timing_ is None
        tagger.set_params(frame_timing=FrameTiming(kwargs.pop("hop_s"), kwargs.pop("offset_s")))
    events = tagger.detect_events(X, filenames=[f"clip{i}.wav" for i in range(len(X))], **kwargs)
    expected = info["detect_events"]
    assert len(events) == len(expected) > 0
    for got, want in zip(events, expected):
        assert (got[0], got[3]) == (want[0], want[3])
        np.testing.assert_allclose(got[1:3], want[1:3], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_a_release_file_saved_again_keeps_everything(name, tmp_path):
    path, data, info = _fixture(name)
    tagger = _load(path)
    again = AttLocTagger.load(tagger.save(tmp_path / "again.skattloc"))
    timing = tagger.frame_timing_
    assert safe_torch_load(tmp_path / "again.skattloc")["frame_timing"] == (None if timing is None else timing.to_dict())
    assert again.frame_timing_ == timing
    np.testing.assert_array_equal(again.predict_proba(data["X"]), tagger.predict_proba(data["X"]))
    assert _as_json(again.event_settings_) == info["event_settings_"]
    assert _as_json(getattr(again, "feature_params_", None)) == info["feature_params_"]
