"""What the multi-process tests share: a free port, and following one run of forked ranks."""

from __future__ import annotations

import os
import queue
import signal
import socket
from collections.abc import Callable, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def follow(
    nexts: Sequence[Callable[[], tuple[str, str]]],
    pids: list[int],
    scenario: str,
    out: Path,
    kill_at: int | None = None,
) -> list[int]:
    """Reads each rank's ``step <n>`` lines up to its ``exit <code>``; SIGKILLs every rank
    (``pids``) once rank 0 printed a step ``>= kill_at``. Returns the steps; raises with the
    ranks' ``stderr<rank>.txt`` unless every rank exited as expected."""
    steps, codes, killed = [], [], False
    try:
        for next_line in nexts:  # rank 0 prints the steps, then every rank its exit code
            word, value = next_line()
            while word != "exit":
                steps.append(int(value))
                if kill_at is not None and steps[-1] >= kill_at and not killed:
                    for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                    killed = True
                word, value = next_line()
            codes.append(value)
    except queue.Empty:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"the {scenario} run hung; stderr in {out}") from None
    want = str(-signal.SIGKILL if kill_at is not None else 0)
    if codes != [want] * len(nexts):
        errors = [(out / f"stderr{r}.txt").read_text()[-3000:] for r in range(len(nexts))]
        raise AssertionError(f"exit codes {codes}, expected {want}:\n" + "\n".join(errors))
    return steps
