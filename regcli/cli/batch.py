"""``regcli batch``: register many pairs into one output folder, resumably, on a process pool
or a Dask cluster."""

from __future__ import annotations

import contextlib
import csv
import functools
import threading
from pathlib import Path

import click

from regcli.cli import _batch_folder as folder_io
from regcli.cli import _batch_signals as batch_signals
from regcli.cli import _scheduler as scheduler_io
from regcli.cli import helpers, interrupts, options, verdict

#: A pair's input files (its job records their fingerprint: a rerun redoes the pair when one
#: of them changed).
ROLES = ("fixed", "moving", "fixed_mask", "moving_mask")


@click.command(short_help="Register many pairs into one folder (resumable; pool or Dask).")
@click.argument("images", nargs=-1, type=options.PathValue(), metavar="[FIXED MOVING...]")
@click.option(
    "--pairs",
    "pairs_file",
    type=options.PathValue(dir_okay=False),
    metavar="PAIRS.csv",
    help="CSV with columns fixed,moving and optionally name, fixed_mask, moving_mask (paths "
    "relative to the CSV's folder), instead of FIXED MOVING...",
)
@options.output_opt(
    "Folder for the results, created if needed.",
    name="outdir",
    metavar="OUTDIR",
    required=True,
    file_okay=False,
)
@options.registration_opts
@options.mask_opts
@options.init_transform_opt
@options.channel_opt
@options.spacing_opts
@options.plots_opt(
    "qc",
    extra=("qc",),
    help_text="none: no figures; qc: one contact sheet of before/after thumbnails for all "
    "pairs; all: also register's figures (cost.png, overlay.png) in every pair's folder.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes registering pairs at once; 1 runs them in this process "
    "[default: the number of CPUs].",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    callback=lambda ctx, param, value: scheduler_io.check_address(value),
    help="Run the pairs on the Dask distributed cluster whose scheduler is at ADDRESS "
    "(tcp://host:port); needs " + scheduler_io.INSTALL_DASK + ".",
)
@options.overwrite_opt
@options.allow_suspect_opt("a pair's result")
@options.json_opt
@options.quiet_opt
@click.pass_context
def batch(ctx, images, pairs_file, outdir, plots, workers, scheduler, overwrite, **kwargs):
    """Register many pairs: MOVING images onto one FIXED image, or the pairs of a CSV.

    \b
      regcli batch FIXED MOVING... -o OUTDIR
      regcli batch --pairs PAIRS.csv -o OUTDIR

    Every registration option of `regcli register` applies to every pair (--fixed-mask and
    --moving-mask too, or a pair's own masks from the CSV's fixed_mask and moving_mask
    columns; --spacing and the files' TIFF resolution too; fixed and moving may differ in
    size). Each pair gets a folder in OUTDIR named after its moving image (folder names are
    added when two moving images share a name; a CSV's name column is made a safe file name)
    holding the aligned image and transform.json, as `register` writes them. OUTDIR also
    holds:

    \b
      results.csv, results.jsonl   one row per pair: fixed, moving, name, folder, status,
                                   matrix, params, quality, converged, message, seconds,
                                   error (empty if it worked); in the CSV the matrix is
                                   m00..m12 and each parameter a column
      contact_sheet.png            (--plots qc) before/after thumbnails, name and verdict

    A pair that fails (unreadable file, a mask of another shape...) is a row with its error;
    the others still run. A rerun skips the pairs whose folder is complete and whose input files
    have the same size and modification time as then (--overwrite redoes them all); an
    interrupted or killed batch loses no finished pair and leaves no partial file.

    Exit codes: 0 all pairs registered and trustworthy; 1 a pair failed; 3 a result is not
    converged or is suspect (1 wins over 3; --allow-suspect: 0); 2 usage error.

    \b
    Examples:
      regcli batch BrainMRI_1.png scans/*.png -o aligned/ --plots none
      regcli batch --pairs pairs.csv -o out/ --workers 4
      regcli batch --pairs pairs.csv -o out/ --scheduler tcp://scheduler-host:8786
    """
    as_json = kwargs.pop("as_json")
    allow_suspect = kwargs.pop("allow_suspect")
    register_options = {k: kwargs[k] for k in options.REGISTRATION_OPTIONS}
    helpers.check_register_options(**register_options)
    initial_transform = kwargs.pop("initial_transform")
    if initial_transform is not None and register_options["init"] not in (None, "none"):
        raise click.UsageError(
            f"give either --initial-transform or --init {register_options['init']}, not both"
        )
    pairs = _read_pairs(images, pairs_file)
    for pair in pairs:  # the masks of every pair, unless the CSV gives the pair its own
        for name in ("fixed_mask", "moving_mask"):
            if pair.get(name) is None and kwargs[name] is not None:
                pair[name], pair[f"read_{name}"] = str(kwargs[name]), kwargs[name]
    if initial_transform is not None:
        register_options["initial_matrix"] = _initial_matrix(initial_transform, pairs, kwargs)
    channel = kwargs.pop("channel")
    if scheduler is not None and workers is not None:
        raise click.UsageError("give either --workers or --scheduler, not both")
    client = scheduler_io.connect(scheduler) if scheduler is not None else None
    # What the batch reads: none of it may be replaced by what it writes.
    inputs = [pairs_file, initial_transform]
    inputs += [pair.get(f"read_{role}") for pair in pairs for role in ROLES]
    try:
        with folder_io.locked(outdir):
            summary = _run(
                ctx,
                pairs,
                outdir,
                inputs=inputs,
                plots=plots,
                workers=workers,
                client=client,
                overwrite=overwrite,
                register_options=register_options,
                channel=channel,
                spacing={
                    key: kwargs[key]
                    for key in ("spacing", "fixed_spacing", "moving_spacing")
                    if kwargs[key] is not None
                },
            )
    except folder_io.BatchFolderError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if client is not None:
            client.close()
    _report(summary, as_json=as_json)
    if summary["failed"]:
        raise click.ClickException(
            f"{helpers.plural(summary['failed'], 'pair')} of {summary['pairs']} failed; see "
            f"{outdir / folder_io.RESULTS_CSV}"
        )
    if summary["untrusted"] and not allow_suspect:
        click.echo(
            f"regcli: {helpers.plural(summary['untrusted'], 'result')} not converged or "
            f"suspect (see {outdir / folder_io.RESULTS_CSV})",
            err=True,
        )
        ctx.exit(verdict.EXIT_SUSPECT)


