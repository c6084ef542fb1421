/**
 * Reads from the ram store in one synchronous pass (src/chunk-ops.ts `readInOnePass`, the
 * store's `readChunkNow`): no task or promise per chunk. They must give what the per-chunk path
 * gives, with a record per chunk, never-written chunks as the fill value, an abort refused
 * before any chunk is read, and compressed datasets still read chunk by chunk (their chunks
 * are decoded).
 */
import { describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { AbortError } from '../src/errors.js';
import { indexCube } from './support/data.js';

interface Counters { now: number; async: number }

/** Counts the store's calls of `readChunkNow` and `readChunk` from now on. */
function countReads(con: dn.Connection): Counters {
  const store = con.store as unknown as {
    readChunkNow: (...args: unknown[]) => Uint8Array | undefined;
    readChunk: (...args: unknown[]) => Promise<Uint8Array | undefined>;
  };
  const now = store.readChunkNow.bind(store);
  const read = store.readChunk.bind(store);
  const counters = { now: 0, async: 0 };
  store.readChunkNow = (...args) => { counters.now++; return now(...args); };
  store.readChunk = (...args) => { counters.async++; return read(...args); };
  return counters;
}

/** The chunks a run recorded, sorted (the per-chunk path records them as they finish). */
function chunksOf(report: dn.RunReport): string[] {
  return report.tasks.map((t) => t.chunk.join(',')).sort();
}

describe('ram: reads in one pass', () => {
  it('reads planes, blocks and stepped selections as the per-chunk path does, with a record per chunk', async () => {
    const n = 20;
    // No chunk cache: every read goes to the store.
    const con = await dn.connect('ram-reads', { backend: 'ram', cacheBytes: 0 });
    try {
      const ds = await con.createDataset('cube', { data: indexCube(n), chunkSize: [4, 4, 4] });
      const counts = countReads(con);
      const store = con.store as { readChunkNow?: unknown };
      const selections: (dn.Index | undefined)[] = [
        [7], [s(), 5, 9], [s(3, 19), s(1, 19, 3), s(null, null, -2)], [s(4, 16), s(4, 16), s(4, 16)], undefined, [s(2, 3), s(), s(0, 20, 9)],
      ];
      for (const sel of selections) {
        const before = { ...counts };
        const got = await ds.get(sel);
        const report = ds.lastRun!;
        expect(counts.now - before.now).toBe(report.tasks.length);
        expect(counts.async).toBe(before.async);
        // The per-chunk path (the store without `readChunkNow`) is the reference.
        const own = store.readChunkNow;
        store.readChunkNow = undefined; // on the instance, over the class's method
        try {
          const reference = await ds.get(sel);
          expect(got.shape).toEqual(reference.shape);
          expect(got.data).toEqual(reference.data);
          expect(chunksOf(report)).toEqual(chunksOf(ds.lastRun!));
          expect(report.bytesRead).toBe(ds.lastRun!.bytesRead);
          expect(counts.async).toBeGreaterThan(before.async); // the reference read chunk by chunk
        } finally {
          store.readChunkNow = own;
        }
      }
      // The whole cube: 125 chunks, a record each, every cell in place, every chunk's bytes counted.
      const whole = await ds.get();
      expect(whole.data).toEqual(indexCube(n).data);
      expect(chunksOf(ds.lastRun!)).toEqual(ds.chunkSlices().map((c) => c.index.join(',')).sort());
      expect(ds.lastRun!.bytesRead).toBe(n ** 3 * 4);
    } finally {
      await con.disconnect();
    }
  });

  it('gives never-written chunks the fill value and counts no bytes for them', async () => {
    const con = await dn.connect('ram-reads-fill', { backend: 'ram', cacheBytes: 0 });
    try {
      const ds = await con.createDataset('sparse', { shape: [8, 8], dtype: 'int32', chunkSize: [4, 4], fillValue: -7 });
      await ds.set([s(0, 4), s(0, 4)], dn.ndarray(Int32Array.from({ length: 16 }, (_, i) => i), [4, 4]));
      const counts = countReads(con);
      const got = await ds.get();
      const expected = new Int32Array(64).fill(-7);
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expected[i * 8 + j] = i * 4 + j;
      expect(Array.from(got.data as Int32Array)).toEqual(Array.from(expected));
      expect(ds.lastRun!.tasks).toHaveLength(4);
      expect(ds.lastRun!.bytesRead).toBe(16 * 4); // one chunk stored
      expect(counts.now).toBe(4);
      // Rows 1 and 5 of every other column: the four chunks, each read once.
      const stepped = await ds.get([s(1, 8, 4), s(0, 8, 2)]);
      expect(Array.from(stepped.data as Int32Array)).toEqual([4, 6, -7, -7, -7, -7, -7, -7]);
      expect(counts.now).toBe(8);
      expect(counts.async).toBe(0);
    } finally {
      await con.disconnect();
    }
  });

  it('refuses an aborted read before reading a chunk, and reads compressed chunks chunk by chunk', async () => {
    const con = await dn.connect('ram-reads-abort', { backend: 'ram', cacheBytes: 0 });
    try {
      const ds = await con.createDataset('cube', { data: indexCube(8), chunkSize: [2, 2, 2] });
      const counts = countReads(con);
      const controller = new AbortController();
      controller.abort(new Error('client went away'));
      const out = new Float32Array(8 ** 3).fill(3);
      await expect(ds.get(undefined, { out, signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
      expect(counts.now).toBe(0);
      expect(out.every((v) => v === 3)).toBe(true);
      // Compressed: decoded chunk by chunk through `readChunk`, never `readChunkNow`.
      const packed = await con.createDataset('packed', { data: indexCube(8), chunkSize: [4, 4, 4], compression: 'gzip' });
      const got = await packed.get([s(1, 7), 3]);
      expect(Array.from(got.data as Float32Array)).toEqual(Array.from(indexCube(8).data).filter((_, at) => {
        const i = Math.floor(at / 64);
        const j = Math.floor(at / 8) % 8;
        return i >= 1 && i < 7 && j === 3;
      }));
      expect(counts.now).toBe(0);
      expect(counts.async).toBe(packed.lastRun!.tasks.length);
    } finally {
      await con.disconnect();
    }
  });
});
