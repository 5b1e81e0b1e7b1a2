/**
 * The pipeline for one event: decode → Handle → validate the response → publish the follow-ups → settle.
 * What to do in each case is decided by the outcome table (outcome.ts); this file only carries it out,
 * in the order that makes the guarantees hold: follow-ups stored, then the result replied, then the ack.
 */
import { status } from '@grpc/grpc-js';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import type { SidecarConfig, SubscriptionConfig } from './config.js';
import { CE, CONTENT_TYPE, NATS_MSG_ID, decodeEvent, followUpId, type InboundMessage, type OutboundEvent } from './cloudevents.js';
import { HandlerCallError, InvalidResponseError, MalformedEventError, PublishError, errorMessage } from './errors.js';
import { compileAllowList, deadLetterSubject, eventTypeOfSubject } from './event-type.js';
import type { EventMessage, HandlerResponse } from './gen/stufio/events/v1/handler.js';
import type { HandlerClient } from './handler-client.js';
import type { HandlerHealth } from './handler-health.js';
import type { Logger } from './logger.js';
import type { EventTypeMetrics, SidecarMetrics } from './metrics.js';
import type { Delivered, Settlement } from './nats-source.js';
import { backoffDelay, decide, type Action, type HandlingResult, type Outcome } from './outcome.js';
import type { Publisher } from './publisher.js';
import { runInEventContext } from './metrics-providers.js';
import { DelayedDelivery } from './delayed-delivery.js';
import type { MetricsRecorder } from './metrics-records.js';
import { planFollowUps, type PublishLimits } from './response.js';

export const DLQ_HEADERS = {
  reason: 'stufio-dlq-reason',
  attempts: 'stufio-dlq-attempts',
  error: 'stufio-dlq-error',
  subject: 'stufio-dlq-subject',
  stream: 'stufio-dlq-stream',
  sequence: 'stufio-dlq-sequence',
  consumer: 'stufio-dlq-consumer',
  /** The event id the sidecar used, which a plain message carries nowhere else once its Nats-Msg-Id is gone. */
  eventId: 'stufio-dlq-event-id',
} as const;
export const OUTCOME_HEADER = 'stufio-outcome';
const SERVICE_ERROR = 'Nats-Service-Error';
const SERVICE_ERROR_CODE = 'Nats-Service-Error-Code';

export interface DispatcherDeps {
  config: SidecarConfig;
  handler: HandlerClient;
  health: HandlerHealth;
  publisher: Publisher;
  metrics: SidecarMetrics;
  logger: Logger;
  /** Set when per-event metrics records are produced. */
  recorder?: MetricsRecorder;
}

/** What the dispatcher reports about each settled event (metrics records, tests). */
export interface HandledEvent {
  event: EventMessage | undefined;
  inbound: InboundMessage;
  subscription: SubscriptionConfig;
  action: Action;
  /** What was counted: the action's outcome, or `retry` when a dead-letter copy could not be stored. */
  outcome: Outcome;
  response: HandlerResponse | undefined;
  followUps: readonly OutboundEvent[];
  startedAt: number;
  handlerMs: number;
}

export class Dispatcher {
  readonly #prefix: string;
  readonly #limits: PublishLimits;
  readonly #source: string;
  readonly #entityChains = new Map<string, Promise<void>>();
  #onHandled: ((h: HandledEvent) => void) | undefined;

