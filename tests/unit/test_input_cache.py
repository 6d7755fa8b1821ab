"""The input cache: LRU eviction within its bound, its index across restarts, and never
serving a file changed on disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.cache.materialize import materialize
from agent.cache.shared import Download, InputCache
from agent.cache.store import INDEX, CacheStore, Entry, Stamp, clear, evictions, read_index
from agent.humanize import human_bytes
from agent.protocol.content import new_salt, salted_sha


def _entry(sha: str, size: int, used: float) -> Entry:
    return Entry(sha, "s", size, None, 0.0, used, Stamp(size, 1, 1, 1))


def test_evictions_take_the_least_recently_used_first_and_skip_busy_ones() -> None:
    entries = [_entry("a", 40, 3.0), _entry("b", 40, 1.0), _entry("c", 40, 2.0)]
    assert evictions(entries, 10, 130, set()) == []  # fits already
    assert evictions(entries, 40, 130, set()) == ["b"]
    assert evictions(entries, 80, 130, set()) == ["b", "c"]
    assert evictions(entries, 80, 130, {"b"}) == ["c", "a"]  # b is being copied
    assert evictions(entries, 100, 130, {"a"}) is None  # only by evicting a busy one
    assert evictions(entries, 200, 130, set()) is None


def _put(store: CacheStore, content: bytes, name: str = "m.bin") -> str:
    """File `content` as a download would: verified bytes at partial(sha), then add."""
    salt = new_salt()
    sha = salted_sha(content, salt)
    store.partial(sha).write_bytes(content)
    assert store.add(sha, salt, name, set())
    return sha


def test_adding_past_the_bound_evicts_the_least_recently_used(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache", limit=250)
    first, second = _put(store, b"1" * 100), _put(store, b"2" * 100)
    store.touch(first)  # first is now the more recently used
    third = _put(store, b"3" * 100)
    assert set(store.entries) == {first, third}
    assert not store.path(second).exists()
    assert store.total() <= store.limit
    assert not store.fits(251) and store.fits(250) and not store.fits(None)


def test_files_and_directories_are_private(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache", limit=1000)
    sha = _put(store, b"secret model")
    assert stat.S_IMODE(store.path(sha).stat().st_mode) == 0o600
    for d in (store.root, store.blobs, store.partials):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((store.root / INDEX).stat().st_mode) == 0o600


def test_the_index_survives_a_restart_and_is_checked_against_the_files(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    store = CacheStore(root, limit=1000)
    kept, lost = _put(store, b"kept", "kept.txt"), _put(store, b"lost")
    store.path(lost).unlink()  # an entry without its file
    stray = root / "blobs" / ("f" * 96)
    stray.write_bytes(b"no entry")  # a file without its entry
    again = CacheStore(root, limit=1000)
    assert set(again.entries) == {kept}
    assert again.entries[kept].name == "kept.txt"
    assert not stray.exists()
    entries, limit = read_index(root)
    assert set(entries) == {kept} and limit == 1000


def test_an_unreadable_index_starts_empty_and_drops_the_files(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    sha = _put(CacheStore(root, limit=1000), b"x")
    (root / INDEX).write_text("{not json")
    store = CacheStore(root, limit=1000)
    assert store.entries == {}
    assert not store.path(sha).exists()


async def test_a_cached_file_changed_on_disk_is_dropped_and_downloaded_again(
    tmp_path: Path,
) -> None:
    content = b"pristine model bytes"
    salt = new_salt()
    sha = salted_sha(content, salt)
    cache = InputCache(CacheStore(tmp_path / "cache", limit=1000))
    downloads: list[Path] = []

    async def fetch(path: Path, resume: bool) -> int:
        downloads.append(path)
        path.write_bytes(content)
        return len(content)

    got = [tmp_path / f"job{i}.bin" for i in range(4)]
    assert await cache.provide(sha, salt, len(content), "m", got[0], fetch) == "download"
    assert await cache.provide(sha, salt, len(content), "m", got[1], fetch) == "hit"
    assert len(downloads) == 1
    cached = cache.store.path(sha)
    cached.chmod(0o600)
    with cached.open("r+b") as f:  # someone writes into the cache itself
        f.write(b"EVIL")
    assert await cache.provide(sha, salt, len(content), "m", got[2], fetch) == "download"
    assert len(downloads) == 2
    # Touched (its stamp differs) but unchanged: re-hashed, found good, served.
    os.utime(cached, ns=(1, 1))
    assert await cache.provide(sha, salt, len(content), "m", got[3], fetch) == "hit"
    assert [p.read_bytes() for p in got] == [content] * 4


async def test_an_input_bigger_than_the_cache_is_downloaded_straight_to_the_job(
    tmp_path: Path,
) -> None:
    cache = InputCache(CacheStore(tmp_path / "cache", limit=10))
    dest = tmp_path / "job.bin"

    async def fetch(path: Path, resume: bool) -> int:
        assert (path, resume) == (dest, False)
        path.write_bytes(b"x" * 11)
        return 11

    assert await cache.provide("a" * 96, "s", 11, None, dest, fetch) == "uncached"
    assert cache.store.entries == {}


def test_a_copy_is_private_to_the_tool(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.write_bytes(b"cache")
    assert materialize(src, dest) in ("reflink", "copy")
    dest.write_bytes(b"tool wrote here")
    assert src.read_bytes() == b"cache"
    assert src.stat().st_ino != dest.stat().st_ino


def test_clear_removes_everything_and_counts_it(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "cache", limit=1000)
    _put(store, b"a" * 300)
    store.partial("b" * 96).write_bytes(b"p" * 50)
    assert clear(store.root) == 350
    assert list(store.blobs.iterdir()) == [] and list(store.partials.iterdir()) == []
    assert read_index(store.root) == ({}, None)


def test_sizes_read_as_people_write_them() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536 * 1024, 20 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "20.0 GiB",
    ]


async def test_an_entry_in_use_is_not_evicted_and_the_newcomer_goes_to_its_job(
    tmp_path: Path,
) -> None:
    cache = InputCache(CacheStore(tmp_path / "cache", limit=100))
    salt = new_salt()
    first, second = b"a" * 60, b"b" * 60
    sha_a, sha_b = salted_sha(first, salt), salted_sha(second, salt)

    def fetching(content: bytes) -> Download:
        async def fetch(path: Path, resume: bool) -> int:
            path.write_bytes(content)
            return len(content)

        return fetch

    assert await cache.provide(sha_a, salt, 60, "a", tmp_path / "a", fetching(first)) == "download"
    copying_a = tmp_path / "b-while-a-is-copied"

    async def fetch_b_while_a_in_use(path: Path, resume: bool) -> int:
        # A job is copying `a` out right now (pinned, as provide() does for it).
        cache._pins[sha_a] += 1
        return await fetching(second)(path, resume)

    how = await cache.provide(sha_b, salt, 60, "b", copying_a, fetch_b_while_a_in_use)
    assert how == "uncached"
    assert copying_a.read_bytes() == second
    assert set(cache.store.entries) == {sha_a} and cache.store.path(sha_a).exists()
    assert not cache.store.partial(sha_b).exists()
