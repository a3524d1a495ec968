"""The worker's tables on disk: one directory per app and instance, never shared, bounded memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.registry import Registry
from schemas.settings import Settings
from stream_processors import table_dir
from stream_processors.faust_topology import Topology
from stream_processors.table_dir import (
    TableDirInUse,
    claim_worker_dir,
    instance_dir_name,
    reset_if_changelogs_changed,
)


def test_two_workers_on_one_machine_never_share_a_table_directory(tmp_path: Path) -> None:
    one = claim_worker_dir(tmp_path, "survey-judge", "w1")
    two = claim_worker_dir(tmp_path, "survey-judge", "w2")
    anon_a = claim_worker_dir(tmp_path, "survey-judge", None)
    anon_b = claim_worker_dir(tmp_path, "survey-judge", None)
    other_app = claim_worker_dir(tmp_path, "other-judge", "w1")
    try:
        paths = [d.path for d in (one, two, anon_a, anon_b, other_app)]
        assert len(set(paths)) == len(paths)
        for a in paths:  # none inside another either
            assert not any(a != b and b.is_relative_to(a) for b in paths)
        assert one.path == tmp_path / "faust" / "survey-judge" / "w1"
        # The same instance id twice on one machine: the second stops at once.
        with pytest.raises(TableDirInUse, match="same instance id"):
            claim_worker_dir(tmp_path, "survey-judge", "w1")
    finally:
        for d in (one, two, anon_a, anon_b, other_app):
            d.release()
    # Released (the process ended): a restarted worker takes its own directory back.
    again = claim_worker_dir(tmp_path, "survey-judge", "w1")
    assert again.path == one.path
    again.release()
    assert claim_worker_dir(tmp_path, "survey-judge", None).path == anon_a.path


def test_instance_ids_become_distinct_safe_directory_names() -> None:
    assert instance_dir_name("worker-0") == "worker-0"
    names = {instance_dir_name(i) for i in ("a/b", "a_b", "a:b", "..", "../x", "a/../b", "")}
    assert len(names) == 7
    for name in names:
        assert "/" not in name and name not in (".", "..") and name


def test_tables_built_from_other_changelog_topics_are_dropped(tmp_path: Path) -> None:
    claimed = claim_worker_dir(tmp_path, "survey-judge", "w1")
    try:
        path = claimed.path
        ident = {"cluster": "c1", "survey-judge-fingerprints-changelog": "t1"}
        assert not reset_if_changelogs_changed(path, ident)
        tables = path / "v1" / "tables" / "fingerprints-0.db"
        tables.mkdir(parents=True)
        (tables / "CURRENT").write_text("x")
        assert not reset_if_changelogs_changed(path, ident)  # the same topics: kept
        assert tables.exists()
        # Kafka wiped, or the topic deleted and created again under the same name.
        assert reset_if_changelogs_changed(path, {**ident, "cluster": "c2"})
        assert not (path / "v1").exists()
        assert (path / table_dir.LOCK_FILE).exists()
        assert json.loads((path / table_dir.IDENTITY_FILE).read_text())["cluster"] == "c2"
    finally:
        claimed.release()


async def _synced(_: float) -> None:
    return None


def test_the_app_keeps_bounded_rocksdb_tables_in_its_own_directory(tmp_path: Path) -> None:
    from stream_processors import faust_app

    settings = Settings(data_dir=tmp_path, topic_prefix="tdir", raw_partitions=2)
    topology = Topology.of(settings)
    claimed = claim_worker_dir(tmp_path, topology.app_id, "w7")
    try:
        app = faust_app.build_app(settings, Registry(), _synced, instance_id="w7",
                                  datadir=claimed.path)
        assert Path(app.conf.datadir) == claimed.path
        assert Path(app.conf.tabledir).is_relative_to(claimed.path)
        for table in app.tables.values():
            store: Any = table.data
            assert type(store).__module__ == "faust.stores.rocksdb"
            assert isinstance(store.rocksdb_options, faust_app._BoundedRocksDBOptions)
            assert store.partition_path(0).is_relative_to(claimed.path)
            # Opening a partition's database works with the bounded options.
            db = store._db_for_partition(0)
            db[b"k"] = b"v"
            assert db[b"k"] == b"v"
        assert faust_app._shared["write_buffers"].get_buffer_size() == (
            faust_app.TABLE_MEMTABLES_BYTES)
        memory = faust_app.build_app(
            settings.model_copy(update={"table_store": "memory://"}), Registry(), _synced,
            instance_id="w8", datadir=tmp_path / "m")
        for table in memory.tables.values():
            assert type(table.data).__module__ == "faust.stores.memory"
    finally:
        claimed.release()
