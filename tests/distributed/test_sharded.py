"""FSDP2-sharded and DDP runs of 2 and 4 gloo processes on 127.0.0.1 (``sharded_script.py``).

Killed runs (every process SIGKILLed, torchrun's workers too) resume bitwise: weights (every
rank's shards and the gathered model), optimizer state, records and random states equal those
of the uninterrupted run. A 2-rank FSDP2 run averages the gradients of half-batches, a single
process takes that of the whole batch: they agree to float32 rounding, compared with
``rtol=1e-5, atol=1e-6`` (the largest difference measured is 6e-8).
"""

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from assertions import assert_identical
from ddp_script import N_SAMPLES, dataset
from runs import follow as follow_ranks
from runs import free_port
from sharded_script import BATCH, EPOCHS, build, schedules
from torch.nn.parallel import DistributedDataParallel

from fluxtrain import Accuracy, Metrics, Recorder
from fluxtrain.callbacks.checkpointer import Checkpointer
from fluxtrain.checkpoints import read_manifest
from fluxtrain.checkpoints.files import load_checkpoint
from fluxtrain.checkpoints.manifest import verify
from fluxtrain.checkpoints.sharded import export_state_dict
from fluxtrain.distributed import destroy_distributed, init_distributed, no_gradient_sync
from fluxtrain.exceptions import FluxTrainError

SCRIPT = Path(__file__).with_name("sharded_script.py")
ROOT = Path(__file__).parents[2]
RTOL, ATOL = 1e-5, 1e-6
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    "MASTER_ADDR": "127.0.0.1",
    "GLOO_SOCKET_IFNAME": "lo",
    "OMP_NUM_THREADS": "1",
}

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not torch.distributed.is_available(),
    reason="needs torch.distributed with gloo on Linux's loopback interface 'lo'",
)


