"""Fuzzing the readers and the transform JSON parser with hypothesis.

Files are generated and mutated (truncated, bit-flipped, bytes overwritten, huge sizes
written into the PNG/TIFF/npy headers; JSON values generated and JSON text mutated).  Every
example must end in a 2-D array (a dict for JSON) or an :class:`~regcli.errors.InputError`:
no other exception type, no traceback from the CLI, the input file unchanged, and memory
bounded (the pixel limit is lowered to 2**22 pixels, and the process's peak memory may not
grow by more than 1 GiB).

In CI each test runs a bounded number of examples (the whole module takes well under a
minute).  ``make fuzz`` sets ``REGCLI_FUZZ_SECONDS`` and runs the same tests for that long
in all, with fresh seeds, and prints the number of examples run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import png_bytes
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from regcli.cli.main import cli
from regcli.errors import InputError
from regcli.io import read_image, read_transform_json

#: Seconds to fuzz in all (``make fuzz``); 0: the bounded CI run.
LONG_SECONDS = float(os.environ.get("REGCLI_FUZZ_SECONDS", "0") or 0)
#: First seed of the long run (printed, so a failure can be replayed).
BASE_SEED = int(os.environ.get("REGCLI_FUZZ_SEED") or time.time())
CI_EXAMPLES = 150
FUZZ_TESTS = 4
LIMIT = 1 << 22
MEMORY_GROWTH_KIB = 1 << 20  # ru_maxrss is in KiB on Linux
EXAMPLE_SECONDS = 30.0
COUNTS: dict[str, int] = {}


def _seed_files() -> dict[str, bytes]:
    """Valid files of every kind the readers take, to be mutated."""
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (12, 14), dtype=np.uint8)
    files = {}
    for mode, array in (
        ("L", grey),
        ("RGB", np.dstack([grey, grey[::-1], grey[:, ::-1]])),
        ("I;16", (grey.astype(np.uint16) * 257)),
        ("1", grey > 128),
    ):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        files[f"{mode}.png"] = buffer.getvalue()
    palette = Image.fromarray(grey % 4, "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    files["palette.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="JPEG")
    files["grey.jpg"] = buffer.getvalue()
    for name, array, options in (
        ("u8.tif", grey, {}),
        ("f32.tif", grey.astype(np.float32) / 255, {}),
        ("rgb.tif", np.dstack([grey] * 3), {"photometric": "rgb"}),
        ("tiled.tif", np.tile(grey, (3, 3)), {"tile": (16, 16), "compression": "zlib"}),
        ("pages.tif", np.stack([grey, grey]), {"photometric": "minisblack"}),
    ):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array, **options)
        files[name] = buffer.getvalue()
    for dtype in ("uint8", "int16", "float32", "float64", "bool"):
        buffer = io.BytesIO()
        np.save(buffer, grey.astype(dtype))
        files[f"{dtype}.npy"] = buffer.getvalue()
    files["huge.png"] = png_bytes(60000, 60000)
    return files


SEEDS = _seed_files()


@st.composite
def mutated_files(draw):
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "huge", "insert"]))
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[where : where + len(chunk)] = chunk
        elif kind == "truncate":
            del data[where:]
        elif kind == "huge":  # a size field claiming a huge image, near the header
            where = min(where, 96)
            data[where : where + 4] = draw(
                st.sampled_from([b"\xff\xff\xff\x7f", b"\x00\x01\x00\x00"])
            )
        else:
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
    return name, bytes(data)


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Fail an example that runs longer than ``seconds`` (a decoder that never ends) instead
    of hanging the run."""

    def expire(signum, frame):
        raise TimeoutError(f"one example ran for more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_memory(start_kib: int) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak - start_kib < MEMORY_GROWTH_KIB, f"peak memory grew by {peak - start_kib} KiB"


def _run(test_name: str, body, strategy) -> None:
    """Run ``body`` on examples of ``strategy``: a bounded number in CI, or for this test's
    share of ``REGCLI_FUZZ_SECONDS`` with fresh seeds."""
    COUNTS[test_name] = 0

    def counted():  # a new function each round: hypothesis decorates it once
        def run_one(example):
            COUNTS[test_name] += 1
            with _time_limit(EXAMPLE_SECONDS):
                body(example)

        return run_one

    common = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}
    if not LONG_SECONDS:
        given(strategy)(settings(max_examples=CI_EXAMPLES, derandomize=True, **common)(counted()))()
        return
    deadline = time.monotonic() + LONG_SECONDS / FUZZ_TESTS
    round_number = 0
    while time.monotonic() < deadline:
        test = given(strategy)(settings(max_examples=500, **common)(counted()))
        seed(BASE_SEED + round_number)(test)()
        round_number += 1
    print(
        f"\nfuzz {test_name}: {COUNTS[test_name]} examples in {round_number} rounds "
        f"(seeds {BASE_SEED}..{BASE_SEED + round_number - 1}), no failure"
    )


@pytest.fixture(autouse=True)
def small_pixel_limit(monkeypatch):
    monkeypatch.setenv("REGCLI_MAX_PIXELS", str(LIMIT))


def test_fuzz_read_image():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as folder:

        def body(example):
            name, data = example
            path = Path(folder) / name
            path.write_bytes(data)
            digest = hashlib.md5(data).hexdigest()
            try:
                image = read_image(path)
            except InputError:
                pass
            else:
                assert image.ndim == 2 and image.size <= LIMIT
                assert image.dtype.kind in "biuf"
            assert hashlib.md5(path.read_bytes()).hexdigest() == digest
            _check_memory(start)

        _run("read_image", body, mutated_files())


