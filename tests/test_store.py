"""Corpora larger than memory: FeatureStore (features cached on disk) and AudioFeatures."""
import json
import pickle

import numpy as np
import pytest
import soundfile as sf
from sklearn.model_selection import GridSearchCV
from sklearn.utils import _safe_indexing

from skattloc import AttLocTagger, LogMelExtractor
from skattloc import data as _data
from skattloc.metrics import eer_scorer
from skattloc.store import AudioFeatures, FeatureStore

from .conftest import SMALL


def _clips(lengths=(61, 30, 45, 1, 100), n_features=40, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(-5, 3, size=(n, n_features)).astype(np.float32) for n in lengths]


class _CountingStore(FeatureStore):
    """Counts clip reads, to show what reads nothing."""

    reads = 0

    def _read_base(self, j, start, stop):
        type(self).reads += 1
        return super()._read_base(j, start, stop)


# --------------------------------------------------------------------------- the store
@pytest.mark.parametrize("mmap", [False, True])
def test_reads_after_close_reopen_the_file(tmp_path, mmap):
    clips = _clips()
    store = FeatureStore.create(tmp_path / "s", clips)
    if mmap:
        store = FeatureStore(tmp_path / "s", mmap=True)
    np.testing.assert_array_equal(store[1], clips[1])
    store.close()
    np.testing.assert_array_equal(store[1], clips[1])  # "reopened automatically on the next read"
    store.close()
    store.close()  # closing twice is harmless
    np.testing.assert_array_equal(store.read(4, 10, 20), clips[4][10:20])


def test_round_trip_lengths_reads_and_layout(tmp_path):
    clips = _clips()
    store = FeatureStore.create(tmp_path / "s", clips)
    assert len(store) == 5 and store.n_features == 40 and store.shape == (5, None, 40)
    np.testing.assert_array_equal(store.lengths, [61, 30, 45, 1, 100])
    for i, c in enumerate(clips):
        got = store[i]
        assert got.dtype == np.float32 and got.flags.writeable
        np.testing.assert_array_equal(got, c)
    np.testing.assert_array_equal(store[-1], clips[-1])
    np.testing.assert_array_equal(store.read(4, 10, 20), clips[4][10:20])
    np.testing.assert_array_equal(store.read(2, 40, 999), clips[2][40:])
    # An ordinary .npy that numpy memory-maps, and an offsets index.
    frames = np.load(tmp_path / "s" / "frames.npy", mmap_mode="r")
    np.testing.assert_array_equal(frames, np.concatenate(clips))
    np.testing.assert_array_equal(np.load(tmp_path / "s" / "offsets.npy"), np.cumsum([0, 61, 30, 45, 1, 100]))
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["n_clips"] == 5 and meta["n_frames"] == 237 and meta["dtype"] == "float32"
    assert not (tmp_path / "s.partial").exists()
    with pytest.raises(IndexError, match="out of range"):
        store[5]


@pytest.mark.parametrize("key", [slice(1, 4), [4, 0, 2], np.array([3, 1]), np.array([True, False, True, False, True])])
def test_subsets_are_lazy_views(tmp_path, key):
    clips = _clips()
    store = _CountingStore.create(tmp_path / "s", clips)
    _CountingStore.reads = 0
    sub = store[key]
    assert isinstance(sub, FeatureStore) and _CountingStore.reads == 0
    expected = np.arange(5)[key]
    assert len(sub) == len(expected)
    np.testing.assert_array_equal(sub.lengths, [len(clips[i]) for i in expected])
    for j, i in enumerate(expected):
        np.testing.assert_array_equal(sub[j], clips[i])
    subsub = sub[[len(expected) - 1]]
    np.testing.assert_array_equal(subsub[0], clips[expected[-1]])
    # scikit-learn's cross-validation indexes it like an array, without reading it.
    _CountingStore.reads = 0
    assert isinstance(_safe_indexing(store, np.asarray(expected)), FeatureStore)
    assert _CountingStore.reads == 0


