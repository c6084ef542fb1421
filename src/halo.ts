/**
 * Halos: a chunk padded with `h` cells of its neighbours on every side, mirror-reflected at
 * the dataset's edges with SciPy's `mode='reflect'` convention (d c b a | a b c d | d c b a).
 */
import { allocateUninitialized, type DType, type TypedArray } from './dtypes.js';
import { cStrides, product } from './slicing.js';

/** Maps any integer coordinate into [0, n) by half-sample symmetric reflection. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/** The padded extent of one axis: dataset coordinates of every padded cell, and the box they span. */
export interface PaddedAxis {
  /** Dataset coordinate of each padded position. */
  readonly coords: Int32Array;
  /** The smallest box [lo, hi) of dataset coordinates that covers `coords`. */
  readonly lo: number;
  readonly hi: number;
}

export function paddedAxis(origin: number, size: number, halo: number, n: number): PaddedAxis {
  const coords = new Int32Array(size + 2 * halo);
  let lo = Infinity;
  let hi = -Infinity;
  for (let p = 0; p < coords.length; p++) {
    const c = reflectIndex(origin - halo + p, n);
    coords[p] = c;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
  }
  return { coords, lo, hi: hi + 1 };
}

/** Whether the axis's padded coordinates are its box in order (lo, lo + 1, ..., hi - 1): no cell reflected. */
function isStraight(axis: PaddedAxis): boolean {
  if (axis.coords.length !== axis.hi - axis.lo) return false;
  for (let p = 0; p < axis.coords.length; p++) if (axis.coords[p] !== axis.lo + p) return false;
  return true;
}

/**
 * Builds the padded block from `box`, a C-order array holding the dataset box
 * [axes[k].lo, axes[k].hi) of every axis. Runs of consecutive coordinates along the last
 * axis are copied with `TypedArray.set`. Where no axis reflects, the block is `box` itself,
 * not a copy.
 */
export function gatherPadded(dtype: DType, box: TypedArray, axes: readonly PaddedAxis[]): TypedArray {
  // Away from the dataset's edges nothing is reflected: the padded block is the box itself.
  if (axes.every(isStraight)) return box;
  const boxShape = axes.map((a) => a.hi - a.lo);
  const boxStrides = cStrides(boxShape);
  const outShape = axes.map((a) => a.coords.length);
  // Uninitialized: every padded cell is written below.
  const out = allocateUninitialized(dtype, product(outShape));
  const nd = axes.length;
  if (nd === 0) {
    out[0] = box[0] as never;
    return out;
  }
  const last = axes[nd - 1];
  const runs = contiguousRuns(last.coords);
  const counter = new Array<number>(Math.max(0, nd - 1)).fill(0);
  const o = out as Float64Array;
  const b = box as Float64Array;
  let outOffset = 0;
  for (;;) {
    let boxOffset = 0;
    for (let k = 0; k < nd - 1; k++) boxOffset += (axes[k].coords[counter[k]] - axes[k].lo) * boxStrides[k];
    for (const [p, len] of runs) {
      const from = boxOffset + last.coords[p] - last.lo;
      o.set(b.subarray(from, from + len), outOffset + p);
    }
    outOffset += last.coords.length;
    let k = nd - 2;
    for (; k >= 0; k--) {
      if (++counter[k] < outShape[k]) break;
      counter[k] = 0;
    }
    if (k < 0) break;
  }
  return out;
}

/** [start, length] of each run where coordinates increase by one. */
function contiguousRuns(coords: Int32Array): [number, number][] {
  const runs: [number, number][] = [];
  let start = 0;
  for (let p = 1; p <= coords.length; p++) {
    if (p === coords.length || coords[p] !== coords[p - 1] + 1) {
      runs.push([start, p - start]);
      start = p;
    }
  }
  return runs;
}
