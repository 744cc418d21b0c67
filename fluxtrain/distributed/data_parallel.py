"""Running under ``torch.distributed``: rank queries, DDP wrapping, data sharding, collectives.

When a process group is initialized (``torchrun``, or ``init_process_group`` by hand), a
``fit`` gives each rank its shard of every ``DataLoader`` that has no ``DistributedSampler`` yet
(:func:`shard`), calls ``set_epoch`` on the sampler every epoch (:func:`set_epoch`), and wraps
the model in ``DistributedDataParallel`` once, after ``FitBegin`` (:func:`wrap_model`); the
user's module is ``learner.model`` again from ``FitEnd`` on. ``Metrics`` all-reduce their sums
at epoch end; progress, tables, logs and checkpoints come from rank 0 only. Without a process
group every function here is a no-op.

Examples:
    >>> import torch
    >>> model = torch.nn.Linear(2, 1)
    >>> DataParallel().wrap(model) is model  # no process group: unchanged
    True
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from .allreduce import ONE_BUCKET_MB, OrderedAllReduce
from .parallelism import is_parallel
from .process_group import is_distributed


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel``; a model already wrapped or already parallel
    (FSDP2, tensor parallel: :func:`~fluxtrain.distributed.parallelism.is_parallel`) is
    returned as is.

    The wrapper keeps every gradient in one bucket and all-reduces it in parameter order
    (:class:`~fluxtrain.distributed.allreduce.OrderedAllReduce`), so a resumed run, whose
    wrapper is new, matches an uninterrupted one bitwise at any number of processes. To
    overlap the all-reduce with ``backward()`` instead, wrap the model yourself before giving
    it to the ``Learner``: it is kept as it is.

    On CUDA the device id is that of the model's parameters (put the model on this process's
    GPU first, e.g. with ``ToDevice(torch.device("cuda", local_rank))``), else ``LOCAL_RANK``.
    Building the wrapper is a collective: every rank must call it. Without a process group the
    model is returned unchanged.

    Examples:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> wrap_model(model) is model  # no process group: unchanged
        True
    """
    if not is_distributed() or isinstance(model, DistributedDataParallel) or is_parallel(model):
        return model
    if not any(p.requires_grad for p in model.parameters()):
        return model  # nothing to synchronize; DistributedDataParallel refuses such a model
    parameter = next(iter(model.parameters()), None)
    if parameter is not None and parameter.device.type == "cuda":
        index = parameter.device.index
        if index is None:
            index = int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))
        devices: dict[str, Any] = {"device_ids": [index], "output_device": index}
    else:
        devices = {}
    wrapper = DistributedDataParallel(model, bucket_cap_mb_list=[ONE_BUCKET_MB], **devices)
    wrapper.register_comm_hook(wrapper.process_group, OrderedAllReduce(model).reduce)
    return wrapper


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The user's module inside a ``DistributedDataParallel`` wrapper; ``model`` otherwise.

    Examples:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> unwrap(model) is model
        True
    """
    return model.module if isinstance(model, DistributedDataParallel) else model


def shard(data: Any, shuffle: bool | None = None) -> Any:
    """A ``DataLoader`` re-built with a ``DistributedSampler``; anything else unchanged.

    The new loader keeps the batch size, ``drop_last``, workers, collate function, pinning and
    generator of ``data``. Its sampler shuffles if ``data`` did (a ``RandomSampler``), seeded
    with the initial seed of the loader's ``generator`` (0 without one): the same on every rank
    when every rank builds its loader the same way. The shard's order is a function of that
    seed and of the epoch passed to :func:`set_epoch`, so it replays exactly on resume.

    A loader that already has a ``DistributedSampler``, or a batch sampler of its own
    (``batch_size=None``), is kept as it is: give your own sampler to choose the sharding.
    Other iterables are never sharded: each rank must then yield its own part.

    Args:
        data: A training or validation iterable.
        shuffle: Override whether the shard shuffles; default: as ``data`` does.

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
    generator = data.generator
    seed = generator.initial_seed() if isinstance(generator, torch.Generator) else 0
    sampler: DistributedSampler = DistributedSampler(
        data.dataset, shuffle=shuffle, seed=seed, drop_last=data.drop_last
    )
    return loader_like(data, batch_size=data.batch_size, sampler=sampler, drop_last=data.drop_last)


def loader_like(data: DataLoader, **batching: Any) -> DataLoader:
    """A ``DataLoader`` over ``data``'s dataset with its workers, collate function, pinning,
    timeout and generator, and the batching given (``batch_size``, ``sampler``, ``drop_last``,
    or a ``batch_sampler``).

    Examples:
        >>> loader = loader_like(DataLoader(range(6), batch_size=2, num_workers=0), batch_size=3)
        >>> [batch.tolist() for batch in loader]
        [[0, 1, 2], [3, 4, 5]]
    """
    workers: dict[str, Any] = {}
    if data.num_workers > 0:
        workers = {
            "prefetch_factor": data.prefetch_factor,
            "persistent_workers": data.persistent_workers,
            "multiprocessing_context": data.multiprocessing_context,
        }
    return DataLoader(
        data.dataset,
        num_workers=data.num_workers,
        collate_fn=data.collate_fn,
        pin_memory=data.pin_memory,
        timeout=data.timeout,
        worker_init_fn=data.worker_init_fn,
        generator=data.generator,
        **batching,
        **workers,
    )


def set_epoch(data: Any, epoch: int) -> None:
    """Calls ``set_epoch(epoch)`` on a loader's distributed sampler, if it has one.

    Examples:
        >>> from torch.utils.data import DataLoader, DistributedSampler
        >>> sampler = DistributedSampler(range(4), num_replicas=2, rank=0)
        >>> set_epoch(DataLoader(range(4), sampler=sampler), 3)
        >>> sampler.epoch
        3
    """
    for sampler in (getattr(data, "sampler", None), getattr(data, "batch_sampler", None)):
        inner = getattr(sampler, "sampler", None)
        for candidate in (sampler, inner):
            if isinstance(candidate, DistributedSampler):
                candidate.set_epoch(epoch)
                return


class DataParallel:
    """What a learner keeps to train data-parallel: its loaders' shards, its model's wrapper.

    Without a process group, :meth:`shard`, :meth:`wrap` and :meth:`unwrap` return what they
    are given.

    Examples:
        >>> import torch
        >>> parallel = DataParallel()
        >>> model = torch.nn.Linear(2, 1)
        >>> parallel.unwrap(parallel.wrap(model)) is model
        True
    """

    def __init__(self) -> None:
        self._shards: dict[int, tuple[Any, Any]] = {}  # id(loader) -> (loader, its shard)
        self._wrapper: DistributedDataParallel | None = None

    def shard(self, data: Any) -> Any:
        """This rank's :func:`shard` of ``data``, built once per loader and kept."""
        if data is None or not is_distributed():
            return data
        cached = self._shards.get(id(data))
        if cached is None or cached[0] is not data:
            cached = self._shards[id(data)] = (data, shard(data))
        return cached[1]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model``'s ``DistributedDataParallel`` wrapper, built by :func:`wrap_model` once."""
        wrapper = self._wrapper
        if wrapper is not None and wrapper.module is model:
            return wrapper
        wrapped = wrap_model(model)
        if isinstance(wrapped, DistributedDataParallel) and wrapped is not model:
            self._wrapper = wrapped
        return wrapped

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The user's module if ``model`` is the wrapper :meth:`wrap` built, else ``model``."""
        wrapper = self._wrapper
        return wrapper.module if wrapper is not None and model is wrapper else model
