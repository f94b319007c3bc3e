"""Multipart parsing as Werkzeug does it, with two fixes and one saving: any filename is read, each limit says
which it is, and no regular expression is compiled per request.

Werkzeug drops a whole form when a part's headers are not UTF-8 (a filename from an old system), and
answers every limit with the same 413. Its parser builds its decoder by name, so the decoder is replaced
in its module (once, for this process) with one that decodes headers as UTF-8, else Latin-1 (which reads
any byte), and raises a 413 of its own for each limit. Werkzeug also compiles two regular expressions for
each request's boundary (browsers send a fresh one each time), which costs more than reading a small image;
our decoder finds the boundary as plain bytes and checks what surrounds it with expressions compiled once.
"""

import re

from werkzeug import exceptions as http
from werkzeug import formparser
from werkzeug.sansio import multipart


class TooManyParts(http.RequestEntityTooLarge):
    """More multipart parts than MAX_FORM_PARTS."""

    error_code = "too_many_parts"
    description = "The form has too many parts."


class FieldTooLarge(http.RequestEntityTooLarge):
    """A non-file form field (or a part's headers) longer than MAX_FORM_MEMORY_SIZE."""

    error_code = "field_too_large"
    description = "A form field is too large (files go in file parts, with a filename)."


# What may follow "--" + boundary (as in Werkzeug's expressions): "--" for the last one, then blanks, then a
# line break (optional after the last). Group 1, as in Werkzeug's, tells the last boundary from the others.
_AFTER_BOUNDARY = re.compile(rb"(--[^\S\n\r]*%s?|[^\S\n\r]*%s)" % (multipart.LINE_BREAK, multipart.LINE_BREAK))


class _BoundaryMatch:
    """What Werkzeug's decoder uses of a regular expression's match: start(), end() and group(1)."""

    def __init__(self, start, end, ending):
        self._start, self._end, self._ending = start, end, ending

    def start(self):
        return self._start

    def end(self):
        return self._end

    def group(self, index):
        assert index == 1
        return self._ending


class _BoundarySearch:
    """Finds the same matches as Werkzeug's per-boundary expressions: a line break (optional before the first
    boundary), "--" + boundary, then _AFTER_BOUNDARY; the leftmost match, as re.search would."""

    def __init__(self, boundary, line_break_required):
        self._marker = b"--" + boundary
        self._line_break_required = line_break_required

    def search(self, buffer, position=0):
        """The leftmost match in buffer at or after position, or None."""
        found = buffer.find(self._marker, position)
        while found != -1:
            start = found
            if buffer[max(position, found - 2) : found] == b"\r\n":
                start = found - 2
            elif found - 1 >= position and buffer[found - 1] in b"\r\n":
                start = found - 1
            after = _AFTER_BOUNDARY.match(buffer, found + len(self._marker))
            if after is not None and (start < found or not self._line_break_required):
                return _BoundaryMatch(start, after.end(), after.group(1))
            found = buffer.find(self._marker, found + 1)
        return None


class MultipartDecoder(multipart.MultipartDecoder):
    """Werkzeug's decoder, reading non-UTF-8 part headers, naming the limit it hits, compiling nothing."""

    def __init__(self, boundary, max_form_memory_size=None, *, max_parts=None):
        """Werkzeug's state (tests/test_forms.py checks it is all there), with our boundary search."""
        marker = b"--" + boundary
        if any(marker[shift:] == marker[:-shift] for shift in (1, 2)):  # Matches could overlap: Werkzeug's way.
            super().__init__(boundary, max_form_memory_size, max_parts=max_parts)
            return
        self.buffer = bytearray()
        self.complete = False
        self.max_form_memory_size = max_form_memory_size
        self.max_parts = max_parts
        self.state = multipart.State.PREAMBLE
        self.boundary = boundary
        self.preamble_re = _BoundarySearch(boundary, line_break_required=False)
        self.boundary_re = _BoundarySearch(boundary, line_break_required=True)
        self._search_position = 0
        self._parts_decoded = 0

    def receive_data(self, data):
        """Buffer the next chunk; a part's headers or a field past the memory limit is FieldTooLarge."""
        try:
            super().receive_data(data)
        except http.RequestEntityTooLarge as error:
            raise FieldTooLarge() from error

    def next_event(self):
        """The next part, header or data event; one part too many is TooManyParts."""
        try:
            return super().next_event()
        except (TooManyParts, FieldTooLarge):
            raise
        except http.RequestEntityTooLarge as error:
            raise TooManyParts() from error

    def _parse_headers(self, data):
        """Headers of one part, each line UTF-8 if it is, else Latin-1."""
        lines = []
        for line in multipart.HEADER_CONTINUATION_RE.sub(b" ", data).splitlines():
            try:
                lines.append(line.decode())
            except UnicodeDecodeError:
                lines.append(line.decode("latin-1"))
        return super()._parse_headers("\r\n".join(lines).encode("utf-8"))


class MultiPartParser(formparser.MultiPartParser):
    """Werkzeug's parser; its own check of a field's accumulated size also says FieldTooLarge."""

    def parse(self, stream, boundary, content_length):
        """Parse the parts; any 413 not already ours is a field over the memory limit."""
        try:
            return super().parse(stream, boundary, content_length)
        except (TooManyParts, FieldTooLarge):
            raise
        except http.RequestEntityTooLarge as error:
            raise FieldTooLarge() from error


def init_app(app):
    """Use our decoder and parser in Werkzeug's form parsing (process-wide: Werkzeug offers no per-app hook)."""
    formparser.MultipartDecoder = MultipartDecoder
    formparser.MultiPartParser = MultiPartParser
