"""Options shared by the subcommands: each defined once, used as ``@options.<name>``.

Only click is imported here; values that live in the core (registry names, limits, defaults)
are read when an option is checked or a command's help is shown, so ``regcli --help`` stays
fast.  An option used by one command only is defined in that command's module.

Shared options (flags, type or range, default, commands using it):

==================== =============== ======================== ================== ==========
decorator            flags           type / range             default            commands
==================== =============== ======================== ================== ==========
verbose_opt          -v, --verbose   count                    0                  (group)
quiet_opt            -q, --quiet     count                    0                  (group),
                                                                                 register,
                                                                                 compare
json_opt             --json          flag                     off                all
overwrite_opt        --overwrite     flag                     off                all but
                                                                                 similarity
allow_suspect_opt    --allow-suspect flag                     off (exit 3)       register,
                                                                                 batch, stack
output_opt(...)      -o, --output    path: a file (no ending  per command        all but
                                     '/'); a folder for                          similarity
                                     register, batch, stack
image_argument(...)  FIXED, MOVING,  path (read by the core)  required           all but
                     IMAGE...                                                    jointhist
order_opt            --order         0..5                     3; 0 for a palette translate,
                                                              PNG (label map)    rotate, apply
fill_opt             --fill          finite number            0                  translate,
                                                                                 rotate, apply
save_transform_opt   --save-transform path (.json)            none               translate,
                                                                                 rotate
center_opt(...)      --center        topleft|center|X,Y       rotate: topleft;   rotate,
                                                              else the           register,
                                                              transform's        compare,
                                                                                 profile
transform_opt        --transform     TRANSFORMS               rigid              register,
                                                                                 compare,
                                                                                 profile
metric_opt(...)      -m, --metric    METRICS (+ all)          ssd; all for       register,
                                                              similarity         compare,
                                                                                 profile,
                                                                                 similarity
iterations_opt       --iters         >= 1                     the optimiser's    register,
                                                                                 compare
levels_opt           --levels        1..8                     from the size      register,
                                                                                 compare
init_opt(...)        --init          INIT_METHODS             register: the      register,
                                                              transform's;       compare
                                                              compare: none
cost_bins_opt        --bins          4..1024 (the MI cost's)  the metric's       register,
                                                                                 compare,
                                                                                 profile
bins_opt(...)        --bins          similarity: 2..4096;     the image's        similarity,
                                     jointhist: N or N,M,                        jointhist
                                     1..4096
sigma_opt            --sigma         0..1000 (pixels)         the metric's       register,
                                                                                 compare,
                                                                                 similarity
optimizer_opt        --opt           OPTIMIZERS               the metric's       register
learning_rate_opt    --lr            number > 0               the optimiser's    register
gamma_opt            --gamma         0 <= x < 1               the optimiser's    register
beta_opt             --beta          0 < x < 1                the optimiser's    register
registration_opts    every option of register's registration (transform ...  batch,
                     init), in register's order                                  stack
mask_opts            --fixed-mask,   image file (non-zero =   every pixel        register,
                     --moving-mask   use; any format, dtype)                     batch,
                                                                                 similarity,
                                                                                 profile
reference_mask_opt   --reference-    image file (as above)    every pixel        stack
                     mask
plots_opt(...)       --plots         none|all (+ a command's  all; batch: qc     register,
                                     own: batch's qc)                            batch
channel_opt          --channel       whole number >= 0        luminance of       register,
                                                              colour, else       batch, stack,
                                                              an error           compare,
                                                                                 similarity,
                                                                                 jointhist,
                                                                                 profile
spacing_opts         --spacing,      SY,SX[UNIT] (> 0)        the file's TIFF    register,
                     --fixed-,                                resolution, else   batch
                     --moving-spacing                         1,1 (pixels)
init_transform_opt   --initial-      T.json or T.tfm          none               register,
                     transform                                                   batch
==================== =============== ======================== ================== ==========

Each option's Python name is the name of the core argument it feeds (``--iters`` is
``iterations``, ``--smooth`` of ``profile`` is ``sigma``), so that the group can turn an
:class:`~regcli.errors.InputError` about that argument into a usage error on the option.

Known differences between commands, kept on purpose: ``-o`` is a folder for ``register`` and
a file elsewhere (``compare`` reports it as ``"plot"`` in its JSON, the others as
``"output"``); ``profile --smooth`` smooths the images, ``--sigma`` is a metric's own
smoothing before gradients.
"""

from __future__ import annotations

import math

import click

