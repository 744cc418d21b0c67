"""Declared state access: what a callback may read and write on the learner.

A callback's ``stateaccess`` maps dotted paths into the learner to :data:`Read` or :data:`Write`.
The paths are checked when the class is defined, so a typo fails at import. During a fit each
hook receives a :class:`ProtectedLearner` built once per callback: reading or writing a path that
was not declared raises :class:`~fluxtrain.StateAccessError` naming the callback, the path and
the fix.

Paths: ``model``, ``optimizer`` (every optimizer: ``learner.optimizer`` and
``learner.optimizers``), ``loss_fn``, ``data``, ``callbacks``, ``fitstate``, ``batch`` (or one of
``batch.inputs``, ``batch.targets``, ``batch.outputs``, ``batch.loss``, ``batch.updating``,
``batch.updated``) and ``cbstate`` (or ``cbstate.<name>`` for one entry, e.g.
``cbstate.history``). ``Write`` implies ``Read``.

Examples:
    >>> check_stateaccess("Mine", {"batch.loss": Read, "cbstate.history": Write})
    {'batch.loss': <Access.Read: 1>, 'cbstate.history': <Access.Write: 2>}
    >>> check_stateaccess("Mine", {"bacth.loss": Read})
    Traceback (most recent call last):
    ...
    fluxtrain.exceptions.StateAccessError: Mine.stateaccess: unknown path 'bacth.loss'. ...
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Mapping
from typing import Any

from .exceptions import StateAccessError


class Access(enum.Enum):
    """How a callback uses a piece of learner state."""

    Read = 1
    Write = 2


Read = Access.Read
Write = Access.Write

ROOTS = ("model", "optimizer", "loss_fn", "data", "callbacks", "fitstate", "batch", "cbstate")
BATCH_FIELDS = ("inputs", "targets", "outputs", "loss", "updating", "updated")


def check_stateaccess(owner: str, stateaccess: Mapping[str, Access]) -> dict[str, Access]:
    """Validates a ``stateaccess`` declaration and returns it as a plain dict.

    Args:
        owner: The name of the declaring class, for the error message.
        stateaccess: Dotted paths mapped to :data:`Read` or :data:`Write`.

    Returns:
        The declaration as a ``dict``.

    Raises:
        StateAccessError: For an unknown path or a value other than ``Read``/``Write``.

    Examples:
        >>> check_stateaccess("Mine", {"model": Write})
        {'model': <Access.Write: 2>}
    """
    if not isinstance(stateaccess, Mapping):
        raise StateAccessError(
            f"{owner}.stateaccess must be a dict of dotted paths to Read or Write, "
            f"got {type(stateaccess).__name__}: {stateaccess!r}."
        )
    for path, access in stateaccess.items():
        if not isinstance(access, Access):
            raise StateAccessError(
                f"{owner}.stateaccess[{path!r}] must be Read or Write (from fluxtrain), "
                f"got {access!r}."
            )
        if not _known_path(path):
            raise StateAccessError(
                f"{owner}.stateaccess: unknown path {path!r}. Paths start with one of "
                f"{', '.join(ROOTS)}; under 'batch' come {', '.join(BATCH_FIELDS)}; under "
                f"'cbstate' any entry name, e.g. 'cbstate.history'."
            )
    return dict(stateaccess)


def _known_path(path: object) -> bool:
    if not isinstance(path, str):
        return False
    parts = path.split(".")
    if parts[0] not in ROOTS:
        return False
    if len(parts) == 1:
        return True
    if len(parts) != 2:
        return False
    if parts[0] == "batch":
        return parts[1] in BATCH_FIELDS
    if parts[0] == "cbstate":
        return parts[1].isidentifier()
    return False


def merge_stateaccess(*declarations: Mapping[str, Access]) -> dict[str, Access]:
    """Merges declarations; where two name the same path, ``Write`` wins.

    Examples:
        >>> merge_stateaccess({"model": Read}, {"model": Write, "batch": Read})
        {'model': <Access.Write: 2>, 'batch': <Access.Read: 1>}
    """
    merged: dict[str, Access] = {}
    for declaration in declarations:
        for path, access in declaration.items():
            if merged.get(path) is not Write:
                merged[path] = access
    return merged


def overlaps(a: str, b: str) -> bool:
    """Whether two paths name overlapping state (equal, or one contains the other).

    Examples:
        >>> overlaps("batch", "batch.loss"), overlaps("batch.loss", "batch.outputs")
        (True, False)
    """
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


class ProtectedLearner:
    """A view of a learner (or of one of its parts) that allows only declared access.

    Built once per callback when the learner is built, so a hook call allocates nothing. The
    views of partly declared parts (``batch`` for ``"batch.loss"``) are plain attributes of the
    view, and each declared name is a property of the view's class that reads the learner's
    attribute without running Python code: a read costs about as much as on the learner itself.

    Examples:
        >>> from types import SimpleNamespace
        >>> learner = SimpleNamespace(model="net", optimizer="sgd")
        >>> view = ProtectedLearner(learner, "Mine", {"model": Read})
        >>> view.model
        'net'
        >>> try:
        ...     view.optimizer
        ... except StateAccessError as error:
        ...     print(error)  # doctest: +NORMALIZE_WHITESPACE
        Mine reads learner.optimizer, which Mine.stateaccess does not declare.
        Add "optimizer": Read to Mine.stateaccess.
    """

    def __init__(
        self, target: Any, owner: str, stateaccess: Mapping[str, Access], prefix: str = ""
    ) -> None:
        reads: set[str] = set()
        writes: set[str] = set()
        nested: dict[str, dict[str, Access]] = {}
        for path, access in stateaccess.items():
            head, _, rest = path.partition(".")
            if rest:
                nested.setdefault(head, {})[rest] = access
                continue
            heads = ("optimizer", "optimizers") if head == "optimizer" else (head,)
            reads.update(heads)
            if access is Write:
                writes.update(heads)
        children = {
            head: ProtectedLearner(getattr(target, head), owner, sub, f"{prefix}{head}.")
            for head, sub in nested.items()
            if head not in reads
        }
        object.__setattr__(self, "__class__", _view_class(frozenset(reads)))
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_reads", frozenset(reads))
        object.__setattr__(self, "_writes", frozenset(writes))
        object.__setattr__(self, "_children", children)
        for head, child in children.items():  # found without calling __getattr__
            object.__setattr__(self, head, child)

    def __getattr__(self, name: str) -> Any:  # only when no property answered
        if name in self._reads:  # declared, but the learner has no such attribute (yet)
            return getattr(self._target, name)
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._error(name, Read)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._writes:
            setattr(self._target, name, value)
            return
        raise self._error(name, Write)

    def __contains__(self, name: str) -> bool:
        return (name in self._reads or name in self._children) and name in self._target

    def __dir__(self) -> list[str]:
        return sorted(self._reads | set(self._children))

    def _error(self, name: str, access: Access) -> StateAccessError:
        declared = "optimizer" if name == "optimizers" and not self._prefix else name
        path = self._prefix + declared
        verb = "reads" if access is Read else "writes"
        return StateAccessError(
            f"{self._owner} {verb} learner.{path}, which {self._owner}.stateaccess does not "
            f'declare. Add "{path}": {access.name} to {self._owner}.stateaccess.'
        )


_VIEW_CLASSES: dict[frozenset[str], type[ProtectedLearner]] = {}


def _view_class(reads: frozenset[str]) -> type[ProtectedLearner]:
    """The subclass of :class:`ProtectedLearner` with a read-only property per declared name.

    Each property's getter is an ``operator.attrgetter`` (C code), so a declared read makes no
    Python call. Classes are shared between views that declare the same names.
    """
    cls = _VIEW_CLASSES.get(reads)
    if cls is None:
        getters = {name: property(operator.attrgetter(f"_target.{name}")) for name in reads}
        cls = _VIEW_CLASSES[reads] = type("ProtectedLearner", (ProtectedLearner,), getters)
    return cls
