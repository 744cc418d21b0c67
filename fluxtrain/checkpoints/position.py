"""Where an interrupted fit continues: the epoch, the phase, the batches already consumed.

:func:`resume_point` reads it from the fit counters a checkpoint holds (a validation that ran
inside a training epoch included); :func:`continue_epoch` positions a data iterator after the
consumed batches, replaying the epoch's order from the random states of its start.

Examples:
    >>> from fluxtrain.state import FitState
    >>> resume_point(FitState(epoch=1, phase="train", stage="steps", epoch_step=3))
    (1, 0, Resume(phase='train', batches=3, epoch_rng=None, inner=None))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from ..exceptions import CheckpointError
from .rng import restore, snapshot


class Resume(NamedTuple):
    """Where a resumed fit continues within its first epoch.

    Attributes:
        phase: ``"train"`` or ``"valid"``: the phase to run first.
        batches: Batches of that phase's epoch already consumed, or ``None`` to start it anew.
        epoch_rng: The :func:`~fluxtrain.checkpoints.rng.snapshot` taken at the start of that
            epoch.
        inner: For a training epoch interrupted during a validation it ran inside
            (``validate_every``): where that validation continues, before the next training
            batch; ``None`` when the validation was complete.
    """

    phase: str
    batches: int | None
    epoch_rng: dict[str, Any] | None
    inner: Resume | None = None


def continue_epoch(data: Any, resume: Resume) -> Iterator[Any]:
    """An iterator over ``data`` positioned after ``resume.batches`` batches.

    The random states of the epoch's start are restored, ``iter(data)`` is taken and the
    consumed batches are fetched and dropped (the model does not see them); then the random
    states of now are restored.
    """
    now = snapshot(data)
    if resume.epoch_rng is not None:
        restore(data, resume.epoch_rng)
    batches = iter(data)
    for consumed in range(resume.batches or 0):
        if next(batches, _END) is _END:
            raise CheckpointError(
                f"The data ended after {consumed} batches, but the checkpoint had consumed "
                f"{resume.batches} in this epoch. Resume with the same data."
            )
    restore(data, now)
    return batches


_END = object()


def resume_point(fitstate: Any) -> tuple[int, int, Resume]:
    """``(epoch, total_epochs, Resume)``: where a fit saved with this ``fitstate`` continues.

    Examples:
        >>> from fluxtrain.state import FitState
        >>> resume_point(FitState(epoch=2, phase="train", stage="steps", epoch_step=5))
        (2, 0, Resume(phase='train', batches=5, epoch_rng=None, inner=None))
        >>> resume_point(FitState(epoch=2, phase="valid", stage="end", has_validation=True))
        (3, 0, Resume(phase='train', batches=None, epoch_rng=None, inner=None))
        >>> inside = FitState(phase="valid", stage="steps", epoch_step=1, outer_step=7)
        >>> resume_point(inside)[2].batches, resume_point(inside)[2].inner.batches
        (7, 1)
    """
    epoch, total, phase, stage = (
        fitstate.epoch,
        fitstate.total_epochs,
        fitstate.phase,
        fitstate.stage,
    )
    outer = getattr(fitstate, "outer_step", None)
    if outer is not None:  # inside a validation within a training epoch
        inner = None
        if stage == "begin":
            inner = Resume(phase, None, None)
        elif stage == "steps":
            inner = Resume(phase, fitstate.epoch_step, None)
        return epoch, total, Resume("train", outer, None, inner)
    if phase is None:
        return epoch, total, Resume("train", None, None)
    if stage == "begin":
        return epoch, total, Resume(phase, None, None)
    if stage == "steps":
        return epoch, total, Resume(phase, fitstate.epoch_step, None)
    if phase == "train" and stage == "end":
        total += 1  # what the learner does after EpochEnd
    if phase == "train" and fitstate.has_validation:
        return epoch, total, Resume("valid", None, None)
    return epoch + 1, total, Resume("train", None, None)
