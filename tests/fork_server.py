"""Runs a test script's work in forked children, so torch is imported once per serving process.

A test writes one line per run to the server's stdin; the server forks, the child does the
work, and the server prints ``pid N`` (so the test can kill the child) and ``exit CODE``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable


def run_forked(work: Callable[[], object]) -> None:
    """Runs ``work`` in a forked child and reports its pid and exit code on stdout."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            work()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(f"pid {pid}", flush=True)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print(f"exit {code}", flush=True)
