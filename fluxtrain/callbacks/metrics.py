"""Metrics: per-step values kept on the device, batch-size-weighted epoch values.

``cbstate.metrics_step["train/Loss"]`` holds the latest step's value as a detached tensor (no
host sync); ``cbstate.metrics_epoch["valid/Accuracy"]`` is a list with one float per epoch of that
phase, read once at the end of each epoch, and ``cbstate.metrics_at["valid/Accuracy"]`` the
training step (``fitstate.total_steps``) each of those values was recorded at, which places a
validation run every few steps (``fit(validate_every=k)``) on a step axis.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Metrics(), n_batches=2)
    >>> _ = learner.fit(1)
    >>> sorted(learner.cbstate.metrics_epoch)
    ['train/Loss', 'valid/Loss']
"""

from __future__ import annotations

import copy
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
        "fitstate": Read,
        "cbstate.metrics_step": Write,
        "cbstate.metrics_epoch": Write,
        "cbstate.metrics_at": Write,
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
        self._by_phase: dict[str, list[Metric]] = {}  # each phase's own copies
        self._loaded: dict[str | None, Mapping[str, Any]] = {}  # states for phases to come
        self._keys: dict[tuple[str, str], str] = {}
        self._plan: (
            tuple[str, tuple[tuple[Metric, str, OutputTransform | None], ...], dict[str, Any]]
            | None
        ) = None

    def init(self, learner: Any) -> None:
        for entry in ("metrics_step", "metrics_epoch", "metrics_at"):
            if entry not in learner.cbstate:
                learner.cbstate[entry] = {}

    def of(self, phase: str) -> list[Metric]:
        """The metrics of one phase (``"train"``, ``"valid"``): copies of :attr:`metrics`, so
        a validation inside a training epoch leaves the training epoch's values alone."""
        metrics = self._by_phase.get(phase)
        if metrics is None:
            metrics = self._by_phase[phase] = copy.deepcopy(self.metrics)
            saved = self._loaded.pop(phase, None) or self._loaded.get(None)
            for metric in metrics if saved else ():
                if metric.name in saved:  # type: ignore[operator]
                    metric.load_state_dict(saved[metric.name])  # type: ignore[index]
        return metrics

    def _key(self, phase: Phase, metric: Metric) -> str:
        key = self._keys.get((phase.name, metric.name))
        if key is None:
            key = self._keys[(phase.name, metric.name)] = f"{phase.name}/{metric.name}"
        return key

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        self._plan = None  # cbstate may have been restored from a checkpoint

    def on_epoch_begin(self, phase: Phase, learner: Any) -> None:
        for metric in self.of(phase.name):
            metric.reset()
        self._make_plan(phase, learner)

    def _make_plan(self, phase: Phase, learner: Any) -> None:
        metrics = self.of(phase.name)
        steps = tuple((m, self._key(phase, m), m.output_transform) for m in metrics)
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
        return {
            "phases": {
                phase: {m.name: m.state_dict() for m in metrics}
                for phase, metrics in self._by_phase.items()
            }
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._by_phase, self._plan = {}, None
        if "phases" in state:
            self._loaded = dict(state["phases"])
        else:  # one set of metric states for every phase
            self._loaded = {None: state["metrics"]}

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        cbstate = learner.cbstate
        epoch_values, at = cbstate.metrics_epoch, cbstate.metrics_at
        step = learner.fitstate.total_steps
        for metric in self.of(phase.name):
            key = self._key(phase, metric)
            epoch_values.setdefault(key, []).append(metric.compute())
            at.setdefault(key, []).append(step)
