/**
 * Diagnostic only, never loaded by default: preloaded into the sidecar process (`node --import`) by
 * `run.js --experiment LIST` to test, without touching src/, what the CPU profiles blame.
 *
 *   cork     coalesce the NATS socket writes of one event-loop turn into one write: nats.js flushes its
 *            outbound buffer from a microtask after every command, so each publish and each ack of the
 *            sidecar becomes its own write(2)
 *   nostack  Error.stackTraceLimit = 0: nats.js builds a RequestError and a TimeoutError (stack captured)
 *            for every request, so for every JetStream publish of a follow-up
 *
 * Chosen with STUFIO_BENCH_EXPERIMENTS=cork,nostack.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

const wanted = new Set((process.env['STUFIO_BENCH_EXPERIMENTS'] ?? '').split(',').filter(Boolean));

if (wanted.has('nostack')) Error.stackTraceLimit = 0;

if (wanted.has('cork')) {
  const require = createRequire(import.meta.url);
  // The sidecar's ESM import of @nats-io/transport-node loads this same CommonJS module instance.
  const mod = require('@nats-io/transport-node/lib/node_transport.js') as {
    NodeTransport: { prototype: { send(frame: Uint8Array): void; socket?: Socket; __corked?: boolean } };
  };
  const proto = mod.NodeTransport.prototype;
  const send = proto.send;
  proto.send = function (this: typeof proto, frame: Uint8Array): void {
    const socket = this.socket;
    if (socket && !this.__corked) {
      this.__corked = true;
      socket.cork();
      setImmediate(() => {
        this.__corked = false;
        socket.uncork();
      });
    }
    send.call(this, frame);
  };
}
