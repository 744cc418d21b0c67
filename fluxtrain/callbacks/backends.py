"""Logging backends: where :class:`~fluxtrain.callbacks.logging.LogMetrics` and
:class:`~fluxtrain.callbacks.logging.LogHyperParams` write scalars.

A backend is anything with ``log_scalar(name, value, step, epoch, phase)``, ``flush()`` and
``close()`` (the :class:`LoggerBackend` protocol). It opens itself on the first
``log_scalar``, is flushed at the end of every epoch and closed at ``FitEnd`` (which fires also
when fitting fails), and opens again, appending, when a later fit logs to it.

Examples:
    >>> import csv, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> backend = CSVBackend(path)
    >>> backend.log_scalar("train/Loss", 0.1, step=3, epoch=1, phase="train")
    >>> backend.close()
    >>> with open(path, newline="") as file:
    ...     print(next(csv.DictReader(file)))
    {'step': '3', 'epoch': '1', 'phase': 'train', 'name': 'train/Loss', 'value': '0.1'}
"""

from __future__ import annotations

import csv
import os
from typing import IO, Any, Protocol, runtime_checkable

from ..exceptions import FluxTrainError

CSV_HEADER = ("step", "epoch", "phase", "name", "value")


@runtime_checkable
class LoggerBackend(Protocol):
    """Where logging callbacks write scalars. Implement the three methods to add a backend.

    ``log_scalar`` may open the destination lazily (first call) and must open it again after
    ``close`` (a later ``fit`` logs to the same backend). ``close`` must be idempotent: it runs
    at every ``FitEnd``, once per logging callback that holds the backend.

    Examples:
        >>> class PrintBackend:
        ...     def log_scalar(self, name, value, step, epoch, phase):
        ...         print(f"{step:>3} {phase:<5} {name} = {value:.3f}")
        ...     def flush(self):
        ...         pass
        ...     def close(self):
        ...         pass
        >>> isinstance(PrintBackend(), LoggerBackend)
        True
        >>> PrintBackend().log_scalar("valid/Loss", 0.25, step=8, epoch=2, phase="valid")
          8 valid valid/Loss = 0.250
    """

    def log_scalar(self, name: str, value: float, step: int, epoch: int, phase: str) -> None:
        """Records ``value`` of series ``name`` at global training ``step``.

        Args:
            name: The series, e.g. ``"valid/Accuracy"`` or ``"hyperparams/LearningRate"``.
            value: The value, a Python float.
            step: The global training step it belongs to.
            epoch: The epoch it belongs to (1 for the first training epoch).
            phase: The phase's name, ``"train"`` or ``"valid"``.
        """
        ...

    def flush(self) -> None:
        """Writes out what is buffered."""
        ...

    def close(self) -> None:
        """Flushes and releases the destination; the next ``log_scalar`` opens it again."""
        ...


def check_backends(owner: str, backends: tuple[Any, ...]) -> tuple[LoggerBackend, ...]:
    """Checks that ``backends`` is non-empty and holds :class:`LoggerBackend` objects.

    Examples:
        >>> check_backends("LogMetrics", ("log.csv",))
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: LogMetrics: ... got str: 'log.csv'. Wrap a path ...
    """
    if not backends:
        raise FluxTrainError(
            f"{owner}: give at least one backend, e.g. {owner}(CSVBackend('log.csv')) or "
            f"{owner}(TensorBoardBackend('runs/exp1'))."
        )
    for backend in backends:
        if not isinstance(backend, LoggerBackend):
            raise FluxTrainError(
                f"{owner}: backends must have log_scalar(name, value, step, epoch, phase), "
                f"flush() and close() (see LoggerBackend), got {type(backend).__name__}: "
                f"{backend!r}. Wrap a path in a backend, e.g. CSVBackend('log.csv') or "
                f"TensorBoardBackend('runs/exp1')."
            )
    return backends


