"""The commit protocol on every store: stopped at each step, a reader never sees a mix
of old and new files nor incomplete data under ``_SUCCESS``; recovery then restores the
old output (before the commit point) or finishes the new one (after it)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from distsmote._faults import InjectedFault
from distsmote.commit import (
    FsspecStore,
    HadoopStore,
    Owner,
    _host,
    commit,
    recover,
    sibling,
)

STEPS = ["begin", "unmark", "aside", "move", "mark", "cleanup", "done"]
BEFORE_COMMIT_POINT = {"begin", "unmark", "aside", "move", "mark"}


def _dead_owner() -> Owner:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return Owner(_host(), proc.pid, uuid.uuid4().hex[:12])


@pytest.fixture(params=["local", "memory", "hadoop"])
def store_root(request, tmp_path):
    """``(store, root URL, listing fs)`` for each kind of store."""
    import fsspec

    if request.param == "local":
        root = str(tmp_path)
        return FsspecStore(root), root, fsspec.filesystem("file")
    if request.param == "memory":
        root = f"memory://commit-{uuid.uuid4().hex[:8]}"
        fs = fsspec.filesystem("memory")
        request.addfinalizer(lambda: fs.rm(root, recursive=True) if fs.exists(root) else None)
        return FsspecStore(root), root, fs
    spark = request.getfixturevalue("spark")
    root = str(tmp_path)
    return HadoopStore(spark), root, fsspec.filesystem("file")


def _names(fs, path) -> set[str]:
    if not fs.exists(path):
        return set()
    return {os.path.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)}


def _data(fs, path) -> dict[str, bytes]:
    return {n: fs.cat_file(f"{path}/{n}") for n in _names(fs, path) if not n.startswith(("_", "."))}


def _setup(store, root, old: str):
    output = f"{root}/out"
    if old != "none":
        store.write_text(f"{output}/old-0.parquet", "old 0")
        store.write_text(f"{output}/old-1.parquet", "old 1")
        if old == "complete":
            store.touch(f"{output}/_SUCCESS")
    return output


def _stage(store, output, owner) -> str:
    staging = sibling(output, "staging", owner)
    store.write_text(f"{staging}/part-00000.parquet", "new 0")
    store.write_text(f"{staging}/part-00001.parquet", "new 1")
    store.touch(f"{staging}/_SUCCESS")  # as Spark's committer leaves it
    return staging


OLD = {"old-0.parquet": b"old 0", "old-1.parquet": b"old 1"}
NEW = {"part-00000.parquet": b"new 0", "part-00001.parquet": b"new 1"}


def _assert_readable_state(fs, output):
    """What a reader may see at any instant: old, new, or something not marked complete."""
    data = _data(fs, output)
    assert not (set(data) & set(OLD) and set(data) & set(NEW)), f"mix of old and new: {sorted(data)}"
    if "_SUCCESS" in _names(fs, output):
        assert data in (OLD, NEW), f"marked complete but holds {sorted(data)}"


@pytest.mark.parametrize("old", ["complete", "incomplete", "none"])
@pytest.mark.parametrize("step", STEPS)
def test_stopped_commit_is_recovered(store_root, monkeypatch, step, old):
    store, root, fs = store_root
    output = _setup(store, root, old)
    owner = _dead_owner()
    staging = _stage(store, output, owner)
    monkeypatch.setenv("DISTSMOTE_FAULTS", f"commit.{step}=raise")
    with pytest.raises(InjectedFault):
        commit(store, staging, output, overwrite=True, owner=owner)
    _assert_readable_state(fs, output)

    monkeypatch.delenv("DISTSMOTE_FAULTS")
    recover(store, output)  # the owner is dead: its debris is undone or finished
    _assert_readable_state(fs, output)
    assert {n for n in _names(fs, root) if n.startswith(".")} == set(), "stale siblings left"
    names = _names(fs, output)
    assert "_OWNER" not in names
    if step in BEFORE_COMMIT_POINT:
        if old == "none":
            assert not fs.exists(output)
        else:
            assert _data(fs, output) == OLD
            assert ("_SUCCESS" in names) == (old == "complete")
    else:
        assert _data(fs, output) == NEW and "_SUCCESS" in names
    recover(store, output)  # idempotent
    assert _data(fs, output) == (NEW if step not in BEFORE_COMMIT_POINT else (OLD if old != "none" else {}))


def test_recover_leaves_live_and_foreign_runs_alone(tmp_path):
    store = FsspecStore(str(tmp_path))
    output = str(tmp_path / "out")
    live = sibling(output, "staging", Owner.new())
    foreign = sibling(output, "staging", Owner("elsewhere.example", 1, "0" * 12))
    dead = sibling(output, "staging", _dead_owner())
    other = str(tmp_path / ".other.staging-x")
    for d in (live, foreign, dead, other):
        store.write_text(f"{d}/part-00000.parquet", "x")
    recover(store, output)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        os.path.basename(p) for p in (live, foreign, other)
    )


def test_recover_never_touches_the_input(tmp_path):
    """An input that happens to look like a dead run's staging directory is kept."""
    store = FsspecStore(str(tmp_path))
    output = str(tmp_path / "out")
    looks_stale = sibling(output, "staging", _dead_owner())
    store.write_text(f"{looks_stale}/part-00000.parquet", "input data")
    recover(store, output, protect=(looks_stale + "/part-00000.parquet",))
    assert store.exists(f"{looks_stale}/part-00000.parquet")
    recover(store, output)
    assert not store.exists(looks_stale)


def test_owner_token_round_trip():
    owner = Owner("host-with-dashes.example", 4242, "0123456789ab")
    assert Owner.parse(str(owner)) == owner
    assert Owner.parse("garbage") is None
    assert not Owner.new().is_dead()
    assert _dead_owner().is_dead()
