"""One-cycle schedules: fluxtrain's (FluxTraining.jl and fastai) and torch ``OneCycleLR``'s.

:func:`onecycle` peaks at ``n * pct_start`` and ends at ``n``. torch's ``OneCycleLR`` counts
``total_steps`` scheduler steps and puts its keyframes one step earlier: it peaks at
``pct_start * total_steps - 1`` and reaches its final value at ``total_steps - 1``;
:func:`onecycle_two_phase` and :func:`onecycle_three_phase` reproduce it step for step, and their
``_momentum`` companions the momentum torch cycles against it. All hold their last value after
the end (torch extrapolates its curve for one extra step and then refuses to step).

Examples:
    >>> from fluxtrain.schedules import onecycle
    >>> s = onecycle(10, 1.0, pct_start=0.3, unit="step")
    >>> s(0), s(3), s(10)
    (0.04, 1.0, 1e-05)
"""

from __future__ import annotations

from ..easings import sineio
from ..exceptions import ScheduleError
from .base import BaseSchedule
from .decays import check_number, cosine, linear
from .keyframes import Schedule
from .modifiers import join


def onecycle(
    n: float,
    max_val: float,
    pct_start: float = 0.25,
    div: float = 25,
    divfinal: float = 1e5,
    start_val: float | None = None,
    end_val: float | None = None,
    unit: str = "epoch",
) -> Schedule:
    """The one-cycle schedule: up from ``start_val`` to ``max_val``, then down to ``end_val``.

    ``Schedule([0, n * pct_start, n], [start_val, max_val, end_val], sineio(), unit=unit)``:
    with ``x`` the fraction of a phase done, each phase moves by ``(1 - cos(pi * x)) / 2`` of
    its distance. It peaks at ``t = n * pct_start`` and holds ``end_val`` from ``t = n`` on.
    ``start_val`` defaults to ``max_val / div`` and ``end_val`` to ``max_val / divfinal``.
    With ``unit="epoch"`` (the default) and ``n`` epochs this is fastai's ``fit_one_cycle``;
    momentum cycling is the same shape inverted: ``onecycle(n, 0.85, start_val=0.95,
    end_val=0.95)``.

    Examples:
        >>> from fluxtrain.schedules import onecycle
        >>> s = onecycle(4, 1.0, pct_start=0.5)
        >>> s(0), s(1), s(2), s(4)
        (0.04, 0.52, 1.0, 1e-05)
    """
    owner = "onecycle"
    n = check_number(owner, "n", n, 0, strict=True)
    peak = check_number(owner, "max_val", max_val)
    fraction = check_number(owner, "pct_start", pct_start, 0, strict=True)
    if fraction >= 1.0:
        raise ScheduleError(f"{owner}: pct_start must be in (0, 1), got {pct_start!r}.")
    div = check_number(owner, "div", div, 0, strict=True)
    divfinal = check_number(owner, "divfinal", divfinal, 0, strict=True)
    first = peak / div if start_val is None else check_number(owner, "start_val", start_val)
    last = peak / divfinal if end_val is None else check_number(owner, "end_val", end_val)
    return Schedule([0.0, n * fraction, n], [first, peak, last], sineio(), unit=unit)


_ANNEALS = ("cos", "linear")


def _phase_ends(owner: str, total_steps: int, pct_start: float, phases: int) -> list[float]:
    """torch's phase ends: ``pct * N - 1`` (and ``2 * pct * N - 2``), then ``N - 1``."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 2:
        raise ScheduleError(
            f"{owner}: total_steps must be an integer >= 2 (the number of scheduler steps), "
            f"got {total_steps!r}."
        )
    fraction = check_number(owner, "pct_start", pct_start, 0, strict=True)
    peak = fraction * total_steps - 1.0
    ends = [peak, 2.0 * fraction * total_steps - 2.0] if phases == 3 else [peak]
    ends.append(float(total_steps - 1))
    if peak <= 0.0 or any(b <= a for a, b in zip(ends, ends[1:])):
        raise ScheduleError(
            f"{owner}: pct_start={pct_start!r} with total_steps={total_steps!r} leaves a phase "
            f"without steps (phase ends at steps {ends}); pct_start * total_steps must be > 1 "
            "and each phase must end after the one before it."
        )
    return ends


def _phases(
    owner: str, ends: list[float], values: list[float], anneal: str, unit: str
) -> BaseSchedule:
    """Joins one annealing per phase, from ``values[i]`` to ``values[i + 1]``."""
    if anneal not in _ANNEALS:
        raise ScheduleError(
            f"{owner}: anneal must be 'cos' or 'linear' (torch's anneal_strategy), got {anneal!r}."
        )
    shape = cosine if anneal == "cos" else linear
    starts = [0.0, *ends[:-1]]
    pieces = [
        shape(a, b, end - start, unit) for a, b, start, end in zip(values, values[1:], starts, ends)
    ]
    return join(pieces, starts[1:])


def _lr_values(
    owner: str, max_val: float, div: float, divfinal: float
) -> tuple[float, float, float]:
    """torch's ``(initial, peak, final)`` learning rates: ``max_val / div``, ``max_val`` and
    ``initial / divfinal``."""
    peak = check_number(owner, "max_val", max_val)
    initial = peak / check_number(owner, "div", div, 0, strict=True)
    final = initial / check_number(owner, "divfinal", divfinal, 0, strict=True)
    return initial, peak, final


def _momentum_values(owner: str, base_momentum: float, max_momentum: float) -> tuple[float, float]:
    """torch's ``(low, high)`` momenta: ``base_momentum`` at the peak, ``max_momentum`` else."""
    low = check_number(owner, "base_momentum", base_momentum)
    high = check_number(owner, "max_momentum", max_momentum)
    return low, high


