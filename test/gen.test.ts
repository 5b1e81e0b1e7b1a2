/** The committed stubs must be what `npm run gen` makes from proto/, and `buf lint` must pass. */
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, ROOT, tempDir } from './helpers/index.js';

const exec = promisify(execFile);
afterAll(cleanup);

function copyRepoParts(): string {
  const dir = tempDir();
  for (const p of ['proto', 'buf.yaml', 'buf.gen.yaml', 'src/gen', 'clients/ts/src/gen', 'scripts/gen-check.sh', 'package.json']) {
    cpSync(join(ROOT, p), join(dir, p), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

describe('generated code', () => {
  it('is in sync with proto/ and the proto passes buf lint', async () => {
    const { stderr } = await exec('sh', ['scripts/gen-check.sh'], { cwd: ROOT });
    expect(stderr).toBe('');
  });

  it('the check fails when the proto changed without regenerating', async () => {
    const dir = copyRepoParts();
    const proto = join(dir, 'proto/stufio/events/v1/handler.proto');
    writeFileSync(proto, readFileSync(proto, 'utf8').replace('string error_code = 4;', 'string error_code = 4;\n  string extra_field = 5;'));
    await expect(exec('sh', ['scripts/gen-check.sh'], { cwd: dir })).rejects.toMatchObject({ stderr: expect.stringContaining('out of sync') });
  });
});
