"""Our multipart decoder finds exactly what Werkzeug's finds, without compiling expressions per boundary."""

import io
import random

import pytest
from werkzeug import formparser
from werkzeug.sansio import multipart

from digits.serving import forms

BOUNDARIES = [b"----WebKitFormBoundary7MA4YWxkTrZu0gW", b"abc", b"a-b", b"xyxy", b"--x"]
PIECES = [b"\r\n", b"\n", b"\r", b"--", b" ", b"\t", b"x", b"data", b"\r\n\r\n", b"-"]


def _werkzeug_patterns(boundary):
    """Werkzeug's own two expressions for this boundary, from its own decoder."""
    decoder = multipart.MultipartDecoder(boundary)
    return decoder.preamble_re, decoder.boundary_re


def _span(match):
    return None if match is None else (match.start(), match.end(), bytes(match.group(1)))


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_boundary_search_matches_werkzeugs_expressions(boundary):
    """Random buffers of boundaries, line breaks, blanks and dashes: the same leftmost match, or none."""
    rng = random.Random(boundary)
    ours = forms.MultipartDecoder(boundary)
    theirs = _werkzeug_patterns(boundary)
    pieces = [*PIECES, *[b"--" + boundary, b"--" + boundary + b"--"] * 2]
    compared = found = 0
    for _ in range(3000):
        buffer = bytearray(b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))))
        position = rng.randint(0, len(buffer))
        for mine, reference in zip((ours.preamble_re, ours.boundary_re), theirs):
            expected = _span(reference.search(buffer, position))
            assert _span(mine.search(buffer, position)) == expected, (buffer, position)
            compared += 1
            found += expected is not None
    assert found > compared // 10  # The buffers exercised matches, not only misses.


def test_decoder_keeps_werkzeugs_state():
    """The decoder sets up every attribute Werkzeug's does (a Werkzeug upgrade that adds one fails here)."""
    boundary = BOUNDARIES[0]
    assert set(vars(forms.MultipartDecoder(boundary))) == set(vars(multipart.MultipartDecoder(boundary)))


@pytest.mark.parametrize("line_break", [b"\r\n", b"\n"])
@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_parsed_forms_are_werkzeugs(monkeypatch, line_break, chunk):
    """Whole forms parsed with our decoder and with Werkzeug's, fed in chunks: the same fields and files."""
    boundary = b"----WebKitFormBoundaryZ9"
    image = bytes(range(256)) * 3 + b"\r\n--" + boundary[:-1] + b"\r\n"  # A near-boundary inside the file.
    body = line_break.join([
        b"preamble", b"--" + boundary,
        b'Content-Disposition: form-data; name="file"; filename="canvas.png"', b"Content-Type: image/png", b"",
        image, b"--" + boundary,
        b'Content-Disposition: form-data; name="note"', b"", b"seven", b"--" + boundary + b"--", b"",
    ])

    def parse(decoder):
        monkeypatch.setattr(formparser, "MultipartDecoder", decoder)
        parser = formparser.MultiPartParser(buffer_size=chunk)
        fields, files = parser.parse(io.BytesIO(body), boundary, len(body))
        read = {name: (file.filename, file.read()) for name, file in files.items()}
        for file in files.values():
            file.close()
        return dict(fields), read

    ours, theirs = parse(forms.MultipartDecoder), parse(multipart.MultipartDecoder)
    assert ours == theirs
    assert ours[1]["file"] == ("canvas.png", image)
