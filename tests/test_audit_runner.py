"""The audit pipeline through the real runner process: recorded functions, one forked child per
check, records judged in this process. Student code that kills its process or forges another
check's record fails that check and nothing else. At grading, one sandboxed zygote serves student
after student: nothing a student's code leaves behind reaches the next one."""
import importlib
import os
import re
import textwrap

import pytest

from autograder import sandbox
from autograder.audit import checks, judged, run_audits
from autograder.hostile import LEAVE_BEHIND, LEFT_BEHIND
from autograder.notebooks import namespace

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
    assert "ended without a result" in verdicts.pop("ps01.loss_decrease")
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


def test_a_check_sees_nothing_of_the_graders_environment_but_what_it_may():
    shown = audit_all(student(ENVIRONMENT), confine=True)["ps01.gradient_flow"]
    names = re.search(r"environment: (.*)", shown)[1].split()
    graders = [n for n in names if n in os.environ]  # not set by torch or the sandbox
    assert "PATH" in graders and all(sandbox.PASSED.fullmatch(n) or n in sandbox.ENV for n in graders), graders


@pytest.mark.parametrize("rec", [["not", "a", "dict"], {"calls": "garbage"}, {}])
def test_malformed_records_fail_and_never_crash_the_judge(rec):
    assert "could not interpret" in judged(checks()["ps01.zero_grad"], rec, 0)
