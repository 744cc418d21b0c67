"""A learner's optimizers: one ``torch.optim.Optimizer``, or several by name.

``Learner(model, data, optimizer, ...)`` takes one optimizer or a dict ``{name: optimizer}``.
``learner.optimizer`` is what was given; ``learner.optimizers`` is always a dict (``{"optimizer":
opt}`` for one). Checkpoints hold one optimizer's state as ``torch.optim`` gives it, and several
as a dict by name (:func:`optimizer_state`).

Examples:
    >>> import torch
    >>> w = torch.zeros(2, requires_grad=True)
    >>> sgd = torch.optim.SGD([w], lr=0.1)
    >>> list(as_dict(sgd)), list(as_dict({"generator": sgd}))
    (['optimizer'], ['generator'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .exceptions import CheckpointError, FluxTrainError

SINGLE = "optimizer"
"""The name of a learner's optimizer when it was given one, not a dict."""


def as_dict(optimizer: Any) -> dict[str, torch.optim.Optimizer]:
    """``{name: optimizer}`` of what a learner was given, checked.

    Raises:
        FluxTrainError: Not an optimizer or a non-empty dict of optimizers with string names.

    Examples:
        >>> as_dict("sgd")
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: Learner: optimizer must be a torch.optim.Optimizer ...
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        return {SINGLE: optimizer}
    if isinstance(optimizer, Mapping) and optimizer:
        for name, value in optimizer.items():
            if not isinstance(name, str) or not name:
                raise FluxTrainError(
                    f"Learner: optimizer names must be non-empty strings, got {name!r}."
                )
            if not isinstance(value, torch.optim.Optimizer):
                raise FluxTrainError(
                    f"Learner: optimizer {name!r} must be a torch.optim.Optimizer, got "
                    f"{type(value).__name__}."
                )
        return dict(optimizer)
    raise FluxTrainError(
        f"Learner: optimizer must be a torch.optim.Optimizer or a dict of them by name "
        f"({{'generator': opt_g, 'discriminator': opt_d}}), got {type(optimizer).__name__}. "
        f"Build one over model.parameters()."
    )


def optimizer_state(optimizer: Any) -> tuple[Any, Any]:
    """``(state dict, class name)`` of one optimizer, or dicts of them by name for several.

    Examples:
        >>> import torch
        >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> optimizer_state({"g": sgd})[1]
        {'g': 'SGD'}
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer.state_dict(), type(optimizer).__name__
    return (
        {name: opt.state_dict() for name, opt in optimizer.items()},
        {name: type(opt).__name__ for name, opt in optimizer.items()},
    )


def saved_by_name(optimizer: Any, saved: Any, kind: Any) -> list[tuple[str, Any, Any, Any]]:
    """``(name, optimizer, saved state, saved class)`` for each of the learner's optimizers.

    Raises:
        CheckpointError: The checkpoint holds other optimizers (names, or one versus several).

    Examples:
        >>> import torch
        >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> [entry[0] for entry in saved_by_name(sgd, sgd.state_dict(), "SGD")]
        ['optimizer']
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        if isinstance(saved, Mapping) and "param_groups" in saved:
            return [(SINGLE, optimizer, saved, kind)]
        names = list(saved) if isinstance(saved, Mapping) else saved
        raise CheckpointError(
            f"load_state_dict: the checkpoint holds the optimizers {names}, this learner one "
            f"optimizer. Build the learner with the same optimizers, by name, as the run that "
            f"saved it."
        )
    if not isinstance(saved, Mapping) or "param_groups" in saved or set(saved) != set(optimizer):
        names = "one optimizer" if "param_groups" in saved else f"the optimizers {list(saved)}"
        raise CheckpointError(
            f"load_state_dict: the checkpoint holds {names}, this learner the optimizers "
            f"{list(optimizer)}. Build the learner with the same optimizers, by name, as the run "
            f"that saved it."
        )
    kinds = kind if isinstance(kind, Mapping) else {}
    return [(name, opt, saved[name], kinds.get(name)) for name, opt in optimizer.items()]


def check_owned(optimizers: Mapping[str, torch.optim.Optimizer], model: Any, loss_fn: Any) -> None:
    """Raises if an optimizer updates none of the model's parameters (nor the loss's).

    Such an optimizer (built over another model, or over a copy) trains nothing; the fit would
    run and report losses without a word.

    Examples:
        >>> import torch
        >>> model, other = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
        >>> check_owned({"optimizer": torch.optim.SGD(other.parameters(), lr=0.1)}, model, None)
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: Learner: the optimizer updates 2 tensors, none ...
    """
    owned = {id(p) for p in model.parameters()}
    if isinstance(loss_fn, torch.nn.Module):
        owned.update(id(p) for p in loss_fn.parameters())
    for name, optimizer in optimizers.items():
        tensors = [p for group in optimizer.param_groups for p in group["params"]]
        if tensors and not any(id(p) in owned for p in tensors):
            which = "the optimizer" if name == SINGLE else f"the optimizer {name!r}"
            raise FluxTrainError(
                f"Learner: {which} updates {len(tensors)} tensors, none of them a parameter of "
                f"the model (or of loss_fn), so it would train nothing. Build it over "
                f"model.parameters() of the model you give the Learner."
            )
