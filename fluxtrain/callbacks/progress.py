"""ProgressPrinter: a tqdm bar per phase and epoch, with a running loss read without stalls.

In a Jupyter kernel with ipywidgets the bars are widgets; elsewhere, and in a kernel without
ipywidgets, they are tqdm's text bars (:func:`bar_class`).

The bar is redrawn at most every ``interval`` seconds; only then is the loss read. On CUDA the
loss is copied to pinned host memory with a non-blocking copy, and the value shown is the latest
copy that has arrived, so the progress bar never waits for the device.

Examples:
    >>> import io
    >>> from fluxtrain.testing import tiny_learner
    >>> out = io.StringIO()
    >>> _ = tiny_learner(ProgressPrinter(file=out), n_batches=3).fit(1)
    >>> "Epoch 1 train" in out.getvalue()
    True
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import IO, Any

import torch

from ..access import Read
from ..callback import Callback
from ..distributed import is_main_process, world_size
from ..phases import Phase


def bar_class() -> type[Any]:
    """tqdm's widget bar in a Jupyter kernel that has ipywidgets, else tqdm's text bar.

    Chosen when a :class:`ProgressPrinter` is built, not when fluxtrain is imported, and
    without ``tqdm.auto``, so a kernel without ipywidgets gets text bars and no warning.

    Examples:
        >>> bar_class().__module__  # not in a notebook
        'tqdm.std'
    """
    shell = sys.modules.get("ipykernel.zmqshell")  # imported by every Jupyter kernel
    if shell is not None and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm  # type: ignore[no-any-return]
    from tqdm.std import tqdm

    return tqdm


class LatestValue:
    """Reads a scalar tensor on the host without blocking on an accelerator.

    Examples:
        >>> import torch
        >>> reader = LatestValue()
        >>> reader.read(torch.tensor(0.5))
        0.5
    """

    def __init__(self) -> None:
        self._host: torch.Tensor | None = None
        self._event: Any = None
        self._value = float("nan")

    def read(self, tensor: torch.Tensor) -> float:
        """The value of ``tensor`` if on the CPU, else of the latest copy that has arrived."""
        if tensor.is_cpu:
            return float(tensor.detach())
        if self._event is not None and self._event.query():
            self._value = float(self._host)  # type: ignore[arg-type]
            self._event = None
        if self._event is None and tensor.is_cuda:
            if self._host is None:
                self._host = torch.empty((), dtype=tensor.dtype, pin_memory=True)
            self._host.copy_(tensor.detach(), non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        return self._value


class ProgressPrinter(Callback):
    """Shows a progress bar per phase and epoch with the running loss.

    Under ``torch.distributed`` the bar is rank 0's, and so is the loss it shows (rank 0's own
    batch, labelled ``loss(rank 0)``); the epoch metrics (``MetricsPrinter``) are global.

    Args:
        file: Where bars go (``sys.stderr`` by default).
        interval: Seconds between redraws; the loss is read only at a redraw.
        leave: Keep finished bars on screen.
    """

    stateaccess = {"batch.loss": Read, "fitstate": Read}

    def __init__(self, file: IO[str] | None = None, interval: float = 0.1, leave: bool = True):
        self.file = file
        self.interval = interval
        self.leave = leave
        self._bars: dict[str, Any] = {}  # by phase: a validation inside training has its own
        self._pending: dict[str, int] = {}
        self._reader = LatestValue()
        self._next = 0.0
        self._bar_class = bar_class()
        self._label = "loss"

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        state = learner.fitstate
        if state.stage == "steps" and state.phase is not None:  # resumed in mid-epoch
            self._open(state.phase, state, state.epoch_step)

    def on_epoch_begin(self, phase: Phase, learner: Any) -> None:
        self._open(phase.name, learner.fitstate, 0, learner)

    def _open(self, name: str, state: Any, done: int, learner: Any = None) -> None:
        self._close(name)
        for other in list(self._bars) if learner is not None else ():  # a validation inside
            self._flush(other, learner)  # training: show training's loss as it is now
        if not is_main_process():
            return
        self._label = "loss" if world_size() == 1 else "loss(rank 0)"
        epoch = state.total_epochs + 1 if name == "train" else state.total_epochs
        total, unit = state.epoch_length, "step"
        if total is None and name == "train" and state.n_steps is not None:
            total, done = state.n_steps, state.step  # a stream: optimizer steps of the budget
        self._bars[name] = self._bar_class(
            total=total,
            initial=done,
            desc=f"Epoch {max(epoch, 1)} {name}",
            file=self.file,
            leave=self.leave,
            dynamic_ncols=True,
            mininterval=self.interval,
            unit=unit,
        )
        self._pending[name] = 0
        self._next = time.monotonic() + self.interval

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        name = phase.name
        if name not in self._bars:
            return
        self._pending[name] += 1
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        self._flush(name, learner)

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        self._flush(phase.name, learner)
        self._close(phase.name)

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        for name in list(self._bars):
            self._close(name)

    def _flush(self, name: str, learner: Any) -> None:
        bar = self._bars.get(name)
        if bar is None:
            return
        if not self._pending[name]:  # nothing new (a validation ran inside since the last)
            return
        loss = learner.batch.loss
        if isinstance(loss, torch.Tensor):
            bar.set_postfix_str(f"{self._label}={self._reader.read(loss):.4g}", refresh=False)
        bar.update(self._pending[name])
        self._pending[name] = 0

    def _close(self, name: str) -> None:
        bar = self._bars.pop(name, None)
        if bar is not None:
            bar.close()
