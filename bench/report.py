"""Tables (markdown) and the summary plot of a benchmark run."""

from __future__ import annotations

import math
import shutil
import statistics
from pathlib import Path

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"
METHOD_ORDER = ("regcli", "regcli_t", "sitk", "ecc", "stackreg")
LABELS = {
    "regcli": "regcli",
    "regcli_t": "regcli (translation)",
    "sitk": "SimpleITK",
    "ecc": "OpenCV ECC",
    "stackreg": "pystackreg",
}
COLORS = {"regcli": "C3", "regcli_t": "C4", "sitk": "C0", "ecc": "C2", "stackreg": "C1"}


def _methods(rows) -> list[str]:
    present = {r["method"] for r in rows}
    return [m for m in METHOD_ORDER if m in present]


def _median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "fail"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.{digits}g}"


def group_stats(rows, *, monomodal: bool, size: int | None = None) -> dict[str, dict]:
    """Per method: cases, solved, median error, median time of one group of cases."""
    out = {}
    for method in _methods(rows):
        sel = [
            r
            for r in rows
            if r["method"] == method
            and (r["kind"] != "multimodal") == monomodal
            and (size is None or r["size"] == size)
        ]
        if not sel:
            continue
        out[method] = {
            "cases": len(sel),
            "solved": sum(r["solved"] for r in sel),
            "median_error_px": _median(r["error_px"] for r in sel),
            "median_seconds": _median(r["seconds"] for r in sel),
            "max_error_px": max(r["error_px"] for r in sel),
        }
    return out


def _stats_table(stats: dict[str, dict]) -> list[str]:
    lines = [
        "| method | solved | median error (px) | max error (px) | median time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for method, s in stats.items():
        lines.append(
            f"| {LABELS[method]} | {s['solved']}/{s['cases']} | {_fmt(s['median_error_px'])} | "
            f"{_fmt(s['max_error_px'])} | {_fmt(s['median_seconds'])} |"
        )
    return lines


def _medians(rows, monomodal: bool, size, *methods) -> list[float]:
    """Median time of each of ``methods`` over one group of cases."""
    stats = group_stats(rows, monomodal=monomodal, size=size)
    return [stats.get(m, {}).get("median_seconds", math.nan) for m in methods]


def _both_solved(rows, first: str, second: str, *, monomodal: bool) -> list[tuple]:
    """(error of ``first``, error of ``second``) on the cases that both solve."""
    by_case: dict[str, dict] = {}
    for r in rows:
        if (r["kind"] != "multimodal") == monomodal:
            by_case.setdefault(r["case"], {})[r["method"]] = r
    return [
        (c[first]["error_px"], c[second]["error_px"])
        for c in by_case.values()
        if first in c and second in c and c[first]["solved"] and c[second]["solved"]
    ]


def _ratio(a: float, b: float) -> str:
    return "-" if not (a > 0 and b > 0) else f"{a / b:.2f}"


def markdown(summary: dict) -> str:
    """The report of one run as markdown (the block that goes into bench/README.md)."""
    lines = [f"Run of {summary['facts']['date_utc']}" + (" (--quick)" if summary["quick"] else "")]
    facts = summary["facts"]
    lines += [
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), load average at start "
        f"{facts['load_average_1_5_15']} (the machine is shared, so times are noisy); "
        f"Python {facts['python']}; regcli {facts['regcli']}, numpy {facts['numpy']}, "
        f"scipy {facts['scipy']}, scikit-image {facts['scikit-image']}, "
        f"SimpleITK {facts['SimpleITK']} ({facts.get('sitk_threads', '?')} threads), "
        f"OpenCV {facts['opencv-python-headless']} ({facts.get('opencv_threads', '?')} threads), "
        f"pystackreg {facts['pystackreg']}.",
    ]
    rows = summary.get("rows")
    if rows:
        sources = summary.get("sources", {})
        lines += [
            "",
            f"Images: monomodal cases from {sources.get('monomodal', '?')}, multimodal from "
            f"{sources.get('multimodal', '?')}. Error = mean displacement over the image vs "
            "the true matrix; solved = error < 0.5 px. Time = the registration call only, "
            "after one untimed warm-up per method, size and metric; best of up to 3 calls "
            "(repeated while under 1 s in total).",
        ]
        sizes = sorted({r["size"] for r in rows})
        for monomodal, title in (
            (True, "Monomodal (translations + rigid, SSD)"),
            (False, "Multimodal (MI)"),
        ):
            for size in [*sizes, None]:
                stats = group_stats(rows, monomodal=monomodal, size=size)
                if not stats:
                    continue
                where = f"{size}^2" if size else "all sizes"
                lines += ["", f"**{title}, {where}**", "", *_stats_table(stats)]
        mono = group_stats(rows, monomodal=True)
        multi = group_stats(rows, monomodal=False)
        lines += ["", "**Targets**", ""]
        if "regcli" in mono:
            total_cases = sum(1 for r in rows if r["method"] == "regcli")
            total_solved = sum(r["solved"] for r in rows if r["method"] == "regcli")
            lines.append(f"- regcli solves {total_solved}/{total_cases} cases (target: all).")
        if "regcli" in mono and "ecc" in mono:
            per_size = ", ".join(
                f"{size}^2: {_ratio(*_medians(rows, True, size, 'regcli', 'ecc'))}"
                for size in sizes
            )
            lines.append(
                "- Monomodal median time regcli / ECC = "
                f"{_ratio(mono['regcli']['median_seconds'], mono['ecc']['median_seconds'])}"
                f" (target <= 0.5); per size {per_size}."
            )
        if "regcli" in multi and "sitk" in multi:
            both = _both_solved(rows, "regcli", "sitk", monomodal=False)
            lines.append(
                "- Multimodal median time regcli / SimpleITK MattesMI = "
                f"{_ratio(multi['regcli']['median_seconds'], multi['sitk']['median_seconds'])}"
                " (target <= 0.2); median error regcli "
                f"{_fmt(multi['regcli']['median_error_px'])} px vs SimpleITK "
                f"{_fmt(multi['sitk']['median_error_px'])} px; on the {len(both)} cases both "
                f"solve: regcli {_fmt(_median(a for a, _ in both))} px vs SimpleITK "
                f"{_fmt(_median(b for _, b in both))} px."
            )
        lines += _extras_lines(summary)
        lines += _precision_lines(summary)
        lines += ["", "![summary](summary.png)", "", *_case_table(rows)]
    else:
        lines += _extras_lines(summary)
        lines += _precision_lines(summary)
    lines += _profile_lines(summary.get("profile"))
    return "\n".join(lines) + "\n"


