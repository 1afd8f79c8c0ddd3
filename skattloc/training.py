"""Lightning training machinery of :class:`~skattloc.AttLocTagger`: callbacks, the Trainer,
checkpoints and resuming an interrupted fit.

:meth:`AttLocTagger.fit <skattloc.AttLocTagger.fit>` is where sklearn meets Lightning; this
module holds what it hands to Lightning:

- :func:`make_trainer`: the ``Trainer`` from the estimator's parameters, with
  :class:`History` (``history_``), early stopping and :class:`BestWeights`, weight averaging
  and the checkpoint callbacks; :func:`quiet_lightning` silences Lightning's banners;
  :func:`seeded` runs the fit on seeded torch RNGs and restores the global ones after it.
  :func:`check_trainer_settings` refuses Lightning settings before any work;
  :func:`run_fit` runs ``Trainer.fit`` so that Ctrl-C reaches the caller as
  ``KeyboardInterrupt`` (Lightning alone turns it into ``SystemExit(1)``).
- Checkpoints (``checkpoint_dir``): :class:`LastCheckpoint` writes ``last.ckpt`` after
  every epoch through :class:`AtomicCheckpointIO`; :class:`TrainingState` stores what a
  resumed fit needs (the fit's fingerprint, the RNG states); :func:`resume_checkpoint`,
  :func:`read_checkpoint_fingerprint` and :func:`check_resume` decide whether a fit can
  continue from it; :func:`clean_checkpoint_dir` tidies up after a successful fit.

Everything here reads only the estimator's public parameters.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import numbers
import os
import pickle
import signal
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, Checkpoint, EarlyStopping
from lightning.pytorch.callbacks.weight_averaging import WeightAveraging
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ._version import __version__
from .data import move_to_device_if_small
from .params import EARLY_STOPPING_METRICS, check_callbacks, check_logger, resume_params  # noqa: F401  (check_* were public here)
from .persistence import ModelFileError, atomic_torch_save, find_damage, plain_data, refusal_reason, safe_torch_load

__all__ = [
    "AtomicCheckpointIO",
    "BestWeights",
    "CHECKPOINT_NAME",
    "History",
    "LastCheckpoint",
    "TrainingState",
    "check_resume",
    "check_trainer_settings",
    "checkpoint_callbacks",
    "checkpoint_file",
    "clean_checkpoint_dir",
    "fit_fingerprint",
    "make_trainer",
    "place_small_data",
    "quiet_lightning",
    "read_checkpoint_fingerprint",
    "resume_checkpoint",
    "run_fit",
    "seeded",
]

#: The file that ``fit`` writes in ``checkpoint_dir`` after every epoch.
CHECKPOINT_NAME = "last.ckpt"
_STATE_KEY = "skattloc_training_state"
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")


# ---------------------------------------------------------------------------- the Trainer
@contextlib.contextmanager
def quiet_lightning(verbose):
    """Silence Lightning's banners, tips and data-loader hints unless ``verbose``.

    Examples
    --------
    >>> import logging
    >>> from skattloc.training import quiet_lightning
    >>> with quiet_lightning(False):
    ...     logging.getLogger("lightning.pytorch").level == logging.WARNING
    True
    """
    if verbose:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*The number of training batches.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def seeded(seed, verbose=False):
    """Torch's RNGs (CPU and every GPU) seeded with ``seed`` inside, restored after; and
    Lightning quiet unless ``verbose``: a fit leaves the global random state untouched.

    Examples
    --------
    >>> import torch
    >>> from skattloc.training import seeded
    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices), quiet_lightning(verbose):
        torch.manual_seed(seed)
        yield


# What Lightning raises for a setting it refuses: MisconfigurationException (devices=0, a
# missing GPU), TypeError (devices="abc" or -1 on the CPU), ValueError (precision,
# strategy), ImportError (accelerator="tpu" without torch_xla), RuntimeError (CUDA).
_TRAINER_ERRORS = (MisconfigurationException, TypeError, ValueError, ImportError, RuntimeError)