class CSVBackend:
    """One tidy CSV file with the header ``step,epoch,phase,name,value``, one scalar a row.

    Values are written with ``repr(float)``, so ``float(row["value"])`` is bitwise the value
    logged. The file is created (with its parent folders) on the first value; an existing file
    is replaced, unless ``append=True``. After ``close`` (at every ``FitEnd``) the next value
    appends, so the fits of one session end up in one file.

    Args:
        path: The CSV file.
        append: Append to an existing file with the same header instead of replacing it.

    Examples:
        >>> import os, tempfile
        >>> from fluxtrain import Metrics
        >>> from fluxtrain.callbacks.logging import LogMetrics
        >>> from fluxtrain.testing import tiny_learner
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> _ = tiny_learner(Metrics(), LogMetrics(CSVBackend(path)), n_batches=2).fit(1)
        >>> with open(path) as file:
        ...     print(file.read().strip())  # doctest: +ELLIPSIS
        step,epoch,phase,name,value
        0,1,train,step/train/Loss,12.96927165985...
        1,1,train,step/train/Loss,4.43200302124...
        2,1,train,train/Loss,8.70063734054...
        2,1,valid,valid/Loss,3.63039398193...
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise FluxTrainError(
                f"CSVBackend: path must be a str or os.PathLike, got {type(path).__name__}: "
                f"{path!r}."
            )
        self.path = os.fspath(path)
        self.append = append
        self._file: IO[str] | None = None
        self._writer: Any = None
        self._opened_before = False

    @property
    def closed(self) -> bool:
        """Whether no file is open (before the first value and after :meth:`close`)."""
        return self._file is None

    def _open(self) -> Any:
        append = self.append or self._opened_before
        if append and os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="", encoding="utf-8") as existing:
                header = tuple(next(csv.reader(existing), ()))
            if header != CSV_HEADER:
                raise FluxTrainError(
                    f"CSVBackend: cannot append to {self.path!r}: its header is "
                    f"{','.join(header)!r}, expected {','.join(CSV_HEADER)!r}. Log to another "
                    f"path, or pass append=False to replace the file."
                )
            write_header = False
        else:
            append, write_header = False, True
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self._file = open(self.path, "a" if append else "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        if write_header:
            self._writer.writerow(CSV_HEADER)
        self._opened_before = True
        return self._writer

    def log_scalar(self, name: str, value: float, step: int, epoch: int, phase: str) -> None:
        """Writes one row (opening the file if needed)."""
        writer = self._writer if self._file is not None else self._open()
        writer.writerow((step, epoch, phase, name, repr(float(value))))

    def flush(self) -> None:
        """Flushes the file, if open."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flushes and closes the file; idempotent."""
        if self._file is not None:
            file, self._file, self._writer = self._file, None, None
            file.close()

    def __repr__(self) -> str:
        return f"CSVBackend({self.path!r})"


class TensorBoardBackend:
    """Writes scalars as TensorBoard events through ``torch.utils.tensorboard.SummaryWriter``.

    Each value is an event with tag ``name`` at ``step`` (TensorBoard stores it as a 32-bit
    float). The writer is created on the first value and closed at ``FitEnd``; a later fit
    writes a new event file into the same ``logdir``, which TensorBoard reads as one run.
    View with ``tensorboard --logdir <logdir>``. Needs the optional extra
    (``pip install fluxtrain[tensorboard]``).

    Args:
        logdir: The run's folder.
        **writer_kwargs: Passed to ``SummaryWriter`` (e.g. ``flush_secs``).

    Raises:
        ImportError: When tensorboard is not installed.

    Examples:
        >>> import importlib.util, tempfile
        >>> if importlib.util.find_spec("tensorboard"):
        ...     backend = TensorBoardBackend(tempfile.mkdtemp())
        ...     backend.log_scalar("valid/Loss", 0.25, step=8, epoch=2, phase="valid")
        ...     backend.close()
    """

    def __init__(self, logdir: str | os.PathLike[str], **writer_kwargs: Any) -> None:
        if not isinstance(logdir, (str, os.PathLike)):
            raise FluxTrainError(
                f"TensorBoardBackend: logdir must be a str or os.PathLike, got "
                f"{type(logdir).__name__}: {logdir!r}."
            )
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError(
                "TensorBoardBackend needs tensorboard: pip install fluxtrain[tensorboard] "
                "(or pip install tensorboard)."
            ) from error
        self.logdir = os.fspath(logdir)
        self.writer_kwargs = writer_kwargs
        self._summary_writer = SummaryWriter
        self._writer: Any = None

    @property
    def closed(self) -> bool:
        """Whether no writer is open (before the first value and after :meth:`close`)."""
        return self._writer is None

    def log_scalar(self, name: str, value: float, step: int, epoch: int, phase: str) -> None:
        """Adds one scalar event (creating the writer if needed); ``epoch``/``phase`` unused."""
        if self._writer is None:
            self._writer = self._summary_writer(log_dir=self.logdir, **self.writer_kwargs)
        self._writer.add_scalar(name, float(value), global_step=step)

    def flush(self) -> None:
        """Flushes pending events to disk, if a writer is open."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the writer; idempotent."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def __repr__(self) -> str:
        return f"TensorBoardBackend({self.logdir!r})"
