"""The :class:`ScheduleClock`: a Scheduler's time in each of the schedule units.

``t`` counts completed optimizer steps over all ``fit`` calls. The ``"epoch"`` time is ``t``
divided by the steps per epoch; when that number changes between fits (new training data), the
epoch time goes on from where it was instead of jumping. The ``"fraction"`` time is the share
of the fit in progress (of its epochs, or of its ``steps=`` budget), the ``"sample"`` time the
training samples seen in completed steps and the ``"token"`` time the tokens they held.

Under a ``BatchSize`` schedule the steps per epoch change with the batch size, so an epoch is a
pass over the samples instead (:attr:`ScheduleClock.samples_per_epoch` is set): the ``"epoch"``
time is the training epochs completed plus the share of this epoch's samples seen, and the
``"fraction"`` of an epoch budget is the epochs of the fit so far over its ``n_epochs``.

Examples:
    >>> clock = ScheduleClock()
    >>> clock.start_fit(steps_per_epoch=4, n_epochs=2, step=0)
    >>> clock.advance(samples=32)
    >>> clock.advance(steps=0, samples=32)  # a micro-batch under gradient accumulation
    >>> clock.times()  # (step, epoch, fraction, sample, token)
    (1, 0.25, 0.125, 64, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .exceptions import ScheduleError


class ScheduleClock:
    """Counts steps, samples and tokens; tells the time in each unit of
    :data:`~fluxtrain.schedules.base.UNITS`.

    Examples:
        >>> clock = ScheduleClock()
        >>> clock.start_fit(steps_per_epoch=2, n_epochs=1, step=0)
        >>> for _ in range(2):
        ...     clock.advance()
        >>> clock.start_fit(steps_per_epoch=4, n_epochs=1, step=0)  # new data: 4 steps/epoch
        >>> clock.advance()
        >>> clock.times()[:3]
        (3, 1.25, 0.25)

        Epochs as passes over 100 samples (under a ``BatchSize`` schedule):

        >>> clock = ScheduleClock()
        >>> clock.samples_per_epoch = 100
        >>> clock.start_fit(steps_per_epoch=None, n_epochs=2, step=0)
        >>> clock.advance(samples=30)
        >>> clock.times()[:4]
        (1, 0.3, 0.15, 30)
    """

    def __init__(self) -> None:
        self.t = 0
        self.samples = 0
        self.tokens = 0
        self.steps_per_epoch: int | None = None
        self.samples_per_epoch: int | None = None  # set when an epoch is a pass over samples
        self.epochs = 0  # training epochs completed, counted when samples_per_epoch is set
        self.epoch_samples = 0  # samples seen in the epoch in progress
        self.epoch_start = (0, 0)  # (t, samples) when the epoch in progress began
        self._epoch_base = (0, 0.0)  # (t, epoch time at t) where the current steps/epoch began
        self._fit_start = 0
        self._fit_length = 0.0
        self._fit_epochs: tuple[float, int] | None = None  # (epoch time at the start, n_epochs)

    def times(self) -> tuple[int, float, float, int, int]:
        """The time now as ``(step, epoch, fraction, sample, token)``, in the order of
        ``UNITS``."""
        if self.samples_per_epoch is not None:
            return self.times_at(self.t, self.samples, self.epoch_samples)
        t = self.t
        base_t, base_epoch = self._epoch_base
        spe = self.steps_per_epoch
        epoch = (t - base_t) / spe + base_epoch if spe else 0.0
        fraction = (t - self._fit_start) / self._fit_length if self._fit_length else 0.0
        return (t, epoch, fraction, self.samples, self.tokens)

    def times_at(
        self, t: int, samples: int, epoch_samples: int
    ) -> tuple[int, float, float, int, int]:
        """The times after ``t`` steps and ``samples`` samples, ``epoch_samples`` of them in
        the epoch in progress, with epochs as passes over ``samples_per_epoch`` samples (the
        ``BatchSize`` plan asks this of steps still to come)."""
        epoch = self.epochs + epoch_samples / (self.samples_per_epoch or 1)
        if self._fit_epochs is not None:
            start, n_epochs = self._fit_epochs
            fraction = (epoch - start) / n_epochs if n_epochs else 0.0
        else:
            fraction = (t - self._fit_start) / self._fit_length if self._fit_length else 0.0
        return (t, epoch, fraction, samples, self.tokens)

    def plan_key(self) -> tuple[Any, ...]:
        """What :meth:`times_at` depends on besides its arguments: equal keys, equal times."""
        return (
            self.epochs,
            self.samples_per_epoch,
            self._fit_epochs,
            self._fit_start,
            self._fit_length,
        )

    def start(self, fitstate: Any, steps_per_epoch: int | None, units: Iterable[str]) -> None:
        """:meth:`start_fit` for the fit ``fitstate`` describes, with schedules in ``units``.

        Raises:
            ScheduleError: An ``"epoch"`` or ``"fraction"`` unit needs the steps per epoch of
                data without ``len()``.
        """
        needs = sorted(set(units) & {"epoch", "fraction"})
        if fitstate.n_steps is not None:  # the fraction follows the step budget
            needs = [unit for unit in needs if unit != "fraction"]
        if steps_per_epoch is None and needs and self.samples_per_epoch is None:
            raise ScheduleError(
                f"Scheduler: a schedule in unit {needs[0]!r} needs the number of steps per "
                f"epoch, but the training data has no len() (an IterableDataset, a stream). "
                f"Pass Scheduler(..., steps_per_epoch=N) with the number of training batches "
                f"per epoch, or build the schedule with unit='step' (or unit='fraction' under "
                f"fit(steps=...))."
            )
        self.start_fit(steps_per_epoch, fitstate.n_epochs, fitstate.step, fitstate.n_steps)

    def start_fit(
        self,
        steps_per_epoch: int | None,
        n_epochs: int | None,
        step: int,
        n_steps: int | None = None,
    ) -> None:
        """Begins a fit of ``n_epochs`` epochs or ``n_steps`` steps, ``step`` steps of which
        are already done (more than 0 in a resumed fit)."""
        spe = steps_per_epoch
        if spe is not None and self.steps_per_epoch is not None and spe != self.steps_per_epoch:
            self._epoch_base = (self.t, self.times()[1])
        self.steps_per_epoch = spe
        self._fit_start = self.t - step
        if n_steps is not None:
            self._fit_length = float(n_steps)
        else:
            self._fit_length = float((n_epochs or 0) * spe) if spe is not None else 0.0
        if self.samples_per_epoch is None or n_steps is not None:
            self._fit_epochs = None
        elif step == 0 or self._fit_epochs is None:
            self._fit_epochs = (float(self.epochs), n_epochs or 0)
        else:  # resumed: the start is the one saved
            self._fit_epochs = (self._fit_epochs[0], n_epochs or 0)
        if self.epoch_samples == 0:
            self.epoch_start = (self.t, self.samples)

    def advance(self, steps: int = 1, samples: int = 0, tokens: int = 0) -> None:
        """Counts completed optimizer steps and the samples and tokens they saw (``steps=0``
        for an accumulating micro-batch, whose samples count but which is no optimizer step)."""
        self.t += steps
        self.samples += samples
        self.tokens += tokens
        self.epoch_samples += samples

    def end_epoch(self) -> None:
        """Counts a completed training epoch; the next one begins now."""
        self.epochs += 1
        self.epoch_samples = 0
        self.epoch_start = (self.t, self.samples)

    def state_dict(self) -> dict[str, Any]:
        """The counters, for checkpoints."""
        return {
            "t": self.t,
            "samples": self.samples,
            "tokens": self.tokens,
            "epoch_base": self._epoch_base,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
            "epoch_samples": self.epoch_samples,
            "epoch_start": self.epoch_start,
            "fit_epochs": self._fit_epochs,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned."""
        self.t, self.samples = int(state["t"]), int(state["samples"])
        self.tokens = int(state.get("tokens", 0))
        base_t, base_epoch = state["epoch_base"]
        self._epoch_base = (int(base_t), float(base_epoch))
        self.steps_per_epoch = state["steps_per_epoch"]
        self.epochs = int(state.get("epochs", 0))
        self.epoch_samples = int(state.get("epoch_samples", 0))
        start_t, start_samples = state.get("epoch_start", (self.t, self.samples))
        self.epoch_start = (int(start_t), int(start_samples))
        fit_epochs = state.get("fit_epochs")
        self._fit_epochs = None if fit_epochs is None else (float(fit_epochs[0]), fit_epochs[1])
