import copy
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from assertions import assert_identical
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import Callback, Learner, LearningRate, Metrics, Momentum, Read, Recorder
from fluxtrain.callbacks.checkpointer import Checkpointer
from fluxtrain.checkpoints.files import CheckpointError, latest_checkpoint, read_manifest
from fluxtrain.scheduler import Scheduler

SCRIPT = Path(__file__).with_name("resume_script.py")
ROOT = Path(__file__).parents[2]


# -- the kill test -----------------------------------------------------------------------------


def start(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    command = [sys.executable, str(SCRIPT), *map(str, args)]
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(server, folder, out, kill_after=None, delay=0.0, mode="epochs"):
    """Runs the script in the server; with kill_after, SIGKILLs it once it printed that step."""
    server.stdin.write(f"{folder} {out} {mode}\n")
    server.stdin.flush()
    pid, steps, killed = None, [], False
    for line in server.stdout:
        word, _, value = line.partition(" ")
        if word == "pid":
            pid = int(value)
        elif word == "step":
            steps.append(int(value))
            if kill_after is not None and steps[-1] >= kill_after and not killed:
                time.sleep(delay)
                os.kill(pid, signal.SIGKILL)
                killed = True
        elif word == "exit":
            code = int(value)
            break
    else:
        raise AssertionError(f"the server stopped: {server.stderr.read()}")
    assert code == (-signal.SIGKILL if killed else 0), (code, server.stderr.read(4000))
    return steps, killed


def test_sigkill_at_random_steps_then_resume_equals_uninterrupted_run(tmp_path):
    rng = random.Random(20240611)
    # 6 steps per epoch: kills inside epochs and right at the end of the 1st and 3rd epochs
    kills = [rng.randint(1, 4), 6, rng.randint(8, 11), 18, rng.randint(19, 22)]
    folder, out = tmp_path / "killed", tmp_path / "resumed.pt"
    reference_out = tmp_path / "reference.pt"
    with start(tmp_path / "reference", reference_out) as reference, start("--serve") as server:
        reference.stdin.close()  # the uninterrupted run, alongside
        starts = []
        for kill_after in kills:
            steps, killed = run(server, folder, out, kill_after, delay=rng.uniform(0.0, 0.02))
            assert killed and latest_checkpoint(folder) is not None
            starts.append(steps[0])
        steps, killed = run(server, folder, out)
        server.stdin.close()
        assert reference.wait() == 0, reference.stderr.read()
    assert steps[-1] == 24 and steps[0] > 1 and not killed, steps
    assert starts[0] == 1 and all(s > 1 for s in starts[1:]), starts  # resumed, not restarted
    want = torch.load(reference_out, weights_only=False)
    got = torch.load(out, weights_only=False)
    assert_identical(got, want)
    assert want["hyperparams"] is not None and len(want["hyperparams"]["LearningRate"]) == 24


def test_sigkill_under_a_step_budget_with_validate_every_then_resume_is_bitwise(tmp_path):
    rng = random.Random(20261202)
    # 6 batches per epoch, a validation after steps 4, 8, ...: kills in both and across passes
    kills = [rng.randint(1, 3), 4, rng.randint(5, 7), 8, 12, rng.randint(13, 17)]
    folder, out = tmp_path / "killed", tmp_path / "resumed.pt"
    reference_out = tmp_path / "reference.pt"
    with (
        start(tmp_path / "reference", reference_out, "steps") as reference,
        start("--serve") as server,
    ):
        reference.stdin.close()
        for kill_after in kills:
            steps, killed = run(server, folder, out, kill_after, rng.uniform(0.0, 0.03), "steps")
            assert killed and latest_checkpoint(folder) is not None
        steps, killed = run(server, folder, out, mode="steps")
        server.stdin.close()
        assert reference.wait() == 0, reference.stderr.read()
    assert steps[-1] == 20 and steps[0] > 1 and not killed, steps
    want = torch.load(reference_out, weights_only=False)
    got = torch.load(out, weights_only=False)
    assert_identical(got, want)
    assert want["metrics_at"]["valid/Loss"] == [4, 8, 12, 16, 20]
    assert want["result"].steps_completed == 20 and want["result"].epochs_completed == 4


# -- in-process resumes --------------------------------------------------------------------------


class Interrupt(Callback):
    """Raises KeyboardInterrupt at the k-th call of one hook in one phase."""

    stateaccess = {"fitstate": Read}

    def __init__(self, hook="on_fit_begin", phase="none", k=0):
        self.phase, self.k, self.calls = phase, k, 0
        self.endings = []
        setattr(self, hook, self._hit)

    def _hit(self, phase, learner):
        if phase.name == self.phase:
            self.calls += 1
            if self.calls == self.k:
                raise KeyboardInterrupt

    def on_fit_end(self, phase, learner):
        self.endings.append(learner.fitstate.ending)


def shuffled_learner(folder=None, *callbacks, generator=True, n=40, hidden=8, dropout=0.2):
    torch.manual_seed(0)
    data = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, generator=data)
    y = x.sum(1, keepdim=True)
    shuffle = torch.Generator().manual_seed(2) if generator else None
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=shuffle)
    valid = DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout) if dropout else torch.nn.Identity(),
        torch.nn.Linear(hidden, 1),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    extra = [Checkpointer(folder, every_steps=2)] if folder is not None else []
    return Learner(
        model,
        (train, valid),
        optimizer,
        torch.nn.functional.mse_loss,
        Recorder(),
        Metrics(),
        Scheduler({LearningRate: lambda t: 0.05 / (1 + 0.1 * t)}),
        *callbacks,
        *extra,
        usedefaultcallbacks=False,
    )


