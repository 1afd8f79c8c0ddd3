"""Safe save/load (issue 5): tensors and plain data only, refused pickles, versions, CPU maps."""
import io
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

import skattloc
import skattloc.features
from skattloc import AttLocTagger, LogMelExtractor
from skattloc.persistence import FORMAT, FORMAT_VERSION, ModelFileError, read_model_info
from skattloc.timing import FrameTiming

TINY = dict(n_filters=4, kernel_size=3, rnn_hidden=4, rnn_layers=1, dense_units=4, batch_size=8, max_epochs=2, random_state=0)


def _data(n=16, t=10, f=8):
    X = np.random.default_rng(0).normal(size=(n, t, f)).astype(np.float32)
    names = np.array(["dog", "speech"], dtype=object)
    Y = (np.arange(n)[:, None] % np.array([2, 3]) == 0).astype(int)
    return X, Y, [list(names[row == 1]) for row in Y]


@pytest.fixture(scope="module")
def fitted():
    X, _, tags = _data()
    return AttLocTagger(**TINY).fit(X, tags)


class _Payload:
    """Unpickling this object creates ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _blob(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _resave(blob, path):
    torch.save(blob, path)
    return path


# ------------------------------------------------------------------ round trip
def test_round_trip_restores_predictions_classes_and_fitted_attributes(fitted, tmp_path):
    X, _, tags = _data()
    path = fitted.save(tmp_path / "tagger.skattloc")
    assert os.listdir(tmp_path) == ["tagger.skattloc"]  # no temporary file left behind
    loaded = AttLocTagger.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.localize(X), fitted.localize(X))
    assert loaded.classes_.dtype == fitted.classes_.dtype and list(loaded.classes_) == ["dog", "speech"]
    assert loaded.predict_tags(X[:4]) == fitted.predict_tags(X[:4])
    assert loaded.score(X, tags) == fitted.score(X, tags)
    assert loaded.history_ == fitted.history_ and loaded.n_epochs_ == fitted.n_epochs_ == 2
    assert loaded.n_features_in_ == 8
    np.testing.assert_array_equal(loaded.feature_mean_, fitted.feature_mean_)
    assert loaded.feature_mean_.dtype == np.float64
    assert loaded.get_params() == fitted.get_params()
    assert not loaded.model_.training and next(loaded.model_.parameters()).device.type == "cpu"


def test_file_holds_only_tensors_and_plain_data_with_versions(fitted, tmp_path):
    path = fitted.save(tmp_path / "tagger.skattloc")
    blob = _blob(path)  # what weights_only=True accepts: tensors, numbers, str, containers

    def plain(v):
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        return v is None or isinstance(v, (bool, int, float, str, torch.Tensor))

    assert plain(blob)
    assert blob["format"] == FORMAT and blob["format_version"] == FORMAT_VERSION
    assert blob["skattloc_version"] == skattloc.__version__
    assert blob["classes"] == ["dog", "speech"] and blob["estimator"] == "AttLocTagger"
    info = read_model_info(path)
    assert info["classes"] == ["dog", "speech"] and info["n_features"] == 8 and info["n_classes"] == 2
    with zipfile.ZipFile(path) as z:  # a torch zip archive; its pickle names no code
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        assert b"skattloc" not in z.read(pkl).replace(b"skattloc.AttLocTagger", b"").replace(b"skattloc_version", b"")


def test_loads_in_a_fresh_process(fitted, tmp_path):
    X, _, _ = _data()
    path = fitted.save(tmp_path / "tagger.skattloc")
    np.save(tmp_path / "X.npy", X)
    # Same intra-op thread count as this process: a convolution's summation order (and so
    # the last bit of float32 results) may depend on it.
    code = textwrap.dedent(f"""
        import numpy as np, torch
        torch.set_num_threads({torch.get_num_threads()})
        from skattloc import AttLocTagger
        m = AttLocTagger.load({str(path)!r})
        np.save({str(tmp_path / 'p.npy')!r}, m.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))
        np.savez({str(tmp_path / 'w.npz')!r}, **{{k: v.numpy() for k, v in m.model_.state_dict().items()}})
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    # The file restores every weight bit for bit ...
    weights = np.load(tmp_path / "w.npz")
    state = fitted.model_.state_dict()
    assert sorted(weights.files) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(weights[name], value.numpy(), err_msg=name)
    # ... and so gives the same predictions, bit for bit.
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), fitted.predict_proba(X))


