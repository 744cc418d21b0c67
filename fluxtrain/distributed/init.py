"""Setting up and tearing down the process group under ``torchrun``, restarts included.

:func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``) and joins the process group on a store whose
keys are prefixed by ``TORCHELASTIC_RESTART_COUNT``: the processes that ``torchrun
--max-restarts`` starts after a failure form a new group instead of meeting the keys the
failed attempt left in the agent's store. It also tears the group down when the interpreter
exits, in an order that lets gloo's threads end first; :func:`destroy_distributed` does the
same earlier, by hand.

Examples:
    >>> from fluxtrain.distributed import init_distributed
    >>> init_distributed()  # not under torchrun (no RANK): one process, no group
    False
"""

from __future__ import annotations

import atexit
import datetime
import gc
import os
import sys
from typing import Any

import torch
import torch.distributed as dist

from ..exceptions import FluxTrainError
from .process_group import is_distributed

_state: dict[str, Any] = {"registered": False, "failed": False}


def init_distributed(backend: str | None = None, timeout: float | None = None) -> bool:
    """Joins the process group torchrun describes; ``False`` (and nothing done) without one.

    The store is the one ``env://`` gives (the torchrun agent's), with its keys prefixed by
    the restart count, so ``torchrun --max-restarts=N`` restarts form a new group and
    ``fit(n, resume="latest")`` continues from the newest checkpoint. With CUDA,
    ``torch.cuda.set_device(LOCAL_RANK)`` is called first. At interpreter exit the group is
    torn down (:func:`destroy_distributed`) unless the script did so itself.

    Args:
        backend: ``"nccl"``, ``"gloo"``, ...; default ``"nccl"`` when CUDA is available,
            ``"gloo"`` otherwise.
        timeout: Seconds a collective may wait for the other ranks (torch's default: 10
            minutes for gloo).

    Returns:
        ``True`` when this process joined a group (or one was already initialized).

    Raises:
        FluxTrainError: ``torchrun``'s environment is incomplete (``RANK`` without
            ``WORLD_SIZE``, ``MASTER_ADDR`` or ``MASTER_PORT``), or ``timeout`` is not a
            positive number.

    Examples:
        >>> init_distributed(timeout=60)
        False
    """
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise FluxTrainError(
            f"init_distributed: timeout must be a positive number of seconds, got {timeout!r}."
        )
    if is_distributed():
        return True
    if "RANK" not in os.environ:
        return False
    missing = [k for k in ("WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise FluxTrainError(
            f"init_distributed: RANK is set but {', '.join(missing)} not: start the script with "
            f"torchrun (torchrun --nproc-per-node=2 train.py), which sets them all."
        )
    cuda = torch.cuda.is_available()
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if cuda and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    wait = datetime.timedelta(seconds=timeout) if timeout is not None else None
    store, rank, world_size = next(dist.rendezvous("env://", timeout=wait or _DEFAULT))
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"fluxtrain/restart-{restart}", store)
    options: dict[str, Any] = {} if wait is None else {"timeout": wait}
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, **options)
    if not _state["registered"]:
        _state["registered"] = True
        atexit.register(_at_exit)
        previous = sys.excepthook

        def failed(*args: Any) -> None:  # a rank that fails must not wait for the others
            _state["failed"] = True
            previous(*args)

        sys.excepthook = failed
    return True


_DEFAULT = datetime.timedelta(minutes=10)


def destroy_distributed(barrier: bool = True) -> None:
    """Tears the process group down so that no gloo thread outlives the interpreter.

    Collects garbage first (a ``DistributedDataParallel`` wrapper a learner kept holds the
    group), waits for every rank (``barrier``) so none closes its connections while another
    still talks to it, then destroys the group. Without a group it does nothing.

    Args:
        barrier: Wait for the other ranks first; pass ``False`` when a rank failed.

    Examples:
        >>> destroy_distributed()  # no group: nothing to do
    """
    if not is_distributed():
        return
    gc.collect()
    if barrier:
        dist.barrier()
    dist.destroy_process_group()
    gc.collect()


def _at_exit() -> None:
    destroy_distributed(barrier=not _state["failed"])
