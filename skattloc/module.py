"""The LightningModule: loss, optimizer and training-time metrics around :class:`CGRNN`."""
from __future__ import annotations

import copy
from typing import Optional

import lightning.pytorch as pl
import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from .augment import filter_augment, mixup, power_mix, spec_augment, time_shift  # noqa: F401 (re-exported)
from .model import CGRNN, clip_bce
from .params import LR_SCHEDULES  # the option list lives in the torch-free parameter table


def _masked_mean(values, mask):
    """Mean of ``values`` where ``mask`` is 1 (0 when the mask is empty); no host sync."""
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _masked_bce(p, t, mask, eps: float = 1e-7):
    """The BCE of eq. (1) on the cells where ``mask`` is 1 (NaN targets elsewhere)."""
    p = p.float().clamp(eps, 1.0 - eps)
    t = torch.nan_to_num(t.float())
    return _masked_mean(-(t * torch.log(p) + (1.0 - t) * torch.log1p(-p)), mask.float())


def _localize_output(out):
    """``z_att(t) O(t)`` (``O(t)`` without attention): the default ``localize`` output."""
    return out.frame if out.att is None else out.att.unsqueeze(-1) * out.frame


class _MacroClipMetric(Metric):
    """A macro average over classes of a clip-level metric of a whole validation set, as a
    torchmetrics ``Metric`` (scores and targets of shape ``(n_clips, n_classes)``).

    Logged like the other validation metrics, it is computed (and, under DDP, gathered over
    ranks) before the epoch-end callbacks run, so early stopping and the best-epoch weights
    see this epoch's value. Classes with no positive or no negative clip in the validation
    set are left out of the mean (a small validation split of many tags often lacks some),
    without a warning per epoch; with none left the value is :attr:`worst`. Non-finite
    scores (a diverged network) give NaN.
    """

    full_state_update = False
    worst = float("nan")

    def __init__(self):
        super().__init__()
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores, targets):
        self.scores.append(scores.detach().float().reshape(len(scores), -1))
        self.targets.append(targets.detach().float().reshape(len(targets), -1))

    def per_class(self, y, s):  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self):
        scores = dim_zero_cat(self.scores).cpu().numpy()
        targets = dim_zero_cat(self.targets).cpu().numpy().round()
        if not np.isfinite(scores).all():
            return torch.tensor(float("nan"))
        values = [self.per_class(targets[:, k], scores[:, k]) for k in range(targets.shape[1])
                  if 0 < targets[:, k].sum() < len(targets)]
        return torch.tensor(float(np.mean(values)) if values else self.worst)


class MacroEER(_MacroClipMetric):
    """Macro equal error rate (DCASE 2016 Task 4, :func:`skattloc.metrics.equal_error_rate`);
    1.0 when no class has both positive and negative clips."""

    worst = 1.0

    def per_class(self, y, s):
        from .metrics import equal_error_rate

        return float(equal_error_rate(y, s, average="macro"))


class MacroAUROC(_MacroClipMetric):
    """Macro area under the ROC curve (``sklearn.metrics.roc_auc_score`` per class);
    0.0 when no class has both positive and negative clips."""

    worst = 0.0

    def per_class(self, y, s):
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, s))


