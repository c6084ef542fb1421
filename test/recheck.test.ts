/**
 * When cached state is used without asking the store again (TensorStore's options):
 * `recheckCachedData` for the chunk cache's chunks, `recheckCachedMetadata` for a handle's
 * metadata. Another process is played by a second connection to the same folder; each test
 * checks both what is trusted (another process's change not seen) and what never is (this
 * connection's own writes, resizes and deletions).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

async function open(options: Record<string, unknown> = {}): Promise<dn.Connection> {
  const dir = mkdtempSync(join(tmpdir(), 'dosna-recheck-test-'));
  dirs.push(dir);
  return dn.connect(`recheck-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`, { backend: 'hdf5', directory: dir, create: true, ...options });
}

/** Runs `test` on a new connection with `options`, and disconnects it whatever happens. */
async function using(options: Record<string, unknown>, test: (con: dn.Connection) => Promise<void>): Promise<void> {
  const con = await open(options);
  try {
    await test(con);
  } finally {
    await con.disconnect();
  }
}

/** A 64 x 16 x 16 float32 dataset in four 16^3 chunks, and its line [:, 5, 7], read through the cache. */
async function lines(con: dn.Connection) {
  const ds = await con.createDataset('lines', { shape: [64, 16, 16], dtype: 'float32', chunkSize: [16, 16, 16] });
  await ds.load(dn.ndarray(Float32Array.from({ length: 64 * 256 }, (_, i) => i), [64, 16, 16]));
  const line = async () => Array.from((await ds.get([s(), 5, 7])).data as Float32Array);
  const expected = Array.from({ length: 64 }, (_, z) => z * 256 + 5 * 16 + 7);
  return { ds, line, expected };
}

/** Runs `change` on dataset 'lines' through a second connection, as another process would. */
async function another(con: dn.Connection, change: (ds: dn.Dataset, other: dn.Connection) => Promise<unknown>): Promise<void> {
  const other = await dn.connect(con.name, { ...con.settings.options, backend: con.backend });
  try {
    await change(await other.getDataset('lines'), other);
  } finally {
    await other.disconnect();
  }
}

/** Writes `value` over chunk `z` (rows 16z..16z+15) through a second connection. */
const otherWrites = (con: dn.Connection, z: number, value: number) => another(con, (ds) => ds.set([s(16 * z, 16 * z + 16)], value));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('recheckCachedData', () => {
  it('false: cached chunks are read without asking the store, so another process\'s change is not seen; this process\'s own writes are', async () => {
    await using({ recheckCachedData: false }, async (con) => {
      const { ds, line, expected } = await lines(con);
      expect(await line()).toEqual(expected);
      await otherWrites(con, 0, -1);
      // As h5py's cache: the cached chunk is used as it is, nobody asked.
      expect(await line()).toEqual(expected);
      expect(con.cacheStats).toMatchObject({ fills: 4, hits: 4, stale: 0 });
      // Any read of the cached chunk uses it, not just lines.
      expect(Array.from((await ds.get([3, 5, s(0, 3)])).data as Float32Array)).toEqual([848, 849, 850]);
      // This connection's own writes drop or update what it caches: a whole chunk, cells of one, a removed chunk.
      await ds.set([s(16, 32)], -2);
      await ds.set([s(32, 48), 5, 7], -3);
      await ds.flush();
      await ds.delChunk([3, 0, 0]);
      expect(await line()).toEqual([...expected.slice(0, 16), ...new Array(16).fill(-2), ...new Array(16).fill(-3), ...new Array(16).fill(0)]);
    });
  });

  it('true (the default): every read asks the store, and another process\'s change is seen at once', async () => {
    await using({ recheckCachedData: true }, async (con) => {
      const { line, expected } = await lines(con);
      expect(await line()).toEqual(expected);
      await otherWrites(con, 0, -1);
      expect(await line()).toEqual([...new Array(16).fill(-1), ...expected.slice(16)]);
      expect(con.cacheStats).toMatchObject({ stale: 1, fills: 5 });
    });
  });

  it('a time: chunks cached before it are checked once, then trusted as confirmed after it', async () => {
    const from = Date.now() / 1000 + 0.4;
    await using({ recheckCachedData: from }, async (con) => {
      const { line, expected } = await lines(con);
      expect(await line()).toEqual(expected); // cached before `from`
      await sleep(Math.max(0, from * 1000 - Date.now()) + 20);
      await otherWrites(con, 0, -1);
      expect(await line()).toEqual([...new Array(16).fill(-1), ...expected.slice(16)]); // asked: stale, read again
      expect(con.cacheStats).toMatchObject({ stale: 1, fills: 5 });
      await otherWrites(con, 1, -2);
      // Every chunk was confirmed after `from` by that read: none is asked again.
      expect(await line()).toEqual([...new Array(16).fill(-1), ...expected.slice(16)]);
      expect(con.cacheStats).toMatchObject({ stale: 1, fills: 5 });
    });
  });

  it.each(['recheckCachedData', 'recheckCachedMetadata'])('%s takes true, false or a finite number of seconds, nothing else', (option) => {
    for (const bad of ['false', 0n, NaN, Infinity, null, {}]) {
      expect(() => dn.connection('x', { [option]: bad })).toThrow(new RegExp(`${option} must be true, false or a time in seconds since the epoch`));
    }
    for (const good of [true, false, 0, Date.now() / 1000]) expect(dn.connection('x', { [option]: good })).toBeInstanceOf(dn.Connection);
  });
});

