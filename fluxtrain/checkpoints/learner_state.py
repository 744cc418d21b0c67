"""What a learner saves to resume exactly (its state dict), and which of it is each rank's own.

:meth:`Learner.state_dict <fluxtrain.Learner.state_dict>` is built here: the model, the
optimizer, the fit counters with the position in the fit, ``cbstate``, every callback's own
state, the random states (Python, NumPy, torch CPU and, once initialized, CUDA) and the states
of the training and validation data's random generators.

Under ``torch.distributed`` the model and the optimizer are the same on every rank, but the
random states, ``cbstate`` and the callbacks' states (a metric's sums so far) are each rank's
own (``RANK_KEYS``). The :class:`~fluxtrain.Checkpointer` gathers them from every rank
(:func:`rank_states`) into the checkpoint's ``"ranks"`` list; loading, each rank takes its own
entry (:func:`for_this_rank`), and a single process, or a run of another size, takes rank 0's.
Checking a state against a learner is :mod:`fluxtrain.checkpoints.checks`; loading it back and
continuing the fit is :mod:`fluxtrain.checkpoints.resume`.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> state = learner_state(tiny_learner())
    >>> state["format"], sorted(k for k in state if k in RANK_KEYS)
    ('fluxtrain.learner/1', ['callbacks', 'cbstate', 'data_rng', 'epoch_rng', 'inner_rng', 'rng'])
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ..distributed import all_gather_object, rank, unwrap, world_size
from ..optimizers import optimizer_state
from .rng import generator_states, rng_state

if TYPE_CHECKING:
    from ..learner import Learner

FORMAT = "fluxtrain.learner/1"


def callback_keys(learner: Learner) -> list[str]:
    """The keys callback states are saved under: ``"<position>:<name>"``."""
    return [f"{i}:{cb.name}" for i, cb in enumerate(learner.callbacks)]


def learner_state(learner: Learner) -> dict[str, Any]:
    """Everything :meth:`Learner.load_state_dict` needs; see :meth:`Learner.state_dict`.

    The model's state dict is that of the user's module, also while a distributed fit has it
    wrapped in ``DistributedDataParallel`` (no ``"module."`` prefix), so the state loads into
    a single-process learner too.
    """
    optimizer, optimizer_class = optimizer_state(learner.optimizer)
    return {
        "format": FORMAT,
        "model": unwrap(learner.model).state_dict(),
        "optimizer": optimizer,
        "optimizer_class": optimizer_class,
        "fitstate": dataclasses.asdict(learner.fitstate),
        **rank_state(learner),
    }


RANK_KEYS = ("cbstate", "callbacks", "rng", "data_rng", "epoch_rng", "inner_rng")
"""The entries of a learner state that are each rank's own under ``torch.distributed``."""


def rank_state(learner: Learner) -> dict[str, Any]:
    """A copy of the entries of :func:`learner_state` that differ between ranks (``RANK_KEYS``).

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> sorted(rank_state(tiny_learner()))
        ['callbacks', 'cbstate', 'data_rng', 'epoch_rng', 'inner_rng', 'rng']
    """
    train, valid = learner._fit_data
    callbacks = {k: cb.state_dict() for k, cb in zip(callback_keys(learner), learner.callbacks)}
    return copy.deepcopy(
        {
            "cbstate": dict(vars(learner.cbstate)),
            "callbacks": callbacks,
            "rng": rng_state(),
            "data_rng": {"train": generator_states(train), "valid": generator_states(valid)},
            "epoch_rng": learner._epoch_rng,
            "inner_rng": learner._inner_rng,
        }
    )


def rank_states(learner: Learner) -> list[dict[str, Any]]:
    """Every rank's :func:`rank_state`, indexed by rank, with tensors on the CPU.

    A collective under ``torch.distributed``: every rank must call it at the same point.
    Without a process group, a list of this process's one state.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> len(rank_states(tiny_learner()))
        1
    """
    return all_gather_object(_to_cpu(rank_state(learner)))


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return type(value)((k, _to_cpu(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_to_cpu(v) for v in value)
    return value


def for_this_rank(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` with this rank's own entries of its ``"ranks"`` list, if it has one.

    A checkpoint written by a run of ``N`` processes holds ``N`` entries; a run of another
    size (a single process, say) takes the top-level ones, which are rank 0's.

    Examples:
        >>> state = {"rng": "rank 0's", "ranks": [{"rng": "rank 0's"}, {"rng": "rank 1's"}]}
        >>> for_this_rank(state)["rng"]  # a single process
        "rank 0's"
    """
    ranks = state.get("ranks")
    if not ranks or len(ranks) != world_size() or len(ranks) == 1:
        return state
    return {**state, **ranks[rank()]}
