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
    What the file is; :func:`restore_tagger` refuses other formats and other versions.
``"skattloc_version"``, ``"torch_version"``: str
    The versions that wrote the file (informative; compatibility is ``format_version``).
``"estimator"``: str
    The estimator class name (``"AttLocTagger"``).
``"params"``: dict
    ``get_params(deep=False)`` values that are plain data (a ``frame_timing`` given as a
    :class:`~skattloc.timing.FrameTiming` or an extractor as its ``to_dict()``). Others
    (callback, logger, ``RandomState`` or strategy objects) are left out with a warning and
    get their defaults on load.
``"classes"``: list
    The tag names, ``classes_.tolist()`` (also among ``"fitted"``).
``"n_features"``, ``"n_classes"``: int
    The network's input features (mel bands) and outputs.
``"state_dict"``: dict of str to Tensor
    The network's weights and buffers (``input_mean``/``input_scale`` included), on the CPU.
``"frame_timing"``: dict or None
    Where the training features' frames sit in time,
    :meth:`FrameTiming.to_dict <skattloc.timing.FrameTiming.to_dict>` (``{"hop_s": ...,
    "offset_s": ...}``) of the tagger's ``frame_timing_``, else of the ``extractor`` given to
    :func:`save_tagger`; None when unknown. Files written before this key existed get the
    timing of their ``feature_params_`` on load, or None.
``"fitted"``: dict
    The other fitted attributes (``classes_``, ``n_features_in_``, ``history_``,
    ``n_epochs_``, ``feature_mean_``...), each as ``{"kind": "plain", "value": ...}``,
    ``{"kind": "ndarray", "tensor": Tensor, "dtype": str}`` or
    ``{"kind": "ndarray_list", "data": list, "dtype": str}``. With
    ``save(path, extractor=...)``, also ``feature_params_``: the
    :class:`~skattloc.LogMelExtractor` settings of the training features (plain data).

Tensors are mapped to the CPU on load, so a model saved from GPU tensors loads on a
machine without a GPU.

Checked on load (:func:`restore_tagger`), each failure a :class:`ModelFileError` naming the
file and the field: every member of the zip archive against its CRC-32 (a flipped byte, a
truncated copy); the parameters against the estimator's own rules; ``feature_params_``
against :class:`~skattloc.LogMelExtractor`'s; distinct classes, the same in ``"classes"``,
``classes_`` and ``event_settings_``; the frame timing record.

This module knows the file, not the estimator: :func:`save_tagger` reads only an
estimator's public state, and :func:`restore_tagger` is told how to build one. Lightning
training checkpoints (``checkpoint_dir``) are :mod:`skattloc.training`'s; they are written
and read with the same :func:`atomic_torch_save` and :func:`safe_torch_load`.
"""
from __future__ import annotations

import numbers
import os
import pickle
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ._version import __version__

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFileError",
    "atomic_torch_save",
    "find_damage",
    "load_tagger",
    "plain_data",
    "read_model_info",
    "refusal_reason",
    "restore_tagger",
    "safe_torch_load",
    "save_tagger",
]

FORMAT = "skattloc.AttLocTagger"
FORMAT_VERSION = 1

# dtype kinds that may be rebuilt from a list: bool, ints, floats, str, bytes, object (names).
_LIST_KINDS = set("biufUSO")


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a skattloc model file, written in an
    incompatible format version, inconsistent, or holding Python objects other than
    tensors and plain data (which could run code when unpickled)."""


