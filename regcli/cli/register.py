"""``regcli register``: align a moving image onto a fixed one and write what a user opens."""

from __future__ import annotations

from pathlib import Path

import click

from regcli.cli import helpers, interrupts, options, outputs

#: File names written into OUTDIR (the aligned image is named after the moving image).
COST_PLOT_NAME = "cost.png"
OVERLAY_NAME = "overlay.png"
TRANSFORM_NAME = "transform.json"
ITK_TRANSFORM_NAME = "transform.tfm"


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
@options.json_opt
@options.overwrite_opt
@click.option(
    "--allow-unconverged",
    is_flag=True,
    help="Exit 0 even when the optimisation did not converge (the outputs are written anyway).",
)
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
    initial_transform,
    channel,
    spacing,
    fixed_spacing,
    moving_spacing,
    outdir,
    as_json,
    overwrite,
    allow_unconverged,
):
    """Align MOVING onto FIXED (same shape) by minimising a cost over a transform.

    Writes into OUTDIR (default: regcli-<moving name>/ in the current folder):

    \b
      <moving name>_aligned.<ext>  MOVING resampled onto FIXED (its own format and dtype)
      cost.png                     cost against iteration, pyramid levels marked
      overlay.png                  before/after: magenta/green overlays and checkerboards
      transform.json               the 3x3 matrix (fixed pixel -> moving pixel) and its
                                   parameters, metric, optimiser, convergence, spacings
      transform.tfm                the same transform for ITK/SimpleITK (physical units)

    A colour or multi-channel MOVING image is registered on its luminance (or --channel K)
    and aligned with every channel. A TIFF's pixel spacing (resolution tags) is read, and the
    aligned TIFF carries the fixed image's.

    The matrix M maps a FIXED pixel (x = column, y = row) to the MOVING pixel showing the
    same anatomy: aligned(x) = moving(M @ x). Angles are degrees, positive = clockwise on
    screen.

    With --json, prints one JSON object: "matrix", "transform", "params", "metric",
    "optimizer", "learning_rate", "iterations", "levels", "initial_cost", "final_cost",
    "converged", "message", "seconds", "fixed", "moving" and "outputs" (the files written).

    Exit codes: 0 converged; 1 error, or not converged (the outputs are still written, the
    message says what to change; --allow-unconverged exits 0); 2 usage error.

    \b
    Examples:
      regcli register BrainMRI_1.png BrainMRI_2.png --metric ssd --opt nag
      regcli register BrainMRI_1.png BrainMRI_4.png --transform rigid -o out/ --json
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
    helpers.check_register_options(**options)
    if initial_transform is not None and init not in (None, "none"):
        raise click.UsageError(f"give either --initial-transform or --init {init}, not both")
    outdir = Path(f"regcli-{moving.stem}") if outdir is None else outdir
    if outdir.exists() and not outdir.is_dir():
        raise click.BadParameter(
            f"{outdir} exists and is not a folder", param_hint="'-o' / '--output'"
        )
    names = {
        "aligned": f"{moving.stem}_aligned{moving.suffix}",
        "cost_plot": COST_PLOT_NAME,
        "overlay": OVERLAY_NAME,
        "transform": TRANSFORM_NAME,
        "itk_transform": ITK_TRANSFORM_NAME,
    }
    paths = {key: outdir / name for key, name in names.items()}
    from regcli.io import IMAGE_SUFFIXES, check_input_path, check_output_format

    check_input_path(moving)  # its format is the aligned image's: known before any work
    with outputs.OutputSet(outdir, overwrite=overwrite, inputs=(fixed, moving), create=True) as out:
        staged = {
            key: out.stage(name, suffixes=IMAGE_SUFFIXES, kind="image")
            if key == "aligned"
            else out.stage(name)
            for key, name in names.items()
        }
        inputs = helpers.read_inputs(
            fixed,
            moving,
            channel=channel,
            spacing=spacing,
            fixed_spacing=fixed_spacing,
            moving_spacing=moving_spacing,
        )
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
        report = helpers.result_report(result, fixed=str(fixed), moving=str(moving))
        write_outputs(
            result, report, fixed, moving, fixed_image, moving_image, staged, inputs=inputs
        )
    report["outputs"] = {"directory": outdir, **paths}
    if as_json:
        helpers.echo_json(report)
    else:
        click.echo(_text_report(report, outdir))
    if not result.converged:
        advice = "" if allow_unconverged else " (pass --allow-unconverged to exit 0)"
        message = f"did not converge: {result.message}; outputs written to {outdir}/{advice}"
        if allow_unconverged:
            click.echo(f"regcli: warning: {message}", err=True)
        else:
            raise click.ClickException(message)


# --------------------------------------------------------------------------- helpers


def aligned_for_output(warped, moving_image):
    """``warped`` clipped to the moving image's value range, in the moving image's dtype."""
    import numpy as np

    from regcli.io import to_dtype

    low, high = float(np.min(moving_image)), float(np.max(moving_image))
    return to_dtype(np.clip(warped, low, high), moving_image.dtype)


def channels_for_output(pixels, matrix):
    """Every channel of ``pixels`` (``(rows, cols, channels)``) resampled by ``matrix``
    (cubic, as ``result.warped``), each clipped to its own range, in the input's dtype."""
    from regcli.images import clip_channels, warp_channels
    from regcli.io import to_dtype

    warped = warp_channels(pixels, matrix, order=3)
    return to_dtype(clip_channels(warped, pixels), pixels.dtype)


