"""What ``regcli batch`` writes for one pair, run inside the worker that registered it.

:func:`write_pair` is the ``finish`` hook of :func:`regcli.register_many`: it writes the pair's
files into a hidden staging folder of OUTDIR and renames it into place, and returns the
pair's report (what ``transform.json`` holds) and, for the contact sheet, a small before/after
thumbnail.
"""

from __future__ import annotations

from pathlib import Path

from regcli._atomic import private_folder
from regcli.cli import _batch_folder as folder_io


def pair_report(result, *, name: str, fixed: str, moving: str, job: dict) -> dict:
    """The facts saved in the pair's ``transform.json`` and its results row: what
    ``register`` reports, plus the pair's name, its job and the aligned image's file name."""
    from regcli.cli.helpers import result_report

    report = result_report(result, name=name, fixed=fixed, moving=moving, batch=job)
    report["aligned"] = folder_io.aligned_name(moving)
    return report


def write_pair(record, fixed_image, moving_image, *, outdir, plots: str) -> dict:
    """Write the pair's folder (aligned image, ``transform.json``; with ``plots="all"`` the
    figures of ``register``) and return ``{"report": ..., "thumbnail": ...}``.

    ``record.data`` is the pair's job (the inputs as given and the register options), which
    ``transform.json`` keeps so that a rerun can tell whether the folder is the same
    registration.
    """
    from regcli.cli.register import (
        COST_PLOT_NAME,
        ITK_TRANSFORM_NAME,
        OVERLAY_NAME,
        TRANSFORM_NAME,
        aligned_for_output,
        write_outputs,
    )

    result, outdir = record.result, Path(outdir)
    job = record.data
    report = pair_report(
        result, name=record.name, fixed=job["fixed"], moving=job["moving"], job=job
    )
    final = folder_io.pair_folder(outdir, record.name)
    staging = None
    try:
        staging = folder_io.staging_folder(outdir, record.name)
        names = {"aligned": report["aligned"]}
        if plots == "all":  # everything register writes
            names.update(cost_plot=COST_PLOT_NAME, overlay=OVERLAY_NAME)
        names["transform"] = TRANSFORM_NAME
        names["itk_transform"] = ITK_TRANSFORM_NAME
        paths = {key: staging / name for key, name in names.items()}
        # register's own writer: the same files and transform.json as `regcli register`,
        # each written in place (the folder is published whole)
        with private_folder(staging):
            write_outputs(
                result,
                report,
                Path(job["fixed"]),
                Path(job["moving"]),
                fixed_image,
                moving_image,
                paths,
                inputs=pair_inputs(record, fixed_image, moving_image, job),
            )
        folder_io.publish(staging, final)
    except BaseException as exc:
        import shutil

        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        public = _public_error(exc, outdir, record.name, final)
        if public is None:
            raise
        raise public from exc
    thumbnail = None
    if plots == "qc":
        from regcli.qc import overlay_thumbnail

        thumbnail = overlay_thumbnail(
            fixed_image, moving_image, aligned_for_output(result.warped, moving_image)
        )
    return {"report": report, "thumbnail": thumbnail}


def _public_error(exc: BaseException, outdir: Path, name: str, final: Path):
    """The error of a pair that failed while writing, re-made to name the pair's own folder
    ``final`` instead of its hidden staging folder (removed by then, so naming it would send
    the user to a path that does not exist), and a full disk said plainly, as ``register``
    says it (:func:`~regcli.cli.outputs.describe_os_error`); ``None``: nothing to change."""
    import re

    from regcli.cli.outputs import DISK_FULL, describe_os_error, public_error
    from regcli.errors import RegcliError

    # The staging folder's random suffix is unknown here when making it failed: match it.
    hidden = re.compile(re.escape(str(outdir / f"{folder_io.STAGING_PREFIX}{name}-")) + r"[^/]*")
    renamed = public_error(exc, lambda text: hidden.sub(lambda _: str(final), text))
    error = exc if renamed is None else renamed
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return RegcliError(describe_os_error(error))  # (a batch row keeps only the text)
    return renamed


def pair_inputs(record, fixed_image, moving_image, job: dict):
    """The pair as ``register`` writes it (:class:`regcli.cli.helpers.Inputs`): every channel
    of the moving image and both files' metadata (what the worker read, ``record.inputs``;
    read again from the files only without it), with the batch's spacing options applied."""
    import os

    from regcli.cli.helpers import Inputs
    from regcli.images import ImageMeta, given_spacing, pair_spacing
    from regcli.io import read_for_registration

    read = record.inputs or {}
    metas, pixels = [], read.get("moving_pixels", moving_image)
    for role in ("fixed", "moving"):
        value = getattr(record, role)
        meta = read.get(f"{role}_meta", ImageMeta())
        if not read and isinstance(value, (str, os.PathLike)):
            _, full, meta = read_for_registration(value, channel=job.get("channel"), allow_nan=True)
            pixels = full if role == "moving" else pixels
        metas.append(given_spacing(meta, role, job.get("spacing")))
    return Inputs(fixed_image, moving_image, *pair_spacing(*metas), pixels)


def thumbnail_from_disk(outdir: Path, name: str, report: dict, fixed: Path, moving: Path):
    """The contact-sheet thumbnail of a pair kept from an earlier run (``None`` if its
    inputs cannot be read any more)."""
    from regcli.errors import RegcliError
    from regcli.io import read_image
    from regcli.qc import overlay_thumbnail

    try:
        aligned = read_image(outdir / name / report["aligned"])
        return overlay_thumbnail(read_image(fixed), read_image(moving), aligned)
    except (RegcliError, OSError, KeyError):
        return None
