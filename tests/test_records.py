"""Records of hyperparameter values: 16 bytes a value in memory and in checkpoints, read as a
list of ``(step, value)`` tuples."""

import copy
import io
import pickle
import sys
import tracemalloc

import pytest
import torch

from fluxtrain import Callback, CancelStep, LearningRate, Momentum, Scheduler, TrainingPhase
from fluxtrain.checkpoints.trust import trusted_types
from fluxtrain.records import Record
from fluxtrain.testing import tiny_learner

N_STEPS = 30_000
TARGET = 24  # bytes of memory, and of checkpoint, per recorded value


def lr(t):
    return 0.1 / (1.0 + t)


def momentum(t):
    return 0.9 - t * 1e-6


@pytest.fixture(scope="module")
def fitted():
    """A learner after a 30k-step fit with two scheduled hyperparameters."""
    scheduler = Scheduler({LearningRate: lr, Momentum: momentum})
    learner = tiny_learner(scheduler, n_batches=1000, batch_size=1, validation=False)
    learner.fit(N_STEPS // 1000)
    return learner


def saved(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_a_long_fit_records_every_value(fitted):
    records = fitted.cbstate.hyperparams
    assert records["LearningRate"] == [(t, lr(t)) for t in range(N_STEPS)]
    assert records["Momentum"] == [(t, momentum(t)) for t in range(N_STEPS)]
    assert all(type(step) is int and type(value) is float for step, value in records["Momentum"])


def test_a_long_fits_records_stay_within_24_bytes_a_value(fitted):
    for record in fitted.cbstate.hyperparams.values():
        memory = sys.getsizeof(record) + sys.getsizeof(record.steps) + sys.getsizeof(record.values)
        assert memory <= TARGET * N_STEPS
        assert len(pickle.dumps(record)) <= TARGET * N_STEPS
    assert len(saved(fitted.cbstate.hyperparams)) <= 2 * TARGET * N_STEPS


def test_appending_takes_at_most_24_bytes_a_value():
    record, pairs = Record(), [(t, lr(t)) for t in range(N_STEPS)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for pair in pairs:
            record.append(pair)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 16 * N_STEPS <= grown <= TARGET * N_STEPS


def test_a_whole_learner_state_grows_by_16_bytes_a_value(fitted):
    state = fitted.state_dict()
    empty = {**state, "cbstate": {**state["cbstate"], "hyperparams": {}}}
    assert len(saved(state)) - len(saved(empty)) <= 2 * TARGET * N_STEPS


def test_records_load_back_with_weights_only(fitted):
    records = fitted.cbstate.hyperparams
    buffer = io.BytesIO(saved({"hyperparams": records, "empty": Record()}))
    with torch.serialization.safe_globals(trusted_types()):
        loaded = torch.load(buffer, weights_only=True)
    assert loaded["hyperparams"] == records and loaded["empty"] == []
    assert isinstance(loaded["hyperparams"]["LearningRate"], Record)


def test_a_record_pickles_as_two_tensors():
    kind, (steps, values) = Record([3, 4], [0.5, 0.25]).__reduce__()
    assert kind is Record
    assert steps.dtype == torch.int64 and steps.tolist() == [3, 4]
    assert values.dtype == torch.float64 and values.tolist() == [0.5, 0.25]
    assert Record(steps, values) == [(3, 0.5), (4, 0.25)]


def test_a_record_reads_like_a_list_of_tuples():
    pairs = [(0, 0.5), (1, 0.25), (2, 0.125)]
    record = Record.from_pairs(pairs)
    assert record == pairs and pairs == record and record == tuple(pairs)
    assert record != pairs[:2] and record != [(0, 0.5), (1, 0.25), (2, 0.0)]
    assert record != [[0, 0.5], [1, 0.25], [2, 0.125]]  # as for a list of tuples
    assert record != "abc" and record != {0: 0.5}
    assert record == Record([0, 1, 2], [0.5, 0.25, 0.125]) and record != Record()
    assert len(record) == 3 and bool(record) and not Record()
    assert list(record) == pairs and list(reversed(record)) == pairs[::-1]
    assert record[0] == (0, 0.5) and record[-1] == (2, 0.125)
    assert record[1:] == pairs[1:] and isinstance(record[1:], Record)
    assert record[::2] == pairs[::2]
    assert (1, 0.25) in record and record.index((2, 0.125)) == 2
    with pytest.raises(IndexError):
        record[3]
    with pytest.raises(TypeError):
        hash(record)


def test_append_pop_and_copies():
    record = Record()
    record.append((0, 1))  # an int value is stored as a float
    record.extend([(1, 0.5), (2, 0.25)])
    assert record == [(0, 1.0), (1, 0.5), (2, 0.25)] and type(record[0][1]) is float
    assert record.pop() == (2, 0.25) and record.pop(0) == (0, 1.0) and record == [(1, 0.5)]
    copied, deep = copy.copy(record), copy.deepcopy({"r": record, "same": record})
    assert deep["r"] is deep["same"]  # shared as in the original
    deep = deep["r"]
    record.append((2, 0.25))
    assert copied == deep == [(1, 0.5)] and record == [(1, 0.5), (2, 0.25)]
    assert pickle.loads(pickle.dumps(record)) == record
    view = record.__reduce__()  # the tensors are copies: the record still grows
    record.append((3, 0.125))
    assert len(view[1][0]) == 2 and len(record) == 3


def test_bad_input_says_what_was_wrong():
    with pytest.raises(TypeError, match=r"^Record\.append takes one \(step, value\) pair with "):
        Record().append((0.5, 1.0))
    with pytest.raises(TypeError, match=r"got 0\.5 \("):
        Record().append(0.5)
    record = Record()
    with pytest.raises(TypeError):
        record.append((1, "x"))
    assert record == []  # nothing half-appended
    with pytest.raises(ValueError, match=r"^Record: got 2 steps but 1 values; give one value "):
        Record([0, 1], [0.5])
    with pytest.raises(ValueError, match=r"must be 1-dimensional, got a tensor of shape \(1, 2\)"):
        Record(torch.zeros(1, 2, dtype=torch.int64), torch.zeros(2))


def test_repr_shows_short_records_whole_and_long_ones_by_their_ends():
    assert repr(Record([0, 1], [0.5, 0.25])) == "Record([(0, 0.5), (1, 0.25)])"
    long = Record(range(100), [t / 4 for t in range(100)])
    assert repr(long) == (
        "Record([(0, 0.0), (1, 0.25), (2, 0.5), ..., (97, 24.25), (98, 24.5), (99, 24.75)], "
        "len=100)"
    )


def test_records_of_lists_become_records_and_go_on():
    learner = tiny_learner(Scheduler({LearningRate: lr}))
    learner.cbstate.hyperparams = {"LearningRate": [(-1, 0.5)], "Other": [(0, 1.0)]}
    learner.fit(1)
    record = learner.cbstate.hyperparams["LearningRate"]
    assert isinstance(record, Record) and record == [(-1, 0.5)] + [(t, lr(t)) for t in range(4)]
    assert learner.cbstate.hyperparams["Other"] == [(0, 1.0)]


class CancelSecondStep(Callback):
    def __init__(self):
        self.seen = 0

    def on_step_begin(self, phase, learner):
        self.seen += isinstance(phase, TrainingPhase)
        if self.seen == 2 and isinstance(phase, TrainingPhase):
            raise CancelStep()


def test_a_cancelled_step_leaves_no_value():
    learner = tiny_learner(Scheduler({LearningRate: lr}), CancelSecondStep(), validation=False)
    learner.fit(1)
    assert learner.cbstate.hyperparams["LearningRate"] == [(t, lr(t)) for t in range(3)]
