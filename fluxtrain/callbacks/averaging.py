"""Weight averaging: what :class:`~fluxtrain.callbacks.ema.EMA` and
:class:`~fluxtrain.callbacks.swa.SWA` share.

Both keep an average of the model's weights in ``averaged_model``, a copy of the user's module
(never the ``DistributedDataParallel`` wrapper), averaged in place by
``torch.optim.swa_utils.AveragedModel`` with ``torch._foreach`` operations. The copy is made
at the first ``FitBegin``, after ``ToDevice`` has moved the model, on the model's device; the
average goes on over later ``fit`` calls.

With ``validate=True`` every validation epoch of a fit runs on the averaged weights: they are
copied into the learner's model at ``EpochBegin`` and the training weights copied back,
bitwise, at ``EpochEnd`` (or at ``FitEnd`` if the validation was cut short), before the
``Checkpointer`` or ``EarlyStopping`` look at the model. Outside a fit,
:meth:`WeightAveraging.swapped` does the same around any code, e.g. ``learner.evaluate``.

Examples:
    >>> from fluxtrain import SWA
    >>> from fluxtrain.testing import tiny_learner
    >>> swa = SWA(start=0)
    >>> learner = tiny_learner(swa)
    >>> _ = learner.fit(2)
    >>> trained = learner.model.weight.item()
    >>> with swa.swapped(learner):
    ...     learner.model.weight.item() == swa.averaged_model.weight.item()
    True
    >>> learner.model.weight.item() == trained
    True
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel

from ..access import Read, Write
from ..callback import Callback
from ..distributed import unwrap
from ..exceptions import FluxTrainError
from ..ordering import Resolution, RunFirst
from ..phases import AbstractValidationPhase, Phase


def tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    """The parameters, then the buffers of ``module``, detached (they share its storage).

    Examples:
        >>> import torch
        >>> [tuple(t.shape) for t in tensors(torch.nn.BatchNorm1d(3))]
        [(3,), (3,), (3,), (3,), ()]
    """
    return [t.detach() for t in itertools.chain(module.parameters(), module.buffers())]


class WeightAveraging(Callback):
    """The base of :class:`~fluxtrain.callbacks.ema.EMA` and :class:`~fluxtrain.callbacks.swa.SWA`.

    It writes ``model`` (at validation with ``validate=True``), so it runs before the callbacks
    that read the model, and after every other callback that writes it (``ToDevice`` first).

    Args:
        validate: Run the fit's validation epochs on the averaged weights.
        use_buffers: Average the buffers too (else they are copied from the model).
        multi_avg_fn: The averaging function of ``AveragedModel`` (``None``: equal weights).

    Examples:
        >>> from fluxtrain import EMA, SWA
        >>> isinstance(EMA(), WeightAveraging), isinstance(SWA(1), WeightAveraging)
        (True, True)
    """

    stateaccess = {"model": Write, "batch.updated": Read, "callbacks": Read}

    def __init__(
        self,
        validate: bool,
        use_buffers: bool,
        multi_avg_fn: Callable[..., None] | None,
    ) -> None:
        if not isinstance(validate, bool):
            raise FluxTrainError(f"{self.name}: validate must be True or False, got {validate!r}.")
        self.validate = validate
        self._use_buffers = use_buffers
        self._multi_avg_fn = multi_avg_fn
        self._averager: AveragedModel | None = None
        self._backup: list[torch.Tensor] | None = None  # the training weights while swapped
        self._learner: Any = None
        self._model: torch.nn.Module | None = None

    @property
    def averaged_model(self) -> torch.nn.Module | None:
        """The averaged copy of the model (a module of the model's class), or ``None`` until
        the first update."""
        averager = self._averager
        return None if averager is None or int(averager.n_averaged) == 0 else averager.module

    @property
    def updates(self) -> int:
        """How many weights the average holds: updates made so far, over all fits."""
        return 0 if self._averager is None else int(self._averager.n_averaged)

    def init(self, learner: Any) -> None:
        # The learner itself: the fit's training data and how the fit ended are no declared
        # paths (reading fitstate would order this model writer after GradientAccumulation).
        self._learner = learner

    def resolveconflict(self, other: Callback) -> Resolution:
        return RunFirst(other)  # copy and swap the model once the others have changed it

    # -- the averaged copy -------------------------------------------------------------------

    def _averaged_for(self, model: torch.nn.Module) -> AveragedModel:
        """The averager, built from ``model`` the first time, on the model's device."""
        averager = self._averager
        if averager is None:
            averager = AveragedModel(
                model, multi_avg_fn=self._multi_avg_fn, use_buffers=self._use_buffers
            )
            for parameter in averager.module.parameters():
                parameter.grad = None
            self._averager = averager
            return averager
        ours, theirs = tensors(averager.module), tensors(model)
        if [(t.shape, t.dtype) for t in ours] != [(t.shape, t.dtype) for t in theirs]:
            raise FluxTrainError(
                f"{self.name}: the learner's model has other parameters or buffers than the "
                f"averaged copy of the model this callback first saw ({len(theirs)} tensors "
                f"against {len(ours)}, or other shapes). A new model needs a new {self.name}."
            )
        if theirs and ours and theirs[0].device != ours[0].device:
            averager.module.to(theirs[0].device)  # n_averaged stays on the CPU: no sync
        return averager

    def _update(self, model: torch.nn.Module) -> None:
        averager = self._averager
        if averager is None:
            averager = self._averaged_for(model)
        with torch.no_grad():
            averager.update_parameters(model)

    # -- validation on the averaged weights --------------------------------------------------

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        others = [
            cb.name
            for cb in learner.callbacks
            if isinstance(cb, WeightAveraging) and cb is not self and cb.validate
        ]
        if self.validate and others:
            raise FluxTrainError(
                f"{self.name}(validate=True): {others[0]} also validates on its averaged "
                f"weights, and one validation runs on one model. Keep validate=True on one of "
                f"them and evaluate the other with `with cb.swapped(learner): learner.evaluate()`."
            )
        self._model = model = unwrap(learner.model)
        self._averaged_for(model)
        self._backup = None

    def on_epoch_begin(self, phase: Phase, learner: Any) -> None:
        if self.validate and isinstance(phase, AbstractValidationPhase):
            if self.averaged_model is not None:
                self._before_use()
                self._swap_in(unwrap(learner.model))

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        if self._backup is not None and isinstance(phase, AbstractValidationPhase):
            self._swap_out(unwrap(learner.model))

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        if self._backup is not None:  # a validation cut short by an error or a cancel
            self._swap_out(unwrap(learner.model))
        self._model = None

    def _before_use(self) -> None:
        """Makes the averaged copy ready to be used (SWA: its BatchNorm statistics)."""

    def _swap_in(self, model: torch.nn.Module) -> None:
        live = tensors(model)
        self._backup = [t.clone() for t in live]
        with torch.no_grad():
            torch._foreach_copy_(live, tensors(self._averaged_for(model).module))

    def _swap_out(self, model: torch.nn.Module) -> None:
        backup, self._backup = self._backup, None
        if backup is not None:
            with torch.no_grad():
                torch._foreach_copy_(tensors(model), backup)

    @contextlib.contextmanager
    def swapped(self, learner: Any) -> Iterator[torch.nn.Module]:
        """The averaged weights in ``learner``'s model for the ``with`` block, the training
        weights copied back (bitwise) after it.

        Use it to evaluate, predict with or save the averaged model through the learner, also
        after ``Checkpointer.load_best(learner)`` (a checkpoint holds the average too). Under
        ``torch.distributed`` call it on every rank (``SWA`` may recompute BatchNorm statistics
        there, which all-reduces them).

        Yields:
            The learner's model (the user's module), holding the averaged weights.

        Raises:
            FluxTrainError: There is no average yet, or the model is swapped already.

        Examples:
            >>> from fluxtrain import EMA, Metrics
            >>> from fluxtrain.testing import tiny_learner
            >>> ema = EMA(decay=0.9)
            >>> learner = tiny_learner(ema, Metrics())
            >>> _ = learner.fit(2)
            >>> with ema.swapped(learner) as model:
            ...     averaged = learner.evaluate()["Loss"]
            >>> averaged > learner.evaluate()["Loss"]  # the average lags behind the weights
            True
        """
        if self.averaged_model is None:
            raise FluxTrainError(
                f"{self.name}.swapped: there is no average yet (no update was made). Fit the "
                f"learner first, or load a checkpoint that holds one."
            )
        if self._backup is not None:
            raise FluxTrainError(f"{self.name}.swapped: the averaged weights are in use already.")
        model = unwrap(learner.model)
        self._averaged_for(model)
        self._before_use()
        self._swap_in(model)
        try:
            yield model
        finally:
            self._swap_out(model)

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights and buffers with their count (tensors), for checkpoints."""
        averager = self._averager
        return {"averaged": None if averager is None else averager.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned (into a copy of the learner's model)."""
        saved = state["averaged"]
        if saved is None:
            self._averager = None
            return
        if self._learner is None:
            raise FluxTrainError(
                f"{self.name}.load_state_dict: give the callback to a Learner first; the "
                f"average is loaded into a copy of its model."
            )
        self._averaged_for(unwrap(self._learner.model)).load_state_dict(saved)
