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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import CheckpointError
from .atomic import atomic_write, file_sha256

MANIFEST = "manifest.json"
FORMAT = 1


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
            f"so something else changed it. Repair or delete it (then the folder counts as "
            f"empty), or resume from a checkpoint file by path."
        ) from error
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
    path = folder / str(entry.get("file"))
    if not path.is_file():
        return "the file is missing"
    size = path.stat().st_size
    if size != entry.get("bytes"):
        return f"it has {size} bytes, the manifest says {entry.get('bytes')} (truncated?)"
    if file_sha256(path) != entry.get("sha256"):
        return "its sha256 does not match the manifest (corrupt)"
    return None
