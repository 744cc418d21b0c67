import csv
import os
import struct
import sys

import numpy as np
import pytest
import torch

from fluxtrain import (
    Callback,
    CustomCallback,
    FluxTrainError,
    FunctionMetric,
    LearningRate,
    Metrics,
    Momentum,
    Read,
    StepEnd,
    TrainingPhase,
)
from fluxtrain.callbacks.backends import (
    CSVBackend,
    LoggerBackend,
    TensorBoardBackend,
)
from fluxtrain.callbacks.logging import LogHyperParams, LogMetrics, host_floats
from fluxtrain.distributed import is_main_process
from fluxtrain.scheduler import Scheduler
from fluxtrain.testing import tiny_learner


def mae(outputs, targets):
    return (outputs - targets).abs().mean()


def sgd_momentum(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


class StepValues(Callback):
    """Keeps float() of every training step's metrics_step values, as a user would read them."""

    stateaccess = {"cbstate.metrics_step": Read, "fitstate": Read}
    runafter = (Metrics,)

    def __init__(self):
        self.values = {}

    def on_step_end(self, phase, learner):
        if isinstance(phase, TrainingPhase):
            t = learner.fitstate.total_steps - 1
            for key, value in learner.cbstate.metrics_step.items():
                if key.startswith("train/"):
                    self.values.setdefault(key, []).append((t, float(value)))


class FakeBackend:
    def __init__(self):
        self.calls = []

    def log_scalar(self, name, value, step, epoch, phase):
        self.calls.append(("log", name, value, step, epoch, phase))

    def flush(self):
        self.calls.append(("flush",))

    def close(self):
        self.calls.append(("close",))


def read_rows(path):
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == ["step", "epoch", "phase", "name", "value"]
        return list(reader)


def bits(value):
    return struct.pack("<d", value)


def scheduled_learner(*callbacks, n_batches=4):
    scheduler = Scheduler(
        {LearningRate: lambda t: 0.02 / (1 + t), Momentum: lambda t: 0.9 - t / 1e3}
    )
    return tiny_learner(
        Metrics(FunctionMetric(mae, name="MAE")),
        scheduler,
        *callbacks,
        n_batches=n_batches,
        optimizer=sgd_momentum,
    )


# -- CSV --------------------------------------------------------------------------------------


def test_csv_round_trips_the_recorded_values_exactly(tmp_path):
    path = tmp_path / "log.csv"
    backend = CSVBackend(path)
    recorded = StepValues()
    learner = scheduled_learner(recorded, LogMetrics(backend), LogHyperParams(backend))
    learner.fit(2)
    rows = read_rows(path)
    cbstate = learner.cbstate

    expected = []
    for epoch in (1, 2):
        for t in range(4 * (epoch - 1), 4 * epoch):
            for key in ("train/Loss", "train/MAE"):
                expected.append((t, epoch, "train", f"step/{key}", recorded.values[key][t][1]))
            for name in ("LearningRate", "Momentum"):
                step, value = cbstate.hyperparams[name][t]
                assert step == t
                expected.append((t, epoch, "train", f"hyperparams/{name}", value))
        for phase in ("train", "valid"):
            for metric in ("Loss", "MAE"):
                value = cbstate.metrics_epoch[f"{phase}/{metric}"][epoch - 1]
                expected.append((4 * epoch, epoch, phase, f"{phase}/{metric}", value))

    got = [
        (int(r["step"]), int(r["epoch"]), r["phase"], r["name"], float(r["value"])) for r in rows
    ]
    assert [g[:4] for g in got] == [e[:4] for e in expected]
    assert [bits(g[4]) for g in got] == [bits(e[4]) for e in expected]
    assert backend.closed


def test_csv_step_values_equal_the_step_tensors_bitwise(tmp_path):
    path = tmp_path / "log.csv"
    recorded = StepValues()
    learner = tiny_learner(Metrics(), recorded, LogMetrics(CSVBackend(path)), n_batches=3)
    learner.fit(1)
    rows = [r for r in read_rows(path) if r["name"] == "step/train/Loss"]
    assert [(int(r["step"]), float(r["value"])) for r in rows] == recorded.values["train/Loss"]
    # the step tensor is float32; its float is written with repr and read back exactly
    assert all(float(np.float32(float(r["value"]))) == float(r["value"]) for r in rows)


@pytest.mark.parametrize(
    ("every", "n_batches", "n_epochs", "expected"),
    [
        (1, 4, 2, [0, 1, 2, 3, 4, 5, 6, 7]),
        (3, 4, 3, [0, 3, 6, 9]),
        (4, 4, 2, [0, 4]),
        (5, 3, 3, [0, 5]),
        (100, 2, 1, [0]),
    ],
)
def test_every_throttles_per_step_values_to_multiples_of_every(
    tmp_path, every, n_batches, n_epochs, expected
):
    path = tmp_path / "log.csv"
    backend = CSVBackend(path)
    learner = scheduled_learner(
        LogMetrics(backend, every=every), LogHyperParams(backend, every=every), n_batches=n_batches
    )
    learner.fit(n_epochs)
    rows = read_rows(path)
    for name in ("step/train/Loss", "step/train/MAE", "hyperparams/LearningRate"):
        assert [int(r["step"]) for r in rows if r["name"] == name] == expected
    epoch_ends = [n_batches * (e + 1) for e in range(n_epochs)]
    assert [int(r["step"]) for r in rows if r["name"] == "valid/Loss"] == epoch_ends


def test_later_fits_append_to_the_same_file_and_continue_the_steps(tmp_path):
    path = tmp_path / "log.csv"
    backend = CSVBackend(path)
    learner = scheduled_learner(LogMetrics(backend, every=5), LogHyperParams(backend, every=5))
    learner.fit(1)
    assert backend.closed
    learner.fit(2)
    with open(path) as file:
        assert file.read().count("step,epoch,phase,name,value") == 1
    rows = read_rows(path)
    assert [int(r["step"]) for r in rows if r["name"] == "step/train/Loss"] == [0, 5, 10]
    assert [int(r["epoch"]) for r in rows if r["name"] == "step/train/Loss"] == [1, 2, 3]
    assert [
        float(r["value"]) for r in rows if r["name"] == "valid/MAE"
    ] == learner.cbstate.metrics_epoch["valid/MAE"]
    hyper = [(int(r["step"]), float(r["value"])) for r in rows if r["name"].endswith("Rate")]
    assert hyper == [p for p in learner.cbstate.hyperparams["LearningRate"] if p[0] % 5 == 0]


def test_csv_replaces_an_old_file_unless_append(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,epoch,phase,name,value\n0,1,train,old,1.0\n")
    tiny_learner(Metrics(), LogMetrics(CSVBackend(path)), n_batches=2).fit(1)
    assert "old" not in {r["name"] for r in read_rows(path)}

    path.write_text("step,epoch,phase,name,value\n0,1,train,old,1.0\n")
    tiny_learner(Metrics(), LogMetrics(CSVBackend(path, append=True)), n_batches=2).fit(1)
    assert [r["name"] for r in read_rows(path)][:2] == ["old", "step/train/Loss"]


def test_csv_refuses_to_append_to_another_format(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("a,b\n1,2\n")
    learner = tiny_learner(Metrics(), LogMetrics(CSVBackend(path, append=True)), n_batches=2)
    with pytest.raises(FluxTrainError, match=r"cannot append to .*header is 'a,b', expected"):
        learner.fit(1)


def test_csv_creates_parent_folders(tmp_path):
    path = tmp_path / "runs" / "exp1" / "log.csv"
    tiny_learner(Metrics(), LogMetrics(CSVBackend(path)), n_batches=2).fit(1)
    assert len(read_rows(path)) == 4


# -- flushing and closing ---------------------------------------------------------------------


def test_backends_are_flushed_each_epoch_and_closed_at_fit_end():
    backend = FakeBackend()
    learner = tiny_learner(Metrics(), LogMetrics(backend, every=2), n_batches=2)
    learner.fit(1)
    kinds = [c[0] if c[0] != "log" else c[1] for c in backend.calls]
    assert kinds == [
        "step/train/Loss",
        "train/Loss",
        "flush",
        "valid/Loss",
        "flush",
        "close",
    ]
    assert backend.calls[0][3:] == (0, 1, "train")
    assert backend.calls[1][3:] == (2, 1, "train")
    assert backend.calls[3][3:] == (2, 1, "valid")
    learner.fit(1)
    assert backend.calls[-1] == ("close",)
    assert backend.calls[6][:2] == ("log", "step/train/Loss")
    assert backend.calls[6][3:] == (2, 2, "train")


def test_files_are_complete_after_a_callback_raises_mid_fit(tmp_path):
    path = tmp_path / "log.csv"
    backend, fake = CSVBackend(path), FakeBackend()

    def fail_at_step_6(learner):
        if learner.fitstate.total_steps == 6:
            raise RuntimeError("boom")

    learner = scheduled_learner(
        LogMetrics(backend, fake),
        LogHyperParams(backend),
        CustomCallback(fail_at_step_6, StepEnd, TrainingPhase, stateaccess={"fitstate": Read}),
    )
    with pytest.raises(RuntimeError, match="boom"):
        learner.fit(3)
    assert backend.closed
    assert fake.calls[-1] == ("close",)
    with open(path) as file:
        assert file.read().endswith("\n")
    rows = read_rows(path)
    assert [int(r["step"]) for r in rows if r["name"] == "step/train/Loss"] == list(range(6))
    assert [int(r["step"]) for r in rows if r["name"] == "hyperparams/Momentum"] == list(range(6))
    assert [r["name"] for r in rows if not r["name"].startswith(("step/", "hyper"))] == [
        "train/Loss",
        "train/MAE",
        "valid/Loss",
        "valid/MAE",
    ]


def test_close_errors_do_not_stop_other_backends_from_closing():
    class BrokenClose(FakeBackend):
        def close(self):
            raise OSError("disk full")

    good = FakeBackend()
    learner = tiny_learner(Metrics(), LogMetrics(BrokenClose(), good), n_batches=2)
    with pytest.raises(OSError, match="disk full"):
        learner.fit(1)
    assert good.calls[-1] == ("close",)


# -- TensorBoard ------------------------------------------------------------------------------


def test_tensorboard_events_hold_the_expected_tags_and_values(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    backend = TensorBoardBackend(tmp_path)
    recorded = StepValues()
    learner = scheduled_learner(
        recorded, LogMetrics(backend, every=2), LogHyperParams(backend, every=2)
    )
    learner.fit(1)
    assert backend.closed
    learner.fit(1)  # a second event file in the same folder
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {
        "step/train/Loss",
        "step/train/MAE",
        "train/Loss",
        "train/MAE",
        "valid/Loss",
        "valid/MAE",
        "hyperparams/LearningRate",
        "hyperparams/Momentum",
    }

    def read(tag):  # TensorBoard stores 32-bit floats
        return [(e.step, e.value) for e in events.Scalars(tag)]

    def f32(value):
        return float(np.float32(value))

    cbstate = learner.cbstate
    assert read("step/train/Loss") == [
        (t, f32(v)) for t, v in recorded.values["train/Loss"] if t % 2 == 0
    ]
    assert read("valid/MAE") == [
        (4, f32(cbstate.metrics_epoch["valid/MAE"][0])),
        (8, f32(cbstate.metrics_epoch["valid/MAE"][1])),
    ]
    assert read("hyperparams/Momentum") == [
        (t, f32(v)) for t, v in cbstate.hyperparams["Momentum"] if t % 2 == 0
    ]
    assert [s for s, _ in read("train/Loss")] == [4, 8]


def test_tensorboard_backend_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install fluxtrain\[tensorboard\]"):
        TensorBoardBackend(tmp_path)


# -- declarations, ordering, ranks, errors ----------------------------------------------------


def test_declared_access_and_ordering():
    assert LogMetrics.stateaccess == {
        "cbstate.metrics_step": Read,
        "cbstate.metrics_epoch": Read,
        "fitstate": Read,
    }
    assert LogHyperParams.stateaccess == {"cbstate.hyperparams": Read, "fitstate": Read}
    assert LogMetrics.runafter == (Metrics,)
    backend = FakeBackend()
    scheduler = Scheduler({LearningRate: 0.01})
    logs, loghp, metrics = LogMetrics(backend), LogHyperParams(backend), Metrics()
    learner = tiny_learner(logs, loghp, scheduler, metrics)
    assert learner.callbacks.index(metrics) < learner.callbacks.index(logs)
    assert learner.callbacks.index(scheduler) < learner.callbacks.index(loghp)


def test_hyperparams_without_a_scheduler_log_nothing():
    backend = FakeBackend()
    tiny_learner(LogHyperParams(backend), n_batches=2).fit(1)
    assert [c for c in backend.calls if c[0] == "log"] == []
    assert backend.calls[-1] == ("close",)


def test_metrics_without_metrics_callback_log_nothing():
    backend = FakeBackend()
    tiny_learner(LogMetrics(backend), n_batches=2).fit(1)
    assert backend.calls == [("close",)]


def test_hyperparams_are_not_logged_again_in_a_later_fit():
    backend = FakeBackend()
    learner = tiny_learner(
        Scheduler({LearningRate: lambda t: 0.01}), LogHyperParams(backend), n_batches=2
    )
    learner.fit(1)
    learner.fit(1)
    assert [c[3] for c in backend.calls if c[0] == "log"] == [0, 1, 2, 3]
    fresh = FakeBackend()
    learner.add_callback(LogHyperParams(fresh))
    learner.fit(1)
    assert [c[3] for c in fresh.calls if c[0] == "log"] == [4, 5]


def test_only_rank_zero_writes(monkeypatch, tmp_path):
    import fluxtrain.distributed.process_group

    monkeypatch.setattr(fluxtrain.distributed.process_group, "rank", lambda: 1)
    assert not is_main_process()
    path = tmp_path / "log.csv"
    backend = CSVBackend(path)
    scheduled_learner(LogMetrics(backend), LogHyperParams(backend)).fit(1)
    assert not path.exists()

    monkeypatch.setattr(fluxtrain.distributed.process_group, "rank", lambda: 0)
    assert is_main_process()
    scheduled_learner(LogMetrics(backend), LogHyperParams(backend)).fit(1)
    assert len(read_rows(path)) == 4 * 4 + 4


@pytest.mark.parametrize("callback", [LogMetrics, LogHyperParams])
def test_bad_arguments_say_what_to_do(callback, tmp_path):
    with pytest.raises(FluxTrainError, match=r"give at least one backend"):
        callback()
    with pytest.raises(FluxTrainError, match=r"got str: 'log.csv'. Wrap a path in a backend"):
        callback("log.csv")
    for every in (0, 1.5, True):
        with pytest.raises(FluxTrainError, match=rf"every must be an int >= 1.*got {every!r}"):
            callback(CSVBackend(tmp_path / "x.csv"), every=every)
    with pytest.raises(FluxTrainError, match="path must be a str or os.PathLike, got int"):
        CSVBackend(3)


def test_backends_satisfy_the_protocol(tmp_path):
    assert isinstance(CSVBackend(tmp_path / "x.csv"), LoggerBackend)
    assert isinstance(FakeBackend(), LoggerBackend)
    assert not os.path.exists(tmp_path / "x.csv")  # opened on the first value only
    assert repr(LogMetrics(CSVBackend("a.csv"), every=3)) == (
        "LogMetrics(CSVBackend('a.csv'), every=3)"
    )


def test_host_floats_reads_each_value_exactly():
    values = [torch.tensor(0.1), torch.tensor(1 / 3), torch.tensor([2.5])]
    assert host_floats(values) == [float(torch.tensor(0.1)), float(torch.tensor(1 / 3)), 2.5]
    mixed = [torch.tensor(0.1, dtype=torch.float64), torch.tensor(0.1), 0.5]
    assert host_floats(mixed) == [0.1, float(torch.tensor(0.1)), 0.5]
