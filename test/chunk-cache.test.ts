/**
 * The chunk cache's own rules, read off its counters (`con.cacheStats`): a chunk written
 * whole through many partial sets is stored once and never read, a chunk written in part is
 * read once (at its commit; on ram, where a read is a copy, at the first set into it), reads
 * complete a buffered chunk from the store once, the cache stays within its size, chunks
 * bigger than the cache are written through, and disconnect flushes.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { EntryKeys } from '../src/chunk-cache/entry.js';
import type { Index } from '../src/slicing.js';
import type { DatasetMeta } from '../src/store.js';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

const backends = ['ram', 'hdf5'] as const;

async function open(backend: string, options: Record<string, unknown> = {}): Promise<dn.Connection> {
  const extra: Record<string, unknown> = {};
  if (backend === 'hdf5') {
    const dir = mkdtempSync(join(tmpdir(), 'dosna-cache-test-'));
    dirs.push(dir);
    Object.assign(extra, { directory: dir, create: true });
  }
  return dn.connect(`cache-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`, { backend, ...extra, ...options });
}

/** What the store holds of `index` of dataset `name`, read through a second connection without a cache. */
async function storedCells(con: dn.Connection, name: string, index: Index): Promise<number[]> {
  const other = await dn.connect(con.name, { ...con.settings.options, backend: con.backend, cacheBytes: 0 });
  try {
    return Array.from((await (await other.getDataset(name)).get(index)).data as ArrayLike<number>);
  } finally {
    await other.disconnect();
  }
}

