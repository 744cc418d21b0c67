"""Data-parallel training on scikit-learn's handwritten digits with ``torch.distributed``.

Every process builds the same learner over the whole dataset; the learner gives each process
its shard of the loaders, wraps the model in ``DistributedDataParallel``, all-reduces the
metrics, and prints and checkpoints from rank 0 only.

    torchrun --nproc_per_node=2 examples/ddp_digits.py   # CPUs (gloo), or one GPU each (nccl)
    python examples/ddp_digits.py                        # starts 2 CPU processes itself
    FLUXTRAIN_FAST=1 python examples/ddp_digits.py       # 2 epochs, for CI
    python examples/ddp_digits.py --folder runs/ddp      # checkpoints; run again to resume

Started with ``python``, it spawns 2 processes that meet on a free port of 127.0.0.1 (the
loopback interface only). Started by ``torchrun``, it uses the GPU ``LOCAL_RANK`` names when
CUDA is available, the CPU otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import torch
import torch.multiprocessing as mp
from digits_data import digits_loaders, digits_model

from fluxtrain import Accuracy, Checkpointer, Learner, Metrics, Scheduler, ToDevice
from fluxtrain.distributed import destroy_distributed, init_distributed, is_main_process, rank

PROCESSES = 2  # when started with python


def fit_digits(device: torch.device, folder: str | None) -> float:
    """Trains on this process's shard; returns the last epoch's validation accuracy."""
    n_epochs = 2 if os.environ.get("FLUXTRAIN_FAST") else 10
    torch.manual_seed(0)  # the same initial weights everywhere (DDP copies rank 0's anyway)
    model = digits_model()
    torch.manual_seed(1 + rank())  # but each process its own dropout masks
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    checkpoints = [Checkpointer(folder)] if folder else []
    learner = Learner(
        model,
        digits_loaders(batch_size=32),  # per process: 2 processes step with 64 images
        optimizer,
        torch.nn.functional.cross_entropy,
        ToDevice(device),
        Metrics(Accuracy()),
        Scheduler.onecycle(n_epochs, 0.5),
        *checkpoints,
    )
    learner.fit(n_epochs, resume="latest" if folder else None)
    accuracy = learner.cbstate.metrics_epoch["valid/Accuracy"][-1]  # the same on all ranks
    if is_main_process():
        print(f"validation accuracy: {accuracy:.3f}")
    if not os.environ.get("FLUXTRAIN_FAST"):
        assert accuracy > 0.95, accuracy
    return accuracy


def train(folder: str | None, use_cuda: bool) -> float:
    """One process's part of the run, between setting up and tearing down the process group."""
    # NCCL with CUDA (after torch.cuda.set_device(LOCAL_RANK)), gloo otherwise; a new group on
    # every torchrun restart
    init_distributed("nccl" if use_cuda else "gloo", timeout=120)
    device = (
        torch.device("cuda", int(os.environ["LOCAL_RANK"])) if use_cuda else torch.device("cpu")
    )
    try:
        accuracy = fit_digits(device, folder)
    except BaseException:
        destroy_distributed(barrier=False)  # the other ranks may be anywhere
        raise
    # collects the learner's DDP wrapper (it holds the group) so that gloo's threads stop now,
    # not at interpreter exit; waits for every rank; then destroys the group
    destroy_distributed()
    return accuracy


def spawned(process: int, port: int, folder: str | None) -> None:
    """The entry point of a process that ``python examples/ddp_digits.py`` started."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(process),
        LOCAL_RANK=str(process),
        WORLD_SIZE=str(PROCESSES),
    )
    loopback = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    if loopback:  # gloo talks over this interface instead of the hostname's
        os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback[0])
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // PROCESSES))
    train(folder, use_cuda=False)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", help="checkpoint folder; a second run resumes from it")
    folder = parser.parse_args().folder
    if "RANK" in os.environ:  # started by torchrun: this is one of the processes
        train(folder, use_cuda=torch.cuda.is_available())
    else:
        print(f"starting {PROCESSES} processes on the CPU", file=sys.stderr)
        mp.spawn(spawned, args=(free_port(), folder), nprocs=PROCESSES)


if __name__ == "__main__":
    main()