class Lines:
    """A process's output lines, read into a queue by a thread."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self.lines = process, queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("exit gone")

    def next(self, timeout: float = 90) -> tuple[str, str]:
        word, _, value = self.lines.get(timeout=timeout).strip().partition(" ")
        return word, value


@pytest.fixture(scope="module")
def servers():
    command = [sys.executable, "-W", "error", str(SCRIPT), "--serve"]
    started = []
    for rank in range(4):
        process = subprocess.Popen(
            [*command, str(rank)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV
        )
        started.append(Lines(process))
    yield started
    for server in started:
        server.process.stdin.close()
        server.process.kill()
        server.process.wait(timeout=10)
        server.process.stdout.close()


def run(servers, scenario, out, world, kill_at=None):
    """One forked run of ``world`` ranks; SIGKILLs them all once rank 0 printed ``kill_at``.

    Returns the steps rank 0 printed.
    """
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ranks = servers[:world]
    for server in servers:
        server.process.stdin.write(f"{scenario} {out} {port} {world}\n")
        server.process.stdin.flush()
    pids = []
    for server in ranks:  # the server's "pid" and the child's "worker", in either order
        told = dict([server.next(), server.next()])
        assert sorted(told) == ["pid", "worker"], told
        pids.append(int(told["pid"]))
    return follow_ranks([server.next for server in ranks], pids, scenario, out, kill_at)


def results(out, world):
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


def assert_same_run(got, want):
    """Bitwise: shards, gathered model and optimizer, records, random states; per rank."""
    assert len(got) == len(want)
    for rank, (mine, theirs) in enumerate(zip(got, want)):
        theirs = {k: v for k, v in theirs.items() if k != "warnings"}
        assert_identical({k: mine[k] for k in theirs}, theirs, f"rank {rank}")


def kill_and_resume(servers, tmp_path, scenario, world, kill_at, corrupt=None):
    reference = tmp_path / "reference"
    total = EPOCHS * N_SAMPLES // world // BATCH
    assert run(servers, scenario, reference, world) == list(range(1, total + 1))
    out = tmp_path / "killed"
    assert run(servers, scenario, out, world, kill_at=kill_at)[0] == 1
    newest = read_manifest(out / "checkpoints")["checkpoints"][-1]
    assert newest["kind"] == "step" and 0 < newest["step"] < total
    if corrupt is not None:  # one rank's shard of the newest checkpoint, same size
        shard = out / "checkpoints" / newest["file"] / corrupt
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    steps = run(servers, scenario, out, world)
    assert steps[-1] == total
    got = results(out, world)
    assert_same_run(got, results(reference, world))
    return newest, steps, got


def test_fsdp_two_ranks_train_like_one_process_and_save_sharded_folders(servers, tmp_path):
    run(servers, "fsdp_equivalence", tmp_path, 2)
    first, second = results(tmp_path, 2)
    # DistributedSampler deals sample i to rank i % 2: the ranks' batches j make up one
    # process's batch j of 8 samples in order.
    single = build("plain", 8, Recorder(), Metrics(Accuracy()), schedules(), shuffle=False)
    single.fit(EPOCHS)
    assert first["model_class"] == "FSDPSequential"  # trained as it is, not wrapped in DDP
    assert_identical(first["model"], second["model"])
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(first["model"][key], value, rtol=RTOL, atol=ATOL, msg=key)
    assert first["metrics_epoch"] == second["metrics_epoch"]
    for name, values in single.cbstate.metrics_epoch.items():
        assert first["metrics_epoch"][name] == pytest.approx(values, rel=RTOL, abs=ATOL), name
    assert first["hyperparams"] == second["hyperparams"] == single.cbstate.hyperparams
    assert set(single.cbstate.hyperparams) == {"LearningRate", "Momentum"}

    folder = tmp_path / "checkpoints"
    entries = read_manifest(folder)["checkpoints"]
    assert [e["file"] for e in entries] == ["checkpoint-000001", "checkpoint-000002"]
    names = [".metadata", "__0_0.distcp", "__1_0.distcp", "learner.pt"]
    assert sorted(entries[-1]["files"]) == names
    assert sorted(p.name for p in (folder / "checkpoint-000002").iterdir()) == names
    # one full state_dict for inference: the gathered weights, bitwise
    export_state_dict(folder / "checkpoint-000002", tmp_path / "model.pt")
    assert_identical(torch.load(tmp_path / "model.pt", weights_only=True), first["model"])
    # resharded into one process, unsharded, for a new fit
    callbacks = (Recorder(), Metrics(Accuracy()), schedules(), Checkpointer(folder))
    fresh = build("plain", 8, *callbacks, shuffle=False)
    fresh.load_state_dict(load_checkpoint(folder / "checkpoint-000002"))
    assert_identical(fresh.model.state_dict(), first["model"])
    assert_identical(
        fresh.optimizer.state_dict()["state"][0], first["optimizer"]["state"]["0.weight"]
    )
    assert fresh.cbstate.hyperparams == first["hyperparams"]


def test_fsdp_at_4_killed_resumes_bitwise_and_skips_a_corrupt_shard(servers, tmp_path):
    newest, _, got = kill_and_resume(servers, tmp_path, "fsdp", 4, 3, corrupt="__3_0.distcp")
    warned = got[0]["warnings"]
    assert len(warned) == 1 and f"{newest['file']}: the sha256 of __3_0.distcp" in warned[0]
    assert got[1]["warnings"] == []  # rank 0 picks the checkpoint


@pytest.fixture(scope="module")
def reference_fsdp_2(servers, tmp_path_factory):
    """The uninterrupted 2-rank FSDP2 run's results."""
    out = tmp_path_factory.mktemp("reference")
    run(servers, "fsdp", out, 2)
    return results(out, 2)


def test_fsdp_at_2_killed_resumes_bitwise(servers, reference_fsdp_2, tmp_path):
    out = tmp_path / "killed"
    assert run(servers, "fsdp", out, 2, kill_at=11)[0] == 1
    steps = run(servers, "fsdp", out, 2)
    assert 9 < steps[0] <= 12 and steps[-1] == 16  # resumed in the second epoch
    got = results(out, 2)
    assert_same_run(got, reference_fsdp_2)
    assert got[0]["warnings"] == []


def test_fsdp_async_saves_are_listed_once_complete_and_resume_bitwise(
    servers, reference_fsdp_2, tmp_path
):
    out = tmp_path / "async"
    printed = run(servers, "fsdp_async", out, 2, kill_at=11)
    folder = out / "checkpoints"
    listed = read_manifest(folder)["checkpoints"]
    assert listed and listed[-1]["step"] < printed[-1]  # the save in progress is not listed
    assert all(verify(folder, entry) is None for entry in listed)
    steps = run(servers, "fsdp_async", out, 2)
    assert steps[0] == listed[-1]["step"] + 1 and steps[-1] == 16
    assert_same_run(results(out, 2), reference_fsdp_2)
    listed = read_manifest(folder)["checkpoints"]
    assert [e["kind"] for e in listed][-2:] == ["step", "epoch"]  # FitEnd waited and listed it
    assert all(verify(folder, entry) is None for entry in listed)
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- under torchrun ---------------------------------------------------------------------------


