"""Crashes on purpose: a command killed with SIGKILL at random moments, as a power cut or
an OOM kill would end it, so the tests can check that the next run resumes exactly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Callable, Sequence

__all__ = ["kill_at_random_moments"]


def kill_at_random_moments(
    command: Sequence[str],
    *,
    times: int,
    seed: int,
    between: tuple[float, float],
    done: Callable[[], bool] = lambda: False,
) -> tuple[int, bool]:
    """Start ``command`` and SIGKILL it after a random wait in ``between`` seconds, up to
    ``times`` times; a run that ends first must exit 0 and stops the killing, and so
    does ``done()`` after a kill (a run killed after its work was committed, before
    it exited). Returns the kills and whether the work was finished. The waits are
    the random moments, not synchronisation: any moment must do."""
    moments, kills = random.Random(seed), 0
    for _ in range(times):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)  # fmt: skip
        try:
            process.wait(timeout=moments.uniform(*between))
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            if done():
                return kills, True
        else:
            assert process.returncode == 0, process.stderr.read() if process.stderr else ""
            return kills, True
        finally:
            if process.stderr:
                process.stderr.close()
    return kills, False
