"""Shared fixtures: a CLI runner, the sample images, a subprocess runner for the installed CLI,
and small deterministic test images."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def samples() -> Path:
    """Folder of the bundled sample images."""
    return SAMPLES


@pytest.fixture(scope="session")
def truth() -> dict:
    """sample_images/truth.json, parsed."""
    return json.loads((SAMPLES / "truth.json").read_text())


def regcli_executable() -> list[str]:
    """The installed console script (next to this Python), else ``python -m regcli``."""
    exe = Path(sys.executable).with_name("regcli")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("regcli")
    return [found] if found else [sys.executable, "-m", "regcli"]


def default_signals() -> None:
    """``preexec_fn`` for a child a test will interrupt: SIGINT, SIGTERM and SIGHUP at their
    default disposition.  A CI runner that starts the suite in the background (``cmd &``)
    ignores SIGINT, children inherit that, and regcli, like any program, keeps a signal its
    parent chose to ignore: the test would wait forever for the child to stop."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture
def run_regcli():
    """Run the installed ``regcli`` in a real subprocess: ``run_regcli(*args, cwd=...)``."""

    def run(*args, cwd=None, timeout=120):
        env = dict(os.environ, MPLBACKEND="Agg")
        return subprocess.run(
            [*regcli_executable(), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
            env=env,
        )

    return run


def smooth_blobs(shape=(96, 112), seed=0) -> np.ndarray:
    """A deterministic smooth test image (sum of Gaussian blobs) in [0, 1], zero border."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(float)
    img = np.zeros(shape)
    for _ in range(12):
        cy, cx = rng.uniform(0.25, 0.75) * rows, rng.uniform(0.25, 0.75) * cols
        s = rng.uniform(0.04, 0.12) * min(shape)
        img += rng.uniform(0.3, 1.0) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return img / img.max()


@pytest.fixture
def blobs() -> np.ndarray:
    return smooth_blobs()


def png_bytes(width: int, height: int, *, bit_depth: int = 8, color_type: int = 0, rows=None):
    """A PNG file's bytes declaring ``width x height`` pixels; the image data holds ``rows``
    (default: a few zero rows only, so a huge declared size costs nothing to make)."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024 if rows is None else rows)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


#: The colours of :func:`palette_png`'s labels: black, red, green, blue, then black.
PALETTE = bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]) + bytes(3 * 252)


def palette_png(path, labels: np.ndarray, *, transparency=None) -> Path:
    """Write the uint8 ``labels`` as a palette (indexed, mode ``P``) PNG with :data:`PALETTE`,
    as an image editor saves a label map."""
    from PIL import Image

    picture = Image.fromarray(np.asarray(labels, np.uint8))
    picture.putpalette(PALETTE, "RGB")
    extra = {} if transparency is None else {"transparency": transparency}
    picture.save(path, format="PNG", **extra)
    return Path(path)


def read_palette_png(path) -> tuple[str, bytes, np.ndarray]:
    """``(mode, palette, indices)`` of a PNG, as Pillow reads it."""
    from PIL import Image

    with Image.open(path) as picture:
        palette = bytes(picture.getpalette("RGB") or []) if picture.mode == "P" else b""
        return picture.mode, palette, np.asarray(picture)
