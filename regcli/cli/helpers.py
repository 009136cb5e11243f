"""Helpers shared by the subcommands that are not options: JSON and text output, logging,
file names for display, reading image pairs, and turning core errors into usage errors.

Only click is imported at module level; the core is imported inside the helpers that need it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from regcli.cli import interrupts

#: The logger of regcli's own notes ("converted RGB image to grey", ...).
LOGGER_NAME = "regcli"

# --------------------------------------------------------------------------- output


def echo_json(obj) -> None:
    """Print ``obj`` as one JSON object on stdout (regcli's one converter: keys sorted, numpy
    types converted, NaN -> null)."""
    from regcli._json import dumps

    click.echo(dumps(obj))


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_params(params: dict) -> str:
    """``angle_deg=-18.02, tx=-12.41, ty=8.70`` (the centre is left out)."""
    return ", ".join(
        f"{name}={value:.4g}" if abs(value) < 1e-3 else f"{name}={value:.3f}"
        for name, value in params.items()
        if name != "center"
    )


def result_report(result, **cli_keys) -> dict:
    """The facts of a :class:`~regcli.registration.RegistrationResult` that the commands print
    and save: ``result.to_dict()`` without the per-iteration ``cost_history`` (drawn in the
    cost plot instead), plus ``levels`` (how many pyramid levels ran) and ``cli_keys``
    (``fixed``, ``moving``, ``outputs``...)."""
    report = result.to_dict()
    report.pop("cost_history", None)
    report["levels"] = len(report["level_starts"])
    report.update(cli_keys)
    return report


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


def count_bar(ctx: click.Context, *, total: int, unit: str, description: str, initial: int = 0):
    """A tqdm bar over ``total`` items (pairs, frames) with an ETA on stderr, drawn only on a
    terminal and not with -q (:func:`show_progress`); a context manager with ``update(n)``.

    It starts no monitor thread, so process pools forked after it stay safe to fork.
    """
    from tqdm import tqdm

    class Bar(tqdm):
        monitor_interval = 0

    return Bar(
        total=total,
        initial=initial,
        unit=unit,
        desc=description,
        file=sys.stderr,
        disable=not show_progress(ctx),
        dynamic_ncols=True,
    )


# --------------------------------------------------------------------------- verbosity, logging


def verbosity(ctx: click.Context) -> int:
    """The invocation's -v/-q count: 0 default, > 0 verbose, < 0 quiet."""
    return (ctx.find_root().obj or {}).get("verbosity", 0)


def show_progress(ctx: click.Context) -> bool:
    """Progress bars only on a terminal, and not with -q."""
    return verbosity(ctx) >= 0 and sys.stderr.isatty()


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (click's test
    runner replaces it for each invocation)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the property decides
        pass


def configure_logging(level: int) -> None:
    """Send the ``regcli`` logger's records to stderr as ``regcli: <message>``, at the level
    of the verbosity count ``level`` (2: debug, 1: info, 0: warnings, < 0: errors only).

    Only regcli's own logger is configured: the root logger, and with it the debug output of
    Pillow or matplotlib, is left alone.  Calling it again changes the level, not the
    number of handlers.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if level > 1:
        logger.setLevel(logging.DEBUG)
    elif level == 1:
        logger.setLevel(logging.INFO)
    elif level == 0:
        logger.setLevel(logging.WARNING)
    else:  # -q: errors only (notes such as "converted RGB image to grey" are dropped)
        logger.setLevel(logging.ERROR)
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("regcli: %(message)s"))
        logger.addHandler(handler)


# --------------------------------------------------------------------------- inputs and outputs


def default_output(image: Path, tag: str) -> Path:
    """``<stem>_<tag><suffix>`` in the current folder: a name that is never the input's."""
    return Path(f"{Path(image).stem}_{tag}{Path(image).suffix}")


