"""Shared by the suites: every assignment's cases carry that assignment's mark; the browser suites
get JupyterLab on a loopback port and Debian's Chromium driven by Playwright."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from autograder.notebooks import ROOT, assignments

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "build" / "test-artifacts"  # screenshots of the browser tests
# Debian's Chromium as root in a container, with no network: no sandbox, no GPU, no phoning home.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
TOKEN = "browser-test"


def assignment_params(cases):
    """pytest.param for each (assignment, *rest), marked `ps01`, `ps02`, ... by its assignment."""
    return [pytest.param(*case, marks=getattr(pytest.mark, case[0][:4]),
                         id="-".join([case[0][:4], *(getattr(c, "name", str(c)) for c in case[1:])]))
            for case in cases]


ASSIGNMENTS = assignments()


@contextmanager
def jupyterlab(root: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """JupyterLab serving `root` on a loopback port, with `options` and `env` over this environment,
    its log in `root`/lab.log; yields its base URL (the token is TOKEN)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(root / "lab.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                                   f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", *options],
                                  cwd=root, env={**os.environ, **(env or {})},
                                  stdout=log, stderr=subprocess.STDOUT)  # Binder's: the repo's root
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < deadline and server.poll() is None, (root / "lab.log").read_text()
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "needs Debian's chromium (`apt-get install chromium`; `make test` installs it)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()
