"""register_many: known truths, errors as records, identical results in-process and on a pool,
and safe unique pair names."""

from __future__ import annotations

import numpy as np
import pytest
from many_cases import fixed_image, moving_for, rigid, write_pairs

import regcli
from regcli.errors import InputError
from regcli.many import pair_names, register_many, safe_name
from regcli.transforms import mean_displacement


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    fixed, movings = write_pairs(folder, 5)
    return fixed, movings


def _by_index(records):
    return sorted(records, key=lambda r: r.index)


def test_every_pair_finds_its_truth(pairs):
    fixed, movings = pairs
    records = _by_index(register_many([(fixed, m) for m, _ in movings], workers=1))
    assert [r.index for r in records] == list(range(len(movings)))
    for record, (path, truth) in zip(records, movings, strict=True):
        assert record.ok and record.moving == path and record.name == path.stem
        assert mean_displacement(record.result.matrix, truth, (96, 112)) < 0.1


def test_a_pool_gives_the_same_matrices_as_one_process(pairs):
    fixed, movings = pairs
    items = [(fixed, m) for m, _ in movings]
    serial = _by_index(register_many(items, workers=1))
    pooled = _by_index(register_many(items, workers=2))
    for a, b in zip(serial, pooled, strict=True):
        np.testing.assert_allclose(a.result.matrix, b.result.matrix, rtol=0, atol=1e-9)


def test_a_bad_pair_is_a_record_with_its_error_and_the_others_run(tmp_path, pairs):
    fixed, movings = pairs
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    small = np.ones((10, 12))
    items = [(fixed, movings[0][0]), (fixed, broken), (fixed_image(), small, "small")]
    for workers in (1, 2):
        records = _by_index(register_many(items, workers=workers))
        assert [r.ok for r in records] == [True, False, False], [r.error for r in records]
        assert "broken.png: not a readable image" in records[1].error
        assert "the image is constant" in records[2].error and records[2].result is None


