"""Every hidden check, called directly (no runner), under 20 seeds: the reference and the correct
alternatives pass every check under all of them, and every mutant fails each check its matrix entry
names under all of them, with its message. A check whose outcome depends on the seed would make a
flaky grade. (That a mutant keeps the other cells is proven at the grading seeds, by test_matrix.)
Each check runs as the runner's child does, from its job: its collect pickled by value with the
helpers it calls. The cases run in worker processes, one per core, a fresh one per case."""
import io
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor

import cloudpickle
import pytest
import torch
from conftest import ASSIGNMENTS, assignment_params

from autograder.audit import checks, collect_safely, job, judged
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


def wrong_verdicts(name: str, mutant_name: str) -> list[str]:
    """Every (cell, seed) where a check's verdict on `mutant` differs from what its matrix entry says."""
    torch.set_num_threads(1)  # one case per core
    # Output goes where the runner's goes at grading: a log file already longer than any size limit
    # a check sets (a swallowing save's print once failed there, and passed for the save's error).
    log = tempfile.TemporaryFile()
    log.write(b"\n" * 2**20)
    log.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    mutant = next(m for m in mutants(name) if m.name == mutant_name)
    fns = namespace(name, code(name, mutant))
    registry = checks()
    wrong = []
    for cell, check in audit_cells(name).items():
        if mutant.fails and cell not in mutant.fails:
            continue
        for seed in SEEDS:
            needs, collect, _ = cloudpickle.loads(job(registry[check], seed).split(b"\n", 1)[1])
            message = judged(registry[check], roundtrip(collect_safely(needs, collect, fns, seed)), seed)
            if cell in mutant.fails:
                if message is None or mutant.fails[cell] not in message:
                    wrong.append(f"{cell} seed {seed}: should fail saying {mutant.fails[cell]!r}, got {message!r}")
            elif message is not None:
                wrong.append(f"{cell} seed {seed}: should pass, got {message!r}")
    return wrong


@pytest.fixture(scope="module")
def seed_runs(request):
    """wrong_verdicts of every case of the seed test this session selected, one process per core."""
    cases = [(item.callspec.params["name"], item.callspec.params["mutant"].name) for item in request.session.items
             if getattr(item, "originalname", None) == "test_check_outcomes_hold_under_20_seeds"]
    # A fresh process per case, as grading runs each check in a fresh one: no case inherits what an
    # earlier one left in its process (two swallowing-save mutants passed alone, failed after others).
    with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        return dict(zip(cases, pool.map(wrong_verdicts, *zip(*cases))))


@pytest.mark.parametrize("name, mutant", assignment_params(
    [(n, m) for n in ASSIGNMENTS for m in mutants(n) if m.name != BLANK and not m.tampers]))
def test_check_outcomes_hold_under_20_seeds(seed_runs, name, mutant):
    wrong = seed_runs[name, mutant.name]
    assert not wrong, f"{mutant.name} ({mutant.why}):\n" + "\n".join(wrong[:10])


def test_a_mutant_edit_that_no_longer_applies_is_an_error():
    stale = Mutant("stale", "an edit the reference no longer contains",
                   edits={"train_step": [("optimizer.zero_grad(set_to_none=True)", "")]})
    with pytest.raises(ValueError, match="exactly once"):
        code("ps01_training_loop", stale)
