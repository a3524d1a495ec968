"""Small deterministic sketches the detectors keep: SimHash, Count-Min, Space-Saving, median/MAD.

Everything here hashes with BLAKE2b (never Python's `hash`, which is salted per process), so the
same input gives the same sketch in every process and every replay.
"""

from __future__ import annotations

import hashlib
import operator
import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MASK64 = (1 << 64) - 1


def hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def key64(hex_or_text: str) -> int:
    """A 64-bit key for a value that is already a hex digest (keyed hashes), else its hash."""
    try:
        return int(hex_or_text[:16], 16) if len(hex_or_text) >= 16 else hash64(hex_or_text)
    except ValueError:
        return hash64(hex_or_text)


# -- MinHash over character shingles ------------------------------------------------------------

def normalise_text(text: str) -> str:
    """What near-duplicate text is compared on: NFKC, lower case, letters and digits only (CJK
    characters are letters), so punctuation, spacing and masked digits ('*') do not count."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def shingles(normalised: str, k: int = 3) -> set[str]:
    """Character k-shingles; a text shorter than k is one shingle."""
    return {normalised[i : i + k] for i in range(max(1, len(normalised) - k + 1))}


class MinHasher:
    """MinHash signatures of shingle sets, and LSH band keys over them.

    Why MinHash rather than SimHash: on short texts (an opinion is a sentence or two) an edit
    of two characters already moves a 64-bit SimHash by ~10 bits, beyond what banded buckets
    catch, while the Jaccard similarity of the shingle sets stays ~0.7. With b bands of r rows,
    two texts of Jaccard similarity J share a band with probability 1 - (1 - J^r)^b.

    One keyed BLAKE2b per shingle gives all b*r (at most 32) hash functions at once, as 16-bit
    values; the signature is their element-wise minimum over the shingles. Only the first
    bands * rows values make LSH buckets (fewer buckets, less memory per text); all of them
    estimate the similarity of candidates.
    """

    def __init__(
        self, bands: int = 8, rows: int = 2, size: int = 32, seed: str = "survey-ingest-minhash"
    ) -> None:
        if not 1 <= bands * rows <= size <= 32:
            raise ValueError("bands * rows must be at most size, and size at most 32")
        self.bands = bands
        self.rows = rows
        self.size = size  # values in a signature: those past the bands sharpen the estimate
        self.key = seed.encode()[:64]

    def signature(self, shingle_set: set[str]) -> tuple[int, ...]:
        size, key = 2 * self.size, self.key
        rows = [
            memoryview(hashlib.blake2b(s.encode(), digest_size=size, key=key).digest()).cast("H")
            for s in shingle_set
        ]
        return tuple(map(min, zip(*rows, strict=True)))

    def band_keys(self, signature: tuple[int, ...]) -> list[int]:
        r = self.rows
        return [
            hash64(f"{i}:" + ",".join(str(v) for v in signature[i * r : (i + 1) * r]))
            for i in range(self.bands)
        ]


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity: the share of equal MinHash values."""
    return sum(map(operator.eq, a, b)) / len(a) if a and len(a) == len(b) else 0.0


def signature_hex(signature: Sequence[int]) -> str:
    return "".join(f"{v:04x}" for v in signature)


def signature_from_hex(text: str) -> tuple[int, ...]:
    return tuple(int(text[i : i + 4], 16) for i in range(0, len(text), 4))


# -- Count-Min ----------------------------------------------------------------------------------

class CountMin:
    """Count-Min sketch over 64-bit keys: `depth` rows of `width` (a power of two up to 2**16)
    counters, each row indexed by its own 16 bits of the key. Estimates never undercount."""

    __slots__ = ("depth", "mask", "table", "total")

    def __init__(self, width: int = 4096, depth: int = 4) -> None:
        if width & (width - 1) or not 1 < width <= 1 << 16 or not 1 <= depth <= 4:
            raise ValueError("width must be a power of two up to 65536, depth 1 to 4")
        self.depth = depth
        self.mask = width - 1
        self.table = [[0] * width for _ in range(depth)]
        self.total = 0

    def add(self, key: int, count: int = 1) -> None:
        self.total += count
        for row in range(self.depth):
            self.table[row][(key >> (16 * row)) & self.mask] += count

    def estimate(self, key: int) -> int:
        return min(self.table[row][(key >> (16 * row)) & self.mask] for row in range(self.depth))


# -- Space-Saving heavy hitters -------------------------------------------------------------------

@dataclass
class Counter:
    count: int
    error: int  # the count may overstate by this much (inherited from the evicted key)
    samples: list[str] = field(default_factory=list)

    @property
    def guaranteed(self) -> int:
        return self.count - self.error


class SpaceSaving:
    """Metwally et al.'s Space-Saving: at most `capacity` counters; every key occurring more
    than total/capacity times is among them, and `guaranteed` never overstates."""

    __slots__ = ("capacity", "counters", "max_samples", "total")

    def __init__(self, capacity: int = 16, max_samples: int = 5) -> None:
        self.capacity = capacity
        self.max_samples = max_samples
        self.counters: dict[str, Counter] = {}
        self.total = 0

    def add(self, key: str, sample: str) -> Counter:
        self.total += 1
        c = self.counters.get(key)
        if c is None:
            if len(self.counters) < self.capacity:
                c = self.counters[key] = Counter(1, 0, [sample])
                return c
            # Evict the smallest (first in insertion order among ties: deterministic).
            victim = min(self.counters, key=lambda k: self.counters[k].count)
            low = self.counters.pop(victim).count
            c = self.counters[key] = Counter(low + 1, low, [sample])
            return c
        c.count += 1
        if len(c.samples) < self.max_samples:
            c.samples.append(sample)
        return c


# -- robust statistics ----------------------------------------------------------------------------

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


def median_mad(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    med = statistics.median(values)
    return float(med), float(statistics.median(abs(v - med) for v in values))


def top(items: Iterable[tuple[str, int]], n: int) -> tuple[str, ...]:
    """Keys of the `n` largest counts, largest first, ties by key."""
    return tuple(k for k, _ in sorted(items, key=lambda kv: (-kv[1], kv[0]))[:n])
