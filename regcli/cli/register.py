"""``regcli register``: align a moving image onto a fixed one and write what a user opens."""

from __future__ import annotations

from pathlib import Path

import click

from regcli.cli import helpers, interrupts, options, outputs, verdict
from regcli.cli._plot_helper import CostPlotHelper

#: File names written into OUTDIR (the aligned image is named after the moving image).
COST_PLOT_NAME = "cost.png"
OVERLAY_NAME = "overlay.png"
TRANSFORM_NAME = "transform.json"
ITK_TRANSFORM_NAME = "transform.tfm"
#: Every name register gives a file in OUTDIR but the aligned image's.
OWNED_NAMES = (COST_PLOT_NAME, OVERLAY_NAME, TRANSFORM_NAME, ITK_TRANSFORM_NAME)


@click.command(short_help="Align MOVING onto FIXED; write aligned image, plots, transform.")
@options.image_argument("fixed")
@options.image_argument("moving")
@options.transform_opt
@options.metric_opt()
@options.optimizer_opt
@options.learning_rate_opt
@options.iterations_opt
@options.levels_opt
@options.center_opt(None, " [default: topleft for rotation, center otherwise]")
@options.gamma_opt
@options.beta_opt
@options.cost_bins_opt
@options.sigma_opt
@options.init_opt(
    None,
    "How to find the starting transform before the optimisation [default: the transform's own].",
)
@options.mask_opts
@options.init_transform_opt
@options.channel_opt
@options.spacing_opts
@options.output_opt(
    "Folder for the outputs, created if needed [default: regcli-<moving name>/ in the "
    "current folder].",
    name="outdir",
    metavar="OUTDIR",
    file_okay=False,
)
@options.plots_opt(
    help_text="Figures to write: all (cost.png and overlay.png) or none (only the aligned "
    "image and transform.json; faster)."
)
@options.json_opt
@options.overwrite_opt
@options.allow_suspect_opt("the result")
@options.quiet_opt
@click.pass_context
def register(
    ctx,
    fixed,
    moving,
    transform,
    metric,
    optimizer,
    learning_rate,
    iterations,
    levels,
    center,
    gamma,
    beta,
    bins,
    sigma,
    init,
    fixed_mask,
    moving_mask,
    initial_transform,
    channel,
    spacing,
    fixed_spacing,
    moving_spacing,
    outdir,
    plots,
    as_json,
    overwrite,
    allow_suspect,
):
    """Align MOVING onto FIXED (any two sizes) by minimising a cost over a transform.

    Writes into OUTDIR (default: regcli-<moving name>/ in the current folder):

    \b
      <moving name>_aligned.<ext>  MOVING resampled onto FIXED (its own format and dtype)
      cost.png                     cost against iteration, pyramid levels marked
      overlay.png                  before/after: magenta/green overlays and checkerboards
      transform.json               the 3x3 matrix (fixed pixel -> moving pixel) and its
                                   parameters, metric, optimiser, convergence, spacings
      transform.tfm                the same transform for ITK/SimpleITK (physical units)

    A colour or multi-channel MOVING image is registered on its luminance (or --channel K)
    and aligned with every channel.

    --plots none leaves out cost.png and overlay.png. The aligned image is on FIXED's grid.

    --fixed-mask/--moving-mask MASK compare only the pixels where MASK is non-zero (a region
    of interest; everything but a label or a corrupted region); NaN pixels of float images
    are left out too (and stay NaN in the aligned image).

    Pixel spacing (a TIFF's resolution tags, or --spacing/--fixed-spacing/--moving-spacing
    SY,SX[UNIT]) makes rotation, rigid and similarity rigid in physical units (non-square
    pixels, or pixels of two sizes); the matrix stays in pixels, the parameters are
    physical, and the aligned TIFF carries the fixed image's spacing.

    The matrix M maps a FIXED pixel (x = column, y = row) to the MOVING pixel showing the
    same anatomy: aligned(x) = moving(M @ x). Angles are degrees, positive = clockwise on
    screen.

    Every result gets a quality assessment: correlation and NMI over the overlap, the
    overlap, and how far the alignment stands above displaced and rival alignments (a
    chance match of unrelated images, an ambiguous or a wrong-basin result is "suspect").

    With --json, prints one JSON object: "matrix", "transform", "params", "metric",
    "optimizer", "learning_rate", "iterations", "levels", "initial_cost" and "final_cost"
    (the finest level's first and last), "level_costs", "converged", "message", "quality"
    ("verdict", "reasons" and the measures), "exit_code", "seconds", "fixed", "moving" and
    "outputs" (the files written).

    Exit codes: 0 aligned (converged, quality ok); 3 not trustworthy (not converged, or
    quality suspect: the outputs are still written, stderr says why and what to try;
    --allow-suspect exits 0); 1 error; 2 usage error.

    \b
    Examples:
      regcli register BrainMRI_1.png BrainMRI_2.png --metric ssd --opt nag
      regcli register BrainMRI_1.png BrainMRI_4.png --transform rigid -o out/ --json
      regcli register BrainMRI_1.png BrainMRI_4.png -o out/ --plots none -q
    """
    options = {
        "transform": transform,
        "metric": metric,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "iterations": iterations,
        "levels": levels,
        "center": center,
        "init": init,
        "gamma": gamma,
        "beta": beta,
        "bins": bins,
        "sigma": sigma,
    }
    # The cost curve is drawn by a helper process that imports matplotlib meanwhile.
    plot_helper = CostPlotHelper.start() if plots == "all" else None
    if plot_helper is not None:
        ctx.call_on_close(plot_helper.close)
    helpers.check_register_options(**options)
    masks = {"fixed_mask": fixed_mask, "moving_mask": moving_mask}
    if initial_transform is not None and init not in (None, "none"):
        raise click.UsageError(f"give either --initial-transform or --init {init}, not both")
    outdir = Path(f"regcli-{moving.stem}") if outdir is None else outdir
    if outdir.exists() and not outdir.is_dir():
        raise click.BadParameter(
            f"{outdir} exists and is not a folder", param_hint="'-o' / '--output'"
        )
    names = {"aligned": f"{moving.stem}_aligned{moving.suffix}"}
    if plots == "all":
        names.update(cost_plot=COST_PLOT_NAME, overlay=OVERLAY_NAME)
    names["transform"] = TRANSFORM_NAME
    names["itk_transform"] = ITK_TRANSFORM_NAME
    paths = {key: outdir / name for key, name in names.items()}
    from regcli.io import IMAGE_SUFFIXES, check_input_path, check_output_format

    check_input_path(moving)  # its format is the aligned image's: known before any work
    files = (fixed, moving, *masks.values(), initial_transform)  # (None: not given)
    with outputs.OutputSet(outdir, overwrite=overwrite, inputs=files, create=True) as out:
        staged = {
            key: out.stage(name, suffixes=IMAGE_SUFFIXES, kind="image")
            if key == "aligned"
            else out.stage(name)
            for key, name in names.items()
        }
        for name in _earlier_outputs(outdir, names.values()):  # (only with --overwrite)
            out.retire(name)
        inputs = helpers.read_inputs(
            fixed,
            moving,
            channel=channel,
            spacing=spacing,
            fixed_spacing=fixed_spacing,
            moving_spacing=moving_spacing,
            same_shape=False,
            allow_nan=True,
        )
        options.update(helpers.read_masks(**masks))
        fixed_image, moving_image = inputs.fixed, inputs.moving
        pixels = inputs.moving_pixels
        channels = pixels.shape[2] if pixels.ndim == 3 else 1
        check_output_format(paths["aligned"], pixels.dtype, channels)
        if initial_transform is not None:
            options["initial_matrix"] = helpers.initial_matrix(initial_transform, inputs)
        interrupts.pause("work")

        from regcli.registration import register as run_registration

        enabled = helpers.show_progress(ctx)
        with (
            helpers.progress_bar(enabled=enabled, description=optimizer or "register") as tick,
            helpers.inputs_named(fixed=fixed, moving=moving),
        ):
            result = run_registration(
                fixed_image,
                moving_image,
                callback=tick,
                **options,
                **helpers.spacing_for_register(inputs),
            )
        code = verdict.exit_code(result)
        report = helpers.result_report(result, fixed=str(fixed), moving=str(moving))
        report.update({name: str(path) for name, path in masks.items() if path is not None})
        report["exit_code"] = 0 if allow_suspect else code
        write_outputs(
            result,
            report,
            fixed,
            moving,
            fixed_image,
            moving_image,
            staged,
            inputs=inputs,
            plot_helper=plot_helper,
        )
    report["outputs"] = {"directory": outdir, **paths}
    if as_json:
        helpers.echo_json(report)
    else:
        click.echo(_text_report(report, outdir, fixed_image.shape[:2], removed=out.removed))
    if code:
        _report_suspect(ctx, result, outdir, allowed=allow_suspect)


