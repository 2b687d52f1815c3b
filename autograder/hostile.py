"""Hostile and broken submissions of ps01, each with the grade it must get: the grading corpus.

Each case starts from a submission of the mutant matrix (the reference unless said) and breaks it
the way a real class does: code that never ends (or ignores the interrupt), eats memory, forks
without end, kills its kernel, deletes, retypes or renames graded cells or edits their metadata by
hand, edits locked test cells, breaks the notebook's schema, floods its output, writes or connects
outside its folder, or tampers with its kernel to fake a pass; or, from a graded function during its
audit, reads what the grader could leave in reach (each route of `LEAK_ROUTES`) or forges the audit's
records. `fails` names every grade cell it must lose, with a phrase of the message it must show,
beside those its base submission loses; every other grade cell keeps its points.
"""
from dataclasses import dataclass, field
from typing import Callable

import nbformat
from nbformat.notebooknode import NotebookNode

from autograder.audit import checks
from autograder.ps01 import LOSS_HISTORIES

NAME = "ps01_training_loop"
CHECK_FUNCTIONS = sorted({f.__name__ for c in checks().values() for f in (c.collect, c.judge)})
HELPERS = ["test_learning_helpers", "audit_gradient_flow", "audit_weight_change", "audit_loss_decrease"]
# A solution cell that defines nothing: its tests, its audits and the milestone that uses it fail.
MISSING_HELPERS = {"test_learning_helpers": "NameError", "test_xor_milestone": "NameError",
                   **{c: "is not defined" for c in HELPERS[1:]}}
AUDITS = ["audit_zero_grad", "audit_step_loss", "audit_every_parameter_learns", "audit_one_step_per_batch",
          "audit_epoch_mean", "audit_fit_history", "audit_convergence", *HELPERS[1:]]


# What a student's code can leave for the next student graded by the same zygote: a file in /tmp, a
# file in the zygote's folder (two levels above the cwd of the kernel and of the audit runner: the
# session folder of a student lies in it), a process that outlives its parent. Statements of Python.
LEAVE_BEHIND = """import os, time
from pathlib import Path
Path("/tmp/planted").write_text("for the next student")
(Path.cwd().parent.parent / "planted").write_text("for the next student")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(120)
    os._exit(0)
"""
# Defines left_behind(mine), which fails if anything of an earlier student is left: a process but the
# sandbox's first two (bwrap, the zygote) and `mine`, or a file planted as above.
LEFT_BEHIND = """import os
from pathlib import Path


def left_behind(mine):
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, 2, *mine)]
    files = [str(p) for p in (Path("/tmp/planted"), Path.cwd().parent.parent / "planted") if p.exists()]
    if others or files:
        raise RuntimeError(f"left by an earlier student: processes {others}, files {files}")
"""


@dataclass(frozen=True)
class Forbidden:
    """What a submission must not reach: the course root, another student's folder, the grader's
    home, a port on the grading host."""
    course_root: str
    other_student: str
    home: str
    port: int


Change = Callable[[NotebookNode, Forbidden], None]  # edits a submission in place


@dataclass(frozen=True)
class Hostile:
    name: str
    why: str
    change: Change
    fails: dict[str, str] = field(default_factory=dict)  # beyond what its base loses
    base: str = "reference"  # the mutant of ps01's matrix it starts from


def cell(nb: NotebookNode, grade_id: str) -> NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def prepend(grade_id: str, code: str) -> Change:
    def change(nb, forbidden):
        cell(nb, grade_id).source = code + cell(nb, grade_id).source
    return change


def scratch(code: str) -> Change:
    """A cell of the student's own at the end of the notebook."""
    def change(nb, forbidden):
        nb.cells.append(nbformat.v4.new_code_cell(code))
    return change


def delete(*grade_ids: str) -> Change:
    def change(nb, forbidden):
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return change


def rename(grade_id: str, new: str) -> Change:
    def change(nb, forbidden):
        cell(nb, grade_id).metadata.nbgrader["grade_id"] = new
    return change


def unmark(grade_id: str) -> Change:
    """The cell retyped by hand: the same code in a plain cell, nbgrader's metadata gone."""
    def change(nb, forbidden):
        del cell(nb, grade_id).metadata["nbgrader"]
    return change


def retype(grade_id: str, cell_type: str) -> Change:
    def change(nb, forbidden):
        old = cell(nb, grade_id)
        new = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
               "raw": nbformat.v4.new_raw_cell}[cell_type](old.source, metadata=old.metadata)
        nb.cells[nb.cells.index(old)] = new
    return change