@pytest.mark.parametrize("mmap", [False, True])
def test_chunks_stream_every_frame_in_order(tmp_path, mmap):
    clips = _clips()
    store = FeatureStore.create(tmp_path / "s", clips, mmap=mmap)
    chunks = list(store.iter_chunks(max_frames=50))
    assert len(chunks) > 3 and all(len(c) <= 100 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), np.concatenate(clips))
    sub = store[[4, 1]]
    np.testing.assert_array_equal(np.concatenate(list(sub.iter_chunks(max_frames=10))), np.concatenate([clips[4], clips[1]]))
    mean, scale = _data.feature_stats(store)
    ref_mean, ref_scale = _data.feature_stats(clips)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-10)
    np.testing.assert_allclose(scale, ref_scale, rtol=1e-10)


def test_float16_store_halves_the_disk_and_keeps_three_digits(tmp_path):
    clips = _clips()
    s32 = FeatureStore.create(tmp_path / "a", clips)
    s16 = FeatureStore.create(tmp_path / "b", clips, dtype="float16")
    size = lambda s: (s.path / "frames.npy").stat().st_size
    assert size(s16) - 128 == (size(s32) - 128) // 2
    assert s16[0].dtype == np.float32
    np.testing.assert_allclose(s16[0], clips[0], rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="overflows float16"):
        FeatureStore.create(tmp_path / "c", [np.full((2, 3), 1e6)], dtype="float16")


def test_pickles_without_its_data_and_reads_after_unpickling(tmp_path):
    clips = _clips(lengths=(2000, 2000))
    store = FeatureStore.create(tmp_path / "s", clips)
    store[0]  # open the file
    blob = pickle.dumps(store[[1]])
    assert len(blob) < 2000  # a path and the index, not 2000 x 40 floats
    np.testing.assert_array_equal(pickle.loads(blob)[0], clips[1])


@pytest.mark.parametrize(
    "clips,match",
    [
        ([np.zeros((3, 4)), np.zeros((3, 5))], "has 5 features per frame, expected 4"),
        ([np.zeros((3, 4)), np.zeros((0, 4))], "clip 1 has zero frames"),
        ([np.zeros((3, 4)), np.array([[np.nan] * 4])], "clip 1 contains NaN or Inf"),
        ([np.zeros(4)], "must be a 2-D"),
        ([], "0 clips"),
    ],
)
def test_bad_clips_are_refused_and_leave_no_folder(tmp_path, clips, match):
    with pytest.raises(ValueError, match=match):
        FeatureStore.create(tmp_path / "s", iter(clips))
    assert not (tmp_path / "s").exists() and not (tmp_path / "s.partial").exists()


def test_existing_missing_and_foreign_folders(tmp_path):
    FeatureStore.create(tmp_path / "s", _clips())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        FeatureStore.create(tmp_path / "s", _clips())
    assert len(FeatureStore.create(tmp_path / "s", _clips(lengths=(3,)), overwrite=True)) == 1
    with pytest.raises(FileNotFoundError, match="not found"):
        FeatureStore(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="meta.json is missing"):
        FeatureStore(tmp_path / "empty")
    with pytest.raises(ValueError, match="dtype must be one of"):
        FeatureStore.create(tmp_path / "x", _clips(), dtype="int8")


# ----------------------------------------------------------------------- from audio
@pytest.fixture(scope="module")
def wav_paths(tmp_path_factory, synth):
    folder = tmp_path_factory.mktemp("wavs")
    paths = []
    for i, a in enumerate(synth["audio"][:24]):
        paths.append(str(folder / f"clip{i}.wav"))
        sf.write(paths[-1], a, 16000, subtype="FLOAT")
    return paths


def test_from_audio_in_chunks_equals_the_extractor(tmp_path, wav_paths):
    ext = LogMelExtractor(n_mels=32)
    store = FeatureStore.from_audio(tmp_path / "s", wav_paths[:7], ext, chunk_size=3)
    expected = ext.transform(wav_paths[:7])
    assert len(store) == 7 and store.n_features == 32
    for i in range(7):
        np.testing.assert_array_equal(store[i], expected[i])
    assert store.meta["metadata"]["extractor"]["n_mels"] == 32


