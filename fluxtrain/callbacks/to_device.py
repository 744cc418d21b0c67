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
from typing import Any

import torch

from ..access import Write
from ..batches import move
from ..callback import Callback
from ..exceptions import FluxTrainError
from ..phases import Phase


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
        if self.device.type == "meta":
            raise FluxTrainError(
                "ToDevice: 'meta' tensors hold no data, so moving the model there would destroy "
                "its weights. Give a real device such as 'cpu' or 'cuda'."
            )
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
