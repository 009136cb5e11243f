"""``regcli apply --transforms``: the per-frame transforms of ``regcli stack`` applied to
another stack (a second channel, a label stack), streamed frame by frame."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import click

from regcli.cli import _resampling, helpers, outputs

log = logging.getLogger("regcli")


def in_file(name: str, exc: Exception) -> Exception:
    """An error about one frame (``exc.frame`` set, "frame 7: ...") said of the stack file
    ``name``: "STACK.tif, frame 7: ..."; any other error as it is."""
    from regcli.errors import InputError

    if isinstance(exc, InputError) and getattr(exc, "frame", None) is not None:
        return InputError(f"{name}, {exc}")
    return exc


def _check_frames_land(matrices, shape, image: Path, table: Path) -> None:
    """Warn, naming them, about frames whose transform maps the whole grid outside the
    frame (they come out ``--fill`` only), and refuse the stack, naming the table, when
    every frame would: the single-image check of ``apply``, frame by frame.  A few blank
    frames keep the output's pages in step with the table (and the other channels), which
    is what a user of a time series expects; a blank stack is no one's wish."""
    from regcli.errors import InputError

    blank = [i for i, m in enumerate(matrices) if not _resampling.content_lands(m, shape, shape)]
    if not blank:
        return
    if len(blank) == len(matrices):
        raise InputError(
            f"{table}: maps the whole grid outside every frame of {image} ({shape[0]} x "
            f"{shape[1]} pixels), so every output pixel would be --fill; check that the table "
            "was written by `regcli stack` for this stack"
        )
    shown = ", ".join(map(str, blank[:10])) + (" ..." if len(blank) > 10 else "")
    log.warning(
        "%s: %s %s (%d of %d) %s --fill only: the table maps the whole grid outside the "
        "frame of %s there",
        table,
        "frame" if len(blank) == 1 else "frames",
        shown,
        len(blank),
        len(matrices),
        "is" if len(blank) == 1 else "are",
        image,
    )


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
            _check_frames_land(matrices, source.shape[1:], image, table)
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