def metadata(grade_id: str, **changes) -> Change:
    def change(nb, forbidden):
        cell(nb, grade_id).metadata.nbgrader.update(changes)
    return change


def replace(grade_id: str, code: str) -> Change:
    def change(nb, forbidden):
        cell(nb, grade_id).source = code
    return change


def edit(grade_id: str, old: str, new: str) -> Change:
    def change(nb, forbidden):
        assert old in cell(nb, grade_id).source, f"{old!r} is not in {grade_id}"
        cell(nb, grade_id).source = cell(nb, grade_id).source.replace(old, new)
    return change


def leaks(found: str) -> Change:
    """loss_decrease stays correct in the notebook; during its audit it runs `found` (statements that
    set `found`) and raises it, so the audit's feedback shows what its process could reach."""
    return edit("learning_helpers", "    return (history[0] - history[-1]) / history[0]\n",
                "    import sys\n"
                "    if 'autograder.audit' in sys.modules:  # the audit's process, not the notebook's kernel\n"
                + "".join(f"        {line}\n" for line in found.strip().splitlines())
                + "        raise RuntimeError(f'found: {found}')\n"
                "    return (history[0] - history[-1]) / history[0]\n")


# Each reads, from inside a graded function during its audit, what a hidden check could leave in reach.
# The words a check's code holds are split, so that the notebook on disk does not hold them.
LEAK_ROUTES = {
    "files": """import os, autograder
folder = os.path.dirname(autograder.__file__)
names = sorted(os.listdir(folder))
found = f"files {names}, judges in " + str([n for n in names if n.endswith('.py')
                                         and 'def ' + 'judge_' in open(os.path.join(folder, n)).read()])""",
    "sys_modules": "found = sorted(m for m in sys.modules if m.split('.')[0] == 'autograder')",
    "gc_objects": """import gc, types
objects = gc.get_objects()
found = (str(sorted({o.__qualname__ for o in objects if isinstance(o, types.FunctionType)
                     and (o.__module__ or '').startswith('autograder.ps')}))
         + ', checks ' + str([o for o in objects if type(o).__name__ == 'Ch' + 'eck']))""",
    "inspect_getsource": """import inspect
found, frame = [], sys._getframe(1)
while frame:
    try:
        inspect.getsource(frame.f_code)
        found.append(frame.f_code.co_name + ': source')
    except (OSError, TypeError) as e:
        found.append(frame.f_code.co_name + ': ' + type(e).__name__)
    frame = frame.f_back""",
    "code_constants": """import types
code = sys._getframe(1).f_code
found = [code.co_name, code.co_filename.split('/')[-1], code.co_names,
         [c for c in code.co_consts if not isinstance(c, types.CodeType)]]""",
    "environment": "import os\nfound = sorted(os.environ.items())",
    # its own memory, what it inherited included, for the names of the course's collects and judges
    # (given reversed, and read back after the search, so that the search does not find them here)
    "memory": """import ctypes, re
names = set()
for line in open('/proc/self/maps'):
    span, perms, *rest = line.split()
    if perms.startswith('rw') and (len(rest) == 3 or rest[3] in ('[heap]', '[stack]')):  # objects live here
        start, end = (int(a, 16) for a in span.split('-'))
        names |= set(re.findall(rb'(?:collect|judge)_[a-z_]+', ctypes.string_at(start, end - start)))
course = {name[::-1] for name in %r}
found = sorted(n.decode() for n in names if n.decode() in course)""" % ([name[::-1] for name in CHECK_FUNCTIONS],),
    "proc": """import os
found = []
for pid in sorted((p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()), key=int):
    row = [open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')[-2:][0].decode()]
    for part in ('environ', 'mem', 'fd'):
        try:
            os.listdir(f'/proc/{pid}/fd') if part == 'fd' else open(f'/proc/{pid}/{part}', 'rb').close()
            row.append(part)
        except OSError as e:
            row.append(type(e).__name__)
    found.append(row)""",
}


