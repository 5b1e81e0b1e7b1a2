/**
 * CloudEvents 1.0 over NATS (DESIGN.md §2): inbound NATS messages become EventMessages, follow-ups become
 * binary-mode messages. Pure functions: no I/O, so the mapping is unit-tested without a server.
 */
import { createHash, randomUUID } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import type { EventMessage, PublishEventInfo } from './gen/stufio/events/v1/handler.js';
import { MalformedEventError } from './errors.js';
import { eventTypeOfSubject, isDeadLetterEventType, publishableEventTypeProblem, subjectFor } from './event-type.js';

export const CE = {
  specversion: 'ce-specversion',
  id: 'ce-id',
  type: 'ce-type',
  source: 'ce-source',
  subject: 'ce-subject',
  time: 'ce-time',
  correlationId: 'ce-correlationid',
  causationId: 'ce-causationid',
  actorType: 'ce-actortype',
  actorId: 'ce-actorid',
  hops: 'ce-hops',
} as const;
export const TRACEPARENT = 'traceparent';
export const CONTENT_TYPE = 'content-type';
export const NATS_MSG_ID = 'Nats-Msg-Id';
export const REPLY_TO = 'stufio-reply-to';
/** The id of a plain (non-CloudEvents) message when it has to differ from its Nats-Msg-Id (dead-letter replay). */
export const EVENT_ID = 'stufio-event-id';
export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';
const JSON_CONTENT_TYPE = 'application/json';

/** What the transport knows about a message, independent of how it was delivered. */
export interface InboundMessage {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
  mode: 'core' | 'jetstream';
  attempt: number;
  consumer: string;
  replyExpected: boolean;
  stream?: string;
  streamSequence?: number;
  /** When the stream stored it (JetStream), in ms since the epoch. */
  storedAtMs?: number;
}

/** A message ready to be published: subject, headers and body. */
export interface OutboundEvent {
  id: string;
  eventType: string;
  subject: string;
  headers: MsgHdrs;
  data: Uint8Array;
  delayMs: number;
}

/** Headers read once, keys lower-cased: NATS keeps header case but CloudEvents names are case-insensitive. */
export function headerMap(hdrs: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!hdrs) return out;
  for (const key of hdrs.keys()) {
    const lower = key.toLowerCase();
    if (!(lower in out)) out[lower] = hdrs.get(key);
  }
  return out;
}

/**
 * Turns an inbound message into the EventMessage the handler receives. Accepts binary mode (ce-* headers),
 * structured mode (application/cloudevents+json) and plain messages (type from the subject).
 * Throws MalformedEventError for a message no handler could make sense of.
 */
export function decodeEvent(prefix: string, msg: InboundMessage, parseJson = true): EventMessage {
  const h = headerMap(msg.headers);
  const contentType = h[CONTENT_TYPE] ?? '';
  const base = (): EventMessage => ({
    eventId: '',
    eventType: '',
    entityId: '',
    correlationId: '',
    causationId: '',
    source: '',
    time: undefined,
    contentType: '',
    data: Buffer.alloc(0),
    payload: undefined,
    headers: extraHeaders(h),
    actor: undefined,
    delivery: {
      subject: msg.subject,
      attempt: msg.attempt,
      stream: msg.stream ?? '',
      streamSequence: msg.streamSequence ?? 0,
      replyExpected: msg.replyExpected,
      consumer: msg.consumer,
      mode: msg.mode,
    },
    hops: 0,
    traceparent: h[TRACEPARENT] ?? '',
  });

  let event: EventMessage;
  if (h[CE.specversion] !== undefined) {
    event = base();
    if (h[CE.specversion] !== '1.0') throw new MalformedEventError(`unsupported ce-specversion "${h[CE.specversion]}"`);
    event.eventId = h[CE.id] ?? '';
    event.eventType = h[CE.type] ?? '';
    event.source = h[CE.source] ?? '';
    event.entityId = h[CE.subject] ?? '';
    event.correlationId = h[CE.correlationId] ?? '';
    event.causationId = h[CE.causationId] ?? '';
    event.time = parseTime(h[CE.time]);
    event.hops = parseHops(h[CE.hops]);
    if (h[CE.actorType] !== undefined || h[CE.actorId] !== undefined) {
      event.actor = { type: h[CE.actorType] ?? '', id: h[CE.actorId] ?? '' };
    }
    event.contentType = contentType;
    event.data = toBuffer(msg.data);
    parsePayload(event, contentType, parseJson);
  } else if (contentType.toLowerCase().startsWith(STRUCTURED_CONTENT_TYPE)) {
    event = decodeStructured(base(), msg.data);
  } else {
    event = base();
    event.contentType = contentType;
    event.data = toBuffer(msg.data);
    parsePayload(event, contentType, parseJson);
  }

  if (event.eventType === '') {
    const fromSubject = eventTypeOfSubject(prefix, msg.subject);
    if (fromSubject === undefined) throw new MalformedEventError(`subject "${msg.subject}" is outside the prefix "${prefix}" and the message has no type`);
    event.eventType = fromSubject;
  }
  // A dead letter read back through an explicit dlq.* subscription keeps its reserved first token; every
  // other rule still applies to it.
  const typeProblem = publishableEventTypeProblem(isDeadLetterEventType(event.eventType) ? event.eventType.slice(4) : event.eventType);
  if (typeProblem) throw new MalformedEventError(typeProblem);
  if (event.eventId === '') event.eventId = fallbackId(h, msg);
  if (event.correlationId === '') event.correlationId = event.eventId;
  if (event.time === undefined && msg.storedAtMs !== undefined) event.time = new Date(msg.storedAtMs);
  return event;
}

