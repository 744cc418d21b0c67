"""Atomic file writes: a file is either absent, its old version, or complete, never partial.

:func:`atomic_write` writes into a temporary file in the same folder, flushes and fsyncs it,
renames it over the final name with ``os.replace`` and fsyncs the folder entry, hashing what it
writes on the way; :func:`file_sha256` hashes a file on disk to compare. A process killed at any
moment leaves the old file (or none) in place. :mod:`fluxtrain.checkpoints.files` writes checkpoints
and their manifest this way.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "state.bin"
    >>> digest, size = atomic_write(path, lambda file: file.write(b"weights"))
    >>> size, file_sha256(path) == digest
    (7, True)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


class _HashingWriter:
    """Writes to a binary file while computing the sha256 and size of what was written."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def fsync_folder(folder: Path) -> None:
    """Makes a folder's entries (a rename into it) durable, where the system allows."""
    if os.name == "nt":  # folders cannot be opened for fsync on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Any], None]) -> tuple[str, int]:
    """Writes a file so that it is either absent, its old version, or complete: never partial.

    ``write(file)`` writes into a temporary file in the same folder, which is flushed, fsynced
    and renamed over ``path`` (``os.replace``); then the folder entry is fsynced.

    Args:
        path: The final path.
        write: Called with a binary file-like object (``write``, ``flush``).

    Returns:
        The sha256 (hex) and size in bytes of what was written.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "hello.txt"
        >>> digest, size = atomic_write(path, lambda file: file.write(b"hello"))
        >>> path.read_bytes(), size, digest[:8]
        (b'hello', 5, '2cf24dba')
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as file:
            writer = _HashingWriter(file)
            write(writer)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return writer.sha256.hexdigest(), writer.size


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of a file's content, read in chunks.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "empty"
        >>> path.write_bytes(b"")
        0
        >>> file_sha256(path)[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
