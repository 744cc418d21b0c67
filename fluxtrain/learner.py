"""The :class:`Learner`: model, data, optimizer and loss function, driven by callbacks.

Examples:
    >>> import torch
    >>> from fluxtrain import Learner
    >>> model = torch.nn.Linear(1, 1)
    >>> data = [(torch.ones(4, 1), torch.ones(4, 1))] * 3
    >>> learner = Learner(model, data, torch.optim.SGD(model.parameters(), lr=0.1),
    ...                   torch.nn.functional.mse_loss, usedefaultcallbacks=False)
    >>> learner.fit(2)
    FitResult(epochs_completed=2, steps_completed=6, stopped_by=None, reason=None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .callback import Callback
from .checkpoints.learner_state import learner_state
from .checkpoints.resume import Resume, load_learner_state
from .dispatch import with_defaults
from .distributed import DataParallel
from .exceptions import FluxTrainError
from .inference import evaluate, predict
from .loop import Loop
from .optimizers import as_dict, check_owned
from .state import Batch, CallbackState, FitState, to_data


class Learner(Loop):
    """Holds what training needs and runs it, firing events to callbacks.

    Args:
        model: The ``torch.nn.Module`` to train.
        data: ``(train, valid)``, one training iterable (no validation), or ``None`` (then pass
            data to :meth:`fit`). Any iterable of batches works, also one without ``len()``:
            ``(inputs, targets)`` pairs, ``(inputs,)``, or dicts of the model's keyword
            arguments with ``"labels"`` (see :mod:`fluxtrain.batches`).
        optimizer: A ``torch.optim.Optimizer`` over the model's parameters, or a dict of them
            by name (``{"generator": opt_g, "discriminator": opt_d}``).
        loss_fn: ``loss_fn(outputs, targets)`` returning a scalar tensor, or ``None`` when the
            model computes its own loss (``outputs.loss``).
        *callbacks: Callbacks, ordered once here from their declarations.
        usedefaultcallbacks: Add ``Recorder``, ``Metrics(Loss())``, ``StopOnNaNLoss``,
            ``ProgressPrinter`` and ``MetricsPrinter``, except where one of that type is given.

    Under ``torch.distributed`` (a process group initialized, e.g. by ``torchrun``), ``fit``
    trains data-parallel: each rank gets its shard of every ``DataLoader`` without a
    ``DistributedSampler`` (``set_epoch`` is called every epoch), and after ``FitBegin`` (so
    that ``ToDevice`` has moved it) the model is wrapped in ``DistributedDataParallel``, built
    once and kept for later fits. From ``EpochBegin`` of the first epoch to the last
    ``EpochEnd``, ``model`` is that wrapper (the user's module is ``model.module``); from
    ``FitEnd`` on it is the user's module again. :meth:`state_dict` always holds the user's
    module's state, without a ``"module."`` prefix. A model that is already parallel (FSDP2's
    ``fully_shard``, any ``DTensor`` parameter) is trained as it is, never wrapped; build its
    optimizer after sharding it. See :mod:`fluxtrain.distributed`.

    Attributes:
        optimizer: The optimizer given (one, or the dict).
        optimizers: Every optimizer by name, always a dict (``{"optimizer": opt}`` for one).
        batch: State of the current step (``inputs``, ``targets``, ``outputs``, ``loss``).
        cbstate: State shared between callbacks (``history``, ``metrics_epoch``, ...).
        fitstate: Counters of the fit in progress (:class:`~fluxtrain.state.FitState`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: Any,
        optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer],
        loss_fn: Callable[[Any, Any], torch.Tensor] | None,
        *callbacks: Callback,
        usedefaultcallbacks: bool = True,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise FluxTrainError(
                f"Learner: model must be a torch.nn.Module, got {type(model).__name__}."
            )
        if loss_fn is not None and not callable(loss_fn):
            raise FluxTrainError(
                f"Learner: loss_fn must be callable as loss_fn(outputs, targets), or None when "
                f"the model computes its own loss, got {loss_fn!r}."
            )
        self.model = model
        self.optimizer = optimizer
        check_owned(self.optimizers, model, loss_fn)
        self.loss_fn = loss_fn
        self.data = to_data(data)
        self.batch = Batch()
        self.cbstate = CallbackState()
        self.fitstate = FitState()
        self._fit_data = self.data
        self._resume: Resume | None = None
        self._epoch_rng: dict[str, Any] | None = None
        self._inner_rng: dict[str, Any] | None = None
        self._inner: tuple[Any, Any, int] | None = None
        self._budget: int | None = None
        self._parallel = DataParallel()
        self._set_callbacks(with_defaults(callbacks, usedefaultcallbacks))

    @property
    def optimizer(self) -> Any:
        """The optimizer given: one ``torch.optim.Optimizer``, or the dict of them by name."""
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: Any) -> None:
        self.optimizers = as_dict(optimizer)
        self.optimizer_names = tuple(self.optimizers)
        self._optimizer = optimizer

    # -- using the model -------------------------------------------------------------------

    def evaluate(self, data: Any = None) -> dict[str, Any]:
        """Runs one validation pass over ``data`` (default: the validation data) with the
        learner's callbacks and returns ``{metric name: value}``.

        The names have no phase prefix (``"Loss"``, ``"Accuracy"``). No training record
        (``cbstate.history``, ``metrics_epoch``, hyperparameter records), the weights, the
        training mode and the random states change; callbacks that act on the fit's
        validations (``EarlyStopping``, ``Checkpointer``) do not run.

        Examples:
            >>> from fluxtrain import Metrics
            >>> from fluxtrain.testing import tiny_learner
            >>> learner = tiny_learner(Metrics())
            >>> _ = learner.fit(2)
            >>> sorted(learner.evaluate())
            ['Loss']
        """
        return evaluate(self, data)

    def predict(self, data: Any = None) -> Any:
        """The model's outputs on ``data`` in eval mode, under ``no_grad``, without callbacks.

        Batches may hold inputs only (``(inputs,)``, or a dict without ``"labels"``). Tensor
        outputs are concatenated along dimension 0; other outputs come as a list, one per
        batch.

        Examples:
            >>> import torch
            >>> from fluxtrain.testing import tiny_learner
            >>> learner = tiny_learner()
            >>> learner.predict([(torch.ones(2, 1),), (torch.ones(3, 1),)]).shape
            torch.Size([5, 1])
        """
        return predict(self, data)

    # -- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a run depends on, to resume it exactly.

        Holds the model's and the optimizer's state dicts (their tensors shared with the live
        ones, as in torch: ``copy.deepcopy`` the result to keep a snapshot in memory), copies of
        the fit counters with the position in the fit in progress, ``cbstate``, every
        callback's ``state_dict()`` (keyed ``"<position>:<name>"``), the random states (Python,
        NumPy, torch CPU, CUDA once initialized) and the states of the data's random
        generators. Save it with ``torch.save``; the :class:`~fluxtrain.Checkpointer` does so
        atomically, with checksums.

        Examples:
            >>> from fluxtrain.testing import tiny_learner
            >>> sorted(tiny_learner().state_dict())  # doctest: +NORMALIZE_WHITESPACE
            ['callbacks', 'cbstate', 'data_rng', 'epoch_rng', 'fitstate', 'format', 'inner_rng',
             'model', 'optimizer', 'optimizer_class', 'rng']
        """
        return learner_state(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned; checks everything before changing anything.

        A following ``fit(n)`` starts a new fit from the restored state; to finish the fit the
        state was saved in, call ``fit(n, resume=state)`` instead.

        Raises:
            CheckpointError: The model's keys or shapes, the optimizer's type or parameter
                groups, or the callbacks (names and order) differ from those saved; the message
                names what differs.

        Examples:
            >>> import copy
            >>> from fluxtrain.testing import tiny_learner
            >>> learner = tiny_learner()
            >>> _ = learner.fit(1)
            >>> other = tiny_learner()
            >>> other.load_state_dict(copy.deepcopy(learner.state_dict()))
            >>> other.model.weight.item() == learner.model.weight.item()
            True
        """
        load_learner_state(self, state, self.data)

    def __repr__(self) -> str:
        names = ", ".join(cb.name for cb in self.callbacks)
        return f"Learner({type(self.model).__name__}, callbacks=[{names}])"
