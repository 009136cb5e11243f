"""``regcli batch --scheduler``: the scheduler's address, checked before connecting, and the
connection, with one line for each way it can fail."""

from __future__ import annotations

import gc

import click

INSTALL_DASK = "pip install 'regcli[dask]'"

#: The schemes of a remote scheduler's address (distributed's ``inproc://`` reaches only a
#: scheduler in this process, and ``ucx://`` needs UCX-Py); no scheme means tcp://.
SCHEMES = ("tcp", "tls", "ws", "wss")


def check_address(address: str | None) -> str | None:
    """``--scheduler``'s address, if it has the form distributed reads (its ``parse_address``
    and ``parse_host_port``): ``[SCHEME://]HOST:PORT``, HOST an IPv6 address in brackets.
    Checked here, as a usage error naming the option, because distributed's own errors did
    not say what an address looks like (``not enough values to unpack`` for ``inproc://x``)
    and a port out of range was tried for the whole connection timeout."""
    if address is None:
        return None
    scheme, sep, location = address.rpartition("://")
    host, colon, port = location.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # (an IPv6 address without brackets: distributed refuses it)
    if not address:
        problem = "the address is empty"
    elif sep and scheme not in SCHEMES:
        problem = f"{scheme}:// is not a scheme of a remote scheduler"
    elif not colon or not (port.isascii() and port.isdigit()):
        problem = "it has no port number"
    elif not 1 <= int(port) <= 65535:
        problem = f"port {int(port)} is not between 1 and 65535"
    elif not host or any(c.isspace() or c in "/@[]" for c in host):
        problem = "it has no host name"
    else:
        return address
    raise click.BadParameter(
        f"{address!r}: {problem}; expected tcp://HOST:PORT (or tls://, ws://, wss://) as the "
        "scheduler prints it, e.g. tcp://127.0.0.1:8786",
        param_hint="--scheduler",
    )


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
    except CommClosedError:  # something answered, then hung up
        failure = _not_a_scheduler(address)
    except (OSError, TimeoutError, TypeError, ValueError) as exc:
        # Refused, no such host, nothing answered in time; or, before connecting, a setting
        # missing (tls:// without a TLS configuration is a TypeError).
        failure = click.ClickException(f"cannot reach a Dask scheduler at {address}: {exc}")
    except Exception:
        # The handshake decodes whatever the server sends, so another kind of server can make
        # it raise anything: a MemoryError when its reply, read as a frame length, asks for
        # exbibytes; struct.error, AssertionError...
        failure = _not_a_scheduler(address)
    # The half-made client lives on in a reference cycle (the error's frames): collected at
    # some later moment, its __del__ waits for a lock that a client starting then holds
    # (distributed's LoopRunner), and a second connection in this process hung.  Now that the
    # error is gone, it is collected here.
    gc.collect()
    raise failure


def _not_a_scheduler(address: str) -> click.ClickException:
    return click.ClickException(
        f"cannot reach a Dask scheduler at {address}: it did not answer as one (is that the "
        "scheduler's port, 8786 by default, and not another server's, such as its "
        "dashboard's, 8787?)"
    )