# --------------------------------------------------------------------------- inputs


def _read_pairs(images, pairs_file) -> list[dict]:
    """``[{"fixed", "moving" (as given), "read_fixed", "read_moving", "name"}]``."""
    if pairs_file is not None:
        if images:
            raise click.UsageError("give either --pairs PAIRS.csv or FIXED MOVING..., not both")
        return _pairs_csv(pairs_file)
    if len(images) < 2:
        raise click.UsageError("expected FIXED and at least one MOVING image, or --pairs")
    fixed = images[0]
    return [
        {"fixed": str(fixed), "moving": str(m), "read_fixed": fixed, "read_moving": m}
        for m in images[1:]
    ]


def _pairs_csv(path: Path) -> list[dict]:
    from regcli.errors import InputError

    base = path.parent
    pairs = []
    for line, row in _csv_rows(path):
        masks = {}
        for name in ("fixed_mask", "moving_mask"):
            if row.get(name):
                masks.update({name: row[name], f"read_{name}": base / row[name]})
        if not row.get("fixed") and not row.get("moving"):
            continue  # a blank line
        if not row.get("fixed") or not row.get("moving"):
            raise InputError(f"{path}: line {line}: both fixed and moving are needed")
        pairs.append(
            {
                "fixed": row["fixed"],
                "moving": row["moving"],
                "read_fixed": base / row["fixed"],
                "read_moving": base / row["moving"],
                "name": row.get("name") or None,
                **masks,
            }
        )
    if not pairs:
        raise InputError(f"{path}: no pairs in it: add a line fixed,moving for each pair")
    return pairs