from regcli._limits import MAX_CENTER, MAX_HISTOGRAM_BINS, MAX_SIGMA
from regcli.cli.types import (  # noqa: F401 (the types are used as options.FINITE_FLOAT...)
    FINITE_FLOAT,
    POSITIVE_FLOAT,
    BinsPair,
    FiniteFloat,
    FiniteFloatRange,
    PathValue,
    RegistryChoice,
)

#: Histogram bins of the MI-family *costs* (register, compare, profile).
#: The numbers of regcli.metrics.MIN_COST_BINS / MAX_COST_BINS, written out because reading
#: them would import numpy when the help is shown (a test keeps them equal).
COST_BINS_MIN, COST_BINS_MAX = 4, 1024
#: Largest number of bins per axis of a plain joint histogram (4096 x 4096 float64 = 128 MB):
#: the core's own bound, :data:`regcli._limits.MAX_HISTOGRAM_BINS`.
HIST_BINS_MAX = MAX_HISTOGRAM_BINS

# --------------------------------------------------------------------------- callbacks


def _parse_center(ctx, param, value):
    """``topleft``, ``center`` (or ``centre``) or ``X,Y`` -> that word or ``(x, y)``."""
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
                if max(abs(x), abs(y)) > MAX_CENTER:
                    raise click.BadParameter(
                        f"X and Y must be within {MAX_CENTER:g} pixels of the origin, got {value!r}"
                    )
                return (x, y)
    except ValueError:
        pass
    raise click.BadParameter(f"expected topleft, center or X,Y (pixels), got {value!r}")


def _count_verbosity(ctx, param, value):
    """``-v``/``-q`` callback: add the count to (``-q``: take it from) the verbosity of the
    whole invocation, kept in the root context, and set the log level from it.

    ``-q`` given after a subcommand (``regcli register A B -q``) lands in the same count.
    """
    if not value:
        return
    from regcli.cli.helpers import configure_logging

    state = ctx.find_root().ensure_object(dict)
    step = value if param.name == "verbose" else -value
    state["verbosity"] = state.get("verbosity", 0) + step
    configure_logging(state["verbosity"])


# --------------------------------------------------------------------------- options

verbose_opt = click.option(
    "-v",
    "--verbose",
    count=True,
    expose_value=False,
    callback=_count_verbosity,
    help="More log output on stderr (repeatable).",
)
quiet_opt = click.option(
    "-q",
    "--quiet",
    count=True,
    expose_value=False,
    callback=_count_verbosity,
    help="Less output on stderr: no progress bars, errors only.",
)
json_opt = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of text."
)
overwrite_opt = click.option(
    "--overwrite", is_flag=True, help="Replace output files that already exist."
)


def _either_flag(ctx, param, value):
    """``--allow-suspect`` or its old name: true if either was given (in any order)."""
    return bool(value) or bool(ctx.params.get("allow_suspect"))


def _old_allow_name(ctx, param, value):
    if value:
        ctx.params["allow_suspect"] = True


def allow_suspect_opt(what: str):
    """``--allow-suspect``: exit 0 instead of 3 when ``what`` is not trustworthy; its old name
    ``--allow-unconverged`` still works, unlisted."""

    def decorate(function):
        function = click.option(
            "--allow-unconverged",
            is_flag=True,
            hidden=True,
            expose_value=False,
            callback=_old_allow_name,
        )(function)
        return click.option(
            "--allow-suspect",
            "allow_suspect",
            is_flag=True,
            callback=_either_flag,
            help=f"Exit 0 even when {what} is not trustworthy (not converged, or quality "
            "verdict suspect); a warning still says why. The outputs are written either way.",
        )(function)

    return decorate


def output_opt(
    help_text: str,
    *,
    name: str = "output",
    required: bool = False,
    metavar: str | None = None,
    file_okay: bool = True,
    dir_okay: bool = True,
):
    """``-o/--output``: where the command writes (a file; a folder for ``register``)."""
    return click.option(
        "-o",
        "--output",
        name,
        type=PathValue(
            file_okay=file_okay,
            dir_okay=dir_okay,
            names_file=file_okay,  # (a folder for register, batch and stack)
            noun="file name" if file_okay else "folder name",
        ),
        required=required,
        metavar=metavar,
        help=help_text,
    )


def image_argument(name: str):
    """An input image argument; existence and format are checked by the core's reader."""
    return click.argument(name, type=PathValue(dir_okay=True))


