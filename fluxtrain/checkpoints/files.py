"""Checkpoint folders: numbered checkpoint files, and a manifest with a checksum per file.

A checkpoint folder holds ``checkpoint-000001.pt``, ``checkpoint-000002.pt``, ... (each a
``torch.save`` of :meth:`Learner.state_dict <fluxtrain.Learner.state_dict>`) and
``manifest.json``, which lists them, oldest first, with the sha256 and size of each. Every file
is written with :func:`~fluxtrain.checkpoints.atomic.atomic_write` (a temporary file, fsynced,
renamed over its final name), the manifest after the checkpoint it lists. A process killed at any
moment leaves the folder with its last good checkpoint; a file truncated or changed later fails its
checksum and is skipped in favour of the previous one.

Checkpoints are pickles, loaded with ``torch.load(weights_only=False)`` so that any state a
callback keeps (dataclasses, numpy arrays) round-trips. Only load files your own runs wrote:
a file listed in its folder's manifest is loaded only once its checksum matches.

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
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..exceptions import CheckpointError
from .atomic import atomic_write
from .manifest import FORMAT, MANIFEST, read_manifest, verify, write_manifest


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
    manifest = read_manifest(folder) or {"format": FORMAT, "next": 1, "checkpoints": []}
    number = int(manifest.get("next", 1))
    name = f"checkpoint-{number:06d}.pt"
    digest, size = atomic_write(folder / name, lambda file: torch.save(dict(state), file))
    entry = {"file": name, "sha256": digest, "bytes": size, **info}
    entries = [*manifest["checkpoints"], entry]
    kept, dropped = keep(entries) if keep is not None else (entries, [])
    if entry not in kept:
        kept.append(entry)
    write_manifest(folder, {**manifest, "next": number + 1, "checkpoints": kept})
    for old in dropped:
        if old is not entry:
            (folder / str(old.get("file"))).unlink(missing_ok=True)
    return entry


def _torch_load(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
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


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads a checkpoint file, first checking it against its folder's manifest.

    A file that its folder's ``manifest.json`` lists must match the size and sha256 recorded
    there; a file the manifest does not list (or a folder without one) is loaded as is. Tensors
    are loaded to the CPU; ``load_state_dict`` moves them to the model's and optimizer's devices.

    Args:
        path: A checkpoint file.

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
    if not path.is_file():
        raise CheckpointError(
            f"There is no checkpoint file at {path}. Pass the path of an existing file, or "
            f"resume='latest' to use the newest one of the Checkpointer's folder."
        )
    manifest = read_manifest(path.parent)
    for entry in (manifest or {}).get("checkpoints", []):
        if entry.get("file") == path.name:
            problem = verify(path.parent, entry)
            if problem is not None:
                raise CheckpointError(
                    f"The checkpoint {path} is not the file that was written: {problem}. "
                    f"Use an earlier checkpoint (resume='latest' picks the newest good one)."
                )
    return _torch_load(path)


def load_latest(folder: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]] | None:
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
    manifest = read_manifest(folder)
    if manifest is None or not manifest["checkpoints"]:
        return None
    problems: list[str] = []
    for entry in reversed(manifest["checkpoints"]):
        path = folder / str(entry.get("file"))
        problem = verify(folder, entry)
        if problem is None:
            try:
                state = _torch_load(path)
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
        f"No good checkpoint in {folder}: {'; '.join(problems)}. Restore a good file, or delete "
        f"{folder / MANIFEST} to start the run over."
    )


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
