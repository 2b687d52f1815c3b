"""The audit pipeline through the real runner process: recorded functions, one forked child per
check, records judged in this process. Student code that kills its process or forges another
check's record fails that check and nothing else. At grading, one sandboxed zygote serves student
after student: nothing a student's code leaves behind reaches the next one."""
import importlib
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from autograder import sandbox
from autograder.audit import LENT, checks, judged, run_audits
from autograder.hostile import LEAVE_BEHIND, LEFT_BEHIND
from autograder.notebooks import namespace
from autograder.ps01 import loss_change

pytestmark = pytest.mark.audit
NAME = "ps01_training_loop"
FORGER = '''
import os, sys, torch
from pathlib import Path

def gradient_flow(model):
    """Correct, and on the side forges a passing loss_decrease record wherever it can write."""
    histories = ([2.0, 1.5, 0.5], [1.0, 1.25], [0.8], [3.0, 2.0, 2.5, 1.2, 0.9])
    forged = {"returned": [{"type": "float", "value": (h[0] - h[-1]) / h[0]} for h in histories]}
    out = Path(sys.argv[2])
    for place in (out, out / "staging-ps01.loss_decrease"):
        place.mkdir(exist_ok=True)
        torch.save(forged, place / "ps01.loss_decrease.pt")
    return {n: None if p.grad is None else p.grad.norm().item() for n, p in model.named_parameters()}

def loss_decrease(history):
    os._exit(0)  # leaves no record of its own
'''

# Correct, and leaves behind what could reach the next student served by the same zygote.
LEAVER = ("def gradient_flow(model):\n" + textwrap.indent(LEAVE_BEHIND, "    ")
          + "    return {n: None if p.grad is None else p.grad.norm().item() for n, p in model.named_parameters()}\n")
# Correct if nothing of an earlier student is left. Its sandbox holds bwrap (pid 1), the zygote (2),
# this student's runner (the parent) and itself.
WITNESS = (LEFT_BEHIND + "\n\ndef gradient_flow(model):\n    left_behind((os.getppid(), os.getpid()))\n"
           + "    return {n: None if p.grad is None else p.grad.norm().item() for n, p in model.named_parameters()}\n")
ENVIRONMENT = '''
import os

def gradient_flow(model):
    raise RuntimeError("environment: " + " ".join(sorted(os.environ)))
'''
# Lists, during an audit, the files of the package it can read.
READER = '''
import os, autograder

def gradient_flow(model):
    raise RuntimeError("lent: " + " ".join(sorted(os.listdir(os.path.dirname(autograder.__file__)))))
'''
KILLER = '''
import os, signal

def gradient_flow(model):
    os.kill(-1, signal.SIGKILL)  # every process it may signal: its runner, which holds its records, and the zygote
'''

PS01_CHECKS = [name for name in checks() if name.startswith("ps01.")]


def audit_all(fns: dict, confine: bool = False) -> dict[str, str | None]:
    """Every ps01 check of `fns` through one real runner process (or, if `confine`, a fork of the zygote)."""
    return run_audits(fns, PS01_CHECKS, confine=confine)


def student(code: str) -> dict:
    fns = namespace(NAME)
    exec(code, fns)
    return fns


def zygote_pid() -> int:
    return importlib.import_module("autograder.audit").zygote().process.pid


def test_reference_passes_every_check_through_the_runner():
    assert audit_all(namespace(NAME)) == {name: None for name in PS01_CHECKS}


def test_a_forged_record_and_a_dying_check_fail_only_their_own_check():
    fns = namespace(NAME)
    exec(FORGER, fns)
    verdicts = audit_all(fns)
    assert "exited (status 0) before the audit had its results: look for os._exit" in verdicts.pop("ps01.loss_decrease")
    assert verdicts == {name: None for name in verdicts}, "every other check still passes"


