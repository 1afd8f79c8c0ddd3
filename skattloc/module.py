"""The LightningModule: loss, optimizer and training-time metrics around :class:`CGRNN`."""
from __future__ import annotations

import warnings
from typing import Optional

import lightning.pytorch as pl
import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision, MultilabelAUROC, MultilabelAveragePrecision
from torchmetrics.utilities import dim_zero_cat

from .model import CGRNN, clip_bce, length_mask
from .params import LR_SCHEDULES  # the option list lives in the torch-free parameter table


def spec_augment(x, lengths, n_masks, time_width, freq_width, fill):
    """SpecAugment-style time and frequency masking of a batch of log-mel clips.

    Each clip gets ``n_masks`` time masks and ``n_masks`` frequency masks (Park et al.,
    2019, without time warping). A time mask sets ``w ~ U{0..time_width}`` consecutive
    valid frames to ``fill``; a frequency mask sets ``f ~ U{0..freq_width}`` consecutive
    mel bands of every frame to ``fill``. Runs on the batch's device, with no host sync.

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
        Raw log-mel frames (before the network's standardization).
    lengths : Tensor of int, shape (batch,), or None
        Valid frames per clip; time masks stay inside them. None: all frames are valid.
    n_masks : int
        Time masks and frequency masks per clip (0 returns ``x`` unchanged).
    time_width : int
        Largest time mask, in frames.
    freq_width : int
        Largest frequency mask, in mel bands.
    fill : Tensor, shape (n_mels,) or scalar
        Value written into masked cells; the network's ``input_mean`` makes a masked
        cell 0 after standardization.

    Returns
    -------
    Tensor, shape (batch, n_frames, n_mels)
        A new tensor; ``x`` is not modified.
    """
    if n_masks <= 0:
        return x
    batch, n_frames, n_mels = x.shape
    dev = x.device
    if lengths is None:
        lengths = torch.full((batch,), n_frames, device=dev, dtype=torch.long)
    lengths = lengths.to(dev)
    t = torch.arange(n_frames, device=dev)
    f = torch.arange(n_mels, device=dev)
    drop_t = torch.zeros(batch, n_frames, dtype=torch.bool, device=dev)
    drop_f = torch.zeros(batch, n_mels, dtype=torch.bool, device=dev)
    for _ in range(int(n_masks)):
        w = torch.minimum((torch.rand(batch, device=dev) * (time_width + 1)).long(), lengths)
        start = (torch.rand(batch, device=dev) * (lengths - w + 1)).long()
        drop_t |= (t >= start[:, None]) & (t < (start + w)[:, None])
        fw = (torch.rand(batch, device=dev) * (min(freq_width, n_mels) + 1)).long()
        fstart = (torch.rand(batch, device=dev) * (n_mels - fw + 1)).long()
        drop_f |= (f >= fstart[:, None]) & (f < (fstart + fw)[:, None])
    drop = drop_t[:, :, None] | drop_f[:, None, :]
    fill = torch.as_tensor(fill, dtype=x.dtype, device=dev)
    return torch.where(drop, fill, x)


