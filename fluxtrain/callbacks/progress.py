"""ProgressPrinter: a tqdm bar per phase and epoch, with a running loss read without stalls.

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

import time
from typing import IO, Any

import torch
from tqdm.auto import tqdm

from ..access import Read
from ..callback import Callback
from ..distributed import is_main_process
from ..phases import Phase


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
        epoch = state.total_epochs + 1 if name == "train" else state.total_epochs
        total, unit = state.epoch_length, "step"
        if total is None and name == "train" and state.n_steps is not None:
            total, done = state.n_steps, state.step  # a stream: optimizer steps of the budget
        self._bars[name] = tqdm(
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
            bar.set_postfix_str(f"loss={self._reader.read(loss):.4g}", refresh=False)
        bar.update(self._pending[name])
        self._pending[name] = 0

    def _close(self, name: str) -> None:
        bar = self._bars.pop(name, None)
        if bar is not None:
            bar.close()
