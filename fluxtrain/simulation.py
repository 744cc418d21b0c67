"""Simulating a fit without training: the values a ``Scheduler`` would apply at each step.

:func:`unit_times` gives the times of a fit's steps in a schedule's unit; :func:`simulate`
evaluates every schedule at them (:meth:`fluxtrain.Scheduler.simulate`), and
:func:`simulate_planned` does so under a ``BatchSize`` schedule, whose steps per epoch follow
the planned batch sizes.

Examples:
    >>> from fluxtrain import LearningRate
    >>> from fluxtrain.scheduled import parse_schedules
    >>> simulate(parse_schedules(({LearningRate: lambda t: t},), "S"), 1, 3)
    {'LearningRate': array([0., 1., 2.])}
"""

from __future__ import annotations

import numpy as np

from .batch_size import BatchPlan, BatchSize
from .clock import ScheduleClock
from .exceptions import ScheduleError
from .scheduled import Scheduled, positive_int
from .schedules.base import UNITS


def unit_times(
    unit: str, n_epochs: int, steps_per_epoch: int, batch_size: int | None = None
) -> np.ndarray:
    """The times, in ``unit``, of the steps of a fresh fit of ``n_epochs * steps_per_epoch``.

    Examples:
        >>> unit_times("epoch", 1, 4)
        array([0.  , 0.25, 0.5 , 0.75])
    """
    t = np.arange(n_epochs * steps_per_epoch, dtype=float)
    if unit == "epoch":
        return t / steps_per_epoch
    if unit == "fraction":
        return t / (n_epochs * steps_per_epoch)
    if unit == "sample":
        if batch_size is None:
            raise ScheduleError(
                "A schedule in unit 'sample' needs the batch size to be simulated; pass "
                "batch_size=... (samples per training step)."
            )
        return t * batch_size
    return t


def simulate(
    entries: list[Scheduled],
    n_epochs: int,
    steps_per_epoch: int | None,
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """The values a fresh fit of ``n_epochs`` would apply: :meth:`fluxtrain.Scheduler.simulate`.

    Examples:
        >>> from fluxtrain import LearningRate
        >>> from fluxtrain.scheduled import parse_schedules
        >>> simulate(parse_schedules(({LearningRate: lambda t: t},), "S"), 1, 2)
        {'LearningRate': array([0., 1.])}
    """
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 0:
        raise ScheduleError(f"simulate: n_epochs must be an int >= 0, got {n_epochs!r}.")
    if steps_per_epoch is None:
        raise ScheduleError(
            "simulate: pass steps_per_epoch (training batches per epoch), e.g. "
            "simulate(10, steps_per_epoch=len(train_loader))."
        )
    spe = positive_int(steps_per_epoch, "steps_per_epoch", "simulate")
    return {
        e.hyperparameter.name: np.asarray(
            e.schedule(unit_times(e.schedule.unit, n_epochs, spe, batch_size)), dtype=float
        )
        for e in entries
    }


def simulate_planned(
    entries: list[Scheduled], n_epochs: int, samples_per_epoch: int, drop_last: bool = False
) -> dict[str, np.ndarray]:
    """The values a fresh fit of ``n_epochs`` with a ``BatchSize`` schedule would apply, per
    step, over ``samples_per_epoch`` samples an epoch: :meth:`fluxtrain.Scheduler.simulate`.

    Examples:
        >>> from fluxtrain import Schedule
        >>> from fluxtrain.scheduled import parse_schedules
        >>> entries = parse_schedules(({BatchSize: Schedule([0, 1], [1, 3], unit="step")},), "S")
        >>> simulate_planned(entries, 1, 6)  # the last batch holds the 2 samples left
        {'BatchSize': array([1., 3., 3.])}
    """
    clock = ScheduleClock()
    clock.samples_per_epoch = samples_per_epoch
    clock.start_fit(None, n_epochs, 0)
    plan = BatchPlan(next(e for e in entries if isinstance(e.hyperparameter, BatchSize)), clock)
    evaluations = []
    for entry in entries:
        unit = entry.schedule.unit
        if unit == "token":
            raise ScheduleError(
                f"simulate: {entry.hyperparameter.name}'s schedule is in unit 'token', which "
                f"depends on the data; it cannot be simulated."
            )
        value_at = plan.value_at if entry is plan.entry else entry.schedule.scalar
        evaluations.append((value_at, UNITS.index(unit)))
    values: list[list[float]] = [[] for _ in entries]
    for _ in range(n_epochs):
        for size in plan.sizes(samples_per_epoch, drop_last):
            times = clock.times()
            for (value_at, index), out in zip(evaluations, values):
                out.append(value_at(times[index]))
            clock.advance(samples=size)
        clock.end_epoch()
    return {e.hyperparameter.name: np.asarray(out, dtype=float) for e, out in zip(entries, values)}
