"""``register_many()``: register many image pairs, in this process, on a local process pool or
on a Dask distributed cluster, yielding each pair's result as it finishes.

Every mode runs the same function on each pair (:func:`_run_job`: read the two images,
:func:`regcli.register`, then the caller's ``finish`` hook), so the matrices are the same in
every mode.  A pair that fails (unreadable file, an error while registering or in
``finish``) gives a :class:`PairResult` with its ``error``; the others still run.

Pair names (:func:`~regcli.pairnames.pair_names`, re-exported here) are safe file names,
unique within the batch: a caller can use them as folder names inside one output folder
without any of them leaving it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regcli import _many_dask
from regcli.errors import InputError, RegcliError
from regcli.pairnames import pair_names, safe_name

__all__ = ["PairResult", "default_workers", "pair_names", "register_many", "safe_name"]

log = logging.getLogger("regcli")

#: Decoded images kept per process for reuse (fixed images shared by several pairs).
_CACHE_SIZE = 2


# --------------------------------------------------------------------------- records


@dataclass
class PairResult:
    """One pair's outcome, as :func:`register_many` yields it.

    Attributes
    ----------
    index : int
        Position of the pair in the input (results arrive in the order they finish).
    name : str
        The pair's name: a safe file name, unique within the batch (see :func:`pair_names`).
    fixed, moving : str, path or ndarray
        The pair as given.
    result : RegistrationResult or None
        The registration (``None`` if the pair failed before it ended).
    error : str or None
        Why the pair failed, or ``None``.
    output : object
        What the ``finish`` hook returned (``None`` without one).
    seconds : float
        Wall time of the pair in its worker: reading, registering and ``finish``.
    data : object
        The ``"data"`` of the pair's dict in ``pairs`` (``None`` if none): anything the caller
        wants back with the pair, and ``finish`` sees.
    inputs : dict or None
        Only in the record ``finish`` gets: what the worker read, ``fixed_meta`` and
        ``moving_meta`` (:class:`~regcli.images.ImageMeta`) and ``moving_pixels`` (every
        channel of the moving image), so that the hook need not read the files again.
    """

    index: int
    name: str
    fixed: Any = field(repr=False)
    moving: Any = field(repr=False)
    result: Any = field(default=None, repr=False)
    error: str | None = None
    output: Any = field(default=None, repr=False)
    seconds: float = 0.0
    data: Any = field(default=None, repr=False)
    inputs: dict | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True if the pair registered (and ``finish``, if any, succeeded)."""
        return self.error is None


@dataclass
class _Job:
    """What a worker needs for one pair (pickled to pool and Dask workers)."""

    index: int
    name: str
    fixed: Any
    moving: Any
    options: dict
    finish: Callable | None = None
    reuse_fixed: bool = False
    data: Any = None
    #: The pair's own masks (paths or arrays; None: the options' masks, if any).
    masks: dict = field(default_factory=dict)
    #: The channel of multi-channel images to register on (``read_image(channel=)``).
    channel: int | None = None
    #: Pixel sizes over the files' (:func:`regcli.images.given_spacing`'s ``given``).
    spacing: dict = field(default_factory=dict)


@dataclass
class _Outcome:
    result: Any = None
    error: str | None = None
    output: Any = None
    seconds: float = 0.0


# --------------------------------------------------------------------------- the worker side

_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


def _read(value, role: str, *, reuse: bool, channel: int | None = None):
    """``(image, pixels, meta)`` of ``value`` (a path or an array; NaN pixels let through,
    as masked) as :func:`regcli.io.read_for_registration` gives them; a path read before in
    this process with the same size and modification time comes from the cache when
    ``reuse`` is set."""
    from regcli.images import ImageMeta
    from regcli.io import check_image, read_for_registration

    def read():
        return read_for_registration(value, channel=channel, allow_nan=True)

    if not isinstance(value, (str, os.PathLike)):
        image = check_image(value, name=role, allow_nan=True)
        return image, image, ImageMeta()
    if not reuse:
        return read()
    try:
        stat = os.stat(value)
        key = (os.fspath(value), stat.st_mtime_ns, stat.st_size, channel)
    except OSError:
        return read()  # raises the reader's own message
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    found = read()
    for array in found[:2]:
        array.flags.writeable = False  # shared between pairs: nobody may change it
    with _cache_lock:
        _cache[key] = found
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RegcliError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _named(message: str, job: _Job) -> str:
    """A core message about the ``fixed:``/``moving:`` array with the pair's file name."""
    for role in ("fixed", "moving"):
        value = getattr(job, role)
        if message.startswith(f"{role}:") and isinstance(value, (str, os.PathLike)):
            return f"{os.fspath(value)} ({role} image):{message[len(role) + 1 :]}"
    return message


