"""The ``regcli`` group: global options, logging, and turning errors into exit codes.

Exit codes: 0 success; 1 runtime failure (unreadable image, registration that did not
converge, ...); 2 usage error (unknown option, bad option value).
"""

from __future__ import annotations

import logging
import sys

import click

from regcli import __version__

#: Subcommand name -> module in regcli.cli holding a click command of the same name.
COMMANDS = {
    "jointhist": "jointhist",
    "similarity": "similarity",
    "translate": "translate",
    "rotate": "rotate",
    "register": "register",
    "compare": "compare",
    "apply": "apply",
    "profile": "profile",
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EPILOG = """\b
Conventions: an image is indexed [row, col]; a point is (x, y) with x = column, y = row,
origin at the centre of the top-left pixel, y pointing down (a positive angle turns clockwise
on screen). A transform is the 3x3 matrix M mapping a fixed pixel to the moving pixel showing
the same anatomy: aligned(x) = moving(M @ x). Angles are in degrees.
Exit codes: 0 success, 1 runtime failure, 2 usage error."""


class RegcliGroup(click.Group):
    """A group that loads each subcommand module on first use and maps errors to exit codes."""

    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx, name):
        return self._load(name)

    def _load(self, name):
        module_name = COMMANDS.get(name)
        if module_name is None:
            return None
        import importlib

        try:
            module = importlib.import_module(f"regcli.cli.{module_name}")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name == f"regcli.cli.{module_name}":
                return None
            raise
        return getattr(module, name)

    def invoke(self, ctx):
        from regcli.errors import RegcliError

        try:
            return super().invoke(ctx)
        except RegcliError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # disk full, permission denied on an output folder, ...
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from exc
        except MemoryError as exc:
            raise click.ClickException("out of memory; try smaller images or --levels") from exc


@click.group(cls=RegcliGroup, context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="regcli")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less output on stderr: no progress bars.")
@click.pass_context
def cli(ctx, verbose, quiet):
    """Intensity-based 2-D image registration.

    Align a MOVING image onto a FIXED one by minimising a cost (SSD, correlation, mutual
    information, ...) over a transform (translation, rotation, rigid, similarity, affine),
    and inspect images with joint histograms and similarity measures.

    \b
    Examples:
      regcli register BrainMRI_1.png BrainMRI_2.png --metric ssd --opt nag
      regcli jointhist BrainMRI_1.png BrainMRI_2.png -o hist.png
      regcli similarity BrainMRI_1.png BrainMRI_4.png --metric all
    """
    level = verbose - quiet
    ctx.obj = {"verbosity": level}
    if level > 1:
        log_level = logging.DEBUG
    elif level == 1:
        log_level = logging.INFO
    elif level == 0:
        log_level = logging.WARNING
    else:  # -q: errors only (notes such as "converted RGB image to grey" are dropped)
        log_level = logging.ERROR
    logging.basicConfig(
        level=log_level,
        format="regcli: %(message)s",
        stream=sys.stderr,
    )


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="regcli")


if __name__ == "__main__":
    main()
