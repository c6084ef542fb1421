/**
 * Reads of many small chunk files in batches (src/chunk-io.ts `readPartsBatched`, the hdf5
 * store's `readChunksInto`): one native call per batch instead of a task per chunk. They must
 * give what the per-chunk path gives, on every engine that reads in this process, with a
 * record per chunk, files h5py wrote read through HDF5, missing chunks as the fill value, and
 * an abort seen between batches.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { AbortError } from '../src/errors.js';
import { indexCube } from './support/data.js';
import { hdf5TestFolder } from './support/hdf5-folder.js';
import { python } from './support/python.js';

const folder = hdf5TestFolder();

/** Counts the store's batched reads (calls of `readChunksInto`) from now on. */
function countBatches(con: dn.Connection): { readonly calls: number } {
  const store = con.store as { readChunksInto: (...args: unknown[]) => Promise<boolean[]> };
  const read = store.readChunksInto.bind(store);
  const counter = { calls: 0 };
  store.readChunksInto = (...args) => {
    counter.calls++;
    return read(...args);
  };
  return counter;
}

describe('hdf5: batched reads of small chunk files', () => {
  it('reads planes, blocks and strided selections as the per-chunk path does, with a record per chunk', async () => {
    const n = 24;
    // No chunk cache: short rows (a line, a 2-D row) would be read whole through it, chunk by chunk.
    const con = await folder.connection('batched', { cacheBytes: 0 }).connect();
    try {
      const ds = await con.createDataset('cube', { data: indexCube(n), chunkSize: [4, 4, 4] });
      // Per-chunk reads (the hdf5 store without its batched read) are the reference.
      const store = con.store as { readsChunksInto?: unknown };
      expect(store.readsChunksInto).toBeTypeOf('function');
      const batches = countBatches(con);
      const selections: (dn.Index | undefined)[] = [
        [7], [s(), 5, 9], [s(3, 21), s(1, 23, 3), s(null, null, -2)], [s(4, 20), s(4, 20), s(4, 20)], undefined, [s(2, 3), s(), s(0, 24, 5)],
      ];
      for (const sel of selections) {
        const before = batches.calls;
        const got = await ds.get(sel);
        const report = ds.lastRun!;
        expect(batches.calls).toBe(before + 1); // these selections' parts fit one batch
        store.readsChunksInto = () => false; // on the instance, over the class's method
        try {
          const reference = await ds.get(sel);
          expect(got.shape).toEqual(reference.shape);
          expect(got.data).toEqual(reference.data);
          expect(report.tasks.length).toBe(ds.lastRun!.tasks.length);
          expect(report.bytesRead).toBe(ds.lastRun!.bytesRead);
          expect(batches.calls).toBe(before + 1); // the reference read chunk by chunk
        } finally {
          delete store.readsChunksInto;
        }
      }
      // A whole read of 1728 chunks: several batches (at most 256 chunks each), every cell in place.
      const small = await con.createDataset('small', { data: indexCube(n), chunkSize: [2, 2, 2] });
      const before = batches.calls;
      const whole = await small.get();
      expect(batches.calls - before).toBe(Math.ceil(1728 / 256));
      expect(whole.data).toEqual(indexCube(n).data);
      expect(small.lastRun!.tasks.map((t) => t.chunk.join(',')).sort()).toEqual(small.chunkSlices().map((c) => c.index.join(',')).sort());
      expect(small.lastRun!.bytesRead).toBe(n ** 3 * 4);
    } finally {
      await con.disconnect();
    }
  });

  it('takes missing chunks as the fill value and a chunk file h5py rewrote through HDF5', async () => {
    const con = await folder.connection('mixed', { cacheBytes: 0 }).connect();
    try {
      const ds = await con.createDataset('d', { shape: [8, 8], dtype: 'float32', chunkSize: [4, 4], fillValue: -1 });
      await ds.set([s(0, 4), s(0, 8)], dn.ndarray(Float32Array.from({ length: 32 }, (_, i) => i), [4, 8]));
      // Chunk (0, 1) rewritten by h5py with HDF5's chunked layout: not dosna's byte template.
      const file = path.join(folder.path, 'mixed', 'd', 'chunk_0_1.h5');
      python(`
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('data', data=np.full((4, 4), 77, dtype=np.float32), chunks=(2, 2))
`, file);
      const batches = countBatches(con);
      const got = (await ds.get([s(), 2])).data as Float32Array;
      expect([...got]).toEqual([2, 10, 18, 26, -1, -1, -1, -1]);
      const row = (await ds.get([1])).data as Float32Array;
      expect([...row]).toEqual([8, 9, 10, 11, 77, 77, 77, 77]);
      expect(batches.calls).toBe(2);
    } finally {
      await con.disconnect();
    }
  });

  it('stops between batches when aborted, and fails naming the file when one cannot be read', async () => {
    const con = await folder.connection('faults').connect();
    try {
      const ds = await con.createDataset('d', { data: indexCube(16), chunkSize: [2, 2, 2] });
      const controller = new AbortController();
      controller.abort(new Error('client gone'));
      await expect(ds.get(undefined, { signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
      // A folder where a chunk file should be: the read fails with the path, not fill values.
      const file = path.join(folder.path, 'faults', 'd', 'chunk_0_0_1.h5');
      fs.rmSync(file);
      fs.mkdirSync(file);
      await expect(ds.get([0])).rejects.toThrow(/EISDIR.*chunk_0_0_1\.h5/);
    } finally {
      await con.disconnect();
    }
  });
});
