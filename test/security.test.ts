/**
 * NATS auth (token, user/password, nkey, credentials file) and TLS against nats-servers that require
 * them, a handler on a unix socket, the publish allow-list, and secrets kept out of logs and `check`.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createAccount, createOperator, createUser } from '@nats-io/nkeys';
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { connect } from '@nats-io/transport-node';
import { cleanup, defer, handlerProcess, header, json, natsServer, runCli, spawnCli, tempDir, waitUntil, writeTemp } from './helpers/index.js';

afterEach(cleanup);

/** A sidecar config with one core subscription; `nats` is the YAML of the nats section's extra lines. */
function config(url: string, handlerAddress: string, natsExtra: string): string {
  return writeTemp(
    'sidecar.yaml',
    `nats:
  servers: [${url}]
${natsExtra.includes('connect_timeout_ms') ? '' : '  connect_timeout_ms: 5000\n'}${natsExtra}
handler: { address: "${handlerAddress}", health_interval_ms: 100 }
http: { listen: 127.0.0.1:0 }
subscriptions:
  - { event_type: test.core.>, delivery: core }
publish: { allow: ["allowed.>"] }
`,
  );
}

/** Starts the sidecar CLI, sends one request through it and returns the reply; the output is checked for secrets. */
async function roundTrip(url: string, clientOpts: Record<string, unknown>, natsExtra: string, secrets: string[], handlerAddress?: string): Promise<void> {
  const handler = await handlerProcess(handlerAddress ? { address: handlerAddress } : {});
  const run = spawnCli(['run', '--config', config(url, handler.address, natsExtra)], { STUFIO_LOG_LEVEL: 'debug' });
  await waitUntil(() => run.output().includes('"state":"running"'), 15_000, `sidecar running: ${run.output().slice(-500)}`);
  const nc = await connect({ servers: url, ...clientOpts });
  defer(() => nc.close());
  const reply = await nc.request('events.test.core.secure', JSON.stringify({ result: 'secure-ok' }), { timeout: 5000 });
  expect(json(reply)).toBe('secure-ok');
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
  for (const secret of secrets) expect(run.output()).not.toContain(secret);
}

describe('NATS authentication', () => {
  it('token', async () => {
    const server = await natsServer({ jetstream: false, configText: 'authorization { token: "tok-s3cret-1" }' });
    await roundTrip(server.url, { token: 'tok-s3cret-1' }, '  token: tok-s3cret-1', ['tok-s3cret-1']);
  });

  it('user and password', async () => {
    const server = await natsServer({ jetstream: false, configText: 'authorization { user: alice, password: "pw-s3cret-2" }' });
    await roundTrip(server.url, { user: 'alice', pass: 'pw-s3cret-2' }, '  user: alice\n  password: pw-s3cret-2', ['pw-s3cret-2']);
  });

  it('nkey seed file', async () => {
    const user = createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const server = await natsServer({ jetstream: false, configText: `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }` });
    const seedFile = join(tempDir(), 'user.nk');
    writeFileSync(seedFile, `${seed}\n`);
    const { nkeyAuthenticator } = await import('@nats-io/nats-core');
    await roundTrip(server.url, { authenticator: nkeyAuthenticator(user.getSeed()) }, `  nkey_seed_file: ${seedFile}`, [seed]);
  });

  it('credentials file (operator JWT mode)', async () => {
    const operator = createOperator();
    const account = createAccount();
    const user = createUser();
    const operatorJwt = await encodeOperator('OP', operator);
    const accountJwt = await encodeAccount('ACC', account, { limits: { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, leaf: -1, wildcards: true } } as never, { signer: operator });
    const userJwt = await encodeUser('alice', user, account);
    const creds = fmtCreds(userJwt, user);
    const server = await natsServer({
      jetstream: false,
      configText: `operator: ${operatorJwt}\nresolver: MEMORY\nresolver_preload: { ${account.getPublicKey()}: ${accountJwt} }\n`,
    });
    const credsFile = join(tempDir(), 'user.creds');
    writeFileSync(credsFile, creds);
    const { credsAuthenticator } = await import('@nats-io/nats-core');
    const seed = new TextDecoder().decode(user.getSeed());
    await roundTrip(server.url, { authenticator: credsAuthenticator(creds) }, `  credentials_file: ${credsFile}`, [seed]);
  });

  it('a wrong token fails start with a clear message and exit 1, without printing the token', async () => {
    const server = await natsServer({ jetstream: false, configText: 'authorization { token: "right-token" }' });
    const handler = await handlerProcess();
    const run = spawnCli(['run', '--config', config(server.url, handler.address, '  token: wrong-s3cret-token\n  connect_timeout_ms: 1500')]);
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/start failed|sidecar failed/);
    expect(run.output()).not.toContain('wrong-s3cret-token');
  });
});

