"""The :class:`ScheduleClock`: a Scheduler's time in each of the schedule units.

``t`` counts completed optimizer steps over all ``fit`` calls. The ``"epoch"`` time is ``t``
divided by the steps per epoch; when that number changes between fits (new training data), the
epoch time goes on from where it was instead of jumping. The ``"fraction"`` time is the share
of the fit in progress (of its epochs, or of its ``steps=`` budget), and the ``"sample"`` time
the training samples seen in completed steps.

Examples:
    >>> clock = ScheduleClock()
    >>> clock.start_fit(steps_per_epoch=4, n_epochs=2, step=0)
    >>> clock.advance(samples=32)
    >>> clock.advance(steps=0, samples=32)  # a micro-batch under gradient accumulation
    >>> clock.times()  # (step, epoch, fraction, sample)
    (1, 0.25, 0.125, 64)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ScheduleClock:
    """Counts steps and samples; tells the time in each unit of
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
    """

    def __init__(self) -> None:
        self.t = 0
        self.samples = 0
        self.steps_per_epoch: int | None = None
        self._epoch_base = (0, 0.0)  # (t, epoch time at t) where the current steps/epoch began
        self._fit_start = 0
        self._fit_length = 0.0

    def times(self) -> tuple[int, float, float, int]:
        """The time now as ``(step, epoch, fraction, sample)``, in the order of ``UNITS``."""
        t = self.t
        base_t, base_epoch = self._epoch_base
        spe = self.steps_per_epoch
        epoch = (t - base_t) / spe + base_epoch if spe else 0.0
        fraction = (t - self._fit_start) / self._fit_length if self._fit_length else 0.0
        return (t, epoch, fraction, self.samples)

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

    def advance(self, steps: int = 1, samples: int = 0) -> None:
        """Counts completed optimizer steps and the samples they saw (``steps=0`` for an
        accumulating micro-batch, whose samples count but which is no optimizer step)."""
        self.t += steps
        self.samples += samples

    def state_dict(self) -> dict[str, Any]:
        """The counters, for checkpoints."""
        return {
            "t": self.t,
            "samples": self.samples,
            "epoch_base": self._epoch_base,
            "steps_per_epoch": self.steps_per_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned."""
        self.t, self.samples = int(state["t"]), int(state["samples"])
        base_t, base_epoch = state["epoch_base"]
        self._epoch_base = (int(base_t), float(base_epoch))
        self.steps_per_epoch = state["steps_per_epoch"]
