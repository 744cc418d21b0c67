"""Which types a checkpoint may hold: loading never runs code a file brings.

Checkpoints load with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists,
tuples and dicts, plus the classes registered here. fluxtrain's own state holds nothing else
(its few record types register themselves with :func:`trusted`). A callback that keeps another
type in its ``state_dict()`` or in ``cbstate`` registers it with :func:`trusted` too, or the
user passes it to ``Checkpointer(..., trusted_types=[...])``/``load_checkpoint(path,
trusted_types=[...])``: trust a class only if loading any instance of it is harmless (a plain
dataclass is; a class whose ``__setstate__`` or constructor acts on the world is not).

Examples:
    >>> import dataclasses
    >>> @trusted
    ... @dataclasses.dataclass
    ... class Counts:
    ...     seen: int = 0
    >>> Counts in trusted_types()
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T", bound=type)

_TRUSTED: list[type] = []


def trusted(cls: T) -> T:
    """Registers ``cls`` as a type checkpoints may hold (a class decorator)."""
    if cls not in _TRUSTED:
        _TRUSTED.append(cls)
    return cls


def trusted_types(extra: Iterable[type] = ()) -> list[Any]:
    """The registered types, and ``extra``: what ``torch.load(weights_only=True)`` may build."""
    return [*_TRUSTED, *extra]
