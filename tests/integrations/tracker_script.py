"""A run for the tracker kill tests: ``python tracker_script.py KIND STORE FOLDER OUT [KILL]``.

KIND is ``mlflow`` (STORE a tracking URI) or ``wandb`` (STORE the folder wandb writes into,
offline). It trains a classifier for 3 epochs of 12 steps with a one-cycle schedule, logs
metrics and hyperparameters to the backend, keeps every step's metric values in
``cbstate.step_metrics`` (saved and restored with the checkpoints, like all of ``cbstate``) and
checkpoints into FOLDER after every step, resuming from it; with ``KILL`` it SIGKILLs itself
right after that training step, before its checkpoint (under W&B, which writes its offline
file every ``x_transaction_log_flush_interval`` seconds from its own process, half a second
later). The run that completes saves ``cbstate``'s metrics and hyperparameters and the
backend's run id to OUT.

``python tracker_script.py --serve KIND`` imports torch and the tracker once, then runs one
training process per line ``STORE FOLDER OUT [KILL]`` read from stdin, each forked from it: it
prints ``pid <pid>`` before the run and ``exit <code>`` after it (``-9`` for a SIGKILL).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import torch
from fork_server import run_forked
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import (
    Accuracy,
    Callback,
    Checkpointer,
    Learner,
    LogHyperParams,
    LogMetrics,
    Metrics,
    Read,
    Write,
)
from fluxtrain.scheduler import Scheduler


class StepMetrics(Callback):
    """Keeps ``(t, float(value))`` of every training step's ``cbstate.metrics_step`` values."""

    stateaccess = {"cbstate.metrics_step": Read, "cbstate.step_metrics": Write, "fitstate": Read}
    runafter = (Metrics,)

    def init(self, learner):
        if "step_metrics" not in learner.cbstate:
            learner.cbstate.step_metrics = {}

    def on_step_end(self, phase, learner):
        if phase.name == "train":
            t = learner.fitstate.total_steps - 1
            for key, value in learner.cbstate.metrics_step.items():
                if key.startswith("train/"):
                    learner.cbstate.step_metrics.setdefault(key, []).append((t, float(value)))


class Kill(Callback):
    stateaccess = {"fitstate": Read}

    def __init__(self, at: int | None, wait: float) -> None:
        self.at, self.wait = at, wait

    def on_step_end(self, phase, learner):
        if phase.name == "train" and learner.fitstate.total_steps == self.at:
            time.sleep(self.wait)  # W&B writes its file every few ms here, in its own process
            os.kill(os.getpid(), signal.SIGKILL)


def make_backend(kind: str, store: str, art: str):
    if kind == "mlflow":
        from fluxtrain.integrations import MLflowBackend

        return MLflowBackend(experiment_name="kill-test", tracking_uri=store, artifact_location=art)
    import wandb

    from fluxtrain.integrations import WandbBackend

    settings = wandb.Settings(console="off", x_transaction_log_flush_interval=0.02)
    return WandbBackend(project="kill-test", dir=store, settings=settings)


def main(kind: str, store: str, folder: str, out: str, kill_at: str | None = None) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=g)
    valid = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8)
    model = torch.nn.Linear(5, 3)
    backend = make_backend(kind, store, os.path.join(folder, os.pardir, "artifacts"))
    learner = Learner(
        model,
        (train, valid),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.nn.functional.cross_entropy,
        Metrics(Accuracy()),
        Scheduler.onecycle(3, 0.5),
        LogMetrics(backend),
        LogHyperParams(backend),
        backend,
        StepMetrics(),
        Kill(None if kill_at is None else int(kill_at), 0.5 if kind == "wandb" else 0.0),
        Checkpointer(folder, every_steps=1),
        usedefaultcallbacks=False,
    )
    learner.fit(3, resume="latest")
    cbstate = learner.cbstate
    torch.save(
        {
            "run_id": backend.run_id,
            "step_metrics": dict(cbstate.step_metrics),
            "metrics_epoch": {k: [float(v) for v in vs] for k, vs in cbstate.metrics_epoch.items()},
            "hyperparams": {
                k: list(zip(r.steps, r.values)) for k, r in cbstate.hyperparams.items()
            },
        },
        out,
    )


def serve(kind: str) -> None:
    """Imports torch and the tracker once, then runs each stdin line's arguments in a fork."""
    if kind == "mlflow":
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (its SQL store's imports)
    else:
        import wandb  # noqa: F401
    import matplotlib.figure  # noqa: F401

    for line in sys.stdin:
        run_forked(functools.partial(main, kind, *line.split()))


def run_served(kind: str, cwd: str, *runs: list[str]) -> tuple[list[int], str]:
    """Runs each argument list ``[STORE, FOLDER, OUT, (KILL)]`` in one serving process, in
    turn, in folder ``cwd``; returns their exit codes and the server's stderr."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([root, os.path.join(root, "tests")]),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )
    codes = []
    with server:
        for run in runs:
            server.stdin.write(" ".join(run) + "\n")
            server.stdin.flush()
            for line in server.stdout:
                if line.startswith("exit "):
                    codes.append(int(line.split()[1]))
                    break
            else:
                raise AssertionError(f"the server stopped: {server.stderr.read()}")
        server.stdin.close()
        errors = server.stderr.read()
    assert server.returncode == 0, errors
    return codes, errors


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main(*sys.argv[1:])