describe.each(backends)('chunk cache on %s', (backend) => {
  it('plane by plane: every chunk is committed once, whole, without a single read', async () => {
    const con = await open(backend);
    try {
      const ds = await con.createDataset('planes', { shape: [16, 12, 12], dtype: 'uint16', chunkSize: [8, 6, 6] });
      const plane = dn.ndarray(Uint16Array.from({ length: 144 }, (_, i) => i), [12, 12]);
      for (let z = 0; z < 7; z++) await ds.set([z], plane);
      expect(con.cacheStats).toMatchObject({ commits: 0, bytesRead: 0 });
      for (let z = 7; z < 16; z++) await ds.set([z], plane);
      await ds.flush();
      expect(con.cacheStats).toMatchObject({ commits: 8, blindCommits: 8, bytesRead: 0, loads: 0 });
      const back = await ds.get([s(3, 5)]);
      expect(Array.from(back.data as Uint16Array)).toEqual([...plane.data, ...plane.data]);
    } finally {
      await con.disconnect();
    }
  });

  it('a chunk whose every cell is written is committed without waiting for the flush, and leaves the cache', async () => {
    const con = await open(backend);
    try {
      const ds = await con.createDataset('behind', { shape: [16, 12, 12], dtype: 'uint16', chunkSize: [8, 6, 6] });
      const plane = (z: number) => dn.ndarray(Uint16Array.from({ length: 144 }, (_, i) => z * 1000 + i), [12, 12]);
      for (let z = 0; z < 8; z++) await ds.set([z], plane(z));
      // The first layer of 4 chunks is complete: its commits are under way, no flush called.
      const deadline = Date.now() + 10_000;
      while (con.cacheStats!.writeBehinds < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(con.cacheStats).toMatchObject({ commits: 4, blindCommits: 4, writeBehinds: 4, writeBehindFailures: 0, bytesRead: 0 });
      // Gone from the cache: read back from the store, not served from the cache.
      expect(Array.from((await ds.get([s(0, 8), 0, 0])).data as Uint16Array)).toEqual(Array.from({ length: 8 }, (_, z) => z * 1000));
      expect(con.cacheStats!.hits).toBe(0);
      expect(await storedCells(con, 'behind', [s(0, 8), 11, 11])).toEqual(Array.from({ length: 8 }, (_, z) => z * 1000 + 143));
      await ds.set([8], plane(8));
      expect(con.cacheStats!.commits).toBe(4); // the second layer is not complete yet
    } finally {
      await con.disconnect();
    }
  });

  it('write-behind commits are at most 8 at a time: a set that completes more chunks waits for room', async () => {
    const con = await open(backend);
    try {
      // A store whose chunk writes take 20 ms each (a slow disk), so that commits pile up,
      // counted as they run.
      const store = con.store;
      const writeChunk = store.writeChunk.bind(store);
      let running = 0;
      let most = 0;
      store.writeChunk = async (...args) => {
        most = Math.max(most, ++running);
        try {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return await writeChunk(...args);
        } finally {
          running--;
        }
      };
      // One layer of 24 chunks of 4 x 4 x 4 along the last axis: each plane is a quarter of
      // every chunk (buffered, not written through), and the fourth plane completes all 24.
      const ds = await con.createDataset('cap', { shape: [4, 4, 96], dtype: 'int32', chunkSize: [4, 4, 4] });
      const plane = (z: number) => dn.ndarray(Int32Array.from({ length: 4 * 96 }, (_, i) => z * 10_000 + i), [4, 96]);
      for (let z = 0; z < 4; z++) await ds.set([z], plane(z));
      expect(most).toBe(8);
      await ds.flush();
      expect(running).toBe(0);
      expect(con.cacheStats).toMatchObject({ commits: 24, blindCommits: 24, writeBehinds: 24, writeBehindFailures: 0, bytesRead: 0 });
      expect(await storedCells(con, 'cap', [s(), 3])).toEqual(Array.from({ length: 4 * 96 }, (_, i) => Math.floor(i / 96) * 10_000 + 3 * 96 + (i % 96)));
    } finally {
      await con.disconnect();
    }
  });

  it('a set into a chunk whose write-behind commit is under way waits for it, and is committed after it', async () => {
    const con = await open(backend);
    try {
      const ds = await con.createDataset('refill', { shape: [8, 64, 64], dtype: 'float32', chunkSize: [8, 64, 64] }); // one chunk
      for (let round = 1; round <= 6; round++) {
        for (let z = 0; z < 8; z++) await ds.set([z], round * 100 + z);
        // The last plane started the chunk's commit; a second set into it follows at once, and
        // another plane right after it (both through the cache, after the commit).
        await ds.set([3, s(0, 2)], -round);
        await ds.set([5], round * 1000);
        await ds.flush();
        const expected = Array.from({ length: 8 }, (_, z) => (z === 3 ? -round : z === 5 ? round * 1000 : round * 100 + z));
        expect(await storedCells(con, 'refill', [s(0, 8), 0, 1]), `round ${round}`).toEqual(expected);
      }
      expect(con.cacheStats!.writeBehinds).toBeGreaterThanOrEqual(6);
    } finally {
      await con.disconnect();
    }
  });

  it('a chunk written in part is read once when committed, and the rest of it is kept', async () => {
    const con = await open(backend);
    try {
      const ds = await con.createDataset('part', { shape: [4, 4], dtype: 'float32', chunkSize: [4, 4] });
      await ds.set(undefined, 1);
      for (let x = 0; x < 4; x++) await ds.set([0, x], 10 + x);
      await ds.flush();
      expect(con.cacheStats).toMatchObject({ commits: 1, blindCommits: 0, bytesRead: 64 });
      expect(Array.from((await ds.get([s(0, 2)])).data as Float32Array)).toEqual([10, 11, 12, 13, 1, 1, 1, 1]);
    } finally {
      await con.disconnect();
    }
  });

  it('a read of a partly written chunk completes it from the store once; later reads and the commit need no read', async () => {
    const con = await open(backend);
    try {
      const ds = await con.createDataset('complete', { shape: [4, 4], dtype: 'int32', chunkSize: [4, 4] });
      await ds.set(undefined, 1);
      await ds.set([1, 1], 5);
      expect(Array.from((await ds.get([1])).data as Int32Array)).toEqual([1, 5, 1, 1]);
      expect(Array.from((await ds.get([1])).data as Int32Array)).toEqual([1, 5, 1, 1]);
      await ds.flush();
      expect(con.cacheStats).toMatchObject({ loads: 1, commits: 1, bytesRead: 64 });
    } finally {
      await con.disconnect();
    }
  });

  it('stays within its size: evicted chunks are committed, and nothing is lost', async () => {
    const chunkBytes = 8 * 8 * 8;
    const con = await open(backend, { cacheBytes: 3 * (chunkBytes + 64) }); // three chunks and their masks
    try {
      const ds = await con.createDataset('small', { shape: [8, 64], dtype: 'float64', chunkSize: [8, 8] });
      for (let row = 0; row < 8; row++) for (let col = 0; col < 64; col += 3) await ds.set([row, col], row * 100 + col);
      expect(con.cacheStats!.evictions).toBeGreaterThan(0);
      const data = (await ds.get()).data as Float64Array;
      for (let row = 0; row < 8; row++) for (let col = 0; col < 64; col++) {
        expect(data[row * 64 + col]).toBe(col % 3 === 0 ? row * 100 + col : 0);
      }
    } finally {
      await con.disconnect();
    }
  });

  it('a set into a chunk whose commit is under way waits for it, and is committed after it: nothing is lost', async () => {
    const con = await open(backend);
    try {
      const ds = await con.createDataset('busy', { shape: [8, 64, 64], dtype: 'float32', chunkSize: [8, 64, 64] }); // one chunk
      const expected = new Float32Array(8);
      for (let round = 1; round <= 12; round++) {
        await ds.set([0], round);
        expected[0] = round;
        const flushing = ds.flush();
        // Planes of the same chunk at successive turns of the event loop, while the commit
        // (a read of the chunk, the overlay, a write) is under way.
        const writes: Promise<unknown>[] = [];
        for (let z = 1; z < 8; z++) {
          await new Promise((resolve) => setImmediate(resolve));
          writes.push(ds.set([z], round * 10 + z));
          expected[z] = round * 10 + z;
        }
        await Promise.all([flushing, ...writes]);
        await ds.flush();
        expect(await storedCells(con, 'busy', [s(0, 8), 63, 63]), `round ${round}`).toEqual(Array.from(expected));
      }
    } finally {
      await con.disconnect();
    }
  });

  it('chunks bigger than the cache are written straight through', async () => {
    const con = await open(backend, { cacheBytes: 1000 });
    try {
      const ds = await con.createDataset('big', { shape: [64, 64], dtype: 'float32', chunkSize: [64, 64] }); // 16 KiB chunks
      await ds.set([3, s(0, 10)], 2);
      expect(con.cacheStats).toMatchObject({ commits: 0, hits: 0 });
      const other = await dn.connect(con.name, { ...con.settings.options, backend: con.backend });
      try {
        expect(Array.from((await (await other.getDataset('big')).get([3, s(8, 12)])).data as Float32Array)).toEqual([2, 2, 0, 0]);
      } finally {
        await other.disconnect();
      }
    } finally {
      await con.disconnect();
    }
  });
});

describe('chunk cache keys', () => {
  it('one key per chunk of one dataset incarnation, whichever metadata object names it', () => {
    const keys = new EntryKeys();
    const meta = { name: 'a', uid: 'u1', shape: [100, 100], chunkSize: [10, 10], dtype: 'float32', fillValue: 0 } as DatasetMeta;
    const again = { ...meta };
    const resized = { ...meta, shape: [200, 100] };
    const recreated = { ...meta, uid: 'u2' };
    const other = { ...meta, name: 'b' };
    expect(keys.of(again, [1, 23])).toBe(keys.of(meta, [1, 23]));
    expect(keys.of(resized, [1, 23])).toBe(keys.of(meta, [1, 23]));
    const distinct = [keys.of(meta, [1, 23]), keys.of(meta, [12, 3]), keys.of(meta, [1, 2]), keys.of(recreated, [1, 23]), keys.of(other, [1, 23]), keys.of(meta, [])];
    expect(new Set(distinct).size).toBe(distinct.length);
    // Another dataset's number is never one an earlier incarnation had.
    expect(keys.of({ ...meta, uid: 'u3' }, [1, 23])).not.toBe(keys.of(meta, [1, 23]));
    expect(keys.of(recreated, [1, 23])).toBe(distinct[3]);
  });
});

describe('chunk cache: options and failures', () => {
  it('an aborted read of chunks the cache holds is refused, as one it has to fetch', async () => {
    const con = await open('hdf5');
    try {
      const ds = await con.createDataset('lines', { shape: [16, 8, 8], dtype: 'float32', chunkSize: [4, 4, 4] });
      await ds.load(dn.ndarray(Float32Array.from({ length: 16 * 64 }, (_, i) => i), [16, 8, 8]));
      const line: Index = [s(), 5, 7];
      const first = await ds.get(line); // short rows: the chunks are kept
      const hits = con.cacheStats!.hits;
      expect(Array.from((await ds.get(line)).data as Float32Array)).toEqual(Array.from(first.data as Float32Array));
      expect(con.cacheStats!.hits).toBe(hits + 4); // served from the cache
      const controller = new AbortController();
      controller.abort(new Error('client went away'));
      await expect(ds.get(line, { signal: controller.signal })).rejects.toBeInstanceOf(dn.AbortError);
    } finally {
      await con.disconnect();
    }
  });

  it('a write-behind commit that fails is not lost: the chunk stays dirty and the flush throws', async () => {
    const con = await open('hdf5');
    try {
      const ds = await con.createDataset('gone', { shape: [8, 6, 6], dtype: 'uint16', chunkSize: [8, 6, 6] });
      const plane = dn.ndarray(new Uint16Array(36).fill(7), [6, 6]);
      for (let z = 0; z < 7; z++) await ds.set([z], plane);
      // The chunk's file cannot be written (here a folder in its place): the last plane
      // completes the chunk, whose commit then fails.
      const chunkFile = join(con.settings.options.directory as string, con.name, 'gone', 'chunk_0_0_0.h5');
      mkdirSync(join(chunkFile, 'in-the-way'), { recursive: true });
      await ds.set([7], plane);
      // The write-behind fails in the background, before any flush.
      const deadline = Date.now() + 10_000;
      while (con.cacheStats!.writeBehindFailures < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(con.cacheStats).toMatchObject({ writeBehindFailures: 1, writeBehinds: 0, commits: 0 });
      await expect(ds.flush()).rejects.toThrow();
      expect(con.cacheStats!.commits).toBe(0);
      await expect(con.flush()).rejects.toThrow(); // still dirty, still failing: never dropped silently
      rmSync(chunkFile, { recursive: true });
      await con.flush(); // the way is clear: the buffered planes are stored
      expect(con.cacheStats).toMatchObject({ commits: 1, blindCommits: 1, writeBehinds: 0, writeBehindFailures: 1 });
      expect(Array.from((await ds.get([s(0, 8), 5, 5])).data as Uint16Array)).toEqual(new Array(8).fill(7));
    } finally {
      await con.disconnect().catch(() => undefined);
    }
  });

  it('cacheBytes must be a non-negative integer; 0 turns the cache off', () => {
    for (const bad of [-1, 1.5, '64', NaN]) {
      expect(() => dn.connection('x', { cacheBytes: bad as number })).toThrow(/cacheBytes must be a non-negative integer/);
    }
    expect(dn.connection('x', { cacheBytes: 0 })).toBeInstanceOf(dn.Connection);
  });

  it('disconnect() commits buffered writes; if the commit fails it still closes, and says why', async () => {
    const con = await open('hdf5');
    const ds = await con.createDataset('flushme', { shape: [4], dtype: 'float64', chunkSize: [4] });
    await ds.set([1], 7);
    const dir = join(con.settings.options.directory as string, con.name, 'flushme');
    rmSync(dir, { recursive: true, force: true }); // the dataset vanishes under the buffered write
    await expect(con.disconnect()).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
    expect(con.connected).toBe(false);

    const again = await open('hdf5');
    const kept = await again.createDataset('kept', { shape: [4], dtype: 'float64', chunkSize: [4] });
    await kept.set([2], 9);
    await again.disconnect();
    const reader = await dn.connect(again.name, { ...again.settings.options, backend: 'hdf5' });
    expect(Array.from((await (await reader.getDataset('kept')).get()).data as Float64Array)).toEqual([0, 0, 9, 0]);
    await reader.disconnect();
  });
});

describe('chunk cache: reads that keep whole chunks', () => {
  it('on ram, chunks written whole are handed to the store in the shared buffers they were written in, and never written again', async () => {
    const con = await open('ram');
    try {
      const ds = await con.createDataset('handed', { shape: [24, 12, 12], dtype: 'uint16', chunkSize: [8, 6, 6] });
      const plane = (z: number) => dn.ndarray(Uint16Array.from({ length: 144 }, (_, i) => i + 1000 * z), [12, 12]);
      const meta = (await con.store.readMeta(ds.name))!.meta;
      const stored = async () => (await con.store.readChunk(meta, [1, 0, 0]))!;
      // The first slab's commits are blind: the next slab's chunks are cached in shared memory.
      for (let z = 0; z < 8; z++) await ds.set([z], plane(z));
      await ds.flush();
      for (let z = 8; z < 16; z++) await ds.set([z], plane(z));
      await ds.flush();
      expect(con.cacheStats).toMatchObject({ commits: 8, blindCommits: 8, bytesRead: 0 });
      const kept = await stored();
      expect(kept.buffer).toBeInstanceOf(SharedArrayBuffer);
      const before = Array.from(new Uint16Array(kept.buffer, kept.byteOffset, kept.byteLength / 2));
      // Writing that slab again, in part and whole: the buffer the store holds is never changed.
      await ds.set([s(8, 10), 0, 0], 7);
      await ds.flush();
      for (let z = 8; z < 16; z++) await ds.set([z], plane(z + 100));
      await ds.flush();
      expect(Array.from(new Uint16Array(kept.buffer, kept.byteOffset, kept.byteLength / 2))).toEqual(before);
      expect((await stored()).buffer).not.toBe(kept.buffer);
      const back = await ds.get([s(8, 16)]);
      expect(Array.from(back.data as Uint16Array)).toEqual(Array.from({ length: 8 }, (_, z) => Array.from(plane(z + 108).data)).flat());
      expect(Array.from((await ds.get([s(0, 8)])).data as Uint16Array)).toEqual(Array.from({ length: 8 }, (_, z) => Array.from(plane(z).data)).flat());
    } finally {
      await con.disconnect();
    }
  });

  it('on ram, a chunk written in part starts from a copy of the stored one: read once, at the set; committed without another read, unless another writer got there first', async () => {
    const con = await open('ram');
    const other = await dn.connect(con.name, { backend: 'ram' });
    try {
      const ds = await con.createDataset('from-stored', { shape: [8, 8], dtype: 'float32', chunkSize: [4, 4] });
      await ds.load(dn.ndarray(Float32Array.from({ length: 64 }, (_, i) => i), [8, 8]));
      const meta = (await con.store.readMeta(ds.name))!.meta;
      const stored = (await con.store.readChunk(meta, [0, 0]))!;
      const before = Array.from(new Float32Array(stored.buffer, stored.byteOffset, 16));
      await ds.set([0, s(0, 3)], -1);
      expect(con.cacheStats).toMatchObject({ loads: 1, bytesRead: 64, commits: 0 });
      // The stored chunk is copied, never written into.
      expect(Array.from(new Float32Array(stored.buffer, stored.byteOffset, 16))).toEqual(before);
      expect(Array.from((await ds.get([s(0, 2), s(0, 4)])).data as Float32Array)).toEqual([-1, -1, -1, 3, 8, 9, 10, 11]);
      await ds.flush();
      expect(con.cacheStats).toMatchObject({ loads: 1, bytesRead: 64, commits: 1, blindCommits: 0 });
      expect(await storedCells(con, 'from-stored', [0, s(0, 4)])).toEqual([-1, -1, -1, 3]);

      // Another connection commits a cell of the chunk between this one's set and its flush:
      // the commit finds the chunk changed, reads it again and keeps both writes.
      await ds.set([1, s(1, 3)], -2);
      expect(con.cacheStats).toMatchObject({ loads: 2, bytesRead: 128 });
      await (await other.getDataset('from-stored')).set([3, 3], 99);
      await other.flush();
      await ds.flush();
      expect(con.cacheStats).toMatchObject({ commits: 2, bytesRead: 192 });
      expect(await storedCells(con, 'from-stored', [s(0, 4), s(0, 4)])).toEqual([-1, -1, -1, 3, 8, -2, -2, 11, 16, 17, 18, 19, 24, 25, 26, 99]);
    } finally {
      await other.disconnect();
      await con.disconnect();
    }
  });

  it('on hdf5 a read of short rows (a line) keeps its chunks: the next such read is served from the cache, checked against the store', async () => {
    const con = await open('hdf5');
    try {
      const ds = await con.createDataset('lines', { shape: [64, 16, 16], dtype: 'float32', chunkSize: [16, 16, 16] });
      await ds.load(dn.ndarray(Float32Array.from({ length: 64 * 256 }, (_, i) => i), [64, 16, 16]));
      const line = async () => Array.from((await ds.get([s(), 5, 7])).data as Float32Array);
      const expected = Array.from({ length: 64 }, (_, z) => z * 256 + 5 * 16 + 7);
      expect(await line()).toEqual(expected);
      expect(con.cacheStats).toMatchObject({ fills: 4, hits: 0 });
      expect(await line()).toEqual(expected);
      expect(con.cacheStats).toMatchObject({ fills: 4, hits: 4 });
      expect(ds.lastRun?.engine).toBe('cache');
      // Another connection changes a chunk: the cached copy is found stale and read again.
      const other = await dn.connect(con.name, { ...con.settings.options, backend: 'hdf5' });
      await (await other.getDataset('lines')).set([s(0, 16)], -1);
      await other.disconnect();
      expect((await line()).slice(0, 17)).toEqual([...new Array(16).fill(-1), expected[16]]);
      expect(con.cacheStats).toMatchObject({ stale: 1, fills: 5 });
      // Whole rows go straight from the files into the result instead.
      await ds.get([5]);
      expect(con.cacheStats!.fills).toBe(5);
    } finally {
      await con.disconnect();
    }
  });
});
