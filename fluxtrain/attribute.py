"""Hyperparameters outside the optimizer: any attribute of the learner's state, dropout rates.

:class:`Attribute` sets the attribute at a dotted path from the learner
(``Attribute("loss_fn.kl_weight")``); :class:`DropoutRate` sets ``p`` of every dropout module
of the model. Both find what they set at ``FitBegin``, with an error that names what is
missing, and set it with no lookups per step.

Examples:
    >>> import torch
    >>> from fluxtrain import Schedule, Scheduler
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Scheduler({DropoutRate: Schedule([0, 1], [0.0, 0.4])}))
    >>> learner.model = torch.nn.Sequential(torch.nn.Dropout(), torch.nn.Linear(1, 1))
    >>> learner.optimizer = torch.optim.SGD(learner.model.parameters(), lr=0.01)
    >>> _ = learner.fit(1)  # 4 steps: p = 0, 0.1, 0.2, 0.3
    >>> round(learner.model[0].p, 6)
    0.3
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.nn.modules.dropout import _DropoutNd

from .access import ROOTS, Access, Write, check_stateaccess
from .distributed import unwrap
from .exceptions import HyperParameterError
from .hyperparameters import HyperParameter


def _resolve(learner: Any, parts: list[str], owner: str, path: str) -> Any:
    """The object at ``parts`` from ``learner``, or an error naming the first missing part."""
    target = learner
    for depth, part in enumerate(parts):
        try:
            target = getattr(target, part)
        except AttributeError:
            found = ".".join(parts[:depth]) or "the learner"
            raise HyperParameterError(
                f"{owner}: {found} ({type(target).__name__}) has no attribute {part!r}, so "
                f"{path!r} cannot be set. Check the path: it starts at the learner, e.g. "
                f"'loss_fn.kl_weight' or 'model.head.dropout.p'."
            ) from None
    return target


class Attribute(HyperParameter):
    """The attribute at a dotted ``path`` from the learner, e.g. a weight of the loss.

    The path's first part is one of the learner's fields (``model``, ``loss_fn``, ``data``,
    ...); its ``stateaccess`` is derived from it (``{"loss_fn": Write}``). At ``FitBegin`` the
    path is followed to the object that holds the attribute, which must exist and hold a
    number or a tensor (filled in place, so a registered buffer stays one); a missing part is
    an error that names it. The holder is looked up once per fit: an attribute of an object
    that is replaced during the fit is not followed. Data-side attributes (of a dataset read by
    ``DataLoader`` workers) do not reach the worker processes.

    Args:
        path: Dotted path from the learner, e.g. ``"loss_fn.kl_weight"``.

    Raises:
        HyperParameterError: For a path that does not start at one of the learner's fields.

    Examples:
        >>> Attribute("loss_fn.kl_weight").name, Attribute("loss_fn.kl_weight").stateaccess
        ('Attribute[loss_fn.kl_weight]', {'loss_fn': <Access.Write: 2>})
    """

    def __init__(self, path: str) -> None:
        parts = path.split(".") if isinstance(path, str) else []
        if len(parts) < 2 or not all(part.isidentifier() or part.isdigit() for part in parts):
            raise HyperParameterError(
                f"Attribute: path must be a dotted path from the learner to an attribute, "
                f"e.g. 'loss_fn.kl_weight' or 'model.head.dropout.p', got {path!r}."
            )
        if parts[0] not in ROOTS or parts[0] == "batch":
            raise HyperParameterError(
                f"Attribute: {path!r} must start at one of the learner's fields "
                f"({', '.join(r for r in ROOTS if r != 'batch')}), not {parts[0]!r}."
            )
        self.path = path
        self._parts = parts
        root = ".".join(parts[:2]) if parts[0] == "cbstate" else parts[0]
        self.stateaccess: Mapping[str, Access] = check_stateaccess(  # type: ignore[misc]
            "Attribute", {root: Write}
        )

    @property
    def name(self) -> str:
        return f"Attribute[{self.path}]"

    def _holder(self, learner: Any) -> tuple[Any, str]:
        *parents, attribute = self._parts
        holder = _resolve(learner, parents, "Attribute", self.path)
        if not hasattr(holder, attribute):
            raise HyperParameterError(
                f"Attribute: {'.'.join(parents)} ({type(holder).__name__}) has no attribute "
                f"{attribute!r}, so {self.path!r} cannot be set. Give the object that "
                f"attribute (e.g. self.{attribute} = 1.0 in __init__) or fix the path."
            )
        current = getattr(holder, attribute)
        number = isinstance(current, (int, float)) and not isinstance(current, bool)
        if not (number or isinstance(current, torch.Tensor)):
            raise HyperParameterError(
                f"Attribute: {self.path} holds {type(current).__name__} {current!r}; a "
                f"schedule sets a number (or fills a tensor). Point the path at a number."
            )
        return holder, attribute

    def check(self, learner: Any) -> None:
        self._holder(learner)

    def sethyperparameter(self, learner: Any, value: float) -> None:
        self.setter(learner)(value)

    def setter(self, learner: Any) -> Callable[[float], None]:
        holder, attribute = self._holder(learner)
        current = getattr(holder, attribute)
        if isinstance(current, torch.Tensor):

            def fill(value: float) -> None:
                current.fill_(value)

            return fill
        return functools.partial(setattr, holder, attribute)

    def __repr__(self) -> str:
        return f"Attribute({self.path!r})"


class DropoutRate(HyperParameter):
    """``p`` of every dropout module (``torch.nn.Dropout``, ``Dropout1d/2d/3d``,
    ``AlphaDropout``, ...) of the model, or of the submodule at ``module``.

    Dropout done with ``torch.nn.functional.dropout`` and a rate kept elsewhere (some Hugging
    Face attention layers read it from their config) is not reached: set that rate with
    :class:`Attribute` instead.

    Args:
        module: Dotted path of a submodule of the model (``"encoder"``); ``None`` for the whole
            model.

    Raises:
        HyperParameterError: At ``FitBegin``, when there is no such submodule or it holds no
            dropout module.

    Examples:
        >>> DropoutRate().name, DropoutRate("encoder.layers").name
        ('DropoutRate', 'DropoutRate[module=encoder.layers]')
    """

    stateaccess = {"model": Write}
    domain = (0.0, 1.0)

    def __init__(self, module: str | None = None) -> None:
        if module is not None and not (
            isinstance(module, str)
            and all(p.isidentifier() or p.isdigit() for p in module.split("."))
        ):
            raise HyperParameterError(
                f"DropoutRate: module must be a dotted path of a submodule of the model "
                f"('encoder.layers') or None, got {module!r}."
            )
        self.module = module

    @property
    def name(self) -> str:
        return "DropoutRate" if self.module is None else f"DropoutRate[module={self.module}]"

    def modules(self, learner: Any) -> list[_DropoutNd]:
        """The dropout modules this sets."""
        root = unwrap(learner.model)
        if self.module is not None:
            try:
                root = root.get_submodule(self.module)
            except AttributeError as error:
                raise HyperParameterError(
                    f"DropoutRate: the model has no submodule {self.module!r} ({error}). "
                    f"Give the dotted name of one of model.named_modules()."
                ) from None
        found = [m for m in root.modules() if isinstance(m, _DropoutNd)]
        if not found:
            where = "the model" if self.module is None else f"model.{self.module}"
            raise HyperParameterError(
                f"DropoutRate: {where} ({type(root).__name__}) holds no dropout module "
                f"(torch.nn.Dropout and the like). Schedule a rate kept elsewhere with "
                f"Attribute('model.<path>')."
            )
        return found

    def check(self, learner: Any) -> None:
        self.modules(learner)

    def sethyperparameter(self, learner: Any, value: float) -> None:
        self.setter(learner)(value)

    def setter(self, learner: Any) -> Callable[[float], None]:
        modules = self.modules(learner)

        def write(value: float) -> None:
            for module in modules:
                module.p = value

        return write

    def __repr__(self) -> str:
        return "DropoutRate()" if self.module is None else f"DropoutRate({self.module!r})"