def _plain(value) -> bool:
    """Plain data (what a Trainer argument can be without being an object with state)."""
    if value is None or isinstance(value, (numbers.Number, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _trainer_error(estimator, exc) -> ValueError:
    message = " ".join(str(exc).split()) or type(exc).__name__  # one line
    return ValueError(
        f"invalid Lightning setting (accelerator={estimator.accelerator!r}, devices={estimator.devices!r}, "
        f"precision={estimator.precision!r}, strategy={estimator.strategy!r}"
        + (f", trainer_kwargs={estimator.trainer_kwargs!r}" if estimator.trainer_kwargs else "")
        + f"): {message}"
    )


def check_trainer_settings(estimator) -> None:
    """Raise ``ValueError`` (one line) for Lightning settings that the ``Trainer`` refuses,
    before any work: ``fit`` calls it first, and so does ``skattloc fit`` before reading audio.

    ``trainer_kwargs`` keys must be arguments of ``lightning.pytorch.Trainer``; then a
    ``Trainer`` is built (a few milliseconds; it allocates nothing and writes no file) from
    ``accelerator``, ``devices``, ``precision``, ``strategy`` and the plain-data
    ``trainer_kwargs``. A ``strategy`` object, and ``trainer_kwargs`` values that are objects
    (callbacks, loggers, plugins), are left to the real ``Trainer`` of the fit, as they may
    keep state; its errors become ``ValueError`` too.

    Examples
    --------
    >>> from skattloc import AttLocTagger
    >>> from skattloc.training import check_trainer_settings
    >>> check_trainer_settings(AttLocTagger(accelerator="cpu"))
    >>> check_trainer_settings(AttLocTagger(trainer_kwargs={"bogus": 1}))
    Traceback (most recent call last):
    ...
    ValueError: trainer_kwargs has keys ['bogus'] that lightning.pytorch.Trainer does not take; expected Trainer arguments such as gradient_clip_val or accumulate_grad_batches
    """
    kwargs = dict(estimator.trainer_kwargs or {})
    accepted = set(inspect.signature(Trainer.__init__).parameters) - {"self"}
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ValueError(
            f"trainer_kwargs has keys {unknown} that lightning.pytorch.Trainer does not take; expected "
            f"Trainer arguments such as gradient_clip_val or accumulate_grad_batches"
        )
    if not isinstance(estimator.strategy, str) or not _plain(estimator.devices):
        return
    probe = dict(
        accelerator=estimator.accelerator, devices=estimator.devices, precision=estimator.precision,
        strategy=estimator.strategy, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )
    probe.update({k: v for k, v in kwargs.items() if _plain(v) and k not in ("default_root_dir", "callbacks", "logger", "plugins")})
    try:
        with quiet_lightning(False):
            Trainer(**probe)
    except _TRAINER_ERRORS as exc:
        raise _trainer_error(estimator, exc) from None


def make_trainer(estimator, history, checkpoint_callbacks=(), plugins=(), early_stopping=None):
    """The Lightning ``Trainer`` of a fit, from the estimator's parameters.

    Parameters
    ----------
    estimator : AttLocTagger
        Its ``accelerator``, ``devices``, ``precision``, ``strategy``, ``max_epochs``,
        ``patience``, ``ema_decay``, ``callbacks``, ``logger``, ``verbose``,
        ``checkpoint_dir`` and ``trainer_kwargs`` (which override the rest) are used.
    history : History
        Collects ``history_``.
    checkpoint_callbacks, plugins : sequence
        From :func:`checkpoint_callbacks` (empty without ``checkpoint_dir``).
    early_stopping : (str, str) or None
        ``(metric, mode)`` to stop early on (and restore the best epoch of), or None.

    Returns
    -------
    lightning.pytorch.Trainer

    Raises
    ------
    ValueError
        An invalid Lightning setting (Lightning's ``MisconfigurationException``).

    Examples
    --------
    >>> from skattloc import AttLocTagger
    >>> from skattloc.training import History, make_trainer
    >>> make_trainer(AttLocTagger(max_epochs=3, accelerator="cpu"), History()).max_epochs
    3
    """
    callbacks = [history, *checkpoint_callbacks]
    if estimator.ema_decay > 0:
        callbacks.append(WarmupEMA(float(estimator.ema_decay)))
    if early_stopping is not None:
        metric, mode = early_stopping
        # After the weight averaging: BestWeights snapshots the averaged weights it validated
        # (WarmupEMA swaps them out only when the validation ends) and restores the best
        # ones after WarmupEMA has put the final average in place.
        callbacks += [EarlyStopping(monitor=metric, patience=estimator.patience, mode=mode), BestWeights(metric, mode)]
    callbacks += list(estimator.callbacks or [])
    kwargs = dict(
        accelerator=estimator.accelerator,
        devices=estimator.devices,
        precision=estimator.precision,
        strategy=estimator.strategy,
        max_epochs=estimator.max_epochs,
        callbacks=callbacks,
        logger=estimator.logger,
        enable_progress_bar=bool(estimator.verbose),
        enable_model_summary=bool(estimator.verbose),
        enable_checkpointing=bool(checkpoint_callbacks),
        num_sanity_val_steps=0,
    )
    if estimator.checkpoint_dir is not None:  # Lightning writes nowhere else (logs included)
        kwargs.update(default_root_dir=os.fspath(estimator.checkpoint_dir), plugins=list(plugins))
    kwargs.update(estimator.trainer_kwargs or {})
    try:
        return Trainer(**kwargs)
    except _TRAINER_ERRORS as exc:  # an sklearn user expects a ValueError
        raise _trainer_error(estimator, exc) from exc


def ema_decay_at(decay: float, n_averaged):
    """The decay of the ``n``-th update (``n`` = updates so far): ``min(decay, (1 + n) / (10 + n))``.

    The ramp (as TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``) keeps
    the average close to the weights while there are few updates, so that a short fit
    (a small data set, few epochs) is not averaged with its first, untrained steps; from
    ``n = (10 decay - 1) / (1 - decay)`` updates on (891 for 0.99) the decay is ``decay``.
    """
    return torch.clamp((1.0 + n_averaged) / (10.0 + n_averaged), max=decay)


class WarmupEMA(WeightAveraging):
    """Lightning's weight averaging with an exponential moving average after every step,
    its decay ramped up by :func:`ema_decay_at`.

    The averaged weights (and batch-norm statistics) are the ones validated each epoch and
    the ones ``fit`` keeps; checkpoints hold both, so ``resume`` continues the average.
    """

    def __init__(self, decay: float):
        self.decay = float(decay)
        super().__init__(use_buffers=True, avg_fn=_EMAUpdate(self.decay))
        self._kept = False

    # The averaged weights stay in place until the whole validation has ended (Lightning
    # swaps them back at the end of the validation epoch): BestWeights, placed after this
    # callback, then snapshots the averaged weights it validated, and at the end of the fit
    # restores them after this callback has put the average in place.
    def on_validation_epoch_end(self, trainer, pl_module):
        pass

    def on_validation_end(self, trainer, pl_module):
        if self._average_model is not None:
            self._swap_models(pl_module)

    def on_train_end(self, trainer, pl_module):
        super().on_train_end(trainer, pl_module)
        self._kept = True

    def on_fit_end(self, trainer, pl_module):
        # A resumed fit that had no epoch left to train never reaches on_train_end.
        if not self._kept and self._average_model is not None:
            self._copy_average_to_current(pl_module)
            self._kept = True


class _EMAUpdate:
    """``avg_fn`` of :class:`WarmupEMA` (a class, not a closure: spawned DDP workers pickle it)."""

    def __init__(self, decay: float):
        self.decay = decay

    def __call__(self, averaged, current, n_averaged):
        d = ema_decay_at(self.decay, torch.as_tensor(n_averaged, device=averaged.device).float())
        return d * averaged + (1.0 - d) * current


class _InterruptWatch(Callback):
    """Remembers a KeyboardInterrupt that Lightning caught (see :func:`run_fit`)."""

    def __init__(self):
        self.interrupt = None

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, KeyboardInterrupt):
            self.interrupt = exception


def train_network(estimator, model, train, val, seed, Y, resume_from=None, saved=None, frames=None, groups=None):
    """Train ``model`` as ``estimator``'s parameters say: the LightningModule, the loaders,
    checkpoints and resume, early stopping, the Trainer. Returns the trained module.

    Parameters
    ----------
    estimator : AttLocTagger
    model : CGRNN
        Built and seeded by the caller (inside :func:`seeded`).
    train, val : (clips, 0/1 tags (n_clips, n_classes))
        Training and validation data; ``val`` may be None. NaN rows of the training tags
        are unlabeled clips (then the mean teacher trains, unless ``consistency_weight``
        is 0).
    seed : int
        Seeds the batch order.
    Y : ndarray (n_clips, n_classes)
        All of ``fit``'s tags (the resume fingerprint's).
    resume_from, saved : path and fingerprint of the checkpoint a resumed fit continues.
    frames : list of (ndarray (n_frames_i, n_classes) or None), optional
        Frame targets of the training clips with event times (:mod:`skattloc.supervision`).
    groups : ndarray (n_clips,), optional
        ``fit``'s groups, which decided the validation split (the resume fingerprint's).

    Returns
    -------
    AttLocModule
        With the trained ``model`` and the per-epoch ``epoch_history``.
    """
    from . import data as _data
    from .module import AttLocModule

    unlabeled = bool(np.isnan(train[1]).any())
    mean_teacher = unlabeled and estimator.consistency_weight > 0
    # batches of four (x, lengths, y, f) as soon as any label is not a plain tag
    if frames is None and unlabeled:
        frames = [None] * len(train[1])

    keywords = [k for k in inspect.signature(AttLocModule.__init__).parameters if k not in ("self", "model", "mean_teacher")]
    module = AttLocModule(model, mean_teacher=mean_teacher, **{k: getattr(estimator, k) for k in keywords})
    train_dl = _data.train_loader(*train, estimator.batch_size_, seed, estimator.num_workers, frames=frames,
                                  unlabeled_ratio=estimator.unlabeled_ratio if mean_teacher else 0.0)
    val_dl = None if val is None else _data.train_loader(*val, estimator.batch_size_, seed, 0, shuffle=False)
    history = History()
    ckpt_callbacks, plugins, created_dir = [], [], False
    if estimator.checkpoint_dir is not None:
        fingerprint = fit_fingerprint(estimator, seed, model.n_mels, estimator.classes_, Y, frames, groups)
        if resume_from is not None:
            check_resume(resume_from, saved, fingerprint)
        created_dir = not os.path.isdir(estimator.checkpoint_dir)
        ckpt_callbacks, plugins = checkpoint_callbacks(estimator, fingerprint, train_dl.generator)
    metric = estimator.early_stopping_metric
    stopping = (metric, EARLY_STOPPING_METRICS[metric]) if (estimator.early_stopping and val_dl is not None) else None
    trainer = make_trainer(estimator, history, ckpt_callbacks, plugins, early_stopping=stopping)
    place_small_data(trainer, [train_dl, val_dl])
    run_fit(  # Ctrl-C raises KeyboardInterrupt (Lightning's is SystemExit(1))
        trainer, module, train_dataloaders=train_dl, val_dataloaders=val_dl,
        ckpt_path=None if resume_from is None else os.fspath(resume_from),
        weights_only=True if resume_from is not None else None,
    )
    if estimator.checkpoint_dir is not None:
        clean_checkpoint_dir(estimator, created_dir)
    return module


def run_fit(trainer, module, **kwargs):
    """``trainer.fit(module, **kwargs)``, letting Ctrl-C reach the caller as ``KeyboardInterrupt``.

    Lightning 2.x catches a ``KeyboardInterrupt`` in ``Trainer.fit``
    (``lightning.pytorch.trainer.call._call_and_handle_interrupt``): it runs the callbacks'
    ``on_exception``, sets SIGINT to be ignored, and calls ``sys.exit(1)``. A script would see
    ``SystemExit(1)`` from ``AttLocTagger.fit`` and ignore every later Ctrl-C. Here the
    interrupt is recorded by a callback, re-raised in place of that ``SystemExit``, and the
    SIGINT handler of before the fit is restored. The checkpoint of the last finished epoch
    (``checkpoint_dir``) is left as it was, to resume from.
    """
    watch = _InterruptWatch()
    trainer.callbacks.append(watch)
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        return trainer.fit(module, **kwargs)
    except SystemExit:
        if watch.interrupt is None:
            raise
        raise watch.interrupt from None
    finally:
        if handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)


