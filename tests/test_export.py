"""Exported networks (TorchScript, ONNX) give the PyTorch model's outputs."""
import json
import zipfile

import numpy as np
import pytest
import torch

from skattloc import AttLocTagger
from skattloc.export import output_names, to_onnx, to_torchscript
from skattloc.model import CGRNN

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

TINY = dict(n_filters=8, kernel_size=5, rnn_hidden=6, rnn_layers=2, dense_units=8, max_epochs=1,
            batch_size=8, random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(16, 12, 10)).astype(np.float32)  # raw, unstandardized
    Y = np.eye(3, dtype=int)[np.arange(16) % 3]
    Y[::4, 0] = 1
    return X, Y


@pytest.fixture(scope="module", params=["att_loc", "att", "mean"])
def tagger(request, data):
    X, Y = data
    tags = [[("dog", "cat", "bird")[k] for k in np.flatnonzero(row)] for row in Y]
    return AttLocTagger(pooling=request.param, **TINY).fit(X, tags)


def reference(model, x):
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
    values = {"clip": out.clip, "frame": out.frame, "weighted": out.weighted_frame(), "att": out.att, "loc": out.loc}
    return {k: v.numpy() for k, v in values.items() if v is not None}


def inputs():
    rng = np.random.default_rng(1)
    # Other batch sizes and frame counts than the export example, a single frame included.
    return [rng.normal(3.0, 2.0, size=s).astype(np.float32) for s in [(3, 12, 10), (1, 1, 10), (5, 57, 10)]]


def test_output_names_follow_the_pooling(tagger):
    names = output_names(tagger)
    assert names[:3] == ["clip", "frame", "weighted"]
    assert ("att" in names) == (tagger.pooling != "mean")
    assert ("loc" in names) == (tagger.pooling == "att_loc")


def test_torchscript_matches_pytorch(tagger, tmp_path):
    path = to_torchscript(tagger, tmp_path / "t.pt")
    assert tagger.to_torchscript(tmp_path / "t2.pt").is_file()
    loaded = torch.jit.load(str(path))
    names = output_names(tagger)
    for x in inputs():
        ref = reference(tagger.model_, x)
        with torch.no_grad():
            got = loaded(torch.from_numpy(x))
        assert len(got) == len(names)
        for name, value in zip(names, got):
            np.testing.assert_allclose(value.numpy(), ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # Clip output = the estimator's predict_proba on clips no longer than the training
    # clips (longer ones the estimator runs in windows, see window_frames).
    x = inputs()[0]
    with torch.no_grad():
        clip = loaded(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(clip, tagger.predict_proba(x), rtol=1e-5, atol=1e-6)
    extra = {"skattloc.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra["skattloc.json"])
    assert meta["skattloc.classes"] == ["bird", "cat", "dog"]
    assert meta["skattloc.outputs"] == names and meta["skattloc.pooling"] == tagger.pooling


def test_export_leaves_the_estimator_untouched(tagger, data, tmp_path):
    X, _ = data
    before = tagger.predict_proba(X)
    was_training = tagger.model_.training
    to_torchscript(tagger, tmp_path / "t.pt")
    assert tagger.model_.training == was_training
    np.testing.assert_array_equal(tagger.predict_proba(X), before)


def test_export_errors(tmp_path):
    with pytest.raises(Exception, match="not fitted"):
        to_torchscript(AttLocTagger(), tmp_path / "t.pt")
    with pytest.raises(TypeError, match="AttLocTagger or a skattloc.model.CGRNN"):
        to_torchscript(object(), tmp_path / "t.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_torchscript(CGRNN(n_mels=10, n_classes=2, kernel_size=5), tmp_path / "no" / "t.pt")


def check_onnx(ort, onnx, path, tagger):
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["skattloc.classes"] == [0, 1, 2] and meta["skattloc.outputs"] == output_names(tagger)
    for out in model.graph.output[1:]:
        assert out.type.tensor_type.shape.dim[1].dim_param == "frames"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == output_names(tagger)
    for x in inputs():
        ref = reference(tagger.model_, x)
        got = session.run(None, {"logmel": x})
        for name, value in zip(output_names(tagger), got):
            np.testing.assert_allclose(value, ref[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_onnx_matches_pytorch(data, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    X, Y = data
    tagger = AttLocTagger(**TINY).fit(X, Y)
    path = tagger.to_onnx(tmp_path / "t.onnx", verify=False)  # checked here, not by to_onnx
    check_onnx(ort, onnx, path, tagger)


@pytest.mark.slow
def test_onnx_second_export_keeps_the_frame_axis_dynamic(data, tmp_path):
    # In one process, torch.onnx's second export of a GRU network baked the example's
    # frame count into the graph; to_onnx exports in a child process, and verifies.
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    X, Y = data
    tagger = AttLocTagger(pooling="att", **TINY).fit(X, Y)
    to_onnx(tagger, tmp_path / "first.onnx")
    path = to_onnx(tagger, tmp_path / "second.onnx", verify=True)
    check_onnx(ort, onnx, path, tagger)


@pytest.mark.parametrize("conv_pool", ["avg", "max"])
def test_a_desed_style_network_exports_and_matches(data, tmp_path, conv_pool):
    """GLU, average (or -inf padded max) pooling, the loc pooling and no dense layer, exported."""
    X, Y = data
    kw = dict(TINY, frontend="conv2d", conv_blocks=3, conv_channels=(4, 4, 8), conv_activation="glu",
              conv_pool=conv_pool, conv_dropout=0.5, time_pool=2, pooling="loc", dense_units=0,
              loc_background=False)
    tagger = AttLocTagger(**kw).fit(X, Y)
    names = output_names(tagger)
    assert "loc" in names and "att" not in names
    loaded = torch.jit.load(str(to_torchscript(tagger, tmp_path / "t.pt")))
    for x in inputs():
        ref = reference(tagger.model_, x)
        with torch.no_grad():
            got = loaded(torch.from_numpy(x))
        for name, value in zip(names, got):
            np.testing.assert_allclose(value.numpy(), ref[name], rtol=1e-4, atol=1e-5, err_msg=name)
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    check_onnx(ort, onnx, tagger.to_onnx(tmp_path / "t.onnx", verify=False), tagger)
