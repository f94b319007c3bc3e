"""glibc's memory allocator, set for a server that makes image-sized arrays on every request.

By default glibc hands a freed block at the top of its heap back to the system once about twice the
largest recently freed block lies free there. A request holds a few image-sized arrays at once (the
canvas as decoded, its working copies), so the heap shrinks after each request and grows again in the
next, and the system then zeroes fresh pages on first touch: about a millisecond per 400x400 canvas, more
than preparing it. So blocks up to MMAP_THRESHOLD come from the heap, and up to TRIM_THRESHOLD of free
heap is kept for the next request; larger blocks (a phone photo's pixels) are mapped and unmapped as
before, so one large upload does not leave a large process behind.
"""

import ctypes
import logging

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h.
MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 16 * 1024 * 1024

log = logging.getLogger(__name__)


def keep_request_memory():
    """Set the thresholds above in this process; False where the C library is not glibc (nothing to set)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl (Alpine) and others: no mallopt, and other behaviour anyway.
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not done:
        log.warning("could not set the allocator's thresholds; requests will be slower")
    return done