# During gradient_flow's audit, a process of its own writes, for the rest of the audits, a record of
# loss_decrease's that would pass (its inputs are known) wherever the next check's record goes.
FORGES_ANOTHER_CHECK = """import os, sys, time
from pathlib import Path
if 'autograder.audit' in sys.modules and os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        import torch
        forged = {'returned': [{'type': 'float', 'value': (h[0] - h[-1]) / h[0]} for h in %r]}
        out, name = Path.cwd().parent / 'verdicts', 'ps01.loss_decrease'
        for _ in range(30_000):
            for place in (out, out / f'staging-{name}'):
                try:
                    torch.save(forged, place / f'{name}.pt')
                except Exception:  # its folder is not there yet
                    pass
            time.sleep(0.001)
    os._exit(0)
"""
# Workers of its own (as a DataLoader's) that hold 900 MiB each at once, 4.4 GiB in all; as a
# DataLoader does, it raises when one of them was killed.
MEMORY_WORKERS = """import os, signal, time
workers = []
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        block = bytearray(900 * 2**20)
        block[::4096] = bytes(len(block[::4096]))  # written to: in use
        time.sleep(3)
        os._exit(0)
    workers.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in workers]
if -signal.SIGKILL in codes:
    raise RuntimeError(f'a worker was killed: exit codes {codes}')
"""
# No zero_grad, and after each step the log's record of what it applied rewritten to this batch's gradient.
FORGES_THE_LOG = """def train_step(model, loss_fn, optimizer, xb, yb):
    named = list(model.named_parameters())
    own = torch.autograd.grad(nn.functional.cross_entropy(model(xb), yb), [p for _, p in named])
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    if hasattr(optimizer, 'log'):
        optimizer.log.step_grads[-1] = {n: g.clone() for (n, _), g in zip(named, own)}
    return loss.item()
"""

# What each route shows: of the grader, only the package the runner is lent (no check in it) and the
# one check's collect (pickled by value, so no source file behind it); no judge, other check or seed.
LEAKED = {
    "files": "found: files ['__init__.py', '__pycache__', 'audit.py', 'instrument.py', 'problems.py', "
             "'recorder.py', 'runner.py', 'sandbox.py', 'zygote.py'], judges in []",
    "sys_modules": "found: ['autograder', 'autograder.audit', 'autograder.instrument', 'autograder.recorder', "
                   "'autograder.sandbox', 'autograder.zygote']",
    "gc_objects": "found: ['collect_loss_decrease', 'collect_loss_decrease.<locals>.<listcomp>'], checks []",
    "inspect_getsource": "found: ['<listcomp>: OSError', 'collect_loss_decrease: OSError', 'collect_safely: source'",
    "code_constants": "found: ['<listcomp>', 'ps01.py', ('describe', 'list'), ['loss_decrease']]",
    "environment": "('HOME', '/tmp/home'), ('JPY_PARENT_PID', '1'), ('LANG', ",
    "memory": "found: ['collect_loss_decrease']",  # and none of the grader's secrets: test_hostile
    # bwrap's init, the zygote and this student's runner: none lets its environment, memory or files be read
    "proc": "found: [" + ", ".join(["['--serve', 'PermissionError', 'PermissionError', 'PermissionError']"] * 3) + "]",
}


def schema_broken(nb: NotebookNode, forbidden: Forbidden) -> None:
    for i, one in enumerate(nb.cells):
        one["id"] = f"cell {i}"
        one["collapsed_by_another_editor"] = True


def both(*changes: Change) -> Change:
    def change(nb, forbidden):
        for one in changes:
            one(nb, forbidden)
    return change


def outside(nb: NotebookNode, forbidden: Forbidden) -> None:
    """A cell that tries to write and read where a submission must not, and to reach the host."""
    root, other, home, port = forbidden.course_root, forbidden.other_student, forbidden.home, forbidden.port
    scratch(
        "import os, socket\n"
        "reached = []\n"
        f"for path in [{root!r} + '/evil.txt', {root!r} + '/source/evil.txt', {other!r} + '/evil.txt',\n"
        f"             '../../../evil.txt', {home!r} + '/evil.txt']:\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('written by a submission')\n"
        "        reached.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        f"for path in [{root!r} + '/gradebook.db', {root!r} + '/source/{NAME}/{NAME}.ipynb']:\n"
        "    try:\n"
        "        open(path, 'rb').read(16)\n"
        "        reached.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'a submission got out')\n"
        "    reached.append('network')\n"
        "except OSError:\n"
        "    pass\n"
        "print('reached:', reached)\n")(nb, forbidden)


