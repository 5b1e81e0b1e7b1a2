import type { LatencySummary } from './common.js';

export interface PhaseResult {
  sent: number;
  received: number;
  lost: number;
  duplicates: number;
  publishErrors: number;
  lastPublishError?: string;
  seconds: number;
  publishSeconds: number;
  eventsPerSec: number;
  latencyUs: LatencySummary;
  handlerUs: LatencySummary;
  addedUs: LatencySummary;
  via: { u: number; s: number };
  /** Per process named in --pids: CPU seconds in the phase, per 1,000 events, and cores busy on average. */
  cpuSeconds: Record<string, number | null>;
  cpuSecondsPer1k: Record<string, number | null>;
  cpuUtilisation: Record<string, number | null>;
  /** VmHWM (peak RSS so far) per process at the end of the phase, MB. */
  peakRssMb: Record<string, number | null>;
  problem?: string;
  target?: number;
  achievedRate?: number;
}

export interface LoadResult {
  ok: boolean;
  reason?: string;
  mode?: string;
  warmup?: { sent: number; received: number; via: { u: number; s: number }; latencyUs: LatencySummary };
  saturation?: PhaseResult;
  rate?: PhaseResult;
}

export interface RowResult {
  id: string;
  title: string;
  /** `sidecar` rows are the product; `relay` rows are the NATS-only stand-in (a ceiling). */
  kind: 'sidecar' | 'relay';
  delivery: 'core' | 'jetstream';
  handlerMode: 'unary' | 'stream';
  status: 'ok' | 'n/a';
  reason?: string;
  saturation?: PhaseResult;
  rate?: PhaseResult;
  /** Peak RSS (VmHWM) in MB of the process under test (sidecar or relay), the handler and nats-server. */
  peakRssMb: Record<string, number | null>;
  ratios?: Record<string, number | null>;
  /** 1-minute load average of the machine before and after the row (others' processes show up here). */
  loadAvg?: { before: number; after: number };
  stderrTail?: string;
}

export interface CeilingResult {
  ok: boolean;
  kind: string;
  reason?: string;
  count?: number;
  seconds?: number;
  perSec?: number;
  errors?: number;
  lastError?: string;
  rttUs?: LatencySummary;
  cpuSeconds?: Record<string, number | null>;
  [k: string]: unknown;
}

export interface BenchResults {
  generatedAt: string;
  options: Record<string, unknown>;
  machine: Record<string, unknown>;
  ceilings: Record<string, CeilingResult>;
  rows: RowResult[];
  durationSeconds: number;
}