def test_audio_features_compute_on_the_fly_from_file_headers(tmp_path, wav_paths, synth):
    X = AudioFeatures(wav_paths[:5])
    expected = LogMelExtractor().transform(wav_paths[:5])
    np.testing.assert_array_equal(X.lengths, [124] * 5)  # from the headers, nothing decoded
    np.testing.assert_allclose(X[3], expected[3], rtol=1e-6, atol=1e-6)
    # A frame range decodes only its samples, and gives the same frames.
    np.testing.assert_allclose(X.read(3, 40, 90), expected[3][40:90], rtol=1e-4, atol=1e-4)
    # Another sampling rate: resampled on read, lengths from the header still right.
    path8k = str(tmp_path / "8k.wav")
    sf.write(path8k, synth["audio"][0][::2], 8000, subtype="FLOAT")
    Y = AudioFeatures([path8k])
    assert Y.lengths[0] == len(Y[0])
    assert len(pickle.dumps(X)) < 5000


# ------------------------------------------------------------------------ estimator
def test_validation_reads_no_clip(tmp_path):
    store = _CountingStore.create(tmp_path / "s", _clips())
    _CountingStore.reads = 0
    assert _data.check_clips(store, n_features=40, min_features=30) is store
    assert _CountingStore.reads == 0
    with pytest.raises(ValueError, match="expecting 64 features"):
        _data.check_clips(store, n_features=64)
    with pytest.raises(ValueError, match="fewer than the CNN kernel"):
        _data.check_clips(store, min_features=41)


def test_training_on_a_store_equals_training_in_memory(tmp_path, synth):
    X, Y = synth["X"][:32], synth["Y"][:32]
    store = FeatureStore.create(tmp_path / "s", X)
    params = dict(**SMALL, max_epochs=1, random_state=0)
    a = AttLocTagger(**params).fit(X, Y)
    b = AttLocTagger(**params).fit(store, Y)
    np.testing.assert_allclose(b.predict_proba(store), a.predict_proba(X), rtol=1e-5, atol=1e-6)
    loc = b.localize(store[:3])
    assert isinstance(loc, list) and loc[0].shape == (124, 3)
    np.testing.assert_allclose(np.stack(loc), a.localize(X[:3]), rtol=1e-5, atol=1e-6)
    assert b.score(store, Y) == pytest.approx(a.score(X, Y), abs=1e-6)


def test_training_reads_clips_in_dataloader_workers(tmp_path, synth, wav_paths):
    Y = synth["Y"][:24]
    store = FeatureStore.from_audio(tmp_path / "s", wav_paths)
    est = AttLocTagger(**SMALL, max_epochs=1, num_workers=2, random_state=0).fit(store, Y)
    assert est.n_epochs_ == 1 and np.isfinite(est.history_[0]["train_loss"])
    # On-the-fly features from the paths give the same model as the cached ones.
    otf = AttLocTagger(**SMALL, max_epochs=1, num_workers=2, random_state=0).fit(AudioFeatures(wav_paths), Y)
    np.testing.assert_allclose(otf.predict_proba(store), est.predict_proba(store), rtol=1e-4, atol=1e-5)


def test_grid_search_takes_a_store(tmp_path, synth):
    X, Y = synth["X"][:40], synth["Y"][:40]
    store = FeatureStore.create(tmp_path / "s", X, dtype="float16")
    search = GridSearchCV(
        AttLocTagger(**{**SMALL, "rnn_hidden": None}, max_epochs=1, random_state=0),
        {"rnn_hidden": [8]}, scoring=eer_scorer, cv=2, refit=False,
    ).fit(store, Y)
    assert np.isfinite(search.cv_results_["split0_test_score"]).all()
    assert np.isfinite(search.cv_results_["split1_test_score"]).all()
