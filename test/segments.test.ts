/**
 * The segment plans of vectored chunk I/O (src/segments.ts) against the plain strided copy:
 * moving a chunk's bytes through a plan must give exactly what copyStrided gives, for random
 * chunk parts, places in the caller's array and edge-chunk padding.
 */
import { describe, expect, it } from 'vitest';
import { planSegments } from '../src/segments.js';
import { copyStrided, fillStrided, type StridedView } from '../src/strided.js';
import { cStrides } from '../src/slicing.js';
import { randInt, rng } from './support/reference.js';

/** Mostly 16 (rows of at least 64 bytes of float32), sometimes 1 (short rows, not planned). */
const c16 = (r: () => number) => (r() < 0.9 ? 16 : 1);

/** A random box inside a chunk of `chunk` and where it lies in a caller's array of `outer`. */
function randomCase(r: () => number) {
  const dims = randInt(r, 1, 4);
  const chunk = Array.from({ length: dims }, () => randInt(r, 1, 40));
  chunk[dims - 1] = randInt(r, 16, 80); // rows long enough to be planned, mostly
  const shape = chunk.map((c) => randInt(r, 1, c));
  shape[dims - 1] = randInt(r, Math.min(c16(r), chunk[dims - 1]), chunk[dims - 1]);
  const start = chunk.map((c, a) => randInt(r, 0, c - shape[a]));
  const outer = shape.map((n) => n + randInt(r, 0, 5));
  const at = outer.map((n, a) => randInt(r, 0, n - shape[a]));
  const cst = cStrides(chunk);
  const ost = cStrides(outer);
  const layout = { offset: start.reduce((o, s, a) => o + s * cst[a], 0), shape, strides: cst };
  const place = { offset: at.reduce((o, s, a) => o + s * ost[a], 0), shape, strides: ost };
  return { chunk, outer, layout, place };
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

describe('vectored chunk I/O plans', () => {
  it('a read plan puts each chunk byte where copyStrided would', () => {
    const r = rng(11);
    let planned = 0;
    for (let t = 0; t < 300; t++) {
      const { chunk, outer, layout, place } = randomCase(r);
      const stored = Float32Array.from({ length: size(chunk) }, (_, i) => i + 0.5);
      const expected = new Float32Array(size(outer)).fill(-1);
      copyStrided({ data: expected, ...place }, { data: stored, ...layout });
      const got = new Float32Array(size(outer)).fill(-1);
      const plan = planSegments(layout, { data: got, ...place });
      if (!plan) {
        // Declined only for rows under 64 bytes (after merging axes contiguous in both).
        expect(layout.shape[layout.shape.length - 1] * 4).toBeLessThan(64);
        continue;
      }
      planned++;
      // What a store does: the chunk's bytes from plan.start on, in order, into the segments.
      const bytes = new Uint8Array(stored.buffer);
      let at = plan.start;
      for (const seg of plan.segments) { seg.set(bytes.subarray(at, at + seg.byteLength)); at += seg.byteLength; }
      expect(at).toBeLessThanOrEqual(bytes.byteLength);
      expect(plan.payload).toBe(size(layout.shape) * 4);
      expect(got).toEqual(expected);
    }
    expect(planned).toBeGreaterThan(200);
  });

  it('a write plan is the whole chunk: the part from the caller, the fill value elsewhere', () => {
    const r = rng(12);
    for (let t = 0; t < 300; t++) {
      const { chunk, outer, layout, place } = randomCase(r);
      const source = Float64Array.from({ length: size(outer) }, (_, i) => i * 3 + 1);
      const expected = new Float64Array(size(chunk));
      fillStrided({ data: expected, offset: 0, shape: chunk, strides: cStrides(chunk) }, 7.25);
      copyStrided({ data: expected, ...layout }, { data: source, ...place });
      const plan = planSegments(layout, { data: source, ...place }, { chunkBytes: expected.byteLength, fill: 7.25 });
      if (!plan) continue;
      const written = new Uint8Array(plan.segments.reduce((n, s) => n + s.byteLength, 0));
      let at = 0;
      for (const seg of plan.segments) { written.set(seg, at); at += seg.byteLength; }
      expect(plan.start).toBe(0);
      expect(new Float64Array(written.buffer)).toEqual(expected);
    }
  });

  it('pads with the exact fill value, -0 apart from 0', () => {
    const source = new Float32Array(16).fill(1);
    const layout = { offset: 0, shape: [1, 16], strides: [32, 1] }; // one row of a 2 x 32 chunk
    const place = { data: source, offset: 0, shape: [1, 16], strides: [16, 1] };
    const padding = (fill: number) => {
      const plan = planSegments(layout, place, { chunkBytes: 64 * 4, fill })!;
      const bytes = new Uint8Array(plan.segments.reduce((n, seg) => n + seg.byteLength, 0));
      let at = 0;
      for (const seg of plan.segments) { bytes.set(seg, at); at += seg.byteLength; }
      return new Float32Array(bytes.buffer).subarray(16);
    };
    expect(padding(0).every((v) => Object.is(v, 0))).toBe(true);
    expect(padding(-0).every((v) => Object.is(v, -0))).toBe(true);
    expect(padding(Number.NaN).every(Number.isNaN)).toBe(true);
  });

  it('declines what vectored I/O cannot carry: reversed rows, broadcasts, short rows', () => {
    const data = new Float32Array(1000);
    const layout = { offset: 0, shape: [4, 32], strides: [32, 1] };
    const user = (strides: number[], offset = 0): StridedView => ({ data, offset, shape: [4, 32], strides });
    expect(planSegments(layout, user([32, 1]))).toBeDefined();
    expect(planSegments(layout, user([32, -1], 31))).toBeUndefined(); // a reversed row
    expect(planSegments(layout, user([32, 0]))).toBeUndefined(); // a broadcast row
    expect(planSegments({ offset: 0, shape: [4, 8], strides: [32, 1] }, { data, offset: 0, shape: [4, 8], strides: [8, 1] })).toBeUndefined(); // 32-byte rows
    expect(planSegments({ offset: 124, shape: [4, 32], strides: [-32, 1] }, user([32, 1]))).toBeUndefined(); // chunk rows backwards
  });
});