def write_outputs(
    result, report: dict, fixed: Path, moving: Path, fixed_image, moving_image, paths, inputs=None
) -> None:
    """Write the aligned image, the two figures and the transform JSON (``report``'s facts)
    to ``paths`` (staged by the command's output set), and ``transform.tfm`` when ``paths``
    has ``itk_transform``.  With ``inputs`` (:class:`helpers.Inputs`) the aligned image has
    every channel of the moving image and the fixed image's spacing."""
    from regcli import plots
    from regcli.io import write_image, write_transform_json

    moving_name, fixed_name = helpers.display_name(moving.name), helpers.display_name(fixed.name)
    if inputs is not None and inputs.moving_pixels.ndim == 3:
        aligned = channels_for_output(inputs.moving_pixels, result.matrix)
    else:
        aligned = aligned_for_output(result.warped, moving_image)
    write_image(paths["aligned"], aligned, meta=None if inputs is None else inputs.output_meta)
    plots.plot_cost_curve(
        result.cost_history,
        paths["cost_plot"],
        level_starts=result.level_starts,
        level_shapes=result.level_shapes,
        cost_label=result.cost_label,
        title=f"{moving_name} onto {fixed_name}: metric {result.metric}, "
        f"optimiser {result.optimizer}, transform {result.transform}",
    )
    plots.plot_overlay(
        fixed_image,
        moving_image,
        result.warped,
        paths["overlay"],
        title=f"{moving_name} onto {fixed_name} ({result.transform}, {result.metric}, "
        f"{result.optimizer})",
    )
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


def _text_report(summary: dict, outdir: Path) -> str:
    status = "converged" if summary["converged"] else "NOT converged"
    outputs = summary["outputs"]
    lines = [
        f"{Path(summary['moving']).name} onto {Path(summary['fixed']).name}: "
        f"{summary['transform']}, {summary['metric']}, {summary['optimizer']}: {status} after "
        f"{helpers.plural(summary['iterations'], 'iteration')} in {summary['seconds']:.2f} s",
        f"  parameters: {helpers.format_params(summary['params'])}",
        f"  cost ({summary['cost_label']}): {summary['initial_cost']:.6g} -> "
        f"{summary['final_cost']:.6g}",
        f"  outputs in {outdir}/:",
        f"    {outputs['aligned'].name:<24} aligned image",
        f"    {outputs['cost_plot'].name:<24} cost curve",
        f"    {outputs['overlay'].name:<24} before/after overlay",
        f"    {outputs['transform'].name:<24} matrix and parameters",
        f"    {outputs['itk_transform'].name:<24} the transform for ITK/SimpleITK",
    ]
    return "\n".join(lines)
