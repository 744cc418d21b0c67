import copy
import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import (
    EMA,
    SWA,
    Callback,
    Checkpointer,
    CustomCallback,
    EarlyStopping,
    EMADecay,
    FluxTrainError,
    GradientAccumulation,
    GradientClipping,
    HyperParameterError,
    Learner,
    LearningRate,
    Metrics,
    MixedPrecision,
    Read,
    Schedule,
    ScheduleError,
    Scheduler,
    StepEnd,
    ToDevice,
    load_checkpoint,
)
from fluxtrain.distributed import unwrap
from fluxtrain.testing import Unsized, tiny_learner

TRAIN, VALID = 48, 16


def data():
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(TRAIN + VALID, 4, generator=generator)
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
    train = DataLoader(
        TensorDataset(inputs[:TRAIN], targets[:TRAIN]),
        batch_size=8,
        shuffle=True,
        generator=torch.Generator().manual_seed(2),
    )
    valid = DataLoader(TensorDataset(inputs[TRAIN:], targets[TRAIN:]), batch_size=8)
    return train, valid


def learner(*callbacks, validation=True):
    """An MLP with BatchNorm (before the dropout) on a shuffled DataLoader, SGD with momentum."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.BatchNorm1d(8),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(8, 1),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train, valid = data()
    return Learner(
        model,
        (train, valid) if validation else train,
        optimizer,
        torch.nn.functional.mse_loss,
        *callbacks,
        usedefaultcallbacks=False,
    )


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_equal_states(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


class RecordUpdates(Callback):
    """The model's state after every optimizer step, and the EMA's decay of that step."""

    stateaccess = {"model": Read, "batch.updated": Read}

    def __init__(self, ema=None):
        self.ema, self.states, self.decays = ema, [], []

    def on_step_end(self, phase, learner):
        if phase.name == "train" and learner.batch.updated:
            self.states.append(state(unwrap(learner.model)))  # without DDP's wrapper
            if self.ema is not None:
                self.decays.append(self.ema.current_decay)


class RecordEpochs(Callback):
    """The model's state at the end of every training epoch."""

    stateaccess = {"model": Read}

    def __init__(self):
        self.states = []

    def on_epoch_end(self, phase, learner):
        if phase.name == "train":
            self.states.append(state(learner.model))


def ema_by_hand(states, decays):
    """a_1 = w_1, a_n = d_n a_(n-1) + (1 - d_n) w_n in float64, for floating-point entries."""
    average = {k: v.double() for k, v in states[0].items() if v.is_floating_point()}
    for weights, decay in zip(states[1:], decays[1:]):
        for key in average:
            average[key] = decay * average[key] + (1 - decay) * weights[key].double()
    return average


def assert_close(averaged, expected, keys):
    for key in keys:
        got = averaged[key].double()
        assert torch.allclose(got, expected[key], rtol=0, atol=1e-6), key


# -- EMA ---------------------------------------------------------------------------------------


def test_ema_equals_the_exponential_moving_average_of_the_weights_after_each_step():
    ema = EMA(decay=0.9)
    record = RecordUpdates(ema)
    fitted = learner(ema, record)
    fitted.fit(3)
    assert ema.updates == len(record.states) == 18
    assert record.decays == [0.9] * 18
    averaged = ema.averaged_model.state_dict()
    expected = ema_by_hand(record.states, record.decays)
    assert_close(averaged, expected, expected)  # weights and BatchNorm running statistics
    weight = "0.weight"  # the average is far from the raw weights, which the test could not miss
    assert (averaged[weight] - fitted.model.state_dict()[weight]).abs().max() > 1e-3
    # integer buffers are copied
    assert averaged["1.num_batches_tracked"].item() == 18
    assert type(ema.averaged_model) is torch.nn.Sequential


def test_ema_buffers_copy_takes_the_model_buffers_as_they_are():
    ema = EMA(decay=0.9, buffers="copy")
    record = RecordUpdates(ema)
    fitted = learner(ema, record)
    fitted.fit(2)
    averaged = ema.averaged_model.state_dict()
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert torch.equal(averaged[key], fitted.model.state_dict()[key]), key
    expected = ema_by_hand(record.states, record.decays)
    assert_close(averaged, expected, [k for k, _ in fitted.model.named_parameters()])


