"""Polling until something holds."""
import time


def wait_until(pred, timeout, what="condition", interval=0.1, retry_on=()):
    """Call pred every `interval` s until it returns a true value (returned) or
    `timeout` s pass (AssertionError). Exceptions of the types in `retry_on`
    count as "not yet" (the last one is reported); any other propagates."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
            if v:
                return v
        except retry_on as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s%s" % (
        timeout, what, "" if last is None else " (last error %r)" % (last,)))
