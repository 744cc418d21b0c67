"""Reading a ``{HyperParameter: schedule}`` mapping, shared by the schedulers and the plots.

:func:`parse_schedules` turns what :class:`~fluxtrain.Scheduler` and
:class:`~fluxtrain.TorchScheduler` are given (one dict, or ``(HyperParameter, schedule)`` pairs)
into :class:`Scheduled` entries: one hyperparameter instance and one schedule each, a list of
schedules split into one entry per param group.
:meth:`Scheduled.domain_on` and :meth:`Scheduled.rejection` are the check both schedulers make
of every value before they apply it: ``low <= value < high``, a comparison that fails for NaN.

Examples:
    >>> from fluxtrain import LearningRate, Momentum
    >>> entries = parse_schedules(({LearningRate: lambda t: 0.1 / (1 + t), Momentum: 0.9},), "S")
    >>> [(e.hyperparameter.name, e.schedule(1.0)) for e in entries]
    [('LearningRate', 0.05), ('Momentum', 0.9)]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .exceptions import HyperParameterError, ScheduleError
from .hyperparameters import (
    FINITE,
    HyperParameter,
    LearningRate,
    Momentum,
    OptimizerHyperParameter,
)
from .schedules.base import BaseSchedule, as_schedule


class Scheduled(NamedTuple):
    """One hyperparameter and its schedule; ``n_groups`` is set when given as a per-group list.

    Examples:
        >>> from fluxtrain import LearningRate
        >>> from fluxtrain.schedules.base import Constant
        >>> Scheduled(LearningRate(), Constant(0.1)).n_groups is None
        True
    """

    hyperparameter: HyperParameter
    schedule: BaseSchedule
    n_groups: int | None = None

    def domain_on(self, optimizers: Iterable[Any] = ()) -> tuple[float, float]:
        """The hyperparameter's ``domain``, narrowed by the ``field_domains`` of the fields it
        sets in ``optimizers``.

        Examples:
            >>> import torch
            >>> from fluxtrain import Momentum
            >>> from fluxtrain.schedules.base import Constant
            >>> entry, params = Scheduled(Momentum(), Constant(0.9)), [torch.zeros(1)]
            >>> entry.domain_on([torch.optim.SGD(params, lr=0.1, momentum=0.9)])
            (0.0, inf)
            >>> entry.domain_on([torch.optim.Adam(params)])  # betas[0] < 1
            (0.0, 1.0)
        """
        hp = self.hyperparameter
        low, high = hp.domain
        if isinstance(hp, OptimizerHyperParameter):
            for optimizer in optimizers:
                for group in hp.groups(optimizer):
                    field_low, field_high = hp.field_domains.get(hp.field(group) or "", hp.domain)
                    low, high = max(low, field_low), min(high, field_high)
        return low, high

    def rejection(
        self, owner: str, value: object, t: int, time: float, domain: tuple[float, float]
    ) -> ScheduleError:
        """The error for a ``value`` outside ``domain`` at step ``t`` (``time`` in the unit).

        Examples:
            >>> from fluxtrain import LearningRate
            >>> from fluxtrain.schedules.base import Constant
            >>> entry = Scheduled(LearningRate(), Constant(-0.1))
            >>> print(entry.rejection("S", -0.1, 3, 3.0, (0.0, math.inf)))  # doctest: +ELLIPSIS
            S: LearningRate must be 0 <= value < inf, but its schedule Constant(-0.1, ...) ...
        """
        hp, schedule = self.hyperparameter, self.schedule
        at = f"t={t}" if schedule.unit == "step" else f"t={t} ({schedule.unit} {time!r})"
        return ScheduleError(
            f"{owner}: {hp.name} must be {domain_text(*domain)}, but its schedule {schedule!r} "
            f"gave {value!r} at {at}, which was not applied. Change the schedule so that its "
            f"values stay in that domain (or, for a hyperparameter of your own, set its class "
            f"attribute domain = (low, high))."
        )


def parse_schedules(args: tuple[Any, ...], owner: str) -> list[Scheduled]:
    """Reads ``(mapping,)`` or ``((H, schedule), ...)`` into :class:`Scheduled` entries.

    Examples:
        >>> from fluxtrain import LearningRate
        >>> [s.hyperparameter.name for s in parse_schedules(({LearningRate: [0.1, 0.2]},), "S")]
        ['LearningRate[group=0]', 'LearningRate[group=1]']
    """
    if len(args) == 1 and isinstance(args[0], Mapping):
        pairs = list(args[0].items())
    else:
        pairs = list(args)
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise HyperParameterError(
                    f"{owner}: expected one dict {{HyperParameter: schedule}} or "
                    f"(HyperParameter, schedule) pairs, got {pair!r}."
                )
    if not pairs:
        raise HyperParameterError(f"{owner}: give at least one (HyperParameter, schedule) pair.")
    entries: list[Scheduled] = []
    for key, value in pairs:
        if isinstance(value, (list, tuple)):
            is_class = isinstance(key, type) and issubclass(key, OptimizerHyperParameter)
            if not (is_class or (isinstance(key, OptimizerHyperParameter) and key.group is None)):
                raise HyperParameterError(
                    f"{owner}: a list of schedules (one per param group) needs an optimizer "
                    f"hyperparameter class as its key, such as LearningRate, or an instance "
                    f"without group=, such as LearningRate(optimizer='generator'), got {key!r}. "
                    f"Give {key!r} a single schedule."
                )
            kind, name = (key, None) if is_class else (type(key), key.optimizer)
            for group, item in enumerate(value):
                one = kind(group=group, optimizer=name)
                _check_domain(one, owner)
                entries.append(
                    Scheduled(one, as_schedule(item, f"{owner}[{one.name}]"), len(value))
                )
            continue
        hp = _hyperparameter(key, owner)
        _check_domain(hp, owner)
        entries.append(Scheduled(hp, as_schedule(value, f"{owner}[{hp.name}]")))
    names = [e.hyperparameter.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HyperParameterError(
            f"{owner}: {', '.join(duplicates)} is scheduled more than once. Give each "
            f"hyperparameter one schedule (combine schedules with + or *)."
        )
    return entries


def check_groups(entry: Scheduled, optimizer: Any, owner: str) -> None:
    """Checks that a per-group list has one schedule per param group of ``optimizer``.

    Examples:
        >>> import torch
        >>> from fluxtrain import LearningRate
        >>> optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> entry = parse_schedules(({LearningRate: [0.1, 0.2]},), "Mine")[0]
        >>> check_groups(entry, optimizer, "Mine")
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.HyperParameterError: Mine: {LearningRate: [...]} gives 2 schedules, ...
    """
    groups = len(optimizer.param_groups)
    if entry.n_groups is not None and entry.n_groups != groups:
        name = type(entry.hyperparameter).__name__
        raise HyperParameterError(
            f"{owner}: {{{name}: [...]}} gives {entry.n_groups} schedules, one per param group, "
            f"but the optimizer has {groups} param group(s). Give exactly {groups}, or key "
            f"single groups with {name}(group=i)."
        )


def domain_text(low: float, high: float) -> str:
    """``(low, high)`` in words, for messages; a ``low`` of ``math.ulp(0.0)`` reads ``0 <``.

    Examples:
        >>> domain_text(0.0, 1.0), domain_text(*FINITE), domain_text(math.ulp(0.0), math.inf)
        ('0 <= value < 1', 'finite (-inf < value < inf)', '0 < value < inf')
    """
    if (low, high) == FINITE:
        return "finite (-inf < value < inf)"
    if low == math.ulp(0.0):  # the smallest float above 0: positive values
        return f"0 < value < {high:g}"
    return f"{low:g} <= value < {high:g}"


def _check_domain(hp: HyperParameter, owner: str) -> None:
    domain = hp.domain
    if not (
        isinstance(domain, tuple)
        and len(domain) == 2
        and all(isinstance(x, numbers.Real) and not math.isnan(x) for x in domain)
        and domain[0] < domain[1]
    ):
        raise HyperParameterError(
            f"{owner}: {type(hp).__name__}.domain must be (low, high) with low < high, meaning "
            f"low <= value < high, got {domain!r}. Set e.g. domain = (0.0, 1.0), or leave it "
            f"out for any finite value."
        )


def _hyperparameter(key: object, owner: str) -> HyperParameter:
    if isinstance(key, HyperParameter):
        return key
    if isinstance(key, type) and issubclass(key, HyperParameter):
        try:
            return key()
        except TypeError as error:
            raise HyperParameterError(
                f"{owner}: could not build {key.__name__}() with no arguments ({error}); "
                f"pass an instance as the key instead."
            ) from error
    raise HyperParameterError(
        f"{owner}: keys must be HyperParameter classes or instances (LearningRate, "
        f"LearningRate(group=1)), got {type(key).__name__}: {key!r}."
    )


def check_tokens(tokens: Any, needed: bool) -> Any:
    """``tokens`` if it is a function (or ``None`` and no schedule is in unit ``"token"``)."""
    if tokens is not None and not callable(tokens):
        raise ScheduleError(
            f"Scheduler: tokens must be a function tokens(batch) -> int, got {tokens!r}."
        )
    if tokens is None and needed:
        raise ScheduleError(
            "Scheduler: a schedule is in unit 'token', so the Scheduler needs to count the "
            "tokens of each batch: pass Scheduler(..., tokens=lambda batch: ...), e.g. "
            "lambda batch: int((batch.targets != -100).sum())."
        )
    return tokens


def positive_int(value: object, what: str, owner: str) -> int:
    """``value`` if it is an int > 0; else a :class:`~fluxtrain.ScheduleError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ScheduleError(f"{owner}: {what} must be an int > 0, got {value!r}.")
    return value


def onecycle_pairs(
    n: float, max_lr: float, moms: Any, kw: Mapping[str, Any]
) -> list[tuple[type[HyperParameter], BaseSchedule]]:
    """The learning rate and momentum schedules of :meth:`fluxtrain.Scheduler.onecycle`.

    Examples:
        >>> [hp.__name__ for hp, _ in onecycle_pairs(2, 0.1, None, {})]
        ['LearningRate']
    """
    from .schedules import onecycle

    pairs: list[tuple[type[HyperParameter], BaseSchedule]] = [
        (LearningRate, onecycle(n, max_lr, **kw))
    ]
    if moms is not None:
        if not (isinstance(moms, (tuple, list)) and len(moms) == 3):
            raise ScheduleError(
                f"Scheduler.onecycle: moms must be (start, peak, end) momentum values or "
                f"None, got {moms!r}."
            )
        shape = {k: kw[k] for k in ("pct_start", "unit") if k in kw}
        pairs.append((Momentum, onecycle(n, moms[1], start_val=moms[0], end_val=moms[2], **shape)))
    return pairs