order_opt = click.option(
    "--order",
    type=click.IntRange(0, 5),
    default=None,
    help="Interpolation order: 0 nearest (label maps), 1 linear, 3 cubic spline. "
    "[default: 3; 0 for a palette PNG, a label map]",
)
fill_opt = click.option(
    "--fill",
    type=FINITE_FLOAT,
    default=0.0,
    show_default=True,
    help="Value of output pixels that come from outside the input image.",
)
save_transform_opt = click.option(
    "--save-transform",
    type=PathValue(names_file=True),
    metavar="T.json",
    help="Also write the transform JSON (IMAGE = fixed, output = moving); "
    "`regcli apply OUT T.json` turns the output back into IMAGE.",
)


def center_opt(default: str | None, help_extra: str = ""):
    """``--center``: the centre of rotation (``None``: the transform's own)."""
    return click.option(
        "--center",
        callback=_parse_center,
        default=default,
        show_default=default is not None,
        metavar="topleft|center|X,Y",
        help="Centre of rotation: pixel (0, 0), the image centre, or a point x=column,y=row."
        + help_extra,
    )


transform_opt = click.option(
    "--transform",
    type=RegistryChoice("regcli.transforms", "TRANSFORMS"),
    default="rigid",
    show_default=True,
    help="Transform model: translation (tx, ty), rotation (angle), rigid (angle, tx, ty), "
    "similarity (+ scale), affine (6 entries).",
)


