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

type FloatArray = Float32Array | Float64Array;

/** One correlation pass along `axis` with reflected borders; writes `out` (may not alias `input`). */
export function correlateAxis(input: ArrayLike<number>, shape: readonly number[], axis: number, weights: Float64Array, out: FloatArray): void {
  const n = shape[axis];
  let outer = 1;
  for (let a = 0; a < axis; a++) outer *= shape[a];
  let inner = 1;
  for (let a = axis + 1; a < shape.length; a++) inner *= shape[a];
  const radius = (weights.length - 1) >> 1;
  // Reflected source row for every (i, k): precomputed once per pass.
  const source = new Int32Array(n * weights.length);
  for (let i = 0; i < n; i++) for (let k = -radius; k <= radius; k++) source[i * weights.length + k + radius] = reflectIndex(i + k, n);
  if (inner === 1) {
    const line = new Float64Array(n + 2 * radius);
    for (let o = 0; o < outer; o++) {
      const base = o * n;
      for (let p = 0; p < line.length; p++) line[p] = input[base + reflectIndex(p - radius, n)];
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let k = 0; k < weights.length; k++) acc += weights[k] * line[i + k];
        out[base + i] = acc;
      }
    }
    return;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let i = 0; i < n; i++) {
      acc.fill(0);
      for (let k = 0; k < weights.length; k++) {
        const w = weights[k];
        const row = base + source[i * weights.length + k] * inner;
        for (let j = 0; j < inner; j++) acc[j] += w * input[row + j];
      }
      out.set(acc, base + i * inner);
    }
  }
}

/** Gaussian filter along one axis; returns a new array of the input's float type (float64 for others). */
export function gaussianFilter1d(data: TypedArray, shape: readonly number[], axis: number, sigma: number, truncate = 4): FloatArray {
  const out = data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length);
  correlateAxis(data as ArrayLike<number>, shape, axis, gaussianWeights(sigma, truncate), out);
  return out;
}

/** N-d Gaussian filter as separable passes (float64 in between, like SciPy but without the intermediate rounding). */
export function gaussianFilter(data: TypedArray, shape: readonly number[], sigma: number, truncate = 4): FloatArray {
  const weights = gaussianWeights(sigma, truncate);
  let a = new Float64Array(data.length);
  let b = new Float64Array(data.length);
  correlateAxis(data as ArrayLike<number>, shape, 0, weights, a);
  for (let axis = 1; axis < shape.length; axis++) {
    correlateAxis(a, shape, axis, weights, b);
    [a, b] = [b, a];
  }
  return data instanceof Float32Array ? Float32Array.from(a) : a;
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
