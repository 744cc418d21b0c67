"""A :class:`Record`: ``(step, value)`` pairs in 16 bytes each, what ``cbstate.hyperparams`` holds.

A :class:`~fluxtrain.Scheduler` records one value per hyperparameter per training step, for
the whole run. As a list of tuples that is about 100 bytes a value in memory, and every
checkpoint pickles each tuple; a :class:`Record` keeps the steps and the values in two typed
arrays, :attr:`~Record.steps` (``int64``) and :attr:`~Record.values` (``float64``), 16 bytes a
value, and pickles them as two tensors (16 bytes a value in a ``torch.save`` file). It reads
like the list it replaces: ``len``, iteration over ``(int, float)`` tuples, indexing, slicing,
``append``, ``pop`` and ``==`` with a list of tuples.

Examples:
    >>> record = Record([0, 1, 2], [0.1, 0.05, 0.025])
    >>> record
    Record([(0, 0.1), (1, 0.05), (2, 0.025)])
    >>> record == [(0, 0.1), (1, 0.05), (2, 0.025)]
    True
    >>> record[-1], record[:2]
    ((2, 0.025), Record([(0, 0.1), (1, 0.05)]))
    >>> import numpy as np
    >>> np.frombuffer(record.values)  # the values as an array, without a copy
    array([0.1  , 0.05 , 0.025])
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import torch

from .checkpoints.trust import trusted

_SHOWN = 10  # a longer record's repr shows its first and last three pairs


@trusted
class Record(Sequence[tuple[int, float]]):
    """``(step, value)`` pairs in two typed arrays, with the list operations records need.

    Args:
        steps: The steps, integers (a list, an array, an ``int64`` tensor, ...).
        values: The values, one per step, as floats.

    Attributes:
        steps: ``array('q')`` of the steps; ``np.frombuffer(record.steps, np.int64)`` views it.
        values: ``array('d')`` of the values; ``np.frombuffer(record.values)`` views it.

    Raises:
        ValueError: ``steps`` and ``values`` differ in length.

    Examples:
        >>> record = Record()
        >>> record.append((0, 0.5))
        >>> record.append((1, 0.25))
        >>> [(step, value) for step, value in record], len(record)
        ([(0, 0.5), (1, 0.25)], 2)
        >>> record.pop()
        (1, 0.25)
        >>> import pickle
        >>> pickle.loads(pickle.dumps(record)) == record
        True
    """

    __slots__ = ("steps", "values")

    def __init__(
        self,
        steps: Iterable[int] | torch.Tensor = (),
        values: Iterable[float] | torch.Tensor = (),
    ) -> None:
        self.steps = _as_array("q", steps)
        self.values = _as_array("d", values)
        if len(self.steps) != len(self.values):
            raise ValueError(
                f"Record: got {len(self.steps)} steps but {len(self.values)} values; give one "
                f"value per step."
            )

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, float]]) -> Record:
        """A record of ``pairs``, e.g. a list of ``(step, value)`` tuples.

        Examples:
            >>> Record.from_pairs([(0, 1.0), (5, 0.5)]).steps
            array('q', [0, 5])
        """
        record = cls()
        for pair in pairs:
            record.append(pair)
        return record

    def append(self, pair: tuple[int, float]) -> None:
        """Adds one ``(step, value)`` pair at the end."""
        try:
            step, value = pair
            step, value = operator.index(step), float(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Record.append takes one (step, value) pair with an int step and a number "
                f"value, got {pair!r} ({error}). Call record.append((step, value))."
            ) from None
        self.steps.append(step)
        self.values.append(value)

    def extend(self, pairs: Iterable[tuple[int, float]]) -> None:
        """Appends every ``(step, value)`` pair of ``pairs``."""
        for pair in pairs:
            self.append(pair)

    def pop(self, index: int = -1) -> tuple[int, float]:
        """Removes the pair at ``index`` (the last by default) and returns it."""
        return self.steps.pop(index), self.values.pop(index)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return zip(self.steps, self.values)

    def __reversed__(self) -> Iterator[tuple[int, float]]:
        return zip(reversed(self.steps), reversed(self.values))

    @overload
    def __getitem__(self, index: int) -> tuple[int, float]: ...
    @overload
    def __getitem__(self, index: slice) -> Record: ...
    def __getitem__(self, index: int | slice) -> tuple[int, float] | Record:
        if isinstance(index, slice):
            return _wrap(self.steps[index], self.values[index])
        return self.steps[index], self.values[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self.steps == other.steps and self.values == other.values
        if isinstance(other, (list, tuple)):
            return len(other) == len(self.steps) and all(map(operator.eq, self, other))
        return NotImplemented

    def __copy__(self) -> Record:
        return _wrap(self.steps[:], self.values[:])

    def __deepcopy__(self, memo: dict[int, Any]) -> Record:
        memo[id(self)] = copied = self.__copy__()
        return copied

    def __reduce__(self) -> tuple[type[Record], tuple[torch.Tensor, torch.Tensor]]:
        # Two tensors: 16 bytes a pair in a torch.save file, loadable with weights_only=True.
        return Record, (_tensor(self.steps, torch.int64), _tensor(self.values, torch.float64))

    def __repr__(self) -> str:
        if len(self) <= _SHOWN:
            return f"Record({list(self)!r})"
        head = ", ".join(map(repr, self[:3]))
        tail = ", ".join(map(repr, self[-3:]))
        return f"Record([{head}, ..., {tail}], len={len(self)})"


def record_in(records: dict[str, Any], name: str) -> Record:
    """``records[name]``, a new :class:`Record` if missing; a list of pairs becomes one.

    Examples:
        >>> records = {"LearningRate": [(0, 0.1)]}
        >>> record_in(records, "LearningRate"), record_in(records, "Momentum")
        (Record([(0, 0.1)]), Record([]))
        >>> sorted(records)
        ['LearningRate', 'Momentum']
    """
    record = records.get(name)
    if not isinstance(record, Record):
        record = records[name] = Record.from_pairs(record or ())
    return record


def _wrap(steps: array[int], values: array[float]) -> Record:
    """A record holding these very arrays (no copy)."""
    record = Record.__new__(Record)
    record.steps, record.values = steps, values
    return record


def _as_array(typecode: str, data: Any) -> array[Any]:
    if not isinstance(data, torch.Tensor):
        return array(typecode, data)
    if data.dim() != 1:
        raise ValueError(
            f"Record: steps and values must be 1-dimensional, got a tensor of shape "
            f"{tuple(data.shape)}. Pass tensor.flatten()."
        )
    dtype = torch.int64 if typecode == "q" else torch.float64
    out = array(typecode)
    out.frombytes(data.detach().to("cpu", dtype).contiguous().numpy().tobytes())
    return out


def _tensor(data: array[Any], dtype: torch.dtype) -> torch.Tensor:
    if not data:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(data, dtype=dtype).clone()  # a copy: the array stays resizable
