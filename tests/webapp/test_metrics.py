"""The web role's /metrics: records in flight, the table's size estimate and pending dead letters, read
without counting the ever-growing record table."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.actions.deadletters import do_dead_letter
from webapp.models import MessageRecord

pytestmark = pytest.mark.django_db


def test_metrics_count_records_in_flight_and_pending_dead_letters_without_counting_the_table(client):
    for i, status in enumerate(["replied", "replied", "dead", "processing", "received", "processing"]):
        MessageRecord.objects.create(msg_id=f"m{i}", tenant_id="t", status=status)
    do_dead_letter("m2", "deliver", {}, "boom")
    with CaptureQueriesContext(connection) as queries:
        text = client.get("/metrics").content.decode()
    assert 'dtbot_message_records_in_flight{status="processing"} 2.0' in text
    assert 'dtbot_message_records_in_flight{status="received"} 1.0' in text
    assert "dtbot_message_records_estimate " in text
    assert "dtbot_dead_letters_pending 1.0" in text
    record_queries = [q["sql"] for q in queries.captured_queries if '"webapp_messagerecord"' in q["sql"]]
    # Only the indexed status filter: no GROUP BY and no count of every record.
    assert record_queries and all("GROUP BY" not in sql and '"status" = ' in sql for sql in record_queries)
