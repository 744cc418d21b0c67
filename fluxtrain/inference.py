"""Using a trained model: :func:`evaluate` its metrics on data, :func:`predict` its outputs.

Neither changes a training record (``cbstate.history``, ``metrics_epoch``, ``metrics_at``,
``hyperparams``), the weights, the model's training mode or the random states: a ``fit`` after
them runs exactly as one without them.

Examples:
    >>> from fluxtrain import Metrics
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Metrics())
    >>> round(evaluate(learner, learner.data.valid)["Loss"], 4)
    11.5919
    >>> predict(learner, learner.data.valid).shape
    torch.Size([32, 1])
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from .batches import forward, move, split
from .checkpoints.rng import rng_state, set_rng_state
from .exceptions import FluxTrainError
from .phases import AbstractValidationPhase, Phase, ValidationPhase, evaluating

if TYPE_CHECKING:
    from .learner import Learner

RECORDS = ("metrics_epoch", "metrics_step", "metrics_at", "history")
"""The ``cbstate`` entries an evaluation writes to and :func:`evaluate` puts back."""


class EvaluationPhase(Phase):
    """The phase of :func:`evaluate`: a validation step under ``eval()`` and ``no_grad()``.

    It is no ``AbstractValidationPhase``, so callbacks that act on the fit's validations
    (``EarlyStopping``, ``Checkpointer``, metric-driven schedules) leave it alone, while
    ``Metrics``, ``ToDevice``, ``MixedPrecision`` and progress bars run as in validation.
    """

    name = "eval"
    context = AbstractValidationPhase.context
    step = ValidationPhase.step


def _data(learner: Learner, data: Iterable[Any] | None, owner: str) -> Iterable[Any]:
    data = learner.data.valid if data is None else data
    if data is None or not hasattr(data, "__iter__"):
        raise FluxTrainError(
            f"{owner}: give an iterable of batches (a DataLoader, a list), got "
            f"{type(data).__name__}; without data it uses the learner's validation data, and "
            f"this learner has none."
        )
    return data


@contextlib.contextmanager
def untouched_records(learner: Learner) -> Iterator[None]:
    """Puts back the fit counters, the random states and the ``cbstate`` records after."""
    fitstate = dataclasses.replace(learner.fitstate)
    snapshots = (learner._epoch_rng, learner._inner_rng)
    random = rng_state()
    cbstate = learner.cbstate
    keys = {name: set(cbstate[name]) for name in RECORDS if name in cbstate}
    try:
        yield
    finally:
        for field in dataclasses.fields(fitstate):
            setattr(learner.fitstate, field.name, getattr(fitstate, field.name))
        learner._epoch_rng, learner._inner_rng = snapshots
        set_rng_state(random)
        for name, before in keys.items():
            for key in [k for k in cbstate[name] if k not in before]:
                del cbstate[name][key]


def evaluate(learner: Learner, data: Iterable[Any] | None = None) -> dict[str, Any]:
    """One pass of an :class:`EvaluationPhase` over ``data`` with the learner's callbacks.

    Returns:
        ``{metric name: value}`` of the learner's ``Metrics`` (names without the phase prefix:
        ``"Loss"``, ``"Accuracy"``), batch-size-weighted means over ``data``.
    """
    data = _data(learner, data, "evaluate")
    if "metrics_epoch" not in learner.cbstate:
        raise FluxTrainError(
            "evaluate: it reports the values of the Metrics callback, and this learner has "
            "none. Add Metrics(...) (or keep usedefaultcallbacks=True)."
        )
    phase = EvaluationPhase()
    prefix = phase.name + "/"
    with untouched_records(learner):
        learner.epoch(phase, data)
        recorded = learner.cbstate["metrics_epoch"]
        return {k[len(prefix) :]: v[-1] for k, v in recorded.items() if k.startswith(prefix)}


def predict(learner: Learner, data: Iterable[Any] | None = None) -> Any:
    """The model's outputs on ``data`` in eval mode under ``no_grad``, no callbacks run.

    Batches are read by the conventions of :mod:`fluxtrain.batches` (inputs only is fine) and
    their inputs moved to the device of the model's parameters.

    Returns:
        The outputs of all batches concatenated along dimension 0 when they are tensors, else
        the list of each batch's outputs.
    """
    data = _data(learner, data, "predict")
    model = learner.model
    parameter = next(iter(model.parameters()), None)
    device = None if parameter is None else parameter.device
    outputs = []
    random = rng_state()
    try:
        with evaluating(model):
            for batch in data:
                inputs, _ = split(batch)
                outputs.append(forward(model, inputs if device is None else move(inputs, device)))
    finally:
        set_rng_state(random)
    if outputs and all(isinstance(o, torch.Tensor) for o in outputs):
        return torch.cat(outputs)
    return outputs