def test_indicator_classes_and_subclass_load(tmp_path):
    X, Y, _ = _data()

    class MyTagger(AttLocTagger):
        pass

    tagger = MyTagger(**TINY).fit(X, Y)
    loaded = MyTagger.load(tagger.save(tmp_path / "m.skattloc"))
    assert type(loaded) is MyTagger
    assert loaded.classes_.dtype == tagger.classes_.dtype and list(loaded.classes_) == [0, 1]
    np.testing.assert_array_equal(loaded.predict(X), tagger.predict(X))


def test_objects_in_params_are_left_out_with_a_warning(tmp_path):
    X, Y, _ = _data()
    tagger = AttLocTagger(**{**TINY, "random_state": np.random.RandomState(0)}, callbacks=[Callback()]).fit(X, Y)
    with pytest.warns(UserWarning, match=r"not saved \(not plain data\): callbacks \(list\), random_state \(RandomState\); loading the file gives them their default values"):
        path = tagger.save(tmp_path / "m.skattloc")
    loaded = AttLocTagger.load(path)
    assert loaded.callbacks is None and loaded.random_state is None
    np.testing.assert_array_equal(loaded.predict_proba(X), tagger.predict_proba(X))


# ------------------------------------------------------------------ untrusted files
def test_the_payload_is_live_under_plain_pickle(tmp_path):
    """Control: the payload used below does run code when unpickled normally."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("where", ["top", "params", "state_dict", "fitted"])
def test_crafted_torch_file_with_a_pickled_payload_is_refused_without_running_it(fitted, tmp_path, where):
    path = fitted.save(tmp_path / "tagger.skattloc")
    marker = tmp_path / "pwned"
    blob = _blob(path)
    target = blob if where == "top" else blob[where]
    target["evil"] = _Payload(marker)
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"refused to load .*tagger\.skattloc.*Python objects other than tensors and plain data.*could run code"):
        AttLocTagger.load(path)
    with pytest.raises(ModelFileError, match="refused"):
        read_model_info(path)
    assert not marker.exists()


def test_plain_pickle_and_joblib_files_are_refused_without_running_them(fitted, tmp_path):
    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelFileError, match=r"refused to load .*raw\.pkl.*runs code when loaded"):
        AttLocTagger.load(raw)
    assert not marker.exists()
    jl = tmp_path / "model.joblib"
    joblib.dump(fitted, jl)
    with pytest.raises(ModelFileError, match=r"refused to load .*model\.joblib"):
        AttLocTagger.load(jl)
    truncated = tmp_path / "truncated.skattloc"
    truncated.write_bytes(fitted.save(tmp_path / "ok.skattloc").read_bytes()[:300])
    with pytest.raises(ModelFileError, match=r"cannot read .*truncated\.skattloc.* as a skattloc model file"):
        AttLocTagger.load(truncated)


def test_not_a_model_file(tmp_path, fitted):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(ModelFileError, match=r"refused to load .*junk\.bin.*not a skattloc model file.*expected a file written by AttLocTagger\.save"):
        AttLocTagger.load(junk)
    other = _resave({"state_dict": fitted.model_.state_dict()}, tmp_path / "weights.pt")
    with pytest.raises(ModelFileError, match=r"is not a skattloc model file \(format None, expected 'skattloc\.AttLocTagger'\)"):
        AttLocTagger.load(other)
    with pytest.raises(FileNotFoundError, match=r"model file not found: .*nope\.skattloc"):
        AttLocTagger.load(tmp_path / "nope.skattloc")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        AttLocTagger.load(io.BytesIO())


def test_incompatible_format_version_gives_a_clear_error(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["format_version"], blob["skattloc_version"] = FORMAT_VERSION + 1, "9.0.0"
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=rf"format version {FORMAT_VERSION + 1} \(written by skattloc 9\.0\.0\), but skattloc .* reads format version {FORMAT_VERSION}"):
        AttLocTagger.load(path)


def test_parameters_unknown_to_this_version_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["params"]["future_knob"] = 3
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"parameters \['future_knob'\] that skattloc .* does not have"):
        AttLocTagger.load(path)


def test_inconsistent_or_nan_weights_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["state_dict"].pop("out.bias")
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"the saved weights do not match the saved parameters.*out\.bias"):
        AttLocTagger.load(path)
    blob = _blob(fitted.save(path))
    blob["state_dict"]["out.bias"][0] = float("nan")
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"NaN or Inf weights in \['out\.bias'\]; such a model predicts NaN"):
        AttLocTagger.load(path)


# ------------------------------------------------------------------ GPU-saved files on a CPU
@pytest.fixture
def storages_tagged_as_cuda():
    """While active, torch.save records every tensor's location as ``cuda:0``, exactly as
    for tensors saved from a GPU (the location tag is what torch.load maps)."""
    registry = torch.serialization._package_registry
    entry = (1, lambda storage: "cuda:0", lambda storage, location: None)
    registry.append(entry)
    registry.sort(key=lambda e: e[0])
    try:
        yield
    finally:
        registry.remove(entry)


def test_model_saved_from_gpu_tensors_loads_on_the_cpu(fitted, tmp_path, storages_tagged_as_cuda):
    X, _, _ = _data()
    path = fitted.save(tmp_path / "gpu.skattloc")
    if not torch.cuda.is_available():  # the file really names a CUDA device
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    else:
        assert torch.load(path, weights_only=True)["state_dict"]["out.bias"].is_cuda
    loaded = AttLocTagger.load(path)
    assert all(t.device.type == "cpu" for t in loaded.model_.state_dict().values())
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_gpu_accelerator_setting_predicts_on_a_cpu_only_machine(fitted, tmp_path, monkeypatch):
    X, _, _ = _data()
    gpu_model = AttLocTagger.load(fitted.save(tmp_path / "m.skattloc")).set_params(accelerator="gpu")
    gpu_model.save(tmp_path / "m.skattloc")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = AttLocTagger.load(tmp_path / "m.skattloc")
    assert loaded.accelerator == "gpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trained_on_gpu_loads_in_a_cpu_only_process(tmp_path):
    X, Y, _ = _data()
    tagger = AttLocTagger(**TINY, accelerator="gpu").fit(X, Y)
    tagger.model_.cuda()  # save straight from GPU tensors
    path = tagger.save(tmp_path / "gpu.skattloc")
    tagger.model_.cpu()
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import numpy as np, torch
        from skattloc import AttLocTagger
        assert not torch.cuda.is_available()
        m = AttLocTagger.load({str(path)!r})
        np.save({str(tmp_path / 'p.npy')!r}, m.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), tagger.predict_proba(X), atol=1e-5)


# ------------------------------------------------------------------ frame timing (issue 16)
def _resaved_with(fitted, path, **attrs):
    """A copy of ``fitted`` (through a file) with fitted attributes set, saved to ``path``."""
    tagger = AttLocTagger.load(fitted.save(path))
    for name, value in attrs.items():
        setattr(tagger, name, value)
    return tagger


def test_frame_timing_is_stored_and_restored(fitted, tmp_path):
    tagger = _resaved_with(fitted, tmp_path / "a.skattloc", frame_timing_=FrameTiming(0.01, 0.005))
    path = tagger.save(tmp_path / "m.skattloc")
    assert _blob(path)["frame_timing"] == {"hop_s": 0.01, "offset_s": 0.005}
    loaded = AttLocTagger.load(path)
    assert loaded.frame_timing_ == FrameTiming(0.01, 0.005)
    # the same timing from an extractor is not a contradiction
    tagger.frame_timing_ = FrameTiming(0.032, 0.0)
    loaded = AttLocTagger.load(tagger.save(path, extractor=LogMelExtractor(hop_length=512, n_mels=8)))
    assert loaded.frame_timing_ == FrameTiming(0.032, 0.0) and loaded.feature_params_["hop_length"] == 512


def test_no_frame_timing_is_stored_as_none_or_taken_from_the_extractor(fitted, tmp_path):
    tagger = _resaved_with(fitted, tmp_path / "a.skattloc", frame_timing_=None)
    path = tagger.save(tmp_path / "m.skattloc")
    assert _blob(path)["frame_timing"] is None
    assert AttLocTagger.load(path).frame_timing_ is None
    # fitted on plain arrays, saved with the extractor of its features: the extractor's timing
    path = tagger.save(tmp_path / "m.skattloc", extractor=LogMelExtractor(hop_length=512, n_mels=8))
    assert _blob(path)["frame_timing"] == {"hop_s": 0.032, "offset_s": 0.0}
    assert AttLocTagger.load(path).frame_timing_ == FrameTiming(0.032, 0.0)


def test_an_extractor_with_another_timing_than_the_fit_is_refused_at_save(fitted, tmp_path):
    tagger = _resaved_with(fitted, tmp_path / "a.skattloc", frame_timing_=FrameTiming(0.016, 0.008))
    with pytest.raises(ValueError, match=r"the extractor's frame timing \(hop 32 ms, frame 0 from 0 ms\) differs from the tagger's frame_timing_ \(hop 16 ms, frame 0 from 8 ms\).*expected the extractor that computed the training features"):
        tagger.save(tmp_path / "m.skattloc", extractor=LogMelExtractor(hop_length=512, n_mels=8))
    assert not (tmp_path / "m.skattloc").exists()


def test_a_file_from_before_frame_timings_gets_that_of_its_feature_params(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc", extractor=LogMelExtractor(hop_length=160, n_fft=400, n_mels=8))
    blob = _blob(path)
    del blob["frame_timing"]  # as written by skattloc 0.1
    _resave(blob, path)
    assert AttLocTagger.load(path).frame_timing_ == FrameTiming(0.01, 0.0075)
    del blob["fitted"]["feature_params_"]  # ... without an extractor: unknown
    _resave(blob, path)
    assert AttLocTagger.load(path).frame_timing_ is None


@pytest.mark.parametrize(
    "record, message",
    [
        ({"hop_s": 0.0, "offset_s": 0.0}, r"hop_s must be > 0 seconds"),
        ({"hop_s": -0.01, "offset_s": 0.0}, r"hop_s must be > 0 seconds"),
        ({"hop_s": 0.01, "offset_s": -1.0}, r"offset_s must be >= 0 seconds"),
        ({"hop_s": "fast"}, r"hop_s must be a number of seconds"),
        ({"hop_s": 0.01, "offset_s": 0.0, "hop_length": 256}, r"has the keys hop_s and offset_s"),
        ([0.01, 0.0], r"must be a dict with hop_s and offset_s"),
    ],
    ids=["zero-hop", "negative-hop", "negative-offset", "string-hop", "extra-key", "list"],
)
def test_an_invalid_frame_timing_record_is_refused(fitted, tmp_path, record, message):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["frame_timing"] = record
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=rf"m\.skattloc': the frame timing record is invalid: .*{message}.*expected None or \{{'hop_s': seconds > 0, 'offset_s': seconds >= 0\}}"):
        AttLocTagger.load(path)


def test_a_frame_timing_record_that_contradicts_the_feature_params_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc", extractor=LogMelExtractor(n_mels=8))
    blob = _blob(path)
    blob["frame_timing"] = {"hop_s": 0.032, "offset_s": 0.0}
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"the frame timing record \(hop 32 ms, frame 0 from 0 ms\) differs from that of its feature_params_ \(hop 16 ms, frame 0 from 8 ms\)"):
        AttLocTagger.load(path)


# ------------------------------------------------------------------ damaged files (issue 17, item 3)
def _member_data_offset(path, member):
    """Where the data of zip member ``member`` starts in the file (after its local header)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    assert header[:4] == b"PK\x03\x04"
    name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def _flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x10]))


