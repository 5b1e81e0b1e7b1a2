import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Disposition, HandlerResponse } from '../../src/gen/stufio/events/v1/handler.js';
import { backoffDelay, decide, type Action, type DeliveryContext, type HandlingResult } from '../../src/outcome.js';

function response(overrides: Partial<HandlerResponse> = {}): HandlerResponse {
  return { ...HandlerResponse.create(), ...overrides };
}

const BACKOFF = [1000, 5000, 30000] as const;
const js = (attempt = 1, maxDeliver = 5): DeliveryContext => ({ mode: 'jetstream', attempt, maxDeliver, backoffMs: BACKOFF });
const core = (attempt = 1, maxDeliver = 5): DeliveryContext => ({ mode: 'core', attempt, maxDeliver, backoffMs: BACKOFF });

const grpcName = (code: status) => `grpc_${status[code]!.toLowerCase()}`;

/** DESIGN.md §3: retryable gRPC codes (CANCELLED is treated as retryable too: the call never completed). */
const RETRYABLE_CODES = [status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.ABORTED, status.INTERNAL, status.UNKNOWN, status.CANCELLED];
/** DESIGN.md §3 permanent codes, plus the rest: anything not retryable dead-letters at once. */
const PERMANENT_CODES = [
  status.INVALID_ARGUMENT,
  status.FAILED_PRECONDITION,
  status.UNIMPLEMENTED,
  status.PERMISSION_DENIED,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.OUT_OF_RANGE,
  status.DATA_LOSS,
  status.UNAUTHENTICATED,
];

type Row = [name: string, result: HandlingResult, jetstream: Action, core: Action];

