"""A checkpoint folder under attack: lost manifests, crafted files, path traversal, a second
writer, a rewound counter, a full disk; and the inputs that would train wrongly in silence."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fluxtrain import (
    Checkpointer,
    CheckpointError,
    FluxTrainError,
    Learner,
    Metric,
    Metrics,
    ToDevice,
    load_checkpoint,
)
from fluxtrain.checkpoints.atomic import file_sha256
from fluxtrain.checkpoints.files import write_checkpoint
from fluxtrain.checkpoints.manifest import read_manifest, write_manifest
from fluxtrain.testing import tiny_learner

ROOT = Path(__file__).parents[2]


def written(folder):
    """``{name: sha256}`` of the checkpoint files in ``folder``."""
    return {p.name: file_sha256(p) for p in sorted(Path(folder).glob("checkpoint-*.pt"))}


@pytest.mark.parametrize("damage", ["deleted", "emptied", "garbled"])
@pytest.mark.parametrize("resume", ["latest", None])
def test_a_lost_manifest_keeps_every_file_and_says_how_to_go_on(tmp_path, damage, resume):
    tiny_learner(Checkpointer(tmp_path)).fit(3)
    before = written(tmp_path)
    manifest = tmp_path / "manifest.json"
    if damage == "deleted":
        manifest.unlink()
    elif damage == "emptied":
        manifest.write_text(json.dumps({"format": 1, "next": 4, "checkpoints": []}))
    else:
        manifest.write_text("{not json")
    learner = tiny_learner(Checkpointer(tmp_path))
    with pytest.raises(CheckpointError, match=r"holds 3 checkpoint file\(s\) but its manifest"):
        learner.fit(3, resume=resume)
    assert learner.fitstate.total_steps == 0
    assert written(tmp_path) == before
    newest = tmp_path / "checkpoint-000003.pt"
    resumed = tiny_learner(Checkpointer(tmp_path, start_over=True))
    assert resumed.fit(3, resume=newest).epochs_completed == 3  # a file by path still resumes
    fresh = tiny_learner(Checkpointer(tmp_path, start_over=True))
    fresh.fit(1)
    assert {k: v for k, v in written(tmp_path).items() if k in before} == before
    assert [e["file"] for e in read_manifest(tmp_path)["checkpoints"]][-1] > "checkpoint-000003.pt"


class Payload:
    """Pickles into a call that would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def list_in_manifest(folder, name):
    manifest = read_manifest(folder) or {"format": 1, "next": 1, "checkpoints": []}
    path = Path(folder) / name
    entry = {"file": name, "sha256": file_sha256(path), "bytes": path.stat().st_size}
    manifest["checkpoints"].append(entry)
    write_manifest(folder, manifest)


