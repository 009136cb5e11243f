"""The shared body of the resampling commands: ``translate`` and ``rotate`` move an image's
content (:func:`move_content`); ``apply`` uses the output checks and the writer."""

from __future__ import annotations

from pathlib import Path

import click

from regcli.cli import helpers


def check_image_output(output: Path, *, overwrite: bool, inputs) -> None:
    """Fail before any work if ``output`` has no image ending, exists, or is an input."""
    from regcli.io import check_output_format

    inputs = [p for p in inputs if p is not None]
    helpers.check_outputs([output], overwrite=overwrite, inputs=inputs)
    check_output_format(output)


def write_warped(output: Path, image, matrix, *, output_shape=None, order: int, fill: float):
    """Resample ``image`` by ``matrix`` (output pixel -> input pixel) and write it to
    ``output`` in the input's dtype (rounded and clipped for integer images)."""
    from regcli.io import check_output_format, write_image
    from regcli.resample import warp

    check_output_format(output, image.dtype)  # before warping: a float image cannot go to PNG
    warped = warp(image, matrix, output_shape=output_shape, order=order, fill=fill)
    write_image(output, warped, dtype=image.dtype)
    return warped


def move_content(
    image_path: Path,
    geometric,
    *,
    output: Path,
    save_transform: Path | None,
    order: int,
    fill: float,
    overwrite: bool,
    transform_name: str,
    describe,
) -> dict:
    """Write IMAGE with its content moved by the geometric map ``geometric(shape) -> 3x3`` and
    return the facts for the report.

    The output is warped by the inverse of the map (see :mod:`regcli.resample`); the matrix
    reported is the map itself, which is the fixed (IMAGE) -> moving (output) matrix of
    regcli's convention, so registering the output back onto IMAGE gives the same matrix.
    """
    import numpy as np

    from regcli.io import TRANSFORM_CONVENTION, read_image, write_transform_json

    check_image_output(output, overwrite=overwrite, inputs=[image_path])
    if save_transform is not None:
        helpers.check_outputs([save_transform], overwrite=overwrite, inputs=[image_path])
        if Path(save_transform).resolve() == Path(output).resolve():
            raise click.BadParameter("must differ from -o/--output", param_hint="--save-transform")
    image = read_image(image_path)
    matrix = geometric(image.shape)
    params = describe(image.shape)
    write_warped(output, image, np.linalg.inv(matrix), order=order, fill=fill)
    if save_transform is not None:
        write_transform_json(
            save_transform,
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
        "dtype": image.dtype.name,
        "order": order,
        "fill": fill,
    }
