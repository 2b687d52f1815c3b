"""The grading demo: every sample submission of every assignment autograded by nbgrader.

Builds a scratch course root (build/demo), generates each assignment from source/, submits the
matrix (reference, blank release, buggy mutants, tampering and correct alternatives), autogrades
them with `autograder grade` (nbgrader's autograde, one worker per core, in the sandbox), and prints
each submission's score from the gradebook beside what the matrix says it must be, whether a
visible test caught it (`!` marks the lesson's own bugs, which one must), and how many of the
requirements the tasks state have a mutant and were caught (the mutant lost a cell).
Then plays one assignment's round trip through nbgrader's exchange (`autograder.term`).
Exits 1 if any grade differs from the matrix or a submission could not be autograded.
"""
import os
import sys
import time

from autograder import classroom, grading, term
from autograder.mutants import expected_scores, grade_cells, mutants, requirements, submission, visible_cells
from autograder.notebooks import ROOT, assignments


def main() -> int:
    names = assignments()
    root = grading.scratch_course(ROOT / "build" / "demo", names)
    wrong = 0
    for name in names:
        matrix = mutants(name)
        for m in matrix:
            grading.submit(root, name, m.name, submission(name, m, root))
        start = time.perf_counter()
        outcomes = classroom.grade(root, name, progress=False)
        seconds = time.perf_counter() - start
        failed = [o.student for o in outcomes if not o.ok]
        wrong += len(failed)
        got, points, visible = grading.scores(root, name), grade_cells(name), visible_cells(name)
        stated = requirements(name)
        with_mutant = {r for m in matrix for r in m.breaks}
        caught = {r for m in matrix for r in m.breaks if any(got[m.name][c] < p for c, p in points.items())}
        print(f"\n{name}: {len(matrix)} submissions autograded by nbgrader in {seconds:.0f} s "
              f"by {os.cpu_count()} workers ({seconds / len(matrix):.1f} s per submission)"
              + (f"; nbgrader failed on: {', '.join(failed)}" if failed else ""))
        print(f"requirements stated: {len(stated)}, with a mutant: {len(with_mutant & set(stated))}, "
              f"caught: {len(caught & set(stated))}")
        print(f"{'submission':38} {'score':>7}  {'matrix':6}  {'visible':7}  cells lost")
        for m in matrix:
            expected = expected_scores(name, m)
            ok = got[m.name] == expected
            wrong += not ok
            lost = [c for c, p in points.items() if got[m.name][c] < p]
            shown = "none" if not lost else "all" if len(lost) == len(points) else ", ".join(lost)
            total = f"{sum(got[m.name].values()):g}/{sum(points.values()):g}"
            seen = ("yes" if set(lost) & set(visible) else "no") + ("!" if m.headline else "")
            wrong += m.headline and not set(lost) & set(visible)
            print(f"{m.name:38} {total:>7}  {'ok' if ok else 'WRONG':6}  {seen:7}  {shown}")
    print(f"\ngradebook: {root / 'gradebook.db'}; feedback-ready notebooks: {root / 'autograded'}")
    print("every grade matches the matrix" if not wrong else f"{wrong} submission(s) differ from the matrix")
    term.main()
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
