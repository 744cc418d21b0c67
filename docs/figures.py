"""Draws the figures of the documentation from fluxtrain itself into ``docs/img/``.

Usage: ``python docs/figures.py [out_dir]`` (default: ``docs/img`` next to this script). Needs
matplotlib (``pip install -e ".[plot]"``). Every curve is computed by the code it shows: the
easings, the catalogue of ``examples/schedule_gallery.py``, ``Scheduler.onecycle`` through
``plot_schedule``, the spline keyframes, and torch's own schedulers next to their fluxtrain
spelling.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import matplotlib.style
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from fluxtrain import Schedule, Scheduler, plot_schedule
from fluxtrain.easings import (
    CurveEasing,
    expin,
    expio,
    expout,
    funcease,
    linear,
    mixed,
    multiplied,
    noease,
    polyin,
    polyio,
    polyout,
    saccadic,
    sineio,
    stepease,
)
from fluxtrain.schedules import (
    cyclical,
    onecycle_two_phase,
    onecycle_two_phase_momentum,
    sgdr,
    triangular,
)
from fluxtrain.schedules.base import BaseSchedule

HERE = Path(__file__).resolve().parent
DPI = 90
BLUE, ORANGE, GREY = "tab:blue", "tab:orange", "0.55"

EASINGS = {
    "linear()": linear(),
    "sineio()": sineio(),
    "polyin(2)": polyin(2),
    "polyout(2)": polyout(2),
    "polyio(2)": polyio(2),
    "expin(8)": expin(8),
    "expout(8)": expout(8),
    "expio(8)": expio(8),
    "saccadic(2)": saccadic(2),
    "noease()": noease(),
    "stepease(0.5)": stepease(0.5),
    "mixed(linear(), polyin(4), 0.5)": mixed(linear(), polyin(4), 0.5),
    "multiplied(linear(), sineio())": multiplied(linear(), sineio()),
    "funcease(lambda x: x ** 0.5)": funcease(lambda x: x**0.5),
}

EASING_OPTIONS = {
    "linear(n=2)": linear(n=2),
    "linear(n=2, yoyo=True)": linear(n=2, yoyo=True),
    "sineio(n=3, yoyo=True)": sineio(n=3, yoyo=True),
    "sineio(prewait=0.3)": sineio(prewait=0.3),
    "sineio(postwait=0.3)": sineio(postwait=0.3),
    "sineio(n=2, prewait=0.2, postwait=0.2)": sineio(n=2, prewait=0.2, postwait=0.2),
    "polyout(3, n=2, yoyo=True)": polyout(3, n=2, yoyo=True),
    "stepease(0.5, n=4)": stepease(0.5, n=4),
}

KEYFRAMES = ([0.0, 2.0, 3.0, 6.0, 10.0], [0.02, 0.1, 0.08, 0.03, 0.001])


def grid(n_panels: int, columns: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """A figure with ``n_panels`` axes in rows of ``columns``; unused cells are hidden."""
    rows = -(-n_panels // columns)
    figure = Figure(figsize=(width * columns, height * rows))
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for axis in axes[n_panels:]:
        axis.axis("off")
    return figure, axes[:n_panels]


def style(axis: Axes, title: str, fontsize: float = 9) -> None:
    axis.set_title(title, fontsize=fontsize, family="monospace")
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)


def save(figure: Figure, out: Path, name: str) -> Path:
    """Saves ``figure`` as a PNG with a 128-colour palette: a third of the size, same look."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    image = Image.open(buffer).convert("RGB")
    palette = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path = out / name
    palette.save(path, optimize=True)
    return path


def easing_grid(easings: Mapping[str, CurveEasing], title: str) -> Figure:
    """One panel per easing: ``r`` against the segment fraction ``x``."""
    x = np.linspace(0.0, 1.0, 801)
    figure, axes = grid(len(easings), 4, 2.6, 2.3)
    for axis, (name, easing) in zip(axes, easings.items()):
        axis.plot([0, 1], [0, 1], color=GREY, linewidth=0.8, linestyle=":")
        axis.plot(x, easing(x), color=BLUE, linewidth=1.6)
        axis.set_xlim(-0.02, 1.02)
        axis.set_ylim(-0.08, 1.08)
        axis.set_xticks([0, 0.5, 1])
        axis.set_yticks([0, 0.5, 1])
        style(axis, name, 8.5)
    figure.suptitle(title, fontsize=11)
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.05, top=0.88, wspace=0.3, hspace=0.45)
    return figure


def easings_figure() -> Figure:
    figure = easing_grid(
        EASINGS, "Easings: the eased fraction r (y) at the fraction x of a segment (x)"
    )
    figure.subplots_adjust(top=0.91)
    return figure


def easing_options_figure() -> Figure:
    return easing_grid(EASING_OPTIONS, "Every easing takes n, yoyo, prewait and postwait")


