"""What an image file says besides its grey pixels: channels, pixel spacing and its unit.

* :class:`ImageMeta` is the record :func:`regcli.io.read_channels` returns next to the pixels:
  the number of channels and what they mean (``"RGB"``, ``"RGBA"``, ``"LA"`` grey + alpha, or
  ``None``: channels without a colour meaning), and the size of a pixel, ``spacing = (sy, sx)``
  (rows, then columns) in ``unit``, from a TIFF's resolution tags.
* :func:`grey_for_registration` turns every channel into the one 2-D image a registration
  uses: the luminance of a colour image, channel ``K`` when asked, the grey of grey + alpha;
  channels without a colour meaning need a choice (never a silent cut).
* :func:`warp_channels` moves every channel by the same matrix (the aligned output and
  ``regcli apply`` keep every channel).

Pixel spacing is physical size per pixel; regcli's matrices stay in pixels (fixed pixel ->
moving pixel), the spacing is carried to the outputs and the transform files, and
:func:`register_spacing` hands it to the registration, which makes rotation, rigid and
similarity rigid in physical units (:mod:`regcli.spacing`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace

import numpy as np

from regcli.errors import InputError

__all__ = [
    "COLOUR_LAYOUTS",
    "ImageMeta",
    "Palette",
    "given_spacing",
    "grey_for_registration",
    "normalize_unit",
    "pair_spacing",
    "parse_spacing",
    "register_spacing",
    "warp_channels",
]

log = logging.getLogger("regcli")

#: Channel meanings regcli knows; other multi-channel images have ``colour=None``.
COLOUR_LAYOUTS = {"RGB": 3, "RGBA": 4, "LA": 2}
#: BT.709 luminance weights, as skimage.color.rgb2gray.
_LUMINANCE = np.array([0.2125, 0.7154, 0.0721])
#: Unit spellings (lower case) -> regcli's name for the unit.
_UNITS = {
    "um": "um", "µm": "um", "μm": "um", "micron": "um", "microns": "um",
    "micrometer": "um", "micrometre": "um", "\\u00b5m": "um",
    "nm": "nm", "nanometer": "nm", "nanometre": "nm",
    "mm": "mm", "millimeter": "mm", "millimetre": "mm",
    "cm": "cm", "centimeter": "cm", "centimetre": "cm",
    "m": "m", "meter": "m", "metre": "m",
    "in": "inch", "inch": "inch", "inches": "inch",
}  # fmt: skip


@dataclass(frozen=True)
class Palette:
    """The palette of an indexed PNG: ``rgb`` holds 3 bytes (R, G, B) per index, from index
    0 on; ``transparency`` is the PNG's tRNS entry as Pillow gives it (the index of the
    transparent colour, or one alpha byte per index), ``None`` without one."""

    rgb: bytes
    transparency: int | bytes | None = None


@dataclass(frozen=True)
class ImageMeta:
    """What a file says about its image besides the pixel values.

    Attributes
    ----------
    channels : int
        Channels per pixel (1 for a grey image); an image with several has them on its last
        axis, ``(rows, cols, channels)``.
    colour : {"RGB", "RGBA", "LA"} or None
        What the channels mean: colour, colour + alpha, grey + alpha, or ``None`` (grey, or
        channels without a colour meaning, e.g. two fluorescence channels).
    spacing : (sy, sx) or None
        Size of a pixel along the rows (y) and the columns (x), in ``unit``; ``None`` when the
        file does not say (regcli then takes 1 x 1, in pixels).
    unit : str or None
        ``"um"``, ``"nm"``, ``"mm"``, ``"cm"``, ``"m"``, ``"inch"``, or ``None`` (no unit: the
        spacing is only an aspect ratio).
    palette : Palette or None
        The colours of a palette (indexed) PNG, whose pixel values are indices into it: a
        label map.  The resampling commands move it nearest-neighbour by default and write a
        PNG of it with the same palette; ``None`` for every other image.
    """

    channels: int = 1
    colour: str | None = None
    spacing: tuple[float, float] | None = None
    unit: str | None = None
    palette: Palette | None = None

    @property
    def label_map(self) -> bool:
        """Whether the pixel values are labels (a palette image's indices), which must not
        be interpolated between."""
        return self.palette is not None

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """``spacing``, or ``(1.0, 1.0)`` when the file gives none."""
        return (1.0, 1.0) if self.spacing is None else self.spacing

    def with_spacing(self, spacing, unit=None) -> ImageMeta:
        """A copy with ``spacing`` (``(sy, sx)``) and ``unit``; ``spacing=None`` keeps
        this one's."""
        if spacing is None:
            return self
        return replace(
            self, spacing=check_spacing(spacing, param="spacing"), unit=normalize_unit(unit)
        )

    def to_dict(self) -> dict:
        """``{"spacing": [sy, sx] or None, "unit": ...}`` for JSON."""
        spacing = None if self.spacing is None else [float(v) for v in self.spacing]
        return {"spacing": spacing, "unit": self.unit}


def normalize_unit(unit) -> str | None:
    """regcli's name of a length unit (``"micron"``, ``"µm"`` -> ``"um"``); ``None``, ``""``
    and ``"pixel"`` (no unit) -> ``None``; an unknown spelling is kept as written."""
    if unit is None:
        return None
    text = str(unit).strip()
    if text.lower() in ("", "none", "pixel", "pixels", "px"):
        return None
    return _UNITS.get(text.lower(), text)


def check_spacing(
    spacing, name: str = "spacing", *, param: str | None = None
) -> tuple[float, float]:
    """``spacing`` as ``(sy, sx)``: two finite numbers > 0 (an :class:`InputError` with
    ``param`` if not)."""
    try:
        values = [float(v) for v in spacing]
    except (TypeError, ValueError):
        values = []
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise InputError(
            f"{name}: expected two numbers > 0 (sy, sx: rows, then columns), got {spacing!r}",
            param=param,
        )
    return values[0], values[1]


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SPACING_TEXT = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*([^\d\s,.+-][^\s,]*)?\s*$")


def parse_spacing(text: str, name: str = "spacing") -> tuple[tuple[float, float], str | None]:
    """``"SY,SX"`` or ``"SY,SXunit"`` (``"1,2um"``) -> ``((sy, sx), unit)``.

    >>> parse_spacing("1,2um")
    ((1.0, 2.0), 'um')
    """
    match = _SPACING_TEXT.match(str(text))
    if match is None:
        raise InputError(
            f"{name}: expected SY,SX (the size of a pixel along rows and columns, e.g. 1,2 or "
            f"0.5,0.5um), got {text!r}",
            param=name,
        )
    spacing = check_spacing((match.group(1), match.group(2)), name, param=name)
    return spacing, normalize_unit(match.group(3))


# --------------------------------------------------------------------------- channels


def luminance(pixels: np.ndarray) -> np.ndarray:
    """The BT.709 luminance of an ``(rows, cols, 3 or 4)`` image in its own dtype (integers
    rounded); alpha is ignored."""
    grey = pixels[..., :3].astype(np.float64) @ _LUMINANCE
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        return np.clip(np.rint(grey), info.min, info.max).astype(pixels.dtype)
    return grey.astype(pixels.dtype)


def grey_for_registration(
    pixels: np.ndarray, meta: ImageMeta, *, channel: int | None = None, name: str = "image"
) -> np.ndarray:
    """The 2-D image a registration uses from ``pixels`` (``(rows, cols[, channels])``).

    ``channel=K`` takes channel ``K`` of a multi-channel image (a grey image has only its
    own, whatever ``K``).  Without it: the luminance of RGB and RGBA (noted on the
    ``regcli`` logger), the grey of grey + alpha, and for channels without a colour meaning
    an :class:`InputError` saying how to choose: a silent choice could register on the wrong
    channel.  A ``K`` the image does not have is an error with ``param="channel"``.
    """
    if pixels.ndim != 3 or meta.channels <= 1:
        return pixels  # 2-D (anything else is left to the caller's check)
    count = pixels.shape[-1]
    if channel is not None:
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
            raise InputError(f"channel: expected a whole number, got {channel!r}", param="channel")
        if not 0 <= channel < count:
            raise InputError(
                f"channel: {name} has {count} channels (0 to {count - 1}), got {channel}",
                param="channel",
            )
        return pixels[..., int(channel)]
    if meta.colour in ("RGB", "RGBA"):
        log.warning("%s: converted %s image to grey (luminance)", name, meta.colour)
        return luminance(pixels)
    if meta.colour == "LA":
        log.info("%s: grey + alpha image: registering on the grey channel", name)
        return pixels[..., 0]
    rows, cols = pixels.shape[:2]
    raise InputError(
        f"{name}: {rows} x {cols} x {count}: {count} channels with no colour meaning (or "
        "planes of a stack: the file does not say), and registering needs one image: choose "
        f"the channel (channel=K, K from 0 to {count - 1})"
    )


#: Metres per unit, for a pair whose files give their spacing in two units.
_METRES = {"nm": 1e-9, "um": 1e-6, "mm": 1e-3, "cm": 1e-2, "m": 1.0, "inch": 0.0254}


def given_spacing(meta: ImageMeta, role: str, given: dict | None) -> ImageMeta:
    """``meta`` with the pixel size given for ``role`` (``"fixed"``/``"moving"``) over the
    file's: ``given[f"{role}_spacing"]``, else ``given["spacing"]`` (both ``((sy, sx),
    unit)``, as the command line's ``--fixed-spacing``/``--moving-spacing``/``--spacing``)."""
    given = given or {}
    chosen = given.get(f"{role}_spacing") or given.get("spacing")
    return meta.with_spacing(*(chosen or (None, None)))


def pair_spacing(fixed_meta: ImageMeta, moving_meta: ImageMeta) -> tuple[ImageMeta, ImageMeta]:
    """The pair's metadata with a missing pixel size filled in: an image without a spacing
    next to one whose spacing has a unit gets the same pixel size and unit (a file that says
    nothing is not taken to have pixels of 1 um, or of 1 inch), with a warning on the
    ``regcli`` logger.  Next to a spacing without a unit (an aspect ratio, as
    ``--fixed-spacing 2,1``) it stays without one: 1 x 1."""
    for this, other, role, source in (
        (fixed_meta, moving_meta, "fixed", "moving"),
        (moving_meta, fixed_meta, "moving", "fixed"),
    ):
        if this.spacing is None and other.spacing is not None and other.unit is not None:
            log.warning(
                "the %s image gives no pixel size: taken as the %s image's, %g x %g %s",
                role,
                source,
                *other.spacing,
                other.unit,
            )
            filled = replace(this, spacing=other.spacing, unit=other.unit)
            return (filled, moving_meta) if role == "fixed" else (fixed_meta, filled)
    return fixed_meta, moving_meta


def register_spacing(fixed_meta: ImageMeta, moving_meta: ImageMeta) -> dict:
    """``{"fixed_spacing": (sy, sx), "moving_spacing": (sy, sx)}`` for :func:`regcli.register`
    from the images' metadata: the one place where the spacing read from the files (or given
    on the command line) reaches the engine.

    Every caller that registers images read from files (``regcli register`` through
    :func:`regcli.cli.helpers.spacing_for_register`, :func:`regcli.register_many` and so
    ``regcli batch``) passes ``**register_spacing(...)``.  A missing spacing is filled in as
    :func:`pair_spacing` says (else 1 x 1); two units (``um`` and ``nm``) are converted to
    the fixed image's; a spacing without a unit is taken to be in the other's.
    """
    fixed_meta, moving_meta = pair_spacing(fixed_meta, moving_meta)
    moving = moving_meta.pixel_spacing
    if fixed_meta.spacing is not None and moving_meta.spacing is not None:
        moving = _in_unit(moving, moving_meta.unit, fixed_meta.unit)
    return {"fixed_spacing": fixed_meta.pixel_spacing, "moving_spacing": tuple(moving)}


def _in_unit(spacing, unit: str | None, target: str | None) -> tuple[float, float]:
    """``spacing`` (in ``unit``) in ``target``; as it is when either unit is missing or the
    same (an unknown unit: as it is, with a warning)."""
    if unit is None or target is None or unit == target:
        return tuple(spacing)
    if unit not in _METRES or target not in _METRES:
        log.warning("pixel sizes in %r and %r: taken as one unit", target, unit)
        return tuple(spacing)
    factor = _METRES[unit] / _METRES[target]
    return float(spacing[0]) * factor, float(spacing[1]) * factor


def warp_channels(pixels: np.ndarray, matrix, *, output_shape=None, order: int = 3, fill=0.0):
    """:func:`regcli.warp` of every channel of ``(rows, cols[, channels])`` by the same
    ``matrix``; float result with the channels last.  NaN pixels of a float image (no data)
    stay NaN where they land (:func:`regcli.resample.warp_keeping_nan`); pixels that map
    outside the image get ``fill``."""
    from regcli.resample import warp_keeping_nan

    def one(plane):
        return warp_keeping_nan(plane, matrix, output_shape=output_shape, order=order, fill=fill)

    if pixels.ndim == 2:
        return one(pixels)
    return np.stack([one(pixels[..., k]) for k in range(pixels.shape[-1])], axis=-1)


def clip_channels(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``image`` clipped channel by channel to the value range of ``like`` (same channels):
    interpolation overshoot never leaves the input's range."""
    if like.ndim == 2:
        return np.clip(image, float(np.nanmin(like)), float(np.nanmax(like)))
    low = np.nanmin(like.reshape(-1, like.shape[-1]), axis=0).astype(np.float64)
    high = np.nanmax(like.reshape(-1, like.shape[-1]), axis=0).astype(np.float64)
    return np.clip(image, low, high)


# --------------------------------------------------------------------------- TIFF resolution

#: TIFF ResolutionUnit values (tifffile's RESUNIT; 4 and 5 are tifffile's extension).
_TIFF_UNITS = {2: "inch", 3: "cm", 4: "mm", 5: "um"}
#: Units a TIFF cannot name, written in one it can (same physical size).
_CONVERTED = {"nm": ("um", 1e-3), "m": ("cm", 100.0)}


def _rational(value) -> float | None:
    try:
        if isinstance(value, (tuple, list)):
            num, den = float(value[0]), float(value[1])
            return num / den if den else None
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def spacing_from_tiff(tags, imagej: dict | None) -> tuple[tuple[float, float] | None, str | None]:
    """``(spacing, unit)`` from a TIFF page's tags (a dict of tag name -> value) and its
    ImageJ metadata: spacing is one over XResolution/YResolution (pixels per unit), the unit
    from ImageJ's ``unit`` or else ResolutionUnit.  ``(None, None)`` when the file gives no
    resolution, or tifffile's default 1/1 without a unit."""
    xres, yres = _rational(tags.get("XResolution")), _rational(tags.get("YResolution"))
    if not xres or not yres or not math.isfinite(xres) or not math.isfinite(yres):
        return None, None
    if xres <= 0 or yres <= 0:
        return None, None
    unit = None
    if imagej and imagej.get("unit"):
        unit = normalize_unit(imagej["unit"])
    if unit is None:
        code = tags.get("ResolutionUnit")
        unit = _TIFF_UNITS.get(int(getattr(code, "value", code) or 1))
    if unit is None and xres == 1 and yres == 1:
        return None, None
    return (1.0 / yres, 1.0 / xres), unit


def tiff_resolution(meta: ImageMeta | None) -> dict:
    """``tifffile.imwrite`` keywords (``resolution``, ``resolutionunit``) storing ``meta``'s
    spacing; ``{}`` when it has none.  Units a TIFF cannot name (nm, m) are converted to one
    it can; an unknown unit is written without one (logged)."""
    if meta is None or meta.spacing is None:
        return {}
    sy, sx = meta.spacing
    unit = meta.unit
    if unit in _CONVERTED:
        unit, factor = _CONVERTED[unit]
        sy, sx = sy * factor, sx * factor
    codes = {name: code for code, name in _TIFF_UNITS.items()}
    if unit is not None and unit not in codes:
        log.warning("the unit %r cannot be stored in a TIFF; the spacing is written unitless", unit)
    code = codes.get(unit, 1)
    return {"resolution": (1.0 / sx, 1.0 / sy), "resolutionunit": code}
