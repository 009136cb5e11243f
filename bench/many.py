"""Many images: ``regcli batch`` against a shell loop of ``regcli register``, ``regcli stack``
against pystackreg, and the peak memory of a 2000-frame stack.

Everything runs in a temporary folder under the results folder, removed at the end (the big
stack is 1 GB).  Wall times are of fresh ``regcli`` processes (imports included), measured in
the same run; where a step is repeated the median is kept.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.cases import _upsample, monomodal_base, truth_matrix
from bench.extras import _CHILD_PEAK, _peak_rss, _regcli_command

ENV = dict(os.environ, MPLBACKEND="Agg")


def _wall(command, cwd=None, cpu: list | None = None) -> float:
    """Wall time of ``command``; its CPU time (user + sys, its pool workers included) is
    appended to ``cpu``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(c) for c in command], cwd=cwd, env=ENV, check=False, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall


def _rows(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / "results.jsonl").read_text().splitlines()]


def _errors(matrices, truths, shape) -> dict:
    from regcli.transforms import mean_displacement

    errors = [mean_displacement(m, t, shape) for m, t in zip(matrices, truths, strict=True)]
    return {"max_px": max(errors), "median_px": statistics.median(errors)}


# --------------------------------------------------------------------------- (a) batch


def _write_pairs(work: Path, count: int, seed: int) -> list[np.ndarray]:
    from regcli.io import write_image
    from regcli.resample import warp

    rng = np.random.default_rng(seed)
    base = monomodal_base()[0]
    write_image(
        work / "fixed.png",
        np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1) * 255,
        dtype=np.uint8,
    )
    truths = []
    for k in range(count):
        truth = truth_matrix(256, rng.uniform(-20, 20), rng.uniform(-10, 10), rng.uniform(-10, 10))
        moving = warp(base, np.linalg.inv(truth), order=3) + rng.normal(0, 0.02, base.shape)
        write_image(work / f"m{k:02d}.png", np.clip(moving, 0, 1) * 255, dtype=np.uint8)
        truths.append(truth)
    return truths


def _stages(work: Path, count: int) -> dict:
    """Median time of each step of one pair in one process (where the per-pair time goes)."""
    import tempfile as tmp

    from regcli.cli.register import aligned_for_output
    from regcli.io import read_image, write_image, write_transform_json
    from regcli.registration import register

    times: dict[str, list[float]] = {}

    def timed(name, function, *args, **kwargs):
        start = time.perf_counter()
        value = function(*args, **kwargs)
        times.setdefault(name, []).append(time.perf_counter() - start)
        return value

    scratch = Path(tmp.mkdtemp(dir=work))
    for k in range(count):
        fixed = timed("read fixed", read_image, work / "fixed.png")
        moving = timed("read moving", read_image, work / f"m{k:02d}.png")
        result = timed("register()", register, fixed, moving)
        warped = timed("warped (cubic)", lambda r=result: r.warped)
        aligned = timed("clip + dtype", aligned_for_output, warped, moving)
        folder = timed("staging folder", tmp.mkdtemp, dir=scratch)
        timed("write aligned PNG", write_image, Path(folder) / "a.png", aligned)
        timed("transform.json", write_transform_json, Path(folder) / "t.json", result.matrix)
    shutil.rmtree(scratch)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def batch_vs_loop(work: Path, *, count: int = 50, repeat: int = 3, seed: int = 0) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    truths = _write_pairs(work, count, seed)
    regcli = _regcli_command()
    movings = [f"m{k:02d}.png" for k in range(count)]
    shell = " ".join(shlex.quote(str(c)) for c in regcli)
    loop = f'for f in m*.png; do {shell} register fixed.png "$f" -o "reg_${{f%.png}}" -q; done'
    walls: dict[str, list[float]] = {"w1": [], "w2": [], "w1_one_pair": [], "w2_qc": []}
    cpu: dict[str, list[float]] = {key: [] for key in walls}
    loads = [os.getloadavg()[0]]
    seconds = {}
    for r in range(repeat):  # interleaved, so background load hits every variant alike
        for key, extra, pairs in (
            ("w1", ["--workers", "1"], movings),
            ("w2", ["--workers", "2"], movings),
            ("w1_one_pair", ["--workers", "1"], movings[:1]),
            ("w2_qc", ["--workers", "2", "--plots", "qc"], movings),
        ):
            out = work / f"out_{key}_{r}"
            plots = [] if "--plots" in extra else ["--plots", "none"]
            command = [*regcli, "batch", "fixed.png", *pairs, "-o", out.name, "-q", *plots, *extra]
            walls[key].append(_wall(command, cwd=work, cpu=cpu[key]))
            rows = _rows(out)
            seconds[key] = sum(row["seconds"] for row in rows)
            if key == "w1" and r == 0:
                matrices_w1 = [row["matrix"] for row in rows]
            if key == "w2" and r == 0:
                matrices_w2 = [row["matrix"] for row in rows]
    loads.append(os.getloadavg()[0])
    loop_wall = _wall(["bash", "-c", loop], cwd=work)
    median = {key: statistics.median(values) for key, values in walls.items()}
    marginal = (median["w1"] - seconds["w1"]) - (median["w1_one_pair"] - seconds["w1_one_pair"])
    return {
        "pairs": count,
        "loop_seconds": loop_wall,
        "batch_seconds": median,
        "batch_runs": walls,
        "batch_cpu_seconds": {key: statistics.median(values) for key, values in cpu.items()},
        "load_average_before_after": loads,
        "register_seconds_sum": seconds["w1"],
        "loop_over_batch_w1": loop_wall / median["w1"],
        "loop_over_batch_w2": loop_wall / median["w2"],
        "w1_over_w2": median["w1"] / median["w2"],
        "overhead_ms_per_pair": 1000 * marginal / (count - 1),
        "w1_equals_w2": bool(np.allclose(matrices_w1, matrices_w2, rtol=0, atol=1e-9)),
        "errors": _errors(np.array(matrices_w1), truths, (256, 256)),
        "stages_ms": _stages(work, count),
    }


