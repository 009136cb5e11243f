"""Bad input for every command: tables, each with one generic test.

Each case runs a command on a prepared folder and checks: the documented exit code (1 for a
file that cannot be used, 2 for a bad option), one clear ``Error:`` line naming the file or
option, no traceback, and the folder exactly as it was (no output or temporary file left, the
inputs and any existing output byte-identical).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
import tifffile

from regcli.cli.main import cli
from regcli.errors import InputError
from regcli.io import write_image, write_transform_json


@pytest.fixture
def folder(tmp_path) -> Path:
    """A folder of good and bad inputs (names used by the cases below)."""
    rng = np.random.default_rng(0)
    write_image(tmp_path / "good.png", rng.integers(0, 256, (24, 28), dtype=np.uint8))
    write_image(tmp_path / "float.tif", rng.random((24, 28)).astype(np.float32))
    write_image(tmp_path / "existing.png", np.zeros((5, 5), np.uint8))
    write_transform_json(tmp_path / "ident.json", np.eye(3))
    (tmp_path / "text.png").write_text("not a picture\n")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "adir").mkdir()
    tifffile.imwrite(
        tmp_path / "stack.tif", np.zeros((3, 6, 7), np.uint8), photometric="minisblack"
    )
    np.save(tmp_path / "stack5.npy", np.zeros((6, 7, 5)))
    np.save(tmp_path / "nan.npy", np.where(np.eye(4) > 0, np.nan, 1.0))
    tifffile.imwrite(tmp_path / "inf.tif", np.array([[1.0, np.inf], [2.0, 3.0]], np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 4)))
    (tmp_path / "bad.json").write_text('{"matrix": [[1, 0, 0], [0, 1, 0]')
    (tmp_path / "nomatrix.json").write_text(json.dumps({"params": {"tx": 1}}))
    (tmp_path / "singular.json").write_text(
        json.dumps({"matrix": [[0, 0, 0], [0, 0, 0], [0, 0, 1]]})
    )
    (tmp_path / "shape.json").write_text(
        json.dumps({"matrix": np.eye(3).tolist(), "fixed_shape": [-3, 4]})
    )
    return tmp_path


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


# Image files that no command can use: (file, what the message must say).
BAD_IMAGES = [
    ("nope.png", "nope.png: no such file"),
    ("adir", "adir: is a directory"),
    ("text.png", "text.png: not a readable image"),
    ("empty.png", "empty.png: the file is empty"),
    ("stack.tif", "stack.tif: got a 3-D stack of shape (3, 6, 7)"),
    ("stack5.npy", "stack5.npy: got a 3-D stack of shape (6, 7, 5)"),
    ("nan.npy", "nan.npy: 4 pixel(s) are NaN or infinite"),
    ("inf.tif", "inf.tif: 1 pixel(s) are NaN or infinite"),
    ("empty.npy", "empty.npy: the image is empty"),
]

# How each command takes an image to read ({img}) and an output ({out}).
IMAGE_SLOTS = {
    "translate": ["translate", "{img}", "--dx", "1", "-o", "{out}"],
    "rotate": ["rotate", "{img}", "--angle", "5", "-o", "{out}"],
    "apply": ["apply", "{img}", "ident.json", "-o", "{out}"],
    "apply --like": ["apply", "good.png", "ident.json", "--like", "{img}", "-o", "out.png"],
    # the other commands read images with the same helper; checked here with the same table
    "similarity 1": ["similarity", "{img}", "good.png"],
    "similarity 2": ["similarity", "good.png", "{img}"],
    "jointhist 1": ["jointhist", "{img}", "good.png", "-o", "h.png"],
    "jointhist 2": ["jointhist", "good.png", "{img}", "-o", "h.png"],
    "register 1": ["-q", "register", "{img}", "good.png", "-o", "outdir"],
    "register 2": ["-q", "register", "good.png", "{img}", "-o", "outdir"],
    "compare 2": ["-q", "compare", "good.png", "{img}", "-o", "cmp.png"],
}

# Output problems, for every command: (output, extra args, exit code, what the message must
# say).  An ending regcli cannot write is a bad option value (2); the rest are runtime (1).
BAD_OUTPUTS = [
    ("out.gif", [], 2, "out.gif: unknown image format '.gif'"),
    ("noending", [], 2, "noending: unknown image format '(no ending)'"),
    ("existing.png", [], 1, "existing.png: already exists; pass --overwrite"),
    ("good.png", ["--overwrite"], 1, "good.png: refusing to overwrite the input file"),
    ("missing/out.png", [], 1, "missing/out.png: folder missing does not exist"),
    ("adir", ["--overwrite"], 1, "adir: is a directory"),
    ("sub.png/", [], 2, "'-o' / '--output': 'sub.png/' ends in '/', which names a folder"),
    ("", [], 2, "'-o' / '--output': the path is empty; give a file name"),
]
OUTPUT_SLOTS = {
    "translate": ["translate", "good.png", "--dx", "1", "-o"],
    "rotate": ["rotate", "good.png", "--angle", "5", "-o"],
    "apply": ["apply", "good.png", "ident.json", "-o"],
}

# Everything else, command by command: (args, exit code, what the message must say).
OTHER_CASES = {
    "float image to png": (
        ["translate", "float.tif", "-o", "f.png"],
        1,
        ".png cannot store float32",
    ),
    "float image to jpg": (
        ["rotate", "float.tif", "--angle", "1", "-o", "f.jpg"],
        1,
        "f.jpg: .jpg",
    ),
    "dx not a number": (["translate", "good.png", "--dx", "abc"], 2, "'--dx': expected a number"),
    "dx nan": (["translate", "good.png", "--dx", "nan"], 2, "'--dx': expected a finite number"),
    "dy inf": (["translate", "good.png", "--dy", "-inf"], 2, "'--dy'"),
    "order too big": (["translate", "good.png", "--order", "7"], 2, "'--order'"),
    "order not int": (["rotate", "good.png", "--angle", "1", "--order", "x"], 2, "'--order'"),
    "order negative": (
        ["apply", "good.png", "ident.json", "-o", "o.png", "--order", "-1"],
        2,
        "'--order'",
    ),
    "fill nan": (["translate", "good.png", "--fill", "nan"], 2, "'--fill'"),
    "angle missing": (["rotate", "good.png"], 2, "'--angle'"),
    "angle not a number": (
        ["rotate", "good.png", "--angle", "ten"],
        2,
        "'--angle': expected a number",
    ),
    "angle inf": (["rotate", "good.png", "--angle", "inf"], 2, "'--angle'"),
    "center word": (["rotate", "good.png", "--angle", "5", "--center", "middle"], 2, "'--center'"),
    "center 3 numbers": (
        ["rotate", "good.png", "--angle", "5", "--center", "1,2,3"],
        2,
        "'--center'",
    ),
    "center nan": (["rotate", "good.png", "--angle", "5", "--center", "nan,2"], 2, "'--center'"),
    "unknown option": (["translate", "good.png", "--dz", "1"], 2, "--dz"),
    "apply without -o": (["apply", "good.png", "ident.json"], 2, "'-o'"),
    "transform missing": (
        ["apply", "good.png", "nope.json", "-o", "o.png"],
        1,
        "nope.json: no such file",
    ),
    "transform invalid": (
        ["apply", "good.png", "bad.json", "-o", "o.png"],
        1,
        "bad.json: not valid JSON",
    ),
    "transform no matrix": (
        ["apply", "good.png", "nomatrix.json", "-o", "o.png"],
        1,
        'nomatrix.json: no "matrix" key',
    ),
    "transform singular": (
        ["apply", "good.png", "singular.json", "-o", "o.png"],
        1,
        "singular.json: matrix: the matrix is singular",
    ),
    "transform bad shape": (
        ["apply", "good.png", "shape.json", "-o", "o.png"],
        1,
        "shape.json: fixed_shape",
    ),
    "transform is a png": (
        ["apply", "good.png", "good.png", "-o", "o.png"],
        1,
        "good.png: not a text file",
    ),
    "transform is a dir": (["apply", "good.png", "adir", "-o", "o.png"], 1, "adir: is a directory"),
    "save-transform exists": (
        ["translate", "good.png", "-o", "o.png", "--save-transform", "ident.json"],
        1,
        "ident.json: already exists",
    ),
    "save-transform not json": (
        ["translate", "good.png", "-o", "o.png", "--save-transform", "t2.png"],
        2,
        "'--save-transform': t2.png: unknown transform format '.png'; use one of .json",
    ),
    "save-transform folder": (
        ["rotate", "good.png", "--angle", "1", "--save-transform", "t/"],
        2,
        "'--save-transform': 't/' ends in '/'",
    ),
    "npy folder": (["jointhist", "good.png", "good.png", "--npy", "h.npy/"], 2, "'--npy'"),
    "register -o empty": (
        ["register", "good.png", "good.png", "-o", ""],
        2,
        "'-o' / '--output': the path is empty; give a folder name",
    ),
    "register empty fixed": (["register", "", "good.png"], 2, "'FIXED': the path is empty"),
    "apply empty transform": (["apply", "good.png", "", "-o", "o.png"], 2, "the path is empty"),
    "save-transform is input": (
        [
            "rotate",
            "good.png",
            "--angle",
            "1",
            "-o",
            "o.png",
            "--save-transform",
            "good.png",
            "--overwrite",
        ],
        2,  # (its ending refuses it first: an image is never a transform JSON)
        "'--save-transform': good.png: unknown transform format '.png'",
    ),
}


# The resampling commands move NaN pixels as "no data" (a float image, such as register's
# aligned output, may hold them): nan.npy is no error there (tests/test_cli_apply.py).
NAN_MOVERS = ("translate", "rotate", "apply", "apply --like")

# The commands that take NaN pixels as masked (too few are left in these files, and an
# infinite pixel is an error all the same): (command, file) -> what the message must say.
NAN_READERS = {
    ("register 1", "nan.npy"): "nan.npy (fixed image): only 12 pixel(s)",
    ("register 2", "nan.npy"): "nan.npy (moving image): only 12 pixel(s)",
    ("similarity 1", "nan.npy"): "must have the same shape",
    ("similarity 2", "nan.npy"): "must have the same shape",
    **{
        (command, "inf.tif"): "inf.tif: 1 pixel(s) are infinite"
        for command in ("register 1", "register 2", "similarity 1", "similarity 2", *NAN_MOVERS)
    },
}


def cases():
    for (bad, message), (command, template) in (
        (b, c) for b in BAD_IMAGES for c in IMAGE_SLOTS.items()
    ):
        if bad == "nan.npy" and command in NAN_MOVERS:
            continue
        message = NAN_READERS.get((command, bad), message)
        args = [a.replace("{img}", bad).replace("{out}", "out.tif") for a in template]
        yield pytest.param(args, 1, message, id=f"{command}: image {bad}")
    for output, extra, code, message in BAD_OUTPUTS:
        for command, template in OUTPUT_SLOTS.items():
            yield pytest.param(
                [*template, output, *extra], code, message, id=f"{command}: -o {output}"
            )
    for name, (args, code, message) in OTHER_CASES.items():
        yield pytest.param(args, code, message, id=name)


@pytest.mark.parametrize(("args", "code", "message"), list(cases()))
def test_bad_input(runner, folder, monkeypatch, args, code, message):
    monkeypatch.chdir(folder)
    before = snapshot(folder)
    result = runner.invoke(cli, args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert result.stdout == ""
    assert snapshot(folder) == before  # no output, no temp file; inputs untouched


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["translate", "text.png", "--dx", "1"], 1, "text.png: not a readable image"),
        (["rotate", "stack.tif", "--angle", "3"], 1, "stack.tif: got a 3-D stack"),
        (["apply", "good.png", "bad.json", "-o", "o.png"], 1, "bad.json: not valid JSON"),
        (["translate", "good.png", "-o", "good.png", "--overwrite"], 1, "refusing to overwrite"),
        (["rotate", "good.png", "--angle", "x"], 2, "'--angle'"),
    ],
)
def test_bad_input_in_a_real_subprocess(run_regcli, folder, args, code, message):
    before = snapshot(folder)
    proc = run_regcli(*args, cwd=folder)
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert proc.stdout == ""
    assert snapshot(folder) == before


# --------------------------------------------------------------------------- core errors


def options_feeding(command: str, function) -> list:
    """The options of ``command`` whose Python name is a keyword argument of ``function``."""
    import inspect

    keywords = set(inspect.signature(function).parameters)
    params = cli.get_command(None, command).params
    return [p for p in params if isinstance(p, click.Option) and p.name in keywords]


def core_cases():
    from regcli.profile import cost_profile
    from regcli.registration import register

    for command, target, function in [
        ("register", "regcli.registration.register", register),
        ("compare", "regcli.registration.register", register),
        ("profile", "regcli.profile.cost_profile", cost_profile),
    ]:
        for option in options_feeding(command, function):
            yield pytest.param(command, target, option.name, id=f"{command} {option.opts[-1]}")
    # compare runs one registration per name of --opts: the core's "optimizer" is --opts there
    yield pytest.param("compare", "regcli.registration.register", "optimizer", id="compare --opts")


@pytest.mark.parametrize(("command", "target", "name"), list(core_cases()))
def test_every_core_error_about_an_option_is_a_usage_error_naming_it(
    runner, samples, tmp_path, monkeypatch, command, target, name
):
    """Whatever the core checks, an InputError(param=...) about an option's value exits 2
    with the option's flags and the core's reason, and writes nothing."""

    def refuse(*args, **kwargs):
        raise InputError(f"{name}: stand-in reason", param=name)

    monkeypatch.setattr(target, refuse)
    monkeypatch.chdir(tmp_path)
    fixed, moving = samples / "BrainMRI_1.png", samples / "BrainMRI_2.png"
    result = runner.invoke(cli, [command, str(fixed), str(moving)])
    option = "optimizers" if (command, name) == ("compare", "optimizer") else name
    (param,) = [p for p in cli.get_command(None, command).params if p.name == option]
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {param.get_error_hint(None)}: stand-in reason" in result.stderr
    assert f"Usage: cli {command}" in result.stderr or f"Usage: regcli {command}" in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [None, "fixed", "moving", "tolerance", "init_stand_in"])
def test_core_errors_not_about_an_option_exit_1(runner, samples, tmp_path, monkeypatch, name):
    def refuse(*args, **kwargs):
        raise InputError(f"{name}: stand-in reason", param=name)

    monkeypatch.setattr("regcli.registration.register", refuse)
    monkeypatch.chdir(tmp_path)
    fixed, moving = samples / "BrainMRI_1.png", samples / "BrainMRI_2.png"
    result = runner.invoke(cli, ["register", str(fixed), str(moving)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "stand-in reason" in errors[0]
    assert "Usage:" not in result.stderr


# Bad option values that reach the core's checks (or, until the core raises param=..., the
# CLI's stand-in for them): (command, extra arguments, the option named).
BAD_OPTION_VALUES = [
    ("register", ["--metric", "mi", "--bins", "3"], "'--bins'"),
    ("register", ["--metric", "mi", "--bins", "2"], "'--bins'"),
    ("register", ["--metric", "nmi", "--bins", "2000"], "'--bins'"),
    ("register", ["--bins", "32"], "'--bins'"),
    ("register", ["--gamma", "nan"], "'--gamma'"),
    ("register", ["--opt", "momentum", "--gamma", "1"], "'--gamma'"),
    ("register", ["--opt", "gd", "--gamma", "0.5"], "'--gamma'"),
    ("register", ["--opt", "adam", "--beta", "nan"], "'--beta'"),
    ("register", ["--opt", "adam", "--beta", "0"], "'--beta'"),
    ("register", ["--opt", "nag", "--beta", "0.5"], "'--beta'"),
    ("register", ["--metric", "pluim", "--opt", "gd"], "'--opt'"),
    ("register", ["--metric", "gradient", "--opt", "adam"], "'--opt'"),
    ("register", ["--lr", "1e-400"], "'--lr'"),
    ("register", ["--lr", "inf"], "'--lr'"),
    ("register", ["--opt", "lm", "--lr", "0.1"], "'--lr'"),
    ("register", ["--iters", "0"], "'--iters'"),
    ("register", ["--levels", "0"], "'--levels'"),
    ("register", ["--metric", "ssd", "--sigma", "1"], "'--sigma'"),
    ("register", ["--metric", "gradient", "--sigma", "nan"], "'--sigma'"),
    ("register", ["--metric", "pluim", "--sigma", "-1"], "'--sigma'"),
    ("register", ["--center", "1,2,3"], "'--center'"),
    ("register", ["--init", "bogus"], "'--init'"),
    ("register", ["--transform", "bogus"], "'--transform'"),
    ("register", ["--metric", "bogus"], "'--metric'"),
    ("register", ["--opt", "bogus"], "'--opt'"),
    ("compare", ["--metric", "pluim", "--opts", "gd,powell"], "'--opts'"),
    ("compare", ["--bins", "8"], "'--bins'"),
    ("compare", ["--metric", "mi", "--bins", "3"], "'--bins'"),
    ("compare", ["--metric", "ssd", "--sigma", "2"], "'--sigma'"),
    ("profile", ["--metric", "mi", "--bins", "3"], "'--bins'"),
    ("profile", ["--bins", "16"], "'--bins'"),
    ("profile", ["--range", "0:10:20"], "'--range'"),
    ("profile", ["--transform", "translation", "--param", "angle"], "'--param'"),
]


@pytest.mark.parametrize(
    ("command", "extra", "hint"),
    [pytest.param(*case, id=" ".join([case[0], *case[1]])) for case in BAD_OPTION_VALUES],
)
def test_bad_option_values_exit_2_naming_the_option(
    runner, samples, tmp_path, monkeypatch, command, extra, hint
):
    monkeypatch.chdir(tmp_path)
    fixed, moving = samples / "BrainMRI_1.png", samples / "BrainMRI_2.png"
    result = runner.invoke(cli, [command, str(fixed), str(moving), *extra])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and hint in errors[0], result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
