/** The gaussian kernels: equal to SciPy's, 3-D equals 3 x 1-D, and with a halo equal to the whole cube filtered at once. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { nativeStatus, setNativeEnabled } from '../src/native.js';
import { closeConnection, combos, openConnection } from './support/matrix.js';

const read = (dir: string, name: string) => new Float32Array(Uint8Array.from(readFileSync(join(dir, name))).buffer);

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst).toBeLessThan(tolerance);
}

describe('gaussian kernels against SciPy', () => {
  let dir: string;
  beforeAll(() => {
    execFileSync('bash', ['scripts/ensure-debian-packages.sh', 'python3-numpy', 'python3-scipy'], { stdio: 'inherit' });
    dir = mkdtempSync(join(tmpdir(), 'dosna-scipy-'));
    execFileSync('/usr/bin/python3', ['scripts/scipy_gaussian_fixture.py', dir]);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('weights match SciPy: radius floor(4 sigma + 0.5), normalized', () => {
    const w = dn.gaussianWeights(1.5);
    expect(w.length).toBe(13);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(w[6]).toBeCloseTo(0.2659643, 6); // scipy.ndimage._gaussian_kernel1d(1.5, 0, 6)[6]
  });

  it('gaussian_filter and gaussian_filter1d (mode reflect) agree to float32 rounding', () => {
    const x = read(dir, 'input.f32');
    const shape = [11, 17, 9];
    expectClose(dn.gaussianFilter(x, shape, 1.5), read(dir, 'gaussian3d.f32'), 2e-6);
    for (const axis of [0, 1, 2]) expectClose(dn.gaussianFilter1d(x, shape, axis, 1.5), read(dir, `gaussian1d_${axis}.f32`), 2e-6);
    expectClose(dn.gaussianFilter(read(dir, 'small.f32'), [5, 13], 1.5), read(dir, 'small_gaussian.f32'), 2e-6);
  });
});

describe('the native gaussian pass', () => {
  afterAll(() => setNativeEnabled(true));

  it('gives the JavaScript pass\'s results bit for bit: float32 and float64, every axis, borders reflected past one period', () => {
    expect(nativeStatus().loaded).toBe(true);
    let seed = 11;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 200 - 100;
    const shapes = [[64, 64, 64], [3, 1, 40], [1, 5, 300], [7, 2], [2, 9, 1], [13], [1]];
    for (const Ctor of [Float32Array, Float64Array]) {
      for (const shape of shapes) {
        const x = new Ctor(shape.reduce((a, b) => a * b, 1)).map(() => random());
        for (const sigma of [0.7, 1.5, 4]) {
          setNativeEnabled(true);
          const native = dn.gaussianFilter(x, shape, sigma);
          const native1d = shape.map((_, axis) => dn.gaussianFilter1d(x, shape, axis, sigma));
          setNativeEnabled(false);
          const js = dn.gaussianFilter(x, shape, sigma);
          const js1d = shape.map((_, axis) => dn.gaussianFilter1d(x, shape, axis, sigma));
          const label = `${Ctor.name} ${shape} sigma ${sigma}`;
          expect(native).toBeInstanceOf(Ctor);
          expect(Buffer.from(native.buffer).equals(Buffer.from(js.buffer)), label).toBe(true);
          native1d.forEach((a, axis) => expect(Buffer.from(a.buffer).equals(Buffer.from(js1d[axis].buffer)), `${label} axis ${axis}`).toBe(true));
        }
      }
    }
  });
});

describe.each(combos().filter((c) => c.backend === 'ram' || c.backend === 'hdf5'))('chunked gaussian: $label', (combo) => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection(combo); });
  afterAll(async () => { await closeConnection(con); });

  const n = [20, 26, 18];
  const x = Float32Array.from({ length: n[0] * n[1] * n[2] }, (_, i) => Math.sin(i * 0.37) * 3 + ((i * 7919) % 13));

  it('3-D map equals three 1-D maps; with halo 6 both equal the whole cube filtered at once', async () => {
    const ds = await con.createDataset('cube', { data: dn.ndarray(x, n), chunkSize: [8, 10, 7] });
    for (const halo of [0, 6]) {
      const three = await ds.map(dn.gaussianKernels.gaussian3d, `g3-${halo}`, { halo, args: { sigma: 1.5 } });
      let pass: dn.Dataset = ds;
      for (const axis of [0, 1, 2]) pass = await pass.map(dn.gaussianKernels.gaussian1d, `g1-${halo}-${axis}`, { halo, args: { sigma: 1.5, axis } });
      const a = (await three.get()).data as Float32Array;
      const b = (await pass.get()).data as Float32Array;
      expectClose(a, b, 1e-5);
      const whole = dn.gaussianFilter(x, n, 1.5) as Float32Array;
      if (halo === 6) expectClose(a, whole, 1e-5);
      else expect(Math.max(...a.map((v, i) => Math.abs(v - whole[i])))).toBeGreaterThan(1e-3); // chunk borders differ without halo
    }
  });
});