def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    """``(line, {column: value})`` of the pairs CSV's rows after the header (values stripped;
    a missing trailing field is empty).  A row with more fields than the header, or a header
    without fixed and moving, is an :class:`~regcli.errors.InputError` naming the line."""
    from regcli.errors import InputError

    rows, reader = [], None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)  # (an unclosed quote is an error)
            header = [c.strip() for c in next(reader, [])]
            if not {"fixed", "moving"} <= set(header):
                got = ",".join(header) if any(header) else "an empty first line"
                raise InputError(
                    f"{path}: expected a CSV with a header line naming the columns fixed,moving "
                    f"(and optionally name, fixed_mask, moving_mask), got {got}"
                )
            for fields in reader:
                if len(fields) > len(header):
                    raise InputError(
                        f"{path}: line {reader.line_num} has {len(fields)} fields, the header "
                        f"has {len(header)} ({','.join(header)}); quote a value that holds a "
                        "comma, or add the column to the header"
                    )
                values = [v.strip() for v in fields] + [""] * (len(header) - len(fields))
                if any(c in v for v in values for c in "\r\n\0"):
                    raise InputError(
                        f"{path}: line {reader.line_num}: a value holds a line break or a NUL "
                        "character (a quoted field spanning lines?); give one pair per line"
                    )
                rows.append((reader.line_num, dict(zip(header, values, strict=True))))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        where = f"line {reader.line_num}: " if isinstance(exc, csv.Error) and reader else ""
        raise InputError(f"{path}: {where}cannot read the pairs CSV ({exc})") from exc
    return rows


# --------------------------------------------------------------------------- the run


def _initial_matrix(path: Path, pairs: list[dict], kwargs: dict):
    """``--initial-transform``'s pixel matrix, the same for every pair: a JSON as it is, an
    ITK file converted with the spacing options, else the first pair's files' spacing."""
    from regcli.images import ImageMeta, pair_spacing
    from regcli.io import read_for_registration

    metas = []
    for role in ("fixed", "moving"):
        given = kwargs.get(f"{role}_spacing") or kwargs.get("spacing")
        if given is None and Path(path).suffix.lower() != ".json":
            first = pairs[0][f"read_{role}"]
            meta = read_for_registration(first, channel=kwargs["channel"], allow_nan=True)[2]
            given = (meta.spacing, meta.unit)
        metas.append(ImageMeta().with_spacing(*(given or (None, None))))
    inputs = helpers.Inputs(None, None, *pair_spacing(*metas), None)
    return helpers.initial_matrix(path, inputs)


