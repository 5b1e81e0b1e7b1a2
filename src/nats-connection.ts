/**
 * Opens the NATS connection the way a sidecar needs it: reconnect forever, wait for the first connection
 * up to a deadline, auth and TLS from the configuration, and a check of the server's version.
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/nats-core';
import { redactUrl, type NatsConfig } from './config.js';
import { ConfigError, errorMessage, ServerFeatureError } from './errors.js';
import { batchNatsWrites } from './nats-write-batching.js';
import { compareVersions } from './versions.js';

/** The oldest nats-server we run against (Debian's package); older ones lack what JetStream use needs. */
export const MIN_SERVER_VERSION = '2.9.0';

export function connectionOptions(config: NatsConfig): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: [...config.servers],
    name: config.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    timeout: 5000,
  };
  if (config.token) opts.token = config.token;
  if (config.user) {
    opts.user = config.user;
    opts.pass = config.password;
  }
  if (config.credentials_file) opts.authenticator = credsAuthenticator(readSecret(config.credentials_file, 'nats.credentials_file', false));
  if (config.nkey_seed_file) opts.authenticator = nkeyAuthenticator(readSecret(config.nkey_seed_file, 'nats.nkey_seed_file', true));
  if (config.tls) {
    opts.tls = {};
    if (config.tls.ca_file) opts.tls.caFile = config.tls.ca_file;
    if (config.tls.cert_file) opts.tls.certFile = config.tls.cert_file;
    if (config.tls.key_file) opts.tls.keyFile = config.tls.key_file;
  }
  return opts;
}

function readSecret(path: string, field: string, trim: boolean): Uint8Array {
  try {
    // A seed file is the seed alone (editors add a newline); a creds file is parsed as written.
    const text = readFileSync(path, 'utf8');
    return new TextEncoder().encode(trim ? text.trim() : text);
  } catch (err) {
    throw new ConfigError([`${field}: cannot read ${path}: ${errorMessage(err)}`], { cause: err });
  }
}

/**
 * Connects, retrying until `timeoutMs` passes without a first connection (0 = keep trying forever).
 * Each try is a separate connect() so that giving up leaves no connection attempt running behind us
 * (nats.js' own waitOnFirstConnect cannot be cancelled); once connected, reconnects are unbounded.
 */
export async function connectNats(config: NatsConfig, timeoutMs = config.connect_timeout_ms): Promise<NatsConnection> {
  if (config.batch_writes) batchNatsWrites();
  const options = { ...connectionOptions(config), waitOnFirstConnect: false };
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
  let last: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect({ ...options, timeout: Math.max(100, Math.min(options.timeout ?? 5000, deadline - Date.now())) });
    } catch (err) {
      last = err;
      // Authentication and authorization failures will not fix themselves by waiting.
      if (err instanceof Error && /authorization|authentication|permissions/i.test(err.message)) break;
    }
    const pause = Math.min(500 * 2 ** Math.min(attempt, 3), 2000);
    if (Date.now() + pause >= deadline) break;
    await new Promise((r) => setTimeout(r, pause));
  }
  throw new Error(`no connection to ${config.servers.map(redactUrl).join(', ')} within ${timeoutMs} ms: ${errorMessage(last)}`, { cause: last });
}

export function serverVersion(nc: NatsConnection): string {
  return nc.info?.version ?? '0.0.0';
}

/** Refuses, with a clear message, a configuration the server cannot serve. */
export function checkServerFeatures(nc: NatsConnection, needs: { jetstream: boolean }): void {
  const version = serverVersion(nc);
  if (compareVersions(version, MIN_SERVER_VERSION) < 0) {
    throw new ServerFeatureError(`nats-server ${version} is older than ${MIN_SERVER_VERSION}, the oldest supported`);
  }
  if (needs.jetstream && !nc.info?.jetstream) {
    throw new ServerFeatureError(`nats-server ${version} at ${nc.getServer()} has JetStream disabled, but a subscription uses delivery: jetstream (start the server with -js)`);
  }
}
