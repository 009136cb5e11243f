"""``regcli compare``: the course's optimiser experiment, one registration per optimiser."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from regcli.cli import helpers, interrupts, options, outputs, verdict

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
@options.image_argument("fixed")
@options.image_argument("moving")
@click.option(
    "--opts",
    "optimizers",
    default=DEFAULT_OPTIMIZERS,
    show_default=True,
    callback=_parse_optimizers,
    metavar="NAME[,NAME...]",
    help="Optimisers to compare, each with its own default learning rate.",
)
@options.transform_opt
@options.metric_opt()
@options.iterations_opt
@options.levels_opt
@options.center_opt(None, " [default: topleft for rotation, center otherwise]")
@options.cost_bins_opt
@options.sigma_opt
@options.init_opt(
    "none",
    "Starting transform. 'none' (the identity, as in the course) leaves all the work to "
    "the optimisers, which is what this comparison is about.",
)
@options.output_opt(
    "Figure of every optimiser's cost curve [default: regcli-compare-<moving name>.png "
    "in the current folder].",
    name="plot_path",
    metavar="PLOT.png",
    dir_okay=False,
)
@options.channel_opt
@options.json_opt
@options.overwrite_opt
@options.quiet_opt
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
    bins,
    sigma,
    init,
    plot_path,
    as_json,
    overwrite,
    channel=None,
):
    """Register MOVING onto FIXED once per optimiser and compare how they converge.

    Writes one figure with every optimiser's cost against iteration (log scale when the
    cost is positive) and prints a table (or, with --json, one JSON object) of each run's
    learning rate, iterations, final cost, time, convergence and recovered parameters.
    Each optimiser uses its own default learning rate.

    With --json, prints one JSON object: "fixed", "moving", "transform", "metric", "init",
    "cost_label", "plot" and "results", one entry per optimiser with the keys of
    `regcli register --json` ("optimizer", "learning_rate", "iterations", "final_cost",
    "seconds", "converged", "params", "matrix", "quality", ...) and "exit_code": what
    `regcli register` would exit with (0 aligned, 3 not trustworthy: not converged or
    quality suspect).

    Exit codes: 0 when every run finished (trustworthy or not: see the table's "ok" column
    and each row's "exit_code"); 1 error; 2 usage error (e.g. an unknown name in --opts).

    \b
    Example:
      regcli compare BrainMRI_1.png BrainMRI_4.png --opts gd,nag,adam -o compare.png
    """
    options = {
        "transform": transform,
        "metric": metric,
        "iterations": iterations,
        "levels": levels,
        "center": center,
        "init": init,
        "bins": bins,
        "sigma": sigma,
    }
    for name in optimizers:  # every name checked before any run
        with _as_opts_error():
            helpers.check_register_options(optimizer=name, **options)
    plot_path = Path(f"regcli-compare-{moving.stem}.png") if plot_path is None else plot_path
    with outputs.OutputSet(overwrite=overwrite, inputs=(fixed, moving)) as out:
        staged = out.stage(
            plot_path, suffixes=outputs.FIGURE_SUFFIXES, kind="figure", option="plot_path"
        )
        fixed_image, moving_image = helpers.read_pair(fixed, moving, channel=channel)
        interrupts.pause("work")
        results = _run_all(ctx, fixed, moving, fixed_image, moving_image, optimizers, options)

        from regcli import plots

        labels = [
            f"{r.optimizer} (lr {_format_lr(r.learning_rate)}, {r.iterations} it)" for r in results
        ]
        title = (
            f"{helpers.display_name(moving.name)} onto {helpers.display_name(fixed.name)}: "
            f"transform {transform}, metric {metric}"
            + (", start: identity" if init == "none" else f", start: {init}")
        )
        plots.plot_optimizer_comparison(
            {label: r.cost_history for label, r in zip(labels, results, strict=True)},
            staged,
            level_starts={label: r.level_starts for label, r in zip(labels, results, strict=True)},
            cost_label=results[0].cost_label,
            title=title,
        )
    rows = [helpers.result_report(r, exit_code=verdict.exit_code(r)) for r in results]
    if as_json:
        helpers.echo_json(
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


def _run_all(ctx, fixed, moving, fixed_image, moving_image, optimizers, settings) -> list:
    """One registration per optimiser name, with a progress bar and a line on stderr each."""
    from regcli.registration import register

    enabled = helpers.show_progress(ctx)
    results = []
    for name in optimizers:
        with (
            helpers.progress_bar(enabled=enabled, description=name) as tick,
            helpers.inputs_named(fixed=fixed, moving=moving),
            _as_opts_error(),
        ):
            result = register(fixed_image, moving_image, optimizer=name, callback=tick, **settings)
        results.append(result)
        if helpers.verbosity(ctx) >= 0:
            status = "converged" if result.converged else f"not converged: {result.message}"
            click.echo(
                f"{name}: {helpers.plural(result.iterations, 'iteration')}, "
                f"{result.seconds:.2f} s, {status}",
                err=True,
            )
    return results


@contextlib.contextmanager
def _as_opts_error():
    """A core error about the ``optimizer`` of one run is about ``--opts`` here."""
    from regcli.errors import InputError

    try:
        yield
    except InputError as exc:
        if exc.param != "optimizer":
            raise
        raise InputError(f"optimizers: {exc.reason}", param="optimizers") from exc


def _format_lr(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _table(rows, *, cost_label: str) -> str:
    """Fixed-width text table, one row per optimiser."""
    header = (
        "optimizer",
        "lr",
        "iters",
        f"final cost ({cost_label})",
        "seconds",
        "converged",
        "ok",
    )
    body = [
        (
            row["optimizer"],
            _format_lr(row["learning_rate"]),
            str(row["iterations"]),
            f"{row['final_cost']:.6g}",
            f"{row['seconds']:.2f}",
            "yes" if row["converged"] else "no",
            "yes" if row["exit_code"] == 0 else "no",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    cells = zip(header, widths, strict=True)
    lines = ["  ".join(cell.ljust(width) for cell, width in cells) + "  parameters"]
    for row, cells in zip(rows, body, strict=True):
        line = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        lines.append(f"{line}  {helpers.format_params(row['params'])}")
    return "\n".join(lines)
