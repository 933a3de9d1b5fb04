"""Recording ACK times is best effort: a dead Redis costs one warning, never an exception."""

import logging
import time

from ingest.ackrecord import AckRecorder
from testkit.services import free_port


def test_an_unreachable_redis_is_logged_once_and_never_raises(caplog):
    recorder = AckRecorder(f"redis://127.0.0.1:{free_port()}/0", "x:")
    recorder.start()
    caplog.set_level(logging.DEBUG, logger="ingest.ackrecord")
    recorder.record(["a"], time.time())
    recorder.record(["b"], time.time())
    recorder.stop(timeout=10)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "msgIds=a" in warnings[0].getMessage()


def test_a_full_queue_drops_the_batch_with_its_msg_ids(caplog):
    recorder = AckRecorder("redis://127.0.0.1:6379/0", "x:", max_batches=1)  # not started
    recorder.record(["a"], 1.0)
    recorder.record(["b"], 1.0)
    assert "msgIds=b" in caplog.text


def test_batches_written_together_keep_their_own_ack_times(redis_prefix):
    import redis

    recorder = AckRecorder("redis://127.0.0.1:6379/0", redis_prefix, ttl_seconds=600)
    recorder.start()
    recorder.record(["a", "b"], 100.5)
    recorder.record(["c"], 200.25)
    recorder.stop(timeout=5)
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        values = [client.get(f"{redis_prefix}acked:{m}") for m in "abc"]
        assert [float(v) for v in values] == [100.5, 100.5, 200.25]  # type: ignore[arg-type]  # bytes of floats
        assert 590 < client.ttl(f"{redis_prefix}acked:c") <= 600
    finally:
        client.close()