describe('TLS', () => {
  function makeCerts(dir: string): { ca: string; cert: string; key: string; clientCert: string; clientKey: string } {
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=stufio-test-ca', '-keyout', 'ca.key', '-out', 'ca.pem');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'server.ext', '-out', 'server.pem');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=stufio-sidecar', '-keyout', 'client.key', '-out', 'client.csr');
    ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', 'client.pem');
    return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client.key') };
  }

  it('connects to a server that requires TLS with client certificates (mutual TLS)', async () => {
    const c = makeCerts(tempDir());
    const server = await natsServer({ jetstream: false, configText: `tls { cert_file: "${c.cert}", key_file: "${c.key}", ca_file: "${c.ca}", verify: true }` });
    await roundTrip(
      server.url,
      { tls: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey } },
      `  tls: { ca_file: ${c.ca}, cert_file: ${c.clientCert}, key_file: ${c.clientKey} }`,
      [],
    );
  });

  it('refuses to start without the client certificate the server requires', async () => {
    const c = makeCerts(tempDir());
    const server = await natsServer({ jetstream: false, configText: `tls { cert_file: "${c.cert}", key_file: "${c.key}", ca_file: "${c.ca}", verify: true }` });
    const handler = await handlerProcess();
    const run = spawnCli(['run', '--config', config(server.url, handler.address, `  tls: { ca_file: ${c.ca} }\n  connect_timeout_ms: 1500`)]);
    expect(await run.exited).toBe(1);
  });
});

describe('handler on a unix socket, allow-list, secrets', () => {
  it('calls a handler listening on a unix socket and enforces publish.allow', async () => {
    const server = await natsServer({ jetstream: false });
    const socket = `unix://${join(tempDir(), 'handler.sock')}`;
    await roundTrip(server.url, {}, '', [], socket);
    const handler = await handlerProcess({ address: `unix://${join(tempDir(), 'h2.sock')}` });
    const run = spawnCli(['run', '--config', config(server.url, handler.address, '')]);
    await waitUntil(() => run.output().includes('"state":"running"'), 15_000, 'running');
    const nc = await connect({ servers: server.url });
    defer(() => nc.close());
    const denied = await nc.request('events.test.core.emit', JSON.stringify({ publish: [{ event_type: 'forbidden.thing', payload: {} }] }), { timeout: 5000 });
    expect(header(denied, 'Nats-Service-Error')).toContain('not in publish.allow');
    const ok = await nc.request('events.test.core.emit', JSON.stringify({ publish: [{ event_type: 'allowed.thing', payload: {} }] }), { timeout: 5000 });
    expect(header(ok, 'Nats-Service-Error')).toBeUndefined();
  });

  it('check prints no secret, not even inside a server URL', async () => {
    const r = await runCli(['check', '--config', config('nats://127.0.0.1:4222', '127.0.0.1:1', '  token: tok-s3cret-9\n  user: bob\n  password: pw-s3cret-9')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('nats.user: cannot be combined with nats.token');
    expect(r.stderr + r.stdout).not.toMatch(/s3cret/);
    const ok = await runCli(['check', '--config', writeTemp('ok.yaml', 'nats:\n  servers: ["nats://bob:url-s3cret@127.0.0.1:4222"]\n  token: tok-s3cret-9\nsubscriptions: [{ event_type: a.b, delivery: core }]\n')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain('url-s3cret');
    expect(ok.stdout).not.toContain('tok-s3cret-9');
    expect(ok.stdout).toContain('nats://bob:[redacted]@127.0.0.1:4222');
  });
});
