/** The printed tables and the SVG plot of a bench run. */
import type { LatencySummary } from './common.js';
import type { BenchResults, CeilingResult, RowResult } from './types.js';

const int = (n: number | undefined | null) => (n === undefined || n === null ? '—' : Math.round(n).toLocaleString('en-US'));
const ms = (us: number | undefined) =>
  us === undefined ? '—' : us >= 100_000 ? `${(us / 1000).toFixed(0)} ms` : us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : us >= 100 ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`;
const x = (r: number | null | undefined) => (r === null || r === undefined ? '—' : `${r.toFixed(2)}×`);
const num = (n: number | null | undefined, d = 3) => (n === null || n === undefined ? '—' : n.toFixed(d));
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

function pcts(l: LatencySummary | undefined): string {
  if (!l || l.count === 0) return '—';
  return `p50 ${ms(l.p50)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  (max ${ms(l.max)}, n=${int(l.count)})`;
}

const CEILING_TITLES: Record<string, string> = {
  grpcUnary: 'gRPC unary Handle, client → bench handler',
  grpcStream: 'gRPC HandleStream messages, client → bench handler',
  jsPublish: 'JetStream async publish (nats.js, PubAck awaited)',
  jsConsume: 'JetStream consume + ack (nats.js, durable pull)',
};
const SHORT_CEILING: Record<string, string> = {
  grpcUnary: 'gRPC unary Handle calls',
  grpcStream: 'gRPC HandleStream messages',
  jsPublish: 'JetStream async publish',
  jsConsume: 'JetStream consume + ack',
};
const CEILING_UNITS: Record<string, string> = { grpcUnary: 'calls/s', grpcStream: 'msgs/s', jsPublish: 'publishes/s', jsConsume: 'msgs/s' };

function ceilingDetail(key: string, c: CeilingResult): string {
  const cpu = c.cpuSeconds ?? {};
  const parts: string[] = [];
  if (key === 'grpcUnary') parts.push(`${c['concurrency'] as number} concurrent`);
  if (key === 'grpcStream') parts.push(`window ${c['window'] as number}`);
  if (key === 'jsPublish') parts.push(`window ${c['window'] as number}`);
  if (key === 'jsConsume') parts.push(`max_messages ${c['maxMessages'] as number}`);
  for (const [name, s] of Object.entries(cpu)) if (s !== null && c.seconds) parts.push(`${name} ${(s / c.seconds).toFixed(2)} cores`);
  if (c.errors) parts.push(`${c.errors} errors: ${c.lastError}`);
  return parts.join(', ');
}

export function printReport(r: BenchResults, out: (line: string) => void): void {
  const { ceilings } = r;
  out('');
  out(`machine: ${r.machine.cpus as number} × ${r.machine.cpuModel as string}, ${r.machine.memoryGb as number} GB, ${r.machine.os as string}; node ${r.machine.node as string}; nats-server ${r.machine.natsServer as string}`);
  const la = r.machine.loadAvgAtStart as number[] | undefined;
  if (la && la[0]! > (r.machine.cpus as number) * 0.5) out(`WARNING: load average ${la.join(' ')} at the start on ${r.machine.cpus as number} CPUs: other processes were busy, figures are contended`);
  out(`options: ${r.options.events as number} events/saturation run, latency at ${r.options.rate as number}/s for ${r.options.rateSeconds as number} s, ${r.options.storage as string} streams, max_in_flight ${r.options.maxInFlight as number}, handler sleep ${r.options.handlerSleepUs as number} µs`);

  const sidecarRows = r.rows.filter((row) => row.kind === 'sidecar');
  for (const row of sidecarRows) printRow(row, r, out);

  out('');
  out('═══ ceilings (same kinds of processes, no sidecar in between) ═══');
  for (const key of ['grpcUnary', 'grpcStream', 'jsPublish', 'jsConsume']) {
    const c = ceilings[key];
    if (!c) continue;
    const title = pad(CEILING_TITLES[key]!, 52);
    if (!c.ok) out(`  ${title} n/a: ${c.reason}`);
    else out(`  ${title} ${lpad(int(c.perSec), 9)} ${pad(CEILING_UNITS[key]!, 11)} (${ceilingDetail(key, c)})`);
  }
  for (const row of r.rows.filter((x) => x.kind === 'relay')) {
    const title = pad(`NATS-only relay in place of sidecar+handler, ${row.delivery}`, 52);
    if (row.status !== 'ok') out(`  ${title} n/a: ${row.reason}`);
    else {
      const s = row.saturation!;
      out(`  ${title} ${lpad(int(s.eventsPerSec), 9)} ${pad('events/s', 11)} (e2e at ${r.options.rate as number}/s p50 ${ms(row.rate?.latencyUs.p50)} p99 ${ms(row.rate?.latencyUs.p99)}; relay ${num(s.cpuUtilisation['relay'], 2)} cores)`);
    }
  }

  out('');
  out('═══ summary ═══');
  const head = `${pad('row', 18)}${lpad('events/s', 10)}  ${pad('vs ceiling', 36)}${lpad('p50@rate', 10)}${lpad('p99@rate', 10)}${lpad('p99.9@rate', 11)}${lpad('added p50', 11)}${lpad('added p99', 11)}${lpad('CPU s/1k', 10)}${lpad('peak RSS', 10)}`;
  out(head);
  out('─'.repeat(head.length));
  for (const row of r.rows) {
    const name = row.kind === 'relay' ? `relay ${row.delivery}` : row.title;
    if (row.status !== 'ok') {
      out(`${pad(name, 18)}${lpad('n/a', 10)}  ${row.reason ?? ''}`);
      continue;
    }
    const s = row.saturation!;
    const rt = row.rate;
    const ratios = row.ratios ?? {};
    const vs = [
      ratios['vsGrpcUnary'] ? `${x(ratios['vsGrpcUnary'])} gRPC` : '',
      ratios['vsGrpcStream'] ? `${x(ratios['vsGrpcStream'])} stream` : '',
      ratios['vsJsPublish'] ? `${x(ratios['vsJsPublish'])} JSpub` : '',
      ratios['vsRelay'] ? `${x(ratios['vsRelay'])} relay` : '',
    ]
      .filter(Boolean)
      .join(' ');
    const self = row.kind === 'relay' ? 'relay' : 'sidecar';
    out(
      `${pad(name, 18)}${lpad(int(s.eventsPerSec), 10)}  ${pad(vs, 36)}${lpad(ms(rt?.latencyUs.p50), 10)}${lpad(ms(rt?.latencyUs.p99), 10)}${lpad(ms(rt?.latencyUs.p999), 11)}${lpad(ms(rt?.addedUs.p50), 11)}${lpad(ms(rt?.addedUs.p99), 11)}${lpad(num(s.cpuSecondsPer1k[self]), 10)}${lpad(row.peakRssMb[self] === null || row.peakRssMb[self] === undefined ? '—' : `${row.peakRssMb[self]} MB`, 10)}`,
    );
  }
}

function printRow(row: RowResult, r: BenchResults, out: (line: string) => void): void {
  const { ceilings } = r;
  out('');
  out(`═══ ${row.title} ═══  (${row.delivery === 'jetstream' ? `JetStream: durable pull consumer on stream EVENTS (${r.options.storage as string})` : 'core NATS: queue-group subscription'}; handler.mode ${row.handlerMode}; follow-ups stored by stream OUT)`);
  if (row.status !== 'ok') {
    out(`  n/a: ${row.reason}`);
    return;
  }
  const s = row.saturation!;
  const rt = row.rate;
  const ratios = row.ratios ?? {};
  const complete = s.lost === 0 ? 'every follow-up received' : `${int(s.lost)} follow-ups missing`;
  out(`  throughput            ${int(s.eventsPerSec)} events/s  (${int(s.sent)} events in ${s.seconds.toFixed(2)} s, published in ${s.publishSeconds.toFixed(2)} s; ${complete}${s.duplicates ? `, ${s.duplicates} duplicates` : ''}${s.publishErrors ? `, ${s.publishErrors} publish errors: ${s.lastPublishError}` : ''})`);
  const vs: string[] = [];
  const c = (k: string) => int(ceilings[k]?.perSec);
  const has = (k: string) => ratios[k] !== undefined && ratios[k] !== null;
  if (has('vsGrpcUnary')) vs.push(`${x(ratios['vsGrpcUnary'])} the gRPC unary ceiling (${c('grpcUnary')}/s)`);
  if (has('vsGrpcStream')) vs.push(`${x(ratios['vsGrpcStream'])} the gRPC stream ceiling (${c('grpcStream')}/s)`);
  if (has('vsJsPublish')) vs.push(`${x(ratios['vsJsPublish'])} JetStream publish (${c('jsPublish')}/s)`);
  if (has('vsJsConsume')) vs.push(`${x(ratios['vsJsConsume'])} JetStream consume+ack (${c('jsConsume')}/s)`);
  if (has('vsRelay')) vs.push(`${x(ratios['vsRelay'])} the NATS-only relay`);
  if (vs.length > 0) out(`  as a ratio            ${vs.join(' · ')}`);
  out(`  latency, saturation   ${pcts(s.latencyUs)}  ← queueing behind the backlog`);
  if (rt) {
    const load = rt.target && s.eventsPerSec ? ` ← ${Math.round((rt.target / s.eventsPerSec) * 100)}% of saturation throughput` : '';
    out(`  latency @ ${rt.target ?? r.options.rate}/s      ${pcts(rt.latencyUs)}${rt.achievedRate && rt.target && rt.achievedRate < rt.target * 0.95 ? ` (only ${rt.achievedRate}/s sent)` : ''}${load}`);
    out(`    handler's own time  ${pcts(rt.handlerUs)}`);
    out(`    added (e2e−handler) ${pcts(rt.addedUs)}`);
  }
  const cpu = s.cpuSecondsPer1k;
  out(`  sidecar CPU           ${num(cpu['sidecar'])} s per 1,000 events at saturation (${num(s.cpuUtilisation['sidecar'], 2)} cores busy)${rt ? `; ${num(rt.cpuSecondsPer1k['sidecar'])} s per 1,000 at ${rt.target}/s (${num(rt.cpuUtilisation['sidecar'], 2)} cores)` : ''}`);
  out(`  other CPU, saturation handler ${num(s.cpuUtilisation['handler'], 2)} · nats-server ${num(s.cpuUtilisation['nats'], 2)} · load ${num(s.cpuUtilisation['load'], 2)} cores  (per 1,000 events: handler ${num(cpu['handler'])} s, nats-server ${num(cpu['nats'])} s)`);
  out(`  peak RSS (VmHWM)      sidecar ${row.peakRssMb['sidecar'] ?? '—'} MB · handler ${row.peakRssMb['handler'] ?? '—'} MB · nats-server ${row.peakRssMb['nats'] ?? '—'} MB${rt?.peakRssMb?.['sidecar'] ? `  (sidecar ${rt.peakRssMb['sidecar']} MB before the saturation burst)` : ''}`);
  if (row.loadAvg) out(`  machine load average  ${row.loadAvg.before} before, ${row.loadAvg.after} after (${r.machine.cpus as number} CPUs; above that, other processes competed)`);
  if (row.reason) out(`  note                  ${row.reason}`);
}

