"""Benchmark, printed not asserted, all figures from one run:
- each release notebook, filled with the reference solution, run top to bottom by a fresh kernel:
  seconds and the kernel's peak memory (targets: 60 s, 1.5 GB on 2 cores);
- seconds to autograde one submission with `nbgrader autograde`, beside a kernel that only starts
  and imports torch.
"""
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import nbformat
from nbclient import NotebookClient

from autograder import grading
from autograder.mutants import mutants, submission
from autograder.notebooks import assignments

REPEATS = 3


def execute(nb: nbformat.NotebookNode, folder: Path) -> float:
    """Seconds for a fresh kernel to run `nb` top to bottom in `folder`."""
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(folder)}}).execute()
    return time.perf_counter() - start


def import_only_kernel() -> float:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with TemporaryDirectory() as tmp:
        return execute(nb, Path(tmp))


def reference_run(name: str) -> tuple[float, float]:
    """(seconds, peak MiB) of the release notebook filled with the reference, in a fresh process
    whose only child is the kernel, so its children's peak RSS is the kernel's."""
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.ipynb"
        nbformat.write(submission(name, mutants(name)[0]), path)
        done = subprocess.run([sys.executable, "-m", "autograder.bench", "--run", str(path)],
                              capture_output=True, text=True, check=True)
        seconds, mib = done.stdout.split()[-2:]
        return float(seconds), float(mib)


def autograde_once(name: str, folder: Path) -> float:
    """Seconds for `nbgrader autograde` of one reference submission in a fresh course root."""
    root = grading.scratch_course(folder, [name])
    grading.submit(root, name, "reference", submission(name, mutants(name)[0], root))
    start = time.perf_counter()
    grading.autograde(root, name)
    return time.perf_counter() - start


def main() -> None:
    print("release notebooks with the reference solution, top to bottom (targets: 60 s, 1536 MiB):")
    for name in assignments():
        seconds, mib = reference_run(name)
        print(f"  {name}: {seconds:.1f} s, kernel peak memory {mib:.0f} MiB")
    kernel = statistics.median(import_only_kernel() for _ in range(REPEATS))
    print(f"kernel start + import torch: {kernel:.2f} s (median of {REPEATS})")
    with TemporaryDirectory() as tmp:
        for name in assignments():
            seconds = statistics.median(autograde_once(name, Path(tmp) / f"{name}-{i}") for i in range(REPEATS))
            print(f"{name}: nbgrader autograde of one submission {seconds:.2f} s "
                  f"(median of {REPEATS}) = {seconds / kernel:.1f} x the import-only kernel")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        path = Path(sys.argv[2])
        seconds = execute(nbformat.read(path, as_version=4), path.parent)
        print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    else:
        main()
