/**
 * A smoke run of the benchmark (not a timed test: no figure is asserted): every row it runs must complete
 * with every event's follow-up received, and the results file must be written. Keeps `npm run bench` working.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, ROOT, tempDir } from './helpers/index.js';

const exec = promisify(execFile);
afterAll(cleanup);

describe('npm run bench (smoke)', () => {
  it('runs a small core × stream and jetstream × unary row and writes its results', { timeout: 120_000 }, async () => {
    const out = tempDir();
    await exec(
      process.execPath,
      [join(ROOT, 'dist/bench/run.js'), '--quick', '--only', 'core-stream,jetstream-unary', '--no-relay', '--no-ceilings', '--events', '500', '--rate-seconds', '1', '--out', out],
      { cwd: ROOT, timeout: 110_000 },
    );
    const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
      rows: { id: string; status: string; saturation: { sent: number; received: number; lost: number; duplicates: number; via: { u: number; s: number } } }[];
    };
    expect(results.rows.map((r) => [r.id, r.status])).toEqual([
      ['core-stream', 'ok'],
      ['jetstream-unary', 'ok'],
    ]);
    for (const row of results.rows) {
      expect(row.saturation).toMatchObject({ sent: 500, received: 500, lost: 0, duplicates: 0 });
    }
    // Each mode really went through its own RPC: HandleStream for stream rows, Handle for unary rows.
    expect(results.rows[0]!.saturation.via).toEqual({ u: 0, s: 500 });
    expect(results.rows[1]!.saturation.via).toEqual({ u: 500, s: 0 });
    expect(readFileSync(join(out, 'latest.svg'), 'utf8')).toContain('<svg');
  });
});
