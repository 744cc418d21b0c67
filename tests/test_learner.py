import pytest
import torch

from fluxtrain import (
    BatchError,
    Callback,
    CancelEpoch,
    CancelFitting,
    CancelStep,
    FitResult,
    FluxTrainError,
    Learner,
    Read,
    TrainingPhase,
    ValidationPhase,
)
from fluxtrain.events import EVENTS
from fluxtrain.testing import Unsized, regression_data, tiny_learner


class EventLog(Callback):
    """Records (event, phase, what the batch holds) at every event."""

    stateaccess = {"batch": Read, "model": Read}

    def __init__(self, raise_at=None):
        self.log = []
        self.raise_at = raise_at or {}

    def _record(self, event, phase, learner):
        b = learner.batch
        held = tuple(
            name
            for name in ("inputs", "targets", "outputs", "loss")
            if getattr(b, name) is not None
        )
        self.log.append((event, phase.name, held))
        key = (event, phase.name, sum(1 for e in self.log if e[:2] == (event, phase.name)))
        if key in self.raise_at:
            raise self.raise_at[key]

    def events(self):
        return [(event, phase) for event, phase, _ in self.log]


for _event in EVENTS:
    setattr(
        EventLog,
        _event.hook,
        (lambda name: lambda self, phase, learner: self._record(name, phase, learner))(
            _event.__name__
        ),
    )

ALL = ("inputs", "targets", "outputs", "loss")
STEP_TRAIN = [
    ("StepBegin", "train", ("inputs", "targets")),
    ("LossBegin", "train", ("inputs", "targets", "outputs")),
    ("BackwardBegin", "train", ALL),
    ("BackwardEnd", "train", ALL),
    ("StepEnd", "train", ALL),
]
STEP_VALID = [
    ("StepBegin", "valid", ("inputs", "targets")),
    ("LossBegin", "valid", ("inputs", "targets", "outputs")),
    ("StepEnd", "valid", ALL),
]


def test_event_sequence_of_two_epoch_fit_with_batch_contents():
    log = EventLog()
    result = tiny_learner(log, n_batches=2).fit(2)
    # None: what the batch holds at EpochBegin depends on the previous epoch, checked below
    expected = [("FitBegin", "train", ())]
    for _ in range(2):
        for phase, step in (("train", STEP_TRAIN), ("valid", STEP_VALID)):
            expected.append(("EpochBegin", phase, None))
            expected += step * 2
            expected.append(("EpochEnd", phase, ALL))
    expected.append(("FitEnd", "train", ALL))
    assert [e[:2] for e in log.log] == [e[:2] for e in expected]
    for got, want in zip(log.log, expected):
        if want[2] is not None:
            assert got == want
    epoch_begins = [held for event, _, held in log.log if event == "EpochBegin"]
    assert epoch_begins == [()] + [ALL] * 3
    assert result == FitResult(2, 4, None, None)


def test_validation_runs_in_eval_mode_without_grad_and_restores_training_mode():
    seen = []

    class Probe(Callback):
        stateaccess = {"model": Read, "batch.loss": Read}

        def on_step_end(self, phase, learner):
            seen.append((phase.name, learner.model.training, learner.batch.loss.requires_grad))

    learner = tiny_learner(Probe(), n_batches=1)
    learner.model.eval()
    learner.fit(1)
    assert seen == [("train", True, True), ("valid", False, False)]
    assert learner.model.training is True


def test_cancel_step_skips_rest_of_step_and_its_step_end():
    log = EventLog(raise_at={("LossBegin", "train", 1): CancelStep("skip")})
    learner = tiny_learner(log, n_batches=2, validation=False)
    result = learner.fit(1)
    assert log.events() == [
        ("FitBegin", "train"),
        ("EpochBegin", "train"),
        ("StepBegin", "train"),
        ("LossBegin", "train"),
        *[(e, p) for e, p, _ in STEP_TRAIN],
        ("EpochEnd", "train"),
        ("FitEnd", "train"),
    ]
    assert result == FitResult(1, 1, None, None)


def test_cancel_epoch_skips_rest_of_epoch_but_epoch_end_fires():
    log = EventLog(raise_at={("StepEnd", "train", 1): CancelEpoch("enough")})
    result = tiny_learner(log, n_batches=3).fit(1)
    assert log.events() == [
        ("FitBegin", "train"),
        ("EpochBegin", "train"),
        *[(e, p) for e, p, _ in STEP_TRAIN],
        ("EpochEnd", "train"),
        ("EpochBegin", "valid"),
        *[(e, p) for e, p, _ in STEP_VALID] * 3,
        ("EpochEnd", "valid"),
        ("FitEnd", "train"),
    ]
    # the step completed before the cancel (StepEnd ran), so it counts
    assert result == FitResult(1, 1, None, None)


def test_cancel_fitting_reports_callback_and_reason_and_fit_end_fires():
    log = EventLog(raise_at={("EpochEnd", "valid", 1): CancelFitting("good enough")})
    result = tiny_learner(log, n_batches=1).fit(5)
    assert log.events()[-3:] == [("StepEnd", "valid"), ("EpochEnd", "valid"), ("FitEnd", "train")]
    assert result == FitResult(1, 1, "EventLog", "good enough")


