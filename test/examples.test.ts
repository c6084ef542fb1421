/** The examples are part of the product: run them for real, as a user would. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('examples', () => {
  it('basic.ts runs the DosNa tutorial on the default backend and checks its data', async () => {
    const { stdout } = await run('tsx', ['examples/basic.ts', '--connection', `example-${process.pid}`], { timeout: 60_000 });
    expect(stdout).toMatch(/Dataset\("data", shape=\(100, 100, 100\), dtype=float64, chunkSize=\(32, 32, 32\)\): 64 chunks/);
    expect(stdout).toMatch(/ds\[0, 0, :10\] = (-?\d+\.\d{8} ){9}-?\d+\.\d{8}/);
    expect(stdout).toContain('ds[...] == data: equal (1000000 values)');
    expect(stdout).toContain('ds[36:80, 89:, :56] after set: equal (27104 values)');
  });

  it('basic.ts rejects unknown flags with a message', async () => {
    await expect(run('tsx', ['examples/basic.ts', '--nonsense'], { timeout: 60_000 })).rejects.toMatchObject({ stderr: expect.stringMatching(/nonsense/) });
  });
});