# ---------------------------------------------------------------------------- encoding
def plain_data(value):
    """``(True, value as plain data)`` or ``(False, None)``: None, bool, int, float, str,
    and lists/tuples/str-keyed dicts of those. numpy scalars and paths are converted.

    Plain data is what ``torch.load(weights_only=True)`` reads back without running code.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc.persistence import plain_data
    >>> plain_data({"n": np.int64(3), "tags": ("dog",)}), plain_data(object())
    ((True, {'n': 3, 'tags': ('dog',)}), (False, None))
    """
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
            ok, p = plain_data(v)
            if not ok:
                return False, None
            out.append(p)
        return True, type(value)(out) if type(value) in (list, tuple) else list(out)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            ok, p = plain_data(v)
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
        ok, data = plain_data(value.tolist())
        if ok and value.dtype.kind in _LIST_KINDS:
            return {"kind": "ndarray_list", "data": data, "dtype": str(value.dtype)}
    else:
        ok, data = plain_data(value)
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
def save_tagger(estimator, path, extractor=None):
    """Write a fitted tagger to ``path`` in the safe format (tensors and plain data only).

    What :meth:`AttLocTagger.save <skattloc.AttLocTagger.save>` does. It reads only the
    estimator's public state: ``get_params()``, ``model_`` and the other fitted attributes
    (public names ending in ``_``).

    Parameters
    ----------
    estimator : AttLocTagger
        A fitted tagger.
    path : str or os.PathLike
        Destination file (by convention ``*.skattloc``). Written atomically: a temporary
        file in the same folder is renamed over ``path``.
    extractor : LogMelExtractor, optional
        The extractor of the features the tagger was trained on. Its
        :meth:`~skattloc.LogMelExtractor.feature_params` are recorded, and the loaded
        tagger has them as ``feature_params_``; its
        :attr:`~skattloc.LogMelExtractor.frame_timing` is recorded when the tagger has no
        ``frame_timing_`` (fitted on plain arrays).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    TypeError
        If a fitted attribute cannot be stored as tensors or plain data, or ``extractor``
        is not a :class:`~skattloc.LogMelExtractor`.
    ValueError
        If the frame timing of ``extractor`` differs from the tagger's ``frame_timing_``
        (the features it was fitted on came from another extractor).

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
        ok, p = plain_data(_timing_as_dict(value) if key == "frame_timing" else value)
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
        if key.endswith("_") and not key.startswith("_") and key not in ("model_", "frame_timing_"):
            fitted[key] = _encode_attr(key, value)
    timing = _timing_to_save(getattr(estimator, "frame_timing_", None), extractor)
    if extractor is not None:
        if not callable(getattr(extractor, "feature_params", None)):
            raise TypeError(f"extractor must be a LogMelExtractor, got {type(extractor).__name__}")
        fitted["feature_params_"] = _encode_attr("feature_params_", dict(extractor.feature_params()))
    model = estimator.model_
    ok, classes = plain_data(np.asarray(estimator.classes_).tolist())
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
        "frame_timing": None if timing is None else timing.to_dict(),
        "fitted": fitted,
    }
    path = Path(path)
    atomic_torch_save(blob, path)
    return path


def _timing_as_dict(value):
    """A ``frame_timing`` parameter given as an object (a FrameTiming, an extractor) as the
    dict that ``as_frame_timing`` reads back; other values unchanged."""
    from .timing import as_frame_timing

    if value is None or plain_data(value)[0]:
        return value
    try:
        return as_frame_timing(value).to_dict()
    except (TypeError, ValueError):
        return value


def _timing_to_save(fitted_timing, extractor):
    """The :class:`~skattloc.timing.FrameTiming` a model file records: the tagger's
    ``frame_timing_``, else the extractor's, else None; refuses the two when they differ."""
    from .timing import FrameTiming

    if fitted_timing is not None and not isinstance(fitted_timing, FrameTiming):
        raise TypeError(
            f"frame_timing_ must be a skattloc.timing.FrameTiming or None, got {type(fitted_timing).__name__}"
        )
    given = getattr(extractor, "frame_timing", None) if extractor is not None else None
    given = given if isinstance(given, FrameTiming) else None
    if fitted_timing is not None and given is not None and not fitted_timing.matches(given):
        raise ValueError(
            f"the extractor's frame timing ({given}) differs from the tagger's frame_timing_ "
            f"({fitted_timing}), the timing of the features it was fitted on; expected the "
            f"extractor that computed the training features"
        )
    return fitted_timing if fitted_timing is not None else given


