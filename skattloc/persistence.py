"""Saving and loading fitted taggers without pickle's code execution.

``pickle``/``joblib`` round trips of :class:`~skattloc.AttLocTagger` work, but unpickling
a file runs whatever code the file names, so a shared model file is a program. The format
here holds only tensors and plain data, and is read with ``torch.load(weights_only=True)``,
whose unpickler refuses every Python object that is not a tensor, a number, a string,
``None`` or a list/tuple/dict of those. A crafted file is refused before anything in it runs.

File format (version 1)
-----------------------
One ``torch.save`` zip archive holding a dict:

``"format"``: ``"skattloc.AttLocTagger"``; ``"format_version"``: 1
    What the file is; :func:`load_tagger` refuses other formats and other versions.
``"skattloc_version"``, ``"torch_version"``: str
    The versions that wrote the file (informative; compatibility is ``format_version``).
``"estimator"``: str
    The estimator class name (``"AttLocTagger"``).
``"params"``: dict
    ``get_params(deep=False)`` values that are plain data. Others (callback, logger,
    ``RandomState`` or strategy objects) are left out with a warning and get their
    defaults on load.
``"classes"``: list
    The tag names, ``classes_.tolist()`` (also among ``"fitted"``).
``"n_features"``, ``"n_classes"``: int
    The network's input features (mel bands) and outputs.
``"state_dict"``: dict of str to Tensor
    The network's weights and buffers (``input_mean``/``input_scale`` included), on the CPU.
``"fitted"``: dict
    The other fitted attributes (``classes_``, ``n_features_in_``, ``history_``,
    ``n_epochs_``, ``feature_mean_``...), each as ``{"kind": "plain", "value": ...}``,
    ``{"kind": "ndarray", "tensor": Tensor, "dtype": str}`` or
    ``{"kind": "ndarray_list", "data": list, "dtype": str}``.

Tensors are mapped to the CPU on load, so a model saved from GPU tensors loads on a
machine without a GPU.
"""
from __future__ import annotations

import numbers
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ._version import __version__

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load_tagger", "read_model_info", "save_tagger"]

FORMAT = "skattloc.AttLocTagger"
FORMAT_VERSION = 1

