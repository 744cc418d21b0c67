"""Running under ``torch.distributed``: rank queries, DDP wrapping, data sharding.

When a process group is initialized (``torchrun``, or ``init_process_group`` by hand), the
learner wraps its model in ``DistributedDataParallel`` once, gives each rank its shard of every
``DataLoader`` that has no ``DistributedSampler`` yet, and calls ``set_epoch`` on the sampler
every epoch. ``Metrics`` all-reduce their sums at epoch end; progress, tables, logs and
checkpoints come from rank 0 only. Without a process group every function here is a no-op.

Examples:
    >>> is_distributed(), rank(), world_size(), is_main_process()
    (False, 0, 1, True)
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler


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


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel``, once; device ids from ``LOCAL_RANK`` on CUDA.

    Examples:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> wrap_model(model) is model  # no process group: unchanged
        True
    """
    if not is_distributed() or isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model
    parameter = next(iter(model.parameters()), None)
    if parameter is not None and parameter.device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", parameter.device.index or 0))
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank], output_device=local_rank
        )
    return torch.nn.parallel.DistributedDataParallel(model)


def shard(data: Any, shuffle: bool | None = None) -> Any:
    """A ``DataLoader`` re-built with a ``DistributedSampler``; anything else unchanged.

    A loader that already has a ``DistributedSampler`` (or a batch sampler of its own) is kept
    as it is, which is how to opt out: give your own sampler. The shard's shuffling follows the
    original loader's (a ``RandomSampler`` shuffles).

    Examples:
        >>> from torch.utils.data import DataLoader
        >>> loader = DataLoader(list(range(8)), batch_size=2)
        >>> shard(loader) is loader  # no process group: unchanged
        True
    """
    if not is_distributed() or not isinstance(data, DataLoader):
        return data
    if isinstance(data.sampler, DistributedSampler) or data.batch_size is None:
        return data
    if shuffle is None:
        shuffle = isinstance(data.sampler, RandomSampler)
    sampler: DistributedSampler = DistributedSampler(
        data.dataset, shuffle=shuffle, drop_last=data.drop_last
    )
    return DataLoader(
        data.dataset,
        batch_size=data.batch_size,
        sampler=sampler,
        num_workers=data.num_workers,
        collate_fn=data.collate_fn,
        pin_memory=data.pin_memory,
        drop_last=data.drop_last,
        timeout=data.timeout,
        worker_init_fn=data.worker_init_fn,
        persistent_workers=data.persistent_workers,
    )


def set_epoch(data: Any, epoch: int) -> None:
    """Calls ``set_epoch(epoch)`` on a loader's distributed sampler, if it has one."""
    sampler = getattr(data, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sums ``values`` over all ranks (returns them unchanged without a process group).

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