def place_small_data(trainer, loaders) -> bool:
    """On a single GPU, put small in-memory training data on it for the whole fit
    (``docs/performance.md``); see :func:`skattloc.data.move_to_device_if_small`.

    Returns whether the data moved.
    """
    root = trainer.strategy.root_device
    if root.type != "cuda" or trainer.world_size != 1:
        return False
    return move_to_device_if_small(loaders, root, torch.cuda.mem_get_info(root)[0])


class History(Callback):
    """Collects the epoch-level metrics that Lightning logged: the rows of ``history_``.

    Examples
    --------
    >>> from skattloc.training import History
    >>> h = History()
    >>> h.load_state_dict({"rows": [{"epoch": 0, "train_loss": 0.7}]})
    >>> h.state_dict()
    {'rows': [{'epoch': 0, 'train_loss': 0.7}]}
    """

    state_key = "_History"  # its checkpoint key since it was skattloc.estimator._History

    def __init__(self):
        self.rows = []

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        row = {"epoch": int(trainer.current_epoch)}
        for k, v in trainer.callback_metrics.items():
            row[k] = float(v)
        self.rows.append(row)
        # Also on the module: Lightning's spawn/fork launchers send it back (extra state).
        pl_module.epoch_history = [dict(r) for r in self.rows]

    # Saved in checkpoints, so a resumed fit's history_ holds every epoch.
    def state_dict(self):
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state):
        self.rows = [dict(r) for r in state["rows"]]


