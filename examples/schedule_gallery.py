"""Plots every schedule of the catalogue, one panel each, into one PNG.

Usage: ``python examples/schedule_gallery.py [out.png]`` (default ``schedule_gallery.png``).
Each panel shows the value applied at each training step ``t`` (the x axis, in steps).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import matplotlib
import numpy as np

from fluxtrain.schedules import (
    constant,
    cooldown,
    cosine,
    cyclical,
    exponential,
    from_list,
    inverse_sqrt,
    join,
    linear,
    loop,
    multistep,
    onecycle,
    onecycle_three_phase,
    onecycle_three_phase_momentum,
    onecycle_two_phase,
    onecycle_two_phase_momentum,
    poly,
    range_test,
    reduce_on_plateau,
    sgdr,
    step_decay,
    triangular,
    warmup,
    warmup_stable_decay,
)
from fluxtrain.schedules.base import BaseSchedule

STEPS = 100


def plateau_after_warmup() -> np.ndarray:
    """A warmup of 2 epochs, then reduce_on_plateau fed a scripted validation loss per epoch."""
    schedule = join([linear(0.01, 0.1, 20), reduce_on_plateau(factor=0.5, patience=1)], [20])
    losses = [2.0, 1.5, 1.2, 1.1, 1.12, 1.11, 1.0, 1.05, 1.04, 1.06]
    values = []
    for epoch, loss in enumerate(losses):  # 10 epochs of 10 steps
        values += [schedule(float(t)) for t in range(epoch * 10, epoch * 10 + 10)]
        schedule.observe({"valid/Loss": loss}, (epoch + 1) * 10.0)
    return np.array(values)


def small_triangle(length: float) -> BaseSchedule:
    return triangular(0.01, 0.1, length)


base, swing = 0.01, 0.09
GALLERY: dict[str, BaseSchedule | Callable[[], np.ndarray]] = {
    "constant(0.1)": constant(0.1),
    "linear(0.1, 0.01, 60)": linear(0.1, 0.01, 60),
    "exponential(0.1, 0.97)": exponential(0.1, 0.97),
    "exponential(.., 0.5, 20, staircase)": exponential(0.1, 0.5, 20, staircase=True),
    "step_decay(0.1, 0.5, 25, min_value=0.02)": step_decay(0.1, 0.5, 25, min_value=0.02),
    "multistep(0.1, 0.1, [30, 70])": multistep(0.1, 0.1, [30, 70]),
    "poly(0.1, 80, power=2, final=0.01)": poly(0.1, 80, 2, 0.01),
    "cosine(0.1, 0.01, 80)": cosine(0.1, 0.01, 80),
    "inverse_sqrt(0.1, warmup=10)": inverse_sqrt(0.1, 10),
    "warmup_stable_decay(0.1, 10, 50, 30)": warmup_stable_decay(0.1, 10, 50, 30, 0.01),
    "range_test(1e-5, 1, 90)  [log y]": range_test(1e-5, 1.0, 90),
    "from_list([...])": from_list([0.1] * 20 + [0.05] * 30 + [0.08] * 10 + [0.02]),
    "triangular(0.01, 0.1, 40)": triangular(0.01, 0.1, 40),
    "triangular(.., 30, inc_fraction=0.2)": triangular(0.01, 0.1, 30, 0.2),
    "cyclical(triangular, 20, 1.5, 0.7)": cyclical(small_triangle, 20, 1.5, 0.7),
    "sgdr(0.1, 0.01, 15, 2)": sgdr(0.1, 0.01, 15, 2),
    "loop(linear(0.1, 0.01, 25), 25)": loop(linear(0.1, 0.01, 25), 25),
    "CyclicLR triangular2: base + cyclical": base
    + cyclical(lambda n: triangular(0.0, swing, n), 30, magnitude_decay=0.5),
    "CyclicLR exp_range: base + tri * exp": base
    + triangular(0.0, swing, 30) * exponential(1.0, 0.98),
    "warmup(cosine(0.1, 0, 80), 0.01, 20)": warmup(cosine(0.1, 0.0, 80), 0.01, 20),
    "cooldown(triangular, 0.001, 40, 40)": cooldown(triangular(0.01, 0.1, 40), 0.001, 40, 40),
    "join([linear, 0.1, cosine], [20, 50])": join(
        [linear(0.01, 0.1, 20), 0.1, cosine(0.1, 0.001, 40)], [20, 50]
    ),
    "onecycle(100, 0.1, unit='step')": onecycle(STEPS, 0.1, unit="step"),
    "onecycle_two_phase(100, 0.1)": onecycle_two_phase(STEPS, 0.1),
    "onecycle_three_phase(100, 0.1, linear)": onecycle_three_phase(STEPS, 0.1, anneal="linear"),
    "momenta: two-phase, three-phase (dashed)": onecycle_two_phase_momentum(STEPS),
    "warmup then reduce_on_plateau": plateau_after_warmup,
}
SECOND_CURVE = {"momenta: two-phase, three-phase (dashed)": onecycle_three_phase_momentum(STEPS)}


def main(path: str = "schedule_gallery.png") -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.linspace(0.0, STEPS, 801)
    columns = 5
    rows = -(-len(GALLERY) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows))
    for axis, (title, schedule) in zip(axes.flat, GALLERY.items()):
        if isinstance(schedule, BaseSchedule):
            axis.plot(t, schedule(t), color="tab:blue")
        else:
            axis.step(np.arange(STEPS), schedule(), where="post", color="tab:blue")
        if title in SECOND_CURVE:
            axis.plot(t, SECOND_CURVE[title](t), color="tab:orange", linestyle="--")
        axis.locator_params(nbins=5)
        if "log y" in title:
            axis.set_yscale("log")
        axis.set_title(title, fontsize=9)
        axis.set_xlim(0, STEPS)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(GALLERY) :]:
        axis.axis("off")
    figure.suptitle("fluxtrain.schedules: the value at step t (x axis: steps)", fontsize=12)
    figure.subplots_adjust(left=0.04, right=0.99, bottom=0.03, top=0.93, wspace=0.22, hspace=0.5)
    figure.savefig(path, dpi=80)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
