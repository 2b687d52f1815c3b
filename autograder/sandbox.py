"""Student code at grading runs confined, with no Docker: Debian's bubblewrap (`bwrap`) and limits.

Both processes that run a student's code at autograde, the notebook's kernel and the audit runner,
are forks of a zygote (`autograder.kernels`, `autograder.runner`) that runs, for its grading process,
in a sandbox of its own that has
- no network: a network namespace of its own (the kernel talks to nbgrader over Unix sockets);
- a file system made of the system's /usr, the Python installation and this course's packages,
  all read-only, a private /tmp of at most TMP_SIZE bytes, and a folder of its own of at most
  FOLDER_SIZE bytes, the zygote's, which holds one student's session at a time (the kernel's: a copy
  of the submission's folder, its sockets, its audit records): no source/, no gradebook, no other
  student. Both are file systems in memory that exist in the sandbox alone (`Sandbox`), root or not:
  nothing a student writes reaches the grader's disk;
- at most MEMORY_IN_ALL bytes in use by all its processes together (`Sandbox`'s watchdog);
- limits on the address space of each process, on the size of any file it writes and on its processes, set inside
  the sandbox so that they count its processes alone (as root it runs as a user id of its own; as
  any other user, in a user namespace of its own, which the limit then counts apart from the
  grader's and other sandboxes' processes): a fork bomb in the notebook exhausts the kernel's
  sandbox, not the audit's, nor the grader;
- one compute thread for torch, so that parallel graders do not oversubscribe the cores.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import autograder
import course

MEMORY = 4 * 2**30  # bytes of address space per process: torch with its threads maps ~1 GB
MEMORY_IN_ALL = 4 * 2**30  # bytes in use by all its processes together: a notebook peaks under 0.5 GiB
FILE_SIZE = 64 * 2**20  # bytes per written file: plenty for a checkpoint of the course's models
TMP_SIZE = 256 * 2**20  # bytes its /tmp may hold (a tmpfs, in memory), all files together
FOLDER_SIZE = 256 * 2**20  # bytes its own folder may hold (a tmpfs, in memory), all files together
PROCESSES = 256  # processes and threads of one sandbox
PAGE = os.sysconf("SC_PAGE_SIZE")
OWN_ENV = "COURSE_SANDBOX_FOLDER"  # the sandbox's own folder, for the code the grader runs there
STOPPED = "stopped-for-memory"  # the note the watchdog leaves in that folder when it stops a process
FONTS = Path("/etc/fonts")  # matplotlib's fontconfig warns on stderr without it
AUTOGRADER = Path(autograder.__file__).parent.resolve()
# Not autograder.notebooks.ROOT: importing nbformat would add a second to every audit runner's start.
DATASETS = AUTOGRADER.parent / "datasets"
ENV = {
    "HOME": "/tmp/home", "MPLCONFIGDIR": "/tmp/home",
    # ipykernel exits when its parent looks gone, as it always does from inside a pid namespace,
    # unless the parent is 1; --die-with-parent ends the sandbox with the grader.
    "JPY_PARENT_PID": "1",
    # Graders run one kernel per core: a kernel's own intra-op threads would only contend
    # (measured: 2 workers 1.4x faster than serial with torch's threads, 1.8x with one each).
    "OMP_NUM_THREADS": "1",
}  # set in the sandbox, over the grader's environment
# Of the grader's environment, sandboxed code sees only these: nothing that could hold a secret (such
# as COURSE_DB_URL, the gradebook's address with its password, or JupyterHub's JPY_API_TOKEN when the
# instructor grades in a hub's server).
PASSED = re.compile(r"PATH|PWD|LANG|LANGUAGE|LC_\w+|TZ|TERM|USER|LOGNAME|PYTHON\w*|TQDM_\w+|MPLBACKEND|"
                    r"NBGRADER_EXECUTION|CUDA_VISIBLE_DEVICES|COURSE_DATASETS_DIR")


def limit_hit(error: str) -> str:
    """The sandbox's limit that an error ("MemoryError: ...", as Python prints it) comes from, as a
    sentence to add to it; "" for any other error."""
    if error.startswith("MemoryError"):
        return f"The grading sandbox allows {MEMORY // 2**30} GiB of memory (address space) per process."
    if "Resource temporarily unavailable" in error or "can't start new thread" in error:
        return f"The grading sandbox allows {PROCESSES} processes and threads in all."
    if "File too large" in error:
        return f"The grading sandbox allows files of at most {FILE_SIZE // 2**20} MiB."
    if "No space left on device" in error:
        return (f"The grading sandbox holds at most {TMP_SIZE // 2**20} MiB of files in /tmp, and "
                f"{FOLDER_SIZE // 2**20} MiB in the folder your code runs in.")
    return ""


def memory_in_all() -> str:
    """What a student reads when the watchdog stopped one of their processes."""
    return (f"The grading sandbox allows {MEMORY_IN_ALL // 2**30} GiB of memory in use by all the processes of "
            f"your code together: past it, the largest of them is stopped.")


def environment(env: dict[str, str]) -> dict[str, str]:
    """What sandboxed code may see of `env`, with the sandbox's own settings."""
    return {**{name: value for name, value in env.items() if PASSED.fullmatch(name)}, **ENV}


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing: grading refuses to run student code unconfined."""


def _readable() -> list[Path]:
    """What student code may read: Python, its packages, the course's helpers and datasets."""
    paths = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix),
             AUTOGRADER, Path(course.__file__).parent, DATASETS}
    if FONTS.exists():
        paths.add(FONTS)
    return sorted(p.resolve() for p in paths if not p.resolve().is_relative_to("/usr"))


