"""Each step that makes a user's picture into a training-like 8x8 digit, checked on its
own against values worked out by hand or by plain NumPy, then the whole chain on
upscaled, moved and recoloured training digits (which it must give back)."""
import time

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("sklearn")

from convgrad.apps import digit_image as di  # noqa: E402


def _save(path, array, mode=None):
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)
    return path


# ----------------------------------------------------------------------------------------
# 1. reading: grayscale 0..1, transparency on white, 16-bit, large pictures, bad files


def test_read_image_uses_the_luma_of_each_colour(tmp_path):
    colours = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    gray = di.read_image(_save(tmp_path / "c.png", colours))
    luma = colours[0] @ np.array([0.299, 0.587, 0.114]) / 255          # ITU-R 601-2
    assert gray.shape == (1, 4)
    np.testing.assert_allclose(gray[0], luma, atol=1 / 255)


def test_read_image_puts_transparent_pixels_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)            # black; opaque on the diagonal only
    rgba[0, 0, 3] = rgba[1, 1, 3] = 255
    rgba[0, 1, 3] = 128                             # half transparent: mid gray
    gray = di.read_image(_save(tmp_path / "t.png", rgba))
    np.testing.assert_allclose(gray, [[0, 127 / 255], [1, 0]], atol=1.5 / 255)


def test_read_image_scales_16_bit_by_its_range(tmp_path):
    values = np.array([[0, 16384, 65535]], np.uint16)
    gray = di.read_image(_save(tmp_path / "deep.png", values))
    np.testing.assert_allclose(gray, values / 65535, atol=1e-6)


def test_read_image_shrinks_large_pictures_by_area(tmp_path):
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (di.WORK_SIZE * 2, di.WORK_SIZE * 2 + 2)).astype(np.uint8)
    gray = di.read_image(_save(tmp_path / "big.png", big))
    assert max(gray.shape) == di.WORK_SIZE
    assert abs(gray.mean() - big.mean() / 255) < 0.01


def test_read_image_refuses_a_decompression_bomb_quickly(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    bomb = tmp_path / "bomb.png"          # 1 KB that declares 10**10 pixels
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", 10**5, 10**5, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"'.*bomb.png' is too large to read safely "
                                         r"\(.*10000000000 pixels.*MAX_IMAGE_PIXELS"):
        di.read_image(bomb)
    assert time.perf_counter() - start < 1.0


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"'.*nothing.png' does not exist"):
        di.read_image(tmp_path / "nothing.png")
    with pytest.raises(ValueError, match=r"'.*' is not a file"):
        di.read_image(tmp_path)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"cannot read image file '.*text.png'"):
        di.read_image(tmp_path / "text.png")
    truncated = tmp_path / "cut.png"
    _save(tmp_path / "whole.png", np.zeros((64, 64), np.uint8) + 7)
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cannot read image file '.*cut.png'"):
        di.read_image(truncated)


# ----------------------------------------------------------------------------------------
# 2. background: inverted if light, then background 0 and ink 1


def test_ink_on_black_inverts_a_light_background():
    gray = np.full((6, 6), 0.9, np.float32)
    gray[2:4, 2:4] = 0.1                            # dark ink
    gray[2, 2] = 0.5                                # half-tone ink
    ink, inverted = di.ink_on_black(gray)
    assert inverted
    expected = np.zeros((6, 6))
    expected[2:4, 2:4] = 1.0
    expected[2, 2] = (0.9 - 0.5) / (0.9 - 0.1)      # (background - g) / (background - ink)
    np.testing.assert_allclose(ink, expected, atol=1e-6)


def test_ink_on_black_keeps_a_dark_background():
    gray = np.full((5, 7), 0.2, np.float32)
    gray[1:4, 3] = 0.7
    ink, inverted = di.ink_on_black(gray)
    assert not inverted
    assert ink.max() == 1.0 and ink[0, 0] == 0.0 and ink[2, 3] == 1.0


def test_ink_on_black_takes_the_border_median_not_the_mean():
    """A bold dark digit can cover most of the picture: the border still says 'light'."""
    gray = np.full((10, 10), 0.95, np.float32)
    gray[1:9, 1:9] = 0.05                           # 64% of the pixels are ink
    assert gray.mean() < 0.5
    ink, inverted = di.ink_on_black(gray)
    assert inverted and ink[5, 5] == 1.0 and ink[0, 0] == 0.0


def test_ink_on_black_refuses_a_blank_picture():
    with pytest.raises(ValueError, match="blank"):
        di.ink_on_black(np.full((9, 9), 0.4) + np.eye(9) * 0.01)


# ----------------------------------------------------------------------------------------
# 3.-6. crop, pad, resize, scale


def test_crop_to_ink_is_the_bounding_box_above_the_threshold():
    rng = np.random.default_rng(1)
    ink = rng.uniform(0, di.INK * 0.9, (20, 30))    # faint noise: not ink
    ink[4:11, 17:25] = rng.uniform(0.5, 1.0, (7, 8))
    crop = di.crop_to_ink(ink)
    np.testing.assert_array_equal(crop, ink[4:11, 17:25])
    with pytest.raises(ValueError, match="no ink"):
        di.crop_to_ink(np.zeros((4, 4)))