def torchrun(out, restarts, **env):
    """``torchrun`` of 2 ``sharded_script.py fsdp OUT`` workers (its default, static rendezvous:
    the agent's store, and its keys, outlive a restart)."""
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--master-addr=127.0.0.1",
        f"--master-port={free_port()}",
        "--nproc-per-node=2",
        f"--max-restarts={restarts}",
        "--monitor-interval=0.1",
        str(SCRIPT),
        "fsdp",
        str(out),
    ]
    with open(out / "torchrun.txt", "a") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env={**ENV, **env}
        )
    return Lines(process)


def follow(job, kill_at=None):
    """Reads a torchrun job's output until it ends; SIGKILLs torchrun and its workers (which
    run in sessions of their own) once rank 0 printed step ``kill_at`` or later.

    Returns the torchrun exit code and the steps printed by each attempt (one list per start
    of the workers).
    """
    attempts, workers = [], {}
    while True:
        word, value = job.next()
        if word == "exit":
            job.process.stdout.close()
            return job.process.wait(timeout=30), attempts
        if word == "worker":
            rank, pid = map(int, value.split())
            if rank == 0:
                attempts.append([])
            workers[rank] = pid
        elif word == "step":
            attempts[-1].append(int(value))
            if kill_at is not None and attempts[-1][-1] >= kill_at:
                for pid in [job.process.pid, *workers.values()]:
                    os.kill(pid, signal.SIGKILL)
                kill_at = None


def test_torchrun_restarts_a_killed_worker_and_resumes_from_a_sigkill_bitwise(
    reference_fsdp_2, tmp_path
):
    # rank 1 SIGKILLs itself after step 5: torchrun restarts both workers, which form a new
    # group (init_distributed) and resume from the newest checkpoint by themselves
    code, attempts = follow(torchrun(tmp_path / "elastic", 1, KILL_AT="1:5"))
    assert code == 0 and len(attempts) == 2, (code, attempts)
    assert attempts[0][-1] == 5 and attempts[1][0] in (5, 6) and attempts[1][-1] == 16
    assert_same_run(results(tmp_path / "elastic", 2), reference_fsdp_2)

    # the whole job SIGKILLed (torchrun and both workers) mid-epoch, then started again
    out = tmp_path / "killed"
    code, attempts = follow(torchrun(out, 0), kill_at=3)
    assert code == -signal.SIGKILL and attempts[0][0] == 1
    code, attempts = follow(torchrun(out, 0))
    assert code == 0 and 1 < attempts[0][0] <= 4 and attempts[0][-1] == 16
    assert_same_run(results(out, 2), reference_fsdp_2)


def test_ddp_at_4_killed_resumes_bitwise(servers, tmp_path):
    _, steps, got = kill_and_resume(servers, tmp_path, "ddp", 4, 3)
    assert steps[0] > 1 and got[0]["model_class"] == "Sequential"


def test_no_gradient_sync_defers_fsdp2_reduction_to_the_next_backward(servers, tmp_path):
    run(servers, "no_sync", tmp_path, 2)
    first, second = results(tmp_path, 2)
    assert first["inside"] == second["inside"] == [True] * 4  # no gradient reduced inside
    assert_identical(first["grads"], second["grads"])
    # the reduced gradient: the mean over ranks of each rank's sum of its two micro-batches
    model, loss = build("plain", 4).model, torch.nn.functional.cross_entropy
    inputs, targets = dataset(16).tensors
    for r in range(2):
        for i in (r, r + 2):
            (loss(model(inputs[i::4]), targets[i::4]) / 2).backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(first["grads"][name], parameter.grad, rtol=RTOL, atol=ATOL)


def test_no_gradient_sync_of_plain_and_ddp_models(monkeypatch):
    plain = torch.nn.Linear(2, 1)
    assert isinstance(no_gradient_sync(plain), contextlib.nullcontext)
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1
    )
    try:
        wrapper = DistributedDataParallel(plain)
        with no_gradient_sync(wrapper):
            assert not wrapper.require_backward_grad_sync
        assert wrapper.require_backward_grad_sync
    finally:
        del wrapper
        destroy_distributed(barrier=False)


def test_init_distributed_needs_torchruns_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert init_distributed() is False and not dist.is_initialized()  # one process
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(FluxTrainError, match="RANK is set but WORLD_SIZE, MASTER_PORT not"):
        init_distributed()
    with pytest.raises(FluxTrainError, match="timeout must be a positive number .* got 0"):
        init_distributed(timeout=0)
