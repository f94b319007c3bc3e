"""Bytes of any image Pillow reads in, one grayscale float array out, safely.

Safety first: only the formats we document are ever opened (Pillow's other readers, EPS with its
Ghostscript above all, are never tried); the pixel count, and for a JPEG its number of scans, are checked
from the file's structure before anything is decoded; JPEGs are decoded at a reduced scale where that
suffices; every failure leaves as one of our own exceptions, whose message is ours (the library's detail
goes to the log, never to the client).
"""

import io
import logging
import math
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digits.imaging import canvas_png, exceptions

DEFAULT_MAX_PIXELS = 25_000_000  # 25 megapixels: a phone photo; a decompression bomb is far beyond it.
WORKING_SIDE = 256  # Larger images are shrunk to this first: the digit ends as 20x20, and thin strokes are redrawn.
SHRINK_REDUCING_GAP = 2.0  # Pillow first reduces by a whole factor when shrinking by at least twice this.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # What the README promises; Pillow tries no other reader.
# A progressive JPEG decodes every scan over the whole image: the cost is scans x pixels. Real photos have
# about 10 scans; a file repeating its last scan thousands of times is a CPU bomb.
TYPICAL_JPEG_SCANS = 10
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_PIXELS = 500_000_000  # Scans x pixels: 20 scans of a 25-megapixel photo, 100 of 5 megapixels.
MAX_GIF_BLOCKS = 100_000  # Before a GIF's first image: its comments and metadata, in sub-blocks of 255 bytes.
# Pillow decodes a run-length-coded BMP in Python, a run (two bytes) at a time: megabytes of short runs cost
# seconds. This many bytes of runs is about as dear as the dearest PNG; a digit needs a few kilobytes.
MAX_BMP_RUN_BYTES = 2_000_000
BMP_RUN_LENGTH_CODES = (1, 2)  # BI_RLE8 and BI_RLE4.
# Pillow decodes a WebP through a full-size RGBA canvas of libwebp's, hands it over as a copy and loads that
# into the image: about 16 bytes a pixel at the peak, against at most 8 for the other formats. A WebP counts
# this many times against the pixel limit, so the dearest one allowed costs what the dearest PNG or TIFF does.
PIXEL_WEIGHTS = {"WEBP": 2}
FORMAT_NAMES = {"WEBP": "WebP"}

log = logging.getLogger(__name__)

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_INTEGER_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def decode_grayscale(data, max_pixels=DEFAULT_MAX_PIXELS, working_side=WORKING_SIDE):
    """Decode image bytes to a float32 (H, W) array of luminance in 0..1, transparency flattened."""
    if not data:
        raise exceptions.EmptyUpload("The file is empty.")
    canvas = _decode_canvas(data, max_pixels, working_side)
    if canvas is not None:
        return canvas
    refuse_costly_structure(data)
    image = _open(data, max_pixels)
    if image.format == "JPEG":
        _refuse_too_many_scans(data, image.size)
    try:
        if image.format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale when that still leaves working_side pixels: much less work.
            image.draft("L" if image.mode in {"L", "RGB"} else image.mode, (working_side, working_side))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # In place: a copy of a large image costs as much as it.
        return _to_luminance(image, working_side)
    except exceptions.DigitInputError:
        raise
    except MemoryError as error:
        raise exceptions.ImageTooLarge("The image is too large to decode.") from error
    except Exception as error:  # Pillow reports damaged data through many exception types.
        log.info("undecodable %s upload: %s: %s", image.format, type(error).__name__, error)
        raise exceptions.CorruptImage(
            f"The {image.format} image could not be decoded (damaged or truncated).") from error


