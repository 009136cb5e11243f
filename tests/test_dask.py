"""Batches on a real Dask LocalCluster (worker processes on 127.0.0.1): the same matrices as in
one process, through the API and through `regcli batch --scheduler`, and a batch that loses a
worker in the middle still finishes every pair."""

from __future__ import annotations

import json
import os
import signal
import socketserver
import threading
import time

import numpy as np
import pytest
from many_cases import write_pairs

from regcli.cli.main import cli
from regcli.many import register_many

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # Its HTTP server (always started) on a free port of 127.0.0.1, not on 8787.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as connected:
        yield connected


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    fixed, movings = write_pairs(folder, 12, shape=(96, 112))
    return [(fixed, m) for m, _ in movings]


@pytest.fixture(scope="module")
def serial(pairs):
    return {r.index: r.result.matrix for r in register_many(pairs, workers=1)}


def test_the_cluster_listens_on_localhost_only(cluster, client):
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])


def test_a_dask_batch_gives_the_serial_matrices(client, pairs, serial):
    records = list(register_many(pairs, client=client))
    assert sorted(r.index for r in records) == list(range(len(pairs)))
    for record in records:
        assert record.ok, record.error
        np.testing.assert_allclose(record.result.matrix, serial[record.index], rtol=0, atol=1e-9)


def test_the_cli_on_a_scheduler_address_gives_the_workers_1_matrices(
    runner, cluster, pairs, tmp_path
):
    fixed, movings = pairs[0][0], [str(m) for _, m in pairs[:6]]
    matrices = {}
    for mode in (["--workers", "1"], ["--scheduler", cluster.scheduler_address]):
        out = tmp_path / mode[0]
        result = runner.invoke(cli, ["batch", str(fixed), *movings, "-o", str(out), *mode])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        matrices[mode[0]] = np.array([r["matrix"] for r in rows])
        assert (out / "contact_sheet.png").is_file()
    np.testing.assert_allclose(matrices["--workers"], matrices["--scheduler"], rtol=0, atol=1e-9)


@pytest.fixture
def not_dask(request):
    """The address of a TCP server on 127.0.0.1 that is not a Dask scheduler: it answers every
    connection with the bytes ``request.param`` and hangs up."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(request.param)
            time.sleep(0.1)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


@pytest.mark.parametrize(
    "not_dask",
    # An HTTP reply, read as a frame length, asked for 3 EiB: "out of memory" was reported.
    [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4, b"hello"],
    ids=["http", "hangs-up"],
    indirect=True,
)
def test_the_cli_on_a_server_that_is_not_a_scheduler_says_so(runner, pairs, not_dask, tmp_path):
    (fixed, moving), out = pairs[0], tmp_path / "o"
    args = ["batch", str(fixed), str(moving), "-o", str(out), "--scheduler", not_dask]
    started, clients = time.monotonic(), _clients()
    result = runner.invoke(cli, args)
    assert time.monotonic() - started < 10
    # The failed client is gone: left to a later collection it hung the next one's start.
    assert _clients() <= clients
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: cannot reach a Dask scheduler at {not_dask}: it did not answer as one (is that "
        "the scheduler's port, 8786 by default, and not another server's, such as its "
        "dashboard's, 8787?)"
    ]
    assert not out.exists()


def _clients() -> int:
    """Dask clients in this process, garbage not yet collected included."""
    import gc

    return sum(isinstance(o, distributed.Client) for o in gc.get_objects())


def test_a_worker_killed_mid_batch_does_not_lose_a_pair(client, pairs, serial):
    pids = client.run(os.getpid)
    records, killed = [], False
    for record in register_many(pairs, client=client):
        records.append(record)
        if not killed:
            os.kill(next(iter(pids.values())), signal.SIGKILL)  # Dask reruns its pairs elsewhere
            killed = True
    assert sorted(r.index for r in records) == list(range(len(pairs)))
    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    for record in records:
        np.testing.assert_allclose(record.result.matrix, serial[record.index], rtol=0, atol=1e-9)
    client.wait_for_workers(2, timeout=30)  # the nanny restarted it
    assert set(client.run(os.getpid).values()).isdisjoint({next(iter(pids.values()))})