def _temporary_name(path: Path) -> Path:
    """The hidden file that :func:`atomic_torch_save` writes before the rename; the pattern
    :func:`skattloc.training.clean_checkpoint_dir` deletes when a killed process left one behind."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a hidden file next to ``path``, flushed to disk, then renamed over
    ``path``: a process killed mid-write leaves the previous file intact.

    Model files and training checkpoints (:mod:`skattloc.training`) are written this way.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from pathlib import Path
    >>> from skattloc.persistence import atomic_torch_save, safe_torch_load
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_torch_save({"w": torch.ones(2)}, Path(d) / "f.pt")
    ...     print(os.listdir(d), safe_torch_load(os.path.join(d, "f.pt"))["w"].tolist())
    ['f.pt'] [1.0, 1.0]
    """
    tmp = _temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except Exception as e:
                # Ctrl-C inside torch's zip writer comes out as the writer's RuntimeError on
                # exit: keep it a KeyboardInterrupt, so callers stop as for any other Ctrl-C.
                if isinstance(e.__context__, KeyboardInterrupt):
                    raise KeyboardInterrupt from e
                raise
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
    damage = find_damage(path)
    if damage is not None:
        raise ModelFileError(
            f"cannot read {path!r} as a skattloc model file: it is damaged: {damage}. The file "
            f"changed after it was written (an incomplete download or copy, a disk error); "
            f"expected an intact file written by AttLocTagger.save: copy it again from its source"
        )
    try:
        blob = safe_torch_load(path)
    except pickle.UnpicklingError as exc:
        reason = refusal_reason(exc)
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
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFileError(
            f"{path!r}: the model file format version must be an int (skattloc {__version__} reads "
            f"format version {FORMAT_VERSION}), but the file has {type(version).__name__} {version!r}; "
            f"expected a file written by AttLocTagger.save"
        )
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


_ZIP_MAGIC = b"PK\x03\x04"


def find_damage(path):
    """What is damaged in a model file or checkpoint, or None: every zip member checked
    against the CRC-32 that the archive records for it.

    ``torch.save`` writes a zip archive and ``torch.load`` does not check the CRCs, so a
    flipped byte in a tensor's data loads silently and changes the predictions. Files that
    do not begin like a zip archive (a pickle, junk) are not judged here: None, and
    ``torch.load`` says what they are.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str or None
        A description naming the damaged member (e.g. ``"member 'm/data/3' (the data of a
        stored tensor) fails its CRC-32 check (Bad CRC-32 for file 'm/data/3')"``), or that
        the archive's directory is missing or unreadable (a truncated file); None if intact
        or not a zip archive.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from skattloc.persistence import find_damage
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "w.pt")
    ...     torch.save({"w": torch.ones(3)}, path)
    ...     intact = find_damage(path)
    ...     with open(path, "r+b") as f:
    ...         _ = f.truncate(os.path.getsize(path) - 10)
    ...     print(intact, "|", find_damage(path))
    None | the directory at the end of its zip archive is missing or unreadable: the file is truncated or corrupted (... bytes; File is not a zip file)
    """
    try:
        with open(path, "rb") as f:
            if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
                return None
    except OSError:
        return None  # torch.load reports it
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, struct.error, ValueError) as exc:
        return (
            f"the directory at the end of its zip archive is missing or unreadable: the file is "
            f"truncated or corrupted ({os.path.getsize(path)} bytes; {exc})"
        )
    with archive:
        for info in archive.infolist():
            try:
                with archive.open(info) as member:
                    while member.read(1 << 20):
                        pass
            except (zipfile.BadZipFile, OSError, EOFError, struct.error, ValueError, zlib.error) as exc:
                name = info.filename
                what = (
                    "the data of a stored tensor" if "/data/" in name
                    else "the record of the stored values" if name.endswith(".pkl")
                    else "a record of the archive"
                )
                check = "fails its CRC-32 check" if "CRC" in str(exc) else "cannot be read"
                return f"member {name!r} ({what}) {check} ({exc})"
    return None