def user_id(index: int) -> int | None:
    """The user id of this grading process's sandbox number `index` (0 or 1: its audit runners', its
    kernels') when the grader is root, else None."""
    return 100000 + 2 * os.getpid() + index if os.geteuid() == 0 else None


def command(cmd: list[str], *, cwd: Path, uid: int | None, own: Path | None = None, info: int | None = None,
            stand_ins: dict[Path, Path] | None = None) -> list[str]:
    """`cmd` wrapped to run confined in `cwd`, as `uid` (`user_id`), writing only to its /tmp and to
    `own`, a tmpfs of FOLDER_SIZE bytes made there; bwrap writes its pid namespace's first process on
    the descriptor `info` (`--info-fd`); each folder of `stand_ins` (what it would see -> what it sees
    there instead) is replaced."""
    stand_ins = stand_ins or {}
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap is not installed (Debian: apt-get install bubblewrap): "
                                 "grading will not run student code unconfined.")
    # Inside: a process limit set before bwrap made the user namespace would also count every process
    # of the grader's user id (measured: 30 outside left 16 of 50 inside); set within, it counts the
    # namespace's alone.
    limits = ["prlimit", f"--as={MEMORY}", f"--fsize={FILE_SIZE}", f"--nproc={PROCESSES}", "--"]
    if uid is None:  # unprivileged: bwrap makes a user namespace, the code keeps the grader's user id
        namespaces, become = ["--unshare-all"], []
    else:  # root: bwrap needs no user namespace, and the code drops to the sandbox's own user id
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        become = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    box = [bwrap, "--die-with-parent", *namespaces, "--ro-bind", "/usr", "/usr",
           *(a for d in ("bin", "lib", "lib64", "sbin") if Path("/usr", d).exists()
             for a in ("--symlink", f"usr/{d}", f"/{d}")),
           "--dev", "/dev", "--proc", "/proc",
           "--perms", "1777", "--size", str(TMP_SIZE), "--tmpfs", "/tmp", "--perms", "0777", "--dir", "/tmp/home",
           *(a for name, value in ENV.items() for a in ("--setenv", name, value))]
    made = {Path("/"), Path("/usr"), Path("/tmp"), Path("/dev"), Path("/proc")}
    mounts = [*(("--ro-bind", str(stand_ins.get(p, p)), str(p)) for p in _readable()),
              *([("--size", str(FOLDER_SIZE), "--tmpfs", str(own))] if own else [])]
    for *how, path in mounts:
        # bwrap would make the folders above a mount point private to root: the sandbox's user must pass
        for parent in reversed(Path(path).parents):
            if parent not in made:
                made.add(parent)
                box += ["--perms", "0755", "--dir", str(parent)]
        box += [*how, path]
    if info is not None:
        box += ["--info-fd", str(info)]
    return [*box, "--chdir", str(cwd), "--", *limits, *become, *cmd]