# dtype kinds that may be rebuilt from a list: bool, ints, floats, str, bytes, object (names).
_LIST_KINDS = set("biufUSO")


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a skattloc model file, written in an
    incompatible format version, inconsistent, or holding Python objects other than
    tensors and plain data (which could run code when unpickled)."""


# ---------------------------------------------------------------------------- encoding
def _plain(value):
    """``(True, value as plain data)`` or ``(False, None)``: None, bool, int, float, str,
    and lists/tuples/str-keyed dicts of those. numpy scalars and paths are converted."""
    if value is None or isinstance(value, (bool, str)):
        return True, value
    if isinstance(value, np.generic) and np.ndim(value) == 0 and value.dtype.kind in "biuf":
        return True, value.item()
    if isinstance(value, numbers.Integral):
        return True, int(value)
    if isinstance(value, numbers.Real):
        return True, float(value)
    if isinstance(value, os.PathLike):
        return True, os.fspath(value)
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            ok, p = _plain(v)
            if not ok:
                return False, None
            out.append(p)
        return True, type(value)(out) if type(value) in (list, tuple) else list(out)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            ok, p = _plain(v)
            if not ok or not isinstance(k, str):
                return False, None
            out[k] = p
        return True, out
    return False, None


def _encode_attr(name, value):
    if isinstance(value, torch.Tensor):
        return {"kind": "tensor", "tensor": value.detach().cpu().clone()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            try:
                tensor = torch.from_numpy(np.array(value, dtype=value.dtype.newbyteorder("="), copy=True))
                return {"kind": "ndarray", "tensor": tensor, "dtype": str(value.dtype)}
            except TypeError:  # a dtype torch has no tensor for: store as a list
                pass
        ok, data = _plain(value.tolist())
        if ok and value.dtype.kind in _LIST_KINDS:
            return {"kind": "ndarray_list", "data": data, "dtype": str(value.dtype)}
    else:
        ok, data = _plain(value)
        if ok:
            return {"kind": "plain", "value": data}
    raise TypeError(
        f"fitted attribute {name} of type {type(value).__name__} cannot be stored in the safe "
        f"format (tensors, arrays of numbers or names, and plain data only)"
    )


def _decode_attr(name, enc, path):
    kind = enc.get("kind") if isinstance(enc, dict) else None
    if kind == "plain":
        return enc["value"]
    if kind in ("ndarray", "tensor"):
        t = enc.get("tensor")
        if not isinstance(t, torch.Tensor):
            raise ModelFileError(f"{path}: fitted attribute {name} should hold a tensor")
        if kind == "tensor":
            return t
        dtype = np.dtype(enc["dtype"])
        if dtype.kind not in "biuf":
            raise ModelFileError(f"{path}: fitted attribute {name} has unsupported dtype {dtype}")
        return t.numpy().astype(dtype, copy=False)
    if kind == "ndarray_list":
        dtype = np.dtype(enc["dtype"])
        if dtype.kind not in _LIST_KINDS:
            raise ModelFileError(f"{path}: fitted attribute {name} has unsupported dtype {dtype}")
        if dtype.kind == "O":
            out = np.empty(len(enc["data"]), dtype=object)
            out[:] = enc["data"]
            return out
        return np.asarray(enc["data"], dtype=dtype)
    raise ModelFileError(f"{path}: fitted attribute {name} has an unknown encoding {kind!r}")


# ---------------------------------------------------------------------------- save
def save_tagger(estimator, path):
    """Write a fitted tagger to ``path`` in the safe format (tensors and plain data only).

    Parameters
    ----------
    estimator : AttLocTagger
        A fitted tagger.
    path : str or os.PathLike
        Destination file (by convention ``*.skattloc``). Written atomically: a temporary
        file in the same folder is renamed over ``path``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    TypeError
        If a fitted attribute cannot be stored as tensors or plain data.

    Warns
    -----
    UserWarning
        For each parameter that is not plain data (a callback, logger, ``RandomState``...),
        left out of the file; it gets its default value on load.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "model_")
    params, dropped = {}, []
    for key, value in estimator.get_params(deep=False).items():
        ok, p = _plain(value)
        if ok:
            params[key] = p
        else:
            dropped.append(f"{key} ({type(value).__name__})")
    if dropped:
        warnings.warn(
            f"not saved (not plain data): {', '.join(dropped)}; loading the file gives them "
            f"their default values. Set them again after load if you refit.",
            UserWarning,
            stacklevel=3,
        )
    fitted = {}
    for key, value in vars(estimator).items():
        if key.endswith("_") and not key.startswith("_") and key != "model_":
            fitted[key] = _encode_attr(key, value)
    model = estimator.model_
    ok, classes = _plain(np.asarray(estimator.classes_).tolist())
    blob = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skattloc_version": __version__,
        "torch_version": str(torch.__version__),
        "estimator": type(estimator).__name__,
        "params": params,
        "classes": classes if ok else [str(c) for c in estimator.classes_],
        "n_features": int(model.n_mels),
        "n_classes": int(model.n_classes),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "fitted": fitted,
    }
    path = Path(path)
    _atomic_torch_save(blob, path)
    return path


def _temporary_name(path: Path) -> Path:
    """The hidden file that :func:`_atomic_torch_save` writes before the rename; the pattern
    :func:`clean_checkpoint_dir` deletes when a killed process left one behind."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a hidden file next to ``path``, flushed to disk, then renamed over
    ``path``: a process killed mid-write leaves the previous file intact."""
    tmp = _temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---------------------------------------------------------------------------- load