def test_a_function_missing_from_the_notebook_is_named():
    fns = namespace(NAME)
    del fns["fit"]
    verdicts = audit_all(fns)
    assert "fit is not defined" in verdicts["ps01.convergence"]
    assert verdicts["ps01.zero_grad"] is None


def test_nothing_a_student_leaves_in_the_zygote_reaches_the_next_student():
    assert audit_all(student(LEAVER), confine=True) == {name: None for name in PS01_CHECKS}
    first = zygote_pid()
    assert audit_all(student(WITNESS), confine=True) == {name: None for name in PS01_CHECKS}
    assert zygote_pid() == first, "both students were served by one zygote"


def test_a_student_who_kills_the_zygote_loses_only_their_own_checks():
    first = zygote_pid()
    verdicts = audit_all(student(KILLER), confine=True)
    assert all("ended without a result" in message for message in verdicts.values())  # their runner died too
    assert audit_all(namespace(NAME), confine=True) == {name: None for name in PS01_CHECKS}
    assert zygote_pid() != first, "a fresh zygote served the next student"


def test_a_check_reads_only_the_modules_lent_to_the_audit_never_the_mutants_or_the_corpus():
    message = audit_all(student(READER), confine=True)["ps01.gradient_flow"]
    lent = set(re.search(r"lent: ([^\n]*)", message)[1].split()) - {"__pycache__"}
    assert lent == {f"{name}.py" for name in LENT["autograder.runner"]}, message
    assert not lent & {"mutants", "hostile.py", "grading.py", "classroom.py"}


def test_a_check_sees_nothing_of_the_graders_environment_but_what_it_may():
    shown = audit_all(student(ENVIRONMENT), confine=True)["ps01.gradient_flow"]
    names = re.search(r"environment: (.*)", shown)[1].split()
    graders = [n for n in names if n in os.environ]  # not set by torch or the sandbox
    assert "PATH" in graders and all(sandbox.PASSED.fullmatch(n) or n in sandbox.ENV for n in graders), graders


@pytest.mark.parametrize("rec", [["not", "a", "dict"], {"calls": "garbage"}, {}])
def test_malformed_records_fail_and_never_crash_the_judge(rec):
    assert "could not interpret" in judged(checks()["ps01.zero_grad"], rec, 0)


@given(before=st.floats(1e-3, 1e3), after=st.floats(0, 1e5))
def test_a_loss_that_rose_is_told_as_rising_never_as_a_negative_decrease(before, after):
    told = loss_change(before, after)
    assert "-" not in told
    assert ("decrease" in told) == (after < before) and ("rose" in told) == (after > before), told


# Forks until the process limit stops it, prints how many, and with "hold" keeps them all.
FORKS = """import os, sys, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError:
    pass
print(n, flush=True)
if sys.argv[1] == "hold":
    time.sleep(60)
"""


# In a sandbox: a child forks until the limit and keeps them all; then the runner's way to start a
# check cannot start one, and says why.
RUNNER_AT_THE_LIMIT = """import os, time
from autograder.runner import in_child, why_no_result
ready, told = os.pipe()
if os.fork() == 0:
    try:
        while True:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
    except OSError:
        os.write(told, b"full")
        time.sleep(60)
os.read(ready, 4)
print(why_no_result(in_child(time.monotonic() + 5, lambda: None), 60))
"""


def test_a_check_that_cannot_start_for_the_process_limit_names_the_limit():
    cmd = sandbox.command([sys.executable, "-c", RUNNER_AT_THE_LIMIT], cwd=sandbox.AUTOGRADER, uid=sandbox.user_id(0))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=sandbox.environment({**os.environ, "PYTHONPATH": str(sandbox.AUTOGRADER.parent)}))
    assert f"fill the grading sandbox's limit ({sandbox.PROCESSES} processes and threads in all)" in done.stdout, \
        done.stdout + done.stderr


