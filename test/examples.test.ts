/** The examples are part of the product: run them for real, as a user would. */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

  it('basic.ts on hdf5 makes the folders it is pointed at (the command in its header)', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'dosna-example-'));
    try {
      const directory = join(parent, 'not', 'yet');
      const { stdout } = await run('tsx', ['examples/basic.ts', '--backend', 'hdf5', '--connection-options', `directory=${directory}`], { timeout: 60_000 });
      expect(stdout).toContain('ds[...] == data: equal (1000000 values)');
      expect(readdirSync(join(directory, 'dosna-tutorial'))).toEqual([]); // made, and the dataset deleted at the end
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it.each([
    [['--nonsense'], /basic\.ts: Unknown option '--nonsense'/],
    [['stray'], /basic\.ts: unexpected argument "stray"/],
  ])('basic.ts %j: one line and the usage on stderr, exit code 2, no stack trace', async (argv, message) => {
    const failure = await run('tsx', ['examples/basic.ts', ...argv], { timeout: 60_000 }).catch((e: { code: number; stderr: string }) => e);
    expect(failure).toMatchObject({ code: 2, stderr: expect.stringMatching(message) });
    expect((failure as { stderr: string }).stderr).toContain('usage: basic.ts');
    expect((failure as { stderr: string }).stderr).not.toMatch(/\n\s+at /);
  });

  it('--help prints the usage and exits 0', async () => {
    for (const script of ['examples/basic.ts', 'examples/convolutions.ts']) {
      const { stdout, stderr } = await run('tsx', [script, '--help'], { timeout: 60_000 });
      expect(stdout, script).toMatch(/^usage: /);
      expect(stderr, script).toBe('');
    }
  });
});

describe('convolutions example', () => {
  it.each([
    ['ram', 'cpu', ['--chunk-sizes', '16,24,64']],
    ['ram', 'worker-pool', ['--engine-options', 'threads=2', '--chunk-sizes', '16', '24', '64']],
    ['hdf5', 'cpu', ['--halo', '6', '--chunk-sizes', '16', '24,64']],
  ] as const)('runs on %s x %s and writes timings.h5, a figure per chunk size and the chart', async (backend, engine, extra) => {
    const out = mkdtempSync(join(tmpdir(), 'dosna-conv-'));
    try {
      const { stdout } = await run('tsx', ['examples/convolutions.ts', '--backend', backend, '--engine', engine, ...extra,
        '--data-sizes', '40', '48', '--ntest', '2', '--no-progress', '--out', out], { timeout: 120_000 });
      expect(stdout).toMatch(/warm-up run \(untimed\): N = 40, chunks 16/);
      const difference = Number(/largest difference on the middle slices (\S+)/.exec(stdout)?.[1]);
      expect(difference).toBeLessThan(1e-5);
      // The input once, both outputs for every chunk size that fits the largest cube (64 does not).
      const figures = readdirSync(out).filter((f) => f.endsWith('.png') && f !== 'time-vs-chunk-size.png').sort();
      expect(figures).toEqual(['gaussian1d-48-c16.png', 'gaussian1d-48-c24.png', 'gaussian3d-48-c16.png', 'gaussian3d-48-c24.png', 'input-48.png']);
      for (const png of [...figures, 'time-vs-chunk-size.png']) {
        const bytes = readFileSync(join(out, png));
        expect(bytes.subarray(1, 4).toString(), png).toBe('PNG');
        const [width, height] = [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
        expect(width, png).toBeGreaterThanOrEqual(512); // readable, not 48 x 48 pixels
        expect(height, png).toBeGreaterThanOrEqual(300);
      }
      const h5 = execFileSync('/usr/bin/python3', ['-c', `
import h5py, json, math
f = h5py.File(${JSON.stringify(join(out, 'timings.h5'))})
t = f['timings']
print(json.dumps({'shape': list(t.shape), 'axes': [a.decode() if isinstance(a, bytes) else a for a in t.attrs['axes']],
  'engine': f.attrs['engine'], 'halo': int(f.attrs['halo']), 'sizes': f['data_sizes'][()].tolist(), 'chunks': f['chunk_sizes'][()].tolist(),
  'nan64': bool(math.isnan(t[0, 2, 0, 0])), 'positive': bool((t[1, 0] > 0).all()), 'warmup': int(f.attrs['warmup_runs'])}))
`]).toString();
      expect(JSON.parse(h5)).toEqual({
        shape: [2, 3, 3, 2], axes: ['data_size', 'chunk_size', 'method', 'repeat'], engine, halo: (extra as readonly string[]).includes('--halo') ? 6 : 0,
        sizes: [40, 48], chunks: [16, 24, 64], nan64: true, positive: true, warmup: 1,
      });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('draws a slice figure in viridis, scaled up with square pixels, with a colour bar labelled with the value range', async () => {
    const { sliceFigureSvg, writeSliceFigure } = await import('../examples/lib/outputs.js');
    const values = Float32Array.from({ length: 32 * 40 }, (_, i) => -2 + (i % 40) * 0.25); // -2 .. 7.75 along x
    const svg = sliceFigureSvg(values, 32, 40, { title: 'ramp & co', label: 'mm' });
    expect(svg).toContain('ramp &amp; co');
    expect(svg).toContain('>mm</text>');
    for (const tick of ['-2', '0.4375', '2.875', '5.313', '7.75']) expect(svg, tick).toContain(`>${tick}</text>`);
    expect(svg).toMatch(/<image [^>]*width="520" height="416"/); // 13x: 40 x 32 pixels shown as 520 x 416
    const out = mkdtempSync(join(tmpdir(), 'dosna-figure-'));
    try {
      const file = join(out, 'ramp.png');
      writeSliceFigure(file, values, 32, 40, { title: 'ramp' });
      const { PNG } = await import('pngjs');
      const png = PNG.sync.read(readFileSync(file));
      const pixel = (x: number, y: number) => Array.from(png.data.subarray(4 * (y * png.width + x), 4 * (y * png.width + x) + 3));
      expect(pixel(16 + 3, 44 + 200)).toEqual([68, 1, 84]); // the lowest value: viridis' dark purple
      expect(pixel(16 + 520 - 3, 44 + 200)).toEqual([253, 231, 37]); // the highest: its yellow
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
