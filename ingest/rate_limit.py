"""Token buckets keyed by client address or link code, for 429 with Retry-After."""

from __future__ import annotations

import time


class TokenBuckets:
    """One bucket per key; refilled lazily. Old keys are dropped so memory stays bounded."""

    def __init__(
        self, rate_per_s: float, burst: float | None = None, max_keys: int = 100_000
    ) -> None:
        self.rate = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s * 2)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; 0.0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # crude but bounded; a flood of new keys resets history
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