HOSTILE = [
    Hostile("syntax_error", "a syntax error in the last solution cell",
            replace("learning_helpers", "def gradient_flow(model)\n    return {}\n"),
            fails=MISSING_HELPERS),
    Hostile("never_ends", "a loop that never ends at the top of a solution cell",
            prepend("learning_helpers", "while True:\n    pass\n"),
            fails=MISSING_HELPERS),
    Hostile("ignores_interrupt", "a cell that ignores the interrupt and never ends: its kernel is stopped",
            prepend("learning_helpers", "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                    "time.sleep(10**6)\n"),
            fails={"test_learning_helpers": "did not stop when interrupted",
                   "test_xor_milestone": "did not stop when interrupted",
                   **{c: "Nothing was recorded" for c in HELPERS[1:]}}),
    Hostile("memory_hog", "allocates until memory runs out",
            prepend("learning_helpers", "hog = [bytearray(2**28) for _ in range(256)]\n"),
            fails=MISSING_HELPERS),
    Hostile("memory_in_all", "workers that hold 4.4 GiB together, each within the per-process limit",
            prepend("learning_helpers", MEMORY_WORKERS),
            fails=MISSING_HELPERS),
    Hostile("memory_in_all_in_an_audit", "the same workers, started by a graded function during its audit",
            edit("learning_helpers", "def loss_decrease(history):\n", "def loss_decrease(history):\n"
                 "    import sys\n"
                 "    if 'autograder.audit' in sys.modules:  # the audit's process, not the notebook's kernel\n"
                 + "".join(f"        {line}\n" for line in MEMORY_WORKERS.splitlines())),
            fails={"audit_loss_decrease": "memory in use by all the processes of your code together"}),
    # Its children hold every process the kernel's sandbox may have, while the last audits may still run
    # in a sandbox of their own, whose limit they do not touch; the next student of the zygote finds none.
    Hostile("fork_bomb", "forks until the process limit stops it, and keeps the children",
            scratch("import os, time\nchildren = []\ntry:\n    while True:\n        pid = os.fork()\n"
                    "        if pid == 0:\n            time.sleep(300)\n            os._exit(0)\n"
                    "        children.append(pid)\nexcept OSError as error:\n"
                    "    print(f'forked {len(children)}, then: {error}')\n")),
    Hostile("kernel_dies", "os._exit in a solution cell kills the kernel",
            prepend("learning_helpers", "import os\nos._exit(1)\n"),
            fails={"test_learning_helpers": "the kernel died", "test_xor_milestone": "the kernel died",
                   **{c: "Nothing was recorded" for c in HELPERS[1:]}}),
    # Its kernel dies with the sandbox once the zygote has exited, moments later (later on a loaded
    # machine, where the kernel could run a few more cells): it waits, so that its grade does not
    # depend on the machine's load.
    Hostile("kills_its_sandbox", "signals every process it can reach: the kernels' zygote, and the kernel with it",
            prepend("learning_helpers", "import os, signal, time\nos.kill(-1, signal.SIGKILL)\ntime.sleep(60)\n"),
            fails={"test_learning_helpers": "the kernel died", "test_xor_milestone": "the kernel died",
                   **{c: "Nothing was recorded" for c in HELPERS[1:]}}),
    Hostile("test_cells_deleted", "the visible test cells deleted: nbgrader puts them back and runs them",
            delete("test_train_step", "test_fit"), base="no_step"),
    Hostile("solution_cell_deleted", "a solution cell deleted: its functions are missing",
            delete("learning_helpers"),
            fails=MISSING_HELPERS),
    Hostile("solution_retyped_test_deleted", "the first solution typed again in a plain cell, its visible "
            "test cell deleted: the test goes back after the nearest cell above it and passes",
            both(unmark("train_step"), delete("test_train_step"))),
    Hostile("solution_and_its_cells_deleted", "the first solution cell deleted with its test and first audit: "
            "both go back, and every cell that needs train_step fails for want of it",
            delete("train_step", "test_train_step", "audit_zero_grad"),
            fails={c: "name 'train_step' is not defined" for c in ["test_train_step", "test_train_epoch", "test_fit",
                                                                    "test_xor_milestone", *AUDITS[3:7]]}
            | {c: "train_step is not defined: run the cell that defines it" for c in AUDITS[:3]}),
    Hostile("cells_retyped", "a solution cell made raw, a test cell made markdown: nbgrader retypes them",
            both(retype("train_epoch", "raw"), retype("test_train_epoch", "markdown")), base="no_step"),
    Hostile("metadata_edited", "nbgrader's metadata edited by hand: a test cell's points, a solution flag",
            both(metadata("test_train_step", points="two"), metadata("fit", solution="yes")), base="no_step"),
    Hostile("schema_broken", "cell ids with spaces and a field another editor added: nbformat's schema refuses "
            "the notebook, whose cells are rebuilt and graded", schema_broken),
    Hostile("grade_id_changed", "a visible test cell's id changed: the original is put back and graded",
            rename("test_train_step", "my_test"), base="no_step"),
    Hostile("locked_test_edited", "a locked test cell emptied: nbgrader restores it",
            replace("test_train_step", "pass\n"), base="no_step"),
    Hostile("output_flood", "prints a million lines and a 50 MB string",
            scratch("for i in range(10**6):\n    print(i)\nprint('x' * 50_000_000)\n")),
    Hostile("writes_and_connects_outside", "writes to the course, another student and home, reads the "
            "gradebook and source, connects to the host", outside),
    Hostile("tamper_ipython_hook", "an IPython input transformer turns every later audit call into a print",
            prepend("learning_helpers", "get_ipython().input_transformers_post.append(\n"
                    "    lambda lines: [line.replace('audit(', 'print(') for line in lines])\n"),
            fails={c: "Nothing was recorded" for c in AUDITS[7:]}),
    # In its kernel the patched step clears what it applied, so its visible tests pass there (unlike
    # no_zero_grad's); the audits run the functions where no patch reaches.
    Hostile("tamper_optimizer_methods", "no zero_grad, and SGD.step patched in the kernel to clear the gradients",
            both(edit("train_step", "    optimizer.zero_grad()\n", ""),
                 prepend("train_step", "_sgd_step = torch.optim.SGD.step\n\n\n"
                         "def _step_then_clear(self, closure=None):\n"
                         "    loss = _sgd_step(self, closure)\n"
                         "    for group in self.param_groups:\n"
                         "        for p in group['params']:\n"
                         "            p.grad = None\n"
                         "    return loss\n\n\n"
                         "torch.optim.SGD.step = _step_then_clear\n\n\n")),
            fails={"audit_zero_grad": "accumulate across steps", "audit_convergence": "correct training reaches"}),
    Hostile("tamper_always_equal", "loss_decrease returns first - last as a float whose == is always True",
            edit("learning_helpers", "return (history[0] - history[-1]) / history[0]",
                 "class Close(float):\n        def __eq__(self, other):\n            return True\n\n"
                 "    return Close(history[0] - history[-1])"),
            fails={"test_learning_helpers": "is 0.75", "audit_loss_decrease": "(first - last) / first"}),
    Hostile("tamper_assert_helpers", "patches torch.testing.assert_close and math.isclose to pass anything",
            prepend("learning_helpers", "import math\ntorch.testing.assert_close = lambda *a, **k: None\n"
                    "math.isclose = lambda *a, **k: True\n\n"), base="loss_decrease_absolute"),
    *(Hostile(f"leak_{route}", f"reads, from a graded function during its audit, {route.replace('_', ' ')}",
              leaks(code), fails={"audit_loss_decrease": LEAKED[route]}) for route, code in LEAK_ROUTES.items()),
    Hostile("forges_another_checks_record", "a process left by one audit writes a passing record for the next",
            edit("learning_helpers", "def gradient_flow(model):\n", "def gradient_flow(model):\n"
                 + "".join(f"    {line}\n" for line in (FORGES_ANOTHER_CHECK % (LOSS_HISTORIES,)).splitlines())),
            base="loss_decrease_absolute"),
    Hostile("forges_the_log", "no zero_grad, and the audit's log rewritten to show each batch's own gradient",
            replace("train_step", FORGES_THE_LOG), base="no_zero_grad",
            fails={c: "did not move by the gradients that optimizer.step() was given"
                   for c in ("audit_zero_grad", "audit_every_parameter_learns")}),
    Hostile("tamper_reads_hidden_tests", "reads the autograder's checks and the notebook on disk while it runs",
            scratch("import glob, autograder, os\n"
                    "found = {p: open(p).read() for p in glob.glob(os.path.dirname(autograder.__file__) + '/*.py')\n"
                    "         + glob.glob('*.ipynb')}\n"
                    "# the words are split so that this cell, in the notebook on disk, does not hold them\n"
                    "print({p: [w for w in ('def ' + 'judge', 'def ' + 'collect', 'CHECKS' + ' =') if w in text]\n"
                    "       for p, text in found.items()})\n")),
]
