"""What the command line needs is public library API (issue 12): the CSV list and fold
selection of ``load_weak_dataset``, every localization quantity from ``frame_outputs``, the
clip duration from the extractor, and the feature settings in the model file."""
import copy
import csv
import warnings

import numpy as np
import pytest
import soundfile as sf

from skattloc import AttLocTagger, LogMelExtractor, load_weak_dataset
from skattloc.events import median_filter_frames
from skattloc.persistence import load_tagger, read_model_info

TINY = dict(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=8, max_epochs=1, random_state=0)


@pytest.fixture
def clip_list(tmp_path):
    (tmp_path / "clips").mkdir()
    rows = [("clips/a.wav", "dog,speech", 1), ("clips/b.wav", "", 2), ("clips/c.wav", "cat", 2)]
    for name, _, _ in rows:
        sf.write(tmp_path / name, np.zeros(1600), 16000)
    listing = tmp_path / "list.csv"
    with open(listing, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "tags", "fold", "comment"])  # other columns are ignored
        for r in rows:
            w.writerow([*r, "x"])
    return listing


def test_load_weak_dataset_reads_a_csv_list(clip_list):
    data = load_weak_dataset(clip_list)
    assert data.filenames == ["clips/a.wav", "clips/b.wav", "clips/c.wav"]
    assert data.paths == [str(clip_list.parent / f) for f in data.filenames]
    assert data.tags == [["dog", "speech"], [], ["cat"]] and data.classes == ["cat", "dog", "speech"]
    np.testing.assert_array_equal(data.Y, [[0, 1, 1], [0, 0, 0], [1, 0, 0]])
    assert data.folds.tolist() == [1, 2, 2] and data.strong is None and data.root == str(clip_list.parent.resolve())


def test_fold_selection_keeps_the_columns_of_every_clip(clip_list):
    data = load_weak_dataset(clip_list, folds=[2])
    assert data.filenames == ["clips/b.wav", "clips/c.wav"] and data.folds.tolist() == [2, 2]
    assert data.classes == ["cat", "dog", "speech"]  # found from every listed clip
    np.testing.assert_array_equal(data.Y, [[0, 0, 0], [1, 0, 0]])
    # A given class list is checked against the loaded clips only.
    assert load_weak_dataset(clip_list, folds=[2], classes=["cat"]).Y.tolist() == [[0], [1]]
    with pytest.raises(ValueError, match=r"no clip of .*list\.csv' is in folds \[7\] \(folds present: \[1, 2\]\)"):
        load_weak_dataset(clip_list, folds=[7])


def test_csv_list_errors(tmp_path, clip_list):
    no_fold = tmp_path / "nofold.csv"
    no_fold.write_text("filename,tags\nclips/a.wav,dog\n")  # filename: another name of path
    assert load_weak_dataset(no_fold).filenames == ["clips/a.wav"]
    with pytest.raises(ValueError, match=r"folds=\[1\] needs a fold column in .*nofold\.csv'"):
        load_weak_dataset(no_fold, folds=[1])
    missing = tmp_path / "missing.csv"
    missing.write_text("path,tags\nclips/a.wav,dog\nclips/zz.wav,\n")
    with pytest.raises(FileNotFoundError, match=r"1 of 2 audio files listed in .*missing\.csv' are missing .*'clips/zz\.wav'"):
        load_weak_dataset(missing)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,labels\nclips/a.wav,dog\n")
    with pytest.raises(ValueError, match=r"expected \['path', 'tags'\].*missing \['tags'\]"):
        load_weak_dataset(bad)
    bad.write_text("path,tags,fold\nclips/a.wav,dog,one\n")
    with pytest.raises(ValueError, match="line 2: fold must be an integer, got 'one'"):
        load_weak_dataset(bad)


def test_extractor_knows_the_duration_that_its_frames_cover():
    ext = LogMelExtractor()
    for n_samples in (512, 16000, 64000, 64100):
        n_frames = ext.transform(np.zeros((1, n_samples)))[0].shape[0]
        seconds = ext.clip_duration(n_frames)
        assert seconds <= n_samples / ext.sr < seconds + ext.hop_seconds
    with pytest.raises(ValueError, match="n_frames must be a positive int"):
        ext.clip_duration(0)
    assert median_filter_frames(0.1, ext.hop_seconds) == 7 and median_filter_frames(0.01, ext.hop_seconds) is None


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 7, 6)).astype(np.float32)
    return AttLocTagger(**TINY).fit(X, [["a"], ["b"], ["a", "b"], []] * 3), X


@pytest.mark.parametrize("localization", ["att_frame", "paper", "frame", "loc"])
def test_frame_outputs_give_every_localization(fitted, localization):
    tagger, X = copy.deepcopy(fitted[0]).set_params(localization=localization), fitted[1]
    out = tagger.frame_outputs(X)
    np.testing.assert_allclose(np.stack([o[localization] for o in out]), tagger.localize(X), atol=1e-6)
    np.testing.assert_allclose(np.stack([o["clip"] for o in out]), tagger.predict_proba(X), atol=1e-6)


def test_model_file_records_the_feature_settings(fitted, tmp_path):
    tagger, X = fitted
    ext = LogMelExtractor(sr=8000, n_mels=6, hop_length=128, n_jobs=2)
    path = tagger.save(tmp_path / "m.skattloc", extractor=ext)
    assert not hasattr(tagger, "feature_params_")  # save records them; it leaves the tagger as it is
    loaded = load_tagger(path, AttLocTagger)
    assert loaded.feature_params_ == ext.feature_params() and "n_jobs" not in loaded.feature_params_
    assert LogMelExtractor(**loaded.feature_params_).get_params()["hop_length"] == 128
    np.testing.assert_array_equal(loaded.predict_proba(X), tagger.predict_proba(X))
    assert read_model_info(path)["classes"] == ["a", "b"]
    # A file without them (older files, or saved without extractor) loads as before.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not hasattr(AttLocTagger.load(tagger.save(tmp_path / "plain.skattloc")), "feature_params_")
    with pytest.raises(TypeError, match="extractor must be a LogMelExtractor, got dict"):
        tagger.save(tmp_path / "x.skattloc", extractor={"sr": 16000})


def test_training_callbacks_keep_their_checkpoint_keys():
    """``last.ckpt`` files written before the callbacks moved to skattloc.training still
    resume with their history and best weights (Lightning keys callback states by name)."""
    from skattloc.training import BestWeights, History

    assert (History().state_key, BestWeights().state_key) == ("_History", "_BestWeights")
