"""Scheduling the training batch size: :class:`BatchSize` and the plan of an epoch's batches.

A ``Scheduler`` with a :class:`BatchSize` schedule re-builds the training ``DataLoader`` of each
fit around a :class:`PlannedBatchSampler`: the same sampler (the same stream of sample indices,
shuffled the same way) cut into batches whose sizes the schedule gives. An epoch is a pass over
the sampler's indices, so a change of batch size drops or repeats no sample; the sizes of an
epoch's batches are planned at its start (:class:`BatchPlan`), from the time each batch will be
trained at, so the loader knows its ``len()`` and its workers can prefetch.

Examples:
    >>> import torch
    >>> from torch.utils.data import DataLoader
    >>> from fluxtrain import Learner, Schedule, Scheduler
    >>> model = torch.nn.Linear(1, 1)
    >>> seen = []
    >>> def loss(outputs, targets):
    ...     seen.append(len(targets))
    ...     return torch.nn.functional.mse_loss(outputs, targets)
    >>> data = torch.utils.data.TensorDataset(torch.zeros(20, 1), torch.zeros(20, 1))
    >>> learner = Learner(model, DataLoader(data, batch_size=4), torch.optim.SGD(
    ...     model.parameters(), lr=0.1), loss, Scheduler({BatchSize: Schedule(
    ...     [0, 2], [2, 6], unit="step")}), usedefaultcallbacks=False)
    >>> _ = learner.fit(1)
    >>> seen  # 2 at step 0, 4 at step 1, then 6 until the 20 samples are used up
    [2, 4, 6, 6, 2]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, IterableDataset, Sampler

from .access import Read
from .clock import ScheduleClock
from .distributed.data_parallel import loader_like
from .exceptions import HyperParameterError, ScheduleError
from .hyperparameters import HyperParameter
from .scheduled import Scheduled
from .schedules.base import UNITS


def rounded(value: float) -> int:
    """A batch size from a schedule's value: the nearest integer (halves round up).

    Examples:
        >>> rounded(31.5), rounded(31.49), rounded(8.0)
        (32, 31, 8)
    """
    return math.floor(value + 0.5)


class BatchSize(HyperParameter):
    """The training batch size: samples per step, from a ``DataLoader`` fluxtrain re-chunks.

    The values are rounded to the nearest integer and must be ``>= 1``. The last batch of an
    epoch holds the samples left when they are fewer (or is dropped, for a loader built with
    ``drop_last=True``). Under ``torch.distributed`` it is the batch size of each process.
    The training data must be a ``DataLoader`` over a map-style dataset with a ``batch_size``
    (not a ``batch_sampler`` of its own); workers (``num_workers > 0``) are fine: the batch
    sampler runs in the main process and knows every batch's size in advance. One
    optimizer step per batch: ``GradientAccumulation`` cannot be combined with it.

    Examples:
        >>> from fluxtrain import Schedule, Scheduler
        >>> scheduler = Scheduler({BatchSize: Schedule([0, 1], [32, 128])})  # epochs
        >>> [int(v) for v in scheduler.simulate(2, samples_per_epoch=256)["BatchSize"]]
        [32, 44, 61, 83, 115, 128, 128]
    """

    stateaccess = {"data": Read, "callbacks": Read}
    domain = (1.0, math.inf)

    def check(self, learner: Any) -> None:
        """Raises if a callback groups batches into updates (``GradientAccumulation``)."""
        grouping = [c.name for c in learner.callbacks if getattr(c, "groups_batches", False)]
        if grouping:
            raise HyperParameterError(
                f"Scheduler: BatchSize makes one optimizer step per batch, but {grouping[0]} "
                f"groups batches into updates. Schedule the batch size or accumulate "
                f"gradients, not both."
            )

    def sethyperparameter(self, learner: Any, value: float) -> None:
        """Nothing to set: the batch in hand was cut to this size when it was loaded."""


class PlannedBatchSampler(Sampler[list[int]]):
    """Cuts the indices of ``sampler`` into batches of the sizes :meth:`BatchPlan.sizes` gives.

    Examples:
        >>> sampler = PlannedBatchSampler(range(7), lambda n, drop_last: [2, 3, 2])
        >>> list(sampler), len(sampler)
        ([[0, 1], [2, 3, 4], [5, 6]], 3)
    """

    def __init__(self, sampler: Any, sizes: Any, drop_last: bool = False) -> None:
        self.sampler = sampler
        self.sizes = sizes
        self.drop_last = drop_last

    def __len__(self) -> int:
        return len(self.sizes(len(self.sampler), self.drop_last))

    def __iter__(self) -> Iterator[list[int]]:
        sizes = iter(self.sizes(len(self.sampler), self.drop_last))
        size, batch = next(sizes, 0), []
        for index in self.sampler:  # to its end, as torch's BatchSampler does (drop_last too)
            if size:
                batch.append(index)
                if len(batch) == size:
                    yield batch
                    size, batch = next(sizes, 0), []


class BatchPlan:
    """The batch sizes of each training epoch, for a ``Scheduler`` with a ``BatchSize`` entry.

    Args:
        entry: The ``BatchSize`` entry of the Scheduler.
        clock: The Scheduler's clock; its ``samples_per_epoch`` is set from the training data.
    """

    def __init__(self, entry: Scheduled, clock: ScheduleClock) -> None:
        if entry.schedule.unit == "token":
            raise ScheduleError(
                "Scheduler: a BatchSize schedule cannot be in unit 'token': the sizes of an "
                "epoch's batches are planned before they are loaded. Use 'step', 'epoch', "
                "'fraction' or 'sample'."
            )
        self.entry = entry
        self.clock = clock
        self._unit = UNITS.index(entry.schedule.unit)
        self._loaders: dict[int, tuple[Any, DataLoader]] = {}  # id(given) -> (given, re-built)
        self._key: Any = None
        self._sizes: list[int] = []

    def value_at(self, time: float) -> float:
        """The batch size at ``time`` in the schedule's unit, as the Scheduler records it."""
        return float(rounded(self.entry.schedule.scalar(time)))

    def training_data(self, data: Any) -> DataLoader:
        """``data`` re-built around a :class:`PlannedBatchSampler` (once per loader, kept).

        Raises:
            HyperParameterError: ``data`` is no ``DataLoader`` with a ``batch_size``.
        """
        kept = self._loaders.get(id(data))
        if kept is None or kept[0] is not data:
            kept = self._loaders[id(data)] = (data, rechunked(data, self.sizes))
        self.clock.samples_per_epoch = len(kept[1].batch_sampler.sampler)  # type: ignore[union-attr, arg-type]
        return kept[1]

    def sizes(self, n_samples: int, drop_last: bool) -> list[int]:
        """The sizes of the batches of the epoch that begins (or began) at
        ``clock.epoch_start``, over ``n_samples`` samples."""
        clock = self.clock
        key = (n_samples, drop_last, clock.epoch_start, clock.plan_key())
        if key == self._key:
            return self._sizes
        t, samples = clock.epoch_start
        low, high = self.entry.hyperparameter.domain
        value_at, unit = self.entry.schedule.scalar, self._unit
        sizes: list[int] = []
        seen = 0
        while seen < n_samples:
            time = clock.times_at(t, samples, seen)[unit]
            value = value_at(time)
            if not low <= value < high:  # also NaN
                raise self.entry.rejection("Scheduler", value, t, time, (low, high))
            size = rounded(value)
            if size > n_samples - seen:
                if drop_last:
                    break
                size = n_samples - seen
            sizes.append(size)
            seen, t, samples = seen + size, t + 1, samples + size
        self._key, self._sizes = key, sizes
        return sizes