def final_state(learner):
    cbstate = learner.cbstate
    return {
        "model": learner.model.state_dict(),
        "optimizer": learner.optimizer.state_dict(),
        "history": cbstate.history,
        "metrics_epoch": cbstate.metrics_epoch,
        "hyperparams": cbstate.hyperparams,
        "rng": torch.get_rng_state(),
    }


@pytest.mark.parametrize(
    "hook, phase, k, generator",
    [
        ("on_step_end", "train", 3, True),  # mid-epoch, between steps
        ("on_step_end", "train", 3, False),  # a DataLoader shuffling with the global RNG
        ("on_step_end", "train", 10, True),  # last step of the 2nd training epoch
        ("on_epoch_end", "train", 2, True),
        ("on_step_begin", "valid", 5, True),
        ("on_step_end", "valid", 3, False),
        ("on_epoch_begin", "valid", 2, True),
        ("on_epoch_end", "valid", 3, True),
        ("on_epoch_begin", "train", 3, False),
    ],
)
def test_interrupted_fit_resumes_to_the_uninterrupted_result(tmp_path, hook, phase, k, generator):
    reference = shuffled_learner(tmp_path / "ref", Interrupt(), generator=generator)
    want_result = reference.fit(4)
    want = final_state(reference)
    interrupt = Interrupt(hook, phase, k)
    learner = shuffled_learner(tmp_path / "run", interrupt, generator=generator)
    with pytest.raises(KeyboardInterrupt):
        learner.fit(4)
    assert interrupt.endings == ["interrupted"]
    entries = read_manifest(tmp_path / "run")["checkpoints"]
    assert entries[-1]["kind"] == "interrupt"
    resumed = shuffled_learner(tmp_path / "run", Interrupt(), generator=generator)
    assert resumed.fit(4, resume="latest") == want_result
    assert resumed.fitstate.resumed
    assert_identical(final_state(resumed), want)


@pytest.mark.parametrize("hook", ["on_loss_begin", "on_backward_end"])
def test_interrupt_inside_a_training_step_runs_that_step_again(tmp_path, hook):
    # without random draws in the step (no dropout) running it again is exact
    reference = shuffled_learner(None, Interrupt(), dropout=0)
    reference.fit(3)
    learner = shuffled_learner(tmp_path, Interrupt(hook, "train", 7), dropout=0)
    with pytest.raises(KeyboardInterrupt):
        learner.fit(3)
    assert learner.fitstate.epoch_step == 1 and learner.fitstate.total_steps == 6
    resumed = shuffled_learner(tmp_path, Interrupt(), dropout=0)
    resumed.fit(3, resume="latest")
    assert_identical(final_state(resumed), final_state(reference))


def test_state_dict_round_trip_continues_bitwise(tmp_path):
    learner = shuffled_learner(None)
    learner.fit(2)
    state = copy.deepcopy(learner.state_dict())
    torch.save(state, tmp_path / "state.pt")
    learner.fit(1)
    fresh = shuffled_learner(None)
    fresh.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=False))
    fresh.fit(1)
    assert_identical(final_state(fresh), final_state(learner))


