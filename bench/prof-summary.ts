/**
 * Top self-time functions of V8 CPU profiles (`node --cpu-prof`), e.g. of the sidecar under the bench:
 *
 *   node dist/bench/run.js --only jetstream-unary --cpu-prof /tmp/prof
 *   node dist/bench/prof-summary.js /tmp/prof/*.cpuprofile [--top 30]
 *
 * Self time is summed per function (name + file + line) over the samples; a second table sums it per
 * package / source file, which shows where the time goes at a glance (grpc-js, nats, protobuf, pino, ...).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

function groupOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native / builtin)';
  if (url.startsWith('node:')) return url;
  const s = shortUrl(url);
  if (s.startsWith('@')) return s.split('/').slice(0, 2).join('/');
  if (!s.startsWith('dist/') && !s.startsWith('/')) return s.split('/')[0]!;
  return s;
}

function main(): void {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 30;
  const files = args.filter((a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1));
  if (files.length === 0) {
    process.stderr.write('usage: node dist/bench/prof-summary.js FILE.cpuprofile... [--top N]\n');
    process.exit(2);
  }
  const byFn = new Map<string, number>();
  const byGroup = new Map<string, number>();
  /** Per function: its callers' chains (3 frames up) by self time, to tell who pays for a hot builtin. */
  const callers = new Map<string, Map<string, number>>();
  let total = 0;
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const label = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    for (let i = 0; i < p.samples.length; i++) {
      const n = nodes.get(p.samples[i]!);
      const dt = p.timeDeltas[i] ?? 0;
      if (!n) continue;
      const { functionName, url, lineNumber } = n.callFrame;
      const key = `${functionName || '(anonymous)'}  ${shortUrl(url)}${url ? `:${lineNumber + 1}` : ''}`;
      byFn.set(key, (byFn.get(key) ?? 0) + dt);
      const chain: string[] = [];
      for (let id = parent.get(n.id), k = 0; id !== undefined && k < 3; id = parent.get(id), k++) chain.push(label(nodes.get(id)!));
      const cm = callers.get(key) ?? new Map<string, number>();
      cm.set(chain.join(' ← '), (cm.get(chain.join(' ← ')) ?? 0) + dt);
      callers.set(key, cm);
      const g = groupOf(url, functionName);
      byGroup.set(g, (byGroup.get(g) ?? 0) + dt);
      total += dt;
    }
  }
  const idle = (byFn.get('(idle)  ') ?? 0) / 1000;
  process.stdout.write(`${files.length} profile(s), ${(total / 1e6).toFixed(2)} s sampled, ${(idle / 1000).toFixed(2)} s idle\n\n`);
  const busy = total - (byFn.get('(idle)  ') ?? 0);
  const print = (title: string, m: Map<string, number>, n: number) => {
    process.stdout.write(`${title}\n`);
    for (const [k, v] of [...m.entries()].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, n)) {
      process.stdout.write(`  ${((v / busy) * 100).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}\n`);
    }
    process.stdout.write('\n');
  };
  print(`self time by function (% of non-idle)`, byFn, top);
  print(`self time by package / file`, byGroup, 25);
  process.stdout.write('callers of the top 10 (3 frames up)\n');
  for (const [k] of [...byFn.entries()].filter(([k]) => !k.startsWith('(')).sort((a, b) => b[1] - a[1]).slice(0, 10)) {
    process.stdout.write(`  ${k}\n`);
    for (const [chain, v] of [...(callers.get(k) ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]).slice(0, 2)) {
      process.stdout.write(`      ${(v / 1000).toFixed(0).padStart(6)} ms  ← ${chain}\n`);
    }
  }
}

main();
