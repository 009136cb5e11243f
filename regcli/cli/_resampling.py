"""The shared body of the resampling commands: ``translate`` and ``rotate`` move an image's
content (:func:`move_content`); ``apply`` uses the output staging and the writer."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from regcli.cli import interrupts, outputs

log = logging.getLogger("regcli")

#: The interpolation order of a resampled image that is not a label map: cubic spline.
DEFAULT_ORDER = 3


def resampling_order(order: int | None, meta, name) -> int:
    """The interpolation order to resample the image ``name`` (whose
    :class:`~regcli.images.ImageMeta` is ``meta``) with: ``order`` (``--order``) when given;
    else nearest-neighbour (0) for a label map (a palette PNG: its values are label indices,
    and interpolating between two labels invents a third that is nowhere in the input), cubic
    (:data:`DEFAULT_ORDER`) for anything else.  An order > 0 asked for a label map is done,
    with a warning.  Every command that writes a resampled image chooses its order here."""
    label_map = meta is not None and meta.label_map
    if order is None:
        return 0 if label_map else DEFAULT_ORDER
    if label_map and order > 0:
        log.warning(
            "%s is a palette image (a label map): --order %d creates label values between "
            "neighbouring labels; without --order it is resampled nearest-neighbour",
            name,
            order,
        )
    return order


def stage_image_output(out: outputs.OutputSet, output: Path) -> Path:
    """Stage ``-o OUTPUT``: an image ending regcli writes (else a usage error on ``-o``)."""
    from regcli.io import IMAGE_SUFFIXES

    return out.stage(output, suffixes=IMAGE_SUFFIXES, kind="image", option="output")


def write_warped(
    output: Path,
    staged: Path,
    image,
    matrix,
    *,
    output_shape=None,
    order: int,
    fill: float,
    meta=None,
):
    """Resample ``image`` (``(rows, cols[, channels])``: every channel by the same matrix) by
    ``matrix`` (output pixel -> input pixel) and write it to ``staged`` (the staged file of
    ``output``) in the input's dtype (rounded and clipped for integer images), with ``meta``
    (channel meaning, spacing) for the writer."""
    from regcli.images import warp_channels
    from regcli.io import check_output_format, write_image

    channels = image.shape[2] if image.ndim == 3 else 1
    # Before warping: a float image cannot go to PNG, nor 2 channels to JPEG.
    check_output_format(output, image.dtype, channels)
    interrupts.pause("work")
    warped = warp_channels(image, matrix, output_shape=output_shape, order=order, fill=fill)
    write_image(staged, warped, dtype=image.dtype, meta=meta)
    return warped


def move_content(
    image_path: Path,
    geometric,
    *,
    output: Path,
    save_transform: Path | None,
    order: int | None,
    fill: float,
    overwrite: bool,
    transform_name: str,
    describe,
    moved_by: str,
) -> dict:
    """Write IMAGE with its content moved by the geometric map ``geometric(shape) -> 3x3`` and
    return the facts for the report.

    The output is warped by the inverse of the map (see :mod:`regcli.resample`); the matrix
    reported is the map itself, which is the fixed (IMAGE) -> moving (output) matrix of
    regcli's convention, so registering the output back onto IMAGE gives the same matrix.
    Both files (the image and ``--save-transform``) are written, or neither.  ``order``
    ``None``: :func:`resampling_order` chooses (the report says which).  A map that moves
    the content wholly out of the image is a usage error on the options ``moved_by``.
    """
    import numpy as np

    from regcli.io import TRANSFORM_CONVENTION, read_channels, write_transform_json

    if save_transform is not None and Path(save_transform).resolve() == Path(output).resolve():
        raise click.BadParameter("must differ from -o/--output", param_hint="--save-transform")
    with outputs.OutputSet(overwrite=overwrite, inputs=[image_path]) as out:
        staged = stage_image_output(out, output)
        staged_transform = None
        if save_transform is not None:  # (a transform JSON: `apply` reads it by its ending)
            staged_transform = out.stage(
                save_transform, suffixes=(".json",), kind="transform", option="save_transform"
            )
        pixels, meta = read_channels(image_path, allow_nan=True)  # NaN: no data, kept
        image = pixels if pixels.ndim == 2 else pixels[..., 0]  # the grid
        interrupts.pause("read")
        order = resampling_order(order, meta, image_path)
        matrix = geometric(image.shape)
        params = describe(image.shape)
        _check_content_stays(matrix, image.shape, image_path, moved_by)
        write_warped(
            output, staged, pixels, np.linalg.inv(matrix), order=order, fill=fill, meta=meta
        )
        if staged_transform is not None:
            write_transform_json(
                staged_transform,
                matrix,
                transform=transform_name,
                params=params,
                fixed_shape=image.shape,
                moving_shape=image.shape,
                extra={"fixed": str(image_path), "moving": str(output)},
            )
    return {
        "output": output,
        "image": image_path,
        "transform_file": save_transform,
        "matrix": matrix,
        "convention": TRANSFORM_CONVENTION,
        "transform": transform_name,
        "params": params,
        "shape": list(image.shape),
        "channels": pixels.shape[2] if pixels.ndim == 3 else 1,
        "dtype": image.dtype.name,
        "order": order,
        "fill": fill,
    }


def content_lands(matrix, output_shape, input_shape) -> bool:
    """True if resampling an image of ``input_shape`` by ``matrix`` (output pixel -> input
    pixel) onto a grid of ``output_shape`` gives some output pixel the image's content, not
    only ``--fill``: the source of at least one output pixel lies within a pixel of the
    image.  Every resampling command checks its matrix with it before writing."""
    from regcli.resample import inside_mask

    return bool(inside_mask(matrix, output_shape, input_shape, margin=-0.999).any())


def _check_content_stays(matrix, shape, image_path: Path, moved_by: str) -> None:
    """A usage error on ``moved_by`` (e.g. ``--dx/--dy``) when ``matrix`` moves the content
    wholly out of the image: the output would be ``--fill`` everywhere, which nobody asks
    for (``--dx 1e300`` is a typo or a unit mix-up, not a wish for a blank image)."""
    import numpy as np

    if content_lands(np.linalg.inv(matrix), shape, shape):
        return
    rows, cols = shape
    raise click.BadParameter(
        f"moves the content of {image_path} ({rows} x {cols} pixels) wholly out of the image, "
        "so every output pixel would be --fill; give a move smaller than the image",
        param_hint=moved_by,
    )
