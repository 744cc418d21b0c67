"""ToDevice: the model moved once at ``FitBegin``, every batch moved at ``StepBegin``.

For CUDA, CPU tensors of a batch are pinned and copied with ``non_blocking=True``, so the copy
overlaps with the host's work. Tensors nested in tuples, lists and dicts are moved too.

Examples:
    >>> import torch
    >>> move({"x": torch.ones(2), "y": [torch.zeros(1)]}, torch.device("cpu"))
    {'x': tensor([1., 1.]), 'y': [tensor([0.])]}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from ..access import Write
from ..callback import Callback
from ..phases import Phase


def move(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor in it (nested tuples, named tuples, lists, mappings) on
    ``device``; anything else is left as it is.

    Examples:
        >>> import torch
        >>> moved = move({"ids": torch.ones(2), "meta": ["a", (torch.zeros(1), 3)]},
        ...               torch.device("cpu"))
        >>> moved["meta"][1][1]
        3
    """
    if isinstance(value, torch.Tensor):
        if value.device == device:
            return value
        if device.type == "cuda" and value.is_cpu:
            if not value.is_pinned():
                value = value.pin_memory()
            return value.to(device, non_blocking=True)
        return value.to(device)
    if isinstance(value, tuple):
        moved = [move(v, device) for v in value]
        return type(value)(*moved) if hasattr(value, "_fields") else tuple(moved)
    if isinstance(value, list):
        return [move(v, device) for v in value]
    if isinstance(value, Mapping):
        moved = {k: move(v, device) for k, v in value.items()}
        try:  # dict subclasses, and mappings built from a dict (BatchEncoding, UserDict)
            return type(value)(moved)
        except TypeError:
            return moved
    return value


class ToDevice(Callback):
    """Moves the model to ``device`` once and each batch's inputs and targets at every step.

    The model's parameters are moved in place (``model.to``), so the optimizer keeps them and
    its state; nothing is moved again when the model is already there.

    Args:
        device: A ``torch.device`` or a string such as ``"cuda"``; default: CUDA if available.
            ``"cuda"`` without an index means ``cuda:LOCAL_RANK`` under ``torchrun``, else the
            current CUDA device.
    """

    stateaccess = {"model": Write, "batch.inputs": Write, "batch.targets": Write}

    def __init__(self, device: torch.device | str | None = None) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            local_rank = os.environ.get("LOCAL_RANK")  # set by torchrun: one GPU per process
            index = int(local_rank) if local_rank is not None else torch.cuda.current_device()
            self.device = torch.device("cuda", index)

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        model = learner.model
        if any(p.device != self.device for p in model.parameters()) or any(
            b.device != self.device for b in model.buffers()
        ):
            model.to(self.device)

    def on_step_begin(self, phase: Phase, learner: Any) -> None:
        batch = learner.batch
        batch.inputs = move(batch.inputs, self.device)
        batch.targets = move(batch.targets, self.device)
