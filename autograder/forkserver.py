"""The local worker processes of `autograder grade`: forks of multiprocessing's fork server, which
imported the grader once, so a worker starts in milliseconds instead of paying ~5 s of CPU for
nbgrader, nbconvert, jupyter_client and torch. Not forks of the grading process itself: its
threads could hold a lock at the fork. This module imports nothing heavy, so the command line
starts the server first thing, and its own process never imports the grader at all.

The server serves every later pool of this process and its workers keep the environment of the
moment it started: what a worker needs from the caller (the gradebook's URL) is passed explicitly.
"""
import multiprocessing
import multiprocessing.forkserver

PRELOAD = ["autograder.classroom", "autograder.nbgrader_plugin", "nbgrader.apps", "nbgrader.api",
           "nbgrader.converters.autograde", "nbclient.client", "sqlalchemy.exc", "torch"]


def context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context whose processes are forks of the preloaded server."""
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(PRELOAD)
    return forkserver


def start() -> None:
    """Start the fork server now (it imports PRELOAD beside whatever this process does next)."""
    context()
    multiprocessing.forkserver.ensure_running()
