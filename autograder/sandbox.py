"""Student code at grading runs confined, with no Docker: Debian's bubblewrap (`bwrap`) and limits.

Both processes that run a student's code at autograde, the notebook's kernel and the audit runner,
are forks of a zygote (`autograder.kernels`, `autograder.runner`) that runs, for its grading process,
in a sandbox of its own that has
- no network: a network namespace of its own (the kernel talks to nbgrader over Unix sockets);
- a file system made of the system's /usr, the Python installation and this course's packages,
  all read-only, a private /tmp of at most TMP_SIZE bytes, and one folder it may write, the
  zygote's, which holds one student's session at a time (the kernel's: a copy of the submission's
  folder, its sockets, its audit records): no source/, no gradebook, no other student. (What that
  folder may hold in all is not limited yet, only each file's size);
- limits on its address space, on the size of any file it writes and on its processes, set inside
  the sandbox so that they count its processes alone (as root it runs as a user id of its own; as
  any other user, in a user namespace of its own, which the limit then counts apart from the
  grader's and other sandboxes' processes): a fork bomb in the notebook exhausts the kernel's
  sandbox, not the audit's, nor the grader;
- one compute thread for torch, so that parallel graders do not oversubscribe the cores.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import autograder
import course
from autograder import zygote

MEMORY = 4 * 2**30  # bytes of address space: torch with its threads maps ~1 GB, the notebooks peak under 0.5
FILE_SIZE = 64 * 2**20  # bytes per written file: plenty for a checkpoint of the course's models
TMP_SIZE = 256 * 2**20  # bytes its /tmp may hold (a tmpfs, in memory), all files together
FOLDER_SIZE = 256 * 2**20  # bytes its own folder may hold, all students' files together (as root: a tmpfs)
PROCESSES = 256  # processes and threads of one sandbox
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
# as COURSE_DB_URL, the gradebook's address with its password).
PASSED = re.compile(r"PATH|PWD|LANG|LANGUAGE|LC_\w+|TZ|TERM|USER|LOGNAME|PYTHON\w*|JPY_\w+|TQDM_\w+|MPLBACKEND|"
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


def command(cmd: list[str], *, cwd: Path, writable: list[Path], uid: int | None,
            stand_ins: dict[Path, Path] | None = None) -> list[str]:
    """`cmd` wrapped to run confined in `cwd`, as `uid` (`user_id`), writing only to `writable`; each
    folder of `stand_ins` (what it would see -> what it sees there instead) is replaced."""
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
    for path, how in [*((p, "--ro-bind") for p in _readable()), *((p, "--bind") for p in writable)]:
        # bwrap would make the folders above a mount point private to root: the sandbox's user must pass
        for parent in reversed(path.parents):
            if parent not in made:
                made.add(parent)
                box += ["--perms", "0755", "--dir", str(parent)]
        box += [how, str(stand_ins.get(path, path)), str(path)]
    return [*box, "--chdir", str(cwd), "--", *limits, *become, *cmd]


def bound(folder: Path, uid: int | None) -> None:
    """As root, make `folder` (a sandbox's own) a tmpfs of FOLDER_SIZE bytes, so that what its code
    writes there, with its /tmp, cannot fill the host's disk. Unprivileged, no mount can be made: only
    each file's size is limited (FILE_SIZE)."""
    if uid is not None:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FOLDER_SIZE},mode=0755", "tmpfs", str(folder)],
                       check=True)


def remove(path: Path) -> None:
    """Delete `path` (`zygote.remove`), unmounting first what `bound` mounted in it (also in the folder
    of a zygote whose grader was killed)."""
    inside = [m for m in zygote.mount_points() if m.is_relative_to(path.resolve())]
    for mounted in sorted(inside, key=lambda m: len(m.parts), reverse=True):
        subprocess.run(["umount", "--lazy", str(mounted)], check=True)
    zygote.remove(path)


def lend(paths: list[Path], uid: int | None) -> None:
    """Make `paths` and what they hold belong to `uid` (a sandbox's `user_id`; None: the grader's own)."""
    if uid is None:
        return
    for path in paths:
        os.chown(path, uid, uid, follow_symlinks=False)
        for parent, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)
