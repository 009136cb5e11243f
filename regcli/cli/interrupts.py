"""Signals: SIGINT, SIGTERM and SIGHUP end a run the same way, cleanly.

:func:`install` (called once, by :func:`regcli.cli.main.main`) makes each of them raise
:class:`Interrupted`, which unwinds the command like any exception: an
:class:`~regcli.cli.outputs.OutputSet` removes what it staged, so nothing partial is left.
``main`` then prints one short line and exits with ``128 + signal number`` (130 for SIGINT,
143 for SIGTERM, 129 for SIGHUP), the shell convention.  A second signal while the first one
unwinds is ignored, so the clean-up is not cut short.

:func:`pause` is a test-only hook: with ``REGCLI_TEST_PAUSE=PHASE:FILE`` in the environment, a
run reaching ``PHASE`` (``read``, ``work`` or ``write``) creates ``FILE`` and sleeps, so a test
can send a signal at a known point.  Without the variable it costs one dictionary look-up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

#: The signals that end a run (those that exist on this platform).
SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: Test-only: ``PHASE:FILE`` (see :func:`pause`).
PAUSE_ENV = "REGCLI_TEST_PAUSE"
#: How long :func:`pause` sleeps at most (seconds).
PAUSE_SECONDS = 60.0

_state: dict = {"interrupted": False, "previous_hook": sys.unraisablehook}


class Interrupted(BaseException):  # like KeyboardInterrupt: not an error
    """A signal asked the run to stop.  Not an ``Exception``: nothing but the clean-up
    handlers (``finally``, context managers) and :func:`regcli.cli.main.main` see it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum, frame) -> None:
    if _state["interrupted"]:  # already unwinding: let the clean-up finish
        return
    _state["interrupted"] = True
    _state["signum"] = signum
    raise Interrupted(signum)


def _redeliver(signum: int) -> None:
    """Raise :class:`Interrupted` again a moment later, from wherever the program then is."""
    _state["interrupted"] = False
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, lambda _, frame: _handler(signum, frame))
        signal.setitimer(signal.ITIMER_REAL, 0.002)
    else:  # pragma: no cover (not on POSIX)
        signal.raise_signal(signum)


def _unraisable(unraisable) -> None:
    """A signal that came while Python ran a finaliser or a weak-reference callback (as
    matplotlib's transforms use) raised where Python can only print and drop the exception:
    deliver it again instead of losing it."""
    if isinstance(unraisable.exc_value, Interrupted):
        _redeliver(unraisable.exc_value.signum)
        return
    _state["previous_hook"](unraisable)


def pending() -> Interrupted | None:
    """The signal being handled, if one came: C code that calls back into Python (matplotlib's
    transforms) can turn the :class:`Interrupted` raised inside it into its own error (a
    ``ValueError``); the caller re-raises this instead."""
    return Interrupted(_state["signum"]) if _state["interrupted"] else None


def install() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` (main thread only).

    A signal the parent set to be ignored (``nohup`` ignores SIGHUP) stays ignored.
    """
    for signum in SIGNALS:
        if signal.getsignal(signum) == signal.SIG_IGN:
            continue
        signal.signal(signum, _handler)
    if sys.unraisablehook is not _unraisable:
        _state["previous_hook"] = sys.unraisablehook
        sys.unraisablehook = _unraisable


@contextlib.contextmanager
def deferred():
    """Hold SIGINT/SIGTERM/SIGHUP while the block runs (renaming the outputs into place,
    removing staged files); a signal that came meanwhile is delivered at the end."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:
        yield
        return
    try:
        previous = mask(signal.SIG_BLOCK, SIGNALS)
    except (OSError, ValueError):  # not the main thread of a process that can block
        yield
        return
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


def pause(phase: str) -> None:
    """Test-only: sleep at ``phase`` when ``REGCLI_TEST_PAUSE`` is ``phase:FILE`` (after
    creating ``FILE``, so the test knows the run got there)."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    wanted, _, marker = spec.partition(":")
    if wanted != phase:
        return
    if marker:
        with open(marker, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + PAUSE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