def test_scheduled_ema_decay_is_applied_at_every_step_and_the_default_holds_without_it():
    schedule = Schedule([0, 6], [0.0, 0.95], unit="step")  # a linear warmup over 6 steps
    ema = EMA(decay=0.5)
    scheduler = Scheduler({EMADecay: schedule})
    record = RecordUpdates(ema)
    fitted = learner(ema, scheduler, record)
    fitted.fit(2)
    expected_decays = [float(schedule(t)) for t in range(12)]
    assert record.decays == expected_decays
    assert list(fitted.cbstate.hyperparams["EMADecay"].values) == expected_decays
    expected = ema_by_hand(record.states, record.decays)
    assert_close(ema.averaged_model.state_dict(), expected, expected)
    # without the Scheduler, the callback's own decay
    fitted.remove_callback(scheduler)
    fitted.fit(1)
    assert record.decays[12:] == [0.5] * 6
    expected = ema_by_hand(record.states, record.decays)
    assert_close(ema.averaged_model.state_dict(), expected, expected)


def test_ema_updates_once_per_optimizer_step_under_gradient_accumulation():
    ema = EMA(decay=0.8)
    record = RecordUpdates(ema)
    fitted = learner(ema, record, GradientAccumulation(2))
    result = fitted.fit(1)
    assert ema.updates == len(record.states) == result.steps_completed == 3
    expected = ema_by_hand(record.states, record.decays)
    assert_close(ema.averaged_model.state_dict(), expected, expected)


# -- SWA ---------------------------------------------------------------------------------------


def batchnorm_statistics_by_hand(model, train):
    """BatchNorm1d's statistics after update_bn: the mean over batches of each batch's mean and
    unbiased variance of the first layer's outputs."""
    with torch.no_grad():
        outputs = [model[0](inputs) for inputs, _ in train]
    means = torch.stack([o.mean(0) for o in outputs]).mean(0)
    variances = torch.stack([o.var(0, unbiased=True) for o in outputs]).mean(0)
    return means, variances


def test_swa_is_the_mean_of_its_snapshots_at_the_end_of_epochs_after_start():
    swa = SWA(start=1)
    record = RecordEpochs()
    fitted = learner(swa, record)
    fitted.fit(4)
    assert swa.updates == 3  # after epochs 2, 3 and 4
    averaged = swa.averaged_model.state_dict()
    names = [k for k, _ in fitted.model.named_parameters()]
    mean = {k: torch.stack([s[k].double() for s in record.states[1:]]).mean(0) for k in names}
    assert_close(averaged, mean, names)
    assert (averaged["0.weight"] - fitted.model.state_dict()["0.weight"]).abs().max() > 1e-3
    # BatchNorm statistics recomputed for the averaged weights at the end of the fit
    means, variances = batchnorm_statistics_by_hand(swa.averaged_model, fitted.data.train)
    assert torch.allclose(averaged["1.running_mean"], means, rtol=0, atol=1e-6)
    assert torch.allclose(averaged["1.running_var"], variances, rtol=0, atol=1e-5)
    assert not torch.allclose(averaged["1.running_mean"], fitted.model[1].running_mean, atol=1e-3)


def test_swa_in_steps_takes_snapshots_every_few_steps_after_start():
    swa = SWA(start=3, every=4, unit="step")
    record = RecordUpdates()
    fitted = learner(swa, record)
    fitted.fit(2)  # 12 steps: snapshots after steps 7 and 11
    assert swa.updates == 2
    names = [k for k, _ in fitted.model.named_parameters()]
    mean = {k: (record.states[6][k].double() + record.states[10][k].double()) / 2 for k in names}
    assert_close(swa.averaged_model.state_dict(), mean, names)
    assert "on_step_end" in swa.implemented_hooks()
    assert "on_step_end" not in SWA(1).implemented_hooks()  # nothing per step in epochs


def test_swa_leaves_the_training_and_the_random_states_as_without_it():
    plain = learner()
    plain.fit(3)
    after = torch.get_rng_state()
    swa = SWA(start=0)
    averaged = learner(swa)
    averaged.fit(3)
    assert torch.equal(torch.get_rng_state(), after)  # the BatchNorm pass restored them
    assert_equal_states(state(averaged.model), state(plain.model))
    assert swa.updates == 3


# -- validation on the averaged weights ----------------------------------------------------------


def loss_by_hand(model, valid):
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        total = sum(torch.nn.functional.mse_loss(model(x), y).double() * len(x) for x, y in valid)
    return float(total / VALID)


