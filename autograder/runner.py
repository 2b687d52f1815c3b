"""Untrusted half of the audit: fresh processes run the student's functions on hidden scenarios.

Usage: python -m autograder.runner FOLDER OUT, then one `audit.job` per check on stdin.
Reads FOLDER/NAME.pkl (written by `audit.record`) and, once stdin ends (or at an empty line),
writes OUT/NAME.pt: plain data only, which the judge loads with weights_only=True. Nothing here
decides a grade, and nothing here holds a check: each comes in its job. Jobs arrive on stdin so
that this process can start (and import torch) before the notebook has run, and run each check
while the notebook goes on.
This process imports torch once, then forks one child per check, and passes the job's payload
(the check's collect and seed) to that child alone, through a pipe of its own, without reading it:
student code runs only in the children, so what one check's code does to its process cannot reach
another check, and each record is kept only if it comes from its own check's child. In a sandbox,
whatever a check's code left running is killed before the next check starts.

At grading, `python -m autograder.runner --serve` runs alone in a sandbox (`audit.Zygote`) and
serves student after student: a line FOLDER<TAB>OUT<TAB>LOG forks a fresh runner for one student,
to which it passes the jobs that follow (their payloads unread), up to an empty line; once that runner has
ended, every process it left is killed and /tmp emptied before "done" is answered. Torch is then
imported once per grading process, not once per student, and no student's code outlives its own
grading.
"""
import io
import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import cloudpickle
import torch

from autograder import sandbox, zygote
from autograder.audit import AuditFailure, collect_safely
from autograder.zygote import lines, remove


def run_check(folder: Path, staging: Path, name: str, payload: int, timeout: float) -> None:
    """The child's work: read its job's payload from the pipe `payload`, load the student's functions,
    collect, save the record to `staging`."""
    try:
        with os.fdopen(payload, "rb") as f:
            needs, collect, seed = cloudpickle.loads(f.read())
    except Exception as e:  # before any student code ran: the grader's fault
        torch.save({"error": f"The grader could not load this audit ({type(e).__name__}: {e}): tell your "
                             f"instructor, who can regrade your notebook once it is fixed."}, staging / f"{name}.pt")
        return

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
        rec = collect_safely(needs, collect, fns, seed)
    signal.setitimer(signal.ITIMER_REAL, 0)
    torch.save(rec, staging / f"{name}.pt")


def in_child(deadline: float, work, feed=lambda: None) -> str | None:
    """Run `work()` in a forked child, killed at `deadline`, while this process runs `feed()`; None if
    the child exited cleanly, else why not: "fork" (no child could start), "deadline", "signal NAME"
    or "exit CODE"."""
    sys.stdout.flush()
    try:
        pid = os.fork()
    except BlockingIOError:  # the sandbox's process limit, filled by an earlier check's leftovers
        feed()
        return "fork"
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
    feed()
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            if code < 0:
                return f"signal {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
            return f"exit {code}" if code else None
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "deadline"


def saved(rec: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(rec, buffer)
    return buffer.getvalue()


def with_memory_note(record: bytes) -> bytes:
    """A check's record, its error (if any) followed by the sandbox's memory limit."""
    try:
        rec = torch.load(io.BytesIO(record), weights_only=True)
    except Exception:  # not plain data: the judge says so
        return record
    if not isinstance(rec, dict) or not rec.get("error"):
        return record
    return saved({**rec, "error": f"{rec['error']}\n{sandbox.memory_in_all()}"})


def why_no_result(why: str, timeout: float) -> str:
    """What a student reads when the process running a check ended (or never started) without its record."""
    if why == "fork":
        return (f"The audit could not start a process to run your code: processes or threads your code "
                f"started earlier in this audit, and never ended, fill the grading sandbox's limit "
                f"({sandbox.PROCESSES} processes and threads in all).")
    if why == "deadline":
        return (f"Your code did not finish within the audit's {timeout:.0f} s, and went on after the audit "
                f"told it to stop (an exception caught, or the alarm signal ignored): look for a loop that "
                f"never ends.")
    if why == "signal SIGXFSZ":
        return f"Your code wrote a file larger than the grading sandbox allows ({sandbox.FILE_SIZE // 2**20} MiB)."
    if why.startswith("signal"):
        return (f"The process running your code was ended by {why.split()[1]}: a crash, the system's "
                f"out-of-memory killer, or your code itself.")
    return (f"The process running your code exited (status {why.split()[1]}) before the audit had its "
            f"results: look for os._exit in your code.")


def serve(folder: Path, out: Path, headers: Iterator[str], confined: bool = False) -> None:
    """Run the checks whose jobs come on stdin (`headers`: their header lines) on the records in
    `folder`; keep their records in `out`. If `confined`, kill what each check left running."""
    records = {}
    for header in headers:
        name, timeout, length = header.split("\t")
        timeout = float(timeout)
        staging = out / f"staging-{name}"
        remove(staging)  # an earlier child may have planted one
        staging.mkdir()
        payload, to_child = os.pipe()

        def work():
            os.close(to_child)
            run_check(folder, staging, name, payload, timeout)

        def feed():
            os.close(payload)
            zygote.pass_on(int(length), to_child)
            os.close(to_child)

        # The child's own alarm reports a slow loop; the parent's deadline catches code that ignores it.
        why = in_child(time.monotonic() + timeout + 10, work, feed)
        stopped = False
        if confined:
            zygote.kill_strays(time.monotonic() + 10)
            note = Path(os.environ[sandbox.OWN_ENV], sandbox.STOPPED)
            stopped = note.exists()
            note.unlink(missing_ok=True)
        path = staging / f"{name}.pt"
        if why is None and path.exists():
            records[name] = path.read_bytes()
            if stopped:  # a process of its code was stopped: if the check failed for it, say so
                records[name] = with_memory_note(records[name])
        else:  # a record that can only fail the check, made here, where no student code ran
            error = sandbox.memory_in_all() if stopped else why_no_result(why or "exit 0", timeout)
            records[name] = saved({"error": error})
        remove(staging)
    # Only records that came from their own check's child survive; anything else written here goes.
    for leftover in out.iterdir():  # `out` itself stays: the grader reads it
        remove(leftover)
    for name, data in records.items():
        (out / f"{name}.pt").write_bytes(data)


def serve_students() -> None:
    """The zygote: one fresh runner per student on request, forked from this warmed-up process."""
    zygote.become()
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
                serve(folder, out, lines(), confined=True)
                code = 0
            finally:
                sys.stdout.flush()
                os._exit(code)
        os.close(jobs)
        zygote.roomy(to_runner)
        for header in lines():  # this student's jobs, passed on as they come, up to the empty line
            try:
                os.write(to_runner, f"{header}\n".encode())
            except BrokenPipeError:  # its runner died: the checks left end without a result
                pass
            zygote.pass_on(int(header.split("\t")[2]), to_runner)
        os.close(to_runner)
        os.waitpid(pid, 0)
        zygote.sweep(time.monotonic() + 10)
        zygote.answer("done")


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)  # the audit's sizes are tiny; threads only add start-up and noise
    zygote.warm_up()
    if argv == ["--serve"]:
        serve_students()
    else:
        folder, out = map(Path, argv)
        serve(folder, out, lines())


if __name__ == "__main__":
    main(sys.argv[1:])
