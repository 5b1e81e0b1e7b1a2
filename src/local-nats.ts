/**
 * Finding and launching throwaway local nats-server processes, for the CLI's `demo` command and the
 * test suite. It lives in one place so that every caller gets the same guarantees: loopback-only
 * listeners, ports chosen by the server itself (no collisions between parallel tests), private temp
 * dirs, and no process left behind when the Node process ends.
 *
 * Only node builtins: this runs before anything else is known to work.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread } from 'node:worker_threads';
import { compareVersions } from './versions.js';

/** The version scripts/bootstrap.sh installs; named in hints so they match what bootstrap does. */
export const PINNED_NATS_SERVER_VERSION = '2.15.3';

const NATS_MODULE = 'github.com/nats-io/nats-server/v2';
const PORTS_TIMEOUT_MS = 10_000;
const CLUSTER_READY_TIMEOUT_MS = 20_000;
/** How long a server gets to shut down (JetStream flushes its store) before SIGKILL. */
const KILL_GRACE_MS = 5_000;
const STDERR_KEEP = 64 * 1024;
const POLL_MS = 25;

export class NatsServerNotFoundError extends Error {
  override readonly name = 'NatsServerNotFoundError';
  constructor(detail = 'nats-server not found', options?: ErrorOptions) {
    super(
      `${detail}: run \`npm run bootstrap\`, or \`go install ${NATS_MODULE}@v${PINNED_NATS_SERVER_VERSION}\`, ` +
        'or `apt-get install nats-server` (or set STUFIO_NATS_SERVER_BIN)',
      options,
    );
  }
}

/** Debian bookworm's package; older servers lack what the tests rely on. */
export const MIN_NATS_SERVER_VERSION = '2.9.10';

/**
 * Same search order and the same version floor as scripts/bootstrap.sh, so the binary bootstrap
 * vouched for is the one launched, not a stale one earlier on PATH.
 * An explicit STUFIO_NATS_SERVER_BIN is returned even if it does not exist: silently falling back to
 * another binary would hide a misconfiguration, and launching it gives a clear error instead.
 */
export function findNatsServer(): string | undefined {
  const fromEnv = process.env['STUFIO_NATS_SERVER_BIN'];
  if (fromEnv) return fromEnv;
  const home = homedir();
  const candidates = [
    ...(process.env['PATH'] ?? '')
      .split(delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => join(dir, 'nats-server')),
    join(home, '.cache', 'stufio-sidecar', 'bin', 'nats-server'),
    join(home, 'go', 'bin', 'nats-server'),
    // Debian's package puts it here, off a normal user's PATH.
    '/usr/sbin/nats-server',
  ];
  return candidates.find((c) => isExecutableFile(c) && meetsFloor(c));
}

