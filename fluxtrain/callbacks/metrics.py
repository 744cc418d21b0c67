"""Metrics: per-step values kept on the device, batch-size-weighted epoch values.

``cbstate.metrics_step["train/Loss"]`` holds the latest step's value as a detached tensor (no
host sync); ``cbstate.metrics_epoch["valid/Accuracy"]`` is a list with one float per epoch of that
phase, read once at the end of each epoch.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Metrics(), n_batches=2)
    >>> _ = learner.fit(1)
    >>> sorted(learner.cbstate.metrics_epoch)
    ['train/Loss', 'valid/Loss']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..access import Read, Write
from ..batches import batch_size, predictions
from ..callback import Callback
from ..exceptions import FluxTrainError
from ..phases import Phase
from .metric import Loss, Metric, OutputTransform
from .wrapped_metrics import as_metric

Tensor = torch.Tensor


class Metrics(Callback):
    """Tracks :class:`Loss` (always) and the given metrics, per step and per epoch.

    Each metric sees ``(preds, targets)``: ``preds`` is the model's outputs when they are a
    tensor, else their ``logits`` (Hugging Face outputs), unless the metric has an
    ``output_transform``. Samples are counted from the inputs
    (:func:`fluxtrain.batches.batch_size`).

    Args:
        *metrics: :class:`Metric` instances (``Accuracy()``), functions
            ``fn(preds, targets)`` returning a batch mean (wrapped in
            :class:`~fluxtrain.FunctionMetric`), or torchmetrics-style objects (wrapped in
            :class:`~fluxtrain.TorchMetric`).
    """

    stateaccess = {
        "batch": Read,
        "cbstate.metrics_step": Write,
        "cbstate.metrics_epoch": Write,
    }

    def __init__(self, *metrics: Any) -> None:
        converted = [as_metric(m) for m in metrics]
        if not any(isinstance(m, Loss) for m in converted):
            converted.insert(0, Loss())
        names = [m.name for m in converted]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FluxTrainError(
                f"Metrics: two metrics are named {', '.join(duplicates)}; give them distinct "
                f"names (FunctionMetric(fn, name=...))."
            )
        self.metrics = converted
        self._keys: dict[tuple[str, str], str] = {}
        self._plan: (
            tuple[str, tuple[tuple[Metric, str, OutputTransform | None], ...], dict[str, Any]]
            | None
        ) = None

    def init(self, learner: Any) -> None:
        if "metrics_step" not in learner.cbstate:
            learner.cbstate.metrics_step = {}
        if "metrics_epoch" not in learner.cbstate:
            learner.cbstate.metrics_epoch = {}

    def _key(self, phase: Phase, metric: Metric) -> str:
        key = self._keys.get((phase.name, metric.name))
        if key is None:
            key = self._keys[(phase.name, metric.name)] = f"{phase.name}/{metric.name}"
        return key

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        self._plan = None  # cbstate may have been restored from a checkpoint

    def on_epoch_begin(self, phase: Phase, learner: Any) -> None:
        for metric in self.metrics:
            metric.reset()
        self._make_plan(phase, learner)

    def _make_plan(self, phase: Phase, learner: Any) -> None:
        steps = tuple((m, self._key(phase, m), m.output_transform) for m in self.metrics)
        self._plan = (phase.name, steps, learner.cbstate.metrics_step)

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        if self._plan is None or self._plan[0] != phase.name:  # a lone step, or resumed
            self._make_plan(phase, learner)
        _, steps, step_values = self._plan  # type: ignore[misc]
        batch = learner.batch
        outputs, targets, loss = batch.outputs, batch.targets, batch.loss
        n = batch_size(batch.inputs)
        preds = outputs if type(outputs) is Tensor else predictions(outputs)
        for metric, key, transform in steps:
            if transform is None:
                value = metric.step(preds, targets, loss, n)
            else:
                mine, theirs = transform(outputs, targets)
                value = metric.step(mine, theirs, loss, n)
            if value is not None:
                step_values[key] = value

    def state_dict(self) -> dict[str, Any]:
        return {"metrics": {m.name: m.state_dict() for m in self.metrics}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for metric in self.metrics:
            if metric.name in state["metrics"]:
                metric.load_state_dict(state["metrics"][metric.name])

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        epoch_values = learner.cbstate.metrics_epoch
        for metric in self.metrics:
            epoch_values.setdefault(self._key(phase, metric), []).append(metric.compute())
