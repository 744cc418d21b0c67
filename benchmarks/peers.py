"""The overhead workloads run through pytorch-ignite and Lightning, for ``overhead.py --peers``.

Each runner builds the same model, optimizer and one-cycle schedule as the plain loop, keeps the
peer's progress bar on (as its users do) and returns the seconds of one whole fit.
"""

from __future__ import annotations

from typing import Any

import torch
from overhead_clock import clock
from torch import nn
from torch.utils.data import DataLoader


def ignite_loop(w: Any, train: list, valid: list, device: torch.device) -> float:
    """pytorch-ignite: a supervised trainer, OneCycleLR per iteration, ProgressBar, evaluator."""
    from ignite.contrib.handlers import ProgressBar
    from ignite.engine import Events, create_supervised_evaluator, create_supervised_trainer
    from ignite.handlers import LRScheduler
    from ignite.metrics import Accuracy, Loss

    model = w.make_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.functional.cross_entropy
    trainer = create_supervised_trainer(model, optimizer, loss_fn, device=device)
    evaluator = create_supervised_evaluator(
        model, metrics={"loss": Loss(loss_fn), "accuracy": Accuracy()}, device=device
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.1, epochs=w.epochs, steps_per_epoch=len(train)
    )
    trainer.add_event_handler(Events.ITERATION_COMPLETED, LRScheduler(schedule))
    ProgressBar().attach(trainer, output_transform=lambda loss: {"loss": loss})

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine: Any) -> None:
        evaluator.run(valid)

    start = clock()
    trainer.run(train, max_epochs=w.epochs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return clock() - start


def lightning_loop(w: Any, train: list, valid: list, device: torch.device) -> float:
    """Lightning: a LightningModule with OneCycleLR stepped per batch, its default progress bar."""
    import logging

    import lightning

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = w.make_model()

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            inputs, targets = batch
            loss = nn.functional.cross_entropy(self.model(inputs), targets)
            self.log("loss", loss, prog_bar=True)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            inputs, targets = batch
            outputs = self.model(inputs)
            self.log("valid_loss", nn.functional.cross_entropy(outputs, targets))
            self.log("valid_accuracy", (outputs.argmax(-1) == targets).float().mean())

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
            schedule = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=0.1, epochs=w.epochs, steps_per_epoch=len(train)
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": schedule, "interval": "step"},
            }

    trainer = lightning.Trainer(
        max_epochs=w.epochs,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    module = Module()
    # a list would mean several loaders to Lightning: give it loaders over the same batches
    train_loader = DataLoader(train, batch_size=None)  # type: ignore[arg-type]
    valid_loader = DataLoader(valid, batch_size=None)  # type: ignore[arg-type]
    start = clock()
    trainer.fit(module, train_loader, valid_loader)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return clock() - start
