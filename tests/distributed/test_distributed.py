"""Data-parallel training with two gloo processes on 127.0.0.1 (``ddp_script.py`` is one rank).

Tolerance: a 2-rank run averages the per-rank gradients of half-batches, a single process
takes the gradient of the whole batch; the two agree to float32 rounding, so weights and
metrics are compared with ``rtol=1e-5, atol=1e-6`` (the largest difference measured is
5e-8). Ranks agree with each other bitwise, and a killed and resumed run equals an
uninterrupted one bitwise.
"""

import datetime
import io
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from assertions import assert_identical
from ddp_script import (
    N_SAMPLES,
    RESUME_EPOCHS,
    SAMPLE_SIZES,
    accumulate_learner,
    dataset,
    equivalence_learner,
    samples_learner,
)
from runs import follow, free_port
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from fluxtrain import Callback, FitResult, Learner, MetricsPrinter, ProgressPrinter, Read
from fluxtrain.callbacks.checkpointer import Checkpointer
from fluxtrain.checkpoints.files import latest_checkpoint, load_checkpoint

SCRIPT = Path(__file__).with_name("ddp_script.py")
ROOT = Path(__file__).parents[2]
WORLD = 2
RTOL, ATOL = 1e-5, 1e-6

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not torch.distributed.is_available(),
    reason="needs torch.distributed with gloo on Linux's loopback interface 'lo'",
)


class Server:
    """One rank's ``ddp_script.py --serve`` process, its output lines read into a queue."""

    def __init__(self, rank: int) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
            "MASTER_ADDR": "127.0.0.1",
            "GLOO_SOCKET_IFNAME": "lo",
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "-W", "error", str(SCRIPT), "--serve", str(rank), str(WORLD)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("exit server-gone")

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def next_line(self, timeout: float = 60) -> tuple[str, str]:
        word, _, value = self.lines.get(timeout=timeout).strip().partition(" ")
        return word, value

    def close(self) -> None:
        if not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.kill()  # idle: nothing is lost, and torch's shutdown takes seconds
        self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def servers():
    started = [Server(rank) for rank in range(WORLD)]
    yield started
    for server in started:
        server.process.stdin.close()
    for server in started:
        server.close()


def run(servers, scenario, out, kill_at=None):
    """One run, every rank started as torchrun would; returns the steps rank 0 printed.

    With ``kill_at``, SIGKILLs every rank once rank 0 printed a step ``>= kill_at``.
    """
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    for server in servers:
        server.send(f"{scenario} {out} {port}")
    pids = []
    for server in servers:
        word, value = server.next_line()
        assert word == "pid", (word, value)
        pids.append(int(value))
    return follow([server.next_line for server in servers], pids, scenario, out, kill_at)


def results(out):
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def assert_close(got, want):
    assert list(got) == list(want)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=RTOL, atol=ATOL, msg=key)


def test_two_ranks_with_half_batches_train_like_one_process_with_the_whole_batch(servers, tmp_path):
    run(servers, "equivalence", tmp_path)
    ranks = results(tmp_path)
    # DistributedSampler deals sample i to rank i % 2: rank r's batch j holds samples
    # 8j + r, 8j + r + 2, ...; together, one process's batch j of 8 samples in order.
    single = equivalence_learner(8)
    single.fit(2)
    want = single.cbstate

    first, second = ranks
    assert first["steps_per_epoch"] == second["steps_per_epoch"] == 8 == N_SAMPLES // 8
    assert first["model_class"] == "Sequential"  # the user's module again after the fit
    assert_identical(first["model"], second["model"])
    assert_close(first["model"], single.model.state_dict())
    assert first["metrics_epoch"] == second["metrics_epoch"]  # all-reduced: the same
    for name, values in want.metrics_epoch.items():
        assert first["metrics_epoch"][name] == pytest.approx(values, rel=RTOL, abs=ATOL), name
    assert first["hyperparams"] == second["hyperparams"] == want.hyperparams
    assert first["fit"] == second["fit"] == FitResult(2, 16)

    assert "Epoch 2 valid" in first["progress"] and first["table"].startswith("epoch")
    assert "loss(rank 0)=" in first["progress"]  # rank 0's own batch, said so
    assert first["table"].splitlines()[0].endswith("Accuracy  (all 2 ranks)")  # global values
    assert second["progress"] == second["table"] == ""
    for rank in ranks:  # node-local folders: every rank stops at FitBegin, saying why
        assert rank["not_shared"].startswith(
            f"The checkpoint folder {tmp_path / 'local0'} is not shared: ranks [1] do not see"
        )
    assert not (tmp_path / "local1").exists()  # rank 1's Checkpointer wrote nothing
    for rank in ranks:  # resume="latest": every rank loaded the checkpoint rank 0 picked
        assert rank["resumed"]["fit"] == FitResult(2, 16)
        assert_identical(rank["resumed"]["model"], first["model"])
        assert rank["resumed"]["metrics_epoch"] == first["metrics_epoch"]
    path = latest_checkpoint(tmp_path / "checkpoints")
    state = load_checkpoint(path)
    assert len(state["ranks"]) == WORLD and list(state["model"]) == list(first["model"])

    # the checkpoint loads into a single-process learner
    fresh = equivalence_learner(
        8,
        ProgressPrinter(file=io.StringIO()),
        MetricsPrinter(file=io.StringIO()),
        Checkpointer(tmp_path / "single"),
    )
    fresh.load_state_dict(state)
    assert_identical(fresh.model.state_dict(), first["model"])


