"""Putting a learner back exactly as it was before a fit: what :func:`~fluxtrain.lr_find` uses.

:class:`Untouched` remembers everything a fit changes and :meth:`~Untouched.restore` puts it
back exactly:

- the learner's attributes (``callbacks`` and their per-event dispatch included) are restored
  as the same objects; ``cbstate``, ``batch`` and ``fitstate`` are replaced during the sweep by
  scratch copies, so the originals are never written;
- the callbacks that run in the sweep (:func:`~fluxtrain.lr_finder.sweep.runs_in_sweep`) are deep
  copies, so the originals keep their state; one that cannot be copied runs itself, and its
  ``state_dict()`` is put back after;
- parameters, buffers and gradients are copied back in place (the same tensors, also after a
  ``ToDevice`` moved them), train/eval modes are reset per module;
- every optimizer's ``state`` and param groups are restored in place (tensor-valued entries
  such as a fused optimizer's ``lr`` are filled in place);
- the Python, NumPy, torch CPU and CUDA random states (CUDA's as it was, or, when it had
  not started, seeded with ``torch.initial_seed()`` as it would start), and the
  ``torch.Generator`` of a ``DataLoader`` (``generator``, ``sampler.generator``), are set back.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner()
    >>> untouched = Untouched(learner, learner.data.train)
    >>> _ = learner.fit(2)
    >>> learner.model.weight.item() == 0.0
    False
    >>> untouched.restore()
    >>> learner.model.weight.item()
    0.0
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..callback import Callback
from ..state import Batch, CallbackState

if TYPE_CHECKING:
    from ..learner import Learner


_FAILED = object()


def _try_deepcopy(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of ``value`` sharing ``memo``, or ``_FAILED`` when it cannot be copied."""
    trial = dict(memo)
    try:
        result = copy.deepcopy(value, trial)
    except Exception:  # file handles, locks, non-leaf tensors: anything may refuse to copy
        return _FAILED
    memo.update(trial)
    return result


