"""Does this state fit this learner? Checks run before a state is loaded, changing nothing.

:func:`check_state` compares a :meth:`Learner.state_dict <fluxtrain.Learner.state_dict>` with
a learner and its data: the format, the data's random generators, the model's keys and shapes,
the optimizer's class, parameter groups and state shapes, and the callbacks (names and order).
The first mismatch raises a :class:`~fluxtrain.CheckpointError` that names what differs and
how to build a learner that fits.

Examples:
    >>> import torch
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner()
    >>> check_state(learner, learner.state_dict(), learner.data)  # fits: no error
    >>> learner.model = torch.nn.Linear(2, 1, bias=False)
    >>> check_state(learner, tiny_learner().state_dict(), learner.data)
    Traceback (most recent call last):
    ...
    fluxtrain.exceptions.CheckpointError: load_state_dict: the checkpoint's model does not fit ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ..distributed import unwrap
from ..exceptions import CheckpointError
from ..optimizers import SINGLE, saved_by_name
from .learner_state import FORMAT, callback_keys
from .rng import check_generators

if TYPE_CHECKING:
    from ..learner import Learner


def check_format(state: Any) -> None:
    """Raises unless ``state`` is a learner state dict of the format this version reads.

    Examples:
        >>> check_format({"format": "fluxtrain.learner/1"})
        >>> check_format({"weight": 1.0})
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.CheckpointError: Expected a fluxtrain learner state ...
    """
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        got = state.get("format") if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointError(
            f"Expected a fluxtrain learner state (format {FORMAT!r}), got {got!r}. Pass what "
            f"learner.state_dict() returned, or a file the Checkpointer wrote."
        )


def check_state(learner: Learner, state: Mapping[str, Any], data: Any) -> None:
    """Raises a :class:`CheckpointError` naming what does not fit ``learner``; changes nothing."""
    check_format(state)
    for part, key, what in zip(data, ("train", "valid"), ("training", "validation")):
        if part is not None:
            check_generators(part, state["data_rng"][key], what)
    if "sharded" not in state:  # shards are checked by torch.distributed.checkpoint's load
        _check_model(learner.model, state["model"])
        for name, optimizer, saved, kind in saved_by_name(
            learner.optimizer, state["optimizer"], state.get("optimizer_class")
        ):
            _check_optimizer(name, optimizer, saved, kind)
    saved, ours = list(state["callbacks"]), callback_keys(learner)
    if saved != ours:
        missing = [k for k in saved if k not in ours]
        extra = [k for k in ours if k not in saved]
        raise CheckpointError(
            f"load_state_dict: the checkpoint was saved with the callbacks {saved}, this learner "
            f"has {ours} (not in this learner: {missing or 'none'}; not in the checkpoint: "
            f"{extra or 'none'}). Build the learner with the same callbacks, in the same order "
            f"and with the same usedefaultcallbacks, as the run that saved it."
        )


def _check_model(model: torch.nn.Module, saved: Mapping[str, Any]) -> None:
    ours = unwrap(model).state_dict()
    missing = [k for k in ours if k not in saved]
    unexpected = [k for k in saved if k not in ours]
    shapes = [
        f"{k} (checkpoint {tuple(saved[k].shape)}, model {tuple(v.shape)})"
        for k, v in ours.items()
        if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        hint = "Build the same architecture as the run that saved it."
        if unexpected and all(k.startswith("module.") for k in unexpected):
            hint = (
                "The checkpoint's keys start with 'module.': it holds the state of a "
                "DistributedDataParallel wrapper. Strip the prefix with torch.nn.modules.utils."
                "consume_prefix_in_state_dict_if_present(state['model'], 'module.')."
            )
        raise CheckpointError(
            f"load_state_dict: the checkpoint's model does not fit this model. Missing keys: "
            f"{missing or 'none'}; unexpected keys: {unexpected or 'none'}; shape mismatches: "
            f"{shapes or 'none'}. {hint}"
        )


def _check_optimizer(
    name: str, optimizer: torch.optim.Optimizer, saved: Mapping[str, Any], kind: Any
) -> None:
    which = "optimizer" if name == SINGLE else f"optimizer {name!r}"
    if kind is not None and kind != type(optimizer).__name__:
        raise CheckpointError(
            f"load_state_dict: the checkpoint's {which} is a {kind}, this one a "
            f"{type(optimizer).__name__}. Build the same optimizer as the run that saved it."
        )
    ours = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g["params"]) for g in saved["param_groups"]]
    if ours != theirs:
        raise CheckpointError(
            f"load_state_dict: the checkpoint's {which} has param groups of {theirs} "
            f"parameters, this one of {ours}. Build the optimizer over the same parameter groups "
            f"as the run that saved it."
        )
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ids = [i for g in saved["param_groups"] for i in g["params"]]
    for param, index in zip(params, ids):
        for name, value in saved["state"].get(index, {}).items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                raise CheckpointError(
                    f"load_state_dict: the optimizer state {name!r} of parameter {index} has "
                    f"shape {tuple(value.shape)}, the parameter {tuple(param.shape)}. Build the "
                    f"optimizer over the parameters in the same order as the run that saved it."
                )
