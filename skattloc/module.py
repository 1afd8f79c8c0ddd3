"""The LightningModule: loss, optimizer and training-time metrics around :class:`CGRNN`."""
from __future__ import annotations

from typing import Optional

import lightning.pytorch as pl
import torch
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision, MultilabelAUROC, MultilabelAveragePrecision

from .model import CGRNN, clip_bce


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

    Notes
    -----
    The loss is the binary cross-entropy of eq. (1) on the clip output, averaged over clips
    and classes. Validation logs ``val_loss``, ``val_auroc`` and ``val_map`` (macro AUROC
    and average precision over classes, from torchmetrics) once per epoch. A non-finite
    training loss is detected without a per-step host sync and raises
    :class:`NonFiniteLossError` at the end of the epoch.
    """

    def __init__(self, model: CGRNN, learning_rate: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        self.model = model
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        n = model.n_classes
        if n > 1:
            self.val_auroc = MultilabelAUROC(num_labels=n, average="macro")
            self.val_map = MultilabelAveragePrecision(num_labels=n, average="macro")
        else:  # torchmetrics' multilabel metrics need at least 2 labels
            self.val_auroc = BinaryAUROC()
            self.val_map = BinaryAveragePrecision()
        self.register_buffer("_nonfinite", torch.zeros((), dtype=torch.bool), persistent=False)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        return self.model(x, lengths)

    def training_step(self, batch, batch_idx):
        x, lengths, y = batch
        out = self.model(x, lengths)
        loss = clip_bce(out.clip, y)
        self._nonfinite |= ~torch.isfinite(loss.detach())
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def on_train_epoch_end(self):
        if bool(self._nonfinite):
            raise NonFiniteLossError(
                f"the training loss became NaN or infinite in epoch {self.current_epoch}; "
                f"lower learning_rate, check the input features, or use precision='32-true'"
            )

    def validation_step(self, batch, batch_idx):
        x, lengths, y = batch
        out = self.model(x, lengths)
        self.log("val_loss", clip_bce(out.clip, y), on_step=False, on_epoch=True, batch_size=x.shape[0])
        p, t = out.clip.float(), y.long()
        if self.model.n_classes == 1:
            p, t = p.squeeze(-1), t.squeeze(-1)
        self.val_auroc.update(p, t)
        self.val_map.update(p, t)
        self.log("val_auroc", self.val_auroc, on_step=False, on_epoch=True)
        self.log("val_map", self.val_map, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
