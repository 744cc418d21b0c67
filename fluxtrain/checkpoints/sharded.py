"""Sharded checkpoints: a folder of ``torch.distributed.checkpoint`` shards, listed with checksums.

A model that is already parallel (FSDP2's ``fully_shard``, tensor parallel: see
:func:`~fluxtrain.distributed.is_parallel`) cannot be saved by one rank: each holds its own
shards. The :class:`~fluxtrain.Checkpointer` then writes each checkpoint as a folder
``checkpoint-NNNNNN`` holding

- the shards of the model and the optimizers, written by every rank with
  ``torch.distributed.checkpoint`` (DCP) from ``get_state_dict`` (``__<rank>_<n>.distcp`` and
  ``.metadata``);
- ``learner.pt``: the rest of the learner's state (counters, ``cbstate``, callbacks), with
  every rank's random states in its ``"ranks"`` list, written by rank 0.

The folder is written under a temporary name (``.checkpoint-NNNNNN.<pid>.tmp``) and renamed
once complete; the manifest entry lists every file in it with its size and sha256 (each rank
hashes the files it wrote), so a truncated or corrupt shard fails its check and
``resume="latest"`` falls back to the previous good checkpoint, as with single files. DCP
reshards on load: a checkpoint written by 4 ranks loads into a learner of 2 (or of one
process, unsharded) for a new fit, and :func:`export_state_dict` writes the whole model's
``state_dict`` to one file for inference.

Examples:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from fluxtrain.testing import tiny_learner
    >>> folder = Path(tempfile.mkdtemp())
    >>> learner = tiny_learner()
    >>> _ = learner.fit(1)
    >>> entry = write_sharded(folder, learner)  # also in one process
    >>> entry["file"], sorted(entry["files"])
    ('checkpoint-000001', ['.metadata', '__0_0.distcp', 'learner.pt'])
    >>> export_state_dict(folder / "checkpoint-000001", folder / "model.pt")
    >>> torch.load(folder / "model.pt")["weight"] == learner.model.weight
    tensor([[True]])
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from ..distributed import all_gather_object, broadcast_object, is_distributed, rank, unwrap
from ..exceptions import CheckpointError
from .atomic import atomic_write, file_sha256, fsync_folder
from .files import LEARNER, list_in_manifest
from .learner_state import learner_state
from .manifest import next_number
from .rotation import remove

if TYPE_CHECKING:
    from ..learner import Learner


@contextlib.contextmanager
def _single_process() -> Iterator[dict[str, Any]]:
    """DCP's keyword for a run without a process group, and its warning about it silenced."""
    if is_distributed():
        yield {}
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        yield {"no_dist": True}


def _shards(learner: Learner) -> tuple[torch.nn.Module, list[torch.optim.Optimizer], dict]:
    """The model, the optimizers and their sharded state (``get_state_dict``) as DCP saves it."""
    model, optimizers = unwrap(learner.model), list(learner.optimizers.values())
    model_state, optimizer_state = get_state_dict(model, optimizers)
    return model, optimizers, {"model": model_state, "optimizer": optimizer_state}


def _agree(error: BaseException | None, what: str) -> None:
    """Raises on every rank when one failed (a collective): its own error, or a message."""
    failures = all_gather_object(None if error is None else repr(error))
    if error is not None:
        raise error
    for index, failure in enumerate(failures):
        if failure is not None:
            raise CheckpointError(f"{what}: rank {index} failed ({failure}); see its error.")


