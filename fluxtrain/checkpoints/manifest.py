"""The manifest of a checkpoint folder: which files it holds, oldest first, with their checksums.

``manifest.json`` lists the folder's checkpoint files with the sha256 and size of each; it is
written atomically (:func:`~fluxtrain.checkpoints.atomic.atomic_write`) after the checkpoint it
lists, so it never names a file that is not complete on disk. :func:`verify` tells whether a
listed file is still the one that was written.

Examples:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_manifest(folder, {"format": FORMAT, "next": 1, "checkpoints": []})
    >>> read_manifest(folder)["checkpoints"]
    []
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import CheckpointError
from .atomic import atomic_write, file_sha256

MANIFEST = "manifest.json"
FORMAT = 1
NAME = re.compile(r"checkpoint-(\d{6,})(?:\.pt)?")
"""The name of a checkpoint file (``.pt``) or of a sharded checkpoint's folder; a manifest
lists nothing else."""
SHARD = re.compile(r"__\d+_\d+\.distcp|\.metadata|learner\.pt")
"""The name of a file inside a sharded checkpoint's folder."""


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The folder's manifest, or ``None`` when it has none (no checkpoint written yet).

    Examples:
        >>> import tempfile
        >>> read_manifest(tempfile.mkdtemp()) is None
        True
    """
    path = Path(folder) / MANIFEST
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        manifest = json.loads(text)
        if not isinstance(manifest.get("checkpoints"), list):
            raise ValueError("no list of checkpoints")
    except (ValueError, AttributeError) as error:
        raise CheckpointError(
            f"The checkpoint manifest {path} cannot be read ({error}). It is written atomically, "
            f"so something else changed it. Resume from a checkpoint file by path "
            f"(fit(n, resume='{Path(folder) / 'checkpoint-000001.pt'}')), or start over with "
            f"Checkpointer(folder, start_over=True)."
        ) from error
    for entry in manifest["checkpoints"]:
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or NAME.fullmatch(name) is None:
            raise CheckpointError(
                f"The checkpoint manifest {path} lists {name!r}, which is not a checkpoint file "
                f"of that folder (checkpoint-NNNNNN.pt): a manifest names files inside its own "
                f"folder only. Repair the manifest, or start over with "
                f"Checkpointer(folder, start_over=True)."
            )
    return manifest


def write_manifest(folder: str | os.PathLike[str], manifest: Mapping[str, Any]) -> None:
    """Writes ``manifest.json`` atomically.

    Examples:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> write_manifest(folder, {"format": 1, "next": 1, "checkpoints": []})
        >>> read_manifest(folder)["next"]
        1
    """
    data = json.dumps(manifest, indent=1).encode()
    atomic_write(Path(folder) / MANIFEST, lambda file: file.write(data))


def verify(folder: Path, entry: Mapping[str, Any]) -> str | None:
    """Why the entry's file is not good, or ``None`` when it matches its checksum."""
    if "files" in entry:
        return verify_files(folder, entry)
    path = folder / str(entry.get("file"))
    if not path.is_file():
        return "the file is missing"
    size = path.stat().st_size
    if size != entry.get("bytes"):
        return f"it has {size} bytes, the manifest says {entry.get('bytes')} (truncated?)"
    if file_sha256(path) != entry.get("sha256"):
        return "its sha256 does not match the manifest (corrupt)"
    return None


def numbers_on_disk(folder: str | os.PathLike[str]) -> list[int]:
    """The numbers of the checkpoint files in ``folder``, listed or not, in order.

    Examples:
        >>> import tempfile
        >>> numbers_on_disk(tempfile.mkdtemp())
        []
    """
    try:
        names = [entry.name for entry in Path(folder).iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(m.group(1)) for m in map(NAME.fullmatch, names) if m is not None)


def verify_files(folder: Path, entry: Mapping[str, Any]) -> str | None:
    """Why a sharded entry's folder is not good, or ``None`` when every file matches."""
    path = folder / str(entry.get("file"))
    if not path.is_dir():
        return "the folder is missing"
    for name, expected in dict(entry["files"]).items():
        if not isinstance(name, str) or SHARD.fullmatch(name) is None:
            return f"it lists {name!r}, which is not a file of a sharded checkpoint"
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        size = file.stat().st_size
        if size != expected.get("bytes"):
            return f"{name} has {size} bytes, the manifest says {expected.get('bytes')}"
        if file_sha256(file) != expected.get("sha256"):
            return f"the sha256 of {name} does not match the manifest (corrupt)"
    return None


def next_number(folder: str | os.PathLike[str]) -> int:
    """The number of the folder's next checkpoint: after every one listed or on disk.

    Examples:
        >>> import tempfile
        >>> next_number(tempfile.mkdtemp())
        1
    """
    manifest = read_manifest(folder) or {"next": 1, "checkpoints": []}
    listed = [int(NAME.fullmatch(e["file"]).group(1)) for e in manifest["checkpoints"]]  # type: ignore[union-attr]
    return max([int(manifest.get("next", 1)), *(n + 1 for n in listed + numbers_on_disk(folder))])
