"""``register_stack()``: align every frame of a stack (a time-lapse, a z-stack) onto one grid.

References (pystackreg's choices):

* ``"first"``: every frame is registered onto frame 0;
* ``"previous"``: every frame onto the frame before it, and the matrices are chained so that
  every frame lands on frame 0's grid: ``M_0->t = compose(M_0->t-1, M_t-1->t)``;
* ``"mean"``: every frame onto the mean of all frames;
* an integer ``K``: every frame onto frame K.

Each frame's matrix maps a pixel of the reference grid to the pixel of that frame showing the
same thing, so ``regcli.warp(frame, matrix)`` is the frame aligned on the reference grid.

Neighbouring frames move little: each registration starts from the previous frame's answer
(``initial_matrix``, ``init="none"``), which is faster than the global search and keeps frames
that look alike from jumping to a far-away optimum.  A frame whose result is not trustworthy
(not converged, or quality verdict ``suspect``) is registered again with the default start.

:func:`iter_register_stack` streams: it holds the reference and at most two frames, so a stack
larger than memory can be aligned from a frame iterator (``regcli stack`` reads and writes TIFF
pages one at a time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from regcli._validate import _describe
from regcli.errors import InputError

__all__ = [
    "FrameResult",
    "StackResult",
    "iter_register_stack",
    "register_stack",
    "warp_frames",
]

#: The named references; an integer picks a frame.
REFERENCES = ("first", "previous", "mean")


@dataclass
class FrameResult:
    """The registration of one frame.

    Attributes
    ----------
    index : int
        Frame number, from 0.
    matrix : (3, 3) ndarray
        Reference grid -> this frame (for ``"previous"``: frame 0's grid -> this frame).
    params : dict
        ``matrix`` as the transform's named parameters (``angle_deg``, ``tx``, ``ty``...).
    converged : bool
        The registration (all of them, for a chained ``"previous"`` matrix: the last one)
        converged.  The reference frame itself is ``True``.
    quality : dict or None
        The result's quality verdict (``{"verdict": ..., "reasons": [...]}``) when the engine
        gives one.
    message : str
        Why the registration stopped (``"reference frame"`` for the reference itself).
    seconds : float
        Time spent registering this frame.
    searched : bool
        True if the start from the previous frame was not trustworthy and the frame was
        registered again from the default start (the global search).
    frame : ndarray or None
        The frame as read; :func:`iter_register_stack` hands it over so a caller can warp and
        write frames as they stream.  :func:`register_stack` drops it.
    """

    index: int
    matrix: np.ndarray
    params: dict
    converged: bool
    quality: dict | None
    message: str
    seconds: float
    searched: bool = False
    frame: np.ndarray | None = field(default=None, repr=False)

    @property
    def verdict(self) -> str | None:
        """``"ok"``/``"suspect"`` from :attr:`quality`, or ``None`` if there is none."""
        return None if self.quality is None else self.quality.get("verdict")

    @property
    def trustworthy(self) -> bool:
        """Converged, and not marked ``suspect``."""
        return self.converged and self.verdict != "suspect"


@dataclass
class StackResult:
    """Every frame's :class:`FrameResult`, in frame order, and the reference used."""

    reference: str | int
    frames: list[FrameResult]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def matrices(self) -> np.ndarray:
        """(T, 3, 3): reference grid -> frame t."""
        return np.array([f.matrix for f in self.frames])

    @property
    def params(self) -> list[dict]:
        return [f.params for f in self.frames]

    @property
    def quality(self) -> list[dict | None]:
        return [f.quality for f in self.frames]

    @property
    def converged(self) -> np.ndarray:
        return np.array([f.converged for f in self.frames], dtype=bool)


# --------------------------------------------------------------------------- checks


def check_reference(reference, frames: int | None = None):
    """``reference`` as one of :data:`REFERENCES` or a frame number (checked against
    ``frames`` when the count is known)."""
    if isinstance(reference, str) and reference in REFERENCES:
        return reference
    if isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        if reference < 0 or (frames is not None and reference >= frames):
            limit = "" if frames is None else f" (the stack has {frames} frames, 0..{frames - 1})"
            raise InputError(
                f"reference: frame {reference} does not exist{limit}", param="reference"
            )
        return int(reference)
    raise InputError(
        f"reference: expected 'first', 'previous', 'mean' or a frame number, got {reference!r}",
        param="reference",
    )


def _check_options(options: dict) -> dict:
    """``register``'s options for every frame, checked once."""
    from regcli.registration import check_options

    for name in ("initial_matrix", "callback"):
        if options.get(name) is not None:
            raise InputError(
                f"{name}: not used by register_stack (each frame starts from the previous "
                "frame's result); pass init= to choose the start of every frame",
                param=name,
            )
    options = {k: v for k, v in options.items() if k not in ("initial_matrix", "callback")}
    check_options(**options)
    return options


# --------------------------------------------------------------------------- one frame


#: How an error of ``register`` names the image at fault, and what a stack calls it.
_ROLES = {"moving": "the moving image", "fixed": "the fixed image", "image": "the image"}


def frame_error(index, exc: InputError) -> InputError:
    """``exc`` (about one image: ``param`` ``"moving"``, ``"fixed"`` or ``"image"``) said of
    frame ``index`` (an int, or a name such as ``"the mean frame"``): ``"frame 7: the image is
    constant ..."``.  The error's ``frame`` attribute holds ``index`` (the CLI adds the file);
    other errors come back as they are."""
    if exc.param not in _ROLES:
        return exc
    what = f"frame {index}" if isinstance(index, (int, np.integer)) else str(index)
    error = InputError(f"{what}: {exc.reason.replace(_ROLES[exc.param], 'the frame')}")
    error.frame = index
    return error


def _check_not_one_image(frames, name: str) -> None:
    """Refuse one 2-D image given as the stack: iterated, it is a stack of 1-D rows, and the
    error said only "frame 0 has shape (128,), expected 2-D"."""
    if isinstance(frames, np.ndarray) and frames.ndim == 2:
        raise InputError(
            f"{name}: expected a (T, rows, cols) stack or a sequence of 2-D frames, got a "
            f"single 2-D image of shape {frames.shape} (np.asarray(image)[None] is a stack of "
            "one frame)",
            param=name,
        )


def _reference_name(reference, index: int):
    """The frame a registration of frame ``index`` is made onto."""
    if reference == "mean":
        return "the mean frame"
    if reference == "previous":
        return index - 1
    return 0 if reference == "first" else reference


def _register_frame(fixed, moving, guess, options: dict):
    """Register ``moving`` onto ``fixed`` starting from ``guess`` (a matrix, or None for the
    default start); fall back to the default start when that result is not trustworthy.
    Returns ``(result, searched)``."""
    from regcli.registration import register

    if guess is None or options.get("init") is not None:
        return register(fixed, moving, **options), False
    first = register(fixed, moving, **{**options, "init": "none", "initial_matrix": guess})
    if first.trustworthy:
        return first, False
    second = register(fixed, moving, **options)
    if second.trustworthy or second.final_cost < first.final_cost:
        return second, True
    return first, False


def _identity_frame(index: int, transform, frame) -> FrameResult:
    return FrameResult(
        index,
        np.eye(3),
        transform.describe(transform.params_from_matrix(np.eye(3))),
        True,
        None,
        "reference frame",
        0.0,
        frame=frame,
    )


def iter_register_stack(
    frames: Iterable,
    *,
    reference="first",
    reference_frame=None,
    **register_options,
) -> Iterator[FrameResult]:
    """Register each frame of ``frames`` onto the reference; yield a :class:`FrameResult` per
    frame, in order, each before the next frame is read.

    Parameters
    ----------
    frames : iterable of (rows, cols) arrays
        The stack, frame by frame (an array of shape (T, rows, cols) iterates that way).
    reference : {"first", "previous", "mean"} or int
        See the module's description.
    reference_frame : (rows, cols) array, optional
        The reference image for ``"mean"`` (the mean of the frames, which a stream cannot
        compute in one pass); unused otherwise.
    **register_options
        Passed to :func:`regcli.register` for every frame (``transform``, ``metric``...).
        With ``init=`` given, every frame uses that start instead of the previous result.

    Yields
    ------
    FrameResult
    """
    from regcli.transforms import make_transform

    reference = check_reference(reference)
    options = _check_options(register_options)
    if reference == "mean" and reference_frame is None:
        raise InputError(
            "reference_frame: reference='mean' needs the mean image when frames are streamed",
            param="reference_frame",
        )
    _check_not_one_image(frames, "frames")
    target = None if reference_frame is None else np.asarray(reference_frame, dtype=np.float64)
    transform = previous = cumulative = guess = None
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise InputError(f"frames: frame {index} has shape {frame.shape}, expected 2-D")
        if transform is None:
            transform = make_transform(
                options.get("transform", "rigid"), center=options.get("center"), shape=frame.shape
            )
        if (index == 0 and reference in ("first", "previous")) or index == reference:
            record = _identity_frame(index, transform, frame)
            target = frame if reference != "previous" else target
            cumulative, guess = np.eye(3), np.eye(3)
        elif isinstance(reference, int) and index < reference and target is None:
            raise InputError(
                f"reference_frame: reference={reference} needs frame {reference} before frame "
                f"{index} when frames are streamed",
                param="reference_frame",
            )
        else:
            fixed = previous if reference == "previous" else target
            started = time.perf_counter()
            try:
                result, searched = _register_frame(fixed, frame, guess, options)
            except InputError as exc:
                at_fault = _reference_name(reference, index) if exc.param == "fixed" else index
                raise frame_error(at_fault, exc) from None
            guess = result.matrix
            matrix = result.matrix
            if reference == "previous":
                matrix = cumulative = result.matrix @ cumulative  # compose(M_0->t-1, M_t-1->t)
            record = FrameResult(
                index,
                matrix,
                transform.describe(transform.params_from_matrix(matrix)),
                bool(result.converged),
                result.quality.to_dict(),
                result.message,
                time.perf_counter() - started,
                searched,
                frame,
            )
        previous = frame
        yield record


def register_stack(stack, *, reference="first", **register_options) -> StackResult:
    """Align every frame of ``stack`` onto one reference grid.

    Parameters
    ----------
    stack : (T, rows, cols) array or sequence of (rows, cols) arrays
        The frames, in order.
    reference : {"first", "previous", "mean"} or int
        ``"first"``: onto frame 0; ``"previous"``: each frame onto the one before it, the
        matrices chained so every frame lands on frame 0's grid (StackReg's semantics);
        ``"mean"``: onto the mean of all frames; ``K``: onto frame K.
    **register_options
        Passed to :func:`regcli.register` for every frame (``transform``, ``metric``...).

    Returns
    -------
    StackResult
        ``.matrices`` (T, 3, 3) maps the reference grid to each frame:
        ``regcli.warp(stack[t], result.matrices[t])`` is frame t aligned; ``.params`` and
        ``.quality`` per frame.

    See Also
    --------
    iter_register_stack : the same, one frame at a time (for stacks larger than memory).
    warp_frames : apply the matrices to this or another stack (a second channel).

    Examples
    --------
    >>> import numpy as np, regcli
    >>> frame = np.zeros((64, 64)); frame[20:40, 24:44] = 1.0
    >>> stack = np.array([regcli.translate(frame, t, 0.5 * t) for t in range(3)])
    >>> found = regcli.register_stack(stack, reference="previous", transform="translation")
    >>> np.round(found.matrices[:, :2, 2], 1).tolist()  # (tx, ty) of each frame
    [[0.0, 0.0], [1.0, 0.5], [2.0, 1.0]]
    """
    frames = stack if isinstance(stack, np.ndarray) else list(stack)
    count = len(frames)
    if count == 0:
        raise InputError("stack: got no frames", param="stack")
    _check_not_one_image(frames, "stack")
    reference = check_reference(reference, count)
    reference_frame = None
    if reference == "mean":
        reference_frame = mean_frame(frames)
    elif isinstance(reference, int):
        reference_frame = np.asarray(frames[reference])
    results = iter_register_stack(
        frames, reference=reference, reference_frame=reference_frame, **register_options
    )
    return StackResult(reference, [replace(r, frame=None) for r in results])


def mean_frame(frames: Iterable) -> np.ndarray:
    """The mean of ``frames`` in float64, summed one frame at a time.  NaN pixels (no data)
    are left out of the mean of their pixel; a pixel that is NaN in every frame is NaN."""
    total = count = None
    for frame in frames:
        arr = np.asarray(frame, dtype=np.float64)
        nan = np.isnan(arr)
        if total is None:
            total, count = np.zeros(arr.shape), np.zeros(arr.shape, dtype=np.int64)
        total += np.where(nan, 0.0, arr)
        count += ~nan
    if total is None:
        raise InputError("stack: got no frames", param="stack")
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def warp_frames(frames: Iterable, matrices, *, order: int = 3, fill: float = 0.0):
    """Yield each frame resampled onto the reference grid by its matrix (float arrays).

    ``matrices`` is (T, 3, 3) (:attr:`StackResult.matrices`, or read from a transforms CSV)
    or any iterable of T 3x3 matrices; a stack with another number of frames is an
    :class:`InputError`.  ``order=0`` keeps the
    values of a label stack.  NaN pixels of a float frame (no data) stay NaN where they land;
    pixels that map outside the frame get ``fill``.
    """
    from regcli.resample import warp_keeping_nan

    if isinstance(matrices, Iterator):  # (numpy made an array of one object of it)
        matrices = list(matrices)
    expected = "matrices: expected (T, 3, 3) numbers (StackResult.matrices, or 3x3 matrices)"
    try:
        array = np.asarray(matrices, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{expected}, got {_describe(matrices)}", param="matrices") from None
    if array.size == 0:  # (no transforms: as many frames as that)
        array = array.reshape(0, 3, 3)
    if array.ndim != 3 or array.shape[1:] not in ((3, 3), (2, 3)):
        raise InputError(f"{expected}, got shape {array.shape}", param="matrices")
    matrices = array
    done = 0
    for frame in frames:
        if done == len(matrices):
            raise InputError(
                f"frames: the stack has more frames than the {len(matrices)} transforms",
                param="frames",
            )
        try:
            warped = warp_keeping_nan(frame, matrices[done], order=order, fill=fill)
        except InputError as exc:
            raise frame_error(done, exc) from None
        yield warped
        done += 1
    if done != len(matrices):
        raise InputError(
            f"frames: the stack has {done} frames but there are {len(matrices)} transforms",
            param="frames",
        )


def drift(matrices, shape) -> np.ndarray:
    """(T, 3): the shift of the image centre (tx, ty, pixels) and the rotation angle
    (degrees) of each reference -> frame matrix."""
    rows, cols = shape
    centre = np.array([(cols - 1) / 2.0, (rows - 1) / 2.0, 1.0])
    matrices = np.asarray(matrices, dtype=float).reshape(-1, 3, 3)
    shifts = matrices @ centre - centre
    angles = [math.degrees(math.atan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1])) for m in matrices]
    return np.column_stack([shifts[:, 0], shifts[:, 1], angles])