def _read(path) -> dict:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path!r}")
    try:
        blob = _safe_torch_load(path)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(exc)
        if "global" in reason.lower():
            raise ModelFileError(
                f"refused to load {path!r}: it holds Python objects other than tensors and plain "
                f"data, which could run code when unpickled ({reason}). AttLocTagger.load reads "
                f"only files written by AttLocTagger.save"
            ) from None
        raise ModelFileError(
            f"refused to load {path!r}: it is not a skattloc model file, nor anything "
            f"torch.load(weights_only=True) reads safely ({reason}); expected a file written by "
            f"AttLocTagger.save. A pickle or joblib file runs code when loaded: open it with "
            f"pickle/joblib only if you trust its source"
        ) from None
    except Exception as exc:  # noqa: BLE001 - zip/EOF/format errors all mean "not ours"
        raise ModelFileError(
            f"cannot read {path!r} as a skattloc model file ({type(exc).__name__}: {exc}); "
            f"expected a file written by AttLocTagger.save"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ModelFileError(
            f"{path!r} is not a skattloc model file (format {found!r}, expected {FORMAT!r}); "
            f"AttLocTagger.load reads files written by AttLocTagger.save"
        )
    version = blob.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} has model file format version {version!r} (written by skattloc "
            f"{blob.get('skattloc_version', '?')}), but skattloc {__version__} reads format "
            f"version {FORMAT_VERSION}; load it with the skattloc version that wrote it"
        )
    missing = [k for k in ("params", "state_dict", "fitted", "n_features", "n_classes", "classes") if k not in blob]
    if missing:
        raise ModelFileError(f"{path!r} is an incomplete skattloc model file: missing {missing}")
    return blob


def _safe_torch_load(path):
    """``torch.load(weights_only=True)`` to the CPU: no Python object but tensors and plain data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pickle protocol.*")
        return torch.load(path, map_location="cpu", weights_only=True)


def _unpickler_reason(exc) -> str:
    """The one line of torch's weights_only error that says what was refused."""
    for line in str(exc).splitlines():
        if "Unsupported" in line:
            line = line.split("WeightsUnpickler error:")[-1].strip()
            return line.split(". Please use")[0].strip()
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read_model_info(path) -> dict:
    """Metadata of a model file, read safely without building the network.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``format_version``, ``skattloc_version``, ``torch_version``, ``estimator``,
        ``classes`` (list of tag names), ``n_features``, ``n_classes`` and ``params``.
    """
    blob = _read(path)
    keys = ("format_version", "skattloc_version", "torch_version", "estimator", "classes", "n_features", "n_classes", "params")
    return {k: blob.get(k) for k in keys}


