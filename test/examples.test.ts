/** The examples are part of the product: run them for real, as a user would. */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('convolutions example', () => {
  it.each([['ram', 'cpu', []], ['ram', 'worker-pool', ['--engine-options', 'threads=2']], ['hdf5', 'cpu', ['--halo', '6']]] as const)(
    'runs on %s x %s and writes timings.h5, slice images and the chart', async (backend, engine, extra) => {
      const out = mkdtempSync(join(tmpdir(), 'dosna-conv-'));
      const { stdout } = await run('tsx', ['examples/convolutions.ts', '--backend', backend, '--engine', engine, ...extra,
        '--data-sizes', '40,48', '--chunk-sizes', '16,24,64', '--ntest', '2', '--no-progress', '--out', out], { timeout: 120_000 });
      const difference = Number(/largest difference on the middle slices (\S+)/.exec(stdout)?.[1]);
      expect(difference).toBeLessThan(1e-5);
      for (const png of ['input-48.png', 'gaussian3d-48-c24.png', 'gaussian1d-48-c24.png', 'time-vs-chunk-size.png']) {
        const bytes = readFileSync(join(out, png));
        expect(bytes.subarray(1, 4).toString(), png).toBe('PNG');
        if (png !== 'time-vs-chunk-size.png') expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)], png).toEqual([48, 48]);
      }
      const h5 = execFileSync('/usr/bin/python3', ['-c', `
import h5py, json, math
f = h5py.File(${JSON.stringify(join(out, 'timings.h5'))})
t = f['timings']
print(json.dumps({'shape': list(t.shape), 'axes': [a.decode() if isinstance(a, bytes) else a for a in t.attrs['axes']],
  'engine': f.attrs['engine'], 'halo': int(f.attrs['halo']), 'sizes': f['data_sizes'][()].tolist(), 'chunks': f['chunk_sizes'][()].tolist(),
  'nan64': bool(math.isnan(t[0, 2, 0, 0])), 'positive': bool((t[1, 0] > 0).all())}))
`]).toString();
      expect(JSON.parse(h5)).toEqual({
        shape: [2, 3, 3, 2], axes: ['data_size', 'chunk_size', 'method', 'repeat'], engine, halo: (extra as readonly string[]).includes('--halo') ? 6 : 0,
        sizes: [40, 48], chunks: [16, 24, 64], nan64: true, positive: true,
      });
    });
});
