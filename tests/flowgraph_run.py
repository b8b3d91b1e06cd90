"""Running a flowgraph in a test without hanging the test when a block never reports done."""

import threading


def finish_or_stop(tb, timeout=20.0):
    """tb.start(), then wait up to ``timeout`` s for it to finish; True if it did, else stop it
    (waiting up to 5 s more) and return False."""
    tb.start()
    waiter = threading.Thread(target=tb.wait, daemon=True)
    waiter.start()
    waiter.join(timeout)
    if not waiter.is_alive():
        return True
    tb.stop()
    waiter.join(5.0)
    return False
