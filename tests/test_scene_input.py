"""Hostile scene files: refused from their header, before decoding, by read_scene and `ships detect`."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from competition.errors import DataError, ParameterError
from competition.scenes import check_scene_file, read_scene
from hostile import png_bomb  # tests/hostile.py
from ships.cli import app


@pytest.fixture
def bomb(tmp_path):
    """20 kB of PNG that decode to 13000x13000 pixels (507 MB as RGB)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(13000, 13000))
    return path


def test_a_png_bomb_is_refused_from_its_header(bomb):
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as err:
            read_scene(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (f"{bomb}: scene is 13000x13000 pixels (169.0 megapixels), more than the limit of 100 megapixels"
            in str(err.value))
    assert "crop or downscale it, or save it as an (H, W, 3) uint8 .npy array" in str(err.value)
    assert peak < 16 * 2**20  # decoding would take 507 MB
    with pytest.raises(DataError, match="169.0 megapixels"):
        check_scene_file(bomb)


def test_the_pixel_limit_is_a_parameter(tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(np.full((200, 300, 3), 7, np.uint8)).save(path)
    assert read_scene(path).shape == (200, 300, 3)
    assert check_scene_file(path, max_pixels=60_000) == (300, 200)
    with pytest.raises(DataError, match=r"scene is 300x200 pixels \(0.1 megapixels\), more than the limit of 0.05"):
        read_scene(path, max_pixels=50_000)
    with pytest.raises(ParameterError, match=r"max_pixels=0 is invalid; expected an int >= 1"):
        read_scene(path, max_pixels=0)


def test_a_header_beyond_pillows_bomb_limit_is_a_data_error(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bomb(200_000, 200_000, body=False))  # 40 gigapixels claimed
    with pytest.raises(DataError, match=r"huge.png: the image header claims too many pixels \(Image size"):
        read_scene(path, max_pixels=10**12)


def test_formats_pillow_hands_to_other_programs_are_refused(tmp_path):
    path = tmp_path / "scene.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 400 300\n")  # EPS: Pillow would run Ghostscript
    with pytest.raises(DataError, match=r"scene.png: not a readable image .* in one of the formats PNG, JPEG"):
        check_scene_file(path)


def test_ships_detect_refuses_a_png_bomb_before_anything_else(tmp_path, bomb):
    out = tmp_path / "detections"
    result = CliRunner().invoke(app, ["detect", str(bomb), "--workspace", str(tmp_path / "no-workspace"),
                                      "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "bomb.png: scene is 13000x13000 pixels (169.0 megapixels), more than the limit" in result.output
    assert not out.exists()
