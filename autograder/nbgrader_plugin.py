"""nbgrader preprocessor that judges hidden audit cells outside the student's kernel.

Configured in nbgrader_config.py in place of nbgrader's Execute. While the kernel runs the notebook,
each hidden `audit("...")` cell only records the student's functions, and a fresh runner, forked
beside the kernel from this process's sandboxed audit zygote (`audit.Zygote`), runs that check on
them at once; afterwards this grader process judges the results itself, then writes each audit
cell's output: a line on stdout for a pass, an error for a failure. nbgrader scores the cell from
that output. The kernel is a fork of this process's kernels' zygote (`autograder.kernels`), which
imported torch and the notebooks' libraries once. Both run confined (`autograder.sandbox`); with
`confine` off, the kernel is a fresh, unconfined one and the runner a fresh process.
"""
import asyncio
import json
import os
import re
import shutil
import signal
import stat
import time
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async, run_sync
import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, Enum, List, Type

from autograder import sandbox
from autograder.audit import AUDIT_DIR_ENV, Runner, zygote

AUDIT_CALL = re.compile(r"""^\s*audit\(\s*["']([\w.]+)["']\s*\)""", re.M)
GRACE = 10  # seconds a cell interrupted at the timeout has to stop before its kernel is stopped


class CellTimedOut(DeadKernelError):
    """A cell ran past the timeout and did not stop when interrupted: its kernel was stopped."""


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


class ReadyKernelClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as its kernel has answered on the shell and IOPub
    channels. jupyter_client's own then drains IOPub until it has been silent for 0.2 s, idle time
    on every student, for messages nbclient would skip anyway (it reads only its requests' replies)."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # a message on IOPub: subscribed, so no output of the first cell is lost
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")


class ForkedKernel:
    """The kernel's process as jupyter_client's provisioner holds it (Popen's poll, wait, send_signal,
    kill, terminate), for a kernel forked by the kernels' zygote (`autograder.kernels`)."""

    stdin = stdout = stderr = None
    STARTS_WITHIN = 300  # seconds: a zygote started for it imports torch first, on a machine busy grading

    def __init__(self, zygote, request: dict):
        self.zygote, self.returncode = zygote, None
        if not zygote.write(f"start {json.dumps(request)}\n") or zygote.read(self.STARTS_WITHIN) != "started":
            zygote.kill()
            zygote.errors.seek(0)
            raise RuntimeError("the kernels' zygote could not start a kernel:\n"
                               + zygote.errors.read()[-2000:].decode(errors="replace"))

    def poll(self) -> int | None:
        while self.returncode is None and (answer := self.zygote.read(0)) is not None:
            if answer.startswith("exited "):
                self.returncode = int(answer.split()[1])
        if self.returncode is None and not self.zygote.alive():  # its kernel died with it
            self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("the kernel is still running")
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self.zygote.write(f"signal {int(signum)}\n")

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkedKernelManager(AsyncKernelManager):
    """The notebook's kernel at autograde: a fork of this grading process's kernels' zygote, in its
    sandbox (no network; it talks to nbgrader over Unix sockets in the zygote's folder).
    It runs in a copy of the notebook's folder in that session and writes only there; its `autograder`
    package is a stand-in that only records, into the session's records folder, from which
    `take_records` hands the grader each record, never through a link. When the kernel is done, every
    process the student left is killed and the session swept before the next student's kernel."""

    client_factory = Type(ReadyKernelClient, klass=AsyncKernelClient)

    async def _async_pre_start_kernel(self, **kw):
        self.zygote = zygote("autograder.kernels")
        self.student_folder = self.zygote.session()
        self.ended = False
        # The tree holds this student alone; a short folder, for a Unix socket's path has at most 107 bytes.
        sockets, self.records = self.zygote.tree / "s", self.student_folder / "records"
        if len(os.fsencode(sockets / "ipc-99")) > 107:
            raise RuntimeError(f"The kernel's sockets would be in {sockets}, too long a path for a Unix socket "
                               f"(at most 107 bytes): set TMPDIR to a shorter folder than {self.zygote.folder.parent}.")
        sockets.mkdir()
        self.records.mkdir()
        self.records_fd = os.open(self.records, os.O_RDONLY | os.O_DIRECTORY)  # whatever the kernel renames
        self.transport = "ipc"
        self.connection_file = str(sockets / "kernel.json")
        self.ip = str(sockets / "ipc")
        # A signal to the process group would stop the zygote: the kernel interrupts itself on request.
        self.kernel_spec.interrupt_mode = "message"
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        folder = kw.get("cwd")
        self.work = self.student_folder / (Path(folder).name if folder else "work")
        if folder:
            shutil.copytree(folder, self.work, symlinks=True)
        else:
            self.work.mkdir()
        self.zygote.lend([self.student_folder, sockets])
        return cmd, kw

    async def _async_launch_kernel(self, kernel_cmd, **kw) -> None:
        env = {**sandbox.environment(kw.get("env", os.environ)), AUDIT_DIR_ENV: str(self.records)}
        self.provisioner.process = ForkedKernel(self.zygote, {
            "connection_file": self.connection_file, "cwd": str(self.work), "env": env,
            "log": str(self.student_folder / "kernel.log")})
        self._reconcile_connection_info(self.provisioner.connection_info)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # After the kill jupyter_client looks every 0.1 s whether the kernel ended: the zygote says so
        # within milliseconds, and every student would wait out the rest.
        await super()._async_wait(pollinterval=0.005)

    def take_records(self, names: list[str], folder: Path) -> None:
        """Copy into `folder` the record the kernel wrote for each check of `names`: regular files only."""
        for name in names:
            try:
                fd = os.open(f"{name}.pkl", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.records_fd)
            except OSError:  # none, or a link
                continue
            with open(fd, "rb") as record:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    (folder / f"{name}.pkl").write_bytes(record.read())

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart)
        if not restart and not self.ended:  # nbclient cleans up twice
            self.ended = True
            os.close(self.records_fd)
            if not self.zygote.finish(timeout=60):  # the next student gets a fresh zygote
                self.zygote.kill()

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
            self.kernel_manager_class = ForkedKernelManager

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        poll_in_slices(kc.shell_channel)
        poll_in_slices(kc.iopub_channel)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)  # nbclient binds its own at class creation

    async def _async_handle_timeout(self, timeout, cell=None):
        # nbclient interrupts the kernel and goes on; a cell that ignores the interrupt (SIGINT caught
        # or ignored) would then hold the kernel, and every later cell would wait out its own timeout.
        self.log.error("Cell ran past %s s: interrupting the kernel", timeout)
        await ensure_async(self.km.interrupt_kernel())
        deadline = time.monotonic() + GRACE
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                break
            if msg["msg_type"] == "execute_reply":  # one request at a time: this cell's
                return {"content": {**self.error_on_timeout, "status": "error"}}
        self.log.error("The cell did not stop when interrupted: stopping its kernel")
        await ensure_async(self.km.signal_kernel(signal.SIGKILL))
        while await ensure_async(self.km.is_alive()):
            await asyncio.sleep(0.01)
        raise CellTimedOut(f"ran past the time limit ({timeout} s) and did not stop when interrupted")

    def preprocess_cell(self, cell, resources, index):
        # A dead kernel would end nbgrader's autograde of the whole notebook: instead, the cell it
        # died in and every graded cell after it score zero, with a message, and the rest keep theirs.
        if self.died_in is not None:
            if cell.cell_type == "code" and is_grade(cell):
                cell.outputs = [error_output("KernelDied", f"Not run: {self.died_in}; nothing after it ran.")]
            return cell, resources
        stopped = self.km.zygote.sandbox.stopped if self.confine else 0
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError as e:
            first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")[:60]
            where = f"cell {index} ({first!r})"
            if isinstance(e, CellTimedOut):
                self.died_in = f"{where} above {e}, so its kernel was stopped"
                cell.outputs.append(error_output(
                    "CellTimedOut", f"This cell {e}: its kernel was stopped, and the cells below did not run. "
                    "Look for a loop that never ends, or make the work smaller."))
            elif self.confine and self.km.zygote.sandbox.stopped > stopped:
                self.died_in = f"the kernel was stopped in {where} above, past the memory limit"
                cell.outputs.append(error_output(
                    "KernelDied", f"The kernel was stopped while running this cell: {sandbox.memory_in_all()} "
                    "The cells below did not run."))
            else:
                self.died_in = f"the kernel died in {where} above"
                cell.outputs.append(error_output(
                    "KernelDied", "The kernel died while running this cell: something in it ended the Python "
                    "process (os._exit, a crash, or the memory limit). The cells below did not run."))
            return cell, resources
        if self.confine:  # an error from one of the sandbox's limits says which
            memory = self.km.zygote.sandbox.stopped > stopped
            for output in cell.get("outputs", []):
                if output.output_type != "error":
                    continue
                limit = sandbox.memory_in_all() if memory else sandbox.limit_hit(f"{output.ename}: {output.evalue}")
                if limit:
                    output.evalue = f"{output.evalue} ({limit})"
                    output.traceback = [*output.traceback, limit]
        names = audit_names(cell)
        if names and self.confine:
            self.km.take_records(names, self.runner.folder)
        self.runner.send(names)  # its record is written: the check runs while the notebook goes on
        return cell, resources

    def preprocess(self, nb, resources, *args, **kwargs):
        self.died_in = None
        with Runner(confine=self.confine) as self.runner:
            previous = os.environ.get(AUDIT_DIR_ENV)
            # An unconfined kernel inherits it and records there; a forked one records in its session.
            os.environ[AUDIT_DIR_ENV] = str(self.runner.folder)
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


