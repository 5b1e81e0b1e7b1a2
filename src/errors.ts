/**
 * The sidecar's error classes: small, named, each with a `cause` where one exists (nats.js style).
 * Callers branch on the class, never on message text.
 */

/** Invalid configuration. `problems` holds one line per problem, each naming the field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[], options?: ErrorOptions) {
    super(problems.join('\n'), options);
  }
}

/** An inbound message that cannot be turned into an EventMessage (bad CloudEvent, bad event type). */
export class MalformedEventError extends Error {
  override readonly name = 'MalformedEventError';
}

/** A HandlerResponse the sidecar refuses to apply; `reason` is a stable code for metrics and dead letters. */
export class InvalidResponseError extends Error {
  override readonly name = 'InvalidResponseError';
  constructor(readonly reason: InvalidResponseReason, message: string) {
    super(message);
  }
}

export type InvalidResponseReason =
  | 'invalid_event_type'
  | 'event_type_not_allowed'
  | 'too_many_followups'
  | 'payload_too_large'
  | 'hop_limit'
  | 'invalid_followup'
  | 'invalid_delay'
  | 'invalid_stream_response';

/** The gRPC call to the handler failed; `code` is the gRPC status code. */
export class HandlerCallError extends Error {
  override readonly name = 'HandlerCallError';
  constructor(readonly code: number, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A follow-up, reply or dead-letter copy could not be published (and stored, for JetStream). */
export class PublishError extends Error {
  override readonly name: string = 'PublishError';
}

/** The connected nats-server lacks something the configuration needs. */
export class ServerFeatureError extends Error {
  override readonly name = 'ServerFeatureError';
}

/** A call made in a lifecycle state that does not allow it. */
export class IllegalStateError extends Error {
  override readonly name = 'IllegalStateError';
}

/** The message of any thrown value, without assuming it is an Error. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