describe('recheckCachedMetadata', () => {
  it('false: a get uses the shape its handle confirmed, so another process\'s resize is not seen; reads of the chunks still are current', async () => {
    await using({ recheckCachedMetadata: false }, async (con) => {
      const { ds, expected } = await lines(con);
      expect((await ds.get([s(), 5, 7])).shape).toEqual([64]); // the first get asks, and confirms
      await another(con, (other) => other.resize([80, 16, 16]));
      await otherWrites(con, 0, -1);
      const line = await ds.get([s(), 5, 7]);
      expect(line.shape).toEqual([64]);
      // The chunks are asked about as ever (recheckCachedData is true).
      expect(Array.from(line.data as Float32Array)).toEqual([...new Array(16).fill(-1), ...expected.slice(16)]);
      await expect(ds.get([70, 5, 7])).rejects.toThrow(dn.IndexError);
      // A write always asks: it sees the new shape, and so does the get after it.
      await ds.set([70, 5, 7], 5);
      expect((await ds.get([s(), 5, 7])).shape).toEqual([80]);
    });
  });

  it('false: a resize or a deletion through this connection is seen by every handle of it', async () => {
    await using({ recheckCachedMetadata: false }, async (con) => {
      const { ds } = await lines(con);
      await ds.get([0, 0, 0]);
      const second = await con.getDataset('lines');
      await second.resize([32, 16, 16]);
      expect((await ds.get([s(), 5, 7])).shape).toEqual([32]);
      await second.delete();
      await expect(ds.get([0, 0, 0])).rejects.toThrow(dn.DatasetNotFoundError);
    });
  });

  it('false: another process\'s deletion is not seen by a get (as h5py\'s open file), but is by a write', async () => {
    await using({ recheckCachedMetadata: false }, async (con) => {
      const { ds } = await lines(con);
      await ds.get([0, 0, 0]);
      await another(con, (_, other) => other.delDataset('lines'));
      expect((await ds.get([1, 0, 0])).get()).toBe(0); // the chunk file is gone: the fill value
      await expect(ds.set([0, 0, 0], 1)).rejects.toThrow(dn.DatasetNotFoundError);
    });
  });

  it('true (the default): every get sees another process\'s resize and deletion', async () => {
    await using({}, async (con) => {
      const { ds } = await lines(con);
      await ds.get([0, 0, 0]);
      await another(con, (other) => other.resize([80, 16, 16]));
      expect((await ds.get([s(), 5, 7])).shape).toEqual([80]);
      await another(con, (_, other) => other.delDataset('lines'));
      await expect(ds.get([0, 0, 0])).rejects.toThrow(dn.DatasetNotFoundError);
    });
  });

  it('a time: a confirmation before it is asked again once, then trusted', async () => {
    const from = Date.now() / 1000 + 0.4;
    await using({ recheckCachedMetadata: from }, async (con) => {
      const { ds } = await lines(con);
      await ds.get([0, 0, 0]); // confirmed before `from`
      await sleep(Math.max(0, from * 1000 - Date.now()) + 20);
      await another(con, (other) => other.resize([80, 16, 16]));
      expect((await ds.get([s(), 5, 7])).shape).toEqual([80]); // asked again: seen, confirmed after `from`
      await another(con, (other) => other.resize([96, 16, 16]));
      expect((await ds.get([s(), 5, 7])).shape).toEqual([80]); // trusted
    });
  });
});