def test_a_crafted_file_never_runs_code_on_any_load_path(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoints"
    learner = tiny_learner(Checkpointer(folder))
    learner.fit(1)
    # a payload hidden in cbstate of a real checkpoint, listed with a matching checksum
    state = learner.state_dict()
    state["cbstate"]["innocent"] = [1, 2, Payload(marker)]
    torch.save(state, folder / "checkpoint-000005.pt")
    list_in_manifest(folder, "checkpoint-000005.pt")
    # a bare crafted file
    torch.save(Payload(marker), tmp_path / "crafted.pt")
    with pytest.warns(RuntimeWarning, match=r"Skipped bad checkpoints.*not trusted: posix.system"):
        tiny_learner(Checkpointer(folder)).fit(1, resume="latest")  # the good one before it
    assert not marker.exists()
    attempts = [
        lambda: tiny_learner().fit(1, resume=folder / "checkpoint-000005.pt"),
        lambda: load_checkpoint(folder / "checkpoint-000005.pt"),
        lambda: load_checkpoint(tmp_path / "crafted.pt"),
    ]
    for attempt in attempts:
        with pytest.raises(CheckpointError, match=r"not trusted.*never runs code"):
            attempt()
        assert not marker.exists()


@pytest.mark.parametrize("name", ["../victim.txt", "/tmp/victim.txt", "sub/checkpoint-000001.pt"])
def test_a_manifest_entry_outside_its_folder_is_refused_and_deletes_nothing(tmp_path, name):
    folder = tmp_path / "checkpoints"
    write_checkpoint(folder, {"step": 1})
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    entry = {"file": name if not name.startswith("/") else str(victim), "sha256": "0", "bytes": 8}
    write_manifest(folder, {"format": 1, "next": 2, "checkpoints": [entry]})
    learner = tiny_learner(Checkpointer(folder, keep_last=1))
    with pytest.raises(CheckpointError, match=r"not a checkpoint file of that folder"):
        learner.fit(1)
    with pytest.raises(CheckpointError, match=r"not a checkpoint file of that folder"):
        tiny_learner(Checkpointer(folder)).fit(1, resume="latest")
    assert load_checkpoint(folder / "checkpoint-000001.pt") == {"step": 1}  # by path: that file
    assert victim.read_text() == "precious"


HOLDER = """
import sys, time
from fluxtrain.checkpoints.lock import FolderLock
lock = FolderLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_writer_gets_a_clear_error_and_the_first_one_loses_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        (tmp_path / ".checkpoint-000001.pt.77.tmp").write_bytes(b"the holder's write")
        learner = tiny_learner(Checkpointer(tmp_path))
        match = rf"another writer \(process {holder.pid} on .*\) is writing checkpoints to"
        with pytest.raises(CheckpointError, match=match):
            learner.fit(1)
        assert learner.fitstate.total_steps == 0
        assert (tmp_path / ".checkpoint-000001.pt.77.tmp").exists()  # not cleaned from under it
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    assert tiny_learner(Checkpointer(tmp_path)).fit(1).epochs_completed == 1  # free once it ends


def test_a_rewound_counter_never_overwrites_or_rotates_away_the_newest(tmp_path):
    tiny_learner(Checkpointer(tmp_path, keep_last=1)).fit(2)
    before = written(tmp_path)
    manifest = read_manifest(tmp_path)
    manifest["next"] = 1
    write_manifest(tmp_path, manifest)
    learner = tiny_learner(Checkpointer(tmp_path, keep_last=1))
    learner.fit(1)
    after = written(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    newest = read_manifest(tmp_path)["checkpoints"][-1]["file"]
    assert newest in after and newest not in before
    assert load_checkpoint(tmp_path / newest)["fitstate"]["total_steps"] == 4


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_foreseen_at_fit_begin(small_disk):
    model = torch.nn.Linear(200, 100)  # 80 kB of weights, 240 kB expected with Adam's moments
    learner = Learner(model, [(torch.zeros(2, 200), torch.zeros(2, 100))],
                      torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.functional.mse_loss,
                      Checkpointer(small_disk), usedefaultcallbacks=False)  # fmt: skip
    with pytest.raises(CheckpointError, match=rf"{small_disk} has 0.1 MiB free, and a checkpoint"):
        learner.fit(1)
    assert learner.fitstate.total_steps == 0


def test_a_disk_filled_during_the_fit_loses_no_good_checkpoint(small_disk):
    from fluxtrain import Callback, Read

    class FillDisk(Callback):
        stateaccess = {"fitstate": Read}

        def on_epoch_end(self, phase, learner):
            if phase.name == "train" and learner.fitstate.total_epochs == 1:
                fd = os.open(small_disk / "ballast", os.O_WRONLY | os.O_CREAT)
                try:
                    while os.write(fd, b"\0" * 4096):
                        pass
                except OSError:  # the disk is full
                    pass
                finally:
                    os.close(fd)

    learner = tiny_learner(FillDisk(), Checkpointer(small_disk), validation=False)
    with pytest.raises(CheckpointError, match=r"writing a checkpoint to .* failed \(.*No space"):
        learner.fit(3)
    assert [e["file"] for e in read_manifest(small_disk)["checkpoints"]] == ["checkpoint-000001.pt"]
    assert load_checkpoint(small_disk / "checkpoint-000001.pt")["fitstate"]["total_steps"] == 4
    assert not list(small_disk.glob(".*.tmp"))


def test_inputs_that_would_train_wrongly_in_silence_are_errors_at_construction():
    model, other = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    with pytest.raises(FluxTrainError, match=r"updates 2 tensors, none of them a parameter"):
        Learner(model, None, torch.optim.SGD(other.parameters(), lr=0.1), None)
    weighted = torch.nn.Linear(1, 1)  # a loss with parameters of its own is fine
    Learner(model, None, torch.optim.SGD(weighted.parameters(), lr=0.1), weighted)
    with pytest.raises(FluxTrainError, match=r"'meta' tensors hold no data"):
        ToDevice("meta")

    class PerSample(Metric):
        def value(self, outputs, targets, loss):
            return (outputs - targets).abs()[:, 0]

    learner = tiny_learner(Metrics(PerSample()))
    with pytest.raises(FluxTrainError, match=r"'PerSample' gave a value of shape \(8,\)"):
        learner.fit(1)
    assert learner.fitstate.total_steps == 1  # at the first step, not after an epoch


@dataclasses.dataclass
class Tally:
    seen: int = 0


def test_a_checkpoint_of_your_own_types_loads_once_you_trust_them(tmp_path):
    write_checkpoint(tmp_path, {"tally": Tally(3)})
    with pytest.raises(CheckpointError, match=r"not trusted"):
        load_checkpoint(tmp_path / "checkpoint-000001.pt")
    loaded = load_checkpoint(tmp_path / "checkpoint-000001.pt", trusted_types=[Tally])
    assert loaded["tally"] == Tally(3)


@pytest.mark.skipif(importlib.util.find_spec("torchmetrics") is None, reason="needs torchmetrics")
def test_a_torchmetric_and_a_csv_log_survive_a_sigkill_mid_epoch(tmp_path):
    script = Path(__file__).with_name("logs_script.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def run(name, *kill):
        folder, log, out = tmp_path / name, tmp_path / f"{name}.csv", tmp_path / f"{name}.pt"
        command = [sys.executable, str(script), str(folder), str(log), str(out), *kill]
        return subprocess.run(command, env=env, capture_output=True, text=True), log, out

    done, reference_log, reference_out = run("reference")
    assert done.returncode == 0, done.stderr
    killed, log, out = run("run", "17")  # 12 steps an epoch: in the middle of the second
    assert killed.returncode == -9, killed.stderr
    resumed, _, _ = run("run")
    assert resumed.returncode == 0, resumed.stderr
    want, got = torch.load(reference_out), torch.load(out)
    assert got == want and len(want["valid/MulticlassAccuracy"]) == 3
    rows = log.read_text().splitlines()
    reference_rows = reference_log.read_text().splitlines()
    assert set(reference_rows) <= set(rows)  # none missing
    assert sorted(set(rows)) == sorted(set(reference_rows))  # rows may repeat, none differ
