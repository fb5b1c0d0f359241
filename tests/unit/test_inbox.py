"""The hand-off from paho's thread to the writer: batches, wake-ups, nothing lost."""

from __future__ import annotations

import asyncio
import threading

from collector.inbox import Inbound, Inbox


def item(mid: int) -> Inbound:
    return Inbound(mid=mid, qos=1, generation=1, reading=None)


async def test_empty_inbox_returns_nothing_after_idle_timeout() -> None:
    inbox = Inbox(asyncio.get_running_loop(), batch_max=10)
    assert await inbox.take(linger=0.01, idle_timeout=0.01) == []


async def test_a_trickle_is_taken_after_the_linger() -> None:
    inbox = Inbox(asyncio.get_running_loop(), batch_max=10)
    inbox.put(item(1))
    inbox.put(item(2))
    assert [i.mid for i in await inbox.take(linger=0.01, idle_timeout=5)] == [1, 2]
    assert len(inbox) == 0


async def test_a_full_batch_does_not_wait_for_the_linger() -> None:
    inbox = Inbox(asyncio.get_running_loop(), batch_max=3)
    for mid in range(3):
        inbox.put(item(mid))
    # A linger of an hour would hang the test if a full batch waited for it.
    batch = await asyncio.wait_for(inbox.take(linger=3600, idle_timeout=3600), 5)
    assert [i.mid for i in batch] == [0, 1, 2]


async def test_items_from_another_thread_all_arrive_in_order() -> None:
    inbox = Inbox(asyncio.get_running_loop(), batch_max=100)

    def produce() -> None:
        for mid in range(5000):
            inbox.put(item(mid))

    producer = threading.Thread(target=produce)
    producer.start()
    taken: list[int] = []
    while len(taken) < 5000:
        taken += [i.mid for i in await inbox.take(linger=0.001, idle_timeout=5)]
    producer.join()
    assert taken == list(range(5000))


async def test_a_full_inbox_holds_paho_back_until_the_batch_is_taken() -> None:
    inbox = Inbox(asyncio.get_running_loop(), batch_max=3)

    def produce() -> None:
        for mid in range(5):
            inbox.put(item(mid))

    producer = threading.Thread(target=produce)
    producer.start()
    await asyncio.sleep(0.2)
    assert len(inbox) == 3
    assert producer.is_alive()  # the fourth put waits for room
    taken = [i.mid for i in await inbox.take(linger=0.01, idle_timeout=5)]
    await asyncio.to_thread(producer.join, 5)
    assert not producer.is_alive()
    taken += [i.mid for i in await inbox.take(linger=0.01, idle_timeout=5)]
    assert taken == [0, 1, 2, 3, 4]


async def test_close_releases_a_waiting_put() -> None:
    inbox = Inbox(asyncio.get_running_loop(), batch_max=1)
    inbox.put(item(1))
    producer = threading.Thread(target=inbox.put, args=(item(2),))
    producer.start()
    await asyncio.sleep(0.1)
    assert producer.is_alive()
    inbox.close()
    await asyncio.to_thread(producer.join, 1)
    assert not producer.is_alive()
