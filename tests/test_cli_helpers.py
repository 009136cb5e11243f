"""The helpers of ``regcli.cli`` that are not options: JSON, text, logging, outputs, and the
mapping of core errors to usage errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
import numpy as np
import pytest

from regcli.cli import helpers
from regcli.cli.main import cli
from regcli.errors import InputError


def test_echo_json_is_regcli_json(capsys):
    helpers.echo_json(
        {"b": np.float32(0.5), "a": np.eye(2), "nan": np.nan, "path": Path("x/y.png"), "n": 3}
    )
    text = capsys.readouterr().out
    assert (
        text
        == '{"a": [[1.0, 0.0], [0.0, 1.0]], "b": 0.5, "n": 3, "nan": null, "path": "x/y.png"}\n'
    )


def test_result_report_is_to_dict_plus_cli_keys():
    from regcli.registration import register

    image = np.zeros((48, 48))
    image[14:30, 16:34] = 1.0
    result = register(image, np.roll(image, 2, axis=1), transform="translation", levels=1)
    report = helpers.result_report(result, fixed="f.png", moving="m.png")
    expected = {k: v for k, v in result.to_dict().items() if k != "cost_history"}
    assert {k: v for k, v in report.items() if k in expected} == expected
    assert report["levels"] == len(result.level_starts) == 1
    assert (report["fixed"], report["moving"]) == ("f.png", "m.png")
    assert "cost_history" not in report
    json.dumps(report, allow_nan=False)  # JSON-able as it is


def test_plural_and_format_params():
    assert helpers.plural(1, "iteration") == "1 iteration"
    assert helpers.plural(3, "iteration") == "3 iterations"
    params = {"angle_deg": -18.0213, "tx": 0.0001234, "center": [1.0, 2.0]}
    assert helpers.format_params(params) == "angle_deg=-18.021, tx=0.0001234"


def test_default_output_is_in_the_current_folder():
    assert helpers.default_output(Path("a/b/scan.tif"), "rotated") == Path("scan_rotated.tif")


def test_progress_bar_reports_on_stderr(capsys):
    with helpers.progress_bar(enabled=True, description="nag") as tick:
        for iteration in range(3):
            tick(iteration, 1.0 / (iteration + 1), None)
    assert "nag" in capsys.readouterr().err
    with helpers.progress_bar(enabled=False, description="nag") as tick:
        assert tick is None


def test_read_pair_names_both_files(tmp_path):
    from regcli.io import write_image

    a = write_image(tmp_path / "a.png", np.zeros((4, 5), np.uint8))
    b = write_image(tmp_path / "b.png", np.zeros((6, 5), np.uint8))
    assert helpers.read_pair(a, a)[0].shape == (4, 5)
    with pytest.raises(InputError, match=r"a\.png and .*b\.png must have the same shape"):
        helpers.read_pair(a, b)


def test_inputs_named_puts_file_names_into_core_messages():
    with (
        pytest.raises(InputError, match=r"^m\.png \(moving image\): the image is constant$"),
        helpers.inputs_named(fixed=Path("f.png"), moving=Path("m.png")),
    ):
        raise InputError("moving: the image is constant", param="moving")
    with (
        pytest.raises(InputError, match=r"^bins: too few$") as info,
        helpers.inputs_named(fixed=Path("f.png"), moving=Path("m.png")),
    ):
        raise InputError("bins: too few", param="bins")
    assert info.value.param == "bins"  # other errors pass unchanged, param and all


# --------------------------------------------------------------------------- core errors


def test_usage_error_names_the_option_with_the_core_reason():
    command = cli.get_command(None, "register")
    ctx = click.Context(cli, info_name="regcli")
    usage = helpers.usage_error(
        InputError("learning_rate: expected a finite number > 0", param="learning_rate"),
        command,
        ctx,
    )
    assert isinstance(usage, click.BadParameter)
    assert usage.format_message() == "Invalid value for '--lr': expected a finite number > 0"
    assert usage.ctx.command is command and usage.ctx.parent is ctx


@pytest.mark.parametrize("param", [None, "fixed", "moving", "tolerance", "initial_matrix"])
def test_core_errors_that_are_not_about_an_option_are_not_usage_errors(param):
    command = cli.get_command(None, "register")
    ctx = click.Context(cli, info_name="regcli")
    error = InputError(f"{param}: bad", param=param)
    assert helpers.usage_error(error, command, ctx) is None


# --------------------------------------------------------------------------- logging


@pytest.fixture
def regcli_logger():
    """The ``regcli`` logger, put back as it was afterwards."""
    logger = logging.getLogger("regcli")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.mark.parametrize(
    ("count", "level"),
    [
        (3, logging.DEBUG),
        (2, logging.DEBUG),
        (1, logging.INFO),
        (0, logging.WARNING),
        (-1, logging.ERROR),
        (-2, logging.ERROR),
    ],
)
def test_configure_logging_sets_only_the_regcli_logger(regcli_logger, count, level):
    root = logging.getLogger()
    root_state = (root.level, list(root.handlers))
    pil_level = logging.getLogger("PIL").level
    helpers.configure_logging(count)
    helpers.configure_logging(count)
    assert regcli_logger.level == level
    assert sum(isinstance(h, helpers._StderrHandler) for h in regcli_logger.handlers) == 1
    assert (root.level, list(root.handlers)) == root_state
    assert logging.getLogger("PIL").level == pil_level


def test_log_lines_go_to_the_current_stderr(regcli_logger, capsys):
    helpers.configure_logging(1)
    regcli_logger.info("hello %s", "there")
    logging.getLogger("PIL.PngImagePlugin").info("not ours")
    assert capsys.readouterr().err == "regcli: hello there\n"


def test_output_set_retire_removes_an_earlier_output_only_with_overwrite(tmp_path):
    from regcli.cli.outputs import OutputSet

    (tmp_path / "old.png").write_text("earlier run")
    with OutputSet(tmp_path) as out:
        out.stage("new.json").write_text("1")
        out.retire("old.png")
    assert (tmp_path / "old.png").exists() and out.removed == []
    with OutputSet(tmp_path, overwrite=True) as out:
        out.stage("new.json").write_text("2")
        out.retire("old.png")
        out.retire("gone.png")  # (nothing of that name: nothing to do)
    assert not (tmp_path / "old.png").exists() and out.removed == [tmp_path / "old.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json"]


def test_output_set_puts_a_retired_output_back_when_the_commit_fails(tmp_path, monkeypatch):
    import os

    from regcli.cli.outputs import OutputSet

    (tmp_path / "new.json").write_text("old")
    (tmp_path / "old.png").write_text("earlier run")
    real_rename = os.rename

    def rename(src, dst):
        if Path(src) == tmp_path / "old.png":
            raise OSError(5, "Input/output error", str(src))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError), OutputSet(tmp_path, overwrite=True) as out:
        out.stage("new.json").write_text("new")
        out.retire("old.png")
    monkeypatch.undo()
    assert (tmp_path / "new.json").read_text() == "old"
    assert (tmp_path / "old.png").read_text() == "earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "old.png"]