class Sandbox:
    """`cmd` running confined (`command`) with a folder of its own, `own`: a tmpfs of FOLDER_SIZE bytes
    mounted in the sandbox alone (no mount of the grader's, root or not). The grader reaches it at the
    same path: `own` on the host is a link to an open descriptor of it in this process
    (/proc/PID/fd/N), which holds the folder after the sandbox has ended (its records are read after
    a kill) until `close`. While all the sandbox's processes but its first two (bwrap's init and
    `cmd`, the zygote) use more than `memory` bytes together, a watchdog stops the largest of them,
    counts it in `stopped` and leaves a note (STOPPED) in the folder, for the code there to say why."""

    def __init__(self, cmd: list[str], *, cwd: Path, uid: int | None, own: Path,
                 stand_ins: dict[Path, Path] | None = None, memory: int = MEMORY_IN_ALL, **popen):
        info, to_info = os.pipe()
        try:
            self.process = subprocess.Popen(command(cmd, cwd=cwd, uid=uid, own=own, info=to_info, stand_ins=stand_ins),
                                            pass_fds=[to_info], **popen)
        finally:
            os.close(to_info)
        with open(info, "rb") as f:
            found = f.read1(4096)
            while found and not found.rstrip().endswith(b"}"):  # one JSON object, written once
                found += f.read1(4096)
        if not found:
            self.process.wait()
            raise SandboxUnavailable(f"bubblewrap could not start a sandbox (exit status {self.process.returncode})")
        self.init = json.loads(found)["child-pid"]
        inside = f"/proc/{self.init}/root{own}"
        deadline = time.monotonic() + 30
        while not _mounted(inside):  # bwrap reports its child before that child has made its mounts
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise SandboxUnavailable(f"bubblewrap did not make the sandbox's folder {own}")
            time.sleep(0.001)
        self.own = os.open(inside, os.O_RDONLY | os.O_DIRECTORY)
        if uid is not None:
            os.fchown(self.own, uid, uid)
        own.symlink_to(f"/proc/{os.getpid()}/fd/{self.own}")
        self.namespace = os.readlink(f"/proc/{self.init}/ns/pid")
        self.memory, self.stopped, self.zygote = memory, 0, None  # stopped: how many the watchdog stopped
        self.closing = threading.Lock()  # the watchdog writes in the folder only while it is open
        threading.Thread(target=self._watch, daemon=True).start()

    def processes(self) -> list[int]:
        """The sandbox's processes (their pids here) but bwrap's init and the zygote."""
        found, todo = [], [self.init]
        while todo:
            pid = todo.pop()
            try:
                for task in os.listdir(f"/proc/{pid}/task"):  # a child of any thread
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo += map(int, f.read().split())
            except OSError:  # it ended
                continue
            found.append(pid)
        if self.zygote is None:
            self.zygote = next((p for p in found if _inner_pid(p) == 2), None)
        return [p for p in found if p not in (self.init, self.zygote)]

    def _watch(self) -> None:
        while self.process.returncode is None and os.path.exists(f"/proc/{self.init}"):
            time.sleep(0.05)
            pids = self.processes()
            # Resident sizes count the pages a fork shares with the zygote again in each: cheap, and an
            # upper bound; only past the limit is each one's proportional share measured (~1 ms each).
            if sum(map(_resident, pids)) <= self.memory:
                continue
            sizes = sorted(((_proportional(p), p) for p in pids), reverse=True)
            total = sum(size for size, _ in sizes)
            for size, pid in sizes:
                if total <= self.memory:
                    break
                if self.stop(pid):
                    total -= size
                    self.stopped += 1
            with self.closing:
                try:
                    if self.own is not None:
                        os.close(os.open(STOPPED, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=self.own))
                except OSError:  # student code made the folder's top unwritable: no note, the limit holds
                    pass

    def stop(self, pid: int) -> bool:
        """Kill `pid` if it is still a process of this sandbox (not a process that took its number since)."""
        try:
            handle = os.pidfd_open(pid)
        except OSError:
            return False
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != self.namespace:
                return False
            signal.pidfd_send_signal(handle, signal.SIGKILL)
            return True
        except OSError:
            return False
        finally:
            os.close(handle)

    def close(self) -> None:
        """End the sandbox, with whatever still runs there, and free its folder."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        with self.closing:
            if self.own is not None:
                os.close(self.own)
                self.own = None


def _mounted(path: str) -> bool:
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def _inner_pid(pid: int) -> int | None:
    """`pid`'s number in its own pid namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(line for line in f if line.startswith("NSpid:")).split()[-1])
    except (OSError, StopIteration, ValueError):
        return None


def _resident(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _proportional(pid: int) -> int:
    """`pid`'s proportional set size: its own pages, and its share of those it shares."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return int(next(line for line in f if line.startswith("Pss:")).split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        return _resident(pid)


def lend(paths: list[Path], uid: int | None) -> None:
    """Make `paths` and what they hold belong to `uid` (a sandbox's `user_id`; None: the grader's own)."""
    if uid is None:
        return
    for path in paths:
        os.chown(path, uid, uid, follow_symlinks=False)
        for parent, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)