@pytest.mark.parametrize(
    "make, budget",
    [
        (lambda v: EMA(decay=0.9, validate=v), {"n_epochs": 3}),
        (lambda v: SWA(1, validate=v), {"n_epochs": 3}),
        (lambda v: EMA(decay=0.9, validate=v), {"steps": 10, "validate_every": 5}),
    ],
    ids=["EMA", "SWA", "EMA, validate_every"],
)
def test_validate_true_validates_the_averaged_weights_and_trains_on_the_raw_ones(make, budget):
    reference_cb = make(False)
    reference = learner(reference_cb, Metrics())
    reference.fit(**budget)
    averaging = make(True)
    fitted = learner(averaging, Metrics())
    fitted.fit(**budget)
    assert_equal_states(state(fitted.model), state(reference.model))  # bitwise
    assert_equal_states(state(averaging.averaged_model), state(reference_cb.averaged_model))
    loss = fitted.cbstate.metrics_epoch["valid/Loss"][-1]
    assert math.isclose(
        loss, loss_by_hand(averaging.averaged_model, fitted.data.valid), rel_tol=1e-6
    )
    raw = reference.cbstate.metrics_epoch["valid/Loss"][-1]
    assert not math.isclose(loss, raw, rel_tol=1e-3)


def test_swapped_evaluates_and_predicts_with_the_averaged_weights_and_swaps_back_bitwise():
    ema = EMA(decay=0.9)
    fitted = learner(ema, Metrics())
    with pytest.raises(FluxTrainError, match=r"^EMA.swapped: there is no average yet"):
        with ema.swapped(fitted):
            pass
    fitted.fit(2)
    before = state(fitted.model)
    with ema.swapped(fitted) as model:
        assert model is fitted.model
        evaluated = fitted.evaluate()["Loss"]
        predicted = fitted.predict()
    assert_equal_states(state(fitted.model), before)
    assert math.isclose(
        evaluated, loss_by_hand(ema.averaged_model, fitted.data.valid), rel_tol=1e-6
    )
    averaged = copy.deepcopy(ema.averaged_model).eval()
    with torch.no_grad():
        expected = torch.cat([averaged(x) for x, _ in fitted.data.valid])
    assert torch.equal(predicted, expected)


def test_load_best_restores_the_average_of_the_best_checkpoint(tmp_path):
    ema = EMA(decay=0.9, validate=True)
    fitted = learner(ema, Metrics(), Checkpointer(tmp_path, monitor="valid/Loss"))
    fitted.fit(4)
    best = min(fitted.cbstate.metrics_epoch["valid/Loss"])
    again_ema = EMA(decay=0.9, validate=True)
    checkpointer = Checkpointer(tmp_path, monitor="valid/Loss")
    again = learner(again_ema, Metrics(), checkpointer)
    checkpointer.load_best(again)
    with again_ema.swapped(again):
        assert math.isclose(again.evaluate()["Loss"], best, rel_tol=1e-6)


def test_an_average_saved_before_its_batchnorm_pass_gets_it_when_swapped_in(tmp_path):
    swa = SWA(0)
    fitted = learner(swa, Checkpointer(tmp_path, keep_last=5))
    fitted.fit(2)
    other_swa = SWA(0)
    other = learner(other_swa, Checkpointer(tmp_path))
    other.load_state_dict(load_checkpoint(tmp_path / "checkpoint-000001.pt"))
    averaged = other_swa.averaged_model
    assert other_swa.updates == 1
    assert torch.equal(averaged[1].running_mean, fitted_bn_after_epoch_1(tmp_path))
    with other_swa.swapped(other):
        pass
    means, variances = batchnorm_statistics_by_hand(averaged, other.data.train)
    assert torch.allclose(averaged[1].running_mean, means, rtol=0, atol=1e-6)
    assert torch.allclose(averaged[1].running_var, variances, rtol=0, atol=1e-5)


def fitted_bn_after_epoch_1(folder):
    """The raw model's BatchNorm mean in the checkpoint after epoch 1 (the snapshot's copy)."""
    return load_checkpoint(folder / "checkpoint-000001.pt")["model"]["1.running_mean"]


# -- resume ------------------------------------------------------------------------------------


class Crash(Callback):
    """Raises at the start of training step ``at`` (counted over the fit), or at validation step
    ``in_validation`` (counted over the fit) with KeyboardInterrupt, like a Ctrl-C."""

    stateaccess = {"fitstate": Read}

    def __init__(self, at=None, in_validation=None):
        self.at, self.in_validation, self.validation_steps = at, in_validation, 0

    def on_step_begin(self, phase, learner):
        if phase.name == "train" and learner.fitstate.total_steps == self.at:
            raise RuntimeError("the machine went away")

    def on_step_end(self, phase, learner):
        if phase.name == "valid":
            self.validation_steps += 1
            if self.validation_steps == self.in_validation:
                raise KeyboardInterrupt


