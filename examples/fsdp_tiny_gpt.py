"""A tiny GPT trained with FSDP2 (``fully_shard``) under ``torchrun``, with sharded checkpoints
that survive a crashed worker.

Every process builds the same model, shards it with ``fully_shard`` (each transformer block,
then the whole model), builds the optimizer over the sharded parameters, and gives both to a
``Learner``, which trains the model as it is (no DDP wrapper). The ``Checkpointer`` writes
sharded checkpoints (one folder of ``torch.distributed.checkpoint`` shards per checkpoint, every
file checksummed in the manifest). The model learns sequences that count up by a step of their
own (``3, 5, 7, ...``) modulo the vocabulary.

    python examples/fsdp_tiny_gpt.py                 # torchrun, 2 CPU processes; rank 1 crashes
    FLUXTRAIN_FAST=1 python examples/fsdp_tiny_gpt.py  # fewer epochs, for CI
    torchrun --standalone --nproc-per-node=2 --max-restarts=1 examples/fsdp_tiny_gpt.py \\
        --folder runs/gpt                            # by hand (CPU processes, gloo)
    python examples/fsdp_tiny_gpt.py --tensor-parallel  # tensor parallel MLPs instead

Started with ``python``, it runs ``torchrun --standalone --nproc-per-node=2 --max-restarts=1``
on itself with ``CRASH_AT_STEP`` set: in the first attempt rank 1 dies at that step, torchrun
restarts both processes, and ``fit(n, resume="latest")`` continues from the newest sharded
checkpoint. Then this process exports the whole model to one file and generates a sequence.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    RowwiseParallel,
    parallelize_module,
)
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from fluxtrain import Callback, Checkpointer, Learner, Metrics, Read, Scheduler
from fluxtrain.checkpoints import latest_checkpoint
from fluxtrain.checkpoints.sharded import export_state_dict
from fluxtrain.distributed import init_distributed, is_main_process, rank, world_size

VOCAB, LENGTH, WIDTH = 16, 12, 32


class Block(torch.nn.Module):
    """Causal self-attention and an MLP, each with a residual connection."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(WIDTH), torch.nn.LayerNorm(WIDTH)
        self.attention = torch.nn.MultiheadAttention(WIDTH, 4, batch_first=True)
        self.up, self.down = torch.nn.Linear(WIDTH, 4 * WIDTH), torch.nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        causal = torch.nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        h = self.norm1(x)
        x = x + self.attention(h, h, h, attn_mask=causal, need_weights=False)[0]
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm2(x))))


