"""Metrics of one kind each: a batch-size-weighted epoch mean, accumulated on the device.

A :class:`Metric` keeps each step's value (a detached tensor, no host read) and adds the kept
values up in one operation every :attr:`Metric.chunk` steps and when the epoch's value is asked
for. The :class:`~fluxtrain.Metrics` callback drives them.

Examples:
    >>> import torch
    >>> loss = Loss()
    >>> _ = loss.step(None, torch.zeros(3), torch.tensor(0.5))
    >>> _ = loss.step(None, torch.zeros(1), torch.tensor(1.5))
    >>> loss.compute()
    0.75
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..batches import batch_size, predictions
from ..distributed import all_reduce_sum, is_distributed
from ..exceptions import BatchError, FluxTrainError

OutputTransform = Callable[[Any, Any], tuple[Any, Any]]
"""``fn(outputs, targets) -> (preds, targets)``: what a metric compares, from the outputs."""


def on_one_device(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors on the device of the last one (they differ only after loading a checkpoint).

    Examples:
        >>> import torch
        >>> [t.device.type for t in on_one_device([torch.zeros(1), torch.ones(1)])]
        ['cpu', 'cpu']
    """
    device = tensors[-1].device
    return [t if t.device == device else t.to(device) for t in tensors]


class Metric:
    """A metric averaged over an epoch, weighted by batch size, accumulated on the device.

    Subclasses implement :meth:`value`: the batch's mean value as a 0-d tensor, from ``preds``
    (``outputs`` when it is a tensor, else ``outputs.logits``, see
    :func:`fluxtrain.batches.predictions`) and the targets; ``output_transform(outputs,
    targets) -> (preds, targets)`` replaces that reading for anything else. Per step the
    value is only kept (a detached tensor in a list); every :attr:`chunk` steps, and when the
    epoch's value is asked for, the kept values are summed on the device in one operation.
    Nothing is read on the host until :meth:`compute`.

    Examples:
        >>> import torch
        >>> class MeanAbsError(Metric):
        ...     def value(self, outputs, targets, loss):
        ...         return (outputs - targets).abs().mean()
        >>> m = MeanAbsError()
        >>> _ = m.step(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]), None)
        >>> _ = m.step(torch.tensor([1.0]), torch.tensor([0.0]), None)
        >>> m.compute()
        1.6666666666666667
    """

    name: str = ""
    chunk: int = 256

    def __init__(self, output_transform: OutputTransform | None = None) -> None:
        if output_transform is not None and not callable(output_transform):
            raise FluxTrainError(
                f"{type(self).__name__}: output_transform must be a function "
                f"fn(outputs, targets) -> (preds, targets), got {output_transform!r}."
            )
        self.output_transform = output_transform
        if not self.name:
            self.name = type(self).__name__
        self.reset()

    def inputs(self, outputs: Any, targets: Any) -> tuple[Any, Any]:
        """``(preds, targets)`` this metric compares, from the model's outputs and the targets.

        Examples:
            >>> Loss(output_transform=lambda o, t: (o["scores"], t)).inputs({"scores": 1}, 2)
            (1, 2)
        """
        if self.output_transform is not None:
            return self.output_transform(outputs, targets)
        return predictions(outputs), targets

    def value(self, outputs: Any, targets: Any, loss: Any) -> torch.Tensor:
        """The batch's mean value (a 0-d tensor, not read on the host)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forgets the epoch so far."""
        self._total: torch.Tensor | None = None
        self._count = 0
        self._pending: list[torch.Tensor] = []
        self._sizes: list[int] = []
        self._restored = False  # kept values came from a checkpoint: maybe on another device

    def step(
        self, outputs: Any, targets: Any, loss: Any, n: int | None = None
    ) -> torch.Tensor | None:
        """Adds one batch of ``n`` samples (counted from ``targets`` when not given).

        Returns:
            The batch's value, a tensor on the device.
        """
        value = self.value(outputs, targets, loss).detach()
        if not self._pending and value.ndim:  # checked once per chunk: the first step of it
            raise BatchError(
                f"Metric {self.name!r} gave a value of shape {tuple(value.shape)} for a batch; a "
                f"metric's value is the batch's mean, one number. Reduce it (e.g. .mean()), or "
                f"wrap a per-class metric in a TorchMetric, whose value may be a tensor."
            )
        self._pending.append(value)
        self._sizes.append(batch_size(targets) if n is None else n)
        if len(self._pending) >= self.chunk:
            self._flush()
        return value

    def _flush(self) -> None:
        if not self._pending:
            return
        values = torch.stack(on_one_device(self._pending) if self._restored else self._pending)
        if values.device.type == "cpu":
            values = values.double()
        sizes = torch.tensor(self._sizes, dtype=values.dtype, device=values.device)
        total = values.mul_(sizes).sum()
        self._total = total if self._total is None else self._total.to(total.device).add_(total)
        self._count += sum(self._sizes)
        self._pending, self._sizes, self._restored = [], [], False

    def compute(self) -> float:
        """The weighted mean over the epoch so far (reads the device once).

        Under ``torch.distributed`` the sums and counts of all ranks are added first, so every
        rank gets the global value, weighted by samples.
        """
        self._flush()
        total = float(self._total) if self._total is not None else 0.0
        count = float(self._count)
        if is_distributed():
            device = self._total.device if self._total is not None else torch.device("cpu")
            total, count = all_reduce_sum([total, count], device)
        return total / count if count else float("nan")

    def state_dict(self) -> dict[str, Any]:
        """The epoch so far, for checkpoints taken mid-epoch (kept values included)."""
        return {
            "total": self._total,
            "count": self._count,
            "pending": list(self._pending),
            "sizes": list(self._sizes),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned."""
        self._total, self._count = state["total"], state["count"]
        self._pending, self._sizes = list(state["pending"]), list(state["sizes"])
        self._restored = True


class Loss(Metric):
    """The loss, as computed by the learner's ``loss_fn`` or the model (a batch mean)."""

    def value(self, outputs: Any, targets: Any, loss: Any) -> torch.Tensor:
        return loss


class Accuracy(Metric):
    """Share of samples whose arg-max output (last dimension) equals the integer target.

    Per epoch only: to keep steps cheap it keeps each batch's detached outputs and targets
    (up to about a million output elements, or :attr:`chunk` batches) and counts the hits of
    all of them at once, so ``cbstate.metrics_step`` has no per-step accuracy (use a
    ``FunctionMetric`` for that).

    Examples:
        >>> import torch
        >>> accuracy = Accuracy()
        >>> accuracy.step(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]), None)
        >>> accuracy.step(torch.tensor([[0.3, 0.7]]), torch.tensor([1]), None)
        >>> accuracy.compute()
        0.6666666666666666
    """

    budget: int = 1 << 20

    def reset(self) -> None:
        super().reset()
        self._targets: list[Any] = []
        self._elements = 0

    def step(self, outputs: Any, targets: Any, loss: Any, n: int | None = None) -> None:  # type: ignore[override]
        self._pending.append(outputs.detach())
        self._targets.append(targets)
        self._sizes.append(batch_size(targets) if n is None else n)
        self._elements += outputs.numel()
        if self._elements >= self.budget or len(self._pending) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if len(self._pending) == 1:
            outputs, targets = self._pending[0], self._targets[0]
        else:
            restored = self._restored
            outputs = torch.cat(on_one_device(self._pending) if restored else self._pending)
            targets = torch.cat(on_one_device(self._targets) if restored else self._targets)
        hits = (outputs.argmax(dim=-1) == targets.to(outputs.device)).sum()
        self._total = hits if self._total is None else self._total.to(hits.device).add_(hits)
        self._count += sum(self._sizes)
        self._pending, self._targets, self._sizes, self._elements = [], [], [], 0
        self._restored = False

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "targets": list(self._targets)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._targets = list(state["targets"])
        self._elements = sum(p.numel() for p in self._pending)
