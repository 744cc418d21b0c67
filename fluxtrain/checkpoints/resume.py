"""Loading a learner's state back, and where a resumed fit continues.

:func:`load_learner_state` restores what :func:`~fluxtrain.checkpoints.learner_state.learner_state`
saved (:meth:`Learner.load_state_dict <fluxtrain.Learner.load_state_dict>`), once
:func:`~fluxtrain.checkpoints.checks.check_state` has found that it fits. ``fit(resume=...)`` reads
the state it names (:func:`read_resume`), checks that it was saved during the same fit, loads
it and continues from where it was saved (:func:`resume_point`). A resumed fit restores the
random states the data was iterated with at the start of the interrupted epoch, replays the
epoch's order, drops the batches that were consumed (without running the model), then restores
the random states of the moment of the checkpoint (:func:`continue_epoch`).

Under ``torch.distributed`` each rank restores its own random, ``cbstate`` and callback states
from the checkpoint's ``"ranks"`` list (:func:`~fluxtrain.checkpoints.learner_state.for_this_rank`).

Examples:
    >>> from fluxtrain.state import FitState
    >>> resume_point(FitState(epoch=1, phase="train", stage="steps", epoch_step=3))
    (1, 0, Resume(phase='train', batches=3, epoch_rng=None))
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from ..distributed import broadcast_object, is_distributed, is_main_process, unwrap, world_size
from ..exceptions import CheckpointError
from ..optimizers import saved_by_name
from ..state import FitResult
from .checks import check_format, check_state
from .files import load_checkpoint, load_latest
from .learner_state import callback_keys, for_this_rank
from .rng import restore, set_generator_states, set_rng_state, snapshot

if TYPE_CHECKING:
    from ..learner import Learner


@runtime_checkable
class CheckpointFolder(Protocol):
    """A callback that writes checkpoints into a folder (the :class:`~fluxtrain.Checkpointer`).

    ``fit(n, resume="latest")`` resumes from the newest good checkpoint of its ``folder``.
    """

    folder: Path

    def save(self, kind: str = ...) -> Path | None: ...


class Resume(NamedTuple):
    """Where a resumed fit continues within its first epoch.

    Attributes:
        phase: ``"train"`` or ``"valid"``: the phase to run first.
        batches: Batches of that phase's epoch already consumed, or ``None`` to start it anew.
        epoch_rng: The :func:`~fluxtrain.checkpoints.rng.snapshot` taken at the start of that epoch.
    """

    phase: str
    batches: int | None
    epoch_rng: dict[str, Any] | None


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
        (2, 0, Resume(phase='train', batches=5, epoch_rng=None))
        >>> resume_point(FitState(epoch=2, phase="valid", stage="end", has_validation=True))
        (3, 0, Resume(phase='train', batches=None, epoch_rng=None))
    """
    epoch, total, phase, stage = (
        fitstate.epoch,
        fitstate.total_epochs,
        fitstate.phase,
        fitstate.stage,
    )
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


# -- loading a state -------------------------------------------------------------------------


def load_learner_state(learner: Learner, state: Mapping[str, Any], data: Any) -> None:
    """Checks ``state`` against ``learner``, then restores it; ``data`` gets its generators.

    Under ``torch.distributed`` each rank restores its own entries of a checkpoint's
    ``"ranks"`` (:func:`~fluxtrain.checkpoints.learner_state.for_this_rank`).
    """
    check_format(state)
    state = for_this_rank(state)
    check_state(learner, state, data)
    unwrap(learner.model).load_state_dict(state["model"])
    for _, optimizer, saved, _ in saved_by_name(
        learner.optimizer, state["optimizer"], state.get("optimizer_class")
    ):
        optimizer.load_state_dict(saved)
    fields = {f.name for f in dataclasses.fields(learner.fitstate)}
    for name, value in state["fitstate"].items():
        if name in fields:
            setattr(learner.fitstate, name, value)
    vars(learner.cbstate).update(copy.deepcopy(dict(state["cbstate"])))
    for cb, key in zip(learner.callbacks, callback_keys(learner)):
        cb.load_state_dict(copy.deepcopy(state["callbacks"][key]))
    for part, key in zip(data, ("train", "valid")):
        if part is not None:
            set_generator_states(part, state["data_rng"][key])
    set_rng_state(state["rng"])
    learner._epoch_rng = copy.deepcopy(state.get("epoch_rng"))


