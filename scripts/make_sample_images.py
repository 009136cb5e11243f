"""Make ``sample_images/``: brain MRI slices with known transforms, reproducibly.

Two stages:

``python scripts/make_sample_images.py --extract`` (stage 1, needs nilearn + nibabel, which are
*not* regcli dependencies: install them in a scratch environment) cuts one axial slice through
the lateral ventricles out of the MNI ICBM152 2009a templates that ship inside the nilearn wheel
(T1, grey-matter and white-matter probability maps), pads it to 256 x 256 with the brain centred,
and writes it as the committed sources ``sample_images/source/*.png`` (8-bit, lossless: the
templates in the wheel are 8-bit).

``python scripts/make_sample_images.py`` (stage 2, the default; numpy, scipy, imageio and regcli
only) builds every other file of ``sample_images/`` from those sources.  Every moving image is the
clean slice resampled with :func:`regcli.resample.warp` (cubic) by the inverse of its true
fixed -> moving matrix, so the truth in ``truth.json`` holds by construction.  Noise comes from
seeded numpy Generators, one per file, so a re-run reproduces the same pixels.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"
SOURCE_DIR = SAMPLES / "source"

SIZE = 256
#: Axial slice index in the 1 mm template grid (z = 88 - 72 = +16 mm MNI): lateral ventricles.
SLICE_INDEX = 88
TEMPLATES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
SOURCE_FILES = {name: f"mni152_2009a_{name}_z{SLICE_INDEX}.png" for name in TEMPLATES}

SEED = 20260421
#: Standard deviation of the added Gaussian noise, in 8-bit grey levels.
NOISE_SIGMA = 1.8

CONVENTION = (
    "matrix maps a fixed pixel (x=col, y=row, 1) to the moving pixel showing the same anatomy; "
    "aligned = regcli.warp(moving, matrix)"
)

#: Moving image -> (fixed image, transform name, true parameters in the core's units: radians).
#: Angles are given in degrees here and converted below.
PAIRS = {
    "BrainMRI_2.png": ("BrainMRI_1.png", "translation", {"tx": 17.3, "ty": -11.6}),
    "BrainMRI_3.png": ("BrainMRI_1.png", "rotation", {"angle_deg": 15.0}),
    "BrainMRI_4.png": (
        "BrainMRI_1.png",
        "rigid",
        {"angle_deg": -18.0, "tx": -12.4, "ty": 8.7},
    ),
    "BrainT2_1.png": ("BrainMRI_1.png", "rigid", {"angle_deg": 9.0, "tx": 6.2, "ty": -4.5}),
    "BrainT2_2.png": (
        "BrainMRI_1.png",
        "rigid",
        {"angle_deg": 35.0, "tx": -14.8, "ty": 10.3},
    ),
    "J2.png": ("I2.png", "translation", {"tx": 8.5, "ty": -5.25}),
}


# --------------------------------------------------------------------------- stage 1


def extract(source_dir: Path = SOURCE_DIR) -> list[Path]:
    """Stage 1: cut the slice out of nilearn's bundled templates into ``source_dir``."""
    try:
        import imageio.v3 as iio
        import nibabel
        import nilearn
    except ImportError as exc:
        sys.exit(
            f"--extract needs nilearn and nibabel ({exc}); install them in a scratch venv: "
            "python3 -m venv /tmp/nilearn-venv && /tmp/nilearn-venv/bin/pip install nilearn"
        )
    data_dir = Path(nilearn.__file__).parent / "datasets" / "data"
    slices = {}
    for name, file_name in TEMPLATES.items():
        volume = np.asanyarray(nibabel.load(data_dir / file_name).dataobj)
        if volume.dtype != np.uint8:
            raise SystemExit(f"{file_name}: expected 8-bit data, got {volume.dtype}")
        # Voxel axes are (x: left->right, y: posterior->anterior, z); show anterior at the top
        # and the subject's left on the image's left (neurological view).
        slices[name] = volume[:, :, SLICE_INDEX].T[::-1]
    rows, cols = np.nonzero(slices["t1"])
    # Integer offsets only: the sources stay the template's own 8-bit values (no resampling).
    row_offset = int(np.rint((SIZE - 1) / 2 - (rows.min() + rows.max()) / 2))
    col_offset = int(np.rint((SIZE - 1) / 2 - (cols.min() + cols.max()) / 2))
    source_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in slices.items():
        out = np.zeros((SIZE, SIZE), np.uint8)
        r, c = np.nonzero(image)
        out[r + row_offset, c + col_offset] = image[r, c]
        path = source_dir / SOURCE_FILES[name]
        iio.imwrite(path, out)
        written.append(path)
    return written


