"""Judging memory whose RAM does not grow with the campaign: Bloom filters plus store lookups.

Judging needs, per submission id, the fingerprints judged before, and per device, its accepted
submission. Kept as Python dicts that is ~450 bytes per sheet (~5 GB for a 10.8-million-sheet
campaign). Everything it needs is in the store already: every verdict (one row per distinct
fingerprint of an id) and every device's accepted verdict. So the process keeps two fixed-size
Bloom filters ("may this id / device have a stored verdict?") and, per batch, asks the store only
about the keys the filters cannot rule out: a resent id, a reused device, or a false positive
(1% by default). Everything else is known to be new without a query.

The filters never forget a key (no false negatives): a key is added as soon as a verdict for it is
judged, before it is stored. A batch that fails to store is judged again from the store's state,
since the per-batch overlay is dropped at the next `begin_batch`. Past the filters' capacity the
false-positive rate grows (more lookups), never the memory, and verdicts stay exact.

The filters hash with a keyed-free, process-independent hash (BLAKE2b), not Python's salted
`hash()`, so their bits can be written at a clean stop and read back at the next start instead of
walking every stored verdict again (stream_processors/memory_checkpoint.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from rbloom import Bloom

from core.judge import with_stored
from core.ports import JudgeMemoryRow

DEFAULT_CAPACITY = 12_000_000  # sheets: a whole campaign's 10-11 million in one process
DEFAULT_FALSE_POSITIVE_RATE = 0.01

Pair = tuple[str, str]  # (campaign, submission id) or (campaign, device hash)


class JudgeMemoryLookup(Protocol):
    """The store's side: stored verdicts by id, accepted verdicts by device."""

    def judge_memory_of(self, ids: Sequence[Pair]) -> Sequence[JudgeMemoryRow]: ...

    def device_firsts(self, devices: Sequence[Pair]) -> Mapping[Pair, str]: ...


def stable_hash(key: str) -> int:
    """128 bits of BLAKE2b, the same in every process (rbloom's signed 128-bit range)."""
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big", signed=True)


def _pair(key: str) -> Pair:
    campaign, _, rest = key.partition("\x1f")
    return campaign, rest


class BoundedJudgeMemory:
    """A JudgeMemory (core.judge) over a store; one batch's keys in RAM at a time."""

    def __init__(
        self,
        lookup: JudgeMemoryLookup,
        capacity: int = DEFAULT_CAPACITY,
        false_positive_rate: float = DEFAULT_FALSE_POSITIVE_RATE,
    ) -> None:
        self._lookup = lookup
        self.capacity = capacity
        self.false_positive_rate = false_positive_rate
        self._ids = Bloom(capacity, false_positive_rate, stable_hash)
        self._devices = Bloom(capacity, false_positive_rate, stable_hash)
        self._fingerprints: dict[str, tuple[str, ...]] = {}
        self._firsts: dict[str, str | None] = {}
        self.lookups = 0  # keys asked of the store since start (filter positives and misses)

    @property
    def size_in_bytes(self) -> int:
        return (self._ids.size_in_bits + self._devices.size_in_bits) // 8

    def filter_bytes(self) -> tuple[bytes, bytes]:
        """The two filters' bits (ids, devices), to be restored by `restore_filters`."""
        return self._ids.save_bytes(), self._devices.save_bytes()

    def restore_filters(self, ids: bytes, devices: bytes) -> None:
        """Replace both filters with bits from `filter_bytes` of a memory of the same shape."""
        restored_ids = Bloom.load_bytes(ids, stable_hash)
        restored_devices = Bloom.load_bytes(devices, stable_hash)
        if restored_ids.size_in_bits != self._ids.size_in_bits or (
            restored_devices.size_in_bits != self._devices.size_in_bits
        ):
            raise ValueError("saved filters are of another capacity or false-positive rate")
        self._ids, self._devices = restored_ids, restored_devices

    def remember(self, row: JudgeMemoryRow) -> None:
        """A stored verdict, at start-up: only its keys go into the filters."""
        self._ids.add(f"{row.campaign}\x1f{row.submission_id}")
        if row.device_hash and row.status == "accepted":
            self._devices.add(f"{row.campaign}\x1f{row.device_hash}")

    def begin_batch(self, keys: Iterable[str], device_keys: Iterable[str]) -> None:
        """Drop the last batch's overlay and fetch what the store knows of this batch's keys
        (`memory_key`s and `device_key`s, see core.judge) in one query each. A key not given
        here is still answered right, by a lookup of its own."""
        self._fingerprints.clear()
        self._firsts.clear()
        self._fetch_fingerprints({k for k in keys if k not in self._fingerprints})
        self._fetch_firsts({k for k in device_keys if k and k not in self._firsts})

    def _fetch_fingerprints(self, keys: set[str]) -> None:
        maybe = [k for k in keys if k in self._ids]
        for key in keys:
            self._fingerprints[key] = ()
        if not maybe:
            return
        self.lookups += len(maybe)
        for row in self._lookup.judge_memory_of([_pair(k) for k in maybe]):
            key = f"{row.campaign}\x1f{row.submission_id}"
            if key in self._fingerprints:
                self._fingerprints[key] = with_stored(self._fingerprints[key], row)

    def _fetch_firsts(self, keys: set[str]) -> None:
        maybe = [k for k in keys if k in self._devices]
        for key in keys:
            self._firsts[key] = None
        if not maybe:
            return
        self.lookups += len(maybe)
        for (campaign, device), submission_id in self._lookup.device_firsts(
            [_pair(k) for k in maybe]
        ).items():
            key = f"{campaign}\x1f{device}"
            if key in self._firsts:
                self._firsts[key] = submission_id

    # -- core.judge.JudgeMemory ---------------------------------------------------------------

    def fingerprints_of(self, key: str) -> tuple[str, ...]:
        if key not in self._fingerprints:
            self._fetch_fingerprints({key})
        return self._fingerprints[key]

    def set_fingerprints(self, key: str, fingerprints: tuple[str, ...]) -> None:
        self._ids.add(key)
        self._fingerprints[key] = fingerprints

    def device_first_of(self, key: str) -> str | None:
        if key not in self._firsts:
            self._fetch_firsts({key})
        return self._firsts[key]

    def set_device_first(self, key: str, submission_id: str) -> None:
        self._devices.add(key)
        self._firsts[key] = submission_id
