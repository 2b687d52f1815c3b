"""nbgrader preprocessor that judges hidden audit cells outside the student's kernel.

Configured in nbgrader_config.py in place of nbgrader's Execute. While the kernel runs the notebook,
each hidden `audit("...")` cell only records the student's functions, and a fresh runner, forked
beside the kernel from this process's sandboxed zygote (`audit.Zygote`), runs that check on them at
once; afterwards this grader process judges the results itself, then writes each audit cell's
output: a line on stdout for a pass, an error for a failure. nbgrader scores the cell from that output.
The kernel and the runner both run confined (`autograder.sandbox`) unless `confine` is off.
"""
import multiprocessing.util
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from queue import Empty

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, OverwriteCells
from nbgrader.utils import is_grade
from traitlets import Bool, Enum

from autograder import sandbox
from autograder.audit import AUDIT_DIR_ENV, Runner, stand_in

AUDIT_CALL = re.compile(r"""^\s*audit\(\s*["']([\w.]+)["']\s*\)""", re.M)


def audit_names(cell: NotebookNode) -> list[str]:
    """The checks a grade cell runs, in order (empty for cells that are not audit cells)."""
    if cell.cell_type != "code" or not is_grade(cell):
        return []
    return AUDIT_CALL.findall(cell.source)


def error_output(ename: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])


def verdict_output(name: str, message: str | None) -> NotebookNode:
    if message is None:
        return NotebookNode(output_type="stream", name="stdout", text=f"{name}: passed\n")
    return error_output("AuditFailure", message)


def poll_in_slices(channel, every: float = 0.5) -> None:
    """Make `channel.get_msg(timeout)` look for a message every `every` seconds until its timeout.
    Its single long poll can miss the wake-up of a message that has arrived (seen after a cell that
    opens many widgets, with other kernels busy): nbclient then waits out the whole cell timeout."""
    get_msg = channel.get_msg

    async def sliced(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = every if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(timeout=min(every, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    channel.get_msg = sliced


_kernels: Path | None = None


def kernels_folder() -> Path:
    """This process's folder for its kernels' own: removed when the process ends, so also what a
    kernel whose start or shutdown was interrupted (Ctrl-C) could not remove itself."""
    global _kernels
    if _kernels is None:
        _kernels = Path(tempfile.mkdtemp(prefix="kernels-"))
        # Not atexit: a worker forked by multiprocessing ends without it, but with these finalizers.
        multiprocessing.util.Finalize(None, sandbox.remove, args=(_kernels,), exitpriority=0)
    return _kernels


class ConfinedKernelManager(AsyncKernelManager):
    """The notebook's kernel, started in the sandbox: with no network, it talks to nbgrader over
    Unix sockets in a folder of its own; it writes only there, in the notebook's folder and in the
    audit folder; its `autograder` package is a stand-in that only records."""

    async def _async_pre_start_kernel(self, **kw):
        self.sockets = Path(tempfile.mkdtemp(prefix="kernel-", dir=kernels_folder()))
        self.transport = "ipc"
        self.connection_file = str(self.sockets / "kernel.json")
        self.ip = str(self.sockets / "ipc")
        # A signal to the process group would stop bwrap itself: the kernel interrupts itself on request.
        self.kernel_spec.interrupt_mode = "message"
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        cwd = Path(kw.get("cwd") or os.getcwd())
        sandbox.lend([self.sockets])  # the connection file was just written, the grader's
        writable = [cwd, self.sockets, *([Path(os.environ[AUDIT_DIR_ENV])] if AUDIT_DIR_ENV in os.environ else [])]
        package = stand_in(Path(tempfile.mkdtemp(prefix="stand-in-", dir=self.sockets)))
        return sandbox.command(cmd, cwd=cwd, writable=writable, stand_ins={sandbox.AUTOGRADER: package}), kw

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart)
        if not restart:
            shutil.rmtree(self.sockets, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources  # the async manager's public name binds the base's


class AuditedExecute(Execute):
    """nbgrader's Execute, then trusted judging of every hidden audit cell."""

    confine = Bool(True, help="Run the kernel and the audit runner in the sandbox.").tag(config=True)
    # Once the last cell has run nothing of the kernel is needed: a graceful shutdown would only wait
    # for its exit hooks (up to 5 s on a loaded machine).
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.confine:
            self.kernel_manager_class = ConfinedKernelManager

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        poll_in_slices(kc.shell_channel)
        poll_in_slices(kc.iopub_channel)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)  # nbclient binds its own at class creation

    def preprocess_cell(self, cell, resources, index):
        # A dead kernel would end nbgrader's autograde of the whole notebook: instead, the cell it
        # died in and every graded cell after it score zero, with a message, and the rest keep theirs.
        if self.died_in is not None:
            if cell.cell_type == "code" and is_grade(cell):
                cell.outputs = [error_output("KernelDied", f"Not run: the kernel died in cell {self.died_in} "
                                             "above, and nothing after it ran.")]
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.died_in = index
            cell.outputs.append(error_output(
                "KernelDied", f"The kernel died while running this cell (cell {index}): something in it ended "
                "the Python process (os._exit, a crash, or the memory limit). The cells below did not run."))
            return cell, resources
        self.runner.send(audit_names(cell))  # its record is written: the check runs while the notebook goes on
        return cell, resources

    def preprocess(self, nb, resources, *args, **kwargs):
        self.died_in = None
        notebook_folder = Path(resources.get("metadata", {}).get("path") or os.getcwd())
        with Runner(confine=self.confine) as self.runner, \
                sandbox.lent([notebook_folder] if self.confine else []):
            previous = os.environ.get(AUDIT_DIR_ENV)
            os.environ[AUDIT_DIR_ENV] = str(self.runner.folder)  # the kernel inherits it and only records
            try:
                nb, resources = super().preprocess(nb, resources, *args, **kwargs)
            finally:
                if previous is None:
                    os.environ.pop(AUDIT_DIR_ENV, None)
                else:
                    os.environ[AUDIT_DIR_ENV] = previous
            cells = [(cell, audit_names(cell)) for cell in nb.cells]
            cells = [(cell, names) for cell, names in cells if names]
            verdicts = self.runner.verdicts([n for _, names in cells for n in names])
            for cell, names in cells:
                cell.outputs = [verdict_output(n, verdicts[n]) for n in names]
                failed = [n for n in names if verdicts[n]]
                self.log.info("audit %s: %s", ", ".join(names), "FAILED " + ", ".join(failed) if failed else "passed")
        return nb, resources


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells, surviving a graded cell whose id the student changed: nbgrader drops
    the unknown id but leaves the cell marked graded, then fails on it when it puts missing cells back.
    Here that cell becomes an ordinary cell of the student's, and the original is put back and graded."""

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if "nbgrader" in cell.metadata and "grade_id" not in cell.metadata.nbgrader:
            del cell.metadata["nbgrader"]
        return cell, resources
