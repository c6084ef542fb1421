/**
 * Bad input never corrupts data and no option is silently ignored (issue 14): each case gets
 * the right typed error before anything is written, on every backend x engine, and the
 * options that are worth having (rechunking clone/map, overwrite, get's dtype) do what they say.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { closeConnection, combos, openConnection, reopen, type Combo } from './support/matrix.js';

const { s } = dn;

/** Every value of a dataset, flattened, as numbers (bigints become strings). */
async function values(ds: dn.Dataset): Promise<unknown[]> {
  return Array.from((await ds.get()).data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v));
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe.each(combos())('bad input: $label', (combo: Combo) => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection(combo); });
  afterAll(async () => { await closeConnection(con); });

  const ramp = (n: number) => dn.ndarray(Int32Array.from({ length: n }, (_, i) => i), [n]);

  it.each([
    ['Slice(0.5, 3)', () => new dn.Slice(0.5, 3), /slice start must be an integer or null, got number 0\.5/],
    ['Slice(NaN, 3)', () => new dn.Slice(NaN, 3), /slice start must be an integer or null, got number NaN/],
    ['Slice(0, 3, 0.5)', () => new dn.Slice(0, 3, 0.5), /slice step must be an integer or null, got number 0\.5/],
    ["Slice('a', 3)", () => new dn.Slice('a' as unknown as number, 3), /slice start must be an integer or null, got "a"/],
  ])('%s is an IndexError on get and on set, and set writes nothing', async (_label, make, message) => {
    const ds = await con.createDataset(`slice-${Math.random().toString(36).slice(2, 8)}`, { data: dn.ndarray(Int32Array.from({ length: 60 }, (_, i) => i), [6, 10]), chunkSize: [4, 4] });
    const before = await values(ds);
    const getError = await rejection(ds.get([make()]));
    expect(getError).toBeInstanceOf(dn.IndexError);
    expect(getError.message).toMatch(message);
    const setError = await rejection(ds.set([make(), s()], 99));
    expect(setError).toBeInstanceOf(dn.IndexError);
    await ds.flush();
    expect(await values(await con.getDataset(ds.name))).toEqual(before);
    await ds.delete();
  });

  it('s() checks its parts at once', () => {
    expect(() => s(0, Infinity)).toThrow(dn.IndexError);
    expect(() => s(0.5)).toThrow(/slice start must be an integer or null, got number 0\.5/);
  });

  it('a bigint index entry is an integer index (as NumPy takes np.int64)', async () => {
    const ds = await con.createDataset('bigint-index', { data: ramp(10), chunkSize: [4] });
    expect((await ds.get([3n as unknown as number])).get()).toBe(3);
    expect(Array.from((await ds.get([s(1n as unknown as number, 4n as unknown as number)])).data as Int32Array)).toEqual([1, 2, 3]);
    await ds.delete();
  });

  it('NaN and infinities in arrays written to an integer dataset are DTypeErrors, as scalars are; nothing is written', async () => {
    const ds = await con.createDataset('nan-into-int', { shape: [4], dtype: 'int32', chunkSize: [2], fillValue: 7 });
    for (const value of [[1, NaN, 2, 3], [Infinity, 1, 2, 3], Float64Array.of(1, 2, -Infinity, 3), dn.ndarray(Float32Array.of(0, 0, 0, NaN), [4]), NaN]) {
      const error = await rejection(ds.set(undefined, value as dn.Value));
      expect(error, String(value)).toBeInstanceOf(dn.DTypeError);
      expect(error.message).toMatch(/NaN|infinity|Infinity/);
    }
    await ds.flush();
    expect(await values(ds)).toEqual([7, 7, 7, 7]);
    // A finite fraction in an array is truncated toward zero, as NumPy's array(..., dtype=int32).
    await ds.set(undefined, [1.7, -1.7, 2.5, 3]);
    expect(await values(ds)).toEqual([1, -1, 2, 3]);
    await ds.delete();
  });

  it('bigints outside a 64-bit dtype are DTypeErrors in arrays too (no wrap-around)', async () => {
    const i64 = await con.createDataset('i64-range', { shape: [2], dtype: 'int64', chunkSize: [2] });
    const u64 = await con.createDataset('u64-range', { shape: [2], dtype: 'uint64', chunkSize: [2] });
    await expect(i64.set(undefined, [[2n ** 70n][0], 1n])).rejects.toBeInstanceOf(dn.DTypeError);
    await expect(i64.set([0], 2n ** 63n)).rejects.toBeInstanceOf(dn.DTypeError);
    await expect(u64.set(undefined, [-1n, 0n])).rejects.toThrow(/-1 \(at element \[0\]\) is out of range for dtype uint64/);
    expect(await values(i64)).toEqual(['0', '0']);
    expect(await values(u64)).toEqual(['0', '0']);
    await i64.set(undefined, [2n ** 63n - 1n, -(2n ** 63n)]);
    expect(await values(i64)).toEqual([String(2n ** 63n - 1n), String(-(2n ** 63n))]);
    await Promise.all([i64.delete(), u64.delete()]);
  });

  it('64-bit integers become float32 rounded once, as NumPy does', async () => {
    const ds = await con.createDataset('f32-from-int64', { shape: [3], dtype: 'float32', chunkSize: [3] });
    const big = 2n ** 60n + 2n ** 36n + 1n; // Number() then fround() would give 2^60
    await ds.set(undefined, [big, -big, 2n ** 24n + 1n]);
    expect(Array.from((await ds.get()).data as Float32Array)).toEqual([2 ** 60 + 2 ** 37, -(2 ** 60 + 2 ** 37), 2 ** 24]);
    await ds.set(undefined, BigInt64Array.of(big, -big, 2n ** 24n + 3n));
    expect(Array.from((await ds.get()).data as Float32Array)).toEqual([2 ** 60 + 2 ** 37, -(2 ** 60 + 2 ** 37), 2 ** 24 + 4]);
    await ds.delete();
  });

  it.each([
    [{ shape: [2 ** 53] }, /at most 2\^53 - 1/],
    [{ shape: [1e300] }, /at most 2\^53 - 1/],
    [{ shape: [2 ** 30, 2 ** 30, 2 ** 30] }, /more than 2\^53 - 1/],
    [{ shape: [10], chunkSize: [2 ** 53] }, /chunkSize must be a non-empty array of positive integers/],
    [{ shape: [10], chunkSize: [1e300] }, /chunkSize/],
    [{ shape: [2 ** 20, 2 ** 20], chunkSize: [2 ** 16, 2 ** 16] }, /more than the 2147483648 a chunk may have/],
  ])('createDataset(%j) is a ShapeError and creates nothing', async (options, message) => {
    const error = await rejection(con.createDataset('huge', { dtype: 'uint8', ...options }));
    expect(error).toBeInstanceOf(dn.ShapeError);
    expect(error.message).toMatch(message);
    expect(await con.hasDataset('huge')).toBe(false);
  });

  it('without chunkSize, chunks are chosen as zarr does (a few MiB, shaped like the array), not one chunk', async () => {
    const vol = await con.createDataset('vol', { shape: [1200, 1024, 1024], dtype: 'float32' });
    expect(vol.chunkSize).toEqual([75, 128, 128]); // zarr.util.guess_chunks((1200, 1024, 1024), 4)
    const bytes = vol.chunkSize.reduce((a, b) => a * b, 1) * 4;
    expect(bytes).toBeGreaterThan(2 ** 20);
    expect(bytes).toBeLessThan(16 * 2 ** 20);
    await vol.set([600, s(0, 3), 5], 1.5); // one small chunk write, no 5 GB allocation
    expect(Array.from((await vol.get([600, s(0, 4), 5])).data as Float32Array)).toEqual([1.5, 1.5, 1.5, 0]);
    // What was chosen is what a reopened handle reports.
    expect((await con.getDataset('vol')).chunkSize).toEqual([75, 128, 128]);
    await vol.delete();
    // Small data stays one chunk, as before.
    const small = await con.createDataset('small', { data: dn.ndarray(new Float64Array(100), [10, 10]) });
    expect(small.chunkSize).toEqual([10, 10]);
    await small.delete();
  });

  it('a float32 fill value is the float32 value on every handle', async () => {
    const ds = await con.createDataset('fill32', { shape: [3], dtype: 'float32', fillValue: 0.1 });
    const other = await reopen(con);
    try {
      expect(ds.fillValue).toBe(Math.fround(0.1));
      expect((await other.getDataset('fill32')).fillValue).toBe(Math.fround(0.1));
      expect((await ds.get([0])).get()).toBe(ds.fillValue);
    } finally {
      await other.disconnect();
    }
    await ds.delete();
  });

  it.each([
    ['é'.repeat(200), /name is 400 bytes long in UTF-8, more than the 255/],
    ['a\uD800b', /lone surrogate/],
  ])('dataset name %# is an InvalidNameError before anything is written', async (name, message) => {
    const before = await con.listDatasets();
    const error = await rejection(con.createDataset(name, { shape: [4], dtype: 'int8' }));
    expect(error).toBeInstanceOf(dn.InvalidNameError);
    expect(error.message).toMatch(message);
    expect(await con.listDatasets()).toEqual(before);
    await expect(con.getDataset(name)).rejects.toBeInstanceOf(dn.InvalidNameError);
  });

  it('a boolean-mask or integer-array index is an IndexError with a short message (no data dump)', async () => {
    const ds = await con.createDataset('mask', { data: ramp(1000), chunkSize: [100] });
    const mask = dn.ndarray(new Uint8Array(1000).fill(1), [1000]);
    for (const index of [[mask], [[1, 2, 3]], [Uint8Array.of(1, 0)]]) {
      const error = await rejection(ds.get(index as unknown as dn.Index));
      expect(error).toBeInstanceOf(dn.IndexError);
      expect(error.message.length).toBeLessThan(300);
      expect(error.message).toMatch(/boolean masks and integer arrays are not supported/);
    }
    await ds.delete();
  });

  it("get takes out as an ndarray or a typed array of the dataset's dtype, and casts with { dtype }", async () => {
    const ds = await con.createDataset('getopts', { data: dn.ndarray(Float32Array.from({ length: 12 }, (_, i) => i + 0.5), [3, 4]), chunkSize: [2, 2] });
    const out = dn.ndarray(new Float32Array(12), [3, 4]);
    expect(await ds.get(undefined, { out })).toBe(out);
    expect(Array.from(out.data)).toEqual(Array.from({ length: 12 }, (_, i) => i + 0.5));
    const flat = new Float32Array(4);
    expect(Array.from((await ds.get([1], { out: flat })).data as Float32Array)).toEqual([4.5, 5.5, 6.5, 7.5]);
    await expect(ds.get([1], { out: new Float64Array(4) })).rejects.toThrow(/float32/);
    await expect(ds.get([1], { out: dn.ndarray(new Float32Array(8), [2, 4]) })).rejects.toBeInstanceOf(dn.ShapeError);
    const asInt = await ds.get([1], { dtype: 'int16' });
    expect(asInt.data).toBeInstanceOf(Int16Array);
    expect(Array.from(asInt.data as Int16Array)).toEqual([4, 5, 6, 7]); // truncated, as astype
    const asDouble = await ds.get([0], { dtype: 'float64' });
    expect(asDouble.data).toBeInstanceOf(Float64Array);
    await expect(ds.get([0], { dtype: 'complex64' as dn.DType })).rejects.toBeInstanceOf(dn.DTypeError);
    await ds.delete();
  });

  it('clone and map rechunk with { chunkSize }', async () => {
    const data = dn.ndarray(Float64Array.from({ length: 40 * 80 }, (_, i) => i), [40, 80]);
    const ds = await con.createDataset('rechunk', { data, chunkSize: [8, 16] });
    const re = await ds.clone('re', { data: true, chunkSize: [10, 80] });
    expect(re.chunkSize).toEqual([10, 80]);
    expect(await values(re)).toEqual(Array.from(data.data));
    expect((await re.storedChunks()).length).toBe(4);
    const empty = await ds.clone('re-empty', { chunkSize: [20, 20] });
    expect([empty.chunkSize, (await empty.storedChunks()).length]).toEqual([[20, 20], 0]);
    const doubled = await ds.map((c) => Float64Array.from(c.data as Float64Array, (v) => 2 * v), 'doubled', { chunkSize: [40, 40] });
    expect(doubled.chunkSize).toEqual([40, 40]);
    expect(await values(doubled)).toEqual(Array.from(data.data, (v) => 2 * v));
    expect((await con.listDatasets()).filter((n) => n.startsWith('doubled'))).toEqual(['doubled']); // no temporary left
    await expect(ds.clone('bad', { chunkSize: [0, 5] })).rejects.toBeInstanceOf(dn.ShapeError);
    expect(await con.hasDataset('bad')).toBe(false);
    for (const d of [ds, re, empty, doubled]) await d.delete();
  });

  it('createDataset { overwrite: true } replaces a dataset; without it the name is taken', async () => {
    const first = await con.createDataset('over', { data: ramp(8), chunkSize: [4] });
    await expect(con.createDataset('over', { shape: [3], dtype: 'float64' })).rejects.toBeInstanceOf(dn.DatasetExistsError);
    const second = await con.createDataset('over', { shape: [3], dtype: 'float64', fillValue: 2, overwrite: true });
    expect([second.shape, second.dtype]).toEqual([[3], 'float64']);
    expect(await values(second)).toEqual([2, 2, 2]);
    expect(await second.storedChunks()).toEqual([]); // the old chunks went with the old dataset
    await expect(first.get()).rejects.toBeInstanceOf(dn.DatasetNotFoundError); // the old handle knows
    await second.delete();
  });

  it.each([
    ['createDataset', (c: dn.Connection) => c.createDataset('x', { shape: [2], dtype: 'int8', chunksize: [1] } as never), /createDataset: unknown option "chunksize"; it takes .*chunkSize/],
    ['get', async (c: dn.Connection) => (await c.createDataset('o1', { shape: [2], dtype: 'int8' })).get(undefined, { dtyp: 'int8' } as never), /get: unknown option "dtyp"; it takes out, dtype/],
    ['load', async (c: dn.Connection) => (await c.createDataset('o2', { shape: [2], dtype: 'int8' })).load(new Int8Array(2), { concurency: 2 } as never), /load: unknown option "concurency"/],
    ['map', async (c: dn.Connection) => (await c.createDataset('o3', { shape: [2], dtype: 'int8' })).map((x) => x, 'o3b', { hallo: 1 } as never), /map: unknown option "hallo"; it takes halo/],
    ['apply', async (c: dn.Connection) => (await c.createDataset('o4', { shape: [2], dtype: 'int8' })).apply((x) => x, { chunkSize: [1] } as never), /apply: it changes the chunks in place, so it cannot change the dtype or the chunk shape/],
    ['clone', async (c: dn.Connection) => (await c.createDataset('o5', { shape: [2], dtype: 'int8' })).clone('o5b', { copy: true } as never), /clone: unknown option "copy"; it takes data, chunkSize/],
    ['clear', async (c: dn.Connection) => (await c.createDataset('o6', { shape: [2], dtype: 'int8' })).clear({ force: true } as never), /clear: unknown option "force"/],
    ['clone data', async (c: dn.Connection) => (await c.createDataset('o7', { shape: [2], dtype: 'int8' })).clone('o7b', { data: 'yes' } as never), /clone: option data must be true or false/],
  ])('%s with an unknown or bad option is an OptionError naming what it takes, and does nothing', async (_what, call, message) => {
    const error = await rejection(call(con));
    expect(error).toBeInstanceOf(dn.OptionError);
    expect(error.message).toMatch(message);
    const left = await con.listDatasets();
    for (const name of ['x', 'o3b', 'o5b', 'o7b']) expect(left).not.toContain(name);
    for (const name of left.filter((n) => /^o\d$/.test(n))) await con.delDataset(name);
  });
});

