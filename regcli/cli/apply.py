"""``regcli apply``: re-apply a saved transform to another image (e.g. a label map)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from regcli.cli import _resampling, helpers, interrupts, options, outputs

log = logging.getLogger("regcli")


@click.command(short_help="Apply a saved transform (JSON or ITK .tfm) to an image.")
@options.image_argument("image")
@click.argument(
    "transform_file",
    metavar="TRANSFORM.json|.tfm",
    type=options.PathValue(),
    required=False,
)
@options.output_opt(
    "Output image (.png, .jpg, .tif, .npy); same dtype and channels as IMAGE.", required=True
)
@click.option(
    "--like",
    type=options.PathValue(),
    metavar="FIXED",
    help="Image whose grid (shape) the output takes, normally the fixed image. "
    "Default: fixed_shape from TRANSFORM.json, else IMAGE's own shape.",
)
@click.option(
    "--transforms",
    "transforms_csv",
    type=options.PathValue(dir_okay=False),
    metavar="TRANSFORMS.csv",
    help="Instead of TRANSFORM.json: the per-frame transforms that `regcli stack` wrote; "
    "IMAGE is then a stack (another channel) and -o a multi-page .tif.",
)
@click.option(
    "--channel",
    type=click.IntRange(min=0),
    default=None,
    metavar="K",
    help="With --transforms, for a stack with channels: move channel K (from 0); the output "
    "is that channel (run once per channel).",
)
@options.order_opt
@options.fill_opt
@options.overwrite_opt
@options.json_opt
def apply(
    image, transform_file, output, like, transforms_csv, channel, order, fill, overwrite, as_json
):
    """Resample IMAGE with the transform saved in TRANSFORM onto the fixed grid.

    TRANSFORM is what `regcli register` writes: transform.json (or `translate`/`rotate
    --save-transform`), whose "matrix" maps a fixed pixel (x=col, y=row, 1) to the moving
    pixel showing the same anatomy, or transform.tfm, the same map as an ITK transform
    file (any ITK/SimpleITK 2-D affine, Euler2D, Similarity2D or translation transform, in
    physical units: converted with the images' pixel spacing, from their TIFF resolution,
    else 1). IMAGE plays the moving image and the output is aligned with the fixed one. Use
    it to move a second image (another channel, a label map) with a transform found on the
    first.

    Every channel of IMAGE is moved by the same matrix (RGB stays RGB, RGBA keeps its
    alpha). Use --order 0 for label maps: nearest-neighbour keeps label values exactly (no
    new values between labels); a palette PNG is a label map, resampled with --order 0
    unless --order is given, and written as a PNG keeps its palette. The output has IMAGE's
    dtype, clipped to its range, and the fixed image's pixel spacing (from --like, else from
    transform.json) in a TIFF.

    \b
    Examples:
      regcli register sample_images/BrainMRI_1.png sample_images/BrainMRI_2.png -o out/reg2
      regcli apply sample_images/labels_2.png out/reg2/transform.json -o out/labels.png --order 0
      regcli apply sample_images/BrainMRI_2.png out/reg2/transform.tfm -o out/aligned.tif \\
          --like sample_images/BrainMRI_1.png
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
            channel=channel,
            order=_resampling.DEFAULT_ORDER if order is None else order,  # stacks: no palette
            fill=fill,
            overwrite=overwrite,
            as_json=as_json,
        )
    if transform_file is None:
        raise click.UsageError("missing TRANSFORM.json (or --transforms TRANSFORMS.csv)")
    if channel is not None:
        raise click.UsageError(
            "--channel goes with --transforms (with TRANSFORM.json every channel is moved)"
        )
    with outputs.OutputSet(overwrite=overwrite, inputs=[image, transform_file, like]) as out:
        staged = _resampling.stage_image_output(out, output)
        data, pixels, out_meta, shape, source = _read_inputs(image, transform_file, like)
        moving = pixels if pixels.ndim == 2 else pixels[..., 0]
        interrupts.pause("read")
        if not out_meta.label_map:  # a palette image: resampling_order says what matters
            _hint_label_map(image, moving, order)
        order = _resampling.resampling_order(order, out_meta, image)
        expected = data.get("moving_shape")
        if expected is not None and tuple(expected) != moving.shape:
            log.warning(
                "%s: shape %s differs from the moving image the transform was made for %s; "
                "applying it in pixel coordinates anyway",
                image,
                moving.shape,
                tuple(expected),
            )
        _check_content_lands(data["matrix"], shape, moving.shape, image, transform_file)
        _resampling.write_warped(
            output,
            staged,
            pixels,
            data["matrix"],
            output_shape=shape,
            order=order,
            fill=fill,
            meta=out_meta,
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
                "channels": pixels.shape[2] if pixels.ndim == 3 else 1,
                "spacing": out_meta.to_dict(),
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


def _read_inputs(image: Path, transform_file: Path, like: Path | None):
    """``(transform data, IMAGE's pixels, the output's metadata, output shape, where the
    shape came from)``.  The output is on the fixed grid: its spacing is the fixed image's
    (``--like``, else what transform.json recorded)."""
    import dataclasses

    from regcli.io import read_channels
    from regcli.transform_files import read_transform

    pixels, meta = read_channels(image, allow_nan=True)  # NaN: no data, kept where it lands
    like_meta = None
    if like is not None:
        like_pixels, like_meta = read_channels(like, allow_nan=True)  # its grid only
    if Path(transform_file).suffix.lower() == ".json":
        data = read_transform(transform_file)
    else:  # ITK: physical units, converted with the spacings (filled in as register does)
        from regcli.images import pair_spacing

        fixed_meta, moving_meta = pair_spacing(like_meta or meta, meta)
        data = read_transform(
            transform_file, fixed_spacing=fixed_meta.spacing, moving_spacing=moving_meta.spacing
        )
    if like is not None:
        shape, source = like_pixels.shape[:2], "like"
        spacing, unit = like_meta.spacing, like_meta.unit
    elif data.get("fixed_shape") is not None:
        shape, source = tuple(data["fixed_shape"]), "fixed_shape"
        spacing, unit = data.get("fixed_spacing"), data.get("fixed_unit")
    else:
        shape, source = pixels.shape[:2], "image"
        spacing, unit = meta.spacing, meta.unit
    if spacing is not None and unit is None and tuple(spacing) == (1.0, 1.0):
        spacing = None  # recorded as 1 x 1 pixel: the fixed image had no spacing
    out_meta = dataclasses.replace(meta, spacing=spacing, unit=unit)
    return data, pixels, out_meta, tuple(shape), source


def _check_content_lands(matrix, shape, image_shape, image: Path, transform_file: Path) -> None:
    """An error naming TRANSFORM when its matrix maps the whole output grid outside IMAGE:
    the output would be ``--fill`` everywhere, which nobody asks for (a transform made for
    another image, a shift in the wrong units, a typo in a hand-written file).  Like a
    singular matrix, it is a fault of the file's content: exit 1."""
    from regcli.errors import InputError

    if _resampling.content_lands(matrix, shape, image_shape):
        return
    raise InputError(
        f"{transform_file}: maps the whole {shape[0]} x {shape[1]} output grid outside {image} "
        f"({image_shape[0]} x {image_shape[1]} pixels), so every output pixel would be --fill; "
        "check that the transform was made for this image (its matrix maps a pixel of the "
        "fixed grid to a pixel of IMAGE, in pixels)"
    )


def _hint_label_map(path, image, order: int, *, most: int = 32) -> None:
    """Warn when an integer image with few distinct values (a label map or mask) is about
    to be interpolated (``order`` > 0, or ``None``: the default, cubic): it invents values
    between labels."""
    import numpy as np

    order = _resampling.DEFAULT_ORDER if order is None else order
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