def load_tagger(path, cls=None):
    """Read a tagger written by :func:`save_tagger`, on the CPU, without running any code
    from the file.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :meth:`AttLocTagger.save`.
    cls : type, optional
        The estimator class to build (default :class:`~skattloc.AttLocTagger`).

    Returns
    -------
    AttLocTagger
        Fitted, with its network on the CPU in eval mode.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file holds anything but tensors and plain data (a pickled object: refused
        without running it), is not a skattloc model file, has another format version,
        has parameters this version does not know, or has weights that do not match its
        parameters or are not finite.
    """
    if cls is None:
        from .estimator import AttLocTagger as cls
    blob = _read(path)
    path = os.fspath(path)
    params = dict(blob["params"])
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelFileError(
            f"{path!r} was written by skattloc {blob.get('skattloc_version', '?')} with "
            f"parameters {unknown} that skattloc {__version__} does not have; load it with "
            f"a version that knows them"
        )
    try:
        est = cls(**params)
        model = est._build_model(int(blob["n_features"]), int(blob["n_classes"]))
        state = blob["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ModelFileError(f"{path!r}: 'state_dict' must map names to tensors")
        model.load_state_dict(state, strict=True)
    except ModelFileError:
        raise
    except (RuntimeError, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split())
        raise ModelFileError(
            f"{path!r}: the saved weights do not match the saved parameters "
            f"({type(exc).__name__}: {detail[:400]})"
        ) from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelFileError(f"{path!r} holds NaN or Inf weights in {bad}; such a model predicts NaN")
    model.eval()
    est.model_ = model
    if not isinstance(blob["fitted"], dict):
        raise ModelFileError(f"{path!r}: 'fitted' must be a dict")
    for name, enc in blob["fitted"].items():
        if not (isinstance(name, str) and name.endswith("_") and not name.startswith("_")):
            raise ModelFileError(f"{path!r}: {name!r} is not a fitted attribute name")
        setattr(est, name, _decode_attr(name, enc, path))
    est._mlb = None
    if not hasattr(est, "classes_") or len(est.classes_) != model.n_classes:
        raise ModelFileError(f"{path!r}: classes_ does not match the network's {model.n_classes} outputs")
    if getattr(est, "n_features_in_", model.n_mels) != model.n_mels:
        raise ModelFileError(f"{path!r}: n_features_in_ does not match the network's {model.n_mels} inputs")
    return est


# ---------------------------------------------------------------------------- training checkpoints
CHECKPOINT_NAME = "last.ckpt"
_STATE_KEY = "skattloc_training_state"
# Parameters a resumed fit must share with the interrupted one: the network's shape and
# what decides the data split and the batches.
_RESUME_PARAMS = (
    "pooling", "loc_activation", "loc_denominator", "n_filters", "kernel_size", "rnn_hidden", "rnn_layers",
    "dense_units", "batch_size", "validation_fraction",
)


def checkpoint_file(estimator):
    """``Path(checkpoint_dir) / "last.ckpt"``, or None when ``checkpoint_dir`` is None."""
    d = getattr(estimator, "checkpoint_dir", None)
    return None if d is None else Path(d) / CHECKPOINT_NAME


def resume_checkpoint(estimator):
    """The checkpoint that ``fit`` resumes from, or None (with a warning when ``resume``
    is set but there is no checkpoint yet, like Lightning's ``ckpt_path="last"``)."""
    if not getattr(estimator, "resume", False):
        return None
    path = checkpoint_file(estimator)
    if path.is_file():
        return path
    warnings.warn(
        f"resume=True but there is no checkpoint {os.fspath(path)!r} yet; training from the first epoch",
        UserWarning,
        stacklevel=3,
    )
    return None


def fit_fingerprint(estimator, seed, n_features, classes, Y) -> dict:
    """What a resumed fit must share with the interrupted one, as plain data."""
    import hashlib

    params = estimator.get_params(deep=False)
    return {
        "seed": int(seed),
        "n_clips": int(len(Y)),
        "n_features": int(n_features),
        "classes": _plain(np.asarray(classes).tolist())[1],
        "y_sha1": hashlib.sha1(np.ascontiguousarray(Y, dtype=np.float32).tobytes()).hexdigest(),
        "params": {k: _plain(params[k])[1] for k in _RESUME_PARAMS if k in params},
        "skattloc_version": __version__,
    }


def read_checkpoint_fingerprint(path) -> dict:
    """The fingerprint that :class:`TrainingState` stored in a Lightning checkpoint.

    Read with ``torch.load(weights_only=True)``: a checkpoint holding pickled Python objects
    is refused with :class:`ModelFileError` without running them.
    """
    path = os.fspath(path)
    try:
        ckpt = _safe_torch_load(path)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"refused to resume from {path!r}: the checkpoint holds Python objects other than "
            f"tensors and plain data, which could run code when unpickled ({_unpickler_reason(exc)})"
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(
            f"cannot resume from {path!r}: it is not a readable checkpoint ({type(exc).__name__}: {exc}); "
            f"delete it or set resume=False to train from the first epoch"
        ) from None
    state = ckpt.get("callbacks", {}).get(_STATE_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not isinstance(state.get("meta"), dict):
        raise ModelFileError(
            f"cannot resume from {path!r}: it is not a checkpoint written by AttLocTagger "
            f"(no {_STATE_KEY!r}); delete it or set resume=False"
        )
    return state["meta"]


def check_resume(path, saved: dict, current: dict) -> None:
    """Raise ValueError naming every difference between the checkpoint's fit and this one."""
    diffs = []
    for key in ("n_clips", "n_features", "classes", "y_sha1"):
        if saved.get(key) != current[key]:
            what = "Y (the clip tags)" if key == "y_sha1" else key
            diffs.append(what if key == "y_sha1" else f"{what}: {saved.get(key)!r} in the checkpoint, {current[key]!r} now")
    for key, value in current["params"].items():
        old = saved.get("params", {}).get(key, value)
        if old != value:
            diffs.append(f"{key}: {old!r} in the checkpoint, {value!r} now")
    if diffs:
        raise ValueError(
            f"cannot resume from {os.fspath(path)!r}: it was written by a fit with other data or "
            f"parameters ({'; '.join(diffs)}). Resume with the same X, y and parameters, or set "
            f"resume=False to train from the first epoch (the checkpoint is then overwritten)"
        )


def training_callbacks(estimator, fingerprint, generator):
    """Lightning callbacks and plugins that write ``checkpoint_dir/last.ckpt`` every epoch.

    Returns
    -------
    callbacks : list
        A :class:`TrainingState` and a :class:`LastCheckpoint`.
    plugins : list
        An :class:`AtomicCheckpointIO`, which writes only inside ``checkpoint_dir``.
    """
    return [TrainingState(fingerprint, generator), LastCheckpoint(checkpoint_file(estimator))], [AtomicCheckpointIO()]


class LastCheckpoint(Checkpoint):
    """Writes the full training state to one file at the end of every training epoch.

    A :class:`~lightning.pytorch.callbacks.Checkpoint`, so Lightning calls it after the
    LightningModule's ``on_train_epoch_end``: an epoch whose loss became NaN raises there
    and never overwrites the last good checkpoint. (``ModelCheckpoint(save_top_k=0,
    save_last=True)`` writes ``last.ckpt`` only when training ends, which is no help
    against a killed process.)
    """

    def __init__(self, path):
        self.path = Path(path)

    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            trainer.save_checkpoint(os.fspath(self.path))


class TrainingState(Callback):
    """Stores in each checkpoint what Lightning leaves out, so that a resumed fit continues
    as if it had never been interrupted: the fit's fingerprint (seed, data, shape
    parameters), the torch RNG states (dropout, augmentation) and the state of the
    generator that shuffles the training clips."""

    def __init__(self, meta, generator):
        self.meta = meta
        self.generator = generator

    @property
    def state_key(self):
        return _STATE_KEY

    def state_dict(self):
        state = {"meta": self.meta, "torch_rng": torch.get_rng_state()}
        if self.generator is not None:
            state["loader_rng"] = self.generator.get_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = list(torch.cuda.get_rng_state_all())
        return state

    def load_state_dict(self, state):
        torch.set_rng_state(state["torch_rng"])
        if self.generator is not None and "loader_rng" in state:
            self.generator.set_state(state["loader_rng"])
        cuda = state.get("cuda_rng")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a hidden temporary file next to it, then renames it over the
    old one: a process killed mid-write leaves the previous checkpoint intact, and nothing is
    written outside the checkpoint folder (Lightning's default IO writes a temporary file to
    the system temp folder and then moves it, which is a copy across file systems)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save(checkpoint, path)


def clean_checkpoint_dir(estimator, created_dir: bool) -> None:
    """After a successful fit: delete temporary files that a killed process left in
    ``checkpoint_dir``; with ``keep_checkpoints=False`` also ``last.ckpt``, and the folder
    itself when ``fit`` created it and it is then empty."""
    d = Path(estimator.checkpoint_dir)
    if not d.is_dir():
        return
    doomed = list(d.glob(f".{CHECKPOINT_NAME}.*.tmp"))
    if not estimator.keep_checkpoints:
        doomed.append(d / CHECKPOINT_NAME)
    for p in doomed:
        if p.is_file():
            p.unlink()
    if not estimator.keep_checkpoints and created_dir and not any(d.iterdir()):
        d.rmdir()