def _run_job(job: _Job, *, lazy_warped: bool = False) -> _Outcome:
    """Read, register and finish one pair; every failure becomes the outcome's ``error``.
    ``lazy_warped``: hand the result back with ``warped`` not made (see :func:`_run_remote`).
    """
    from regcli.images import given_spacing, register_spacing
    from regcli.registration import register

    started = time.perf_counter()
    outcome = _Outcome()
    try:
        fixed, _, fixed_meta = _read(job.fixed, "fixed", reuse=job.reuse_fixed, channel=job.channel)
        moving, moving_pixels, moving_meta = _read(
            job.moving, "moving", reuse=False, channel=job.channel
        )
        masks = {
            name: _read(value, name, reuse=True)[0]
            for name, value in job.masks.items()
            if value is not None
        }
        spacing = {}
        if not {"fixed_spacing", "moving_spacing"} & set(job.options):  # numbers given win
            spacing = register_spacing(
                given_spacing(fixed_meta, "fixed", job.spacing),
                given_spacing(moving_meta, "moving", job.spacing),
            )
        outcome.result = register(fixed, moving, **{**job.options, **masks}, **spacing)
        make_warped = vars(outcome.result).get("_warped")  # a function until first read
        if job.finish is not None:
            record = PairResult(
                job.index, job.name, job.fixed, job.moving, outcome.result, data=job.data
            )
            read = {"fixed_meta": fixed_meta, "moving_meta": moving_meta}
            record.inputs = {**read, "moving_pixels": moving_pixels}
            outcome.output = job.finish(record, fixed, moving)
        if lazy_warped and callable(make_warped):
            outcome.result.warped = make_warped  # (made again on first access)
    except Exception as exc:  # a bad pair is a row with its error, not a crash of the batch
        log.debug("pair %s failed", job.name, exc_info=True)
        outcome.error = _named(_describe(exc), job)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _run_remote(job: _Job) -> _Outcome:
    """:func:`_run_job` in a pool or Dask worker: the result goes back with ``warped`` not
    made (the function that makes it carries the moving image, often 1 or 2 bytes a pixel
    where the cubic resampling is 8; most callers never read it)."""
    return _run_job(job, lazy_warped=True)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)  # the batch that started this worker is gone (killed): stop too


def _init_pool_worker() -> None:
    """A pool worker ignores Ctrl-C (the parent lets running pairs finish), ends on SIGTERM
    whatever handler its parent had, and exits when its parent dies (a ``kill -9`` of the
    batch must not leave idle workers behind).  The parent is the batch's process, or with
    forkserver the fork server, which exits with the batch."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()


# --------------------------------------------------------------------------- the three modes


def default_workers() -> int:
    """The number of CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _record(job: _Job, outcome: _Outcome) -> PairResult:
    return PairResult(
        job.index,
        job.name,
        job.fixed,
        job.moving,
        outcome.result,
        outcome.error,
        outcome.output,
        outcome.seconds,
        job.data,
    )


def _serial(jobs: list[_Job], stop=None) -> Iterator[PairResult]:
    try:
        for job in jobs:
            if _stopped(stop):
                return
            yield _record(job, _run_job(job))
    finally:
        with _cache_lock:
            _cache.clear()


def _pool_context():
    """fork where it is safe and cheap (Linux, no other thread yet: the workers start with
    regcli already imported), else the platform's safe default."""
    import multiprocessing

    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    method = "forkserver" if sys.platform == "linux" else None
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["regcli.many", "regcli.registration"])
    return context


