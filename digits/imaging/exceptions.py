"""The ways an upload can fail to become a digit; each carries the HTTP status and code it is reported with."""


class DigitInputError(Exception):
    """Base class: an upload we refuse, with a message a user can act on."""

    status = 400
    code = "bad_input"


class EmptyUpload(DigitInputError):
    """The file field was there but held no bytes."""

    status = 400
    code = "empty_file"


class NotAnImage(DigitInputError):
    """The bytes are no image format we read."""

    status = 415
    code = "unsupported_media_type"


class CorruptImage(DigitInputError):
    """The format was recognised but the pixels could not be decoded (truncated or damaged)."""

    status = 400
    code = "corrupt_image"


class ImageTooLarge(DigitInputError):
    """More pixels than we decode; refused from the header, before the pixels are read."""

    status = 413
    code = "image_too_large"


class TooManyScans(DigitInputError):
    """A JPEG whose scans (a progressive file's passes over the image) would cost too much to decode."""

    status = 413
    code = "too_many_scans"


class TooManyChunks(DigitInputError):
    """A PNG cut into more chunks (a GIF into more blocks, a BMP into more bytes of runs) than an image needs:
    reading through them would cost too much."""

    status = 413
    code = "too_many_chunks"


class NoDigitFound(DigitInputError):
    """The image decoded but holds nothing that looks like ink."""

    status = 422
    code = "no_digit_found"


class NotADigit(DigitInputError):
    """The image holds something, but not digits: a letter, a sign, a shape, a scribble."""

    status = 422
    code = "not_a_digit"