function meetsFloor(bin: string): boolean {
  try {
    return compareVersions(cachedVersion(bin), MIN_NATS_SERVER_VERSION) >= 0;
  } catch {
    return false;
  }
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `nats-server: v2.15.3` → `2.15.3`. Throws if the binary cannot run or says something unexpected. */
export function natsServerVersion(bin: string): string {
  const res = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (res.error) {
    const code = (res.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') {
      throw new NatsServerNotFoundError(`cannot run ${bin} (${code})`, { cause: res.error });
    }
    throw new Error(`running ${bin} --version failed: ${res.error.message}`, { cause: res.error });
  }
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`;
  const match = /v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)/.exec(out);
  if (!match?.[1]) throw new Error(`cannot parse the version printed by ${bin} --version: ${JSON.stringify(out.trim())}`);
  return match[1];
}

// Spawning `--version` on every start adds up across a test suite; a path's version does not change.
const versionCache = new Map<string, string>();
function cachedVersion(bin: string): string {
  let v = versionCache.get(bin);
  if (v === undefined) {
    v = natsServerVersion(bin);
    versionCache.set(bin, v);
  }
  return v;
}

export interface NatsClusterMembership {
  name: string;
  /** Route listener port on 127.0.0.1; must be known up front because peers' routes name it. */
  port: number;
  /** Route URLs of the other members, e.g. `nats://127.0.0.1:6222`. */
  routes: string[];
}

export interface NatsServerOptions {
  /** Default true. */
  jetstream?: boolean;
  /** Client port; default lets the server pick a free one. Pass one only to come back on a known port. */
  port?: number;
  /** JetStream store dir; default a private temp dir. A caller's dir is never deleted. */
  storeDir?: string;
  /** nats-server config file text (auth, TLS, ...). Command-line options still win over it. */
  configText?: string;
  /** Extra command-line arguments, appended last so they win. */
  args?: string[];
  /** Binary to run; default findNatsServer(). */
  bin?: string;
  cluster?: NatsClusterMembership;
  serverName?: string;
  /** HTTP monitoring port; -1 lets the server pick. Off unless set; see `monitorUrl`. */
  monitorPort?: number;
}

export interface NatsServerHandle {
  /** `nats://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Pid of the current process; changes on restart(). */
  readonly pid: number;
  readonly version: string;
  readonly storeDir?: string;
  /** `http://127.0.0.1:PORT` when monitoring is on; may change on restart(). */
  readonly monitorUrl?: string;
  /** SIGTERM, then SIGKILL after 5s; removes the temp dirs. Idempotent; the handle is dead afterwards. */
  stop(): Promise<void>;
  /** Hard kill (default SIGKILL) without cleanup, to simulate a crash; restart() or stop() may follow. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Stops the process if still running and starts it again on the same ports with the same store dir,
   * config and cluster membership. Resolves to this same handle (updated in place), so references
   * held elsewhere, e.g. a cluster's `servers`, stay valid.
   */
  restart(): Promise<NatsServerHandle>;
  /** The last ~64KB the server logged, across restarts. */
  stderr(): string;
}

interface Run {
  child: ChildProcess;
  pid: number;
  exit?: { code: number | null; signal: NodeJS.Signals | null; error?: Error };
  exited: Promise<void>;
  /** Resolves once stdio is drained too: only then is stderr complete for an error message. */
  closed: Promise<void>;
}

interface PortsFile {
  nats?: string[];
  monitoring?: string[];
}

interface Tracked {
  stop(): Promise<void>;
  killNow(): void;
}

/**
 * Kept on globalThis so that two copies of this module in one process (src via tsx in a test, dist
 * via the CLI it drives) share one registry and one set of exit hooks.
 */
interface Registry {
  live: Set<Tracked>;
  hooksInstalled: boolean;
}
const registry = ((globalThis as Record<symbol, unknown>)[Symbol.for('stufio-sidecar.local-nats')] ??= {
  live: new Set<Tracked>(),
  hooksInstalled: false,
} satisfies Registry) as Registry;
const live = registry.live;

class LocalNatsServer implements NatsServerHandle {
  readonly version: string;
  readonly storeDir: string | undefined;
  port = 0;
  monitorUrl: string | undefined;
  private run: Run | undefined;
  private log = '';
  private stopping: Promise<void> | undefined;
  private restarting: Promise<NatsServerHandle> | undefined;
  private readonly portsDir: string;

  constructor(
    private readonly bin: string,
    private readonly opts: NatsServerOptions,
    /** Ours alone to delete: ports dir, config file and, unless the caller gave one, the store. */
    private readonly baseDir: string,
    private readonly configFile: string | undefined,
    version: string,
  ) {
    this.version = version;
    this.portsDir = join(baseDir, 'ports');
    this.storeDir = opts.jetstream === false ? undefined : (opts.storeDir ?? join(baseDir, 'jetstream'));
    live.add(this);
    installExitHooks();
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.run?.pid ?? -1;
  }

  stderr(): string {
    return this.log;
  }

  /** Spawns the process and waits for it to report its ports. */
  async launch(): Promise<void> {
    // A SIGKILLed server leaves its ports file behind; a clean dir makes "any .ports file" unambiguous
    // even when the binary is a wrapper whose pid is not the one in the file name.
    await rm(this.portsDir, { recursive: true, force: true });
    await mkdir(this.portsDir, { recursive: true });

    const args = this.buildArgs();
    const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (chunk: string): void => {
      this.log += chunk;
      if (this.log.length > 2 * STDERR_KEEP) this.log = this.log.slice(-STDERR_KEEP);
    };
    child.stdout?.setEncoding('utf8').on('data', append);
    child.stderr?.setEncoding('utf8').on('data', append);
    // A forgotten server must not keep Node alive: a process that never exits gets SIGKILLed by its
    // test runner, and then no hook runs and the server is orphaned. Unreferenced, Node exits normally
    // and the 'exit' hook kills it. Our own waits all race a timer, which keeps the loop alive for them.
    child.unref();
    (child.stdout as Socket | null)?.unref();
    (child.stderr as Socket | null)?.unref();

    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        run.exit ??= { code, signal };
        resolve();
      });
      // 'exit' never comes when the spawn itself fails. `on`, not `once`: a later 'error' (a failed
      // kill) without a listener would crash the whole process.
      child.on('error', (error) => {
        if (child.pid === undefined) {
          run.exit ??= { code: null, signal: null, error };
          resolve();
        }
      });
    });
    const closed = new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      void exited.then(() => {
        if (child.pid === undefined) resolve();
      });
    });
    const run: Run = { child, pid: child.pid ?? -1, exited, closed };
    this.run = run;

    const deadline = Date.now() + PORTS_TIMEOUT_MS;
    for (;;) {
      if (run.exit) {
        // Give stdio a moment to drain so the error carries the server's own explanation.
        await Promise.race([run.closed, sleep(500)]);
        throw new Error(
          `nats-server exited before it was ready (${describeExit(run.exit)}): ${this.bin} ${args.join(' ')}` +
            `\n--- stderr ---\n${this.log.slice(-4096)}`,
        );
      }
      const ports = await readPortsFile(this.portsDir);
      const client = ports?.nats?.[0];
      if (client) {
        this.port = Number(new URL(client).port);
        this.monitorUrl = ports?.monitoring?.[0]?.replace('//0.0.0.0:', '//127.0.0.1:');
        if (this.opts.monitorPort !== undefined && !this.monitorUrl) {
          // The ports file is written once all listeners are up, so this is a real absence.
          throw new Error(`nats-server reported no monitoring port: ${JSON.stringify(ports)}`);
        }
        // Pin the port so restart() comes back where clients expect it.
        this.opts.port = this.port;
        return;
      }
      if (Date.now() > deadline) {
        await this.terminate('SIGKILL');
        throw new Error(
          `nats-server did not report its client port within ${PORTS_TIMEOUT_MS / 1000}s: ${this.bin} ${args.join(' ')}` +
            `\n--- stderr ---\n${this.log.slice(-4096)}`,
        );
      }
      await Promise.race([run.exited, sleep(POLL_MS)]);
    }
  }

  private buildArgs(): string[] {
    const o = this.opts;
    const args: string[] = [];
    if (this.configFile) args.push('-c', this.configFile);
    // Loopback only: these are test servers, nothing off-box should reach them.
    args.push('-a', '127.0.0.1', '-p', String(o.port ?? -1), '--ports_file_dir', this.portsDir);
    if (this.storeDir !== undefined) args.push('-js', '-sd', this.storeDir);
    if (o.serverName) args.push('--server_name', o.serverName);
    if (o.monitorPort !== undefined) args.push('-m', String(o.monitorPort));
    if (o.cluster) {
      args.push('--cluster', `nats://127.0.0.1:${o.cluster.port}`, '--cluster_name', o.cluster.name);
      if (o.cluster.routes.length > 0) args.push('--routes', o.cluster.routes.join(','));
    }
    args.push(...(o.args ?? []));
    return args;
  }

  /** Signal the current process and wait for it; escalate to SIGKILL if it lingers. */
  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const run = this.run;
    if (!run || run.exit) return;
    run.child.kill(signal);
    if (await settlesWithin(run.exited, KILL_GRACE_MS)) return;
    run.child.kill('SIGKILL');
    if (await settlesWithin(run.exited, KILL_GRACE_MS)) return;
    throw new Error(`nats-server pid ${run.pid} still running ${KILL_GRACE_MS / 1000}s after SIGKILL`);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        // Let an in-flight restart finish first, or it would spawn a process after we "stopped".
        await this.restarting?.catch(() => undefined);
        await this.terminate('SIGTERM');
      } finally {
        live.delete(this);
        await rm(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
      }
    })();
    return this.stopping;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.terminate(signal);
  }

  restart(): Promise<NatsServerHandle> {
    if (this.stopping) return Promise.reject(new Error('restart() after stop(): this nats-server handle is finished'));
    this.restarting ??= (async () => {
      try {
        await this.terminate('SIGTERM');
        this.log += `\n--- restart (stufio local-nats) ---\n`;
        await this.launch();
        return this as NatsServerHandle;
      } finally {
        this.restarting = undefined;
      }
    })();
    return this.restarting;
  }

  /** For the exit hook: no awaiting possible there, so no graceful shutdown either. */
  killNow(): void {
    const run = this.run;
    if (run && !run.exit) {
      try {
        process.kill(run.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    try {
      rmSync(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // Best effort at exit; a leftover temp dir is harmless, a throw here would mask the real exit.
    }
  }
}

function describeExit(exit: NonNullable<Run['exit']>): string {
  if (exit.error) return `spawn failed: ${exit.error.message}`;
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      p.then(() => true),
      sleep(ms, false, { signal: ac.signal }),
    ]);
  } finally {
    ac.abort();
  }
}

