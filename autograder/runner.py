"""Untrusted half of the audit: fresh processes run the student's functions on hidden scenarios.

Usage: python -m autograder.runner FOLDER OUT, then one NAME=SEED line per check on stdin.
Reads FOLDER/NAME.pkl (written by `audit.record`) and, once stdin ends (or at an empty line),
writes OUT/NAME.pt: plain data only, which the judge loads with weights_only=True. Nothing here
decides a grade. Checks arrive on stdin so that this process can start (and import torch) before
the notebook has run, and run each check while the notebook goes on.
This process imports torch once, then forks one child per check: student code runs only in the
children, so what one check's code does to its process cannot reach another check, and each record
is kept only if it comes from its own check's child.

At grading, `python -m autograder.runner --serve` runs alone in a sandbox (`audit.Zygote`) and
serves student after student: a line FOLDER<TAB>OUT<TAB>LOG forks a fresh runner for one student,
to which it passes the NAME=SEED lines that follow, up to an empty line; once that runner has
ended, every process it left is killed and /tmp emptied before "done" is answered. Torch is then
imported once per grading process, not once per student, and no student's code outlives its own
grading.
"""
import ctypes
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import cloudpickle
import torch

from autograder.audit import AuditFailure, checks, collect_safely
from autograder.sandbox import remove


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


def lines() -> Iterator[str]:
    """Lines of stdin up to an empty line or its end, read a byte at a time: nothing past them is
    consumed, so the next reader of stdin starts where these end."""
    while True:
        line = b""
        while not line.endswith(b"\n"):
            byte = os.read(0, 1)
            if not byte:
                return
            line += byte
        if not line.strip():
            return
        yield line.decode().strip()


def serve(folder: Path, out: Path, jobs: Iterator[str]) -> None:
    """Run the checks of `jobs` (NAME=SEED) on the records in `folder`; keep their records in `out`."""
    registry = checks()
    records = {}
    for job in jobs:
        name, seed = job.rsplit("=", 1)
        staging = out / f"staging-{name}"
        remove(staging)  # an earlier child may have planted one
        staging.mkdir()
        timeout = registry[name].timeout
        # The child's own alarm reports a slow loop; the parent's deadline catches code that ignores it.
        if in_child(time.monotonic() + timeout + 10, lambda: run_check(folder, staging, name, int(seed), timeout)):
            path = staging / f"{name}.pt"
            if path.exists():
                records[name] = path.read_bytes()
        remove(staging)
    # Only records that came from their own check's child survive; anything else written here goes.
    for leftover in out.iterdir():  # `out` itself stays: the grader reads it
        remove(leftover)
    for name, data in records.items():
        (out / f"{name}.pt").write_bytes(data)


def empty(folder: Path, spare: set[Path] = frozenset()) -> None:
    """Delete what `folder` holds but the paths in `spare`; folders on the way to one are emptied."""
    for entry in folder.iterdir():
        if entry in spare:
            continue
        if any(keep.is_relative_to(entry) for keep in spare):
            empty(entry, spare)
        else:
            remove(entry)


def mount_points() -> set[Path]:
    """Where this process's mount namespace has something mounted (the sandbox's binds among them)."""
    with open("/proc/self/mountinfo") as f:
        return {Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[4])) for line in f}


def sweep(deadline: float) -> None:
    """Kill every process of the sandbox but this one and empty its /tmp but what is mounted there
    (the grader empties the zygote's own folder), as the next student must find them."""
    while time.monotonic() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)  # in this pid namespace: all but pid 1 (bwrap) and the caller
        except ProcessLookupError:
            break
        time.sleep(0.01)  # killed processes stay until bwrap's init has reaped them
    else:
        raise RuntimeError("processes of the last student survived SIGKILL")
    home = Path(os.environ["HOME"])  # made by bwrap in /tmp: this user may empty it, not remove it
    empty(home)
    empty(Path("/tmp"), {home, *(m for m in mount_points() if m.is_relative_to("/tmp"))})


def serve_students() -> None:
    """The zygote: one fresh runner per student on request, forked from this warmed-up process."""
    if (os.getpid(), os.getppid()) != (2, 1):  # kill(-1) below must only reach the sandbox's processes
        raise SystemExit("--serve runs only as the first process of a sandbox's own pid namespace")
    # Not dumpable: a student's process of the same user id can neither trace this one nor read its memory.
    if ctypes.CDLL(None).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE, 0
        raise SystemExit("could not make the zygote undumpable")
    for request in lines():
        folder, out, log = map(Path, request.split("\t"))
        jobs, to_runner = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(to_runner)
                # Stdin becomes the checks (each check's child gets /dev/null), stdout and stderr the
                # log: the grader's requests and the answers to them are the zygote's alone.
                os.dup2(jobs, 0)
                os.close(jobs)
                sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(sink, 1)
                os.dup2(sink, 2)
                os.close(sink)
                os.chdir(folder)
                serve(folder, out, lines())
                code = 0
            finally:
                sys.stdout.flush()
                os._exit(code)
        os.close(jobs)
        for job in lines():  # this student's checks, passed on as they come, up to the empty line
            try:
                os.write(to_runner, f"{job}\n".encode())
            except BrokenPipeError:  # its runner died: the checks left end without a result
                pass
        os.close(to_runner)
        os.waitpid(pid, 0)
        sweep(time.monotonic() + 10)
        os.write(1, b"done\n")


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)  # the audit's sizes are tiny; threads only add start-up and noise
    warm_up()
    if argv == ["--serve"]:
        serve_students()
    else:
        folder, out = map(Path, argv)
        serve(folder, out, lines())


if __name__ == "__main__":
    main(sys.argv[1:])
