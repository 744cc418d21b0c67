"""Ordering callbacks: ``runafter``, writers before readers, and conflict resolution.

The order is computed once, when a learner is built. Edges come from ``runafter`` and from
declared state access (a callback that writes a path runs before one that reads an overlapping
path). Two callbacks writing overlapping paths must say how to order them through
``resolveconflict``. Among callbacks with no edge between them the given order is kept.

Examples:
    >>> from fluxtrain import Callback, Read, Write
    >>> class Producer(Callback):
    ...     stateaccess = {"cbstate.value": Write}
    >>> class Consumer(Callback):
    ...     stateaccess = {"cbstate.value": Read}
    >>> [cb.name for cb in order_callbacks([Consumer(), Producer()])]
    ['Producer', 'Consumer']
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from .access import Write, overlaps
from .exceptions import CallbackConflictError

if TYPE_CHECKING:
    from .callback import Callback


class RunFirst:
    """Resolution: the given callback runs first.

    Examples:
        >>> RunFirst("a").callback
        'a'
    """

    def __init__(self, callback: Callback) -> None:
        self.callback = callback


class NoConflict:
    """Resolution: the two writers do not interfere; no ordering between them."""


class Unresolvable:
    """Resolution: the two writers cannot run together (the default)."""


Resolution = Union[RunFirst, NoConflict, Unresolvable]  # noqa: UP007 (a runtime alias)


def order_callbacks(callbacks: Sequence[Callback]) -> list[Callback]:
    """Returns the callbacks in a valid run order (stable for independent callbacks).

    Raises:
        CallbackConflictError: Two writers of overlapping paths without a resolution, or a cycle.
    """
    n = len(callbacks)
    after: list[set[int]] = [set() for _ in range(n)]  # after[j]: nodes that must precede j
    accesses = [cb.accesses() for cb in callbacks]
    for i in range(n):
        for j in range(i + 1, n):
            for a, b in _edges(callbacks, accesses, i, j):
                after[b].add(a)
    return [callbacks[i] for i in _toposort(callbacks, after)]


def _edges(callbacks: Sequence[Callback], accesses: list, i: int, j: int) -> list[tuple[int, int]]:
    ci, cj = callbacks[i], callbacks[j]
    edges = []
    if any(_is(ci, t) for t in cj.runafter):
        edges.append((i, j))
    if any(_is(cj, t) for t in ci.runafter):
        edges.append((j, i))
    writes_i = [p for p, a in accesses[i].items() if a is Write]
    writes_j = [p for p, a in accesses[j].items() if a is Write]
    conflicts = [(p, q) for p in writes_i for q in writes_j if overlaps(p, q)]
    if conflicts:
        first = _resolve(ci, cj, conflicts)
        if first is ci:
            edges.append((i, j))
        elif first is cj:
            edges.append((j, i))
        return edges
    if any(overlaps(p, q) for p in writes_i for q in accesses[j]):
        edges.append((i, j))
    if any(overlaps(p, q) for p in writes_j for q in accesses[i]):
        edges.append((j, i))
    return edges


def _is(callback: Callback, kind: type) -> bool:
    """Whether ``callback`` (or the callback it wraps, for ``throttle``) is a ``kind``."""
    return isinstance(callback, kind) or isinstance(getattr(callback, "wrapped", None), kind)


def _resolve(a: Callback, b: Callback, conflicts: list[tuple[str, str]]) -> Callback | None:
    for resolution in (a.resolveconflict(b), b.resolveconflict(a)):
        if isinstance(resolution, NoConflict):
            return None
        if isinstance(resolution, RunFirst):
            if resolution.callback is not a and resolution.callback is not b:
                raise CallbackConflictError(
                    f"resolveconflict between {a.name} and {b.name} returned RunFirst of "
                    f"{resolution.callback!r}, which is neither of them."
                )
            return resolution.callback
    paths = ", ".join(f"{p!r}/{q!r}" if p != q else repr(p) for p, q in conflicts)
    raise CallbackConflictError(
        f"{a.name} and {b.name} both write {paths}, and neither says how to order them. "
        f"Implement resolveconflict(self, other) on one of them, returning RunFirst(self), "
        f"RunFirst(other) or NoConflict(), or drop one of the callbacks."
    )


def _toposort(callbacks: Sequence[Callback], after: list[set[int]]) -> list[int]:
    n = len(callbacks)
    indegree = [len(a) for a in after]
    followers: list[list[int]] = [[] for _ in range(n)]
    for j, preds in enumerate(after):
        for i in preds:
            followers[i].append(j)
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in followers[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, j)
    if len(order) < n:
        stuck = [i for i in range(n) if indegree[i] > 0]
        cycle = _find_cycle(after, stuck)
        names = " -> ".join(callbacks[i].name for i in cycle)
        raise CallbackConflictError(
            f"Callbacks cannot be ordered, they form a cycle: {names}. Each must run after the "
            f"one before it (through runafter or because it reads what the other writes); "
            f"remove one runafter entry or one declared access to break the cycle."
        )
    return order


def _find_cycle(after: list[set[int]], stuck: list[int]) -> list[int]:
    stuck_set = set(stuck)
    node = stuck[0]
    path: list[int] = []
    seen: dict[int, int] = {}
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(p for p in after[node] if p in stuck_set)
    cycle = path[seen[node] :]
    cycle.reverse()
    start = cycle.index(min(cycle))
    cycle = cycle[start:] + cycle[:start]
    return cycle + [cycle[0]]
