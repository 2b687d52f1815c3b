"""`autograder grade`: a whole class autograded in parallel by real nbgrader into a real gradebook,
SQLite with local worker processes, and PostgreSQL with a Dask cluster of worker processes."""
import asyncio
import csv
import html
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from queue import Empty

import nbformat
import pytest
from distributed import LocalCluster

from autograder import classroom, forkserver, grading, zygote
from autograder.__main__ import main
from autograder.mutants import expected_scores, grade_cells, mutants, submission
from autograder.nbgrader_plugin import poll_in_slices

pytestmark = pytest.mark.grading
NAME = "ps01_training_loop"
MATRIX = {m.name: m for m in mutants(NAME)}
# Two students per bug, so that workers grade different students at the same moment.
BUGS = ["reference", "blank", "no_zero_grad", "zero_grad_after_backward"]
CLASS = {f"{bug}_{i}": bug for bug in BUGS for i in (1, 2)}


def course(folder: Path, students: dict[str, str], db_url: str | None = None) -> Path:
    root = grading.scratch_course(folder, [NAME], db_url)
    for student, bug in students.items():
        grading.submit(root, NAME, student, submission(NAME, MATRIX[bug], root))
    return root


def assert_graded_as_the_matrix_says(root: Path, students: dict[str, str], db_url: str | None = None):
    got = grading.scores(root, NAME, db_url)
    assert sorted(got) == sorted(students), "every student has exactly one graded submission"
    for student, bug in students.items():
        assert got[student] == expected_scores(NAME, MATRIX[bug]), student


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The class autograded by `autograder grade` with two workers, into SQLite."""
    root = course(tmp_path_factory.mktemp("class") / "course", CLASS)
    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 0
    return root


def test_plain_nbgrader_autograde_grades_as_the_matrix_says(tmp_path):
    """The instructor's plain path, `nbgrader autograde` on the command line, with this course's config."""
    students = {"reference_1": "reference", "no_zero_grad_1": "no_zero_grad"}
    root = course(tmp_path / "course", students)
    grading.autograde(root, NAME)
    assert_graded_as_the_matrix_says(root, students)


def test_grade_a_class_in_parallel_into_sqlite_and_rerun_it(graded_class):
    assert_graded_as_the_matrix_says(graded_class, CLASS)
    again = classroom.grade(graded_class, NAME, workers=2, progress=False)
    assert all(o.ok and "Skipping existing assignment" in o.log for o in again), "a re-run grades only what is new"
    assert_graded_as_the_matrix_says(graded_class, CLASS)


def test_the_grading_command_leaves_nbgrader_and_torch_to_its_workers():
    """Their import (~5 s of CPU) is the fork server's alone: the command would pay it again."""
    code = ("import sys, autograder.__main__, autograder.classroom; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'nbgrader', 'torch', 'sqlalchemy', 'nbformat'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]"], f"the command imports {done.stdout.strip()}"


def test_workers_are_forks_of_a_server_that_imported_the_grader():
    with ProcessPoolExecutor(1, mp_context=forkserver.context()) as pool:
        parent = pool.submit(os.getppid).result()
        loaded = pool.submit(eval, "sorted(__import__('sys').modules)").result()
    assert parent != os.getpid(), "not a fork of the grading process"
    assert set(forkserver.PRELOAD) <= set(loaded), "a worker starts with the grader imported"


def test_workers_grade_into_the_gradebook_and_temporary_folder_of_the_moment(tmp_path, monkeypatch):
    forkserver.start()  # its workers keep this environment, which names no gradebook and the system's /tmp
    students = {"reference_1": "reference"}
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    root, tmp = course(tmp_path / "course", students, url), tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("COURSE_DB_URL", url)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    made = tmp.stat().st_mtime_ns
    outcomes = classroom.grade(root, NAME, workers=2, progress=False)
    assert [o.ok for o in outcomes] == [True], outcomes[0].log[-3000:]
    assert_graded_as_the_matrix_says(root, students, url)
    assert not (root / "gradebook.db").exists()
    assert tmp.stat().st_mtime_ns != made, "the zygotes' folders were not made in the temporary folder of the moment"
    assert not zygote_folders(tmp), "a worker's zygote folder outlived it"


