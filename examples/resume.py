"""Interrupt a training run and resume it exactly, on scikit-learn's digits (offline).

Trains a small network with a ``Checkpointer``, interrupts it in the middle of an epoch (as
Ctrl-C would), resumes it with ``fit(n, resume="latest")`` and checks that the weights, the
optimizer state and the recorded metrics equal those of a run that was never interrupted, bit
for bit.

    python examples/resume.py
    FLUXTRAIN_FAST=1 python examples/resume.py   # 2 epochs, for CI
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from digits_data import digits_loaders, digits_model

from fluxtrain import Accuracy, Callback, Learner, Metrics, Read, Scheduler, TrainingPhase
from fluxtrain.callbacks.checkpointer import Checkpointer
from fluxtrain.callbacks.early_stopping import EarlyStopping

FAST = bool(os.environ.get("FLUXTRAIN_FAST"))
N_EPOCHS = 2 if FAST else 6


class SimulatedInterrupt(Callback):
    """Raises ``KeyboardInterrupt`` after training step ``at_step``, as Ctrl-C would."""

    stateaccess = {"fitstate": Read}

    def __init__(self, at_step: int | None = None) -> None:
        self.at_step = at_step

    def on_step_end(self, phase, learner):
        if isinstance(phase, TrainingPhase) and learner.fitstate.total_steps == self.at_step:
            raise KeyboardInterrupt


def build(folder: Path, interrupt_at: int | None = None) -> Learner:
    """The same learner every time: same seed, model, optimizer, data and callbacks."""
    torch.manual_seed(0)
    model = digits_model()
    return Learner(
        model,
        digits_loaders(),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.nn.functional.cross_entropy,
        Metrics(Accuracy()),
        Scheduler.onecycle(N_EPOCHS, 0.5),
        EarlyStopping("valid/Accuracy", mode="max", patience=3),
        SimulatedInterrupt(interrupt_at),
        Checkpointer(folder, every_steps=10, monitor="valid/Accuracy", mode="max"),
        usedefaultcallbacks=False,  # no progress bars: the output stays short
    )


def main() -> None:
    torch.use_deterministic_algorithms(True)
    root = Path(tempfile.mkdtemp(prefix="fluxtrain-resume-"))

    reference = build(root / "reference")
    reference.fit(N_EPOCHS)

    steps_per_epoch = len(reference.data.train)
    interrupt_at = steps_per_epoch + steps_per_epoch // 2 + 3  # inside the 2nd epoch
    first = build(root / "run", interrupt_at)
    try:
        first.fit(N_EPOCHS, resume="latest")  # nothing to resume yet: a fresh fit
    except KeyboardInterrupt:
        print(f"interrupted after training step {first.fitstate.total_steps}")

    manifest = json.loads((root / "run" / "manifest.json").read_text())
    for entry in manifest["checkpoints"]:
        print(f"  {entry['file']}  {entry['kind']:<9}  step {entry['step']:>3}  {entry['fit']}")

    second = build(root / "run")  # a new process would build the same learner
    result = second.fit(N_EPOCHS, resume="latest")
    print(f"resumed: {result}")

    same = all(
        torch.equal(a, b) for a, b in zip(second.model.parameters(), reference.model.parameters())
    ) and (second.cbstate.metrics_epoch == reference.cbstate.metrics_epoch)
    accuracy = second.cbstate.metrics_epoch["valid/Accuracy"][-1]
    print(f"validation accuracy {accuracy:.3f}; equal to the uninterrupted run: {same}")
    assert same


if __name__ == "__main__":
    main()
