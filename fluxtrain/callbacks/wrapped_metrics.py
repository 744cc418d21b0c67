"""Metrics from a function or a torchmetrics-style object, and :func:`as_metric`, which
turns what ``Metrics(...)`` is given into :class:`~fluxtrain.callbacks.metric.Metric` objects.

Examples:
    >>> import torch
    >>> def error_rate(preds, targets):
    ...     return (preds.argmax(-1) != targets).float().mean()
    >>> metric = as_metric(error_rate)
    >>> type(metric).__name__, metric.name
    ('FunctionMetric', 'error_rate')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from ..exceptions import BatchError, FluxTrainError
from .metric import Metric, OutputTransform


@runtime_checkable
class TorchMetricLike(Protocol):
    """Anything with torchmetrics' ``update(preds, target)``, ``compute()`` and ``reset()``."""

    def update(self, preds: Any, target: Any) -> None: ...
    def compute(self) -> Any: ...
    def reset(self) -> None: ...


class FunctionMetric(Metric):
    """A metric from ``fn(outputs, targets) -> batch mean``; named after the function."""

    def __init__(
        self,
        fn: Callable[[Any, Any], Any],
        name: str | None = None,
        output_transform: OutputTransform | None = None,
    ) -> None:
        if not callable(fn):
            raise FluxTrainError(f"FunctionMetric: fn must be callable, got {fn!r}.")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", type(fn).__name__))
        super().__init__(output_transform)

    def value(self, outputs: Any, targets: Any, loss: Any) -> torch.Tensor:
        result = self.fn(outputs, targets)
        if not isinstance(result, torch.Tensor):
            return torch.tensor(float(result))
        if result.numel() != 1:
            raise BatchError(
                f"FunctionMetric {self.name!r} returned a tensor of shape {tuple(result.shape)}; "
                f"a metric function returns the batch's mean, a single number. Reduce it (e.g. "
                f".mean() over per-sample values), or use a TorchMetric for per-class values."
            )
        return result.reshape(())


class TorchMetric(Metric):
    """Wraps a torchmetrics-style object: ``update(preds, targets)`` per step, ``compute`` at
    epoch end.

    A value of one element is recorded as a float, a larger one (per class, a confusion matrix)
    as a CPU tensor in ``cbstate.metrics_epoch``; the printer shows its shape and the loggers
    leave it out.
    """

    def __init__(
        self,
        metric: TorchMetricLike,
        name: str | None = None,
        output_transform: OutputTransform | None = None,
    ) -> None:
        if not isinstance(metric, TorchMetricLike):
            raise FluxTrainError(
                f"TorchMetric: expected an object with update(preds, target), compute() and "
                f"reset(), got {metric!r}."
            )
        self.metric = metric
        self.name = name or type(metric).__name__
        super().__init__(output_transform)

    def reset(self) -> None:
        self.metric.reset()

    def step(self, outputs: Any, targets: Any, loss: Any, n: int | None = None) -> None:  # type: ignore[override]
        self.metric.update(outputs, targets)

    def compute(self) -> Any:  # type: ignore[override]
        value = self.metric.compute()
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            return value.detach().cpu()
        return float(value)

    def state_dict(self) -> dict[str, Any]:
        """A torchmetrics object's accumulated states (its ``metric_state``), so a mid-epoch
        resume is exact; ``{}`` for an object without one."""
        state = getattr(self.metric, "metric_state", None)
        if not isinstance(state, dict):
            return {}
        copied = {
            k: [t.detach().clone() for t in v] if isinstance(v, list) else v.detach().clone()
            for k, v in state.items()
        }
        return {"state": copied, "updates": int(getattr(self.metric, "_update_count", 0))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned, on the devices of the current states."""
        if "state" not in state:
            return
        for name, value in state["state"].items():
            current = getattr(self.metric, name)
            device = current[0] if isinstance(current, list) and current else current
            device = getattr(device, "device", None)
            if isinstance(value, list):
                value = [t.to(device) if device is not None else t for t in value]
            elif device is not None:
                value = value.to(device)
            setattr(self.metric, name, value)
        self.metric._update_count = state["updates"]  # type: ignore[attr-defined]
        self.metric._computed = None  # type: ignore[attr-defined]


def as_metric(metric: Any) -> Metric:
    """A :class:`Metric` from a Metric, a torchmetrics-style object or a function.

    Examples:
        >>> from fluxtrain import Accuracy
        >>> as_metric(Accuracy()).name
        'Accuracy'
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, type) and issubclass(metric, Metric):
        return metric()
    if isinstance(metric, TorchMetricLike):
        return TorchMetric(metric)
    if callable(metric):
        return FunctionMetric(metric)
    raise FluxTrainError(
        f"Metrics: expected a Metric, an object with update/compute/reset, or a function "
        f"fn(outputs, targets), got {metric!r}."
    )
