"""``regcli stack``: align the frames of a stack (time-lapse, z-stack) onto one grid, streaming
frames from and to disk."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from regcli.cli import helpers, options, outputs, verdict

TRANSFORMS_NAME = "transforms.csv"
DRIFT_NAME = "drift.png"


def _parse_reference(ctx, param, value):
    """``first``, ``previous``, ``mean`` or a frame number K (from 0)."""
    text = str(value).strip().lower()
    if text in ("first", "previous", "mean"):
        return text
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise click.BadParameter(f"expected first, previous, mean or a frame number, got {value!r}")
    return number


@click.command(short_help="Align the frames of a stack (time-lapse, z-stack) onto one grid.")
@click.argument("stack", nargs=-1, required=True, type=options.PathValue())
@options.output_opt(
    "Folder for the outputs, created if needed.",
    name="outdir",
    metavar="OUTDIR",
    required=True,
    file_okay=False,
)
@click.option(
    "--reference",
    default="first",
    show_default=True,
    callback=_parse_reference,
    metavar="first|previous|mean|K",
    help="Register every frame onto frame 0 (first), onto the frame before it with the "
    "transforms chained onto frame 0's grid (previous), onto the mean of all frames (mean), "
    "or onto frame K (from 0).",
)
@options.registration_opts
@options.reference_mask_opt
@options.channel_opt
@options.overwrite_opt
@options.allow_suspect_opt("a frame's result")
@options.json_opt
@options.quiet_opt
@click.pass_context
def stack(ctx, stack, outdir, reference, overwrite, allow_suspect, as_json, **kwargs):
    """Align every frame of STACK onto one reference grid.

    STACK is a multi-page TIFF (ImageJ or plain) or a .npy of shape (T, rows, cols), or
    several frame files, or a folder of frames (in natural order: f2 before f10). Frames are
    read and written one at a time, so a stack larger than memory aligns with first and
    previous (mean reads the stack twice). Every registration option of `regcli register`
    applies to every frame. Writes into OUTDIR:

    \b
      <name>_aligned.tif  the aligned stack, one page per frame, in the input's dtype
                          (ImageJ metadata and resolution kept)
      transforms.csv      one row per frame: frame, m00 m01 m02 m10 m11 m12 (the matrix
                          mapping a reference pixel to that frame's pixel), the parameters,
                          converged, quality, aligned (the aligned stack's file name)
      drift.png           tx, ty and angle against frame, suspect frames marked

    --reference-mask MASK (a frame's shape, non-zero = use) leaves pixels of the reference
    out of every registration (a static label, a region that does not move with the rest).

    A stack with channels (ImageJ TCYX, samples, a (T, rows, cols, C) .npy) is aligned on
    --channel K, which the aligned stack holds. Apply the same transforms to another channel
    with
    `regcli apply --transforms OUTDIR/transforms.csv OTHER.tif -o OTHER_aligned.tif`
    (--order 0 for labels).

    Exit codes: 0 every frame converged and trustworthy; 1 error; 3 a frame is not
    converged or is suspect (--allow-suspect: 0); 2 usage error.

    \b
    Examples:
      regcli stack timelapse.tif -o aligned/ --reference previous
      regcli stack frames/ -o aligned/ --reference mean --transform translation
    """
    from regcli.stack import check_reference
    from regcli.stackio import open_stack

    register_options = {k: kwargs[k] for k in options.REGISTRATION_OPTIONS}
    helpers.check_register_options(**register_options)
    mask_path = kwargs["fixed_mask"]
    first = Path(stack[0])
    names = {
        "aligned": f"{first.stem if first.suffix else first.name}_aligned.tif",
        "transforms": TRANSFORMS_NAME,
        "drift": DRIFT_NAME,
    }
    _check_outdir(outdir, stack)
    inputs = (*stack, *([] if mask_path is None else [mask_path]))
    with outputs.OutputSet(outdir, overwrite=overwrite, inputs=inputs, create=True) as out:
        staged = {key: out.stage(name) for key, name in names.items()}
        for name in _earlier_outputs(outdir, names.values()):  # (only with --overwrite)
            out.retire(name)
        if mask_path is not None:
            register_options["fixed_mask"] = helpers.read_masks(mask_path, None)["fixed_mask"]
        with helpers.cli_wording():
            source = open_stack(stack if len(stack) > 1 else stack[0], channel=kwargs["channel"])
        with contextlib.closing(source):
            reference = check_reference(reference, len(source))
            frames = _align(ctx, source, staged, reference, register_options, names["aligned"])
    paths = {key: outdir / name for key, name in names.items()}
    untrusted = [f.index for f in frames if not f.trustworthy]
    summary = {
        "outdir": outdir,
        "frames": len(frames),
        "reference": reference,
        "outputs": paths,
        "untrusted_frames": untrusted,
        "searched_frames": [f.index for f in frames if f.searched],
        "seconds": sum(f.seconds for f in frames),
    }
    if as_json:
        helpers.echo_json(summary)
    else:
        click.echo(
            f"{source.name}: {helpers.plural(len(frames), 'frame')} aligned onto {reference} in "
            f"{summary['seconds']:.1f} s; {len(untrusted)} not converged or suspect; "
            f"outputs in {outdir}/"
        )
        if out.removed:
            removed = ", ".join(path.name for path in out.removed)
            click.echo(f"  removed the earlier run's {removed} (not written by this run)")
    if untrusted and not allow_suspect:
        shown = ", ".join(map(str, untrusted[:10])) + (" ..." if len(untrusted) > 10 else "")
        click.echo(f"regcli: frames not converged or suspect: {shown}", err=True)
        ctx.exit(verdict.EXIT_SUSPECT)


def _earlier_outputs(outdir: Path, written) -> list[str]:
    """The aligned stack of an earlier run in ``outdir`` that this run does not write (the
    stack of another input), which the earlier run's ``transforms.csv`` names in its
    ``aligned`` column.  An ``--overwrite`` run removes it
    (:meth:`~regcli.cli.outputs.OutputSet.retire`), so that the folder holds the outputs of
    one run; a file stack did not name (another channel moved there by ``apply
    --transforms``) is never touched, nor a name that is not stack's ``<name>_aligned.tif``."""
    import csv

    try:  # (read with the names locked: no other run is writing it)
        with open(outdir / TRANSFORMS_NAME, newline="", encoding="utf-8") as fh:
            row = next(csv.DictReader(fh), None) or {}
    except (OSError, UnicodeDecodeError, csv.Error):
        return []  # no earlier run, or not one of stack's
    name = row.get("aligned") or ""
    if name != Path(name).name or not name.endswith("_aligned.tif") or name in set(written):
        return []
    return [name]


def _check_outdir(outdir: Path, stack) -> None:
    """A usage error on ``-o`` when OUTDIR is a folder the frames are read from (a folder of
    frames, or inside it; the folder of several frame files): the outputs would land among
    the frames, and the next run would read them as frames."""
    target = Path(outdir).resolve()
    paths = [Path(p) for p in stack]
    for path in paths:
        if path.is_dir():
            folder = path.resolve()
            if target == folder or folder in target.parents:
                where = "is" if target == folder else "is inside"
                raise click.BadParameter(
                    f"{outdir} {where} the input folder {path} (its images are the frames); the "
                    "outputs would be read as frames by the next run: choose a folder outside it",
                    param_hint="-o/--output",
                )
        elif len(paths) > 1 and path.parent.resolve() == target:
            raise click.BadParameter(
                f"{outdir} is the folder of the frame files given; the outputs would land among "
                "the frames: choose another folder",
                param_hint="-o/--output",
            )


def _align(ctx, source, paths: dict, reference, register_options: dict, aligned: str) -> list:
    """Register, warp and write the frames one by one into ``paths["aligned"]``; write the
    table (naming the aligned stack's file, ``aligned``) and the drift plot (the staged paths
    of the command's output set)."""
    from dataclasses import replace

    from regcli.cli._apply_stack import in_file
    from regcli.errors import InputError
    from regcli.io import to_dtype
    from regcli.qc import plot_drift
    from regcli.stack import drift, frame_error, iter_register_stack, mean_frame
    from regcli.stackio import write_stack, write_transforms_csv

    reference_frame = None
    if reference == "mean":
        reference_frame = mean_frame(source)
    elif isinstance(reference, int):
        reference_frame = source.frame(reference)
    records = []

    def aligned_frames():
        from regcli.resample import warp_keeping_nan

        results = iter_register_stack(
            source, reference=reference, reference_frame=reference_frame, **register_options
        )
        with helpers.count_bar(ctx, total=len(source), unit="frame", description="stack") as bar:
            try:
                for record in results:
                    try:
                        warped = warp_keeping_nan(record.frame, record.matrix)
                    except InputError as exc:
                        raise frame_error(record.index, exc) from None
                    yield to_dtype(warped, source.dtype)
                    records.append(replace(record, frame=None))
                    bar.update(1)
            except InputError as exc:
                raise in_file(source.name, exc) from None

    write_stack(
        paths["aligned"], aligned_frames(), shape=source.shape, dtype=source.dtype, tiff=source.tiff
    )
    write_transforms_csv(paths["transforms"], records, aligned=aligned)
    flagged = [r.index for r in records if not r.trustworthy]
    plot_drift(
        paths["drift"],
        drift([r.matrix for r in records], source.shape[1:]),
        flagged,
        title=f"{source.name}: drift onto {reference} "
        f"({register_options['transform']}, {register_options['metric']}"
        f"{', masked' if register_options.get('fixed_mask') is not None else ''})",
    )
    return records
