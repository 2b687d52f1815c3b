"""nbgrader preprocessor that judges hidden audit cells outside the student's kernel.

Configured in nbgrader_config.py in place of nbgrader's Execute. While the kernel runs the notebook,
each hidden `audit("...")` cell only records the student's functions; afterwards this grader process
runs them in a fresh runner and judges the results itself, then writes each audit cell's output:
a line on stdout for a pass, an error for a failure. nbgrader scores the cell from that output.
"""
import os
import re
import tempfile
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade

from autograder.audit import AUDIT_DIR_ENV, run_audits

AUDIT_CALL = re.compile(r"""^\s*audit\(\s*["']([\w.]+)["']\s*\)""", re.M)


def audit_names(cell: NotebookNode) -> list[str]:
    """The checks a grade cell runs, in order (empty for cells that are not audit cells)."""
    if cell.cell_type != "code" or not is_grade(cell):
        return []
    return AUDIT_CALL.findall(cell.source)


def verdict_output(name: str, message: str | None) -> NotebookNode:
    if message is None:
        return NotebookNode(output_type="stream", name="stdout", text=f"{name}: passed\n")
    return NotebookNode(output_type="error", ename="AuditFailure", evalue=message,
                        traceback=[f"AuditFailure ({name}): {message}"])


class AuditedExecute(Execute):
    """nbgrader's Execute, then trusted judging of every hidden audit cell."""

    def preprocess(self, nb, resources, *args, **kwargs):
        with tempfile.TemporaryDirectory(prefix="audit-") as folder:
            previous = os.environ.get(AUDIT_DIR_ENV)
            os.environ[AUDIT_DIR_ENV] = folder  # the kernel inherits it and only records
            try:
                nb, resources = super().preprocess(nb, resources, *args, **kwargs)
            finally:
                if previous is None:
                    os.environ.pop(AUDIT_DIR_ENV, None)
                else:
                    os.environ[AUDIT_DIR_ENV] = previous
            cells = [(cell, audit_names(cell)) for cell in nb.cells]
            cells = [(cell, names) for cell, names in cells if names]
            verdicts = run_audits(Path(folder), [n for _, names in cells for n in names])
            for cell, names in cells:
                cell.outputs = [verdict_output(n, verdicts[n]) for n in names]
                failed = [n for n in names if verdicts[n]]
                self.log.info("audit %s: %s", ", ".join(names), "FAILED " + ", ".join(failed) if failed else "passed")
        return nb, resources
