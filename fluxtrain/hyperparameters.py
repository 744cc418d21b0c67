"""Hyperparameters a :class:`~fluxtrain.Scheduler` can drive.

Subclass :class:`HyperParameter` for anything: declare ``stateaccess`` and implement
``sethyperparameter(self, learner, value)``. The built-in :class:`LearningRate`,
:class:`Momentum` and :class:`WeightDecay` write the optimizer's param groups: all of them, or
one (``LearningRate(group=1)``).

Examples:
    >>> import torch
    >>> optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-3)
    >>> Momentum().apply(optimizer, 0.8)
    >>> optimizer.param_groups[0]["betas"]
    (0.8, 0.999)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from .access import Access, Write, check_stateaccess
from .exceptions import HyperParameterError

FINITE = (math.nextafter(-math.inf, 0.0), math.inf)  # low <= value < high: finite values only


class HyperParameter:
    """Something a schedule sets once per training step.

    Attributes:
        stateaccess: What :meth:`sethyperparameter` reads and writes (checked at definition).
        domain: ``(low, high)``: the schedulers apply a value only if ``low <= value < high``
            (never NaN); :data:`FINITE` unless a subclass narrows it: ``domain = (0.0, 1.0)``.

    Examples:
        >>> from fluxtrain import Write
        >>> class DropoutProb(HyperParameter):
        ...     stateaccess = {"model": Write}
        ...     def sethyperparameter(self, learner, value):
        ...         learner.model.dropout.p = value
        >>> DropoutProb().name
        'DropoutProb'
    """

    stateaccess: ClassVar[Mapping[str, Access]] = {}
    domain: ClassVar[tuple[float, float]] = FINITE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "stateaccess" in cls.__dict__:
            cls.stateaccess = check_stateaccess(cls.__name__, cls.__dict__["stateaccess"])

    @property
    def name(self) -> str:
        """The name values are recorded under in ``cbstate.hyperparams``."""
        return type(self).__name__

    def check(self, learner: Any) -> None:
        """Raises if this hyperparameter cannot be set on ``learner``; called at ``FitBegin``."""

    def sethyperparameter(self, learner: Any, value: float) -> None:
        """Sets the value for the coming training step."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement sethyperparameter(self, learner, value)."
        )

    def setter(self, learner: Any) -> Callable[[float], None]:
        """``value -> sethyperparameter(learner, value)``, made once per fit by the Scheduler."""
        return functools.partial(self.sethyperparameter, learner)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class OptimizerHyperParameter(HyperParameter):
    """A hyperparameter held in the optimizers' param groups under :attr:`key`.

    Args:
        group: Index of the one param group to set; ``None`` sets every group.
        optimizer: Name of the one optimizer to set, for a learner with several
            (``Learner(..., {"generator": opt_g, "discriminator": opt_d}, ...)``); ``None``
            sets every optimizer.

    Examples:
        >>> LearningRate(optimizer="discriminator", group=1).name
        'LearningRate[optimizer=discriminator,group=1]'
    """

    stateaccess = {"optimizer": Write}
    key: ClassVar[str] = ""
    domain = (0.0, math.inf)
    field_domains: ClassVar[Mapping[str, tuple[float, float]]] = {}  # narrower, by :meth:`field`

    def __init__(self, group: int | None = None, optimizer: str | None = None) -> None:
        if group is not None and (isinstance(group, bool) or not isinstance(group, int)):
            raise HyperParameterError(
                f"{type(self).__name__}: group must be an int index or None, got {group!r}."
            )
        if group is not None and group < 0:
            raise HyperParameterError(f"{type(self).__name__}: group must be >= 0, got {group}.")
        if optimizer is not None and not (isinstance(optimizer, str) and optimizer):
            raise HyperParameterError(
                f"{type(self).__name__}: optimizer must be the name of one of the learner's "
                f"optimizers or None, got {optimizer!r}."
            )
        self.group = group
        self.optimizer = optimizer

    @property
    def name(self) -> str:
        parts = [f"optimizer={self.optimizer}"] * (self.optimizer is not None)
        parts += [f"group={self.group}"] * (self.group is not None)
        base = type(self).__name__
        return f"{base}[{','.join(parts)}]" if parts else base

    def targets(self, learner: Any) -> list[torch.optim.Optimizer]:
        """The learner's optimizers this hyperparameter sets (all, or the one named).

        Raises:
            HyperParameterError: ``optimizer=`` names none of the learner's optimizers.
        """
        optimizers = learner.optimizers
        if self.optimizer is None:
            return list(optimizers.values())
        if self.optimizer not in optimizers:
            raise HyperParameterError(
                f"{self.name}: the learner has no optimizer named {self.optimizer!r}; its "
                f"optimizers are {', '.join(map(repr, optimizers))}. Pass one of those as "
                f"optimizer=, or None to set every optimizer."
            )
        return [optimizers[self.optimizer]]

    def groups(self, optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
        """The param groups this hyperparameter sets."""
        if self.group is None:
            return optimizer.param_groups
        return [optimizer.param_groups[self.group]]

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Raises ``HyperParameterError`` if ``optimizer`` lacks this hyperparameter."""
        n = len(optimizer.param_groups)
        if self.group is not None and self.group >= n:
            raise HyperParameterError(
                f"{self.name}: the optimizer has {n} param group(s), so group={self.group} "
                f"does not exist. Use a group index below {n}."
            )
        for group in self.groups(optimizer):
            if self.field(group) is None:
                raise HyperParameterError(
                    f"{self.name} cannot be set on {type(optimizer).__name__}: its param groups "
                    f"have no {self.describe()} (they have {', '.join(sorted(group))}). Drop "
                    f"{type(self).__name__} from the Scheduler or use an optimizer that has it."
                )

    def check(self, learner: Any) -> None:
        for optimizer in self.targets(learner):
            self.check_optimizer(optimizer)

    def field(self, group: Mapping[str, Any]) -> str | None:
        """The param-group key that holds this hyperparameter, or ``None``."""
        return self.key if self.key in group else None

    def describe(self) -> str:
        """The key(s) looked for, in words."""
        return repr(self.key)

    def apply(self, optimizer: torch.optim.Optimizer, value: float) -> None:
        """Writes ``value`` into the param groups (a tensor-valued entry is filled in place)."""
        key = self.key
        for group in self.groups(optimizer):
            current = group[key]
            if isinstance(current, torch.Tensor):
                current.fill_(value)
            else:
                group[key] = value

    def sethyperparameter(self, learner: Any, value: float) -> None:
        for optimizer in self.targets(learner):
            self.apply(optimizer, value)

    def setter(self, learner: Any) -> Callable[[float], None]:
        """The :meth:`writer` of each optimizer this sets, unless a subclass overrides
        :meth:`sethyperparameter` (then that is called)."""
        if type(self).sethyperparameter is not OptimizerHyperParameter.sethyperparameter:
            return super().setter(learner)
        writers = [self.writer(optimizer) for optimizer in self.targets(learner)]
        if len(writers) == 1:
            return writers[0]

        def write_all(value: float) -> None:
            for write in writers:
                write(value)

        return write_all

    def writer(self, optimizer: torch.optim.Optimizer) -> Callable[[float], None]:
        """``value -> apply(optimizer, value)``, made for the optimizer's groups as they are now.

        Where every group holds the value as a plain number under :attr:`key` (``lr`` of SGD,
        ``momentum``), the writer is a dict assignment per group, with no lookups per call; a
        value held as a tensor (fused and capturable optimizers), in ``betas``, or set by a
        subclass's own :meth:`apply` goes through :meth:`apply`.

        Examples:
            >>> import torch
            >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            >>> write = LearningRate().writer(optimizer)
            >>> write(0.05)
            >>> optimizer.param_groups[0]["lr"]
            0.05
        """
        groups = self.groups(optimizer)  # the optimizer's own list when every group is set
        key = self.key
        plain = type(self).apply in _KEY_APPLIES and all(
            self.field(group) == key and not isinstance(group[key], torch.Tensor)
            for group in groups
        )
        if not plain:
            return functools.partial(self.apply, optimizer)

        def write(value: float) -> None:
            for group in groups:
                group[key] = value

        return write

    def __repr__(self) -> str:
        optimizer = [f"optimizer={self.optimizer!r}"] * (self.optimizer is not None)
        group = [f"group={self.group}"] * (self.group is not None)
        return f"{type(self).__name__}({', '.join(group + optimizer)})"


class LearningRate(OptimizerHyperParameter):
    """The learning rate, ``lr`` (a tensor ``lr`` of a fused or capturable optimizer too).

    Examples:
        >>> import torch
        >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> LearningRate().apply(optimizer, 0.05)
        >>> optimizer.param_groups[0]["lr"]
        0.05
    """

    key = "lr"


class WeightDecay(OptimizerHyperParameter):
    """The weight decay, ``weight_decay``.

    Examples:
        >>> import torch
        >>> optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
        >>> WeightDecay().apply(optimizer, 0.05)
        >>> optimizer.param_groups[0]["weight_decay"]
        0.05
    """

    key = "weight_decay"


class Momentum(OptimizerHyperParameter):
    """Momentum: ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam, AdamW, NAdam, RAdam, Adamax).

    Examples:
        >>> import torch
        >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
        >>> Momentum().apply(optimizer, 0.85)
        >>> optimizer.param_groups[0]["momentum"]
        0.85
    """

    key = "momentum"
    field_domains = {"betas": (0.0, 1.0)}  # torch takes any momentum >= 0, but betas[0] < 1

    def field(self, group: Mapping[str, Any]) -> str | None:
        if "betas" in group:
            return "betas"
        return "momentum" if "momentum" in group else None

    def describe(self) -> str:
        return "'momentum' or 'betas'"

    def apply(self, optimizer: torch.optim.Optimizer, value: float) -> None:
        for group in self.groups(optimizer):
            if "betas" in group:
                betas = group["betas"]
                if isinstance(betas[0], torch.Tensor):
                    betas[0].fill_(value)
                else:
                    group["betas"] = (value, *betas[1:])
            else:
                group["momentum"] = value


# The apply methods that, for a group holding a plain number under the key, write group[key].
_KEY_APPLIES = (OptimizerHyperParameter.apply, Momentum.apply)