const rows: Row[] = [
  // --- HandlerResponse, ACK ---
  ['disposition UNSPECIFIED (= ACK)', { kind: 'response', response: response() }, { kind: 'ack', outcome: 'success' }, { kind: 'ack', outcome: 'success' }],
  [
    'disposition ACK',
    { kind: 'response', response: response({ disposition: Disposition.DISPOSITION_ACK }) },
    { kind: 'ack', outcome: 'success' },
    { kind: 'ack', outcome: 'success' },
  ],
  [
    'ACK with metrics.success === true',
    { kind: 'response', response: response({ metrics: { values: { success: true, n: 3 } } }) },
    { kind: 'ack', outcome: 'success' },
    { kind: 'ack', outcome: 'success' },
  ],
  [
    'ACK with metrics.success === false (handler-reported failure)',
    { kind: 'response', response: response({ metrics: { values: { success: false } } }) },
    { kind: 'ack', outcome: 'handler_failure' },
    { kind: 'ack', outcome: 'handler_failure' },
  ],
  [
    'explicit ACK with metrics.success === false',
    { kind: 'response', response: response({ disposition: Disposition.DISPOSITION_ACK, metrics: { values: { success: false, error: 'boom' } } }) },
    { kind: 'ack', outcome: 'handler_failure' },
    { kind: 'ack', outcome: 'handler_failure' },
  ],
  [
    'ACK with metrics.success === "false" (a string is not the boolean)',
    { kind: 'response', response: response({ metrics: { values: { success: 'false' } } }) },
    { kind: 'ack', outcome: 'success' },
    { kind: 'ack', outcome: 'success' },
  ],
  // --- HandlerResponse, RETRY ---
  [
    'disposition RETRY without retry_delay_ms (first backoff step)',
    { kind: 'response', response: response({ disposition: Disposition.DISPOSITION_RETRY }) },
    { kind: 'retry', outcome: 'retry', delayMs: 1000, reason: 'handler_retry', error: 'handler asked for a retry' },
    { kind: 'reject', outcome: 'rejected', reason: 'handler_retry', error: 'handler asked for a retry', errorCode: 503 },
  ],
  [
    'disposition RETRY with retry_delay_ms and an error message',
    { kind: 'response', response: response({ disposition: Disposition.DISPOSITION_RETRY, retryDelayMs: 250, errorMessage: 'db busy' }) },
    { kind: 'retry', outcome: 'retry', delayMs: 250, reason: 'handler_retry', error: 'db busy' },
    { kind: 'reject', outcome: 'rejected', reason: 'handler_retry', error: 'db busy', errorCode: 503 },
  ],
  [
    'disposition RETRY with metrics.success === false (the disposition wins)',
    { kind: 'response', response: response({ disposition: Disposition.DISPOSITION_RETRY, metrics: { values: { success: false } } }) },
    { kind: 'retry', outcome: 'retry', delayMs: 1000, reason: 'handler_retry', error: 'handler asked for a retry' },
    { kind: 'reject', outcome: 'rejected', reason: 'handler_retry', error: 'handler asked for a retry', errorCode: 503 },
  ],
  // --- HandlerResponse, DEAD_LETTER / unknown ---
  [
    'disposition DEAD_LETTER',
    { kind: 'response', response: response({ disposition: Disposition.DISPOSITION_DEAD_LETTER }) },
    { kind: 'dead_letter', outcome: 'dead_letter', reason: 'handler_dead_letter', error: 'handler asked for dead-lettering' , errorCode: 400 },
    { kind: 'reject', outcome: 'rejected', reason: 'handler_dead_letter', error: 'handler asked for dead-lettering', errorCode: 400 },
  ],
  [
    'disposition DEAD_LETTER with an error message',
    { kind: 'response', response: response({ disposition: Disposition.DISPOSITION_DEAD_LETTER, errorMessage: 'poison' }) },
    { kind: 'dead_letter', outcome: 'dead_letter', reason: 'handler_dead_letter', error: 'poison' , errorCode: 400 },
    { kind: 'reject', outcome: 'rejected', reason: 'handler_dead_letter', error: 'poison', errorCode: 400 },
  ],
  [
    'disposition UNRECOGNIZED',
    { kind: 'response', response: response({ disposition: Disposition.UNRECOGNIZED }) },
    { kind: 'dead_letter', outcome: 'dead_letter', reason: 'invalid_response', error: 'unknown disposition -1' , errorCode: 400 },
    { kind: 'reject', outcome: 'rejected', reason: 'invalid_response', error: 'unknown disposition -1', errorCode: 400 },
  ],
  [
    'disposition out of range (7)',
    { kind: 'response', response: response({ disposition: 7 as Disposition }) },
    { kind: 'dead_letter', outcome: 'dead_letter', reason: 'invalid_response', error: 'unknown disposition 7' , errorCode: 400 },
    { kind: 'reject', outcome: 'rejected', reason: 'invalid_response', error: 'unknown disposition 7', errorCode: 400 },
  ],
  // --- gRPC call failures ---
  ...RETRYABLE_CODES.map(
    (code): Row => [
      `gRPC ${status[code]} (retryable)`,
      { kind: 'call_failed', code, message: 'handler down' },
      { kind: 'retry', outcome: 'retry', delayMs: 1000, reason: grpcName(code), error: 'handler down' },
      { kind: 'reject', outcome: 'rejected', reason: grpcName(code), error: 'handler down', errorCode: 503 },
    ],
  ),
  ...PERMANENT_CODES.map(
    (code): Row => [
      `gRPC ${status[code]} (permanent)`,
      { kind: 'call_failed', code, message: 'bad event' },
      { kind: 'dead_letter', outcome: 'dead_letter', reason: grpcName(code), error: 'bad event' , errorCode: 400 },
      { kind: 'reject', outcome: 'rejected', reason: grpcName(code), error: 'bad event', errorCode: 400 },
    ],
  ),
  [
    'a gRPC code outside the enum',
    { kind: 'call_failed', code: 99 as status, message: 'weird' },
    { kind: 'dead_letter', outcome: 'dead_letter', reason: 'grpc_99', error: 'weird' , errorCode: 400 },
    { kind: 'reject', outcome: 'rejected', reason: 'grpc_99', error: 'weird', errorCode: 400 },
  ],
  // --- invalid responses: dead-letter at once with the reason ---
  ...(['invalid_event_type', 'event_type_not_allowed', 'too_many_followups', 'payload_too_large', 'hop_limit', 'invalid_followup', 'invalid_delay', 'invalid_stream_response'] as const).map(
    (reason): Row => [
      `invalid response (${reason})`,
      { kind: 'invalid_response', reason, message: `bad: ${reason}` },
      { kind: 'dead_letter', outcome: 'dead_letter', reason, error: `bad: ${reason}` , errorCode: 400 },
      { kind: 'reject', outcome: 'rejected', reason, error: `bad: ${reason}`, errorCode: 400 },
    ],
  ),
  // --- follow-up publish failure: retry (JetStream), error reply (core) ---
  [
    'follow-up publish failed',
    { kind: 'publish_failed', message: 'no responders' },
    { kind: 'retry', outcome: 'retry', delayMs: 1000, reason: 'publish_failed', error: 'no responders' },
    { kind: 'reject', outcome: 'rejected', reason: 'publish_failed', error: 'no responders', errorCode: 500 },
  ],
  // --- malformed inbound event ---
  [
    'malformed event',
    { kind: 'malformed_event', message: 'bad ce-hops' },
    { kind: 'dead_letter', outcome: 'dead_letter', reason: 'malformed_event', error: 'bad ce-hops' , errorCode: 400 },
    { kind: 'reject', outcome: 'rejected', reason: 'malformed_event', error: 'bad ce-hops', errorCode: 400 },
  ],
];

