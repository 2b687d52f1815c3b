"""Benchmark, printed not asserted, all figures from one run:
- each release notebook, filled with the reference solution, run top to bottom by a fresh kernel:
  seconds and the kernel's peak memory (targets: 60 s, 1.5 GB on 2 cores);
- a class of sample submissions of every assignment (BENCH_CLASS, default 20, cycling through the
  mutant matrix) graded by plain serial `nbgrader autograde`, then by `autograder grade --workers 2`,
  each a command started for it (target ratio: 1.8 on 2 cores), with the CPU seconds each run kept
  the machine busy (its work) and the cores serial grading kept busy on average (the audits run
  beside the kernel): 2 workers on 2 cores take at least half their work, so they can be at most
  2 x serial seconds / their work faster, and doing serial's work, at most 2 / serial's cores;
- each notebook's grading time beside a fresh kernel that only runs the notebook's imports (target:
  at most 2), beside one that imports every module the notebook's run loaded (torch loads
  torch._dynamo and sympy, ~1-2 s, at the first optimizer a notebook makes), and beside the
  notebook's plain run (what grading adds and saves: sanitising, the audits in a fresh process, the
  gradebook; a kernel forked from a zygote that imported all that once instead of a fresh one).
Every kernel here is shut down at once after its last cell, as grading does (a graceful shutdown
waits for the kernel's exit, up to seconds).
"""
import json
import os
import re
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
from autograder.notebooks import assignments, release_path

CLASS = int(os.environ.get("BENCH_CLASS", 20))
REPEATS = 3
IMPORT = re.compile(r"^(?:import \S|from \S+ import )")
MODULES = "modules.json"  # written beside the notebook by its last cell


def execute(nb: nbformat.NotebookNode, folder: Path) -> float:
    """Seconds for a fresh kernel to run `nb` top to bottom in `folder`."""
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(folder)}},
                   shutdown_kernel="immediate").execute()
    return time.perf_counter() - start


def import_only_kernel(name: str, modules: list[str] | None = None) -> float:
    """Seconds for a fresh kernel to start and run only the imports of `name`'s notebook (or import
    each of `modules`)."""
    release = nbformat.read(release_path(name), as_version=4)
    imports = [line for c in release.cells if c.cell_type == "code" for line in c.source.splitlines()
               if IMPORT.match(line)]
    if modules is not None:
        imports = ["import importlib", f"for m in {modules!r}:", "    try:", "        importlib.import_module(m)",
                   "    except Exception:", "        pass"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("\n".join(imports))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with TemporaryDirectory() as tmp:
        return execute(nb, Path(tmp))


def reference_run(name: str) -> tuple[float, float, list[str]]:
    """(seconds, peak MiB, the modules it loaded) of the release notebook filled with the reference,
    in a fresh process whose only child is the kernel, so its children's peak RSS is the kernel's."""
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.ipynb"
        nb = submission(name, mutants(name)[0])
        nb.cells.append(nbformat.v4.new_code_cell(f"import json, sys\njson.dump(sorted(sys.modules), open({MODULES!r}, 'w'))"))
        nbformat.write(nb, path)
        done = subprocess.run([sys.executable, "-m", "autograder.bench", "--run", str(path)],
                              capture_output=True, text=True, check=True)
        seconds, mib = done.stdout.split()[-2:]
        return float(seconds), float(mib), json.loads((Path(tmp) / MODULES).read_text())


def a_class(name: str, folder: Path) -> Path:
    """A course root with CLASS submissions of `name`, cycling through its mutant matrix."""
    root = grading.scratch_course(folder, [name])
    matrix = mutants(name)
    for i in range(CLASS):
        m = matrix[i % len(matrix)]
        grading.submit(root, name, f"{i:02d}_{m.name}", submission(name, m, root))
    return root


def busy_seconds() -> float:
    """CPU seconds this machine has spent busy since it booted, all processes and cores together."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def timed(run) -> tuple[float, float]:
    """(seconds, busy CPU seconds of the whole machine) of `run()`."""
    start, busy = time.perf_counter(), busy_seconds()
    run()
    return time.perf_counter() - start, busy_seconds() - busy


def grade_class(name: str, folder: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    """(seconds, busy CPU seconds) to grade the class with serial `nbgrader autograde`, then with
    `autograder grade --workers 2`."""
    serial, parallel = a_class(name, folder / "serial"), a_class(name, folder / "parallel")
    return (timed(lambda: grading.autograde(serial, name)),
            timed(lambda: grading.command(parallel, "autograder", "grade", name, "--workers", "2")))


def main() -> None:
    print("release notebooks with the reference solution, top to bottom (targets: 60 s, 1536 MiB):")
    plain, loaded = {}, {}
    for name in assignments():
        plain[name], mib, loaded[name] = reference_run(name)
        print(f"  {name}: {plain[name]:.1f} s, kernel peak memory {mib:.0f} MiB")
    print(f"\na class of {CLASS} submissions per assignment: serial `nbgrader autograde` vs "
          f"`autograder grade --workers 2` (target 1.8 x), with each run's work (busy CPU seconds), the "
          f"cores serial grading used and the bounds on 2 cores; the grading time of one notebook beside a "
          f"kernel that only runs its imports (median of {REPEATS}; target 2 x), beside one that imports "
          f"every module its run loaded, and beside its plain run above:")
    with TemporaryDirectory() as tmp:
        for name in assignments():
            (serial, serial_work), (parallel, parallel_work) = grade_class(name, Path(tmp) / name)
            cores = serial_work / serial
            kernel = statistics.median(import_only_kernel(name) for _ in range(REPEATS))
            every = statistics.median(import_only_kernel(name, loaded[name]) for _ in range(REPEATS))
            each = serial / CLASS
            print(f"  {name}: serial {serial:.0f} s, {serial_work:.0f} CPU s on {cores:.2f} cores; 2 workers "
                  f"{parallel:.0f} s, {parallel_work:.0f} CPU s = {serial / parallel:.2f} x faster (at most "
                  f"{2 * serial / parallel_work:.2f} x with their work, {2 / cores:.2f} x with serial's); "
                  f"one notebook {each:.1f} s = {each / kernel:.1f} x its import-only kernel ({kernel:.1f} s), "
                  f"{each / every:.1f} x one importing all it loaded ({every:.1f} s), "
                  f"{each / plain[name]:.1f} x its plain run")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        path = Path(sys.argv[2])
        seconds = execute(nbformat.read(path, as_version=4), path.parent)
        print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    else:
        main()
