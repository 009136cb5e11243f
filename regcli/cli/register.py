"""``regcli register``: align a moving image onto a fixed one and write what a user opens."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from regcli.cli.options import (
    RegistryChoice,
    bins_opt,
    center_opt,
    check_outputs,
    echo_json,
    format_params,
    image_argument,
    iterations_opt,
    json_opt,
    levels_opt,
    metric_opt,
    name_inputs,
    overwrite_opt,
    plural,
    positive_float,
    progress_bar,
    transform_opt,
    verbosity,
)

#: File names written into OUTDIR (the aligned image is named after the moving image).
COST_PLOT_NAME = "cost.png"
OVERLAY_NAME = "overlay.png"
TRANSFORM_NAME = "transform.json"


@click.command(short_help="Align MOVING onto FIXED; write aligned image, plots, transform.")
@image_argument("fixed")
@image_argument("moving")
@transform_opt
@metric_opt
@click.option(
    "--opt",
    "optimizer",
    type=RegistryChoice("regcli.optimizers", "OPTIMIZERS"),
    default=None,
    help="Optimiser: the course's step rules (gd, momentum, nag, adagrad, rmsprop, adam) or a "
    "faster method [default: the fast default for the metric].",
)
@click.option(
    "--lr",
    "learning_rate",
    type=float,
    callback=positive_float,
    default=None,
    help="Learning rate of the step rules. Parameters are scaled so that a unit step moves "
    "the image by about one pixel and the gradient is divided by the cost's curvature: gd, "
    "momentum and nag step lr x (gradient / curvature) pixels (1 = a Newton step; 2 or more "
    "oscillates); adagrad, rmsprop and adam step at most lr pixels per iteration "
    "[default: the optimiser's own, which needs no tuning on the samples; lm has none].",
)
@iterations_opt
@levels_opt
@center_opt(None, " [default: topleft for rotation, center otherwise]")
@click.option(
    "--gamma",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=None,
    help="Momentum factor of momentum and nag, first-moment decay of adam "
    "[default: the optimiser's own].",
)
@click.option(
    "--beta",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Decay of the squared-gradient average of rmsprop and adam "
    "[default: the optimiser's own].",
)
@bins_opt
@click.option(
    "--init",
    type=RegistryChoice("regcli.initialize", "INIT_METHODS", fallback=("none",)),
    default=None,
    help="How to find the starting transform before the optimisation "
    "[default: the transform's own].",
)
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="OUTDIR",
    help="Folder for the outputs, created if needed [default: regcli-<moving name>/ in the "
    "current folder].",
)
@json_opt
@overwrite_opt
@click.option(
    "--allow-unconverged",
    is_flag=True,
    help="Exit 0 even when the optimisation did not converge (the outputs are written anyway).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
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
    init,
    outdir,
    as_json,
    overwrite,
    allow_unconverged,
    quiet,
):
    """Align MOVING onto FIXED (same shape) by minimising a cost over a transform.

    Writes into OUTDIR (default: regcli-<moving name>/ in the current folder):

    \b
      <moving name>_aligned.<ext>  MOVING resampled onto FIXED (its own format and dtype)
      cost.png                     cost against iteration, pyramid levels marked
      overlay.png                  before/after: magenta/green overlays and checkerboards
      transform.json               the 3x3 matrix (fixed pixel -> moving pixel) and its
                                   parameters, metric, optimiser, convergence

    The matrix M maps a FIXED pixel (x = column, y = row) to the MOVING pixel showing the
    same anatomy: aligned(x) = moving(M @ x). Angles are degrees, positive = clockwise on
    screen.

    Exit codes: 0 converged; 1 error, or not converged (the outputs are still written, the
    message says what to change; --allow-unconverged exits 0); 2 usage error.

    \b
    Examples:
      regcli register BrainMRI_1.png BrainMRI_2.png --metric ssd --opt nag
      regcli register BrainMRI_1.png BrainMRI_4.png --transform rigid -o out/ --json
    """
    check_option_combinations(
        metric=metric,
        optimizer=optimizer,
        learning_rate=learning_rate,
        gamma=gamma,
        beta=beta,
        bins=bins,
    )
    outdir = Path(f"regcli-{moving.stem}") if outdir is None else outdir
    paths = {
        "aligned": outdir / f"{moving.stem}_aligned{moving.suffix}",
        "cost_plot": outdir / COST_PLOT_NAME,
        "overlay": outdir / OVERLAY_NAME,
        "transform": outdir / TRANSFORM_NAME,
    }
    _check_outdir(outdir, paths, overwrite=overwrite, inputs=(fixed, moving))

    from regcli.io import check_same_shape, read_image

    fixed_image = read_image(fixed)
    moving_image = read_image(moving)
    check_same_shape(fixed_image, moving_image, names=(str(fixed), str(moving)))

    from regcli.errors import InputError
    from regcli.registration import register as run_registration

    show_progress = not quiet and verbosity(ctx) >= 0 and sys.stderr.isatty()
    with progress_bar(enabled=show_progress, description=f"{optimizer or 'register'}") as tick:
        try:
            result = run_registration(
                fixed_image,
                moving_image,
                transform=transform,
                metric=metric,
                optimizer=optimizer,
                learning_rate=learning_rate,
                iterations=iterations,
                levels=levels,
                center=center,
                init=init,
                callback=tick,
                gamma=gamma,
                beta=beta,
                bins=bins,
            )
        except InputError as exc:
            raise InputError(name_inputs(str(exc), fixed=fixed, moving=moving)) from exc

    write_outputs(result, fixed, moving, fixed_image, moving_image, paths)
    summary = result_summary(result, fixed=fixed, moving=moving)
    summary["outputs"] = {"directory": outdir, **paths}
    if as_json:
        echo_json(summary)
    else:
        click.echo(_text_report(summary, outdir))
    if not result.converged:
        advice = "" if allow_unconverged else " (pass --allow-unconverged to exit 0)"
        message = f"did not converge: {result.message}; outputs written to {outdir}/{advice}"
        if allow_unconverged:
            click.echo(f"regcli: warning: {message}", err=True)
        else:
            raise click.ClickException(message)


# --------------------------------------------------------------------------- helpers


def _check_outdir(outdir: Path, paths: dict, *, overwrite: bool, inputs) -> None:
    """Fail before any work if OUTDIR is unusable or an output exists without --overwrite."""
    if outdir.exists() and not outdir.is_dir():
        raise click.BadParameter(
            f"{outdir} exists and is not a folder", param_hint="'-o' / '--output'"
        )
    if outdir.is_dir():
        check_outputs(paths.values(), overwrite=overwrite, inputs=inputs)


def check_option_combinations(*, metric, optimizer, learning_rate, gamma, beta, bins) -> None:
    """Usage errors (exit 2) for options the chosen metric or optimiser does not use."""
    from regcli.metrics import METRICS
    from regcli.optimizers import OPTIMIZERS

    if bins is not None and "bins" not in METRICS[metric].options:
        users = [name for name, m in METRICS.items() if "bins" in m.options]
        raise click.BadParameter(
            f"metric {metric!r} does not use histogram bins (these do: {', '.join(users)})",
            param_hint="'--bins'",
        )
    chosen = OPTIMIZERS.get(optimizer) if optimizer is not None else None
    for option, value, applies in (
        ("--lr", learning_rate, lambda o: o.default_learning_rate is not None),
        ("--gamma", gamma, lambda o: "gamma" in o.hyperparameters),
        ("--beta", beta, lambda o: "beta" in o.hyperparameters),
    ):
        if value is None or (chosen is not None and applies(chosen)):
            continue
        users = ", ".join(name for name, o in OPTIMIZERS.items() if applies(o))
        which = f"optimiser {optimizer!r}" if chosen is not None else "the default optimiser"
        raise click.BadParameter(
            f"{which} does not use it; it applies to --opt {users}", param_hint=f"'{option}'"
        )


def aligned_for_output(warped, moving_image):
    """``warped`` clipped to the moving image's value range, in the moving image's dtype."""
    import numpy as np

    from regcli.io import to_dtype

    low, high = float(np.min(moving_image)), float(np.max(moving_image))
    return to_dtype(np.clip(warped, low, high), moving_image.dtype)


def write_outputs(result, fixed: Path, moving: Path, fixed_image, moving_image, paths) -> None:
    """Write the aligned image, the two figures and the transform JSON into their folder."""
    from regcli import plots
    from regcli.io import write_image, write_transform_json

    paths["aligned"].parent.mkdir(parents=True, exist_ok=True)
    write_image(paths["aligned"], aligned_for_output(result.warped, moving_image))
    plots.plot_cost_curve(
        result.cost_history,
        paths["cost_plot"],
        level_starts=result.level_starts,
        level_shapes=result.level_shapes,
        cost_label=result.cost_label,
        title=f"{moving.name} onto {fixed.name}: metric {result.metric}, "
        f"optimiser {result.optimizer}, transform {result.transform}",
    )
    plots.plot_overlay(
        fixed_image,
        moving_image,
        result.warped,
        paths["overlay"],
        title=f"{moving.name} onto {fixed.name} ({result.transform}, {result.metric}, "
        f"{result.optimizer})",
    )
    summary = result_summary(result, fixed=fixed, moving=moving)
    for key in ("matrix", "transform", "params"):
        summary.pop(key)
    write_transform_json(
        paths["transform"],
        result.matrix,
        transform=result.transform,
        params=result.params,
        fixed_shape=fixed_image.shape,
        moving_shape=moving_image.shape,
        extra=summary,
    )


def result_summary(result, *, fixed: Path, moving: Path) -> dict:
    """The JSON-able facts of a registration that ``--json`` prints and transform.json keeps."""
    return {
        "fixed": str(fixed),
        "moving": str(moving),
        "matrix": result.matrix,
        "transform": result.transform,
        "params": result.params,
        "metric": result.metric,
        "cost_label": result.cost_label,
        "optimizer": result.optimizer,
        "learning_rate": result.learning_rate,
        "levels": len(result.level_starts),
        "iterations": result.iterations,
        "initial_cost": result.initial_cost,
        "final_cost": result.final_cost,
        "converged": bool(result.converged),
        "message": result.message,
        "seconds": result.seconds,
    }


def _text_report(summary: dict, outdir: Path) -> str:
    status = "converged" if summary["converged"] else "NOT converged"
    outputs = summary["outputs"]
    lines = [
        f"{Path(summary['moving']).name} onto {Path(summary['fixed']).name}: "
        f"{summary['transform']}, {summary['metric']}, {summary['optimizer']}: {status} after "
        f"{plural(summary['iterations'], 'iteration')} in {summary['seconds']:.2f} s",
        f"  parameters: {format_params(summary['params'])}",
        f"  cost ({summary['cost_label']}): {summary['initial_cost']:.6g} -> "
        f"{summary['final_cost']:.6g}",
        f"  outputs in {outdir}/:",
        f"    {outputs['aligned'].name:<24} aligned image",
        f"    {outputs['cost_plot'].name:<24} cost curve",
        f"    {outputs['overlay'].name:<24} before/after overlay",
        f"    {outputs['transform'].name:<24} matrix and parameters",
    ]
    return "\n".join(lines)