class RepairNotebook(NbGraderPreprocessor):
    """A notebook nbformat's schema refuses (a cell id with a space, a field another editor added, a
    malformed output) fails nbgrader's autograde as a whole: no score, no feedback. Here such a
    notebook's cells are rebuilt from their type, source and metadata, each with a valid id."""

    def preprocess(self, nb, resources):
        try:
            nbformat.validate(nb)
            return nb, resources
        except nbformat.ValidationError as e:
            self.log.warning("The notebook does not validate (%s): its cells are rebuilt", str(e).splitlines()[0])
        make = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
        cells, ids = [], set()
        for cell in nb.get("cells", []):
            source = cell.get("source", "")
            metadata = cell.get("metadata")
            new = make.get(cell.get("cell_type"), nbformat.v4.new_raw_cell)(
                "".join(source) if isinstance(source, list) else str(source),
                metadata=metadata if isinstance(metadata, dict) else {})
            if isinstance(cell.get("id"), str) and re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", cell["id"]) \
                    and cell["id"] not in ids:
                new.id = cell["id"]
            ids.add(new.id)
            cells.append(new)
        nb.cells, nb.nbformat, nb.nbformat_minor = cells, 4, max(5, nb.get("nbformat_minor", 5))
        return nb, resources


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells, for any mix of deleted, retyped and renamed cells.

    A graded cell whose id the student changed: nbgrader drops the unknown id but leaves the cell
    marked graded, then fails on it when it puts missing cells back; metadata edited by hand
    (points "two") fails the whole notebook. Here such a cell becomes an ordinary cell of the
    student's, and the original is put back and graded. A missing grade cell goes back right before
    the nearest cell below it in the source that the submission still has, so that whatever the
    student wrote above runs first: nbgrader's own goes after the one right above it, and fails
    (KeyError) when that one is missing too."""

    def preprocess_cell(self, cell, resources, index):
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if "nbgrader" in cell.metadata and "grade_id" in cell.metadata.nbgrader:
                MetadataValidator().validate_cell(cell)
        except (ValidationError, KeyError, ValueError, TypeError, AttributeError) as e:
            # Metadata edited by hand (points "two", a flag "yes"), which would fail the whole notebook.
            self.log.warning("Cell %s: its nbgrader metadata is broken (%s): it is graded as a cell of the "
                             "student's own, and the original is put back", index, e)
            cell.metadata.nbgrader = {}
        if "nbgrader" in cell.metadata and "grade_id" not in cell.metadata.nbgrader:
            del cell.metadata["nbgrader"]
        return cell, resources

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source = {cell.name: cell for cell in source_nb.source_cells}
        order = list(source)
        solutions = {cell.name for cell in source_nb.solution_cells}

        def position(grade_id: str) -> int | None:
            return next((i for i, cell in enumerate(nb.cells) if (is_grade(cell) or is_solution(cell))
                         and cell["metadata"]["nbgrader"].get("grade_id") == grade_id), None)

        for grade_cell in sorted(source_nb.grade_cells, key=lambda cell: order.index(cell.name)):
            if position(grade_cell.name) is not None:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", grade_cell.name)
            below = (position(name) for name in order[order.index(grade_cell.name) + 1:])
            anchor = next((i for i in below if i is not None), len(nb.cells))
            nb.cells.insert(anchor, self.missing_cell_transform(
                source[grade_cell.name], grade_cell.max_score, is_solution=grade_cell.name in solutions))
        return nb, resources


class WrapOutputs(NbGraderPreprocessor):
    """Feedback pages whose outputs wrap at the page's width: an audit's message is one long line,
    and its second half, how to find the bug, would sit off-screen."""

    # The feedback exporter hands each of its preprocessors this setting (nbgrader's GetGrades takes it
    # likewise): taken, so that the log shows no warning of an unknown option.
    display_data_priority = List().tag(config=True)
    css = ("div.output_area pre, div.output_subarea pre, div.output_text pre "
           "{white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: normal;}")

    def preprocess(self, nb, resources):
        resources.setdefault("inlining", {}).setdefault("css", []).append(self.css)
        return nb, resources
