"""The kernels' zygote: each student's notebook kernel is a fork of one sandboxed process that has
imported, once, what the course's notebooks import. A fresh kernel spends about half of a ~6 s
notebook starting Python, importing torch, matplotlib and ipywidgets, and loading torch._dynamo at
its first optimizer step; a fork starts with all of it loaded.

`python -m autograder.kernels --serve`, in a sandbox of its own (`audit.Zygote`), answers requests on
stdin, one student at a time:
- `start JSON` (`connection_file`, `cwd`, `env`, `log`): fork a kernel; answered `started` once it
  listens on its sockets (or has died);
- `signal N`: send signal N to the kernel's process group;
- an empty line: the student is done: the kernel and every other process of the sandbox are killed,
  /tmp is emptied, and `done` is answered.
When the kernel ends, `exited CODE` is answered (Popen's returncode: minus the signal that ended it).
Each fork becomes what a fresh kernel would be: a session of its own, the student's folder and the
kernel's environment, and random generators seeded anew (else every fork would draw the same numbers).
"""
import importlib
import json
import os
import select
import signal
import sys
import time

from autograder import zygote

INLINE = "module://matplotlib_inline.backend_inline"
# ipykernel.ipkernel and .debugger: the kernel app imports them as it starts (debugpy alone ~0.2 s).
PRELOAD = ["numpy", "torch", "matplotlib.pyplot", "ipywidgets", "IPython.display", "ipykernel.kernelapp",
           "ipykernel.ipkernel", "ipykernel.debugger"]
# Modules that, imported inside a kernel, set themselves up for it (pyplot's inline figures, the
# widgets' comm targets): imported here before any kernel exists, they are set up in each fork once
# its kernel is. tqdm.auto picks text or widget bars when it is imported: never preloaded.
SET_UP_IN_KERNEL = {"matplotlib_inline.backend_inline": "_enable_matplotlib_integration",
                    "ipywidgets": "_handle_ipython"}


def reseed() -> None:
    """Seed Python's, numpy's and torch's generators from the OS, as a fresh process does."""
    import random

    import numpy
    import torch

    random.seed()
    numpy.random.seed()
    torch.seed()


def run_kernel(request: dict, ready: int) -> None:
    """In the fork: become the student's kernel, and serve nbgrader until it is shut down; a byte on
    `ready` once it listens on its sockets."""
    os.setsid()  # as jupyter_client starts a kernel: its interrupt reaches its own process group only
    zygote.dumpable(True)  # an ordinary process, which reads its own /proc entries
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the zygote's requests are not the kernel's
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path.insert(0, request["cwd"])  # where `python -m ipykernel_launcher` would find the student's modules
    reseed()
    from ipykernel import kernelapp

    sys.argv = [kernelapp.__file__, "-f", request["connection_file"]]
    app = kernelapp.IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    for module, set_up in SET_UP_IN_KERNEL.items():
        if module in sys.modules:
            getattr(sys.modules[module], set_up)()
    os.write(ready, b".")
    os.close(ready)
    app.start()


def fork_kernel(request: dict) -> int:
    """Fork the student's kernel; return once it listens (or has died). nbgrader's client connects as
    soon as it hears `started`: to a socket not there yet, ZeroMQ tries again only 0.1 s later."""
    ready_r, ready_w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        code = 1
        try:
            run_kernel(request, ready_w)
            code = 0
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(ready_w)
    os.read(ready_r, 1)  # nothing, at its end, if the kernel died first
    os.close(ready_r)
    return pid


def serve() -> None:
    zygote.become()
    os.environ.setdefault("MPLBACKEND", INLINE)  # as ipykernel does before a notebook imports matplotlib
    # debugpy's import warns on stderr that Python's frozen modules may hide breakpoints: no kernel here
    # is debugged (a kernelspec runs Python with -Xfrozen_modules=off for that)
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    for module in PRELOAD:
        importlib.import_module(module)
    zygote.warm_up()
    kernel = None  # (pid, pidfd) of this student's kernel while it runs

    def reap() -> None:
        nonlocal kernel
        pid, pidfd = kernel
        status = os.waitpid(pid, 0)[1]
        os.close(pidfd)
        kernel = None
        zygote.answer(f"exited {os.waitstatus_to_exitcode(status)}")

    while True:
        ready = select.select([0, *([kernel[1]] if kernel else [])], [], [])[0]
        if kernel and kernel[1] in ready:
            reap()
            continue
        request = zygote.readline()
        if request is None:  # the grader is gone
            return
        if request.startswith("start "):
            pid = fork_kernel(json.loads(request[len("start "):]))
            kernel = pid, os.pidfd_open(pid)
            zygote.answer("started")
        elif request.startswith("signal ") and kernel:
            try:
                os.killpg(kernel[0], int(request.split()[1]))
            except ProcessLookupError:
                pass
        elif not request:  # the student is done
            if kernel:
                try:
                    os.killpg(kernel[0], signal.SIGKILL)
                except ProcessLookupError:  # it ended, not reaped yet
                    pass
                reap()
            zygote.sweep(time.monotonic() + 10)
            zygote.answer("done")


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        raise SystemExit("usage: python -m autograder.kernels --serve (in a sandbox, by the grader)")
    serve()