async function readPortsFile(dir: string): Promise<PortsFile | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.ports'));
  } catch {
    return undefined;
  }
  for (const name of names) {
    try {
      // The server writes the file non-atomically: a parse error just means "not yet".
      return JSON.parse(await readFile(join(dir, name), 'utf8')) as PortsFile;
    } catch {
      // Retry on the next poll.
    }
  }
  return undefined;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = opts.bin ?? findNatsServer();
  if (!bin) throw new NatsServerNotFoundError();
  const version = cachedVersion(bin);

  const baseDir = await mkdtemp(join(tmpdir(), 'stufio-nats-'));
  let configFile: string | undefined;
  let server: LocalNatsServer | undefined;
  try {
    if (opts.configText !== undefined) {
      configFile = join(baseDir, 'nats-server.conf');
      await writeFile(configFile, opts.configText);
    }
    // Copy: launch() pins the chosen port into these options for restart().
    server = new LocalNatsServer(bin, { ...opts }, baseDir, configFile, version);
    await server.launch();
    return server;
  } catch (err) {
    if (server) await server.stop().catch(() => undefined);
    else await rm(baseDir, { recursive: true, force: true });
    throw err;
  }
}

export interface NatsClusterOptions {
  /** Default true; each member gets its own store dir and server_name. */
  jetstream?: boolean;
  /** Cluster name; default a random one so concurrent clusters can never merge. */
  name?: string;
  bin?: string;
  configText?: string;
  args?: string[];
}