# --------------------------------------------------------------------------- helpers


def _earlier_outputs(outdir: Path, written) -> list[str]:
    """The names of register's outputs in ``outdir`` that this run does not write (names
    ``written``): the figures with ``--plots none``, and the aligned image of another
    moving image, which the earlier run's ``transform.json`` names.  An ``--overwrite`` run
    removes them (:meth:`~regcli.cli.outputs.OutputSet.retire`), so that the folder holds
    the outputs of one run; a file register does not name is never touched."""
    import json

    names = list(OWNED_NAMES)
    try:  # (read with the names locked: no other run is writing it)
        earlier = json.loads((outdir / TRANSFORM_NAME).read_text(encoding="utf-8"))
        if "optimizer" in earlier:  # register's (batch's) report, not --save-transform's
            moving = Path(str(earlier["moving"]))
            names.append(f"{moving.stem}_aligned{moving.suffix}")
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no earlier run, or not one of register's
    written = set(written)
    return [name for name in names if name not in written and name == Path(name).name]


def aligned_for_output(warped, moving_image):
    """``warped`` clipped to the moving image's value range, in the moving image's dtype."""
    import numpy as np

    from regcli.io import to_dtype

    low, high = float(np.nanmin(moving_image)), float(np.nanmax(moving_image))
    return to_dtype(np.clip(warped, low, high), moving_image.dtype)


