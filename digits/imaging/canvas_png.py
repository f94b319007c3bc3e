"""A browser canvas PNG decoded straight to its gray channel: what the Angular client and our page send.

Browsers encode a canvas as an 8-bit RGBA PNG with alpha 255, and a drawing in white on black has only
gray pixels (R = G = B). For such a file only one channel carries information, and that is checked on the
filtered bytes, before anything is unfiltered:
- PNG's filters work on each channel alone, with the same predictor rule for all, so the decoded R, G and
  B are equal everywhere exactly when their filtered bytes are;
- alpha 255 everywhere leaves one known filtered byte per row (for the row's first pixel) and another for
  the rest, set by the row's filter type.
Then only the gray channel is unfiltered: its filtered rows, with the same filter types, are a one-channel
PNG of their own, which libspng (pyspng) decodes, handed to it uncompressed. Inflating uses zlib-ng, several
times faster than zlib on a canvas's long runs of one pixel. An 8-bit grayscale PNG without transparency (a
scan) is decoded the same way, its rows as they are: Pillow's set-up alone costs more than decoding it.
Where `pip install -e .` could compile `_png_rows.c`, that module does the check and the unfiltering in one pass
over the filtered bytes instead (the same pixels and the same refusals, tested): NumPy's passes over
image-sized arrays cost a canvas request about a fifth of its time, in their own work and in the caches they
leave cold for the rest.

A small PNG (a 28x28 digit, a tiny drawing) costs more in that set-up than in its pixels, so up to
SMALL_PIXELS one is decoded whole by libspng, after the same checks of its chunks and its zlib stream, and
its decoded pixels are checked: gray (R = G = B) and opaque. That path also takes 8-bit RGB and gray-alpha
PNGs, which Pillow's conversion to luminance likewise reads as R, or as the gray level, when their pixels are
gray and opaque. Any other PNG, or a damaged one, gives None, and the caller decodes it the general way
(which also words any error).

The module also reads, for the rest of decoding, what a PNG's structure tells without a decoder: its size
from the header, and how many chunks it holds.
"""

import struct
import zlib

import numpy as np
import pyspng
from zlib_ng import zlib_ng

try:  # Compiled by `pip install -e .` where a C compiler and Python's headers are found (setup.py).
    from digits.imaging import _png_rows
except ImportError:
    _png_rows = None

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Bit depth 8, colour type 6 (RGBA), 0 (gray), 2 (RGB) or 4 (gray-alpha), deflate, adaptive filtering, not
# interlaced: channels of each. RGB and gray-alpha only up to SMALL_PIXELS (larger ones are rare uploads).
HEADER_CHANNELS = {(8, 6, 0, 0, 0): 4, (8, 0, 0, 0, 0): 1, (8, 2, 0, 0, 0): 3, (8, 4, 0, 0, 0): 2}
# Up to this many pixels (128x128) decoding the whole PNG costs less than the filtered-bytes path's set-up.
SMALL_PIXELS = 16_384
# A canvas is at most a few megapixels (a 1000x1000 one on a high-density screen is 4). Larger PNGs go the
# general way, which holds fewer image-sized arrays at once.
MAX_PIXELS = 4_194_304
MAX_CHUNKS = 10_000  # A 10 MB PNG in 8 kB IDAT chunks has 1,280; a file of empty chunks, hundreds of thousands.
HEADER_END = 33  # The signature (8 bytes), then IHDR: length, type, 13 bytes of fields, CRC.
STORED_BLOCK = 65_535  # The most bytes a stored deflate block holds.
NONE, SUB, UP, AVERAGE, PAETH = range(5)


def is_compiled():
    """Whether the compiled module (_png_rows.c) checks and unfilters a canvas's rows, rather than NumPy."""
    return _png_rows is not None


def decode_gray(data, max_pixels=MAX_PIXELS):
    """The gray channel (H, W) uint8 of an opaque, gray, 8-bit RGBA PNG, or the pixels of an 8-bit grayscale PNG
    without transparency, of at most max_pixels (and MAX_PIXELS); up to SMALL_PIXELS, also of an opaque, gray,
    8-bit RGB or gray-alpha PNG. None for any other file."""
    parsed = _parse(data, min(max_pixels, MAX_PIXELS))
    if parsed is None:
        return None
    width, height, channels, compressed = parsed
    stride = 1 + channels * width
    filtered = _inflate(compressed, height * stride)
    if filtered is None:
        return None
    if width * height <= SMALL_PIXELS:
        # Its stream was inflated above as a check only (microseconds at this size): both paths take the same files.
        return _decode_small(data, channels)
    if _png_rows is not None:
        gray = np.empty((height, width), np.uint8)
        return gray if _png_rows.gray_rows(filtered, width, height, channels, gray) else None
    return _decode_filtered(filtered, width, height, channels)


