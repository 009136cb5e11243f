"""Run the regcli benchmark: every case, every method, in one process; then the extras.

Usage (from the repository root)::

    python bench/run.py                 # everything, updates bench/README.md (a few minutes)
    python bench/run.py --quick         # a subset at 256^2 only, README untouched
    python bench/run.py --parts cases --methods regcli,ecc --sizes 256

Parts: ``cases`` (the registration table and plot), ``startup`` (``regcli --help`` and
``regcli register`` wall times), ``memory`` (peak RSS of a 4096^2 registration in a child
process), ``profile`` (cProfile of ``regcli.register`` at 256^2 and 1024^2), ``many`` (batch
against a shell loop, stack against pystackreg, a 2000-frame stack's peak memory;
``bench/many.py``, written to ``results/many.md``), ``trust`` (is every result reported as
trustworthy really aligned? the benchmark's cases, the sample pairs and cases built to fail,
:mod:`bench.trust`), ``calibration`` (the corpus the quality thresholds were set on: random
poses of scikit-image's pictures, unrelated pairs), ``precision`` (``skimage.data.camera()``
moved by Fourier shifts, without and with noise, every method and regcli's translation mode:
:mod:`bench.precision`).
Results go to ``bench/results/`` (git-ignored); the summary plot is copied to
``bench/summary.png`` and the tables into ``bench/README.md`` on a full run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import extras, many, precision, report, trust  # noqa: E402
from bench.adapters import ADAPTERS, EXTRA_ADAPTERS  # noqa: E402
from bench.cases import build_cases  # noqa: E402
from regcli.transforms import mean_displacement  # noqa: E402

SOLVED_PX = 0.5
PARTS = ("cases", "precision", "startup", "memory", "profile", "many", "trust", "calibration")


def available_methods(names) -> list[str]:
    """Methods whose library imports; the others are reported and skipped."""
    import importlib

    needs = {"regcli": "regcli.registration", "sitk": "SimpleITK", "ecc": "cv2"}
    needs["stackreg"] = "pystackreg"
    out = []
    for name in names:
        try:
            importlib.import_module(needs[name])
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        out.append(name)
    return out


def run_one(method: str, case, *, budget: float = 1.0, max_repeats: int = 3) -> dict:
    """Register one case with one method; time only the registration call.

    The call is repeated (up to ``max_repeats`` times, while the calls so far took less than
    ``budget`` seconds) and the fastest time is kept: on a shared machine the minimum is the
    best estimate of the method's own cost.  The error is the first call's (all methods are
    deterministic).
    """
    adapter = ADAPTERS[method] if method in ADAPTERS else EXTRA_ADAPTERS[method]
    prepared = adapter.prepare(case.fixed, case.moving)
    error, note, times = math.inf, "", []
    while len(times) < max_repeats and (not times or sum(times) < budget):
        start = time.perf_counter()
        try:
            matrix = adapter.run(prepared, metric=case.metric)
        except Exception as exc:  # a failing anchor is a result, not a crash of the benchmark
            times.append(time.perf_counter() - start)
            note = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:120]}"
            break
        times.append(time.perf_counter() - start)
        if len(times) == 1:
            if np.all(np.isfinite(matrix)):
                error = mean_displacement(matrix, case.truth, case.fixed.shape)
            else:
                note = "non-finite matrix"
    return {
        "case": case.name,
        "kind": case.kind,
        "size": case.size,
        "angle_deg": case.angle_deg,
        "tx": case.tx,
        "ty": case.ty,
        "method": method,
        "error_px": error,
        "seconds": min(times),
        "runs": len(times),
        "solved": bool(error < SOLVED_PX),
        "note": note,
    }


def run_cases(cases, methods, *, log=print) -> list[dict]:
    rows = []
    warmed: set[tuple[str, int, str]] = set()
    for index, case in enumerate(cases, 1):
        for method in methods:
            key = (method, case.size, case.metric)
            if key not in warmed:
                # Warm-up: first-call costs (imports, caches, thread pools) are not timed.
                run_one(method, case, max_repeats=1)
                warmed.add(key)
            row = run_one(method, case)
            rows.append(row)
            flag = "ok " if row["solved"] else "BAD"
            log(
                f"[{index:2d}/{len(cases)}] {case.name:42s} {method:9s} {flag} "
                f"err {row['error_px']:9.3g} px  {row['seconds']:7.3f} s (best of {row['runs']})  "
                f"{row['note']}"
            )
    return rows


def _trust_parts(parts, sizes, args, summary) -> None:
    """The trust table (and the calibration corpus), written into bench/README.md on a full
    run."""
    log = lambda s: print(s, flush=True)  # noqa: E731
    rows, calibration = [], None
    if "trust" in parts:
        trust.GROUP_BUILDERS["bench"] = lambda: trust.bench_group(sizes)
        rows = trust.run(("bench", "samples", "issue", "fail", "inputs"), log=log)
        (args.out / "trust.json").write_text(json.dumps(rows, indent=1, default=str))
    if "calibration" in parts:
        calibration = trust.run(("calibration",), log=log)
        (args.out / "calibration.json").write_text(json.dumps(calibration, indent=1, default=str))
    text = trust.markdown(rows, calibration) if rows else ""
    summary["trust"] = {"counts": trust.counts(rows), "markdown": text}
    print(text, flush=True)
    if rows and not args.quick and not args.no_readme:
        trust.update_readme(BENCH / "README.md", text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subset, 256^2 only")
    parser.add_argument("--sizes", default=None, help="comma list, default 256,1024")
    parser.add_argument("--methods", default=",".join(ADAPTERS), help="comma list")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not rewrite the table in bench/README.md"
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {PARTS}")
    sizes = (256,) if args.quick else (256, 1024)
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    methods = available_methods([m.strip() for m in args.methods.split(",") if m.strip()])
    args.out.mkdir(parents=True, exist_ok=True)

    facts = extras.machine_facts()
    print(json.dumps(facts, indent=1), flush=True)
    summary: dict = {"facts": facts, "quick": args.quick, "sizes": list(sizes)}
    start = time.perf_counter()
    if "cases" in parts:
        cases = build_cases(sizes, quick=args.quick)
        summary["sources"] = extras.sources()
        rows = run_cases(cases, methods, log=lambda s: print(s, flush=True))
        (args.out / "results.json").write_text(json.dumps(rows, indent=1))
        summary["rows"] = rows
        report.plot(rows, args.out / "summary.png")
    if "precision" in parts:
        fourier = precision.fourier_cases(quick=args.quick)
        rows = run_cases(
            fourier, precision.methods_for(methods), log=lambda s: print(s, flush=True)
        )
        (args.out / "precision.json").write_text(json.dumps(rows, indent=1))
        summary["precision_rows"] = rows
    if "startup" in parts:
        summary["startup"] = extras.startup_times(args.out)
        print(json.dumps(summary["startup"], indent=1), flush=True)
    if "memory" in parts:
        summary["memory"] = extras.memory_4096(args.out)
        print(json.dumps(summary["memory"], indent=1), flush=True)
    if "profile" in parts:
        summary["profile"] = extras.profile_register(args.out, sizes=(256, 1024))
    if "many" in parts:
        summary["many"] = many.run_many(args.out, quick=args.quick)
        print(many.markdown(summary["many"]), flush=True)
    if "trust" in parts or "calibration" in parts:
        _trust_parts(parts, sizes, args, summary)
    summary["wall_seconds"] = time.perf_counter() - start
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    text = report.markdown(summary)
    (args.out / "report.md").write_text(text)
    print(text)
    if not args.quick and not args.no_readme and "cases" in parts:
        report.update_readme(BENCH / "README.md", text)
        report.copy_plot(args.out / "summary.png", BENCH / "summary.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
