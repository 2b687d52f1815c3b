"""Benchmark, printed not asserted: seconds to autograde one submission of each assignment with
`nbgrader autograde`, beside a kernel that only starts and imports torch, measured in one run."""
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import nbformat
from nbclient import NotebookClient

from autograder import grading
from autograder.mutants import mutants, submission
from autograder.notebooks import assignments

REPEATS = 3


def import_only_kernel() -> float:
    """Seconds for a fresh kernel to start, run `import torch`, and shut down."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    NotebookClient(nb, timeout=120).execute()
    return time.perf_counter() - start


def autograde_once(name: str, folder: Path) -> float:
    """Seconds for `nbgrader autograde` of one reference submission in a fresh course root."""
    root = grading.scratch_course(folder, [name])
    grading.submit(root, name, "reference", submission(name, mutants(name)[0], root))
    start = time.perf_counter()
    grading.autograde(root, name)
    return time.perf_counter() - start


def main() -> None:
    kernel = statistics.median(import_only_kernel() for _ in range(REPEATS))
    print(f"kernel start + import torch: {kernel:.2f} s (median of {REPEATS})")
    with TemporaryDirectory() as tmp:
        for name in assignments():
            seconds = statistics.median(autograde_once(name, Path(tmp) / f"{name}-{i}") for i in range(REPEATS))
            print(f"{name}: nbgrader autograde of one submission {seconds:.2f} s "
                  f"(median of {REPEATS}) = {seconds / kernel:.1f} x the import-only kernel")


if __name__ == "__main__":
    main()
