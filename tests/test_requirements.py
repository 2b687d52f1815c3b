"""Every requirement a task states is graded: each id the notebook shows the student (`**R2.3**`)
has a mutant in the matrix that breaks it and must lose a grade cell (test_matrix proves it does,
through real nbgrader), and each bug the lesson is about fails a visible test."""
import pytest
from conftest import ASSIGNMENTS, assignment_params

from autograder.mutants import mutants, requirements, visible_cells

PARAMS = assignment_params([(n,) for n in ASSIGNMENTS])


@pytest.mark.parametrize("name", PARAMS)
def test_every_stated_requirement_has_a_mutant_that_loses_a_cell(name):
    stated = requirements(name)
    assert stated, "the tasks state their requirements with ids"
    broken = {rid for m in mutants(name) if m.fails for rid in m.breaks}
    assert not set(stated) - broken, f"requirements no mutant breaks: {sorted(set(stated) - broken, key=stated.get)}"


@pytest.mark.parametrize("name", PARAMS)
def test_mutants_break_only_requirements_the_text_states(name):
    stated = requirements(name)
    for m in mutants(name):
        assert set(m.breaks) <= set(stated), f"{m.name} breaks {sorted(set(m.breaks) - set(stated))}, stated nowhere"
        if m.breaks:
            assert m.fails, f"{m.name} breaks {m.breaks} but must lose no cell"


@pytest.mark.parametrize("name", PARAMS)
def test_the_lessons_own_bugs_fail_a_visible_test(name):
    headline = [m for m in mutants(name) if m.headline]
    assert headline, "the matrix marks the bugs the lesson is about"
    visible = set(visible_cells(name))
    for m in headline:
        assert set(m.fails) & visible, f"{m.name} ({m.why}) must fail a visible test, not only {sorted(m.fails)}"