def test_a_flipped_byte_in_a_stored_tensor_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    with zipfile.ZipFile(path) as archive:
        tensors = [i for i in archive.infolist() if "/data/" in i.filename and not i.filename.endswith(".pkl")]
    member = max(tensors, key=lambda i: i.file_size).filename  # the largest tensor's data record
    start, size = _member_data_offset(path, member)
    _flip_byte(path, start + size // 2)
    # torch reads the damaged file without a word, with a changed weight ...
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(v, fitted.model_.state_dict()[k]) for k, v in state.items())
    # ... the archive's CRC-32 does not let it through
    message = rf"cannot read .*m\.skattloc' as a skattloc model file: it is damaged: member '{member}' \(the data of a stored tensor\) fails its CRC-32 check .*copy it again from its source"
    with pytest.raises(ModelFileError, match=message):
        AttLocTagger.load(path)
    with pytest.raises(ModelFileError, match=message):
        read_model_info(path)


def test_a_flipped_byte_in_the_stored_values_record_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    with zipfile.ZipFile(path) as archive:
        member = next(i.filename for i in archive.infolist() if i.filename.endswith("data.pkl"))
    start, size = _member_data_offset(path, member)
    # a byte of a class name: the pickle stays readable, the tag name changes
    with open(path, "rb") as f:
        f.seek(start)
        record = f.read(size)
    _flip_byte(path, start + record.index(b"speech") + 2)
    with pytest.raises(ModelFileError, match=rf"damaged: member '{member}' \(the record of the stored values\) fails its CRC-32 check"):
        AttLocTagger.load(path)


