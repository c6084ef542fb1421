/**
 * The chunk kernels and combiners of the built-in reductions, `ds.stats()` and
 * `ds.histogram()`: each chunk gives a partial result where it is read (any engine, any
 * process), and the caller combines the partials in chunk order, so results do not depend on
 * the engine or on which chunk finished first. The module is referenced by URL (`kernels`), so
 * worker threads and other processes import it as they import any `dn.kernel`.
 */
import { kernel, type ChunkContext } from '../kernel.js';
import type { NdArray } from '../ndarray.js';
import type { TypedArray } from '../dtypes.js';

/** What `ds.stats()` returns: NumPy's `size`, `min`, `max`, `sum`, `mean` and `std` (population, ddof 0). */
export interface DatasetStats {
  count: number;
  min: number;
  max: number;
  sum: number;
  mean: number;
  std: number;
}

/** One chunk's (or several chunks') statistics: count, extremes, sum, mean and the sum of squared deviations. */
export interface StatsPartial {
  count: number;
  min: number;
  max: number;
  sum: number;
  mean: number;
  m2: number;
}

/**
 * Chunk kernel of `ds.stats()`: two passes over the chunk (mean, then squared deviations),
 * in float64, as NumPy computes on `a.astype(float64)`. NaN propagates to every field but
 * the count, as in NumPy's `min`, `max`, `sum` and `std`.
 */
export function chunkStats(chunk: NdArray): StatsPartial {
  const data = chunk.data as TypedArray;
  const n = data.length;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  let nan = false;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) {
      const v = Number(data[i]);
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  } else {
    const values = data as Exclude<TypedArray, BigInt64Array | BigUint64Array>;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
      if (v !== v) nan = true;
    }
  }
  const mean = sum / n;
  let m2 = 0;
  for (let i = 0; i < n; i++) {
    const d = Number(data[i]) - mean;
    m2 += d * d;
  }
  return nan ? { count: n, min: NaN, max: NaN, sum: NaN, mean: NaN, m2: NaN } : { count: n, min, max, sum, mean, m2 };
}

/** Two partials as one (Chan, Golub and LeVeque's update for the mean and squared deviations). */
export function combineStats(a: StatsPartial, b: StatsPartial): StatsPartial {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  const count = a.count + b.count;
  const delta = b.mean - a.mean;
  return {
    count,
    min: Number.isNaN(a.min) || Number.isNaN(b.min) ? NaN : Math.min(a.min, b.min),
    max: Number.isNaN(a.max) || Number.isNaN(b.max) ? NaN : Math.max(a.max, b.max),
    sum: a.sum + b.sum,
    mean: a.mean + (delta * b.count) / count,
    m2: a.m2 + b.m2 + (delta * delta * a.count * b.count) / count,
  };
}

export const EMPTY_STATS: StatsPartial = { count: 0, min: NaN, max: NaN, sum: 0, mean: NaN, m2: NaN };

/** The statistics of the combined partials; the mean as NumPy's, the sum over the count. */
export function finishStats(p: StatsPartial): DatasetStats {
  return { count: p.count, min: p.min, max: p.max, sum: p.sum, mean: p.sum / p.count, std: Math.sqrt(p.m2 / p.count) };
}

/**
 * What a histogram's chunks need: bins, the range's ends, and the precision NumPy computes
 * in (float32 for float32 data, float64 otherwise), with `norm` as NumPy derives it.
 */
export interface HistogramArgs {
  bins: number;
  lo: number;
  hi: number;
  /** NumPy's bins / (hi - lo), in float64. */
  norm: number;
  float32: boolean;
  /** The bin edges, in the working precision. */
  edges: number[];
}

/**
 * The bin edges NumPy's `histogram` uses: `linspace(lo, hi, bins + 1)` computed in float64 (the
 * last edge exactly `hi`), then cast to the working precision.
 */
export function histogramEdges(bins: number, lo: number, hi: number, float32: boolean): number[] {
  const step = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : step === 0 ? (i / bins) * (hi - lo) + lo : i * step + lo));
  return float32 ? edges.map(Math.fround) : edges;
}

/**
 * Chunk kernel of `ds.histogram()`: NumPy's uniform-bin histogram (numpy/lib/histograms.py),
 * step by step in the same precision, so counts equal NumPy's bit for bit: values outside
 * [lo, hi] and NaN are left out, a value's bin is `floor((v - lo) * norm)`, corrected against
 * the edges, and `hi` falls in the last bin.
 */
export function chunkHistogram(chunk: NdArray, ctx: ChunkContext<HistogramArgs>): Float64Array {
  const { bins, norm, float32, edges } = ctx.args;
  const f = float32 ? Math.fround : (x: number) => x;
  const lo = f(ctx.args.lo);
  const hi = f(ctx.args.hi);
  const scale = f(norm);
  const counts = new Float64Array(bins);
  const data = chunk.data as TypedArray;
  const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
  for (let i = 0; i < data.length; i++) {
    const v = big ? Number(data[i]) : (data[i] as number);
    if (!(v >= lo && v <= hi)) continue;
    let index = Math.trunc(f(f(v - lo) * scale));
    if (index === bins) index--;
    if (v < edges[index]) index--;
    else if (index !== bins - 1 && v >= edges[index + 1]) index++;
    counts[index]++;
  }
  return counts;
}

export function combineHistograms(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

const self = new URL(import.meta.url);

/** Module references to the reduction kernels, for every engine. */
export const kernels = {
  stats: kernel(self, 'chunkStats'),
  histogram: kernel(self, 'chunkHistogram'),
};
