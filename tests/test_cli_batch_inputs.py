"""regcli batch never replaces its own inputs: not by a table or the contact sheet of OUTDIR,
not by replacing a pair's folder that holds one (with --overwrite, or a rerun)."""

from __future__ import annotations

import shutil

import pytest
from many_cases import write_pairs

from regcli.cli.main import cli


def _tree(folder):
    """Every file under ``folder`` with its bytes (hidden ones too)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _refused(result, output, source):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"{output}: refusing" in lines[0] and f"the input file {source}" in lines[0]


@pytest.fixture
def pair(tmp_path, monkeypatch):
    """``fixed.png`` and ``m00.png`` in a fresh current folder."""
    monkeypatch.chdir(tmp_path)
    write_pairs(tmp_path, 1)
    return tmp_path


def test_a_pairs_csv_named_as_a_table_of_outdir_is_not_replaced(runner, pair):
    work = pair / "work"
    work.mkdir()
    for name in ("fixed.png", "m00.png"):
        shutil.copy(pair / name, work / name)
    (work / "results.csv").write_text("fixed,moving\nfixed.png,m00.png\n")
    before = _tree(work)
    args = ["batch", "--pairs", "work/results.csv", "-o", "work", "--workers", "1"]
    result = runner.invoke(cli, [*args, "--plots", "none"])
    _refused(result, "work/results.csv", "work/results.csv")
    assert _tree(work) == before  # nothing written: no pair folder, no table


def test_a_fixed_image_named_contact_sheet_in_outdir_is_not_replaced(runner, pair):
    (pair / "w2").mkdir()
    shutil.copy(pair / "fixed.png", pair / "w2" / "contact_sheet.png")
    before = _tree(pair / "w2")
    result = runner.invoke(cli, ["batch", "w2/contact_sheet.png", "m00.png", "-o", "w2"])
    _refused(result, "w2/contact_sheet.png", "w2/contact_sheet.png")
    assert _tree(pair / "w2") == before
    # without the contact sheet nothing writes onto it
    plain = ["batch", "w2/contact_sheet.png", "m00.png", "-o", "w2", "--plots", "none"]
    assert runner.invoke(cli, plain).exit_code == 0, "--plots none writes no contact sheet"
    assert (pair / "w2" / "contact_sheet.png").read_bytes() == before["contact_sheet.png"]


@pytest.mark.parametrize(
    "option",
    [
        ["--initial-transform", "out/m00/transform.json"],
        ["--fixed-mask", "out/m00/m00_aligned.png"],
    ],
)
def test_an_input_inside_a_pair_folder_to_be_replaced_is_refused(runner, pair, option):
    first = ["batch", "fixed.png", "m00.png", "-o", "out", "--plots", "none", "--workers", "1"]
    assert runner.invoke(cli, first).exit_code == 0
    before = _tree(pair / "out")
    result = runner.invoke(cli, [*first, "--overwrite", *option])
    _refused(result, "out/m00", option[1])
    assert _tree(pair / "out") == before


def test_a_fixed_image_inside_a_pair_folder_is_refused(runner, pair):
    """The fixed image of a second batch is the aligned image of the first one's pair."""
    first = ["batch", "fixed.png", "m00.png", "-o", "out", "--plots", "none", "--workers", "1"]
    assert runner.invoke(cli, first).exit_code == 0
    before = _tree(pair / "out")
    args = ["batch", "out/m00/m00_aligned.png", "m00.png", "-o", "out", "--plots", "none"]
    result = runner.invoke(cli, [*args, "--overwrite"])
    _refused(result, "out/m00", "out/m00/m00_aligned.png")
    assert _tree(pair / "out") == before