@pytest.mark.parametrize("shape, where", [((3, 7), (slice(2, 5), slice(0, 7))),
                                          ((7, 3), (slice(0, 7), slice(2, 5))),
                                          ((4, 7), (slice(1, 5), slice(0, 7))),
                                          ((5, 5), (slice(0, 5), slice(0, 5)))])
def test_pad_to_square_centres_the_crop(shape, where):
    crop = np.arange(1, 1 + shape[0] * shape[1], dtype=np.float32).reshape(shape)
    square = di.pad_to_square(crop)
    side = max(shape)
    assert square.shape == (side, side) and square.dtype == crop.dtype
    np.testing.assert_array_equal(square[where], crop)
    assert square.sum() == crop.sum()                # zeros everywhere else


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): the share of each input pixel [j, j+1) inside output pixel i, which
    covers [i, i+1) * n_in / n_out, divided by that pixel's width."""
    scale = n_in / n_out
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(n_in):
            matrix[i, j] = max(0.0, min(hi, j + 1) - max(lo, j)) / scale
    return matrix


@pytest.mark.parametrize("side", [16, 12, 8, 21, 5])
def test_resize_averages_the_area_under_each_pixel(side):
    square = np.random.default_rng(side).uniform(0, 1, (side, side)).astype(np.float32)
    area = _area_matrix(side, 8)                                  # (8, side)
    expected = area @ square.astype(np.float64) @ area.T          # (8, 8)
    small = di.resize(square)
    assert small.shape == (8, 8)
    np.testing.assert_allclose(small, expected, atol=1e-5)
    if side == 16:                                                # whole 2x2 blocks
        np.testing.assert_allclose(small, square.reshape(8, 2, 8, 2).mean(axis=(1, 3)),
                                   atol=1e-6)


def test_scale_to_pixel_max():
    small = np.array([[0.0, 0.25], [0.5, 0.125]])
    np.testing.assert_allclose(di.scale_to_pixel_max(small), [[0, 8], [16, 4]])
    with pytest.raises(ValueError, match="no ink"):
        di.scale_to_pixel_max(np.zeros((8, 8)))


# ----------------------------------------------------------------------------------------
# The whole chain gives back a training digit drawn large, anywhere, in any colours


def _centred_training_digit():
    from sklearn.datasets import load_digits
    for image in load_digits().images:
        columns = np.flatnonzero(image.max(axis=0) >= 16 * di.INK)
        rows = np.flatnonzero(image.max(axis=1) >= 16 * di.INK)
        if (image.max() == 16 and len(rows) == 8 and columns[0] == 7 - columns[-1]
                and image[:, :columns[0]].max() == 0 and image[:, columns[-1] + 1:].max() == 0):
            return image
    raise AssertionError("no centred digit")


@pytest.mark.parametrize("style", ["dark on light", "light on dark", "colour", "transparent",
                                   "jpeg"])
def test_image_to_digit_gives_back_a_training_digit(tmp_path, style):
    digit = _centred_training_digit()                              # (8, 8), 0..16
    ink = np.kron(digit / 16, np.ones((12, 12)))                   # (96, 96), 0..1
    canvas = np.zeros((150, 220))
    canvas[40:136, 100:196] = ink                                  # off-centre
    path = tmp_path / ("d.jpg" if style == "jpeg" else "d.png")
    if style in ("dark on light", "jpeg"):
        _save(path, np.round((1 - canvas) * 255).astype(np.uint8))
    elif style == "light on dark":
        _save(path, np.round(canvas * 255).astype(np.uint8))
    elif style == "colour":                    # dark red ink on pale yellow paper
        paper, pen = np.array([250, 240, 170]), np.array([120, 10, 10])
        rgb = paper + canvas[..., None] * (pen - paper)
        _save(path, np.round(rgb).astype(np.uint8))
    else:                                      # black ink, opacity = ink, on nothing
        rgba = np.zeros(canvas.shape + (4,), np.uint8)
        rgba[..., 3] = np.round(canvas * 255)
        _save(path, rgba)
    result = di.image_to_digit(path)
    assert result.shape == (8, 8) and result.max() == pytest.approx(16)
    tolerance = 1.0 if style == "jpeg" else 0.15                   # JPEG: lossy
    np.testing.assert_allclose(result, digit, atol=tolerance)


def test_image_to_digit_names_the_file_when_blank(tmp_path):
    _save(tmp_path / "gray.png", np.full((30, 30), 128, np.uint8))
    with pytest.raises(ValueError, match=r"image file '.*gray.png': the image is blank"):
        di.image_to_digit(tmp_path / "gray.png")


def test_write_digit_png_shows_the_8x8_enlarged(tmp_path):
    digit = np.arange(64, dtype=np.float64).reshape(8, 8) / 63 * 16
    di.write_digit_png(digit, tmp_path / "seen.png", scale=4)
    with Image.open(tmp_path / "seen.png") as image:
        assert image.size == (32, 32) and image.mode == "L"
        pixels = np.asarray(image)
    np.testing.assert_allclose(pixels[::4, ::4], np.round(digit / 16 * 255), atol=0.5)
    assert (pixels.reshape(8, 4, 8, 4).std(axis=(1, 3)) == 0).all()   # whole blocks