def _run(
    ctx,
    pairs,
    outdir,
    *,
    inputs=(),
    plots,
    workers,
    client,
    overwrite,
    register_options,
    channel=None,
    spacing=None,
) -> dict:
    from regcli.many import default_workers, pair_names, register_many

    names = pair_names(
        [p["moving"] for p in pairs], [p.get("name") for p in pairs], reserved=folder_io.RESERVED
    )
    jobs = {}
    for index, (pair, name) in enumerate(zip(pairs, names, strict=True)):
        pair.update(index=index, name=name)
        jobs[name] = {"fixed": pair["fixed"], "moving": pair["moving"], "options": register_options}
        for mask in ("fixed_mask", "moving_mask"):  # (only when given: kept folders match)
            if pair.get(mask) is not None:
                jobs[name][mask] = pair[mask]
        if channel is not None:
            jobs[name]["channel"] = channel
        if spacing:
            jobs[name]["spacing"] = spacing
        jobs[name][folder_io.FILES] = folder_io.fingerprint(
            {role: pair.get(f"read_{role}") for role in ROLES}
        )
    jobs = _jsonable(jobs)
    rows, thumbnails, todo = {}, {}, []
    for pair in pairs:
        row = _kept_row(outdir, pair, jobs[pair["name"]], overwrite=overwrite)
        if row is None:
            todo.append(pair)
        else:
            rows[pair["name"]] = row
    folder_io.refuse_inputs(outdir, inputs, [p["name"] for p in todo], contact_sheet=plots == "qc")
    finish = functools.partial(_batch_pair_writer(), outdir=str(outdir), plots=plots)
    stop = threading.Event() if client is None else None  # (Dask: Ctrl-C cancels at once)
    records = register_many(
        [
            {
                "fixed": p["read_fixed"],
                "moving": p["read_moving"],
                "name": p["name"],
                "data": jobs[p["name"]],
                "fixed_mask": p.get("read_fixed_mask"),
                "moving_mask": p.get("read_moving_mask"),
            }
            for p in todo
        ],
        workers=workers,
        client=client,
        finish=finish,
        channel=channel,
        spacing=spacing,
        stop=stop,
        **register_options,
    )
    by_name = {p["name"]: p for p in pairs}
    interrupted = None
    bar = helpers.count_bar(
        ctx, total=len(pairs), initial=len(pairs) - len(todo), unit="pair", description="batch"
    )
    at_once = 1 if workers == 1 else min(workers or default_workers(), len(todo))
    collected = [0]

    def running() -> int:  # pairs started and not yet collected (none queued: see many._pool)
        return min(at_once, len(todo) - collected[0])

    try:
        with (
            batch_signals.sigterm_raises(),
            batch_signals.first_sigint_stops(stop, running, newline=not bar.disable),
            contextlib.closing(records),
            bar,
        ):
            for record in records:
                rows[record.name] = _new_row(by_name[record.name], record)
                if record.output is not None:
                    thumbnails[record.name] = record.output["thumbnail"]
                collected[0] += 1
                bar.update(1)
        if stop is not None and stop.is_set():
            interrupted = 130  # the running pairs finished: tables and contact sheet follow
    except (KeyboardInterrupt, interrupts.Interrupted) as exc:
        interrupted = getattr(exc, "exit_code", 130)
        thumbnails = None  # stopped at once: no contact sheet
    except batch_signals.Terminated:
        interrupted, thumbnails = 143, None
    finally:
        folder_io.clean(outdir)
        # Pairs whose workers finished after the results stopped being collected (an
        # interrupt lets running pairs finish) are in their folders: list them too.
        for pair in pairs:
            if pair["name"] not in rows:
                row = _kept_row(outdir, pair, jobs[pair["name"]], overwrite=False)
                if row is not None and row["status"] == "kept":
                    rows[pair["name"]] = {**row, "status": "registered"}
        folder_io.write_tables(outdir, list(rows.values()))
    if plots == "qc" and thumbnails is not None:  # (of the pairs done, if interrupted)
        _contact_sheet(outdir, pairs, rows, thumbnails)
    elif plots != "qc" and overwrite:  # --overwrite replaces the earlier run's outputs
        folder_io.remove_earlier(outdir / folder_io.CONTACT_SHEET, inputs)
    if interrupted:
        click.echo(
            f"regcli: interrupted; {len(rows)} of {len(pairs)} pairs are done and kept in "
            f"{outdir} (run the same command again to finish)",
            err=True,
        )
        ctx.exit(interrupted)
    return _summary(outdir, pairs, rows, plots=plots)


def _batch_pair_writer():
    from regcli.cli._batch_pair import write_pair

    return write_pair


def _jsonable(value):
    import json

    from regcli._json import dumps

    return json.loads(dumps(value))


# --------------------------------------------------------------------------- rows


