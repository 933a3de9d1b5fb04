"""Shift this Python process's wall clock by DTBOT_CLOCK_OFFSET_SECONDS (bin/test-clock puts this folder on PYTHONPATH).

Every process of a test run (pytest and the workers, listener and servers it starts) imports this
at start-up, so they all share one offset and the clock keeps running; `time.monotonic()` is left
alone, so sleeps and timeouts behave.
"""

import os

_offset = os.environ.get("DTBOT_CLOCK_OFFSET_SECONDS")
if _offset:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_offset), tick=True).start()
