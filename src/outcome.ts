/**
 * The one table from handling results to actions (DESIGN.md §3). Every branch of the dispatcher ends in
 * exactly one of these actions and one `outcome` label for stufio_events_processed_total.
 */
import { status } from '@grpc/grpc-js';
import { Disposition, type HandlerResponse } from './gen/stufio/events/v1/handler.js';
import type { InvalidResponseReason } from './errors.js';
import { reportsFailure } from './response.js';

export type Outcome = 'success' | 'handler_failure' | 'retry' | 'dead_letter' | 'rejected';

/** What happened to one event. */
export type HandlingResult =
  | { kind: 'response'; response: HandlerResponse }
  | { kind: 'call_failed'; code: status; message: string }
  | { kind: 'invalid_response'; reason: InvalidResponseReason; message: string }
  | { kind: 'publish_failed'; message: string }
  | { kind: 'malformed_event'; message: string };

/** What to do about it. */
export type Action =
  | { kind: 'ack'; outcome: 'success' | 'handler_failure' }
  /** JetStream: nak with a delay. */
  | { kind: 'retry'; outcome: 'retry'; delayMs: number; reason: string; error: string }
  /** JetStream: copy to the dead-letter subject, then terminate (a waiting requester gets errorCode). */
  | { kind: 'dead_letter'; outcome: 'dead_letter'; reason: string; error: string; errorCode: number }
  /** Core: answer the requester with an error; nothing to redeliver. */
  | { kind: 'reject'; outcome: 'rejected'; reason: string; error: string; errorCode: number };

export interface DeliveryContext {
  mode: 'core' | 'jetstream';
  /** 1 on the first delivery. */
  attempt: number;
  maxDeliver: number;
  /** Fixed steps; when empty or absent, `backoff` (exponential with jitter) decides. */
  backoffMs?: readonly number[];
  backoff?: ExponentialBackoff;
  /** [0, 1); injectable so that tests are deterministic. */
  random?: () => number;
}

export interface ExponentialBackoff {
  initial_ms: number;
  max_ms: number;
  multiplier: number;
  jitter: number;
}

const DEFAULT_BACKOFF: ExponentialBackoff = { initial_ms: 1000, max_ms: 60_000, multiplier: 2, jitter: 0.2 };

/** gRPC codes that mean "try again later": the handler may recover. */
const RETRYABLE = new Set<status>([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
  status.INTERNAL,
  status.UNKNOWN,
  status.CANCELLED,
]);

/** The Nats-Service-Error-Code a requester sees: 5xx retryable, 4xx the event itself is at fault. */
const ERROR_CODE_RETRYABLE = 503;
const ERROR_CODE_PERMANENT = 400;
const ERROR_CODE_PUBLISH = 500;

export function decide(result: HandlingResult, ctx: DeliveryContext): Action {
  switch (result.kind) {
    case 'response': {
      const r = result.response;
      if (r.disposition === Disposition.DISPOSITION_RETRY) {
        return retryOrExhausted(ctx, 'handler_retry', r.errorMessage || 'handler asked for a retry', r.retryDelayMs, ERROR_CODE_RETRYABLE);
      }
      if (r.disposition === Disposition.DISPOSITION_DEAD_LETTER) {
        return permanent(ctx, 'handler_dead_letter', r.errorMessage || 'handler asked for dead-lettering');
      }
      if (r.disposition !== Disposition.DISPOSITION_UNSPECIFIED && r.disposition !== Disposition.DISPOSITION_ACK) {
        return permanent(ctx, 'invalid_response', `unknown disposition ${r.disposition}`);
      }
      return { kind: 'ack', outcome: reportsFailure(r) ? 'handler_failure' : 'success' };
    }
    case 'call_failed':
      if (RETRYABLE.has(result.code)) {
        return retryOrExhausted(ctx, `grpc_${status[result.code]?.toLowerCase() ?? result.code}`, result.message, 0, ERROR_CODE_RETRYABLE);
      }
      return permanent(ctx, `grpc_${status[result.code]?.toLowerCase() ?? result.code}`, result.message);
    case 'invalid_response':
      return permanent(ctx, result.reason, result.message);
    case 'publish_failed':
      // Deterministic follow-up ids make the retry safe: the copies already stored are dropped as duplicates.
      return retryOrExhausted(ctx, 'publish_failed', result.message, 0, ERROR_CODE_PUBLISH);
    case 'malformed_event':
      return permanent(ctx, 'malformed_event', result.message);
  }
}

function retryOrExhausted(ctx: DeliveryContext, reason: string, error: string, requestedDelayMs: number, errorCode: number): Action {
  if (ctx.mode === 'core') return { kind: 'reject', outcome: 'rejected', reason, error, errorCode };
  if (ctx.attempt >= ctx.maxDeliver) {
    return { kind: 'dead_letter', outcome: 'dead_letter', reason: 'max_deliver', error: `${reason}: ${error}`, errorCode };
  }
  return { kind: 'retry', outcome: 'retry', delayMs: requestedDelayMs > 0 ? requestedDelayMs : backoffDelay(ctx), reason, error };
}

function permanent(ctx: DeliveryContext, reason: string, error: string): Action {
  if (ctx.mode === 'core') return { kind: 'reject', outcome: 'rejected', reason, error, errorCode: ERROR_CODE_PERMANENT };
  return { kind: 'dead_letter', outcome: 'dead_letter', reason, error, errorCode: ERROR_CODE_PERMANENT };
}

/** The delay before redelivery: the configured step for this attempt (the last repeats), else exponential with jitter. */
export function backoffDelay(ctx: Pick<DeliveryContext, 'attempt' | 'backoffMs' | 'backoff' | 'random'>): number {
  const attempt = Math.max(ctx.attempt, 1);
  const steps = ctx.backoffMs;
  if (steps && steps.length > 0) return steps[Math.min(attempt - 1, steps.length - 1)]!;
  const b = ctx.backoff ?? DEFAULT_BACKOFF;
  const base = Math.min(b.max_ms, b.initial_ms * Math.pow(b.multiplier, attempt - 1));
  const spread = base * b.jitter * (2 * (ctx.random ?? Math.random)() - 1);
  return Math.max(0, Math.round(base + spread));
}
