/**
 * The conformance suite: the public contract, run unchanged over every backend x engine.
 * A new backend or engine is done when this file and conformance-map.test.ts (map and apply)
 * pass for it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import type { DType } from '../src/dtypes.js';
import { closeConnection, combos, openConnection, reopen, type Combo } from './support/matrix.js';
import { randomIndex, randInt, refGet, refSet, rng, type Flat } from './support/reference.js';
import { ALL_DTYPES, randomTyped } from './support/data.js';

const flatOf = (a: { data: ArrayLike<number | bigint> }): Flat => Array.from(a.data as ArrayLike<number | bigint>);

describe.each(combos(true))('conformance: $label', (combo: Combo) => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection(combo); });
  afterAll(async () => { await closeConnection(con); });

  describe('datasets', () => {
    it('creates from shape with defaults: float32, fill 0, one chunk', async () => {
      const ds = await con.createDataset('defaults', { shape: [5, 7] });
      expect(ds.dtype).toBe('float32');
      expect(ds.shape).toEqual([5, 7]);
      expect(ds.ndim).toBe(2);
      expect(ds.size).toBe(35);
      expect(ds.chunkSize).toEqual([5, 7]);
      expect(ds.chunkGrid).toEqual([1, 1]);
      expect(ds.totalChunks).toBe(1);
      expect(ds.fillValue).toBe(0);
      expect(flatOf(await ds.get())).toEqual(new Array(35).fill(0));
      await ds.delete();
    });

    it('creates from data: shape and dtype come from it', async () => {
      const data = dn.ndarray(new Int16Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      const ds = await con.createDataset('fromdata', { data, chunkSize: [1, 2] });
      expect(ds.dtype).toBe('int16');
      expect(ds.shape).toEqual([2, 3]);
      expect(ds.chunkGrid).toEqual([2, 2]);
      expect(flatOf(await ds.get())).toEqual([1, 2, 3, 4, 5, 6]);
      const nested = await con.createDataset('nested', { data: [[1.5, 2], [3, 4]] });
      expect(nested.dtype).toBe('float64');
      expect(flatOf(await nested.get([1]))).toEqual([3, 4]);
      const cast = await con.createDataset('cast', { data: [[1.7, -2.2]], dtype: 'int32' });
      expect(flatOf(await cast.get())).toEqual([1, -2]);
    });

    it('gets, has, lists and deletes datasets; a new Dataset object sees the same data', async () => {
      await con.createDataset('listed', { shape: [4], dtype: 'int32', chunkSize: [2] });
      expect(await con.hasDataset('listed')).toBe(true);
      expect(await con.listDatasets()).toContain('listed');
      const again = await con.getDataset('listed');
      await again.set([s(1, 3)], 9);
      const third = await con.getDataset('listed');
      expect(third.dtype).toBe('int32');
      expect(third.chunkSize).toEqual([2]);
      expect(flatOf(await third.get())).toEqual([0, 9, 9, 0]);
      await con.delDataset('listed');
      expect(await con.hasDataset('listed')).toBe(false);
      expect(await con.listDatasets()).not.toContain('listed');
      await expect(con.getDataset('listed')).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      await expect(con.delDataset('listed')).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
    });

    it('refuses to create a dataset twice and keeps the first one intact', async () => {
      const ds = await con.createDataset('twice', { shape: [3], dtype: 'uint8', fillValue: 7 });
      await ds.set([0], 1);
      await expect(con.createDataset('twice', { shape: [9] })).rejects.toBeInstanceOf(dn.DatasetExistsError);
      const back = await con.getDataset('twice');
      expect(back.shape).toEqual([3]);
      expect(flatOf(await back.get())).toEqual([1, 7, 7]);
    });

    it('rejects unsafe and empty names with InvalidNameError', async () => {
      // 'a/b' is dataset b of group a; these are not names: empty, escaping, separators, reserved.
      for (const bad of ['', '/', '..', '.', '../x', 'a/../b', 'a//b', 'a\\b', 'nul\u0000byte', '.dosna-group.json', 'g/.dosnax']) {
        await expect(con.createDataset(bad, { shape: [2] }), JSON.stringify(bad)).rejects.toBeInstanceOf(dn.InvalidNameError);
        await expect(con.getDataset(bad)).rejects.toBeInstanceOf(dn.InvalidNameError);
        await expect(con.delDataset(bad)).rejects.toBeInstanceOf(dn.InvalidNameError);
      }
    });

    it('validates shapes, chunk sizes, dtypes and fill values before creating anything', async () => {
      await expect(con.createDataset('bad1', { shape: [2, -1] })).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(con.createDataset('bad2', { shape: [4, 4], chunkSize: [2] })).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(con.createDataset('bad3', { shape: [4], chunkSize: [0] })).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(con.createDataset('bad4', { shape: [4], dtype: 'complex64' as DType })).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(con.createDataset('bad5', { shape: [4], dtype: 'uint8', fillValue: 300 })).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(con.createDataset('bad6', { shape: [4], dtype: 'int32', fillValue: 0.5 })).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(con.createDataset('bad7', { data: [[1, 2], [3]] })).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(con.createDataset('bad8', { data: [1, 2], shape: [3] })).rejects.toBeInstanceOf(dn.ShapeError);
      for (const name of ['bad1', 'bad2', 'bad3', 'bad4', 'bad5', 'bad6', 'bad8']) expect(await con.hasDataset(name)).toBe(false);
    });
  });

  describe('slicing against a NumPy model', () => {
    const layouts: { shape: number[]; chunk: number[] }[] = [
      { shape: [23], chunk: [5] },
      { shape: [9, 11], chunk: [4, 3] },
      { shape: [7, 100, 3], chunk: [2, 32, 5] },
      { shape: [5, 6, 7], chunk: [5, 6, 7] },
      { shape: [4, 5, 3, 6], chunk: [3, 2, 2, 4] },
    ];

    it.each(layouts)('get matches NumPy on random indices: shape $shape, chunks $chunk', async ({ shape, chunk }) => {
      const r = rng(shape.length * 1000 + chunk[0]);
      for (const dtype of ['float64', 'int64', 'uint8'] as DType[]) {
        const values = randomTyped(r, dtype, shape.reduce((a, b) => a * b, 1));
        const ds = await con.createDataset(`get-${shape.join('x')}-${dtype}`, { data: dn.ndarray(values, shape), chunkSize: chunk });
        const flat = Array.from(values as ArrayLike<number | bigint>);
        for (let t = 0; t < 40; t++) {
          const index = randomIndex(r, shape);
          const expected = refGet(flat, shape, index);
          const got = await ds.get(index);
          const where = `${dtype} index ${index.map(String).join(', ')}`;
          expect(got.shape, where).toEqual(expected.shape);
          expect(flatOf(got), where).toEqual(expected.data);
        }
      }
    });

    it.each(layouts)('set matches NumPy on random indices and broadcasts: shape $shape, chunks $chunk', async ({ shape, chunk }) => {
      const r = rng(shape.length * 7777 + chunk[0]);
      for (const dtype of ['float32', 'int32', 'uint64'] as DType[]) {
        const ds = await con.createDataset(`set-${shape.join('x')}-${dtype}`, { shape, dtype, chunkSize: chunk, fillValue: dtype === 'uint64' ? 3n : 3 });
        let model: Flat = new Array(shape.reduce((a, b) => a * b, 1)).fill(dtype === 'uint64' ? 3n : 3);
        for (let t = 0; t < 25; t++) {
          const index = randomIndex(r, shape);
          const target = refGet(model, shape, index).shape;
          // A value of the full target shape, or a broadcastable one (trailing axes, ones).
          const valueShape = target.map((n, a) => (r() < 0.3 ? 1 : n)).slice(randInt(r, 0, target.length));
          const n = valueShape.reduce((a, b) => a * b, 1);
          const value = randomTyped(r, dtype, n);
          await ds.set(index, dn.ndarray(value, valueShape));
          model = refSet(model, shape, index, Array.from(value as ArrayLike<number | bigint>), valueShape);
          const where = `${dtype} step ${t} index ${index.map(String).join(', ')} value ${JSON.stringify(valueShape)}`;
          expect(flatOf(await ds.get()), where).toEqual(model);
        }
      }
    });

    it('integers squeeze, negative integers count from the end, ellipsis expands', async () => {
      const values = Float64Array.from({ length: 4 * 5 * 6 }, (_, i) => i);
      const ds = await con.createDataset('squeeze', { data: dn.ndarray(values, [4, 5, 6]), chunkSize: [3, 2, 4] });
      const point = await ds.get([1, 2, 3]);
      expect(point.shape).toEqual([]);
      expect(point.get()).toBe(1 * 30 + 2 * 6 + 3);
      expect((await ds.get([-1, -1, -1])).get()).toBe(119);
      expect((await ds.get(['...', 0])).shape).toEqual([4, 5]);
      expect(flatOf(await ds.get([0, '...', 0]))).toEqual([0, 6, 12, 18, 24]);
      expect((await ds.get([2])).shape).toEqual([5, 6]);
      expect(flatOf(await ds.get([0, 0, s(null, null, -2)]))).toEqual([5, 3, 1]);
      expect(flatOf(await ds.get([0, 0, s(4, 1, -1)]))).toEqual([4, 3, 2]);
      expect(flatOf(await ds.get([0, 0, s(-2)]))).toEqual([4, 5]);
      expect((await ds.get([s(10, 20)])).shape).toEqual([0, 5, 6]);
      expect(flatOf(await ds.get([0, 0, s(-100, 100, 4)]))).toEqual([0, 4]);
    });

    it('get fills a caller\'s array with { out }, checking its dtype and length', async () => {
      const values = Int32Array.from({ length: 6 * 7 }, (_, i) => i);
      const ds = await con.createDataset('getout', { data: dn.ndarray(values, [6, 7]), chunkSize: [4, 3] });
      const out = new Int32Array(3 * 7).fill(-1);
      const got = await ds.get([s(1, 4)], { out });
      expect(got.data).toBe(out);
      expect(got.shape).toEqual([3, 7]);
      expect(Array.from(out)).toEqual(Array.from(values.subarray(7, 28)));
      await expect(ds.get([s(1, 4)], { out: new Int32Array(20) })).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.get([s(1, 4)], { out: new Float32Array(21) })).rejects.toBeInstanceOf(dn.DTypeError);
    });

    it('throws IndexError for out-of-range integers, zero steps, too many or bad entries', async () => {
      const ds = await con.createDataset('idxerr', { shape: [4, 5] });
      await expect(ds.get([4])).rejects.toBeInstanceOf(dn.IndexError);
      await expect(ds.get([0, -6])).rejects.toBeInstanceOf(dn.IndexError);
      await expect(ds.get([0, 0, 0])).rejects.toBeInstanceOf(dn.IndexError);
      await expect(ds.get(['...', '...'])).rejects.toBeInstanceOf(dn.IndexError);
      await expect(ds.get([1.5])).rejects.toBeInstanceOf(dn.IndexError);
      await expect(ds.get([{} as never])).rejects.toBeInstanceOf(dn.IndexError);
      expect(() => s(0, 4, 0)).toThrow(dn.IndexError);
      await expect(ds.set([9], 1)).rejects.toBeInstanceOf(dn.IndexError);
    });
  });

  describe('set: broadcasting, casting, errors', () => {
    it('broadcasts scalars, rows and lower-rank arrays; missing trailing axes are full', async () => {
      const ds = await con.createDataset('bcast', { shape: [3, 4], dtype: 'int32', chunkSize: [2, 3] });
      await ds.set([s(0, 2)], 5);
      expect(flatOf(await ds.get())).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 0, 0]);
      await ds.set(undefined, [1, 2, 3, 4]);
      expect(flatOf(await ds.get())).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
      await ds.set([s(), 1], [[7], [8], [9]].map((r) => r[0]));
      expect(flatOf(await ds.get([s(), 1]))).toEqual([7, 8, 9]);
      await ds.set([s(), s(2, 4)], [[10], [20], [30]]);
      expect(flatOf(await ds.get([s(), s(2, 4)]))).toEqual([10, 10, 20, 20, 30, 30]);
      await ds.set([2, 3], [[[42]]]);
      expect((await ds.get([2, 3])).get()).toBe(42);
    });

    it('throws ShapeError naming both shapes and writes nothing', async () => {
      const ds = await con.createDataset('shapeerr', { shape: [3, 4], dtype: 'float64', chunkSize: [2, 2], fillValue: 1 });
      const before = flatOf(await ds.get());
      const attempt = ds.set([s(0, 2), s(0, 3)], [[1, 2], [3, 4]]);
      await expect(attempt).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.set([s(0, 2), s(0, 3)], [[1, 2], [3, 4]])).rejects.toThrow(/\(2, 2\).*\(2, 3\)/);
      await expect(ds.set(undefined, [1, 2, 3])).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.set(undefined, dn.ndarray(new Float64Array(24), [2, 3, 4]))).rejects.toBeInstanceOf(dn.ShapeError);
      expect(flatOf(await ds.get())).toEqual(before);
      expect(await ds.storedChunks()).toEqual([]);
    });

    it('casts values to the dtype: as astype for arrays (no value an integer cannot hold), refused for scalars that do not fit', async () => {
      const ds = await con.createDataset('casting', { shape: [4], dtype: 'int8' });
      await ds.set(undefined, new Float64Array([1.9, -1.9, 127, -128]));
      expect(flatOf(await ds.get())).toEqual([1, -1, 127, -128]);
      // A float no int8 holds is refused (NumPy leaves it undefined); integers wrap, as astype.
      await expect(ds.set(undefined, new Float64Array([1, 2, 3, 130]))).rejects.toThrow(/cannot cast 130 \(element 3\) to dtype int8: out of its range/);
      expect(flatOf(await ds.get())).toEqual([1, -1, 127, -128]);
      await ds.set(undefined, new Int16Array([1, 2, 300, -129]));
      expect(flatOf(await ds.get())).toEqual([1, 2, 44, 127]);
      await expect(ds.set([0], 300)).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(ds.set([0], 1.5)).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(ds.set([0], 'x' as never)).rejects.toBeInstanceOf(dn.DTypeError);
      const big = await con.createDataset('casting64', { shape: [3], dtype: 'int64' });
      await big.set(undefined, [1, -2, 3]);
      expect(flatOf(await big.get())).toEqual([1n, -2n, 3n]);
      await big.set([1], 2n ** 62n);
      expect((await big.get([1])).get()).toBe(2n ** 62n);
      const f = await con.createDataset('castingf', { shape: [2], dtype: 'float32' });
      await f.set(undefined, new BigInt64Array([5n, -7n]));
      expect(flatOf(await f.get())).toEqual([5, -7]);
    });
  });

  describe('dtypes', () => {
    it.each(ALL_DTYPES)('%s round-trips values, extremes and its fill value', async (dtype) => {
      const extremes: Record<DType, (number | bigint)[]> = {
        int8: [-128, 127, 0, -1], int16: [-32768, 32767, 1, -1], int32: [-2147483648, 2147483647, 5, -5],
        int64: [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n], uint8: [0, 255, 1, 128], uint16: [0, 65535, 1, 2],
        uint32: [0, 4294967295, 7, 8], uint64: [0n, 2n ** 64n - 1n, 1n, 2n ** 63n],
        float32: [-3.4028234663852886e38, 3.4028234663852886e38, 1.401298464324817e-45, -0.5],
        float64: [-Number.MAX_VALUE, Number.MAX_VALUE, Number.MIN_VALUE, Number.NaN],
      };
      const fill = dtype.startsWith('float') ? -2.5 : dtype.endsWith('64') ? 11n : 11;
      const ds = await con.createDataset(`dt-${dtype}`, { shape: [3, 4], dtype, chunkSize: [2, 3], fillValue: fill });
      expect(ds.fillValue).toBe(fill);
      await ds.set([1], extremes[dtype]);
      const back = await con.getDataset(`dt-${dtype}`);
      expect(back.dtype).toBe(dtype);
      expect(back.fillValue).toEqual(fill);
      const got = await back.get();
      expect(got.data.constructor.name).toBe({
        int8: 'Int8Array', int16: 'Int16Array', int32: 'Int32Array', int64: 'BigInt64Array',
        uint8: 'Uint8Array', uint16: 'Uint16Array', uint32: 'Uint32Array', uint64: 'BigUint64Array',
        float32: 'Float32Array', float64: 'Float64Array',
      }[dtype]);
      const f = flatOf(got);
      expect(f.slice(4, 8)).toEqual(extremes[dtype]);
      expect([...f.slice(0, 4), ...f.slice(8)]).toEqual(new Array(8).fill(fill));
    });
  });

  describe('chunks', () => {
    it('chunkSlices names the chunks an index touches (100^3, 32^3 chunks)', async () => {
      const ds = await con.createDataset('slices', { shape: [100, 100, 100], chunkSize: [32, 32, 32] });
      expect(ds.chunkSlices([50, s(0, 32), s(0, 32)])).toHaveLength(1);
      expect(ds.chunkSlices([50, s(0, 32), s(0, 33)])).toHaveLength(2);
      expect(ds.chunkSlices([s(0, 50), s(0, 32), s(0, 33)])).toHaveLength(4);
      expect(ds.chunkSlices([s(), s(0, 66), s(50, 96)])).toHaveLength(24);
      expect(ds.chunkSlices()).toHaveLength(64);
      const [first, second] = ds.chunkSlices([50, s(0, 32), s(30, 33)]);
      expect(first.index).toEqual([1, 0, 0]);
      expect(first.chunk.map(String)).toEqual(['18:19:1', '0:32:1', '30:32:1']);
      expect(first.result.map(String)).toEqual(['0:32:1', '0:2:1']);
      expect(second.index).toEqual([1, 0, 1]);
      expect(second.result.map(String)).toEqual(['0:32:1', '2:3:1']);
      expect(await ds.storedChunks()).toEqual([]);
    });

    it('concurrent sets of disjoint regions that share chunks lose nothing', async () => {
      const ds = await con.createDataset('concurrent', { shape: [6, 40], dtype: 'int32', chunkSize: [6, 40] });
      await Promise.all(Array.from({ length: 40 }, (_, j) => ds.set([s(), j], j + 1)));
      const got = flatOf(await ds.get([0]));
      expect(got).toEqual(Array.from({ length: 40 }, (_, j) => j + 1));
    });

    it('reading never creates a chunk; writing creates only the chunks touched', async () => {
      const ds = await con.createDataset('lazy', { shape: [10, 10], chunkSize: [4, 4], fillValue: 2 });
      expect(flatOf(await ds.get([s(0, 10)]))).toEqual(new Array(100).fill(2));
      expect(await ds.hasChunk([0, 0])).toBe(false);
      expect(await ds.storedChunks()).toEqual([]);
      await ds.set([s(5, 9), 1], 8);
      expect(await ds.storedChunks()).toEqual([[1, 0], [2, 0]]);
    });

    it('getChunk/createChunk/setData/getData/delChunk work in chunk coordinates', async () => {
      const ds = await con.createDataset('chunkapi', { shape: [5, 5], dtype: 'int16', chunkSize: [3, 3], fillValue: -1 });
      const edge = ds.getChunk([1, 1]);
      expect(edge.shape).toEqual([2, 2]);
      expect(edge.origin).toEqual([3, 3]);
      expect(await edge.exists()).toBe(false);
      expect(flatOf(await edge.getData())).toEqual([-1, -1, -1, -1]);
      const c = await ds.createChunk([0, 1]);
      expect(await ds.hasChunk([0, 1])).toBe(true);
      await expect(ds.createChunk([0, 1])).rejects.toBeInstanceOf(dn.ChunkExistsError);
      await c.setData([[1, 2], [3, 4], [5, 6]]);
      await c.setData(9, [1, 0]);
      expect(flatOf(await c.getData())).toEqual([1, 2, 9, 4, 5, 6]);
      expect(flatOf(await c.getData([s(), 1]))).toEqual([2, 4, 6]);
      expect(flatOf(await ds.get([s(0, 3), s(3, 5)]))).toEqual([1, 2, 9, 4, 5, 6]);
      expect(await ds.delChunk([0, 1])).toBe(true);
      expect(await ds.delChunk([0, 1])).toBe(false);
      expect(flatOf(await ds.get([0, s(3, 5)]))).toEqual([-1, -1]);
      expect(() => ds.getChunk([2, 0])).toThrow(dn.IndexError);
      expect(() => ds.getChunk([0])).toThrow(dn.IndexError);
    });
  });

  describe('load, clone, clear, delete', () => {
    it('loads ndarrays, typed arrays, nested arrays and other datasets; rejects other shapes', async () => {
      const ds = await con.createDataset('loadme', { shape: [3, 5], dtype: 'float64', chunkSize: [2, 2] });
      const values = Float64Array.from({ length: 15 }, (_, i) => i * 1.5);
      await ds.load(dn.ndarray(values, [3, 5]));
      expect(flatOf(await ds.get())).toEqual(Array.from(values));
      const transposed = dn.ndarray(Float64Array.from({ length: 15 }, (_, i) => i), [5, 3]).transpose(1, 0);
      await ds.load(transposed as never);
      expect(flatOf(await ds.get([0]))).toEqual([0, 3, 6, 9, 12]);
      const other = await con.createDataset('loadsrc', { data: dn.ndarray(Int32Array.from({ length: 15 }, (_, i) => -i), [3, 5]), chunkSize: [3, 1] });
      await ds.load(other);
      expect(flatOf(await ds.get())).toEqual(Array.from({ length: 15 }, (_, i) => (i === 0 ? 0 : -i)));
      await expect(ds.load(dn.ndarray(values, [5, 3]))).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.load([1, 2, 3])).rejects.toBeInstanceOf(dn.ShapeError);
    });

    it('clone copies the layout, and the data only when asked', async () => {
      const ds = await con.createDataset('orig', { shape: [6], dtype: 'uint16', chunkSize: [4], fillValue: 1 });
      await ds.set([s(0, 3)], 7);
      const empty = await ds.clone('orig-empty');
      expect(empty.shape).toEqual([6]);
      expect(empty.dtype).toBe('uint16');
      expect(empty.chunkSize).toEqual([4]);
      expect(empty.fillValue).toBe(1);
      expect(flatOf(await empty.get())).toEqual([1, 1, 1, 1, 1, 1]);
      const full = await ds.clone('orig-full', { data: true });
      expect(flatOf(await full.get())).toEqual([7, 7, 7, 1, 1, 1]);
      await full.set([0], 0);
      expect(flatOf(await ds.get([0]))).toEqual([7]);
      await expect(ds.clone('orig-full')).rejects.toBeInstanceOf(dn.DatasetExistsError);
    });

    it('clear brings every value back to the fill value and removes chunks; delete removes the dataset', async () => {
      const ds = await con.createDataset('clearme', { shape: [8, 8], dtype: 'int32', chunkSize: [3, 3], fillValue: 4 });
      await ds.set(undefined, 1);
      expect((await ds.storedChunks()).length).toBe(9);
      await ds.clear();
      expect(await ds.storedChunks()).toEqual([]);
      expect(flatOf(await ds.get())).toEqual(new Array(64).fill(4));
      await ds.delete();
      expect(await con.hasDataset('clearme')).toBe(false);
    });
  });

  describe('identity, buffered writes and concurrent writers', () => {
    it('a handle on a deleted dataset fails with DatasetNotFoundError, writes nothing, and never sees a new dataset of the same name', async () => {
      const ds = await con.createDataset('stale', { shape: [8, 8], dtype: 'int32', chunkSize: [4, 4], fillValue: -1 });
      await ds.set([s(0, 2)], 7);
      await ds.set([5, 5], 9); // buffered (a partial chunk) when the cache is on
      await (await con.getDataset('stale')).delete();
      for (const attempt of [() => ds.set([0, 0], 1), () => ds.get(), () => ds.load(dn.ndarray(new Int32Array(64), [8, 8])),
        () => ds.apply((c) => c), () => ds.clear(), () => ds.getChunk([0, 0]).setData(3), () => ds.flush().then(() => ds.storedChunks())]) {
        await expect(attempt()).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      }
      expect(await con.hasDataset('stale')).toBe(false);
      const again = await con.createDataset('stale', { shape: [8, 8], dtype: 'int32', chunkSize: [4, 4], fillValue: -1 });
      expect(await again.storedChunks()).toEqual([]);
      await expect(ds.set([0, 0], 1)).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      await expect(ds.get([0, 0])).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      expect(flatOf(await again.get())).toEqual(new Array(64).fill(-1));
      expect(await again.storedChunks()).toEqual([]);
    });

    it('reads see buffered writes; flush() stores them for other connections; disconnect() flushes', async () => {
      const ds = await con.createDataset('buffered', { shape: [6, 10], dtype: 'float64', chunkSize: [3, 5] });
      await ds.set([1, s(2, 7)], 4);            // parts of two chunks
      await ds.set([s(3, 6), s(5, 10)], 2);     // a whole chunk
      expect(flatOf(await ds.get([1]))).toEqual([0, 0, 4, 4, 4, 4, 4, 0, 0, 0]);
      await ds.flush();
      const other = await reopen(con);
      try {
        expect(flatOf(await (await other.getDataset('buffered')).get([1]))).toEqual([0, 0, 4, 4, 4, 4, 4, 0, 0, 0]);
        await (await other.getDataset('buffered')).set([0, 0], 8);
      } finally {
        await other.disconnect();
      }
      expect(flatOf(await ds.get([0, s(0, 2)]))).toEqual([8, 0]);
      expect(flatOf(await ds.get([s(3, 6), 9]))).toEqual([2, 2, 2]);
    });

    it('two connections writing disjoint cells of the same chunks lose nothing, whatever the order of their commits', async () => {
      const ds = await con.createDataset('shared', { shape: [6, 10], dtype: 'float64', chunkSize: [3, 5] });
      const other = await reopen(con);
      try {
        const theirs = await other.getDataset('shared');
        const r = rng(99);
        for (let i = 0; i < 60; i++) {
          const handle = i % 2 === 0 ? ds : theirs;
          await handle.set([Math.floor(i / 10), i % 10], i + 1);
          if (r() < 0.2) await handle.flush();
          if (r() < 0.2) await (i % 2 === 0 ? theirs : ds).get([s(0, 3)]); // reads in between
        }
        await Promise.all([ds.flush(), theirs.flush()]);
        const expected = Array.from({ length: 60 }, (_, i) => i + 1);
        expect(flatOf(await ds.get())).toEqual(expected);
        expect(flatOf(await theirs.get())).toEqual(expected);
      } finally {
        await other.disconnect();
      }
    });

    it('createDataset with data it refuses leaves no dataset behind, and a later create works', async () => {
      await expect(con.createDataset('refused', { data: [[1, 2], [3]] })).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(con.createDataset('refused', { data: [[1, NaN]], dtype: 'int64' })).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(con.createDataset('refused', { data: [['x']] as never })).rejects.toBeInstanceOf(dn.DTypeError);
      expect(await con.hasDataset('refused')).toBe(false);
      const ds = await con.createDataset('refused', { data: [[1, 2]], dtype: 'int64' });
      expect(flatOf(await ds.get())).toEqual([1n, 2n]);
    });

    it('apply in place keeps a write that lands on a chunk while the kernel runs (the kernel runs again)', async () => {
      const ds = await con.createDataset('apply-race', { shape: [4], dtype: 'float64', chunkSize: [4] });
      await ds.set(undefined, [1, 2, 3, 4]);
      const dir = mkdtempSync(join(tmpdir(), 'dosna-apply-race-'));
      const other = await reopen(con);
      try {
        const running = ds.apply(dn.kernel(new URL('./support/kernels.ts', import.meta.url), 'doubleAfterSignal'), { args: { dir } });
        const t0 = Date.now();
        while (!existsSync(join(dir, 'started'))) {
          if (Date.now() - t0 > 30_000) throw new Error('the kernel never started');
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        const theirs = await other.getDataset('apply-race');
        await theirs.set([0], 10); // lands after the kernel read the chunk
        await theirs.flush();
        writeFileSync(join(dir, 'go'), '');
        await running;
        expect(flatOf(await ds.get())).toEqual([20, 4, 6, 8]);
        expect(readFileSync(join(dir, 'runs'), 'utf8').trim().split('\n')).toHaveLength(2);
      } finally {
        await other.disconnect();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
