"""The ``regcli`` group: global options, loading the subcommands, and turning errors into
exit codes.

Exit codes: 0 success; 1 runtime failure (unreadable image, unwritable output, a failed
pair in a batch, ...); 2 usage error (unknown option, bad option value); 3 a registration ran
but its result is not trustworthy (not converged, or quality verdict suspect; the outputs are
written; :mod:`regcli.cli.verdict`); 128 + the signal's number when interrupted (130 SIGINT,
143 SIGTERM, 129 SIGHUP).  The mapping is made in one place, :meth:`RegcliGroup.invoke`: an
:class:`~regcli.errors.InputError` whose ``param`` is the Python name of an option of the
running command is a usage error on that option (exit 2); any other
:class:`~regcli.errors.RegcliError`, an ``OSError`` (disk full, permission denied) and any
unexpected exception is one ``Error:`` line (exit 1), the traceback shown only with ``-v``.
Signals are turned into :class:`~regcli.cli.interrupts.Interrupted` by :func:`main`.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import traceback

import click

from regcli import __version__
from regcli.cli import helpers, interrupts, options
from regcli.cli.outputs import describe_os_error

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
    "batch": "batch",
    "stack": "stack",
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EPILOG = """\b
Conventions: an image is indexed [row, col]; a point is (x, y) with x = column, y = row,
origin at the centre of the top-left pixel, y pointing down (a positive angle turns clockwise
on screen). A transform is the 3x3 matrix M mapping a fixed pixel to the moving pixel showing
the same anatomy: aligned(x) = moving(M @ x). Angles are in degrees.
Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 a registration whose result is
not trustworthy (not converged, or quality suspect; the outputs are written), 130/143/129
interrupted by SIGINT/SIGTERM/SIGHUP. A run's outputs appear together or not at all.
Environment: REGCLI_MAX_PIXELS, the largest image read (default 2^28 pixels)."""


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
            _show_traceback(ctx)
            raise click.ClickException(describe_os_error(exc)) from exc
        except MemoryError as exc:
            _show_traceback(ctx)
            raise click.ClickException("out of memory; try smaller images or --levels") from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug: one line, the traceback only with -v
            signalled = interrupts.pending()
            if signalled is not None:  # a signal turned into another error by C code
                raise signalled from exc
            _show_traceback(ctx)
            text = " ".join(str(exc).split()) or "(no message)"
            hint = "" if helpers.verbosity(ctx) > 0 else "; run with -v for the traceback"
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {text}{hint}; please report it"
            ) from exc


def _show_traceback(ctx: click.Context) -> None:
    if helpers.verbosity(ctx) > 0:
        click.echo(traceback.format_exc().rstrip(), err=True)


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


#: Environment the command runs with unless the user set these variables: one OpenBLAS thread.
#: Setting up OpenBLAS's thread pool when numpy and scipy load took ~0.1 s of every call (of
#: ~0.35 s for ``register --plots none``), and registration does not use threaded BLAS (the
#: same time at 2048^2 with one thread).  Read by OpenBLAS when it loads, so it is set before
#: any command imports numpy; the Python API leaves the user's setting alone.
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1"}
#: Bytes of freed memory glibc keeps at the top of the heap (``M_TOP_PAD``) in the command's
#: process and the processes it starts, unless ``MALLOC_TOP_PAD_`` is set.  By default glibc
#: hands freed memory back at once, so every numpy temporary of a few hundred KB is faulted
#: in again page by page: at 256^2 a third of the time of a clip or a rounding, and ~10 % of a
#: registration (~1.5 ms a pair in ``batch``).  The cost: up to this much more resident memory.
MALLOC_TOP_PAD = 16 << 20


def _keep_freed_memory() -> None:
    """Apply :data:`MALLOC_TOP_PAD` (glibc: ``mallopt`` now, the environment for children)."""
    os.environ.setdefault("MALLOC_TOP_PAD_", str(MALLOC_TOP_PAD))
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pad = int(os.environ["MALLOC_TOP_PAD_"])
        ctypes.CDLL(None).mallopt(-2, pad)  # M_TOP_PAD; not glibc (no mallopt): nothing
    except (OSError, AttributeError, ValueError, TypeError):
        pass


def main() -> None:
    """Console-script entry point: one OpenBLAS thread unless the user chose (see
    :data:`SINGLE_THREADED_BLAS`), freed memory kept for reuse (:data:`MALLOC_TOP_PAD`);
    SIGINT, SIGTERM and SIGHUP end the run cleanly (whatever was staged is removed) with exit
    code 128 + the signal's number."""
    for name, value in SINGLE_THREADED_BLAS.items():
        os.environ.setdefault(name, value)
    _keep_freed_memory()
    from regcli.cli import _plot_helper, interrupts

    interrupts.install()
    _plot_helper.STANDALONE["enabled"] = True  # one command per process: a helper may fork
    try:
        cli(prog_name="regcli")
    except interrupts.Interrupted as exc:
        sys.stderr.write(f"regcli: interrupted by {exc.name}\n")
        sys.stderr.flush()
        sys.exit(exc.exit_code)
    finally:
        # The command is over: the collector need not walk the ~40,000 objects of numpy,
        # scipy and click again at exit (~15-40 ms of every call).  Objects are still freed
        # and files closed as usual; only unreachable cycles made so far stay uncollected.
        gc.freeze()


if __name__ == "__main__":
    main()
