/**
 * Diagnostic only, never loaded by default: preloaded into the sidecar process (`node --import`) by
 * `run.js --experiment LIST` to test, without touching src/, what the CPU profiles blame.
 *
 *   nostack  Error.stackTraceLimit = 0: every Error built on the hot path (nats.js, grpc-js) captures a
 *            stack trace; this shows what that costs.
 *
 * (The `cork` experiment — one socket write per event-loop turn — proved itself and is now the product's
 * `nats.batch_writes`, on by default: src/nats-write-batching.ts.)
 *
 * Chosen with STUFIO_BENCH_EXPERIMENTS=nostack.
 */
const wanted = new Set((process.env['STUFIO_BENCH_EXPERIMENTS'] ?? '').split(',').filter(Boolean));

if (wanted.has('nostack')) Error.stackTraceLimit = 0;

export {};
