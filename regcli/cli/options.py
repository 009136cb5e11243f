"""Options and helpers shared by every subcommand (click only; the core is imported lazily)."""

from __future__ import annotations

import contextlib
import importlib
import math
import sys
from pathlib import Path

import click

# --------------------------------------------------------------------------- options

json_opt = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of text."
)
overwrite_opt = click.option(
    "--overwrite", is_flag=True, help="Replace output files that already exist."
)
order_opt = click.option(
    "--order",
    type=click.IntRange(0, 5),
    default=3,
    show_default=True,
    help="Interpolation order: 0 nearest (label maps), 1 linear, 3 cubic spline.",
)


class FiniteFloat(click.ParamType):
    """A float that must be finite: click's FLOAT accepts 'nan' and 'inf', which no option
    of regcli can use."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number, got {value!r}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        return number


#: Shared instance of :class:`FiniteFloat` for ``type=``.
FINITE_FLOAT = FiniteFloat()

fill_opt = click.option(
    "--fill",
    type=FINITE_FLOAT,
    default=0.0,
    show_default=True,
    help="Value of output pixels that come from outside the input image.",
)


def output_opt(help_text: str, *, required: bool = False):
    """``-o/--output PATH`` for one output file."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path),
        required=required,
        help=help_text,
    )


def default_output(image: Path, tag: str) -> Path:
    """``<stem>_<tag><suffix>`` in the current folder: a name that is never the input's."""
    return Path(f"{Path(image).stem}_{tag}{Path(image).suffix}")


def _parse_center(ctx, param, value):
    if value is None:
        return None
    key = value.strip().lower()
    if key in ("topleft", "center", "centre"):
        return "center" if key == "centre" else key
    parts = key.split(",")
    try:
        if len(parts) == 2:
            x, y = float(parts[0]), float(parts[1])
            if math.isfinite(x) and math.isfinite(y):
                return (x, y)
    except ValueError:
        pass
    raise click.BadParameter(f"expected topleft, center or X,Y (pixels), got {value!r}")


def center_opt(default: str | None, help_extra: str = ""):
    return click.option(
        "--center",
        callback=_parse_center,
        default=default,
        show_default=default is not None,
        metavar="topleft|center|X,Y",
        help="Centre of rotation: pixel (0, 0), the image centre, or a point x=column,y=row."
        + help_extra,
    )


def image_argument(name: str):
    """An input image argument; existence and format are checked by the core's reader."""
    return click.argument(name, type=click.Path(dir_okay=True, path_type=Path))


# --------------------------------------------------------------------------- registry options


class RegistryChoice(click.Choice):
    """A ``click.Choice`` whose names are the keys of a registry dict, read on first use.

    The registries live in modules that import numpy; reading them only when a value is
    checked or a command's help is shown keeps ``regcli --help`` fast.  ``fallback`` is used
    while the module (or attribute) does not exist yet; ``extra`` names (such as ``all``)
    are appended.
    """

    def __init__(self, module: str, attribute: str, *, fallback=(), first=(), extra=()):
        self.module, self.attribute = module, attribute
        self.fallback, self.first, self.extra = tuple(fallback), tuple(first), tuple(extra)
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        try:
            registry = getattr(importlib.import_module(self.module), self.attribute)
        except (ModuleNotFoundError, AttributeError):
            registry = self.fallback
        names = list(self.first)
        names += [str(name) for name in registry if str(name) not in names]
        return (*names, *self.extra)


def positive_float(ctx, param, value):
    """Option callback: ``None`` or a finite number > 0 (click's FLOAT accepts nan and inf)."""
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"expected a finite number > 0, got {value!r}")
    return value


transform_opt = click.option(
    "--transform",
    type=RegistryChoice("regcli.transforms", "TRANSFORMS"),
    default="rigid",
    show_default=True,
    help="Transform model: translation (tx, ty), rotation (angle), rigid (angle, tx, ty), "
    "similarity (+ scale), affine (6 entries).",
)
metric_opt = click.option(
    "--metric",
    type=RegistryChoice("regcli.metrics", "METRICS"),
    default="ssd",
    show_default=True,
    help="Cost to minimise (similarities such as correlation or MI are negated).",
)
iterations_opt = click.option(
    "--iters",
    "iterations",
    type=click.IntRange(min=1),
    default=None,
    help="Maximum iterations per pyramid level [default: the optimiser's own].",
)
levels_opt = click.option(
    "--levels",
    type=click.IntRange(1, 8),
    default=None,
    help="Gaussian pyramid levels, coarse to fine; 1 = full resolution only "
    "[default: chosen from the image size].",
)


bins_opt = click.option(
    "--bins",
    type=click.IntRange(2, 1024),
    default=None,
    help="Histogram bins of the MI-family metrics [default: the metric's own].",
)


save_transform_opt = click.option(
    "--save-transform",
    type=click.Path(path_type=Path),
    metavar="T.json",
    help="Also write the transform JSON (IMAGE = fixed, output = moving); "
    "`regcli apply OUT T.json` turns the output back into IMAGE.",
)


