"""Batches of any shape: dicts, tuple inputs, inputs only, structured targets, own losses."""

from __future__ import annotations

import collections
import importlib.util

import pytest
import torch

from fluxtrain import (
    Accuracy,
    BatchError,
    FunctionMetric,
    Learner,
    LearningRate,
    Metrics,
    Recorder,
    Scheduler,
    ToDevice,
    TorchMetric,
)
from fluxtrain.batches import batch_size, compute_loss, first_tensor, forward, predictions, split
from fluxtrain.schedules import constant


class KeywordModel(torch.nn.Module):
    """A Hugging Face style model: keyword inputs, a dict output with its own loss."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, features, labels=None):
        logits = self.linear(features)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def dict_batches(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "features": torch.randn(n, 3, generator=g),
            "labels": torch.randint(0, 2, (n,), generator=g),
        }
        for n in sizes
    ]


def test_split_reads_each_convention():
    x, y = torch.ones(2, 3), torch.zeros(2)
    mapping = {"features": x, "labels": y}
    assert split(mapping) == (mapping, y)
    assert split({"features": x}) == ({"features": x}, None)
    assert split((x, y)) == (x, y)
    assert split([x, y]) == (x, y)
    assert split((x,)) == (x, None)
    assert split([x]) == (x, None)
    with pytest.raises(BatchError, match=r"got a tuple of length 3"):
        split((x, x, x))
    with pytest.raises(BatchError, match=r"got a Tensor of length 2"):
        split(x)


def test_forward_unpacks_tuples_and_mappings():
    seen = []

    def model(*args, **kwargs):
        seen.append((args, kwargs))
        return 0

    forward(model, torch.ones(1))
    forward(model, (1, 2))
    forward(model, [3])
    forward(model, {"a": 4})
    forward(model, "text")
    assert [(len(a), sorted(k)) for a, k in seen] == [
        (1, []),
        (2, []),
        (1, []),
        (0, ["a"]),
        (1, []),
    ]
    assert seen[1][0] == (1, 2) and seen[3][1] == {"a": 4} and seen[4][0] == ("text",)


def test_own_loss_is_read_from_attribute_key_or_scalar_output():
    Output = collections.namedtuple("Output", "loss logits")
    loss = torch.tensor(0.25)
    assert compute_loss(None, Output(loss, None), None) is loss
    assert compute_loss(None, {"loss": loss}, None) is loss
    assert compute_loss(None, loss, None) is loss
    with pytest.raises(BatchError, match=r"loss_fn is None.*outputs are a dict with no 'loss'"):
        compute_loss(None, {"logits": torch.zeros(2)}, None)
    with pytest.raises(BatchError, match=r"model's own loss must be a scalar tensor, got a tensor"):
        compute_loss(None, {"loss": torch.zeros(3)}, None)


def test_batch_size_is_the_first_tensor_of_the_inputs_depth_first():
    assert batch_size(torch.zeros(7, 2)) == 7
    assert batch_size(torch.tensor(1.0)) == 1
    assert batch_size((["a", "b"], torch.zeros(5))) == 5
    assert batch_size({"mask": [torch.zeros(4)], "ids": torch.zeros(9)}) == 4
    assert batch_size(["a", "b", "c"]) == 3
    assert first_tensor({"a": "text"}) is None


def test_predictions_are_outputs_or_their_logits():
    logits = torch.ones(2, 3)
    Output = collections.namedtuple("Output", "loss logits")
    assert predictions(logits) is logits
    assert predictions(Output(None, logits)) is logits
    assert predictions({"logits": logits}) is logits
    assert predictions((logits, 1)) == (logits, 1)


def test_dict_batches_with_the_models_own_loss_train_and_count_samples():
    torch.manual_seed(0)
    model = KeywordModel()
    train, valid = dict_batches([8, 8, 5]), dict_batches([6, 3], seed=1)
    learner = Learner(
        model,
        (train, valid),
        torch.optim.SGD(model.parameters(), lr=0.5),
        None,
        Recorder(),
        Metrics(Accuracy()),
        usedefaultcallbacks=False,
    )
    with torch.no_grad():
        before = [float(model(**b)["loss"]) for b in train]
    learner.fit(3)
    with torch.no_grad():
        after = [float(model(**b)["loss"]) for b in train]
    assert sum(after) < sum(before)
    history = learner.cbstate.history
    assert (history["train"].samples, history["valid"].samples) == (3 * 21, 3 * 9)
    with torch.no_grad():
        hits = sum(int((model(**b)["logits"].argmax(-1) == b["labels"]).sum()) for b in valid)
    assert learner.cbstate.metrics_epoch["valid/Accuracy"][-1] == hits / 9


def test_tuple_inputs_are_unpacked_and_structured_targets_weight_by_input_size():
    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 1, bias=False)
            self.b = torch.nn.Linear(3, 1, bias=False)

        def forward(self, xa, xb):
            return self.a(xa) + self.b(xb), xb.sum(dim=1)

    g = torch.Generator().manual_seed(3)
    sizes = [5, 2, 9]
    batches = [
        (
            (torch.randn(n, 2, generator=g), torch.randn(n, 3, generator=g)),
            {"y": torch.randn(n, 1, generator=g), "total": torch.randn(n, generator=g)},
        )
        for n in sizes
    ]

    def loss_fn(outputs, targets):
        return torch.nn.functional.mse_loss(outputs[0], targets["y"]) + (
            torch.nn.functional.l1_loss(outputs[1], targets["total"])
        )

    def total_error(preds, targets):
        return (preds[1] - targets["total"]).abs().mean()

    model = TwoInputs()
    learner = Learner(
        model,
        (batches[:1], batches),
        torch.optim.SGD(model.parameters(), lr=0.0),  # weights stay: a hand computation
        loss_fn,
        Recorder(),
        Metrics(FunctionMetric(total_error, name="TotalError")),
        usedefaultcallbacks=False,
    )
    learner.fit(1)
    with torch.no_grad():
        losses = [float(loss_fn(model(*x), y)) for x, y in batches]
        errors = [float(total_error(model(*x), y)) for x, y in batches]
    expected_loss = sum(n * v for n, v in zip(sizes, losses)) / sum(sizes)
    expected_error = sum(n * v for n, v in zip(sizes, errors)) / sum(sizes)
    assert learner.cbstate.metrics_epoch["valid/Loss"] == [pytest.approx(expected_loss, rel=1e-12)]
    assert learner.cbstate.metrics_epoch["valid/TotalError"] == [
        pytest.approx(expected_error, rel=1e-12)
    ]
    assert learner.cbstate.history["valid"].samples == 16


def test_inputs_only_batches_with_a_scheduler_in_samples():
    model = torch.nn.Linear(2, 1)

    def loss_fn(outputs, targets):
        assert targets is None
        return outputs.pow(2).mean()

    batches = [(torch.randn(n, 2),) for n in (4, 6)]
    scheduler = Scheduler({LearningRate: constant(0.1, unit="sample") * 1})
    learner = Learner(
        model,
        batches,
        torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn,
        scheduler,
        Recorder(),
        usedefaultcallbacks=False,
    )
    learner.fit(2)
    assert scheduler.clock.times()[3] == 20
    assert learner.cbstate.history["train"].samples == 20


def test_to_device_moves_structured_targets_and_mapping_batches():
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, features, labels=None):
            seen.append(features.device)
            return {"loss": (self.w * features).sum() * 0}

    batches = [{"features": torch.ones(2, 1), "labels": {"a": torch.zeros(2)}}]
    probe = Probe()
    learner = Learner(
        probe,
        batches,
        torch.optim.SGD(probe.parameters(), lr=0.1),
        None,
        ToDevice("cpu"),
        usedefaultcallbacks=False,
    )
    learner.fit(1)
    assert seen == [torch.device("cpu")]


def test_function_metric_with_per_sample_values_fails_at_the_first_step():
    model = KeywordModel()
    learner = Learner(
        model,
        dict_batches([4, 4]),
        torch.optim.SGD(model.parameters(), lr=0.1),
        None,
        Metrics(FunctionMetric(lambda preds, targets: (preds.argmax(-1) == targets).float())),
        usedefaultcallbacks=False,
    )
    with pytest.raises(BatchError, match=r"returned a tensor of shape \(4,\).*\.mean\(\)"):
        learner.fit(1)
    assert learner.fitstate.step == 1


class PerClassHits:
    """A torchmetrics-style metric whose value is a tensor (hits per class)."""

    def __init__(self):
        self.reset()

    def update(self, preds, target):
        hits = preds.argmax(-1) == target
        self.hits += torch.bincount(target[hits], minlength=2)

    def compute(self):
        return self.hits.clone()

    def reset(self):
        self.hits = torch.zeros(2, dtype=torch.long)


def test_torchmetrics_style_object_with_a_tensor_value_is_recorded_as_a_tensor():
    model = KeywordModel()
    valid = dict_batches([5, 7], seed=2)
    learner = Learner(
        model,
        (dict_batches([4]), valid),
        torch.optim.SGD(model.parameters(), lr=0.0),
        None,
        Metrics(TorchMetric(PerClassHits(), name="Hits")),
        usedefaultcallbacks=False,
    )
    learner.fit(1)
    with torch.no_grad():
        expected = sum(
            torch.bincount(b["labels"][model(**b)["logits"].argmax(-1) == b["labels"]], minlength=2)
            for b in valid
        )
    assert torch.equal(learner.cbstate.metrics_epoch["valid/Hits"][0], expected)


@pytest.mark.skipif(importlib.util.find_spec("torchmetrics") is None, reason="needs torchmetrics")
def test_torchmetrics_accuracy_reads_hugging_face_style_logits():
    import torchmetrics

    model = KeywordModel()
    valid = dict_batches([6, 6], seed=4)
    learner = Learner(
        model,
        (dict_batches([4]), valid),
        torch.optim.SGD(model.parameters(), lr=0.0),
        None,
        Metrics(torchmetrics.classification.MulticlassAccuracy(num_classes=2, average="micro")),
        usedefaultcallbacks=False,
    )
    learner.fit(1)
    with torch.no_grad():
        hits = sum(int((model(**b)["logits"].argmax(-1) == b["labels"]).sum()) for b in valid)
    assert learner.cbstate.metrics_epoch["valid/MulticlassAccuracy"] == [
        pytest.approx(hits / 12, abs=1e-7)
    ]


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers")
def test_a_tiny_bert_trains_with_dict_batches_its_own_loss_and_accuracy():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    batches = [
        {
            "input_ids": torch.randint(0, 30, (4, 6), generator=g),
            "attention_mask": torch.ones(4, 6, dtype=torch.long),
            "labels": torch.randint(0, 2, (4,), generator=g),
        }
        for _ in range(2)
    ]
    before = [p.detach().clone() for p in model.parameters()]
    learner = Learner(
        model,
        (batches, batches),
        torch.optim.AdamW(model.parameters(), lr=1e-3),
        None,
        Metrics(Accuracy()),
        Recorder(),
        usedefaultcallbacks=False,
    )
    assert learner.fit(1).steps_completed == 2
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(**b).logits.argmax(-1) == b["labels"]).sum()) for b in batches)
    assert learner.cbstate.metrics_epoch["valid/Accuracy"] == [hits / 8]
    assert learner.cbstate.history["train"].samples == 8
