"""Checkpointer: saves the learner's state atomically, keeps the last and the best checkpoints.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from fluxtrain.testing import tiny_learner
    >>> folder = tempfile.mkdtemp()
    >>> learner = tiny_learner(Checkpointer(folder, keep_last=2))
    >>> _ = learner.fit(3)
    >>> sorted(p.name for p in Path(folder).iterdir())  # .lock: one writer at a time
    ['.lock', 'checkpoint-000002.pt', 'checkpoint-000003.pt', 'manifest.json']
    >>> again = tiny_learner(Checkpointer(folder))
    >>> again.fit(3, resume="latest")  # that fit had ended: nothing left to run
    FitResult(epochs_completed=3, steps_completed=12, stopped_by=None, reason=None)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from ..access import Read
from ..callback import Callback
from ..checkpoints.collective import ShardedSaves, check_shared
from ..checkpoints.files import load_checkpoint, write_checkpoint
from ..checkpoints.folder import best, expected_size, prepare, write_failure
from ..checkpoints.learner_state import rank_states
from ..checkpoints.lock import FolderLock
from ..checkpoints.position import resume_point
from ..checkpoints.rotation import monitored, rotate
from ..distributed import broadcast_object, is_distributed, is_main_process, is_parallel, unwrap
from ..exceptions import CheckpointError, FluxTrainError
from ..phases import AbstractTrainingPhase, AbstractValidationPhase, Phase
from .early_stopping import EarlyStopping
from .logging import LogHyperParams, LogMetrics


def _count(value: Any, what: str, low: int) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        got = repr(value)
        raise FluxTrainError(f"Checkpointer: {what} must be an int >= {low} or None, got {got}.")
    return value


class Checkpointer(Callback):
    """Saves :meth:`Learner.state_dict <fluxtrain.Learner.state_dict>` into ``folder``.

    Writes are atomic and listed in ``folder/manifest.json`` with their sha256 (see
    :mod:`fluxtrain.checkpoints`), so ``fit(n, resume="latest")`` finds a complete checkpoint.
    A checkpoint is written at the end of every ``every_epochs``-th epoch of a fit (after
    validation), after every ``every_steps``-th training step, when the fit ends (unless the
    last one was of that moment), and on ``KeyboardInterrupt`` (``save_on_interrupt``). After
    each write the newest ``keep_last`` and the ``keep_best`` best by ``monitor`` are kept of
    the checkpoints this fit wrote; it never deletes another fit's. It holds the folder's lock
    from ``FitBegin`` to ``FitEnd`` (one writer per folder) and flushes every callback with a
    ``flush()`` (the loggers) before each write. Put it last among your callbacks.

    Under ``torch.distributed`` every rank's random, ``cbstate`` and callback states are
    gathered into the checkpoint (each rank restores its own), rank 0 alone writes, and a failed
    write raises on every rank; give every rank the same ``folder`` on shared storage (checked
    at ``FitBegin``). No checkpoint is written on ``KeyboardInterrupt`` there. A model already
    parallel (FSDP2, tensor parallel) gets sharded checkpoints: folders of shards every rank
    writes, each file checksummed in the manifest (:mod:`fluxtrain.checkpoints.sharded`).

    Args:
        folder: Where to write; created at ``FitBegin``, which fails at once if it cannot be.
        every_epochs: Save every this many epochs of a fit, or ``None``.
        every_steps: Save every this many training steps (counted over all fits), or ``None``.
        keep_last: How many of the newest checkpoints to keep, ``>= 1``.
        monitor: A ``cbstate.metrics_epoch`` key, e.g. ``"valid/Loss"``, to keep the best by.
            A checkpoint is also written at the end of every epoch of that phase (each
            validation, also those of ``fit(validate_every=k)``), so the best one is on disk;
            :attr:`best_checkpoint` is its path and :meth:`load_best` restores it.
        mode: ``"min"`` or ``"max"``: whether lower or higher ``monitor`` values are better.
        keep_best: How many of the best checkpoints by ``monitor`` to keep besides.
        save_on_interrupt: Also save when the fit ends by ``KeyboardInterrupt``.
        start_over: Give a folder whose checkpoint files lost their manifest a new, empty one
            (the files stay on disk; new ones are numbered after them) instead of an error.
        trusted_types: Classes a checkpoint may hold besides fluxtrain's own (a callback's
            state of its own types); see :mod:`fluxtrain.checkpoints.trust`.
        async_save: Write sharded checkpoints in the background on a gloo process group of
            their own; each is listed in the manifest at the next save or at ``FitEnd``, once
            complete (``FitEnd`` waits for it). Checkpoints of models that are not sharded
            are written at once.

    Examples:
        >>> Checkpointer("runs/mlp", every_steps=500, monitor="valid/Loss")
        Checkpointer('runs/mlp', every_epochs=1, every_steps=500, keep_last=3, monitor='valid/Loss')
    """

    stateaccess = {
        "model": Read,
        "optimizer": Read,
        "fitstate": Read,
        "cbstate": Read,
        "callbacks": Read,
        "data": Read,
    }
    runafter = (EarlyStopping, LogMetrics, LogHyperParams)

    def __init__(
        self,
        folder: str | os.PathLike[str],
        every_epochs: int | None = 1,
        every_steps: int | None = None,
        keep_last: int = 3,
        monitor: str | None = None,
        mode: str = "min",
        keep_best: int = 1,
        save_on_interrupt: bool = True,
        start_over: bool = False,
        trusted_types: Iterable[type] = (),
        async_save: bool = False,
    ) -> None:
        if not isinstance(folder, (str, os.PathLike)):
            raise FluxTrainError(f"Checkpointer: folder must be a path, got {folder!r}.")
        if mode not in ("min", "max"):
            raise FluxTrainError(
                f"Checkpointer: mode must be 'min' (lower is better) or 'max', got {mode!r}."
            )
        if monitor is not None and not isinstance(monitor, str):
            raise FluxTrainError(f"Checkpointer: monitor must be a metric name, got {monitor!r}.")
        self.folder = Path(folder)
        self.every_epochs = _count(every_epochs, "every_epochs", 1)
        self.every_steps = _count(every_steps, "every_steps", 1)
        self.keep_last = _count(keep_last, "keep_last", 1)
        self.keep_best = _count(keep_best, "keep_best", 0)
        self.monitor, self.mode, self.save_on_interrupt = monitor, mode, save_on_interrupt
        self.start_over = bool(start_over)
        self.trusted_types, self.async_save = tuple(trusted_types), bool(async_save)
        self._sharded: Any = None  # a ShardedSaves while a parallel model is fitted
        self._lock = FolderLock(self.folder)
        self._learner: Any = None
        self._last: tuple[Any, ...] | None = None
        self._step_saved = -1
        self._monitor_phase = None if monitor is None else monitor.partition("/")[0]
        if every_steps is not None:  # a StepEnd hook only when there is work for it
            self.on_step_end = self._step_end  # type: ignore[method-assign]

    def init(self, learner: Any) -> None:
        self._learner = learner  # the learner itself: state_dict() is not a declared path

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        if self.monitor is not None and "metrics_epoch" not in learner.cbstate:
            raise FluxTrainError(
                f"Checkpointer: monitor={self.monitor!r} reads cbstate.metrics_epoch, which the "
                f"Metrics callback records; add Metrics(...) or drop monitor=."
            )
        self._last, self._step_saved, failure = None, -1, None
        model = unwrap(learner.model)
        self._sharded = ShardedSaves(self.async_save) if is_parallel(model) else None
        if is_main_process():
            try:
                self._lock.acquire()
                prepare(self.folder, expected_size(self.folder, model), self.start_over)
            except Exception as error:
                self._lock.release()
                failure = error
        check_shared(self.folder, failure)  # every rank sees the folder, or all stop

    def _step_end(self, phase: Phase, learner: Any) -> None:
        if isinstance(phase, AbstractTrainingPhase):
            step = learner.fitstate.total_steps
            if not step % self.every_steps and step != self._step_saved:
                self._step_saved = step  # once per step, not per accumulated micro-batch
                self.save("step")

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        state = learner.fitstate
        inside = state.outer_step is not None  # a validation inside a training epoch
        at_end = state.has_validation and state.validate_every is None
        last = AbstractValidationPhase if at_end else AbstractTrainingPhase
        epoch = bool(self.every_epochs) and isinstance(phase, last) and not inside
        epoch = epoch and not (state.epoch + 1) % (self.every_epochs or 1)
        best = self._monitor_phase == phase.name and isinstance(
            phase, (AbstractTrainingPhase, AbstractValidationPhase)
        )
        if epoch or best:
            self.save("epoch" if epoch else "metric")

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        ending = learner.fitstate.ending
        try:
            if ending == "interrupted":
                if self.save_on_interrupt and not is_distributed():
                    self.save("interrupt")
            elif ending == "cancelled" or (ending == "completed" and self._last != self._moment()):
                self.save("end")
        finally:
            try:  # a background save completes, and is listed (not after a rank failed)
                if self._sharded is not None:
                    self._sharded.end(ending)
            finally:
                self._lock.release()

    def _moment(self) -> tuple[Any, ...]:
        state = self._learner.fitstate
        epoch, total_epochs, point = resume_point(state)
        return (epoch, total_epochs, point.phase, point.batches, state.total_steps)

    def save(self, kind: str = "manual") -> Path | None:
        """Writes a checkpoint now and rotates; returns its path (``None`` on ranks > 0, and
        while an ``async_save`` is being written).

        Under ``torch.distributed`` this is a collective: call it on every rank at the same
        point (the automatic saves do).

        Args:
            kind: Why, recorded in the manifest (``"epoch"``, ``"step"``, ``"end"``, ...).
        """
        learner = self._learner
        if learner is None:
            raise FluxTrainError("Checkpointer.save: give the Checkpointer to a Learner first.")
        ranks = rank_states(learner) if is_distributed() else None
        for callback in learner.callbacks:  # loggers: no logged row is lost to a kill
            flush = getattr(callback, "flush", None)
            if callable(flush):
                flush()
        if self._sharded is not None:  # every rank writes its shards
            keep, info = self._entry(learner, kind)
            try:
                entry = self._sharded.save(self.folder, learner, ranks, keep, **info)
            except Exception as error:  # on every rank: the ranks agreed on it
                raise write_failure(self.folder, error) from error
            self._last = self._moment()
            return None if entry is None or not is_main_process() else self.folder / entry["file"]
        path, failure = None, None
        if is_main_process():
            try:
                path = self._write(learner, kind, ranks)
            except Exception as error:
                failure = write_failure(self.folder, error)
                if ranks is None:
                    raise failure from error
        if ranks is not None:
            message = broadcast_object(None if failure is None else repr(failure), src=0)
            if failure is not None:
                raise failure
            if message is not None:
                raise CheckpointError(
                    f"Checkpointer: rank 0 failed to write the checkpoint to {self.folder}: "
                    f"{message}. Every rank stops; see rank 0's error."
                )
        self._last = self._moment()
        return path

    def _write(self, learner: Any, kind: str, ranks: list[Any] | None) -> Path:
        keep, info = self._entry(learner, kind)
        saved = learner.state_dict()
        if ranks is not None:  # rank 0's own entries are the top-level ones (stored once)
            saved.update(ranks[0])
            saved["ranks"] = ranks
        entry = write_checkpoint(self.folder, saved, keep, **info)
        return self.folder / entry["file"]

    def _entry(self, learner: Any, kind: str) -> tuple[Any, dict[str, Any]]:
        """The rotation and the manifest fields of a checkpoint written now."""
        state = learner.fitstate
        _, total_epochs, point = resume_point(state)
        at_epoch_end = point.phase == "train" and point.batches is None and point.inner is None
        measured = at_epoch_end or (state.stage == "end" and state.phase == self._monitor_phase)
        metric = monitored(learner.cbstate, self.monitor) if measured else None
        info = {"kind": kind, "epoch": total_epochs, "step": state.total_steps, "metric": metric}
        info["fit"] = state.fit_id
        counts = {"keep_last": self.keep_last, "keep_best": self.keep_best, "mode": self.mode}
        return partial(rotate, **counts, fit=state.fit_id), info

    @property
    def best_checkpoint(self) -> Path | None:
        """The path of the best good checkpoint by ``monitor`` (of equal values the newest),
        or ``None`` (no ``monitor``, or no checkpoint with a value of it yet)."""
        return None if self.monitor is None else best(self.folder, self.mode)

    def load_best(self, learner: Any) -> Path:
        """Restores the :attr:`best_checkpoint` into ``learner`` and returns its path.

        A following ``fit(n)`` starts a new fit from those weights.

        Raises:
            CheckpointError: There is no best checkpoint (no ``monitor``, or none written yet).
        """
        path = self.best_checkpoint
        if path is None:
            why = "it has no monitor=" if self.monitor is None else "none holds a value of it"
            raise CheckpointError(
                f"Checkpointer.load_best: there is no best checkpoint in {self.folder}: {why}. "
                f"Give Checkpointer(folder, monitor='valid/Loss') and fit first."
            )
        learner.load_state_dict(load_checkpoint(path, self.trusted_types))
        return path

    def __repr__(self) -> str:
        monitor = f", monitor={self.monitor!r}" if self.monitor else ""
        return (
            f"Checkpointer({str(self.folder)!r}, every_epochs={self.every_epochs}, "
            f"every_steps={self.every_steps}, keep_last={self.keep_last}{monitor})"
        )