def safe_torch_load(path):
    """``torch.load(weights_only=True)`` to the CPU: no Python object but tensors and plain data.

    Raises ``pickle.UnpicklingError`` (see :func:`refusal_reason`) for anything else, before
    it runs.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pickle protocol.*")
        return torch.load(path, map_location="cpu", weights_only=True)


def refusal_reason(exc) -> str:
    """The one line of torch's weights_only error (``pickle.UnpicklingError``) that says
    what was refused.

    Examples
    --------
    >>> import pickle
    >>> from skattloc.persistence import refusal_reason
    >>> exc = pickle.UnpicklingError("WeightsUnpickler error: Unsupported global: GLOBAL os.system. Please use ...")
    >>> refusal_reason(exc)
    'Unsupported global: GLOBAL os.system'
    """
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


def restore_tagger(path, build, known_params):
    """Read a model file and rebuild the tagger it holds, without running code from the file.

    What :meth:`AttLocTagger.load <skattloc.AttLocTagger.load>` does, given how to build
    its estimator: this module knows the file, not the estimator.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_tagger`.
    build : callable
        ``build(params, n_features, n_classes) -> (estimator, network)``: an estimator with
        the saved parameters (a dict) and its untrained network (a ``torch.nn.Module``) for
        ``n_features`` input features and ``n_classes`` outputs. A ``RuntimeError``,
        ``ValueError`` or ``TypeError`` from it means the saved parameters are inconsistent.
        Before it is called, the parameters (with :func:`skattloc.params.legacy_values` for
        those a file lacks) are checked with :func:`skattloc.params.validate_params`.
    known_params : collection of str
        The parameters of the estimator class; a file with others is refused.

    Returns
    -------
    estimator
        With the network, its saved weights loaded, on the CPU and in eval mode, as
        ``model_``, the saved fitted attributes (``classes_``, ``history_``...) set, and
        ``frame_timing_``: the stored :class:`~skattloc.timing.FrameTiming`; for a file
        written before frame timings were stored, the timing of its ``feature_params_``, or
        None without them.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file holds anything but tensors and plain data (a pickled object: refused
        without running it), is damaged (a member of its zip archive fails its CRC-32
        check, or it is truncated), is not a skattloc model file, has another format
        version, has parameters this version does not know or does not accept, has weights
        that do not match its parameters or are not finite, has duplicate classes or event
        settings for other classes, ``feature_params_`` that
        :class:`~skattloc.LogMelExtractor` does not accept, or an invalid frame timing.
    """
    blob = _read(path)
    path = os.fspath(path)
    params = dict(blob["params"])
    unknown = sorted(set(params) - set(known_params))
    if unknown:
        raise ModelFileError(
            f"{path!r} was written by skattloc {blob.get('skattloc_version', '?')} with "
            f"parameters {unknown} that skattloc {__version__} does not have; load it with "
            f"a version that knows them"
        )
    state = blob["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path!r}: 'state_dict' must map names to tensors")
    n_features, n_classes = int(blob["n_features"]), int(blob["n_classes"])
    _check_params(params, n_features, path)
    try:
        est, model = build(params, n_features, n_classes)
    except (RuntimeError, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split())
        raise ModelFileError(
            f"{path!r}: the saved parameters are invalid: the network cannot be built from them "
            f"({type(exc).__name__}: {detail[:400]}); expected parameters that skattloc "
            f"{__version__} accepts"
        ) from None
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split())
        raise ModelFileError(
            f"{path!r}: the saved weights do not match the saved parameters "
            f"({type(exc).__name__}: {detail[:400]})"
        ) from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelFileError(f"{path!r} holds NaN or Inf weights in {bad}; such a model predicts NaN")
    if not isinstance(blob["fitted"], dict):
        raise ModelFileError(f"{path!r}: 'fitted' must be a dict")
    fitted = {}
    for name, enc in blob["fitted"].items():
        if not (isinstance(name, str) and name.endswith("_") and not name.startswith("_")):
            raise ModelFileError(f"{path!r}: {name!r} is not a fitted attribute name")
        fitted[name] = _decode_attr(name, enc, path)
    if "classes_" not in fitted or len(fitted["classes_"]) != n_classes:
        raise ModelFileError(f"{path!r}: classes_ does not match the network's {n_classes} outputs")
    if fitted.get("n_features_in_", n_features) != n_features:
        raise ModelFileError(f"{path!r}: n_features_in_ does not match the network's {n_features} inputs")
    _check_classes(fitted["classes_"], blob["classes"], path)
    if fitted.get("event_settings_") is not None:
        _check_event_settings(fitted["event_settings_"], fitted["classes_"], path)
    feature_params = fitted.get("feature_params_")
    extractor = None if feature_params is None else _feature_extractor(feature_params, path)
    fitted["frame_timing_"] = _stored_timing(blob, extractor, path)
    est.model_ = model.eval()
    for name, value in fitted.items():
        setattr(est, name, value)
    return est


def _check_params(params, n_features, path) -> None:
    """A file's parameters against the estimator's rules (:func:`skattloc.params.validate_params`),
    with the values that files from before a parameter existed are read with; failures as
    ModelFileError."""
    from .params import PARAMETERS, legacy_values, validate_params

    values = {**legacy_values(), **params}
    try:
        validate_params({k: v for k, v in values.items() if k in PARAMETERS}, n_features=n_features)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(
            f"{path!r}: the saved parameters are invalid: {exc}; expected parameters that "
            f"skattloc {__version__} accepts (the file is damaged or was edited)"
        ) from None


def _check_classes(classes, listed, path) -> None:
    """Distinct, hashable class names, the same in ``"classes"`` and ``classes_``."""
    values = np.asarray(classes).tolist()
    try:
        counts = {}
        for c in values:
            counts[c] = counts.get(c, 0) + 1
    except TypeError:
        raise ModelFileError(
            f"{path!r}: classes_ must hold tag names (str) or ints, found {values!r}"
        ) from None
    duplicates = [c for c, n in counts.items() if n > 1]
    if duplicates:
        raise ModelFileError(
            f"{path!r}: classes_ names {duplicates} more than once ({values}); expected "
            f"distinct classes, one per output of the network"
        )
    if not isinstance(listed, (list, tuple)) or list(listed) != values:
        raise ModelFileError(
            f"{path!r}: 'classes' {listed!r} differs from classes_ {values!r}; expected "
            f"the same tag names in the same order"
        )


def _check_event_settings(settings, classes, path) -> None:
    """``event_settings_`` that :class:`~skattloc.postprocessing.EventPostprocessor` accepts,
    for the model's classes in their order."""
    from .postprocessing import EventPostprocessor

    try:
        pp = EventPostprocessor.from_dict(settings)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(
            f"{path!r}: event_settings_ are invalid: {exc}; expected the settings of "
            f"EventPostprocessor.to_dict for the model's classes"
        ) from None
    expected = [str(c) for c in np.asarray(classes).tolist()]
    if [str(c) for c in pp.classes] != expected:
        raise ModelFileError(
            f"{path!r}: event_settings_ are for the classes {list(pp.classes)}, but the model's "
            f"classes are {expected}; expected event settings for the model's classes, in its order"
        )


def _feature_extractor(feature_params, path):
    """``LogMelExtractor(**feature_params)`` after its own parameter checks, as ModelFileError."""
    from .features import FEATURE_PARAMS, LogMelExtractor

    if not isinstance(feature_params, dict):
        raise ModelFileError(
            f"{path!r}: feature_params_ must be a dict of LogMelExtractor settings, found "
            f"{type(feature_params).__name__}"
        )
    unknown = sorted(set(feature_params) - set(FEATURE_PARAMS), key=str)
    if unknown:
        raise ModelFileError(
            f"{path!r}: feature_params_ has keys {unknown} that are not LogMelExtractor "
            f"feature settings; expected only {list(FEATURE_PARAMS)}"
        )
    try:
        extractor = LogMelExtractor(**feature_params)
        extractor._validate_params()
        extractor.frame_timing  # noqa: B018 - a hop FrameTiming accepts
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
        raise ModelFileError(
            f"{path!r}: feature_params_ are not valid LogMelExtractor settings: {exc}; "
            f"expected the settings of the extractor of the training features"
        ) from None
    return extractor


def _stored_timing(blob, extractor, path):
    """The file's :class:`~skattloc.timing.FrameTiming`: its ``"frame_timing"`` record,
    else (a file from before the record) its feature extractor's, else None."""
    from .timing import FrameTiming

    if "frame_timing" not in blob:
        return None if extractor is None else extractor.frame_timing
    record = blob["frame_timing"]
    if record is None:
        return None
    try:
        timing = FrameTiming.from_dict(record)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(
            f"{path!r}: the frame timing record is invalid: {exc}; expected None or "
            f"{{'hop_s': seconds > 0, 'offset_s': seconds >= 0}}"
        ) from None
    if extractor is not None and not timing.matches(extractor.frame_timing):
        raise ModelFileError(
            f"{path!r}: the frame timing record ({timing}) differs from that of its "
            f"feature_params_ ({extractor.frame_timing}); expected the timing of the "
            f"training features' extractor"
        )
    return timing


def load_tagger(path, cls):
    """Read a tagger written by :func:`save_tagger`: ``cls.load(path)``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :meth:`AttLocTagger.save <skattloc.AttLocTagger.save>`.
    cls : type
        The estimator class, e.g. :class:`~skattloc.AttLocTagger` (this module does not
        import the estimator, which imports it).

    Returns
    -------
    AttLocTagger
        Fitted, with its network on the CPU in eval mode; see :func:`restore_tagger`.
    """
    return cls.load(path)