def averaging_run(folder, crash):
    ema, swa = EMA(decay=0.9, validate=True), SWA(start=1)
    callbacks = [ema, swa, Metrics(), crash, Checkpointer(folder, every_steps=4)]
    return learner(*callbacks, validation=True), ema, swa


@pytest.mark.parametrize(
    "crash",
    [Crash(at=10), Crash(in_validation=3)],  # mid-epoch 2 (saved at 8); in validation 2
    ids=["training step", "validation"],
)
def test_a_resumed_fit_ends_bitwise_as_an_uninterrupted_one(tmp_path, crash):
    reference, ema, swa = averaging_run(tmp_path / "reference", Crash())
    reference.fit(4)
    interrupted, *_ = averaging_run(tmp_path / "run", crash)
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        interrupted.fit(4)
    resumed, resumed_ema, resumed_swa = averaging_run(tmp_path / "run", Crash())
    resumed.fit(4, resume="latest")
    assert_equal_states(state(resumed.model), state(reference.model))
    assert_equal_states(state(resumed_ema.averaged_model), state(ema.averaged_model))
    assert_equal_states(state(resumed_swa.averaged_model), state(swa.averaged_model))
    assert resumed_ema.updates == ema.updates == 24 and resumed_swa.updates == swa.updates == 3


