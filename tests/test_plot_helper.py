"""register's cost-curve helper process: it draws the same figure as the command would, the
command draws it itself when the helper is gone, and no helper outlives its command.

The helper forks, so each case runs in a fresh single-threaded interpreter (a test runner's
process has threads, where the helper is never used)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork: Linux only")

SETUP = """
import os, signal, sys, threading
import numpy as np
from regcli.cli import _plot_helper
from regcli.plots import plot_cost_curve

folder = sys.argv[1]
costs = np.array([0.5, 0.3, 0.25, 0.4, 0.2, 0.19])
options = {"level_starts": [0, 3], "level_shapes": [(64, 64), (128, 128)],
           "cost_label": "ssd per pixel", "title": "m.png onto f.png\\nmetric ssd"}
_plot_helper.STANDALONE["enabled"] = True

def gone(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
"""


def _run(tmp_path, body: str) -> str:
    script = SETUP + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_helper_draws_the_figure_the_command_would(tmp_path):
    out = _run(
        tmp_path,
        """
        helper = _plot_helper.CostPlotHelper.start()
        assert helper is not None
        pid = helper.pid
        helper.send(costs, os.path.join(folder, "helper.png"), **options)
        print(helper.finish(), gone(pid))
        plot_cost_curve(costs, os.path.join(folder, "here.png"), **options)
        """,
    )
    assert out.split() == ["True", "True"]
    assert (tmp_path / "helper.png").read_bytes() == (tmp_path / "here.png").read_bytes()


def test_a_killed_helper_means_the_command_draws_and_closing_leaves_nothing(tmp_path):
    out = _run(
        tmp_path,
        """
        helper = _plot_helper.CostPlotHelper.start()
        os.kill(helper.pid, signal.SIGKILL)
        helper.send(costs, os.path.join(folder, "never.png"), **options)
        print(helper.finish())
        idle = _plot_helper.CostPlotHelper.start()  # closed before it got anything to draw
        pid = idle.pid
        idle.close()
        print(gone(pid), sorted(os.listdir(folder)))
        """,
    )
    assert out.split("\n")[:2] == ["False", "True []"]


def test_no_helper_outside_the_console_script_or_beside_other_threads(tmp_path):
    out = _run(
        tmp_path,
        """
        _plot_helper.STANDALONE["enabled"] = False
        print(_plot_helper.CostPlotHelper.start())
        _plot_helper.STANDALONE["enabled"] = True
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait)
        worker.start()
        print(_plot_helper.CostPlotHelper.start())
        stop.set()
        worker.join()
        """,
    )
    assert out.split() == ["None", "None"]
