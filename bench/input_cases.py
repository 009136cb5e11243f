"""Image pairs of the kinds people have: masks, two shapes, pixels that are not square.

Each builder returns an :class:`InputCase`: the pair, the true fixed -> moving matrix (pixels),
and the ``register()`` options that describe the pair fully (the masks, the spacings); the
options without them are what a user who does not give them would run.  The tests
(``tests/test_masks.py``, ``tests/test_shapes.py``, ``tests/test_spacing.py``) and the trust
benchmark (:mod:`bench.trust`) use the same pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from regcli.resample import warp
from regcli.transforms import make_transform

#: The pose of the sample pair BrainMRI_1 -> BrainMRI_4 (a rigid turn of 18 degrees).
BRAIN_POSE = (math.radians(-18.0), -12.4, 8.7)


@dataclass
class InputCase:
    name: str
    fixed: np.ndarray = field(repr=False)
    moving: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    #: Options that describe the pair (masks, spacings); the rest are the defaults.
    given: dict = field(default_factory=dict, repr=False)
    #: Options of the run itself (the transform), with and without ``given``.
    options: dict = field(default_factory=dict)
    note: str = ""


def moved(image: np.ndarray, truth: np.ndarray, shape=None, fill: float = 0.0) -> np.ndarray:
    """The moving image (of ``shape``, default ``image``'s) whose fixed -> moving matrix is
    ``truth``."""
    return warp(
        np.asarray(image, float), np.linalg.inv(truth), order=3, output_shape=shape, fill=fill
    )


def static_pattern(brain: np.ndarray) -> InputCase:
    """A quarter of the moving image (the top-left) overwritten by a bright checkerboard that
    does not move with the anatomy; the moving mask leaves it out."""
    truth = make_transform("rigid", shape=brain.shape).matrix(BRAIN_POSE)
    moving = moved(brain, truth)
    rows, cols = brain.shape
    yy, xx = np.mgrid[: rows // 2, : cols // 2]
    moving[: rows // 2, : cols // 2] = np.where((xx // 6 + yy // 6) % 2 == 0, 255.0, 40.0)
    mask = np.ones(brain.shape, bool)
    mask[: rows // 2, : cols // 2] = False
    return InputCase(
        "25 % static pattern", brain, moving, truth, {"moving_mask": mask}, note="masks"
    )


def burned_in_label(brain: np.ndarray) -> InputCase:
    """The same bright label (a box of text-like strokes) at the same place in both images,
    while the anatomy moves; both masks leave it out."""
    truth = make_transform("rigid", shape=brain.shape).matrix(BRAIN_POSE)
    fixed, moving = np.asarray(brain, float).copy(), moved(brain, truth)
    rows, cols = brain.shape
    top, left, height, width = rows - 44, cols // 8, 36, (3 * cols) // 4
    yy, xx = np.mgrid[:height, :width]
    strokes = ((xx % 11 < 2) | (yy % 12 < 2) | ((xx + 2 * yy) % 17 < 2)) & (yy > 3) & (yy < 33)
    label = np.where(strokes, 255.0, 60.0)
    mask = np.ones(brain.shape, bool)
    for image in (fixed, moving):
        image[top : top + height, left : left + width] = label
    mask[top : top + height, left : left + width] = False
    given = {"fixed_mask": mask, "moving_mask": mask}
    return InputCase("burned-in label", fixed, moving, truth, given, note="masks")


def corrupted_pixels(camera: np.ndarray, seed: int = 0) -> InputCase:
    """scikit-image's masked registration example: the camera shifted by (-22, 13) rows,
    columns, with a quarter of its pixels set to 0 at random; the moving mask says which."""
    valid = np.random.default_rng(seed).random(camera.shape) > 0.25
    moving = ndimage.shift(np.asarray(camera, float), (-22, 13)) * valid
    truth = make_transform("translation", shape=camera.shape).matrix([13.0, -22.0])
    return InputCase(
        "25 % corrupted pixels", camera, moving, truth, {"moving_mask": valid}, note="masks"
    )


def ellipses(camera: np.ndarray) -> InputCase:
    """scikit-image's second example: two different elliptic views of the shifted camera."""
    from skimage import draw

    masks = []
    for centre, radii in (((259, 248), (125, 100)), ((300, 200), (110, 180))):
        rr, cc = draw.ellipse(*centre, *radii, shape=camera.shape)
        mask = np.zeros(camera.shape, bool)
        mask[rr, cc] = True
        masks.append(mask)
    fixed = np.asarray(camera, float) * masks[0]
    moving = ndimage.shift(np.asarray(camera, float), (-22, 13)) * masks[1]
    truth = make_transform("translation", shape=camera.shape).matrix([13.0, -22.0])
    given = {"fixed_mask": masks[0], "moving_mask": masks[1]}
    return InputCase("ellipses of interest", fixed, moving, truth, given, note="masks")


def larger_view(camera: np.ndarray) -> InputCase:
    """A 256^2 fixed view of the camera against a 296 x 276 moving view of the same scene,
    shifted and turned 12 degrees."""
    to_scene = np.array([[1.0, 0, 128], [0, 1, 128], [0, 0, 1]])
    fixed = warp(np.asarray(camera, float), to_scene, order=3, output_shape=(256, 256))
    turn = make_transform("rigid", shape=(296, 276)).matrix([math.radians(12.0), 0.0, 0.0])
    moving_to_scene = np.array([[1.0, 0, 100], [0, 1, 110], [0, 0, 1]]) @ turn
    moving = warp(np.asarray(camera, float), moving_to_scene, order=3, output_shape=(296, 276))
    truth = np.linalg.inv(moving_to_scene) @ to_scene
    return InputCase("256^2 onto a 296x276 view", fixed, moving, truth, note="shapes")


def quarter_turn(camera: np.ndarray) -> InputCase:
    """A 517 x 781 image against a copy turned a quarter (781 x 517)."""
    image = ndimage.zoom(np.asarray(camera, float), (517 / 512, 781 / 512), order=1)[:517, :781]
    cols = image.shape[1]
    truth = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, cols - 1.0], [0.0, 0.0, 1.0]])
    return InputCase("517x781 turned 90 deg", image, np.rot90(image).copy(), truth, note="shapes")


def anisotropic_pixels(brain: np.ndarray, angle_deg: float = 20.0) -> InputCase:
    """A physically rigid turn of ``angle_deg`` (and a shift), the fixed image sampled on
    1 x 1 pixels and the moving one on (sy, sx) = (2, 1) pixels (128 x 256)."""
    pose = [math.radians(angle_deg), 6.0, -4.0]
    physical = make_transform("rigid", shape=brain.shape).matrix(pose)
    to_moving = np.diag([1.0, 2.0, 1.0])  # moving pixel -> physical point
    scene = ndimage.gaussian_filter(np.asarray(brain, float), (0.8, 0.0))  # 2-unit-tall pixels
    rows, cols = brain.shape
    moving = warp(
        scene, np.linalg.inv(physical) @ to_moving, order=3, output_shape=(rows // 2, cols)
    )
    truth = np.linalg.inv(to_moving) @ physical
    given = {"fixed_spacing": (1.0, 1.0), "moving_spacing": (2.0, 1.0)}
    return InputCase("rigid 20 deg, 1 x 2 pixels", brain, moving, truth, given, note="spacing")
