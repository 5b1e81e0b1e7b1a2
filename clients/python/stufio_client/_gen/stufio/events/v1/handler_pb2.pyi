import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Disposition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISPOSITION_UNSPECIFIED: _ClassVar[Disposition]
    DISPOSITION_ACK: _ClassVar[Disposition]
    DISPOSITION_RETRY: _ClassVar[Disposition]
    DISPOSITION_DEAD_LETTER: _ClassVar[Disposition]
DISPOSITION_UNSPECIFIED: Disposition
DISPOSITION_ACK: Disposition
DISPOSITION_RETRY: Disposition
DISPOSITION_DEAD_LETTER: Disposition

class Actor(_message.Message):
    __slots__ = ("type", "id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("subject", "attempt", "stream", "stream_sequence", "reply_expected", "consumer", "mode")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REPLY_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    subject: str
    attempt: int
    stream: str
    stream_sequence: int
    reply_expected: bool
    consumer: str
    mode: str
    def __init__(self, subject: _Optional[str] = ..., attempt: _Optional[int] = ..., stream: _Optional[str] = ..., stream_sequence: _Optional[int] = ..., reply_expected: _Optional[bool] = ..., consumer: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class EventMessage(_message.Message):
    __slots__ = ("event_id", "event_type", "entity_id", "correlation_id", "causation_id", "source", "time", "content_type", "data", "payload", "headers", "actor", "delivery", "hops", "traceparent")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    entity_id: str
    correlation_id: str
    causation_id: str
    source: str
    time: _timestamp_pb2.Timestamp
    content_type: str
    data: bytes
    payload: _struct_pb2.Value
    headers: _containers.ScalarMap[str, str]
    actor: Actor
    delivery: Delivery
    hops: int
    traceparent: str
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., entity_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., causation_id: _Optional[str] = ..., source: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., headers: _Optional[_Mapping[str, str]] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ..., hops: _Optional[int] = ..., traceparent: _Optional[str] = ...) -> None: ...

class HandlerMetrics(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, values: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...

class PublishEventInfo(_message.Message):
    __slots__ = ("event_type", "entity_id", "payload", "data", "content_type", "correlation_id", "headers", "actor", "delay_ms")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    entity_id: str
    payload: _struct_pb2.Value
    data: bytes
    content_type: str
    correlation_id: str
    headers: _containers.ScalarMap[str, str]
    actor: Actor
    delay_ms: int
    def __init__(self, event_type: _Optional[str] = ..., entity_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., correlation_id: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., delay_ms: _Optional[int] = ...) -> None: ...

class HandlerResponse(_message.Message):
    __slots__ = ("result", "metrics", "publish", "disposition", "retry_delay_ms", "event_id", "error_message", "error_code")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    metrics: HandlerMetrics
    publish: _containers.RepeatedCompositeFieldContainer[PublishEventInfo]
    disposition: Disposition
    retry_delay_ms: int
    event_id: str
    error_message: str
    error_code: int
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., metrics: _Optional[_Union[HandlerMetrics, _Mapping]] = ..., publish: _Optional[_Iterable[_Union[PublishEventInfo, _Mapping]]] = ..., disposition: _Optional[_Union[Disposition, str]] = ..., retry_delay_ms: _Optional[int] = ..., event_id: _Optional[str] = ..., error_message: _Optional[str] = ..., error_code: _Optional[int] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubscriptionDeclaration(_message.Message):
    __slots__ = ("event_type", "delivery", "stream", "durable", "queue_group", "max_in_flight", "max_deliver")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DURABLE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVER_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    delivery: str
    stream: str
    durable: str
    queue_group: str
    max_in_flight: int
    max_deliver: int
    def __init__(self, event_type: _Optional[str] = ..., delivery: _Optional[str] = ..., stream: _Optional[str] = ..., durable: _Optional[str] = ..., queue_group: _Optional[str] = ..., max_in_flight: _Optional[int] = ..., max_deliver: _Optional[int] = ...) -> None: ...

class HandlerDescription(_message.Message):
    __slots__ = ("name", "version", "subscriptions", "sdk")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    subscriptions: _containers.RepeatedCompositeFieldContainer[SubscriptionDeclaration]
    sdk: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., subscriptions: _Optional[_Iterable[_Union[SubscriptionDeclaration, _Mapping]]] = ..., sdk: _Optional[str] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("event", "causation_id", "event_id")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CAUSATION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event: PublishEventInfo
    causation_id: str
    event_id: str
    def __init__(self, event: _Optional[_Union[PublishEventInfo, _Mapping]] = ..., causation_id: _Optional[str] = ..., event_id: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("event_id", "subject", "stream", "sequence", "duplicate")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    subject: str
    stream: str
    sequence: int
    duplicate: bool
    def __init__(self, event_id: _Optional[str] = ..., subject: _Optional[str] = ..., stream: _Optional[str] = ..., sequence: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class RequestRequest(_message.Message):
    __slots__ = ("event", "timeout_ms", "event_id")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event: PublishEventInfo
    timeout_ms: int
    event_id: str
    def __init__(self, event: _Optional[_Union[PublishEventInfo, _Mapping]] = ..., timeout_ms: _Optional[int] = ..., event_id: _Optional[str] = ...) -> None: ...

class RequestResponse(_message.Message):
    __slots__ = ("result", "event_id", "error", "error_code")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    result: _struct_pb2.Value
    event_id: str
    error: str
    error_code: str
    def __init__(self, result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., event_id: _Optional[str] = ..., error: _Optional[str] = ..., error_code: _Optional[str] = ...) -> None: ...