def test_fuzz_the_cli_reader(runner):
    """The same files through ``regcli translate``: exit 0 or 1, one Error: line, no
    traceback, nothing but the output written."""
    with tempfile.TemporaryDirectory() as folder:

        def body(example):
            name, data = example
            path = Path(folder) / name
            path.write_bytes(data)
            out = Path(folder) / f"out{Path(name).suffix}"
            result = runner.invoke(cli, ["translate", str(path), "--dx", "1", "-o", str(out)])
            assert result.exit_code in (0, 1), result.output
            assert "Traceback" not in result.output
            if result.exit_code == 1:
                assert result.stderr.count("Error:") == 1
                assert not out.exists()
            out.unlink(missing_ok=True)
            assert sorted(p.name for p in Path(folder).iterdir()) == [name]
            path.unlink()

        _run("cli translate", body, mutated_files())


VALID = {
    "matrix": [[1.0, 0.0, 2.5], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]],
    "fixed_shape": [40, 50],
    "moving_shape": [40, 50],
    "transform": "translation",
}
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**60), 10**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["matrix", "fixed_shape", "moving_shape", "x"]), children)
    ),
    max_leaves=20,
)


@st.composite
def transform_texts(draw):
    kind = draw(st.sampled_from(["value", "mutated", "field", "deep"]))
    if kind == "value":
        return json.dumps(draw(JSON_VALUES))
    if kind == "field":
        data = dict(VALID)
        data[draw(st.sampled_from(sorted(VALID)))] = draw(JSON_VALUES)
        return json.dumps(data)
    if kind == "deep":
        depth = draw(st.integers(1, 200000))
        return '{"matrix": ' + "[" * depth + "]" * draw(st.integers(0, depth)) + "}"
    text = json.dumps(VALID)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from(["[", "]", "{", "}", ",", '"', "9" * 5000, "1e999", "-", ""]))
        text = text[:where] + piece + text[where + draw(st.integers(0, 3)) :]
    return text


def test_fuzz_read_transform_json():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.json"

        def body(text):
            path.write_text(text)
            try:
                data = read_transform_json(path)
            except InputError:
                pass
            else:
                assert data["matrix"].shape == (3, 3)
                for key in ("fixed_shape", "moving_shape"):
                    if data.get(key) is not None:
                        assert data[key][0] * data[key][1] <= LIMIT
            assert path.read_text() == text
            _check_memory(start)

        _run("read_transform_json", body, transform_texts())


def test_fuzz_apply_with_a_transform(runner):
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder) / "m.png"
        Image.fromarray(np.arange(12 * 14, dtype=np.uint8).reshape(12, 14)).save(image)
        path = Path(folder) / "t.json"

        def body(text):
            path.write_text(text)
            out = Path(folder) / "a.png"
            result = runner.invoke(cli, ["apply", str(image), str(path), "-o", str(out)])
            assert result.exit_code in (0, 1), result.output
            assert "Traceback" not in result.output
            out.unlink(missing_ok=True)
            assert sorted(p.name for p in Path(folder).iterdir()) == ["m.png", "t.json"]

        _run("cli apply", body, transform_texts())


#: A corrupt TIFF the fuzzer found on which listing tifffile's series never ended.
ENDLESS_SERIES_TIFF = (
    "SUkqAAgAAAAOAAABBAABAAAADgAAAAEBBAABAAAADAAAAAIBAwABAAAACAAAAAMBAwABAAAAAQAAAAYBAwABAAAA"
    "AQAAAA4BAgAUAAAAtgAAABEBBAABAAAAAAEAABUBAwABAAAAAQAAABYBBAABAAAADAAAABcBBAABAAAAFXPEr3tI"
    "JkasYoFQbBnrEhVzxK97SCZGrGKBUGwZ6xIAqAAAABoBBQABAAAA2gAAABsBBQABAAAA4gAAACgBAwABAAAAAQAA"
    "ADEBAgAMAAAA6gAAAAAAAAB7InNoYXBlIjogWzEyLCAxNF19AAAAAAAAAAAAAAAAAAAAAAABAAAAAQAAAAEAAAAB"
    "AAAAdGlmZmZpbGUucHkAAAAAAAAAAAAAAF+CwtnP6w+jIdfZgvi9EEW46M1OqT19Ch3wQhO2JzsEO1HeLHh6MtBO"
    "HECmeVmq6X+y7YBxe0ybRZqC+F9JwLq/f9yh5wEri+2/Vo8H6GDvTDcAR03H29CwkL6raHizAPD15mS/2H7bH5Xn"
    "jXMQmQh508/DB7PKuqYnudhJxPcsDn/bFjpL+dwueagF2TOdijgSlRQg67lM8dYme886NWwMozpnPfU/Bw=="
)


def test_a_tiff_whose_series_listing_never_ended_is_read(tmp_path):
    import base64
    import subprocess
    import sys

    path = tmp_path / "corrupt.tif"
    path.write_bytes(base64.b64decode("".join(ENDLESS_SERIES_TIFF)))
    code = f"import regcli; print(regcli.read_image({str(path)!r}).shape)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    if "not a readable image" in done.stderr:  # tifffile before 2023.7 finds the loop: refused
        return
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(12, 14)"