def rechunked(data: Any, sizes: Any) -> DataLoader:
    """A ``DataLoader`` like ``data`` whose batches are cut to ``sizes(n, drop_last)``.

    Raises:
        HyperParameterError: ``data`` is no ``DataLoader`` over a map-style dataset with a
            ``batch_size``.

    Examples:
        >>> loader = rechunked(DataLoader(list(range(5)), batch_size=2), lambda n, d: [1, 4])
        >>> [batch.tolist() for batch in loader]
        [[0], [1, 2, 3, 4]]
    """
    if not isinstance(data, DataLoader):
        raise HyperParameterError(
            f"Scheduler: BatchSize re-chunks a torch DataLoader, but the training data is a "
            f"{type(data).__name__}. Pass DataLoader(dataset, batch_size=...)."
        )
    if isinstance(data.dataset, IterableDataset) or data.batch_size is None:
        what = (
            "an IterableDataset" if isinstance(data.dataset, IterableDataset) else "no batch_size"
        )
        raise HyperParameterError(
            f"Scheduler: BatchSize needs a DataLoader over a map-style dataset with a "
            f"batch_size (it cuts the sampler's indices into batches), but this one has "
            f"{what}. Build it as DataLoader(dataset, batch_size=..., shuffle=...)."
        )
    return loader_like(data, batch_sampler=PlannedBatchSampler(data.sampler, sizes, data.drop_last))
