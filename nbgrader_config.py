"""nbgrader configuration of the course; the repo root is the course root."""
import os

from course.validation import configure

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "training-loops"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# SQLite beside this file by default; set COURSE_DB_URL for a shared gradebook (e.g. PostgreSQL).
c.CourseDirectory.db_url = os.environ.get(
    "COURSE_DB_URL", "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db"))
# Files students may leave beside a notebook that must not be copied into release/ or autograded/.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "checkpoints", "*.pt", "*.ckpt", ".hypothesis"]

# Each cell gets two minutes (a cell that never ends is interrupted and scores zero; one that ignores
# the interrupt has its kernel stopped, and the graded cells below score zero), and a cell's score
# depends only on whether it raised, not on what it wrote to stderr: the same as at Validate.
configure(c)
# A graded cell deleted from a submission (or whose id or metadata was changed) is put back, so it is
# graded (a test cell runs, and fails if the code is missing) instead of waiting for manual grading.
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    "autograder.nbgrader_plugin.RepairNotebook",  # a notebook nbformat's schema refuses: its cells rebuilt
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.nbgrader_plugin.RestoreCells",  # OverwriteCells, for any mix of cells deleted, retyped, renamed
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Hidden audit cells are judged by the grader, outside the student's kernel (autograder.nbgrader_plugin).
c.Autograde.autograde_preprocessors = [
    "autograder.nbgrader_plugin.AuditedExecute",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Feedback pages wrap long output lines (an audit's message) at the page's width.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "autograder.nbgrader_plugin.WrapOutputs",
]
