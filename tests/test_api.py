"""The public Python API: every exported name resolves, and importing it stays light."""

import subprocess
import sys

import regcli


def test_every_exported_name_resolves():
    missing = [name for name in regcli.__all__ if not hasattr(regcli, name)]
    assert missing == []


def test_unknown_attribute_is_an_attribute_error():
    try:
        regcli.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("regcli.no_such_name did not raise")


def test_import_and_public_names_load_neither_matplotlib_nor_scipy_optimize():
    # A fresh interpreter: this test process has long imported both.
    code = (
        "import sys, regcli\n"
        "light = not {'numpy', 'matplotlib', 'scipy.optimize'} & set(sys.modules)\n"
        "[getattr(regcli, n) for n in regcli.__all__]\n"
        "heavy = {'matplotlib', 'scipy.optimize'} & set(sys.modules)\n"
        "print(light, sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "[]"], out.stdout + out.stderr
