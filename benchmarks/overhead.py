"""Loop overhead: a plain PyTorch loop against fluxtrain on the same workloads, in one run.

Prints µs per training step (median over repeats; each repeat is a whole fit: training epochs
plus a validation pass per epoch), the ratio to the plain loop measured in the same process (the
median of the per-round ratios: each round runs every loop once, one after the other), and the
spread of the repeats (half the range, relative), which says how far to trust a ratio.

    python benchmarks/overhead.py                      # tiny and small, on the CPU
    python benchmarks/overhead.py --workloads tiny --repeats 7
    python benchmarks/overhead.py --device cuda --workloads cnn
    python benchmarks/overhead.py --peers              # also ignite / Lightning if installed
    python benchmarks/overhead.py --threads 1 --clock cpu   # steadier on a shared machine
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from overhead_clock import clock, use_clock
from torch import nn

from fluxtrain import Accuracy, Learner, Metrics, MetricsPrinter, ProgressPrinter, Scheduler


@dataclass
class Workload:
    name: str
    make_model: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    batch_size: int
    train_steps: int
    valid_steps: int
    epochs: int = 2


def mlp(*sizes: int) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    return make


def cnn() -> nn.Module:
    def block(a: int, b: int) -> list[nn.Module]:
        return [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(3, 64), *block(64, 128), *block(128, 256), nn.Flatten(), nn.Linear(256 * 16, 10)
    )


def workloads(fast: bool) -> dict[str, Workload]:
    scale = 10 if fast else 1
    return {
        "tiny": Workload("tiny", mlp(32, 64, 10), (32,), 32, 1000 // scale, 100 // scale),
        "small": Workload("small", mlp(784, 1024, 1024, 10), (784,), 256, 200 // scale, 20),
        "cnn": Workload("cnn", cnn, (3, 32, 32), 256, 200 // scale, 20),
    }


def make_data(w: Workload, steps: int, device: torch.device, seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(w.batch_size, *w.input_shape, generator=g).to(device),
            torch.randint(0, 10, (w.batch_size,), generator=g).to(device),
        )
        for _ in range(steps)
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(w: Workload, train: list, valid: list, device: torch.device) -> float:
    """The hand-written loop users compare against: OneCycleLR, running loss on the device."""
    model = w.make_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.1, epochs=w.epochs, steps_per_epoch=len(train)
    )
    loss_fn = nn.functional.cross_entropy
    sync(device)
    start = clock()
    for _ in range(w.epochs):
        model.train()
        running = torch.zeros((), device=device)
        for inputs, targets in train:
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            running += loss.detach()
        model.eval()
        with torch.no_grad():
            valid_loss = torch.zeros((), device=device)
            for inputs, targets in valid:
                valid_loss += loss_fn(model(inputs), targets)
        print(
            f"{running.item() / len(train):.4f} {valid_loss.item() / len(valid):.4f}",
            file=io.StringIO(),
        )
    sync(device)
    return clock() - start


def fluxtrain_loop(
    defaults: bool, progress_interval: float = 0.1
) -> Callable[[Workload, list, list, torch.device], float]:
    def run(w: Workload, train: list, valid: list, device: torch.device) -> float:
        model = w.make_model().to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        callbacks = [Scheduler.onecycle(w.epochs, 0.1)]
        if defaults:
            sink = io.StringIO()
            progress = ProgressPrinter(file=sink, interval=progress_interval)
            callbacks += [Metrics(Accuracy()), progress, MetricsPrinter(sink)]
        learner = Learner(
            model,
            (train, valid),
            optimizer,
            nn.functional.cross_entropy,
            *callbacks,
            usedefaultcallbacks=defaults,
        )
        sync(device)
        start = clock()
        learner.fit(w.epochs)
        sync(device)
        return clock() - start

    return run


def peer_runners() -> dict[str, Callable[[Workload, list, list, torch.device], float] | None]:
    """ignite and Lightning runners, or ``None`` for a peer that is not installed."""
    import importlib.util

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import peers

    available = {
        name: importlib.util.find_spec(name) is not None for name in ("ignite", "lightning")
    }
    return {
        "pytorch-ignite": peers.ignite_loop if available["ignite"] else None,
        "Lightning": peers.lightning_loop if available["lightning"] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["tiny", "small"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--peers", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument(
        "--fast", action="store_true", default=bool(os.environ.get("FLUXTRAIN_FAST"))
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    use_clock(args.clock)
    torch.manual_seed(0)
    runners: dict[str, Callable | None] = {
        "plain PyTorch": plain_loop,
        "fluxtrain defaults + Scheduler": fluxtrain_loop(True),
        "fluxtrain no defaults + Scheduler": fluxtrain_loop(False),
    }
    if args.peers:
        runners.update(peer_runners())
    repeats = 2 if args.fast else args.repeats
    print(
        f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"repeats {repeats}"
    )
    print(f"{'workload':<8}  {'loop':<34}  {'µs/step':>9}  {'ratio':>6}  spread")
    for name in args.workloads:
        w = workloads(args.fast)[name]
        train = make_data(w, w.train_steps, device, 1)
        valid = make_data(w, w.valid_steps, device, 2)
        times: dict[str, list[float]] = {k: [] for k, r in runners.items() if r is not None}
        labels = [label for label, runner in runners.items() if runner is not None]
        for round_ in range(repeats + 1):  # the first round warms up and is dropped
            shift = round_ % len(labels)  # each loop takes its turn first: no order effects
            for label in labels[shift:] + labels[:shift]:
                runner = runners[label]
                assert runner is not None
                sink = io.StringIO()  # peers' bars and logs, kept out of the table
                with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
                    times[label].append(runner(w, train, valid, device))
        steps = w.epochs * w.train_steps
        plain = times["plain PyTorch"][1:]
        for label, runner in runners.items():
            if runner is None:
                print(f"{name:<8}  {label:<34}  {'not installed':>9}")
                continue
            us = statistics.median(times[label][1:]) / steps * 1e6
            # each round's runs are neighbours in time: the median of their ratios cancels drift
            ratio = statistics.median(t / p for t, p in zip(times[label][1:], plain))
            spread = max(times[label][1:]) / min(times[label][1:]) - 1
            print(f"{name:<8}  {label:<34}  {us:9.1f}  {ratio:6.3f}  ±{spread / 2:4.0%}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