def test_gradient_accumulation_all_reduces_only_the_last_micro_batch(servers, tmp_path):
    run(servers, "accumulate", tmp_path)
    ranks = results(tmp_path)
    first, second = ranks
    counts = first["allreduces"]
    assert len(counts) == N_SAMPLES // WORLD // 4  # micro-batches of 4 per rank
    assert counts[0::2] == [0] * (len(counts) // 2)  # under no_sync
    assert all(c >= 1 for c in counts[1::2]), counts  # the update's micro-batch syncs
    assert second["allreduces"] == counts
    assert first["fit"].steps_completed == len(counts) // 2
    assert_identical(first["model"], second["model"])
    single = accumulate_learner(8)  # micro-batches of 8 in one process
    single.fit(1)
    assert_close(first["model"], single.model.state_dict())
    # float16 mixed precision with a GradScaler: the ranks skip and step together
    assert first["mixed_fit"] == second["mixed_fit"]
    assert first["mixed_fit"].steps_completed == len(counts) // 2
    assert_identical(first["mixed"]["model"], second["mixed"]["model"])


def test_accumulation_normalized_by_samples_over_unequal_ranks_equals_one_big_batch(
    servers, tmp_path
):
    run(servers, "samples", tmp_path)
    first, second = results(tmp_path)
    assert first["fit"].steps_completed == second["fit"].steps_completed == 1
    # the ranks weigh 12 and 8 samples: without the all-reduced count their updates would differ
    assert_identical(first["model"], second["model"])
    total = sum(map(sum, SAMPLE_SIZES))
    single = samples_learner([dataset()[0:total]], accumulate=False)  # all 20 in one batch
    single.fit(1)
    assert_close(first["model"], single.model.state_dict())


def test_both_ranks_killed_then_resumed_reach_the_uninterrupted_weights_bitwise(servers, tmp_path):
    total = RESUME_EPOCHS * N_SAMPLES // WORLD // 8
    assert run(servers, "resume", tmp_path / "reference") == list(range(1, total + 1))
    want = results(tmp_path / "reference")
    out = tmp_path / "killed"
    starts = []
    for kill_at in (2, 7):  # inside the first epoch, then inside the second
        starts.append(run(servers, "resume", out, kill_at=kill_at)[0])
        assert latest_checkpoint(out / "checkpoints") is not None
    steps = run(servers, "resume", out)
    assert starts[0] == 1 and starts[1] > 2 and steps[0] > starts[1], (starts, steps)
    assert steps[-1] == total
    got = results(out)
    for rank in range(WORLD):
        assert_identical(got[rank], want[rank], f"rank {rank}")
    assert not torch.equal(got[0]["rng"], got[1]["rng"])  # each rank kept its own RNG
    ranks = load_checkpoint(latest_checkpoint(out / "checkpoints"))["ranks"]
    assert len(ranks) == WORLD
    assert not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])


# -- in this process, as a process group of one ------------------------------------------------


class Watch(Callback):
    """Records the model's type, the state dict's keys and the targets of training steps."""

    stateaccess = {"model": Read, "batch.targets": Read}

    def init(self, learner):
        self.learner, self.models, self.keys, self.targets = learner, [], [], []

    def on_epoch_begin(self, phase, learner):
        self.models.append(learner.model)
        self.keys.append(list(self.learner.state_dict()["model"]))

    def on_step_begin(self, phase, learner):
        if phase.name == "train":
            self.targets.append(learner.batch.targets.flatten().tolist())


def test_the_learner_wraps_shards_and_sets_the_epoch(monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{free_port()}",
        rank=0,
        world_size=1,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        dataset = TensorDataset(torch.randn(12, 2), torch.arange(12.0).unsqueeze(1))
        shuffled = torch.Generator().manual_seed(5)
        loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=shuffled)
        model = torch.nn.Linear(2, 1)
        watch = Watch()
        learner = Learner(
            model,
            loader,
            torch.optim.SGD(model.parameters(), lr=0.1),
            torch.nn.functional.mse_loss,
            watch,
            usedefaultcallbacks=False,
        )
        learner.fit(2)
        learner.fit(1)
    finally:
        dist.destroy_process_group()
    assert learner.model is model  # the user's module after each fit
    wrapper = watch.models[0]
    assert isinstance(wrapper, DistributedDataParallel) and wrapper.module is model
    assert all(m is wrapper for m in watch.models)  # wrapped once, for all fits
    assert watch.keys == [["weight", "bias"]] * 3  # no "module." prefix
    # a DistributedSampler seeded with the loader's generator, at the epoch of each fit
    orders = []
    for epoch in range(3):
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, seed=5)
        sampler.set_epoch(epoch)
        orders += [list(chunk) for chunk in torch.tensor(list(sampler)).split(4)]
    assert watch.targets == [[float(i) for i in chunk] for chunk in orders]
    assert orders[:3] != orders[3:6]  # set_epoch changed the order
