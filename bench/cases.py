"""Benchmark cases: image pairs with a known rigid transform, built from the sample images.

Every case holds ``fixed``, ``moving`` and ``truth``, the 3x3 matrix that maps a fixed pixel
``(x=col, y=row, 1)`` to the moving pixel showing the same anatomy (regcli's convention), so
``moving = warp(base, inv(truth))`` and ``warp(moving, truth)`` gives back ``base``.

The 256^2 cases use the sample slice itself; the larger sizes use the same slice upsampled with
cubic interpolation, with the shifts scaled by the same factor (the rotation centre is always the
image centre).  Independent Gaussian noise is added to both images of every pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from regcli.resample import warp
from regcli.transforms import make_transform

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"

#: Rotation angles (degrees) of the rigid cases; signs alternate so both directions are tested.
ROTATIONS_DEG = (2, -5, 10, -20, 30, -45, 60, -90, 120, -150, 180)
#: Shifts (x, y) in pixels at 256^2 of the pure-translation cases.
TRANSLATIONS = ((4.3, -2.7), (-11.6, 8.2), (17.5, 13.1))
#: Multimodal cases: (angle_deg, tx, ty) at 256^2.
MULTIMODAL = ((0.0, 6.4, -3.8), (8.0, -4.5, 2.5), (-25.0, 3.0, 5.5), (70.0, -6.0, -2.0))
#: Noise standard deviation, as a fraction of the image's intensity range.
NOISE = 0.02
BASE_SIZE = 256


@dataclass
class Case:
    """One registration problem with its answer."""

    name: str
    kind: str  # "translation", "rigid" (monomodal) or "multimodal"
    size: int
    angle_deg: float
    tx: float
    ty: float
    fixed: np.ndarray = field(repr=False)
    moving: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)

    @property
    def metric(self) -> str:
        """regcli metric for the case: SSD within a modality, mutual information across."""
        return "mi" if self.kind == "multimodal" else "ssd"

    @property
    def monomodal(self) -> bool:
        return self.kind != "multimodal"


def _normalise(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    lo, hi = float(image.min()), float(image.max())
    return (image - lo) / (hi - lo)


def _square(image: np.ndarray, size: int = BASE_SIZE) -> np.ndarray:
    """Centre-crop to a square and resample to ``size`` x ``size`` (cubic)."""
    rows, cols = image.shape
    side = min(rows, cols)
    top, left = (rows - side) // 2, (cols - side) // 2
    image = image[top : top + side, left : left + side]
    if side != size:
        image = ndimage.zoom(image, size / side, order=3, grid_mode=True, mode="grid-mirror")
    return _normalise(image)


def _read(path: Path) -> np.ndarray:
    from regcli.io import read_image

    return _square(read_image(path))


def monomodal_base() -> tuple[np.ndarray, str]:
    """The 256^2 slice of the monomodal cases and where it came from."""
    path = SAMPLES / "BrainMRI_1.png"
    if path.exists():
        return _read(path), path.name
    from skimage import data

    return _square(data.camera()), "skimage.data.camera()"


def _find_multimodal() -> tuple[Path, Path] | None:
    """(T1-like, T2-like) aligned pair of the sample images, if the samples are there.

    ``J4.png`` is the T2-like slice unmoved, pixel-aligned with ``BrainMRI_1.png`` (see
    sample_images/README.md); the committed ``BrainT2_*.png`` are moved copies of it.
    """
    pair = SAMPLES / "BrainMRI_1.png", SAMPLES / "J4.png"
    return pair if all(p.exists() for p in pair) else None


def multimodal_base() -> tuple[np.ndarray, np.ndarray, str]:
    """An aligned (T1-like, T2-like) 256^2 pair and where it came from.

    Without the sample pair, the T2-like image is a non-monotonic intensity remap of the
    monomodal slice (bright becomes dark, mid-grey becomes bright, background stays dark), which
    defeats SSD and correlation but not mutual information.
    """
    found = _find_multimodal()
    if found is not None:
        return _read(found[0]), _read(found[1]), f"{found[0].name} / {found[1].name}"
    t1, source = monomodal_base()
    foreground = t1 > 0.05
    t2 = np.where(foreground, np.sin(np.pi * np.clip(t1 * 1.3, 0, 1)) * 0.9 + 0.1, 0.0)
    return t1, _normalise(ndimage.gaussian_filter(t2, 0.7)), f"{source} + synthetic T2 remap"


def _upsample(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    factor = size / image.shape[0]
    out = ndimage.zoom(image, factor, order=3, grid_mode=True, mode="grid-mirror")
    return np.clip(out, 0.0, 1.0)


def truth_matrix(size: int, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    """Fixed -> moving matrix: rotation about the image centre, then the shift (x, y)."""
    rigid = make_transform("rigid", shape=(size, size))
    return rigid.matrix([np.radians(angle_deg), tx, ty])


def make_pair(
    fixed_base: np.ndarray,
    moving_base: np.ndarray,
    truth: np.ndarray,
    *,
    rng: np.random.Generator,
    noise: float = NOISE,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy ``fixed`` and the moving image ``moving`` with ``moving(truth @ x) = fixed(x)``."""
    moving = warp(moving_base, np.linalg.inv(truth), order=3)
    fixed = fixed_base + rng.normal(0.0, noise, fixed_base.shape)
    moving = moving + rng.normal(0.0, noise, moving.shape)
    return fixed.astype(dtype), moving.astype(dtype)


def build_cases(sizes=(256, 1024), *, quick: bool = False, seed: int = 0, kinds=None) -> list[Case]:
    """All benchmark cases, smallest size first.

    ``quick`` keeps a subset: three rotations, one translation, two multimodal cases.
    ``kinds`` limits the kinds built (``{"translation", "rigid", "multimodal"}``).
    """
    rng = np.random.default_rng(seed)
    mono, _ = monomodal_base()
    t1, t2, _ = multimodal_base()
    rotations = ROTATIONS_DEG if not quick else (10, -45, 120)
    translations = TRANSLATIONS if not quick else TRANSLATIONS[1:2]
    multimodal = MULTIMODAL if not quick else MULTIMODAL[1:3]
    # Shifts that go with the rotations: seeded, a few pixels each way at 256^2.
    shifts = rng.uniform(-8.0, 8.0, size=(len(ROTATIONS_DEG), 2)).round(2)
    spec = [("translation", 0.0, tx, ty) for tx, ty in translations]
    spec += [
        ("rigid", float(angle), float(sx), float(sy))
        for angle, (sx, sy) in zip(ROTATIONS_DEG, shifts, strict=True)
        if angle in rotations
    ]
    spec += [("multimodal", a, tx, ty) for a, tx, ty in multimodal]
    if kinds is not None:
        spec = [s for s in spec if s[0] in kinds]
    cases = []
    for size in sizes:
        scale = size / BASE_SIZE
        bases = {
            "mono": _upsample(mono, size),
            "t1": _upsample(t1, size),
            "t2": _upsample(t2, size),
        }
        for kind, angle, tx, ty in spec:
            truth = truth_matrix(size, angle, tx * scale, ty * scale)
            if kind == "multimodal":
                fixed, moving = make_pair(bases["t1"], bases["t2"], truth, rng=rng)
            else:
                fixed, moving = make_pair(bases["mono"], bases["mono"], truth, rng=rng)
            name = f"{kind}_{size}_a{angle:+g}_x{tx * scale:+.1f}_y{ty * scale:+.1f}"
            cases.append(
                Case(name, kind, size, angle, tx * scale, ty * scale, fixed, moving, truth)
            )
    return cases
