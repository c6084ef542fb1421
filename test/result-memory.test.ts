/**
 * The memory of new results (src/result-memory.ts, native/aligned-buffer.c): a result of 4 MiB
 * or more whose rows are a whole number of 64-byte lines comes from the native module's
 * line-aligned buffers, an ordinary ArrayBuffer of its own to the caller; the memory of
 * collected ones goes back even in a loop that never waits for I/O; past the module's cap
 * results are plain memory, and right.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { nativeModule } from '../src/native.js';
import { indexCube } from './support/data.js';
import { hdf5TestFolder } from './support/hdf5-folder.js';

const folder = hdf5TestFolder();
const n = 128;
const cube = indexCube(n);

/** The native module, which these tests are about (npm install builds it). */
function native() {
  const module = nativeModule();
  expect(module, 'the native module is built (npm install builds it)').toBeDefined();
  return module!;
}

/** Whether `got` holds the cube's cells over [i0, i1) x [j0, j1) x [k0, k1). */
function holdsBlock(got: dn.NdArray, [i0, i1]: number[], [j0, j1]: number[], [k0, k1]: number[]): boolean {
  const data = got.data as Float32Array;
  let at = 0;
  for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) for (let k = k0; k < k1; k++) if (data[at++] !== i * 10000 + j * 100 + k) return false;
  return at === data.length;
}

describe.each([
  ['ram', 'cpu'], ['ram', 'worker-pool'], ['hdf5', 'cpu'], ['hdf5', 'worker-pool'],
] as const)('new results (%s, %s)', (backend, engine) => {
  it('of 4 MiB or more in rows of whole lines are line-aligned buffers of their own; others plain memory', async () => {
    const options = { engine, ...(engine === 'worker-pool' ? { engineOptions: { threads: 2 } } : {}) };
    const con = backend === 'ram' ? dn.connection(`result-memory-${engine}`, { backend, ...options }) : folder.connection(`result-memory-${engine}`, options);
    await con.connect();
    try {
      const ds = await con.createDataset('cube', { shape: [n, n, n], dtype: 'float32', chunkSize: [32, 32, 32] });
      await ds.load(cube);
      const made = () => native().lineAlignedStats().made;
      let before = made();
      const whole = await ds.get();
      expect(made() - before, 'the whole cube: 8 MiB in rows of 512 bytes').toBe(1);
      expect(holdsBlock(whole, [0, n], [0, n], [0, n])).toBe(true);
      // An ordinary ArrayBuffer, the result's own: a view of the whole buffer is the result.
      const data = whole.data as Float32Array;
      expect(data.buffer).toBeInstanceOf(ArrayBuffer);
      expect(data.byteOffset).toBe(0);
      expect(data.buffer.byteLength).toBe(n ** 3 * 4);
      expect(new Float32Array(data.buffer)[12345]).toBe(data[12345]);
      // Node refuses external memory in a transfer list (as Buffer.allocUnsafe's); a copy goes.
      expect(() => structuredClone(data, { transfer: [data.buffer] })).toThrow(/transfer/);
      expect(structuredClone(data)[12345]).toBe(data[12345]);

      before = made();
      const block = await ds.get([s(0, 120), s(0, n), s(32, 96)]);
      expect(made() - before, 'a block of 3.9 MiB in rows of 256 bytes').toBe(0);
      expect(holdsBlock(block, [0, 120], [0, n], [32, 96])).toBe(true);
      const misaligned = await ds.get([s(3, 125), s(1, 128), s(7, 104)]);
      expect(made() - before, 'a block of 9.6 MB in rows of 388 bytes').toBe(0);
      expect(holdsBlock(misaligned, [3, 125], [1, 128], [7, 104])).toBe(true);
      const out = new Float32Array(n ** 3);
      await ds.get(undefined, { out });
      expect(made() - before, 'into out').toBe(0);
    } finally {
      await con.disconnect();
    }
  }, 120_000);
});

describe('the memory of line-aligned results', () => {
  /** Runs `body` in a child process with a ram dataset `ds` of the 128^3 index cube in 32^3 chunks. */
  const inChild = (body: string): Record<string, number | boolean> => {
    const url = (file: string) => JSON.stringify(new URL(file, import.meta.url).href);
    const script = `const dn = await import(${url('../src/index.ts')});
      const { nativeModule } = await import(${url('../src/native.ts')});
      const { indexCube } = await import(${url('./support/data.ts')});
      const stats = () => nativeModule().lineAlignedStats();
      const MiB = 2 ** 20;
      const con = dn.connection('child', { backend: 'ram' });
      await con.connect();
      const ds = await con.createDataset('cube', { shape: [128, 128, 128], dtype: 'float32', chunkSize: [32, 32, 32] });
      await ds.load(indexCube(128));
      const right = (r) => { const d = r.data; return d.length === 128 ** 3 && d[0] === 0 && d[d.length - 1] === 127 * 10101 && d[(5 * 128 + 6) * 128 + 7] === 50607; };
      ${body}
      await con.disconnect();`;
    return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim().split('\n').at(-1)!);
  };

  it('goes back in a loop of reads that never waits for I/O: 1.6 GB of results, each line-aligned', () => {
    // Node frees them from its event loop, which such a loop never lets turn unless a read does.
    const result = inChild(`
      const before = stats().made;
      let most = 0;
      let allRight = true;
      for (let i = 0; i < 200; i++) {
        const r = await ds.get();
        allRight &&= right(r);
        most = Math.max(most, stats().outstandingBytes);
      }
      console.log(JSON.stringify({ made: stats().made - before, most: most / MiB, allRight }));`);
    expect(result.allRight).toBe(true);
    expect(result.made, 'every result line-aligned: the module\'s cap (512 MiB) never reached').toBe(200);
    expect(result.most).toBeLessThan(256);
  }, 120_000);

  it('is capped: results kept past 512 MiB are plain memory, and right; once let go, line-aligned again', () => {
    const result = inChild(`
      const before = stats().made;
      let kept = [];
      for (let i = 0; i < 70; i++) kept.push(await ds.get());
      const madeKept = stats().made - before;
      const keptRight = kept.every(right);
      const plain = kept.filter((r) => r.data.buffer.byteLength === 128 ** 3 * 4).length;
      kept = undefined;
      const again = stats().made;
      let lastRight = true;
      for (let i = 0; i < 100; i++) lastRight &&= right(await ds.get());
      console.log(JSON.stringify({ madeKept, keptRight, plain, madeAgain: stats().made - again, lastRight }));`);
    expect(result.madeKept, '64 results of 8 MiB fill the cap').toBe(64);
    expect(result.keptRight).toBe(true);
    expect(result.plain, 'every result a buffer of its own, aligned or not').toBe(70);
    expect(result.lastRight).toBe(true);
    expect(result.madeAgain, 'collected results make room for new ones').toBeGreaterThan(50);
  }, 120_000);

  it('refuses a byte count that is not a positive whole number', () => {
    for (const bad of [0, -1, 'x', undefined]) expect(() => native().lineAlignedBuffer(bad as number), String(bad)).toThrow(RangeError);
    const buffer = native().lineAlignedBuffer(100);
    expect(buffer).toBeInstanceOf(ArrayBuffer);
    expect(buffer!.byteLength).toBe(100);
  });
});
