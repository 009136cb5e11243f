"""Stacks in and out, frame by frame: multi-page TIFF (ImageJ and plain), .npy, frame files,
and the transforms CSV."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from regcli.errors import InputError
from regcli.io import write_image
from regcli.stack import FrameResult
from regcli.stackio import open_stack, read_transforms_csv, write_stack, write_transforms_csv


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    return rng.integers(0, 60000, size=(6, 20, 30), dtype=np.uint16)


def test_an_imagej_stack_is_read_page_by_page_and_written_back_with_its_metadata(
    tmp_path, frames, monkeypatch
):
    path = tmp_path / "in.tif"
    tifffile.imwrite(
        path,
        frames,
        imagej=True,
        resolution=(4.0, 4.0),
        metadata={"axes": "TYX", "unit": "um", "finterval": 2.5},
    )
    pages_read = []
    real = tifffile.TiffPage.asarray
    monkeypatch.setattr(
        tifffile.TiffPage,
        "asarray",
        lambda self, *a, **k: pages_read.append(self.index) or real(self, *a, **k),
    )
    with open_stack(path) as source:
        assert source.shape == (6, 20, 30) and source.dtype == np.uint16
        out = tmp_path / "out.tif"
        write_stack(
            out, (f[::-1] for f in source), shape=source.shape, dtype=source.dtype, tiff=source.tiff
        )
    assert pages_read == list(range(6))  # one page at a time, each once
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej and len(tif.pages) == 6
        assert tif.series[0].dtype == np.uint16
        assert tif.imagej_metadata["unit"] == "um" and tif.imagej_metadata["finterval"] == 2.5
        assert tif.pages[0].resolution == pytest.approx((4.0, 4.0))
        np.testing.assert_array_equal(tif.asarray(), frames[:, ::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]  # no temporary


def test_a_plain_multipage_tiff_keeps_dtype_pages_and_resolution(tmp_path):
    frames = np.linspace(0, 1, 4 * 8 * 9, dtype=np.float32).reshape(4, 8, 9)
    path = tmp_path / "plain.tif"
    tifffile.imwrite(
        path, frames, photometric="minisblack", resolution=(300, 300), resolutionunit="INCH"
    )
    with open_stack(path) as source:
        write_stack(
            tmp_path / "o.tif",
            iter(source),
            shape=source.shape,
            dtype=source.dtype,
            tiff=source.tiff,
        )
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert len(tif.pages) == 4 and tif.series[0].dtype == np.float32
        assert tif.pages[0].resolution == pytest.approx((300.0, 300.0))
        assert tif.pages[0].resolutionunit == 2  # inch
        np.testing.assert_array_equal(tif.asarray(), frames)


def test_npy_and_frame_files_and_folders(tmp_path, frames):
    np.save(tmp_path / "s.npy", frames)
    with open_stack(tmp_path / "s.npy") as source:
        np.testing.assert_array_equal(np.array(list(source)), frames)
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in (0, 1, 2, 10):
        write_image(folder / f"f{k}.png", frames[min(k, 5)])
    with open_stack(folder) as source:
        assert source.shape == (4, 20, 30)
        np.testing.assert_array_equal(source.frame(3), frames[5])  # f10 after f2
    with open_stack([folder / "f2.png", folder / "f0.png"]) as source:
        np.testing.assert_array_equal(source.frame(0), frames[2])


def test_unusable_stacks_are_refused_with_the_reason(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((3, 8, 8, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputError, match=r"with 3 channels; regcli aligns one channel: choose"):
        open_stack(tmp_path / "rgb.tif")
    with pytest.raises(InputError, match="no such file or folder"):
        open_stack(tmp_path / "nothing.tif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        open_stack(tmp_path / "empty")


def test_write_stack_leaves_nothing_when_a_frame_fails(tmp_path):
    def frames():
        yield np.zeros((4, 4), np.uint8)
        raise InputError("boom")

    with pytest.raises(InputError, match="boom"):
        write_stack(tmp_path / "o.tif", frames(), shape=(2, 4, 4), dtype=np.uint8)
    assert list(tmp_path.iterdir()) == []


def test_the_transforms_csv_round_trips_the_matrices(tmp_path):
    matrices = [np.eye(3), np.array([[0.99, -0.1, 2.5], [0.1, 0.99, -1.25], [0, 0, 1]])]
    records = [
        FrameResult(i, m, {"angle_deg": 0.0, "tx": 1.0, "center": [3.0, 4.0]}, True, None, "", 0.1)
        for i, m in enumerate(matrices)
    ]
    write_transforms_csv(tmp_path / "t.csv", records)
    header = (tmp_path / "t.csv").read_text().splitlines()[0]
    assert header.startswith("frame,m00,m01,m02,m10,m11,m12,angle_deg,tx,center_x,center_y")
    np.testing.assert_array_equal(read_transforms_csv(tmp_path / "t.csv"), np.array(matrices))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("frame,m00\n0,1\n", "expected a CSV with columns frame, m00"),
        ("frame,m00,m01,m02,m10,m11,m12\n1,1,0,0,0,1,0\n", "expected frame 0"),
        ("frame,m00,m01,m02,m10,m11,m12\n0,1,0,__import__,0,1,0\n", "must be numbers"),
        ("frame,m00,m01,m02,m10,m11,m12\n0,1,0,nan,0,1,0\n", "finite"),
    ],
)
def test_a_bad_transforms_csv_is_refused(tmp_path, text, match):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(InputError, match=match):
        read_transforms_csv(tmp_path / "t.csv")


def test_write_stack_refuses_a_stack_without_pixels_before_writing(tmp_path):
    with pytest.raises(InputError, match=r"shape \(0, 4, 4\) has no pixels"):
        write_stack(tmp_path / "o.tif", iter(()), shape=(0, 4, 4), dtype=np.uint8)
    assert list(tmp_path.iterdir()) == []
