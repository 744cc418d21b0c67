"""What the :class:`~fluxtrain.Checkpointer` does together with the other ranks.

:func:`check_shared` runs at ``FitBegin`` under ``torch.distributed``: every rank must see the
folder rank 0 writes (each loads the checkpoints from it), and a rank 0 that could not get the
folder ready stops every rank, not only itself. :class:`ShardedSaves` writes the sharded
checkpoints of a parallel model (:mod:`fluxtrain.checkpoints.sharded`), in the background when
asked: the manifest lists a checkpoint only once all its shards are on disk.

Examples:
    >>> import tempfile
    >>> check_shared(tempfile.mkdtemp())  # one process: it sees its own folder
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..distributed import all_gather_object, broadcast_object, is_distributed, rank
from ..exceptions import CheckpointError
from .resume import not_shared

if TYPE_CHECKING:
    from ..learner import Learner
    from .sharded import PendingSave


def check_shared(folder: str | os.PathLike[str], failure: BaseException | None = None) -> None:
    """Raises on every rank unless every rank sees the files rank 0 writes in ``folder``.

    A collective under ``torch.distributed`` (without it, nothing to check). Rank 0 writes a
    marker file, every rank looks for it, rank 0 deletes it. ``failure``: rank 0's error in
    preparing the folder, raised on every rank.

    Raises:
        CheckpointError: The folder is not shared (node-local storage), or rank 0 failed.
    """
    if not is_distributed():
        if failure is not None:
            raise failure
        return
    folder = Path(folder)
    marker = None
    if rank() == 0 and failure is None:
        try:
            marker = folder / f".shared-{uuid.uuid4().hex}"
            marker.touch()
        except OSError as error:
            failure = error
    told = broadcast_object(
        (
            None if marker is None else marker.name,
            None if failure is None else repr(failure),
            str(folder),
        )
    )
    if failure is not None:
        raise failure
    if told[1] is not None:
        raise CheckpointError(
            f"Checkpointer: rank 0 could not prepare {folder}: {told[1]}. Every rank stops; "
            f"see rank 0's error."
        )
    seen = all_gather_object((folder / told[0]).is_file())
    if marker is not None:
        marker.unlink(missing_ok=True)
    blind = [index for index, sees in enumerate(seen) if not sees]
    if blind:
        raise CheckpointError(not_shared(told[2], blind))  # rank 0's folder


class ShardedSaves:
    """The sharded checkpoints of one fit: written now, or in the background (``async_save``).

    With ``async_save`` under ``torch.distributed``, the shards are written by
    ``torch.distributed.checkpoint.async_save`` on a gloo process group of its own (the
    default group's collectives go on meanwhile) while training continues; the checkpoint is
    listed in the manifest (committed) at the next save or when the fit ends, once complete.

    Args:
        async_save: Write in the background.
    """

    def __init__(self, async_save: bool = False) -> None:
        self.async_save = async_save
        self._group: Any = None
        self._pending: PendingSave | None = None

    def save(self, folder: Path, learner: Learner, ranks: Any, keep: Any, **info: Any) -> Any:
        """Starts a checkpoint (after committing the previous one); returns its entry when
        written now, ``None`` when it is still being written. A collective."""
        from .sharded import start_sharded  # torch.distributed.checkpoint, only when used

        self.finish()
        group = None
        if self.async_save and is_distributed():
            if self._group is None:
                import torch.distributed as dist

                self._group = dist.new_group(backend="gloo")
            group = self._group
        pending = start_sharded(folder, learner, ranks, keep, group=group, **info)
        if group is None:
            return pending.commit()
        self._pending = pending
        return None

    def end(self, ending: str | None) -> None:
        """At ``FitEnd``: waits for the checkpoint being written; commits it unless the fit
        ended by an error or an interrupt under ``torch.distributed`` (another rank may have
        failed, and committing is a collective)."""
        self.finish(commit=ending in ("completed", "cancelled") or not is_distributed())

    def finish(self, commit: bool = True) -> dict[str, Any] | None:
        """Waits for the checkpoint being written and commits it (a collective); with
        ``commit=False`` only waits (a run interrupted on some ranks: the folder stays
        temporary, and the next fit's ``FitBegin`` deletes it)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        if not commit:
            pending.wait()
            return None
        return pending.commit()
