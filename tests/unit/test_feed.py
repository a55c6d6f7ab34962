"""The producer-thread feed that prepares batches while the device runs."""

import itertools
import threading

import numpy as np
import pytest

from layerwise.indexer.batching import Feed, assemble


def test_one_consumer_gets_every_item_in_order():
    with Feed(iter(range(100)), depth=2) as feed:
        assert list(feed) == list(range(100))


def test_several_consumers_share_the_items_once_each():
    seen: list[int] = []
    lock = threading.Lock()

    def consume(feed):
        for item in feed:
            with lock:
                seen.append(item)

    with Feed(iter(range(500)), depth=3) as feed:
        threads = [threading.Thread(target=consume, args=(feed,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert sorted(seen) == list(range(500))


def test_a_producer_error_reaches_the_consumer():
    def source():
        yield 1
        raise ValueError("bad input")

    with Feed(source()) as feed, pytest.raises(ValueError, match="bad input"):
        list(feed)


def test_close_stops_an_endless_producer_held_by_a_full_queue():
    feed = Feed(itertools.count(), depth=2)
    assert next(iter(feed)) == 0
    feed.close()
    assert not feed._thread.is_alive()


def test_the_producer_runs_ahead_of_the_consumer():
    made = []

    def source():
        for i in range(5):
            made.append(i)
            yield i

    with Feed(source(), depth=8) as feed:
        it = iter(feed)
        assert next(it) == 0
        for _ in range(100):
            if len(made) == 5:
                break
            threading.Event().wait(0.01)
        assert len(made) == 5  # all made while the first item was still being consumed
        assert list(it) == [1, 2, 3, 4]


def test_assemble_pads_and_masks():
    batch = assemble([[1, 2, 3], [4], [5, 6]], np.array([2, 1]), np.array([7, 8]), pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6], [4, 0]]
    assert batch.attention_mask.tolist() == [[1, 1], [1, 0]]
    assert batch.positions.tolist() == [7, 8] and batch.tokens == 3 and batch.padded
    assert not assemble([[1, 2], [3, 4]], np.array([0, 1]), np.array([0, 1]), 0).padded
