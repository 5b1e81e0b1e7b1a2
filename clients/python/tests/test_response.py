"""HandlerResponse, PublishEventInfo, legacy returns and Value conversion, without a server."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from stufio_client import Disposition, HandlerResponse, PublishEventInfo, normalize
from stufio_client import handler_pb2 as pb
from stufio_client._values import to_python, to_value
from stufio_client.response import merge
from support import metrics_of, result_of


def test_none_metrics_are_left_out() -> None:
    assert metrics_of(HandlerResponse(metrics={"a": None, "b": 0}).to_proto()) == {"b": 0}


def test_with_result_and_add_metrics_chain() -> None:
    response = HandlerResponse.with_result({"status": "completed"}).add_metrics({"a": 1}).add_metrics({"b": True})
    assert response.result == {"status": "completed"}
    assert response.metrics == {"a": 1, "b": True}
    msg = response.to_proto()
    assert result_of(msg) == {"status": "completed"}
    assert metrics_of(msg) == {"a": 1, "b": True}
    assert msg.disposition == pb.DISPOSITION_ACK


@pytest.mark.parametrize(
    "returned, expected",
    [
        (None, HandlerResponse()),
        ({"metrics": {"items_processed": 42}}, HandlerResponse(metrics={"items_processed": 42})),
        ({"result": {"status": "ok"}}, HandlerResponse(result={"status": "ok"})),
        (
            {"publish": [{"event_type": "user.notified", "payload": {"x": 1}}]},
            HandlerResponse(publish=[PublishEventInfo(event_type="user.notified", payload={"x": 1})]),
        ),
        ({"result": 1, "metrics": {"m": 2}}, HandlerResponse(result=1, metrics={"m": 2})),
        ({"status": "ok"}, HandlerResponse(result={"status": "ok"})),  # not HandlerResponse fields
        ({"result": 1, "other": 2}, HandlerResponse(result={"result": 1, "other": 2})),
        ({}, HandlerResponse(result={})),
        ([1, 2], HandlerResponse(result=[1, 2])),
        (0, HandlerResponse(result=0)),
        ("done", HandlerResponse(result="done")),
    ],
)
def test_legacy_returns_are_normalised(returned: object, expected: HandlerResponse) -> None:
    assert normalize(returned) == expected


def test_a_response_is_kept_as_is() -> None:
    response = HandlerResponse(result=1)
    assert normalize(response) is response


class NotificationEvent:
    event_type = "user.notification"


class NamedEvent:
    name = "audit.recorded"


class StufioStyleEvent:
    entity_type = "order"
    action = "created"


@pytest.mark.parametrize(
    "event_type, expected",
    [
        ("order.fulfillment", "order.fulfillment"),
        (NotificationEvent, "user.notification"),
        (NamedEvent, "audit.recorded"),
        (StufioStyleEvent, "order.created"),
    ],
)
def test_publish_event_type_from_string_or_class(event_type: object, expected: str) -> None:
    assert PublishEventInfo(event_type=event_type).to_proto().event_type == expected


def test_publish_event_type_must_be_known() -> None:
    with pytest.raises(TypeError):
        PublishEventInfo(event_type=object()).to_proto()


def test_publish_info_to_proto() -> None:
    msg = PublishEventInfo(
        event_type="order.fulfillment",
        entity_id=42,
        payload={"order_id": "ord-1"},
        correlation_id=None,
        headers={"x-tenant": "t1"},
        delay_ms=500,
        actor={"type": "user", "id": "u-1"},
    ).to_proto()
    assert msg.entity_id == "42"
    assert msg.correlation_id == ""  # empty: the sidecar inherits the inbound one
    assert to_python(msg.payload) == {"order_id": "ord-1"}
    assert dict(msg.headers) == {"x-tenant": "t1"}
    assert msg.delay_ms == 500
    assert (msg.actor.type, msg.actor.id) == ("user", "u-1")

    raw = PublishEventInfo(event_type="blob.stored", data=b"\x00\x01", content_type="application/octet-stream").to_proto()
    assert raw.data == b"\x00\x01" and not raw.HasField("payload")


def test_disposition_helpers() -> None:
    retry = HandlerResponse.retry("db busy", delay_ms=1500).to_proto()
    assert (retry.disposition, retry.retry_delay_ms, retry.error_message) == (pb.DISPOSITION_RETRY, 1500, "db busy")
    assert HandlerResponse.dead_letter("bad").to_proto().disposition == pb.DISPOSITION_DEAD_LETTER
    assert HandlerResponse(disposition="retry").disposition is Disposition.RETRY


def test_merge_keeps_everything_and_the_most_cautious_disposition() -> None:
    merged = merge(
        [
            HandlerResponse(result=None, metrics={"a": 1}, publish=[PublishEventInfo("x.y")]),
            HandlerResponse.retry("later", delay_ms=10).add_metrics({"b": 2}),
            HandlerResponse(result="second", publish=[PublishEventInfo("x.z")]),
        ]
    )
    assert merged.result == "second"
    assert merged.metrics == {"a": 1, "b": 2}
    assert [p.event_type for p in merged.publish or []] == ["x.y", "x.z"]
    assert (merged.disposition, merged.retry_delay_ms, merged.error_message) == (Disposition.RETRY, 10, "later")


@dataclasses.dataclass
class Point:
    x: int
    at: datetime.datetime


def test_values_round_trip_json_data() -> None:
    data = {"int": 3, "float": 10.5, "neg": -2, "big": 2**60, "s": "x", "b": False, "n": None, "l": [1, {"k": []}], "e": {}}
    back = to_python(to_value(data))
    assert back == {**data, "big": float(2**60)}
    assert isinstance(back["int"], int) and isinstance(back["float"], float)


def test_values_from_dataclasses_and_datetimes() -> None:
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert to_python(to_value(Point(1, at))) == {"x": 1, "at": "2026-01-02T03:04:05+00:00"}
    with pytest.raises(TypeError):
        to_value(object())
