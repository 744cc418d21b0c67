"""The :class:`Scheduler` callback: sets hyperparameters from schedules at every training step.

Time ``t`` counts completed training steps, from 0 at the first step of the first ``fit`` and
continuing across ``fit`` calls. Each schedule is evaluated in its own unit: ``"step"`` at
``t``, ``"epoch"`` at ``t / steps_per_epoch``, ``"fraction"`` at the share of the ``fit`` call
in progress (0 at its first step, 1 after its last) and ``"sample"`` at the number of training
samples seen in completed steps. The mapping it is given is read by :mod:`fluxtrain.scheduled`.

Examples:
    >>> from fluxtrain import LearningRate
    >>> from fluxtrain.testing import tiny_learner
    >>> scheduler = Scheduler({LearningRate: lambda t: 0.1 / (1 + t)})
    >>> learner = tiny_learner(scheduler, n_batches=2)
    >>> _ = learner.fit(1)
    >>> learner.cbstate.hyperparams["LearningRate"]
    Record([(0, 0.1), (1, 0.05)])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .access import Access, Read, Write, merge_stateaccess
from .batch_size import BatchPlan, BatchSize
from .batches import batch_size as count_samples
from .callback import Callback
from .clock import ScheduleClock
from .exceptions import HyperParameterError
from .hyperparameters import OptimizerHyperParameter
from .ordering import NoConflict, Resolution, Unresolvable
from .phases import AbstractTrainingPhase, AbstractValidationPhase, Phase
from .records import Record, record_in
from .scheduled import check_groups, check_tokens, onecycle_pairs, parse_schedules, positive_int
from .schedules.base import UNITS
from .simulation import simulate, simulate_planned


class Scheduler(Callback):
    """Sets hyperparameters from schedules at the start of every training step.

    At ``StepBegin`` of each training step every schedule is evaluated at the current time in
    its unit, checked against its hyperparameter's domain and applied, in the order given;
    each value is recorded as ``(t, value)`` in ``cbstate.hyperparams[name]``, a
    :class:`~fluxtrain.records.Record` (one entry per completed training step). Validation
    steps change nothing. At the end of each full epoch every schedule's ``observe`` sees the
    latest epoch metrics (for metric-driven schedules). A value outside the domain (NaN, a
    negative learning rate) ends the fit with a ``ScheduleError`` before it is set: the step
    does not run, and none of its values is recorded.

    Args:
        *schedules: One dict ``{HyperParameter: schedule}`` or ``(HyperParameter, schedule)``
            pairs. A key is a hyperparameter class (built with no arguments) or instance
            (``LearningRate(group=1)``); a value is a schedule, a function ``f(t)`` of the step,
            a number, or, for an optimizer hyperparameter class, a list with one per param group.
        steps_per_epoch: Optimizer steps per epoch for ``"epoch"`` and ``"fraction"`` units;
            by default ``fitstate.updates_per_epoch``: ``len()`` of the training data, divided
            by ``n`` and rounded up under ``GradientAccumulation(n)``. Under a
            :class:`~fluxtrain.BatchSize` schedule an epoch is a pass over the samples instead.
        tokens: ``tokens(batch) -> int``, the tokens of a training batch
            (:class:`~fluxtrain.state.Batch`), for schedules in unit ``"token"``, e.g.
            ``lambda batch: int((batch.targets != -100).sum())``.

    Attributes:
        clock: Its :class:`~fluxtrain.clock.ScheduleClock`: the time in each unit.

    Raises:
        HyperParameterError: For a bad key or a hyperparameter scheduled twice.
        ScheduleError: For a value that is no schedule; in a fit, for a value outside its
            hyperparameter's domain (NaN, a negative learning rate), before it is applied.

    Examples:
        >>> from fluxtrain import LearningRate, Momentum
        >>> from fluxtrain.schedules.base import FunctionSchedule
        >>> scheduler = Scheduler((LearningRate, FunctionSchedule(lambda e: 0.1 * e, "epoch")),
        ...                       (Momentum, 0.9))
        >>> scheduler.simulate(1, 4)["LearningRate"]
        array([0.   , 0.025, 0.05 , 0.075])
    """

    stateaccess = {
        "fitstate": Read,
        "batch.inputs": Read,
        "cbstate.hyperparams": Write,
        "cbstate.metrics_epoch": Read,
    }

    def __init__(
        self,
        *schedules: Any,
        steps_per_epoch: int | None = None,
        tokens: Callable[[Any], int] | None = None,
    ) -> None:
        self.entries = parse_schedules(schedules, "Scheduler")
        if steps_per_epoch is not None:
            positive_int(steps_per_epoch, "steps_per_epoch", "Scheduler")
        self.steps_per_epoch = steps_per_epoch
        self._units = {e.schedule.unit for e in self.entries}
        self.tokens = check_tokens(tokens, "token" in self._units)
        self.clock = ScheduleClock()
        sizes = [e for e in self.entries if isinstance(e.hyperparameter, BatchSize)]
        self._plan = BatchPlan(sizes[0], self.clock) if sizes else None
        self._counts_samples = "sample" in self._units or self._plan is not None
        self._applied = -1  # t of the last step whose values were applied, until it completes
        self._fitstate: Any = None
        self._updates = 0  # fitstate.total_steps at StepBegin, to tell updates from micro-batches
        self._loop: tuple[tuple[Any, ...], ...] = ()  # per entry, what on_step_begin needs
        self._records: list[Record] = []

    @property
    def names(self) -> list[str]:
        """The names values are recorded under, in order."""
        return [e.hyperparameter.name for e in self.entries]

    def accesses(self) -> Mapping[str, Access]:
        hps = (e.hyperparameter.stateaccess for e in self.entries)
        extra = {"batch": Read} if self.tokens is not None else {}
        return merge_stateaccess(*hps, self.stateaccess, extra)

    def training_data(self, data: Any) -> Any:
        """Under a :class:`~fluxtrain.BatchSize` schedule, the training ``DataLoader`` cut into
        the batches the schedule gives (see :mod:`fluxtrain.batch_size`); else ``data``."""
        return data if self._plan is None else self._plan.training_data(data)

    def resolveconflict(self, other: Callback) -> Resolution:
        if isinstance(other, Scheduler) and not set(self.names) & set(other.names):
            return NoConflict()
        return Unresolvable()

    def init(self, learner: Any) -> None:
        if "hyperparams" not in learner.cbstate:
            learner.cbstate.hyperparams = {}

    # -- hooks -------------------------------------------------------------------------------

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        checks = []
        for entry in self.entries:
            hp, unit = entry.hyperparameter, UNITS.index(entry.schedule.unit)
            optimizers = hp.targets(learner) if isinstance(hp, OptimizerHyperParameter) else []
            for optimizer in optimizers if entry.n_groups is not None else []:
                check_groups(entry, optimizer, "Scheduler")
            hp.check(learner)
            plan = self._plan
            value_at = plan.value_at if plan and entry is plan.entry else entry.schedule.scalar
            checks.append((value_at, unit, *entry.domain_on(optimizers)))
        spe = self.steps_per_epoch or learner.fitstate.updates_per_epoch
        self.clock.start(learner.fitstate, spe, self._units)
        self._fitstate = learner.fitstate
        cbstate = learner.cbstate
        if "hyperparams" not in cbstate:
            cbstate.hyperparams = {}
        self._records = [record_in(cbstate.hyperparams, name) for name in self.names]
        self._loop = tuple(
            (*check, e.hyperparameter.setter(learner), record.steps.append, record.values.append, e)
            for check, e, record in zip(checks, self.entries, self._records)
        )
        self._applied = -1

    def on_step_begin(self, phase: Phase, learner: Any) -> None:
        if not self._loop or not isinstance(phase, AbstractTrainingPhase):
            return
        times = self.clock.times()
        t = times[0]
        if self._applied == t:  # the previous step was cancelled: forget its values
            self._drop_last()
        for value_at, unit, low, high, set_value, record_step, record_value, entry in self._loop:
            value = value_at(times[unit])
            if not low <= value < high:  # also NaN
                self._drop_last()  # the values of this step set so far are not recorded
                raise entry.rejection("Scheduler", value, t, times[unit], (low, high))
            set_value(value)
            record_step(t)
            record_value(value)
        self._applied = t
        self._updates = self._fitstate.total_steps

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        if self._loop and isinstance(phase, AbstractTrainingPhase):
            update = self._fitstate.total_steps != self._updates  # not an accumulating micro-batch
            samples = count_samples(learner.batch.inputs) if self._counts_samples else 0
            tokens = 0 if self.tokens is None else int(self.tokens(learner.batch))
            self.clock.advance(1 if update else 0, samples, tokens)

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        if not self._loop:
            return
        if isinstance(phase, AbstractTrainingPhase):
            self.clock.end_epoch()
        kind = AbstractValidationPhase if learner.fitstate.has_validation else AbstractTrainingPhase
        if not isinstance(phase, kind):
            return
        cbstate = learner.cbstate
        history = cbstate.metrics_epoch if "metrics_epoch" in cbstate else {}
        metrics = {name: values[-1] for name, values in history.items() if values}
        times = self.clock.times()
        for entry in self.entries:
            entry.schedule.observe(metrics, times[UNITS.index(entry.schedule.unit)])

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        if self._applied == self.clock.t:
            self._drop_last()
        self._loop, self._records, self._applied = (), [], -1

    def _drop_last(self) -> None:
        for record in self._records:
            if record and record.steps[-1] == self.clock.t:
                record.pop()

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Its time counters and the state of metric-driven schedules, for checkpoints."""
        return {
            **self.clock.state_dict(),
            "schedules": {e.hyperparameter.name: e.schedule.state_dict() for e in self.entries},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned (the same hyperparameters must be set)."""
        schedules = state["schedules"]
        if set(schedules) != set(self.names):
            raise HyperParameterError(
                f"Scheduler.load_state_dict: the state schedules {sorted(schedules)}, but this "
                f"Scheduler schedules {sorted(self.names)}. Build it with the same "
                f"hyperparameters as the one that was saved."
            )
        self.clock.load_state_dict(state)
        for entry in self.entries:
            entry.schedule.load_state_dict(schedules[entry.hyperparameter.name])

    # -- without training --------------------------------------------------------------------

    def simulate(
        self,
        n_epochs: int,
        steps_per_epoch: int | None = None,
        batch_size: int | None = None,
        samples_per_epoch: int | None = None,
    ) -> dict[str, np.ndarray]:
        """The values a fresh fit of ``n_epochs`` would apply, per hyperparameter, per step.

        Nothing is trained and no state changes; metric-driven schedules are evaluated as they
        are now. ``"sample"`` units assume every batch has ``batch_size`` samples; under a
        :class:`~fluxtrain.BatchSize` schedule the batches are planned as in a fit over
        ``samples_per_epoch`` samples an epoch instead (``steps_per_epoch`` is not used).
        Returns ``{name: array}`` with one value per training step.

        Args:
            n_epochs: Epochs of the fit, ``>= 0``.
            steps_per_epoch: Training steps per epoch; the constructor's by default.
            batch_size: Samples per step, needed by ``"sample"`` units only.
            samples_per_epoch: Training samples per epoch, needed (only) with ``BatchSize``;
                by default those of the training data of the latest fit.

        Examples:
            >>> from fluxtrain import LearningRate
            >>> Scheduler({LearningRate: lambda t: 1 / (1 + t)}).simulate(1, 3)
            {'LearningRate': array([1.        , 0.5       , 0.33333333])}
        """
        if self._plan is not None:
            samples = samples_per_epoch or self.clock.samples_per_epoch  # the fit's, once seen
            positive_int(samples, "samples_per_epoch", "simulate with BatchSize")
            return simulate_planned(self.entries, n_epochs, samples)  # type: ignore[arg-type]
        spe = steps_per_epoch if steps_per_epoch is not None else self.steps_per_epoch
        return simulate(self.entries, n_epochs, spe, batch_size)

    @classmethod
    def onecycle(
        cls,
        n: float,
        max_lr: float,
        moms: tuple[float, float, float] | None = (0.95, 0.85, 0.95),
        **kw: Any,
    ) -> Scheduler:
        """One-cycle learning rate and inverted one-cycle momentum (fastai's ``fit_one_cycle``).

        Args:
            n: Length of the cycle, in ``unit`` (epochs by default).
            max_lr: Peak learning rate.
            moms: Momentum at the start, at the peak and at the end; ``None`` for no momentum.
            **kw: ``pct_start`` and ``unit`` shape both curves; ``div``, ``divfinal``,
                ``start_val`` and ``end_val`` only the learning rate; ``steps_per_epoch`` goes
                to the Scheduler.

        Examples:
            >>> scheduler = Scheduler.onecycle(2, 0.1)
            >>> scheduler.names
            ['LearningRate', 'Momentum']
            >>> float(scheduler.simulate(2, 4)["Momentum"][0])
            0.95
        """
        steps_per_epoch = kw.pop("steps_per_epoch", None)
        return cls(*onecycle_pairs(n, max_lr, moms, kw), steps_per_epoch=steps_per_epoch)

    def __repr__(self) -> str:
        inner = ", ".join(f"{e.hyperparameter!r}: {e.schedule!r}" for e in self.entries)
        return f"Scheduler({inner})"
