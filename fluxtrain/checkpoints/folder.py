"""Getting a checkpoint folder ready for a fit, and finding its best checkpoint.

:func:`prepare` runs at ``FitBegin`` (on the process that writes), holding the folder's lock: it
checks that the folder can be written and has room for a checkpoint, refuses a folder whose
checkpoint files have lost their manifest (or, with ``start_over``, gives it a new one and keeps
the files), and deletes the temporary files killed writers left. :func:`best` reads which good
checkpoint has the best recorded metric.

Examples:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> prepare(folder, needed=1)
    >>> best(folder, "min") is None
    True
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..exceptions import CheckpointError
from .files import check_folder
from .manifest import FORMAT, numbers_on_disk, read_manifest, verify, write_manifest
from .rotation import by_metric, clean_folder


def prepare(folder: str | os.PathLike[str], needed: int, start_over: bool = False) -> None:
    """Makes ``folder`` ready for checkpoints of about ``needed`` bytes each.

    Raises:
        CheckpointError: The folder cannot be created or written, the disk has less room than
            ``needed``, or it holds checkpoint files without a usable manifest (unless
            ``start_over``).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as error:
        raise CheckpointError(
            f"Checkpointer: cannot write checkpoints to {folder} "
            f"({type(error).__name__}: {error.strerror or error}). Give a folder that can be "
            f"created and written to, or fix its permissions."
        ) from error
    if start_over:
        try:
            manifest = read_manifest(folder)
        except CheckpointError:
            manifest = None
        if manifest is None or not manifest["checkpoints"]:
            number = max([0, *numbers_on_disk(folder)]) + 1
            write_manifest(folder, {"format": FORMAT, "next": number, "checkpoints": []})
    else:
        check_folder(folder)
    clean_folder(folder)
    if free < needed:
        raise CheckpointError(
            f"Checkpointer: {folder} has {free / 2**20:.1f} MiB free, and a checkpoint takes "
            f"about {needed / 2**20:.1f} MiB. Free some space or give a folder on another disk; "
            f"no checkpoint was written."
        )


def expected_size(folder: str | os.PathLike[str], model: torch.nn.Module) -> int:
    """About how many bytes the next checkpoint takes: the newest one's size or, before the
    first, the model's state and room for twice as much optimizer state (Adam's moments).

    Examples:
        >>> import tempfile, torch
        >>> expected_size(tempfile.mkdtemp(), torch.nn.Linear(10, 1))  # 11 floats, 3 times
        132
    """
    try:
        entries = (read_manifest(folder) or {}).get("checkpoints", [])
    except CheckpointError:  # prepare() says what is wrong with it
        entries = []
    if entries:
        return int(entries[-1].get("bytes", 0))
    tensors = [*model.parameters(), *model.buffers()]
    return 3 * sum(t.numel() * t.element_size() for t in tensors)


def write_failure(folder: str | os.PathLike[str], error: Exception) -> CheckpointError:
    """The :class:`CheckpointError` for a checkpoint that could not be written (a full disk).

    :func:`~fluxtrain.checkpoints.atomic.atomic_write` has removed its temporary file and the
    manifest is as it was, so the earlier checkpoints are intact.

    Examples:
        >>> write_failure("runs", OSError(28, "No space left on device")).args[0][:44]
        'Checkpointer: writing a checkpoint to runs f'
    """
    if isinstance(error, CheckpointError):
        return error
    return CheckpointError(
        f"Checkpointer: writing a checkpoint to {folder} failed ({type(error).__name__}: "
        f"{error}). The earlier checkpoints are intact and no partial file is left; free space "
        f"or fix the folder, then resume."
    )


def best(folder: str | os.PathLike[str], mode: str) -> Path | None:
    """The good checkpoint with the lowest (``mode="min"``) or highest recorded ``metric``;
    of equal values the newest. ``None`` when no entry has a metric.

    Examples:
        >>> import tempfile
        >>> best(tempfile.mkdtemp(), "max") is None
        True
    """
    folder = Path(folder)
    entries: list[dict[str, Any]] = (read_manifest(folder) or {}).get("checkpoints", [])
    for index in by_metric(entries, mode):
        if verify(folder, entries[index]) is None:
            return folder / str(entries[index]["file"])
    return None
