import { headers, type MsgHdrs } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import {
  CE,
  CONTENT_TYPE,
  NATS_MSG_ID,
  REPLY_TO,
  STRUCTURED_CONTENT_TYPE,
  TRACEPARENT,
  decodeEvent,
  encodeFollowUp,
  encodeNewEvent,
  followUpBody,
  followUpId,
  headerMap,
  isJsonContentType,
  isReservedHeader,
  type InboundMessage,
} from '../../src/cloudevents.js';
import { MalformedEventError } from '../../src/errors.js';
import { EventMessage, PublishEventInfo } from '../../src/gen/stufio/events/v1/handler.js';
import { publishInfo } from '../fixtures/messages.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

function hdrs(entries: Record<string, string>): MsgHdrs {
  const h = headers();
  for (const [k, v] of Object.entries(entries)) h.set(k, v);
  return h;
}

function inbound(overrides: Partial<InboundMessage> & { hdrs?: Record<string, string>; body?: string } = {}): InboundMessage {
  const { hdrs: h, body, ...rest } = overrides;
  return {
    subject: 'events.order.created',
    data: body === undefined ? new Uint8Array(0) : enc(body),
    headers: h ? hdrs(h) : undefined,
    mode: 'jetstream',
    attempt: 1,
    consumer: 'order-handler',
    replyExpected: false,
    ...rest,
  };
}

function binaryHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    [CE.specversion]: '1.0',
    [CE.id]: 'evt-1',
    [CE.type]: 'order.created',
    [CE.source]: 'shop/api',
    [CE.subject]: 'order-42',
    [CE.time]: '2024-05-01T12:00:00.000Z',
    [CE.correlationId]: 'corr-1',
    [CE.causationId]: 'cause-0',
    [CE.actorType]: 'user',
    [CE.actorId]: 'u-7',
    [CE.hops]: '3',
    [TRACEPARENT]: TP,
    [CONTENT_TYPE]: 'application/json',
    ...extra,
  };
}

function parent(overrides: Partial<EventMessage> = {}): EventMessage {
  return {
    ...EventMessage.create(),
    eventId: 'parent-1',
    eventType: 'order.created',
    entityId: 'order-42',
    correlationId: 'corr-1',
    causationId: 'cause-0',
    source: 'shop/api',
    time: new Date('2024-05-01T12:00:00Z'),
    contentType: 'application/json',
    data: Buffer.from('{}'),
    payload: {},
    headers: {},
    actor: { type: 'user', id: 'u-7' },
    delivery: undefined,
    hops: 2,
    traceparent: TP,
    ...overrides,
  };
}

const info = (overrides: Partial<PublishEventInfo> = {}): PublishEventInfo => publishInfo(overrides);

const CTX = { prefix: 'events', source: 'stufio-sidecar/test', now: new Date('2025-01-02T03:04:05.006Z') };

describe('headerMap', () => {
  it('lower-cases keys and keeps the first of case variants', () => {
    const h = headers();
    h.set('CE-Type', 'a');
    h.set('Content-Type', 'application/json');
    expect(headerMap(h)).toEqual({ 'ce-type': 'a', 'content-type': 'application/json' });
    expect(headerMap(undefined)).toEqual({});
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['Application/JSON', true],
    [' application/json ', true],
    ['application/cloudevents+json', true],
    ['application/vnd.api+json', true],
    ['text/plain', false],
    ['application/octet-stream', false],
    ['application/jsonx', false],
    ['', false],
  ])('%j → %j', (ct, expected) => {
    expect(isJsonContentType(ct)).toBe(expected);
  });
});

