"""``regcli translate``: move the content of an image by (dx, dy) pixels."""

from __future__ import annotations

import click

from regcli.cli import _resampling, helpers, options


@click.command(short_help="Move an image's content by (dx, dy) pixels.")
@options.image_argument("image")
@click.option(
    "--dx",
    type=options.FINITE_FLOAT,
    default=0.0,
    show_default=True,
    help="Pixels to move the content right (negative: left); fractions allowed.",
)
@click.option(
    "--dy",
    type=options.FINITE_FLOAT,
    default=0.0,
    show_default=True,
    help="Pixels to move the content down (negative: up); fractions allowed.",
)
@options.output_opt(
    "Output image (.png, .jpg, .tif, .npy). Default: <name>_translated<ending> of IMAGE, "
    "in the current folder."
)
@options.order_opt
@options.fill_opt
@options.save_transform_opt
@options.overwrite_opt
@options.json_opt
def translate(image, dx, dy, output, order, fill, save_transform, overwrite, as_json):
    """Move the content of IMAGE DX pixels right and DY pixels down.

    Sub-pixel shifts are interpolated (--order; a palette PNG, a label map, nearest-neighbour
    unless --order is given, and it keeps its palette); pixels uncovered at the border get
    --fill. The output has IMAGE's dtype (values rounded and clipped to the dtype's range)
    and is written atomically; IMAGE itself is never modified.

    With --json, prints one JSON object: "output", "image", "matrix" (the 3x3 map of the
    content, [[1, 0, dx], [0, 1, dy], [0, 0, 1]], which is also the fixed -> moving matrix
    with IMAGE as fixed and the output as moving), "params" (tx, ty), "shape", "dtype", ...

    \b
    Examples:
      regcli translate BrainMRI_1.png --dx 5 --dy -3           # -> BrainMRI_1_translated.png
      regcli translate scan.tif --dx 0.5 -o shifted.tif --order 1 --json
    """
    from regcli.transforms import make_transform, translation_matrix

    output = output if output is not None else helpers.default_output(image, "translated")
    report = _resampling.move_content(
        image,
        lambda shape: translation_matrix(dx, dy),
        output=output,
        save_transform=save_transform,
        order=order,
        fill=fill,
        overwrite=overwrite,
        moved_by="--dx/--dy",
        transform_name="translation",
        # Same params as sample_images/truth.json (the centre does not move a translation).
        describe=lambda shape: make_transform("translation", shape=shape).describe([dx, dy]),
    )
    if as_json:
        helpers.echo_json({**report, "dx": dx, "dy": dy})
    else:
        click.echo(f"{output}: content of {image} moved {dx:g} px right, {dy:g} px down")
