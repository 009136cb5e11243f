"""register_stack: every reference recovers a known drift; previous composes in the right order;
frames stream one at a time; warp_frames applies the matrices."""

from __future__ import annotations

import numpy as np
import pytest
from many_cases import drift_stack

import regcli
from regcli.errors import InputError
from regcli.stack import drift, iter_register_stack, register_stack, warp_frames
from regcli.transforms import mean_displacement

SHAPE = (80, 96)


@pytest.fixture(scope="module")
def stack():
    return drift_stack(frames=8, shape=SHAPE)


def _errors(matrices, truths):
    return [mean_displacement(m, t, SHAPE) for m, t in zip(matrices, truths, strict=True)]


@pytest.mark.parametrize("reference", ["first", "previous"])
def test_first_and_previous_land_every_frame_on_frame_0(stack, reference):
    frames, truths = stack
    found = register_stack(frames, reference=reference)
    assert len(found) == len(frames) and found.converged.all()
    np.testing.assert_array_equal(found.matrices[0], np.eye(3))
    assert max(_errors(found.matrices, truths)) < 0.1


@pytest.mark.parametrize("reference", ["mean", 3])
def test_mean_and_frame_k_give_the_same_relative_motion(stack, reference):
    frames, truths = stack
    found = register_stack(frames, reference=reference)
    if reference == 3:
        np.testing.assert_array_equal(found.matrices[3], np.eye(3))
    # reference -> frame t, composed with frame 0 -> reference, is frame 0 -> frame t.
    to_reference = np.linalg.inv(found.matrices[0])
    relative = [m @ to_reference for m in found.matrices]
    assert max(_errors(relative, truths)) < 0.1


def test_previous_composes_each_step_after_the_chain_so_far():
    frame = np.zeros((64, 64))
    frame[20:40, 24:44] = 1.0
    frame[26:30, 28:36] = 0.5
    turn = regcli.make_transform("rigid", shape=frame.shape).matrix(np.radians([6.0, 0, 0]))
    shift = regcli.translation_matrix(3.0, -2.0)
    # Steps frame t-1 -> frame t: turn, then shift (which do not commute), then turn.
    truths = [np.eye(3), turn, shift @ turn, turn @ shift @ turn]
    assert mean_displacement(turn @ shift, shift @ turn, frame.shape) > 0.3  # order matters
    frames = [regcli.warp(frame, np.linalg.inv(t), order=3) for t in truths]
    found = register_stack(frames, reference="previous")
    errors = [
        mean_displacement(m, t, frame.shape) for m, t in zip(found.matrices, truths, strict=True)
    ]
    assert max(errors) < 0.1


def test_frames_are_read_one_at_a_time(stack):
    frames, _ = stack
    read = []

    def stream():
        for index, frame in enumerate(frames):
            read.append(index)
            yield frame

    for record in iter_register_stack(stream(), reference="previous"):
        assert read[-1] == record.index  # yielded before the next frame is read
        np.testing.assert_array_equal(record.frame, frames[record.index])


def test_an_untrusted_neighbour_start_falls_back_to_the_default_start(stack, monkeypatch):
    import regcli.registration

    frames, truths = stack
    calls = []
    real = regcli.registration.register

    def register(fixed, moving, **options):
        result = real(fixed, moving, **options)
        calls.append(options.get("init"))
        if options.get("init") == "none" and len(calls) == 3:  # frame 3's neighbour start
            result.converged = False
        return result

    monkeypatch.setattr(regcli.registration, "register", register)
    found = register_stack(frames[:5], reference="first")
    assert calls == ["none", "none", "none", None, "none"]
    assert [f.searched for f in found.frames] == [False, False, False, True, False]
    assert found.converged.all()
    assert max(_errors(found.matrices, truths[:5])) < 0.1


def test_warp_frames_aligns_and_checks_the_count(stack):
    frames, truths = stack
    aligned = list(warp_frames(frames, truths, order=1))
    assert len(aligned) == len(frames)
    inner = (slice(15, -15), slice(15, -15))
    assert np.abs(aligned[5][inner] - frames[0][inner].astype(float)).mean() < 60  # of ~4000
    with pytest.raises(InputError, match="has 7 frames but there are 8 transforms"):
        list(warp_frames(frames[:7], truths))
    with pytest.raises(InputError, match="more frames than the 7 transforms"):
        list(warp_frames(frames, truths[:7]))


def test_drift_is_the_centre_shift_and_the_angle():
    m = regcli.make_transform("rigid", shape=(41, 61)).matrix(np.array([np.radians(3.0), 2, -1]))
    tx, ty, angle = drift([m], (41, 61))[0]
    assert (round(tx, 9), round(ty, 9), round(angle, 9)) == (2.0, -1.0, 3.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reference": "last"}, "expected 'first', 'previous', 'mean' or a frame number"),
        ({"reference": 8}, r"frame 8 does not exist \(the stack has 8 frames"),
        ({"initial_matrix": np.eye(3)}, "initial_matrix: not used by register_stack"),
    ],
)
def test_bad_arguments_say_what_would_work(stack, kwargs, match):
    with pytest.raises(InputError, match=match):
        register_stack(stack[0], **kwargs)


def test_mean_on_a_stream_needs_the_mean_image(stack):
    with pytest.raises(InputError, match="reference_frame: reference='mean' needs the mean"):
        next(iter_register_stack(iter(stack[0]), reference="mean"))


def test_the_mean_frame_leaves_nan_pixels_out():
    from regcli.stack import mean_frame

    frames = np.array([[[1.0, np.nan, np.nan]], [[3.0, 4.0, np.nan]]])
    mean = mean_frame(iter(frames))
    np.testing.assert_array_equal(mean[0, :2], [2.0, 4.0])
    assert np.isnan(mean[0, 2])