describe('decodeEvent: binary mode', () => {
  it('maps every ce-* header', () => {
    const body = '{"total":10,"items":["a"]}';
    const e = decodeEvent('events', inbound({ hdrs: binaryHeaders(), body, stream: 'EVENTS', streamSequence: 17, attempt: 2, replyExpected: true }));
    expect(e.eventId).toBe('evt-1');
    expect(e.eventType).toBe('order.created');
    expect(e.source).toBe('shop/api');
    expect(e.entityId).toBe('order-42');
    expect(e.correlationId).toBe('corr-1');
    expect(e.causationId).toBe('cause-0');
    expect(e.time).toEqual(new Date('2024-05-01T12:00:00.000Z'));
    expect(e.hops).toBe(3);
    expect(e.actor).toEqual({ type: 'user', id: 'u-7' });
    expect(e.traceparent).toBe(TP);
    expect(e.contentType).toBe('application/json');
    expect(text(e.data)).toBe(body);
    expect(e.payload).toEqual({ total: 10, items: ['a'] });
    // Headers carried by fields are not repeated in the headers map.
    expect(e.headers[CE.id]).toBeUndefined();
    expect(e.headers[TRACEPARENT]).toBeUndefined();
    expect(e.delivery).toEqual({
      subject: 'events.order.created',
      attempt: 2,
      stream: 'EVENTS',
      streamSequence: 17,
      replyExpected: true,
      consumer: 'order-handler',
      mode: 'jetstream',
    });
  });

  it('reads ce-* headers case-insensitively', () => {
    const e = decodeEvent('events', inbound({ hdrs: { 'CE-SpecVersion': '1.0', 'Ce-Id': 'X1', 'CE-TYPE': 'order.paid', 'Content-Type': 'application/json' }, body: '1' }));
    expect(e.eventId).toBe('X1');
    expect(e.eventType).toBe('order.paid');
    expect(e.payload).toBe(1);
  });

  it('actor is set when either actor header is present, undefined otherwise', () => {
    const onlyType = decodeEvent('events', inbound({ hdrs: { [CE.specversion]: '1.0', [CE.id]: 'a', [CE.actorType]: 'service' } }));
    expect(onlyType.actor).toEqual({ type: 'service', id: '' });
    const onlyId = decodeEvent('events', inbound({ hdrs: { [CE.specversion]: '1.0', [CE.id]: 'a', [CE.actorId]: 'u1' } }));
    expect(onlyId.actor).toEqual({ type: '', id: 'u1' });
    const none = decodeEvent('events', inbound({ hdrs: { [CE.specversion]: '1.0', [CE.id]: 'a' } }));
    expect(none.actor).toBeUndefined();
  });

  it('defaults: hops 0, type from the subject, correlation = id, no traceparent', () => {
    const e = decodeEvent('events', inbound({ subject: 'events.user.signed_up', hdrs: { [CE.specversion]: '1.0', [CE.id]: 'id-9' } }));
    expect(e.hops).toBe(0);
    expect(e.eventType).toBe('user.signed_up');
    expect(e.correlationId).toBe('id-9');
    expect(e.causationId).toBe('');
    expect(e.traceparent).toBe('');
    expect(e.time).toBeUndefined();
  });

  it.each(['application/json', 'application/json; charset=utf-8', 'application/vnd.order+json'])('parses the body for JSON content type %j', (ct) => {
    const e = decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CONTENT_TYPE]: ct }), body: '{"a":[1,2]}' }));
    expect(e.payload).toEqual({ a: [1, 2] });
  });

  it.each(['text/plain', 'application/octet-stream', 'application/xml'])('does not parse the body for content type %j', (ct) => {
    const e = decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CONTENT_TYPE]: ct }), body: '{"a":1}' }));
    expect(e.payload).toBeUndefined();
    expect(e.contentType).toBe(ct);
    expect(text(e.data)).toBe('{"a":1}');
  });

  it('without a content type, a body that parses as JSON is JSON (lenient), anything else stays raw', () => {
    const h = binaryHeaders();
    delete h[CONTENT_TYPE];
    const json = decodeEvent('events', inbound({ hdrs: h, body: '{"a":1}' }));
    expect(json.payload).toEqual({ a: 1 });
    expect(json.contentType).toBe('application/json');
    const raw = decodeEvent('events', inbound({ hdrs: h, body: '{not json' }));
    expect(raw.payload).toBeUndefined();
    expect(raw.contentType).toBe('');
    expect(text(raw.data)).toBe('{not json');
  });

  it('an empty JSON body leaves payload undefined', () => {
    const e = decodeEvent('events', inbound({ hdrs: binaryHeaders(), body: '' }));
    expect(e.payload).toBeUndefined();
    expect(e.data.length).toBe(0);
  });

  it('invalid JSON with a JSON content type is a MalformedEventError', () => {
    expect(() => decodeEvent('events', inbound({ hdrs: binaryHeaders(), body: '{not json' }))).toThrow(MalformedEventError);
    expect(() => decodeEvent('events', inbound({ hdrs: binaryHeaders(), body: '{not json' }))).toThrow(/not valid JSON/);
  });

  it('parseJson=false keeps the raw body and skips parsing (and its errors)', () => {
    const e = decodeEvent('events', inbound({ hdrs: binaryHeaders(), body: '{not json' }), false);
    expect(e.payload).toBeUndefined();
    expect(text(e.data)).toBe('{not json');
  });

  it('an unsupported ce-specversion is malformed', () => {
    expect(() => decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CE.specversion]: '0.3' }) }))).toThrow(MalformedEventError);
  });

  it.each(['-1', '1.5', 'abc', '1000001', 'NaN', 'Infinity'])('ce-hops %j is malformed', (hops) => {
    expect(() => decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CE.hops]: hops }), body: '{}' }))).toThrow(MalformedEventError);
    expect(() => decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CE.hops]: hops }), body: '{}' }))).toThrow(/ce-hops/);
  });

  it.each(['0', '1', '32', '1000000'])('ce-hops %j is accepted', (hops) => {
    expect(decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CE.hops]: hops }), body: '{}' })).hops).toBe(Number(hops));
  });

  it.each(['order.*', 'order.>', 'order created', 'order..created', 'dlq', '.order'])('ce-type %j is malformed', (type) => {
    expect(() => decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CE.type]: type }), body: '{}' }))).toThrow(MalformedEventError);
  });

  it('a dead-letter event type (dlq.<type>) is accepted on input, for explicit dlq subscriptions', () => {
    const e = decodeEvent('events', inbound({ subject: 'events.dlq.order.created', hdrs: binaryHeaders({ [CE.type]: 'dlq.order.created' }), body: '{}' }));
    expect(e.eventType).toBe('dlq.order.created');
  });

  // BUG (src/cloudevents.ts decodeEvent): the dlq exemption `!event.eventType.startsWith('dlq.')` skips *every*
  // check, not just the reserved-first-token one, so a ce-type with spaces, wildcards or empty tokens behind
  // "dlq." is accepted and handed to the handler (and used as a metrics label).
  it('a dlq.-prefixed ce-type with a space or wildcard is still malformed', () => {
    expect(() => decodeEvent('events', inbound({ subject: 'events.dlq.x', hdrs: binaryHeaders({ [CE.type]: 'dlq.bad type.*' }), body: '{}' }))).toThrow(
      MalformedEventError,
    );
  });

  it('an unparseable ce-time falls back to the stream time, else undefined', () => {
    const stored = Date.parse('2024-06-01T00:00:00Z');
    expect(decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CE.time]: 'yesterday' }), body: '{}', storedAtMs: stored })).time).toEqual(new Date(stored));
    expect(decodeEvent('events', inbound({ hdrs: binaryHeaders({ [CE.time]: 'yesterday' }), body: '{}' })).time).toBeUndefined();
  });

  it('ce-time wins over the stream time', () => {
    const e = decodeEvent('events', inbound({ hdrs: binaryHeaders(), body: '{}', storedAtMs: 0 }));
    expect(e.time).toEqual(new Date('2024-05-01T12:00:00.000Z'));
  });

  it('without ce-id, the id comes from Nats-Msg-Id, else <stream>:<seq>', () => {
    const h = binaryHeaders();
    delete h[CE.id];
    expect(decodeEvent('events', inbound({ hdrs: { ...h, [NATS_MSG_ID]: 'msg-5' }, body: '{}', stream: 'S', streamSequence: 3 })).eventId).toBe('msg-5');
    expect(decodeEvent('events', inbound({ hdrs: h, body: '{}', stream: 'S', streamSequence: 3 })).eventId).toBe('S:3');
  });
});

