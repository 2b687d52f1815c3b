"""An nbgrader export plugin that writes the CSV an LMS gradebook imports (Canvas's layout).

    nbgrader export --exporter=autograder.lms.CanvasExportPlugin --to canvas.csv [--assignment ps01_training_loop]

One row per student of the gradebook, one column per assignment; a second row gives each
assignment's points possible. A score is what `nbgrader export` gives (after the late penalty; 0
without a submission). Canvas matches a row by its ID (nbgrader's `lms_user_id`, which
`nbgrader db student add --lms-user-id` sets) or else by its SIS Login ID (the nbgrader student id);
Student is "Last, First". An assignment column that Canvas does not have yet becomes a new
assignment there.
"""
import csv

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin

from autograder.classroom import after_penalty

HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


class CanvasExportPlugin(ExportPlugin):
    """nbgrader's grades as a Canvas gradebook import file."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "canvas.csv"
        assignments = [a for a in gradebook.assignments if not self.assignment or a.name in self.assignment]
        students = [s for s in gradebook.students if not self.student or s.id in self.student]
        self.log.info("Exporting %d assignments of %d students to %s", len(assignments), len(students), dest)
        with open(dest, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow([*HEADER, *(a.name for a in assignments)])
            out.writerow(["Points Possible", "", "", "", "", *(f"{a.max_score:g}" for a in assignments)])
            for student in students:
                name = ", ".join(n for n in (student.last_name, student.first_name) if n) or student.id
                out.writerow([name, student.lms_user_id or "", "", student.id, "",
                              *(f"{score(gradebook, a.name, student.id):g}" for a in assignments)])


def score(gradebook: Gradebook, assignment: str, student: str) -> float:
    """The student's score, after the late penalty, as `nbgrader export` counts it."""
    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return 0.0
    return after_penalty(submission.score, submission.late_submission_penalty)
