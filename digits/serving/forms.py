"""Multipart parsing as Werkzeug does it, with two fixes: any filename is read, and each limit says which it is.

Werkzeug drops a whole form when a part's headers are not UTF-8 (a filename from an old system), and
answers every limit with the same 413. Its parser builds its decoder by name, so the decoder is replaced
in its module (once, for this process) with one that decodes headers as UTF-8, else Latin-1 (which reads
any byte), and raises a 413 of its own for each limit.
"""

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


class MultipartDecoder(multipart.MultipartDecoder):
    """Werkzeug's decoder, reading non-UTF-8 part headers and naming the limit it hits."""

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