# Writes files of 60 MiB into a folder (argv[1]) until one fails, and prints how much it wrote and the error.
FILLER = """import os, sys
written = 0
try:
    for i in range(64):
        with open(f"{sys.argv[1]}/fill-{i}", "wb") as f:
            for _ in range(60):
                f.write(bytes(2**20))
                written += 2**20
except OSError as e:
    print(written // 2**20, e)
"""


def filled(folder: Path, own: Path) -> tuple[int, str]:
    """(MiB written, the error) of FILLER in a sandbox whose own folder is `own`, writing into `folder`;
    the sandbox's folder is then seen from outside as it was left."""
    box = sandbox.Sandbox([sys.executable, "-c", FILLER, str(folder)], cwd=sandbox.AUTOGRADER,
                          uid=sandbox.user_id(0), own=own, stdout=subprocess.PIPE, text=True)
    try:
        written, error = box.process.communicate(timeout=120)[0].split(" ", 1)
        seen = sum(f.stat().st_size for f in own.iterdir()) // 2**20  # after the sandbox has ended
    finally:
        box.close()
    assert seen == (int(written) if folder == own else 0)
    return int(written), error


def test_the_sandboxs_tmp_holds_its_limit_and_the_error_names_it(tmp_path):
    written, error = filled(Path("/tmp"), tmp_path / "own")
    assert sandbox.TMP_SIZE // 2**20 - 64 < written <= sandbox.TMP_SIZE // 2**20, written
    assert "No space left on device" in error and "MiB of files in /tmp" in sandbox.limit_hit(f"OSError: {error}")


def test_the_sandboxs_own_folder_holds_its_limit_in_memory_of_its_own(tmp_path):
    """Root or not, its folder is a tmpfs made in the sandbox: the host's disk gets none of it."""
    own = tmp_path / "own"
    written, error = filled(own, own)
    assert sandbox.FOLDER_SIZE // 2**20 - 64 < written <= sandbox.FOLDER_SIZE // 2**20, written
    assert "No space left on device" in error and "in the folder your code runs in" in sandbox.limit_hit(
        f"OSError: {error}")
    assert own.is_symlink() and not own.exists()  # closed: its memory freed
    assert sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file() and not f.is_symlink()) == 0


# Forks children that each keep 100 MiB in use.
HOGS = """import os, sys, time
for i in range(int(sys.argv[1])):
    if os.fork() == 0:
        block = bytearray(100 * 2**20)  # zero pages are not counted until written
        for at in range(0, len(block), 4096):
            block[at] = 1
        time.sleep(60)
        os._exit(0)
time.sleep(60)
"""


def test_the_watchdog_stops_the_largest_processes_while_all_together_are_past_the_limit(tmp_path):
    box = sandbox.Sandbox([sys.executable, "-c", HOGS, "6"], cwd=sandbox.AUTOGRADER, uid=sandbox.user_id(0),
                          own=tmp_path / "own", memory=350 * 2**20)
    try:
        deadline = time.monotonic() + 20
        while box.stopped < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # time to stop more, if it would
        alive = [p for p in box.processes() if Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    finally:
        box.close()
    # 3 of the 6 children fit in 350 MiB (the forking parent, the command itself, is not counted)
    assert box.stopped == 3 and len(alive) == 3, (box.stopped, alive)


def test_a_fork_bomb_in_one_sandbox_leaves_the_other_all_its_processes():
    """The kernels' sandbox full of processes, the audit runners' still has its own limit's worth."""
    boxes = [subprocess.Popen(sandbox.command([sys.executable, "-c", FORKS, mode], cwd=sandbox.AUTOGRADER,
                                              uid=sandbox.user_id(index)),
                              stdout=subprocess.PIPE, text=True)
             for index, mode in [(1, "hold"), (0, "count")]]
    try:
        counts = [int(box.stdout.readline()) for box in boxes]
    finally:
        for box in boxes:
            box.kill()
            box.wait()
    assert all(sandbox.PROCESSES - 20 < n < sandbox.PROCESSES for n in counts), counts
