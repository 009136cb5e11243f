"""``regcli apply``: re-apply a saved transform to another image (e.g. a label map)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from regcli.cli import _resampling, helpers, interrupts, options, outputs

log = logging.getLogger("regcli")


@click.command(short_help="Apply a saved transform JSON to an image.")
@options.image_argument("image")
@click.argument(
    "transform_file", metavar="TRANSFORM.json", type=click.Path(path_type=Path), required=False
)
@options.output_opt("Output image (.png, .jpg, .tif, .npy); same dtype as IMAGE.", required=True)
@click.option(
    "--like",
    type=click.Path(path_type=Path),
    metavar="FIXED",
    help="Image whose grid (shape) the output takes, normally the fixed image. "
    "Default: fixed_shape from TRANSFORM.json, else IMAGE's own shape.",
)
@click.option(
    "--transforms",
    "transforms_csv",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="TRANSFORMS.csv",
    help="Instead of TRANSFORM.json: the per-frame transforms that `regcli stack` wrote; "
    "IMAGE is then a stack (another channel) and -o a multi-page .tif.",
)
@options.order_opt
@options.fill_opt
@options.overwrite_opt
@options.json_opt
def apply(image, transform_file, output, like, transforms_csv, order, fill, overwrite, as_json):
    """Resample IMAGE with the transform saved in TRANSFORM.json onto the fixed grid.

    TRANSFORM.json is what `regcli register` writes (or `translate`/`rotate
    --save-transform`): its "matrix" maps a fixed pixel (x=col, y=row, 1) to the moving
    pixel showing the same anatomy, so IMAGE plays the moving image and the output is
    aligned with the fixed one. Use it to move a second image (another channel, a label
    map) with a transform found on the first.

    Use --order 0 for label maps: nearest-neighbour keeps label values exactly (no new
    values between labels). The output has IMAGE's dtype, clipped to its range.

    \b
    Examples:
      regcli register BrainMRI_1.png BrainMRI_2.png -o out
      regcli apply labels_2.png out/transform.json -o labels_on_1.png --order 0
      regcli apply BrainMRI_2.png out/transform.json -o aligned.tif --like BrainMRI_1.png
      regcli apply --transforms aligned/transforms.csv channel2.tif -o channel2_aligned.tif
    """
    if transforms_csv is not None:
        if transform_file is not None or like is not None:
            raise click.UsageError("--transforms replaces TRANSFORM.json and --like")
        from regcli.cli._apply_stack import apply_stack

        return apply_stack(
            image,
            transforms_csv,
            output,
            order=order,
            fill=fill,
            overwrite=overwrite,
            as_json=as_json,
        )
    if transform_file is None:
        raise click.UsageError("missing TRANSFORM.json (or --transforms TRANSFORMS.csv)")
    from regcli.io import read_image, read_transform_json

    with outputs.OutputSet(overwrite=overwrite, inputs=[image, transform_file, like]) as out:
        staged = _resampling.stage_image_output(out, output)
        data = read_transform_json(transform_file)
        moving = read_image(image)
        if like is not None:
            shape, source = read_image(like).shape, "like"
        elif data.get("fixed_shape") is not None:
            shape, source = tuple(data["fixed_shape"]), "fixed_shape"
        else:
            shape, source = moving.shape, "image"
        interrupts.pause("read")
        _hint_label_map(image, moving, order)
        expected = data.get("moving_shape")
        if expected is not None and tuple(expected) != moving.shape:
            log.warning(
                "%s: shape %s differs from the moving image the transform was made for %s; "
                "applying it in pixel coordinates anyway",
                image,
                moving.shape,
                tuple(expected),
            )
        _resampling.write_warped(
            output, staged, moving, data["matrix"], output_shape=shape, order=order, fill=fill
        )
    if as_json:
        helpers.echo_json(
            {
                "output": output,
                "image": image,
                "transform_file": transform_file,
                "matrix": data["matrix"],
                "output_shape": list(shape),
                "shape_from": source,
                "dtype": moving.dtype.name,
                "order": order,
                "fill": fill,
            }
        )
    else:
        click.echo(
            f"{output}: {image} resampled with {transform_file} onto a "
            f"{shape[0]} x {shape[1]} grid ({moving.dtype.name}, order {order})"
        )


def _hint_label_map(path, image, order: int, *, most: int = 32) -> None:
    """Warn when an integer image with few distinct values (a label map or mask) is about
    to be interpolated: order > 0 invents values between labels."""
    import numpy as np

    if order == 0 or not np.issubdtype(image.dtype, np.integer):
        return
    count = len(np.unique(image))
    if count <= most:
        log.warning(
            "%s has only %d distinct values, like a label map; --order %d creates values "
            "between them, --order 0 keeps labels exact",
            path,
            count,
            order,
        )
