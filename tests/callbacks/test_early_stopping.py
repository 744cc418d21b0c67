import pytest

from fluxtrain import Callback, FitResult, FluxTrainError, Metrics, Read, Write
from fluxtrain.callbacks.checkpointer import Checkpointer
from fluxtrain.callbacks.early_stopping import EarlyStopping
from fluxtrain.testing import tiny_learner


class ScriptedMetric(Callback):
    """Appends the next scripted value to cbstate.metrics_epoch[key] at each epoch end."""

    stateaccess = {"cbstate.metrics_epoch": Write}

    def __init__(self, values, key="valid/Loss"):
        self.values, self.key = list(values), key

    def init(self, learner):
        if "metrics_epoch" not in learner.cbstate:
            learner.cbstate.metrics_epoch = {}

    def on_epoch_end(self, phase, learner):
        if phase.name == self.key.split("/")[0]:
            values = learner.cbstate.metrics_epoch.setdefault(self.key, [])
            values.append(self.values[len(values)])


def fit(values, stopper, n_epochs=20, **kwargs):
    return tiny_learner(ScriptedMetric(values, **kwargs), stopper, n_batches=2).fit(n_epochs)


def test_stops_after_patience_epochs_without_improvement_and_reports_it():
    result = fit([5.0, 4.0, 4.5, 4.2, 4.1, 3.0], EarlyStopping(patience=3))
    reason = "valid/Loss did not improve by more than 0 for 3 epochs (best 4 at epoch 2)"
    # stopped at the end of the 5th epoch, which is complete
    assert result == FitResult(5, 10, "EarlyStopping", reason)


def test_min_delta_and_mode_max():
    # improvements of at most 0.1 do not count
    stopper = EarlyStopping(mode="max", patience=2, min_delta=0.1)
    result = fit([1.0, 1.05, 1.2, 1.25, 1.28, 1.5], stopper)
    assert result.epochs_completed == 5
    assert result.reason == (
        "valid/Loss did not improve by more than 0.1 for 2 epochs (best 1.2 at epoch 3)"
    )


def test_without_validation_it_reads_training_metrics_after_each_training_epoch():
    learner = tiny_learner(
        ScriptedMetric([3.0, 3.0], key="train/Loss"),
        EarlyStopping("train/Loss", patience=1),
        validation=False,
    )
    assert learner.fit(5).epochs_completed == 2


def test_a_nan_never_improves():
    result = fit([float("nan"), 2.0, float("nan"), float("nan")], EarlyStopping(patience=2))
    assert result.epochs_completed == 4 and "best 2 at epoch 2" in result.reason


def test_a_missing_monitor_fails_at_the_first_epoch_end_listing_the_recorded_keys():
    learner = tiny_learner(Metrics(), EarlyStopping("valid/Accuracy"))
    with pytest.raises(
        FluxTrainError, match=r"'valid/Accuracy' is not .*recorded: train/Loss, valid/Loss"
    ):
        learner.fit(3)
    assert learner.fitstate.total_epochs == 1


def test_without_metrics_it_fails_at_fit_begin():
    learner = tiny_learner(EarlyStopping())
    with pytest.raises(FluxTrainError, match=r"this learner has none\. Add Metrics"):
        learner.fit(3)
    assert learner.fitstate.total_steps == 0


def test_counts_start_over_with_a_new_fit():
    stopper = EarlyStopping(patience=2)
    learner = tiny_learner(ScriptedMetric([1.0, 2.0, 0.5, 0.6, 0.7]), stopper, n_batches=2)
    assert learner.fit(2).stopped_by is None and stopper.wait == 1
    assert learner.fit(5).epochs_completed == 3  # best 0.5 at epoch 3, then two worse ones


class InterruptAtEpoch(Callback):
    stateaccess = {"fitstate": Read}

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, phase, learner):
        if phase.name == "train" and learner.fitstate.total_epochs == self.epoch:
            raise KeyboardInterrupt


def test_its_state_survives_a_resume(tmp_path):
    values = [5.0, 4.0, 4.5, 4.2, 4.1, 3.0]
    want = tiny_learner(ScriptedMetric(values), EarlyStopping(patience=3)).fit(20)
    learner = tiny_learner(
        ScriptedMetric(values),
        EarlyStopping(patience=3),
        InterruptAtEpoch(3),
        Checkpointer(tmp_path),
    )
    with pytest.raises(KeyboardInterrupt):
        learner.fit(20)
    stopper = EarlyStopping(patience=3)
    resumed = tiny_learner(
        ScriptedMetric(values), stopper, InterruptAtEpoch(-1), Checkpointer(tmp_path)
    )
    assert resumed.fit(20, resume="latest") == want
    assert want == FitResult(5, 20, "EarlyStopping", want.reason)
    assert stopper.state_dict() == {"best": 4.0, "best_epoch": 2, "wait": 3, "weights": None}


def test_state_dict_round_trip():
    stopper = EarlyStopping(patience=3)
    fit([5.0, 4.0, 4.5, 6.0], stopper, n_epochs=4)
    other = EarlyStopping(patience=3)
    other.load_state_dict(stopper.state_dict())
    assert (
        other.state_dict()
        == stopper.state_dict()
        == {"best": 4.0, "best_epoch": 2, "wait": 2, "weights": None}
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "lower"}, "mode must be 'min'"),
        ({"patience": 0}, "patience must be an int >= 1, got 0"),
        ({"min_delta": -1}, "min_delta must be >= 0, got -1"),
        ({"monitor": ""}, "monitor must be a metric name"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(FluxTrainError, match=match):
        EarlyStopping(**kwargs)