def read_resume(learner: Learner, resume: Any) -> tuple[dict[str, Any], str] | None:
    """The state ``fit(resume=...)`` names, and where it came from; ``None`` to start afresh."""
    if isinstance(resume, Mapping):
        return dict(resume), "the state dict given"
    if isinstance(resume, str) and resume == "latest":
        found = [cb for cb in learner.callbacks if isinstance(cb, CheckpointFolder)]
        if not found:
            raise CheckpointError(
                "fit: resume='latest' reads the folder of the learner's Checkpointer, but the "
                "learner has none. Add Checkpointer(folder) to its callbacks, or pass "
                "resume=<path of a checkpoint file>."
            )
        if is_distributed():
            return _latest_on_every_rank(found[0].folder)
        latest = load_latest(found[0].folder)
        if latest is None:
            return None
        return latest[1], str(latest[0])
    if isinstance(resume, (str, os.PathLike)):
        return load_checkpoint(resume), str(resume)
    raise CheckpointError(
        f"fit: resume must be 'latest', the path of a checkpoint file, a state dict or None, "
        f"got {type(resume).__name__}: {resume!r}."
    )


def _latest_on_every_rank(folder: Any) -> tuple[dict[str, Any], str] | None:
    """Rank 0 picks the newest good checkpoint and tells the others; each rank loads it.

    Every rank takes the same branch: the path, or rank 0's error, is broadcast to all.
    """
    latest, failure = None, None
    if is_main_process():
        try:
            latest = load_latest(folder)
        except Exception as error:  # told to the other ranks, then raised
            failure = error
    path, message = broadcast_object(
        (
            None if latest is None else str(latest[0]),
            None if failure is None else repr(failure),
        ),
        src=0,
    )
    if failure is not None:
        raise failure
    if message is not None:
        raise CheckpointError(
            f"resume='latest': rank 0 could not pick a checkpoint in {folder}: {message}. "
            f"See rank 0's error."
        )
    if path is None:
        return None
    if latest is not None:
        return latest[1], path
    return load_checkpoint(path), path


def resume_fit(
    learner: Learner, resume: Any, n_epochs: int, data: Any
) -> FitResult | Resume | None:
    """Loads the state ``resume`` names for ``fit(n_epochs, ...)``.

    Returns:
        ``None`` when there is nothing to resume (a fresh fit runs), the recorded
        :class:`~fluxtrain.FitResult` when that fit had already ended, or the :class:`Resume`
        point of its first epoch.
    """
    found = read_resume(learner, resume)
    if found is None:
        return None
    state, where = found
    check_format(state)
    saved = state["fitstate"]
    saved_n = saved.get("n_epochs")
    if saved_n != n_epochs:
        raise CheckpointError(
            f"fit: the checkpoint ({where}) was saved during a fit({saved_n}) call, at epoch "
            f"{saved.get('epoch', 0) + 1} of {saved_n}, but this call is fit({n_epochs}). Call "
            f"fit({saved_n}, resume=...) to finish that fit; to start a new fit of {n_epochs} "
            f"epochs from its state, call learner.load_state_dict(state) and then fit({n_epochs})."
        )
    ranks = state.get("ranks")
    ended = saved.get("ending") in ("completed", "cancelled")
    if ranks and len(ranks) != world_size() and not ended:
        raise CheckpointError(
            f"fit: the checkpoint ({where}) was written by a run of {len(ranks)} processes, "
            f"this one has {world_size()}. Resume an interrupted fit with the same number of "
            f"processes; to start a new fit from its state, call learner.load_state_dict(state) "
            f"and then fit({n_epochs})."
        )
    train, valid = data
    length = len(train) if hasattr(train, "__len__") else None
    saved_length = saved.get("steps_per_epoch")
    if length is not None and saved_length is not None and length != saved_length:
        raise CheckpointError(
            f"fit: the checkpoint ({where}) was saved with {saved_length} training batches per "
            f"epoch, this training data has {length}. Resume with the same data, batch size and "
            f"number of processes."
        )
    if bool(saved.get("has_validation")) != (valid is not None):
        had = "had" if saved.get("has_validation") else "had no"
        raise CheckpointError(
            f"fit: the checkpoint ({where}) {had} validation data, this fit "
            f"{'has' if valid is not None else 'has none'}. Resume with the same data."
        )
    load_learner_state(learner, state, data)
    fitstate = learner.fitstate
    if fitstate.ending in ("completed", "cancelled"):
        return FitResult(fitstate.epoch, fitstate.step, fitstate.stopped_by, fitstate.reason)
    fitstate.epoch, fitstate.total_epochs, point = resume_point(fitstate)
    fitstate.resumed = True
    if point.batches is None:
        fitstate.phase, fitstate.stage = (None, "") if point.phase == "train" else ("train", "done")
        fitstate.epoch_step = 0
    return point._replace(epoch_rng=learner._epoch_rng)