def _precision_lines(summary: dict) -> list[str]:
    """The precision tables (bench/precision.py): the benchmark's cases that every method
    solves, and the Fourier-shift cases."""
    from bench import precision

    return precision.markdown(
        summary.get("rows"), summary.get("precision_rows"), LABELS, METHOD_ORDER, _fmt
    )


def _profile_lines(profile: dict | None, top: int = 10) -> list[str]:
    if not profile or "error" in profile:
        return []
    lines = ["", "**Where `regcli.register` spends its time (cProfile, per call)**"]
    for size, data in profile.items():
        profiled = data.get("profiled_s", data["wall_s"])
        lines += [
            "",
            f"{size}^2, case {data['case']}: {1e3 * data['wall_s']:.1f} ms per call "
            f"({1e3 * profiled:.1f} ms under the profiler).",
            "",
            "| stage (cumulative) | ms | % |",
            "|---|---:|---:|",
        ]
        for stage in data.get("stages", []):
            lines.append(
                f"| {stage['stage']} | {1e3 * stage['seconds']:.1f} | "
                f"{100 * stage['seconds'] / profiled:.0f} |"
            )
        lines += ["", "| function (own time) | calls | ms | % |", "|---|---:|---:|---:|"]
        for row in data["top_tottime"][:top]:
            lines.append(
                f"| `{row['function']}` | {row['calls']:g} | {1e3 * row['tottime_s']:.2f} | "
                f"{row['percent']:.1f} |"
            )
    return lines


def _extras_lines(summary: dict) -> list[str]:
    lines = []
    startup = summary.get("startup")
    if startup:
        help_t = startup.get("help", {})
        lines.append(
            "- `regcli --help` wall: "
            + (
                f"median {help_t['median_s']:.3f} s (min {help_t['min_s']:.3f}, "
                f"{help_t['runs']} runs; target <= 0.3 s)."
                if "median_s" in help_t
                else f"not measured ({help_t.get('error')})."
            )
        )
        for key, what, target in (
            ("register", "all outputs", 0.7),
            ("register_no_plots", "`--plots none`", 0.4),
        ):
            reg_t = startup.get(key, {})
            lines.append(
                f"- `regcli register BrainMRI_1.png BrainMRI_4.png -o DIR` wall, {what}: "
                + (
                    f"median {reg_t['median_s']:.3f} s (min {reg_t['min_s']:.3f}, "
                    f"{reg_t['runs']} runs; target <= {target} s); outputs: "
                    f"{', '.join(reg_t.get('outputs', []))}."
                    if "median_s" in reg_t
                    else f"not measured ({reg_t.get('error')})."
                )
            )
    memory = summary.get("memory")
    if memory:
        api, cli, base = memory["api"], memory["cli"], memory["baseline_import"]
        size = memory["size"]
        lines.append(
            f"- {size}^2 pair, peak RSS of a child process (target < 1.5 GB = 1536 MiB): "
            f"Python API {api.get('peak_rss_mib')} MiB "
            f"(register {api.get('seconds', math.nan):.2f} s + `warped` "
            f"{api.get('warped_seconds', math.nan):.2f} s, "
            f"error {_fmt(api.get('error_px', math.nan))} px, "
            f"exit {api['returncode']}); CLI `regcli register` {cli.get('peak_rss_mib')} MiB "
            f"({cli.get('seconds')} s incl. PNG I/O and plots, exit {cli['returncode']}, "
            f"progress bar {'seen' if cli.get('progress_bar_seen') else 'NOT seen'}); "
            f"baseline (imports only) {base.get('peak_rss_mib')} MiB."
        )
    return lines