def test_fit_end_fires_when_an_error_escapes_and_error_names_the_hook():
    log = EventLog(raise_at={("StepBegin", "train", 2): RuntimeError("boom")})
    with pytest.raises(RuntimeError, match="boom") as info:
        tiny_learner(log, n_batches=3).fit(1)
    assert log.events()[-1] == ("FitEnd", "train")
    assert "(raised in EventLog.on_step_begin)" in info.value.__notes__


def test_keyboard_interrupt_propagates_after_fit_end():
    log = EventLog(raise_at={("StepEnd", "train", 1): KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        tiny_learner(log).fit(1)
    assert log.events()[-1] == ("FitEnd", "train")


def test_single_iterable_means_no_validation_and_iterables_without_len_work():
    model = torch.nn.Linear(1, 1)
    log = EventLog()
    learner = Learner(
        model,
        Unsized(regression_data(3)),
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.nn.functional.mse_loss,
        log,
        usedefaultcallbacks=False,
    )
    assert learner.fit(2) == FitResult(2, 6, None, None)
    assert {phase for _, phase in log.events()} == {"train"}
    assert learner.fitstate.steps_per_epoch is None


def test_fit_with_other_data_and_counters_across_fits():
    learner = tiny_learner(n_batches=2)
    assert learner.fit(1, regression_data(5)) == FitResult(1, 5, None, None)
    assert learner.fit(2) == FitResult(2, 4, None, None)
    assert (learner.fitstate.total_epochs, learner.fitstate.total_steps) == (3, 9)


def test_learner_step_and_epoch_run_one_phase():
    log = EventLog()
    learner = tiny_learner(log, n_batches=2)
    learner.step(TrainingPhase(), learner.data.train[0])
    assert log.events() == [(e, p) for e, p, _ in STEP_TRAIN]
    log.log.clear()
    learner.epoch(ValidationPhase(), learner.data.valid)
    assert log.events() == [
        ("EpochBegin", "valid"),
        *[(e, p) for e, p, _ in STEP_VALID] * 2,
        ("EpochEnd", "valid"),
    ]


def test_training_actually_fits_the_line():
    learner = tiny_learner(n_batches=8, lr=0.1)
    learner.fit(10)
    assert learner.model.weight.item() == pytest.approx(3.0, abs=1e-4)


def test_empty_training_data_is_an_error_at_fit_start():
    learner = tiny_learner()
    with pytest.raises(BatchError, match=r"training data is empty \(len\(\) == 0\)"):
        learner.fit(1, [])


def test_exhausted_iterator_is_an_error_naming_the_fix():
    learner = tiny_learner()
    with pytest.raises(BatchError, match="yielded no batches.*pass a re-iterable"):
        learner.fit(2, iter(regression_data(2)))


def test_non_scalar_loss_is_a_clear_error():
    learner = tiny_learner(loss_fn=torch.nn.MSELoss(reduction="none"))
    with pytest.raises(BatchError, match=r"scalar tensor, got a tensor of shape \(8, 1\).*mean"):
        learner.fit(1)


def test_batch_that_is_not_a_pair_is_a_clear_error():
    learner = tiny_learner()
    x = torch.zeros(4, 1)
    with pytest.raises(
        BatchError,
        match=r"\(inputs, targets\), \(inputs,\) or a mapping .*, got a tuple of length 3",
    ):
        learner.fit(1, [(x, x, x)])
    with pytest.raises(BatchError, match=r"got a Tensor of length 4"):
        learner.fit(1, [x])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "net"}, "model must be a torch.nn.Module, got str"),
        (
            {"optimizer": None},
            "optimizer must be a torch.optim.Optimizer or a dict .* got NoneType",
        ),
        ({"optimizer": {"g": "sgd"}}, "optimizer 'g' must be a torch.optim.Optimizer, got str"),
        ({"optimizer": {}}, "optimizer must be a torch.optim.Optimizer or a dict .* got dict"),
        ({"loss_fn": 3}, "loss_fn must be callable"),
        ({"data": 5}, "training data must be an iterable .* got int"),
        ({"data": torch.zeros(3)}, "single tensor"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    model = torch.nn.Linear(1, 1)
    args = {
        "model": model,
        "data": regression_data(1),
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "loss_fn": torch.nn.functional.mse_loss,
    }
    args.update(kwargs)
    with pytest.raises(FluxTrainError, match=match):
        Learner(args["model"], args["data"], args["optimizer"], args["loss_fn"])


def test_bad_fit_arguments():
    learner = tiny_learner()
    with pytest.raises(FluxTrainError, match="n_epochs must be an int >= 0, got -1"):
        learner.fit(-1)
    with pytest.raises(FluxTrainError, match="no training data"):
        Learner(
            learner.model, None, learner.optimizer, learner.loss_fn, usedefaultcallbacks=False
        ).fit(1)
    with pytest.raises(FluxTrainError, match="Instantiate the class"):
        Learner(learner.model, None, learner.optimizer, learner.loss_fn, EventLog)