def decoding_work(data, max_pixels=DEFAULT_MAX_PIXELS):
    """Pixels decoding will pass over, from the header alone: width x height, once per 10 scans of a JPEG.

    0 if the bytes are no image we read, or an image over max_pixels alone: decoding them then says why,
    naming the file. Used to bound a request's total work.
    """
    size = canvas_png.png_size(data)
    if size is not None:
        return size[0] * size[1] if size[0] * size[1] <= max_pixels else 0
    try:
        image = open_header(data)
    except Exception:  # Not an image, a damaged header, a bomb Pillow refuses: all reported when decoded.
        return 0
    if image.width * image.height * PIXEL_WEIGHTS.get(image.format, 1) > max_pixels:
        return 0
    passes = -(-data.count(b"\xff\xda") // TYPICAL_JPEG_SCANS) if image.format == "JPEG" else 1
    return image.width * image.height * max(1, passes)


def open_header(data):
    """The upload opened by Pillow, its header read and no pixel: only the documented formats tried, costly
    structures refused first, no warning for a large one (our pixel limits decide). Pillow's errors pass."""
    refuse_costly_structure(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=FORMATS)


def _open(data, max_pixels):
    """Read the header only; unknown formats and bombs are refused here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise exceptions.ImageTooLarge(f"The image has too many pixels (at most {max_pixels:,}).") from error
        except UnidentifiedImageError as error:
            raise exceptions.NotAnImage(
                "The file is not an image in a format we read (PNG, JPEG, GIF, BMP, WebP, TIFF).") from error
        except Exception as error:
            log.info("unreadable image header: %s: %s", type(error).__name__, error)
            raise exceptions.CorruptImage("The image header could not be read (damaged or truncated).") from error
    _refuse_too_many_pixels(image.size, max_pixels, image.format)
    return image


def _refuse_too_many_pixels(size, max_pixels, image_format=None):
    """Refuse by header dimensions, so a decompression bomb is never decoded (a WebP counting double)."""
    width, height = size
    if width < 1 or height < 1:
        raise exceptions.CorruptImage("The image has no pixels.")
    weight = PIXEL_WEIGHTS.get(image_format, 1)
    if width * height * weight > max_pixels:
        of_format = f" for a {FORMAT_NAMES.get(image_format, image_format)} image" if weight > 1 else ""
        raise exceptions.ImageTooLarge(
            f"The image is {width}x{height} pixels; at most {max_pixels // weight:,} pixels are accepted{of_format}."
        )


def _decode_canvas(data, max_pixels, working_side):
    """The fast path for a browser canvas (an opaque RGBA PNG whose pixels are all gray), for an 8-bit
    grayscale PNG without transparency, and for a small opaque gray RGB or gray-alpha PNG, or None for any other.

    For gray pixels (R = G = B) luminance is R exactly as Pillow's conversion computes it, and a grayscale
    PNG's pixels are its luminance, so the result is the general path's to the bit (canvas_png decodes R
    alone, or the gray channel, and reads the header itself). Anything else,
    or anything canvas_png does not take, goes the general way (which also gives a damaged file, or one with
    too many pixels, its usual error).
    """
    gray = canvas_png.decode_gray(data, max_pixels)
    return None if gray is None else _shrink_canvas(gray, working_side)


def _shrink_canvas(gray, working_side):
    """_shrink of a uint8 (H, W) array, as float32 0..1, resampling only the part that is not plain background.

    Pillow's BOX filter gives a pixel whose source pixels all hold one value that value, exactly (its integer
    weights sum to 1 within a rounding far too small to move an 8-bit result). So where the first pixel's
    value fills everything but a box around the rest, only that box is resampled, with `box=` over the same
    source: when each axis' scale is a fraction with a power-of-two denominator (400 to 256 is 25/16), every
    coordinate Pillow computes is exact, the same as for the whole image, and so are its weights. Otherwise,
    or when Pillow would first reduce by a whole factor, the whole image is shrunk.
    """
    if max(gray.shape) <= working_side:  # Nothing to shrink (a 28x28 digit): what _shrink's no-op gives.
        return gray.astype(np.float32) / 255.0
    gray = np.ascontiguousarray(gray)
    image = Image.frombuffer("L", gray.shape[::-1], gray, "raw", "L", 0, 1)  # fromarray's view, without its set-up.
    shrunk_size = _shrunk_size(image.size, working_side)
    exact = all(_is_dyadic(side, shrunk) and shrunk < side < 2 * SHRINK_REDUCING_GAP * shrunk
                for side, shrunk in zip(image.size, shrunk_size))
    background = gray[0, 0]
    differs = gray != background
    rows = np.flatnonzero(differs.any(axis=1)) if exact else ()
    if len(rows) == 0:
        return np.asarray(_shrink(image, working_side), dtype=np.float32) / 255.0
    cols = np.flatnonzero(differs[rows[0] : rows[-1] + 1].any(axis=0))
    scale_x, scale_y = image.width / shrunk_size[0], image.height / shrunk_size[1]
    # Output pixels whose sources reach the non-background box, with a pixel to spare on each side.
    left, right = max(0, int(cols[0] / scale_x) - 2), min(shrunk_size[0], int(cols[-1] / scale_x) + 3)
    top, bottom = max(0, int(rows[0] / scale_y) - 2), min(shrunk_size[1], int(rows[-1] / scale_y) + 3)
    shrunk = np.full((shrunk_size[1], shrunk_size[0]), np.float32(background) / np.float32(255.0), np.float32)
    part = image.resize((right - left, bottom - top), Image.Resampling.BOX,
                        box=(left * scale_x, top * scale_y, right * scale_x, bottom * scale_y))
    pixels = np.frombuffer(part.tobytes(), np.uint8).reshape(bottom - top, right - left)
    np.divide(pixels, np.float32(255.0), out=shrunk[top:bottom, left:right], dtype=np.float32)
    return shrunk


def _is_dyadic(numerator, denominator):
    """Whether numerator / denominator is a fraction whose reduced denominator is a power of two."""
    reduced = denominator // math.gcd(numerator, denominator)
    return reduced & (reduced - 1) == 0


def refuse_costly_structure(data):
    """Refuse a PNG cut into absurdly many chunks, a GIF with absurdly many blocks before its first image, or a
    BMP with megabytes of runs, before Pillow opens it: it reads through them one at a time in Python (10 MB of
    empty chunks took seconds). Encoders write a handful, or a PNG chunk per 8 to 64 kB, a GIF block per 255
    bytes; run-length coding suits a few flat colours, not the pixels of a photo."""
    if data.startswith(canvas_png.SIGNATURE):
        if canvas_png.chunk_count(data, canvas_png.MAX_CHUNKS) > canvas_png.MAX_CHUNKS:
            raise exceptions.TooManyChunks(
                f"The PNG has more than {canvas_png.MAX_CHUNKS:,} chunks; no image needs that many.")
    elif data.startswith((b"GIF87a", b"GIF89a")) and _gif_blocks_before_image(data, MAX_GIF_BLOCKS) > MAX_GIF_BLOCKS:
        raise exceptions.TooManyChunks(
            f"The GIF has more than {MAX_GIF_BLOCKS:,} blocks before its image; no image needs that many.")
    elif _bmp_run_bytes(data) > MAX_BMP_RUN_BYTES:
        raise exceptions.TooManyChunks(
            f"The BMP's run-length-coded pixels take more than {MAX_BMP_RUN_BYTES:,} bytes; send it uncompressed "
            "or as a PNG.")


def _bmp_run_bytes(data):
    """How many bytes of a run-length-coded BMP follow its headers (0 for any other file)."""
    # The file header (14 bytes: "BM", size, reserved, pixel offset), then an info header of at least 40 bytes
    # (its size first) has the compression at byte 30; the 12-byte OS/2 1.x header has none.
    if not data.startswith(b"BM") or len(data) < 34:
        return 0
    (offset,) = struct.unpack_from("<I", data, 10)
    info_size, compression = struct.unpack_from("<I", data, 14)[0], struct.unpack_from("<I", data, 30)[0]
    if info_size < 40 or compression not in BMP_RUN_LENGTH_CODES:
        return 0
    return max(0, len(data) - offset)


def _gif_blocks_before_image(data, limit):
    """How many extension blocks and data sub-blocks come before a GIF's first image, up to limit + 1."""
    if len(data) < 13:
        return 0
    position, blocks = 13, 0
    if data[10] & 0x80:  # A global colour table follows the screen descriptor.
        position += 3 << ((data[10] & 7) + 1)
    while position < len(data) and data[position] == 0x21 and blocks <= limit:  # An extension.
        position += 2  # Its introducer and label; then sub-blocks, each led by its size, until a size of 0.
        while position < len(data) and data[position] and blocks <= limit:
            position += data[position] + 1
            blocks += 1
        position += 1
        blocks += 1
    return blocks


