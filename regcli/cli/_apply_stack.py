"""``regcli apply --transforms``: the per-frame transforms of ``regcli stack`` applied to
another stack (a second channel, a label stack), streamed frame by frame."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from regcli.cli import _resampling, helpers


def apply_stack(image: Path, table: Path, output: Path, *, order, fill, overwrite, as_json):
    """Resample every frame of ``image`` by its row of ``table`` and write a multi-page TIFF
    in the input's dtype (ImageJ metadata and resolution kept)."""
    from regcli.errors import InputError
    from regcli.io import to_dtype
    from regcli.stack import warp_frames
    from regcli.stackio import open_stack, read_transforms_csv, write_stack

    _resampling.check_image_output(output, overwrite=overwrite, inputs=[image, table])
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(f"{output}: a stack is written as a multi-page TIFF; name it .tif")
    matrices = read_transforms_csv(table)
    source = open_stack(image)
    with contextlib.closing(source):
        if len(source) != len(matrices):
            raise InputError(
                f"{image}: has {len(source)} frames but {table} has {len(matrices)} transforms"
            )
        frames = (
            to_dtype(warped, source.dtype)
            for warped in warp_frames(source, matrices, order=order, fill=fill)
        )
        write_stack(output, frames, shape=source.shape, dtype=source.dtype, tiff=source.tiff)
    facts = {
        "output": output,
        "image": image,
        "transforms": table,
        "frames": len(matrices),
        "shape": list(source.shape),
        "dtype": source.dtype.name,
        "order": order,
        "fill": fill,
    }
    if as_json:
        helpers.echo_json(facts)
    else:
        click.echo(
            f"{output}: {len(matrices)} frames of {image} resampled with {table} "
            f"({source.dtype.name}, order {order})"
        )
