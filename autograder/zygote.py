"""What a zygote does inside its sandbox: a process that imported torch once and forks, student after
student, a fresh process for each, then sweeps away whatever that student left before serving the
next. Shared by the audit's zygote (`autograder.runner --serve`) and the kernels' zygote
(`autograder.kernels --serve`). The standard library only: this file is also part of the stand-in
`autograder` package that a student's kernel sees, and holds no check.
"""
import ctypes
import fcntl
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Iterator


def dumpable(flag: bool) -> bool:
    """Set whether this process is dumpable (a fork inherits it): an undumpable one cannot be traced
    nor its memory read by a process of the same user id, and its /proc files belong to root."""
    return ctypes.CDLL(None).prctl(4, int(flag), 0, 0, 0) == 0  # PR_SET_DUMPABLE


def become() -> None:
    """Make this process a zygote: the first process of its sandbox, and undumpable, so that no
    student's process can change what the next student's fork inherits."""
    if (os.getpid(), os.getppid()) != (2, 1):  # kill(-1) in `sweep` must only reach the sandbox's processes
        raise SystemExit("--serve runs only as the first process of a sandbox's own pid namespace")
    if not dumpable(False):
        raise SystemExit("could not make the zygote undumpable")


def warm_up() -> None:
    """Pay torch's one-time costs here, once, not in every fork: its lazy imports (torch._dynamo at
    the first optimizer step, ~1 s) and autograd's start-up."""
    import torch

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(model(torch.zeros(4, 2)), torch.zeros(4, dtype=torch.long)).backward()
    optimizer.step()


def readline() -> str | None:
    """One line of stdin, stripped, read a byte at a time so that nothing past it is consumed (the
    next reader of stdin starts where it ends); None at its end."""
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            return None
        line += byte
    return line.decode().strip()


def lines() -> Iterator[str]:
    """Lines of stdin up to an empty line or its end."""
    while line := readline():
        yield line


def roomy(pipe: int) -> None:
    """Give the pipe written to by `pipe` a buffer of 1 MiB, the most a user may: a notebook's jobs
    (`audit.job`, 2-15 kB each) fit, so sending them never waits for the runner."""
    fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, 2**20)


def pass_on(length: int, to: int) -> None:
    """Move the next `length` bytes of stdin into the pipe `to` without reading them: they never enter
    this process's memory, nor so any process forked from it later (a job's payload is its check's
    alone). Into /dev/null once `to` has no reader."""
    null = None
    try:
        while length > 0:
            try:
                moved = os.splice(0, to, length)
            except BrokenPipeError:
                to = null = os.open(os.devnull, os.O_WRONLY)
                continue
            if not moved:  # stdin ended
                return
            length -= moved
    finally:
        if null is not None:
            os.close(null)


def kill_strays(deadline: float) -> None:
    """Kill every process of the sandbox but bwrap's init, the zygote and this one: what a check's
    code left running, before the next check starts."""
    spare = {1, 2, os.getpid()}
    while time.monotonic() < deadline:
        strays = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in spare]
        if not strays:
            return
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)  # killed processes stay until bwrap's init has reaped them


def answer(text: str) -> None:
    os.write(1, f"{text}\n".encode())


def remove(path: Path) -> None:
    """Delete `path`, also a folder whose rights the confined code took away."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    path.chmod(0o700)
    for parent, dirs, _ in os.walk(path):  # top-down: each folder is opened up before it is listed
        for name in dirs:
            if not os.path.islink(os.path.join(parent, name)):
                os.chmod(os.path.join(parent, name), 0o700)
    shutil.rmtree(path)


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
    (the grader empties the zygote's own folder), as the next student must find them. This process
    must have reaped its own children first: a zombie stays a target of kill(-1)."""
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
