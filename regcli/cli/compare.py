"""``regcli compare``: the course's optimiser experiment, one registration per optimiser."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from regcli.cli.options import (
    RegistryChoice,
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
    progress_bar,
    transform_opt,
    verbosity,
)

#: The course's step rules, compared by default.
DEFAULT_OPTIMIZERS = "gd,momentum,nag,adagrad,rmsprop,adam"


def _parse_optimizers(ctx, param, value):
    """Comma-separated optimiser names -> list (no duplicates), each checked against OPTIMIZERS."""
    from regcli.optimizers import OPTIMIZERS

    names = []
    for name in (part.strip() for part in value.split(",")):
        if not name or name in names:
            continue
        if name not in OPTIMIZERS:
            raise click.BadParameter(
                f"unknown optimiser {name!r}; choose from {', '.join(OPTIMIZERS)}"
            )
        names.append(name)
    if not names:
        raise click.BadParameter(
            f"expected comma-separated optimiser names, got {value!r}; "
            f"choose from {', '.join(OPTIMIZERS)}"
        )
    return names


@click.command(short_help="Register with several optimisers; plot and tabulate their costs.")
@image_argument("fixed")
@image_argument("moving")
@click.option(
    "--opts",
    "optimizers",
    default=DEFAULT_OPTIMIZERS,
    show_default=True,
    callback=_parse_optimizers,
    metavar="NAME[,NAME...]",
    help="Optimisers to compare, each with its own default learning rate.",
)
@transform_opt
@metric_opt
@iterations_opt
@levels_opt
@center_opt(None, " [default: topleft for rotation, center otherwise]")
@click.option(
    "--init",
    type=RegistryChoice("regcli.initialize", "INIT_METHODS", fallback=("none",), first=("none",)),
    default="none",
    show_default=True,
    help="Starting transform. 'none' (the identity, as in the course) leaves all the work to "
    "the optimisers, which is what this comparison is about.",
)
@click.option(
    "-o",
    "--output",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PLOT.png",
    help="Figure of every optimiser's cost curve [default: regcli-compare-<moving name>.png "
    "in the current folder].",
)
@json_opt
@overwrite_opt
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def compare(
    ctx,
    fixed,
    moving,
    optimizers,
    transform,
    metric,
    iterations,
    levels,
    center,
    init,
    plot_path,
    as_json,
    overwrite,
    quiet,
):
    """Register MOVING onto FIXED once per optimiser and compare how they converge.

    Writes one figure with every optimiser's cost against iteration (log scale when the
    cost is positive) and prints a table (or, with --json, one JSON object) of each run's
    learning rate, iterations, final cost, time, convergence and recovered parameters.
    Each optimiser uses its own default learning rate.

    Exit codes: 0 when every run finished (converged or not: see the table); 1 error;
    2 usage error (e.g. an unknown name in --opts).

    \b
    Example:
      regcli compare BrainMRI_1.png BrainMRI_4.png --opts gd,nag,adam -o compare.png
    """
    plot_path = Path(f"regcli-compare-{moving.stem}.png") if plot_path is None else plot_path
    check_outputs([plot_path], overwrite=overwrite, inputs=(fixed, moving))

    from regcli.errors import InputError
    from regcli.io import check_same_shape, read_image
    from regcli.registration import register

    fixed_image = read_image(fixed)
    moving_image = read_image(moving)
    check_same_shape(fixed_image, moving_image, names=(str(fixed), str(moving)))

    show_progress = not quiet and verbosity(ctx) >= 0 and sys.stderr.isatty()
    results = []
    for name in optimizers:
        with progress_bar(enabled=show_progress, description=name) as tick:
            try:
                result = register(
                    fixed_image,
                    moving_image,
                    transform=transform,
                    metric=metric,
                    optimizer=name,
                    iterations=iterations,
                    levels=levels,
                    center=center,
                    init=init,
                    callback=tick,
                )
            except InputError as exc:
                raise InputError(name_inputs(str(exc), fixed=fixed, moving=moving)) from exc
        results.append(result)
        if not quiet and verbosity(ctx) >= 0:
            status = "converged" if result.converged else f"not converged: {result.message}"
            click.echo(
                f"{name}: {plural(result.iterations, 'iteration')}, {result.seconds:.2f} s, "
                f"{status}",
                err=True,
            )

    from regcli import plots

    labels = [
        f"{r.optimizer} (lr {_format_lr(r.learning_rate)}, {r.iterations} it)" for r in results
    ]
    plots.plot_optimizer_comparison(
        {label: r.cost_history for label, r in zip(labels, results, strict=True)},
        plot_path,
        level_starts={label: r.level_starts for label, r in zip(labels, results, strict=True)},
        cost_label=results[0].cost_label,
        title=f"{moving.name} onto {fixed.name}: transform {transform}, metric {metric}"
        + (", start: identity" if init == "none" else f", start: {init}"),
    )
    rows = [
        {
            "optimizer": r.optimizer,
            "learning_rate": r.learning_rate,
            "iterations": r.iterations,
            "initial_cost": r.initial_cost,
            "final_cost": r.final_cost,
            "seconds": r.seconds,
            "converged": bool(r.converged),
            "message": r.message,
            "params": r.params,
            "matrix": r.matrix,
        }
        for r in results
    ]
    if as_json:
        echo_json(
            {
                "fixed": str(fixed),
                "moving": str(moving),
                "transform": transform,
                "metric": metric,
                "init": init,
                "cost_label": results[0].cost_label,
                "plot": plot_path,
                "results": rows,
            }
        )
    else:
        click.echo(_table(rows, cost_label=results[0].cost_label))
        click.echo(f"cost curves: {plot_path}")


def _format_lr(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _table(rows, *, cost_label: str) -> str:
    """Fixed-width text table, one row per optimiser."""
    header = ("optimizer", "lr", "iters", f"final cost ({cost_label})", "seconds", "converged")
    body = [
        (
            row["optimizer"],
            _format_lr(row["learning_rate"]),
            str(row["iterations"]),
            f"{row['final_cost']:.6g}",
            f"{row['seconds']:.2f}",
            "yes" if row["converged"] else "no",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    cells = zip(header, widths, strict=True)
    lines = ["  ".join(cell.ljust(width) for cell, width in cells) + "  parameters"]
    for row, cells in zip(rows, body, strict=True):
        line = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        lines.append(f"{line}  {format_params(row['params'])}")
    return "\n".join(lines)
