/**
 * Coalesces the NATS socket writes of one event-loop turn into one write. nats.js writes its outbound
 * buffer after every command, so each follow-up publish, ack and reply of a busy sidecar became its own
 * write(2); the CPU profile of the benchmark put a quarter of the sidecar's time there. Corking the socket
 * until the turn ends sends them together (at most one loop turn later). Applied once per process to the
 * Node transport; if that transport's shape ever changes, this does nothing and says so.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

interface TransportProto {
  send(frame: Uint8Array): void;
  socket?: Socket;
  __stufioCorked?: boolean;
}

let state: 'unpatched' | 'patched' | 'unavailable' = 'unpatched';

export function batchNatsWrites(): 'patched' | 'unavailable' {
  if (state !== 'unpatched') return state;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@nats-io/transport-node/lib/node_transport.js') as { NodeTransport?: { prototype: TransportProto } };
    const proto = mod.NodeTransport?.prototype;
    if (!proto || typeof proto.send !== 'function') {
      state = 'unavailable';
      return state;
    }
    const send = proto.send;
    proto.send = function (this: TransportProto, frame: Uint8Array): void {
      const socket = this.socket;
      if (socket && !this.__stufioCorked && typeof socket.cork === 'function') {
        this.__stufioCorked = true;
        socket.cork();
        setImmediate(() => {
          this.__stufioCorked = false;
          socket.uncork();
        });
      }
      send.call(this, frame);
    };
    state = 'patched';
  } catch {
    state = 'unavailable';
  }
  return state;
}