# A class as an instructor finds it: on time, late, blank, empty, unreadable, and bugs shared or single.
MIXED = {"on_time": "reference", "late": "reference", "blank_1": "blank", "no_zero_grad_1": "no_zero_grad",
         "no_zero_grad_2": "no_zero_grad", "zero_grad_after_backward_1": "zero_grad_after_backward"}
DUE, LATE, ON_TIME = "2026-12-01 12:00:00 UTC", "2026-12-02 09:30:00.000000 UTC", "2026-11-30 18:00:00.000000 UTC"


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory):
    """(course root, nbgrader export's rows) of MIXED, with an empty and an unreadable submission, graded
    with nbgrader's late penalty "zero" and reported."""
    root = course(tmp_path_factory.mktemp("mixed") / "course", MIXED)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    grading.nbgrader(root, "db", "assignment", "add", NAME, f"--duedate={DUE}")
    for student, stamp in [("late", LATE), *((s, ON_TIME) for s in MIXED if s != "late")]:
        (root / "submitted" / student / NAME / "timestamp.txt").write_text(stamp)
    (root / "submitted" / "empty" / NAME).mkdir(parents=True)
    (root / "submitted" / "unreadable" / NAME).mkdir(parents=True)
    (root / "submitted" / "unreadable" / NAME / f"{NAME}.ipynb").write_text("{ this is not a notebook")
    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 1
    assert main(["--root", str(root), "report", NAME]) == 0
    grading.nbgrader(root, "export", "--to", str(root / "export.csv"))
    with (root / "export.csv").open() as f:
        return root, {row["student_id"]: row for row in csv.DictReader(f)}


def test_report_lists_everyone_who_submitted_with_nbgraders_late_penalty(mixed_class):
    root, exported = mixed_class
    folder = root / "reports" / NAME
    with (folder / "scores.csv").open() as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == sorted([*MIXED, "empty", "unreadable"])
    for student, row in rows.items():
        assert float(row["score"]) == float(exported[student]["score"]), student
        assert float(row["late_submission_penalty"]) == float(exported[student]["late_submission_penalty"])
    assert (rows["late"]["raw_score"], rows["late"]["late_submission_penalty"], rows["late"]["score"]) == ("29", "29", "0")
    assert [rows[s]["status"] for s in ("on_time", "blank_1", "empty", "unreadable")] == \
        ["graded", "graded", "empty", "could not grade"]
    for student, bug in MIXED.items():
        assert {c: float(rows[student][c]) for c in grade_cells(NAME)} == expected_scores(NAME, MATRIX[bug])
    page = html.unescape((folder / "report.html").read_text())
    assert "8 students submitted: 6 graded (1 with a late penalty), 1 could not be graded, 1 empty." in page
    assert page.count('<img alt="" src="data:image/png;base64,') == 2, "the class's scores and each cell's"


def test_report_names_each_cells_own_bugs_and_grading_failures_apart(mixed_class):
    root, _ = mixed_class
    page = html.unescape((root / "reports" / NAME / "report.html").read_text())
    bugs, failures = page.split("<h2>The most common bugs")[1].split("<h2>Submissions that could not be graded")
    failures = failures.split("<h2>Students")[0]
    shared = grading.messages(root, NAME, "no_zero_grad_1")["audit_zero_grad"].splitlines()[0]
    single = grading.messages(root, NAME, "zero_grad_after_backward_1")["audit_zero_grad"].splitlines()[0]
    assert shared != single
    zero_grad = bugs.split("<code>audit_zero_grad</code>")[1].split("</tr>")[0]
    assert f"2 × <code>{shared[:100]}" in zero_grad and f"1 × <code>{single[:100]}" in zero_grad
    assert "could not" not in bugs and "unreadable" not in bugs, "grading failures are not bugs of a cell"
    assert "<td>unreadable</td><td>could not grade</td><td>nbformat.reader.NotJSONError: Notebook does not appear " \
        "to be JSON" in failures
    assert "<td>empty</td><td>empty</td><td>the submission holds no file</td>" in failures
    for student in MIXED:
        link = f"../../feedback/{student}/{NAME}/{NAME}.html"
        assert link in page and (root / "reports" / NAME / link).exists()


