"""Synthetic data with known transforms for the batch and stack tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import smooth_blobs

from regcli.io import write_image
from regcli.resample import warp
from regcli.transforms import make_transform


def rigid(shape, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    """The rigid fixed -> moving matrix about the image centre."""
    return make_transform("rigid", shape=shape).matrix(np.array([np.radians(angle_deg), tx, ty]))


def moving_for(fixed: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The image whose fixed -> moving matrix is ``truth``: ``fixed`` warped by its inverse."""
    return warp(np.asarray(fixed, dtype=float), np.linalg.inv(truth), order=3)


def fixed_image(shape=(96, 112), seed=0) -> np.ndarray:
    """A uint8 test image (smooth blobs)."""
    return np.rint(smooth_blobs(shape, seed=seed) * 250).astype(np.uint8)


def write_pairs(folder: Path, count: int, *, shape=(96, 112), seed=0, subfolder="") -> tuple:
    """Write ``fixed.png`` and ``count`` moving PNGs with seeded rigid truths into
    ``folder`` (movings in ``folder/subfolder``); return ``(fixed_path, [(moving, truth)])``."""
    rng = np.random.default_rng(seed)
    fixed = fixed_image(shape)
    fixed_path = folder / "fixed.png"
    if not fixed_path.exists():
        write_image(fixed_path, fixed)
    (folder / subfolder).mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(count):
        truth = rigid(shape, rng.uniform(-8, 8), rng.uniform(-4, 4), rng.uniform(-4, 4))
        path = folder / subfolder / f"m{k:02d}.png"
        write_image(path, moving_for(fixed, truth), dtype=np.uint8)
        out.append((path, truth))
    return fixed_path, out


def drift_stack(frames=8, shape=(80, 96), seed=1, *, noise=0.004):
    """A uint16 stack drifting by small random steps (shifts up to 1.5 px, turns up to 0.6 deg
    a frame); returns ``(stack, truths)`` with ``truths[t]`` the frame 0 -> frame t matrix."""
    rng = np.random.default_rng(seed)
    base = smooth_blobs(shape, seed=seed + 10)
    params, truths, stack = np.zeros(3), [], []
    for t in range(frames):
        if t:
            params = params + rng.uniform([-0.6, -1.5, -1.5], [0.6, 1.5, 1.5])
        truth = rigid(shape, *params)
        frame = moving_for(base, truth) + rng.normal(0.0, noise, shape)
        stack.append(np.clip(frame * 4000 + 100, 0, 65535).astype(np.uint16))
        truths.append(truth)
    return np.array(stack), np.array(truths)
