""":func:`regcli.many.register_many`'s Dask side: the ``client`` argument, checked at the call,
and the pairs run on the cluster.  Dask distributed is an optional extra: it is imported only
when a client is given."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

from regcli._validate import _describe as _short
from regcli.errors import InputError


def check_client(client) -> None:
    """Refuse a ``client`` that is not a ``distributed.Client``: a scheduler's address given
    as a string (a natural mistake) failed only when the pairs were sent, deep inside, with
    ``'str' object has no attribute 'map'``."""
    try:
        from distributed import Client
    except ImportError:
        Client = None
    if Client is not None and isinstance(client, Client):
        return
    if isinstance(client, str):
        hint = f"; for a scheduler's address give distributed.Client({client!r})"
    elif Client is None:
        hint = "; pip install 'regcli[dask]'"
    else:
        hint = ""
    raise InputError(
        f"client: expected a dask.distributed.Client, got {_short(client)}{hint}", param="client"
    )


def as_finished(jobs: list, client, task: Callable) -> Iterator:
    """``(job, future)`` of ``task(job)`` for each job, run on the cluster, in the order they
    finish; closing the generator cancels the tasks not finished."""
    from distributed import as_completed

    batch = uuid.uuid4().hex[:12]
    keys = [f"regcli-pair-{batch}-{job.index}" for job in jobs]
    futures = client.map(task, jobs, key=keys, pure=False)
    by_key = {future.key: job for future, job in zip(futures, jobs, strict=True)}
    pending = set(futures)
    try:
        for future in as_completed(futures, loop=client.loop):  # (not the default client)
            pending.discard(future)
            yield by_key[future.key], future
    finally:
        if pending:
            client.cancel(list(pending))
