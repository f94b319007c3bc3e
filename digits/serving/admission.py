"""A cap on requests doing CPU work at once, so a flood meets a fast 503 rather than a queue nobody waits out.

A POST is read whole first (its body spooled by the form parser), outside the cap: a slow client then holds
no work slot while it trickles. Then it waits at most BUSY_WAIT seconds for one of BUSY_SLOTS slots, else
it is answered 503 with Retry-After. Under gunicorn's gevent worker `threading` is gevent's, so the same
semaphore queues greenlets; under app.py's threaded server, threads.
"""

import threading
import time

import flask

from digits.serving import errors

EXTENSION_KEY = "digits.admission"


def _admit():
    """Read a POST's body, then take a work slot or refuse with 503."""
    if flask.request.method != "POST":
        return
    flask.request.get_data(parse_form_data=True)  # Form parts parsed and spooled; any other body cached.
    take_slot(flask.current_app)
    flask.g.holds_work_slot = True


def take_slot(app):
    """Take one of the app's work slots within BUSY_WAIT seconds, or raise Overloaded (503); release_slot gives
    it back."""
    slots = app.extensions[EXTENSION_KEY]
    wait = app.config["BUSY_WAIT"]
    started = time.monotonic()
    if not slots.acquire(timeout=wait):
        raise errors.Overloaded("The server is busy; try again in a moment.", retry_after=1)
    # Under gevent, CPU work never yields: without this pause every request would find the slot free (its
    # holder done), and queue instead, unbounded, for the event loop. Paused, the others reach the slot, see
    # it taken and wait for it, with a timeout. Threads need no pause (the OS interleaves them), and a real
    # sleep(0) would cost a timer's slack on every request.
    if _sleep_switches_greenlets():
        time.sleep(0)
    # Timed here too: the timers of gevent's waiters are late when CPU work blocks the loop.
    if time.monotonic() - started > wait:
        slots.release()
        raise errors.Overloaded("The server is busy; try again in a moment.", retry_after=1)


def _sleep_switches_greenlets():
    """Whether time.sleep is gevent's (gunicorn's gevent worker patches it), whose sleep(0) runs the event loop."""
    return (getattr(time.sleep, "__module__", None) or "").startswith("gevent")


def release_slot(app):
    """Give back a slot take_slot took."""
    app.extensions[EXTENSION_KEY].release()


def _release(_exception):
    """Give the slot back, whatever happened to the request."""
    if flask.g.pop("holds_work_slot", False):
        release_slot(flask.current_app)


def init_app(app):
    """Create the app's BUSY_SLOTS work slots and guard every POST with them."""
    app.extensions[EXTENSION_KEY] = threading.BoundedSemaphore(app.config["BUSY_SLOTS"])
    app.before_request(_admit)
    app.teardown_request(_release)
