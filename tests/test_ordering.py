import pytest
import torch

from fluxtrain import (
    Callback,
    CallbackConflictError,
    FluxTrainError,
    Metrics,
    MetricsPrinter,
    NoConflict,
    Read,
    Recorder,
    RunFirst,
    Write,
)
from fluxtrain.callbacks.custom import throttle
from fluxtrain.events import EVENTS, StepEnd
from fluxtrain.testing import tiny_learner


def make(name, stateaccess=None, runafter=(), resolve=None):
    namespace = {"stateaccess": stateaccess or {}, "runafter": runafter}
    if resolve is not None:
        namespace["resolveconflict"] = resolve
    return type(name, (Callback,), namespace)


def names(learner):
    return [cb.name for cb in learner.callbacks]


def test_independent_callbacks_keep_given_order():
    A, B, C = make("A"), make("B"), make("C")
    assert names(tiny_learner(C(), A(), B())) == ["C", "A", "B"]


def test_runafter_moves_a_callback_after_another():
    A = make("A")
    B = make("B", runafter=(A,))
    C = make("C")
    assert names(tiny_learner(B(), C(), A())) == ["C", "A", "B"]


def test_writer_runs_before_reader_of_overlapping_path():
    Writer = make("Writer", {"batch.loss": Write})
    Reader = make("Reader", {"batch": Read})
    Other = make("Other", {"batch.outputs": Read})
    assert names(tiny_learner(Reader(), Other(), Writer())) == ["Other", "Writer", "Reader"]


def test_two_writers_without_resolution_fail_at_build_naming_both():
    W1 = make("W1", {"cbstate.x": Write})
    W2 = make("W2", {"cbstate": Write})
    with pytest.raises(CallbackConflictError) as info:
        tiny_learner(W1(), W2())
    assert str(info.value) == (
        "W1 and W2 both write 'cbstate.x'/'cbstate', and neither says how to order them. "
        "Implement resolveconflict(self, other) on one of them, returning RunFirst(self), "
        "RunFirst(other) or NoConflict(), or drop one of the callbacks."
    )


def test_run_first_orders_writers():
    W1 = make("W1", {"cbstate.x": Write})
    W2 = make("W2", {"cbstate.x": Write}, resolve=lambda self, other: RunFirst(self))
    assert names(tiny_learner(W1(), W2())) == ["W2", "W1"]
    W3 = make("W3", {"cbstate.x": Write}, resolve=lambda self, other: RunFirst(other))
    assert names(tiny_learner(W3(), W1())) == ["W1", "W3"]


def test_no_conflict_keeps_given_order():
    W1 = make("W1", {"cbstate.x": Write}, resolve=lambda self, other: NoConflict())
    W2 = make("W2", {"cbstate.x": Write})
    assert names(tiny_learner(W2(), W1())) == ["W2", "W1"]


def test_cycle_fails_at_build_naming_the_callbacks_on_it():
    A = make("A", {"cbstate.a": Write, "cbstate.b": Read})
    B = make("B", {"cbstate.b": Write, "cbstate.a": Read})
    C = make("C")
    with pytest.raises(CallbackConflictError, match=r"cycle: A -> B -> A\."):
        tiny_learner(C(), A(), B())


def test_throttle_keeps_ordering_declarations():
    assert names(tiny_learner(MetricsPrinter(), Metrics())) == ["Metrics", "MetricsPrinter"]
    Late = make("Late", runafter=(Recorder,))

    def on_step_end(self, phase, learner):
        pass

    Late.on_step_end = on_step_end
    wrapped = throttle(Late(), StepEnd, every=2)
    assert names(tiny_learner(wrapped, Recorder())) == ["Recorder", "Late"]


def shipped_callbacks(folder):
    """One instance of every shipped callback, and a Scheduler of each built-in kind."""
    from fluxtrain import (
        EMA,
        SWA,
        Accuracy,
        Checkpointer,
        CSVBackend,
        EarlyStopping,
        EMADecay,
        GradientAccumulation,
        GradientClipNorm,
        GradientClipping,
        LearningRate,
        LogHyperParams,
        LogMetrics,
        Metrics,
        MetricsPrinter,
        MixedPrecision,
        Momentum,
        ProgressPrinter,
        Recorder,
        Scheduler,
        StopOnNaNLoss,
        ToDevice,
        WeightDecay,
    )

    return [
        Recorder(),
        Metrics(Accuracy()),
        StopOnNaNLoss(),
        ProgressPrinter(),
        MetricsPrinter(),
        ToDevice("cpu"),
        MixedPrecision(torch.bfloat16),
        GradientClipping(1.0),
        GradientAccumulation(2),
        EarlyStopping(patience=2),
        Checkpointer(folder),
        LogMetrics(CSVBackend(folder / "metrics.csv")),
        LogHyperParams(CSVBackend(folder / "hyperparams.csv")),
        Scheduler({LearningRate: 0.1, Momentum: 0.9, WeightDecay: 0.0}),
        Scheduler({GradientClipNorm: 1.0}),
        EMA(),
        SWA(1),
        Scheduler({EMADecay: 0.99}),
    ]


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("defaults", [False, True])
def test_every_pair_and_triple_of_shipped_callbacks_can_be_built(size, defaults, tmp_path):
    import itertools

    count = len(shipped_callbacks(tmp_path))
    failures = []
    for chosen in itertools.combinations(range(count), size):
        every = shipped_callbacks(tmp_path)
        callbacks = [every[i] for i in chosen]
        try:
            tiny_learner(*callbacks, usedefaultcallbacks=defaults)
        except Exception as error:
            failures.append(([cb.name for cb in callbacks], str(error)))
    assert failures == []


def test_a_method_named_like_a_hook_that_is_none_fails_at_class_definition():
    with pytest.raises(FluxTrainError) as error:

        class Misnamed(Callback):
            def on_batch_end(self, phase, learner):
                pass

    message = str(error.value)
    assert message.startswith("Misnamed.on_batch_end looks like a hook, but there is no such event")
    hooks = [e.hook for e in EVENTS]
    assert len(hooks) == 9 and all(hook in message for hook in hooks)