def metric_opt(
    default: str = "ssd",
    *,
    extra=(),
    help_text: str = "Cost to minimise (similarities such as correlation or MI are negated).",
):
    """``-m/--metric``: a name of :data:`regcli.metrics.METRICS` (plus ``extra`` names)."""
    return click.option(
        "-m",
        "--metric",
        type=RegistryChoice("regcli.metrics", "METRICS", extra=extra),
        default=default,
        show_default=True,
        help=help_text,
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


def init_opt(default: str | None, help_text: str):
    """``--init``: a name of :data:`regcli.initialize.INIT_METHODS` (``none`` listed first)."""
    return click.option(
        "--init",
        type=RegistryChoice("regcli.initialize", "INIT_METHODS", first=("none",)),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def bins_opt(minimum: int, maximum: int, help_text: str, *, pair: bool = False):
    """``--bins``: a whole number of histogram bins in ``[minimum, maximum]`` (with
    ``pair=True`` also ``N,M``: one count per image)."""
    return click.option(
        "--bins",
        type=BinsPair(minimum, maximum) if pair else click.IntRange(minimum, maximum),
        default=None,
        metavar="N|N,M" if pair else None,
        help=help_text,
    )


cost_bins_opt = bins_opt(
    COST_BINS_MIN,
    COST_BINS_MAX,
    "Histogram bins per image of the MI-family costs (mi, nmi, pluim) [default: the metric's own].",
)
sigma_opt = click.option(
    "--sigma",
    type=FiniteFloatRange(0.0, MAX_SIGMA),
    default=None,
    metavar="PIXELS",
    help="Gaussian smoothing (pixels) before the image gradients are taken, for the metrics "
    "that use them (gradient, pluim) [default: the metric's own, 1.5].",
)
optimizer_opt = click.option(
    "--opt",
    "optimizer",
    type=RegistryChoice("regcli.optimizers", "OPTIMIZERS"),
    default=None,
    help="Optimiser: the course's step rules (gd, momentum, nag, adagrad, rmsprop, adam) or a "
    "faster method [default: the fast default for the metric].",
)
learning_rate_opt = click.option(
    "--lr",
    "learning_rate",
    type=POSITIVE_FLOAT,
    default=None,
    help="Learning rate of the step rules. Parameters are scaled so that a unit step moves "
    "the image by about one pixel and the gradient is divided by the cost's curvature: gd, "
    "momentum and nag step lr x (gradient / curvature) pixels (1 = a Newton step; 2 or more "
    "oscillates); adagrad, rmsprop and adam step at most lr pixels per iteration "
    "[default: the optimiser's own, which needs no tuning on the samples; lm has none].",
)
gamma_opt = click.option(
    "--gamma",
    type=FiniteFloatRange(0.0, 1.0, max_open=True),
    default=None,
    help="Momentum factor of momentum and nag, first-moment decay of adam "
    "[default: the optimiser's own].",
)
beta_opt = click.option(
    "--beta",
    type=FiniteFloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Decay of the squared-gradient average of rmsprop and adam "
    "[default: the optimiser's own].",
)


def registration_opts(function):
    """Every registration option of ``register`` (``--transform`` ... ``--init``), for the
    commands that register many pairs or frames with the same settings."""
    decorators = (
        transform_opt,
        metric_opt(),
        optimizer_opt,
        learning_rate_opt,
        iterations_opt,
        levels_opt,
        center_opt(None, " [default: topleft for rotation, center otherwise]"),
        gamma_opt,
        beta_opt,
        cost_bins_opt,
        sigma_opt,
        init_opt(
            None,
            "How to find the starting transform before the optimisation "
            "[default: the transform's own].",
        ),
    )
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


#: The Python names of :func:`registration_opts`, as :func:`regcli.register` takes them.
REGISTRATION_OPTIONS = (
    "transform",
    "metric",
    "optimizer",
    "learning_rate",
    "iterations",
    "levels",
    "center",
    "gamma",
    "beta",
    "bins",
    "sigma",
    "init",
)


#: The values of ``--plots`` every command that draws understands: ``none`` writes no figure
#: (and imports no plotting library), ``all`` every figure the command makes.  A command adds
#: its own values with ``plots_opt(extra=...)`` (``batch``: ``qc``, a contact sheet).
PLOTS_CHOICES = ("none", "all")


def plots_opt(default: str = "all", *, extra=(), help_text: str | None = None):
    """``--plots``: which figure files to write, one of :data:`PLOTS_CHOICES` and ``extra``
    (listed between ``none`` and ``all``: from the fewest figures to the most)."""
    return click.option(
        "--plots",
        type=click.Choice([PLOTS_CHOICES[0], *extra, *PLOTS_CHOICES[1:]]),
        default=default,
        show_default=True,
        help=help_text
        or "Figures to write: all of them, or none (faster; only the data files are written).",
    )


def _mask_option(flag: str, name: str, help_text: str):
    return click.option(
        flag,
        name,
        type=PathValue(dir_okay=False),
        default=None,
        metavar="MASK",
        help=help_text,
    )


#: Help shared by the mask options.
_MASK_HELP = (
    " (any image format and dtype, of the image's shape). NaN pixels of a float image are "
    "left out with or without a mask."
)


def mask_opts(function):
    """``--fixed-mask`` and ``--moving-mask``: the pixels of each image to compare."""
    function = _mask_option(
        "--moving-mask",
        "moving_mask",
        "Compare only the pixels of the moving (second) image where MASK is non-zero" + _MASK_HELP,
    )(function)
    return _mask_option(
        "--fixed-mask",
        "fixed_mask",
        "Compare only the pixels of the fixed (first) image where MASK is non-zero" + _MASK_HELP,
    )(function)


#: ``--reference-mask``: the pixels of the reference (every registration's fixed image) to
#: compare; its Python name is register's ``fixed_mask``.
reference_mask_opt = _mask_option(
    "--reference-mask",
    "fixed_mask",
    "Compare only the pixels of the reference where MASK (one frame's shape) is non-zero"
    + _MASK_HELP,
)


channel_opt = click.option(
    "--channel",
    type=click.IntRange(min=0),
    default=None,
    metavar="K",
    help="Register on channel K (from 0) of a multi-channel image (every image that has "
    "channels) [default: the luminance of colour images; other channel layouts need K]. "
    "The aligned output keeps every channel.",
)


def _parse_spacing(ctx, param, value):
    """``SY,SX`` or ``SY,SXunit`` -> ``((sy, sx), unit)``."""
    if value is None:
        return None
    from regcli.errors import InputError
    from regcli.images import parse_spacing

    try:
        return parse_spacing(value, param.name)
    except InputError as exc:
        raise click.BadParameter(exc.reason) from None


_SPACING_HELP = {
    "spacing": "Pixel size of both images along rows and columns, e.g. 2,1um (overrides the "
    "files' TIFF resolution) [default: from the files, else 1,1 pixel].",
    "fixed-spacing": "Pixel size of the fixed image only (over --spacing and the file).",
    "moving-spacing": "Pixel size of the moving image only (over --spacing and the file).",
}


def spacing_opts(function):
    """``--spacing``, ``--fixed-spacing``, ``--moving-spacing``: the size of a pixel, overriding
    the files' TIFF resolution tags."""
    for flag, text in reversed(_SPACING_HELP.items()):
        option = click.option(
            f"--{flag}", callback=_parse_spacing, metavar="SY,SX[UNIT]", help=text
        )
        function = option(function)
    return function


init_transform_opt = click.option(
    "--initial-transform",
    type=PathValue(dir_okay=False),
    metavar="T.json|T.tfm",
    help="Start from this transform (a regcli transform JSON or an ITK .tfm/.txt file) "
    "instead of a global search; not with --init other than none.",
)