def _base_row(pair: dict) -> dict:
    return {
        "index": pair["index"],
        "name": pair["name"],
        "fixed": pair["fixed"],
        "moving": pair["moving"],
        "folder": None,
        "matrix": None,
        "params": None,
        "quality": None,
        "converged": None,
        "message": None,
        "seconds": None,
        "error": None,
    }


def _from_report(row: dict, report: dict, status: str) -> dict:
    row.update(
        status=status,
        folder=report["name"],
        matrix=report["matrix"],
        params=report["params"],
        quality=report.get("quality"),
        converged=report["converged"],
        message=report["message"],
        seconds=report["seconds"],
    )
    return row


def _kept_row(outdir: Path, pair: dict, job: dict, *, overwrite: bool) -> dict | None:
    """The row of a pair complete from an earlier run, or ``None`` if it must run (or, for a
    folder of another registration without --overwrite, its error row)."""
    if overwrite:
        return None
    try:
        report = folder_io.completed(outdir, pair["name"], job)
    except (FileExistsError, OSError) as exc:
        return {**_base_row(pair), "status": "failed", "error": str(exc)}
    return None if report is None else _from_report(_base_row(pair), report, "kept")


def _new_row(pair: dict, record) -> dict:
    row = _base_row(pair)
    if record.output is not None:
        row = _from_report(row, record.output["report"], "registered")
    elif record.result is not None:  # registered, but writing its outputs failed
        row.update(matrix=record.result.matrix, converged=record.result.converged)
    if record.error is not None:
        row.update(status="failed", error=record.error, folder=None)
    return row


def _trusted(row: dict) -> bool:
    return bool(row["converged"]) and (row.get("quality") or {}).get("verdict") != "suspect"


def _contact_sheet(outdir: Path, pairs, rows: dict, thumbnails: dict) -> None:
    from regcli.cli._batch_pair import thumbnail_from_disk
    from regcli.qc import contact_sheet, save_png

    tiles, labels, statuses = [], [], []
    for pair in pairs:
        row = rows.get(pair["name"])
        if row is None:  # not done (an interrupted batch)
            continue
        tile = thumbnails.get(pair["name"])
        if tile is None and row["status"] == "kept":
            report = {"aligned": folder_io.aligned_name(pair["moving"])}
            tile = thumbnail_from_disk(
                outdir, pair["name"], report, pair["read_fixed"], pair["read_moving"]
            )
        if row["status"] == "failed":
            status, word = "error", "ERROR"
        elif _trusted(row):
            status, word = "ok", (row.get("quality") or {}).get("verdict") or "converged"
        else:
            status = "suspect"
            word = (row.get("quality") or {}).get("verdict") or "not converged"
        tiles.append(tile)
        labels.append(f"{pair['name']}: {word}")
        statuses.append(status)
    save_png(outdir / folder_io.CONTACT_SHEET, contact_sheet(tiles, labels, statuses))


def _summary(outdir: Path, pairs, rows: dict, *, plots: str) -> dict:
    values = list(rows.values())
    failed = sum(row["status"] == "failed" for row in values)
    return {
        "outdir": outdir,
        "pairs": len(pairs),
        "registered": sum(row["status"] == "registered" for row in values),
        "kept": sum(row["status"] == "kept" for row in values),
        "failed": failed,
        "untrusted": sum(row["status"] != "failed" and not _trusted(row) for row in values),
        "results": [outdir / folder_io.RESULTS_CSV, outdir / folder_io.RESULTS_JSONL],
        "contact_sheet": outdir / folder_io.CONTACT_SHEET if plots == "qc" else None,
    }


def _report(summary: dict, *, as_json: bool) -> None:
    if as_json:
        helpers.echo_json(summary)
        return
    click.echo(
        f"{helpers.plural(summary['pairs'], 'pair')}: {summary['registered']} registered, "
        f"{summary['kept']} kept "
        f"from an earlier run, {summary['failed']} failed, {summary['untrusted']} not "
        f"converged or suspect; results in {summary['outdir']}/"
    )