def channels_for_output(pixels, matrix, shape, order: int = 3):
    """Every channel of ``pixels`` (``(rows, cols[, channels])``) resampled by ``matrix``
    onto a grid of ``shape`` (the fixed image's; cubic, as ``result.warped``, unless
    ``order`` says otherwise), each clipped to its own range, in the input's dtype."""
    from regcli.images import clip_channels, warp_channels
    from regcli.io import to_dtype

    warped = warp_channels(pixels, matrix, output_shape=shape[:2], order=order)
    return to_dtype(clip_channels(warped, pixels), pixels.dtype)


def write_outputs(
    result,
    report: dict,
    fixed: Path,
    moving: Path,
    fixed_image,
    moving_image,
    paths,
    inputs=None,
    plot_helper=None,
) -> None:
    """Write the aligned image, the figures named in ``paths`` (``cost_plot``, ``overlay``)
    and the transform JSON (``report``'s facts) to ``paths`` (staged by the command's output
    set), and ``transform.tfm`` when ``paths`` has ``itk_transform``.  With ``inputs``
    (:class:`helpers.Inputs`) the aligned image has every channel of the moving image and
    the fixed image's spacing, and the transform files record both spacings.

    matplotlib is imported only for the cost curve; the overlay is composed with numpy.  With
    ``plot_helper`` (a :class:`~regcli.cli._plot_helper.CostPlotHelper`) the cost curve is
    drawn by that process while the other files are written (here if it fails); it is
    stopped before this returns or raises, so nothing writes into the staged files after.
    """
    moving_name, fixed_name = helpers.display_name(moving.name), helpers.display_name(fixed.name)
    cost_plot = None
    if "cost_plot" in paths:
        cost_plot = {
            "level_starts": result.level_starts,
            "level_shapes": result.level_shapes,
            "cost_label": result.cost_label,
            "title": f"{moving_name} onto {fixed_name}\nmetric {result.metric}, "
            f"optimiser {result.optimizer}, transform {result.transform}",
        }
    helper = plot_helper if cost_plot is not None else None
    if helper is not None:
        helper.send(result.cost_history, paths["cost_plot"], **cost_plot)
    try:
        _write_files(
            result, report, fixed_image, moving_image, paths, inputs, moving_name, fixed_name
        )
        drawn = helper is not None and helper.finish()
    except BaseException:
        if helper is not None:
            helper.close()
        raise
    if cost_plot is not None and not drawn:
        from regcli.plots import plot_cost_curve

        plot_cost_curve(result.cost_history, paths["cost_plot"], **cost_plot)


