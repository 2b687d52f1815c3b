"""Student code at grading runs confined, with no Docker: Debian's bubblewrap (`bwrap`) and limits.

Both processes that run a student's code at autograde, the notebook's kernel and the audit runner,
are forks of a zygote (`autograder.kernels`, `autograder.runner`) that runs, for its grading process,
in a sandbox of its own that has
- no network: a network namespace of its own (the kernel talks to nbgrader over Unix sockets);
- a file system made of the system's /usr, the Python installation and this course's packages,
  all read-only, a private /tmp, and one folder it may write, the zygote's, which holds one
  student's session at a time (the kernel's: a copy of the submission's folder, its sockets, its
  audit records): no source/, no gradebook, no other student;
- limits on its address space, on the size of any file it writes and, when the grader runs as root,
  on its processes: it then runs as a user id of its own, so a fork bomb exhausts only itself;
- one compute thread for torch, so that parallel graders do not oversubscribe the cores.
"""
import os
import re
import shutil
import sys
from pathlib import Path

import autograder
import course
from autograder.zygote import remove  # noqa: F401 (the grader's callers use it from here)

MEMORY = 4 * 2**30  # bytes of address space: torch with its threads maps ~1 GB, the notebooks peak under 0.5
FILE_SIZE = 64 * 2**20  # bytes per written file: plenty for a checkpoint of the course's models
PROCESSES = 256  # processes and threads of the sandbox's own user id
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


def user_id() -> int | None:
    """The sandbox's own user id when the grader is root (one per grading process), else None."""
    return 100000 + os.getpid() if os.geteuid() == 0 else None


def command(cmd: list[str], *, cwd: Path, writable: list[Path],
            stand_ins: dict[Path, Path] | None = None) -> list[str]:
    """`cmd` wrapped to run confined in `cwd`, writing only to `writable`; each folder of
    `stand_ins` (what it would see -> what it sees there instead) is replaced."""
    stand_ins = stand_ins or {}
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap is not installed (Debian: apt-get install bubblewrap): "
                                 "grading will not run student code unconfined.")
    limits = ["prlimit", f"--as={MEMORY}", f"--fsize={FILE_SIZE}"]
    uid = user_id()
    if uid is None:  # unprivileged: bwrap makes a user namespace, the code keeps the grader's user id
        namespaces, become = ["--unshare-all"], []
    else:  # root: bwrap needs no user namespace, and the code drops to the sandbox's own user id
        limits.append(f"--nproc={PROCESSES}")
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        become = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    box = [bwrap, "--die-with-parent", *namespaces, "--ro-bind", "/usr", "/usr",
           *(a for d in ("bin", "lib", "lib64", "sbin") if Path("/usr", d).exists()
             for a in ("--symlink", f"usr/{d}", f"/{d}")),
           "--dev", "/dev", "--proc", "/proc",
           "--perms", "1777", "--tmpfs", "/tmp", "--perms", "0777", "--dir", "/tmp/home",
           *(a for name, value in ENV.items() for a in ("--setenv", name, value))]
    made = {Path("/"), Path("/usr"), Path("/tmp"), Path("/dev"), Path("/proc")}
    for path, how in [*((p, "--ro-bind") for p in _readable()), *((p, "--bind") for p in writable)]:
        # bwrap would make the folders above a mount point private to root: the sandbox's user must pass
        for parent in reversed(path.parents):
            if parent not in made:
                made.add(parent)
                box += ["--perms", "0755", "--dir", str(parent)]
        box += [how, str(stand_ins.get(path, path)), str(path)]
    return [*limits, "--", *box, "--chdir", str(cwd), "--", *become, *cmd]


def lend(paths: list[Path], uid: int | None = None) -> None:
    """Make `paths` and what they hold belong to `uid` (default: the sandbox's user); as root only."""
    if os.geteuid() != 0:
        return
    uid = user_id() if uid is None else uid
    for path in paths:
        os.chown(path, uid, uid, follow_symlinks=False)
        for parent, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)