class BestWeights(Callback):
    """Keeps the weights of the epoch with the best ``metric`` (``mode`` "min" or "max")
    and restores them when the fit ends.

    Examples
    --------
    >>> from skattloc.training import BestWeights
    >>> BestWeights("val_map", "max").sign
    -1.0
    """

    state_key = "_BestWeights"  # its checkpoint key since it was skattloc.estimator._BestWeights

    def __init__(self, metric="val_loss", mode="min"):
        self.metric, self.sign = metric, (1.0 if mode == "min" else -1.0)
        self.best = float("inf")
        self.state = None

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is not None and self.sign * float(value) < self.best:
            self.best = self.sign * float(value)
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()}

    def on_fit_end(self, trainer, pl_module):
        if self.state is not None:
            pl_module.model.load_state_dict(self.state)

    def state_dict(self):
        return {"best": self.best, "state": self.state}

    def load_state_dict(self, state):
        self.best, self.state = float(state["best"]), state["state"]


# ---------------------------------------------------------------------------- checkpoints
def checkpoint_file(estimator):
    """``Path(checkpoint_dir) / "last.ckpt"``, or None when ``checkpoint_dir`` is None.

    Examples
    --------
    >>> from skattloc import AttLocTagger
    >>> from skattloc.training import checkpoint_file
    >>> checkpoint_file(AttLocTagger(checkpoint_dir="runs")).as_posix(), checkpoint_file(AttLocTagger())
    ('runs/last.ckpt', None)
    """
    d = estimator.checkpoint_dir
    return None if d is None else Path(d) / CHECKPOINT_NAME


