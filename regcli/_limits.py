"""Limits on what regcli accepts, shared by the core and the CLI (private; imports nothing
heavy, so the CLI's options can read them without slowing ``regcli --help``).

A limit turns a hostile or mistaken input (a 140 KB PNG declaring 12000 x 12000 pixels, a
transform JSON asking for a 16000 x 16000 output, ``bins=10**6``, ``sigma=1e308``) into one
clear error before anything large is allocated.
"""

from __future__ import annotations

import os

from regcli.errors import InputError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_CENTER",
    "MAX_HISTOGRAM_BINS",
    "MAX_PIXELS_ENV",
    "MAX_SIGMA",
    "MAX_TRANSFORM_JSON_BYTES",
    "MIN_REGISTER_SIDE",
    "describe_pixels",
    "max_pixels",
]

#: Default largest number of pixels of one image (2**28: 16384 x 16384).
DEFAULT_MAX_PIXELS = 1 << 28
#: Environment variable that raises (or lowers) :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = "REGCLI_MAX_PIXELS"
#: Largest number of bins per axis of a joint histogram (4096 x 4096 float64 = 128 MB).
MAX_HISTOGRAM_BINS = 4096
#: Largest Gaussian smoothing scale in pixels (the kernel spans 8 sigma; a blur wider than
#: any image regcli reads leaves nothing to compare and only costs time).
MAX_SIGMA = 1000.0
#: Largest distance (pixels) of a centre of rotation from the image origin.
MAX_CENTER = 1e6
#: Smallest side (pixels) of an image that can be registered.
MIN_REGISTER_SIDE = 8
#: Largest transform JSON file read (a real one is about 2 KB).
MAX_TRANSFORM_JSON_BYTES = 64 << 20


def max_pixels() -> int:
    """The largest number of pixels an image may have: ``$REGCLI_MAX_PIXELS`` if set, else
    :data:`DEFAULT_MAX_PIXELS`.

    Raises ``ValueError`` (an :class:`~regcli.errors.InputError`) when the variable is not
    a whole number >= 1.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{MAX_PIXELS_ENV}: expected a whole number of pixels >= 1, got {text!r}")
    return value


def describe_pixels(count: int) -> str:
    """``268435456 (2^28)``-style text for messages."""
    if count > 0 and count & (count - 1) == 0:
        return f"{count} (2^{count.bit_length() - 1})"
    return str(count)
