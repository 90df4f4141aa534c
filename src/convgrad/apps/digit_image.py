"""A user's picture of a digit, made into an 8x8 image the way the training digits were.

scikit-learn's digits (the UCI "optdigits" set) were scanned handwriting, normalized to a
32x32 bitmap whose ink fills the height, the width following the aspect ratio, then
counted in 4x4 blocks: white ink on black, 0..16. :func:`prepare_digit` makes the same
kind of picture from any image, one small step each:

1. :func:`read_image`: the file as grayscale 0..1, (H, W); transparent pixels on white;
   large pictures shrunk first (at most ``WORK_SIZE`` pixels a side); files above Pillow's
   decompression-bomb limit refused.
2. :func:`ink_on_black`: the background is the median of the border pixels; if it is
   light the image is inverted, then stretched so the background is 0 and the ink 1.
3. :func:`crop_to_ink`: cut to the bounding box of the pixels with ink above ``INK``.
4. :func:`pad_to_square`: centre the crop in a square of zeros (the aspect kept).
5. :func:`resize`: 8x8 by exact area averaging (anti-aliased: each output pixel is the
   mean of the square under it, as the 4x4 block counts were).
6. :func:`scale_to_pixel_max`: stretch so the brightest pixel is 16.

:func:`write_digit_png` writes the 8x8 result, enlarged, so a user can see what the
network was shown (``convgrad predict --image my.png --show seen.png``).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .._optional import require

__all__ = ["image_to_digit", "prepare_digit", "read_image", "ink_on_black", "crop_to_ink",
           "pad_to_square", "resize", "scale_to_pixel_max", "write_digit_png",
           "INK", "SIZE", "PIXEL_MAX", "WORK_SIZE"]

SIZE = 8                # the training digits are 8x8
PIXEL_MAX = 16.0        # ... with pixels 0..16
INK = 0.3               # a pixel at 30% of the ink's brightness or more counts as ink
WORK_SIZE = 1024        # larger pictures are shrunk to this many pixels a side first
CONTRAST = 0.05         # less difference than this between ink and background: blank


def _pillow():
    return require("PIL.Image", "demo", "reading an image (convgrad predict --image)")


def read_image(path) -> np.ndarray:
    """The image file at ``path`` as grayscale floats in 0..1, shape (H, W).

    Transparent pixels are put on white; 16-bit and float images are scaled by their
    range; pictures larger than ``WORK_SIZE`` a side are shrunk by area averaging first.
    Raises ValueError naming the file when it is missing, not a file, not an image, or
    larger than Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    Image = _pillow()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"image file {path!r} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"image file {path!r} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.draft("L", (WORK_SIZE, WORK_SIZE))      # JPEG: decode at low size
                image.load()
                gray = _to_gray(Image, image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"image file {path!r} is too large to read safely "
                         f"({str(error).rstrip('.')}); the limit is Pillow's "
                         f"PIL.Image.MAX_IMAGE_PIXELS") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"cannot read image file {path!r}: {reason}") from None
    return gray


def _to_gray(Image, image) -> np.ndarray:
    """A loaded PIL image as (H, W) floats in 0..1, shrunk to at most WORK_SIZE a side."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        pixels = np.asarray(image, dtype=np.float64)                  # (H, W), any range
        top = 65535.0 if image.mode.startswith("I;16") else max(float(pixels.max()), 1.0)
        gray = Image.fromarray((np.clip(pixels, 0, top) / top).astype(np.float32))
    else:
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        gray = image.convert("L")
    if max(gray.size) > WORK_SIZE:
        scale = WORK_SIZE / max(gray.size)
        gray = gray.resize((max(1, round(gray.width * scale)),
                            max(1, round(gray.height * scale))), Image.Resampling.BOX)
    pixels = np.asarray(gray, dtype=np.float32)                       # (H, W)
    return pixels if gray.mode == "F" else pixels / 255.0


def ink_on_black(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Light ink on a black background, 0 (background) .. 1 (the brightest ink).

    The background level is the median of the border pixels; a light background means a
    dark digit, and the image is inverted. Returns (ink (H, W), inverted). Raises
    ValueError if nothing differs from the background by at least ``CONTRAST``.
    """
    gray = np.asarray(gray, dtype=np.float32)
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    inverted = background > 0.5
    if inverted:
        gray, background = 1.0 - gray, 1.0 - background
    peak = float(gray.max())
    if peak - background < CONTRAST:
        raise ValueError("the image is blank (one uniform gray): no digit to read")
    return np.clip((gray - background) / (peak - background), 0.0, 1.0), inverted


def crop_to_ink(ink: np.ndarray, threshold: float = INK) -> np.ndarray:
    """The smallest rectangle holding every pixel with ink >= threshold. (h, w)."""
    rows = np.flatnonzero((ink >= threshold).any(axis=1))
    columns = np.flatnonzero((ink >= threshold).any(axis=0))
    if not len(rows):
        raise ValueError(f"the image has no ink above {threshold:g} of its brightest pixel")
    return ink[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]


def pad_to_square(crop: np.ndarray) -> np.ndarray:
    """``crop`` (h, w) centred in a square of zeros, (s, s) with s = max(h, w)."""
    h, w = crop.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=crop.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = crop
    return square


def resize(square: np.ndarray, size: int = SIZE) -> np.ndarray:
    """``square`` (s, s) to (size, size) by area averaging: each output pixel is the mean
    of the input it covers, a pixel cut by its edge counted by the part inside.

    Exact for any s: repeating every pixel ``size`` times along an axis makes s * size
    samples, of which each output pixel takes a run of s (one axis at a time).
    """
    square = np.asarray(square, dtype=np.float64)
    side = square.shape[0]
    rows = np.repeat(square, size, axis=0).reshape(size, side, side).mean(axis=1)  # (size, s)
    return np.repeat(rows, size, axis=1).reshape(size, size, side).mean(axis=2)    # (size, size)


def scale_to_pixel_max(small: np.ndarray, pixel_max: float = PIXEL_MAX) -> np.ndarray:
    """Stretch so the brightest pixel is ``pixel_max`` (0 stays 0), as the training digits'
    brightest block is 16."""
    top = float(small.max())
    if top <= 0:
        raise ValueError("the image has no ink left after resizing")
    return np.clip(small, 0.0, None) / top * pixel_max


def prepare_digit(gray: np.ndarray, size: int = SIZE) -> np.ndarray:
    """A grayscale picture (H, W) in 0..1 -> (size, size) floats in 0..16, white on black."""
    ink, _ = ink_on_black(gray)
    return scale_to_pixel_max(resize(pad_to_square(crop_to_ink(ink)), size))


def image_to_digit(path) -> np.ndarray:
    """Read an image file of one digit as the network's input: (8, 8) floats in 0..16.

    The digit should be the only ink in the picture (any size, position, colours or
    background). Raises ValueError naming the file if it cannot be read or holds no digit.
    """
    gray = read_image(path)
    try:
        return prepare_digit(gray)
    except ValueError as error:
        raise ValueError(f"image file {os.fspath(path)!r}: {error}") from None


def write_digit_png(digit: np.ndarray, path, scale: int = 32) -> None:
    """Write the (8, 8) digit (0..16) as a grayscale PNG, each pixel a scale x scale block."""
    Image = _pillow()
    pixels = np.clip(np.asarray(digit, dtype=np.float64) / PIXEL_MAX, 0, 1)   # (8, 8)
    big = np.kron(pixels, np.ones((scale, scale)))                              # (8s, 8s)
    Image.fromarray(np.round(big * 255).astype(np.uint8)).save(os.fspath(path), format="PNG")
