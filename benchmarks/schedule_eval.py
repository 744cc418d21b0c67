"""Microseconds per scalar evaluation of a keyframe ``Schedule`` (median of timeit repeats).

Run from the repository root::

    python -m benchmarks.schedule_eval      # or python benchmarks/schedule_eval.py, installed

``schedule(t)`` is what a ``Scheduler`` calls once per training step; ``schedule.scalar(t)``
skips the float/array dispatch of ``__call__``. The budget is 2 microseconds per call.
"""

from __future__ import annotations

import statistics
import timeit

from fluxtrain.easings import linear, sineio
from fluxtrain.schedules.keyframes import Schedule

NUMBER = 100_000
REPEAT = 9

SCHEDULES = {
    "linear, 2 keyframes": Schedule([0, 10], [0.1, 1.0], linear()),
    "sineio, 2 keyframes": Schedule([0, 10], [0.1, 1.0], sineio()),
    "onecycle-like, 3 keyframes": Schedule([0, 2.5, 10], [0.004, 0.1, 1e-6], sineio()),
    "cubic spline, 3 keyframes": Schedule([0, 2.5, 10], [0.004, 0.1, 1e-6], "cubic"),
}


def microseconds(function: object, t: float) -> float:
    """Median time of one ``function(t)`` call, in microseconds."""
    timer = timeit.Timer("function(t)", globals={"function": function, "t": t})
    return statistics.median(timer.repeat(repeat=REPEAT, number=NUMBER)) / NUMBER * 1e6


def main() -> None:
    times = [0.7, 3.3, 6.1]  # inside the first and the last segment of every schedule
    print(f"{'schedule':<28} {'schedule(t) us':>15} {'.scalar(t) us':>14}")
    for name, schedule in SCHEDULES.items():
        call = statistics.median(microseconds(schedule, t) for t in times)
        scalar = statistics.median(microseconds(schedule.scalar, t) for t in times)
        print(f"{name:<28} {call:>15.3f} {scalar:>14.3f}")


if __name__ == "__main__":
    main()