def mixup(x, y, lengths, alpha, fill):
    """Mixup (Zhang et al., 2018) of log-mel clips and their clip tags.

    Clip ``i`` becomes ``lam_i x_i + (1 - lam_i) x_j`` with ``j`` a random permutation of
    the batch and ``lam_i ~ Beta(alpha, alpha)``; its tags become the same convex
    combination ``lam_i y_i + (1 - lam_i) y_j`` (soft targets for the BCE of eq. 1).
    Padding is replaced by ``fill`` before mixing, and a mixed clip's length is the longer
    of the two.

    Parameters
    ----------
    x : Tensor, shape (batch, n_frames, n_mels)
        Raw log-mel frames.
    y : Tensor, shape (batch, n_classes)
        0/1 (or already soft) clip tags.
    lengths : Tensor of int, shape (batch,), or None
        Valid frames per clip.
    alpha : float
        Beta distribution parameter (> 0).
    fill : Tensor, shape (n_mels,) or scalar
        Value of padded frames before mixing (the network's ``input_mean``).

    Returns
    -------
    x_mix : Tensor, shape (batch, n_frames, n_mels)
    y_mix : Tensor, shape (batch, n_classes), values in [0, 1]
    lengths_mix : Tensor of int, shape (batch,), or None
    lam : Tensor, shape (batch,), values in [0, 1]
    perm : Tensor of int, shape (batch,)
    """
    batch, n_frames, _ = x.shape
    dev = x.device
    a = torch.tensor(float(alpha), device=dev)
    lam = torch.distributions.Beta(a, a).sample((batch,)).to(x.dtype)
    perm = torch.randperm(batch, device=dev)
    if lengths is not None:
        valid = length_mask(lengths.to(dev), n_frames).unsqueeze(-1)
        x = torch.where(valid, x, torch.as_tensor(fill, dtype=x.dtype, device=dev))
        lengths = torch.maximum(lengths, lengths[perm.to(lengths.device)])
    lx = lam.view(batch, 1, 1)
    x_mix = lx * x + (1 - lx) * x[perm]
    ly = lam.to(y.dtype).view(batch, 1)
    y_mix = ly * y + (1 - ly) * y[perm]
    return x_mix, y_mix, lengths, lam, perm