describe('decodeEvent: structured mode', () => {
  const structured = (ce: unknown, extraHeaders: Record<string, string> = {}, subject = 'events.order.created') =>
    inbound({ subject, hdrs: { [CONTENT_TYPE]: STRUCTURED_CONTENT_TYPE, ...extraHeaders }, body: typeof ce === 'string' ? ce : JSON.stringify(ce) });

  const full = {
    specversion: '1.0',
    id: 'S-1',
    type: 'order.shipped',
    source: 'warehouse',
    subject: 'order-9',
    time: '2024-02-03T04:05:06Z',
    correlationid: 'corr-S',
    causationid: 'cause-S',
    actortype: 'system',
    actorid: 'robot',
    hops: 4,
    traceparent: TP,
    datacontenttype: 'application/json',
    data: { carrier: 'ups', parcels: 2 },
  };

  it('maps attributes, extension attributes and data', () => {
    const e = decodeEvent('events', structured(full));
    expect(e.eventId).toBe('S-1');
    expect(e.eventType).toBe('order.shipped');
    expect(e.source).toBe('warehouse');
    expect(e.entityId).toBe('order-9');
    expect(e.time).toEqual(new Date('2024-02-03T04:05:06Z'));
    expect(e.correlationId).toBe('corr-S');
    expect(e.causationId).toBe('cause-S');
    expect(e.actor).toEqual({ type: 'system', id: 'robot' });
    expect(e.hops).toBe(4);
    expect(e.traceparent).toBe(TP);
    expect(e.contentType).toBe('application/json');
    expect(e.payload).toEqual({ carrier: 'ups', parcels: 2 });
    expect(JSON.parse(text(e.data))).toEqual({ carrier: 'ups', parcels: 2 });
  });

  it('accepts a content type with parameters and hops as a string', () => {
    const e = decodeEvent('events', structured({ ...full, hops: '7' }, { [CONTENT_TYPE]: `${STRUCTURED_CONTENT_TYPE}; charset=utf-8` }));
    expect(e.hops).toBe(7);
    expect(e.eventId).toBe('S-1');
  });

  it('data without datacontenttype is JSON', () => {
    const { datacontenttype: _ct, ...rest } = full;
    const e = decodeEvent('events', structured({ ...rest, data: [1, 2, 3] }));
    expect(e.contentType).toBe('application/json');
    expect(e.payload).toEqual([1, 2, 3]);
    expect(text(e.data)).toBe('[1,2,3]');
  });

  it('string data with a non-JSON datacontenttype is the raw text, no payload', () => {
    const e = decodeEvent('events', structured({ ...full, datacontenttype: 'text/plain', data: 'hello world' }));
    expect(e.contentType).toBe('text/plain');
    expect(text(e.data)).toBe('hello world');
    expect(e.payload).toBeUndefined();
  });

  it('string data with a JSON datacontenttype is a JSON string', () => {
    const e = decodeEvent('events', structured({ ...full, data: 'hello' }));
    expect(e.payload).toBe('hello');
    expect(text(e.data)).toBe('"hello"');
  });

  it('data_base64 is decoded; parsed when its content type is JSON', () => {
    const bin = Buffer.from([0, 1, 2, 255]);
    const raw = decodeEvent('events', structured({ ...full, data: undefined, datacontenttype: undefined, data_base64: bin.toString('base64') }));
    expect(Buffer.compare(raw.data, bin)).toBe(0);
    expect(raw.contentType).toBe('application/octet-stream');
    expect(raw.payload).toBeUndefined();

    const json = decodeEvent('events', structured({ ...full, data: undefined, datacontenttype: 'application/json', data_base64: Buffer.from('{"x":1}').toString('base64') }));
    expect(json.payload).toEqual({ x: 1 });

    expect(() =>
      decodeEvent('events', structured({ ...full, data: undefined, datacontenttype: 'application/json', data_base64: Buffer.from('{bad').toString('base64') })),
    ).toThrow(MalformedEventError);
    expect(() => decodeEvent('events', structured({ ...full, data: undefined, data_base64: 42 }))).toThrow(MalformedEventError);
  });

  it('no data: empty body, content type as declared', () => {
    const e = decodeEvent('events', structured({ specversion: '1.0', id: 'n', type: 'order.created', datacontenttype: 'text/plain' }));
    expect(e.data.length).toBe(0);
    expect(e.contentType).toBe('text/plain');
    expect(e.payload).toBeUndefined();
  });

  it('type and id default like a plain message; correlation defaults to the id', () => {
    const e = decodeEvent('events', structured({ specversion: '1.0' }, { [NATS_MSG_ID]: 'nm-1' }, 'events.shipment.lost'));
    expect(e.eventType).toBe('shipment.lost');
    expect(e.eventId).toBe('nm-1');
    expect(e.correlationId).toBe('nm-1');
    expect(e.hops).toBe(0);
    expect(e.actor).toBeUndefined();
  });

  it('the traceparent header is used when the envelope has none', () => {
    const { traceparent: _tp, ...rest } = full;
    expect(decodeEvent('events', structured(rest, { [TRACEPARENT]: TP })).traceparent).toBe(TP);
  });

  it.each([
    ['invalid JSON', '{"specversion": '],
    ['an array', '[1,2]'],
    ['a string', '"x"'],
    ['a number', '12'],
    ['null', 'null'],
    ['an empty body', ''],
  ])('a body that is %s is malformed', (_name, body) => {
    expect(() => decodeEvent('events', structured(body))).toThrow(MalformedEventError);
  });

  it.each([
    ['no specversion', { id: 'a', type: 'x' }],
    ['specversion 0.3', { specversion: '0.3', id: 'a', type: 'x' }],
    ['an object attribute', { specversion: '1.0', id: { nested: true }, type: 'x' }],
    ['a boolean attribute', { specversion: '1.0', id: 'a', source: true }],
    ['bad hops', { specversion: '1.0', id: 'a', type: 'x', hops: -2 }],
    ['a wildcard type', { specversion: '1.0', id: 'a', type: 'order.*' }],
  ])('an envelope with %s is malformed', (_name, ce) => {
    expect(() => decodeEvent('events', structured(ce))).toThrow(MalformedEventError);
  });

  // BUG (src/cloudevents.ts decodeEvent): the structured-mode check `contentType.startsWith(STRUCTURED_CONTENT_TYPE)`
  // is case-sensitive, while media types are case-insensitive (RFC 9110 §8.3.1) and isJsonContentType lower-cases.
  // `Application/CloudEvents+JSON` therefore falls through to the plain path: the whole envelope becomes the
  // payload, the id becomes a fallback and the type comes from the subject, silently.
  it('the structured content type is matched case-insensitively', () => {
    const e = decodeEvent('events', structured(full, { [CONTENT_TYPE]: 'Application/CloudEvents+JSON' }));
    expect(e.eventId).toBe('S-1');
    expect(e.eventType).toBe('order.shipped');
  });

  it('binary mode wins when ce-specversion is present with a structured content type', () => {
    const e = decodeEvent('events', structured(full, { [CE.specversion]: '1.0', [CE.id]: 'B-1', [CE.type]: 'order.created' }));
    expect(e.eventId).toBe('B-1');
    expect(e.eventType).toBe('order.created');
    // the body is the payload, here the whole envelope
    expect(e.payload).toMatchObject({ id: 'S-1' });
  });
});

