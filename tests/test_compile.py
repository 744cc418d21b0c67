import torch
import torch._dynamo

from fluxtrain import Learner, LearningRate, Momentum, Scheduler
from fluxtrain.testing import regression_data


def test_compiled_model_trains_without_recompiling_when_the_schedule_changes_the_lr():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    compiled = torch.compile(model, backend="eager")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = Scheduler(
        {LearningRate: lambda t: 0.05 / (1 + t), Momentum: lambda t: 0.9 - 0.01 * t}
    )
    learner = Learner(
        compiled,
        (regression_data(6), regression_data(2, seed=1)),
        optimizer,
        torch.nn.functional.mse_loss,
        scheduler,
        usedefaultcallbacks=False,
    )
    torch._dynamo.utils.counters.clear()
    result = learner.fit(3)
    counters = torch._dynamo.utils.counters
    assert result.steps_completed == 18
    lrs = [value for _, value in learner.cbstate.hyperparams["LearningRate"]]
    assert lrs == [0.05 / (1 + t) for t in range(18)]
    # two graphs, for training (grad mode, train()) and validation (no_grad, eval()); the
    # learning rate and momentum, changed before every step, cause no recompilation
    assert counters["stats"]["unique_graphs"] == 2
    assert dict(counters["recompiles"]) == {}