def _case_table(rows) -> list[str]:
    methods = _methods(rows)
    lines = [
        "<details><summary>Every case (error px / time s)</summary>",
        "",
        "| case | " + " | ".join(LABELS[m] for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    by_case: dict[str, dict] = {}
    for r in rows:
        by_case.setdefault(r["case"], {})[r["method"]] = r
    for case, results in by_case.items():
        cells = []
        for m in methods:
            r = results.get(m)
            if r is None:
                cells.append("-")
                continue
            mark = "" if r["solved"] else " ✗"
            cells.append(f"{_fmt(r['error_px'])} / {r['seconds']:.3f}{mark}")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines += ["", "</details>"]
    return lines


def plot(rows, path: Path) -> None:
    """Error vs rotation angle per method (mono and multimodal, log y) and time per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = _methods(rows)
    sizes = sorted({r["size"] for r in rows})
    markers = dict(zip(sizes, "os^D", strict=False))
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), constrained_layout=True)
    ceiling = 1e3
    for ax, monomodal, title in (
        (axes[0], True, "Monomodal (SSD): error vs rotation"),
        (axes[1], False, "Multimodal (MI): error vs rotation"),
    ):
        for i, method in enumerate(methods):
            for size in sizes:
                sel = [
                    r
                    for r in rows
                    if r["method"] == method
                    and r["size"] == size
                    and (r["kind"] != "multimodal") == monomodal
                ]
                if not sel:
                    continue
                sel.sort(key=lambda r: abs(r["angle_deg"]))
                # small horizontal offsets keep the methods' markers apart
                x = [abs(r["angle_deg"]) + (i - 1.5) * 1.2 for r in sel]
                y = [min(max(r["error_px"], 1e-3), ceiling) for r in sel]
                ax.plot(
                    x,
                    y,
                    marker=markers[size],
                    linestyle="-" if size == sizes[0] else ":",
                    color=COLORS[method],
                    label=f"{LABELS[method]} {size}^2",
                    alpha=0.85,
                    markersize=5,
                )
        ax.axhline(0.5, color="k", linewidth=0.8, linestyle="--")
        ax.text(1, 0.55, "solved < 0.5 px", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(1e-3, ceiling * 1.5)
        ax.set_xlabel("|rotation| (deg)")
        ax.set_ylabel(f"mean displacement error (px; exceptions at {ceiling:g})")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    ax = axes[2]
    width = 0.8 / max(len(sizes), 1)
    for j, size in enumerate(sizes):
        for i, method in enumerate(methods):
            times = [r["seconds"] for r in rows if r["method"] == method and r["size"] == size]
            x = i + (j - (len(sizes) - 1) / 2) * width
            ax.scatter(
                [x] * len(times),
                times,
                color=COLORS[method],
                marker=markers[size],
                s=14,
                alpha=0.6,
            )
            ax.hlines(_median(times), x - width / 2, x + width / 2, color="k", linewidth=2)
    ax.set_xticks(range(len(methods)), [LABELS[m] for m in methods])
    ax.set_yscale("log")
    ax.set_ylabel("registration time per case (s); bar = median")
    shape_names = {"o": "circles", "s": "squares", "^": "triangles", "D": "diamonds"}
    ax.set_title(
        "Time per case, all cases ("
        + ", ".join(f"{shape_names[markers[s]]} {s}^2" for s in sizes)
        + ")"
    )
    ax.grid(True, which="major", axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the results markers of ``readme`` (append them if missing)."""
    text = readme.read_text() if readme.exists() else ""
    new_block = f"{START}\n{block}{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + new_block + tail
    else:
        text = text.rstrip() + "\n\n## Latest results\n\n" + new_block + "\n"
    readme.write_text(text)


def copy_plot(source: Path, target: Path) -> None:
    if source.exists():
        shutil.copyfile(source, target)