describe('decodeEvent: plain messages', () => {
  it('type from the subject, JSON body parsed, content type set to JSON', () => {
    const e = decodeEvent('events', inbound({ subject: 'events.order.created', body: '{"total":10}' }));
    expect(e.eventType).toBe('order.created');
    expect(e.payload).toEqual({ total: 10 });
    expect(e.contentType).toBe('application/json');
    expect(e.hops).toBe(0);
    expect(e.actor).toBeUndefined();
    expect(e.source).toBe('');
    expect(e.traceparent).toBe('');
  });

  it('id from Nats-Msg-Id', () => {
    const e = decodeEvent('events', inbound({ hdrs: { [NATS_MSG_ID]: 'dedupe-1' }, body: '{}', stream: 'EVENTS', streamSequence: 9 }));
    expect(e.eventId).toBe('dedupe-1');
    expect(e.correlationId).toBe('dedupe-1');
  });

  it('id from <stream>:<sequence> without Nats-Msg-Id', () => {
    const e = decodeEvent('events', inbound({ body: '{}', stream: 'EVENTS', streamSequence: 9 }));
    expect(e.eventId).toBe('EVENTS:9');
    expect(e.correlationId).toBe('EVENTS:9');
  });

  it('a fresh UUID otherwise (core delivery), different each time', () => {
    const a = decodeEvent('events', inbound({ mode: 'core', body: '{}' }));
    const b = decodeEvent('events', inbound({ mode: 'core', body: '{}' }));
    expect(a.eventId).toMatch(UUID);
    expect(b.eventId).toMatch(UUID);
    expect(a.eventId).not.toBe(b.eventId);
    expect(a.correlationId).toBe(a.eventId);
  });

  it('a non-JSON body without content type keeps payload undefined and content type empty', () => {
    const e = decodeEvent('events', inbound({ body: 'hello world' }));
    expect(e.payload).toBeUndefined();
    expect(e.contentType).toBe('');
    expect(text(e.data)).toBe('hello world');
  });

  it('an empty body has no payload', () => {
    const e = decodeEvent('events', inbound({ body: '' }));
    expect(e.payload).toBeUndefined();
    expect(e.contentType).toBe('');
  });

  it('a non-JSON content type is not parsed', () => {
    const e = decodeEvent('events', inbound({ hdrs: { [CONTENT_TYPE]: 'text/plain' }, body: '{"a":1}' }));
    expect(e.payload).toBeUndefined();
    expect(e.contentType).toBe('text/plain');
  });

  it('invalid JSON with a JSON content type is malformed', () => {
    expect(() => decodeEvent('events', inbound({ hdrs: { [CONTENT_TYPE]: 'application/json' }, body: 'nope' }))).toThrow(MalformedEventError);
  });

  it('the stream time is the event time', () => {
    const e = decodeEvent('events', inbound({ body: '{}', storedAtMs: 1_700_000_000_000 }));
    expect(e.time).toEqual(new Date(1_700_000_000_000));
  });

  it('traceparent and other headers are carried', () => {
    const e = decodeEvent('events', inbound({ hdrs: { [TRACEPARENT]: TP, 'X-Tenant': 'acme' }, body: '{}' }));
    expect(e.traceparent).toBe(TP);
    expect(e.headers['x-tenant']).toBe('acme');
  });

  it('an empty prefix takes the whole subject as the type', () => {
    expect(decodeEvent('', inbound({ subject: 'order.created', body: '{}' })).eventType).toBe('order.created');
  });

  it('a subject outside the prefix, with no type, is malformed', () => {
    expect(() => decodeEvent('events', inbound({ subject: 'other.order.created', body: '{}' }))).toThrow(MalformedEventError);
    expect(() => decodeEvent('events', inbound({ subject: 'other.order.created', body: '{}' }))).toThrow(/outside the prefix/);
    expect(() => decodeEvent('events', inbound({ subject: 'events', body: '{}' }))).toThrow(MalformedEventError);
  });

  it('a subject outside the prefix is fine when ce-type names the type', () => {
    const e = decodeEvent('events', inbound({ subject: 'other.subject', hdrs: { [CE.specversion]: '1.0', [CE.id]: 'i', [CE.type]: 'order.created' } }));
    expect(e.eventType).toBe('order.created');
  });

  it('a plain message on a dead-letter subject keeps the dlq type', () => {
    expect(decodeEvent('events', inbound({ subject: 'events.dlq.order.created', body: '{}' })).eventType).toBe('dlq.order.created');
  });
});

