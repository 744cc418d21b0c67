""":class:`TorchScheduler`: fluxtrain schedules in a plain PyTorch training loop.

It is a ``torch.optim.lr_scheduler.LRScheduler``, so it goes wherever one does, but it drives
any optimizer hyperparameter (learning rate, momentum or ``betas[0]``, weight decay), per param
group if asked. Its values are a pure function of the number of ``step()`` calls, so resuming
from a checkpoint gives the same values whatever the order of construction and loading.

Examples:
    >>> import torch
    >>> from fluxtrain import LearningRate
    >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> scheduler = TorchScheduler(optimizer, {LearningRate: lambda t: 0.1 / (1 + t)})
    >>> optimizer.param_groups[0]["lr"]  # the value for the first step, t = 0
    0.1
    >>> optimizer.step(); scheduler.step()
    >>> scheduler.get_last_lr()
    [0.05]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from .exceptions import HyperParameterError, ScheduleError
from .hyperparameters import OptimizerHyperParameter
from .scheduled import Scheduled, check_groups, parse_schedules


class TorchScheduler(LRScheduler):
    """Sets optimizer hyperparameters from schedules, once per ``step()``.

    Call ``step()`` once after every ``optimizer.step()``. After construction the optimizer
    holds the values at ``t = 0``; after ``k`` calls of ``step()`` the values at ``t = k``.

    Args:
        optimizer: The optimizer whose param groups are set.
        mapping: ``{HyperParameter: schedule}`` with the keys and values a
            :class:`~fluxtrain.Scheduler` takes, restricted to optimizer hyperparameters
            (``LearningRate``, ``Momentum``, ``WeightDecay``, ``LearningRate(group=1)``, or a
            list with one schedule per param group).
        steps_per_epoch: Optimizer steps per epoch, needed by schedules in unit ``"epoch"``
            (evaluated at ``t / steps_per_epoch``).

    Raises:
        HyperParameterError: For a hyperparameter the optimizer lacks, a group that does not
            exist, or one that is not an optimizer hyperparameter.
        ScheduleError: For a unit that cannot be resolved in a plain loop, or a value at
            ``t = 0`` outside its hyperparameter's domain (see :meth:`step`).

    Examples:
        >>> import torch
        >>> from fluxtrain import LearningRate, Momentum
        >>> w, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        >>> optimizer = torch.optim.SGD([{"params": [w]}, {"params": [b]}], lr=0.1, momentum=0.9)
        >>> scheduler = TorchScheduler(
        ...     optimizer, {LearningRate: [0.1, lambda t: 0.01 * (t + 1)], Momentum: 0.8})
        >>> optimizer.step(); scheduler.step()
        >>> [g["lr"] for g in optimizer.param_groups], optimizer.param_groups[1]["momentum"]
        ([0.1, 0.02], 0.8)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        mapping: Mapping[Any, Any],
        steps_per_epoch: int | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise HyperParameterError(
                f"TorchScheduler: optimizer must be a torch.optim.Optimizer, got "
                f"{type(optimizer).__name__}."
            )
        if not isinstance(mapping, Mapping):
            raise HyperParameterError(
                f"TorchScheduler: mapping must be a dict {{HyperParameter: schedule}}, got "
                f"{type(mapping).__name__}: {mapping!r}."
            )
        if steps_per_epoch is not None and (
            isinstance(steps_per_epoch, bool)
            or not isinstance(steps_per_epoch, int)
            or steps_per_epoch <= 0
        ):
            raise ScheduleError(
                f"TorchScheduler: steps_per_epoch must be an int > 0, got {steps_per_epoch!r}."
            )
        self.entries = parse_schedules((mapping,), "TorchScheduler")
        self.steps_per_epoch = steps_per_epoch
        for entry in self.entries:
            self._check(entry, optimizer)
        self._domains = [entry.domain_on([optimizer]) for entry in self.entries]
        self._divisors = [
            float(steps_per_epoch) if e.schedule.unit == "epoch" else 1.0  # type: ignore[arg-type]
            for e in self.entries
        ]
        super().__init__(optimizer)  # calls step() once: t = 0

    def _check(self, entry: Scheduled, optimizer: torch.optim.Optimizer) -> None:
        hp, unit = entry.hyperparameter, entry.schedule.unit
        if not isinstance(hp, OptimizerHyperParameter):
            raise HyperParameterError(
                f"TorchScheduler drives optimizer hyperparameters only, got {hp.name}. Use the "
                f"Scheduler callback with a Learner for other hyperparameters."
            )
        check_groups(entry, optimizer, "TorchScheduler")
        hp.check_optimizer(optimizer)
        if unit in ("fraction", "sample", "token"):
            raise ScheduleError(
                f"TorchScheduler: {hp.name}'s schedule is in unit {unit!r}, which a plain loop "
                f"cannot resolve. Use unit='step' or unit='epoch' (with steps_per_epoch), or "
                f"the Scheduler callback with a Learner."
            )
        if unit == "epoch" and self.steps_per_epoch is None:
            raise ScheduleError(
                f"TorchScheduler: {hp.name}'s schedule is in unit 'epoch', which needs "
                f"TorchScheduler(..., steps_per_epoch=len(train_loader))."
            )

    @property
    def t(self) -> int:
        """Completed optimizer steps: the time the current values belong to."""
        return self.last_epoch

    def _apply(self, t: int) -> None:
        """Sets the values at ``t``, all checked against their domains before any is set."""
        values: list[float] = []
        for entry, divisor, (low, high) in zip(self.entries, self._divisors, self._domains):
            value = entry.schedule.scalar(t / divisor)
            if not low <= value < high:  # also NaN
                raise entry.rejection("TorchScheduler", value, t, t / divisor, (low, high))
            values.append(value)
        optimizer = self.optimizer
        for entry, value in zip(self.entries, values):
            entry.hyperparameter.apply(optimizer, value)  # type: ignore[attr-defined]
        self.last_epoch = t
        self._last_lr = [
            g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
            for g in optimizer.param_groups
        ]

    def step(self, epoch: int | None = None) -> None:
        """Advances one optimizer step and sets the values for the next one.

        Args:
            epoch: Not supported (deprecated in PyTorch); call ``step()`` without arguments.

        Raises:
            ScheduleError: A schedule's value for the next step is outside its
                hyperparameter's domain (NaN, a negative learning rate, ...); nothing is set
                and the time stays where it was.
        """
        if epoch is not None:
            raise ScheduleError(
                "TorchScheduler.step() takes no epoch argument; call step() once per optimizer "
                "step, and use unit='epoch' schedules with steps_per_epoch for epochs."
            )
        self._apply(self.last_epoch + 1)
        self._step_count += 1

    def get_lr(self) -> list[float | torch.Tensor]:
        """The learning rates of the param groups at the current time."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The step count and the state of metric-driven schedules."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "schedules": {e.hyperparameter.name: e.schedule.state_dict() for e in self.entries},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` and sets the optimizer's values for the restored time."""
        schedules = state_dict["schedules"]
        names = [e.hyperparameter.name for e in self.entries]
        if set(schedules) != set(names):
            raise HyperParameterError(
                f"TorchScheduler.load_state_dict: the state schedules {sorted(schedules)}, but "
                f"this TorchScheduler schedules {sorted(names)}. Build it with the same mapping "
                f"as the one that was saved."
            )
        self._step_count = int(state_dict["_step_count"])
        for entry in self.entries:
            entry.schedule.load_state_dict(schedules[entry.hyperparameter.name])
        self._apply(int(state_dict["last_epoch"]))

    def __repr__(self) -> str:
        inner = ", ".join(f"{e.hyperparameter!r}: {e.schedule!r}" for e in self.entries)
        return f"TorchScheduler(t={self.last_epoch}, {{{inner}}})"