def splines_figure() -> Figure:
    """The same keyframes through the three splines and through sineio()."""
    ts, values = KEYFRAMES
    t = np.linspace(-0.5, 10.5, 1101)
    figure = Figure(figsize=(7.5, 3.4))
    axis = figure.subplots()
    curves = {
        "sineio()": (Schedule(ts, values, sineio()), GREY, ":"),
        '"cubic"': (Schedule(ts, values, "cubic"), BLUE, "-"),
        '"pchip"': (Schedule(ts, values, "pchip"), ORANGE, "-"),
        '"akima"': (Schedule(ts, values, "akima"), "tab:green", "--"),
    }
    for label, (schedule, color, linestyle) in curves.items():
        axis.plot(t, schedule(t), color=color, linestyle=linestyle, linewidth=1.6, label=label)
    axis.plot(ts, values, "o", color="black", markersize=5, label="keyframes", zorder=3)
    axis.set_xlabel("epoch", fontsize=8)
    axis.legend(fontsize=8, frameon=False, ncol=5, loc="upper center", bbox_to_anchor=(0.5, 1.0))
    axis.set_ylim(-0.01, 0.125)
    style(axis, f"Schedule({ts}, {values}, easing)", 8.5)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.9)
    return figure


def keyframes_figure() -> Figure:
    """The schedule of the scheduling guide, with its keyframes, and one easing per segment."""
    t = np.linspace(0.0, 10.0, 1001)
    figure = Figure(figsize=(9.0, 3.0))
    left, right = figure.subplots(1, 2)
    schedules = [
        (left, Schedule([0, 3, 10], [0.01, 0.1, 0.001], sineio()), "sineio()"),
        (
            right,
            Schedule([0, 3, 10], [0.01, 0.1, 0.001], [linear(), expout(8)]),
            "[linear(), expout(8)]",
        ),
    ]
    for axis, schedule, easing in schedules:
        axis.plot(t, schedule(t), color=BLUE, linewidth=1.6)
        axis.plot(schedule.ts, schedule.values, "o", color="black", markersize=5, zorder=3)
        axis.set_xlabel("epoch", fontsize=8)
        style(axis, f"Schedule([0, 3, 10], [0.01, 0.1, 0.001],\n{easing})", 8.5)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.82, wspace=0.22)
    return figure


def load_gallery() -> object:
    """``examples/schedule_gallery.py`` as a module (its ``GALLERY`` is the catalogue drawn)."""
    path = HERE.parent / "examples" / "schedule_gallery.py"
    spec = importlib.util.spec_from_file_location("schedule_gallery", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def catalogue_figure() -> Figure:
    gallery = load_gallery()
    entries: dict = gallery.GALLERY  # type: ignore[attr-defined]
    second: dict = getattr(gallery, "SECOND_CURVE", {})
    steps: int = gallery.STEPS  # type: ignore[attr-defined]
    t = np.linspace(0.0, steps, 801)
    figure, axes = grid(len(entries), 5, 3.0, 2.1)
    for axis, (title, schedule) in zip(axes, entries.items()):
        if isinstance(schedule, BaseSchedule):
            axis.plot(t, schedule(t), color=BLUE, linewidth=1.4)
        else:
            axis.step(np.arange(steps), schedule(), where="post", color=BLUE, linewidth=1.4)
        if title in second:
            axis.plot(t, second[title](t), color=ORANGE, linestyle="--", linewidth=1.4)
        if "log y" in title:
            axis.set_yscale("log")
        axis.set_xlim(0, steps)
        axis.locator_params(axis="x", nbins=5)
        style(axis, title, 7.5)
    figure.suptitle("fluxtrain.schedules: the value at step t (x axis: steps)", fontsize=11)
    figure.subplots_adjust(left=0.04, right=0.99, bottom=0.03, top=0.94, wspace=0.25, hspace=0.55)
    return figure


def onecycle_figure() -> Figure:
    """``plot_schedule`` of ``Scheduler.onecycle(10, 0.5)``: 10 epochs of 50 steps."""
    figure = plot_schedule(Scheduler.onecycle(10, 0.5), n_epochs=10, steps_per_epoch=50)
    figure.set_size_inches(7.5, 4.4)
    figure.suptitle("Scheduler.onecycle(10, 0.5): plot_schedule(scheduler, 10, 50)", fontsize=10)
    return figure


def beyond_optimizer_figure() -> Figure:
    """``Scheduler.simulate`` of the schedules of ``examples/schedule_anything.py``: a KL
    weight, a dropout rate, a batch-size warmup and an EMA decay warmup, over 12 epochs of
    1,437 samples; dotted lines mark the epochs, which get shorter as the batches grow."""
    from fluxtrain import Attribute, BatchSize, DropoutRate, EMADecay

    scheduler = Scheduler(
        {
            Attribute("loss_fn.kl_weight"): Schedule([0, 6], [0.0, 1.0], sineio()),
            DropoutRate: Schedule([0, 12], [0.2, 0.0], linear()),
            BatchSize: Schedule([0, 2], [16, 128], linear()),
            EMADecay: lambda t: min(0.995, (1 + t) / (10 + t)),
        }
    )
    planned = scheduler.simulate(12, samples_per_epoch=1437)
    sizes = planned["BatchSize"]
    starts, seen = [], 0.0
    for step, size in enumerate(sizes):  # the steps where an epoch begins
        if seen % 1437 == 0:
            starts.append(step)
        seen += min(size, 1437 - seen % 1437)
    figure, axes = grid(4, 2, 3.8, 2.3)
    for axis, (name, values) in zip(axes, planned.items()):
        axis.plot(values, color="C0")
        for step in starts:
            axis.axvline(step, color="0.6", linestyle=":", linewidth=0.8)
        style(axis, name)
        axis.set_xlabel("step", fontsize=7)
    figure.suptitle("Scheduler.simulate(12, samples_per_epoch=1437): four schedules", fontsize=10)
    figure.tight_layout()
    return figure


def torch_values(
    make: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler],
    steps: int,
    keys: Iterable[str] = ("lr",),
    momentum: float = 0.0,
) -> dict[str, np.ndarray]:
    """The values a torch scheduler leaves in the optimizer before each of ``steps`` steps."""
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=momentum)
    scheduler = make(optimizer)
    values: dict[str, list[float]] = {key: [] for key in keys}
    for _ in range(steps):
        for key in values:
            values[key].append(float(optimizer.param_groups[0][key]))
        optimizer.step()
        scheduler.step()
    return {key: np.array(v) for key, v in values.items()}


