"""Checkpoint folders: numbered checkpoint files, and a manifest with a checksum per file.

A checkpoint folder holds ``checkpoint-000001.pt``, ``checkpoint-000002.pt``, ... (each a
``torch.save`` of :meth:`Learner.state_dict <fluxtrain.Learner.state_dict>`) and
``manifest.json``, which lists them, oldest first, with the sha256 and size of each. Every file
is written with :func:`~fluxtrain.checkpoints.atomic.atomic_write` (a temporary file, fsynced,
renamed over its final name), the manifest after the checkpoint it lists. A process killed at any
moment leaves the folder with its last good checkpoint; a file truncated or changed later fails its
checksum and is skipped in favour of the previous one.

Checkpoints load with ``torch.load(weights_only=True)``: a file brings tensors, numbers,
strings, lists and dicts, and the types registered as trusted (:mod:`fluxtrain.checkpoints.trust`),
never code to run. A file listed in its folder's manifest is loaded only once its checksum
matches. Files are numbered after every checkpoint file on disk, so a new one never replaces an
older file, and a file is deleted only when the rotation drops an entry of the fit in progress.

Examples:
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> entry = write_checkpoint(folder, {"weight": torch.ones(2)}, kind="epoch")
    >>> entry["file"], latest_checkpoint(folder).name
    ('checkpoint-000001.pt', 'checkpoint-000001.pt')
    >>> load_checkpoint(latest_checkpoint(folder))["weight"]
    tensor([1., 1.])
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..exceptions import CheckpointError
from .atomic import atomic_write
from .manifest import (
    FORMAT,
    MANIFEST,
    next_number,
    numbers_on_disk,
    read_manifest,
    verify,
    write_manifest,
)
from .rotation import remove
from .trust import trusted_types

LEARNER = "learner.pt"
"""The file of a sharded checkpoint's folder that holds the learner's own state."""


def write_checkpoint(
    folder: str | os.PathLike[str],
    state: Mapping[str, Any],
    keep: Callable[[list[dict[str, Any]]], tuple[list, list]] | None = None,
    **info: Any,
) -> dict[str, Any]:
    """Saves ``state`` atomically as the folder's next checkpoint and lists it in the manifest.

    The manifest is rewritten only once the new file is complete on disk, then the files
    ``keep`` drops are deleted, so the folder never lacks its newest good checkpoint.

    Args:
        folder: The checkpoint folder (created if needed).
        state: What to save, e.g. ``learner.state_dict()``.
        keep: ``keep(entries) -> (kept, dropped)`` over the manifest entries, oldest first,
            the new one included (e.g. a :func:`rotate`); by default all are kept.
        **info: Extra JSON-serializable fields of the manifest entry (``kind``, ``metric``, ...).

    Returns:
        The manifest entry: ``file``, ``sha256``, ``bytes`` and ``info``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    number = next_number(folder)
    name = f"checkpoint-{number:06d}.pt"
    digest, size = atomic_write(folder / name, lambda file: torch.save(dict(state), file))
    entry = {"file": name, "sha256": digest, "bytes": size, **info}
    list_in_manifest(folder, entry, number, keep)
    return entry


def list_in_manifest(
    folder: Path,
    entry: dict[str, Any],
    number: int,
    keep: Callable[[list[dict[str, Any]]], tuple[list, list]] | None = None,
) -> None:
    """Lists checkpoint ``number``, complete on disk, in the folder's manifest as ``entry``,
    then deletes the checkpoints ``keep`` drops (see :func:`write_checkpoint`)."""
    manifest = read_manifest(folder) or {"format": FORMAT, "next": 1, "checkpoints": []}
    entries = [*manifest["checkpoints"], entry]
    kept, dropped = keep(entries) if keep is not None else (entries, [])
    if entry not in kept:
        kept.append(entry)
    write_manifest(folder, {**manifest, "next": number + 1, "checkpoints": kept})
    names = {e["file"] for e in kept}  # rotation is keyed by file name: a kept file stays
    for old in dropped:
        if old["file"] not in names:
            remove(folder / old["file"])


def _torch_load(path: Path, trust: Iterable[type] = ()) -> dict[str, Any]:
    try:
        with torch.serialization.safe_globals(trusted_types(trust)):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        try:
            unknown = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            unknown = []
        raise CheckpointError(
            f"The checkpoint {path} holds types that are not trusted: "
            f"{', '.join(unknown) or error}. Loading never runs code a file brings. A file "
            f"written by an older fluxtrain, or one with a callback's own types, loads with "
            f"load_checkpoint(path, trusted_types=[...]) (or Checkpointer(..., "
            f"trusted_types=[...])) once you trust those types and the file's source."
        ) from error
    except Exception as error:
        raise CheckpointError(
            f"Cannot read the checkpoint {path}: {error}. It is truncated or not a fluxtrain "
            f"checkpoint; resume from another one (resume='latest' skips bad files)."
        ) from error
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} holds a {type(state).__name__}, not a checkpoint dict; give a file "
            f"written by Checkpointer or by torch.save(learner.state_dict(), path)."
        )
    return state