def resume_checkpoint(estimator):
    """The checkpoint that ``fit`` resumes from, or None (with a warning when ``resume``
    is set but there is no checkpoint yet, like Lightning's ``ckpt_path="last"``)."""
    if not estimator.resume:
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


def fit_fingerprint(estimator, seed, n_features, classes, Y, frames=None, groups=None) -> dict:
    """What a resumed fit must share with the interrupted one, as plain data.

    Examples
    --------
    >>> import numpy as np
    >>> from skattloc import AttLocTagger
    >>> from skattloc.training import fit_fingerprint
    >>> fp = fit_fingerprint(AttLocTagger(), 0, 40, np.array(["dog"]), np.ones((3, 1)))
    >>> fp["n_clips"], fp["classes"], fp["params"]["pooling"]
    (3, ['dog'], 'att_loc')
    """
    params = estimator.get_params(deep=False)
    extra = {}
    if frames is not None:  # the frame targets of timed clips (event times) must match too
        digest = hashlib.sha1()
        for i, f in enumerate(frames):
            if f is not None:
                digest.update(np.int64(i).tobytes() + np.ascontiguousarray(f, dtype=np.float32).tobytes())
        extra["frames_sha1"] = digest.hexdigest()
    if groups is not None:  # they decided the validation split
        extra["groups_sha1"] = hashlib.sha1("\x00".join(map(str, np.asarray(groups).tolist())).encode()).hexdigest()
    return {
        **extra,
        "seed": int(seed),
        "n_clips": int(len(Y)),
        "n_features": int(n_features),
        "classes": plain_data(np.asarray(classes).tolist())[1],
        "y_sha1": hashlib.sha1(np.ascontiguousarray(Y, dtype=np.float32).tobytes()).hexdigest(),
        # the parameters a resume must match, declared in the parameter table (skattloc.params)
        "params": {k: plain_data(params[k])[1] for k in resume_params() if k in params},
        "skattloc_version": __version__,
    }


