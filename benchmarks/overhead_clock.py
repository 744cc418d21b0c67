"""The clock the overhead benchmarks read: wall time, or the process's CPU time.

CPU time (``--clock cpu``) leaves out the time the process waited for a core, which on a shared
machine is most of the noise; for a GPU workload use wall time, which includes the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_clock: list[Callable[[], float]] = [time.perf_counter]


def clock() -> float:
    """Seconds on the chosen clock."""
    return _clock[0]()


def use_clock(name: str) -> None:
    """Chooses ``"wall"`` (``time.perf_counter``) or ``"cpu"`` (``time.process_time``)."""
    _clock[0] = {"wall": time.perf_counter, "cpu": time.process_time}[name]
