"""The ``regcli`` group: global options, loading the subcommands, and turning errors into
exit codes.

Exit codes: 0 success; 1 runtime failure (unreadable image, unwritable output, ...); 2 usage
error (unknown option, bad option value); 3 ``register`` ran but its result is not
trustworthy (:mod:`regcli.cli.verdict`).  The mapping is made in
one place, :meth:`RegcliGroup.invoke`: an :class:`~regcli.errors.InputError` whose ``param``
is the Python name of an option of the running command is a usage error on that option
(exit 2); any other :class:`~regcli.errors.RegcliError` is an ``Error:`` line (exit 1).
"""

from __future__ import annotations

import importlib

import click

from regcli import __version__
from regcli.cli import helpers, options

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
Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 (register) a result that is not
trustworthy (not converged, or quality suspect; the outputs are written)."""


class RegcliGroup(click.Group):
    """A group that imports each subcommand's module on first use and maps errors to exit
    codes."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        module_name = COMMANDS.get(name)
        if module_name is None:
            return None
        module = importlib.import_module(f"regcli.cli.{module_name}")
        return getattr(module, name)

    def invoke(self, ctx):
        from regcli.errors import InputError, RegcliError

        try:
            return super().invoke(ctx)
        except InputError as exc:
            command = self.get_command(ctx, ctx.invoked_subcommand or "")
            usage = None if command is None else helpers.usage_error(exc, command, ctx)
            if usage is None:
                raise click.ClickException(str(exc)) from exc
            raise usage from exc
        except RegcliError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # disk full, permission denied on an output folder, ...
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from exc
        except MemoryError as exc:
            raise click.ClickException("out of memory; try smaller images or --levels") from exc


@click.group(cls=RegcliGroup, context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="regcli")
@options.verbose_opt
@options.quiet_opt
@click.pass_context
def cli(ctx):
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
    helpers.configure_logging(helpers.verbosity(ctx))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="regcli")


if __name__ == "__main__":
    main()
