"""Input validation, datasets, padding and masks for clips of frames.

Clips are ``(n_frames, n_features)`` float32 arrays. A collection of clips is either a 3-D
array ``(n_clips, n_frames, n_features)`` (all the same length) or a list of 2-D arrays.
Batches are padded to the longest clip *in the batch* and carry the true lengths, which the
model turns into masks.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from . import _checks
from .store import ClipSequence

ClipsLike = Union[np.ndarray, Sequence[np.ndarray], ClipSequence]


def check_clips(X, *, n_features: Optional[int] = None, min_features: int = 1, name: str = "X", estimator: str = "AttLocTagger") -> Union[np.ndarray, List[np.ndarray]]:
    """Validate clips and convert them to float32.

    Parameters
    ----------
    X : array-like, shape (n_clips, n_frames, n_features), or list of (n_frames_i, n_features)
        Log-mel frames, time first.
    n_features : int, optional
        Required features per frame (the value seen in ``fit``).
    min_features : int, default=1
        Smallest allowed features per frame (the CNN kernel size).
    name, estimator : str
        Names used in error messages.

    Returns
    -------
    ndarray of shape (n_clips, n_frames, n_features), or list of 2-D float32 arrays.

    Raises
    ------
    ValueError
        Wrong number of dimensions, empty data, zero-length clips, NaN/Inf, feature-count
        mismatch, or fewer features than ``min_features``.
    TypeError
        Non-numeric data.
    """
    if isinstance(X, ClipSequence):
        return _check_clip_sequence(X, n_features, min_features, name, estimator)
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(f"sparse input is not supported: {name} must be dense log-mel frames")
    if not isinstance(X, (np.ndarray, list, tuple)) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 3:
        try:
            X = X.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold real numbers; {exc}") from None
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be log-mel frames (a 3-D array or a list of 2-D arrays), got {type(X).__name__}")
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim != 3:
            raise ValueError(
                f"{name} must be 3-D (n_clips, n_frames, n_features) or a list of 2-D "
                f"(n_frames, n_features) arrays; got an array with {X.ndim} dimension(s) and "
                f"shape {X.shape}. Reshape your data: for a single clip use X[None]; for raw "
                f"audio use LogMelExtractor first."
            )
        clips: Union[np.ndarray, List[np.ndarray]] = _as_float(X, name)
        shapes = [X.shape[1:]] * X.shape[0]
        if X.shape[0] == 0:
            raise ValueError(f"{name} is empty: got 0 clips; at least 1 clip is required")
    else:
        try:
            items = list(X)
        except TypeError:
            raise TypeError(f"{name} must be a 3-D array or a list of 2-D arrays, got {type(X).__name__}") from None
        if len(items) == 0:
            raise ValueError(f"{name} is empty: got 0 clips; at least 1 clip is required")
        clips = []
        for i, c in enumerate(items):
            if isinstance(c, torch.Tensor):
                c = c.detach().cpu().numpy()
            if isinstance(c, (str, bytes)):
                raise TypeError(
                    f"{name}[{i}] is a string ({c!r:.60}); AttLocTagger takes log-mel frames. "
                    f"Use make_pipeline(LogMelExtractor(), AttLocTagger()) for audio paths, or "
                    f"skattloc.store.AudioFeatures(paths) / FeatureStore for corpora larger than memory."
                )
            a = np.asarray(c)
            if a.ndim != 2:
                raise ValueError(
                    f"{name}[{i}] must be a 2-D (n_frames, n_features) array; got {a.ndim} "
                    f"dimension(s) with shape {a.shape}"
                )
            clips.append(_as_float(a, f"{name}[{i}]"))
        shapes = [c.shape for c in clips]
    feats = {s[1] for s in shapes}
    if len(feats) > 1:
        raise ValueError(f"all clips in {name} must have the same number of features per frame; got {sorted(feats)}")
    n_feat = feats.pop()
    for i, s in enumerate(shapes):
        if s[0] == 0:
            raise ValueError(f"{name}[{i}] has zero frames; every clip needs at least 1 frame")
    if n_feat == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={tuple(shapes[0])}) while a minimum of "
            f"{max(min_features, 1)} is required (features per frame)"
        )
    if n_features is not None and n_feat != n_features:
        raise ValueError(
            f"{name} has {n_feat} features, but {estimator} is expecting {n_features} features "
            f"as input (features per frame seen in fit); extract features with the same settings"
        )
    if n_feat < min_features:
        raise ValueError(
            f"{name} has {n_feat} features (mel bins) per frame, fewer than the CNN kernel "
            f"size {min_features}; use more mel bands or a smaller kernel_size"
        )
    _checks.check_finite_clips(clips, name)
    return clips


def _check_clip_sequence(X: ClipSequence, n_features, min_features, name, estimator) -> ClipSequence:
    """Validate a lazily read collection from its index only; no clip is read.

    Values are not checked for NaN/Inf here: :class:`~skattloc.store.FeatureStore` checked
    them when it was written, and log-mel features of finite audio are finite.
    """
    lengths = X.lengths
    if len(lengths) == 0:
        raise ValueError(f"{name} is empty: got 0 clips; at least 1 clip is required")
    zero = np.flatnonzero(lengths == 0)
    if len(zero):
        raise ValueError(f"{name}[{int(zero[0])}] has zero frames; every clip needs at least 1 frame")
    n_feat = X.n_features
    if n_features is not None and n_feat != n_features:
        raise ValueError(
            f"{name} has {n_feat} features, but {estimator} is expecting {n_features} features "
            f"as input (features per frame seen in fit); extract features with the same settings"
        )
    if n_feat < max(min_features, 1):
        raise ValueError(
            f"{name} has {n_feat} features (mel bands) per frame, fewer than the CNN kernel "
            f"size {min_features}; use more mel bands or a smaller kernel_size"
        )
    return X


def _as_float(a: np.ndarray, name: str) -> np.ndarray:
    if np.iscomplexobj(a):
        raise ValueError(f"Complex data not supported: {name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{name} must hold real numbers; got dtype {a.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 become Inf: check_finite_clips names them
        return np.ascontiguousarray(a, dtype=np.float32)


def n_clips(X: ClipsLike) -> int:
    return len(X)


def clip_feature_count(X: ClipsLike) -> int:
    """Features per frame of checked clips (``X`` from :func:`check_clips`)."""
    if isinstance(X, np.ndarray):
        return int(X.shape[2])
    if isinstance(X, ClipSequence):
        return int(X.n_features)
    return int(X[0].shape[1])


def clip_lengths(X: ClipsLike) -> np.ndarray:
    """Frames per clip, shape (n_clips,)."""
    if isinstance(X, np.ndarray):
        return np.full(X.shape[0], X.shape[1], dtype=np.int64)
    if isinstance(X, ClipSequence):
        return X.lengths
    return np.array([len(c) for c in X], dtype=np.int64)


def feature_stats(X: ClipsLike, eps: float = 1e-5):
    """Per-feature mean and standard deviation over every frame of every clip.

    Returns
    -------
    mean, scale : ndarray of shape (n_features,), float64
        ``scale`` is floored at ``eps`` so constant features do not divide by zero.
    """
    total = 0
    s = None
    ss = None
    if isinstance(X, ClipSequence):
        chunks = X.iter_chunks()  # streamed from disk, a bounded number of frames at a time
    else:
        chunks = X if isinstance(X, list) else [X.reshape(-1, X.shape[-1])]
    # At most 65536 frames in float64 at a time, not a float64 copy of the whole corpus.
    chunks = (big[k : k + 65536] for big in chunks for k in range(0, len(big), 65536))
    for c in chunks:
        c64 = c.astype(np.float64, copy=False)
        s = c64.sum(0) if s is None else s + c64.sum(0)
        ss = (c64 ** 2).sum(0) if ss is None else ss + (c64 ** 2).sum(0)
        total += c.shape[0]
    mean = s / total
    var = np.maximum(ss / total - mean ** 2, 0.0)
    return mean, np.maximum(np.sqrt(var), eps)


def min_features(frontend: str, kernel_size: int) -> int:
    """Fewest features per frame the network takes: the paper's per-frame CNN needs a
    kernel's width (a valid convolution over frequency), the 2-D front end one."""
    return kernel_size if frontend == "frame_cnn" else 1


