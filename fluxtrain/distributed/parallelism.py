"""Models that are already parallel (FSDP2, tensor parallel), and pausing gradient sync.

A model sharded by the user (``torch.distributed.fsdp.fully_shard``, ``parallelize_module``,
any ``DTensor`` parameter) is trained as it is: :func:`is_parallel` tells the learner not to
wrap it in ``DistributedDataParallel``, and the :class:`~fluxtrain.Checkpointer` saves it with
``torch.distributed.checkpoint`` (:mod:`fluxtrain.checkpoints.sharded`).
:func:`no_gradient_sync` pauses the gradient reduction of micro-batches that do not update.

Examples:
    >>> import torch
    >>> model = torch.nn.Linear(2, 1)
    >>> is_parallel(model)
    False
    >>> with no_gradient_sync(model):  # a plain module: nothing to pause
    ...     model(torch.ones(1, 2)).sum().backward()
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

# FSDP2 and DTensor are imported by whoever uses them; until then no model can hold them, and
# importing fluxtrain does not pay for importing them.
_FSDP, _DTENSOR = "torch.distributed.fsdp", "torch.distributed.tensor"


def fsdp_modules(model: torch.nn.Module) -> list[Any]:
    """The ``fully_shard`` modules in ``model`` (itself included), outermost first.

    Examples:
        >>> import torch
        >>> fsdp_modules(torch.nn.Linear(2, 1))
        []
    """
    fsdp = sys.modules.get(_FSDP)
    if fsdp is None:
        return []
    return [module for module in model.modules() if isinstance(module, fsdp.FSDPModule)]


def is_parallel(model: torch.nn.Module) -> bool:
    """Whether ``model`` is already parallel: a ``fully_shard`` module in it, or a ``DTensor``
    parameter (tensor parallel). Such a model is trained as it is, never wrapped in DDP.

    Examples:
        >>> import torch
        >>> is_parallel(torch.nn.Linear(2, 1))
        False
    """
    if fsdp_modules(model):
        return True
    tensor = sys.modules.get(_DTENSOR)
    return tensor is not None and any(isinstance(p, tensor.DTensor) for p in model.parameters())


@contextlib.contextmanager
def _fsdp_no_sync(modules: list[Any]) -> Iterator[None]:
    for module in modules:
        module.set_requires_gradient_sync(False, recurse=False)
    try:
        yield
    finally:
        for module in modules:
            module.set_requires_gradient_sync(True, recurse=False)


def no_gradient_sync(model: torch.nn.Module) -> contextlib.AbstractContextManager[object]:
    """A context in whose ``backward()`` calls gradients accumulate locally, unreduced.

    - a ``DistributedDataParallel`` wrapper: its ``no_sync()``;
    - a model with ``fully_shard`` modules (FSDP2): ``set_requires_gradient_sync(False)`` on
      each of them, set back to ``True`` on exit (FSDP2's default; the next ``backward()``
      outside the context reduces the accumulated gradients once);
    - anything else (a plain module, tensor parallel alone): ``contextlib.nullcontext()``.

    Use it for the micro-batches of gradient accumulation that do not update.

    Examples:
        >>> import torch
        >>> no_gradient_sync(torch.nn.Linear(2, 1))
        <contextlib.nullcontext object at ...>
    """
    if isinstance(model, DistributedDataParallel):
        return model.no_sync()
    modules = fsdp_modules(model)
    if modules:
        return _fsdp_no_sync(modules)
    return contextlib.nullcontext()
