"""The ``regcli`` group: help, version, ``python -m regcli``, -q/-v, fast start-up (no heavy
imports for --help) and errors turned into exit codes without tracebacks."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from regcli.cli.main import COMMANDS, cli
from regcli.io import write_image, write_transform_json

HEAVY = ("matplotlib", "scipy.optimize")


def modules_after_each(argvs: list[list[str]]) -> list[set[str]]:
    """sys.modules after each ``regcli *argv`` of ``argvs``, run in turn in one fresh
    interpreter (one start-up for all, so a module is charged to the first step loading it)."""
    code = (
        "import sys, json\n"
        "from regcli.cli.main import cli\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        cli(argv, prog_name='regcli')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (argv, exc.code)\n"
        "    print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argvs)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith('["')]
    return [set(json.loads(line)) for line in lines]


def test_help_lists_commands_and_conventions(run_regcli):
    proc = run_regcli("--help")
    assert proc.returncode == 0, proc.stderr
    for name in ("translate", "rotate", "apply"):
        assert name in proc.stdout
    text = " ".join(proc.stdout.split())
    assert "fixed pixel to the moving pixel" in text
    assert "Exit codes: 0 success, 1 runtime failure, 2 usage error" in text


def test_version(run_regcli):
    proc = run_regcli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"regcli, version {metadata.version('regcli')}"
    assert run_regcli("-V").stdout == proc.stdout


def test_version_has_one_source():
    """pyproject.toml reads the version from regcli.__version__ (installed metadata agrees),
    and --version prints it without importing numpy."""
    import regcli

    assert metadata.version("regcli") == regcli.__version__
    steps = modules_after_each([["--version"]])
    assert not any(m.split(".")[0] == "numpy" for m in steps[0])


def test_every_command_module_loads():
    assert cli.list_commands(None) == list(COMMANDS)
    for name in COMMANDS:
        assert cli.get_command(None, name).name == name


def test_a_missing_command_module_is_an_error(monkeypatch):
    import regcli.cli.main

    monkeypatch.setitem(regcli.cli.main.COMMANDS, "nothing", "nothing")
    with pytest.raises(ModuleNotFoundError, match=r"regcli\.cli\.nothing"):
        cli.get_command(None, "nothing")
    assert cli.get_command(None, "regsiter") is None  # not a command: click says so


def test_python_dash_m(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "regcli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: python -m regcli" in proc.stdout or "Usage: regcli" in proc.stdout
    assert "translate" in proc.stdout


def test_help_imports_nothing_heavy():
    """`regcli --help` loads no numpy/scipy/matplotlib; no `regcli CMD --help` loads
    matplotlib or scipy.optimize (the start-up rule of docs/DESIGN.md)."""
    commands = list(COMMANDS)
    steps = modules_after_each([["--help"]] + [[name, "--help"] for name in commands])
    group = sorted(m for m in steps[0] if m.split(".")[0] in ("numpy", "scipy", "matplotlib"))
    assert group == [], f"`regcli --help` imported {group[:5]}"
    for name, modules in zip(commands, steps[1:], strict=True):
        found = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
        assert found == [], f"`regcli {name} --help` imported {found[:5]}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help_with_examples(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {command}" in result.output or f"Usage: regcli {command}" in result.output
    assert "--json" in result.output or command == "profile"


def test_unknown_command_is_a_usage_error(runner):
    result = runner.invoke(cli, ["regsiter"])
    assert result.exit_code == 2
    assert "No such command 'regsiter'" in result.output


def test_no_arguments_shows_usage(runner):
    result = runner.invoke(cli, [])
    assert result.exit_code in (0, 2)
    assert "Usage:" in result.output


@pytest.fixture
def rgb_png(tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "rgb.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return tmp_path / "rgb.png"


def test_quiet_silences_notes_and_verbose_is_accepted(run_regcli, tmp_path, rgb_png):
    # similarity registers nothing but reads images as registration does: colour -> luminance
    normal = run_regcli("similarity", rgb_png, rgb_png, "--metric", "ssd")
    assert normal.returncode == 0, normal.stderr
    assert "converted RGB image to grey" in normal.stderr
    quiet = run_regcli("-q", "similarity", rgb_png, rgb_png, "--metric", "ssd")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.startswith("metric")
    verbose = run_regcli("-vv", "similarity", rgb_png, rgb_png, "--metric", "ssd")
    assert verbose.returncode == 0, verbose.stderr
    assert "converted RGB image to grey" in verbose.stderr


def test_json_goes_to_stdout_and_notes_to_stderr(run_regcli, tmp_path, rgb_png):
    proc = run_regcli("similarity", rgb_png, rgb_png, "--metric", "ssd", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # exactly one JSON object, nothing else
    assert report["ssd"] == 0.0
    assert "converted RGB" in proc.stderr
    assert "converted RGB" not in proc.stdout


def test_disk_error_while_writing_is_one_line_exit_1(runner, tmp_path, monkeypatch):
    import regcli.io

    src = write_image(tmp_path / "in.png", np.zeros((8, 8), np.uint8))
    transform = write_transform_json(tmp_path / "t.json", np.eye(3))
    out = tmp_path / "out.png"

    def full_disk(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(regcli.io, "write_image", full_disk)
    result = runner.invoke(cli, ["apply", str(src), str(transform), "-o", str(out)])
    assert result.exit_code == 1
    assert f"Error: No space left on device: {out}" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_out_of_memory_is_one_line_exit_1(runner, tmp_path, monkeypatch):
    import regcli.resample

    src = write_image(tmp_path / "in.png", np.zeros((8, 8), np.uint8))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(regcli.resample, "warp", no_memory)
    result = runner.invoke(cli, ["translate", str(src), "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 1
    assert "Error: out of memory" in result.output
    assert not (tmp_path / "o.png").exists()


def test_verbose_shows_regcli_debug_lines_and_not_other_libraries(run_regcli, tmp_path, rgb_png):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    proc = run_regcli("-vv", "translate", "broken.png", cwd=tmp_path)
    assert proc.returncode == 1
    assert "regcli: broken.png: ValueError" in proc.stderr  # regcli's own debug line
    proc = run_regcli("-vv", "similarity", rgb_png, rgb_png, "--metric", "ssd")
    assert proc.returncode == 0, proc.stderr
    assert "converted RGB image to grey" in proc.stderr
    assert "STREAM" not in proc.stderr  # Pillow's PNG chunk debug lines stay off
    assert all(line.startswith("regcli: ") for line in proc.stderr.splitlines()), proc.stderr


def test_only_the_regcli_logger_is_configured(runner, tmp_path, rgb_png):
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    for _ in range(2):
        result = runner.invoke(cli, ["-vv", "similarity", str(rgb_png), str(rgb_png), "-m", "ssd"])
        assert result.exit_code == 0, result.output
        assert "regcli: " in result.stderr and "converted RGB image to grey" in result.stderr
    assert (root.level, root.handlers) == (level, handlers)
    regcli_logger = logging.getLogger("regcli")
    assert regcli_logger.level == logging.DEBUG
    assert len(regcli_logger.handlers) == 1  # configured again, not added twice
    result = runner.invoke(cli, ["-q", "similarity", str(rgb_png), str(rgb_png), "-m", "ssd"])
    assert result.exit_code == 0 and result.stderr == ""
    assert regcli_logger.level == logging.ERROR


def test_quiet_after_the_subcommand_counts_with_the_group(runner, monkeypatch):
    """`regcli register A B -q` and `regcli -q register A B` give the same verbosity; one
    -q option serves the group, register and compare."""
    import click

    from regcli.cli import helpers, options
    from regcli.errors import RegcliError

    seen = []

    def record(**kwargs):  # the first thing both commands do
        seen.append(helpers.verbosity(click.get_current_context()))
        raise RegcliError("stop here")

    monkeypatch.setattr(helpers, "check_register_options", record)
    for command in ("register", "compare"):
        for args, expected in [
            ([command, "a.png", "b.png"], 0),
            ([command, "a.png", "b.png", "-q"], -1),
            (["-q", command, "a.png", "b.png"], -1),
            (["-v", command, "a.png", "b.png", "-qq"], -1),
        ]:
            seen.clear()
            assert runner.invoke(cli, args).exit_code == 1
            assert seen == [expected], args
        (quiet,) = [p for p in cli.get_command(None, command).params if p.name == "quiet"]
        (group_quiet,) = [p for p in cli.params if p.name == "quiet"]
        assert quiet.callback is group_quiet.callback is options._count_verbosity


def test_the_command_runs_with_one_blas_thread_and_a_malloc_pad_unless_the_user_chose(monkeypatch):
    import os

    import regcli.cli.main as entry
    from regcli.cli import _plot_helper, interrupts

    calls = []
    monkeypatch.setattr(interrupts, "install", lambda: None)  # keep pytest's signal handlers
    monkeypatch.setitem(_plot_helper.STANDALONE, "enabled", False)  # (main sets it)
    monkeypatch.setattr(
        entry,
        "cli",
        lambda **kw: calls.append(
            (os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("MALLOC_TOP_PAD_"))
        ),
    )
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
    entry.main()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setenv("MALLOC_TOP_PAD_", "4096")
    entry.main()
    assert calls == [("1", str(16 << 20)), ("3", "4096")]
