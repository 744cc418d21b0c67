"""Loading a learner's state back, and resuming an interrupted fit.

:func:`load_learner_state` restores what :func:`~fluxtrain.checkpoints.learner_state.learner_state`
saved (:meth:`Learner.load_state_dict <fluxtrain.Learner.load_state_dict>`), once
:func:`~fluxtrain.checkpoints.checks.check_state` has found that it fits. ``fit(resume=...)`` reads
the state it names (:func:`read_resume`), checks that it was saved during the same fit, loads
it and continues from where it was saved
(:func:`~fluxtrain.checkpoints.position.resume_point`). A resumed fit restores the random states
the data was iterated with at the start of the interrupted epoch, replays the epoch's order,
drops the batches that were consumed (without running the model), then restores the random
states of the moment of the checkpoint (:func:`~fluxtrain.checkpoints.position.continue_epoch`).

Under ``torch.distributed`` each rank restores its own random, ``cbstate`` and callback states
from the checkpoint's ``"ranks"`` list (:func:`~fluxtrain.checkpoints.learner_state.for_this_rank`).

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner()
    >>> _ = learner.fit(steps=6)
    >>> tiny_learner().fit(steps=6, resume=learner.state_dict())  # it had ended
    FitResult(epochs_completed=2, steps_completed=6, stopped_by=None, reason=None)
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..distributed import (
    all_gather_object,
    broadcast_object,
    is_distributed,
    is_main_process,
    unwrap,
    world_size,
)
from ..exceptions import CheckpointError
from ..optimizers import saved_by_name
from ..state import FitResult
from ..state import length as data_length
from .checks import check_format, check_state
from .files import load_checkpoint, load_latest, read_state
from .learner_state import callback_keys, for_this_rank
from .position import Resume, resume_point
from .rng import set_generator_states, set_rng_state

if TYPE_CHECKING:
    from ..learner import Learner


@runtime_checkable
class CheckpointFolder(Protocol):
    """A callback that writes checkpoints into a folder (the :class:`~fluxtrain.Checkpointer`).

    ``fit(n, resume="latest")`` resumes from the newest good checkpoint of its ``folder``.
    """

    folder: Path
    trusted_types: tuple[type, ...]

    def save(self, kind: str = ...) -> Path | None: ...


# -- loading a state -------------------------------------------------------------------------


def load_learner_state(learner: Learner, state: Mapping[str, Any], data: Any) -> None:
    """Checks ``state`` against ``learner``, then restores it; ``data`` gets its generators.

    Under ``torch.distributed`` each rank restores its own entries of a checkpoint's
    ``"ranks"`` (:func:`~fluxtrain.checkpoints.learner_state.for_this_rank`).
    """
    check_format(state)
    state = for_this_rank(state)
    check_state(learner, state, data)
    if "sharded" in state:
        from .sharded import load_sharded  # torch.distributed.checkpoint, only when used

        load_sharded(learner, state["sharded"])
    else:
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
    learner._inner_rng = copy.deepcopy(state.get("inner_rng"))


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
        folder, trust = found[0].folder, found[0].trusted_types
        if is_distributed():
            return _latest_on_every_rank(folder, trust)
        latest = load_latest(folder, trust)
        if latest is None:
            return None
        return latest[1], str(latest[0])
    if isinstance(resume, (str, os.PathLike)):
        return load_checkpoint(resume), str(resume)
    raise CheckpointError(
        f"fit: resume must be 'latest', the path of a checkpoint file, a state dict or None, "
        f"got {type(resume).__name__}: {resume!r}."
    )


def _latest_on_every_rank(
    folder: Any, trust: tuple[type, ...]
) -> tuple[dict[str, Any], str] | None:
    """Rank 0 picks the newest good checkpoint and tells the others; each rank loads it.

    Every rank takes the same branch: the path, or rank 0's error, is broadcast to all.
    """
    latest, failure = None, None
    if is_main_process():
        try:
            latest = load_latest(folder, trust)
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
    blind = [r for r, seen in enumerate(all_gather_object(Path(path).exists())) if not seen]
    if blind:
        raise CheckpointError(not_shared(folder, blind))
    if latest is not None:
        return latest[1], path
    return read_state(Path(path), trust), path  # rank 0 checked it against the manifest


def not_shared(folder: Any, ranks: list[int]) -> str:
    """The message for a checkpoint folder that some ranks do not see.

    Examples:
        >>> not_shared("runs/a", [2, 3])[:56]
        'The checkpoint folder runs/a is not shared: ranks [2, 3]'
    """
    return (
        f"The checkpoint folder {folder} is not shared: ranks {ranks} do not see what rank 0 "
        f"writes there (node-local storage?). Every rank loads the checkpoints rank 0 writes: "
        f"give the Checkpointer a folder on storage all nodes mount (NFS, a shared file "
        f"system) at the same path."
    )


def fit_call(n_epochs: int | None, n_steps: int | None, validate_every: int | None) -> str:
    """The ``fit(...)`` call of a budget, in words.

    Examples:
        >>> fit_call(3, None, None), fit_call(None, 500, 100)
        ('fit(3)', 'fit(steps=500, validate_every=100)')
    """
    budget = f"steps={n_steps}" if n_steps is not None else str(n_epochs)
    every = "" if validate_every is None else f", validate_every={validate_every}"
    return f"fit({budget}{every})"


def resume_fit(
    learner: Learner,
    resume: Any,
    n_epochs: int | None,
    data: Any,
    n_steps: int | None = None,
    validate_every: int | None = None,
) -> FitResult | Resume | None:
    """Loads the state ``resume`` names for ``fit(n_epochs, ...)`` or ``fit(steps=n_steps)``.

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
    theirs = fit_call(saved.get("n_epochs"), saved.get("n_steps"), saved.get("validate_every"))
    ours = fit_call(n_epochs, n_steps, validate_every)
    if theirs != ours:
        raise CheckpointError(
            f"fit: the checkpoint ({where}) was saved during a {theirs} call, at epoch "
            f"{saved.get('epoch', 0) + 1}, step {saved.get('step', 0)}, but this call is {ours}. "
            f"Call {theirs[:-1]}, resume=...) to finish that fit; to start a new fit from its "
            f"state, call learner.load_state_dict(state) and then {ours}."
        )
    ranks = state.get("ranks")
    ended = saved.get("ending") in ("completed", "cancelled")
    if ranks and len(ranks) != world_size() and not ended:
        raise CheckpointError(
            f"fit: the checkpoint ({where}) was written by a run of {len(ranks)} processes, "
            f"this one has {world_size()}. Resume an interrupted fit with the same number of "
            f"processes; to start a new fit from its state, call learner.load_state_dict(state) "
            f"and then {fit_call(n_epochs, n_steps, validate_every)}."
        )
    train, valid = data
    length = data_length(train)
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
    fitstate.outer_step = None
    if point.batches is None:
        fitstate.phase, fitstate.stage = (None, "") if point.phase == "train" else ("train", "done")
        fitstate.epoch_step = 0
    if point.inner is not None:
        point = point._replace(inner=point.inner._replace(epoch_rng=learner._inner_rng))
    return point._replace(epoch_rng=learner._epoch_rng)