describe('followUpId', () => {
  it('is deterministic and UUID-shaped (version 8, RFC variant)', () => {
    const a = followUpId('evt-1', 0);
    expect(a).toMatch(UUID_V8);
    expect(followUpId('evt-1', 0)).toBe(a);
  });

  it('differs per index, per parent and per salt', () => {
    const ids = new Set<string>();
    for (const p of ['evt-1', 'evt-2', '', 'EVENTS:1']) {
      for (let i = 0; i < 50; i++) {
        const id = followUpId(p, i);
        expect(id).toMatch(UUID_V8);
        ids.add(id);
      }
    }
    expect(ids.size).toBe(200);
    expect(followUpId('evt-1', 0, 'a')).not.toBe(followUpId('evt-1', 0));
    expect(followUpId('evt-1', 0, 'a')).not.toBe(followUpId('evt-1', 0, 'b'));
  });

  it('does not collide across the parent/index boundary', () => {
    expect(followUpId('evt-1', 10)).not.toBe(followUpId('evt-11', 0));
  });
});

describe('isReservedHeader', () => {
  it.each(['ce-id', 'CE-Type', 'ce-anything', 'Nats-Msg-Id', 'nats-expected-stream', 'stufio-reply-to', 'Stufio-DLQ-Reason', 'content-type', 'Content-Type', 'traceparent', 'TraceParent'])(
    '%j is reserved',
    (name) => expect(isReservedHeader(name)).toBe(true),
  );
  it.each(['x-tenant', 'tracestate', 'cex', 'authorization', 'natsy'])('%j is not reserved', (name) => expect(isReservedHeader(name)).toBe(false));
});

