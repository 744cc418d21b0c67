"""What a learner saves to resume exactly (its state dict), and where a resumed fit continues.

:meth:`Learner.state_dict <fluxtrain.Learner.state_dict>` is built here: the model, the
optimizer, the fit counters with the position in the fit, ``cbstate``, every callback's own
state, the random states (Python, NumPy, torch CPU and, once initialized, CUDA) and the states
of the training and validation data's random generators. A resumed fit restores the random
states the data was iterated with at the start of the interrupted epoch, replays the epoch's
order, drops the batches that were consumed (without running the model), then restores the
random states of the moment of the checkpoint.

Under ``torch.distributed`` the model and the optimizer are the same on every rank, but the
random states, ``cbstate`` and the callbacks' states (a metric's sums so far) are each rank's
own. The :class:`~fluxtrain.Checkpointer` gathers them from every rank (:func:`rank_states`)
into the checkpoint's ``"ranks"`` list; loading, each rank takes its own entry
(:func:`for_this_rank`), and a single process, or a run of another size, takes rank 0's.

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
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from .checkpoint import CheckpointError, load_checkpoint, load_latest
from .distributed import (
    all_gather_object,
    broadcast_object,
    is_distributed,
    is_main_process,
    rank,
    unwrap,
    world_size,
)
from .rng import (
    check_generators,
    generator_states,
    restore,
    rng_state,
    set_generator_states,
    set_rng_state,
    snapshot,
)
from .state import FitResult

if TYPE_CHECKING:
    from .learner import Learner

FORMAT = "fluxtrain.learner/1"


class Resume(NamedTuple):
    """Where a resumed fit continues within its first epoch.

    Attributes:
        phase: ``"train"`` or ``"valid"``: the phase to run first.
        batches: Batches of that phase's epoch already consumed, or ``None`` to start it anew.
        epoch_rng: The :func:`~fluxtrain.rng.snapshot` taken at the start of that epoch.
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


# -- the learner's state dict ----------------------------------------------------------------


def callback_keys(learner: Learner) -> list[str]:
    """The keys callback states are saved under: ``"<position>:<name>"``."""
    return [f"{i}:{cb.name}" for i, cb in enumerate(learner.callbacks)]


def learner_state(learner: Learner) -> dict[str, Any]:
    """Everything :meth:`Learner.load_state_dict` needs; see :meth:`Learner.state_dict`.

    The model's state dict is that of the user's module, also while a distributed fit has it
    wrapped in ``DistributedDataParallel`` (no ``"module."`` prefix), so the state loads into
    a single-process learner too.
    """
    return {
        "format": FORMAT,
        "model": unwrap(learner.model).state_dict(),
        "optimizer": learner.optimizer.state_dict(),
        "optimizer_class": type(learner.optimizer).__name__,
        "fitstate": dataclasses.asdict(learner.fitstate),
        **rank_state(learner),
    }


RANK_KEYS = ("cbstate", "callbacks", "rng", "data_rng", "epoch_rng")
"""The entries of a learner state that are each rank's own under ``torch.distributed``."""


def rank_state(learner: Learner) -> dict[str, Any]:
    """A copy of the entries of :func:`learner_state` that differ between ranks (``RANK_KEYS``).

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> sorted(rank_state(tiny_learner()))
        ['callbacks', 'cbstate', 'data_rng', 'epoch_rng', 'rng']
    """
    train, valid = learner._fit_data
    callbacks = {k: cb.state_dict() for k, cb in zip(callback_keys(learner), learner.callbacks)}
    return copy.deepcopy(
        {
            "cbstate": dict(vars(learner.cbstate)),
            "callbacks": callbacks,
            "rng": rng_state(),
            "data_rng": {"train": generator_states(train), "valid": generator_states(valid)},
            "epoch_rng": learner._epoch_rng,
        }
    )