def _write_files(result, report, fixed_image, moving_image, paths, inputs, moving_name, fixed_name):
    """Everything :func:`write_outputs` writes but the cost curve."""
    from regcli.cli._resampling import resampling_order
    from regcli.io import write_image, write_transform_json

    warped = result.warped  # the cubic resampling, computed once for both uses
    if inputs is not None and inputs.moving_meta.label_map:  # nearest-neighbour, as apply
        order = resampling_order(None, inputs.moving_meta, "the moving image")
        aligned = channels_for_output(inputs.moving_pixels, result.matrix, fixed_image.shape, order)
    elif inputs is not None and inputs.moving_pixels.ndim == 3:
        aligned = channels_for_output(inputs.moving_pixels, result.matrix, fixed_image.shape)
    else:
        aligned = aligned_for_output(warped, moving_image)
    write_image(paths["aligned"], aligned, meta=None if inputs is None else inputs.output_meta)
    if "overlay" in paths:
        from regcli.overlay import save_overlay_image

        save_overlay_image(
            fixed_image,
            moving_image,
            warped,
            paths["overlay"],
            title=f"{moving_name} onto {fixed_name} ({result.transform}, {result.metric}, "
            f"{result.optimizer})",
        )
    if inputs is not None:  # the spacings transform.json records, in --json's report too
        for role, meta in (("fixed", inputs.fixed_meta), ("moving", inputs.moving_meta)):
            report.update({f"{role}_spacing": list(meta.pixel_spacing), f"{role}_unit": meta.unit})
    extra = {k: v for k, v in report.items() if k not in ("matrix", "transform", "params")}
    write_transform_json(
        paths["transform"],
        result.matrix,
        transform=result.transform,
        params=result.params,
        fixed_shape=fixed_image.shape,
        moving_shape=moving_image.shape,
        extra=extra,
        fixed_meta=None if inputs is None else inputs.fixed_meta,
        moving_meta=None if inputs is None else inputs.moving_meta,
    )
    if "itk_transform" in paths:
        helpers.write_itk(paths["itk_transform"], result, inputs)


_OUTPUT_DESCRIPTIONS = {
    "aligned": "aligned image",
    "cost_plot": "cost curve",
    "overlay": "before/after overlay",
    "transform": "matrix and parameters",
    "itk_transform": "the transform for ITK/SimpleITK",
}


def _report_suspect(ctx, result, outdir: Path, *, allowed: bool) -> None:
    """Say on stderr why the result is not trustworthy; exit 3 unless ``allowed``."""
    reasons = verdict.problems(result)
    advice = "" if allowed else " (pass --allow-suspect to exit 0)"
    lead = "warning: " if allowed else ""
    lines = [f"regcli: {lead}the result is not trustworthy; outputs written to {outdir}/{advice}:"]
    lines += [f"regcli:   - {reason}" for reason in reasons]
    click.echo("\n".join(lines), err=True)
    if not allowed:
        ctx.exit(verdict.EXIT_SUSPECT)


def _text_report(summary: dict, outdir: Path, shape, removed=()) -> str:
    status = "converged" if summary["converged"] else "NOT converged"
    outputs = summary["outputs"]
    rows, cols = summary["level_shapes"][-1] if summary["level_shapes"] else ("?", "?")
    # A run that stopped on a coarse level (diverged there) never reached the finest one.
    where = "the finest level" if (rows, cols) == tuple(shape) else "the last level run"
    lines = [
        f"{Path(summary['moving']).name} onto {Path(summary['fixed']).name}: "
        f"{summary['transform']}, {summary['metric']}, {summary['optimizer']}: {status} after "
        f"{helpers.plural(summary['iterations'], 'iteration')} in {summary['seconds']:.2f} s",
        f"  parameters{_params_unit(summary)}: {helpers.format_params(summary['params'])}",
        f"  cost ({summary['cost_label']}) at {where} ({rows}x{cols}): "
        f"{_number(summary['initial_cost'])} -> {_number(summary['final_cost'])}",
        verdict.quality_line(summary["quality"]),
        f"  outputs in {outdir}/:",
    ]
    for key, what in _OUTPUT_DESCRIPTIONS.items():
        if key in outputs:
            lines.append(f"    {outputs[key].name:<24} {what}")
    if removed:
        names = ", ".join(path.name for path in removed)
        lines.append(f"  removed the earlier run's {names} (not written by this run)")
    return "\n".join(lines)


def _params_unit(summary: dict) -> str:
    """`` (physical, um)`` when the parameters are physical (pixel spacing), else ``""``."""
    if not str((summary.get("units") or {}).get("params", "")).startswith("physical"):
        return ""
    return f" (physical, {summary.get('fixed_unit') or 'the spacing unit'})"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.6g}"