# --------------------------------------------------------------------------- stage 2


def _rng(name: str) -> np.random.Generator:
    """A Generator of its own for each output file, so adding a file changes no other."""
    return np.random.default_rng([SEED, *name.encode()])


def _noisy_uint8(image: np.ndarray, name: str, *, sigma: float = NOISE_SIGMA) -> np.ndarray:
    noisy = image + _rng(name).normal(0.0, sigma, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _truth(transform: str, given: dict) -> tuple[np.ndarray, dict]:
    """Matrix and ``describe()`` parameters of the true transform (centre for a 256 x 256 image)."""
    from regcli.transforms import make_transform

    model = make_transform(transform, shape=(SIZE, SIZE))
    values = [
        np.deg2rad(given[f"{n}_deg"]) if n in model.angle_params else given[n]
        for n in model.param_names
    ]
    params = model.describe(values)
    params = {k: (round(v, 10) if isinstance(v, float) else v) for k, v in params.items()}
    return model.matrix(values), params


def _t2_like(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """A T2-weighted-looking slice from the tissue maps: CSF bright, grey above white matter."""
    from scipy import ndimage

    brain = ndimage.binary_fill_holes(t1 > 0)
    inside = ndimage.gaussian_filter(brain.astype(float), 0.8)
    csf = np.clip(inside - gm - wm, 0.0, 1.0)
    t2 = 235.0 * csf + 125.0 * gm + 70.0 * wm
    return ndimage.gaussian_filter(t2, 0.6)


def _texture(shape) -> np.ndarray:
    """An image unrelated to the brain: smoothed seeded noise in a disc, scaled to 0..220."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(_rng("texture").normal(size=shape), 5.0)
    field = (field - field.min()) / (field.max() - field.min())
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    disc = np.hypot(x - (shape[1] - 1) / 2, y - (shape[0] - 1) / 2) < 0.42 * shape[0]
    return 220.0 * field * disc


def _pseudo_colour(image: np.ndarray) -> np.ndarray:
    """RGB version of an 8-bit image with a black-red-yellow-white ("hot") colour map."""
    t = image.astype(float) / 255.0
    rgb = np.stack([np.clip(3 * t - k, 0.0, 1.0) for k in range(3)], axis=-1)
    return np.rint(255 * rgb).astype(np.uint8)


def _json_text(data: dict) -> str:
    """Indented JSON with every innermost list (matrix row, centre) kept on one line."""
    text = json.dumps(data, indent=2)
    flat = re.sub(
        r"\[\s+([^\[\]{}]*?)\s+\]",
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
        text,
    )
    return flat + "\n"


def build(output_dir: Path = SAMPLES, source_dir: Path = SOURCE_DIR) -> list[Path]:
    """Stage 2: write every derived sample file into ``output_dir``; return their paths."""
    import imageio.v3 as iio

    from regcli.resample import warp

    sources = {name: iio.imread(source_dir / f).astype(float) for name, f in SOURCE_FILES.items()}
    t1 = sources["t1"]
    gm, wm = sources["gm"] / 255.0, sources["wm"] / 255.0
    clean = {
        "BrainMRI_1.png": t1,
        "I2.png": t1,
        "J3.png": 255.0 * (t1 / 255.0) ** 0.5,  # gamma 0.5: non-linear, monotonic
        "J4.png": _t2_like(t1, gm, wm),
        "J5.png": _texture(t1.shape),
    }
    truth = {"convention": CONVENTION, "pairs": {}}
    moving_source = {"J2.png": t1}
    for moving, (fixed, transform, given) in PAIRS.items():
        matrix, params = _truth(transform, given)
        source = moving_source.get(moving, clean["J4.png"] if "T2" in moving else t1)
        # Content at fixed pixel x appears at matrix @ x in the moving image.
        clean[moving] = warp(source, np.linalg.inv(matrix), order=3)
        truth["pairs"][moving] = {
            "fixed": fixed,
            "transform": transform,
            "matrix": matrix.tolist(),
            "params": params,
        }

    images = {name: _noisy_uint8(image, name) for name, image in clean.items()}
    # Joint-histogram exercise: I1..I5 are the fixed slice; J1 is the very same pixels.
    for k in range(1, 6):
        images[f"I{k}.png"] = images["BrainMRI_1.png"]
    images["J1.png"] = images["BrainMRI_1.png"]
    images["BrainMRI_1_rgb.png"] = _pseudo_colour(images["BrainMRI_1.png"])
    noisy16 = 257.0 * t1 + _rng("BrainMRI_1_16bit.png").normal(0, 257 * NOISE_SIGMA, t1.shape)
    images["BrainMRI_1_16bit.png"] = np.clip(np.rint(noisy16), 0, 65535).astype(np.uint16)

    # A label map on BrainMRI_2's grid (0 background, 1 grey matter, 2 white matter), for
    # `regcli apply --order 0`: moved by BrainMRI_2's truth with nearest-neighbour sampling.
    labels = np.where(wm > 0.5, 2, np.where(gm > 0.5, 1, 0)).astype(np.uint8)
    shift = np.array(truth["pairs"]["BrainMRI_2.png"]["matrix"])
    images["labels_2.png"] = warp(labels, np.linalg.inv(shift), order=0).astype(np.uint8)

    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(images):
        path = output_dir / name
        iio.imwrite(path, images[name])
        written.append(path)
    path = output_dir / "truth.json"
    path.write_text(_json_text(truth))
    written.append(path)
    path = output_dir / "pairs.csv"  # for `regcli batch --pairs`
    path.write_text(PAIRS_CSV)
    written.append(path)
    written.append(_timelapse(t1, output_dir / "timelapse.tif"))
    return written


#: The pairs of `regcli batch --pairs sample_images/pairs.csv` (paths relative to the CSV).
PAIRS_CSV = """fixed,moving,name
BrainMRI_1.png,BrainMRI_2.png,translated
BrainMRI_1.png,BrainMRI_3.png,rotated
BrainMRI_1.png,BrainMRI_4.png,rigid
"""


def _timelapse(t1: np.ndarray, path: Path, frames: int = 6) -> Path:
    """A small drifting stack for `regcli stack`: the slice at half size, frame k shifted by
    (1.5 k, -k) pixels and turned by k degrees about the centre, with noise."""
    import tifffile

    from regcli.pyramid import downsample
    from regcli.resample import warp
    from regcli.transforms import make_transform

    small = downsample(t1, 2.0)
    rigid = make_transform("rigid", shape=small.shape)
    stack = []
    for k in range(frames):
        matrix = rigid.matrix([np.radians(k), 1.5 * k, -1.0 * k])
        frame = warp(small, np.linalg.inv(matrix), order=3)
        stack.append(_noisy_uint8(frame, f"timelapse{k}"))
    tifffile.imwrite(path, np.array(stack), photometric="minisblack", compression="zlib")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--extract",
        action="store_true",
        help="stage 1: re-cut the source slices from nilearn's templates (needs nilearn)",
    )
    parser.add_argument("--output-dir", type=Path, default=SAMPLES, help="where stage 2 writes")
    parser.add_argument("--source-dir", type=Path, default=SOURCE_DIR, help="the source slices")
    args = parser.parse_args(argv)
    paths = extract(args.source_dir) if args.extract else build(args.output_dir, args.source_dir)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
