"""The recorder: requests counted into metrics in batches, written to the store, never twice."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading

import pytest

from app.ops import recorder
from app.ops.metrics import Metrics
from app.ops.recorder import Recorder
from app.ops.usage import Completed, SqliteStore

PLAIN = Completed(time=1732492800.0, route="maid", upstream="openai", model="m", kind="chat", stream=False,
                  status=200, error_code=None, key_id=None, user_id=None, prompt_tokens=40, completion_tokens=30,
                  ttfb_ms=None, duration_ms=80.0, failover=False)
STREAMED = PLAIN._replace(stream=True, ttfb_ms=12.5, duration_ms=300.0, prompt_tokens=5, completion_tokens=None)
FAILED = PLAIN._replace(status=502, error_code="upstream_unreachable", failover=True, prompt_tokens=None,
                        completion_tokens=None, api="responses")


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def requests(metrics: Metrics, stream: str = "no", status: str = "200", api: str = "chat") -> float | None:
    return sample(metrics, "persona_proxy_requests_total", route="maid", kind="chat", stream=stream,
                  status=status, api=api, client="")


def test_a_batch_moves_each_metric_as_the_requests_one_by_one_would():
    metrics = Metrics()
    metrics.observe_all([PLAIN, PLAIN, STREAMED, FAILED])
    assert requests(metrics) == 2
    assert requests(metrics, stream="yes") == 1
    assert requests(metrics, status="502", api="responses") == 1
    assert sample(metrics, "persona_proxy_tokens_total", route="maid", type="prompt") == 85
    assert sample(metrics, "persona_proxy_tokens_total", route="maid", type="completion") == 60
    assert sample(metrics, "persona_proxy_errors_total", route="maid", code="upstream_unreachable") == 1
    assert sample(metrics, "persona_proxy_failovers_total", route="maid") == 1
    assert sample(metrics, "persona_proxy_request_duration_seconds_count", route="maid") == 4
    assert sample(metrics, "persona_proxy_request_duration_seconds_sum", route="maid") == pytest.approx(0.54)
    assert sample(metrics, "persona_proxy_request_duration_seconds_bucket", route="maid", le="0.1") == 3
    # Only the stream had a first byte to time.
    assert sample(metrics, "persona_proxy_time_to_first_byte_seconds_count", route="maid") == 1


async def test_a_scrape_counts_what_waits_and_the_batch_does_not_count_it_again(tmp_path):
    metrics = Metrics()
    rec = Recorder(metrics, SqliteStore(tmp_path / "u.sqlite3"))
    rec.submit(PLAIN)
    rec.submit(PLAIN)
    assert requests(metrics) is None  # nothing is counted on the request path
    rec.count()
    assert requests(metrics) == 2
    rec.submit(PLAIN)
    rec.start()
    await rec.close()
    assert requests(metrics) == 3
    assert rec.written == 3
    with sqlite3.connect(tmp_path / "u.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM usage").fetchone() == (3,)


async def test_a_full_queue_drops_rows_but_not_counts(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(recorder, "QUEUE_LIMIT", 3)
    metrics = Metrics()
    rec = Recorder(metrics, SqliteStore(tmp_path / "u.sqlite3"))
    for _ in range(6):
        rec.submit(PLAIN)
    assert rec.dropped == 3
    assert requests(metrics) == 6  # the store being behind is no reason for the metrics to be
    rec.start()
    await rec.close()
    assert rec.written == 3
    assert requests(metrics) == 6
    assert "usage: 3 record(s) dropped, the store is not keeping up" in caplog.text


async def test_with_usage_off_requests_are_still_counted(monkeypatch):
    monkeypatch.setattr(recorder, "BATCH_SIZE", 2)
    metrics = Metrics()
    rec = Recorder(metrics)
    rec.start()
    for _ in range(5):
        rec.submit(STREAMED)
    await rec.close()
    assert requests(metrics, stream="yes") == 5
    assert rec.written == 0 and rec.dropped == 0


async def test_batches_larger_than_a_write_go_in_several_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(recorder, "BATCH_SIZE", 2)
    writes: list[int] = []
    store = SqliteStore(tmp_path / "u.sqlite3")
    real_write = store.write
    monkeypatch.setattr(store, "write", lambda rows: (writes.append(len(rows)), real_write(rows)))
    rec = Recorder(Metrics(), store)
    for _ in range(5):
        rec.submit(PLAIN)
    await rec.close()  # never started: closing still writes what waits
    assert writes == [2, 2, 1] and rec.written == 5


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")
async def test_the_writer_thread_gives_way_to_the_event_loop(tmp_path):
    rec = Recorder(Metrics(), SqliteStore(tmp_path / "u.sqlite3"))
    rec.submit(PLAIN)
    rec.start()
    writer = await asyncio.get_running_loop().run_in_executor(rec._thread, threading.get_native_id)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.getpriority(os.PRIO_PROCESS, writer) == min(19, mine + recorder.WRITER_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == mine  # the main thread is left as it was
    await rec.close()
    assert rec.written == 1