def _refuse_too_many_scans(data, size):
    """Refuse a JPEG whose scans would cost too much, counted before decoding.

    Every scan starts with an SOS marker, FF DA; inside compressed data an FF byte is always followed by
    00 or a restart marker, so counting FF DA counts the scans (metadata could add a few, never hide one).
    """
    scans = data.count(b"\xff\xda")
    pixels = size[0] * size[1]
    if scans > MAX_JPEG_SCANS or scans * pixels > MAX_JPEG_SCAN_PIXELS:
        raise exceptions.TooManyScans(
            f"The JPEG has {scans} scans over {pixels:,} pixels; at most {MAX_JPEG_SCANS} scans, and "
            f"{MAX_JPEG_SCAN_PIXELS:,} scan-pixels in all, are accepted.")


def _to_luminance(image, working_side):
    """Convert any mode to luminance, shrinking first so the float work is on a small array."""
    if image.mode in {"I", "F"}:
        # Shrunk first, in Pillow: the range is then found on a small array (an infinity or NaN averaged in
        # stays one, and is handled there).
        return _shrink_array(_wide_range_to_unit(_shrink(image, working_side)), working_side)
    if image.mode in _INTEGER_MODES:
        # 16-bit: shrunk first too (as floats at full size it would take 8 bytes a pixel, and more for the
        # arithmetic); the scale its range sets (8 or 16 bits used) read from the whole image, so a few bright
        # pixels averaged away still count.
        return _wide_range_to_unit(_shrink(image, working_side), extrema=image.getextrema())
    has_alpha = image.mode in _ALPHA_MODES or (image.mode in {"P", "L", "RGB"} and "transparency" in image.info)
    if has_alpha:
        # Converting to its own mode copies. LA stays LA until shrunk: Pillow shrinks it as it does RGBA (alpha
        # premultiplied, channel by channel), so the same pixels come out of a quarter of the memory.
        image = image if image.mode in {"RGBA", "LA"} else image.convert("RGBA")
        # A browser canvas is RGBA but opaque: skip the per-pixel blending, the common case.
        has_alpha = image.getchannel("A").getextrema()[0] < 255
    target_mode = "RGBA" if has_alpha else "L"
    if image.mode == "LA" and has_alpha:
        image = _shrink(image, working_side).convert("RGBA")
    else:
        image = _shrink(image if image.mode == target_mode else image.convert(target_mode), working_side)
    if not has_alpha:
        return np.asarray(image, dtype=np.float32) / 255.0
    luminance = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
    return _flatten_alpha(luminance, alpha)


