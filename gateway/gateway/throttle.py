"""A per-client fixed-window limit for the unauthenticated, costly endpoints (codes, register, login).

In-process: each gateway instance counts on its own, so N instances allow up to N× the limit. That bounds
scripted abuse from one address; per-phone and per-payer limits (SMS, lock-out) live in identity.
"""
import threading
import time


class FixedWindowLimiter:
    def __init__(self, limit, window_seconds=60, clock=time.monotonic, max_keys=100_000):
        self.limit, self.window, self.clock, self.max_keys = limit, window_seconds, clock, max_keys
        self._counts, self._window_start = {}, clock()
        self._lock = threading.Lock()

    def allow(self, key) -> bool:
        with self._lock:
            now = self.clock()
            if now - self._window_start >= self.window or len(self._counts) >= self.max_keys:
                self._counts, self._window_start = {}, now
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            return count <= self.limit