def _pool(jobs: list[_Job], workers: int, stop=None) -> Iterator[PairResult]:
    """The pairs on a pool of ``workers`` processes, each pair submitted when a worker is free
    (a pair queued in a :class:`~concurrent.futures.ProcessPoolExecutor` cannot be taken back:
    after ``stop`` only the running pairs may finish)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = _pool_context()
    if context.get_start_method() == "fork":
        _read_shared_fixed(jobs)  # the workers start with them, decoded once in all
    size = min(workers, len(jobs))
    executor = ProcessPoolExecutor(
        max_workers=size, mp_context=context, initializer=_init_pool_worker
    )
    died = _Outcome(error="its worker process died (killed, or out of memory)")
    queued, running = list(reversed(jobs)), {}

    def fill() -> None:
        while queued and len(running) < size and not _stopped(stop):
            try:
                running[executor.submit(_run_remote, queued[-1])] = queued[-1]
            except BrokenProcessPool:  # the pool broke: every pair left fails the same way
                return
            queued.pop()

    try:
        _fork_workers(fill, context)
        while queued or running:
            fill()
            if not running:
                if queued and not _stopped(stop):
                    yield _record(queued.pop(), died)
                    continue
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            finished = []
            for future in sorted(done, key=lambda f: running[f].index):
                job = running.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    outcome = died
                finished.append(_record(job, outcome))
            fill()  # the free workers start their next pairs before the caller sees these
            yield from finished
    finally:
        if running and _stopped(stop):  # stopped, then closed: end the running pairs now
            _terminate(executor)
        # Pairs already running finish (their outputs are complete).
        executor.shutdown(wait=True, cancel_futures=True)
        with _cache_lock:
            _cache.clear()


def _fork_workers(fill, context) -> None:
    """``fill()``, which starts the pool's workers: forked, they begin with the parent's
    objects frozen (``gc.freeze``, as Python's documentation advises before a fork), so their
    collector never walks them, which would copy every page it touches (~4,500 page faults
    fewer a batch of two workers); the parent unfreezes them at once.  Nothing is done when
    the caller froze objects already."""
    import gc

    freeze = context.get_start_method() == "fork" and gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        fill()
    finally:
        if freeze:
            gc.unfreeze()


def _stopped(stop) -> bool:
    return stop is not None and stop.is_set()


def _terminate(executor) -> None:
    """SIGTERM every worker process of ``executor`` (they end at once: see
    :func:`_init_pool_worker`); a pair cut short leaves no folder (it is staged)."""
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        try:
            process.terminate()
        except (OSError, ValueError, AttributeError):  # already gone or closed
            continue


def _read_shared_fixed(jobs: list[_Job]) -> None:
    """Cache the fixed images pairs share before the pool forks: the workers start with them
    decoded (a file that cannot be read is left to its pairs, which report it)."""
    shared = {(os.fspath(job.fixed), job.channel): job for job in jobs if job.reuse_fixed}
    for job in list(shared.values())[:_CACHE_SIZE]:
        try:
            _read(job.fixed, "fixed", reuse=True, channel=job.channel)
        except Exception:  # the pair's own read says what is wrong
            continue


def _dask(jobs: list[_Job], client) -> Iterator[PairResult]:
    with contextlib.closing(_many_dask.as_finished(jobs, client, _run_remote)) as finished:
        for job, future in finished:
            try:
                outcome = future.result()
            except Exception as exc:  # KilledWorker, a lost scheduler...: this pair failed
                outcome = _Outcome(error=f"on the Dask cluster: {_describe(exc)}")
            yield _record(job, outcome)


# --------------------------------------------------------------------------- the public API


def _as_pair(item, index: int) -> tuple:
    """``(fixed, moving, name, data, masks)`` of one item of ``pairs``."""
    if isinstance(item, dict):
        masks = {k: item.get(k) for k in ("fixed_mask", "moving_mask") if item.get(k) is not None}
        try:
            return item["fixed"], item["moving"], item.get("name"), item.get("data"), masks
        except KeyError as exc:
            raise InputError(f"pairs: item {index} has no {exc.args[0]!r}", param="pairs") from None
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        return (*item, None, None, {}) if len(item) == 2 else (*item, None, {})
    raise InputError(
        f"pairs: item {index}: expected (fixed, moving), (fixed, moving, name) or a dict with "
        f"'fixed' and 'moving', got {type(item).__name__}",
        param="pairs",
    )


def _check_options(options: dict) -> dict:
    """``register``'s options, checked once before any pair runs (bad names or values raise
    here, not once per pair)."""
    from regcli.registration import check_options

    if "callback" in options:
        raise InputError("callback: not used by register_many", param="callback")
    check_options(**options)
    return dict(options)


def _check_spacing(spacing) -> dict:
    """``spacing`` (see :func:`register_many`) as ``{key: ((sy, sx), unit)}``, checked."""
    from regcli.images import check_spacing, normalize_unit

    if spacing is None:
        return {}
    keys = ("spacing", "fixed_spacing", "moving_spacing")
    if not isinstance(spacing, dict) or set(spacing) - set(keys):
        raise InputError(
            f"spacing: expected a dict with keys among {', '.join(keys)}, got {spacing!r}",
            param="spacing",
        )
    out = {}
    for key, value in spacing.items():
        if value is None:
            continue
        pair, unit = value if len(value) == 2 and not np.isscalar(value[0]) else (value, None)
        out[key] = (check_spacing(pair, f"spacing: {key}", param="spacing"), normalize_unit(unit))
    return out


def _check_workers(workers, client) -> int:
    if client is not None:
        if workers is not None:
            raise InputError("workers: give either workers or a Dask client", param="workers")
        _many_dask.check_client(client)
        return 0
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"workers: expected an integer >= 1, got {workers!r}", param="workers")
    return int(workers)


def register_many(
    pairs: Iterable,
    *,
    workers: int | None = None,
    client=None,
    finish: Callable | None = None,
    channel: int | None = None,
    spacing: dict | None = None,
    stop=None,
    **register_options,
) -> Iterator[PairResult]:
    """Register many image pairs; yield each pair's :class:`PairResult` as it finishes.

    Parameters
    ----------
    pairs : iterable
        Items ``(fixed, moving)``, ``(fixed, moving, name)`` or dicts with ``"fixed"``,
        ``"moving"`` and optionally ``"name"``, ``"data"`` (handed back in
        :attr:`PairResult.data`) and the pair's own ``"fixed_mask"`` / ``"moving_mask"``
        (over those of ``register_options``); images and masks are paths (read by
        :func:`regcli.read_image`; NaN pixels count as masked) or 2-D arrays of any two
        shapes.
    workers : int, optional
        ``1`` runs the pairs one by one in this process; ``N > 1`` on a local pool of ``N``
        processes.  Default: the number of CPUs (:func:`default_workers`).
    client : dask.distributed.Client, optional
        Run the pairs on this Dask cluster instead (``pip install 'regcli[dask]'``).  Its
        workers must see the paths at the same place (a shared file system) and have regcli
        installed.  A worker that dies is replaced by Dask and its pairs run again.
    finish : callable, optional
        ``finish(record, fixed_image, moving_image)``, called in the worker after a pair
        registered (``record`` is its :class:`PairResult`); what it returns becomes
        ``record.output``, and an exception in it the pair's ``error``.  It must be picklable
        (a module-level function or a ``functools.partial`` of one) for pool and Dask workers.
    channel : int, optional
        The channel of multi-channel images to register on (:func:`regcli.read_image`'s
        ``channel``); default: the luminance of colour images.
    spacing : dict, optional
        Pixel sizes over those the files give (TIFF resolution), as the command line's
        options: ``{"spacing": ((sy, sx), unit), "fixed_spacing": ..., "moving_spacing":
        ...}``, each key optional, a role's own over ``"spacing"``, ``unit`` may be None.
        Each pair's spacings reach :func:`regcli.register` through
        :func:`regcli.images.register_spacing` (``fixed_spacing=``/``moving_spacing=`` in
        ``register_options`` are used as they are instead).
    stop : threading.Event, optional
        Once set (by a signal handler, another thread...), no further pair starts: the pairs
        running in this process or on the pool finish and are yielded, then the iteration
        ends.  Closing the generator after ``stop`` is set (or an exception such as
        ``KeyboardInterrupt`` raised in it) terminates the pool's running pairs at once.  Not
        used with ``client`` (closing the generator cancels the cluster's pairs).
    **register_options
        Passed to :func:`regcli.register` for every pair (``transform``, ``metric``...).

    Yields
    ------
    PairResult
        In the order the pairs finish; ``record.index`` is the pair's input position.  The
        generator does not raise for a bad pair.  A path used as the fixed image of several
        pairs is read once per worker process.

    Raises
    ------
    InputError
        At the call, for a malformed ``pairs`` item, an unknown register option, or bad
        ``workers`` or ``client``.

    Notes
    -----
    The matrices are the same (to 1e-9) whatever the mode: every mode runs the same code on
    each pair.

    Examples
    --------
    >>> import numpy as np, regcli
    >>> fixed = np.zeros((64, 64)); fixed[20:40, 24:44] = 1.0
    >>> moving = regcli.translate(fixed, 3, -2)
    >>> [(r.name, r.ok) for r in regcli.register_many([(fixed, moving, "shift")], workers=1)]
    [('shift', True)]
    """
    items = [_as_pair(item, i) for i, item in enumerate(pairs)]
    options = _check_options(register_options)
    spacing = _check_spacing(spacing)
    count = _check_workers(workers, client)
    names = pair_names([item[1] for item in items], [item[2] for item in items])
    fixed_uses: dict[str, int] = {}
    for fixed, *_ in items:
        if isinstance(fixed, (str, os.PathLike)):
            fixed_uses[os.fspath(fixed)] = fixed_uses.get(os.fspath(fixed), 0) + 1
    jobs = [
        _Job(
            i,
            name,
            fixed,
            moving,
            options,
            finish,
            reuse_fixed=isinstance(fixed, (str, os.PathLike)) and fixed_uses[os.fspath(fixed)] > 1,
            data=data,
            masks=masks,
            channel=channel,
            spacing=spacing,
        )
        for i, ((fixed, moving, _, data, masks), name) in enumerate(zip(items, names, strict=True))
    ]
    if client is not None and jobs:
        return _dask(jobs, client)
    if count == 1 or len(jobs) <= 1:
        return _serial(jobs, stop)
    return _pool(jobs, count, stop)
