import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fluxtrain import Callback, Metrics, ProgressPrinter, Read, Write
from fluxtrain.callbacks.checkpointer import Checkpointer, rotate
from fluxtrain.checkpoints.atomic import _HashingWriter, file_sha256
from fluxtrain.checkpoints.files import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_latest,
    read_manifest,
)
from fluxtrain.testing import tiny_learner

ROOT = Path(__file__).parents[2]


def files(folder):
    """The folder's files, but its lock file."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name != ".lock")


def kinds(folder):
    return [(e["kind"], e["step"]) for e in read_manifest(folder)["checkpoints"]]


class ScriptedScore(Callback):
    """Writes the next of a list of values to cbstate.metrics_epoch["valid/Score"] per epoch."""

    stateaccess = {"cbstate.metrics_epoch": Write}

    def __init__(self, values):
        self.values = list(values)

    def init(self, learner):
        if "metrics_epoch" not in learner.cbstate:
            learner.cbstate.metrics_epoch = {}

    def on_epoch_end(self, phase, learner):
        if phase.name == "valid":
            scores = learner.cbstate.metrics_epoch.setdefault("valid/Score", [])
            scores.append(self.values[len(scores)])


class RaiseAt(Callback):
    stateaccess = {"fitstate": Read}

    def __init__(self, step, error=KeyboardInterrupt):
        self.step, self.error, self.endings = step, error, []

    def on_step_end(self, phase, learner):
        if phase.name == "train" and learner.fitstate.total_steps == self.step:
            raise self.error

    def on_fit_end(self, phase, learner):
        self.endings.append(learner.fitstate.ending)


def test_saves_at_epoch_ends_and_every_n_steps_with_a_checksum_each(tmp_path):
    tiny_learner(Checkpointer(tmp_path, every_steps=3, keep_last=10)).fit(2)
    assert kinds(tmp_path) == [("step", 3), ("epoch", 4), ("step", 6), ("epoch", 8)]
    for entry in read_manifest(tmp_path)["checkpoints"]:
        assert file_sha256(tmp_path / entry["file"]) == entry["sha256"]
        assert (tmp_path / entry["file"]).stat().st_size == entry["bytes"]


def test_a_final_checkpoint_when_the_fit_ends_between_saves(tmp_path):
    tiny_learner(Checkpointer(tmp_path, every_epochs=2)).fit(3)
    assert kinds(tmp_path) == [("epoch", 8), ("end", 12)]
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert state["fitstate"]["ending"] == "completed"


def test_keyboard_interrupt_fires_fit_end_saves_then_propagates(tmp_path):
    raiser, out = RaiseAt(5), io.StringIO()
    printer = ProgressPrinter(file=out)
    learner = tiny_learner(raiser, Checkpointer(tmp_path, every_epochs=None), printer)
    with pytest.raises(KeyboardInterrupt):
        learner.fit(3)
    assert raiser.endings == ["interrupted"] and printer._bars == {}
    assert kinds(tmp_path) == [("interrupt", 5)]
    learner = tiny_learner(RaiseAt(5), Checkpointer(tmp_path / "off", save_on_interrupt=False))
    with pytest.raises(KeyboardInterrupt):
        learner.fit(3)
    assert kinds(tmp_path / "off") == [("epoch", 4)]


def test_no_checkpoint_when_the_fit_fails(tmp_path):
    learner = tiny_learner(RaiseAt(2, ValueError("boom")), Checkpointer(tmp_path))
    with pytest.raises(ValueError, match="boom"):
        learner.fit(1)
    assert read_manifest(tmp_path) is None


def test_rotation_keeps_the_last_and_the_best_by_monitor(tmp_path):
    scores = [5.0, 1.0, 4.0, 3.0, 6.0, 7.0]
    checkpointer = Checkpointer(tmp_path, keep_last=2, monitor="valid/Score", keep_best=1)
    tiny_learner(ScriptedScore(scores), checkpointer).fit(6)
    entries = read_manifest(tmp_path)["checkpoints"]
    assert [(e["epoch"], e["metric"]) for e in entries] == [(2, 1.0), (5, 6.0), (6, 7.0)]
    assert files(tmp_path) == [e["file"] for e in entries] + ["manifest.json"]


def test_rotation_with_mode_max_and_the_newest_always_kept():
    entries = [{"file": str(i), "metric": m} for i, m in enumerate([1.0, 9.0, float("nan"), 0.5])]
    kept, _ = rotate(entries, keep_last=1, keep_best=2, mode="max")
    assert [e["file"] for e in kept] == ["0", "1", "3"]
    kept, dropped = rotate(entries, keep_last=0, keep_best=0)
    assert [e["file"] for e in kept] == ["3"] and len(dropped) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_checkpoint_is_skipped_for_the_previous_good_one(tmp_path, damage):
    reference = tiny_learner()
    reference.fit(3)
    tiny_learner(Checkpointer(tmp_path, keep_last=2)).fit(3)
    newest = tmp_path / "checkpoint-000003.pt"
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        newest.write_bytes(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])
    else:
        newest.unlink()
    if damage != "delete":
        with pytest.raises(CheckpointError, match="is not the file that was written"):
            load_checkpoint(newest)
    assert latest_checkpoint(tmp_path).name == "checkpoint-000002.pt"
    learner = tiny_learner(Checkpointer(tmp_path, keep_last=1))
    with pytest.warns(RuntimeWarning, match=r"checkpoint-000003.pt: .*using .*checkpoint-000002"):
        result = learner.fit(3, resume="latest")  # runs the 3rd epoch again
    assert result.epochs_completed == 3
    assert torch.equal(learner.model.weight, reference.model.weight)
    # rotation kept only the newest, which is good: the damaged file is gone
    assert files(tmp_path) == ["checkpoint-000004.pt", "manifest.json"]
    assert load_latest(tmp_path)[0].name == "checkpoint-000004.pt"


def test_every_checkpoint_bad_is_an_error_not_a_fresh_start(tmp_path):
    tiny_learner(Checkpointer(tmp_path)).fit(1)
    (tmp_path / "checkpoint-000001.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match=r"No good checkpoint in .*checkpoint-000001.pt: it"):
        tiny_learner(Checkpointer(tmp_path)).fit(1, resume="latest")


def test_a_write_dying_half_way_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    learner = tiny_learner(Checkpointer(tmp_path))
    learner.fit(1)
    before = read_manifest(tmp_path)

    class Died(BaseException):
        pass

    write = _HashingWriter.write

    def half_then_die(self, data):
        write(self, data[: len(data) // 2])
        raise Died

    monkeypatch.setattr(_HashingWriter, "write", half_then_die)
    with pytest.raises(Died):
        learner.callbacks[0].save()
    monkeypatch.undo()
    assert read_manifest(tmp_path) == before
    assert files(tmp_path) == ["checkpoint-000001.pt", "manifest.json"]
    # what a killed writer leaves: a partial temporary file, ignored, then cleaned up
    (tmp_path / ".checkpoint-000002.pt.99999.tmp").write_bytes(b"partial")
    (tmp_path / "checkpoint-000002.pt").write_bytes(b"renamed, never listed")
    assert load_latest(tmp_path)[0].name == "checkpoint-000001.pt"
    tiny_learner(Checkpointer(tmp_path)).fit(1)  # cleans up the temporary file, keeps the rest
    assert files(tmp_path) == [
        "checkpoint-000001.pt",
        "checkpoint-000002.pt",
        "checkpoint-000003.pt",
        "manifest.json",
    ]
    assert load_latest(tmp_path)[0].name == "checkpoint-000003.pt"
    assert load_latest(tmp_path)[1]["fitstate"]["total_steps"] == 4


WRITER = """
import sys, torch
from functools import partial
from fluxtrain.callbacks.checkpointer import rotate
from fluxtrain.checkpoints.files import write_checkpoint
torch.manual_seed(0)
weights = torch.randn(3_000_000)
for i in range(10_000):
    write_checkpoint(sys.argv[1], {"i": i, "weights": weights}, partial(rotate, keep_last=2))
    print(i, flush=True)
