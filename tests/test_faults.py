"""Every writing command under every fault: a table of commands x fault classes.

Each case checks the same promise: no traceback; the documented exit code (1 error, 2 usage
error, 128 + n for signal n); one ``Error:`` line naming the file or option (or one
"interrupted" line); no output, staging folder, lock or temporary file left behind; the
inputs byte-identical; and an existing output unchanged unless the run completed.

Signals are sent to real subprocesses; ``REGCLI_TEST_PAUSE=PHASE:FILE`` makes the run wait at
a known phase (after reading the first input, before the computation, after every output is
staged and before any is renamed into place).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import default_signals, regcli_executable, smooth_blobs

from regcli.cli.main import cli
from regcli.io import write_image, write_transform_json

# --------------------------------------------------------------------------- the commands

#: command -> (arguments with {f}, {m}, {t} for the inputs and {o} for the output folder,
#:             the outputs it writes, relative to {o}).
COMMANDS = {
    "register": (
        ["-q", "register", "{f}", "{m}", "-o", "{o}", "--transform", "translation"],
        ["m_aligned.png", "cost.png", "overlay.png", "transform.json", "transform.tfm"],
    ),
    "translate": (
        ["translate", "{m}", "--dx", "1.5", "-o", "{o}/t.png", "--save-transform", "{o}/t.json"],
        ["t.png", "t.json"],
    ),
    "rotate": (
        ["rotate", "{m}", "--angle", "5", "-o", "{o}/r.tif", "--save-transform", "{o}/r.json"],
        ["r.tif", "r.json"],
    ),
    "apply": (["apply", "{m}", "{t}", "-o", "{o}/a.png"], ["a.png"]),
    "jointhist": (
        ["jointhist", "{f}", "{m}", "-o", "{o}/h.png", "--npy", "{o}/h.npy"],
        ["h.png", "h.npy"],
    ),
    "compare": (
        ["-q", "compare", "{f}", "{m}", "--opts", "gd", "--iters", "3", "-o", "{o}/c.png"],
        ["c.png"],
    ),
    "profile": (
        ["profile", "{f}", "{m}", "--range", "-2:2:1", "-o", "{o}/p.png"],
        ["p.png"],
    ),
}
READS_ONLY = {"similarity": ["similarity", "{f}", "{m}"]}
HIDDEN = (".regcli-",)  # the prefix of every lock, staging folder and temporary file


@pytest.fixture
def work(tmp_path) -> Path:
    """inputs/ (a fixed and a moving image, a transform) and an empty out/."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    fixed = smooth_blobs((40, 44), seed=1)
    write_image(inputs / "f.png", np.rint(fixed * 255).astype(np.uint8))
    moving = np.roll(fixed, (2, -1), axis=(0, 1))
    write_image(inputs / "m.png", np.rint(moving * 255).astype(np.uint8))
    write_transform_json(inputs / "t.json", np.eye(3), fixed_shape=(40, 44))
    (tmp_path / "out").mkdir()
    return tmp_path


def argv(template, work: Path, out: Path | None = None) -> list[str]:
    out = work / "out" if out is None else out
    values = {
        "{f}": str(work / "inputs" / "f.png"),
        "{m}": str(work / "inputs" / "m.png"),
        "{t}": str(work / "inputs" / "t.json"),
        "{o}": str(out),
    }
    result = []
    for item in template:
        for key, value in values.items():
            item = item.replace(key, value)
        result.append(item)
    return result


def tree(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) -> md5 of its bytes (None: a folder or a
    link)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink() or path.is_dir():
            found[key] = None
        else:
            found[key] = hashlib.md5(path.read_bytes()).hexdigest()
    return found


def assert_clean(work: Path, before: dict) -> None:
    """Nothing written, nothing hidden left behind, inputs and old outputs unchanged."""
    after = tree(work)
    leftovers = [k for k in after if any(part.startswith(HIDDEN) for part in Path(k).parts)]
    assert leftovers == []
    assert after == before


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# --------------------------------------------------------------------------- signals


