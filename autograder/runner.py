"""Untrusted half of the audit: fresh processes run the student's functions on hidden scenarios.

Usage: python -m autograder.runner FOLDER OUT, then one NAME=SEED line per check on stdin.
Reads FOLDER/NAME.pkl (written by `audit.record`) and, once stdin ends, writes OUT/NAME.pt: plain
data only, which the judge loads with weights_only=True. Nothing here decides a grade.
Checks arrive on stdin so that this process can start (and import torch) before the notebook has
run, and run each check while the notebook goes on.
This process imports torch once, then forks one child per check: student code runs only in the
children, so what one check's code does to its process cannot reach another check, and each record
is kept only if it comes from its own check's child.
"""
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import cloudpickle
import torch

from autograder.audit import AuditFailure, checks, collect_safely


def warm_up() -> None:
    """Pay torch's one-time costs (lazy imports, autograd start-up) here, once, not in every child."""
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(model(torch.zeros(4, 2)), torch.zeros(4, dtype=torch.long)).backward()
    optimizer.step()


def run_check(folder: Path, staging: Path, name: str, seed: int, timeout: float) -> None:
    """The child's work: load the student's functions, collect, save the record to `staging`."""
    def timed_out(*_):
        raise AuditFailure(f"Your code did not finish within {timeout:.0f} s on the audit's "
                           f"small problem: look for a loop that never ends.")

    signal.signal(signal.SIGALRM, timed_out)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with open(folder / f"{name}.pkl", "rb") as f:
            fns = cloudpickle.load(f)
    except Exception as e:
        rec = {"error": f"Your functions could not be loaded in a fresh Python process "
                        f"({type(e).__name__}: {e}). Define them in the notebook, using only "
                        f"names the notebook defines or imports."}
    else:
        rec = collect_safely(checks()[name], fns, seed)
    signal.setitimer(signal.ITIMER_REAL, 0)
    torch.save(rec, staging / f"{name}.pt")


def in_child(deadline: float, work) -> bool:
    """Run `work()` in a forked child, killed at `deadline`; True if it exited cleanly."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the checks still to come are not the child's
            work()
            code = 0
        except BaseException:
            code = 1
        finally:
            sys.stdout.flush()
        os._exit(code)
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def main(argv: list[str]) -> None:
    folder, out = map(Path, argv)
    torch.set_num_threads(1)  # the audit's sizes are tiny; threads only add start-up and noise
    warm_up()
    registry = checks()
    records = {}
    for job in sys.stdin:
        name, seed = job.strip().rsplit("=", 1)
        staging = out / f"staging-{name}"
        shutil.rmtree(staging, ignore_errors=True)  # an earlier child may have planted one
        staging.mkdir()
        timeout = registry[name].timeout
        # The child's own alarm reports a slow loop; the parent's deadline catches code that ignores it.
        if in_child(time.monotonic() + timeout + 10, lambda: run_check(folder, staging, name, int(seed), timeout)):
            path = staging / f"{name}.pt"
            if path.exists():
                records[name] = path.read_bytes()
        shutil.rmtree(staging, ignore_errors=True)
    # Only records that came from their own check's child survive; anything else written here goes.
    for leftover in out.iterdir():  # `out` itself stays: in the sandbox it is a mount point
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    for name, data in records.items():
        (out / f"{name}.pt").write_bytes(data)


if __name__ == "__main__":
    main(sys.argv[1:])
