"""Benchmark extras: machine facts, CLI wall times, peak memory at 4096^2, profiles."""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SAMPLES = ROOT / "sample_images"


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict:
    """nproc, CPU model, load, library versions and thread settings of this run."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for package in (
        "regcli",
        "numpy",
        "scipy",
        "scikit-image",
        "SimpleITK",
        "opencv-python-headless",
        "pystackreg",
    ):
        facts[package] = _version(package)
    try:
        import SimpleITK as sitk

        facts["sitk_threads"] = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    except ImportError:
        pass
    try:
        import cv2

        facts["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        pass
    return facts


def sources() -> dict:
    from bench.cases import monomodal_base, multimodal_base

    return {"monomodal": monomodal_base()[1], "multimodal": multimodal_base()[2]}


# ------------------------------------------------------------------------------ wall times


def _regcli_command() -> list[str]:
    exe = Path(sys.executable).with_name("regcli")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("regcli")
    return [found] if found else [sys.executable, "-m", "regcli"]


def _wall(command, *, repeat: int, cwd=None, before=None) -> dict:
    """Wall time of ``command`` in a fresh process, ``repeat`` times after one warm-up run."""
    env = dict(os.environ, MPLBACKEND="Agg")
    times, last = [], None
    for i in range(repeat + 1):
        if before is not None:
            before(i)
        start = time.perf_counter()
        last = subprocess.run(
            [str(c).format(i=i) for c in command],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
        )
        elapsed = time.perf_counter() - start
        if last.returncode != 0:
            return {
                "error": f"exit {last.returncode}: {last.stderr.strip()[-300:]}",
                "command": " ".join(map(str, command)),
            }
        if i > 0:  # the first run fills the OS file cache
            times.append(elapsed)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "runs": len(times),
        "command": " ".join(map(str, command)),
    }


def startup_times(out: Path, *, repeat_help: int = 10, repeat_register: int = 10) -> dict:
    """Wall times of ``regcli --help`` and of ``regcli register BrainMRI_1 BrainMRI_4 -o DIR``
    with all its figures (``register``) and with ``--plots none`` (``register_no_plots``)."""
    regcli = _regcli_command()
    result = {"help": _wall([*regcli, "--help"], repeat=repeat_help)}
    fixed, moving = SAMPLES / "BrainMRI_1.png", SAMPLES / "BrainMRI_4.png"
    if not (fixed.exists() and moving.exists()):
        missing = {"error": "sample_images/BrainMRI_1.png or _4.png missing"}
        return {**result, "register": missing, "register_no_plots": missing}
    for key, extra in (("register", []), ("register_no_plots", ["--plots", "none"])):
        work = out / f"cli_{key}"

        def clean(i, work=work):
            target = work / f"run{i}"
            if target.exists():
                shutil.rmtree(target)
            work.mkdir(parents=True, exist_ok=True)

        result[key] = _wall(
            [*regcli, "register", fixed, moving, "-o", work / "run{i}", *extra],
            repeat=repeat_register,
            before=clean,
        )
        written = work / "run1"
        result[key]["outputs"] = (
            sorted(p.name for p in written.glob("*")) if written.exists() else []
        )
    return result


# ---------------------------------------------------------------------------- peak memory


def _peak_rss(command, *, env=None, cwd=None, tty_stderr: bool = False) -> dict:
    """Run ``command``; return its exit code, wall time, peak RSS (MiB) and output tails.

    ``tty_stderr`` gives the child a pseudo-terminal as stderr, as in an interactive shell
    (the CLI draws its progress bar only on a terminal).
    """
    master = slave = None
    stderr_target = subprocess.PIPE
    if tty_stderr:
        import fcntl
        import pty
        import struct
        import termios

        master, slave = pty.openpty()
        # A 0 x 0 terminal makes tqdm draw nothing; give it the size of a usual window.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        stderr_target = slave
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(c) for c in command],
        stdout=subprocess.PIPE,
        stderr=stderr_target,
        text=True,
        env=env,
        cwd=cwd,
    )
    chunks: list[bytes] = []
    if master is not None:
        import threading

        os.close(slave)

        def drain():
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO once the child has closed the terminal
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    if master is not None:
        reader.join(timeout=5)
        os.close(master)
        stderr = b"".join(chunks).decode(errors="replace")
    peak = None
    for line in stdout.splitlines()[::-1]:
        if line.startswith("PEAK_RSS_KIB="):
            peak = int(line.split("=", 1)[1]) / 1024.0
            break
    return {
        "returncode": process.returncode,
        "seconds": round(seconds, 2),
        "peak_rss_mib": None if peak is None else round(peak, 1),
        "stdout_tail": stdout.strip()[-400:],
        "stderr_tail": (stderr or "").strip()[-400:],
        # a tqdm bar: "<n>it [" (unknown total) or "<n>/<total> [" followed by a rate
        "progress_bar_seen": bool(re.search(r"\d+(it|/\d+) \[\d\d:\d\d", stderr or "")),
    }


# The child's own high-water mark.  VmHWM belongs to the process image started by exec;
# getrusage's ru_maxrss does not: Linux carries the parent's peak over the fork + exec, so a
# child of a big parent would report the parent's size.
_CHILD_PEAK = (
    "import atexit\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            print('PEAK_RSS_KIB=' + line.split()[1], flush=True)\n"
    "atexit.register(_peak)\n"
)


def memory_4096(out: Path, *, size: int = 4096) -> dict:
    """Peak RSS of a 4096^2 registration: Python API and CLI, each in a child process.

    The pair (10 deg + a shift, from the monomodal slice upsampled with cubic interpolation) is
    written to ``out/memory`` as float32 ``.npy`` (API) and 16-bit PNG (CLI) first, so building
    it does not count.  A child that only imports regcli gives the baseline.
    """
    from bench.cases import _upsample, make_pair, monomodal_base, truth_matrix
    from regcli.io import write_image

    work = out / "memory"
    work.mkdir(parents=True, exist_ok=True)
    scale = size / 256
    truth = truth_matrix(size, 10.0, 3.5 * scale, -2.0 * scale)
    base = _upsample(monomodal_base()[0], size)
    fixed, moving = make_pair(base, base, truth, rng=np.random.default_rng(4), noise=0.01)
    del base
    np.save(work / "fixed.npy", fixed)
    np.save(work / "moving.npy", moving)
    np.save(work / "truth.npy", truth)
    for name, image in (("fixed", fixed), ("moving", moving)):
        write_image(work / f"{name}.png", np.clip(image, 0, 1), dtype=np.uint16)
    del fixed, moving
    env = dict(os.environ, MPLBACKEND="Agg")
    baseline = _peak_rss(
        [sys.executable, "-c", _CHILD_PEAK + "\nimport numpy, scipy.ndimage, regcli.registration"],
        env=env,
    )
    api_code = _CHILD_PEAK + textwrap.dedent(
        f"""
        import json, time
        import numpy as np
        import regcli
        from regcli.transforms import mean_displacement
        work = {str(work)!r}
        fixed = np.load(work + "/fixed.npy")
        moving = np.load(work + "/moving.npy")
        truth = np.load(work + "/truth.npy")
        start = time.perf_counter()
        result = regcli.register(fixed, moving)
        seconds = time.perf_counter() - start
        # the aligned image too (made on first access), as a user who wants it would
        start = time.perf_counter()
        warped_shape = result.warped.shape
        warped_seconds = time.perf_counter() - start
        print(json.dumps({{"error_px": mean_displacement(result.matrix, truth, fixed.shape),
                          "seconds": seconds, "warped_seconds": warped_seconds,
                          "converged": bool(result.converged)}}))
        """
    )
    api = _peak_rss([sys.executable, "-c", api_code], env=env)
    try:
        api.update(json.loads(api["stdout_tail"].splitlines()[-2]))
    except (IndexError, ValueError):
        pass
    cli_out = work / "cli_out"
    if cli_out.exists():
        shutil.rmtree(cli_out)
    # The CLI run in-process under ``python -c`` with the same exit hook as the API child.
    cli_code = (
        _CHILD_PEAK
        + "\nimport sys; from regcli.cli.main import main; sys.argv = ['regcli'] + sys.argv[1:];"
        + " main()"
    )
    cli = _peak_rss(
        [
            sys.executable,
            "-c",
            cli_code,
            "register",
            work / "fixed.png",
            work / "moving.png",
            "-o",
            cli_out,
        ],
        env=env,
        tty_stderr=True,
    )
    return {"size": size, "baseline_import": baseline, "api": api, "cli": cli}


# -------------------------------------------------------------------------------- profiles


#: Stages of ``register`` reported by the profile: (label, ((file name, function), ...)).  A
#: stage's time is the summed cumulative time of the functions of its list that were called.
STAGES = (
    (
        "global initialisation",
        (("initialize.py", "initial_matrix"), ("initialize.py", "search_start")),
    ),
    ("Gaussian pyramids (both images)", (("pyramid.py", "gaussian_pyramid"),)),
    ("optimiser, all levels", (("registration.py", "_coarse_to_fine"),)),
    ("  of which metric evaluations", (("objective.py", "_evaluate"),)),
    ("quality assessment", (("quality.py", "assess"),)),
    (
        "warps, all stages (ndimage / skimage)",
        (("_interpolation.py", "affine_transform"), ("_warps.py", "warp")),
    ),
)


def _stage_times(stats: pstats.Stats, repeats: int) -> list[dict]:
    """Cumulative seconds per call of ``register`` of each of :data:`STAGES`."""
    table = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, functions in STAGES:
        found = [
            v[3]
            for (file, _, name), v in table.items()
            if any(name == fn and file.endswith(fname) for fname, fn in functions)
        ]
        if found:
            out.append({"stage": label, "seconds": sum(found) / repeats})
    return out


def profile_register(out: Path, *, sizes=(256, 1024), top: int = 18, repeats: int = 5) -> dict:
    """cProfile of ``regcli.register`` on a rigid case (20 deg + shift) at each size.

    ``repeats`` calls are profiled together (after a warm-up) and reported per call.
    """
    try:
        import regcli.registration
    except ImportError as exc:
        return {"error": str(exc)}
    import regcli
    from bench.cases import build_cases

    result = {}
    for size in sizes:
        case = next(c for c in build_cases((size,), kinds={"rigid"}) if c.angle_deg == -20)
        regcli.register(case.fixed, case.moving)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            regcli.register(case.fixed, case.moving)
        wall = (time.perf_counter() - start) / repeats
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(repeats):
            regcli.register(case.fixed, case.moving)
        profiler.disable()
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        (out / f"profile_{size}.txt").write_text(stream.getvalue())
        table = stats.stats  # type: ignore[attr-defined]
        total = sum(v[2] for v in table.values())
        rows = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
        result[str(size)] = {
            "case": case.name,
            "wall_s": wall,
            "profiled_s": total / repeats,
            "stages": _stage_times(stats, repeats),
            "top_tottime": [
                {
                    "function": name if file == "~" else f"{Path(file).name}:{line}({name})",
                    "calls": calls / repeats,
                    "tottime_s": round(tottime / repeats, 5),
                    "percent": round(100.0 * tottime / total, 1),
                }
                for (file, line, name), (_, calls, tottime, _, _) in rows
            ],
        }
    return result