# --------------------------------------------------------------------------- (b) stack


def _drift(frames: int, size: int, seed: int, *, step_px=0.7, step_deg=0.1):
    """Random-walk rigid truths (frame 0 -> frame t) and a generator of uint16 frames."""
    from regcli.resample import warp

    rng = np.random.default_rng(seed)
    base = _upsample(monomodal_base()[0], size)
    truths, params = [], np.zeros(3)
    for t in range(frames):
        if t:
            params = params + rng.normal(0, [step_deg, step_px, step_px])
        truths.append(truth_matrix(size, *params))

    def generate(order=3):
        noise = np.random.default_rng(seed + 1)
        for truth in truths:
            frame = warp(base, np.linalg.inv(truth), order=order)
            frame += noise.normal(0, 0.01, frame.shape)
            yield np.clip(frame * 60000, 0, 65535).astype(np.uint16)

    return np.array(truths), generate


def stack_vs_stackreg(work: Path, *, frames: int = 100, size: int = 512, seed: int = 1) -> dict:
    import tifffile
    from pystackreg import StackReg

    from regcli.stack import register_stack
    from regcli.stackio import read_transforms_csv

    work.mkdir(parents=True, exist_ok=True)
    truths, generate = _drift(frames, size, seed)
    stack = np.array(list(generate()))
    tifffile.imwrite(work / "drift.tif", stack, imagej=True, metadata={"axes": "TYX"})
    out: dict = {"frames": frames, "size": size}
    for reference in ("first", "previous"):
        target = work / f"stack_{reference}"
        command = [*_regcli_command(), "stack", "drift.tif", "-o", target.name, "-q"]
        wall = _wall([*command, "--reference", reference], cwd=work)
        matrices = read_transforms_csv(target / "transforms.csv")
        start = time.perf_counter()
        api = register_stack(stack, reference=reference)
        api_seconds = time.perf_counter() - start
        reg = StackReg(StackReg.RIGID_BODY)
        floats = stack.astype(np.float64)
        start = time.perf_counter()
        reg.register_transform_stack(floats, reference=reference)
        stackreg_seconds = time.perf_counter() - start
        out[reference] = {
            "cli_seconds": wall,
            "cli_errors": _errors(matrices, truths, (size, size)),
            "api_register_seconds": api_seconds,
            "api_errors": _errors(api.matrices, truths, (size, size)),
            "searched_frames": int(sum(f.searched for f in api.frames)),
            "stackreg_seconds": stackreg_seconds,
            "stackreg_errors": _errors(reg._tmats, truths, (size, size)),
            "cli_over_stackreg": wall / stackreg_seconds,
        }
    return out


# --------------------------------------------------------------------------- (c) memory


def big_stack_memory(work: Path, *, frames: int = 2000, size: int = 512, seed: int = 2) -> dict:
    """Peak RSS (the child's VmHWM) of ``regcli stack`` on a uint16 stack written page by
    page (frames * size^2 * 2 bytes on disk)."""
    import tifffile

    from regcli.stackio import read_transforms_csv

    work.mkdir(parents=True, exist_ok=True)
    truths, generate = _drift(frames, size, seed, step_px=0.3, step_deg=0.03)
    path = work / "big.tif"
    start = time.perf_counter()
    with tifffile.TiffWriter(path, imagej=True) as writer:
        writer.write(
            generate(order=1), shape=(frames, size, size), dtype=np.uint16, metadata={"axes": "TYX"}
        )
    made = time.perf_counter() - start
    cli = _CHILD_PEAK + (
        "\nimport sys; from regcli.cli.main import main;"
        " sys.argv = ['regcli'] + sys.argv[1:]; main()"
    )
    imports = "import regcli.cli.main, regcli.cli.stack, regcli.registration, regcli.qc, tifffile"
    baseline = _peak_rss([sys.executable, "-c", f"{_CHILD_PEAK}\n{imports}"], env=ENV)
    result = {
        "frames": frames,
        "size": size,
        "bytes_on_disk": path.stat().st_size,
        "generate_seconds": made,
    }
    for reference in ("previous",):
        target = work / f"big_{reference}"
        run = _peak_rss(
            [
                sys.executable,
                "-c",
                cli,
                "stack",
                path,
                "-o",
                target,
                "--reference",
                reference,
                "-q",
            ],
            env=ENV,
        )
        matrices = read_transforms_csv(target / "transforms.csv")
        result[reference] = {
            "returncode": run["returncode"],
            "seconds": run["seconds"],
            "peak_rss_mib": run["peak_rss_mib"],
            "errors": _errors(matrices, truths, (size, size)),
            "stderr_tail": run["stderr_tail"],
        }
    result["import_only_peak_rss_mib"] = baseline["peak_rss_mib"]
    return result


