import signal
from pathlib import Path

import pytest
import torch

from fluxtrain import FluxTrainError
from fluxtrain.scheduler import Scheduler

pytest.importorskip("wandb")
from tracker_script import run_served  # noqa: E402
from wandb_records import config, run_ids  # noqa: E402
from wandb_records import history_rows as read_rows  # noqa: E402

from fluxtrain.integrations import WandbBackend  # noqa: E402
from fluxtrain.integrations.wandb_backend import STEP_METRIC, history_rows  # noqa: E402

SCRIPT = Path(__file__).with_name("tracker_script.py")
ROOT = Path(__file__).parents[2]


def test_a_run_killed_and_resumed_keeps_its_id_and_holds_what_cbstate_holds(tmp_path):
    args = [str(tmp_path / "store"), str(tmp_path / "checkpoints"), str(tmp_path / "out.pt")]
    # 12 steps an epoch: killed in the middle of the second, then resumed
    codes, errors = run_served("wandb", str(tmp_path), [*args, "17"], args)
    assert codes == [-signal.SIGKILL, 0], errors
    saved = torch.load(tmp_path / "out.pt")
    run_id = saved["run_id"]
    folders = sorted((tmp_path / "store" / "wandb").glob("offline-run-*"))
    assert [f.name.rpartition("-")[2] for f in folders] == [run_id, run_id]  # killed, resumed
    files = [folder / f"run-{run_id}.wandb" for folder in folders]
    assert [run_ids(f) for f in files] == [[run_id], [run_id]]

    logged: dict[str, dict[int, float]] = {}  # name -> step -> value, over both folders
    for file in files:
        for row in read_rows(file):
            step = row[STEP_METRIC]
            for name, value in row.items():
                if name == STEP_METRIC or name.startswith("_") or name.startswith("figures/"):
                    continue
                assert logged.setdefault(name, {}).setdefault(step, value) == value, (name, step)
    want = {f"step/{key}": dict(pairs) for key, pairs in saved["step_metrics"].items()}
    want.update(
        (key, {12 * (i + 1): v for i, v in enumerate(values)})
        for key, values in saved["metrics_epoch"].items()
    )
    want.update(
        (f"hyperparams/{name}", dict(pairs)) for name, pairs in saved["hyperparams"].items()
    )
    assert logged == want
    assert sorted(want["hyperparams/LearningRate"]) == list(range(36))
    assert sorted(want["step/train/Loss"]) == list(range(36))

    settings = config(files[0])  # the configuration, recorded when the run started
    schedules = {
        e.hyperparameter.name: repr(e.schedule) for e in Scheduler.onecycle(3, 0.5).entries
    }
    assert settings["schedule.LearningRate"] == schedules["LearningRate"]
    assert settings["optimizer"] == "SGD" and settings["optimizer.momentum"] == "0.9"
    assert settings["n_epochs"] == "3"
    figures = [
        sorted(p.name.partition("_")[0] for p in (f / "files/media/images/figures").iterdir())
        for f in folders
    ]
    assert figures == [["schedule"], ["history"]]  # the killed fit never reached FitEnd
    png = next((folders[1] / "files/media/images/figures").iterdir())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_values_at_one_step_go_in_one_row_each_series_once():
    scalars = [
        ("step/train/Loss", 1.0, 3, 1, "train"),
        ("hyperparams/LearningRate", 0.1, 3, 1, "train"),
        ("train/Loss", 0.9, 4, 1, "train"),
        ("valid/Loss", 0.8, 4, 1, "valid"),
        ("hyperparams/LearningRate", 0.05, 4, 2, "train"),
    ]
    assert history_rows(scalars) == [
        {"step/train/Loss": 1.0, "hyperparams/LearningRate": 0.1, STEP_METRIC: 3},
        {"train/Loss": 0.9, "valid/Loss": 0.8, "hyperparams/LearningRate": 0.05, STEP_METRIC: 4},
    ]
    assert history_rows([("a", 1.0, 0, 1, "train"), ("a", 2.0, 0, 1, "train")]) == [
        {"a": 1.0, STEP_METRIC: 0},
        {"a": 2.0, STEP_METRIC: 0},
    ]


def test_arguments_the_backend_sets_are_clear_errors(tmp_path):
    with pytest.raises(FluxTrainError, match=r"id= is set by the backend .* got id='abc'"):
        WandbBackend(id="abc")
    with pytest.raises(FluxTrainError, match=r"project must be a str or None, got int: 3"):
        WandbBackend(project=3)