def test_a_pool_gives_the_same_warped_image_even_when_finish_made_it(pairs):
    fixed, movings = pairs
    items = [(fixed, m) for m, _ in movings[:3]]
    serial = _by_index(register_many(items, workers=1, finish=_warped_sum))
    pooled = _by_index(register_many(items, workers=2, finish=_warped_sum))
    for a, b in zip(serial, pooled, strict=True):
        assert a.output == pytest.approx(b.output, rel=1e-12)
        np.testing.assert_allclose(a.result.warped, b.result.warped, rtol=0, atol=1e-9)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The paths ``regcli.io.read_for_registration`` reads (in this process), in order."""
    import regcli.io

    seen: list[str] = []
    real = regcli.io.read_for_registration
    monkeypatch.setattr(
        regcli.io, "read_for_registration", lambda p, **kw: seen.append(str(p)) or real(p, **kw)
    )
    return seen


def _warped_sum(record, fixed, moving):
    return float(record.result.warped.sum())


def test_finish_gets_what_the_worker_read_and_nothing_is_read_twice(pairs, reads):
    fixed, movings = pairs
    records = list(register_many([(fixed, movings[0][0])], workers=1, finish=_inputs))
    assert records[0].output == ((96, 112), (96, 112), 1)
    assert records[0].inputs is None  # only the record finish gets carries them
    assert len(reads) == 2


def _inputs(record, fixed, moving):
    read = record.inputs
    assert read["moving_pixels"] is moving or np.array_equal(read["moving_pixels"], moving)
    return fixed.shape, read["moving_pixels"].shape, read["fixed_meta"].channels


def test_an_error_in_finish_keeps_the_result_and_records_the_error(pairs):
    fixed, movings = pairs

    records = list(register_many([(fixed, movings[0][0])], workers=1, finish=_fail))
    assert records[0].result is not None
    assert records[0].error == "RuntimeError: disk on fire"


def _fail(record, fixed, moving):
    raise RuntimeError("disk on fire")


def test_finish_runs_in_the_worker_and_its_value_is_the_output(pairs):
    fixed, movings = pairs
    records = _by_index(
        register_many([(fixed, m) for m, _ in movings[:3]], workers=2, finish=_shape_and_name)
    )
    assert [r.output for r in records] == [((96, 112), f"m0{k}") for k in range(3)]


def _shape_and_name(record, fixed, moving):
    return fixed.shape, record.name


def test_data_travels_with_its_pair_to_finish_and_back(pairs):
    fixed, movings = pairs
    items = [
        {"fixed": fixed, "moving": m, "data": {"k": k}} for k, (m, _) in enumerate(movings[:3])
    ]
    records = _by_index(register_many(items, workers=2, finish=_data))
    assert [(r.data, r.output) for r in records] == [({"k": k}, k) for k in range(3)]


def _data(record, fixed, moving):
    return record.data["k"]


def test_a_fixed_path_used_twice_is_read_once_per_process(pairs, reads):
    fixed, movings = pairs
    list(register_many([(fixed, m) for m, _ in movings[:3]], workers=1))
    assert reads.count(str(fixed)) == 1
    assert len(reads) == 4


def test_arrays_work_and_names_are_made_up():
    fixed = fixed_image()
    truth = rigid(fixed.shape, 3.0, 2.0, -1.0)
    records = list(register_many([(fixed, moving_for(fixed, truth))] * 2, workers=1))
    assert sorted(r.name for r in records) == ["pair-0000", "pair-0001"]
    assert all(mean_displacement(r.result.matrix, truth, fixed.shape) < 0.1 for r in records)


def test_bad_arguments_raise_at_the_call_not_per_pair(pairs):
    fixed, movings = pairs
    with pytest.raises(InputError, match="metrik: not an option of register"):
        register_many([(fixed, movings[0][0])], metrik="ssd")
    with pytest.raises(InputError, match="workers: expected an integer >= 1"):
        register_many([(fixed, movings[0][0])], workers=0)
    with pytest.raises(InputError, match=r"item 0: expected \(fixed, moving\)"):
        register_many(["fixed.png"])


@pytest.mark.parametrize(
    ("client", "message"),
    [
        # An address instead of a client was an AttributeError: 'str' object has no attribute 'map'.
        (
            "tcp://127.0.0.1:8786",
            "client: expected a dask.distributed.Client, got 'tcp://127.0.0.1:8786'; for a "
            "scheduler's address give distributed.Client('tcp://127.0.0.1:8786')",
        ),
        (4, "client: expected a dask.distributed.Client, got 4"),
    ],
)
def test_a_client_that_is_not_a_dask_client_is_refused_at_the_call(pairs, client, message):
    pytest.importorskip("distributed")
    fixed, movings = pairs
    with pytest.raises(InputError) as raised:
        register_many([(fixed, movings[0][0])], client=client)
    assert str(raised.value) == message and raised.value.param == "client"


def test_a_client_without_dask_installed_says_how_to_install_it(pairs, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    fixed, movings = pairs
    with pytest.raises(InputError, match=r"got <object .*>; pip install 'regcli\[dask\]'$"):
        register_many([(fixed, movings[0][0])], client=object())


def test_the_public_name_is_exported():
    assert regcli.register_many is register_many
    assert "register_many" in regcli.__all__


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("../evil", "evil"),
        ("/abs", "abs"),
        ("..", "pair"),
        (".hidden", "hidden"),
        ("a/b\\c:d", "a_b_c_d"),
        ("-rf", "rf"),
        ("x" * 300, "x" * 96),
    ],
)
def test_safe_name_never_leaves_a_folder(text, expected):
    assert safe_name(text) == expected


def test_pair_names_are_unique_and_stable():
    movings = ["a/frame.png", "b/frame.png", "c/d/frame.png", "x/frame.png", "x/frame.png"]
    names = pair_names(movings, reserved=["results.csv"])
    assert len(set(n.casefold() for n in names)) == len(names)
    assert names[:3] == ["a_frame", "b_frame", "d_frame"]
    assert names[3:] == ["x_frame", "x_frame-2"]
    assert pair_names(movings, reserved=["results.csv"]) == names
    assert pair_names(["results.csv.png"], reserved=["results.csv"]) == ["results.csv-2"]
    assert pair_names(["a.png", "b.png"], ["same", "SAME"]) == ["same", "SAME-2"]


def test_a_pool_started_while_other_threads_run_works_too(pairs):
    import threading

    fixed, movings = pairs
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)  # fork is unsafe now: the forkserver is used
    thread.start()
    try:
        records = list(register_many([(fixed, m) for m, _ in movings[:2]], workers=2))
    finally:
        stop.set()
        thread.join()
    assert [r.error for r in records] == [None, None]


@pytest.mark.parametrize("workers", [1, 2])
def test_after_stop_only_the_running_pairs_finish(pairs, workers):
    """``stop`` set while the first result is handled: no further pair starts (a pool runs
    one pair per worker, nothing queued behind them).  A worker that hands in a result gets
    its next pair before the caller sees the result, and both workers may hand theirs in at
    once: then up to two results arrive before the stop and two pairs are running, of 10."""
    import threading

    fixed, movings = pairs
    items = [(fixed, m) for m, _ in movings] * 2  # 10 pairs
    stop = threading.Event()
    records = []
    for record in register_many(items, workers=workers, stop=stop):
        records.append(record)
        stop.set()
    assert 1 <= len(records) <= (2 * workers if workers > 1 else 1)
    assert all(r.ok for r in records)


def _frozen_objects(record, fixed, moving):
    import gc

    return gc.get_freeze_count()


def test_forked_workers_start_with_the_parents_objects_frozen(pairs):
    """Their collector leaves the parent's objects (and the pages they lie on) alone; the
    parent unfreezes its own at once."""
    import gc

    from regcli.many import _pool_context

    if _pool_context().get_start_method() != "fork":
        pytest.skip("the workers are not forked here")
    fixed, movings = pairs
    items = [(fixed, m) for m, _ in movings[:2]]
    records = list(register_many(items, workers=2, finish=_frozen_objects))
    assert all(r.output > 1000 for r in records), [r.output for r in records]
    assert gc.get_freeze_count() == 0


def _mark(record, fixed, moving):
    (record.data / str(record.index)).touch()


def test_a_worker_starts_its_next_pair_before_the_caller_sees_its_result(pairs, tmp_path):
    """While the caller holds the first result (writes its tables, say), both workers are
    busy: the one that finished already has the next pair."""
    import time

    fixed, movings = pairs
    items = [{"fixed": fixed, "moving": m, "data": tmp_path} for m, _ in movings]
    results = register_many(items, workers=2, finish=_mark)
    next(results)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list(tmp_path.iterdir())) >= 3  # the first pair, the other worker's, the next
    assert len(list(results)) == len(movings) - 1
