"""The judging memory's checkpoint: read back only for the position it was written at.

Catches: a checkpoint restored at another raw position (verdicts committed after it would be
missing from the filters, so a resend of them would be judged new and counted twice), and a
damaged or differently-shaped file taken as good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from core.judge_memory import BoundedJudgeMemory, Pair
from core.ports import JudgeMemoryRow
from stream_processors import memory_checkpoint


class _NoStore:
    def judge_memory_of(self, ids: Sequence[Pair]) -> Sequence[JudgeMemoryRow]:
        return []

    def device_firsts(self, devices: Sequence[Pair]) -> Mapping[Pair, str]:
        return {}


def _memory(capacity: int = 10_000) -> BoundedJudgeMemory:
    return BoundedJudgeMemory(_NoStore(), capacity=capacity)


def _filled() -> BoundedJudgeMemory:
    memory = _memory()
    for i in range(500):
        memory.remember(JudgeMemoryRow("c", f"id-{i}", "fp", True, f"dev-{i}", "accepted"))
    return memory


def _asks_store(memory: BoundedJudgeMemory, key: str) -> bool:
    """Whether the memory must ask the store about `key` (the filter says 'maybe stored')."""
    before = memory.lookups
    memory.fingerprints_of(key)
    return memory.lookups > before


def test_filters_come_back_at_the_position_they_were_written_at(tmp_path: Path) -> None:
    path = tmp_path / "judge-memory.ckpt"
    memory_checkpoint.save(path, _filled(), position=1234)
    restored = _memory()
    assert memory_checkpoint.restore(path, restored, position=1234)
    assert all(_asks_store(restored, f"c\x1fid-{i}") for i in range(500))
    assert restored.device_first_of("c\x1fdev-7") is None  # asked; the store has none
    assert restored.lookups == 501


def test_a_checkpoint_of_another_position_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "judge-memory.ckpt"
    memory_checkpoint.save(path, _filled(), position=1234)
    fresh = _memory()
    assert not memory_checkpoint.restore(path, fresh, position=1300)
    assert not _asks_store(fresh, "c\x1fid-1")  # untouched: still empty


def test_a_checkpoint_of_another_capacity_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "judge-memory.ckpt"
    memory_checkpoint.save(path, _filled(), position=5)
    assert not memory_checkpoint.restore(path, _memory(capacity=20_000), position=5)


def test_a_damaged_or_missing_checkpoint_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "judge-memory.ckpt"
    assert not memory_checkpoint.restore(path, _memory(), position=0)
    memory_checkpoint.save(path, _filled(), position=5)
    path.write_bytes(path.read_bytes()[:-100])  # torn
    fresh = _memory()
    assert not memory_checkpoint.restore(path, fresh, position=5)
    assert not _asks_store(fresh, "c\x1fid-1")