/**
 * The headers the handler gets in `EventMessage.headers`: those not already carried by a field (ce-*,
 * content-type, traceparent). Each map entry costs an encode per event, and most events have no others.
 */
function extraHeaders(h: Record<string, string>): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const key in h) {
    if (key.startsWith('ce-') || key === CONTENT_TYPE || key === TRACEPARENT) continue;
    (out ??= {})[key] = h[key]!;
  }
  return out ?? EMPTY_HEADERS;
}
const EMPTY_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** A body is JSON when it says so, or says nothing and parses: `nats pub events.x '{"a":1}'` sets no content type. */
function parsePayload(event: EventMessage, contentType: string, parseJson: boolean): void {
  if (!parseJson || (contentType !== '' && !isJsonContentType(contentType))) return;
  event.payload = parseJsonBody(event.data, contentType !== '');
  if (event.payload !== undefined && contentType === '') event.contentType = JSON_CONTENT_TYPE;
}

function decodeStructured(event: EventMessage, body: Uint8Array): EventMessage {
  let ce: unknown;
  try {
    ce = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw new MalformedEventError('structured CloudEvent body is not valid JSON');
  }
  if (typeof ce !== 'object' || ce === null || Array.isArray(ce)) throw new MalformedEventError('structured CloudEvent is not a JSON object');
  const o = ce as Record<string, unknown>;
  const str = (key: string): string => {
    const v = o[key];
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    throw new MalformedEventError(`structured CloudEvent attribute "${key}" must be a string`);
  };
  if (str('specversion') !== '1.0') throw new MalformedEventError(`unsupported specversion "${str('specversion')}"`);
  event.eventId = str('id');
  event.eventType = str('type');
  event.source = str('source');
  event.entityId = str('subject');
  event.correlationId = str('correlationid');
  event.causationId = str('causationid');
  event.time = parseTime(str('time') || undefined);
  event.hops = parseHops(str('hops') || undefined);
  if (str('traceparent')) event.traceparent = str('traceparent');
  if (str('actortype') || str('actorid')) event.actor = { type: str('actortype'), id: str('actorid') };
  const dataContentType = str('datacontenttype');
  if (o.data_base64 !== undefined) {
    if (typeof o.data_base64 !== 'string') throw new MalformedEventError('structured CloudEvent data_base64 must be a string');
    event.data = Buffer.from(o.data_base64, 'base64');
    event.contentType = dataContentType || 'application/octet-stream';
    if (isJsonContentType(event.contentType)) event.payload = parseJsonBody(event.data, true);
  } else if (o.data !== undefined) {
    event.contentType = dataContentType || JSON_CONTENT_TYPE;
    if (typeof o.data === 'string' && !isJsonContentType(event.contentType)) {
      event.data = Buffer.from(o.data, 'utf8');
    } else {
      event.data = Buffer.from(JSON.stringify(o.data), 'utf8');
      event.payload = o.data;
    }
  } else {
    event.contentType = dataContentType;
  }
  return event;
}

export function isJsonContentType(contentType: string): boolean {
  const base = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return base === JSON_CONTENT_TYPE || base.endsWith('+json');
}

function parseJsonBody(data: Buffer, strict: boolean): unknown {
  if (data.length === 0) return undefined;
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    if (strict) throw new MalformedEventError('body declared as JSON is not valid JSON');
    return undefined;
  }
}