describe('followUpBody', () => {
  it('payload → JSON', () => {
    const b = followUpBody(info({ payload: { a: 1 } }));
    expect(text(b.data)).toBe('{"a":1}');
    expect(b.contentType).toBe('application/json');
  });
  it('null payload is JSON null', () => {
    expect(text(followUpBody(info({ payload: null })).data)).toBe('null');
  });
  it('data keeps its content type, octet-stream by default', () => {
    expect(followUpBody(info({ data: Buffer.from('x'), contentType: 'text/plain' })).contentType).toBe('text/plain');
    expect(followUpBody(info({ data: Buffer.from('x') })).contentType).toBe('application/octet-stream');
  });
  it('neither: empty body', () => {
    const b = followUpBody(info({ contentType: 'text/plain' }));
    expect(b.data.byteLength).toBe(0);
    expect(b.contentType).toBe('text/plain');
  });
});

describe('encodeFollowUp', () => {
  it('writes binary-mode headers linking the follow-up to its parent', () => {
    const out = encodeFollowUp(parent(), info({ entityId: 'inv-1', payload: { amount: 5 } }), 0, CTX);
    const h = out.headers;
    expect(out.id).toBe(followUpId('parent-1', 0));
    expect(out.id).toMatch(UUID_V8);
    expect(out.eventType).toBe('invoice.requested');
    expect(out.subject).toBe('events.invoice.requested');
    expect(out.delayMs).toBe(0);
    expect(text(out.data)).toBe('{"amount":5}');
    expect(h.get(CE.specversion)).toBe('1.0');
    expect(h.get(CE.id)).toBe(out.id);
    expect(h.get(NATS_MSG_ID)).toBe(out.id);
    expect(h.get(CE.type)).toBe('invoice.requested');
    expect(h.get(CE.source)).toBe('stufio-sidecar/test');
    expect(h.get(CE.subject)).toBe('inv-1');
    expect(h.get(CE.time)).toBe('2025-01-02T03:04:05.006Z');
    expect(h.get(CE.causationId)).toBe('parent-1');
    expect(h.get(CE.correlationId)).toBe('corr-1');
    expect(h.get(CE.hops)).toBe('3');
    expect(h.get(TRACEPARENT)).toBe(TP);
    expect(h.get(CONTENT_TYPE)).toBe('application/json');
    expect(h.get(CE.actorType)).toBe('user');
    expect(h.get(CE.actorId)).toBe('u-7');
  });

  it('round-trips through decodeEvent', () => {
    const out = encodeFollowUp(parent(), info({ entityId: 'inv-1', payload: { amount: 5 } }), 1, CTX);
    const e = decodeEvent('events', { subject: out.subject, data: out.data, headers: out.headers, mode: 'jetstream', attempt: 1, consumer: 'c', replyExpected: false });
    expect(e).toMatchObject({
      eventId: out.id,
      eventType: 'invoice.requested',
      entityId: 'inv-1',
      correlationId: 'corr-1',
      causationId: 'parent-1',
      source: 'stufio-sidecar/test',
      hops: 3,
      traceparent: TP,
      actor: { type: 'user', id: 'u-7' },
      payload: { amount: 5 },
      time: CTX.now,
    });
  });

  it('is deterministic: the same parent and index give the same id; another index another id', () => {
    const a = encodeFollowUp(parent(), info(), 0, CTX);
    const b = encodeFollowUp(parent(), info(), 0, { ...CTX, now: new Date() });
    const c = encodeFollowUp(parent(), info(), 1, CTX);
    const d = encodeFollowUp(parent({ eventId: 'parent-2' }), info(), 0, CTX);
    expect(b.id).toBe(a.id);
    expect(c.id).not.toBe(a.id);
    expect(d.id).not.toBe(a.id);
  });

  describe('correlation id (DESIGN.md §2)', () => {
    it("the handler's wins", () => {
      expect(encodeFollowUp(parent(), info({ correlationId: 'mine' }), 0, CTX).headers.get(CE.correlationId)).toBe('mine');
    });
    it("else the inbound's", () => {
      expect(encodeFollowUp(parent({ correlationId: 'inbound-corr' }), info(), 0, CTX).headers.get(CE.correlationId)).toBe('inbound-corr');
    });
    it('else the inbound id', () => {
      expect(encodeFollowUp(parent({ correlationId: '' }), info(), 0, CTX).headers.get(CE.correlationId)).toBe('parent-1');
    });
  });

  it('hops = inbound + 1, from 0', () => {
    expect(encodeFollowUp(parent({ hops: 0 }), info(), 0, CTX).headers.get(CE.hops)).toBe('1');
    expect(encodeFollowUp(parent({ hops: 31 }), info(), 0, CTX).headers.get(CE.hops)).toBe('32');
  });

  it('no traceparent header when the parent has none', () => {
    expect(encodeFollowUp(parent({ traceparent: '' }), info(), 0, CTX).headers.has(TRACEPARENT)).toBe(false);
  });

  describe('actor', () => {
    it("inherits the parent's", () => {
      const h = encodeFollowUp(parent(), info(), 0, CTX).headers;
      expect([h.get(CE.actorType), h.get(CE.actorId)]).toEqual(['user', 'u-7']);
    });
    it("the follow-up's own wins", () => {
      const h = encodeFollowUp(parent(), info({ actor: { type: 'service', id: 'billing' } }), 0, CTX).headers;
      expect([h.get(CE.actorType), h.get(CE.actorId)]).toEqual(['service', 'billing']);
    });
    it('none when neither has one', () => {
      const h = encodeFollowUp(parent({ actor: undefined }), info(), 0, CTX).headers;
      expect(h.has(CE.actorType)).toBe(false);
      expect(h.has(CE.actorId)).toBe(false);
    });
  });

  it('no ce-subject without an entity id', () => {
    expect(encodeFollowUp(parent(), info(), 0, CTX).headers.has(CE.subject)).toBe(false);
  });

  it('content type follows the body', () => {
    expect(encodeFollowUp(parent(), info({ payload: [1] }), 0, CTX).headers.get(CONTENT_TYPE)).toBe('application/json');
    expect(encodeFollowUp(parent(), info({ data: Buffer.from('<x/>'), contentType: 'application/xml' }), 0, CTX).headers.get(CONTENT_TYPE)).toBe('application/xml');
    expect(encodeFollowUp(parent(), info({ data: Buffer.from([1]) }), 0, CTX).headers.get(CONTENT_TYPE)).toBe('application/octet-stream');
    expect(encodeFollowUp(parent(), info(), 0, CTX).headers.has(CONTENT_TYPE)).toBe(false);
  });

  it("carries the follow-up's own headers, and the sidecar's headers win over them", () => {
    const out = encodeFollowUp(parent(), info({ headers: { 'x-tenant': 'acme', [CE.id]: 'forged' } }), 0, CTX);
    expect(out.headers.get('x-tenant')).toBe('acme');
    expect(out.headers.get(CE.id)).toBe(out.id);
  });

  it('subject and delay', () => {
    const out = encodeFollowUp(parent(), info({ delayMs: 1500 }), 0, { ...CTX, prefix: '' });
    expect(out.subject).toBe('invoice.requested');
    expect(out.delayMs).toBe(1500);
  });

  it('uses the current time without ctx.now', () => {
    const before = Date.now();
    const t = Date.parse(encodeFollowUp(parent(), info(), 0, { prefix: 'events', source: 's' }).headers.get(CE.time));
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});

describe('encodeNewEvent', () => {
  it('a root event: hops 0, no causation, correlation = its own id', () => {
    const out = encodeNewEvent(info({ eventType: 'order.created', payload: { total: 1 } }), { ...CTX, id: 'new-1' });
    const h = out.headers;
    expect(out.id).toBe('new-1');
    expect(out.subject).toBe('events.order.created');
    expect(h.get(CE.id)).toBe('new-1');
    expect(h.get(NATS_MSG_ID)).toBe('new-1');
    expect(h.get(CE.hops)).toBe('0');
    expect(h.has(CE.causationId)).toBe(false);
    expect(h.get(CE.correlationId)).toBe('new-1');
    expect(h.get(CE.type)).toBe('order.created');
    expect(h.get(CE.source)).toBe('stufio-sidecar/test');
    expect(h.get(CONTENT_TYPE)).toBe('application/json');
    expect(h.has(TRACEPARENT)).toBe(false);
    expect(h.has(REPLY_TO)).toBe(false);
    expect(h.has(CE.actorType)).toBe(false);
    expect(text(out.data)).toBe('{"total":1}');
  });

  it('a random UUID id when none is given', () => {
    const a = encodeNewEvent(info(), CTX);
    const b = encodeNewEvent(info(), CTX);
    expect(a.id).toMatch(UUID);
    expect(a.id).not.toBe(b.id);
    expect(a.headers.get(CE.id)).toBe(a.id);
    expect(a.headers.get(NATS_MSG_ID)).toBe(a.id);
    expect(a.headers.get(CE.correlationId)).toBe(a.id);
  });

  it('honours correlation, causation, traceparent, reply-to and actor', () => {
    const out = encodeNewEvent(info({ correlationId: 'corr-x', actor: { type: 'user', id: 'u1' }, entityId: 'e1' }), {
      ...CTX,
      id: 'n2',
      causationId: 'c-1',
      traceparent: TP,
      replyTo: '_INBOX.abc',
    });
    const h = out.headers;
    expect(h.get(CE.correlationId)).toBe('corr-x');
    expect(h.get(CE.causationId)).toBe('c-1');
    expect(h.get(TRACEPARENT)).toBe(TP);
    expect(h.get(REPLY_TO)).toBe('_INBOX.abc');
    expect(h.get(CE.actorType)).toBe('user');
    expect(h.get(CE.actorId)).toBe('u1');
    expect(h.get(CE.subject)).toBe('e1');
    expect(h.get(CE.hops)).toBe('0');
    expect(h.get(CE.id)).toBe('n2');
  });

  it('decodes back to a root event', () => {
    const out = encodeNewEvent(info({ eventType: 'order.created', payload: { a: 1 } }), { ...CTX, id: 'root-1' });
    const e = decodeEvent('events', { subject: out.subject, data: out.data, headers: out.headers, mode: 'core', attempt: 1, consumer: 'q', replyExpected: false });
    expect(e).toMatchObject({ eventId: 'root-1', correlationId: 'root-1', causationId: '', hops: 0, eventType: 'order.created', payload: { a: 1 } });
  });
});