@pytest.mark.parametrize("keep", [0.5, 0.99, -1, -10])
def test_a_truncated_model_file_is_refused(fitted, tmp_path, keep):
    data = fitted.save(tmp_path / "ok.skattloc").read_bytes()
    n = int(len(data) * keep) if keep > 0 else len(data) + keep
    path = tmp_path / "cut.skattloc"
    path.write_bytes(data[:n])
    with pytest.raises(ModelFileError, match=rf"cannot read .*cut\.skattloc' as a skattloc model file: it is damaged: the directory at the end of its zip archive is missing or unreadable: the file is truncated or corrupted \({n} bytes;"):
        AttLocTagger.load(path)


# ------------------------------------------------------------------ contents checked at load (issue 17, items 8, 11)
@pytest.fixture
def saved_with_extractor(fitted, tmp_path):
    return fitted.save(tmp_path / "m.skattloc", extractor=LogMelExtractor(n_mels=8))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sr": 0}, r"sr must be a positive int, got 0"),
        ({"hop_length": 0}, r"hop_length must be a positive int, got 0"),
        ({"n_fft": -512}, r"n_fft must be a positive int, got -512"),
        ({"fmin": 9000.0}, r"fmin must be in \[0, sr/2 = 8000.0\) Hz, got 9000.0"),
        ({"log_offset": 0.0}, r"log_offset must be a positive float, got 0.0"),
    ],
    ids=["sr-0", "hop-0", "negative-n_fft", "fmin-above-nyquist", "log-offset-0"],
)
def test_invalid_feature_params_are_refused(saved_with_extractor, change, message):
    path = saved_with_extractor
    blob = _blob(path)
    blob["fitted"]["feature_params_"]["value"].update(change)
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=rf"m\.skattloc': feature_params_ are not valid LogMelExtractor settings: {message}; expected the settings of the extractor"):
        AttLocTagger.load(path)