describe('decide: DESIGN.md §3, first delivery', () => {
  it.each(rows)('%s → jetstream', (_name, result, expected) => {
    expect(decide(result, js(1))).toEqual(expected);
  });
  it.each(rows)('%s → core', (_name, result, _js, expected) => {
    expect(decide(result, core(1))).toEqual(expected);
  });
});

describe('decide: the last attempt (attempt >= max_deliver)', () => {
  /** Every row that retries on JetStream becomes a dead letter with reason max_deliver on the last attempt. */
  const lastAttemptRows = rows.map(([name, result, jsAction, coreAction]): Row => {
    if (jsAction.kind !== 'retry') return [name, result, jsAction, coreAction];
    // A requester still waiting gets the code the failure would have had on core (503 or 500).
    const errorCode = coreAction.kind === 'reject' ? coreAction.errorCode : 0;
    return [name, result, { kind: 'dead_letter', outcome: 'dead_letter', reason: 'max_deliver', error: `${jsAction.reason}: ${jsAction.error}`, errorCode }, coreAction];
  });

  it.each(lastAttemptRows)('%s → jetstream, attempt == max_deliver', (_name, result, expected) => {
    expect(decide(result, js(5, 5))).toEqual(expected);
  });
  it.each(lastAttemptRows)('%s → jetstream, attempt > max_deliver', (_name, result, expected) => {
    expect(decide(result, js(9, 5))).toEqual(expected);
  });
  it.each(rows)('%s → core ignores attempts', (_name, result, _js, expected) => {
    expect(decide(result, core(5, 5))).toEqual(expected);
  });

  it('max_deliver 1 dead-letters the first retryable failure', () => {
    expect(decide({ kind: 'call_failed', code: status.UNAVAILABLE, message: 'down' }, js(1, 1))).toEqual({
      kind: 'dead_letter',
      outcome: 'dead_letter',
      reason: 'max_deliver',
      error: 'grpc_unavailable: down',
      errorCode: 503,
    });
  });

  it('the attempt before the last still retries, with the backoff step of that attempt', () => {
    expect(decide({ kind: 'call_failed', code: status.UNAVAILABLE, message: 'down' }, js(4, 5))).toMatchObject({ kind: 'retry', delayMs: 30000 });
    expect(decide({ kind: 'publish_failed', message: 'x' }, js(2, 5))).toMatchObject({ kind: 'retry', delayMs: 5000 });
  });

  it('a handler retry on the last attempt keeps its message in the dead-letter error', () => {
    const action = decide({ kind: 'response', response: response({ disposition: Disposition.DISPOSITION_RETRY, retryDelayMs: 10, errorMessage: 'db busy' }) }, js(5, 5));
    expect(action).toEqual({ kind: 'dead_letter', outcome: 'dead_letter', reason: 'max_deliver', error: 'handler_retry: db busy', errorCode: 503 });
  });

  it('permanent failures keep their own reason on the last attempt', () => {
    expect(decide({ kind: 'call_failed', code: status.INVALID_ARGUMENT, message: 'bad' }, js(5, 5))).toMatchObject({ kind: 'dead_letter', reason: 'grpc_invalid_argument' });
    expect(decide({ kind: 'response', response: response() }, js(5, 5))).toEqual({ kind: 'ack', outcome: 'success' });
  });
});

