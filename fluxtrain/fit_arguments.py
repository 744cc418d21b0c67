"""The arguments of ``fit``, checked before anything runs: the budget, the phases.

Examples:
    >>> check_budget(None, 100)
    (None, 100)
    >>> check_budget(3, 100)
    Traceback (most recent call last):
    ...
    fluxtrain.exceptions.FluxTrainError: fit: give n_epochs or steps=, not both ...
"""

from __future__ import annotations

from typing import Any

from .exceptions import FluxTrainError
from .phases import AbstractTrainingPhase, AbstractValidationPhase, TrainingPhase, ValidationPhase


def _count(value: object, low: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= low


def check_budget(n_epochs: Any, steps: Any) -> tuple[int | None, int | None]:
    """``(n_epochs, steps)`` of a ``fit`` call: exactly one of them, an int.

    Examples:
        >>> check_budget(2, None)
        (2, None)
    """
    if (n_epochs is None) == (steps is None):
        raise FluxTrainError(
            f"fit: give n_epochs or steps=, not both and not neither (got n_epochs={n_epochs!r}, "
            f"steps={steps!r}): fit(10) runs 10 epochs, fit(steps=1000) 1000 optimizer steps."
        )
    if n_epochs is not None and not _count(n_epochs, 0):
        raise FluxTrainError(f"fit: n_epochs must be an int >= 0, got {n_epochs!r}.")
    if steps is not None and not _count(steps, 0):
        raise FluxTrainError(f"fit: steps must be an int >= 0, got {steps!r}.")
    return n_epochs, steps


def check_every(validate_every: Any, has_validation: bool) -> int | None:
    """``validate_every`` of a ``fit`` call: ``None`` or an int >= 1, with validation data.

    Examples:
        >>> check_every(None, False), check_every(50, True)
        (None, 50)
    """
    if validate_every is None:
        return None
    if not _count(validate_every, 1):
        raise FluxTrainError(
            f"fit: validate_every must be an int >= 1 (optimizer steps between validations) or "
            f"None, got {validate_every!r}."
        )
    if not has_validation:
        raise FluxTrainError(
            f"fit: validate_every={validate_every} needs validation data and a validation "
            f"phase; give data as (train, valid), or drop validate_every."
        )
    return validate_every


def check_phases(phases: Any) -> tuple[AbstractTrainingPhase, AbstractValidationPhase | None]:
    """The phases ``fit(phases=...)`` runs: the defaults for ``None``, else checked.

    Examples:
        >>> check_phases(None)
        (TrainingPhase(), ValidationPhase())
        >>> check_phases((ValidationPhase(), None))
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: fit: phases must be (training_phase, ...
    """
    if phases is None:
        return TrainingPhase(), ValidationPhase()
    if (
        isinstance(phases, tuple)
        and len(phases) == 2
        and isinstance(phases[0], AbstractTrainingPhase)
        and (phases[1] is None or isinstance(phases[1], AbstractValidationPhase))
    ):
        return phases
    raise FluxTrainError(
        f"fit: phases must be (training_phase, validation_phase): an instance of a "
        f"TrainingPhase subclass and one of a ValidationPhase subclass or None, got {phases!r}."
    )
