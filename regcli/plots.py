"""Figures of registrations, built with matplotlib's object API.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure` (for a notebook: it
displays itself as the cell's result, or save it with ``fig.savefig``); each ``plot_*``
function draws the same figure into a file and returns the path (the CLI's way).

Figures are made as ``matplotlib.figure.Figure`` objects and saved through the Agg canvas:
this module never imports ``matplotlib.pyplot`` nor calls ``matplotlib.use``, so importing
it or drawing with it leaves the user's backend, the current figure and pyplot's figure list
as they were.  matplotlib itself is imported by the functions that draw, so ``import
regcli.plots`` is cheap; the overlay picture of the CLI (:func:`overlay_image`,
:func:`save_overlay_image`, from :mod:`regcli.overlay`) needs no matplotlib at all.

In a notebook::

    import regcli
    from regcli.plots import cost_curve_figure, overlay_figure

    result = regcli.register(fixed, moving)
    cost_curve_figure(result.cost_history, level_starts=result.level_starts)
    overlay_figure(fixed, moving, result.warped)
"""

from __future__ import annotations

import itertools

import numpy as np

from regcli.io import atomic_output
from regcli.overlay import checkerboard, magenta_green, overlay_image, save_overlay_image

__all__ = [
    "checkerboard",
    "cost_curve_figure",
    "cost_profile_figure",
    "joint_histogram_figure",
    "magenta_green",
    "new_figure",
    "optimizer_comparison_figure",
    "overlay_figure",
    "overlay_image",
    "plot_cost_curve",
    "plot_cost_profile",
    "plot_joint_histograms",
    "plot_optimizer_comparison",
    "plot_overlay",
    "save_figure",
    "save_overlay_image",
]


def new_figure(figsize=(6.4, 4.8), **options):
    """A :class:`matplotlib.figure.Figure` that pyplot does not know about.

    Nothing global changes: no backend is chosen, the figure is not pyplot's current figure
    and needs no ``plt.close``; it is garbage-collected like any object.  ``options`` go to
    ``Figure`` (``dpi``, ``layout``, ...).
    """
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, **options)


def save_figure(fig, path, *, dpi: int = 120, trim: bool = True):
    """Write ``fig`` to ``path`` atomically (format from the file ending); return ``path``.

    Drawn by the Agg canvas (vector formats by their own canvas), never through pyplot.
    ``trim`` crops the white margin around what is drawn (one more layout pass); a figure
    laid out with ``tight_layout`` has almost none, and skipping it saves time.  PNGs are
    compressed at zlib level 1: a few percent larger, several times faster to write.
    """
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if type(fig.canvas) is FigureCanvasBase:  # a bare Figure (not one of pyplot's windows)
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    fmt = str(path).rsplit(".", 1)[-1].lower()
    options = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight" if trim else None, format=fmt, **options)
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
        Image size of each level (``RegistrationResult.level_shapes``), written at the top of
        the level's stretch; without it levels are numbered.
    cost_label : str
        What the cost is (y-axis label), e.g. ``"ssd per pixel"``.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: the cost (y) against the iteration counted over all levels (x), drawn as
        one line per level (costs of different levels are not comparable, so no segment joins
        them), dashed vertical lines where a finer level starts, and the final cost as a red
        dot named in the legend.  The y axis is logarithmic when the costs are positive and
        span more than a decade; infinite or NaN costs leave gaps.
    """
    from matplotlib.transforms import blended_transform_factory

    values = _finite_or_nan(costs)
    fig = new_figure(figsize=(7.0, 4.2))
    ax = fig.subplots()
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
        ax.set_title(title, wrap=True)  # a long title breaks instead of running off
    fig.tight_layout()
    return fig


def plot_cost_curve(costs, path, **options):
    """Draw :func:`cost_curve_figure` (same keyword options) into ``path``; return ``path``."""
    # Laid out by tight_layout already: no trimming pass (``regcli register`` draws it).
    return save_figure(cost_curve_figure(costs, **options), path, trim=False)


#: Images drawn in :func:`overlay_figure` are reduced (block means) to at most this many
#: pixels a side: a panel is a few hundred pixels wide, and a 4096^2 image composited in full
#: took 2 GB and 13 s to draw.
DISPLAY_SIDE = 1024


def overlay_figure(fixed, moving, aligned, *, title: str | None = None, tiles: int = 8):
    """Before / after figure of a registration: four panels, with titles.

    The same panels as :func:`overlay_image` (the picture ``regcli register`` saves), drawn
    as a matplotlib figure for a notebook or a report.

    Parameters
    ----------
    fixed, moving, aligned : (rows, cols) arrays of the same shape
        The fixed image, the moving image as given, and the moving image resampled onto the
        fixed grid (``RegistrationResult.warped``).
    title : str, optional
        Figure title.
    tiles : int
        Checkerboard tiles per side.

    Returns
    -------
    matplotlib.figure.Figure
        Left column *before* (fixed vs ``moving``), right column *after* (fixed vs
        ``aligned``).  Top row: ``fixed`` in magenta over the other image in green, grey where
        the two agree.  Bottom row: checkerboards of the same pairs, where misalignment shows
        as edges broken at the tile borders.  ``aligned`` is drawn with the grey range of
        ``moving`` so both columns compare.  Images larger than :data:`DISPLAY_SIDE` pixels a
        side are drawn from block means (the panels are smaller than that anyway).
    """
    from regcli.overlay import overlay_panels

    panels = overlay_panels(fixed, moving, aligned, tiles=tiles, max_side=DISPLAY_SIDE)
    fig = new_figure(figsize=(8.0, 8.6))
    axes = fig.subplots(2, 2)
    titles = [
        "before: fixed (magenta) vs moving (green)",
        "after: fixed (magenta) vs aligned (green)",
        "before: checkerboard fixed / moving",
        "after: checkerboard fixed / aligned",
    ]
    for ax, panel, text in zip(axes.ravel(), panels, titles, strict=True):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(text, fontsize=10)
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
    """Figure with the cost curve of every optimiser (the course's comparison plot).

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
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: every curve against the iteration counted over all levels, one colour and
        legend entry per optimiser, each level its own line.  Logarithmic y axis when all
        costs are positive and span more than a decade.
    """
    fig = new_figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
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
        ax.set_title(title, wrap=True)  # a long title breaks instead of running off
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
        One panel per pair (three per row): the joint histogram as an image, ``image1``'s
        intensity along x and ``image2``'s along y, bin counts (or probabilities) on a
        logarithmic colour scale with the panel's own colour bar.  Empty bins are left blank
        (the axes' background), since log(0) has no colour.
    """
    import matplotlib
    from matplotlib.colors import LogNorm

    count = len(panels)
    columns = min(count, 3)  # wrap after three pairs so the panels stay readable
    rows = -(-count // columns)
    fig = new_figure(figsize=(4.6 * columns + 0.4, 4.3 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
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
        Title of the top panel (default: metric, parameter and transform, plus where the
        other parameters are held).

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
    fig = new_figure(figsize=(7.0, 3.0 * len(curves) + 0.6))
    axes = fig.subplots(len(curves), 1, sharex=True, squeeze=False)
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