def test_grades_export_as_a_file_canvas_imports_with_nbgraders_scores(mixed_class):
    root, exported = mixed_class
    grading.nbgrader(root, "db", "student", "add", "on_time", "--first-name=Ada", "--last-name=Lovelace",
                     "--lms-user-id=4242")
    grading.nbgrader(root, "export", "--exporter=autograder.lms.CanvasExportPlugin", "--to", str(root / "canvas.csv"))
    with (root / "canvas.csv").open() as f:
        header, possible, *rows = list(csv.reader(f))
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", NAME]
    assert possible == ["Points Possible", "", "", "", "", f"{sum(grade_cells(NAME).values()):g}"]
    got = {row[3]: row for row in rows}
    assert sorted(got) == sorted(exported)
    assert got["on_time"][:2] == ["Lovelace, Ada", "4242"]
    for student, row in got.items():
        assert float(row[5]) == float(exported[student]["score"]), student
    assert got["late"][5] == "0" and got["on_time"][5] == "29"


@pytest.mark.parametrize("command", [["grade", "ps01_mistyped", "--workers", "1"], ["report", "ps01_mistyped"]])
def test_an_assignment_the_gradebook_lacks_is_named_with_the_fix(graded_class, capsys, command):
    assert main(["--root", str(graded_class), *command]) == 2
    err = capsys.readouterr().err
    assert "ps01_mistyped is not an assignment of this gradebook" in err, err
    assert "nbgrader generate_assignment ps01_mistyped" in err and "Traceback" not in err, err
    assert_graded_as_the_matrix_says(graded_class, CLASS)
    assert not (graded_class / "reports" / "ps01_mistyped").exists()


