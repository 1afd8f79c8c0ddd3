"""Export a fitted tagger's network for deployment: ONNX and TorchScript.

Both formats hold the network alone, with the feature standardization learned in ``fit``
inside it (the ``input_mean``/``input_scale`` buffers), so they take **raw log-mel frames**
as :class:`~skattloc.LogMelExtractor` computes them:

- input ``logmel``: float32, shape ``(batch, n_frames, n_mels)``; the batch and frame axes
  are dynamic (any batch size, any number of frames >= 1). Every frame is valid: run clips
  of different lengths one at a time (batch 1) or in batches of equal length.
- outputs, in this order (:func:`output_names` lists them for a given model):

  ``clip`` (batch, n_classes)
      Clip-level tag probabilities, as :meth:`AttLocTagger.predict_proba`.
  ``frame`` (batch, n_frames, n_classes)
      ``O(t)``, the per-frame sigmoid output.
  ``weighted`` (batch, n_frames, n_classes)
      The paper's frame output that the pooling averages into ``clip``: ``z_att O z_loc``
      (eq. 7) for ``"att_loc"``, ``z_att O`` (eq. 5) for ``"att"``, ``O`` for ``"mean"``.
  ``att`` (batch, n_frames)
      ``z_att(t)`` of eq. (3); ``"att"`` and ``"att_loc"`` pooling only.
  ``loc`` (batch, n_frames, n_classes)
      ``z_loc(t)`` of eq. (6); ``"att_loc"`` pooling only.

The tag names, the pooling, the output names and the feature settings (when known) are
stored with the file: as ONNX ``metadata_props`` (keys ``skattloc.*``, JSON values) and as
the TorchScript extra file ``skattloc.json``.

ONNX export uses ``torch.onnx.export(dynamo=True)``, which needs the ``onnx`` and
``onnxscript`` packages (``pip install "skattloc[export]"``); running the file needs an ONNX
runtime such as ``onnxruntime``. TorchScript needs nothing beyond torch, but PyTorch has
deprecated it in favour of ``torch.export``; prefer ONNX for new deployments.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ._version import __version__

__all__ = ["output_names", "to_onnx", "to_torchscript"]

_INPUT_NAME = "logmel"
# Example input length used for tracing: short (fast export) and unlikely to equal any
# other axis of the network, so the frame axis is told apart from the class axis.
_EXAMPLE_FRAMES = 7


def _network(estimator):
    """The CGRNN of a fitted tagger, or the CGRNN itself."""
    from .model import CGRNN

    if isinstance(estimator, CGRNN):
        return estimator
    model = getattr(estimator, "model_", None)
    if model is None:
        from sklearn.exceptions import NotFittedError

        if hasattr(estimator, "fit"):
            raise NotFittedError(
                f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' before exporting it."
            )
        raise TypeError(f"expected a fitted AttLocTagger or a skattloc.model.CGRNN, got {type(estimator).__name__}")
    return model


def output_names(estimator):
    """Names of the exported outputs, in order.

    Parameters
    ----------
    estimator : AttLocTagger (fitted) or skattloc.model.CGRNN

    Returns
    -------
    list of str
        ``["clip", "frame", "weighted"]``, then ``"att"`` (``"att"``/``"att_loc"``
        pooling) and ``"loc"`` (``"att_loc"`` pooling).

    Examples
    --------
    >>> from skattloc.export import output_names
    >>> from skattloc.model import CGRNN
    >>> output_names(CGRNN(n_mels=40, n_classes=3, pooling="att"))
    ['clip', 'frame', 'weighted', 'att']
    """
    model = _network(estimator)
    names = ["clip", "frame", "weighted"]
    if model.att is not None:
        names.append("att")
    if model.loc is not None:
        names.append("loc")
    return names


class _Exported(nn.Module):
    """The network with a tensor-tuple output (export formats need plain tensors)."""

    def __init__(self, model, names):
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, logmel):
        out = self.model(logmel)
        values = {"clip": out.clip, "frame": out.frame, "weighted": out.weighted_frame(), "att": out.att, "loc": out.loc}
        return tuple(values[n] for n in self.names)


def _metadata(estimator, model, names):
    classes = getattr(estimator, "classes_", None)
    classes = list(range(model.n_classes)) if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]
    meta = {
        "skattloc.version": __version__,
        "skattloc.classes": classes,
        "skattloc.pooling": model.pooling,
        "skattloc.n_mels": int(model.n_mels),
        "skattloc.input": _INPUT_NAME,
        "skattloc.outputs": names,
    }
    for attr in ("threshold", "localization"):
        if hasattr(estimator, attr) and not isinstance(estimator, nn.Module):
            meta[f"skattloc.{attr}"] = getattr(estimator, attr)
    feature_params = getattr(estimator, "feature_params_", None)
    if isinstance(feature_params, dict):
        meta["skattloc.features"] = feature_params
    return meta


def _prepare(estimator):
    model = _network(estimator)
    names = output_names(model)
    # A copy on the CPU in eval mode: the estimator's own network is left as it was.
    import copy

    net = copy.deepcopy(model).cpu().eval()
    # The CPU fast paths (skattloc._fastpath: custom autograd functions, the same function
    # as the plain layers) cannot be traced; export the plain layers, with the same weights.
    if hasattr(net, "cpu_fast_path"):
        net.cpu_fast_path = False
    example = torch.zeros(2, _EXAMPLE_FRAMES, model.n_mels)
    return _Exported(net, names).eval(), example, names, _metadata(estimator, model, names)


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write the exported model to {str(path)!r}: it is a folder")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write the exported model to {str(path)!r}: folder {str(path.parent)!r} does not exist")
    return path


def to_torchscript(estimator, path):
    """Save the network as TorchScript (``torch.jit.load`` runs it, also from C++).

    Parameters
    ----------
    estimator : AttLocTagger (fitted) or skattloc.model.CGRNN
    path : str or os.PathLike
        Destination file, e.g. ``"tagger.pt"``.

    Returns
    -------
    pathlib.Path
        The path written. ``torch.jit.load(path)(logmel)`` returns the tuple of tensors
        named by :func:`output_names`, from raw log-mel frames of shape
        ``(batch, n_frames, n_mels)`` (see the module documentation). The extra file
        ``skattloc.json`` holds the tag names and settings.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from skattloc.export import to_torchscript
    >>> from skattloc.model import CGRNN
    >>> net = CGRNN(n_mels=40, n_classes=3, rnn_hidden=8, rnn_layers=1, dense_units=8)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = to_torchscript(net, os.path.join(d, "tagger.pt"))
    ...     scripted = torch.jit.load(path)
    >>> clip, frame, weighted, att, loc = scripted(torch.randn(4, 100, 40))
    >>> tuple(clip.shape), tuple(frame.shape), tuple(att.shape)
    ((4, 3), (4, 100, 3), (4, 100))
    """
    path = _check_path(path)
    wrapper, example, names, meta = _prepare(estimator)
    with torch.no_grad(), warnings.catch_warnings():
        # The GRU's own shape checks are traced as constants: harmless, the shapes they
        # check do not depend on the batch or frame count.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated.*", category=DeprecationWarning)
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        torch.jit.save(traced, os.fspath(path), _extra_files={"skattloc.json": json.dumps(meta, default=str)})
    return path


def to_onnx(estimator, path, opset_version=None, verify="auto"):
    """Save the network as ONNX, for onnxruntime and other ONNX runtimes.

    Needs the ``onnx`` and ``onnxscript`` packages (``pip install "skattloc[export]"``).
    The export runs ``torch.onnx.export(dynamo=True)`` in a fresh Python process: with
    torch 2.13, a second export of a GRU network in the same process can record the
    example's frame count as a constant, which breaks other lengths. It takes from a few
    seconds to a minute on a CPU.

    Parameters
    ----------
    estimator : AttLocTagger (fitted) or skattloc.model.CGRNN
    path : str or os.PathLike
        Destination file, e.g. ``"tagger.onnx"``.
    opset_version : int, optional
        ONNX opset; None lets ``torch.onnx`` choose (18 or later).
    verify : bool or "auto", default="auto"
        Run the written file with onnxruntime on inputs of other batch sizes and frame
        counts than the export example and check that it gives the PyTorch outputs
        (``rtol=1e-4``, ``atol=1e-5``); raise RuntimeError if not. ``"auto"``: when
        onnxruntime is installed.

    Returns
    -------
    pathlib.Path
        The path written. The graph's input is ``logmel`` (float32, ``(batch, n_frames,
        n_mels)``, both leading axes dynamic) and its outputs are named by
        :func:`output_names`; ``metadata_props`` hold the tag names and settings
        (``skattloc.*`` keys, JSON values).

    Raises
    ------
    ImportError
        If ``onnx`` or ``onnxscript`` is not installed (or onnxruntime with ``verify=True``).
    RuntimeError
        If the exporter fails, or the verification finds different outputs.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skattloc.export import to_onnx
    >>> from skattloc.model import CGRNN
    >>> net = CGRNN(n_mels=40, n_classes=3, rnn_hidden=8, rnn_layers=1, dense_units=8)
    >>> path = to_onnx(net, os.path.join(tempfile.mkdtemp(), "tagger.onnx"))  # doctest: +SKIP
    >>> import onnxruntime  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession(path)  # doctest: +SKIP
    >>> logmel = np.random.default_rng(0).normal(size=(4, 100, 40)).astype(np.float32)
    >>> clip, frame, weighted, att, loc = session.run(None, {"logmel": logmel})  # doctest: +SKIP
    >>> clip.shape, frame.shape  # doctest: +SKIP
    ((4, 3), (4, 100, 3))
    """
    path = _check_path(path)
    if verify not in (True, False, "auto"):
        raise ValueError(f"verify must be True, False or 'auto', got {verify!r}")
    try:
        import onnx
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"to_onnx needs the onnx and onnxscript packages ({exc}); install them with "
            f"pip install \"skattloc[export]\", or use to_torchscript, which needs nothing extra"
        ) from None
    ort = None
    if verify:
        try:
            import onnxruntime as ort
        except ImportError:
            if verify is True:
                raise ImportError("to_onnx(verify=True) needs onnxruntime: pip install onnxruntime") from None
    wrapper, example, names, meta = _prepare(estimator)
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="skattloc-onnx-") as tmp:
        src, raw = os.path.join(tmp, "net.pt"), os.path.join(tmp, "raw.onnx")
        torch.save(wrapper, src)  # our own object, read back by our own child process
        options = {"names": names, "example": list(example.shape), "opset_version": opset_version}
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else pkg_root
        proc = subprocess.run(
            [sys.executable, "-c", "from skattloc.export import _onnx_child; _onnx_child()", src, raw, json.dumps(options)],
            capture_output=True, text=True, env=env,
        )
        if proc.returncode != 0 or not os.path.isfile(raw):
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"torch.onnx.export failed (exit {proc.returncode}):\n{tail}")
        proto = onnx.load(raw)
    _dynamic_frame_axis(proto, names)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value, default=str)
    onnx.save_model(proto, os.fspath(path))
    if ort is not None:
        _verify_onnx(ort, path, wrapper, names, example.shape[-1])
    return path


def _onnx_child():
    """Entry point of the export process: ``argv = [src, dst, options_json]``."""
    import sys

    src, dst, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    wrapper = torch.load(src, weights_only=False)
    example = torch.zeros(*options["example"])
    if int(getattr(wrapper.model, "time_pool", 1)) > 1:
        # A time-pooled network (frontend="conv2d", time_pool > 1): torch.export keeps the
        # frame axis symbolic, but the dynamo exporter's GRU decomposition then fails on the
        # pooled length ceil(n_frames / time_pool). The TorchScript-based exporter writes
        # ONNX's own GRU operator and keeps every axis dynamic (checked against PyTorch by
        # _verify_onnx like the rest).
        names = options["names"]
        axes = {_INPUT_NAME: {0: "batch", 1: "frames"}, "clip": {0: "batch"}}
        axes.update({n: {0: "batch", 1: "frames"} for n in names if n != "clip"})
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(wrapper, (example,), dst, dynamo=False, input_names=[_INPUT_NAME], output_names=names,
                              dynamic_axes=axes, opset_version=int(options.get("opset_version") or 17))
        return
    kwargs = dict(
        input_names=[_INPUT_NAME], output_names=options["names"],
        dynamic_shapes={"logmel": {0: torch.export.Dim("batch"), 1: torch.export.Dim("frames")}},
        dynamo=True, verbose=False, optimize=True,
    )
    if options.get("opset_version") is not None:
        kwargs["opset_version"] = int(options["opset_version"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.export's notes on the GRU's flat weights, etc.
        program = torch.onnx.export(wrapper, (example,), None, **kwargs)
    program.save(dst)


def _verify_onnx(ort, path, wrapper, names, n_mels):
    import numpy as np

    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in ((1, 1, n_mels), (3, 2 * _EXAMPLE_FRAMES + 5, n_mels)):
        x = (wrapper.model.input_mean.numpy() + rng.normal(size=shape) * wrapper.model.input_scale.numpy()).astype(np.float32)
        with torch.no_grad():
            ref = [t.numpy() for t in wrapper(torch.from_numpy(x))]
        got = session.run(None, {_INPUT_NAME: x})
        for name, a, b in zip(names, got, ref):
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-4, atol=1e-5):
                raise RuntimeError(
                    f"the ONNX file {os.fspath(path)!r} gives other {name!r} outputs than the PyTorch "
                    f"network for an input of shape {shape}; please report this with your torch, "
                    f"onnx and onnxscript versions"
                )


def _dynamic_frame_axis(proto, names):
    """Name the frame axis of frame-level outputs 'frames' (the exporter may record it as
    the example's length although the graph computes any length)."""
    del proto.graph.value_info[:]  # shape hints from the example; runtimes infer them again
    for out in proto.graph.output:
        if out.name not in names or out.name == "clip":
            continue
        dims = out.type.tensor_type.shape.dim
        if len(dims) >= 2:
            dims[0].dim_param = "batch"
            dims[1].dim_param = "frames"
    for inp in proto.graph.input:
        if inp.name == _INPUT_NAME:
            dims = inp.type.tensor_type.shape.dim
            dims[0].dim_param, dims[1].dim_param = "batch", "frames"
