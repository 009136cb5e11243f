"""Signals during ``regcli batch``: the first Ctrl-C stops dispatching and lets the running
pairs finish; a second one, SIGTERM and SIGHUP end the run at once (cleanly).

Under :func:`regcli.cli.main.main` every signal raises
:class:`~regcli.cli.interrupts.Interrupted`; while the pairs run, :func:`first_sigint_stops`
takes SIGINT over so that the first one only sets the batch's ``stop`` event
(:func:`regcli.register_many`'s ``stop``): the pairs already running finish, their folders
and rows are kept, the tables and the contact sheet are written, and the exit code is 130.
"""

from __future__ import annotations

import contextlib
import os
import signal

import click

from regcli.cli import helpers


class Terminated(BaseException):  # like KeyboardInterrupt: no `except Exception` takes it
    """SIGTERM, raised in the main thread so that the batch can leave its folder clean."""


@contextlib.contextmanager
def sigterm_raises():
    """Turn SIGTERM into :class:`Terminated` while the batch runs (unless a handler is
    already installed), so the folder is left clean and the tables written."""

    def handler(signum, frame):
        raise Terminated()

    try:
        installed = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        if installed:
            signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        installed = False
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def first_sigint_stops(stop, running, *, newline: bool):
    """While the batch runs, the first SIGINT (Ctrl-C) sets ``stop`` (no further pair starts;
    the ``running()`` ones finish) and says so on stderr; a second one does what SIGINT did
    before (:mod:`regcli.cli.interrupts`: unwind now, which ends the running pairs)."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        if stop is None or previous == signal.SIG_IGN:
            previous = None
    except ValueError:  # not the main thread
        previous = None

    def handler(signum, frame):
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt
        stop.set()
        count = running()
        what = f"the {helpers.plural(count, 'running pair')}" if count else "the last results"
        _say(
            f"{chr(10) if newline else ''}regcli: interrupted; no new pair starts, waiting for "
            f"{what} to finish (Ctrl-C again stops {'it' if count == 1 else 'them'} now)"
        )

    if previous is None:
        yield
        return
    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, previous)


def _say(line: str) -> None:
    """``line`` on stderr from a signal handler (which may have come while the main thread
    was writing to stderr: then unbuffered, past Python's stream)."""
    try:
        click.echo(line, err=True)
    except (RuntimeError, OSError, ValueError):  # a reentrant call into stderr's buffer
        os.write(2, (line + "\n").encode(errors="replace"))