class PendingSave:
    """A sharded checkpoint being written: its temporary folder, and DCP's future if async."""

    def __init__(self, folder: Path, name: str, info: dict[str, Any], keep: Any) -> None:
        self.folder, self.name, self.info, self.keep = folder, name, info, keep
        self.temporary = folder / f".{name}.{broadcast_object(os.getpid())}.tmp"
        self.future: Any = None
        self.local: dict[str, dict[str, Any]] = {}

    def wait(self) -> None:
        """Waits until this rank's shards are on disk (an async save's future is done)."""
        future, self.future = self.future, None
        if future is not None:
            future.result()

    def commit(self) -> dict[str, Any]:
        """Gathers every rank's file checksums, renames the folder, lists it in the manifest.

        A collective. Returns the manifest entry (on every rank).
        """
        error: BaseException | None = None
        try:
            self.wait()
            for path in self.temporary.glob(f"__{rank()}_*.distcp"):
                self.local[path.name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
        except BaseException as failure:
            error = failure
        _agree(error, f"Checkpointer: writing {self.name}")
        files: dict[str, dict[str, Any]] = {}
        for part in all_gather_object(self.local):
            files.update(part)
        entry, late = None, None
        if rank() == 0:
            try:
                entry = self._rename(files)
            except Exception as problem:
                late = problem
        _agree(late, f"Checkpointer: committing {self.name}")
        return broadcast_object(entry)

    def _rename(self, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
        metadata = self.temporary / ".metadata"
        files[".metadata"] = {"sha256": file_sha256(metadata), "bytes": metadata.stat().st_size}
        fsync_folder(self.temporary)
        final = self.folder / self.name
        os.replace(self.temporary, final)
        fsync_folder(self.folder)
        files = dict(sorted(files.items()))
        total = sum(f["bytes"] for f in files.values())
        entry = {"file": self.name, "files": files, "bytes": total, **self.info}
        list_in_manifest(self.folder, entry, int(self.name.rpartition("-")[2]), self.keep)
        return entry


def start_sharded(
    folder: str | os.PathLike[str],
    learner: Learner,
    ranks: list[Any] | None = None,
    keep: Callable[[list[dict[str, Any]]], tuple[list, list]] | None = None,
    group: Any = None,
    **info: Any,
) -> PendingSave:
    """Starts writing ``learner``'s sharded checkpoint; :meth:`PendingSave.commit` finishes it.

    A collective. With ``group`` (a process group of its own, e.g. gloo), the shards are
    written by ``torch.distributed.checkpoint.async_save`` in the background, on that group.
    """
    folder = Path(folder)
    error: BaseException | None = None
    name = None
    if rank() == 0:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = f"checkpoint-{next_number(folder):06d}"
        except Exception as failure:
            error = failure
    _agree(error, "Checkpointer: preparing a sharded checkpoint")
    pending = PendingSave(folder, broadcast_object(name), info, keep)
    shards = _shards(learner)[2]
    try:
        if rank() == 0:
            remove(pending.temporary)  # left by a save of this process that failed
            pending.temporary.mkdir(parents=True)
            own = learner_state(learner)
            own.pop("model"), own.pop("optimizer")
            if ranks is not None:  # rank 0's own entries are the top-level ones
                own.update(ranks[0])
                own["ranks"] = ranks
            digest, size = atomic_write(
                pending.temporary / LEARNER, lambda file: torch.save(own, file)
            )
            pending.local[LEARNER] = {"sha256": digest, "bytes": size}
    except Exception as failure:
        error = failure
    _agree(error, "Checkpointer: writing learner.pt")
    if group is not None:
        target = pending.temporary
        pending.future = dcp.async_save(shards, checkpoint_id=target, process_group=group)
    else:
        with _single_process() as alone:
            dcp.save(shards, checkpoint_id=pending.temporary, **alone)
    return pending


def write_sharded(
    folder: str | os.PathLike[str],
    learner: Learner,
    ranks: list[Any] | None = None,
    keep: Callable[[list[dict[str, Any]]], tuple[list, list]] | None = None,
    **info: Any,
) -> dict[str, Any]:
    """Writes ``learner``'s sharded checkpoint into ``folder`` and lists it in the manifest.

    A collective under ``torch.distributed``. ``ranks`` are every rank's
    :func:`~fluxtrain.checkpoints.learner_state.rank_states`; ``keep`` a rotation as in
    :func:`~fluxtrain.checkpoints.files.write_checkpoint`.

    Returns:
        The manifest entry: ``file`` (the folder's name), ``files`` (each file's ``sha256``
        and ``bytes``), ``bytes`` (their total) and ``info``.
    """
    return start_sharded(folder, learner, ranks, keep, **info).commit()


def load_sharded(learner: Learner, path: str | os.PathLike[str]) -> None:
    """Loads the model's and optimizers' shards of a sharded checkpoint into ``learner``.

    A collective under ``torch.distributed``; any number of ranks, any sharding (DCP
    reshards), or a plain module in one process.

    Raises:
        CheckpointError: The shards do not fit the model or the optimizers.
    """
    model, optimizers, shards = _shards(learner)
    try:
        with _single_process() as alone:
            dcp.load(shards, checkpoint_id=Path(path), **alone)
    except Exception as error:
        raise CheckpointError(
            f"The sharded checkpoint {path} does not fit this learner's model or optimizers "
            f"({type(error).__name__}: {error}). Build the same model and optimizers as the run "
            f"that saved it."
        ) from error
    # loaded in place: the dicts get_state_dict returned now hold the checkpoint's values
    set_state_dict(
        model, optimizers, model_state_dict=shards["model"], optim_state_dict=shards["optimizer"]
    )


def export_state_dict(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Writes the whole model's ``state_dict`` of a sharded checkpoint to one file.

    Runs in one process, without a process group; the file loads with
    ``torch.load(out, weights_only=True)`` into the unsharded model
    (``model.load_state_dict(...)``), e.g. for inference.

    Args:
        path: A sharded checkpoint's folder (``checkpoint-NNNNNN``).
        out: The file to write (atomically).
    """
    path = Path(path)
    if not (path / ".metadata").is_file():
        raise CheckpointError(
            f"export_state_dict: {path} is not a sharded checkpoint's folder (no .metadata). "
            f"Give a checkpoint-NNNNNN folder a sharded run wrote."
        )
    out = Path(out)
    whole = out.with_name(f".{out.name}.{os.getpid()}.whole.tmp")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
            dcp_to_torch_save(path, whole)
        model = torch.load(whole, map_location="cpu", weights_only=True)["model"]
        atomic_write(out, lambda file: torch.save(model, file))
    finally:
        whole.unlink(missing_ok=True)
