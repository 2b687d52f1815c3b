"""Every hidden check, in process, under 20 seeds: the reference and the correct alternatives pass
under all of them, and every mutant fails exactly the checks its matrix entry names, under all of
them, with its message. A check whose outcome depends on the seed would make a flaky grade."""
import io

import pytest
import torch
from conftest import ASSIGNMENTS, assignment_params

from autograder.audit import checks, collect_safely, judged
from autograder.mutants import BLANK, Mutant, audit_cells, code, mutants
from autograder.notebooks import namespace

SEEDS = range(20)


def roundtrip(rec: dict) -> dict:
    """What the judge sees: the record as saved by the runner and loaded with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(rec, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name", assignment_params([(n,) for n in ASSIGNMENTS]))
def test_hidden_cells_run_every_check_of_the_assignment_once(name):
    cells = audit_cells(name)
    prefix = name[:4] + "."
    assert sorted(cells.values()) == sorted(n for n in checks() if n.startswith(prefix))


@pytest.mark.parametrize("name, mutant", assignment_params(
    [(n, m) for n in ASSIGNMENTS for m in mutants(n) if m.name != BLANK and not m.tampers]))
def test_check_outcomes_hold_under_20_seeds(name, mutant):
    fns = namespace(name, code(name, mutant))
    registry = checks()
    wrong = []
    for cell, check in audit_cells(name).items():
        for seed in SEEDS:
            message = judged(registry[check], roundtrip(collect_safely(registry[check], fns, seed)), seed)
            if cell in mutant.fails:
                if message is None or mutant.fails[cell] not in message:
                    wrong.append(f"{cell} seed {seed}: should fail saying {mutant.fails[cell]!r}, got {message!r}")
            elif message is not None:
                wrong.append(f"{cell} seed {seed}: should pass, got {message!r}")
    assert not wrong, f"{mutant.name} ({mutant.why}):\n" + "\n".join(wrong[:10])


def test_a_mutant_edit_that_no_longer_applies_is_an_error():
    stale = Mutant("stale", "an edit the reference no longer contains",
                   edits={"train_step": [("optimizer.zero_grad(set_to_none=True)", "")]})
    with pytest.raises(ValueError, match="exactly once"):
        code("ps01_training_loop", stale)
