/**
 * DirtyCells (which cells of a cached chunk this process wrote) against a plain model: a byte
 * per cell set by every marked part. Random parts (contiguous, reversed, strided, single
 * cells, overlapping) on interior and edge chunks; after each mark, whether every cell is
 * written and what an overlay copies must agree with the model, across the switch from boxes
 * to a byte mask. An edge chunk is never all written, and its padding is never copied.
 */
import { describe, expect, it } from 'vitest';
import { DirtyCells } from '../src/chunk-cache/dirty-cells.js';
import { chunkView } from '../src/chunk-io.js';
import { axisPart, cStrides, product, type AxisPart } from '../src/slicing.js';
import type { DatasetMeta } from '../src/store.js';
import { fillStrided } from '../src/strided.js';

describe('dirty cells of a cached chunk', () => {
  it('say which cells were written, and whether all were, exactly as a byte per cell would', () => {
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let t = 0; t < 400; t++) {
      const chunkSize = [1 + rand(5), 1 + rand(6), 1 + rand(7)];
      // Sometimes an edge chunk: the dataset ends inside it.
      const grid = [2, 2, 2];
      const edge = rand(2) === 1;
      const shape = chunkSize.map((c) => (edge ? c + 1 + rand(c) : 2 * c));
      const meta: DatasetMeta = { name: 'd', shape, dtype: 'float64', chunkSize, fillValue: 0, uid: 'u' };
      const index = grid.map(() => 1);
      const valid = chunkSize.map((c, a) => Math.min(c, shape[a] - c));
      const isEdge = valid.some((v, a) => v < chunkSize[a]);
      const dirty = new DirtyCells(meta, index);
      const model = new Uint8Array(product(chunkSize));
      const n = product(chunkSize);
      const src = Float64Array.from({ length: n }, (_, i) => i + 1);
      for (let k = 0; k < 1 + rand(12); k++) {
        // A random selection inside the valid region, as chunkPart would cut it.
        const parts: AxisPart[] = valid.map((v, a) => {
          const kind = rand(4);
          const start = rand(v);
          const step = kind === 0 ? 2 : kind === 1 ? -1 : 1;
          const count = step > 0 ? 1 + rand(Math.ceil((v - start) / step)) : 1 + rand(start + 1);
          return axisPart({ start: chunkSize[a] + start, step, count, squeeze: false }, chunkSize[a], 1)!;
        });
        dirty.mark(parts);
        fillStrided(chunkView(model, meta, parts), 1);
        const validCells = product(valid);
        let marked = 0;
        const strides = cStrides(chunkSize);
        for (let x = 0; x < valid[0]; x++) for (let y = 0; y < valid[1]; y++) for (let z = 0; z < valid[2]; z++) marked += model[x * strides[0] + y * strides[1] + z];
        // An edge chunk is never all written: its padding may hold another writer's cells.
        expect(dirty.coversAll(), `case ${t} step ${k}`).toBe(!isEdge && marked === validCells);
        // Written cells get src; every other cell, the padding of an edge chunk too, keeps what
        // is stored (-1 here).
        const dst = new Float64Array(n).fill(-1);
        dirty.overlay(dst, src);
        const got = Array.from(dst);
        const want = Array.from(model, (m, i) => (m ? src[i] : -1));
        expect(got, `case ${t} step ${k}`).toEqual(want);
      }
      dirty.release();
    }
  });

  it('keep a plane-by-plane writer in one box per chunk: planes that continue a box join it, others stay apart', () => {
    const chunkSize = [100, 4, 6];
    const meta: DatasetMeta = { name: 'd', shape: [200, 4, 6], dtype: 'float64', chunkSize, fillValue: 0, uid: 'u' };
    const plane = (z: number): AxisPart[] => [
      { chunk: 0, localStart: z, step: 1, count: 1, outStart: 0 },
      { chunk: 0, localStart: 0, step: 1, count: 4, outStart: 0 },
      { chunk: 0, localStart: 0, step: 1, count: 6, outStart: 0 },
    ];
    const dirty = new DirtyCells(meta, [0, 0, 0]);
    // Every other plane first (50 boxes apart), then the rest, which join them: more writes
    // than the 64 boxes kept apart at most, and still no byte per cell.
    for (let z = 0; z < 100; z += 2) dirty.mark(plane(z));
    expect(dirty.coversAll()).toBe(false);
    for (let z = 99; z >= 1; z -= 2) dirty.mark(plane(z));
    expect(dirty.bytes).toBe(0);
    expect(dirty.filledByBoxes()).toBe(true);
    expect(dirty.coversAll()).toBe(true);
    const dst = new Float64Array(product(chunkSize)).fill(-1);
    dirty.overlay(dst, Float64Array.from(dst, (_, i) => i));
    expect(dst.every((v, i) => v === i)).toBe(true);
    // Overlapping a kept box still switches to a byte per cell.
    dirty.mark(plane(5));
    expect(dirty.bytes).toBe(product(chunkSize));
    expect(dirty.coversAll()).toBe(true);
    dirty.release();
  });
});
