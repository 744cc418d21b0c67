"""Recorder: counts epochs, steps and samples per phase in ``cbstate.history``.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Recorder(), n_batches=3)
    >>> _ = learner.fit(2)
    >>> learner.cbstate.history["train"]
    PhaseHistory(epochs=2, steps=6, steps_epoch=3, samples=48)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..access import Read, Write
from ..batches import batch_size
from ..callback import Callback
from ..checkpoints.trust import trusted
from ..phases import Phase


@trusted
@dataclass
class PhaseHistory:
    """Counters of one phase over all fits.

    Attributes:
        epochs: Completed epochs.
        steps: Completed steps (a step cancelled with ``CancelStep`` does not count).
        steps_epoch: Completed steps in the current (or last) epoch.
        samples: Samples seen in completed steps (dimension 0 of the first tensor of the
            inputs, :func:`fluxtrain.batches.batch_size`).
    """

    epochs: int = 0
    steps: int = 0
    steps_epoch: int = 0
    samples: int = 0


class Recorder(Callback):
    """Keeps ``cbstate.history``: a :class:`PhaseHistory` per phase name (``"train"``, ...)."""

    stateaccess = {"cbstate.history": Write, "batch.inputs": Read}

    def init(self, learner: Any) -> None:
        if "history" not in learner.cbstate:
            learner.cbstate.history = {}

    def __init__(self) -> None:
        self._record: PhaseHistory | None = None  # the record of the epoch in progress
        self._phase = ""

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        self._record = None  # cbstate may have been restored from a checkpoint

    def on_epoch_begin(self, phase: Phase, learner: Any) -> None:
        history = learner.cbstate.history
        if phase.name not in history:
            history[phase.name] = PhaseHistory()
        self._record, self._phase = history[phase.name], phase.name
        self._record.steps_epoch = 0

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        record = self._record
        if record is None or self._phase != phase.name:  # a step outside an epoch, or resumed
            history = learner.cbstate.history
            if phase.name not in history:
                history[phase.name] = PhaseHistory()
            record = self._record = history[phase.name]
            self._phase = phase.name
        record.steps += 1
        record.steps_epoch += 1
        record.samples += batch_size(learner.batch.inputs)

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        learner.cbstate.history[phase.name].epochs += 1