def _flatten_alpha(luminance, alpha):
    """Lay transparent pixels on the background that contrasts with the visible strokes.

    A transparent PNG with black strokes has black (often invisible) pixels everywhere; laid on black it
    would show nothing, so the background is chosen opposite to what the opaque pixels look like.
    """
    visible = alpha > 0.5
    strokes_are_dark = visible.any() and float(luminance[visible].mean()) < 0.5
    background = 1.0 if strokes_are_dark else 0.0
    return luminance * alpha + background * (1.0 - alpha)


def _wide_range_to_unit(image, extrema=None):
    """16-bit, 32-bit and float images to 0..1, by the range their values actually use (`extrema`, the whole
    image's (low, high), where `image` was shrunk from a 16-bit one)."""
    values = np.asarray(image, dtype=np.float64)  # Float64: the span of +-3e38 overflows float32.
    finite = np.isfinite(values)
    if not finite.all():
        if not finite.any():
            raise exceptions.NoDigitFound("No digit found: the image holds no finite values.")
        # Infinities take the extreme finite values on their side; NaN (no value) the lowest.
        low, high = float(values[finite].min()), float(values[finite].max())
        values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    low, high = (float(values.min()), float(values.max())) if extrema is None else extrema
    if image.mode == "F" or low < 0 or high > 65535:
        unit = (values - low) / (high - low) if high > low else np.zeros_like(values)
    else:
        unit = values / (65535.0 if high > 255 else 255.0)
    return unit.astype(np.float32)


def _shrink(image, working_side):
    """Shrink so the longer side is at most working_side, averaging pixels (keeps thin strokes as gray)."""
    if max(image.size) <= working_side:
        return image
    # Pillow's whole-factor reduction has no 16-bit modes; the BOX filter alone averages the same pixels, slower.
    reducing_gap = None if image.mode.startswith("I;16") else SHRINK_REDUCING_GAP
    return image.resize(_shrunk_size(image.size, working_side), Image.Resampling.BOX, reducing_gap=reducing_gap)


def _shrunk_size(size, working_side):
    """(width, height) after _shrink."""
    if max(size) <= working_side:
        return size
    scale = working_side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _shrink_array(values, working_side):
    """The same shrink for float arrays (Pillow's 'F' mode)."""
    image = _shrink(Image.fromarray(values.astype(np.float32)), working_side)
    return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
