"""``regcli jointhist``: joint histograms of image pairs, the check sum H = n x p, MI and NMI."""

from __future__ import annotations

from pathlib import Path

import click

from regcli.cli import helpers, interrupts, options, outputs


def _labels(first: Path, second: Path) -> tuple[str, str]:
    """Axis names: the file names, or the paths when two inputs share a name (shown so that
    any font can draw them)."""
    if first.name == second.name:
        return helpers.display_name(first), helpers.display_name(second)
    return helpers.display_name(first.name), helpers.display_name(second.name)


def _pair_report(first: Path, second: Path, bins, normed: bool, channel=None) -> tuple[dict, dict]:
    """Histogram of one pair: JSON-able facts, and the panel to draw (with the arrays)."""
    from regcli.histogram import joint_entropy, joint_histogram, marginal_entropies

    image1, image2 = helpers.read_pair(first, second, channel=channel)
    counts, edges1, edges2 = joint_histogram(image1, image2, bins=bins)
    total = float(counts.sum())
    entropy1, entropy2 = marginal_entropies(counts)
    entropy12 = joint_entropy(counts)
    mi = max(entropy1 + entropy2 - entropy12, 0.0)
    nmi = (entropy1 + entropy2) / entropy12 if entropy12 > 0 else 2.0
    rows, cols = image1.shape
    facts = {
        "image1": str(first),
        "image2": str(second),
        "shape": [rows, cols],
        "bins": [edges1.size - 1, edges2.size - 1],
        "range1": [float(edges1[0]), float(edges1[-1])],
        "range2": [float(edges2[0]), float(edges2[-1])],
        "sum": total,
        "n_pixels": rows * cols,
        "ok": total == rows * cols,
        "mi": mi,
        "nmi": nmi,
        "entropy1": entropy1,
        "entropy2": entropy2,
        "joint_entropy": entropy12,
    }
    label1, label2 = _labels(first, second)
    panel = {
        "hist": counts / total if normed and total > 0 else counts,
        "edges1": edges1,
        "edges2": edges2,
        "label1": label1,
        "label2": label2,
        "title": f"{label1} vs {label2}\nMI = {mi:.3f} nats, NMI = {nmi:.3f}",
    }
    return facts, panel


def _write_npy(path: Path, staged: Path, hists) -> None:
    import numpy as np

    from regcli.errors import InputError
    from regcli.io import atomic_output

    shapes = {h.shape for h in hists}
    if len(shapes) > 1:
        raise InputError(
            f"{path}: the pairs have different numbers of bins ({', '.join(map(str, shapes))}) "
            "and cannot be stacked in one array; pass --bins N to use the same bins for all"
        )
    array = hists[0] if len(hists) == 1 else np.stack(hists)
    with atomic_output(staged) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


@click.command(short_help="Joint histograms of image pairs, with the check sum H = n x p.")
@click.argument(
    "images",
    nargs=-1,
    required=True,
    metavar="I J [I2 J2 ...]",
    type=options.PathValue(dir_okay=True),
)
@options.bins_opt(
    1,
    options.HIST_BINS_MAX,
    "Bins per image (N for both, N,M for I and J). Default: one bin per grey level for "
    "8-bit images; for 16-bit and float images 2 x (pixels)^(1/3) bins, at most 256.",
    pair=True,
)
@click.option(
    "--normed", is_flag=True, help="Divide by n x p: draw and save probabilities, not counts."
)
@options.output_opt(
    "Picture of the joint histogram(s) (.png, .pdf, .svg, .jpg, .tif), pairs side by side. "
    "Default: no picture, only the check."
)
@click.option(
    "--npy",
    type=options.PathValue(names_file=True),
    metavar="H.npy",
    help="Also save the histogram array(s): (bins1, bins2), or (pairs, bins1, bins2) for "
    "several pairs. Rows index I's bins, columns J's.",
)
@options.overwrite_opt
@options.channel_opt
@options.json_opt
def jointhist(images, bins, normed, output, npy, overwrite, as_json, channel=None):
    """Joint histogram H of images I and J (same size), for one or several pairs.

    H[i, j] counts the pixels whose intensity is in bin i in I and in bin j in J, so for
    images of n x p pixels the counts sum to n x p: the check printed for every pair.
    Also printed: mutual information MI = H(I) + H(J) - H(I,J) (nats) and normalised
    MI = (H(I) + H(J)) / H(I,J) from the same bins.

    With -o, draws the histograms side by side (three per row) on a logarithmic colour
    scale (empty bins left white), I's intensity along x and J's along y. Without -o
    nothing is written.

    With --json, prints {"pairs": [{"image1", "image2", "shape", "bins", "sum",
    "n_pixels", "ok", "mi", "nmi", ...}, ...], "ok", "output", "npy", "normed"}, where "sum"
    is the sum of the counts (before --normed divides them). Exit code 1 if a check fails.

    \b
    Examples:
      regcli jointhist I1.png J1.png
      regcli jointhist I1.png J1.png I2.png J2.png I3.png J3.png -o jointhist.png
      regcli jointhist scan_a.tif scan_b.tif --bins 64 --npy h.npy --json
    """
    if len(images) % 2:
        raise click.BadParameter(
            f"expected pairs of images (I J [I2 J2 ...]), got {len(images)}: "
            f"{images[-1]} has no partner",
            param_hint="'I J [I2 J2 ...]'",
        )
    if output is not None and npy is not None and Path(output).resolve() == Path(npy).resolve():
        raise click.BadParameter("must differ from -o/--output", param_hint="--npy")
    with outputs.OutputSet(overwrite=overwrite, inputs=images) as out:
        staged_output = staged_npy = None
        if output is not None:
            staged_output = out.stage(
                output, suffixes=outputs.FIGURE_SUFFIXES, kind="figure", option="output"
            )
        if npy is not None:
            staged_npy = out.stage(npy, suffixes=(".npy",), kind="array", option="npy")
        pairs = list(zip(images[::2], images[1::2], strict=True))
        reports, panels = [], []
        for first, second in pairs:
            facts, panel = _pair_report(first, second, bins, normed, channel)
            reports.append(facts)
            panels.append(panel)
        interrupts.pause("work")
        if staged_npy is not None:
            _write_npy(npy, staged_npy, [panel["hist"] for panel in panels])
        if staged_output is not None:
            from regcli import plots

            plots.plot_joint_histograms(panels, staged_output, normed=normed)

    all_ok = all(report["ok"] for report in reports)
    if as_json:
        helpers.echo_json(
            {"pairs": reports, "ok": all_ok, "output": output, "npy": npy, "normed": normed}
        )
    else:
        for report in reports:
            rows, cols = report["shape"]
            verdict = "ok" if report["ok"] else "MISMATCH"
            click.echo(
                f"{report['image1']} vs {report['image2']}: {rows} x {cols} pixels, "
                f"{report['bins'][0]} x {report['bins'][1]} bins\n"
                f"  sum H = {report['sum']:.0f}, n x p = {rows} x {cols} = "
                f"{report['n_pixels']} (rows x cols): {verdict}\n"
                f"  MI = {report['mi']:.4f} nats, NMI = {report['nmi']:.4f}"
            )
        for label, path in (("picture", output), ("array", npy)):
            if path is not None:
                click.echo(f"{label}: {path}")
    if not all_ok:
        raise click.ClickException("sum H differs from n x p for at least one pair")