def _decode_filtered(filtered, width, height, channels):
    """The gray channel from an 8-bit gray or RGBA PNG's inflated, filtered rows, in NumPy and libspng: the
    compiled module's work where it is not built; None if a filter type is unknown, or an RGBA pixel not gray and
    opaque."""
    stride = 1 + channels * width
    filters = np.frombuffer(filtered, np.uint8, count=height * stride)[::stride]
    if filters.max() > PAETH:
        return None
    if channels == 1:
        return _load_gray(width, height, filtered)
    # Each row's pixels as little-endian words (R, G, B, A from the low byte up), copied out aligned.
    words = np.ndarray((height, width), "<u4", filtered, offset=1, strides=(stride, 4)).copy()
    red = words & np.uint32(0xFF)
    if not _opaque_and_gray(words, red, filters):
        return None
    rows = np.empty((height, 1 + width), np.uint8)  # The gray channel's filtered rows, each after its filter type.
    rows[:, 0] = filters
    rows[:, 1:] = red
    return _load_gray(width, height, rows.tobytes())


def _decode_small(data, channels):
    """The gray channel of a small PNG (its chunks and stream already checked) decoded whole by libspng; None if
    a pixel is not gray or not opaque, or libspng refuses the file."""
    try:
        # Gray-alpha comes out as RGBA (v, v, v, alpha): libspng has no gray-alpha output for 8 bits. No gamma
        # and no transparency chunk is applied: the pixels as stored.
        pixels = pyspng.load(data, "RGBA" if channels == 2 else None)
    except Exception:  # libspng is stricter than Pillow in places: the general path then decides.
        return None
    if channels == 1:
        return pixels
    gray = pixels[..., 0]
    if channels == 3:
        opaque_gray = np.array_equal(gray, pixels[..., 1]) and np.array_equal(gray, pixels[..., 2])
    else:  # One comparison of whole pixels, as little-endian words: (R, G, B, A) = (v, v, v, 255).
        words = pixels.view("<u4")[..., 0]
        opaque_gray = np.array_equal(words, gray * np.uint32(0x010101) | np.uint32(0xFF000000))
    return np.ascontiguousarray(gray) if opaque_gray else None


def _load_gray(width, height, filtered):
    """The (H, W) uint8 pixels of a grayscale image's filtered rows, unfiltered by libspng; None if it fails."""
    try:
        gray = pyspng.load(_stored_gray_png(width, height, filtered))
    except Exception:  # Not expected for bytes checked as above; the general path would then decide.
        return None
    return gray.reshape(height, width)


def png_size(data):
    """(width, height) from a PNG's header, read directly (no decoder set up); None for no PNG with a sound header."""
    header = _header(data)
    return None if header is None else header[:2]


def chunk_count(data, limit):
    """How many chunks a PNG holds, counted from their lengths alone, up to limit + 1 (counting stops there)."""
    position, count = len(SIGNATURE), 0
    while position + 8 <= len(data) and count <= limit:
        (length,) = struct.unpack_from(">I", data, position)
        position += 12 + length
        count += 1
    return count


def _header(data):
    """The IHDR fields (width, height, bit depth, colour type, compression, filter, interlace) of a PNG whose
    first chunk is a sound IHDR, as the format requires; None otherwise."""
    if not data.startswith(SIGNATURE + b"\x00\x00\x00\x0dIHDR") or len(data) < HEADER_END:
        return None
    (crc,) = struct.unpack_from(">I", data, HEADER_END - 4)
    if zlib.crc32(memoryview(data)[12 : HEADER_END - 4]) != crc:
        return None
    header = struct.unpack_from(">II5B", data, 16)
    return header if header[0] and header[1] else None


