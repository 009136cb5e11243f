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


def test_the_type_stub_lists_every_public_name_from_its_module():
    import ast
    from pathlib import Path

    stub = Path(regcli.__file__).with_name("__init__.pyi")
    imported = {}
    for node in ast.parse(stub.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                assert alias.asname == alias.name  # "x as x": a re-export for type checkers
                imported[alias.name] = node.module.removeprefix("regcli.")
    assert imported == regcli._EXPORTS


def test_the_package_is_marked_typed():
    from pathlib import Path

    assert Path(regcli.__file__).with_name("py.typed").is_file()


def test_dir_lists_the_public_names_only():
    assert set(dir(regcli)) == {*regcli.__all__, "__version__"}