class TinyGPT(torch.nn.Module):
    def __init__(self, n_blocks: int = 2) -> None:
        super().__init__()
        self.tokens = torch.nn.Embedding(VOCAB, WIDTH)
        self.positions = torch.nn.Embedding(LENGTH, WIDTH)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(n_blocks))
        self.head = torch.nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tokens(tokens) + self.positions(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        # x @ W.T + b makes a new tensor; Linear on 3-D inputs returns a view, which FSDP2
        # warns about in a module's outputs
        return x @ self.head.weight.T + self.head.bias


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def sequences(n: int, seed: int) -> TensorDataset:
    """Sequences ``s, s + d, s + 2d, ...`` modulo ``VOCAB``: inputs and next-token targets."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randint(0, VOCAB, (n, 1), generator=generator)
    step = torch.randint(1, 4, (n, 1), generator=generator)
    tokens = (start + step * torch.arange(LENGTH + 1)) % VOCAB
    return TensorDataset(tokens[:, :-1], tokens[:, 1:])


def parallelize(model: TinyGPT, tensor_parallel: bool) -> TinyGPT:
    """FSDP2 over all processes, or tensor parallel MLPs (column- then row-wise)."""
    mesh = init_device_mesh("cpu", (world_size(),))  # on GPUs: "cuda", and ToDevice
    if tensor_parallel:
        for block in model.blocks:
            plan = {"up": ColwiseParallel(), "down": RowwiseParallel()}
            parallelize_module(block, mesh, plan)  # type: ignore[arg-type]
        return model
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


class CrashOnce(Callback):
    """Rank 1 exits abruptly at one step of torchrun's first attempt (a failing worker)."""

    stateaccess = {"fitstate": Read}

    def on_step_end(self, phase, learner):
        crash = os.environ.get("CRASH_AT_STEP")
        first = os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0"
        if crash and first and rank() == 1 and learner.fitstate.total_steps == int(crash):
            print(f"rank 1 crashes at step {crash}; torchrun restarts the workers", flush=True)
            os._exit(1)


def train(folder: str, tensor_parallel: bool) -> None:
    """One process's part: shard the model, build the optimizer over the shards, fit."""
    n_epochs = 3 if os.environ.get("FLUXTRAIN_FAST") else 12
    torch.manual_seed(0)  # the same initial weights on every process
    model = parallelize(TinyGPT(), tensor_parallel)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    train_set, valid_set = sequences(512, 0), sequences(128, 1)
    if tensor_parallel:  # every rank of a tensor-parallel group takes the same batches
        train_sampler = DistributedSampler(train_set, num_replicas=1, rank=0, seed=0)
        valid_sampler = DistributedSampler(valid_set, num_replicas=1, rank=0, shuffle=False)
        train_data = DataLoader(train_set, batch_size=16, sampler=train_sampler)
        valid_data = DataLoader(valid_set, batch_size=64, sampler=valid_sampler)
    else:  # FSDP2 is data parallel: the learner gives each rank its shard
        shuffled = torch.Generator().manual_seed(0)
        train_data = DataLoader(train_set, batch_size=16, shuffle=True, generator=shuffled)
        valid_data = DataLoader(valid_set, batch_size=64)
    learner = Learner(
        model,
        (train_data, valid_data),
        optimizer,
        next_token_loss,
        Metrics(),
        Scheduler.onecycle(n_epochs, 1e-2, moms=None),
        Checkpointer(folder, every_steps=4, keep_last=2),
        CrashOnce(),
    )
    learner.fit(n_epochs, resume="latest")
    loss = learner.cbstate.metrics_epoch["valid/Loss"][-1]  # all-reduced: the same everywhere
    if is_main_process():
        print(f"validation loss: {loss:.3f}")
    if not os.environ.get("FLUXTRAIN_FAST"):
        assert loss < 0.5, loss


def generate(folder: str, tensor_parallel: bool) -> None:
    """Exports the newest sharded checkpoint to one file and continues a sequence with it."""
    checkpoint = latest_checkpoint(folder)
    assert checkpoint is not None, folder
    export_state_dict(checkpoint, Path(folder) / "model.pt")
    model = TinyGPT()
    model.load_state_dict(torch.load(Path(folder) / "model.pt", weights_only=True))
    model.eval()
    tokens = torch.tensor([[3, 5, 7]])
    with torch.no_grad():
        while tokens.shape[1] < LENGTH:
            tokens = torch.cat([tokens, model(tokens)[:, -1:].argmax(-1)], dim=1)
    print(
        f"{checkpoint.name} exported; 3 5 7 continues as: {' '.join(map(str, tokens[0].tolist()))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", help="checkpoint folder (default: a temporary one)")
    parser.add_argument("--tensor-parallel", action="store_true", help="TP instead of FSDP2")
    args = parser.parse_args()
    if "RANK" in os.environ:  # started by torchrun: one of the workers
        init_distributed("gloo", timeout=120)  # a new group on every restart; torn down at exit
        train(args.folder or "runs/tiny_gpt", args.tensor_parallel)
        return
    folder = args.folder or tempfile.mkdtemp(prefix="tiny_gpt-")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "--max-restarts=1",
        __file__,
        "--folder",
        folder,
        *(["--tensor-parallel"] if args.tensor_parallel else []),
    ]
    env = {"CRASH_AT_STEP": "10", "OMP_NUM_THREADS": "1", **os.environ}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo on the loopback interface
    print("torchrun, 2 CPU processes:", " ".join(command[3:]), file=sys.stderr)
    print(
        "rank 1 will stop itself at step 10: the traceback of rank 0 that follows (its peer is "
        "gone) is expected, then torchrun restarts both and the fit resumes",
        file=sys.stderr,
    )
    subprocess.run(command, env=env, check=True)
    generate(folder, args.tensor_parallel)


if __name__ == "__main__":
    main()