def test_unknown_feature_params_are_refused_naming_them(saved_with_extractor):
    path = saved_with_extractor
    blob = _blob(path)
    blob["fitted"]["feature_params_"]["value"]["hop"] = 256
    blob["fitted"]["feature_params_"]["value"]["n_jobs"] = 4
    _resave(blob, path)
    expected = re.escape(str(list(skattloc.features.FEATURE_PARAMS)))
    with pytest.raises(ModelFileError, match=rf"feature_params_ has keys \['hop', 'n_jobs'\] that are not LogMelExtractor feature settings; expected only {expected}"):
        AttLocTagger.load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"threshold": 7}, r"threshold must be a number in \[0\.0, 1\.0\]"),
        ({"dropout": 1.5}, r"dropout must be a number in \[0\.0, 1\.0\)"),
        ({"localization": "everywhere"}, r"localization must be one of"),
    ],
    ids=["threshold-7", "dropout-1.5", "unknown-localization"],
)
def test_parameters_out_of_range_are_refused(fitted, tmp_path, change, message):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["params"].update(change)
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=rf"m\.skattloc': the saved parameters are invalid: {message}.*; expected parameters that skattloc .* accepts"):
        AttLocTagger.load(path)


def test_duplicate_classes_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    assert blob["fitted"]["classes_"]["kind"] == "ndarray_list"
    blob["classes"] = blob["fitted"]["classes_"]["data"] = ["dog", "dog"]
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"m\.skattloc': classes_ names \['dog'\] more than once \(\['dog', 'dog'\]\); expected distinct classes"):
        AttLocTagger.load(path)