def test_resume_from_a_path_and_from_a_state_dict(tmp_path):
    reference = shuffled_learner(tmp_path / "ref", Interrupt())
    reference.fit(3)
    learner = shuffled_learner(tmp_path / "run", Interrupt("on_step_end", "train", 8))
    with pytest.raises(KeyboardInterrupt):
        learner.fit(3)
    path = latest_checkpoint(tmp_path / "run")
    by_path = shuffled_learner(tmp_path / "other", Interrupt())
    by_path.fit(3, resume=path)
    assert_identical(final_state(by_path), final_state(reference))
    by_dict = shuffled_learner(tmp_path / "third", Interrupt())
    by_dict.fit(3, resume=torch.load(path, weights_only=False))
    assert_identical(final_state(by_dict), final_state(reference))


def test_resume_latest_without_checkpoints_starts_a_fresh_fit(tmp_path):
    learner = shuffled_learner(tmp_path)
    result = learner.fit(2, resume="latest")
    assert result.epochs_completed == 2 and not learner.fitstate.resumed


def test_resuming_a_finished_fit_runs_nothing_and_returns_its_result(tmp_path):
    learner = shuffled_learner(tmp_path)
    result = learner.fit(2)
    again = shuffled_learner(tmp_path)
    assert again.fit(2, resume="latest") == result
    assert again.cbstate.history["train"].steps == 10


def test_resume_with_another_n_epochs_says_which_fit_was_saved(tmp_path):
    learner = shuffled_learner(tmp_path, Interrupt("on_step_end", "train", 7))
    with pytest.raises(KeyboardInterrupt):
        learner.fit(4)
    again = shuffled_learner(tmp_path, Interrupt())
    with pytest.raises(
        CheckpointError, match=r"saved during a fit\(4\) call.*this call is fit\(6\)"
    ):
        again.fit(6, resume="latest")


def test_loading_into_another_architecture_names_the_mismatching_keys(tmp_path):
    state = shuffled_learner(None).state_dict()
    wider = shuffled_learner(None, hidden=9)
    with pytest.raises(
        CheckpointError, match=r"shape mismatches: \['0.weight \(checkpoint \(8, 3\)"
    ):
        wider.load_state_dict(state)
    linear = torch.nn.Linear(3, 1)
    other = Learner(
        linear,
        shuffled_learner(None).data,
        torch.optim.SGD(linear.parameters(), lr=0.1),
        torch.nn.functional.mse_loss,
        usedefaultcallbacks=False,
    )
    with pytest.raises(CheckpointError, match=r"Missing keys: \['weight', 'bias'\]; unexpected"):
        other.load_state_dict(state)


def test_loading_with_another_optimizer_or_other_callbacks_is_a_clear_error():
    state = shuffled_learner(None).state_dict()
    adam = shuffled_learner(None)
    adam.optimizer = torch.optim.Adam(adam.model.parameters())
    with pytest.raises(CheckpointError, match="optimizer is a SGD, this one a Adam"):
        adam.load_state_dict(state)
    more = shuffled_learner(None, Interrupt())
    with pytest.raises(CheckpointError, match=r"not in the checkpoint: \['3:Interrupt'\]"):
        more.load_state_dict(state)


def test_resume_with_other_data_is_a_clear_error(tmp_path):
    learner = shuffled_learner(tmp_path)
    learner.fit(1)
    bigger = shuffled_learner(tmp_path, n=48)
    with pytest.raises(
        CheckpointError, match="5 training batches per epoch, this training data has 6"
    ):
        bigger.fit(1, resume="latest")


def test_resume_latest_needs_a_checkpointer():
    with pytest.raises(CheckpointError, match="the learner has none. Add Checkpointer"):
        shuffled_learner(None).fit(1, resume="latest")


def test_schedules_in_the_fraction_unit_resume_exactly(tmp_path):
    from fluxtrain.schedules.keyframes import Schedule

    def make(folder, interrupt):
        schedule = Schedule([0, 1], [0.1, 0.01], unit="fraction")
        return shuffled_learner(folder, Scheduler({Momentum: schedule}), interrupt)

    reference = make(tmp_path / "ref", Interrupt())
    reference.fit(3)
    learner = make(tmp_path / "run", Interrupt("on_step_end", "train", 7))
    with pytest.raises(KeyboardInterrupt):
        learner.fit(3)
    resumed = make(tmp_path / "run", Interrupt())
    resumed.fit(3, resume="latest")
    assert_identical(final_state(resumed), final_state(reference))
