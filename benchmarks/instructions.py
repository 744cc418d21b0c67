"""Loop overhead in CPU instructions per training step, counted by valgrind's callgrind.

Wall-clock ratios on a shared machine move by 10 to 30% from run to run (see
``overhead.py``). Instruction counts do not: each loop runs under callgrind with counting
switched on only around two fits, of ``--short`` and ``--long`` training steps (the same
validation pass in both), and the difference divided by the extra steps is the cost of one
training step, free of set-up, imports and the machine's load. Repeated runs agree to about
0.5%. An instruction is not a nanosecond (cache misses and branch mispredictions are not
counted), so this measures the work a loop does, not its speed.

Each loop runs in its own process, one thread, on the CPU; the loops and the workload are those
of ``overhead.py``. Under callgrind a program runs about 50 times slower, so ProgressPrinter's
redraw interval is stretched 50 times, to redraw as often per step as it does natively.

    python benchmarks/instructions.py                  # about 2.5 minutes on 2 cores

Only the ``tiny`` workload is counted: callbacks cost the same per step on any model, and the
larger workloads would take hours under callgrind.

Needs ``valgrind`` (``apt install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import torch
from overhead import Workload, fluxtrain_loop, make_data, plain_loop, workloads

SLOWDOWN = 50  # how much slower a program runs under callgrind, roughly
LOOPS = {
    "plain PyTorch": "plain",
    "fluxtrain defaults + Scheduler": "defaults",
    "fluxtrain no defaults + Scheduler": "scheduler",
}


def callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


def child(loop: str, short: int, long: int) -> None:
    """Runs in the process under callgrind: counts only inside the two timed fits."""
    torch.set_num_threads(1)
    base = workloads(fast=False)["tiny"]
    device = torch.device("cpu")
    runner = {
        "plain": plain_loop,
        "defaults": fluxtrain_loop(True, progress_interval=0.1 * SLOWDOWN),
        "scheduler": fluxtrain_loop(False),
    }[loop]
    valid = make_data(base, 10, device, 2)
    for steps in (short, short, long):  # the first fit warms up and is not counted
        w = Workload(base.name, base.make_model, base.input_shape, base.batch_size, steps, 10, 1)
        train = make_data(w, steps, device, 1)
        callgrind("--zero")
        callgrind("--instr=on")
        runner(w, train, valid, device)
        callgrind("--instr=off")
        callgrind(f"--dump=steps{steps}")


def total(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def per_step(loop: str, short: int, long: int) -> float:
    """Instructions per training step of one loop, from a callgrind run of :func:`child`."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "callgrind.out")
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            loop,
            str(short),
            str(long),
        ]
        subprocess.run(command, check=True, capture_output=True)
        # dumps .1 and .2 are the short fits (warm-up, counted), .3 the long one
        return (total(out + ".3") - total(out + ".2")) / (long - short)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        loop, short, long = sys.argv[2:5]
        child(loop, int(short), int(long))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=50, help="training steps of the short fit")
    parser.add_argument("--long", type=int, default=250, help="training steps of the long fit")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("instructions.py needs valgrind and callgrind_control: apt install valgrind")
    print(f"torch {torch.__version__}, 1 thread, {args.long - args.short} steps counted")
    print(f"{'workload':<8}  {'loop':<34}  {'instr/step':>11}  {'ratio':>6}")
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:  # one process per loop
        futures = {
            label: pool.submit(per_step, loop, args.short, args.long)
            for label, loop in LOOPS.items()
        }
        counts = {label: future.result() for label, future in futures.items()}
    plain = counts["plain PyTorch"]
    for label, count in counts.items():
        print(f"{'tiny':<8}  {label:<34}  {count:11,.0f}  {count / plain:6.3f}")


if __name__ == "__main__":
    main()
