"""The README's examples run as written from the repository root, and the outputs it shows
are what the commands print: every ```sh and ```console block is run with the installed
``regcli`` in a fresh copy of ``sample_images/`` (each block in its own folder), and the
Python API section's ```python blocks as one script.

Shown output is compared line by line: numbers to half a percent (or 0.002 near 0, unless
written with an exponent), run times not at all, and a line ``...`` stands for whatever
follows.  A block under an HTML comment starting ``<!-- not run`` is left out (it needs a Dask
scheduler), as are lines that do not start with ``regcli`` (``make ...``).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, regcli_executable

README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")


def _blocks() -> list[tuple[str, int, list[str], str]]:
    """``(language, line number, lines, section heading)`` of every fenced block."""
    lines = README.read_text(encoding="utf-8").splitlines()
    out, i, section = [], 0, ""
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i][3:].strip()
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        previous = lines[start - 1] if start else ""
        if not previous.startswith("<!-- not run"):
            out.append((match.group(1), start + 1, body, section))
        i += 1
    return out


def _commands(language: str, body: list[str]) -> list[tuple[str, list[str] | None]]:
    """``(command, shown output or None)`` of the ``regcli`` lines of a block."""
    if language == "console":
        out = []
        for line in body:
            if line.startswith("$ "):
                out.append((line[2:], []))
            elif out:
                out[-1][1].append(line)
        return [(c, shown) for c, shown in out if c.startswith("regcli ")]
    joined, current = [], ""
    for line in body:
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        joined.append(re.sub(r"\s+#\s.*$", "", current).strip())
        current = ""
    return [(c, None) for c in joined if c.startswith("regcli ")]


SHELL_BLOCKS = [
    pytest.param(language, body, id=f"README.md:{line}")
    for language, line, body, _ in _blocks()
    if language in ("sh", "console") and _commands(language, body)
]


def _workdir(tmp_path: Path) -> Path:
    """A copy of the repository root as the README's commands need it: the samples, and
    ``out/`` (which the README says to make first)."""
    shutil.copytree(ROOT / "sample_images", tmp_path / "sample_images")
    (tmp_path / "out").mkdir()
    return tmp_path


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    binary = Path(regcli_executable()[0]).parent
    env = dict(os.environ, MPLBACKEND="Agg", PATH=f"{binary}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _same_token(shown: str, got: str) -> bool:
    if shown == got:
        return True
    strip = ",:;()"
    try:
        a, b = float(shown.strip(strip)), float(got.strip(strip))
    except ValueError:
        return False
    # A number in exponent notation (a cost of 1.7e-05) is compared relatively: the absolute
    # tolerance, for numbers near 0 such as angle_deg=-0.001, would let any small cost pass.
    absolute = 0.0 if "e" in shown.lower() else 2e-3
    return math.isclose(a, b, rel_tol=5e-3, abs_tol=absolute)


def _same_output(shown: list[str], printed: str) -> str | None:
    """``None`` if ``printed`` is what the README shows, else the first differing line."""
    got = printed.splitlines()
    for k, line in enumerate(shown):
        if line.strip() == "...":
            return None
        if k >= len(got):
            return f"line {k + 1} missing: {line!r}"
        a = re.sub(r"in \d+(\.\d+)? s\b", "in T s", line).split()
        b = re.sub(r"in \d+(\.\d+)? s\b", "in T s", got[k]).split()
        if len(a) != len(b) or not all(_same_token(x, y) for x, y in zip(a, b, strict=True)):
            return f"line {k + 1}: shown {line!r}, printed {got[k]!r}"
    if len(got) > len(shown):
        return f"printed more lines than shown: {got[len(shown)]!r}"
    return None


def test_the_readme_has_examples_to_run():
    commands = [c for p in SHELL_BLOCKS for c in _commands(*p.values)]
    assert len(commands) >= 20
    assert all("sample_images/" in c for c, _ in commands), "inputs come from sample_images/"


@pytest.mark.parametrize(("language", "body"), SHELL_BLOCKS)
def test_readme_shell_block(tmp_path, language, body):
    cwd = _workdir(tmp_path)
    for command, shown in _commands(language, body):
        done = _run(command, cwd)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        if shown is not None:
            problem = _same_output(shown, done.stdout)
            assert problem is None, f"{command}: {problem}\n{done.stdout}"
    written = {p.relative_to(cwd).parts[0] for p in cwd.iterdir()}
    assert written <= {"sample_images", "out"}, "outputs go under out/"


def test_readme_python_api(tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("SimpleITK")
    code = "\n".join(
        "\n".join(body)
        for language, _, body, section in _blocks()
        if language == "python" and section == "Python API"
    )
    assert "regcli.register(" in code
    cwd = _workdir(tmp_path)
    # The SimpleITK lines read the transform.tfm of the register example out/reg4.
    setup = _run(
        "regcli register sample_images/BrainMRI_1.png sample_images/BrainMRI_4.png -o out/reg4",
        cwd,
    )
    assert setup.returncode == 0, setup.stderr
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
