/**
 * Reads of 4 MiB or more into a new result: `get` marks the result as memory no cache holds,
 * and the native copy then writes the rows' whole lines with streaming stores
 * (native/strided.c). The cells must be those of the dataset whatever the rows' length and
 * placement: whole cubes (rows placed alike), misaligned blocks (rows at varying offsets within
 * a line), stepped and reversed selections, on ram and on hdf5 (whose reads copy on libuv's
 * threads, right after each file read), with every engine that copies in this process.
 */
import { describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { nativeCopyPlan } from '../src/strided.js';
import { indexCube } from './support/data.js';
import { hdf5TestFolder } from './support/hdf5-folder.js';

const folder = hdf5TestFolder();
const n = 128;
const cube = indexCube(n);

/** The cell (i, j, k) of the index cube. */
const cell = (i: number, j: number, k: number) => i * 10000 + j * 100 + k;

/** Checks `got` against the cube's cells at the given indices of each axis. */
function expectCells(got: dn.NdArray, axes: readonly number[][], what: string): void {
  expect(got.shape, what).toEqual(axes.map((a) => a.length));
  const data = got.data as Float32Array;
  let at = 0;
  let wrong = 0;
  for (const i of axes[0]) for (const j of axes[1]) for (const k of axes[2]) if (data[at++] !== cell(i, j, k)) wrong++;
  expect(wrong, `${what}: cells not as stored`).toBe(0);
}

const range = (start: number, stop: number, step = 1) => {
  const out: number[] = [];
  for (let v = start; step > 0 ? v < stop : v > stop; v += step) out.push(v);
  return out;
};

describe.each([
  ['ram', 'cpu'], ['ram', 'worker-pool'], ['hdf5', 'cpu'], ['hdf5', 'worker-pool'],
] as const)('reads of 4 MiB or more into a new result (%s, %s)', (backend, engine) => {
  it.each([[64], [32], [40], [128]])('give the stored cells in chunks of %i', async (C) => {
    const options = { engine, ...(engine === 'worker-pool' ? { engineOptions: { threads: 2 } } : {}) };
    const con = backend === 'ram' ? dn.connection(`large-reads-${C}-${engine}`, { backend, ...options }) : folder.connection(`large-reads-${C}-${engine}`, options);
    await con.connect();
    try {
      const ds = await con.createDataset('cube', { shape: [n, n, n], dtype: 'float32', chunkSize: [C, C, C] });
      await ds.load(cube);
      expectCells(await ds.get(), [range(0, n), range(0, n), range(0, n)], 'the whole cube');
      // 9.6 MB, rows of 97-..-4*C bytes starting anywhere within a line.
      expectCells(await ds.get([s(3, 125), s(1, 128), s(7, 104)]), [range(3, 125), range(1, 128), range(7, 104)], 'a misaligned block');
      // 4.2 MB, the last axis reversed (no contiguous rows) and the first stepped.
      expectCells(await ds.get([s(0, n, 2), s(0, 120), s(null, null, -1)]), [range(0, n, 2), range(0, 120), range(n - 1, -1, -1)], 'a stepped, reversed block');
      // The same whole cube into a reused array (not marked: ordinary stores below 32 MiB).
      const out = new Float32Array(n ** 3);
      expectCells(await ds.get(undefined, { out }), [range(0, n), range(0, n), range(0, n)], 'the whole cube into out');
    } finally {
      await con.disconnect();
    }
  }, 120_000);
});

describe('which destinations the native copy may stream into', () => {
  /** The flags element of the native copy's plan for copying a 64 KiB block into `dst` (last in the plan). */
  const flagsFor = (dst: Float32Array) => {
    const plan = nativeCopyPlan({ data: dst, offset: 0, shape: [64, 256], strides: [256, 1] }, { data: new Float32Array(64 * 256), offset: 0, shape: [64, 256], strides: [256, 1] });
    expect(plan, 'the native module is built (npm install builds it)').toBeDefined();
    return plan![plan!.length - 1];
  };

  it('marks a new get result, and forgets it once the result is passed back as out', async () => {
    const con = dn.connection('large-reads-marks', { backend: 'ram' });
    await con.connect();
    try {
      const ds = await con.createDataset('cube', { shape: [n, n, n], dtype: 'float32', chunkSize: [64, 64, 64] });
      await ds.load(cube);
      const result = (await ds.get()).data as Float32Array;
      expect(flagsFor(result), 'a new result').toBe(1);
      expect(flagsFor(new Float32Array(n ** 3)), 'an array of the caller').toBe(0);
      expectCells(await ds.get(undefined, { out: result }), [range(0, n), range(0, n), range(0, n)], 'the cube into the earlier result');
      expect(flagsFor(result), 'the earlier result, passed back as out').toBe(0);
    } finally {
      await con.disconnect();
    }
  });
});
