"""Instructor-only: the audit checks hidden cells call, reference solutions, mutants and grading tools.

Never shipped to students. A hidden cell runs `from autograder import audit; audit("ps01.zero_grad")`.
"""
from autograder.audit import audit

__all__ = ["audit"]