export interface NatsCluster {
  servers: NatsServerHandle[];
  urls: string[];
  stop(): Promise<void>;
}

export async function startNatsCluster(size = 3, opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`cluster size must be a positive integer, got ${size}`);
  const name = opts.name ?? `stufio-${randomBytes(3).toString('hex')}`;
  const jetstream = opts.jetstream ?? true;
  const routePorts = await freePorts(size);
  const routeUrl = (p: number): string => `nats://127.0.0.1:${p}`;

  const started = await Promise.allSettled(
    routePorts.map((port, i) =>
      startNatsServer({
        jetstream,
        bin: opts.bin,
        configText: opts.configText,
        args: opts.args,
        serverName: `${name}-n${i + 1}`,
        monitorPort: -1,
        cluster: { name, port, routes: routePorts.filter((p) => p !== port).map(routeUrl) },
      }),
    ),
  );
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }

  try {
    const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
    // Counting distinct peers, not num_routes: since 2.10 each peer has a pool of route connections,
    // so num_routes can reach size-1 while one peer is still missing.
    await Promise.all(
      servers.map((s) =>
        pollJson(s, '/routez', deadline, (body) => {
          const routes = (body as { routes?: Array<{ remote_id?: string }> }).routes ?? [];
          return new Set(routes.map((r) => r.remote_id)).size >= size - 1;
        }),
      ),
    );
    if (jetstream) {
      // Every member must know the leader, or a client connected to a lagging one gets
      // "JetStream not available" for stream creation.
      await Promise.all(
        servers.map((s) =>
          pollJson(s, '/jsz', deadline, (body) =>
            Boolean((body as { meta_cluster?: { leader?: string } }).meta_cluster?.leader),
          ),
        ),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { servers, urls: servers.map((s) => s.url), stop };
}

async function pollJson(
  server: NatsServerHandle,
  endpoint: string,
  deadline: number,
  ready: (body: unknown) => boolean,
): Promise<void> {
  let last = 'no answer yet';
  for (;;) {
    const base = server.monitorUrl;
    if (!base) throw new Error(`nats-server ${server.url} has no monitoring endpoint`);
    try {
      const body = await getJson(`${base}${endpoint}`, 2_000);
      if (ready(body)) return;
      last = JSON.stringify(body).slice(0, 500);
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `nats cluster not ready: ${server.url} ${endpoint} never satisfied the check within ` +
          `${CLUSTER_READY_TIMEOUT_MS / 1000}s; last: ${last}\n--- stderr ---\n${server.stderr().slice(-4096)}`,
      );
    }
    await sleep(100);
  }
}

function getJson(url: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // No keep-alive agent: a pooled socket to a server we are about to stop is only trouble.
    const req = httpGet(url, { agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
  });
}

/**
 * Route ports have to be named before any member starts, so the server cannot pick them. Holding all
 * listeners open until every port is known keeps the picks distinct; the window between closing and
 * the server binding is the unavoidable race.
 */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function stopAllNatsServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}

function killAllNow(): void {
  for (const s of live) s.killNow();
  live.clear();
}

function installExitHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  // Covers normal exit, process.exit() and uncaught exceptions; no await is possible here.
  process.on('exit', killAllNow);
  // Signals never reach worker threads, and a signal death skips 'exit' hooks.
  if (!isMainThread) return;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // Someone else owns shutdown (the CLI, a test runner): they will exit and the 'exit' hook cleans
      // up; killing the servers now would break their graceful drain.
      if (process.listenerCount(sig) > 1) return;
      // We were the only listener, and merely having one cancels Node's default die-on-signal:
      // clean up, then restore that default and re-raise.
      killAllNow();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