def onecycle_two_phase(
    total_steps: int,
    max_val: float,
    pct_start: float = 0.3,
    div: float = 25,
    divfinal: float = 1e4,
    anneal: str = "cos",
    unit: str = "step",
) -> BaseSchedule:
    """torch ``OneCycleLR(opt, max_val, total_steps, pct_start, anneal_strategy=anneal,
    div_factor=div, final_div_factor=divfinal)`` at step ``t``.

    From ``initial = max_val / div`` up to ``max_val`` at ``p = pct_start * total_steps - 1``,
    then down to ``initial / divfinal`` at ``total_steps - 1``, held after. ``anneal="cos"``
    moves as ``b + (a - b) * (1 + cos(pi * x)) / 2`` from ``a`` to ``b`` with ``x`` the fraction
    of the phase; ``"linear"`` as ``a + (b - a) * x``.

    Examples:
        >>> from fluxtrain.schedules import onecycle_two_phase
        >>> s = onecycle_two_phase(12, 1.0, pct_start=0.25, anneal="linear")
        >>> s(0), s(2), s(11)
        (0.04, 1.0, 4e-06)
    """
    owner = "onecycle_two_phase"
    ends = _phase_ends(owner, total_steps, pct_start, 2)
    initial, peak, final = _lr_values(owner, max_val, div, divfinal)
    return _phases(owner, ends, [initial, peak, final], anneal, unit)


def onecycle_two_phase_momentum(
    total_steps: int,
    pct_start: float = 0.3,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    anneal: str = "cos",
    unit: str = "step",
) -> BaseSchedule:
    """The momentum torch ``OneCycleLR`` cycles alongside :func:`onecycle_two_phase`: from
    ``max_momentum`` down to ``base_momentum`` at the peak, back up at the end.

    Examples:
        >>> from fluxtrain.schedules import onecycle_two_phase_momentum
        >>> s = onecycle_two_phase_momentum(12, pct_start=0.25, anneal="linear")
        >>> s(0), s(2), s(11)
        (0.95, 0.85, 0.95)
    """
    owner = "onecycle_two_phase_momentum"
    ends = _phase_ends(owner, total_steps, pct_start, 2)
    low, high = _momentum_values(owner, base_momentum, max_momentum)
    return _phases(owner, ends, [high, low, high], anneal, unit)


def onecycle_three_phase(
    total_steps: int,
    max_val: float,
    pct_start: float = 0.3,
    div: float = 25,
    divfinal: float = 1e4,
    anneal: str = "cos",
    unit: str = "step",
) -> BaseSchedule:
    """torch ``OneCycleLR(..., three_phase=True)`` at step ``t``: up from ``initial = max_val /
    div`` to ``max_val`` at ``pct_start * total_steps - 1``, back to ``initial`` at ``2 *
    pct_start * total_steps - 2``, then down to ``initial / divfinal`` at ``total_steps - 1``.

    Examples:
        >>> from fluxtrain.schedules import onecycle_three_phase
        >>> s = onecycle_three_phase(12, 1.0, pct_start=0.25, anneal="linear")
        >>> s(0), s(2), s(4), s(11)
        (0.04, 1.0, 0.04, 4e-06)
    """
    owner = "onecycle_three_phase"
    ends = _phase_ends(owner, total_steps, pct_start, 3)
    initial, peak, final = _lr_values(owner, max_val, div, divfinal)
    return _phases(owner, ends, [initial, peak, initial, final], anneal, unit)


def onecycle_three_phase_momentum(
    total_steps: int,
    pct_start: float = 0.3,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    anneal: str = "cos",
    unit: str = "step",
) -> BaseSchedule:
    """The momentum of torch ``OneCycleLR(..., three_phase=True)``: ``max_momentum`` down to
    ``base_momentum`` at the peak, back up by the end of the second phase, then held.

    Examples:
        >>> from fluxtrain.schedules import onecycle_three_phase_momentum
        >>> s = onecycle_three_phase_momentum(12, pct_start=0.25, anneal="linear")
        >>> s(0), s(2), s(4), s(11)
        (0.95, 0.85, 0.95, 0.95)
    """
    owner = "onecycle_three_phase_momentum"
    ends = _phase_ends(owner, total_steps, pct_start, 3)
    low, high = _momentum_values(owner, base_momentum, max_momentum)
    return _phases(owner, ends, [high, low, high, high], anneal, unit)
