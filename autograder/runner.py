"""Untrusted half of the audit: a fresh process runs the student's functions on hidden scenarios.

Usage: python -m autograder.runner FOLDER OUT NAME=SEED ...
Reads FOLDER/NAME.pkl (written by `audit.record`), writes OUT/NAME.pt: plain data only, which the
judge loads with weights_only=True. Nothing here decides a grade.
"""
import signal
import sys
from pathlib import Path

import cloudpickle
import torch

from autograder.audit import AuditFailure, checks, collect_safely


def main(argv: list[str]) -> None:
    folder, out, *jobs = argv
    torch.set_num_threads(1)  # the audit's sizes are tiny; threads only add start-up and noise
    registry = checks()
    for job in jobs:
        name, seed = job.rsplit("=", 1)
        check = registry[name]

        def timed_out(*_):
            raise AuditFailure(f"Your code did not finish within {check.timeout:.0f} s on the audit's "
                               f"small problem: look for a loop that never ends.")

        signal.signal(signal.SIGALRM, timed_out)
        signal.setitimer(signal.ITIMER_REAL, check.timeout)
        try:
            with open(Path(folder) / f"{name}.pkl", "rb") as f:
                fns = cloudpickle.load(f)
        except Exception as e:
            rec = {"error": f"Your functions could not be loaded in a fresh Python process "
                            f"({type(e).__name__}: {e}). Define them in the notebook, using only "
                            f"names the notebook defines or imports."}
        else:
            rec = collect_safely(check, fns, int(seed))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        torch.save(rec, Path(out) / f"{name}.pt")


if __name__ == "__main__":
    main(sys.argv[1:])
