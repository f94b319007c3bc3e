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


class NoDigitFound(DigitInputError):
    """The image decoded but holds nothing that looks like ink."""

    status = 422
    code = "no_digit_found"


class NotADigit(DigitInputError):
    """The image holds ink, but the model reads it as something other than a digit (a letter, a sign, a drawing)."""

    status = 422
    code = "not_a_digit"