def test_classes_that_differ_from_classes_attribute_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["classes"] = ["speech", "dog"]
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"'classes' \['speech', 'dog'\] differs from classes_ \['dog', 'speech'\]; expected the same tag names in the same order"):
        AttLocTagger.load(path)


def test_event_settings_for_other_classes_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    settings = blob["fitted"]["event_settings_"]["value"]
    assert settings["classes"] == ["dog", "speech"]
    settings["classes"] = ["cat", "speech"]
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"m\.skattloc': event_settings_ are for the classes \['cat', 'speech'\], but the model's classes are \['dog', 'speech'\]; expected event settings for the model's classes"):
        AttLocTagger.load(path)
    settings["classes"] = ["speech", "dog"]  # the same classes in another order
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"event_settings_ are for the classes \['speech', 'dog'\]"):
        AttLocTagger.load(path)


def test_invalid_event_settings_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["fitted"]["event_settings_"]["value"]["threshold"] = [7.0, 0.5]
    _resave(blob, path)
    with pytest.raises(ModelFileError, match=r"m\.skattloc': event_settings_ are invalid: .*threshold.*; expected the settings of EventPostprocessor\.to_dict"):
        AttLocTagger.load(path)


@pytest.mark.parametrize("version", ["1", 1.0, None, True])
def test_a_format_version_that_is_not_an_int_says_so(fitted, tmp_path, version):
    path = fitted.save(tmp_path / "m.skattloc")
    blob = _blob(path)
    blob["format_version"] = version
    _resave(blob, path)
    found = f"{type(version).__name__} {version!r}"
    with pytest.raises(ModelFileError, match=rf"m\.skattloc': the model file format version must be an int \(skattloc .* reads format version 1\), but the file has {re.escape(found)}"):
        AttLocTagger.load(path)


def test_a_frame_timing_parameter_object_is_saved_as_its_record(fitted, tmp_path):
    tagger = _resaved_with(fitted, tmp_path / "a.skattloc", frame_timing_=None)
    for given in (FrameTiming(0.02, 0.0), LogMelExtractor(hop_length=320, n_fft=320)):
        tagger.set_params(frame_timing=given)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # not left out as "not plain data"
            path = tagger.save(tmp_path / "m.skattloc")
        loaded = AttLocTagger.load(path)
        assert loaded.frame_timing == {"hop_s": 0.02, "offset_s": 0.0} and loaded.frame_timing_ is None


def test_ctrl_c_inside_torchs_zip_writer_stays_a_keyboard_interrupt(tmp_path, monkeypatch):
    """torch.save interrupted mid-write raises its writer's RuntimeError on exit, with the
    KeyboardInterrupt as context (seen in CI): atomic_torch_save turns it back into a
    KeyboardInterrupt and leaves the previous file, and no temporary file, in place."""
    import torch

    from skattloc.persistence import atomic_torch_save, safe_torch_load

    path = tmp_path / "ckpt.pt"
    atomic_torch_save({"epoch": 1}, path)

    def interrupted_save(obj, f):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"epoch": 2}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    monkeypatch.undo()
    assert safe_torch_load(path)["epoch"] == 1

    def broken_save(obj, f):  # any other failure stays what it is
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_torch_save({"epoch": 3}, path)
