"""``regcli profile``: the cost along one transform parameter, raw and smoothed."""

from __future__ import annotations

import math
from pathlib import Path

import click

from regcli.cli import helpers, interrupts, options, outputs

#: Largest magnitude of a --range or --truth value: pixels for tx/ty (the bound of a centre
#: of rotation, far beyond any image), and far beyond any useful angle (degrees) or scale.
#: Larger values overflow the cost computation or the figure's axis (1e308).
MAX_VALUE = options.MAX_CENTER


def _parse_range(ctx, param, value):
    """``START:STOP:STEP`` (display units, STOP included) -> the list of values, or None."""
    if value is None:
        return None
    from regcli.profile import MAX_VALUES

    parts = value.split(":")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise click.BadParameter(
            f"expected START:STOP:STEP (three numbers, e.g. -60:-20:0.5), got {value!r}"
        ) from None
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise click.BadParameter(f"expected finite numbers, got {value!r}")
    if max(abs(start), abs(stop)) > MAX_VALUE:
        raise click.BadParameter(
            f"START and STOP must be within -{MAX_VALUE:g} and {MAX_VALUE:g}, got {value!r}"
        )
    if not step > 0:
        raise click.BadParameter(f"STEP must be > 0, got {step:g} in {value!r}")
    if not stop > start:
        raise click.BadParameter(f"STOP must be greater than START, got {value!r}")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count < 2:
        raise click.BadParameter(
            f"STEP must be at most STOP - START ({stop - start:g}), so that there are at "
            f"least 2 values; got {value!r}"
        )
    if count > MAX_VALUES:
        raise click.BadParameter(
            f"{value!r} gives {count} values; at most {MAX_VALUES} (use a larger STEP)"
        )
    return [start + step * i for i in range(count)]


@click.command(short_help="Cost along one parameter (angle, tx, ty, scale), raw and smoothed.")
@options.image_argument("fixed")
@options.image_argument("moving")
@click.option(
    "--param",
    type=options.RegistryChoice("regcli.profile", "PROFILE_PARAMS"),
    default="angle",
    show_default=True,
    help="Parameter to sweep; the others stay at their value in the alignment (--at).",
)
@click.option(
    "--range",
    "values",
    callback=_parse_range,
    metavar="START:STOP:STEP",
    default=None,
    help="Values to try, STOP included (degrees for angle, pixels for tx/ty) "
    "[default: around the current value: angle +-30 by 0.5, tx/ty +-20 by 0.25, "
    "scale +-0.2 by 0.005].",
)
@options.transform_opt
@options.metric_opt()
@click.option(
    "--smooth",
    "sigma",
    type=options.FiniteFloatRange(0.0, options.MAX_SIGMA, min_open=True),
    default=None,
    metavar="SIGMA",
    help="Also profile both images smoothed by a Gaussian of SIGMA pixels (a second panel): "
    "smoothing removes the local minima that trap local optimisers.",
)
@click.option(
    "--at",
    "at_path",
    type=options.PathValue(),
    default=None,
    metavar="TRANSFORM.json",
    help="Hold the other parameters at this transform (as written by regcli register) "
    "[default: the identity].",
)
@click.option(
    "--register",
    "do_register",
    is_flag=True,
    help="Register first (with --transform/--metric and the default optimiser) and profile "
    "around the transform found.",
)
@click.option(
    "--truth",
    type=options.FiniteFloatRange(-MAX_VALUE, MAX_VALUE),
    default=None,
    metavar="VALUE",
    help="Known true value of the parameter (degrees for angle), drawn as a dashed line.",
)
@options.cost_bins_opt
@options.center_opt(None, " [default: topleft for rotation, center otherwise]")
@options.mask_opts
@options.output_opt(
    "PNG of the profile [default: <moving name>_profile_<param>.png in the current folder]."
)
@options.channel_opt
@options.json_opt
@options.overwrite_opt
def profile(
    fixed,
    moving,
    param,
    values,
    transform,
    metric,
    sigma,
    at_path,
    do_register,
    truth,
    bins,
    center,
    fixed_mask,
    moving_mask,
    output,
    as_json,
    overwrite,
    channel=None,
):
    """Plot the cost as one parameter of the transform sweeps a range of values.

    FIXED and MOVING may differ in size; --fixed-mask/--moving-mask (and NaN pixels) leave
    pixels out of the cost, as in `regcli register`.

    The other parameters are held at their values in the current alignment: the identity,
    the transform in --at TRANSFORM.json, or the one --register finds. The cost is the one
    registration minimises (intensities scaled to [0, 1], linear interpolation, over the
    overlap). With --smooth SIGMA a second panel shows the cost of the Gaussian-smoothed
    images: its local minima are fewer, which is why registration works coarse to fine.

    Writes a PNG with the curve(s), the minimum marked (red dot), other local minima (grey
    ticks) and the true value (--truth, dashed line). Angles are degrees, positive =
    clockwise on screen; tx/ty are pixels (x = column, y = row).

    \b
    Examples:
      regcli profile BrainMRI_1.png BrainMRI_4.png --param angle --range -60:30:0.5 \\
          --at regcli-BrainMRI_4/transform.json --smooth 3 -o angle.png
      regcli profile BrainMRI_1.png BrainMRI_2.png --param tx --range -40:20:0.25 \\
          --smooth 4 --truth 17.3 --json
    """
    from regcli.transforms import TRANSFORMS

    names = TRANSFORMS[transform].param_names
    if param not in names:  # before reading the images
        raise click.BadParameter(
            f"transform {transform!r} has parameters {', '.join(names)}; got {param!r} "
            "(choose another --param or --transform)",
            param_hint="'--param'",
        )
    if at_path is not None and do_register:
        raise click.BadParameter(
            "give either --at TRANSFORM.json or --register, not both", param_hint="'--at'"
        )
    helpers.check_register_options(metric=metric, bins=bins)
    output = Path(f"{Path(moving).stem}_profile_{param}.png") if output is None else output
    at_inputs = [] if at_path is None else [at_path]
    at_inputs += [path for path in (fixed_mask, moving_mask) if path is not None]
    with outputs.OutputSet(overwrite=overwrite, inputs=[fixed, moving, *at_inputs]) as out:
        staged = out.stage(output, suffixes=(".png",), kind="figure", option="output")
        fixed_image, moving_image = helpers.read_pair(
            fixed, moving, channel=channel, same_shape=False, allow_nan=True
        )
        masks = helpers.read_masks(fixed_mask, moving_mask)
        interrupts.pause("work")
        registered, result = _compute(
            fixed,
            moving,
            fixed_image,
            moving_image,
            at_path=at_path,
            do_register=do_register,
            param=param,
            values=values,
            transform=transform,
            metric=metric,
            sigma=sigma,
            bins=bins,
            center=center,
            truth=truth,
            masks=masks,
        )

        from regcli.plots import plot_cost_profile

        plot_cost_profile(
            result,
            staged,
            title=f"{helpers.display_name(moving.name)} vs {helpers.display_name(fixed.name)}: "
            f"{metric} cost along {param} ({transform})",
        )
    summary = result.to_dict()
    summary.update({"fixed": str(fixed), "moving": str(moving), "output": str(output)})
    summary["at_source"] = (
        str(at_path) if at_path is not None else "register" if do_register else "identity"
    )
    if registered is not None:
        summary["registration"] = helpers.result_report(registered)
    if as_json:
        helpers.echo_json(summary)
    else:
        click.echo(_text_report(summary))