def peers_figure() -> Figure:
    """torch's schedulers (dots, stepped once per batch) over their fluxtrain spelling (lines)."""
    lr_scheduler = torch.optim.lr_scheduler
    steps = 100
    t = np.arange(steps, dtype=float)
    fine = np.linspace(0.0, steps - 1, 991)
    onecycle = torch_values(
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=steps),
        steps,
        ("lr", "momentum"),
        momentum=0.9,
    )
    restarts = torch_values(lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 15, 2), steps)
    cyclic = torch_values(
        lambda o: lr_scheduler.CyclicLR(
            o, 0.01, 0.1, step_size_up=10, step_size_down=20, mode="triangular2"
        ),
        steps,
    )
    panels = [
        (
            "OneCycleLR(opt, 0.1, total_steps=100)",
            "onecycle_two_phase(100, 0.1)",
            onecycle["lr"],
            onecycle_two_phase(steps, 0.1),
        ),
        (
            "OneCycleLR(...): its momentum",
            "onecycle_two_phase_momentum(100)",
            onecycle["momentum"],
            onecycle_two_phase_momentum(steps),
        ),
        (
            "CosineAnnealingWarmRestarts(opt, 15, 2)",
            "sgdr(0.1, 0.0, 15, 2)",
            restarts["lr"],
            sgdr(0.1, 0.0, 15, 2),
        ),
        (
            "CyclicLR(opt, 0.01, 0.1, 10, 20, mode='triangular2')",
            "0.01 + cyclical(lambda n: triangular(0, 0.09, n, 1/3), 30, magnitude_decay=0.5)",
            cyclic["lr"],
            0.01 + cyclical(lambda n: triangular(0.0, 0.09, n, 1 / 3), 30, magnitude_decay=0.5),
        ),
    ]
    figure, axes = grid(len(panels), 2, 5.4, 2.8)
    for axis, (torch_label, fluxtrain_label, values, schedule) in zip(axes, panels):
        assert np.allclose(schedule(t), values, rtol=1e-9, atol=1e-12), torch_label
        axis.plot(fine, schedule(fine), color=BLUE, linewidth=1.5)
        axis.plot(t, values, ".", color=ORANGE, markersize=3.5)
        axis.set_xlim(0, steps)
        style(axis, "")
        for y, label, color in (
            (1.13, f"torch: {torch_label}", ORANGE),
            (1.03, fluxtrain_label, BLUE),
        ):
            axis.text(
                0.0, y, label, transform=axis.transAxes, fontsize=7, family="monospace", color=color
            )
    figure.suptitle(
        "torch.optim.lr_scheduler stepped once per batch (dots) and fluxtrain (lines)", fontsize=10
    )
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.07, top=0.84, wspace=0.15, hspace=0.45)
    return figure


FIGURES: dict[str, Callable[[], Figure]] = {
    "easings.png": easings_figure,
    "easing_options.png": easing_options_figure,
    "keyframes.png": keyframes_figure,
    "splines.png": splines_figure,
    "onecycle.png": onecycle_figure,
    "beyond_optimizer.png": beyond_optimizer_figure,
    "catalogue.png": catalogue_figure,
    "peers.png": peers_figure,
}


def main(out: str | None = None) -> None:
    out_dir = Path(out) if out else HERE / "img"
    out_dir.mkdir(parents=True, exist_ok=True)
    with matplotlib.style.context("default"):
        for name, make in FIGURES.items():
            start = time.perf_counter()
            path = save(make(), out_dir, name)
            seconds = time.perf_counter() - start
            print(f"wrote {path} ({path.stat().st_size // 1024} KiB, {seconds:.2f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:2])
