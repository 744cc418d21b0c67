"""How a batch becomes inputs, targets, outputs and a loss, for models and data of any shape.

A batch is whatever the data yields. :func:`split` reads it by these conventions, in order:

- a ``Mapping`` (Hugging Face style): ``inputs`` is the whole mapping, ``targets`` its
  ``"labels"`` (``None`` without), and the model is called ``model(**inputs)``;
- a tuple or list of two: ``(inputs, targets)``; inputs that are a tuple or list are unpacked,
  ``model(*inputs)``, a ``Mapping`` of inputs is passed as keywords, ``model(**inputs)``, and
  anything else as it is, ``model(inputs)`` (:func:`forward`);
- a tuple or list of one: inputs only, ``targets = None``.

:func:`compute_loss` calls ``loss_fn(outputs, targets)``; with ``loss_fn=None`` the model
computes its own loss (``outputs.loss``, ``outputs["loss"]``, or ``outputs`` when it is a scalar
tensor). :func:`batch_size` counts samples as the length of dimension 0 of the first tensor in
the inputs, depth first; :func:`predictions` is what metrics compare with the targets.

Examples:
    >>> import torch
    >>> split({"input_ids": torch.ones(4, 7), "labels": torch.zeros(4)})[1]
    tensor([0., 0., 0., 0.])
    >>> inputs, targets = split(((torch.ones(3, 2), torch.ones(3, 5)), torch.zeros(3)))
    >>> batch_size(inputs)
    3
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .exceptions import BatchError

Tensor = torch.Tensor


def split(batch: Any) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a batch, by the conventions above.

    Raises:
        BatchError: A batch that is none of a mapping, a pair or a one-element sequence.

    Examples:
        >>> split((1, 2)), split([5])
        ((1, 2), (5, None))
    """
    if type(batch) is tuple and len(batch) == 2:
        return batch
    if isinstance(batch, Mapping):
        return batch, batch.get("labels")
    if isinstance(batch, (tuple, list)):
        if len(batch) == 2:
            return batch[0], batch[1]
        if len(batch) == 1:
            return batch[0], None
    shape = (
        f"{type(batch).__name__} of length {len(batch)}"
        if hasattr(batch, "__len__")
        else type(batch).__name__
    )
    raise BatchError(
        f"A batch must be (inputs, targets), (inputs,) or a mapping with the model's keyword "
        f"arguments, got a {shape}. Make the data yield one of those, e.g. a DataLoader over a "
        f"TensorDataset(inputs, targets), or write a custom phase whose step reads your batch."
    )


def forward(model: Any, inputs: Any) -> Any:
    """``model(inputs)``, ``model(*inputs)`` for a tuple or list, ``model(**inputs)`` for a mapping.

    Examples:
        >>> forward(lambda a, b: a + b, (1, 2)), forward(lambda x=0: x, {"x": 3})
        (3, 3)
    """
    if type(inputs) is Tensor:
        return model(inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(inputs)


def own_loss(outputs: Any) -> Any:
    """The loss a model computed itself: ``outputs.loss``, ``outputs["loss"]`` or ``outputs``.

    Examples:
        >>> import torch
        >>> own_loss({"loss": torch.tensor(0.5), "logits": torch.zeros(2, 3)})
        tensor(0.5000)
    """
    loss = getattr(outputs, "loss", None)
    if loss is None and isinstance(outputs, Mapping):
        loss = outputs.get("loss")
    if loss is None and isinstance(outputs, Tensor) and outputs.ndim == 0:
        loss = outputs
    if loss is None:
        raise BatchError(
            f"loss_fn is None, so the model must compute its loss, but its outputs are a "
            f"{type(outputs).__name__} with no 'loss' (an attribute, a key, or a scalar tensor). "
            f"Pass the labels so the model computes it (a 'labels' key in dict batches), or give "
            f"the Learner a loss_fn(outputs, targets)."
        )
    return loss


def compute_loss(loss_fn: Any, outputs: Any, targets: Any) -> Tensor:
    """``loss_fn(outputs, targets)`` (the model's own loss for ``None``), checked to be a scalar.

    Examples:
        >>> import torch
        >>> compute_loss(None, {"loss": torch.tensor(2.0)}, None)
        tensor(2.)
    """
    loss = own_loss(outputs) if loss_fn is None else loss_fn(outputs, targets)
    if isinstance(loss, Tensor) and loss.ndim == 0:
        return loss
    got = (
        f"a tensor of shape {tuple(loss.shape)}"
        if isinstance(loss, Tensor)
        else f"a {type(loss).__name__}"
    )
    where = "the model's own loss" if loss_fn is None else "loss_fn"
    raise BatchError(
        f"{where} must be a scalar tensor, got {got}. Reduce it, e.g. with reduction='mean' "
        f"or by calling .mean() on the per-sample losses."
    )


def first_tensor(value: Any) -> Tensor | None:
    """The first tensor in ``value`` (nested mappings, tuples and lists), depth first.

    Examples:
        >>> import torch
        >>> first_tensor({"mask": [None, torch.ones(2)], "ids": torch.zeros(5)}).shape
        torch.Size([2])
    """
    if isinstance(value, Tensor):
        return value
    items = value.values() if isinstance(value, Mapping) else value
    if isinstance(items, (tuple, list)) or isinstance(value, Mapping):
        for item in items:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def batch_size(inputs: Any) -> int:
    """Samples in a batch: dimension 0 of the first tensor in ``inputs``, depth first.

    A 0-d tensor counts as one sample; inputs without a tensor count their length (a list of
    strings), or one sample.

    Examples:
        >>> import torch
        >>> batch_size(torch.zeros(5, 3)), batch_size(("text", torch.zeros(2))), batch_size(7)
        (5, 2, 1)
    """
    if type(inputs) is Tensor:
        return inputs.shape[0] if inputs.ndim else 1
    tensor = first_tensor(inputs)
    if tensor is not None:
        return tensor.shape[0] if tensor.ndim else 1
    return len(inputs) if isinstance(inputs, (tuple, list)) else 1


def predictions(outputs: Any) -> Any:
    """What metrics compare with the targets: ``outputs`` itself when it is a tensor, else
    ``outputs.logits`` or ``outputs["logits"]`` (Hugging Face outputs), else ``outputs``.

    Examples:
        >>> import torch
        >>> predictions({"loss": torch.tensor(1.0), "logits": torch.ones(2, 3)}).shape
        torch.Size([2, 3])
    """
    if type(outputs) is Tensor:
        return outputs
    logits = getattr(outputs, "logits", None)
    if logits is None and isinstance(outputs, Mapping):
        logits = outputs.get("logits")
    return outputs if logits is None else logits


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
        items = [move(v, device) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [move(v, device) for v in value]
    if isinstance(value, Mapping):
        moved = {k: move(v, device) for k, v in value.items()}
        try:  # dict subclasses, and mappings built from a dict (BatchEncoding, UserDict)
            return type(value)(moved)  # type: ignore[call-arg]
        except TypeError:
            return moved
    return value