def _compute(
    fixed,
    moving,
    fixed_image,
    moving_image,
    *,
    at_path,
    do_register,
    param,
    values,
    transform,
    metric,
    sigma,
    bins,
    center,
    truth,
    masks,
):
    """The registration (with --register) and the profile: ``(registered or None, profile)``;
    ``masks``: ``fixed_mask`` and ``moving_mask`` arrays (or None)."""
    import numpy as np

    from regcli.io import read_transform_json
    from regcli.profile import cost_profile

    at_matrix = None
    registered = None
    if at_path is not None:
        at_matrix = read_transform_json(at_path)["matrix"]
    elif do_register:
        from regcli.registration import register

        with helpers.inputs_named(fixed=fixed, moving=moving):
            registered = register(
                fixed_image,
                moving_image,
                transform=transform,
                metric=metric,
                center=center,
                bins=bins,
                **masks,
            )
        at_matrix = registered.matrix
    if values is not None:
        values = np.radians(values) if param == "angle" else np.asarray(values)
    true_value = None
    if truth is not None:
        true_value = math.radians(truth) if param == "angle" else truth
    with helpers.inputs_named(fixed=fixed, moving=moving):
        result = cost_profile(
            fixed_image,
            moving_image,
            param=param,
            values=values,
            transform=transform,
            metric=metric,
            at=at_matrix,
            center=center,
            sigma=sigma,
            bins=bins,
            true_value=true_value,
            **masks,
        )
    return registered, result


def _text_report(summary: dict) -> str:
    unit = summary["unit"]

    def value(v):
        return "n/a" if v is None else f"{v:.4g} {unit}".rstrip()

    lines = [
        f"{summary['metric']} cost along {summary['param']}: {len(summary['values'])} values "
        f"from {value(summary['values'][0])} to {value(summary['values'][-1])} "
        f"(others held at {summary['at_source']})",
        f"  minimum at {value(summary['minimum'])}; {_minima(summary['local_minima'])}",
    ]
    if summary["smoothed_costs"] is not None:
        lines.append(
            f"  smoothed (sigma {summary['smooth_sigma']:g} px): minimum at "
            f"{value(summary['smoothed_minimum'])}; {_minima(summary['smoothed_local_minima'])}"
        )
    if summary["true_value"] is not None:
        lines.append(f"  true value {value(summary['true_value'])}")
    lines.append(f"wrote {summary['output']}")
    return "\n".join(lines)


def _minima(values) -> str:
    count = len(values)
    return f"{count} local minimum in all" if count == 1 else f"{count} local minima in all"