def _spawn(args, *, env_extra=None, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg", **(env_extra or {}))
    return subprocess.Popen(
        [*regcli_executable(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        preexec_fn=default_signals,
    )


def _wait_for(path: Path, proc, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the pause: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the run never reached the pause")
        time.sleep(0.02)


SIGNAL_CASES = [
    (command, phase, sig)
    for command in [*COMMANDS, *READS_ONLY]
    for phase in ("read", "work", "write")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    if not (command in READS_ONLY and phase == "write")
    # every signal at every phase for two commands; one signal per phase for the others
    if command in ("register", "translate")
    or (phase, sig)
    in {
        ("read", signal.SIGHUP),
        ("work", signal.SIGTERM),
        ("write", signal.SIGINT),
    }
]


@pytest.mark.parametrize(
    ("command", "phase", "sig"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}-{case[2].name}") for case in SIGNAL_CASES],
)
def test_a_signal_at_any_phase_leaves_nothing_and_exits_128_plus_n(work, command, phase, sig):
    template = COMMANDS[command][0] if command in COMMANDS else READS_ONLY[command]
    marker = work / "paused"
    before = tree(work)
    proc = _spawn(argv(template, work), env_extra={"REGCLI_TEST_PAUSE": f"{phase}:{marker}"})
    _wait_for(marker, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    marker.unlink()
    assert proc.returncode == 128 + sig, stderr
    assert stderr.strip().splitlines()[-1] == f"regcli: interrupted by {sig.name}"
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    assert_clean(work, before)


def test_interrupted_register_leaves_no_folder_and_a_rerun_needs_no_overwrite(work):
    out = work / "fresh" / "out"
    template, names = COMMANDS["register"]
    marker = work / "paused"
    before = tree(work)
    proc = _spawn(argv(template, work, out), env_extra={"REGCLI_TEST_PAUSE": f"write:{marker}"})
    _wait_for(marker, proc)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == []
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    marker.unlink()
    assert proc.returncode == 143
    assert_clean(work, before)  # not even the folders it created
    rerun = subprocess.run(
        [*regcli_executable(), *argv(template, work, out)], capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(names)


@pytest.mark.parametrize("delay", [0.6, 1.0, 1.4])
def test_sigterm_at_a_random_moment_gives_all_outputs_or_none(tmp_path, delay):
    """No pause hook: whatever the run was doing, the folder holds every output or none."""
    fixed = smooth_blobs((192, 200), seed=3)
    write_image(tmp_path / "f.npy", fixed)
    write_image(tmp_path / "m.npy", np.roll(fixed, (3, 5), axis=(0, 1)))
    out = tmp_path / "out"
    args = ["register", "f.npy", "m.npy", "-o", "out", "--opt", "gd", "--iters", "400", "-q"]
    args += ["--allow-unconverged", "--init", "none"]
    proc = _spawn(args, cwd=tmp_path)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stderr
    # -15: the signal came while Python was still starting, before regcli's handler existed
    # (the default action ends the process; nothing can have been written yet).
    assert proc.returncode in (0, 143, -signal.SIGTERM), stderr
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    every = ["cost.png", "m_aligned.npy", "overlay.png", "transform.json", "transform.tfm"]
    if proc.returncode == 0:
        assert written == every
    else:  # a signal after the outputs were renamed into place (while the report is printed,
        # or -15 while Python shuts down) finds them complete; before that, none is there
        assert written in ([], every)


# --------------------------------------------------------------------------- full disk


class _FullDisk:
    """Writers whose ``fail_at``-th output (0 = the first) hits a full disk after writing part
    of the file, as a short write does."""

    def __init__(self, fail_at: int):
        self.fail_at = fail_at
        self.count = 0

    @contextlib.contextmanager
    def __call__(self, path, **kwargs):
        import regcli.io

        number = self.count
        self.count += 1
        with self.original(path, **kwargs) as tmp:
            yield tmp
            if number == self.fail_at or (self.fail_at < 0 and number == self.total - 1):
                with open(tmp, "ab") as handle:
                    handle.write(b"partial")
                raise regcli.io._named_os_error(OSError(errno.ENOSPC, "No space left"), Path(path))


@pytest.mark.parametrize("fail_at", ["first", "last"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "replacing"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_full_disk_leaves_nothing_and_names_the_file(
    runner, work, monkeypatch, command, fail_at, overwrite
):
    import regcli.io
    import regcli.plots

    template, names = COMMANDS[command]
    out = work / "out"
    args = argv(template, work)
    if overwrite:  # existing outputs that a failed run must leave as they were
        for name in names:
            (out / name).write_bytes(b"old output " + name.encode())
        (out / names[0]).chmod(0o600)
        args.append("--overwrite")
    before = tree(work)
    fake = _FullDisk(0 if fail_at == "first" else -1)
    fake.original, fake.total = regcli.io.atomic_output, len(names)
    monkeypatch.setattr(regcli.io, "atomic_output", fake)
    monkeypatch.setattr(regcli.plots, "atomic_output", fake)
    result = runner.invoke(cli, args)
    assert result.exit_code == 1, result.output
    line = one_error_line(result.stderr)
    assert line.startswith("Error: No space left on device: ")
    assert str(out) in line and ".regcli-" not in line
    assert_clean(work, before)
    if overwrite:
        assert ((out / names[0]).stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_disk_too_full_for_the_lock_file_names_the_output(runner, work, monkeypatch, command):
    """With no byte free the lock file is created but writing the process id into it fails
    (a write names no file): the error names the output, not nothing."""
    real_fdopen = os.fdopen

    def full_disk_for_locks(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        if ".regcli-lock-" in os.readlink(f"/proc/self/fd/{fd}"):

            def write(text):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            handle.write = write
        return handle

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell a lock file's descriptor")
    template, _ = COMMANDS[command]
    before = tree(work)
    monkeypatch.setattr(os, "fdopen", full_disk_for_locks)
    result = runner.invoke(cli, argv(template, work))
    assert result.exit_code == 1, result.output
    line = one_error_line(result.stderr)
    assert line.startswith(f"Error: No space left on device: {work / 'out'}/"), line
    assert "(the disk is full; nothing was written)" in line and ".regcli-" not in line
    assert_clean(work, before)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_staging_folders_are_private_only_while_their_run_lasts(runner, work, command):
    """The output set's staging folder is written in place (regcli._atomic) while the
    command runs, and no folder stays marked after it, finished or failed."""
    import regcli._atomic as atomic

    template, _ = COMMANDS[command]
    seen = []
    original = atomic.atomic_output

    @contextlib.contextmanager
    def spy(path, **kwargs):
        seen.append(os.path.abspath(Path(path).parent) in atomic._PRIVATE)
        with original(path, **kwargs) as target:
            yield target

    with pytest.MonkeyPatch.context() as patch:
        import regcli.io
        import regcli.plots

        patch.setattr(regcli.io, "atomic_output", spy)
        patch.setattr(regcli.plots, "atomic_output", spy)
        result = runner.invoke(cli, argv(template, work))
    assert result.exit_code == 0, result.output
    assert seen and all(seen)
    assert atomic._PRIVATE == set()
    failed = runner.invoke(cli, argv(template, work))  # outputs exist: fails without writing
    assert failed.exit_code != 0
    assert atomic._PRIVATE == set()


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, "96k"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount permission)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("command", ["translate", "register"])
def test_a_real_full_disk(run_regcli, work, small_disk, command):
    big = smooth_blobs((128, 160), seed=4)  # float64 .npy: 160 KB, more than the disk holds
    write_image(work / "inputs" / "m.npy", big)
    write_image(work / "inputs" / "f.npy", big)
    if command == "translate":
        args = ["translate", "inputs/m.npy", "--dx", "1", "-o", f"{small_disk}/big.npy"]
        expected = f"No space left on device: {small_disk}/big.npy"
    else:
        args = ["register", "inputs/f.npy", "inputs/m.npy", "-o", f"{small_disk}/reg", "-q"]
        expected = f"No space left on device: {small_disk}/reg/"
    before = tree(work)
    proc = run_regcli(*args, cwd=work)
    assert proc.returncode == 1
    assert expected in one_error_line(proc.stderr)
    assert_clean(work, before)
    assert list(small_disk.iterdir()) == []


@pytest.mark.parametrize("where", ["writing", "staging"])
def test_a_batch_pair_on_a_full_disk_names_its_own_folder(runner, work, monkeypatch, where):
    """The pair's error row names the file in the pair's folder (its hidden staging folder is
    gone by then) and says the disk is full, as register does; nothing of the pair is left."""
    import regcli.io
    from regcli.cli import _batch_folder

    out = work / "out" / "b"
    if where == "writing":  # the pair's first file hits the full disk
        fake = _FullDisk(0)
        fake.original, fake.total = regcli.io.atomic_output, 1
        monkeypatch.setattr(regcli.io, "atomic_output", fake)
        expected = f"No space left on device: {out}/m/m_aligned.png (the disk is full;"
    else:  # not even the staging folder can be made

        def full(outdir, name):
            path = outdir / f".staging-{name}-x1y2z3"  # (batch's own prefix)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        monkeypatch.setattr(_batch_folder, "staging_folder", full)
        expected = f"No space left on device: {out}/m (the disk is full;"
    args = argv(["-q", "batch", "{f}", "{m}", "--workers", "1", "--plots", "none"], work)
    result = runner.invoke(cli, [*args, "-o", str(out)])
    assert result.exit_code == 1, result.output
    row = json.loads((out / "results.jsonl").read_text())
    assert row["error"].startswith(expected) and ".staging-" not in row["error"]
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "results.jsonl"]


# --------------------------------------------------------------------------- two runs at once


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_second_run_into_the_same_outputs_fails_at_once(runner, work, command):
    template, names = COMMANDS[command]
    marker = work / "paused"
    first = _spawn(argv(template, work), env_extra={"REGCLI_TEST_PAUSE": f"work:{marker}"})
    try:
        _wait_for(marker, first)
        before = tree(work / "inputs")
        second = runner.invoke(cli, argv(template, work))
        assert second.exit_code == 1, second.output
        line = one_error_line(second.stderr)
        assert f"another regcli run is writing into {work / 'out'}" in line
        assert f"process {first.pid}" in line
        assert tree(work / "inputs") == before
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 143
    rerun = runner.invoke(cli, argv(template, work))  # no --overwrite needed
    assert rerun.exit_code == 0, rerun.output
    assert sorted(p.name for p in (work / "out").iterdir()) == sorted(names)


def test_a_lock_left_by_a_killed_run_is_stale(runner, work):
    template, names = COMMANDS["translate"]
    marker = work / "paused"
    first = _spawn(argv(template, work), env_extra={"REGCLI_TEST_PAUSE": f"write:{marker}"})
    _wait_for(marker, first)
    first.kill()  # SIGKILL: no clean-up at all
    first.communicate(timeout=60)
    assert any(p.name.startswith(".regcli-") for p in (work / "out").iterdir())
    result = runner.invoke(cli, argv(template, work))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (work / "out").iterdir()) == sorted(names)


# --------------------------------------------------------------------------- unwritable paths


def _no_reading(monkeypatch):
    """Fail the test if a command reads an input: output problems must be found first."""
    import regcli.io

    def refuse(*args, **kwargs):
        raise AssertionError("an input was read before the outputs were checked")

    monkeypatch.setattr(regcli.io, "read_image", refuse)
    monkeypatch.setattr(regcli.io, "read_transform_json", refuse)


UNWRITABLE = {
    "under /proc": ("/proc/regcli-test", "/proc"),
    "under a file": ("{w}/inputs/f.png/sub", "f.png is not a folder"),
    "missing folder": ("{w}/nope/deeper", "does not exist"),
}


@pytest.mark.parametrize("place", list(UNWRITABLE))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_outputs_fail_before_any_work(runner, work, monkeypatch, command, place):
    template, _ = COMMANDS[command]
    folder, message = UNWRITABLE[place]
    folder = folder.replace("{w}", str(work))
    if command == "register" and place == "missing folder":
        pytest.skip("register creates its output folder")
    _no_reading(monkeypatch)
    before = tree(work)
    result = runner.invoke(cli, argv(template, work, Path(folder)))
    assert result.exit_code == 1, result.output
    line = one_error_line(result.stderr)
    assert folder in line and message in line
    assert_clean(work, before)


# --------------------------------------------------------------------------- symlinks, existing


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_dangling_symlink_is_an_existing_output(runner, work, command):
    template, names = COMMANDS[command]
    (work / "out" / names[-1]).symlink_to(work / "nowhere")
    before = tree(work)
    result = runner.invoke(cli, argv(template, work))
    assert result.exit_code == 1
    assert "already exists" in one_error_line(result.stderr)
    assert_clean(work, before)
    assert os.readlink(work / "out" / names[-1]) == str(work / "nowhere")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_output_linked_to_an_input_is_refused_even_with_overwrite(runner, work, command):
    template, names = COMMANDS[command]
    (work / "out" / names[0]).symlink_to(work / "inputs" / "m.png")
    before = tree(work)
    result = runner.invoke(cli, [*argv(template, work), "--overwrite"])
    assert result.exit_code == 1
    assert "refusing to overwrite the input file" in one_error_line(result.stderr)
    assert_clean(work, before)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_existing_outputs_are_kept_without_overwrite_and_replaced_keeping_modes(
    runner, work, command
):
    template, names = COMMANDS[command]
    for name in names:
        (work / "out" / name).write_bytes(b"old")
    (work / "out" / names[0]).chmod(0o600)
    before = tree(work)
    refused = runner.invoke(cli, argv(template, work))
    assert refused.exit_code == 1 and "already exists" in one_error_line(refused.stderr)
    assert_clean(work, before)
    replaced = runner.invoke(cli, [*argv(template, work), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    for name in names:
        assert (work / "out" / name).read_bytes() != b"old"
    assert (work / "out" / names[0]).stat().st_mode & 0o777 == 0o600
    assert not any(p.name.startswith(".") for p in (work / "out").iterdir())


# --------------------------------------------------------------------------- bugs


@pytest.mark.parametrize("command", [*COMMANDS, *READS_ONLY])
def test_an_unexpected_exception_is_one_error_line_and_leaves_nothing(
    runner, work, monkeypatch, command
):
    import regcli.io

    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(regcli.io, "check_same_shape", broken)  # every pair reader
    # register and profile take two shapes: the bug is in what they look at first
    monkeypatch.setattr("regcli.registration.valid_pixels", broken)
    monkeypatch.setattr("regcli.masks.valid_pixels", broken)
    monkeypatch.setattr("regcli.resample.warp", broken)  # translate, rotate, apply
    template = COMMANDS[command][0] if command in COMMANDS else READS_ONLY[command]
    before = tree(work)
    result = runner.invoke(cli, argv(template, work))
    assert result.exit_code == 1, result.output
    line = one_error_line(result.stderr)
    assert line.startswith("Error: unexpected RuntimeError: a bug over two lines")
    assert "-v" in line
    assert_clean(work, before)
    verbose = runner.invoke(cli, ["-vv", *argv(template, work)])  # -q in some templates
    assert "Traceback" in verbose.stderr and verbose.exit_code == 1


def test_without_the_pause_variable_the_hook_does_nothing(monkeypatch):
    from regcli.cli import interrupts

    monkeypatch.delenv("REGCLI_TEST_PAUSE", raising=False)
    started = time.perf_counter()
    for phase in ("read", "work", "write"):
        interrupts.pause(phase)
    assert time.perf_counter() - started < 0.01


def test_subprocess_python_is_this_one():
    assert Path(regcli_executable()[0]).parent == Path(sys.executable).parent
