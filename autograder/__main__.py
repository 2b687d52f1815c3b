"""`autograder`: grade a whole class with nbgrader, and report on it.

    autograder grade ps01_training_loop [--workers N] [--scheduler tcp://host:8786] [--db URL] [--force]
                                        [--student ID ...] [--retry-failed]
    autograder report ps01_training_loop [--db URL]

Run it in the course root (or pass --root). Students come from `submitted/<student>/<assignment>`
(what `nbgrader collect` or `nbgrader zip_collect` leaves); grades go to nbgrader's gradebook.
"""
import argparse
import contextlib
import multiprocessing
import os
import signal
import sys
from pathlib import Path

from autograder import forkserver


def _terminate(signum, frame) -> None:
    """SIGTERM (`kill`, a job's time limit) stops grading as Ctrl-C does: without it the command would
    die alone, its workers grading on with no one to answer."""
    for worker in multiprocessing.active_children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGINT)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the nbgrader course root (default: here)")
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="autograde every submitted student, in parallel")
    grade.add_argument("assignment")
    grade.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    grade.add_argument("--scheduler", help="a Dask scheduler address: grade on that cluster instead")
    grade.add_argument("--db", help="gradebook URL (default: the course's, e.g. sqlite:///gradebook.db)")
    grade.add_argument("--force", action="store_true", help="regrade students already autograded")
    grade.add_argument("--student", action="append", metavar="ID",
                       help="regrade only this student (repeat for more); the others, and manual scores, are kept")
    grade.add_argument("--retry-failed", action="store_true",
                       help="try again submissions that could not be autograded and have not changed since")
    summary = commands.add_parser("report", help="feedback for every student and a class report (CSV, HTML)")
    summary.add_argument("assignment")
    summary.add_argument("--db", help="gradebook URL (default: the course's)")
    args = parser.parse_args(argv)
    if args.command == "grade" and args.scheduler is None:
        forkserver.start()  # it imports the grader while this process reads the course
    from autograder import classroom

    try:
        if args.command == "report":
            from autograder import report

            folder = report.report(args.root, args.assignment, args.db)
            print(f"{args.assignment}: {folder / 'report.html'}, {folder / 'scores.csv'}")
            return 0
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            outcomes = classroom.grade(args.root, args.assignment, workers=args.workers, scheduler=args.scheduler,
                                       db_url=args.db, force=args.force, students=args.student,
                                       retry_failed=args.retry_failed)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except (classroom.NotReleased, classroom.NotSubmitted) as error:
        print(f"autograder {args.command}: {error}", file=sys.stderr)
        return 2
    except classroom.Interrupted as error:
        print(f"\nautograder {args.command}: {error}", file=sys.stderr)
        return 130  # the shell's code for a command stopped by Ctrl-C (also given for SIGTERM)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        if o.skipped:
            print(f"{o.student}: not tried again: nbgrader could not autograde this submission before, and it has "
                  f"not changed since (--retry-failed tries again)", file=sys.stderr)
        else:
            print(f"{o.student}: nbgrader could not autograde this submission:\n{o.log}", file=sys.stderr)
    print(f"{args.assignment}: {len(outcomes) - len(failed)} of {len(outcomes)} students autograded"
          f"{'' if not failed else '; failed: ' + ', '.join(o.student for o in failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