def split_validation(n: int, fraction: float, rng: np.random.RandomState, requested=None):
    """``(train_idx, val_idx)``: a random ``fraction`` of ``n`` clips held out (sorted
    indices; ``val_idx`` is None when ``fraction`` is 0). ``requested`` is the value to name
    in the error (e.g. ``"auto"``)."""
    train_idx = np.arange(n)
    if fraction <= 0:
        return train_idx, None
    n_val = int(round(fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(
            f"validation_fraction={fraction if requested is None else requested} leaves {n_val} validation and "
            f"{n - n_val} training clips out of {n}; both must be at least 1 (n_samples={n}): "
            f"give more clips, or set validation_fraction=0"
        )
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def subset(X: ClipsLike, idx: np.ndarray) -> ClipsLike:
    idx = np.asarray(idx)
    if idx.ndim == 1 and len(idx) == len(X) and np.array_equal(idx, np.arange(len(X))):
        return X  # every clip in order: no copy of the corpus
    if isinstance(X, (np.ndarray, ClipSequence)):
        return X[idx]
    return [X[i] for i in idx]


class ClipDataset(Dataset):
    """Clips (and optional clip and frame targets) as tensors.

    Parameters
    ----------
    X : ndarray (n_clips, n_frames, n_features) or list of (n_frames_i, n_features) arrays
    Y : ndarray (n_clips, n_classes), optional
        Clip targets; NaN rows mark unlabeled clips (no clip loss).
    frames : list of (ndarray (n_frames_i, n_classes) or None), optional
        Frame targets of the clips with event times (None for the others). With it, items
        are ``(x, y, f)`` with ``f`` NaN for clips without times.
    """

    def __init__(self, X: ClipsLike, Y: Optional[np.ndarray] = None, frames=None):
        if isinstance(X, np.ndarray):
            self._x = torch.from_numpy(X)
        elif isinstance(X, ClipSequence):
            self._x = _LazyClips(X)  # read from disk in __getitem__ (in DataLoader workers)
        else:
            self._x = [torch.from_numpy(c) for c in X]
        self._y = None if Y is None else torch.as_tensor(np.asarray(Y), dtype=torch.float32)
        self._f = None if frames is None else {i: torch.from_numpy(f) for i, f in enumerate(frames) if f is not None}

    def __len__(self) -> int:
        return len(self._x)

    def __getitem__(self, i):
        y = None if self._y is None else self._y[i]
        if self._f is None:
            return self._x[i], y
        x = self._x[i]
        f = self._f.get(int(i))
        return x, y, (torch.full((x.shape[0], self._y.shape[1]), float("nan")) if f is None else f)

    @property
    def nbytes(self) -> Optional[int]:
        """Bytes of clips and targets when they are one array each, else None."""
        if not isinstance(self._x, torch.Tensor) or self._f is not None:
            return None
        ny = 0 if self._y is None else self._y.numel() * self._y.element_size()
        return self._x.numel() * self._x.element_size() + ny

    def to_device(self, device: torch.device) -> None:
        """Move clips held in one array (and the targets) to ``device``, in place."""
        if not isinstance(self._x, torch.Tensor):
            raise TypeError("only clips held in one array can move to a device")
        self._x = self._x.to(device)
        self._y = None if self._y is None else self._y.to(device)

    def __getitems__(self, indices):
        """A whole batch at once; ``DataLoader`` calls this instead of ``__getitem__``.

        Clips held in one array are gathered with one ``index_select`` (one copy of the
        batch) instead of one tensor per clip and a ``stack``: about half the host time per
        batch, which matters on a GPU, where the host prepares batch k+1 while the device
        runs batch k. Clips of different lengths and lazily read clips go item by item.
        """
        if isinstance(self._x, torch.Tensor) and self._f is None:
            idx = torch.as_tensor(indices, dtype=torch.int64).to(self._x.device, non_blocking=True)
            y = None if self._y is None else self._y.index_select(0, idx)
            return _GatheredBatch(self._x.index_select(0, idx), y)
        return [self[i] for i in indices]


class _GatheredBatch(NamedTuple):
    """A batch of equal-length clips already stacked by :meth:`ClipDataset.__getitems__`."""

    x: torch.Tensor
    y: Optional[torch.Tensor]


class _LazyClips:
    """Clip ``i`` of a :class:`~skattloc.store.ClipSequence` as a tensor, read on access."""

    def __init__(self, X: ClipSequence):
        self.X = X

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(self.X[int(i)])


def pad_collate(batch):
    """Pad a list of ``(x, y)`` items to the longest clip in the batch.

    Returns
    -------
    x : Tensor (batch, max_frames, n_features), zero padded
    lengths : Tensor of int64 (batch,)
    y : Tensor (batch, n_classes) or None
    """
    if isinstance(batch, _GatheredBatch):
        lengths = torch.full((batch.x.shape[0],), batch.x.shape[1], dtype=torch.int64)
        return batch.x, lengths, batch.y
    xs = [b[0] for b in batch]
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.int64)
    if bool((lengths == lengths[0]).all()):
        x = torch.stack(xs)
    else:
        x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    ys = [b[1] for b in batch]
    y = None if ys[0] is None else torch.stack(ys)
    if len(batch[0]) == 3:  # frame targets: padded frames are NaN (no target)
        f = torch.nn.utils.rnn.pad_sequence([b[2] for b in batch], batch_first=True, padding_value=float("nan"))
        return x, lengths, y, f
    return x, lengths, y


class MixedBatchSampler(Sampler):
    """Training batches with a fixed share of unlabeled clips (the mean teacher's batches).

    Each batch holds ``batch_size - n_unlabeled`` labelled clips, in a new random order each
    epoch, and ``n_unlabeled = round(unlabeled_ratio * batch_size)`` unlabeled clips, drawn
    in turn from a reshuffled cycle of the unlabeled ones. An epoch is one pass over the
    labelled clips. Both orders come from ``generator`` (checkpointed for resume).
    """

    def __init__(self, labelled: np.ndarray, unlabeled: np.ndarray, batch_size: int, unlabeled_ratio: float,
                 generator: torch.Generator):
        self.labelled, self.unlabeled = np.asarray(labelled), np.asarray(unlabeled)
        self.n_unlabeled = min(max(1, int(round(unlabeled_ratio * batch_size))), batch_size - 1)
        self.n_labelled = batch_size - self.n_unlabeled
        self.generator = generator

    def __len__(self) -> int:
        return -(-len(self.labelled) // self.n_labelled)

    def __iter__(self):
        order = self.labelled[torch.randperm(len(self.labelled), generator=self.generator).numpy()]
        pool: list = []
        for start in range(0, len(order), self.n_labelled):
            while len(pool) < self.n_unlabeled:
                pool += self.unlabeled[torch.randperm(len(self.unlabeled), generator=self.generator).numpy()].tolist()
            extra, pool = pool[: self.n_unlabeled], pool[self.n_unlabeled :]
            yield order[start : start + self.n_labelled].tolist() + extra


class SortedBatchSampler(Sampler):
    """Batches of clips of similar length, for inference: least padding, same outputs."""

    def __init__(self, lengths: np.ndarray, batch_size: int):
        self.order = np.argsort(lengths, kind="stable")
        self.batch_size = batch_size

    def __iter__(self):
        for start in range(0, len(self.order), self.batch_size):
            yield self.order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return (len(self.order) + self.batch_size - 1) // self.batch_size


def _rebuild_generator(device: str, state: bytes) -> "_SpawnSafeGenerator":
    gen = _SpawnSafeGenerator(device)
    gen.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
    return gen


class _SpawnSafeGenerator(torch.Generator):
    """A ``torch.Generator`` that pickles its state as bytes.

    A plain generator pickles its state as a tensor, which torch's multiprocessing sends
    through a shared-memory file that is gone when a spawned process opens it ("unable to
    resize file", pytorch/pytorch#146828). Lightning's ``ddp_spawn`` pickles the training
    DataLoader, and its generator, into every process.
    """

    def __reduce__(self):
        return (_rebuild_generator, (str(self.device), self.get_state().numpy().tobytes()))


def train_loader(X: ClipsLike, Y: np.ndarray, batch_size: int, seed: int, num_workers: int = 0, shuffle: bool = True,
                 frames=None, unlabeled_ratio: float = 0.0) -> DataLoader:
    """A DataLoader of padded ``(x, lengths, y)`` batches, shuffled by a seeded generator.

    With ``frames`` (frame targets of timed clips, see :class:`ClipDataset`) the batches are
    ``(x, lengths, y, f)``. Rows of ``Y`` that are NaN are unlabeled clips; with
    ``unlabeled_ratio > 0`` and some of them, a :class:`MixedBatchSampler` gives each batch
    that share of unlabeled clips.
    """
    gen = _SpawnSafeGenerator()
    gen.manual_seed(int(seed))
    common = dict(collate_fn=pad_collate, num_workers=num_workers, persistent_workers=num_workers > 0)
    dataset = ClipDataset(X, Y, frames)
    unlabeled = np.flatnonzero(np.isnan(np.asarray(Y)).any(axis=1)) if Y is not None else np.empty(0, np.int64)
    if shuffle and len(unlabeled) and unlabeled_ratio > 0 and len(unlabeled) < len(Y):
        labelled = np.setdiff1d(np.arange(len(Y)), unlabeled)
        sampler = MixedBatchSampler(labelled, unlabeled, batch_size, unlabeled_ratio, gen)
        return DataLoader(dataset, batch_sampler=sampler, generator=gen, **common)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, **common)


#: Training data held in one array go to a single CUDA device for the whole fit when they
#: take at most this many bytes and this fraction of the device's free memory.
DEVICE_RESIDENT_MAX_BYTES = 2 * 2**30
DEVICE_RESIDENT_MAX_FREE_FRACTION = 0.25


def move_to_device_if_small(loaders: Sequence[Optional[DataLoader]], device: torch.device, free_bytes: int) -> bool:
    """Put the loaders' data on ``device`` if it is small enough; return whether it moved.

    On a GPU the host, not the device, limits the paper's network at batch 100 (cuDNN
    launches thousands of small kernels per step), so every host millisecond per batch
    (gathering clips, the host-to-device copy) is lost time. Data already on the device
    are indexed there instead. Only for clips held in one array, loaders without worker
    processes, and at most :data:`DEVICE_RESIDENT_MAX_BYTES` and
    :data:`DEVICE_RESIDENT_MAX_FREE_FRACTION` of ``free_bytes``; otherwise nothing moves.
    """
    datasets = [dl.dataset for dl in loaders if dl is not None]
    if not datasets or any(not isinstance(ds, ClipDataset) or ds.nbytes is None for ds in datasets):
        return False
    if any(dl.num_workers > 0 for dl in loaders if dl is not None):
        return False
    total = sum(ds.nbytes for ds in datasets)
    if total > DEVICE_RESIDENT_MAX_BYTES or total > DEVICE_RESIDENT_MAX_FREE_FRACTION * free_bytes:
        return False
    for ds in datasets:
        ds.to_device(device)
    return True


def inference_loader(X: ClipsLike, batch_size: int) -> DataLoader:
    """A DataLoader of ``(x, lengths, None)`` batches sorted by clip length.

    The order of clips is ``SortedBatchSampler.order``; callers restore it. The loader has
    a generator of its own: iterating a DataLoader draws a seed from its generator, which
    would otherwise be torch's global one, so inference leaves the global RNG untouched.
    """
    sampler = SortedBatchSampler(clip_lengths(X), batch_size)
    return DataLoader(ClipDataset(X), batch_sampler=sampler, collate_fn=pad_collate, generator=torch.Generator())