# -- errors and combinations -------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: EMA(decay=1.0), r"^EMA: decay must be a number in \[0, 1\), got 1.0"),
        (lambda: EMA(decay=-0.1), r"^EMA: decay must be a number in \[0, 1\), got -0.1"),
        (lambda: EMA(decay=float("nan")), r"^EMA: decay must be a number in \[0, 1\), got nan"),
        (lambda: EMA(decay=True), r"^EMA: decay must be a number in \[0, 1\), got True"),
        (lambda: EMA(buffers="mean"), r"^EMA: buffers must be 'average' or 'copy', got 'mean'"),
        (lambda: EMA(validate=1), r"^EMA: validate must be True or False, got 1"),
        (lambda: SWA(-1), r"^SWA: start must be an int >= 0, got -1"),
        (lambda: SWA(1.5), r"^SWA: start must be an int >= 0, got 1.5"),
        (lambda: SWA(1, every=0), r"^SWA: every must be an int >= 1, got 0"),
        (lambda: SWA(1, unit="batch"), r"^SWA: unit must be 'epoch' or 'step', got 'batch'"),
        (lambda: SWA(1, bn_batches=0), r"^SWA: bn_batches must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments_fail_at_construction(build, message):
    with pytest.raises(FluxTrainError, match=message):
        build()


def test_errors_at_fit_begin_before_any_step():
    steps = []
    count = CustomCallback(lambda learner: steps.append(1), StepEnd)
    with pytest.raises(
        HyperParameterError, match="^EMADecay is scheduled but the learner has no EMA"
    ):
        tiny_learner(Scheduler({EMADecay: 0.9}), count).fit(1)
    with pytest.raises(FluxTrainError, match=r"^SWA\(validate=True\): EMA also validates"):
        tiny_learner(EMA(validate=True), SWA(1, validate=True), count).fit(1)
    with pytest.raises(ScheduleError):  # EMADecay's domain is [0, 1)
        tiny_learner(EMA(), Scheduler({EMADecay: 1.0}), count).fit(1)
    unsized = learner(SWA(1), count)
    with pytest.raises(FluxTrainError, match="^SWA: the model has BatchNorm layers"):
        unsized.fit(1, Unsized(list(unsized.data.train)))
    assert steps == []
    bounded = learner(SWA(0, bn_batches=2))
    assert bounded.fit(1, Unsized(list(bounded.data.train))).epochs_completed == 1
    ema = EMA()
    fitted = tiny_learner(ema)
    fitted.fit(1)
    fitted.model = torch.nn.Linear(1, 2)
    with pytest.raises(FluxTrainError, match="^EMA: the learner's model has other parameters"):
        fitted.fit(1)


def test_builds_and_runs_with_the_shipped_callbacks(tmp_path):
    ema, swa = EMA(decay=0.9, validate=True), SWA(1)
    callbacks = [
        Checkpointer(tmp_path),
        EarlyStopping(patience=5),
        GradientClipping(1.0),
        GradientAccumulation(2),
        MixedPrecision(torch.bfloat16),
        Scheduler({LearningRate: 0.01}),
        Scheduler({EMADecay: 0.95}),
        swa,
        ema,
        ToDevice("cpu"),
    ]
    fitted = tiny_learner(*callbacks, usedefaultcallbacks=True)
    names = [cb.name for cb in fitted.callbacks]
    for averaging in ("EMA", "SWA"):
        assert names.index("ToDevice") < names.index(averaging)
        for reader in ("Checkpointer", "EarlyStopping", "GradientClipping"):
            assert names.index(averaging) < names.index(reader)
    fitted.fit(2)
    assert ema.updates == 4 and swa.updates == 1


def test_the_state_is_plain_and_loads_with_weights_only(tmp_path):
    ema, swa = EMA(), SWA(0)
    fitted = tiny_learner(ema, swa, n_batches=2)
    keys = {key.partition(":")[2]: key for key in fitted.state_dict()["callbacks"]}
    assert fitted.state_dict()["callbacks"][keys["EMA"]] == {"averaged": None}
    fitted.fit(1)
    torch.save(fitted.state_dict(), tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    assert sorted(loaded["callbacks"][keys["SWA"]]) == ["averaged", "bn_stale", "count"]
    other_ema, other_swa = EMA(), SWA(0)
    other = tiny_learner(other_ema, other_swa, n_batches=2)
    other.load_state_dict(loaded)
    assert_equal_states(state(other_ema.averaged_model), state(ema.averaged_model))
    assert other_swa.updates == 1 and other_ema.updates == 2


# -- two processes -----------------------------------------------------------------------------


def ddp_rank(rank, port, out):
    """One rank of the two-process run, forked from the test (torch is imported already)."""
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    ema, swa = EMA(decay=0.9, validate=True), SWA(0)
    record = RecordUpdates(ema)
    fitted = learner(ema, swa, record, Metrics())
    fitted.fit(2)
    result = {
        "ema": state(ema.averaged_model),
        "swa": state(swa.averaged_model),
        "states": record.states,
        "decays": record.decays,
        "model": state(fitted.model),
        "valid": fitted.cbstate.metrics_epoch["valid/Loss"][-1],
        "bn": batchnorm_statistics_by_hand(swa.averaged_model, fitted._fit_data.train),
    }
    torch.save(result, out / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_under_ddp_each_rank_averages_the_same_weights_and_shares_the_batchnorm_statistics(
    tmp_path,
):
    import multiprocessing
    import socket
    import warnings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fork = multiprocessing.get_context("fork")
    ranks = [fork.Process(target=ddp_rank, args=(r, port, tmp_path)) for r in range(2)]
    with warnings.catch_warnings():  # Python >= 3.12 warns of fork with threads; torch's are
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        for process in ranks:  # fork-safe (DataLoader workers are forked the same way)
            process.start()
    for process in ranks:
        process.join(timeout=300)
    assert [p.exitcode for p in ranks] == [0, 0]
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    first, second = results
    assert len(first["states"]) == 6  # 24 samples per rank: 3 steps per epoch
    for key in ("model", "ema", "swa"):  # DDP: the same weights and averages on both ranks
        names = [k for k in first[key] if "running" not in k and "num_batches" not in k]
        for name in names:
            assert torch.equal(first[key][name], second[key][name]), (key, name)
    for result in results:
        expected = ema_by_hand(result["states"], result["decays"])
        assert_close(result["ema"], expected, expected)
    # SWA's BatchNorm statistics: each rank's pass over its shard, averaged over the ranks
    means = (first["bn"][0] + second["bn"][0]) / 2
    variances = (first["bn"][1] + second["bn"][1]) / 2
    for result in results:
        assert torch.allclose(result["swa"]["1.running_mean"], means, rtol=0, atol=1e-6)
        assert torch.allclose(result["swa"]["1.running_var"], variances, rtol=0, atol=1e-5)
    assert torch.equal(first["swa"]["1.running_mean"], second["swa"]["1.running_mean"])
    assert not torch.allclose(first["bn"][0], second["bn"][0], atol=1e-3)  # the shards differ
    # validation on the averaged weights, reduced over the ranks' halves of the data
    averaged = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.BatchNorm1d(8),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(8, 1),
    )
    averaged.load_state_dict(first["ema"])
    expected_loss = loss_by_hand(averaged, data()[1])
    assert first["valid"] == second["valid"]
    assert math.isclose(first["valid"], expected_loss, rel_tol=1e-6)
