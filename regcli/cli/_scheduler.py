"""``regcli batch --scheduler``: the connection to the scheduler, with one line for each way it
can fail."""

from __future__ import annotations

import click

INSTALL_DASK = "pip install 'regcli[dask]'"


def connect(address: str):
    """A Dask client of the scheduler at ``address`` (and only there)."""
    try:
        from distributed import Client
        from distributed.comm import CommClosedError
    except ImportError:
        exc = click.ClickException(f"--scheduler needs Dask distributed: {INSTALL_DASK}")
        exc.exit_code = 2
        raise exc from None
    try:
        return Client(address, timeout="20s", set_as_default=False)
    except CommClosedError as exc:  # something answered, then hung up
        raise _not_a_scheduler(address) from exc
    except (OSError, TimeoutError, TypeError, ValueError) as exc:
        # Refused, no such host, nothing answered in time; or, before connecting, a setting
        # missing (tls:// without a TLS configuration is a TypeError).
        raise click.ClickException(f"cannot reach a Dask scheduler at {address}: {exc}") from exc
    except Exception as exc:
        # The handshake decodes whatever the server sends, so another kind of server can make
        # it raise anything: a MemoryError when its reply, read as a frame length, asks for
        # exbibytes; struct.error, AssertionError...
        raise _not_a_scheduler(address) from exc


def _not_a_scheduler(address: str) -> click.ClickException:
    return click.ClickException(
        f"cannot reach a Dask scheduler at {address}: it did not answer as one (is that the "
        "scheduler's port, 8786 by default, and not another server's, such as its "
        "dashboard's, 8787?)"
    )
