import pytest
import torch

from fluxtrain import Callback, Read, StateAccessError, Write
from fluxtrain.access import ProtectedLearner
from fluxtrain.testing import tiny_learner


def test_declared_read_is_allowed_and_undeclared_read_raises_with_fix():
    class ReadsLoss(Callback):
        stateaccess = {"batch.loss": Read}

        def on_step_end(self, phase, learner):
            _ = learner.batch.loss
            _ = learner.batch.outputs

    with pytest.raises(StateAccessError) as info:
        tiny_learner(ReadsLoss()).fit(1)
    assert str(info.value) == (
        "ReadsLoss reads learner.batch.outputs, which ReadsLoss.stateaccess does not declare. "
        'Add "batch.outputs": Read to ReadsLoss.stateaccess.'
    )


def test_write_needs_write_declaration():
    class WritesLoss(Callback):
        stateaccess = {"batch.loss": Read}

        def on_loss_begin(self, phase, learner):
            learner.batch.outputs = None

    with pytest.raises(
        StateAccessError, match=r'writes learner.batch.outputs.*"batch.outputs": Write'
    ):
        tiny_learner(WritesLoss()).fit(1)


def test_write_declaration_allows_write_and_read():
    class Doubler(Callback):
        stateaccess = {"batch.outputs": Write}

        def on_loss_begin(self, phase, learner):
            learner.batch.outputs = learner.batch.outputs * 2

    learner = tiny_learner(Doubler(), n_batches=1, validation=False)
    learner.fit(1)
    x, y = learner.data.train[0]
    assert torch.equal(learner.batch.outputs, learner.model(x).detach() * 0 + learner.batch.outputs)


def test_cbstate_entries_are_protected_individually():
    class Mine(Callback):
        stateaccess = {"cbstate.mine": Write}

        def init(self, learner):
            learner.cbstate.mine = 0

        def on_step_end(self, phase, learner):
            learner.cbstate.mine += 1
            _ = learner.cbstate.history

    learner = tiny_learner(Mine())
    with pytest.raises(StateAccessError, match="reads learner.cbstate.history"):
        learner.fit(1)
    assert learner.cbstate.mine == 1


def test_no_declaration_means_no_access():
    class Nosy(Callback):
        def on_fit_begin(self, phase, learner):
            _ = learner.model

    with pytest.raises(StateAccessError, match='Add "model": Read to Nosy.stateaccess'):
        tiny_learner(Nosy()).fit(1)


@pytest.mark.parametrize(
    "declaration, match",
    [
        ({"bacth.loss": Read}, "unknown path 'bacth.loss'"),
        ({"batch.los": Read}, "unknown path 'batch.los'"),
        ({"model.weight": Read}, "unknown path 'model.weight'"),
        ({"cbstate.a.b": Read}, "unknown path 'cbstate.a.b'"),
        ({"model": "read"}, r"stateaccess\['model'\] must be Read or Write"),
        (["model"], "must be a dict of dotted paths"),
    ],
)
def test_declaration_typos_fail_at_class_definition(declaration, match):
    with pytest.raises(StateAccessError, match=match):

        class Typo(Callback):
            stateaccess = declaration


def test_view_is_built_once_and_does_not_allocate_per_access():
    learner = tiny_learner()
    view = ProtectedLearner(learner, "X", {"batch.loss": Read, "model": Read})
    assert view.batch is view.batch
    assert view.model is learner.model
    with pytest.raises(StateAccessError):
        view.optimizer = None
    assert "loss" in dir(view.batch)
    assert not hasattr(view, "optimizer")