def load_checkpoint(
    path: str | os.PathLike[str], trusted_types: Iterable[type] = ()
) -> dict[str, Any]:
    """Loads a checkpoint file (or a sharded checkpoint's ``learner.pt``: see
    :func:`read_state`), first checking it against its folder's manifest.

    A file that its folder's ``manifest.json`` lists must match the size and sha256 recorded
    there; a file the manifest does not list (or a folder without a usable one) is loaded as
    is. Tensors
    are loaded to the CPU; ``load_state_dict`` moves them to the model's and optimizer's devices.
    It loads with ``torch.load(weights_only=True)``: no code a file brings runs.

    Args:
        path: A checkpoint file.
        trusted_types: Classes besides fluxtrain's own that the file may hold (a callback's
            state of its own types); see :mod:`fluxtrain.checkpoints.trust`.

    Returns:
        The saved state, e.g. for ``learner.load_state_dict``.

    Raises:
        CheckpointError: The file is missing, fails its checksum, or cannot be read.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = tempfile.mkdtemp()
        >>> _ = write_checkpoint(folder, {"step": 3})
        >>> load_checkpoint(Path(folder) / "checkpoint-000001.pt")
        {'step': 3}
    """
    path = Path(path)
    if not path.is_file() and not (path / LEARNER).is_file():
        raise CheckpointError(
            f"There is no checkpoint file at {path}. Pass the path of an existing file (or "
            f"sharded checkpoint folder), or resume='latest' to use the newest one of the "
            f"Checkpointer's folder. Under torch.distributed every rank reads the checkpoint: "
            f"put the Checkpointer's folder on storage all ranks share."
        )
    try:
        manifest = read_manifest(path.parent)
    except CheckpointError:  # the file is named by path: load it unverified
        manifest = None
    for entry in (manifest or {}).get("checkpoints", []):
        if entry.get("file") == path.name:
            problem = verify(path.parent, entry)
            if problem is not None:
                raise CheckpointError(
                    f"The checkpoint {path} is not the file that was written: {problem}. "
                    f"Use an earlier checkpoint (resume='latest' picks the newest good one)."
                )
    return read_state(path, trusted_types)


def read_state(path: Path, trust: Iterable[type] = ()) -> dict[str, Any]:
    """The learner state in a checkpoint file, unverified; for a sharded checkpoint's folder,
    its ``learner.pt`` with ``"sharded"`` set to the folder's path (the model and optimizer
    shards load from there: :func:`~fluxtrain.checkpoints.sharded.load_sharded`)."""
    if not path.is_dir():
        return _torch_load(path, trust)
    state = _torch_load(path / LEARNER, trust)
    state["sharded"] = str(path)
    return state


def load_latest(
    folder: str | os.PathLike[str], trusted_types: Iterable[type] = ()
) -> tuple[Path, dict[str, Any]] | None:
    """The newest good checkpoint of a folder and its state, or ``None`` if it has none.

    Checkpoints that fail their checksum or cannot be read are skipped with a
    ``RuntimeWarning`` naming them; if the manifest lists checkpoints but none is good, this
    raises rather than let a run silently start over.

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> load_latest(folder) is None
        True
        >>> _ = write_checkpoint(folder, {"step": 1})
        >>> path, state = load_latest(folder)
        >>> path.name, state
        ('checkpoint-000001.pt', {'step': 1})
    """
    folder = Path(folder)
    manifest = check_folder(folder)
    if manifest is None or not manifest["checkpoints"]:
        return None
    problems: list[str] = []
    for entry in reversed(manifest["checkpoints"]):
        path = folder / str(entry.get("file"))
        problem = verify(folder, entry)
        if problem is None:
            try:
                state = read_state(path, trusted_types)
            except CheckpointError as error:
                problem = str(error)
            else:
                if problems:
                    warnings.warn(
                        f"Skipped bad checkpoints ({'; '.join(problems)}); using {path}.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return path, state
        problems.append(f"{path.name}: {problem}")
    raise CheckpointError(
        f"No good checkpoint in {folder}: {'; '.join(problems)}. Restore a good file, resume "
        f"from a file by path (fit(n, resume=path)), or start over with "
        f"Checkpointer(folder, start_over=True) (the files stay on disk)."
    )


def check_folder(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The folder's manifest; an error if checkpoint files are there but no usable manifest.

    A folder whose manifest is missing, unreadable or lists none of the checkpoint files on disk
    would otherwise look empty: a resume would start afresh and the files could be lost.

    Raises:
        CheckpointError: Saying how to resume from a file or start over.

    Examples:
        >>> import tempfile
        >>> check_folder(tempfile.mkdtemp()) is None  # empty: fine
        True
    """
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except CheckpointError as error:
        if not numbers_on_disk(folder):
            raise
        manifest, why = None, f"is unusable ({error})"
    else:
        why = "is missing" if manifest is None else "lists none of them"
    numbers = numbers_on_disk(folder)
    if numbers and (manifest is None or not manifest["checkpoints"]):
        newest = folder / f"checkpoint-{numbers[-1]:06d}.pt"
        raise CheckpointError(
            f"{folder} holds {len(numbers)} checkpoint file(s) but its {MANIFEST} {why}, so "
            f"fluxtrain cannot tell which is good. Resume from one by path, e.g. "
            f"fit(n, resume='{newest}'), or start over with Checkpointer(folder, "
            f"start_over=True): a new manifest, new checkpoints numbered after the old files, "
            f"which stay on disk untouched."
        )
    return manifest


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """The path of the newest checkpoint in ``folder`` that matches its checksum, or ``None``.

    Examples:
        >>> import tempfile
        >>> latest_checkpoint(tempfile.mkdtemp()) is None
        True
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    for entry in reversed((manifest or {}).get("checkpoints", [])):
        if verify(folder, entry) is None:
            return folder / str(entry["file"])
    return None
