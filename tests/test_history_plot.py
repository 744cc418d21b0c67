import sys

import pytest
import torch

from fluxtrain import FluxTrainError, FunctionMetric, LearningRate, Metrics, Momentum
from fluxtrain.history_plot import epoch_series, plot_history
from fluxtrain.scheduler import Scheduler
from fluxtrain.testing import tiny_learner

pytest.importorskip("matplotlib")


def mae(outputs, targets):
    return (outputs - targets).abs().mean()


def sgd_momentum(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def fitted(*callbacks, n_epochs=3, validation=True):
    learner = tiny_learner(*callbacks, n_batches=4, validation=validation, optimizer=sgd_momentum)
    learner.fit(n_epochs)
    return learner


def lines(ax):
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in ax.get_lines()
    }


def test_plot_history_has_one_subplot_per_metric_and_hyperparameter(tmp_path):
    from matplotlib.figure import Figure

    scheduler = Scheduler({LearningRate: lambda t: 0.01 / (1 + t), Momentum: 0.9})
    learner = fitted(Metrics(FunctionMetric(mae, name="MAE")), scheduler)
    path = tmp_path / "history.png"
    figure = plot_history(learner, path)

    assert isinstance(figure, Figure)
    assert [ax.get_title() for ax in figure.axes] == ["Loss", "MAE", "LearningRate", "Momentum"]
    assert [ax.get_xlabel() for ax in figure.axes] == ["epoch"] * 2 + ["training step"] * 2
    epochs = learner.cbstate.metrics_epoch
    for ax, metric in zip(figure.axes[:2], ("Loss", "MAE")):
        assert lines(ax) == {
            "train": ([1, 2, 3], epochs[f"train/{metric}"]),
            "valid": ([1, 2, 3], epochs[f"valid/{metric}"]),
        }
    for ax, name in zip(figure.axes[2:], ("LearningRate", "Momentum")):
        records = learner.cbstate.hyperparams[name]
        ((xs, ys),) = lines(ax).values()
        assert (xs, ys) == ([s for s, _ in records], [v for _, v in records])
        assert xs == list(range(12))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_columns_are_left_out_when_there_is_nothing_for_them(tmp_path):
    only_metrics = plot_history(fitted(Metrics(), validation=False))
    assert [ax.get_title() for ax in only_metrics.axes] == ["Loss"]
    assert list(lines(only_metrics.axes[0])) == ["train"]

    schedule = Scheduler({LearningRate: 0.01, Momentum: lambda t: 0.9 - t / 100})
    only_hyperparams = plot_history(fitted(schedule, n_epochs=1))
    assert [ax.get_title() for ax in only_hyperparams.axes] == ["LearningRate", "Momentum"]


def test_plot_history_without_records_says_what_to_add():
    with pytest.raises(FluxTrainError, match=r"no recorded metrics .* Metrics\(...\)"):
        plot_history(fitted(n_epochs=1))


def test_plot_history_without_matplotlib_says_how_to_install_it(monkeypatch):
    learner = fitted(Metrics(), n_epochs=1)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install fluxtrain\[plot\]"):
        plot_history(learner)


def test_epoch_series_groups_by_metric_in_first_seen_order():
    grouped = epoch_series(
        {"train/Loss": [1.0], "train/Acc": [0.5], "valid/Loss": [2.0], "valid/Acc": []}
    )
    assert grouped == {"Loss": {"train": [1.0], "valid": [2.0]}, "Acc": {"train": [0.5]}}