# --------------------------------------------------------------------------- all


def run_many(out: Path, *, quick: bool = False, log=print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="many-", dir=out))
    try:
        result = {
            "batch": batch_vs_loop(
                work / "batch", count=10 if quick else 50, repeat=1 if quick else 3
            )
        }
        log(json.dumps(result["batch"], indent=1, default=str))
        result["stack"] = stack_vs_stackreg(work / "stack", frames=20 if quick else 100)
        log(json.dumps(result["stack"], indent=1, default=str))
        result["memory"] = big_stack_memory(work / "big", frames=100 if quick else 2000)
        log(json.dumps(result["memory"], indent=1, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out / "many.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "many.md").write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    b, s, m = result["batch"], result["stack"], result["memory"]
    lines = [
        f"**Batch** ({b['pairs']} pairs of 256^2, wall of fresh processes, batch median of "
        f"{len(b['batch_runs']['w1'])}):",
        "",
        "| run | wall [s] | vs shell loop |",
        "|---|---|---|",
        f"| shell loop of `regcli register` | {b['loop_seconds']:.1f} | 1x |",
        f"| `regcli batch --plots none --workers 1` | {b['batch_seconds']['w1']:.2f} | "
        f"1/{b['loop_over_batch_w1']:.0f} |",
        f"| `regcli batch --plots none --workers 2` | {b['batch_seconds']['w2']:.2f} | "
        f"1/{b['loop_over_batch_w2']:.0f} |",
        f"| `regcli batch --plots qc --workers 2` | {b['batch_seconds']['w2_qc']:.2f} | |",
        "",
        f"register() itself: {b['register_seconds_sum']:.2f} s for {b['pairs']} pairs; overhead "
        f"per pair beyond it (marginal, workers 1): {b['overhead_ms_per_pair']:.1f} ms; workers 2 "
        f"is {b['w1_over_w2']:.2f}x workers 1; matrices equal (1e-9): {b['w1_equals_w2']}; "
        f"error max {b['errors']['max_px']:.3f} px. CPU time (user + sys, pool workers "
        f"included): workers 1 {b['batch_cpu_seconds']['w1']:.2f} s, workers 2 "
        f"{b['batch_cpu_seconds']['w2']:.2f} s; load average "
        f"{' -> '.join(f'{x:.1f}' for x in b['load_average_before_after'])} on 2 CPUs.",
        "",
        "Per pair in one process (median ms): "
        + ", ".join(f"{k} {v:.1f}" for k, v in b["stages_ms"].items())
        + ".",
        "",
        f"**Stack** ({s['frames']} frames of {s['size']}^2):",
        "",
        "| reference | regcli stack (CLI) [s] | error max / median [px] | register_stack (API) [s] "
        "| pystackreg [s] | error max / median [px] | CLI / pystackreg |",
        "|---|---|---|---|---|---|---|",
    ]
    for reference in ("first", "previous"):
        r = s[reference]
        lines.append(
            f"| {reference} | {r['cli_seconds']:.2f} | {r['cli_errors']['max_px']:.3f} / "
            f"{r['cli_errors']['median_px']:.3f} | {r['api_register_seconds']:.2f} | "
            f"{r['stackreg_seconds']:.2f} | {r['stackreg_errors']['max_px']:.3f} / "
            f"{r['stackreg_errors']['median_px']:.3f} | {r['cli_over_stackreg']:.2f} |"
        )
    p = m["previous"]
    lines += [
        "",
        f"**Memory**: {m['frames']} frames of {m['size']}^2 uint16 "
        f"({m['bytes_on_disk'] / 2**30:.2f} GiB on disk), `regcli stack --reference previous`: "
        f"peak RSS {p['peak_rss_mib']} MiB (importing alone: {m['import_only_peak_rss_mib']} MiB), "
        f"{p['seconds']:.0f} s, error max {p['errors']['max_px']:.3f} px, exit {p['returncode']}.",
        "",
    ]
    return "\n".join(lines)