def read_checkpoint_fingerprint(path) -> dict:
    """The fingerprint that :class:`TrainingState` stored in a Lightning checkpoint, with
    ``"epochs_done"``: how many epochs the checkpoint has finished.

    Read with ``torch.load(weights_only=True)``: a checkpoint holding pickled Python objects
    is refused with :class:`~skattloc.persistence.ModelFileError` without running them.
    """
    path = os.fspath(path)
    try:
        damage = find_damage(path)
        if damage is not None:
            raise ModelFileError(
                f"cannot resume from {os.fspath(path)!r}: it is damaged: {damage}; delete it, or set resume=False "
                f"to train from the first epoch"
            )
        ckpt = safe_torch_load(path)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"refused to resume from {path!r}: the checkpoint holds Python objects other than "
            f"tensors and plain data, which could run code when unpickled ({refusal_reason(exc)})"
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
    return {**state["meta"], "epochs_done": int(ckpt.get("epoch", -1)) + 1}


def check_resume_request(path, saved: dict, random_state, max_epochs) -> None:
    """Raise ValueError when a resumed fit asks for what its checkpoint cannot give: another
    integer ``random_state`` than the seed it trains with, or a ``max_epochs`` below the
    epochs it has finished (it would silently train on, or keep them)."""
    seed = int(saved["seed"])
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and int(random_state) != seed:
        raise ValueError(
            f"resume=True continues the fit in {os.fspath(path)!r}, which trains with seed {seed}, but random_state="
            f"{random_state}; give random_state={seed} (or None) to resume it, or resume=False to train anew"
        )
    if max_epochs < saved.get("epochs_done", 0):
        raise ValueError(
            f"resume=True: {os.fspath(path)!r} has finished {saved['epochs_done']} epochs, more than max_epochs="
            f"{max_epochs}; give max_epochs >= {saved['epochs_done']} to resume it, or resume=False to train anew"
        )


def check_resume(path, saved: dict, current: dict) -> None:
    """Raise ValueError naming every difference between the checkpoint's fit and this one.

    Examples
    --------
    >>> from skattloc.training import check_resume
    >>> fp = {"n_clips": 3, "n_features": 40, "classes": [0], "y_sha1": "x", "params": {"batch_size": 8}}
    >>> check_resume("last.ckpt", fp, {**fp, "params": {"batch_size": 16}})
    Traceback (most recent call last):
    ...
    ValueError: cannot resume from 'last.ckpt': it was written by a fit with other data or parameters (batch_size: 8 in the checkpoint, 16 now). Resume with the same X, y and parameters, or set resume=False to train from the first epoch (the checkpoint is then overwritten)
    """
    diffs = []
    for key in ("n_clips", "n_features", "classes", "y_sha1"):
        if saved.get(key) != current[key]:
            what = "Y (the clip tags)" if key == "y_sha1" else key
            diffs.append(what if key == "y_sha1" else f"{what}: {saved.get(key)!r} in the checkpoint, {current[key]!r} now")
    if saved.get("frames_sha1") != current.get("frames_sha1"):
        diffs.append("the event times (frame targets)")
    if saved.get("groups_sha1") != current.get("groups_sha1"):
        diffs.append("groups (which decide the validation split)")
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


def checkpoint_callbacks(estimator, fingerprint, generator):
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
        atomic_torch_save(checkpoint, path)


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
