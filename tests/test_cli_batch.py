"""regcli batch: known truths, safe unique folders, error rows, exit codes, resuming, and a
batch killed with SIGKILL or interrupted with SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import default_signals, regcli_executable
from many_cases import write_pairs

from regcli.cli.main import cli
from regcli.transforms import mean_displacement


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    fixed, movings = write_pairs(folder, 4)
    return folder, fixed, movings


def _rows(outdir):
    lines = (outdir / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _visible_files(outdir):
    return sorted(
        str(p.relative_to(outdir)) for p in outdir.rglob("*") if not p.name.startswith(".")
    )


def test_a_batch_recovers_every_truth_and_writes_its_tables(runner, data, tmp_path):
    _, fixed, movings = data
    out = tmp_path / "out"
    args = ["batch", str(fixed), *[str(m) for m, _ in movings], "-o", str(out), "--workers", "1"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert [r["name"] for r in rows] == ["m00", "m01", "m02", "m03"]
    for row, (path, truth) in zip(rows, movings, strict=True):
        assert row["fixed"] == str(fixed) and row["moving"] == str(path)
        assert row["error"] is None and row["converged"] is True and row["status"] == "registered"
        assert {"matrix", "params", "quality", "seconds"} <= set(row)
        assert mean_displacement(np.array(row["matrix"]), truth, (96, 112)) < 0.1
        saved = json.loads((out / row["name"] / "transform.json").read_text())
        assert saved["matrix"] == row["matrix"]
    assert _visible_files(out) == sorted(
        ["contact_sheet.png", "results.csv", "results.jsonl"]
        + [f"m0{k}" for k in range(4)]
        + [
            f"m0{k}/{name}"
            for k in range(4)
            for name in (f"m0{k}_aligned.png", "transform.json", "transform.tfm")
        ]
    )
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:9] == [
        "index",
        "name",
        "fixed",
        "moving",
        "status",
        "converged",
        "quality",
        "seconds",
        "error",
    ]
    assert {"m00", "m12", "angle_deg", "tx", "ty"} <= set(header)


def test_equal_file_names_from_two_folders_get_two_folders(runner, tmp_path):
    fixed, first = write_pairs(tmp_path, 1, subfolder="a")
    _, second = write_pairs(tmp_path, 1, subfolder="b", seed=5)
    out = tmp_path / "out"
    args = [
        "batch",
        str(fixed),
        str(first[0][0]),
        str(second[0][0]),
        "-o",
        str(out),
        "--plots",
        "none",
    ]
    assert runner.invoke(cli, args).exit_code == 0
    rows = _rows(out)
    assert [r["name"] for r in rows] == ["a_m00", "b_m00"]
    for row, truth in zip(rows, (first[0][1], second[0][1]), strict=True):
        assert mean_displacement(np.array(row["matrix"]), truth, (96, 112)) < 0.1


def test_the_summary_of_one_pair_says_one_pair(runner, tmp_path):
    fixed, movings = write_pairs(tmp_path, 1)
    out = tmp_path / "out"
    result = runner.invoke(cli, ["batch", str(fixed), str(movings[0][0]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1 pair: 1 registered,"), result.stdout


def test_names_from_a_pairs_csv_never_leave_outdir(runner, data, tmp_path):
    folder, fixed, movings = data
    csv_path = folder / "pairs.csv"
    lines = [
        "fixed,moving,name",
        f"fixed.png,{movings[0][0].name},../evil",
        f"fixed.png,{movings[1][0].name},/abs",
    ]
    lines.append(f"{fixed},{movings[2][0]},..")  # absolute paths work too
    csv_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "deep" / "out"
    result = runner.invoke(
        cli, ["batch", "--pairs", str(csv_path), "-o", str(out), "--plots", "none"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "abs",
        "evil",
        "pair",
        "results.csv",
        "results.jsonl",
    ]
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
    assert [r["fixed"] for r in _rows(out)][:2] == ["fixed.png", "fixed.png"]  # as given


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fixed,moving\nfixed.png,m00.png,extra\n", "line 2 has 3 fields, the header has 2"),
        ("fixed,moving,name\n\nfixed.png,m00.png,a,b\n", "line 3 has 4 fields, the header has 3"),
        ("fixed,moving\n", "no pairs in it"),
        ("fixed,moving\n\n,\n\n", "no pairs in it"),
        ("", "expected a CSV with a header line naming the columns fixed,moving"),
        ("fixed\nfixed.png\n", "expected a CSV with a header line naming the columns fixed,moving"),
        ("fixed,moving\nfixed.png\n", "line 2: both fixed and moving are needed"),
        ('fixed,moving\n"fixed\n.png",m00.png\n', "line 3: a value holds a line break"),
        ('fixed,moving\n"fixed.png,m00.png\n', "line 2: cannot read the pairs CSV"),
        ("fixed,moving\nfixed.png,m00.png\0\n", "line 2: a value holds a line break or a NUL"),
    ],
)
def test_a_malformed_pairs_csv_is_one_line_naming_file_and_line(runner, tmp_path, text, message):
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(text)
    out = tmp_path / "out"
    result = runner.invoke(cli, ["batch", "--pairs", str(csv_path), "-o", str(out)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(f"Error: {csv_path}: ") and message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_a_symlink_in_place_of_a_pair_folder_is_not_followed(runner, data, tmp_path):
    _, fixed, movings = data
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "m00").symlink_to(elsewhere)
    result = runner.invoke(cli, ["batch", str(fixed), str(movings[0][0]), "-o", str(out)])
    assert result.exit_code == 1
    assert "symbolic link" in _rows(out)[0]["error"]
    assert list(elsewhere.iterdir()) == []


def test_bad_pairs_are_error_rows_and_the_others_finish(runner, data, tmp_path):
    _, fixed, movings = data
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    small = tmp_path / "small.npy"
    np.save(small, np.ones((10, 12)))
    out = tmp_path / "out"
    args = ["batch", str(fixed), str(movings[0][0]), str(broken), str(small), str(movings[1][0])]
    result = runner.invoke(cli, [*args, "-o", str(out), "--workers", "2"])
    assert result.exit_code == 1
    assert "2 pairs of 4 failed" in result.output
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["registered", "failed", "failed", "registered"]
    assert "broken.png: not a readable image" in rows[1]["error"]
    assert "small.npy (moving image): the image is constant" in rows[2]["error"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["m00", "m01"]
    assert (out / "contact_sheet.png").is_file()


def test_an_unconverged_result_exits_3_and_a_failure_wins(runner, data, tmp_path):
    _, fixed, movings = data
    args = [
        "batch",
        str(fixed),
        str(movings[0][0]),
        "--opt",
        "gd",
        "--iters",
        "1",
        "--plots",
        "none",
    ]
    result = runner.invoke(cli, [*args, "-o", str(tmp_path / "a")])
    assert result.exit_code == 3, result.output
    assert _rows(tmp_path / "a")[0]["converged"] is False
    allowed = runner.invoke(cli, [*args, "-o", str(tmp_path / "b"), "--allow-unconverged"])
    assert allowed.exit_code == 0
    both = runner.invoke(cli, [*args, str(tmp_path / "missing.png"), "-o", str(tmp_path / "c")])
    assert both.exit_code == 1


def test_a_rerun_keeps_complete_pairs_and_overwrite_redoes_them(runner, data, tmp_path):
    _, fixed, movings = data
    out = tmp_path / "out"
    args = [
        "batch",
        str(fixed),
        *[str(m) for m, _ in movings[:3]],
        "-o",
        str(out),
        "--plots",
        "none",
    ]
    assert runner.invoke(cli, [*args, "--workers", "1"]).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in out.glob("m0*/*")}
    first_rows = _rows(out)
    again = runner.invoke(cli, [*args, "--workers", "2", "--json"])
    assert again.exit_code == 0
    assert json.loads(again.output)["kept"] == 3
    assert {p: p.stat().st_mtime_ns for p in out.glob("m0*/*")} == before
    assert [r["matrix"] for r in _rows(out)] == [r["matrix"] for r in first_rows]
    assert {r["status"] for r in _rows(out)} == {"kept"}
    redo = runner.invoke(cli, [*args, "--overwrite", "--json"])
    assert json.loads(redo.output)["registered"] == 3
    assert all(p.stat().st_mtime_ns > before[p] for p in before)
    other = runner.invoke(cli, [*args, "--metric", "correlation"])
    assert other.exit_code == 1
    assert "holds the outputs of another registration" in _rows(out)[0]["error"]


def test_a_rerun_redoes_a_pair_whose_input_file_changed_at_the_same_path(runner, tmp_path):
    fixed, movings = write_pairs(tmp_path, 3)
    out = tmp_path / "out"
    args = ["batch", str(fixed), *[str(m) for m, _ in movings], "-o", str(out), "--plots", "qc"]
    assert runner.invoke(cli, [*args, "--workers", "1"]).exit_code == 0
    kept_mtime = (out / "m01").stat().st_mtime_ns
    # a new acquisition under the same name: m02's content (another truth) in m00.png
    movings[0][0].write_bytes(movings[2][0].read_bytes())
    again = runner.invoke(cli, [*args, "--workers", "1", "--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert (summary["registered"], summary["kept"]) == (1, 2)
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["registered", "kept", "kept"]
    assert mean_displacement(np.array(rows[0]["matrix"]), movings[2][1], (96, 112)) < 0.1
    saved = json.loads((out / "m00" / "transform.json").read_text())
    assert saved["matrix"] == rows[0]["matrix"]
    assert (out / "m01").stat().st_mtime_ns == kept_mtime
    # a folder of an older regcli (no fingerprint of the inputs) is not trusted: redone
    saved["batch"].pop("files")
    (out / "m00" / "transform.json").write_text(json.dumps(saved))
    third = runner.invoke(cli, [*args, "--workers", "1", "--json"])
    assert third.exit_code == 0, third.output
    assert [r["status"] for r in _rows(out)] == ["registered", "kept", "kept"]
    assert "files" in json.loads((out / "m00" / "transform.json").read_text())["batch"]
    assert runner.invoke(cli, [*args, "--workers", "2"]).exit_code == 0  # nothing changed
    assert {r["status"] for r in _rows(out)} == {"kept"}


def test_workers_1_and_2_give_identical_matrices(runner, data, tmp_path):
    _, fixed, movings = data
    matrices = []
    for workers in ("1", "2"):
        out = tmp_path / workers
        args = [
            "batch",
            str(fixed),
            *[str(m) for m, _ in movings],
            "-o",
            str(out),
            "--plots",
            "none",
        ]
        assert runner.invoke(cli, [*args, "--workers", workers]).exit_code == 0
        matrices.append(np.array([r["matrix"] for r in _rows(out)]))
    np.testing.assert_allclose(matrices[0], matrices[1], rtol=0, atol=1e-9)


def test_usage_errors_exit_2(runner, data, tmp_path):
    _, fixed, movings = data
    out = ["-o", str(tmp_path / "o")]
    assert runner.invoke(cli, ["batch", str(fixed), *out]).exit_code == 2
    both = runner.invoke(
        cli,
        [
            "batch",
            str(fixed),
            str(movings[0][0]),
            "--workers",
            "2",
            "--scheduler",
            "tcp://127.0.0.1:1",
            *out,
        ],
    )
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("", "the address is empty"),  # was exit 1, "missing port number in address ''"
        ("inproc://x", "inproc:// is not a scheme of a remote scheduler"),  # "not enough values"
        ("tcp://localhost:99999", "port 99999 is not between 1 and 65535"),  # waited 20 s
        ("tcp://localhost:0", "port 0 is not between 1 and 65535"),
        ("tcp://localhost", "it has no port number"),
        ("tcp://localhost:http", "it has no port number"),
        ("tcp://:8786", "it has no host name"),
        ("tcp://::1:8786", "it has no host name"),  # (IPv6 needs brackets)
    ],
)
def test_a_malformed_scheduler_address_is_a_usage_error(runner, data, tmp_path, address, problem):
    _, fixed, movings = data
    args = ["batch", str(fixed), str(movings[0][0]), "-o", str(tmp_path / "o")]
    result = runner.invoke(cli, [*args, "--scheduler", address])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"Error: Invalid value for --scheduler: {address!r}: {problem}; expected "
        "tcp://HOST:PORT (or tls://, ws://, wss://) as the scheduler prints it, e.g. "
        "tcp://127.0.0.1:8786"
    )


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "tls://host.example:1", "ws://[::1]:80"]
)
def test_a_well_formed_scheduler_address_is_accepted(address):
    from regcli.cli import _scheduler

    assert _scheduler.check_address(address) == address


def test_scheduler_without_dask_says_how_to_install_it(runner, data, tmp_path, monkeypatch):
    import sys

    _, fixed, movings = data
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    args = ["batch", str(fixed), str(movings[0][0]), "-o", str(tmp_path / "o")]
    result = runner.invoke(cli, [*args, "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: --scheduler needs Dask distributed: pip install 'regcli[dask]'"
    ]


# --------------------------------------------------------------------------- kill and interrupt


def _start(fixed, movings, out, workers, *more, plots="none", **popen):
    command = [*regcli_executable(), "batch", str(fixed), *map(str, movings), "-o", str(out)]
    command += ["--plots", plots, "--workers", str(workers), *more]
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=default_signals,
        **popen,
    )


def _wait_for_pairs(out, count, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if (
            out.is_dir()
            and sum(1 for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) >= count
        ):
            return
        time.sleep(0.005)


@pytest.fixture(scope="module")
def many_pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    fixed, movings = write_pairs(folder, 40, shape=(128, 144))
    return fixed, [m for m, _ in movings]


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_then_rerun_does_every_pair_exactly_once(many_pairs, tmp_path, workers):
    fixed, movings = many_pairs
    out = tmp_path / "out"
    process = _start(fixed, movings, out, workers)
    _wait_for_pairs(out, 3, process)
    children = _children(process.pid)
    assert len(children) == (0 if workers == 1 else 2)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    done = {
        p.name: p.stat().st_mtime_ns
        for p in out.iterdir()
        if p.is_dir() and not p.name.startswith(".")
    }
    assert 3 <= len(done) < len(movings), "the kill should land in the middle of the batch"
    for name in done:  # every visible pair folder is complete
        assert sorted(p.name for p in (out / name).iterdir()) == [
            f"{name}_aligned.png",
            "transform.json",
            "transform.tfm",
        ]
    rerun = _start(fixed, movings, out, workers)
    _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr.decode()
    rows = _rows(out)
    assert [r["name"] for r in rows] == [m.stem for m in movings]
    assert all(r["error"] is None for r in rows)
    assert {r["name"] for r in rows if r["status"] == "kept"} == set(done)
    for name, mtime in done.items():
        assert (out / name).stat().st_mtime_ns == mtime
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    for pid in children:  # the killed batch's pool workers went away with it
        assert not _alive(pid)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int, wait: float = 5.0) -> bool:
    """True if ``pid`` still runs after ``wait`` seconds (a zombie does not run)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_keeps_finished_pairs_and_writes_the_tables(
    many_pairs, tmp_path, signum, code
):
    fixed, movings = many_pairs
    out = tmp_path / "out"
    process = _start(fixed, movings, out, 2)
    _wait_for_pairs(out, 2, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr.decode()
    assert "interrupted" in stderr.decode()
    rows = _rows(out)
    done = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert sorted(r["name"] for r in rows) == done and 2 <= len(done) < len(movings)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def _check_complete(out):
    """Every visible pair folder is complete, nothing hidden is left, the tables list them."""
    done = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    for name in done:
        assert sorted(p.name for p in (out / name).iterdir()) == [
            f"{name}_aligned.png",
            "transform.json",
            "transform.tfm",
        ]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    assert sorted(r["name"] for r in _rows(out)) == done
    return done


def test_ctrl_c_lets_only_the_running_pairs_finish_then_writes_tables_and_sheet(
    many_pairs, tmp_path
):
    """Ctrl-C (SIGINT to the process group) during a 2-worker batch: no pair starts after it,
    stderr says the running pairs are finishing, the tables and the contact sheet of the
    pairs done are written, exit 130 within a pair's time."""
    fixed, movings = many_pairs
    out = tmp_path / "out"
    process = _start(fixed, movings, out, 2, plots="qc", start_new_session=True)
    _wait_for_pairs(out, 2, process)
    children = _children(process.pid)
    signalled = time.time()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    took = time.time() - signalled
    assert process.returncode == 130, stderr.decode()
    assert took < 5.0, f"{took:.1f} s from Ctrl-C to exit"
    assert "no new pair starts, waiting for the 2 running pairs to finish" in stderr.decode()
    done = _check_complete(out)
    assert 2 <= len(done) < len(movings)
    after = [n for n in done if (out / n).stat().st_mtime > signalled]
    assert len(after) <= 2, f"pairs started after Ctrl-C: {after}"  # only the running ones
    assert (out / "contact_sheet.png").is_file()
    assert {r["status"] for r in _rows(out)} == {"registered"}
    for pid in children:
        assert not _alive(pid)


@pytest.fixture(scope="module")
def slow_pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slow")
    fixed, movings = write_pairs(folder, 6, shape=(384, 432))
    return fixed, [m for m, _ in movings]


def test_a_second_ctrl_c_stops_the_running_pairs_at_once(slow_pairs, tmp_path):
    fixed, movings = slow_pairs
    out = tmp_path / "out"
    slow = ("--metric", "mi", "--transform", "affine", "--opt", "powell")  # ~2 s a pair
    process = _start(fixed, movings, out, 2, *slow, start_new_session=True)
    deadline = time.monotonic() + 30
    while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    children = _children(process.pid)
    time.sleep(0.5)  # the two workers are registering their first pairs
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    second = time.time()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    took = time.time() - second
    assert process.returncode == 130, stderr.decode()
    assert took < 2.0, f"{took:.1f} s from the second Ctrl-C to exit"
    assert len(_check_complete(out)) < 2  # the running pairs were stopped, not finished
    assert not (out / "contact_sheet.png").exists()
    for pid in children:
        assert not _alive(pid)


def test_plots_all_draws_registers_figures_in_every_folder(runner, data, tmp_path):
    _, fixed, movings = data
    out = tmp_path / "out"
    args = ["batch", str(fixed), str(movings[0][0]), str(movings[1][0]), "-o", str(out)]
    assert runner.invoke(cli, [*args, "--plots", "all", "--workers", "1"]).exit_code == 0
    for name in ("m00", "m01"):
        assert sorted(p.name for p in (out / name).iterdir()) == [
            "cost.png",
            f"{name}_aligned.png",
            "overlay.png",
            "transform.json",
            "transform.tfm",
        ]
    assert not (out / "contact_sheet.png").exists()


def test_overwrite_without_a_contact_sheet_removes_the_earlier_one(runner, data, tmp_path):
    """The tables are always this run's; after --overwrite so is every other file of OUTDIR."""
    _, fixed, movings = data
    out = tmp_path / "out"
    args = ["batch", str(fixed), str(movings[0][0]), "-o", str(out), "--workers", "1"]
    assert runner.invoke(cli, args).exit_code == 0
    assert runner.invoke(cli, [*args, "--plots", "none"]).exit_code == 0
    assert (out / "contact_sheet.png").exists()  # (only --overwrite removes an earlier output)
    assert runner.invoke(cli, [*args, "--plots", "none", "--overwrite"]).exit_code == 0
    assert not (out / "contact_sheet.png").exists()
