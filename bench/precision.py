"""Sub-pixel precision: ``skimage.data.camera()`` moved by Fourier shifts, and the precision
table (median and 90th-percentile error on the cases every method solves).

The shifts are made the way scikit-image's ``phase_cross_correlation`` tests make them:
``scipy.ndimage.fourier_shift`` of the whole image (the content wraps around), first by
scikit-image's own test shift ``(-2.4, 1.32)`` (rows, columns), then by :data:`COUNT` seeded
sub-pixel shifts of up to :data:`SPAN` pixels each way.  Each shift is registered without
noise and with Gaussian noise of :data:`NOISE` of the range added to both images, by every
method, and by regcli with ``transform="translation"`` as well (``regcli_t``).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy import ndimage

from bench.cases import Case
from regcli.transforms import translation_matrix

#: scikit-image's sub-pixel test shift, (rows, columns).
SKIMAGE_SHIFT = (-2.4, 1.32)
#: How many seeded shifts follow it, drawn uniformly from [-SPAN, SPAN] px per axis.
COUNT = 10
SPAN = 6.0
SEED = 13
#: Noise of the noisy cases: standard deviation as a fraction of the intensity range.
NOISE = 0.02
#: The shifts, (rows, columns): scikit-image's, then the seeded ones (3 decimals).
SHIFTS = [
    SKIMAGE_SHIFT,
    *(
        tuple(float(v) for v in s)
        for s in np.random.default_rng(SEED).uniform(-SPAN, SPAN, (COUNT, 2)).round(3)
    ),
]
#: The methods that register the Fourier cases besides the benchmark's (bench/adapters.py).
EXTRA_METHODS = ("regcli_t",)


def fourier_shifted(image: np.ndarray, shift) -> np.ndarray:
    """``image`` with its content moved by ``shift = (rows, cols)`` pixels (periodic), as in
    scikit-image's tests: ``ifftn(fourier_shift(fftn(image), shift)).real``."""
    return np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(image), shift)).real


def fourier_cases(*, quick: bool = False, seed: int = 0) -> list[Case]:
    """The camera's Fourier-shift cases, noise-free then noisy (``quick``: 3 shifts each).

    ``truth`` maps a fixed pixel to the moving pixel showing the same content: content moved
    by ``(dy, dx)`` is at ``x + dx, y + dy``.
    """
    from skimage import data

    camera = data.camera().astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    shifts = SHIFTS[:3] if quick else SHIFTS
    cases = []
    for noise in (0.0, NOISE):
        for dy, dx in shifts:
            moving = fourier_shifted(camera, (dy, dx))
            fixed = camera
            if noise:
                fixed = fixed + rng.normal(0.0, noise, fixed.shape)
                moving = moving + rng.normal(0.0, noise, moving.shape)
            name = f"fourier_{'noisy' if noise else 'clean'}_y{dy:+.3f}_x{dx:+.3f}"
            cases.append(
                Case(
                    name,
                    "fourier",
                    camera.shape[0],
                    0.0,
                    dx,
                    dy,
                    fixed.astype(np.float32),
                    moving.astype(np.float32),
                    translation_matrix(dx, dy),
                )
            )
    return cases


def methods_for(methods) -> list[str]:
    """The benchmark's methods, and ``regcli_t`` after ``regcli`` when regcli is among them."""
    out = list(methods)
    if "regcli" in out:
        out.insert(out.index("regcli") + 1, "regcli_t")
    return out


# ------------------------------------------------------------------------------------ tables


def _percentile(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return math.nan
    return float(np.percentile(values, q))


def all_solved(rows, methods) -> dict[str, dict]:
    """``{case: {method: row}}`` of the cases that every one of ``methods`` solves."""
    by_case: dict[str, dict] = {}
    for r in rows:
        by_case.setdefault(r["case"], {})[r["method"]] = r
    return {
        case: results
        for case, results in by_case.items()
        if all(m in results and results[m]["solved"] for m in methods)
    }


def precision_stats(rows, methods) -> tuple[int, dict[str, dict]]:
    """On the cases every method solves: their number, and per method the median, 90th
    percentile and maximum error (px)."""
    solved = all_solved(rows, methods)
    stats = {}
    for m in methods:
        errors = [results[m]["error_px"] for results in solved.values()]
        stats[m] = {
            "median_error_px": statistics.median(errors) if errors else math.nan,
            "p90_error_px": _percentile(errors, 90),
            "max_error_px": max(errors) if errors else math.nan,
        }
    return len(solved), stats


def markdown(bench_rows, fourier_rows, labels: dict, order, fmt) -> list[str]:
    """The precision section of the report: the benchmark's monomodal cases that every method
    solves (per size and all sizes), then the Fourier-shift cases (noise-free, noisy)."""
    lines = []

    def table(rows, title):
        methods = [m for m in order if any(r["method"] == m for r in rows)]
        if not methods:
            return
        count, stats = precision_stats(rows, methods)
        lines.extend(
            [
                "",
                f"**{title}: the {count} cases every method solves**",
                "",
                "| method | median error (px) | 90th percentile (px) | max (px) |",
                "|---|---:|---:|---:|",
            ]
        )
        for m in methods:
            s = stats[m]
            lines.append(
                f"| {labels[m]} | {fmt(s['median_error_px'])} | {fmt(s['p90_error_px'])} | "
                f"{fmt(s['max_error_px'])} |"
            )

    mono = [r for r in bench_rows or [] if r["kind"] != "multimodal"]
    sizes = sorted({r["size"] for r in mono})
    if mono:
        lines += ["", "**Precision** (error of each method on the cases all of them solve)"]
    for size in sizes + ([None] if len(sizes) > 1 else []):
        sel = [r for r in mono if size is None or r["size"] == size]
        table(sel, f"Monomodal, {size}^2" if size else "Monomodal, all sizes")
    if fourier_rows:
        for tag, title in (("clean", "no noise"), ("noisy", f"noise {NOISE:g} of the range")):
            sel = [r for r in fourier_rows if r["case"].startswith(f"fourier_{tag}")]
            table(sel, f"camera() Fourier shifts, {title}")
        methods = [m for m in order if any(r["method"] == m for r in fourier_rows)]
        lines += [
            "",
            "<details><summary>Every Fourier-shift case (error px / time s)</summary>",
            "",
            "| case | " + " | ".join(labels[m] for m in methods) + " |",
            "|---|" + "---:|" * len(methods),
        ]
        by_case: dict[str, dict] = {}
        for r in fourier_rows:
            by_case.setdefault(r["case"], {})[r["method"]] = r
        for case, results in by_case.items():
            cells = []
            for m in methods:
                r = results.get(m)
                mark = "" if r is None or r["solved"] else " ✗"
                cells.append(
                    "-" if r is None else f"{fmt(r['error_px'])} / {r['seconds']:.3f}{mark}"
                )
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
        lines += ["", "</details>"]
    return lines
