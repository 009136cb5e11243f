"""``regcli similarity``: how alike two images are, under one metric or all of them."""

from __future__ import annotations

from pathlib import Path

import click

from regcli.cli import helpers, interrupts, options


def _with_file_names(message: str, first: Path, second: Path) -> str:
    """The core names its arguments image1/image2; the user knows them by file name."""
    return message.replace("image1", str(first)).replace("image2", str(second))


@click.command(short_help="Similarity of two images: SSD, correlation, MI, NMI, gradient, pluim.")
@options.image_argument("image1")
@options.image_argument("image2")
@options.metric_opt(
    "all", extra=("all",), help_text="Which measure (registry name), or all of them."
)
@options.bins_opt(
    2,
    options.HIST_BINS_MAX,
    "Bins per image of the joint histogram (mi, nmi, pluim). Default: one bin per grey "
    "level for 8-bit images, 2 x (pixels)^(1/3) (at most 256) for 16-bit and float images.",
)
@options.sigma_opt
@options.mask_opts
@options.channel_opt
@options.json_opt
def similarity(image1, image2, metric, bins, sigma, fixed_mask, moving_mask, as_json, channel=None):
    """Compare IMAGE1 and IMAGE2 (same size) with one similarity measure or all of them.

    With --fixed-mask (IMAGE1's) and/or --moving-mask (IMAGE2's) only the pixels in use in
    both images are compared; NaN pixels of float images count as masked.

    \b
    Measures (names as in `regcli register --metric`):
      ssd          sum of squared differences (float64, no 8-bit wrap-around); lower is better
      correlation  Pearson correlation coefficient, -1..1
      mi           mutual information H(A) + H(B) - H(A,B), in nats, from the joint histogram
      nmi          normalised MI (H(A) + H(B)) / H(A,B), 1 (independent) .. 2 (identical)
      gradient     Pluim's gradient term: sum of min(|grad A|, |grad B|) (cos 2a + 1) / 2
      pluim        nmi x gradient (Pluim et al. 2000, the optimisation chapter's measure)

    Prints a table (metric, value, whether higher or lower is better), or with --json one
    object with one key per measure. With --metric all, a measure that is undefined for
    these images (correlation of a constant image) is reported as null, with a note on
    stderr; asking for it alone is an error (exit 1).

    \b
    Examples:
      regcli similarity BrainMRI_1.png BrainMRI_2.png
      regcli similarity BrainMRI_1.png BrainT2_1.png --metric nmi --bins 64 --json
    """
    from regcli.errors import InputError
    from regcli.metrics import METRICS

    first, second = helpers.read_pair(image1, image2, channel=channel, allow_nan=True)
    masks = helpers.read_masks(fixed_mask, moving_mask)
    interrupts.pause("work")
    try:
        first, second, mask = _pixels_in_use(first, second, masks)
    except InputError as exc:  # the core speaks of image1/image2 and of registering
        message = _with_file_names(str(exc), image1, image2)
        message = message.replace("are needed to register", "are needed to compare the images")
        raise InputError(message, param=exc.param) from None
    names = list(METRICS) if metric == "all" else [metric]
    given = {"bins": bins, "sigma": sigma}
    values = {}
    for name in names:
        entry = METRICS[name]
        chosen = {k: v for k, v in given.items() if k in entry.options and v is not None}
        try:
            values[name] = entry(first, second, mask=mask, **chosen)
        except InputError as exc:
            if exc.param in ("bins", "sigma"):  # a bad option value, whatever the images
                raise
            message = f"{name}: {_with_file_names(str(exc), image1, image2)}"
            if metric != "all":
                raise InputError(message) from exc
            click.echo(f"regcli: {message}", err=True)
            values[name] = None

    if as_json:
        helpers.echo_json(values)
        return
    rows = [("metric", "value", "better", "what")]
    for name, value in values.items():
        entry = METRICS[name]
        shown = "undefined" if value is None else f"{value:.6g}"
        better = "higher" if entry.higher_is_better else "lower"
        rows.append((name, shown, better, entry.label))
    widths = [max(len(row[k]) for row in rows) for k in range(3)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*padded, row[3]]))


def _pixels_in_use(first, second, masks: dict):
    """The two images with their NaN pixels filled, and the mask of the pixels in use in both
    (None: all of them)."""
    import numpy as np

    from regcli.masks import filled, valid_pixels

    valid = [
        valid_pixels(image, masks[mask_name], name=name, mask_name=mask_name)
        for image, name, mask_name in (
            (first, "image1", "fixed_mask"),
            (second, "image2", "moving_mask"),
        )
    ]
    if valid[0] is None and valid[1] is None:
        return first, second, None
    both = np.ones(first.shape, bool)
    for keep in valid:
        if keep is not None:
            both &= keep
    return filled(first, valid[0]), filled(second, valid[1]), both
