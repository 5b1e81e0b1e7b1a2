/**
 * /metrics, /healthz and /readyz. Liveness says the process works (not failed); readiness says events
 * flow: NATS connected, handler serving, subscriptions running. No payload data is ever exposed here.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Probe {
  live(): boolean;
  /** Reasons why the sidecar is not ready; empty = ready. */
  notReady(): string[];
}

export class HttpServer {
  readonly #server: Server;

  constructor(registry: Registry, probe: Probe) {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      switch (path) {
        case '/metrics':
          registry.metrics().then(
            (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
            () => res.writeHead(500).end(),
          );
          return;
        case '/healthz': {
          const live = probe.live();
          res.writeHead(live ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: live ? 'ok' : 'failed' }));
          return;
        }
        case '/readyz': {
          const reasons = probe.notReady();
          res
            .writeHead(reasons.length === 0 ? 200 : 503, { 'content-type': 'application/json' })
            .end(JSON.stringify(reasons.length === 0 ? { status: 'ready' } : { status: 'not_ready', reasons }));
          return;
        }
        default:
          res.writeHead(404).end();
      }
    });
    // A scraper holding a connection open must not delay shutdown.
    this.#server.keepAliveTimeout = 1000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
