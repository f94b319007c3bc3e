"""Images to send: drawn digits as the clients make them, MNIST digits as PNGs, encodings, hostile files."""

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

from digits import PROJECT_ROOT

SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]  # A "7": top bar, then the diagonal.
ONE = [(0.5, 0.15), (0.5, 0.85)]


def drawn_digit(points=SEVEN, side=400, width=15, ink=255, paper=0, box=(0.0, 0.0, 1.0, 1.0), mode="L"):
    """A polyline digit like the Angular client draws: points in 0..1 of `box` (left, top, right, bottom)."""
    image = Image.new(mode, (side, side), paper)
    left, top, right, bottom = (v * side for v in box)
    xy = [(left + x * (right - left), top + y * (bottom - top)) for x, y in points]
    draw = ImageDraw.Draw(image)
    draw.line(xy, fill=ink, width=width, joint="curve")
    for x, y in (xy[0], xy[-1]):  # Round caps.
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=ink)
    return image


def encode(image, image_format="PNG", **options):
    """Image to bytes in the given format."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def png_bytes(pixels):
    """A uint8 array (a 28x28 MNIST digit, say) as PNG bytes."""
    return encode(Image.fromarray(np.asarray(pixels, dtype=np.uint8)))


CANVAS_STROKES = [[(130, 95), (280, 95), (175, 330)], [(150, 215), (250, 215)]]  # A crossed "7".
CANVAS_PEN = 15  # The Angular client's pen, in pixels.
CHROMIUM_CANVAS = PROJECT_ROOT / "samples" / "digit.png"  # A real Chromium canvas (RGBA, alpha 255): a 7.


def canvas_png(strokes=CANVAS_STROKES, mode="RGBA", width=400):
    """What the Angular client sends: a 400x400 black canvas (or wider) with white 15 px round strokes, as a PNG.

    Chromium encodes a canvas as RGBA with alpha 255 everywhere, so that is the default mode: an 8-bit
    grayscale PNG of the same drawing decodes several times faster and would flatter a benchmark.
    """
    image = Image.new("L", (width, 400), 0)
    draw = ImageDraw.Draw(image)
    radius = CANVAS_PEN / 2
    for stroke in strokes:
        draw.line(stroke, fill=255, width=CANVAS_PEN)
        for x, y in stroke:  # Round caps and joints, as a canvas with lineCap = lineJoin = "round".
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return encode(image.convert(mode))


def png_bomb(width, height):
    """A valid PNG header claiming width x height pixels, with a tiny compressed body (all zero rows)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale.
    row = b"\0" * (width + 1)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(min(height, 64))) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def gif_bomb(width, height):
    """A GIF whose logical screen and frame claim width x height pixels."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame + b"\x3b"


def bmp_run_length(pixels, run=255):
    """An 8-bit grey BMP (BI_RLE8) of a (H, W) uint8 array, in runs of equal pixels of at most `run`."""
    height, width = pixels.shape
    coded = bytearray()
    for row in pixels[::-1]:  # A BMP's rows run bottom-up.
        x = 0
        while x < width:
            length = 1
            while x + length < width and length < run and row[x + length] == row[x]:
                length += 1
            coded += bytes((length, int(row[x])))
            x += length
        coded += b"\x00\x00"  # End of the row.
    coded += b"\x00\x01"  # End of the bitmap.
    palette = b"".join(bytes((level, level, level, 0)) for level in range(256))
    offset = 14 + 40 + len(palette)
    return (b"BM" + struct.pack("<IHHI", offset + len(coded), 0, 0, offset)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(coded), 2835, 2835, 256, 0)
            + palette + bytes(coded))


def jpeg_bomb(width, height):
    """A small JPEG with its frame header rewritten to claim width x height pixels."""
    data = bytearray(encode(Image.new("L", (16, 16), 128), "JPEG"))
    marker = data.index(b"\xff\xc0")
    data[marker + 5 : marker + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_scan_bomb(side, scans):
    """A progressive grey JPEG, side x side, whose last scan is repeated until it has `scans` scans."""
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=90)
    last_scan = data.rindex(b"\xff\xda")
    body, tail = data[:last_scan], data[last_scan:-2]  # Without the end-of-image marker, FF D9.
    extra = max(0, scans - data.count(b"\xff\xda"))
    return body + tail * (extra + 1) + b"\xff\xd9"


def png_chunk_bomb(data, chunks):
    """A PNG (bytes) with `chunks` empty ancillary chunks inserted after its header: 12 bytes each."""
    empty = struct.pack(">I4s", 0, b"abCd") + struct.pack(">I", zlib.crc32(b"abCd"))
    return data[:33] + empty * chunks + data[33:]


def png_split_idat(data, chunks):
    """The same PNG (bytes) with its image data split over `chunks` IDAT chunks, as some encoders write it."""
    position, parts, idat = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            idat += data[position + 8 : position + 8 + length]
        else:
            parts.append((kind, data[position + 8 : position + 8 + length]))
        position += 12 + length
    size = -(-len(idat) // chunks)
    pieces = [(b"IDAT", idat[start : start + size]) for start in range(0, len(idat), size)]
    ordered = parts[:1] + pieces + parts[1:]  # IHDR, the data, then the rest (IEND).

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return data[:8] + b"".join(chunk(kind, body) for kind, body in ordered)


def gif_block_bomb(blocks):
    """A small GIF with `blocks` tiny comment extensions (5 bytes each) before its image."""
    gif = encode(Image.new("L", (28, 28), 0), "GIF")
    first_image = gif.index(b"\x2c")  # The image descriptor (this GIF has no extension before it).
    return gif[:first_image] + b"\x21\xfe\x01x\x00" * blocks + gif[first_image:]
