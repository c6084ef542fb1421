/**
 * The conformance suite's `map` and `apply` (with halos, edge chunks, kernels that fail, run
 * again or change chunks concurrently) on every backend x engine, as test/conformance.test.ts
 * runs the rest of the model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { closeConnection, combos, openConnection, type Combo } from './support/matrix.js';
import { rng, type Flat } from './support/reference.js';

const flatOf = (a: { data: ArrayLike<number | bigint> }): Flat => Array.from(a.data as ArrayLike<number | bigint>);

describe.each(combos(true))('conformance: $label', (combo: Combo) => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection(combo); });
  afterAll(async () => { await closeConnection(con); });

  describe('map and apply', () => {
    /** A 5-point mean (radius 1), self-contained so every engine can ship it; returns the cells flat. */
    const mean3 = (chunk: dn.NdArray, ctx: dn.ChunkContext) => {
      const [nx, ny] = chunk.shape;
      const out = new Float64Array(nx * ny);
      const at = (i: number, j: number) => chunk.get(Math.min(nx - 1, Math.max(0, i)), Math.min(ny - 1, Math.max(0, j))) as number;
      for (let i = 0; i < nx; i++) {
        for (let j = 0; j < ny; j++) {
          out[i * ny + j] = (at(i - 1, j) + at(i, j) + at(i + 1, j) + at(i, j - 1) + at(i, j + 1)) / 5 + (ctx.args as number);
        }
      }
      return out;
    };

    /** The same stencil on the whole array, with mirror reflection at the edges. */
    function mean3Whole(values: Float64Array, nx: number, ny: number, add: number): number[] {
      const refl = (i: number, n: number) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);
      const at = (i: number, j: number) => values[refl(i, nx) * ny + refl(j, ny)];
      const out: number[] = [];
      for (let i = 0; i < nx; i++) for (let j = 0; j < ny; j++) out.push((at(i - 1, j) + at(i, j) + at(i + 1, j) + at(i, j - 1) + at(i, j + 1)) / 5 + add);
      return out;
    }

    it('map with halo equals the stencil on the whole array with reflected edges', async () => {
      const r = rng(5);
      const values = Float64Array.from({ length: 13 * 17 }, () => Math.round(r() * 100));
      const ds = await con.createDataset('stencil', { data: dn.ndarray(values, [13, 17]), chunkSize: [4, 5] });
      const out = await ds.map(mean3, 'stencil-out', { halo: 1, args: 0.25 });
      expect(out.shape).toEqual([13, 17]);
      const got = flatOf(await out.get()) as number[];
      const want = mean3Whole(values, 13, 17, 0.25);
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 10));
    });

    it('map without halo filters each chunk alone (differs from the whole-array result at chunk borders)', async () => {
      const values = Float64Array.from({ length: 8 * 8 }, (_, i) => (i * 7919) % 31);
      const ds = await con.createDataset('nohalo', { data: dn.ndarray(values, [8, 8]), chunkSize: [4, 4] });
      const out = await ds.map(mean3, 'nohalo-out', { args: 0 });
      const got = flatOf(await out.get()) as number[];
      // Chunk [0,0] filtered alone equals the whole-array stencil on that 4x4 block.
      const block = Float64Array.from({ length: 16 }, (_, k) => values[Math.floor(k / 4) * 8 + (k % 4)]);
      const want = mean3Whole(block, 4, 4, 0);
      for (let k = 0; k < 16; k++) expect(got[Math.floor(k / 4) * 8 + (k % 4)]).toBeCloseTo(want[k], 10);
      expect(got).not.toEqual(mean3Whole(values, 8, 8, 0));
    });

    it('passes ctx (index, origin, shape, halo, args) and padded chunks; may return the padded shape', async () => {
      const ds = await con.createDataset('ctx', { shape: [5, 3], dtype: 'int32', chunkSize: [2, 3] });
      await ds.set(undefined, dn.ndarray(Int32Array.from({ length: 15 }, (_, i) => i), [5, 3]));
      const identity = await ds.map((chunk) => chunk, 'ctx-same', { halo: 2 }); // padded result: the chunk's own cells are kept
      expect(flatOf(await identity.get())).toEqual(Array.from({ length: 15 }, (_, i) => i));
      // Each cell records what its chunk's function saw, so the check works wherever functions run.
      const seen = await ds.map((chunk, ctx) => {
        const c = ctx as dn.ChunkContext<{ base: number }>;
        const code = c.args.base + c.index[0] * 1000 + c.origin[0] * 100 + c.shape[0] * 10 + c.halo[1]
          + chunk.shape[0] * 1e5 + chunk.shape[1] * 1e6;
        return new Int32Array(c.shape[0] * c.shape[1]).fill(code);
      }, 'ctx-seen', { halo: 2, args: { base: 1e7 } });
      const code = (index: number, origin: number, rows: number, padded: number) => 1e7 + index * 1000 + origin * 100 + rows * 10 + 2 + padded * 1e5 + 7e6;
      expect(flatOf(await seen.get([s(), 0]))).toEqual([
        code(0, 0, 2, 6), code(0, 0, 2, 6), code(1, 2, 2, 6), code(1, 2, 2, 6), code(2, 4, 1, 5),
      ]);
    });

    it('apply changes chunks in place (returned or mutated), with or without halo', async () => {
      const ds = await con.createDataset('applyme', { shape: [7, 6], dtype: 'float32', chunkSize: [3, 4] });
      const values = Float32Array.from({ length: 42 }, (_, i) => i);
      await ds.load(dn.ndarray(values, [7, 6]));
      await ds.apply((chunk) => {
        const d = chunk.data as Float32Array;
        for (let i = 0; i < d.length; i++) d[i] += 1;
      });
      expect(flatOf(await ds.get())).toEqual(Array.from(values, (v) => v + 1));
      await ds.apply((chunk) => Float32Array.from(chunk.data as Float32Array, (v) => v * 2));
      expect(flatOf(await ds.get())).toEqual(Array.from(values, (v) => (v + 1) * 2));
      // With a halo, every chunk sees its neighbours' old values, never updated ones.
      const before = Float64Array.from(flatOf(await ds.get()) as number[]);
      await ds.apply(mean3 as never, { halo: 1, args: 0 });
      const want = mean3Whole(before, 7, 6, 0);
      (flatOf(await ds.get()) as number[]).forEach((v, i) => expect(v).toBeCloseTo(want[i], 4));
      expect((await con.listDatasets()).filter((n) => n.startsWith('__dosna'))).toEqual([]);
    });

    it('map can change the dtype; a failing function removes the output and reports the chunk', async () => {
      const ds = await con.createDataset('mapdtype', { shape: [4], dtype: 'int16', chunkSize: [2] });
      await ds.set(undefined, [1, 2, 3, 4]);
      const halves = await ds.map((c) => Float64Array.from(c.data as Int16Array, (v) => v / 2), 'halves', { dtype: 'float64' });
      expect(halves.dtype).toBe('float64');
      expect(flatOf(await halves.get())).toEqual([0.5, 1, 1.5, 2]);
      const failing = ds.map((_c, ctx) => {
        if (ctx.index[0] === 1) throw new Error('boom on purpose');
      }, 'never');
      await expect(failing).rejects.toBeInstanceOf(dn.KernelError);
      await expect(ds.map((_c, ctx) => { if (ctx.index[0] === 1) throw new Error('boom on purpose'); }, 'never'))
        .rejects.toThrow(/boom on purpose/);
      expect(await con.hasDataset('never')).toBe(false);
      await expect(ds.map(() => new Float64Array(3), 'wrongshape')).rejects.toBeInstanceOf(dn.ShapeError);
      expect(await con.hasDataset('wrongshape')).toBe(false);
      await expect(ds.map(42 as never, 'notfn')).rejects.toBeInstanceOf(dn.DosnaError);
      await expect(ds.map((c) => c, 'mapdtype')).rejects.toBeInstanceOf(dn.DatasetExistsError);
      expect(flatOf(await ds.get())).toEqual([1, 2, 3, 4]);
    });

    it('runs module kernels given with dn.kernel', async () => {
      const ds = await con.createDataset('modk', { shape: [6], dtype: 'float64', chunkSize: [4] });
      await ds.set(undefined, [1, 2, 3, 4, 5, 6]);
      const out = await ds.map(dn.kernel(new URL('./support/kernels.ts', import.meta.url), 'scale'), 'modk-out', { args: { factor: 3 } });
      expect(flatOf(await out.get())).toEqual([3, 6, 9, 12, 15, 18]);
    });

    it('reports progress and keeps a per-chunk record of the run; honours abort', async () => {
      const ds = await con.createDataset('progress', { shape: [10, 10], chunkSize: [5, 5] });
      const seen: dn.Progress[] = [];
      await ds.apply((c) => c, { onProgress: (p) => seen.push(p) });
      expect(seen.map((p) => p.done)).toEqual([1, 2, 3, 4]);
      expect(seen.every((p) => p.total === 4)).toBe(true);
      expect(ds.lastRun?.operation).toBe('apply');
      expect(ds.lastRun?.chunks).toBe(4);
      expect(ds.lastRun?.tasks).toHaveLength(4);
      expect(ds.lastRun?.bytesWritten).toBe(4 * 25 * 4);
      const controller = new AbortController();
      controller.abort();
      await expect(ds.load(dn.ndarray(new Float32Array(100), [10, 10]), { signal: controller.signal })).rejects.toBeInstanceOf(dn.AbortError);
      const late = new AbortController();
      const big = await con.createDataset('progress-big', { shape: [40, 40], chunkSize: [2, 2] });
      const run = big.apply((c) => c, { signal: late.signal, onProgress: (p) => { if (p.done === 3) late.abort(); } });
      await expect(run).rejects.toBeInstanceOf(dn.AbortError);
      expect(big.lastRun).toBeUndefined();
      // get takes a signal too (dosna serve cancels the reads of clients that went away), on a
      // read through the engine and on one the chunk cache serves.
      await expect(big.get([s(0, 10)], { signal: controller.signal })).rejects.toBeInstanceOf(dn.AbortError);
      await big.set([0, 0], 1);
      await expect(big.get([s(0, 1), s(0, 1)], { signal: controller.signal })).rejects.toBeInstanceOf(dn.AbortError);
      expect((await big.get([0, s(0, 2)], { signal: new AbortController().signal })).data).toEqual(Float32Array.of(1, 0));
    });
  });
});