// ------------------------------------------------------------------------------------------------ SVG

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderSvg(r: BenchResults): string {
  const W = 960;
  const parts: string[] = [];
  let y = 0;
  const text = (tx: number, ty: number, s: string, attrs = '') => parts.push(`<text x="${tx}" y="${ty}" ${attrs}>${esc(s)}</text>`);

  // Panel 1: throughput bars.
  interface Bar {
    label: string;
    value: number | undefined;
    color: string;
    note?: string;
    ratio?: string;
  }
  const bars: Bar[] = [];
  for (const row of r.rows.filter((x) => x.kind === 'sidecar')) {
    const rr = row.ratios ?? {};
    const ratioText = [
      rr['vsGrpcUnary'] ? `${x(rr['vsGrpcUnary'])} gRPC unary` : '',
      rr['vsGrpcStream'] ? `${x(rr['vsGrpcStream'])} gRPC stream` : '',
      rr['vsJsPublish'] ? `${x(rr['vsJsPublish'])} JS publish` : '',
      rr['vsRelay'] ? `${x(rr['vsRelay'])} relay` : '',
    ]
      .filter(Boolean)
      .join(', ');
    bars.push({
      label: `sidecar ${row.title}`,
      value: row.status === 'ok' ? row.saturation?.eventsPerSec : undefined,
      color: row.delivery === 'core' ? '#2f6fdf' : '#1b9e77',
      note: row.status === 'ok' ? undefined : `n/a: ${row.reason ?? ''}`,
      ratio: ratioText ? `(${ratioText})` : undefined,
    });
  }
  for (const row of r.rows.filter((x) => x.kind === 'relay')) {
    bars.push({ label: `NATS-only relay, ${row.delivery}`, value: row.status === 'ok' ? row.saturation?.eventsPerSec : undefined, color: '#999999', note: row.status === 'ok' ? undefined : `n/a: ${row.reason ?? ''}` });
  }
  for (const key of ['grpcUnary', 'grpcStream', 'jsPublish', 'jsConsume']) {
    const c = r.ceilings[key];
    if (c) bars.push({ label: `ceiling: ${SHORT_CEILING[key]}`, value: c.ok ? c.perSec : undefined, color: '#e6892e', note: c.ok ? undefined : `n/a: ${c.reason ?? ''}` });
  }
  const max = Math.max(1, ...bars.map((b) => b.value ?? 0));
  const labelW = 290;
  const plotW = W - labelW - 200;
  const barH = 20;
  y = 30;
  text(20, y, `Throughput — events/s (sidecar rows) vs ceilings (ops/s)`, 'font-size="16" font-weight="bold"');
  y += 10;
  const axisTop = y + 8;
  // grid
  const step = niceStep(max);
  for (let v = 0; v <= max; v += step) {
    const gx = labelW + (v / max) * plotW;
    parts.push(`<line x1="${gx.toFixed(1)}" y1="${axisTop}" x2="${gx.toFixed(1)}" y2="${axisTop + bars.length * (barH + 6)}" stroke="#e5e5e5"/>`);
    text(gx, axisTop + bars.length * (barH + 6) + 14, int(v), 'font-size="10" text-anchor="middle" fill="#666"');
  }
  bars.forEach((b, i) => {
    const by = axisTop + i * (barH + 6);
    text(labelW - 8, by + barH - 6, b.label, 'font-size="12" text-anchor="end"');
    if (b.value !== undefined) {
      const w = Math.max(1, (b.value / max) * plotW);
      parts.push(`<rect x="${labelW}" y="${by}" width="${w.toFixed(1)}" height="${barH}" fill="${b.color}"/>`);
      text(labelW + w + 6, by + barH - 6, `${int(b.value)}${b.ratio ? `  ${b.ratio}` : ''}`, 'font-size="12"');
    } else {
      text(labelW + 6, by + barH - 6, (b.note ?? 'n/a').slice(0, 100), 'font-size="11" fill="#b00"');
    }
  });
  y = axisTop + bars.length * (barH + 6) + 40;

  // Panel 2: latency percentiles at the fixed rate, log scale.
  const latRows = r.rows.filter((row) => row.status === 'ok' && row.rate && row.rate.latencyUs.count > 0);
  text(20, y, `End-to-end latency at ${r.options.rate as number} events/s (publish → follow-up received), ms, log scale`, 'font-size="16" font-weight="bold"');
  y += 16;
  const series: [keyof LatencySummary, string, string][] = [
    ['p50', 'p50', '#9ecae1'],
    ['p99', 'p99', '#4292c6'],
    ['p999', 'p99.9', '#08519c'],
  ];
  series.forEach(([, name, color], i) => {
    parts.push(`<rect x="${labelW + i * 90}" y="${y - 10}" width="12" height="12" fill="${color}"/>`);
    text(labelW + i * 90 + 16, y, name, 'font-size="12"');
  });
  parts.push(`<line x1="${labelW + 3 * 90 + 6}" y1="${y - 12}" x2="${labelW + 3 * 90 + 6}" y2="${y + 3}" stroke="#d62728" stroke-width="2"/>`);
  text(labelW + 3 * 90 + 16, y, 'added by the sidecar path, p50 / p99 (e2e − handler time)', 'font-size="12"');
  y += 12;
  const allUs = latRows.flatMap((row) => [row.rate!.latencyUs.p999, row.rate!.latencyUs.max]);
  const lo = 0.01;
  const hi = Math.max(1, ...allUs.map((u) => u / 1000)) * 1.2;
  const lx = (msv: number) => labelW + ((Math.log10(Math.max(lo, msv)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const groupH = 3 * 9 + 16;
  const top = y + 6;
  for (let d = lo; d <= hi; d *= 10) {
    const gx = lx(d);
    parts.push(`<line x1="${gx.toFixed(1)}" y1="${top}" x2="${gx.toFixed(1)}" y2="${top + latRows.length * groupH}" stroke="#e5e5e5"/>`);
    text(gx, top + latRows.length * groupH + 14, d >= 1 ? `${d.toFixed(0)} ms` : `${d} ms`, 'font-size="10" text-anchor="middle" fill="#666"');
  }
  latRows.forEach((row, gi) => {
    const gy = top + gi * groupH;
    text(labelW - 8, gy + 20, row.kind === 'relay' ? `NATS-only relay, ${row.delivery}` : `sidecar ${row.title}`, 'font-size="12" text-anchor="end"');
    series.forEach(([key, , color], si) => {
      const v = (row.rate!.latencyUs[key] as number) / 1000;
      const w = Math.max(1, lx(v) - labelW);
      parts.push(`<rect x="${labelW}" y="${gy + si * 9}" width="${w.toFixed(1)}" height="8" fill="${color}"/>`);
      if (si === 2) text(labelW + w + 4, gy + si * 9 + 8, `${ms(row.rate!.latencyUs.p50)} / ${ms(row.rate!.latencyUs.p99)} / ${ms(row.rate!.latencyUs.p999)}`, 'font-size="10" fill="#333"');
    });
    if (row.kind === 'sidecar') {
      for (const key of ['p50', 'p99'] as const) {
        const ax = lx(row.rate!.addedUs[key] / 1000);
        parts.push(`<line x1="${ax.toFixed(1)}" y1="${gy - 2}" x2="${ax.toFixed(1)}" y2="${gy + 27}" stroke="#d62728" stroke-width="2"/>`);
      }
    }
  });
  y = top + latRows.length * groupH + 36;
  const m = r.machine;
  text(20, y, `${m.cpus as number} × ${m.cpuModel as string}; node ${m.node as string}; nats-server ${m.natsServer as string}; ${r.options.events as number} events × 256 B per saturation run; ${r.options.storage as string} streams; load avg at start ${((m.loadAvgAtStart as number[] | undefined) ?? []).join(' ')}; ${r.generatedAt}`, 'font-size="11" fill="#555"');
  y += 16;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="Helvetica, Arial, sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}

function niceStep(max: number): number {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}