describe('decide: retry delays', () => {
  it('uses retry_delay_ms when the handler gives one, else the backoff step of the attempt', () => {
    const retry = (retryDelayMs: number, attempt: number) =>
      decide({ kind: 'response', response: response({ disposition: Disposition.DISPOSITION_RETRY, retryDelayMs }) }, js(attempt, 100));
    expect(retry(0, 1)).toMatchObject({ kind: 'retry', delayMs: 1000 });
    expect(retry(0, 2)).toMatchObject({ kind: 'retry', delayMs: 5000 });
    expect(retry(0, 3)).toMatchObject({ kind: 'retry', delayMs: 30000 });
    expect(retry(0, 50)).toMatchObject({ kind: 'retry', delayMs: 30000 });
    expect(retry(1, 3)).toMatchObject({ kind: 'retry', delayMs: 1 });
    expect(retry(120_000, 1)).toMatchObject({ kind: 'retry', delayMs: 120_000 });
  });

  it('gRPC failures follow the backoff steps', () => {
    for (const [attempt, delay] of [
      [1, 1000],
      [2, 5000],
      [3, 30000],
      [4, 30000],
    ] as const) {
      expect(decide({ kind: 'call_failed', code: status.DEADLINE_EXCEEDED, message: 't' }, js(attempt, 10))).toMatchObject({ kind: 'retry', delayMs: delay });
    }
  });
});

describe('backoffDelay', () => {
  it.each([
    [[1000, 5000, 30000], 1, 1000],
    [[1000, 5000, 30000], 2, 5000],
    [[1000, 5000, 30000], 3, 30000],
    [[1000, 5000, 30000], 4, 30000],
    [[1000, 5000, 30000], 1000, 30000],
    [[1000, 5000, 30000], 0, 1000],
    [[1000, 5000, 30000], -3, 1000],
    [[250], 1, 250],
    [[250], 7, 250],
    [[0, 10], 1, 0],
  ])('steps %j, attempt %i → %i ms', (backoffMs, attempt, expected) => {
    expect(backoffDelay({ attempt, backoffMs })).toBe(expected);
  });
});

describe('backoffDelay without fixed steps: exponential with jitter', () => {
  const backoff = { initial_ms: 1000, max_ms: 10_000, multiplier: 2, jitter: 0.2 };
  it.each([
    [1, 0.5, 1000],
    [2, 0.5, 2000],
    [3, 0.5, 4000],
    [4, 0.5, 8000],
    [5, 0.5, 10_000],
    [9, 0.5, 10_000],
  ])('attempt %i with no jitter drawn (random %d) → %i ms', (attempt, r, expected) => {
    expect(backoffDelay({ attempt, backoff, random: () => r })).toBe(expected);
  });

  it('spreads each delay by ± jitter', () => {
    expect(backoffDelay({ attempt: 2, backoff, random: () => 0 })).toBe(1600);
    expect(backoffDelay({ attempt: 2, backoff, random: () => 0.999999 })).toBe(2400);
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay({ attempt: 3, backoff })));
    expect(seen.size).toBeGreaterThan(10);
    for (const d of seen) expect(d).toBeGreaterThanOrEqual(3200), expect(d).toBeLessThanOrEqual(4800);
  });

  it('uses the defaults (1 s doubling to 60 s, ±20%) when nothing is configured', () => {
    expect(backoffDelay({ attempt: 1, random: () => 0.5 })).toBe(1000);
    expect(backoffDelay({ attempt: 20, random: () => 0.5 })).toBe(60_000);
  });

  it('fixed steps win over the exponential policy', () => {
    expect(backoffDelay({ attempt: 3, backoffMs: [5, 6], backoff, random: () => 0 })).toBe(6);
  });
});