"""


def test_sigkill_while_writing_big_checkpoints_never_loses_the_last_good_one(tmp_path):
    rng = random.Random(7)
    torch.manual_seed(0)
    weights = torch.randn(3_000_000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    for _ in range(2):
        command = [sys.executable, "-c", WRITER, str(tmp_path)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as writer:
            written = [int(writer.stdout.readline()) for _ in range(2)]
            time.sleep(rng.uniform(0.0, 0.05))
            writer.send_signal(signal.SIGKILL)
        path, state = load_latest(tmp_path)
        assert state["i"] >= written[-1] and torch.equal(state["weights"], weights)


def test_an_unwritable_folder_fails_at_fit_begin_before_any_step(tmp_path):
    (tmp_path / "file").write_text("")
    learner = tiny_learner(Checkpointer(tmp_path / "file" / "checkpoints"))
    match = r"cannot write checkpoints to .*file/checkpoints \(.*\)\. Give a folder that can be"
    with pytest.raises(CheckpointError, match=match):
        learner.fit(1)
    assert learner.fitstate.total_steps == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anyway")
def test_a_read_only_folder_fails_at_fit_begin(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="PermissionError"):
            tiny_learner(Checkpointer(tmp_path)).fit(1)
    finally:
        tmp_path.chmod(0o700)


def test_monitor_errors_name_the_fix(tmp_path):
    learner = tiny_learner(Metrics(), Checkpointer(tmp_path, monitor="valid/Acc"))
    with pytest.raises(CheckpointError, match="'valid/Acc' is not in .* train/Loss, valid/Loss"):
        learner.fit(1)
    with pytest.raises(Exception, match="add Metrics"):
        tiny_learner(Checkpointer(tmp_path, monitor="valid/Loss")).fit(1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"every_steps": 0}, "every_steps must be an int >= 1 or None, got 0"),
        ({"keep_last": 0}, "keep_last must be an int >= 1"),
        ({"mode": "lowest"}, "mode must be 'min'"),
        ({"keep_best": -1}, "keep_best must be an int >= 0"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(tmp_path, kwargs, match):
    with pytest.raises(Exception, match=match):
        Checkpointer(tmp_path, **kwargs)
