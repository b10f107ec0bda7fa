"""Lightning callbacks that ``GlassBoxUMAP.fit`` adds to the trainer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._training import UMAPModule


class RestoreBestWeights:
    """Lightning callback: keep the encoder's weights of the epoch with the lowest loss.

    The weights at the start of epoch ``e`` are those at the end of epoch ``e - 1``, whose
    loss is then already in the module's history, so no hook order matters.
    """

    def __init__(self) -> None:
        self.best = float("inf")
        self.epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def _consider(self, module: UMAPModule, epoch: int) -> None:
        loss = float(module.history[epoch])
        if np.isfinite(loss) and loss < self.best:
            self.best, self.epoch = loss, epoch
            self.state = {k: v.detach().clone() for k, v in module.encoder.state_dict().items()}

    def on_train_epoch_start(self, trainer: Any, module: UMAPModule) -> None:
        if trainer.current_epoch > 0:
            self._consider(module, trainer.current_epoch - 1)

    def on_train_end(self, trainer: Any, module: UMAPModule) -> None:
        written = np.flatnonzero(np.isfinite(module.history.cpu().numpy()))
        if written.size:
            self._consider(module, int(written[-1]))
        if self.state is not None:
            module.encoder.load_state_dict(self.state)


def lightning_callback(cls: type) -> type:
    """``cls`` as a subclass of Lightning's ``Callback`` (Lightning is imported by training)."""
    import lightning.pytorch as lp

    return type(cls.__name__, (cls, lp.Callback), {})
