"""Sharded checkpoint folders in one process: manifest entries, checks, fallback, rotation.

The same code runs under ``torch.distributed`` (``tests/distributed/test_sharded.py``), where
each rank writes its own shards; here the one process writes them all.
"""

import json
import warnings

import pytest
import torch

from fluxtrain.checkpoints import latest_checkpoint, load_latest, read_manifest
from fluxtrain.checkpoints.files import load_checkpoint
from fluxtrain.checkpoints.folder import prepare
from fluxtrain.checkpoints.manifest import next_number
from fluxtrain.checkpoints.rotation import clean_folder, rotate
from fluxtrain.checkpoints.sharded import export_state_dict, write_sharded
from fluxtrain.exceptions import CheckpointError
from fluxtrain.testing import tiny_learner

NAMES = [".metadata", "__0_0.distcp", "learner.pt"]


@pytest.fixture
def learner():
    trained = tiny_learner()
    trained.fit(1)
    return trained


def test_a_sharded_checkpoint_is_a_folder_listed_file_by_file(tmp_path, learner):
    entry = write_sharded(tmp_path, learner, kind="epoch")
    folder = tmp_path / "checkpoint-000001"
    assert sorted(p.name for p in folder.iterdir()) == NAMES
    assert sorted(entry["files"]) == NAMES
    for name, listed in entry["files"].items():
        assert listed["bytes"] == (folder / name).stat().st_size
    assert entry["bytes"] == sum(f["bytes"] for f in entry["files"].values())
    assert read_manifest(tmp_path)["checkpoints"] == [entry]
    assert latest_checkpoint(tmp_path) == folder
    assert next_number(tmp_path) == 2
    state = load_checkpoint(folder)
    assert state["sharded"] == str(folder) and "model" not in state
    # loaded into a fresh learner: the weights and optimizer come from the shards
    fresh = tiny_learner()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.model.weight, learner.model.weight)
    assert fresh.fitstate.total_steps == learner.fitstate.total_steps
    export_state_dict(folder, tmp_path / "model.pt")
    assert torch.equal(torch.load(tmp_path / "model.pt")["weight"], learner.model.weight)


def test_a_corrupt_shard_falls_back_to_the_previous_checkpoint(tmp_path, learner):
    write_sharded(tmp_path, learner)
    weight = learner.model.weight.detach().clone()
    learner.fit(1)
    write_sharded(tmp_path, learner)
    shard = tmp_path / "checkpoint-000002" / "__0_0.distcp"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="checkpoint-000002: the sha256 of __0_0.distcp"):
        path, state = load_latest(tmp_path)
    assert path.name == "checkpoint-000001"
    fresh = tiny_learner()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.model.weight, weight)
    with pytest.raises(CheckpointError, match="is not the file that was written"):
        load_checkpoint(tmp_path / "checkpoint-000002")
    (tmp_path / "checkpoint-000001" / "learner.pt").unlink()
    with pytest.raises(CheckpointError, match="learner.pt is missing"):
        load_latest(tmp_path)


def test_rotation_deletes_folders_and_leftovers_only(tmp_path, learner):
    keep = lambda entries: rotate(entries, keep_last=1)  # noqa: E731
    for _ in range(3):
        write_sharded(tmp_path, learner, keep=keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-000003", "manifest.json"]
    leftover = tmp_path / ".checkpoint-000004.123.tmp"
    leftover.mkdir()
    (leftover / "__0_0.distcp").write_bytes(b"partial")
    unlisted = tmp_path / "checkpoint-000009"  # written just before a kill: kept
    unlisted.mkdir()
    assert clean_folder(tmp_path) == [leftover.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-000003",
        "checkpoint-000009",
        "manifest.json",
    ]
    assert next_number(tmp_path) == 10
    prepare(tmp_path, needed=1)  # a folder of sharded checkpoints is a good folder


def test_a_manifest_names_files_inside_the_checkpoint_folder_only(tmp_path, learner):
    write_sharded(tmp_path, learner)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    files = manifest["checkpoints"][0]["files"]
    files["../../etc/passwd"] = files.pop("learner.pt")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with warnings.catch_warnings(), pytest.raises(CheckpointError, match="not a file of a sharded"):
        load_latest(tmp_path)