class MacroAP(_MacroClipMetric):
    """Macro average precision (``sklearn.metrics.average_precision_score`` per class);
    0.0 when no class has both positive and negative clips."""

    worst = 0.0

    def per_class(self, y, s):
        from sklearn.metrics import average_precision_score

        return float(average_precision_score(y, s))


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
    power_mix : float in [0, 1], default=0.0
        Share of the training batches mixed by :func:`~skattloc.augment.power_mix` (mel
        power added, tags united) instead of mixup; 0 is off.
    time_shift : float in [0, 1), default=0.0
        Largest circular time shift (:func:`~skattloc.augment.time_shift`), as a share of
        each clip's length; 0 is off.
    filter_augment : float, default=0.0
        Largest FilterAugment band gain (:func:`~skattloc.augment.filter_augment`), in dB;
        0 is off.
    frame_loss_weight : float, default=1.0
        Weight of the frame loss on clips with event times (batches ``(x, lengths, y, f)``).
    consistency_weight : float, default=2.0
        Largest weight of the mean teacher's consistency loss (with ``mean_teacher``).
    consistency_rampup : int, default=20
        Epochs over which that weight ramps up along ``exp(-5 (1 - t)^2)``.
    teacher_decay : float, default=0.999
        The teacher's exponential moving average of the student's weights.
    mean_teacher : bool, default=False
        Keep a teacher (a copy of the network, updated as an EMA of the student after every
        step) and pull the student's clip and frame outputs towards the teacher's.

    Notes
    -----
    The loss is the binary cross-entropy of eq. (1) on the clip output, averaged over clips
    and classes. Validation logs ``val_loss``, ``val_auroc`` and ``val_map`` (macro AUROC
    and average precision over classes, from torchmetrics) and ``val_eer`` (macro equal error
    rate of :func:`skattloc.metrics.equal_error_rate`, 1.0 when no class has both positive
    and negative clips) once per epoch. A non-finite
    training loss is detected without a per-step host sync and raises
    :class:`NonFiniteLossError` at the end of the epoch.

    Batches of four, ``(x, lengths, y, f)``, carry every kind of label (see
    :mod:`skattloc.supervision`): rows of ``y`` that are NaN are unlabeled clips (no clip
    loss), ``f`` holds frame targets (NaN where a clip has no event times, and on padding).
    Their loss is the clip BCE over the labelled clips, plus ``frame_loss_weight`` times the
    frame BCE of ``z_att(t) O(t)`` (the ``localize`` output) over the timed frames, plus,
    with ``mean_teacher``, the ramped-up consistency weight times the mean squared error
    between the student's and the teacher's clip and frame outputs on every clip (Tarvainen
    & Valpola, 2017; the DESED baseline of DCASE task 4). Mixup then mixes clips only with
    clips of their own kind. Batches of three are clip tags alone, trained exactly as before.
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
        power_mix: float = 0.0,
        time_shift: float = 0.0,
        filter_augment: float = 0.0,
        # every label (skattloc.supervision): the frame loss of timed clips, the mean teacher
        frame_loss_weight: float = 1.0, consistency_weight: float = 2.0, consistency_rampup: int = 20,
        teacher_decay: float = 0.999, mean_teacher: bool = False,
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
        self.power_mix = float(power_mix)
        self.time_shift = float(time_shift)
        self.filter_augment = float(filter_augment)
        self.frame_loss_weight = float(frame_loss_weight)
        self.consistency_weight = float(consistency_weight)
        self.consistency_rampup = int(consistency_rampup)
        self.teacher_decay = float(teacher_decay)
        self.teacher = None
        if mean_teacher:  # a submodule: checkpointed with the student, so a resume continues it
            self.teacher = copy.deepcopy(model)
            self.teacher.requires_grad_(False)
        self.val_auroc = MacroAUROC()
        self.val_map = MacroAP()
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
        if isinstance(batch, (tuple, list)) and len(batch) in (3, 4) and isinstance(batch[1], torch.Tensor):
            x, lengths, *targets = batch
            x, *targets = super().transfer_batch_to_device((x, *targets), device, dataloader_idx)
            return (x, lengths, *targets)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def augment(self, x, lengths, y, f=None, groups=None):
        """The training-time augmentations of one batch (:mod:`skattloc.augment`), in this
        order: circular time shift, FilterAugment, SpecAugment, then one mixing (in linear
        power on a share ``power_mix`` of the batches, else mixup). Frame targets ``f``
        move and mix with their clips; ``groups`` keeps each kind of clip among its own.

        Returns ``(x, lengths, y, f)``; ``lengths`` is None when every frame is valid."""
        fill = self.model.input_mean
        if lengths is not None and bool((lengths == x.shape[1]).all()):
            lengths = None  # all frames valid (lengths live on the host: no device sync in mixup)
        if self.time_shift > 0:
            x, f = time_shift(x, lengths, self.time_shift, f)
        if self.filter_augment > 0:
            x = filter_augment(x, self.filter_augment)
        if self.spec_augment > 0:
            x = spec_augment(x, lengths, self.spec_augment, self.time_mask_width, self.freq_mask_width, fill)
        if self.power_mix > 0 and float(torch.rand(())) < self.power_mix:  # drawn only when on: same RNG stream
            x, y, lengths, f, _ = power_mix(x, y, lengths, groups=groups, f=f)
        elif self.mixup_alpha > 0:
            x, y, lengths, lam, perm = mixup(x, y, lengths, self.mixup_alpha, fill, groups=groups)
            if f is not None:
                lf = lam.to(f.dtype).view(-1, 1, 1)
                f = lf * f + (1 - lf) * f[perm]
        return x, lengths, y, f

    def training_step(self, batch, batch_idx):
        if len(batch) == 4:
            loss = self._every_label_step(*batch)
        else:
            x, lengths, y = batch
            x, lengths, y, _ = self.augment(x, lengths, y)
            out = self.model(x, lengths)
            loss = clip_bce(out.clip, y)
        x = batch[0]
        self._nonfinite |= ~torch.isfinite(loss.detach())
        # sync_dist: under DDP the epoch mean is over all ranks' batches (reduced once, at
        # the epoch's end; a no-op on one device).
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0], sync_dist=True)
        return loss

    def _every_label_step(self, x, lengths, y, f):
        """The loss of a batch with unlabeled clips and frame targets (see the class notes)."""
        unlabeled = torch.isnan(y).any(dim=1)
        timed = ~torch.isnan(f).all(dim=2).all(dim=1)
        x, lengths_aug, y, f = self.augment(x, lengths, y, f, groups=unlabeled.long() * 2 + timed.long())
        lengths = lengths_aug if lengths_aug is not None else lengths
        out = self.model(x, lengths)
        labelled = (~unlabeled).to(out.clip.dtype).unsqueeze(1).expand_as(out.clip)
        loss = _masked_bce(out.clip, y, labelled)
        frame = _localize_output(out)
        frame_mask = (~torch.isnan(f)).to(frame.dtype)
        loss = loss + self.frame_loss_weight * _masked_bce(frame, f, frame_mask)
        if self.teacher is not None:
            with torch.no_grad():
                teacher_out = self.teacher(x, lengths)
            valid = out.mask.to(frame.dtype).unsqueeze(-1).expand_as(frame)
            consistency = (out.clip.float() - teacher_out.clip.float()).pow(2).mean()
            consistency = consistency + _masked_mean((frame.float() - _localize_output(teacher_out).float()).pow(2), valid)
            loss = loss + self.consistency_weight * self._rampup() * consistency
        return loss

    def _rampup(self) -> float:
        """``exp(-5 (1 - t)^2)`` with ``t`` the share of the ramp-up steps done, then 1."""
        total = self.consistency_rampup * max(1, int(self.trainer.num_training_batches))
        if total <= 0:
            return 1.0
        t = min(1.0, self.global_step / total)
        return float(np.exp(-5.0 * (1.0 - t) ** 2))

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.teacher is None:
            return
        # the teacher follows the student: an EMA of the weights (warm-up as DESED's), the
        # student's buffers (batch-norm statistics) as they are
        decay = min(1.0 - 1.0 / (self.global_step + 1), self.teacher_decay)
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.model.parameters()):
                t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
            for t, s in zip(self.teacher.buffers(), self.model.buffers()):
                t.copy_(s)

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
        p, t = out.clip.float(), y
        self.val_auroc.update(p, t)
        self.val_map.update(p, t)
        self.log("val_auroc", self.val_auroc, on_step=False, on_epoch=True)
        self.log("val_map", self.val_map, on_step=False, on_epoch=True)
        self.val_eer.update(p, t)
        self.log("val_eer", self.val_eer, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