# --------------------------------------------------------------------------- helpers


def echo_json(obj) -> None:
    """Print ``obj`` as one JSON object on stdout (regcli's one converter: keys sorted, numpy
    types converted, NaN -> null)."""
    from regcli._json import dumps

    click.echo(dumps(obj))


def check_outputs(paths, *, overwrite: bool, inputs=()) -> None:
    """Fail before any work if an output may not be written (exists, is an input, no folder).

    The core says how to replace an existing file in Python terms (``overwrite=True``); here
    it is the ``--overwrite`` flag.
    """
    from regcli.errors import InputError
    from regcli.io import check_output_path

    for path in paths:
        if path is None:
            continue
        try:
            check_output_path(path, overwrite=overwrite, inputs=inputs)
        except InputError as exc:
            if exc.param != "overwrite":
                raise
            raise InputError(f"{path}: already exists; pass --overwrite to replace it") from exc


def verbosity(ctx: click.Context) -> int:
    """The group's -v/-q count: 0 default, >0 verbose, <0 quiet."""
    root = ctx.find_root()
    return (root.obj or {}).get("verbosity", 0)


def name_inputs(message: str, *, fixed: Path, moving: Path) -> str:
    """Put the file name into a core message about ``fixed:``/``moving:`` (the core sees arrays)."""
    for role, path in (("fixed", fixed), ("moving", moving)):
        if message.startswith(f"{role}:"):
            return f"{path} ({role} image):{message[len(role) + 1 :]}"
    return message


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_params(params: dict) -> str:
    """``angle_deg=-18.02, tx=-12.41, ty=8.70`` (the centre is left out)."""
    return ", ".join(
        f"{name}={value:.4g}" if abs(value) < 1e-3 else f"{name}={value:.3f}"
        for name, value in params.items()
        if name != "center"
    )


@contextlib.contextmanager
def progress_bar(*, enabled: bool, description: str):
    """Yield ``tick(iteration, cost, params)`` driving a tqdm bar on stderr, or ``None``."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=description, unit="it", file=sys.stderr, leave=False) as bar:

        def tick(iteration, cost, params) -> None:
            bar.update(1)
            bar.set_postfix_str(f"cost {cost:.5g}", refresh=False)

        yield tick


# --------------------------------------------------------------------------- resampling commands


def check_image_output(output: Path, *, overwrite: bool, inputs) -> None:
    """Fail before any work if ``output`` has no image ending, exists, or is an input."""
    from regcli.io import check_output_format

    check_outputs([output], overwrite=overwrite, inputs=[p for p in inputs if p is not None])
    check_output_format(output)


def write_warped(output: Path, image, matrix, *, output_shape=None, order: int, fill: float):
    """Resample ``image`` by ``matrix`` (output pixel -> input pixel) and write it to
    ``output`` in the input's dtype (rounded and clipped for integer images)."""
    from regcli.io import check_output_format, write_image
    from regcli.resample import warp

    check_output_format(output, image.dtype)  # before warping: a float image cannot go to PNG
    warped = warp(image, matrix, output_shape=output_shape, order=order, fill=fill)
    write_image(output, warped, dtype=image.dtype)
    return warped


def move_content(
    image_path: Path,
    geometric,
    *,
    output: Path,
    save_transform: Path | None,
    order: int,
    fill: float,
    overwrite: bool,
    transform_name: str,
    describe,
) -> dict:
    """Shared body of ``translate`` and ``rotate``: write IMAGE with its content moved by
    the geometric map ``geometric(shape) -> 3x3`` and return the facts for the report.

    The output is warped by the inverse of the map (see regcli.resample); the matrix
    reported is the map itself, which is the fixed (IMAGE) -> moving (output) matrix of
    DESIGN.md, so the output registered back onto IMAGE gives the same matrix.
    """
    import numpy as np

    from regcli.io import TRANSFORM_CONVENTION, read_image, write_transform_json

    check_image_output(output, overwrite=overwrite, inputs=[image_path])
    if save_transform is not None:
        check_outputs([save_transform], overwrite=overwrite, inputs=[image_path])
        if Path(save_transform).resolve() == Path(output).resolve():
            raise click.BadParameter("must differ from -o/--output", param_hint="--save-transform")
    image = read_image(image_path)
    matrix = geometric(image.shape)
    params = describe(image.shape)
    write_warped(output, image, np.linalg.inv(matrix), order=order, fill=fill)
    if save_transform is not None:
        write_transform_json(
            save_transform,
            matrix,
            transform=transform_name,
            params=params,
            fixed_shape=image.shape,
            moving_shape=image.shape,
            extra={"fixed": str(image_path), "moving": str(output)},
        )
    return {
        "output": output,
        "input": image_path,
        "transform_file": save_transform,
        "matrix": matrix,
        "convention": TRANSFORM_CONVENTION,
        "transform": transform_name,
        "params": params,
        "shape": list(image.shape),
        "dtype": image.dtype.name,
        "order": order,
        "fill": fill,
    }
