import pytest
import torch

from fluxtrain import (
    HyperParameter,
    HyperParameterError,
    LearningRate,
    Momentum,
    StateAccessError,
    WeightDecay,
    Write,
)


def params():
    return [torch.zeros(1, requires_grad=True)]


def two_groups(make, **kw):
    return make([{"params": params()}, {"params": params()}], **kw)


@pytest.mark.parametrize(
    ("make", "kw", "key"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, "momentum"),
        (torch.optim.RMSprop, {"lr": 0.1, "momentum": 0.9}, "momentum"),
        (torch.optim.Adam, {"lr": 0.1}, "betas"),
        (torch.optim.AdamW, {"lr": 0.1}, "betas"),
        (torch.optim.NAdam, {"lr": 0.1}, "betas"),
        (torch.optim.RAdam, {"lr": 0.1}, "betas"),
        (torch.optim.Adamax, {"lr": 0.1}, "betas"),
    ],
)
def test_momentum_finds_its_field(make, kw, key):
    optimizer = two_groups(make, **kw)
    Momentum().check_optimizer(optimizer)
    Momentum().apply(optimizer, 0.8)
    for group in optimizer.param_groups:
        value = group["betas"][0] if key == "betas" else group["momentum"]
        assert value == 0.8
        if key == "betas":
            assert group["betas"][1] == 0.999


def test_each_builtin_sets_every_group_or_one():
    optimizer = two_groups(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=0.0)
    LearningRate().apply(optimizer, 0.05)
    WeightDecay(group=1).apply(optimizer, 0.01)
    Momentum(group=0).apply(optimizer, 0.5)
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.05]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.01]
    assert [g["momentum"] for g in optimizer.param_groups] == [0.5, 0.9]


def test_names():
    assert LearningRate().name == "LearningRate"
    assert Momentum(group=2).name == "Momentum[group=2]"
    assert repr(WeightDecay(group=1)) == "WeightDecay(group=1)"


def test_tensor_lr_is_filled_in_place():
    lr = torch.tensor(0.01)
    optimizer = torch.optim.Adam(params(), lr=lr)
    LearningRate().apply(optimizer, 0.003)
    assert optimizer.param_groups[0]["lr"] is lr
    assert lr.item() == pytest.approx(0.003, rel=1e-7)


def test_momentum_on_adagrad_is_an_error():
    optimizer = torch.optim.Adagrad(params(), lr=0.1)
    with pytest.raises(
        HyperParameterError, match=r"Momentum cannot be set on Adagrad: .*'momentum' or 'betas'"
    ):
        Momentum().check_optimizer(optimizer)


def test_group_out_of_range_is_an_error():
    optimizer = two_groups(torch.optim.SGD, lr=0.1)
    with pytest.raises(HyperParameterError, match=r"has 2 param group\(s\), so group=5"):
        LearningRate(group=5).check_optimizer(optimizer)


@pytest.mark.parametrize("group", [-1, 1.0, True, "0"])
def test_bad_group(group):
    with pytest.raises(HyperParameterError, match="group must be"):
        LearningRate(group=group)


def test_custom_hyperparameter_declares_access():
    class Temperature(HyperParameter):
        stateaccess = {"loss_fn": Write}

        def sethyperparameter(self, learner, value):
            learner.loss_fn.temperature = value

    assert Temperature.stateaccess == {"loss_fn": Write}
    with pytest.raises(StateAccessError, match="unknown path 'los_fn'"):

        class Typo(HyperParameter):
            stateaccess = {"los_fn": Write}


def test_sethyperparameter_must_be_implemented():
    class Nothing(HyperParameter):
        pass

    with pytest.raises(NotImplementedError, match="Nothing must implement sethyperparameter"):
        Nothing().sethyperparameter(None, 1.0)
