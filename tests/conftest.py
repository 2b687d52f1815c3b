"""Shared by the per-assignment suites: every assignment's cases carry that assignment's mark."""
import pytest

from autograder.notebooks import assignments


def assignment_params(cases):
    """pytest.param for each (assignment, *rest), marked `ps01`, `ps02`, ... by its assignment."""
    return [pytest.param(*case, marks=getattr(pytest.mark, case[0][:4]),
                         id="-".join([case[0][:4], *(getattr(c, "name", str(c)) for c in case[1:])]))
            for case in cases]


ASSIGNMENTS = assignments()
