"""The outbox against the real database: publish in order, mark sent only after a confirmed publish."""
from datetime import datetime, timedelta, timezone

import pytest

from servicekit.events import Outbox, ProcessedEvents, relay_outbox
from servicekit.mongo import make_client

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(mongo_uri, db_prefix, request):
    database = make_client(mongo_uri)[f"{db_prefix}{request.node.name[:40]}"]
    Outbox.ensure_indexes(database)
    ProcessedEvents.ensure_indexes(database)
    return database


def test_relay_publishes_in_order_and_marks_sent(db):
    outbox = Outbox(db)
    first = outbox.add("thing.happened", {"n": 1}, T0)
    outbox.add("thing.happened", {"n": 2}, T0 + timedelta(seconds=1))
    published = []
    assert relay_outbox(outbox, lambda kind, event: published.append((kind, event["n"])), T0) == 2
    assert published == [("thing.happened", 1), ("thing.happened", 2)]
    assert outbox.backlog() == 0
    assert {"event_id", "occurred_at", "schema_version"} <= set(first)
    assert relay_outbox(outbox, lambda *a: published.append(a), T0) == 0  # nothing twice


def test_failed_publish_stays_pending_and_is_retried_after_the_lease(db):
    outbox = Outbox(db)
    outbox.add("thing.happened", {"n": 1}, T0)

    def broker_down(kind, event):
        raise ConnectionError("broker down")

    assert relay_outbox(outbox, broker_down, T0) == 0
    assert outbox.backlog() == 1
    assert relay_outbox(outbox, lambda *a: None, T0 + timedelta(seconds=5)) == 0  # still claimed
    assert relay_outbox(outbox, lambda *a: None, T0 + timedelta(seconds=31)) == 1
    assert outbox.backlog() == 0


def test_processed_events_are_recorded_once(db):
    processed = ProcessedEvents(db, "tests")
    assert not processed.already_processed("e1")
    assert processed.record("e1", T0) is True
    assert processed.record("e1", T0) is False
    assert processed.already_processed("e1")
