"""``regcli translate``: move the content of an image by (dx, dy) pixels."""

from __future__ import annotations

from pathlib import Path

import click

from regcli.cli.options import (
    FINITE_FLOAT,
    default_output,
    echo_json,
    fill_opt,
    image_argument,
    json_opt,
    order_opt,
    output_opt,
    overwrite_opt,
)

save_transform_opt = click.option(
    "--save-transform",
    type=click.Path(path_type=Path),
    metavar="T.json",
    help="Also write the transform JSON (IMAGE = fixed, output = moving); "
    "`regcli apply OUT T.json` turns the output back into IMAGE.",
)


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
    """Shared body of ``translate`` and ``rotate``: write IMAGE with its content moved by
    the geometric map ``geometric(shape) -> 3x3`` and return the facts for the report.

    The output is warped by the inverse of the map (see regcli.resample); the matrix
    reported is the map itself, which is the fixed (IMAGE) -> moving (output) matrix of
    DESIGN.md, so the output registered back onto IMAGE gives the same matrix.
    """
    import numpy as np

    from regcli.cli.apply import check_image_output, write_warped
    from regcli.cli.options import check_outputs
    from regcli.io import TRANSFORM_CONVENTION, read_image, write_transform_json

    check_image_output(output, overwrite=overwrite, inputs=[image_path])
    if save_transform is not None:
        check_outputs([save_transform], overwrite=overwrite, inputs=[image_path])
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
        "input": image_path,
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


@click.command(short_help="Move an image's content by (dx, dy) pixels.")
@image_argument("image")
@click.option(
    "--dx",
    type=FINITE_FLOAT,
    default=0.0,
    show_default=True,
    help="Pixels to move the content right (negative: left); fractions allowed.",
)
@click.option(
    "--dy",
    type=FINITE_FLOAT,
    default=0.0,
    show_default=True,
    help="Pixels to move the content down (negative: up); fractions allowed.",
)
@output_opt(
    "Output image (.png, .jpg, .tif, .npy). Default: <name>_translated<ending> of IMAGE, "
    "in the current folder."
)
@order_opt
@fill_opt
@save_transform_opt
@overwrite_opt
@json_opt
def translate(image, dx, dy, output, order, fill, save_transform, overwrite, as_json):
    """Move the content of IMAGE DX pixels right and DY pixels down.

    Sub-pixel shifts are interpolated (--order); pixels uncovered at the border get --fill.
    The output has IMAGE's dtype (values rounded and clipped to the dtype's range) and is
    written atomically; IMAGE itself is never modified.

    With --json, prints one JSON object: "output", "matrix" (the 3x3 map of the content,
    [[1, 0, dx], [0, 1, dy], [0, 0, 1]], which is also the fixed -> moving matrix with
    IMAGE as fixed and the output as moving), "params" (tx, ty), "shape", "dtype", ...

    \b
    Examples:
      regcli translate BrainMRI_1.png --dx 5 --dy -3           # -> BrainMRI_1_translated.png
      regcli translate scan.tif --dx 0.5 -o shifted.tif --order 1 --json
    """
    from regcli.transforms import make_transform, translation_matrix

    output = output if output is not None else default_output(image, "translated")
    report = move_content(
        image,
        lambda shape: translation_matrix(dx, dy),
        output=output,
        save_transform=save_transform,
        order=order,
        fill=fill,
        overwrite=overwrite,
        transform_name="translation",
        # Same params as sample_images/truth.json (the centre does not move a translation).
        describe=lambda shape: make_transform("translation", shape=shape).describe([dx, dy]),
    )
    if as_json:
        echo_json({**report, "dx": dx, "dy": dy})
    else:
        click.echo(f"{output}: content of {image} moved {dx:g} px right, {dy:g} px down")
