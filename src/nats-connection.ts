/**
 * Opens the NATS connection the way a sidecar needs it: reconnect forever, wait for the first connection
 * up to a deadline, auth and TLS from the configuration, and a check of the server's version.
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/nats-core';
import type { NatsConfig } from './config.js';
import { ConfigError, errorMessage, ServerFeatureError } from './errors.js';

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
  if (config.credentials_file) opts.authenticator = credsAuthenticator(readSecret(config.credentials_file, 'nats.credentials_file'));
  if (config.nkey_seed_file) opts.authenticator = nkeyAuthenticator(readSecret(config.nkey_seed_file, 'nats.nkey_seed_file'));
  if (config.tls) {
    opts.tls = {};
    if (config.tls.ca_file) opts.tls.caFile = config.tls.ca_file;
    if (config.tls.cert_file) opts.tls.certFile = config.tls.cert_file;
    if (config.tls.key_file) opts.tls.keyFile = config.tls.key_file;
  }
  return opts;
}

function readSecret(path: string, field: string): Uint8Array {
  try {
    return new TextEncoder().encode(readFileSync(path, 'utf8').trim());
  } catch (err) {
    throw new ConfigError([`${field}: cannot read ${path}: ${errorMessage(err)}`], { cause: err });
  }
}

/** Connects, failing after `timeoutMs` without a first connection (0 = wait forever). */
export async function connectNats(config: NatsConfig, timeoutMs = config.connect_timeout_ms): Promise<NatsConnection> {
  const pending = connect(connectionOptions(config));
  if (timeoutMs <= 0) return pending;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no connection to ${config.servers.join(', ')} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([pending, timeout]);
  } catch (err) {
    // A connection that succeeds after we gave up must not linger.
    pending.then((nc) => nc.close()).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
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

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((p) => parseInt(p, 10) || 0);
  const pb = b.split(/[.-]/).map((p) => parseInt(p, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
