"""Draw ``register``'s cost curve in a helper process while the command does everything else.

Importing matplotlib and drawing the cost curve take about 0.3 s, half of a ``regcli
register`` run on two 256^2 images.  :meth:`CostPlotHelper.start` forks a helper at the
start of the command; it imports matplotlib while the command imports the engine, reads
and registers, then waits for the curve (:meth:`CostPlotHelper.send`), draws it into the
staged file and exits.  The command meanwhile writes its other outputs, then waits for it
(:meth:`CostPlotHelper.finish`).  If the helper fails, is killed or is not there, the
command draws the curve itself: the figure is the same either way.

The helper is used only where forking is safe and cheap: Linux, the console script (one
command per process, so not inside a test runner's process or an embedding program), and
no other thread running.  It never outlives the command's output set: :meth:`close` kills
and reaps it before anything staged is removed, so an interrupted run leaves nothing
behind; if the command itself is killed, the helper sees its pipe close and exits.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

#: Set by :func:`regcli.cli.main.main`: this process runs one command of the console script.
STANDALONE = {"enabled": False}
#: Longest wait for the helper to finish drawing (seconds); then the command draws itself.
WAIT_SECONDS = 60.0


def _draw_in_helper(read_fd: int) -> None:
    """The helper's whole life: never returns."""
    code = 1
    try:
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        import pickle

        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401  (imported first: the slow part)

        from regcli.plots import plot_cost_curve

        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        if data:
            costs, path, options = pickle.loads(data)
            plot_cost_curve(costs, path, **options)
            code = 0
    except BaseException:  # any failure: the command draws the curve itself
        code = 1
    finally:
        os._exit(code)


class CostPlotHelper:
    """A forked process that draws one cost curve (see the module docstring)."""

    def __init__(self, pid: int, write_fd: int):
        self.pid = pid
        self._write_fd: int | None = write_fd
        self._sent = False

    @classmethod
    def start(cls) -> CostPlotHelper | None:
        """Fork the helper, or return ``None`` where it is not used."""
        if not STANDALONE["enabled"] or not sys.platform.startswith("linux"):
            return None
        if threading.active_count() != 1 or not hasattr(os, "fork"):
            return None
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the helper
            os.close(write_fd)
            _draw_in_helper(read_fd)
        os.close(read_fd)
        return cls(pid, write_fd)

    def send(self, costs, path, **options) -> None:
        """Hand the curve to the helper: it draws ``plot_cost_curve(costs, path, **options)``."""
        import pickle

        if self._write_fd is None:
            return
        data = pickle.dumps((costs, os.fspath(path), options), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with os.fdopen(self._write_fd, "wb") as pipe:
                pipe.write(data)
            self._sent = True
        except OSError:  # the helper is gone: the command draws the curve itself
            pass
        finally:
            self._write_fd = None

    def finish(self) -> bool:
        """Wait for the helper; True if it drew the curve (the file is written)."""
        if not self._sent or self.pid is None:
            self.close()
            return False
        from regcli.cli import interrupts

        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with interrupts.deferred():  # a reaped helper is forgotten at once
                done, status = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    self.pid = None
            if done:
                return os.waitstatus_to_exitcode(status) == 0
            time.sleep(0.002)
        self.close()
        return False

    def close(self) -> None:
        """Stop the helper if it still runs, and reap it, signals held meanwhile: once this
        returns, the helper writes nothing more."""
        from regcli.cli import interrupts

        with interrupts.deferred():
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None
            if self.pid is None:
                return
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None
