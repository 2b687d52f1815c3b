"""The audit pipeline through the real runner process: recorded functions, one forked child per
check, records judged in this process. Student code that kills its process or forges another
check's record fails that check and nothing else."""
import tempfile
from pathlib import Path

import pytest

from autograder.audit import checks, judged, record, run_audits
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


PS01_CHECKS = [name for name in checks() if name.startswith("ps01.")]


def audit_all(fns: dict) -> dict[str, str | None]:
    """Every ps01 check of `fns` through one real runner process."""
    with tempfile.TemporaryDirectory() as folder:
        for name in PS01_CHECKS:
            record(checks()[name], fns, Path(folder))
        return run_audits(Path(folder), PS01_CHECKS)


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


@pytest.mark.parametrize("rec", [["not", "a", "dict"], {"calls": "garbage"}, {}])
def test_malformed_records_fail_and_never_crash_the_judge(rec):
    assert "could not interpret" in judged(checks()["ps01.zero_grad"], rec, 0)