class MacroEER(Metric):
    """Macro equal error rate (DCASE 2016 Task 4, :func:`skattloc.metrics.equal_error_rate`)
    of a whole validation set, as a torchmetrics ``Metric``.

    Logged like the other validation metrics, it is computed (and, under DDP, gathered over
    ranks) before the epoch-end callbacks run, so early stopping and the best-epoch weights
    see this epoch's value. Classes with no positive or no negative clip are left out; with
    none left, or non-finite scores (a diverged network), the value is 1.0 or NaN.
    """

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores, targets):
        self.scores.append(scores.detach().float())
        self.targets.append(targets.detach().float())

    def compute(self):
        from .metrics import equal_error_rate

        scores = dim_zero_cat(self.scores).cpu().numpy()
        targets = dim_zero_cat(self.targets).cpu().numpy().round()
        if not np.isfinite(scores).all():
            return torch.tensor(float("nan"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class with no positive clip: NaN, left out
            eer = equal_error_rate(targets, scores, average="macro")
        return torch.tensor(float(eer) if np.isfinite(eer) else 1.0)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


class AttLocModule(pl.LightningModule):
    """Trains a :class:`~skattloc.model.CGRNN` on clip-level tags.

    Parameters
    ----------
    model : CGRNN
        The network. Its ``input_mean``/``input_scale`` buffers must already be set.
    learning_rate : float, default=1e-3
        Adam's step size (the paper uses Adam).
    weight_decay : float, default=0.0
        Adam's L2 penalty.
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"constant"``: Adam at ``learning_rate`` throughout (the paper). ``"cosine"``:
        cosine annealing from ``learning_rate`` to 0 over all training steps, updated
        every step.
    spec_augment : int, default=0
        Time masks and frequency masks per training clip (see :func:`spec_augment`);
        0 is off (the paper). Never applied at validation or inference.
    time_mask_width, freq_mask_width : int, default=10, 6
        Largest time mask in frames and frequency mask in mel bands.
    mixup_alpha : float, default=0.0
        Beta parameter of :func:`mixup` on training batches; 0 is off (the paper).

    Notes
    -----
    The loss is the binary cross-entropy of eq. (1) on the clip output, averaged over clips
    and classes. Validation logs ``val_loss``, ``val_auroc`` and ``val_map`` (macro AUROC
    and average precision over classes, from torchmetrics) and ``val_eer`` (macro equal error
    rate of :func:`skattloc.metrics.equal_error_rate`, 1.0 when no class has both positive
    and negative clips) once per epoch. A non-finite
    training loss is detected without a per-step host sync and raises
    :class:`NonFiniteLossError` at the end of the epoch.
    """

    def __init__(
        self,
        model: CGRNN,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        spec_augment: int = 0,
        time_mask_width: int = 10,
        freq_mask_width: int = 6,
        mixup_alpha: float = 0.0,
    ):
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        self.model = model
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.spec_augment = int(spec_augment)
        self.time_mask_width = int(time_mask_width)
        self.freq_mask_width = int(freq_mask_width)
        self.mixup_alpha = float(mixup_alpha)
        n = model.n_classes
        if n > 1:
            self.val_auroc = MultilabelAUROC(num_labels=n, average="macro")
            self.val_map = MultilabelAveragePrecision(num_labels=n, average="macro")
        else:  # torchmetrics' multilabel metrics need at least 2 labels
            self.val_auroc = BinaryAUROC()
            self.val_map = BinaryAveragePrecision()
        self.register_buffer("_nonfinite", torch.zeros((), dtype=torch.bool), persistent=False)
        self.val_eer = MacroEER()
        # Per-epoch metrics (filled by the estimator's history callback). Part of the
        # state_dict as extra state, so Lightning's spawn/fork launchers (ddp_spawn,
        # ddp_notebook) send it back to the calling process with rank 0's weights.
        self.epoch_history = []

    def get_extra_state(self):
        return {"epoch_history": [dict(r) for r in self.epoch_history]}

    def set_extra_state(self, state):
        self.epoch_history = [dict(r) for r in state.get("epoch_history", [])]

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        return self.model(x, lengths)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # The clip lengths stay on the CPU: the network reads them on the host (are all
        # clips full length? pack_padded_sequence wants them there), which on a GPU would
        # be a device-to-host sync every step. x and y move as usual (non-blocking).
        if isinstance(batch, (tuple, list)) and len(batch) == 3 and isinstance(batch[1], torch.Tensor):
            x, lengths, y = batch
            x, y = super().transfer_batch_to_device((x, y), device, dataloader_idx)
            return x, lengths, y
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def augment(self, x, lengths, y):
        """The training-time augmentations (SpecAugment, then mixup) of one batch."""
        fill = self.model.input_mean
        if lengths is not None and bool((lengths == x.shape[1]).all()):
            lengths = None  # all frames valid (lengths live on the host: no device sync in mixup)
        if self.spec_augment > 0:
            x = spec_augment(x, lengths, self.spec_augment, self.time_mask_width, self.freq_mask_width, fill)
        if self.mixup_alpha > 0:
            x, y, lengths, _, _ = mixup(x, y, lengths, self.mixup_alpha, fill)
        return x, lengths, y

    def training_step(self, batch, batch_idx):
        x, lengths, y = batch
        x, lengths, y = self.augment(x, lengths, y)
        out = self.model(x, lengths)
        loss = clip_bce(out.clip, y)
        self._nonfinite |= ~torch.isfinite(loss.detach())
        # sync_dist: under DDP the epoch mean is over all ranks' batches (reduced once, at
        # the epoch's end; a no-op on one device).
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0], sync_dist=True)
        return loss

    def on_train_epoch_end(self):
        # Any rank's NaN stops every rank (a lone rank raising would leave the others
        # waiting in the next all-reduce).
        if self.trainer.strategy.reduce_boolean_decision(bool(self._nonfinite), all=False):
            raise NonFiniteLossError(
                f"the training loss became NaN or infinite in epoch {self.current_epoch}; "
                f"lower learning_rate, check the input features, or use precision='32-true'"
            )

    def validation_step(self, batch, batch_idx):
        x, lengths, y = batch
        out = self.model(x, lengths)
        self.log("val_loss", clip_bce(out.clip, y), on_step=False, on_epoch=True, batch_size=x.shape[0], sync_dist=True)
        p, t = out.clip.float(), y.long()
        if self.model.n_classes == 1:
            p, t = p.squeeze(-1), t.squeeze(-1)
        self.val_auroc.update(p, t)
        self.val_map.update(p, t)
        self.log("val_auroc", self.val_auroc, on_step=False, on_epoch=True)
        self.log("val_map", self.val_map, on_step=False, on_epoch=True)
        self.val_eer.update(p.reshape(len(t), -1), t.reshape(len(t), -1))
        self.log("val_eer", self.val_eer, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
