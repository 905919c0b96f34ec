"""Events are a public interface: docs/EVENTS.md is generated from the owners' schemas and must be current, and
every consumer's schema may only require what its producer promises."""
from pathlib import Path

from marshmallow import fields

from devstack import event_catalog

EVENTS_MD = Path(__file__).resolve().parents[1] / "docs" / "EVENTS.md"


def test_events_document_is_generated_from_the_schemas():
    assert EVENTS_MD.read_text() == event_catalog.render() + "\n", "docs/EVENTS.md is stale: run `make docs`"


def test_consumers_require_only_what_producers_promise():
    assert event_catalog.incompatibilities() == []
    assert {(c, p, e) for c, p, e in event_catalog.consumed()} >= {
        ("orders", "payment_gateway", "payment.succeeded"), ("plans", "orders", "order.paid"),
        ("plans", "orders", "order.released"), ("certs", "orders", "order.paid")}


def test_the_contract_check_catches_a_dropped_field(monkeypatch):
    from orders import schemas

    class Narrowed(schemas.OrderPaid):
        pass

    Narrowed._declared_fields = {k: v for k, v in schemas.OrderPaid._declared_fields.items() if k != "records"}
    monkeypatch.setitem(schemas.EVENTS, "order.paid", Narrowed)
    assert any("records" in problem for problem in event_catalog.incompatibilities())
    assert isinstance(schemas.OrderPaid().fields["records"], fields.List)
