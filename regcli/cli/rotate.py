"""``regcli rotate``: turn the content of an image about a centre."""

from __future__ import annotations

import click

from regcli.cli import _resampling, helpers, options


@click.command(short_help="Turn an image's content by an angle (degrees) about a centre.")
@options.image_argument("image")
@click.option(
    "--angle",
    type=options.FINITE_FLOAT,
    required=True,
    help="Angle in degrees; positive turns clockwise on screen (y points down).",
)
@options.center_opt("topleft", " topleft is the course's definition.")
@options.output_opt(
    "Output image (.png, .jpg, .tif, .npy). Default: <name>_rotated<ending> of IMAGE, "
    "in the current folder."
)
@options.order_opt
@options.fill_opt
@options.save_transform_opt
@options.overwrite_opt
@options.json_opt
def rotate(image, angle, center, output, order, fill, save_transform, overwrite, as_json):
    """Turn the content of IMAGE by ANGLE degrees about --center.

    Positive angles turn the picture clockwise on screen, because the y axis (rows)
    points down; the rotation matrix in (x, y) is [[cos, -sin], [sin, cos]]. The default
    centre is the top-left pixel (0, 0), as in the course assignment; --center center
    turns about the middle ((cols-1)/2, (rows-1)/2) and --center X,Y about any point
    (x = column, y = row). Corners that come from outside IMAGE get --fill. The output has
    IMAGE's dtype (rounded and clipped) and is written atomically; a palette PNG (a label
    map) is resampled nearest-neighbour unless --order is given, and keeps its palette.

    With --json, prints one JSON object: "output", "image", "matrix" (the 3x3 map of the
    content, which is also the fixed -> moving matrix with IMAGE as fixed and the output as
    moving), "params" (angle_deg, center), "center" [x, y], "shape", "dtype", ...

    \b
    Examples:
      regcli rotate BrainMRI_1.png --angle 10                   # -> BrainMRI_1_rotated.png
      regcli rotate BrainMRI_1.png --angle -5 --center center -o turned.png --json
      regcli rotate scan.tif --angle 90 --center 127.5,127.5 --order 1
    """
    import math

    from regcli.transforms import make_transform, resolve_center, rotation_matrix

    output = output if output is not None else helpers.default_output(image, "rotated")
    radians = math.radians(angle)

    def describe(shape):
        return make_transform("rotation", center=center, shape=shape).describe([radians])

    report = _resampling.move_content(
        image,
        lambda shape: rotation_matrix(radians, resolve_center(center, shape)),
        output=output,
        save_transform=save_transform,
        order=order,
        fill=fill,
        overwrite=overwrite,
        moved_by="--angle/--center",
        transform_name="rotation",
        describe=describe,
    )
    center_xy = report["params"]["center"]
    if as_json:
        helpers.echo_json({**report, "angle_deg": angle, "center": center_xy})
    else:
        click.echo(
            f"{output}: content of {image} turned {angle:g} deg clockwise about "
            f"({center_xy[0]:g}, {center_xy[1]:g})"
        )