  constructor(private readonly deps: DispatcherDeps) {
    const { config } = deps;
    this.#prefix = config.subject_prefix;
    this.#source = `stufio-sidecar/${config.nats.name}`;
    this.#limits = {
      maxPerResponse: config.publish.max_per_response,
      maxPayloadBytes: config.publish.max_payload_bytes,
      maxHops: config.publish.max_hops,
      maxDelayMs: config.publish.max_delay_ms,
      isAllowed: compileAllowList(config.publish.allow),
    };
  }

  /** Observe every settled event (one listener; the metrics record publisher uses it). */
  onHandled(listener: (h: HandledEvent) => void): void {
    this.#onHandled = listener;
  }

  /** An overloaded core subscription refuses a message: counted, and a requester gets 503 at once. */
  readonly shed = (subscription: SubscriptionConfig, { inbound, settle }: Delivered): void => {
    const { metrics } = this.deps;
    const typeMetrics = metrics.forEventType(eventTypeOfSubject(this.#prefix, inbound.subject) ?? 'unknown');
    typeMetrics.receivedCore.inc();
    typeMetrics.processed.rejected.inc();
    metrics.shed.inc({ event_type: typeMetrics.label });
    const error = `overloaded: more than ${subscription.max_pending} messages queued with ${subscription.max_in_flight} in flight`;
    if (inbound.replyExpected) settle.respond(errorBody('overloaded', error), errorHeaders(undefined, error, 503, 'overloaded'));
  };

  /** Handles one delivered message to the end: it is always settled when the promise resolves. */
  readonly dispatch = async (subscription: SubscriptionConfig, { inbound, settle }: Delivered): Promise<void> => {
    const { metrics } = this.deps;
    metrics.inFlight.inc();
    const startedAt = Date.now();
    let event: EventMessage | undefined;
    let malformed: string | undefined;
    try {
      event = decodeEvent(this.#prefix, inbound, this.deps.config.handler.decode_payload);
    } catch (err) {
      // Whatever the decoder threw, the message is unusable as an event: it is dead-lettered, not stranded.
      malformed = err instanceof MalformedEventError ? err.message : `cannot decode: ${errorMessage(err)}`;
    }
    const typeMetrics = metrics.forEventType(event?.eventType ?? eventTypeOfSubject(this.#prefix, inbound.subject) ?? 'unknown');
    (inbound.mode === 'core' ? typeMetrics.receivedCore : typeMetrics.receivedJetStream).inc();
    if (inbound.attempt > 1) metrics.redeliveries.inc();
    try {
      const process = () => this.#inContext(() => this.#process(subscription, inbound, settle, event, malformed, typeMetrics, startedAt));
      if (event && subscription.ordering === 'entity' && event.entityId !== '') await this.#serialise(event.entityId, process);
      else await process();
    } catch (err) {
      // A bug must not strand the message: hand it back for a later attempt (core: tell the requester).
      typeMetrics.processed[inbound.mode === 'core' ? 'rejected' : 'retry'].inc();
      this.deps.logger.error({ event_id: event?.eventId, subject: inbound.subject, err: errorMessage(err) }, 'unexpected error handling event');
      if (inbound.mode === 'core') {
        if (inbound.replyExpected) settle.respond(errorBody('internal', errorMessage(err)), errorHeaders(event, errorMessage(err), 500, 'internal'));
      } else {
        settle.nak(backoffDelay({ attempt: inbound.attempt, backoffMs: subscription.backoff_ms, backoff: subscription.backoff }));
      }
    } finally {
      metrics.inFlight.dec();
    }
  };

  async #process(
    subscription: SubscriptionConfig,
    inbound: InboundMessage,
    settle: Settlement,
    event: EventMessage | undefined,
    malformed: string | undefined,
    typeMetrics: EventTypeMetrics,
    startedAt: number,
  ): Promise<void> {
    const { metrics, logger } = this.deps;
    const eventType = typeMetrics.label;
    let result: HandlingResult;
    let response: HandlerResponse | undefined;
    let followUps: OutboundEvent[] = [];
    let handlerMs = 0;
    const ctx = { mode: inbound.mode, attempt: inbound.attempt, maxDeliver: subscription.max_deliver, backoffMs: subscription.backoff_ms, backoff: subscription.backoff };

    if (!event) {
      result = { kind: 'malformed_event', message: malformed ?? 'malformed event' };
    } else if (inbound.mode === 'jetstream' && inbound.attempt > subscription.max_deliver) {
      // Only reachable when a sidecar died during the last allowed attempt: do not call the handler again.
      result = { kind: 'call_failed', code: status.ABORTED, message: `delivered ${inbound.attempt} times, past max_deliver` };
    } else {
      if (event.time) typeMetrics.eventAge.observe(Math.max(0, startedAt - event.time.getTime()) / 1000);
      await this.deps.health.whenServing();
      const t0 = performance.now();
      try {
        response = await this.deps.handler.handle(event);
        if (response.errorCode !== 0) {
          // Stream mode's way of saying "this call failed with status errorCode".
          result = { kind: 'call_failed', code: response.errorCode, message: response.errorMessage || `handler error code ${response.errorCode}` };
          response = undefined;
        } else {
          result = { kind: 'response', response };
        }
      } catch (err) {
        if (!(err instanceof HandlerCallError)) throw err;
        if (err.code === status.UNAVAILABLE) this.deps.health.suspect();
        result = { kind: 'call_failed', code: err.code, message: err.message };
      }
      handlerMs = performance.now() - t0;
      typeMetrics.handlerDuration.observe(handlerMs / 1000);
      if (response && isAck(response)) {
        try {
          followUps = planFollowUps(event, response, this.#limits, { prefix: this.#prefix, source: this.#source });
          await this.deps.publisher.publishAll(followUps.some((f) => f.delayMs > 0) ? followUps.map(holdIfDelayed) : followUps);
        } catch (err) {
          if (err instanceof InvalidResponseError) result = { kind: 'invalid_response', reason: err.reason, message: err.message };
          else if (err instanceof PublishError) result = { kind: 'publish_failed', message: err.message };
          else throw err;
        }
      }
    }

    const action = decide(result, ctx);
    const outcome = await this.#apply(action, inbound, settle, event, response, eventType, subscription);
    typeMetrics.processed[outcome].inc();
    if (action.kind === 'ack') {
      if (followUps.length > 0) typeMetrics.followUps.inc(followUps.length);
      if (response?.metrics) metrics.observeHandlerMetrics(eventType, response.metrics.values);
    } else {
      logger.warn(
        { event_id: event?.eventId, event_type: eventType, subject: inbound.subject, attempt: inbound.attempt, action: action.kind, reason: action.reason, error: action.error },
        'event not handled',
      );
    }
    const handled: HandledEvent = { event, inbound, subscription, action, outcome, response, followUps, startedAt, handlerMs };
    this.#onHandled?.(handled);
    if (this.deps.recorder) {
      this.deps.recorder.record(handled).catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'metrics record failed'));
    }
  }

  /** Each event runs in its own async context, where metrics providers keep their per-event state. */
  #inContext(fn: () => Promise<void>): Promise<void> {
    const recorder = this.deps.recorder;
    if (!recorder) return fn();
    return runInEventContext(() => {
      recorder.resetAll();
      return fn();
    });
  }

  async #apply(action: Action, inbound: InboundMessage, settle: Settlement, event: EventMessage | undefined, response: HandlerResponse | undefined, eventType: string, subscription: SubscriptionConfig): Promise<Outcome> {
    switch (action.kind) {
      case 'ack':
        if (inbound.replyExpected && event) settle.respond(resultBody(response), this.#resultHeaders(event, action.outcome));
        settle.ack();
        return action.outcome;
      case 'retry':
        settle.nak(action.delayMs);
        return action.outcome;
      case 'reject':
        if (inbound.replyExpected) settle.respond(errorBody(action.reason, action.error), errorHeaders(event, action.error, action.errorCode, action.reason));
        return action.outcome;
      case 'dead_letter':
        try {
          await this.#deadLetter(inbound, event, action.reason, action.error);
        } catch (err) {
          // No copy stored, so the original must stay: redeliver it later rather than terminate it.
          this.deps.logger.error({ event_id: event?.eventId, subject: inbound.subject, err: errorMessage(err) }, 'dead-letter publish failed');
          settle.nak(backoffDelay({ attempt: inbound.attempt, backoffMs: subscription.backoff_ms, backoff: subscription.backoff }));
          return 'retry';
        }
        this.deps.metrics.deadLetters.inc({ event_type: eventType, reason: action.reason });
        if (inbound.replyExpected) settle.respond(errorBody(action.reason, action.error), errorHeaders(event, action.error, action.errorCode, action.reason));
        settle.term(`${action.reason}: ${action.error}`.slice(0, 256));
        return action.outcome;
    }
  }

  /** The original body and headers, plus why, on <prefix>.dlq.<event_type>; stored before the term. */
  async #deadLetter(inbound: InboundMessage, event: EventMessage | undefined, reason: string, error: string): Promise<void> {
    const h = natsHeaders();
    if (inbound.headers) {
      for (const key of inbound.headers.keys()) {
        if (key.toLowerCase() === NATS_MSG_ID.toLowerCase()) continue;
        for (const v of inbound.headers.values(key)) h.append(key, v);
      }
    }
    h.set(DLQ_HEADERS.reason, reason);
    h.set(DLQ_HEADERS.attempts, String(inbound.attempt));
    h.set(DLQ_HEADERS.error, headerSafe(error));
    h.set(DLQ_HEADERS.subject, inbound.subject);
    if (inbound.stream) h.set(DLQ_HEADERS.stream, inbound.stream);
    if (inbound.streamSequence) h.set(DLQ_HEADERS.sequence, String(inbound.streamSequence));
    if (inbound.consumer) h.set(DLQ_HEADERS.consumer, inbound.consumer);
    if (event) h.set(DLQ_HEADERS.eventId, event.eventId);
    const type = event?.eventType ?? eventTypeOfSubject(this.#prefix, inbound.subject) ?? 'unknown';
    const dedupKey = event?.eventId ?? `${inbound.stream}:${inbound.streamSequence}`;
    await this.deps.publisher.publish(deadLetterSubject(this.#prefix, safeType(type)), inbound.data, h, followUpId(dedupKey, -1, 'dlq'));
  }

  #resultHeaders(event: EventMessage, outcome: string): MsgHdrs {
    const h = natsHeaders();
    h.set(CE.specversion, '1.0');
    h.set(CE.id, followUpId(event.eventId, -1, 'result'));
    h.set(CE.type, `${event.eventType}.result`);
    h.set(CE.source, this.#source);
    h.set(CE.correlationId, event.correlationId);
    h.set(CE.causationId, event.eventId);
    h.set(CONTENT_TYPE, 'application/json');
    h.set(OUTCOME_HEADER, outcome);
    return h;
  }

  /** Runs `fn` after every earlier event of the same entity has finished (ordering: entity). */
  async #serialise(key: string, fn: () => Promise<void>): Promise<void> {
    const previous = this.#entityChains.get(key);
    const run = (previous ? previous.then(fn, fn) : fn()).finally(() => {
      if (this.#entityChains.get(key) === run) this.#entityChains.delete(key);
    });
    this.#entityChains.set(key, run);
    return run;
  }
}

function holdIfDelayed(e: OutboundEvent): OutboundEvent {
  return e.delayMs > 0 ? DelayedDelivery.hold(e) : e;
}

function isAck(response: HandlerResponse): boolean {
  return response.disposition === 0 || response.disposition === 1;
}

const NULL_BODY = Buffer.from('null');

function resultBody(response: HandlerResponse | undefined): Uint8Array {
  if (!response || response.result === undefined) return NULL_BODY;
  return Buffer.from(JSON.stringify(response.result), 'utf8');
}

function errorBody(reason: string, error: string): Uint8Array {
  return Buffer.from(JSON.stringify({ error, reason }), 'utf8');
}

function errorHeaders(event: EventMessage | undefined, error: string, code: number, reason: string): MsgHdrs {
  const h = natsHeaders();
  h.set(SERVICE_ERROR, headerSafe(error));
  h.set(SERVICE_ERROR_CODE, String(code));
  h.set(OUTCOME_HEADER, reason);
  if (event) {
    h.set(CE.correlationId, event.correlationId);
    h.set(CE.causationId, event.eventId);
  }
  return h;
}

/** Header values are one line of printable text; error messages are not always. */
function headerSafe(value: string): string {
  const oneLine = value.replace(/[\r\n\t\x00-\x1f\x7f]+/g, ' ');
  return oneLine.length > 512 ? `${oneLine.slice(0, 509)}...` : oneLine;
}

function safeType(type: string): string {
  return /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(type) ? type : 'unknown';
}