def _parse(data, max_pixels):
    """(width, height, channels, the IDAT data joined) of an 8-bit PNG of a type in HEADER_CHANNELS (RGB or
    gray-alpha up to SMALL_PIXELS) of at most max_pixels with sound chunks; None otherwise.

    The header is read first, so any other PNG, or a larger one, is let go before its data is looked at. An
    eXIf chunk gives None too: its orientation may rotate the image, which is the general path's job; and so
    does a tRNS chunk, which makes a gray level transparent.
    """
    header = _header(data)
    channels = None if header is None else HEADER_CHANNELS.get(header[2:])
    if channels is None or header[0] * header[1] > max_pixels:
        return None
    if channels in {2, 3} and header[0] * header[1] > SMALL_PIXELS:
        return None
    view = memoryview(data)
    position, idat = HEADER_END, []
    for _ in range(MAX_CHUNKS):
        if position + 12 > len(data):
            return None  # Truncated.
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 8 + length
        if end + 4 > len(data):
            return None
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(view[position + 4 : end]) != crc or kind in {b"IHDR", b"eXIf", b"tRNS"}:
            return None  # A damaged chunk, a second header, an orientation, transparency: the general path's.
        if kind == b"IDAT":
            idat.append(view[position + 8 : end])
        elif kind == b"IEND":
            break
        position = end + 4
    else:
        return None  # Too many chunks: the general path refuses the file.
    return (header[0], header[1], channels, b"".join(idat)) if idat else None


def _inflate(compressed, size):
    """The zlib stream inflated, if it holds exactly `size` bytes, its checksum right and nothing after it."""
    inflater = zlib_ng.decompressobj()
    try:
        filtered = inflater.decompress(compressed, size + 1)
    except zlib_ng.error:
        return None
    if len(filtered) != size or not inflater.eof or inflater.unused_data:
        return None
    return filtered


def _opaque_and_gray(words, red, filters):
    """Whether the decoded image is all gray (R = G = B) with alpha 255, judged on the filtered words."""
    first, rest = _filtered_opaque_alpha(filters)
    expected = red * np.uint32(0x010101)
    expected |= (rest << np.uint32(24))[:, None]
    expected[:, 0] = (expected[:, 0] & np.uint32(0xFFFFFF)) | (first << np.uint32(24))
    return np.array_equal(words, expected)


def _filtered_opaque_alpha(filters):
    """Per row, the filtered alpha of its first pixel and of the others when every pixel's alpha is 255."""
    first, rest = np.empty((2, len(filters)), np.uint32)
    for top in (True, False):
        above = 0 if top else 255  # The row above the first is zeros, as PNG defines.
        rows = slice(0, 1) if top else slice(1, None)
        # For the first pixel the left neighbours are zeros; for the rest they are 255.
        first[rows] = _ALPHA_TABLE[(above, 0, 0)][filters[rows]]
        rest[rows] = _ALPHA_TABLE[(above, 255, above)][filters[rows]]
    return first, rest


def _predict(kind, left, above, above_left):
    """PNG's predictor of a byte from its left, upper and upper-left neighbours."""
    if kind == NONE:
        return 0
    if kind == SUB:
        return left
    if kind == UP:
        return above
    if kind == AVERAGE:
        return (left + above) >> 1
    estimate = left + above - above_left
    distances = abs(estimate - left), abs(estimate - above), abs(estimate - above_left)
    if distances[0] <= distances[1] and distances[0] <= distances[2]:
        return left
    return above if distances[1] <= distances[2] else above_left


# The filtered byte of an alpha of 255 for each filter type, given (above, left, above-left) alphas.
_ALPHA_TABLE = {
    neighbours: np.array([(255 - _predict(kind, neighbours[1], neighbours[0], neighbours[2])) & 0xFF
                          for kind in range(5)], np.uint32)
    for neighbours in [(0, 0, 0), (0, 255, 0), (255, 0, 0), (255, 255, 255)]
}


def _stored_gray_png(width, height, filtered):
    """An 8-bit grayscale PNG of these filtered rows, its zlib stream made of stored (uncompressed) blocks."""
    stream = [b"\x78\x01"]  # zlib: deflate with a 32 KiB window, no dictionary.
    for start in range(0, len(filtered), STORED_BLOCK):
        block = filtered[start : start + STORED_BLOCK]
        is_last = start + STORED_BLOCK >= len(filtered)
        stream += [struct.pack("<BHH", is_last, len(block), len(block) ^ 0xFFFF), block]
    stream.append(struct.pack(">I", zlib_ng.adler32(filtered)))
    return b"".join([SIGNATURE, _chunk(b"IHDR", struct.pack(">II5B", width, height, 8, 0, 0, 0, 0)),
                     _chunk(b"IDAT", b"".join(stream)), _chunk(b"IEND", b"")])


def _chunk(kind, body):
    """A PNG chunk: length, type, body, CRC."""
    return struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib_ng.crc32(body, zlib_ng.crc32(kind)))
