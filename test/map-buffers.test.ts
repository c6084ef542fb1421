/**
 * A map with a halo reads each chunk's neighbourhood into a region and gathers the padded
 * block from it; the region's memory then serves the next region (src/chunk-kernels.ts). The
 * chunk function's own input must never be recycled: it may keep it. Without a halo, on a store
 * that keeps chunks in shared memory, an interior chunk's input is read into shared memory, so a
 * chunk function that works in place hands the store a buffer it adopts without a copy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { takeBuffer } from '../src/buffer-pool.js';

describe('map: where chunk function inputs live', () => {
  let con: dn.Connection;
  beforeAll(async () => { con = await dn.connect('map-buffers', { backend: 'ram', engine: 'cpu' }); });
  afterAll(async () => { await con.disconnect(); });

  it('keeps every chunk function input intact while regions are recycled, and recycles them', async () => {
    const shape = [10, 11, 12];
    const values = Float32Array.from({ length: 10 * 11 * 12 }, (_, i) => i);
    const ds = await con.createDataset('cube', { data: dn.ndarray(values, shape), chunkSize: [4, 4, 4] });
    const kept: { index: readonly number[]; data: Float32Array; copy: Float32Array }[] = [];
    const keep = (chunk: dn.NdArray, ctx: dn.ChunkContext) => {
      const data = chunk.data as Float32Array;
      kept.push({ index: ctx.index, data, copy: Float32Array.from(data) });
      return chunk;
    };
    const out = await ds.map(keep, 'kept', { halo: 1 });
    expect(kept).toHaveLength(3 * 3 * 3);
    // Nothing a chunk function was given was written over by a later chunk's read.
    for (const { index, data, copy } of kept) expect({ index, data: Array.from(data) }).toEqual({ index, data: Array.from(copy) });
    // Each kept input is its chunk's padded block: the corner chunk's first padded cell reflects to (0, 0, 0).
    const corner = kept.find((k) => k.index.every((i) => i === 0))!;
    expect(corner.data.length).toBe(6 * 6 * 6);
    expect(corner.data[0]).toBe(0);
    expect(Array.from((await out.get([0, 0, dn.s(0, 4)])).data as Float32Array)).toEqual([0, 1, 2, 3]);
    // The corner chunk's region (the box [0, 5) of every axis, 125 float32) went back to the pool.
    expect(takeBuffer(5 * 5 * 5 * 4)).toBeInstanceOf(ArrayBuffer);
  });

  it('stores the input a chunk function changed in place and returned without copying it, and copies otherwise', async () => {
    const shape = [8, 8, 6];
    const values = Float32Array.from({ length: 8 * 8 * 6 }, (_, i) => i);
    const ds = await con.createDataset('in-place', { data: dn.ndarray(values, shape), chunkSize: [4, 4, 4] });
    const given = new Map<string, Float32Array>();
    const double = (chunk: dn.NdArray, ctx: dn.ChunkContext) => {
      const data = chunk.data as Float32Array;
      for (let i = 0; i < data.length; i++) data[i] *= 2;
      given.set(ctx.index.join(), data);
      return chunk;
    };
    const out = await ds.map(double, 'doubled');
    expect(Array.from((await out.get()).data as Float32Array)).toEqual(Array.from(values, (v) => 2 * v));
    // Interior chunks (4 x 4 x 4): the stored chunk is the very buffer the function changed.
    const interior = (await con.store.readChunkVersion(out.meta, [1, 1, 0])).bytes!;
    expect(interior.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(interior.buffer).toBe(given.get('1,1,0')!.buffer);
    // Edge chunks (4 x 4 x 2 cells of a 4 x 4 x 4 chunk) are laid out into a chunk buffer: a copy.
    const edge = (await con.store.readChunkVersion(out.meta, [1, 1, 1])).bytes!;
    expect(edge.buffer).not.toBe(given.get('1,1,1')!.buffer);
    // The input chunks were read, not changed.
    expect(Array.from((await ds.get()).data as Float32Array)).toEqual(Array.from(values));
  });
});
