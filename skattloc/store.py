"""Clip collections read lazily from disk, for corpora larger than memory.

Two sequence types stand in for the usual list of ``(n_frames_i, n_features)`` log-mel
arrays wherever :class:`~skattloc.AttLocTagger` takes clips (``fit``, ``predict_proba``,
``localize``, ``score``, scikit-learn's model selection):

* :class:`FeatureStore`: features computed **once** and cached in a folder as one ``.npy``
  file of concatenated frames plus an offsets index. A clip is read from disk when the
  DataLoader asks for it, in the DataLoader worker processes when ``num_workers > 0``.
* :class:`AudioFeatures`: audio file paths, with log-mel features computed **on the fly**
  by a :class:`~skattloc.LogMelExtractor` each time a clip is read (nothing is cached).

Both keep only a per-clip index in memory (8 bytes a clip for the store), pickle without
their data (so DataLoader workers, joblib and Dask ship a path, not the features), and
index like arrays: ``seq[i]`` is clip ``i`` as a float32 array, ``seq[idx]`` with a slice,
an integer array or a boolean mask is a lazy subset (what scikit-learn's cross-validation
takes).

Store layout (``path/``)
------------------------
``frames.npy``
    ``(n_total_frames, n_features)`` float32 or float16 array: the frames of clip 0, then
    clip 1, ... An ordinary ``.npy`` file: ``np.load(path / "frames.npy", mmap_mode="r")``
    opens it.
``offsets.npy``
    ``(n_clips + 1,)`` int64: clip ``i`` is ``frames[offsets[i]:offsets[i + 1]]``.
``meta.json``
    Format version, counts, dtype, the extractor's parameters and user metadata.
"""
from __future__ import annotations

import copy
import json
import math
import numbers
import os
import shutil
import struct
import threading
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from ._checks import check_positive_int

__all__ = ["AudioFeatures", "ClipSequence", "FeatureStore"]

_FORMAT = "skattloc-feature-store"
_VERSION = 1
_HEADER_BYTES = 128  # fixed .npy header size, so frames can be streamed before the count is known
_DTYPES = ("float32", "float16")


