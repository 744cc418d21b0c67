"""The process group: rank queries and the few collectives the loop and its callbacks need.

Without a process group every function here answers for a single process: rank 0 of 1, sums
and gathers of one value.

Examples:
    >>> is_distributed(), rank(), world_size(), is_main_process()
    (False, 0, 1, True)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialized."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Whether this process prints, logs and writes checkpoints (rank 0)."""
    return rank() == 0


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sums ``values`` over all ranks (returns them unchanged without a process group).

    A collective: every rank must call it, in the same order as the other collectives.

    Examples:
        >>> import torch
        >>> all_reduce_sum([1.0, 2.0], torch.device("cpu"))
        [1.0, 2.0]
    """
    if not is_distributed():
        return values
    if dist.get_backend() == "nccl" and device.type != "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_gather_object(value: Any) -> list[Any]:
    """Every rank's ``value``, indexed by rank (``[value]`` without a process group).

    A collective: every rank must call it. Values are pickled; move tensors to the CPU first.
    With NCCL, call ``torch.cuda.set_device(local_rank)`` before the first collective.

    Examples:
        >>> all_gather_object({"step": 3})
        [{'step': 3}]
    """
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank (``value`` itself without a process group).

    A collective: every rank must call it; the values of the other ranks are ignored.

    Examples:
        >>> broadcast_object("checkpoint-000003.pt")
        'checkpoint-000003.pt'
    """
    if not is_distributed():
        return value
    box = [value if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]
