"""``regcli apply --transforms``: the per-frame transforms of ``regcli stack`` applied to
another stack (a second channel, a label stack), streamed frame by frame."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from regcli.cli import helpers, outputs


def in_file(name: str, exc: Exception) -> Exception:
    """An error about one frame (``exc.frame`` set, "frame 7: ...") said of the stack file
    ``name``: "STACK.tif, frame 7: ..."; any other error as it is."""
    from regcli.errors import InputError

    if isinstance(exc, InputError) and getattr(exc, "frame", None) is not None:
        return InputError(f"{name}, {exc}")
    return exc


def apply_stack(
    image: Path, table: Path, output: Path, *, channel=None, order, fill, overwrite, as_json
):
    """Resample every frame of ``image`` (its channel ``channel``, for a stack with channels)
    by its row of ``table`` and write a multi-page TIFF in the input's dtype (ImageJ metadata
    and resolution kept)."""
    from regcli.errors import InputError
    from regcli.io import to_dtype
    from regcli.stack import warp_frames
    from regcli.stackio import open_stack, read_transforms_csv, write_stack

    with outputs.OutputSet(overwrite=overwrite, inputs=[image, table]) as out:
        staged = out.stage(output, suffixes=(".tif", ".tiff"), kind="stack", option="output")
        matrices = read_transforms_csv(table)
        with helpers.cli_wording():
            source = open_stack(image, channel=channel)
        with contextlib.closing(source):
            if len(source) != len(matrices):
                raise InputError(
                    f"{image}: has {helpers.plural(len(source), 'frame')} but {table} has "
                    f"{helpers.plural(len(matrices), 'transform')}"
                )
            frames = (
                to_dtype(warped, source.dtype)
                for warped in warp_frames(source, matrices, order=order, fill=fill)
            )
            try:
                write_stack(
                    staged, frames, shape=source.shape, dtype=source.dtype, tiff=source.tiff
                )
            except InputError as exc:
                raise in_file(source.name, exc) from None
    facts = {
        "output": output,
        "image": image,
        "transforms": table,
        "frames": len(matrices),
        "shape": list(source.shape),
        "dtype": source.dtype.name,
        "channel": channel,
        "order": order,
        "fill": fill,
    }
    if as_json:
        helpers.echo_json(facts)
    else:
        click.echo(
            f"{output}: {helpers.plural(len(matrices), 'frame')} of {image} resampled with {table} "
            f"({source.dtype.name}, order {order})"
        )
