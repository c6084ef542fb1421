/**
 * Gaussian filters for chunk kernels, with SciPy's semantics:
 * `scipy.ndimage.gaussian_filter(x, sigma, mode='reflect', truncate=4)` and
 * `gaussian_filter1d(x, sigma, axis, mode='reflect', truncate=4)`.
 *
 * A pass along one axis treats the block as (outer, n, inner) and accumulates whole
 * contiguous rows of length `inner` (`out[o, i, :] += w_k * x[o, i+k, :]`), so every axis
 * streams through memory; only the last axis (inner = 1) works line by line.
 */
import type { ChunkContext } from '../kernel.js';
import { kernel } from '../kernel.js';
import type { NdArray } from '../ndarray.js';
import type { TypedArray } from '../dtypes.js';
import { reflectIndex } from '../halo.js';

/** Normalized Gaussian weights for offsets -r..r, r = floor(truncate * sigma + 0.5) (SciPy's radius). */
export function gaussianWeights(sigma: number, truncate = 4): Float64Array {
  if (!(sigma > 0)) throw new RangeError(`sigma must be positive, got ${sigma}`);
  const radius = Math.floor(truncate * sigma + 0.5);
  const w = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) {
    w[k + radius] = Math.exp((-0.5 / (sigma * sigma)) * k * k);
    sum += w[k + radius];
  }
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

/** The arrays the gaussian filters return. */
export type FloatArray = Float32Array | Float64Array;

/**
 * One correlation pass along `axis` with reflected borders and symmetric weights; writes
 * `out` (which must not alias `input`). For each output row the taps are the inner loop, so
 * every output element is computed in a register from 2r + 1 reads (half the multiplies,
 * thanks to symmetry) and written once.
 */
export function correlateAxis(input: FloatArray, shape: readonly number[], axis: number, weights: Float64Array, out: FloatArray): void {
  const n = shape[axis];
  let outer = 1;
  for (let a = 0; a < axis; a++) outer *= shape[a];
  let inner = 1;
  for (let a = axis + 1; a < shape.length; a++) inner *= shape[a];
  const r = (weights.length - 1) >> 1;
  const w = weights.subarray(r); // w[k] for k = 0..r
  if (inner === 1) {
    const line = new Float64Array(n + 2 * r);
    for (let o = 0; o < outer; o++) {
      const base = o * n;
      for (let p = 0; p < line.length; p++) line[p] = input[base + reflectIndex(p - r, n)];
      lineKernel(r)(line, out, base, n, w);
    }
    return;
  }
  // Row offsets of the reflected neighbours of output row i: below[k] = row i - k, above[k] = row i + k.
  const below = new Int32Array(r + 1);
  const above = new Int32Array(r + 1);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k <= r; k++) {
        below[k] = base + reflectIndex(i - k, n) * inner;
        above[k] = base + reflectIndex(i + k, n) * inner;
      }
      rowKernel(r)(input, out, base + i * inner, inner, below, above, w);
    }
  }
}

type LineKernel = (line: Float64Array, out: FloatArray, base: number, n: number, w: Float64Array) => void;
const lineKernels = new Map<number, LineKernel>();

/** The last-axis loop over a padded line, taps unrolled like {@link rowKernel}. */
function lineKernel(r: number): LineKernel {
  let fn = lineKernels.get(r);
  if (!fn) {
    const lines = ['const w0 = w[0];'];
    const terms = [`w0 * line[i + ${r}]`];
    for (let k = 1; k <= r; k++) {
      lines.push(`const w${k} = w[${k}];`);
      terms.push(`w${k} * (line[i + ${r - k}] + line[i + ${r + k}])`);
    }
    lines.push(`for (let i = 0; i < n; i++) out[base + i] = ${terms.join(' + ')};`);
    fn = new Function('line', 'out', 'base', 'n', 'w', lines.join('\n')) as LineKernel;
    lineKernels.set(r, fn);
  }
  return fn;
}

type RowKernel = (input: FloatArray, out: FloatArray, row: number, inner: number, below: Int32Array, above: Int32Array, w: Float64Array) => void;
const rowKernels = new Map<number, RowKernel>();

/**
 * The row loop with the 2r + 1 taps unrolled, generated once per radius: V8 then keeps every
 * weight and row offset in registers, which a loop over taps does not (measured: 2.5x faster
 * on 64^3 float32 blocks with r = 6).
 */
function rowKernel(r: number): RowKernel {
  let fn = rowKernels.get(r);
  if (!fn) {
    const lines = ['const w0 = w[0], c0 = below[0];'];
    const terms = ['w0 * input[c0 + j]'];
    for (let k = 1; k <= r; k++) {
      lines.push(`const w${k} = w[${k}], b${k} = below[${k}], a${k} = above[${k}];`);
      terms.push(`w${k} * (input[b${k} + j] + input[a${k} + j])`);
    }
    lines.push(`for (let j = 0; j < inner; j++) out[row + j] = ${terms.join(' + ')};`);
    fn = new Function('input', 'out', 'row', 'inner', 'below', 'above', 'w', lines.join('\n')) as RowKernel;
    rowKernels.set(r, fn);
  }
  return fn;
}

/** Gaussian filter along one axis; returns a new array of the input's float type (float64 for others). */
export function gaussianFilter1d(data: TypedArray, shape: readonly number[], axis: number, sigma: number, truncate = 4): FloatArray {
  const out = data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length);
  correlateAxis(asFloat(data), shape, axis, gaussianWeights(sigma, truncate), out);
  return out;
}

/**
 * N-d Gaussian filter as separable passes. Like SciPy, each pass rounds to the output type
 * (float32 for float32 input, float64 otherwise), which also halves memory traffic.
 */
export function gaussianFilter(data: TypedArray, shape: readonly number[], sigma: number, truncate = 4): FloatArray {
  const weights = gaussianWeights(sigma, truncate);
  const make = () => (data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length));
  let a = make();
  let b = make();
  correlateAxis(asFloat(data), shape, 0, weights, a);
  for (let axis = 1; axis < shape.length; axis++) {
    correlateAxis(a, shape, axis, weights, b);
    [a, b] = [b, a];
  }
  return a;
}

/** Integer data is filtered as float64. */
function asFloat(data: TypedArray): FloatArray {
  if (data instanceof Float32Array || data instanceof Float64Array) return data;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

/** Arguments of the gaussian chunk kernels. */
export interface GaussianArgs {
  sigma: number;
  truncate?: number;
  /** Axis of the 1-D filter (`gaussian1d` only). */
  axis?: number;
}

/** Chunk kernel: the N-d Gaussian of each chunk (`ctx.args`: `{ sigma, truncate? }`). */
export function gaussian3d(chunk: NdArray, ctx: ChunkContext<GaussianArgs>): FloatArray {
  return gaussianFilter(chunk.data, chunk.shape, ctx.args.sigma, ctx.args.truncate);
}

/** Chunk kernel: the 1-D Gaussian of each chunk along `ctx.args.axis`. */
export function gaussian1d(chunk: NdArray, ctx: ChunkContext<GaussianArgs>): FloatArray {
  return gaussianFilter1d(chunk.data, chunk.shape, ctx.args.axis ?? 0, ctx.args.sigma, ctx.args.truncate);
}

const self = new URL(import.meta.url);

/** Module references to the gaussian kernels, ready for `map`/`apply` on every engine. */
export const kernels = {
  gaussian3d: kernel(self, 'gaussian3d'),
  gaussian1d: kernel(self, 'gaussian1d'),
};
