"""What a checkpoint folder keeps: the newest and the best checkpoints, and no leftovers.

:func:`rotate` chooses which manifest entries survive a new write; :func:`clean_folder`
deletes what killed writers left behind.

Examples:
    >>> kept, dropped = rotate([{"file": "a"}, {"file": "b"}], keep_last=1)
    >>> [e["file"] for e in kept], [e["file"] for e in dropped]
    (['b'], ['a'])
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..exceptions import CheckpointError
from ..state import epoch_values

_TEMPORARY = re.compile(r"\.(checkpoint-\d{6,}(\.pt)?|manifest\.json)\.\d+\.tmp")


def by_metric(entries: list[dict[str, Any]], mode: str) -> list[int]:
    """Indices of the entries with a recorded ``"metric"``, best first (lowest for
    ``mode="min"``); of equal values the newest first; entries without one or with NaN left out.

    Examples:
        >>> by_metric([{"metric": 2.0}, {}, {"metric": 1.0}, {"metric": 2.0}], "min")
        [2, 3, 0]
    """
    sign = 1.0 if mode == "min" else -1.0
    scored = [
        (sign * float(e["metric"]), -i)
        for i, e in enumerate(entries)
        if isinstance(e.get("metric"), (int, float)) and not math.isnan(e["metric"])
    ]
    return [-i for _, i in sorted(scored)]


def monitored(cbstate: Any, monitor: str | None) -> float | None:
    """The last value of ``cbstate.metrics_epoch[monitor]`` (``None`` without a monitor, or
    for NaN): what a manifest entry records as its ``"metric"``.

    Raises:
        CheckpointError: ``monitor`` is not recorded.

    Examples:
        >>> from fluxtrain.state import CallbackState
        >>> monitored(CallbackState(metrics_epoch={"valid/Loss": [0.5, 0.25]}), "valid/Loss")
        0.25
    """
    if monitor is None:
        return None
    value = float(
        epoch_values(cbstate.get("metrics_epoch", {}), monitor, "Checkpointer", CheckpointError)[-1]
    )
    return None if math.isnan(value) else value


def rotate(
    entries: list[dict[str, Any]],
    keep_last: int,
    keep_best: int = 0,
    mode: str = "min",
    fit: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Splits manifest entries (oldest first) into those to keep and those to delete.

    Kept: the newest ``keep_last``, the ``keep_best`` best by their ``"metric"`` (lowest for
    ``mode="min"``; entries without a metric or with NaN do not compete), always the newest,
    and, when ``fit`` is given, every entry another fit wrote (its ``"fit"`` differs): a fit
    deletes only checkpoints it wrote itself.

    Examples:
        >>> entries = [{"file": f"c{i}", "metric": m} for i, m in enumerate([3.0, 1.0, 2.0, 4.0])]
        >>> kept, dropped = rotate(entries, keep_last=1, keep_best=1)
        >>> [e["file"] for e in kept], [e["file"] for e in dropped]
        (['c1', 'c3'], ['c0', 'c2'])
    """
    keep = set(range(max(0, len(entries) - max(keep_last, 1)), len(entries)))
    keep.update(by_metric(entries, mode)[:keep_best])
    if fit is not None:
        keep.update(i for i, e in enumerate(entries) if e.get("fit") != fit)
    kept = [e for i, e in enumerate(entries) if i in keep]
    dropped = [e for i, e in enumerate(entries) if i not in keep]
    return kept, dropped


def clean_folder(folder: str | os.PathLike[str]) -> list[str]:
    """Deletes the temporary files (and sharded checkpoints' temporary folders) killed writers
    left in ``folder``, and nothing else.

    Call it only while holding the folder's lock (:class:`~fluxtrain.checkpoints.lock.FolderLock`):
    then no other process is writing there, and a temporary file is a leftover. Checkpoint files
    the manifest does not list (written just before a kill) are kept.

    Returns:
        The names of the deleted files.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / ".checkpoint-000001.pt.123.tmp").write_bytes(b"partial")
        7
        >>> (folder / "checkpoint-000002.pt").write_bytes(b"unlisted")
        8
        >>> clean_folder(folder), sorted(p.name for p in folder.iterdir())
        (['.checkpoint-000001.pt.123.tmp'], ['checkpoint-000002.pt'])
    """
    removed = []
    for path in Path(folder).iterdir():
        if _TEMPORARY.fullmatch(path.name) is not None:
            remove(path)
            removed.append(path.name)
    return removed


def remove(path: Path) -> None:
    """Deletes a checkpoint file, or a sharded checkpoint's folder with its files."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
