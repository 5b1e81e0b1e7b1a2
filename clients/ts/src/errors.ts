import { status } from '@grpc/grpc-js';

/** The event may succeed later (a dependency is down): the sidecar naks it with backoff. */
export class RetryableError extends Error {
  override readonly name = 'RetryableError';
}

/** The event can never succeed (it is invalid): the sidecar dead-letters it at once. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
}

/**
 * The gRPC status a thrown value becomes. Unknown errors are INTERNAL, which the sidecar retries: a bug
 * fixed by a redeploy should not have dead-lettered every event it touched.
 */
export function statusForError(err: unknown): status {
  if (err instanceof PermanentError) return status.INVALID_ARGUMENT;
  if (err instanceof RetryableError) return status.UNAVAILABLE;
  return status.INTERNAL;
}