function parseTime(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function parseHops(value: string | undefined): number {
  if (!value) return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new MalformedEventError(`ce-hops "${value}" is not a non-negative integer`);
  return n;
}

function fallbackId(h: Record<string, string>, msg: InboundMessage): string {
  if (h[EVENT_ID]) return h[EVENT_ID];
  const natsId = h[NATS_MSG_ID.toLowerCase()];
  if (natsId) return natsId;
  if (msg.stream && msg.streamSequence) return `${msg.stream}:${msg.streamSequence}`;
  return randomUUID();
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The id of the index-th follow-up of an event: a UUID (version 8) hashed from the parent's id, so a
 * redelivered event produces the same ids and JetStream's duplicate window drops the copies.
 */
export function followUpId(parentEventId: string, index: number, salt = ''): string {
  const hex = createHash('sha256').update(`${parentEventId}\u0000${index}\u0000${salt}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export interface EncodeContext {
  prefix: string;
  source: string;
  now?: Date;
}

/** Headers that a follow-up's own `headers` map may not set: they carry the sidecar's guarantees. */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('ce-') || lower.startsWith('nats-') || lower.startsWith('stufio-') || lower === CONTENT_TYPE || lower === TRACEPARENT;
}

/**
 * Binary-mode message for a follow-up (the caller validated it): causation = parent id, correlation =
 * the follow-up's, else the parent's; hops = parent + 1; the id deterministic from the parent's.
 */
export function encodeFollowUp(parent: EventMessage, info: PublishEventInfo, index: number, ctx: EncodeContext): OutboundEvent {
  const id = followUpId(parent.eventId, index);
  const { data, contentType } = followUpBody(info);
  const h = natsHeaders();
  for (const [k, v] of Object.entries(info.headers ?? {})) h.set(k, v);
  h.set(CE.specversion, '1.0');
  h.set(CE.id, id);
  h.set(CE.type, info.eventType);
  h.set(CE.source, ctx.source);
  if (info.entityId) h.set(CE.subject, info.entityId);
  h.set(CE.time, (ctx.now ?? new Date()).toISOString());
  h.set(CE.correlationId, info.correlationId || parent.correlationId || parent.eventId);
  h.set(CE.causationId, parent.eventId);
  const actor = info.actor ?? parent.actor;
  if (actor?.type) h.set(CE.actorType, actor.type);
  if (actor?.id) h.set(CE.actorId, actor.id);
  h.set(CE.hops, String(parent.hops + 1));
  if (parent.traceparent) h.set(TRACEPARENT, parent.traceparent);
  if (contentType) h.set(CONTENT_TYPE, contentType);
  h.set(NATS_MSG_ID, id);
  return { id, eventType: info.eventType, subject: subjectFor(ctx.prefix, info.eventType), headers: h, data, delayMs: info.delayMs };
}

/** A fresh event published from outside a handler (CLI, EventPublisher). */
export function encodeNewEvent(
  info: PublishEventInfo,
  ctx: EncodeContext & { id?: string; causationId?: string; traceparent?: string; replyTo?: string },
): OutboundEvent {
  const id = ctx.id || randomUUID();
  const root: EventMessage = {
    eventId: ctx.causationId || '',
    eventType: '',
    entityId: '',
    correlationId: info.correlationId || id,
    causationId: '',
    source: ctx.source,
    time: undefined,
    contentType: '',
    data: Buffer.alloc(0),
    payload: undefined,
    headers: {},
    actor: undefined,
    delivery: undefined,
    hops: -1,
    traceparent: ctx.traceparent ?? '',
  };
  const out = encodeFollowUp(root, info, 0, ctx);
  out.id = id;
  out.headers.set(CE.id, id);
  out.headers.set(NATS_MSG_ID, id);
  if (ctx.causationId) out.headers.set(CE.causationId, ctx.causationId);
  else out.headers.delete(CE.causationId);
  if (ctx.replyTo) out.headers.set(REPLY_TO, ctx.replyTo);
  return out;
}

export function followUpBody(info: PublishEventInfo): { data: Uint8Array; contentType: string } {
  if (info.payload !== undefined) {
    return { data: Buffer.from(JSON.stringify(info.payload), 'utf8'), contentType: JSON_CONTENT_TYPE };
  }
  if (info.data.length > 0) return { data: info.data, contentType: info.contentType || 'application/octet-stream' };
  return { data: Buffer.alloc(0), contentType: info.contentType };
}
