/**
 * `stufio-sidecar dlq`: list the dead letters a stream keeps on `<prefix>.dlq.>` and replay chosen ones to
 * the subject they came from. A replayed event keeps its ce-id, so follow-ups that an earlier attempt had
 * already stored are deduplicated; it gets a fresh Nats-Msg-Id so the inbound stream accepts it again.
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { EVENT_ID } from './cloudevents.js';
import { DLQ_HEADERS } from './dispatcher.js';
import { errorMessage } from './errors.js';
import { deadLetterSubject } from './event-type.js';
import type { Logger } from './logger.js';
import { Publisher } from './publisher.js';

export interface DeadLetter {
  seq: number;
  subject: string;
  time: string;
  event_id: string;
  event_type: string;
  original_subject: string;
  reason: string;
  attempts: number;
  error: string;
  body_bytes: number;
}

export class DeadLetters {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  static async open(nc: NatsConnection, prefix: string, logger: Logger): Promise<DeadLetters> {
    if (!nc.info?.jetstream) throw new Error('dead letters are kept by JetStream, which this server does not have enabled');
    const jsm = await jetstreamManager(nc);
    let stream: string;
    try {
      stream = await jsm.streams.find(deadLetterSubject(prefix, 'x'));
    } catch {
      throw new Error(`no stream stores ${deadLetterSubject(prefix, '>')}: add one (e.g. subjects ["${prefix}.>"] or ["${deadLetterSubject(prefix, '>')}"]) to keep dead letters`);
    }
    return new DeadLetters(nc, jsm, stream, prefix, logger);
  }

  /** Dead letters in stream order, optionally of one event type (wildcards allowed). */
  async list(options: { eventType?: string; limit?: number } = {}): Promise<DeadLetter[]> {
    const filter = deadLetterSubject(this.prefix, options.eventType ?? '>');
    const limit = options.limit ?? 100;
    // A plain ephemeral consumer with one filter subject: works on every supported server (an ordered
    // consumer's filter_subjects needs 2.10).
    const { name } = await this.jsm.consumers.add(this.stream, {
      filter_subject: filter,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 30 * 1_000_000_000,
    });
    const consumer = await jetstream(this.nc).consumers.get(this.stream, name);
    const out: DeadLetter[] = [];
    try {
      // Known up front, so the loop never waits out a fetch expiry for messages that do not exist.
      const wanted = Math.min(limit, (await consumer.info()).num_pending);
      while (out.length < wanted) {
        const batch = await consumer.fetch({ max_messages: Math.min(256, wanted - out.length), expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          const h = m.headers;
          out.push({
            seq: m.seq,
            subject: m.subject,
            time: m.time.toISOString(),
            event_id: h?.get(DLQ_HEADERS.eventId) || h?.get('ce-id') || '',
            event_type: h?.get('ce-type') || m.subject.slice(deadLetterSubject(this.prefix, '').length),
            original_subject: h?.get(DLQ_HEADERS.subject) ?? '',
            reason: h?.get(DLQ_HEADERS.reason) ?? '',
            attempts: Number(h?.get(DLQ_HEADERS.attempts) || 0),
            error: h?.get(DLQ_HEADERS.error) ?? '',
            body_bytes: m.data.byteLength,
          });
          if (out.length >= wanted) break;
        }
        if (got === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => {});
    }
    return out;
  }

  /** Publishes dead letter `seq` to its original subject; removes it from the stream unless `keep`. */
  async replay(seq: number, options: { keep?: boolean } = {}): Promise<{ seq: number; subject: string; event_id: string; stream?: string; sequence?: number }> {
    const m = await this.jsm.streams.getMessage(this.stream, { seq });
    if (!m) throw new Error(`no message ${seq} in stream ${this.stream}`);
    const target = m.header.get(DLQ_HEADERS.subject);
    if (!target) throw new Error(`message ${seq} in ${this.stream} is not a dead letter (no ${DLQ_HEADERS.subject} header)`);
    const h = natsHeaders();
    for (const key of m.header.keys()) {
      const lower = key.toLowerCase();
      if (lower.startsWith('stufio-dlq-') || lower === 'nats-msg-id') continue;
      for (const v of m.header.values(key)) h.append(key, v);
    }
    // A plain message's id was its Nats-Msg-Id, which must change for the stream to take it again.
    const eventId = m.header.get(DLQ_HEADERS.eventId);
    if (eventId && !h.has('ce-id')) h.set(EVENT_ID, eventId);
    const publisher = new Publisher(this.nc, jetstream(this.nc), this.jsm, { logger: this.logger });
    const receipt = await publisher.publish(target, m.data, h, `replay:${this.stream}:${seq}`);
    if (!options.keep) {
      try {
        await this.jsm.streams.deleteMessage(this.stream, seq);
      } catch (err) {
        this.logger.warn({ seq, err: errorMessage(err) }, 'replayed dead letter could not be removed');
      }
    }
    return { seq, subject: target, event_id: eventId || m.header.get('ce-id') || '', stream: receipt.stream, sequence: receipt.sequence };
  }
}
