import pytest

from fluxtrain import FluxTrainError, Metrics
from fluxtrain.testing import tiny_learner

optuna = pytest.importorskip("optuna")
from fluxtrain.integrations import OptunaPruning  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_study_prunes_the_slow_trials_and_their_fits_say_why():
    # valid/Loss of the tiny learner after epochs 1, 2, 3 for each learning rate:
    # 0.05: 5.33, 2.45, 1.13    0.02: 8.58, 6.36, 4.71    0.01: 9.99, ...
    # 0.001: 11.42, ...         0.0: 11.59 (constant)
    # MedianPruner(n_startup_trials=2) compares with the median of the finished trials at the
    # same epoch: (5.33 + 8.58) / 2 = 6.96 after epoch 1, (2.45 + 6.36) / 2 = 4.40 after epoch 2.
    lrs = [0.05, 0.02, 0.0, 0.01, 0.001, 0.05]
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for lr in lrs:
        study.enqueue_trial({"lr": lr})
    results, learners = {}, {}

    def objective(trial):
        pruning = OptunaPruning(trial, monitor="valid/Loss")
        learner = tiny_learner(Metrics(), pruning, lr=trial.suggest_float("lr", 0.0, 0.1))
        results[trial.number] = learner.fit(3)
        learners[trial.number] = learner
        pruning.raise_if_pruned()
        return learner.cbstate.metrics_epoch["valid/Loss"][-1]

    study.optimize(objective, n_trials=len(lrs))
    states = [t.state for t in study.trials]
    P, C = optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE
    assert states == [C, C, P, P, P, C]
    for trial in study.trials:
        result, learner = results[trial.number], learners[trial.number]
        losses = learner.cbstate.metrics_epoch["valid/Loss"]
        assert trial.intermediate_values == {i + 1: v for i, v in enumerate(losses)}
        if trial.state == P:
            assert result.stopped_by == "OptunaPruning" and result.epochs_completed == 1
            assert result.reason == (
                f"MedianPruner pruned trial {trial.number} at epoch 1: valid/Loss = {losses[0]:.4g}"
            )
        else:
            assert result.stopped_by is None and result.epochs_completed == 3
            assert trial.value == losses[-1]
    assert results[2].reason == "MedianPruner pruned trial 2 at epoch 1: valid/Loss = 11.59"


def test_under_validate_every_it_reports_at_the_validations_step():
    trial = optuna.create_study(pruner=optuna.pruners.NopPruner()).ask()
    learner = tiny_learner(Metrics(), OptunaPruning(trial))
    result = learner.fit(steps=8, validate_every=3)
    assert result.stopped_by is None
    losses = learner.cbstate.metrics_epoch["valid/Loss"]
    assert len(losses) == 2
    assert trial.study.trials[0].intermediate_values == {3: losses[0], 6: losses[1]}


def test_mistakes_are_clear_errors():
    trial = optuna.create_study().ask()
    with pytest.raises(FluxTrainError, match=r"trial must be an optuna.Trial .* got str"):
        OptunaPruning("trial 1")
    with pytest.raises(FluxTrainError, match=r"monitor must be a metric name .* got ''"):
        OptunaPruning(trial, monitor="")
    with pytest.raises(FluxTrainError, match=r"only the Metrics callback records"):
        tiny_learner(OptunaPruning(trial)).fit(1)
    with pytest.raises(FluxTrainError, match=r"'valid/Accuracy' is not in .* valid/Loss"):
        tiny_learner(Metrics(), OptunaPruning(trial, "valid/Accuracy")).fit(1)