describe('connection names on hdf5 (file names)', () => {
  it.each([
    ['é'.repeat(200), /connection name is 400 bytes long in UTF-8/],
    ['x\uDC00', /lone surrogate/],
  ])('connection name %# is an InvalidNameError and creates no folder', async (name, message) => {
    const directory = mkdtempSync(join(tmpdir(), 'dosna-names-'));
    try {
      const error = await rejection(dn.connect(name, { backend: 'hdf5', directory, create: true }));
      expect(error).toBeInstanceOf(dn.InvalidNameError);
      expect(error.message).toMatch(message);
      expect(readdirSync(directory)).toEqual([]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('engine and use() options are checked, not ignored', () => {
  it.each([
    ['cpu', { bogus: 1 }, /the cpu engine: unknown option "bogus"; it takes concurrency/],
    ['cpu', { threads: 2 }, /the cpu engine: unknown option "threads"; it takes concurrency/],
    ['cpu', { concurrency: 0 }, /concurrency must be a positive integer, got 0/],
    ['worker-pool', { threadz: 2 }, /the worker-pool engine: unknown option "threadz"; it takes threads, concurrency/],
    ['worker-pool', { threads: -1 }, /threads must be a positive integer, got -1/],
    ['worker-pool', { threads: 1.5 }, /threads must be a positive integer, got 1\.5/],
    ['cluster-rank', { ranks: 2 }, /the cluster-rank engine: unknown option "ranks"; it takes concurrency, connectTimeoutMs, collectiveTimeoutMs/],
    ['cluster-rank', { collectiveTimeoutMs: Number.NaN }, /collectiveTimeoutMs must be a positive number of milliseconds/],
  ])('%s with %j is an OptionError at connect', async (engine, engineOptions, message) => {
    const error = await rejection(dn.connect('engine-options', { engine, engineOptions }));
    expect(error).toBeInstanceOf(dn.OptionError);
    expect(error.message).toMatch(message);
  });

  it('use() refuses unknown keys and a non-object engineOptions', () => {
    expect(() => dn.use({ backend: 'ram', engin: 'cpu' } as never)).toThrow(dn.OptionError);
    expect(() => dn.use({ engineOptions: 4 } as never)).toThrow(/engineOptions: options must be an object, got number/);
    expect(() => dn.connection('x', { engineOptions: [1] } as never)).toThrow(dn.OptionError);
    expect(dn.current()).toEqual({ backend: 'ram', engine: 'cpu' });
  });

  it('backend options: an unknown key is an OptionError naming the accepted ones', async () => {
    const error = await rejection(dn.connect('ram-options', { backend: 'ram', directory: '/tmp' }));
    expect(error).toBeInstanceOf(dn.OptionError);
    expect(error.message).toMatch(/the ram backend: unknown option "directory"; it takes none/);
  });
});
