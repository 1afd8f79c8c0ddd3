"""Safe save/load (issue 5): tensors and plain data only, refused pickles, versions, CPU maps."""
import io
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import joblib
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

import skattloc
from skattloc import AttLocTagger
from skattloc.persistence import FORMAT, FORMAT_VERSION, ModelFileError, read_model_info

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
