/**
 * Validates a HandlerResponse against the publish limits and turns its follow-ups into messages.
 * Either every follow-up is valid and encoded, or the response is refused as a whole: a partly
 * applied response would publish some events of a chain and not others.
 */
import type { EventMessage, HandlerResponse } from './gen/stufio/events/v1/handler.js';
import { encodeFollowUp, isReservedHeader, type EncodeContext, type OutboundEvent } from './cloudevents.js';
import { InvalidResponseError } from './errors.js';
import { publishableEventTypeProblem } from './event-type.js';

/** RFC 7230 token characters: what NATS accepts as a header name. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export interface PublishLimits {
  maxPerResponse: number;
  maxPayloadBytes: number;
  maxHops: number;
  maxDelayMs: number;
  isAllowed: (eventType: string) => boolean;
}

export function planFollowUps(parent: EventMessage, response: HandlerResponse, limits: PublishLimits, ctx: EncodeContext): OutboundEvent[] {
  const publish = response.publish;
  if (publish.length === 0) return [];
  if (publish.length > limits.maxPerResponse) {
    throw new InvalidResponseError('too_many_followups', `${publish.length} follow-ups exceed publish.max_per_response (${limits.maxPerResponse})`);
  }
  if (parent.hops + 1 > limits.maxHops) {
    throw new InvalidResponseError('hop_limit', `follow-ups would reach hop ${parent.hops + 1}, past publish.max_hops (${limits.maxHops})`);
  }
  const out: OutboundEvent[] = new Array(publish.length);
  for (let i = 0; i < publish.length; i++) {
    const info = publish[i]!;
    const at = `publish[${i}]`;
    const typeProblem = publishableEventTypeProblem(info.eventType);
    if (typeProblem) throw new InvalidResponseError('invalid_event_type', `${at}.event_type: ${typeProblem}`);
    if (!limits.isAllowed(info.eventType)) {
      throw new InvalidResponseError('event_type_not_allowed', `${at}.event_type: "${info.eventType}" is not in publish.allow`);
    }
    if (info.payload !== undefined && info.data.length > 0) {
      throw new InvalidResponseError('invalid_followup', `${at}: set payload or data, not both`);
    }
    if (info.delayMs > limits.maxDelayMs) {
      throw new InvalidResponseError('invalid_delay', `${at}.delay_ms: ${info.delayMs} exceeds publish.max_delay_ms (${limits.maxDelayMs})`);
    }
    const headerIssue = headersProblem(info.headers);
    if (headerIssue) throw new InvalidResponseError('invalid_followup', `${at}.headers: ${headerIssue}`);
    const event = encodeFollowUp(parent, info, i, ctx);
    if (event.data.byteLength > limits.maxPayloadBytes) {
      throw new InvalidResponseError('payload_too_large', `${at}: payload of ${event.data.byteLength} bytes exceeds publish.max_payload_bytes (${limits.maxPayloadBytes})`);
    }
    out[i] = event;
  }
  return out;
}

/** Why an event's own headers cannot be published, or undefined: reserved names, bad names, line breaks. */
export function headersProblem(headers: Readonly<Record<string, string>> | undefined): string | undefined {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (isReservedHeader(name)) return `"${name}" is reserved for the sidecar`;
    if (!HEADER_NAME.test(name)) return `"${name}" is not a valid header name`;
    if (/[\r\n\0]/.test(value)) return `the value of "${name}" contains a line break or NUL`;
  }
  return undefined;
}

/** The seed's pattern: a handler that caught its own error reports `metrics: {success: false}`. */
export function reportsFailure(response: HandlerResponse): boolean {
  return response.metrics?.values?.success === false;
}
