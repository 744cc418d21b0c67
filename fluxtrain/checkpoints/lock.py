"""One writer per checkpoint folder: an advisory lock held from ``FitBegin`` to ``FitEnd``.

The lock is ``fcntl.flock`` on ``<folder>/.lock``: the kernel releases it when the process ends,
however it ends (a SIGKILL included), so a killed run never leaves the folder locked. The file
says which process holds it, for the message a second writer gets. On systems without
``fcntl`` (Windows) the folder is not locked.

Examples:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> first = FolderLock(folder)
    >>> first.acquire()
    >>> FolderLock(folder).acquire()
    Traceback (most recent call last):
    ...
    fluxtrain.exceptions.CheckpointError: Checkpointer: another writer (process ...
    >>> first.release()
    >>> with FolderLock(folder) as again:  # free again
    ...     again.held
    True
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import IO, Any

from ..exceptions import CheckpointError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


class FolderLock:
    """The lock of one checkpoint folder (re-entrant within one :class:`FolderLock`)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def acquire(self) -> None:
        """Takes the lock, or raises at once if another writer holds it.

        Raises:
            CheckpointError: Another process (or another Checkpointer of this one) writes there.
        """
        if self._file is not None or fcntl is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            file = open(self.folder / LOCK, "a+")  # noqa: SIM115 (kept open while held)
        except OSError as error:
            raise CheckpointError(
                f"Checkpointer: cannot write checkpoints to {self.folder} "
                f"({type(error).__name__}: {error.strerror or error}). Give a folder that can "
                f"be created and written to, or fix its permissions."
            ) from error
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise CheckpointError(
                f"Checkpointer: another writer ({holder}) is writing checkpoints to "
                f"{self.folder}. One process writes a folder at a time: give this run its own "
                f"folder, or wait for the other to end."
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Gives the lock up (the lock file stays, empty of meaning once unlocked)."""
        file, self._file = self._file, None
        if file is not None and fcntl is not None:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            file.close()

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