def display_name(path) -> str:
    """A file name as text any font and terminal can show, without losing information:
    bytes that are not UTF-8 (``bad\\xffname.png`` on disk) are written ``\\xff``.

    >>> display_name(b"bad\\xffname.png")
    'bad\\\\xffname.png'
    """
    text = os.fsdecode(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_pair(
    fixed: Path,
    moving: Path,
    *,
    channel: int | None = None,
    same_shape: bool = True,
    allow_nan: bool = False,
):
    """Read two images (of the same shape, unless ``same_shape`` is false; with NaN pixels
    when ``allow_nan``, for the commands that treat them as masked); errors name both files.
    ``channel``: the channel of multi-channel images to use (``--channel``)."""
    inputs = read_inputs(fixed, moving, channel=channel, same_shape=same_shape, allow_nan=allow_nan)
    return inputs.fixed, inputs.moving


@dataclasses.dataclass
class Inputs:
    """A pair as the commands that register use it."""

    #: The 2-D images :func:`regcli.register` gets (a channel, or the luminance of colour).
    fixed: Any
    moving: Any
    #: What the files say (channels, spacing), the command line's spacing applied.
    fixed_meta: Any
    moving_meta: Any
    #: Every channel of the moving image, ``(rows, cols[, channels])``: the aligned output's.
    moving_pixels: Any

    @property
    def output_meta(self):
        """The aligned image's metadata: the moving image's channels on the fixed image's
        grid, so the fixed image's spacing and unit."""
        return dataclasses.replace(
            self.moving_meta, spacing=self.fixed_meta.spacing, unit=self.fixed_meta.unit
        )


def read_inputs(
    fixed: Path,
    moving: Path,
    *,
    channel: int | None = None,
    spacing=None,
    fixed_spacing=None,
    moving_spacing=None,
    same_shape: bool = True,
    allow_nan: bool = False,
) -> Inputs:
    """Read a pair for registration (errors name both files): of the same shape unless
    ``same_shape`` is false, NaN pixels let through (as masked) with ``allow_nan``.

    ``spacing``, ``fixed_spacing``, ``moving_spacing``: ``((sy, sx), unit)`` from the
    command line (``--spacing`` for both, the others for one image), over the files' TIFF
    resolution tags.
    """
    from regcli.images import given_spacing, pair_spacing
    from regcli.io import check_same_shape, read_for_registration

    read = functools.partial(read_for_registration, channel=channel, allow_nan=allow_nan)
    with cli_wording():
        fixed_image, _, fixed_meta = read(fixed)
        interrupts.pause("read")
        moving_image, moving_pixels, moving_meta = read(moving)
    if same_shape:
        check_same_shape(fixed_image, moving_image, names=(str(fixed), str(moving)))
    given = {"spacing": spacing, "fixed_spacing": fixed_spacing, "moving_spacing": moving_spacing}
    fixed_meta, moving_meta = pair_spacing(
        given_spacing(fixed_meta, "fixed", given), given_spacing(moving_meta, "moving", given)
    )
    _check_spacings(fixed_meta, moving_meta, given, {"fixed": fixed, "moving": moving})
    return Inputs(fixed_image, moving_image, fixed_meta, moving_meta, moving_pixels)


def _check_spacings(fixed_meta, moving_meta, given: dict, paths: dict) -> None:
    """The pair's spacings checked as :func:`regcli.register` will check them, the error
    naming where the bad one came from: its own option, else ``--spacing``, else its file."""
    from regcli.errors import InputError
    from regcli.images import register_spacing
    from regcli.spacing import check_spacings

    try:
        check_spacings(**register_spacing(fixed_meta, moving_meta))
    except InputError as exc:
        source = next((name for name in (exc.param, "spacing") if given.get(name)), None)
        if source is None:  # read from the file's resolution tags
            role = "fixed" if exc.param == "fixed_spacing" else "moving"
            raise InputError(f"{paths[role]}: its pixel spacing: {exc.reason}") from None
        raise InputError(f"{source}: {exc.reason}", param=source) from None


def spacing_for_register(inputs: Inputs) -> dict:
    """``fixed_spacing=`` and ``moving_spacing=`` (``(sy, sx)`` each) for
    :func:`regcli.register` from the pair's metadata (:func:`regcli.images.register_spacing`).

    Every command that registers a pair read by :func:`read_inputs` passes
    ``**spacing_for_register(inputs)``, so the spacing read from the files (or given on the
    command line) reaches the engine through this one place.
    """
    from regcli.images import register_spacing

    return register_spacing(inputs.fixed_meta, inputs.moving_meta)


def initial_matrix(path: Path, inputs: Inputs):
    """The fixed -> moving pixel matrix of ``--initial-transform`` (a regcli JSON, or an ITK
    file converted with the pair's spacings)."""
    from regcli.errors import InputError
    from regcli.settings import check_initial_matrix
    from regcli.transform_files import read_transform

    data = read_transform(
        path,
        fixed_spacing=inputs.fixed_meta.spacing,
        moving_spacing=inputs.moving_meta.spacing,
    )
    try:  # (checked here too, to name the option and the file)
        return check_initial_matrix(data["matrix"])
    except InputError as exc:
        raise click.BadParameter(
            f"{path}: {exc.reason}", param_hint="'--initial-transform'"
        ) from None


def write_itk(path: Path, result, inputs: Inputs | None) -> None:
    """``transform.tfm``: ``result.matrix`` for ITK, centred on the transform's centre, in
    the physical units of the pair's spacings."""
    from regcli.transform_files import write_itk_transform

    center = (result.params or {}).get("center") or (0.0, 0.0)
    spacing = getattr(result, "fixed_spacing", None)
    if spacing is not None:  # physical params: the centre back in fixed pixels
        center = (float(center[0]) / spacing[1], float(center[1]) / spacing[0])
    write_itk_transform(
        path,
        result.matrix,
        center=center,
        fixed_spacing=None if inputs is None else inputs.fixed_meta.spacing,
        moving_spacing=None if inputs is None else inputs.moving_meta.spacing,
    )


@contextlib.contextmanager
def cli_wording():
    """A core message's ``channel=K`` said as the command line's ``--channel K``."""
    from regcli.errors import InputError

    try:
        yield
    except InputError as exc:
        if "channel=K" not in str(exc):
            raise
        raise InputError(str(exc).replace("channel=K", "--channel K"), param=exc.param) from exc


def read_masks(fixed_mask: Path | None, moving_mask: Path | None) -> dict:
    """``{"fixed_mask": array or None, "moving_mask": ...}`` read from the mask files (any
    format the readers know, any dtype; the core checks their shapes and counts)."""
    from regcli.io import read_image

    return {
        name: None if path is None else read_image(path, allow_nan=True)
        for name, path in (("fixed_mask", fixed_mask), ("moving_mask", moving_mask))
    }


def name_inputs(message: str, *, fixed: Path, moving: Path) -> str:
    """Put the file name into a core message about ``fixed:``/``moving:`` (the core sees
    arrays)."""
    for role, path in (("fixed", fixed), ("moving", moving)):
        if message.startswith(f"{role}:"):
            return f"{path} ({role} image):{message[len(role) + 1 :]}"
    return message


@contextlib.contextmanager
def inputs_named(*, fixed: Path, moving: Path):
    """Re-raise a core error about the ``fixed``/``moving`` array with its file's name."""
    from regcli.errors import InputError

    try:
        yield
    except InputError as exc:
        message = name_inputs(str(exc), fixed=fixed, moving=moving)
        if message == str(exc):
            raise
        raise InputError(message) from exc


# --------------------------------------------------------------------------- core errors


def option_for(command: click.Command, name: str | None) -> click.Option | None:
    """The option of ``command`` whose Python name is ``name`` (a core argument), if any.

    Only options count: a core error about an argument such as ``fixed`` concerns the
    content of that file (a constant image), a runtime failure rather than a usage error.
    """
    if name is None:
        return None
    for param in command.params:
        if isinstance(param, click.Option) and param.name == name:
            return param
    return None


def usage_error(exc, command: click.Command, ctx: click.Context) -> click.BadParameter | None:
    """The usage error for core error ``exc`` (an :class:`~regcli.errors.InputError`) raised
    while ``command`` ran, or ``None`` when its ``param`` is not one of the command's options.

    ``ctx`` is the group's context; the usage line and the option's flags come from a context
    of ``command`` made from it.
    """
    option = option_for(command, getattr(exc, "param", None))
    if option is None:
        return None
    sub_ctx = click.Context(command, info_name=command.name, parent=ctx)
    return click.BadParameter(exc.reason, ctx=sub_ctx, param=option)


def check_register_options(**options) -> None:
    """Check ``register``'s keyword options before any image is read: the core's own
    checks, so an error names its option (exit 2) and no work is done."""
    from regcli.registration import check_options

    check_options(**options)