class ClipSequence:
    """Base class of lazily read clip collections (see :mod:`skattloc.store`).

    Subclasses implement ``_n_base``, ``_base_lengths``, ``_read_base(j, start, stop)`` and
    ``n_features``; this class adds subset views, ``lengths``, ``read`` and ``iter_chunks``.
    """

    _index: Optional[np.ndarray] = None

    # -- to implement ---------------------------------------------------------------
    @property
    def n_features(self) -> int:  # pragma: no cover - abstract
        """Features (mel bands) per frame."""
        raise NotImplementedError

    def _n_base(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _base_lengths(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read_base(self, j: int, start: int, stop: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # -- sequence protocol ------------------------------------------------------------
    def _base(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"clip index {i} is out of range for {n} clips")
        i = i % n
        return int(i if self._index is None else self._index[i])

    def __len__(self) -> int:
        return self._n_base() if self._index is None else len(self._index)

    @property
    def shape(self) -> tuple:
        """``(n_clips, None, n_features)``: clips vary in length (see ``lengths``).

        Having a ``shape`` makes scikit-learn index this object like an array
        (``X[train_idx]``, a lazy subset) instead of building a list of every clip.
        """
        return (len(self), None, self.n_features)

    @property
    def lengths(self) -> np.ndarray:
        """Frames per clip, int64 array of shape (n_clips,)."""
        base = self._base_lengths()
        return base.copy() if self._index is None else base[self._index]

    def __getitem__(self, key):
        """Clip ``key`` as a float32 ``(n_frames, n_features)`` array, or a lazy subset.

        An int gives one clip; a slice, an integer array/list or a boolean mask gives a
        subset of the same type that reads nothing until its clips are asked for.
        """
        if isinstance(key, tuple) and len(key) == 2 and key[1] is Ellipsis:
            key = key[0]  # scikit-learn's _safe_indexing asks for X[idx, ...]
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            j = self._base(int(key))
            return self._read_base(j, 0, int(self._base_lengths()[j]))
        positions = np.arange(len(self))[key] if isinstance(key, slice) else _positions(key, len(self))
        view = copy.copy(self)
        view._index = positions if self._index is None else self._index[positions]
        return view

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def read(self, i: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of clip ``i``, float32 array of shape (stop - start, n_features).

        Reads only that range where the source allows it (a store always does).
        """
        j = self._base(int(i))
        n = int(self._base_lengths()[j])
        start, stop = max(0, int(start)), min(n, int(stop))
        if stop <= start:
            return np.empty((0, self.n_features), dtype=np.float32)
        return self._read_base(j, start, stop)

    def iter_chunks(self, max_frames: int = 65536) -> Iterator[np.ndarray]:
        """Frames of all clips, concatenated in clip order, in 2-D chunks.

        Each chunk holds whole clips and about ``max_frames`` frames (more when one clip is
        longer), so memory stays bounded while streaming statistics over the corpus.
        """
        buf, size = [], 0
        for i in range(len(self)):
            c = self[i]
            buf.append(c)
            size += len(c)
            if size >= max_frames:
                yield np.concatenate(buf)
                buf, size = [], 0
        if buf:
            yield np.concatenate(buf)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_clips={len(self)}, n_features={self.n_features})"


def _positions(key, n: int) -> np.ndarray:
    idx = np.asarray(key)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise IndexError(f"boolean index of shape {idx.shape} does not match {n} clips")
        return np.flatnonzero(idx)
    if idx.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1:
        raise IndexError(
            f"clips are indexed by an int, a slice, a 1-D integer array or a boolean mask; "
            f"got {type(key).__name__} with dtype {idx.dtype} and shape {idx.shape}"
        )
    if idx.min() < -n or idx.max() >= n:
        raise IndexError(f"clip index out of range for {n} clips: {idx.min()}..{idx.max()}")
    return (idx % n).astype(np.int64)


# ----------------------------------------------------------------------- FeatureStore
def _npy_header(dtype: np.dtype, shape: tuple) -> bytes:
    """A version 1.0 ``.npy`` header padded to exactly ``_HEADER_BYTES`` bytes."""
    body = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (np.dtype(dtype).str, tuple(shape))
    room = _HEADER_BYTES - 10
    if len(body) + 1 > room:  # pragma: no cover - needs > 10**60 frames
        raise ValueError(f"array shape {shape} too large for the store header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + (body.ljust(room - 1) + "\n").encode("latin1")


class FeatureStore(ClipSequence):
    """Log-mel clips cached on disk, read one clip (or frame range) at a time.

    Open an existing store with ``FeatureStore(path)``; build one with
    :meth:`from_audio` (audio paths or waveforms through a
    :class:`~skattloc.LogMelExtractor`) or :meth:`create` (any iterable of
    ``(n_frames_i, n_features)`` arrays). Pass the store as ``X`` to
    :class:`~skattloc.AttLocTagger`'s ``fit``, ``predict_proba``, ``localize`` and
    ``score``: clips are read lazily, in DataLoader workers when ``num_workers > 0``, and
    the per-feature statistics are streamed in chunks, so memory stays bounded whatever
    the number of clips.

    Parameters
    ----------
    path : str or os.PathLike
        The store's folder (see the layout in :mod:`skattloc.store`).
    mmap : bool, default=False
        Read clips through a read-only memory map of ``frames.npy``. The default reads
        each clip with a positioned file read instead: the same data, but pages of the
        file never count towards this process's resident memory (with a memory map,
        every page read stays resident until the kernel needs it back, so the measured
        peak RSS of an epoch grows with the size of the store; see ``docs/scaling.md``).

    Attributes
    ----------
    path : pathlib.Path
        The folder.
    dtype : numpy.dtype
        On-disk dtype of the frames (float32 or float16); clips are returned as float32.
    offsets : ndarray of int64, shape (n_clips_total + 1,)
        Frame offsets of every clip in the store (ignores subsets).
    meta : dict
        The contents of ``meta.json``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from skattloc.store import FeatureStore
    >>> clips = [np.random.default_rng(i).normal(size=(n, 40)) for i, n in enumerate([61, 30, 45])]
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = FeatureStore.create(d + "/feats", clips)
    ...     print(len(store), store.lengths, store[1].shape, store[1].dtype)
    ...     print(len(store[[0, 2]]), np.allclose(store[2], clips[2]))
    3 [61 30 45] (30, 40) float32
    2 True
    """

    def __init__(self, path, mmap: bool = False):
        self.path = Path(path)
        self.mmap = bool(mmap)
        meta_path = self.path / "meta.json"
        if not self.path.is_dir():
            raise FileNotFoundError(f"feature store folder not found: {str(self.path)!r}")
        if not meta_path.is_file():
            raise ValueError(
                f"{str(self.path)!r} is not a complete feature store: meta.json is missing "
                f"(create one with FeatureStore.from_audio or FeatureStore.create)"
            )
        with open(meta_path, encoding="utf-8") as f:
            self.meta = json.load(f)
        if self.meta.get("format") != _FORMAT or self.meta.get("version") != _VERSION:
            raise ValueError(
                f"{str(meta_path)!r} is not a skattloc feature store of version {_VERSION} "
                f"(format={self.meta.get('format')!r}, version={self.meta.get('version')!r})"
            )
        self.offsets = np.load(self.path / "offsets.npy")
        with open(self.path / "frames.npy", "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            self._data_offset = f.tell()
        if fortran or len(shape) != 2 or shape[0] != int(self.offsets[-1]):
            raise ValueError(
                f"{str(self.path / 'frames.npy')!r} has shape {shape} but the offsets index "
                f"{int(self.offsets[-1])} frames; the store is damaged, rebuild it"
            )
        self.dtype = np.dtype(dtype)
        self._n_features = int(shape[1])
        self._lengths = np.diff(self.offsets)
        self._index = None
        self._reset_handles()

    def _reset_handles(self):
        self._fd = None
        self._mm = None
        self._pid = None
        self._lock = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in ("_fd", "_mm", "_pid", "_lock"):
            state.pop(k, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset_handles()

    def __copy__(self):
        new = object.__new__(type(self))
        new.__dict__.update(self.__getstate__())
        new._reset_handles()
        return new

    def __del__(self):
        self.close()

    def close(self) -> None:
        """Close the file handle (reopened automatically on the next read)."""
        fd = getattr(self, "_fd", None)
        if fd is not None and getattr(self, "_pid", None) == os.getpid():
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass
        self._fd = None
        self._mm = None
        self._pid = None  # so that the next read opens the file again

    @property
    def n_features(self) -> int:
        return self._n_features

    @property
    def frame_timing(self):
        """The :class:`~skattloc.timing.FrameTiming` of the extractor recorded in
        ``meta.json`` (:meth:`from_audio` records it), or None; a tagger fitted on these
        clips records it."""
        from .features import LogMelExtractor

        params = (self.meta.get("metadata") or {}).get("extractor")
        try:
            return LogMelExtractor(**params).frame_timing if isinstance(params, dict) else None
        except (TypeError, ValueError, ZeroDivisionError):  # settings of another kind of extractor
            return None

    @property
    def frames(self) -> np.ndarray:
        """All frames as a read-only memory map, shape (n_total_frames, n_features)."""
        return np.load(self.path / "frames.npy", mmap_mode="r")

    def _n_base(self) -> int:
        return len(self._lengths)

    def _base_lengths(self) -> np.ndarray:
        return self._lengths

    def _open(self):
        if self._pid != os.getpid():  # first use, or a forked DataLoader worker
            self._fd, self._mm = None, None
            self._pid = os.getpid()
            if self.mmap:
                self._mm = self.frames
            else:
                self._fd = os.open(self.path / "frames.npy", os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def _read_rows(self, first: int, stop: int) -> np.ndarray:
        """Rows ``first:stop`` of ``frames.npy`` as float32."""
        self._open()
        if self._mm is not None:
            return np.array(self._mm[first:stop], dtype=np.float32)
        out = np.empty((stop - first, self._n_features), dtype=self.dtype)
        buf = memoryview(out).cast("B")
        offset = self._data_offset + first * self._n_features * self.dtype.itemsize
        done = 0
        while done < len(buf):
            if hasattr(os, "preadv"):
                got = os.preadv(self._fd, [buf[done:]], offset + done)
            else:  # pragma: no cover - Windows
                with self._lock:
                    os.lseek(self._fd, offset + done, os.SEEK_SET)
                    got = os.readv(self._fd, [buf[done:]])
            if got <= 0:
                raise OSError(f"unexpected end of {str(self.path / 'frames.npy')!r}")
            done += got
        return out if out.dtype == np.float32 else out.astype(np.float32)

    def _read_base(self, j: int, start: int, stop: int) -> np.ndarray:
        o = int(self.offsets[j])
        return self._read_rows(o + start, o + stop)

    def iter_chunks(self, max_frames: int = 65536) -> Iterator[np.ndarray]:
        if self._index is not None and not np.array_equal(self._index, np.arange(self._n_base())):
            yield from super().iter_chunks(max_frames)
            return
        total = int(self.offsets[-1])
        for first in range(0, total, max_frames):
            yield self._read_rows(first, min(total, first + max_frames))

    # -- writing ----------------------------------------------------------------------
    @classmethod
    def create(cls, path, clips: Iterable, *, dtype: str = "float32", overwrite: bool = False, metadata: Optional[dict] = None, mmap: bool = False) -> "FeatureStore":
        """Write clips to a new store, streaming: one clip in memory at a time.

        Parameters
        ----------
        path : str or os.PathLike
            Folder to create. Must not exist unless ``overwrite``.
        clips : iterable of array-like of shape (n_frames_i, n_features)
            Log-mel frames, time first; a generator is fine. All clips need the same
            ``n_features``, at least one frame, and finite values.
        dtype : {"float32", "float16"}, default="float32"
            On-disk dtype. ``"float16"`` halves the disk space and I/O; log-mel values
            (about -18 to 10) then keep 3 significant digits.
        overwrite : bool, default=False
            Replace an existing folder at ``path``.
        metadata : dict, optional
            JSON-serializable data kept in ``meta.json`` under ``"metadata"``.
        mmap : bool, default=False
            Passed to the returned store.

        Returns
        -------
        FeatureStore
        """
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        dt = np.dtype(dtype)
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it")
            shutil.rmtree(path)
        tmp = path.with_name(path.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        offsets = [0]
        n_features = None
        try:
            with open(tmp / "frames.npy", "wb") as f:
                f.write(b"\0" * _HEADER_BYTES)
                for i, c in enumerate(clips):
                    a = np.asarray(c)
                    if a.ndim != 2:
                        raise ValueError(f"clip {i} must be a 2-D (n_frames, n_features) array, got shape {a.shape}")
                    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
                        raise TypeError(f"clip {i} must hold real numbers, got dtype {a.dtype}")
                    if n_features is None:
                        n_features = a.shape[1]
                    if a.shape[1] != n_features or n_features == 0:
                        raise ValueError(
                            f"clip {i} has {a.shape[1]} features per frame, expected {n_features} "
                            f"(the first clip's) and at least 1"
                        )
                    if a.shape[0] == 0:
                        raise ValueError(f"clip {i} has zero frames; every clip needs at least 1 frame")
                    if not np.isfinite(a).all():
                        raise ValueError(f"clip {i} contains NaN or Inf; features must be finite")
                    with np.errstate(over="ignore"):
                        out = a.astype(dt, copy=False)
                    if not np.isfinite(out).all():
                        raise ValueError(f"clip {i} overflows {dtype} (|value| > {np.finfo(dt).max:g}); use dtype='float32'")
                    f.write(np.ascontiguousarray(out).tobytes())
                    offsets.append(offsets[-1] + a.shape[0])
                if n_features is None:
                    raise ValueError("clips is empty: got 0 clips; at least 1 clip is required")
                f.seek(0)
                f.write(_npy_header(dt, (offsets[-1], n_features)))
            np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
            meta = {
                "format": _FORMAT,
                "version": _VERSION,
                "n_clips": len(offsets) - 1,
                "n_frames": int(offsets[-1]),
                "n_features": int(n_features),
                "dtype": dtype,
                "metadata": metadata or {},
            }
            with open(tmp / "meta.json", "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=1, default=_json_default)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(path, mmap=mmap)

    @classmethod
    def from_audio(cls, path, X, extractor=None, *, dtype: str = "float32", chunk_size: int = 256, overwrite: bool = False, mmap: bool = False) -> "FeatureStore":
        """Compute log-mel features of audio once and write them to a new store.

        Parameters
        ----------
        path : str or os.PathLike
            Folder to create.
        X : sequence of audio file paths or of 1-D waveforms
            What :meth:`LogMelExtractor.transform` takes. Processed ``chunk_size`` clips at
            a time, so only one chunk of audio and features is in memory.
        extractor : LogMelExtractor, optional
            Feature settings (``n_jobs`` parallelizes each chunk). Default:
            ``LogMelExtractor()``, the paper's features. Its parameters are kept in
            ``meta.json`` (``meta["metadata"]["extractor"]``).
        dtype : {"float32", "float16"}, default="float32"
            On-disk dtype.
        chunk_size : int, default=256
            Clips per extraction call.
        overwrite, mmap : bool, default=False
            See :meth:`create`.

        Returns
        -------
        FeatureStore
            Clip ``i`` holds the features of ``X[i]``.
        """
        from .features import LogMelExtractor

        ext = LogMelExtractor() if extractor is None else extractor
        check_positive_int(chunk_size, "chunk_size")
        if isinstance(X, (str, os.PathLike)):
            raise TypeError("X must be a list of file paths or waveforms, got a single path; wrap it in a list")
        n = len(X)

        def clips():
            for first in range(0, n, chunk_size):
                items = [X[k] for k in range(first, min(n, first + chunk_size))]
                feats = ext.transform(items)
                yield from feats

        params = {k: v for k, v in ext.get_params().items() if k not in ("n_jobs", "verbose")}
        return cls.create(path, clips(), dtype=dtype, overwrite=overwrite, metadata={"extractor": params}, mmap=mmap)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


# ---------------------------------------------------------------------- AudioFeatures
class AudioFeatures(ClipSequence):
    """Audio files whose log-mel features are computed on the fly when a clip is read.

    Nothing is cached: every epoch recomputes the features, in the DataLoader worker
    processes when the estimator has ``num_workers > 0``. Memory holds the paths and the
    per-clip frame counts only. Prefer :class:`FeatureStore` when training for several
    epochs (features are then computed once).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Audio files, read with :func:`~skattloc.load_audio`.
    extractor : LogMelExtractor, optional
        Feature settings. Default: ``LogMelExtractor()``.

    Notes
    -----
    ``lengths`` comes from the file headers (``soundfile.info``), without decoding:
    ``1 + (n_samples - n_fft) // hop_length`` at the extractor's rate. :meth:`read` of a
    frame range decodes only the samples those frames need when the file's rate is the
    extractor's, which is what lets a long recording be processed window by window.

    Examples
    --------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> from skattloc.store import AudioFeatures
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sf.write(d + "/a.wav", np.zeros(16000), 16000)
    ...     X = AudioFeatures([d + "/a.wav"])
    ...     print(X.lengths, X[0].shape, X.read(0, 10, 20).shape)
    [61] (61, 40) (10, 40)
    """

    def __init__(self, paths, extractor=None):
        from sklearn.base import clone

        from .features import LogMelExtractor

        if isinstance(paths, (str, os.PathLike)):
            raise TypeError("paths must be a list of audio file paths, got a single path; wrap it in a list")
        self.paths = [os.fspath(p) for p in paths]
        bad = [p for p in self.paths if not isinstance(p, str)]
        if bad:
            raise TypeError(f"paths must be str or os.PathLike; got {type(bad[0]).__name__}")
        self.extractor = clone(extractor if extractor is not None else LogMelExtractor()).fit(None)
        self._lengths = None
        self._index = None

    @property
    def n_features(self) -> int:
        return int(self.extractor.n_mels)

    @property
    def frame_timing(self):
        """The extractor's :class:`~skattloc.timing.FrameTiming`; a tagger fitted on these
        clips records it."""
        return self.extractor.frame_timing

    def _n_base(self) -> int:
        return len(self.paths)

    def _frames_for(self, n_samples: int) -> int:
        e = self.extractor
        return max(0, 1 + (n_samples - e.n_fft) // e.hop_length) if n_samples >= e.n_fft else 0

    def _base_lengths(self) -> np.ndarray:
        if self._lengths is None:
            import soundfile as sf

            out = np.empty(len(self.paths), dtype=np.int64)
            for j, p in enumerate(self.paths):
                if not os.path.exists(p):
                    raise FileNotFoundError(f"audio file not found: {p!r}")
                try:
                    info = sf.info(p)
                    n = info.frames
                    if info.samplerate != self.extractor.sr:
                        n = int(math.ceil(n * self.extractor.sr / info.samplerate))
                    out[j] = self._frames_for(n)
                except (sf.LibsndfileError, RuntimeError):  # not readable by libsndfile: decode
                    out[j] = len(self._read_base(j, 0, None))
            self._lengths = out
        return self._lengths

    def _read_base(self, j: int, start: int, stop) -> np.ndarray:
        import soundfile as sf

        e = self.extractor
        path = self.paths[j]
        if start > 0 or stop is not None:
            y = None
            try:
                with sf.SoundFile(path) as f:
                    if f.samplerate == e.sr and f.seekable():
                        f.seek(start * e.hop_length)
                        y = f.read((stop - 1 - start) * e.hop_length + e.n_fft, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError):
                y = None
            if y is not None:
                y = y.mean(axis=1)
                if not np.isfinite(y).all():
                    raise ValueError(f"audio file {path!r} contains NaN or Inf samples")
                return e.transform(y[None])[0]
        feats = e.transform([path])[0]
        return feats[start:stop]

    def _read_clip(self, j: int) -> np.ndarray:
        return self._read_base(j, 0, None)

    def __getitem__(self, key):
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            return self._read_clip(self._base(int(key)))
        return super().__getitem__(key)