class Untouched:
    """Remembers what a fit of ``learner`` on ``data`` changes, to put it back with :meth:`restore`.

    Args:
        learner: The learner whose state is kept.
        data: The data the sweep iterates (its ``DataLoader`` generators are kept).
    """

    def __init__(self, learner: Learner, data: Iterable[Any]) -> None:
        self.learner = learner
        self.data = data
        self.attributes = dict(vars(learner))
        model = learner.model
        self.parameters = {
            name: (p.detach().clone(), p.grad, None if p.grad is None else p.grad.clone())
            for name, p in model.named_parameters(remove_duplicate=False)
        }
        self.buffers = {
            name: b.detach().clone() for name, b in model.named_buffers(remove_duplicate=False)
        }
        self.modes = [(module, module.training) for module in model.modules()]
        self.optimizers = [
            (optimizer, *_optimizer_snapshot(optimizer))
            for optimizer in learner.optimizers.values()
        ]
        self.rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        self.cuda_rng = torch.cuda.get_rng_state_all() if cuda else None
        # CUDA not started yet: it will be seeded with torch.initial_seed() when it starts
        self.cuda_seed = torch.initial_seed() if torch.cuda.is_available() and not cuda else None
        self.seeded = False
        self.generators = [(g, g.get_state()) for g in _data_generators(data)]
        self.fallbacks: list[tuple[Callback, dict[str, Any]]] = []

    def seed(self, seed: int) -> None:
        """Seeds Python's ``random``, NumPy, torch (CPU and CUDA) and the data's generators."""
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        for generator, _ in self.generators:
            generator.manual_seed(seed)
        self.seeded = True

    def sweep_callbacks(self, keep: Callable[[Callback], bool]) -> list[Callback]:
        """Swaps in scratch ``cbstate``, ``batch`` and ``fitstate``; copies the kept callbacks.

        References between them are kept: a copied callback that holds ``learner.cbstate``
        holds the scratch copy; one that holds the model, the optimizer, the data or a
        callback left out of the sweep holds the original.
        """
        learner = self.learner
        kept = [cb for cb in learner.callbacks if keep(cb)]
        model = learner.model
        shared = [learner, model, *learner.optimizers.values(), learner.loss_fn, learner.data]
        shared.append(self.data)
        shared += [*learner.data, *model.modules(), *model.parameters(), *model.buffers()]
        shared += [cb for cb in learner.callbacks if not any(cb is k for k in kept)]
        memo: dict[int, Any] = {id(obj): obj for obj in shared if obj is not None}
        cbstate = CallbackState()
        memo[id(learner.batch)] = Batch()
        memo[id(learner.cbstate)] = cbstate
        for name, value in vars(learner.cbstate).items():
            copied = _try_deepcopy(value, memo)
            vars(cbstate)[name] = value if copied is _FAILED else copied
        fitstate = _try_deepcopy(learner.fitstate, memo)
        learner.fitstate = copy.copy(learner.fitstate) if fitstate is _FAILED else fitstate
        learner.cbstate, learner.batch = cbstate, memo[id(learner.batch)]
        callbacks = []
        for cb in kept:
            copied = _try_deepcopy(cb, memo)
            if copied is _FAILED:
                self.fallbacks.append((cb, copy.deepcopy(cb.state_dict())))
                copied = cb
            callbacks.append(copied)
        return callbacks

    def restore(self) -> None:
        """Puts everything back as it was when this object was built."""
        learner = self.learner
        _restore_attributes(learner, self.attributes)
        model = learner.model
        with torch.no_grad():
            for name, p in model.named_parameters(remove_duplicate=False):
                if name in self.parameters:
                    value, grad, grad_value = self.parameters[name]
                    p.copy_(value)
                    if grad is not None and grad_value is not None:
                        grad.copy_(grad_value)  # the same gradient tensor, as it was
                    p.grad = grad
            for name, b in model.named_buffers(remove_duplicate=False):
                if name in self.buffers:
                    b.copy_(self.buffers[name])
        for module, training in self.modes:
            module.training = training
        for optimizer, attributes, state, groups in self.optimizers:
            _restore_optimizer(optimizer, attributes, state, groups)
        python, numpy, cpu = self.rng
        random.setstate(python)
        np.random.set_state(numpy)
        torch.set_rng_state(cpu)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        elif self.cuda_seed is not None and (self.seeded or torch.cuda.is_initialized()):
            torch.cuda.manual_seed_all(self.cuda_seed)  # as it would start (lazily if not yet)
        for generator, generator_state in self.generators:
            generator.set_state(generator_state)
        for cb, state in self.fallbacks:
            cb.load_state_dict(state)


def _optimizer_snapshot(optimizer: torch.optim.Optimizer) -> tuple[dict, dict, list[dict]]:
    """An optimizer's attributes, its state (copied) and its param groups without the params."""
    params = {id(p): p for group in optimizer.param_groups for p in group["params"]}
    groups = [
        copy.deepcopy({k: v for k, v in group.items() if k != "params"})
        for group in optimizer.param_groups
    ]
    return dict(vars(optimizer)), copy.deepcopy(dict(optimizer.state), params), groups


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, attributes: dict, state: dict, groups: list[dict]
) -> None:
    """Puts back what :func:`_optimizer_snapshot` saw, in place."""
    _restore_attributes(optimizer, attributes)
    optimizer.state.clear()
    optimizer.state.update(state)
    for group, saved in zip(optimizer.param_groups, groups):
        for key in [k for k in group if k != "params" and k not in saved]:
            del group[key]
        for key, value in saved.items():
            current = group.get(key)
            if isinstance(current, torch.Tensor) and isinstance(value, torch.Tensor):
                current.copy_(value)
            else:
                group[key] = value


def _restore_attributes(obj: Any, saved: dict[str, Any]) -> None:
    attributes = vars(obj)
    for name in [name for name in attributes if name not in saved]:
        del attributes[name]
    for name, value in saved.items():
        if attributes.get(name, _FAILED) is not value:
            attributes[name] = value


def _data_generators(data: Any) -> list[torch.Generator]:
    """The ``torch.Generator`` objects a ``DataLoader`` draws its shuffling from."""
    found: dict[int, torch.Generator] = {}
    for owner in (data, getattr(data, "sampler", None), getattr(data, "batch_sampler", None)):
        for candidate in (owner, getattr(owner, "sampler", None)):
            generator = getattr(candidate, "generator", None)
            if isinstance(generator, torch.Generator):
                found[id(generator)] = generator
    return list(found.values())
