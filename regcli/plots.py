"""Figures (matplotlib, Agg backend).  Imported only by the commands that draw.

Every function takes arrays/results and an output path, draws one figure, writes it
atomically (so a failed run leaves no half-written PNG) and returns the path.
"""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from regcli.io import atomic_output

__all__ = [
    "checkerboard",
    "cost_curve_figure",
    "cost_profile_figure",
    "joint_histogram_figure",
    "magenta_green",
    "optimizer_comparison_figure",
    "overlay_figure",
    "plot_cost_curve",
    "plot_cost_profile",
    "plot_joint_histograms",
    "plot_optimizer_comparison",
    "plot_overlay",
    "save_figure",
]


def save_figure(fig, path, *, dpi: int = 120):
    """Write ``fig`` to ``path`` atomically and close it."""
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1])
    finally:
        plt.close(fig)
    return path


# --------------------------------------------------------------------------- registration


def _wants_log_scale(values) -> bool:
    """True when every finite cost is positive and they span more than a decade."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2 or finite.min() <= 0:
        return False
    return bool(finite.max() / finite.min() > 10.0)


def _finite_or_nan(values) -> np.ndarray:
    """Costs as floats with +-inf replaced by NaN (matplotlib leaves a gap instead of failing)."""
    arr = np.asarray(values, dtype=float).copy()
    arr[~np.isfinite(arr)] = np.nan
    return arr


#: ``gid`` of the vertical lines that mark where a pyramid level starts (tests count them).
LEVEL_MARKER_GID = "level-start"


def _plot_by_level(ax, values: np.ndarray, starts, **style) -> str:
    """Plot ``values`` as one line per pyramid level (costs of different levels are not
    comparable, so no segment joins them); one colour and one legend entry.  Returns the colour.
    """
    bounds = [k for k in sorted(set(starts) | {0}) if 0 <= k < values.size] + [values.size]
    color = style.pop("color", None)
    for index, (begin, end) in enumerate(itertools.pairwise(bounds)):
        (line,) = ax.plot(
            np.arange(begin, end),
            values[begin:end],
            color=color,
            **(style if index == 0 else {**style, "label": "_nolegend_"}),
        )
        color = line.get_color()
    return color


def cost_curve_figure(
    costs,
    *,
    level_starts=None,
    level_shapes=None,
    cost_label: str = "cost",
    title: str | None = None,
):
    """Figure of the cost against the iteration, with the pyramid levels marked.

    Parameters
    ----------
    costs : 1-D sequence of float
        One cost per iteration over all levels, coarse to fine
        (``RegistrationResult.cost_history``).
    level_starts : sequence of int, optional
        Index in ``costs`` where each level begins; every level after the first gets a dashed
        vertical line, and every level a label (with its image size from ``level_shapes``).
    level_shapes : sequence of (rows, cols), optional
    cost_label : str
        What the cost is (y-axis label), e.g. ``"ssd per pixel"``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        The y axis is logarithmic when the costs are positive and span more than a decade.
    """
    from matplotlib.transforms import blended_transform_factory

    values = _finite_or_nan(costs)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    starts = list(level_starts or [0])
    _plot_by_level(ax, values, starts, color="tab:blue", linewidth=1.6, label=cost_label)
    if _wants_log_scale(values):
        ax.set_yscale("log")
    shapes = list(level_shapes or [])
    label_at = blended_transform_factory(ax.transData, ax.transAxes)
    for level, start in enumerate(starts):
        if level > 0:
            ax.axvline(
                start - 0.5, color="0.45", linestyle="--", linewidth=1.0, gid=LEVEL_MARKER_GID
            )
        if len(starts) > 1 or shapes:
            # Named by image size: the engine's messages name levels the same way.
            if level < len(shapes):
                text = f"{shapes[level][0]}x{shapes[level][1]}"
            else:
                text = f"level {level + 1}"
            ax.text(
                start,
                0.98,
                " " + text.replace("\n", "\n "),
                transform=label_at,
                va="top",
                ha="left",
                fontsize=8,
                color="0.3",
            )
    finite = values[np.isfinite(values)]
    if finite.size:
        ax.plot(
            [values.size - 1],
            [values[-1]] if np.isfinite(values[-1]) else [finite[-1]],
            "o",
            color="tab:red",
            markersize=4,
            label=f"final {finite[-1]:.4g}",
        )
        ax.legend(loc="upper right" if len(starts) <= 1 else "center right", fontsize=8)
    ax.set_xlabel(
        "iteration (all pyramid levels, coarse to fine; dashed line: next level)"
        if len(starts) > 1
        else "iteration"
    )
    ax.set_ylabel(f"cost: {cost_label}")
    ax.set_xlim(-0.5, max(values.size - 0.5, 1.0))
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_cost_curve(costs, path, **options):
    """Draw :func:`cost_curve_figure` (same keyword options) into ``path``; return ``path``."""
    return save_figure(cost_curve_figure(costs, **options), path)


def _display_range(image) -> tuple[float, float]:
    """Robust grey range (1st-99th percentile) so one bright pixel does not darken the rest."""
    arr = np.asarray(image, dtype=float)
    low, high = np.percentile(arr, [1.0, 99.0])
    if high <= low:
        low, high = float(arr.min()), float(arr.max())
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def _scaled(image, value_range) -> np.ndarray:
    low, high = value_range
    return np.clip((np.asarray(image, dtype=float) - low) / (high - low), 0.0, 1.0)


def magenta_green(fixed, moving, *, fixed_range=None, moving_range=None) -> np.ndarray:
    """RGB composite: ``fixed`` in magenta, ``moving`` in green; where they agree it is grey."""
    f = _scaled(fixed, fixed_range or _display_range(fixed))
    m = _scaled(moving, moving_range or _display_range(moving))
    return np.dstack([f, m, f])


def checkerboard(image1, image2, *, tiles: int = 8) -> np.ndarray:
    """Tiles taken alternately from ``image1`` and ``image2`` (``tiles`` per side)."""
    a, b = np.asarray(image1), np.asarray(image2)
    rows, cols = a.shape
    row_tile = (np.arange(rows) * tiles) // rows
    col_tile = (np.arange(cols) * tiles) // cols
    take_first = (row_tile[:, None] + col_tile[None, :]) % 2 == 0
    return np.where(take_first, a, b)


#: Images drawn in figures are reduced (block means) to at most this many pixels a side: a
#: panel is a few hundred pixels wide, and a 4096^2 image composited in full took 2 GB and
#: 13 s to draw.
DISPLAY_SIDE = 1024


def _for_display(image, max_side: int = DISPLAY_SIDE) -> np.ndarray:
    """``image`` as float, reduced by an integer factor (block means) to <= ``max_side``."""
    arr = np.asarray(image, dtype=float)
    factor = -(-max(arr.shape) // max_side)
    if factor <= 1:
        return arr
    rows, cols = arr.shape[0] // factor, arr.shape[1] // factor
    blocks = arr[: rows * factor, : cols * factor].reshape(rows, factor, cols, factor)
    return blocks.mean(axis=(1, 3))


def overlay_figure(fixed, moving, aligned, *, title: str | None = None, tiles: int = 8):
    """Before / after figure of a registration.

    Top row: ``fixed`` (magenta) over ``moving`` (before) and over ``aligned`` (after); grey
    where the two agree.  Bottom row: checkerboards of the same pairs, where misalignment shows
    as broken edges at the tile borders.  ``aligned`` is drawn with the grey range of
    ``moving`` so both columns are comparable.  Images larger than :data:`DISPLAY_SIDE`
    pixels a side are drawn from block means (the panels are smaller than that anyway).
    """
    fixed, moving, aligned = (_for_display(image) for image in (fixed, moving, aligned))
    fixed_range, moving_range = _display_range(fixed), _display_range(moving)
    fixed01 = _scaled(fixed, fixed_range)
    fig, axes = plt.subplots(2, 2, figsize=(8.0, 8.6))
    for column, (other, name) in enumerate([(moving, "moving"), (aligned, "aligned")]):
        when = "before" if column == 0 else "after"
        composite = magenta_green(fixed, other, fixed_range=fixed_range, moving_range=moving_range)
        axes[0, column].imshow(composite, interpolation="nearest")
        axes[0, column].set_title(f"{when}: fixed (magenta) vs {name} (green)", fontsize=10)
        board = checkerboard(fixed01, _scaled(other, moving_range), tiles=tiles)
        axes[1, column].imshow(board, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes[1, column].set_title(f"{when}: checkerboard fixed / {name}", fontsize=10)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_overlay(fixed, moving, aligned, path, **options):
    """Draw :func:`overlay_figure` into ``path``; return ``path``."""
    return save_figure(overlay_figure(fixed, moving, aligned, **options), path)


def optimizer_comparison_figure(
    curves, *, level_starts=None, cost_label: str = "cost", title: str | None = None
):
    """One figure with the cost curve of every optimiser (the course's comparison plot).

    Parameters
    ----------
    curves : mapping of str to 1-D sequence of float
        Legend label (e.g. ``"nag"``) -> cost per iteration.
    level_starts : mapping of str to sequence of int, optional
        Legend label -> index where each pyramid level begins; the first cost of every level
        after the first is marked with a hollow circle on that curve.
    cost_label : str
        y-axis label.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Logarithmic y axis when all costs are positive and span more than a decade.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    everything = []
    for label, costs in curves.items():
        values = _finite_or_nan(costs)
        everything.append(values)
        all_starts = list((level_starts or {}).get(label, [0]))
        color = _plot_by_level(ax, values, all_starts, linewidth=1.5, label=label)
        starts = [k for k in all_starts[1:] if 0 <= k < values.size]
        if starts:
            ax.plot(
                starts,
                values[starts],
                "o",
                color=color,  # also keeps the colour cycle for the next curve
                markerfacecolor="none",
                markersize=6,
                gid=LEVEL_MARKER_GID,
            )
    if everything and _wants_log_scale(np.concatenate(everything)):
        ax.set_yscale("log")
    ax.set_xlabel(
        "iteration (all pyramid levels, coarse to fine; o: first iteration of a finer level)"
        if level_starts
        else "iteration (all pyramid levels, coarse to fine)"
    )
    ax.set_ylabel(f"cost: {cost_label}")
    ax.grid(True, which="major", alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_optimizer_comparison(curves, path, **options):
    """Draw :func:`optimizer_comparison_figure` into ``path``; return ``path``."""
    return save_figure(optimizer_comparison_figure(curves, **options), path)


# --------------------------------------------------------------------------- joint histograms


def joint_histogram_figure(panels, *, normed: bool = False, title: str | None = None):
    """Joint histograms side by side (three per row), on a logarithmic colour scale.

    The course's exercise: the joint histograms of several image pairs in one figure.

    Parameters
    ----------
    panels : sequence of dict
        One per image pair, with keys ``hist`` (bins1 x bins2 array, counts or probabilities),
        ``edges1``, ``edges2`` (bin edges), ``label1``, ``label2`` (axis names, e.g. the file
        names) and optionally ``title``.  ``image1`` intensities run along x, ``image2`` along y
        (upwards).
    normed : bool
        The histograms are probabilities (colour bar label), not counts.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Empty bins are left blank (the axes' background), since log(0) has no colour; each
        panel has its own colour bar.
    """
    from matplotlib.colors import LogNorm

    count = len(panels)
    columns = min(count, 3)  # wrap after three pairs so the panels stay readable
    rows = -(-count // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4.6 * columns + 0.4, 4.3 * rows), squeeze=False
    )
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    cmap = plt.get_cmap("viridis").with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    for ax, panel in zip(axes.ravel()[:count], panels, strict=True):
        hist = np.asarray(panel["hist"], dtype=float)
        positive = hist[hist > 0]
        low = float(positive.min()) if positive.size else 1.0
        high = max(float(positive.max()) if positive.size else 1.0, low * 10)
        shown = np.ma.masked_less_equal(hist.T, 0)  # rows of the picture = image2 bins
        mesh = ax.pcolormesh(
            panel["edges1"],
            panel["edges2"],
            shown,
            norm=LogNorm(vmin=low, vmax=high),
            cmap=cmap,
            shading="flat",
            rasterized=True,
        )
        ax.set_facecolor("white")
        ax.set_xlabel(f"intensity in {panel['label1']}")
        ax.set_ylabel(f"intensity in {panel['label2']}")
        if panel.get("title"):
            ax.set_title(panel["title"], fontsize=9)
        bar = fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.03)
        bar.set_label("probability (log scale)" if normed else "pixel count (log scale)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_joint_histograms(panels, path, **options):
    """Draw :func:`joint_histogram_figure` into ``path``; return ``path``."""
    return save_figure(joint_histogram_figure(panels, **options), path)


# --------------------------------------------------------------------------- cost profile

#: ``gid`` of the marker at a profile's minimum and of the true-value line (tests find them).
PROFILE_MINIMUM_GID = "profile-minimum"
PROFILE_TRUTH_GID = "profile-truth"


def cost_profile_figure(profile, *, title: str | None = None):
    """Figure of the cost along one parameter: raw images, and smoothed ones when computed.

    Parameters
    ----------
    profile : regcli.profile.CostProfile or its ``to_dict()``
        Values are shown in display units (degrees for the angle).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One panel per curve (raw; smoothed by a Gaussian of ``smooth_sigma`` pixels), each
        with its minimum marked by a red dot, its other local minima by small grey ticks, and
        the true value (if known) by a dashed green line.
    """
    data = profile.to_dict() if hasattr(profile, "to_dict") else dict(profile)
    values = np.asarray(data["values"], dtype=float)
    unit = data.get("unit") or ""
    curves = [("images as given", data["costs"], data.get("local_minima") or [])]
    if data.get("smoothed_costs") is not None:
        curves.append(
            (
                f"images smoothed (Gaussian, sigma = {data['smooth_sigma']:g} px)",
                data["smoothed_costs"],
                data.get("smoothed_local_minima") or [],
            )
        )
    fig, axes = plt.subplots(
        len(curves), 1, figsize=(7.0, 3.0 * len(curves) + 0.6), sharex=True, squeeze=False
    )
    truth = data.get("true_value")
    for ax, (label, costs, minima) in zip(axes[:, 0], curves, strict=True):
        costs = _finite_or_nan([np.nan if c is None else c for c in costs])
        ax.plot(values, costs, color="tab:blue", linewidth=1.4, label=label)
        if np.any(np.isfinite(costs)):
            best = int(np.nanargmin(costs))
            lows = [v for v in minima if v is not None and not np.isclose(v, values[best])]
            if lows:
                at = np.interp(lows, values, np.nan_to_num(costs, nan=np.nanmax(costs)))
                ax.plot(
                    lows,
                    at,
                    "|",
                    color="0.35",
                    markersize=9,
                    label=f"other local minima ({len(lows)})",
                )
            ax.plot(
                [values[best]],
                [costs[best]],
                "o",
                color="tab:red",
                markersize=6,
                gid=PROFILE_MINIMUM_GID,
                label=f"minimum at {values[best]:.4g} {unit}".rstrip(),
            )
        if truth is not None:
            ax.axvline(
                truth,
                color="tab:green",
                linestyle="--",
                linewidth=1.2,
                gid=PROFILE_TRUTH_GID,
                label=f"true value {truth:.4g} {unit}".rstrip(),
            )
        ax.set_ylabel(f"cost: {data.get('cost_label', 'cost')}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    name = {"angle": "angle", "tx": "tx (shift along x)", "ty": "ty (shift along y)"}.get(
        data["param"], data["param"]
    )
    axes[-1, 0].set_xlabel(f"{name} ({unit})" if unit else name)
    at = data.get("at") or {}
    held = ", ".join(
        f"{k}={v:.4g}" for k, v in at.items() if k != "center" and not k.startswith(data["param"])
    )
    heading = title or (
        f"{data.get('metric', '')} cost along {data['param']} ({data.get('transform', '')})"
    )
    if held:  # a profile depends on where the other parameters are held: say it
        heading += f"\nother parameters held at {held}"
    axes[0, 0].set_title(heading, fontsize=10)
    fig.tight_layout()
    return fig


def plot_cost_profile(profile, path, **options):
    """Draw :func:`cost_profile_figure` into ``path``; return ``path``."""
    return save_figure(cost_profile_figure(profile, **options), path)