@pytest.mark.parametrize("command", ["grade", "report"])
def test_a_new_gradebook_is_made_by_a_command_started_without_its_environment(tmp_path, command):
    """nbgrader makes a gradebook by running `alembic` by name: the command finds its own."""
    shutil.copy(grading.ROOT / "nbgrader_config.py", tmp_path)
    db = tmp_path / "new.db"
    done = subprocess.run([sys.executable, "-m", "autograder", command, NAME, "--db", f"sqlite:///{db}"],
                          cwd=tmp_path, env={**os.environ, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"autograder {command}: {NAME} is not an assignment of this gradebook: check its name, or " \
                          f"release it first (nbgrader generate_assignment {NAME})\n"
    assert db.exists()


def grading_in_its_own_session(root: Path, tmp: Path) -> subprocess.Popen:
    """`autograder grade` of the class at `root` on 2 workers, in a session of its own (a terminal's
    Ctrl-C reaches a command's whole process group), with `tmp` as its temporary folder, returned once
    its progress bar shows 2 graded."""
    command = subprocess.Popen([sys.executable, "-m", "autograder", "grade", NAME, "--workers", "2"], cwd=root,
                               env={**os.environ, "TMPDIR": str(tmp)}, start_new_session=True,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err = ""
    while "| 2/8 [" not in err:  # two students graded, the next two on the way
        char = command.stderr.read(1)
        assert char, f"grading ended before two students were graded:\n{err}"
        err += char
    time.sleep(1)
    return command


def zygote_folders(tmp: Path) -> set[Path]:
    """The folders of the kernels' and the audit runners' zygotes in the temporary folder `tmp`."""
    return set(tmp.glob("runners-*")) | set(tmp.glob("kernels-*"))


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_a_stopped_class_stops_at_once_and_the_same_command_grades_the_rest(tmp_path, how):
    root, tmp = course(tmp_path / "course", CLASS), tmp_path / "tmp"
    tmp.mkdir()
    command = grading_in_its_own_session(root, tmp)
    if how == "Ctrl-C":
        os.killpg(command.pid, signal.SIGINT)
    else:  # `kill PID`: the command alone, whose workers must not grade on
        command.terminate()
    stopped = time.monotonic()
    err = command.communicate(timeout=60)[1]
    assert time.monotonic() - stopped < 15, "the workers went on grading"
    assert command.returncode == 130, err
    last = err.strip().splitlines()[-1]
    graded = int(re.fullmatch(r"autograder grade: interrupted: (\d+) of 8 students graded, kept in the gradebook; "
                              r"the same command grades the rest \(a student interrupted halfway is graded again\)",
                              last)[1])
    assert 2 <= graded < 8 and "Traceback" not in err, err
    deadline = time.monotonic() + 10  # the fork server and the workers end on their own, just after it
    while subprocess.run(["pgrep", "-g", str(command.pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a process of the command outlived it"
        time.sleep(0.2)
    assert not zygote_folders(tmp), f"left behind: {zygote_folders(tmp)}"
    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 0
    assert_graded_as_the_matrix_says(root, CLASS)


def test_a_class_killed_halfway_is_graded_again_where_it_was_cut(tmp_path):
    """SIGKILL, the kernel's out-of-memory killer, a lost machine: nbgrader leaves the students it was
    grading half done, and would skip them from then on with the scores of cells never run."""
    root, tmp = course(tmp_path / "course", CLASS), tmp_path / "tmp"
    tmp.mkdir()
    command = grading_in_its_own_session(root, tmp)
    os.killpg(command.pid, signal.SIGKILL)
    command.communicate(timeout=60)
    for folder in zygote_folders(tmp):  # what the killed workers could not remove
        zygote.remove(folder)
    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 0
    assert_graded_as_the_matrix_says(root, CLASS)


def test_an_autograde_cut_short_is_told_from_a_finished_one(tmp_path):
    submitted, autograded = tmp_path / "submitted", tmp_path / "autograded"
    submitted.mkdir(), autograded.mkdir()
    nb = submission(NAME, MATRIX["reference"])
    nbformat.write(nb, submitted / f"{NAME}.ipynb")
    assert classroom.cut_short(autograded, submitted), "killed before autograde wrote the notebook"
    nbformat.write(nb, autograded / f"{NAME}.ipynb")
    assert classroom.cut_short(autograded, submitted), "the sanitised copy, never run"
    ran = next(c for c in nb.cells if c.cell_type == "code")
    ran.execution_count = 1
    nbformat.write(nb, autograded / f"{NAME}.ipynb")
    assert not classroom.cut_short(autograded, submitted), "run: its cells have execution counts"
    text = (autograded / f"{NAME}.ipynb").read_text()
    (autograded / f"{NAME}.ipynb").write_text(text[: len(text) // 2])
    assert classroom.cut_short(autograded, submitted), "killed while the notebook was being written"


def test_a_submission_nbgrader_cannot_autograde_fails_alone_and_is_retried_once_changed(tmp_path, capsys):
    students = {"reference_1": "reference", "reference_2": "reference"}
    root = course(tmp_path / "course", students)
    broken = root / "submitted" / "broken" / NAME
    broken.mkdir(parents=True)
    (broken / f"{NAME}.ipynb").write_text("{ this is not a notebook")
    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 1
    out = capsys.readouterr()
    assert f"{NAME}: 2 of 3 students autograded; failed: broken" in out.out
    assert "broken: nbgrader could not autograde this submission" in out.err
    assert "Notebook does not appear to be JSON" in out.err
    got = grading.scores(root, NAME)
    assert sum(got.pop("broken").values()) == 0, "the broken submission is in the gradebook with zero"
    assert got == {student: expected_scores(NAME, MATRIX[bug]) for student, bug in students.items()}

    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 1
    assert "broken: not tried again" in capsys.readouterr().err, "unchanged, it is not tried on every run"
    assert main(["--root", str(root), "grade", NAME, "--workers", "2", "--retry-failed"]) == 1
    assert "Notebook does not appear to be JSON" in capsys.readouterr().err, "asked, it is tried again"
    nbformat.write(submission(NAME, MATRIX["reference"], root), broken / f"{NAME}.ipynb")  # submitted again
    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 0
    assert grading.scores(root, NAME)["broken"] == expected_scores(NAME, MATRIX["reference"])
    assert not classroom.failure_log(root, NAME, "broken").exists()


def test_regrade_one_student_keeps_the_others_and_manual_scores(tmp_path, capsys):
    students = {"reference_1": "reference", "no_zero_grad_1": "no_zero_grad"}
    root = course(tmp_path / "course", students)
    assert main(["--root", str(root), "grade", NAME, "--workers", "2"]) == 0
    autograded = {s: root / "autograded" / s / NAME / f"{NAME}.ipynb" for s in students}
    other = autograded["reference_1"].stat().st_mtime_ns
    with classroom.gradebook(classroom.course_config(root)) as gb:
        gb.find_grade("audit_zero_grad", NAME, NAME, "no_zero_grad_1").manual_score = 1.5
        gb.db.commit()
    regraded = autograded["no_zero_grad_1"].stat().st_mtime_ns
    assert main(["--root", str(root), "grade", NAME, "--student", "no_zero_grad_1"]) == 0
    assert autograded["no_zero_grad_1"].stat().st_mtime_ns != regraded, "the student named is graded again"
    assert autograded["reference_1"].stat().st_mtime_ns == other, "no one else is"
    got = grading.scores(root, NAME)
    assert got["no_zero_grad_1"] == {**expected_scores(NAME, MATRIX["no_zero_grad"]), "audit_zero_grad": 1.5}
    assert got["reference_1"] == expected_scores(NAME, MATRIX["reference"])
    assert main(["--root", str(root), "grade", NAME, "--student", "nobody"]) == 2
    assert "no submission of ps01_training_loop from nobody" in capsys.readouterr().err


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of Debian's package on a Unix socket in a scratch folder; its URL."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    assert binaries, "needs Debian's postgresql (`apt-get install postgresql`; `make test` installs it)"
    bin_dir = binaries[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="gradebook-pg-"))
    # The server refuses to run as root: as root, run it as Debian's postgres user.
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    subprocess.run([*run_as, bin_dir / "initdb", "-D", data, "-U", "grader", "--auth=trust"], check=True,
                   capture_output=True)
    subprocess.run([*run_as, bin_dir / "pg_ctl", "-D", data, "-w", "-l", folder / "log",
                    "-o", f"-p {port} -k {folder} -c listen_addresses=''", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*run_as, bin_dir / "createdb", "-h", folder, "-p", str(port), "-U", "grader", "gradebook"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://grader@/gradebook?host={folder}&port={port}"
    finally:
        subprocess.run([*run_as, bin_dir / "pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_grade_on_a_dask_cluster_into_postgresql_and_regrade(tmp_path, postgres):
    students = {name: bug for name, bug in CLASS.items() if name.endswith("_1")}
    root = course(tmp_path / "course", students, postgres)
    assert not (root / "gradebook.db").exists(), "the assignment went to PostgreSQL, not to SQLite"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for force in (False, True):
            outcomes = classroom.grade(root, NAME, scheduler=cluster.scheduler_address, db_url=postgres,
                                       force=force, progress=False)
            assert [o.student for o in outcomes if o.ok] == sorted(students)
            assert_graded_as_the_matrix_says(root, students, postgres)
    assert not (root / "gradebook.db").exists()


def test_the_command_line_is_installed_and_documents_itself():
    command = Path(sys.executable).parent / "autograder"
    done = subprocess.run([command, "grade", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--workers" in done.stdout and "--scheduler" in done.stdout


class LosesWakeUps:
    """A kernel channel whose poll, like the real one after a cell full of widgets, sleeps through
    a message's arrival and sees it only when its timeout ends."""

    def __init__(self, arrives_after: float | None):
        self.arrival = None if arrives_after is None else time.monotonic() + arrives_after

    async def get_msg(self, timeout=None):
        await asyncio.sleep(timeout)
        if self.arrival is None or time.monotonic() < self.arrival:
            raise Empty
        return {"msg_type": "execute_reply"}


def test_the_grader_picks_up_a_reply_whose_wake_up_was_lost():
    channel = LosesWakeUps(arrives_after=0.3)
    poll_in_slices(channel)
    start = time.monotonic()
    assert asyncio.run(channel.get_msg(timeout=60))["msg_type"] == "execute_reply"
    assert time.monotonic() - start < 10, "the reply is seen within a slice, not at the cell timeout"

    silent = LosesWakeUps(arrives_after=None)
    poll_in_slices(silent)
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(silent.get_msg(timeout=1.2))
    assert time.monotonic() - start >= 1.2, "the cell timeout still holds"