def rank_states(learner: Learner) -> list[dict[str, Any]]:
    """Every rank's :func:`rank_state`, indexed by rank, with tensors on the CPU.

    A collective under ``torch.distributed``: every rank must call it at the same point.
    Without a process group, a list of this process's one state.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> len(rank_states(tiny_learner()))
        1
    """
    return all_gather_object(_to_cpu(rank_state(learner)))


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return type(value)((k, _to_cpu(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_to_cpu(v) for v in value)
    return value


def for_this_rank(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` with this rank's own entries of its ``"ranks"`` list, if it has one.

    A checkpoint written by a run of ``N`` processes holds ``N`` entries; a run of another
    size (a single process, say) takes the top-level ones, which are rank 0's.

    Examples:
        >>> state = {"rng": "rank 0's", "ranks": [{"rng": "rank 0's"}, {"rng": "rank 1's"}]}
        >>> for_this_rank(state)["rng"]  # a single process
        "rank 0's"
    """
    ranks = state.get("ranks")
    if not ranks or len(ranks) != world_size() or len(ranks) == 1:
        return state
    return {**state, **ranks[rank()]}


def check_format(state: Any) -> None:
    """Raises unless ``state`` is a learner state dict of the format this version reads."""
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        got = state.get("format") if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointError(
            f"Expected a fluxtrain learner state (format {FORMAT!r}), got {got!r}. Pass what "
            f"learner.state_dict() returned, or a file the Checkpointer wrote."
        )


def check_state(learner: Learner, state: Mapping[str, Any], data: Any) -> None:
    """Raises a :class:`CheckpointError` naming what does not fit ``learner``; changes nothing."""
    check_format(state)
    for part, key, what in zip(data, ("train", "valid"), ("training", "validation")):
        if part is not None:
            check_generators(part, state["data_rng"][key], what)
    _check_model(learner.model, state["model"])
    _check_optimizer(learner.optimizer, state["optimizer"], state.get("optimizer_class"))
    saved, ours = list(state["callbacks"]), callback_keys(learner)
    if saved != ours:
        missing = [k for k in saved if k not in ours]
        extra = [k for k in ours if k not in saved]
        raise CheckpointError(
            f"load_state_dict: the checkpoint was saved with the callbacks {saved}, this learner "
            f"has {ours} (not in this learner: {missing or 'none'}; not in the checkpoint: "
            f"{extra or 'none'}). Build the learner with the same callbacks, in the same order "
            f"and with the same usedefaultcallbacks, as the run that saved it."
        )


def _check_model(model: torch.nn.Module, saved: Mapping[str, Any]) -> None:
    ours = unwrap(model).state_dict()
    missing = [k for k in ours if k not in saved]
    unexpected = [k for k in saved if k not in ours]
    shapes = [
        f"{k} (checkpoint {tuple(saved[k].shape)}, model {tuple(v.shape)})"
        for k, v in ours.items()
        if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        hint = "Build the same architecture as the run that saved it."
        if unexpected and all(k.startswith("module.") for k in unexpected):
            hint = (
                "The checkpoint's keys start with 'module.': it holds the state of a "
                "DistributedDataParallel wrapper. Strip the prefix with torch.nn.modules.utils."
                "consume_prefix_in_state_dict_if_present(state['model'], 'module.')."
            )
        raise CheckpointError(
            f"load_state_dict: the checkpoint's model does not fit this model. Missing keys: "
            f"{missing or 'none'}; unexpected keys: {unexpected or 'none'}; shape mismatches: "
            f"{shapes or 'none'}. {hint}"
        )


def _check_optimizer(optimizer: torch.optim.Optimizer, saved: Mapping[str, Any], kind: Any) -> None:
    if kind is not None and kind != type(optimizer).__name__:
        raise CheckpointError(
            f"load_state_dict: the checkpoint's optimizer is a {kind}, this one a "
            f"{type(optimizer).__name__}. Build the same optimizer as the run that saved it."
        )
    ours = [len(g["params"]) for g in optimizer.param_groups]
    theirs = [len(g["params"]) for g in saved["param_groups"]]
    if ours != theirs:
        raise CheckpointError(
            f"load_state_dict: the checkpoint's optimizer has param groups of {theirs} "
            f"parameters, this one of {ours}. Build the optimizer over the same parameter groups "
            f"as the run that saved it."
        )
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ids = [i for g in saved["param_groups"] for i in g["params"]]
    for param, index in zip(params, ids):
        for name, value in saved["state"].get(index, {}).items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                raise CheckpointError(
                    f"load_state_dict: the optimizer state {name!r} of parameter {index} has "
                    f"shape {tuple(value.shape)}, the parameter {tuple(param.shape)}. Build the "
                    f"optimizer over the parameters in the same order as the run that saved it."
                )


def load_learner_state(learner: Learner, state: Mapping[str, Any], data: Any) -> None:
    """Checks ``state`` against ``learner``, then restores it; ``data`` gets its generators.

    Under ``torch.distributed`` each rank restores its own entries of a checkpoint's
    ``"ranks"`` (:func:`for_this_rank`).
    """
    check_format(state)
    state = for_this_rank(state)
    check_state(learner, state, data)
    unwrap(learner.model).load_state_dict(state["model"])
    learner.optimizer.load_state_dict(state["optimizer"])
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
        from .callbacks.checkpointer import Checkpointer

        found = [cb for cb in learner.callbacks if isinstance(cb, Checkpointer)]
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
