"""Transfer progress for people: the figures, the throttle, and what is told where.

The registry and the run record are stood in for by two lists here: what is under test is when
the reporter speaks and what it says; the integration tests check the real registry hears it.
"""

from __future__ import annotations

import asyncio

import pytest

from agent.humanize import human_bytes, human_seconds
from agent.jobs.transfers import Tally, TransferProgress
from agent.registry.errors import RegistryUnavailable
from agent.runs.model import Entry

MiB = 2**20


def test_sizes_and_durations_read_as_people_say_them() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536 * 1024) == "1.5 MiB"
    assert human_bytes(10 * 2**30) == "10.0 GiB"
    assert human_bytes(3 * 2**50) == "3.0 PiB"
    assert human_seconds(40.4) == "40 s"
    assert human_seconds(185) == "3 min 5 s"
    assert human_seconds(2 * 3600 + 4 * 60 + 9) == "2 h 4 min"


def test_message_gives_share_rate_and_time_left() -> None:
    tally = Tally(done=256 * MiB, total=1024 * MiB, seconds=2.0)
    assert tally.message("uploading") == (
        "uploading 256.0 MiB of 1.0 GiB (25%) at 128.0 MiB/s, about 6 s left"
    )
    assert tally.summary("uploaded") == "uploaded 256.0 MiB in 2 s (128.0 MiB/s)"
    assert tally.tags()["bytes_per_second"] == 128 * MiB
    # Before any time has passed there is no rate to speak of, and nothing is divided by zero.
    assert Tally(0, 10, 0.0).message("downloading") == "downloading 0 B of 10 B (0%)"


class Heard:
    """What the registry was told and what the run record kept."""

    def __init__(self) -> None:
        self.told: list[str] = []
        self.noted: list[Entry] = []
        self.news = asyncio.Event()
        self.fail_next = 0

    async def tell(self, text: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            self.news.set()
            msg = "registry away"
            raise RegistryUnavailable(msg)
        self.told.append(text)
        self.news.set()

    def note(self, entry: Entry) -> None:
        self.noted.append(entry)
        self.news.set()

    async def next_news(self) -> None:
        self.news.clear()
        await asyncio.wait_for(self.news.wait(), timeout=10)


def reporter(
    heard: Heard, every: float, acknowledged: list[bool] | None = None
) -> TransferProgress:
    ack = acknowledged if acknowledged is not None else [True]
    return TransferProgress(
        "uploading", "uploaded", every=every, tell=heard.tell, note=heard.note,
        acknowledged=lambda: ack[0],
    )  # fmt: skip


async def test_a_transfer_done_within_the_interval_says_nothing() -> None:
    heard = Heard()
    async with reporter(heard, every=3600) as progress:
        progress.expect(100)
        progress.add(100)
    assert heard.told == [] and heard.noted == []


async def test_a_long_transfer_is_told_and_recorded_then_summed_up() -> None:
    heard = Heard()
    async with reporter(heard, every=0.01) as progress:
        progress.expect(100 * MiB)
        progress.add(40 * MiB)
        while not heard.told:
            await heard.next_news()
        progress.add(60 * MiB)
    assert "40.0 MiB of 100.0 MiB (40%)" in heard.told[0]
    first = heard.noted[0]
    assert first.tags["bytes"] == 40 * MiB and first.tags["total_bytes"] == 100 * MiB
    last = heard.noted[-1]
    assert last.message.startswith("uploaded 100.0 MiB in ")
    assert last.tags["bytes"] == 100 * MiB


async def test_the_registry_hears_only_once_it_has_taken_the_phase() -> None:
    heard, taken = Heard(), [False]
    async with reporter(heard, every=0.01, acknowledged=taken) as progress:
        progress.expect(10)
        progress.add(5)
        await heard.next_news()  # recorded, not told
        assert heard.noted and heard.told == []
        taken[0] = True
        progress.add(1)
        while not heard.told:
            await heard.next_news()
    assert "6 B of 10 B" in heard.told[0]


async def test_a_report_that_fails_is_dropped_and_the_next_carries_newer_news() -> None:
    heard = Heard()
    heard.fail_next = 1
    async with reporter(heard, every=0.01) as progress:
        progress.expect(10)
        progress.add(3)
        while heard.fail_next:
            await heard.next_news()
        progress.add(4)
        while not heard.told:
            await heard.next_news()
    assert "7 B of 10 B" in heard.told[0]


async def test_a_phase_that_fails_gets_no_summary() -> None:
    heard = Heard()
    with pytest.raises(OSError):
        async with reporter(heard, every=0.01) as progress:
            progress.expect(10)
            progress.add(3)
            while not heard.told:
                await heard.next_news()
            msg = "disk full"
            raise OSError(msg)
    assert not any(e.message.startswith("uploaded") for e in heard.noted)
