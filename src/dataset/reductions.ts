/**
 * Reductions over a dataset: `reduce` (a kernel per chunk, a combiner in the caller), and the
 * built-in `stats` and `histogram`. Chunks run on the engine like `map`'s; their partial
 * results are gathered (across ranks under `cluster-rank`) and combined in chunk order (the
 * grid's C order), so a floating-point result is the same on every engine and every run.
 */
import type { Dataset } from './index.js';
import { checkKernel, RUN_CONTROL, type RunControl } from './options.js';
import { checkOptions } from '../options.js';
import type { ChunkContext, Kernel, KernelRef } from '../kernel.js';
import type { NdArray } from '../ndarray.js';
import { allChunks } from '../slicing.js';
import { OptionError, ShapeError } from '../errors.js';
import {
  combineHistograms, combineStats, EMPTY_STATS, finishStats, histogramEdges, kernels,
  type DatasetStats, type HistogramArgs, type StatsPartial,
} from '../kernels/reductions.js';

/** A reduction's chunk function: the chunk's cells in, its partial result out. */
export type ReduceFunction<Partial, Args = unknown> = (chunk: NdArray, ctx: ChunkContext<Args>) => Partial | Promise<Partial>;

/** A reduction's chunk function, or a module reference to one (`dn.kernel(url, name)`). */
export type ReduceKernel<Partial, Args = unknown> = ReduceFunction<Partial, Args> | KernelRef;

/** Options of `reduce`. */
export interface ReduceOptions<Args = unknown> extends RunControl {
  /** Passed to the chunk function as `ctx.args`. */
  args?: Args;
}

/** What `histogram` returns, as NumPy's `histogram`: `bins` counts and `bins + 1` edges. */
export interface Histogram {
  counts: number[];
  edges: number[];
}

/** Runs `fn` on every chunk and folds the partials into `init` with `combine`, in chunk order. */
export async function reduceDataset<Partial, Result, Args>(
  ds: Dataset, fn: ReduceKernel<Partial, Args>, combine: (accumulated: Result, partial: Partial) => Result, init: Result, options: ReduceOptions<Args> = {},
): Promise<Result> {
  checkOptions('reduce', options, ['args', ...RUN_CONTROL]);
  checkKernel(fn);
  if (typeof combine !== 'function') throw new OptionError('reduce: combine must be a function (accumulated, partial) => accumulated');
  const what = ds.call('reduce');
  const dataset = await ds.prepareCollective(what);
  const session = ds.connection.session;
  const grid = ds.chunkGrid;
  const report = await session.run(
    { kind: 'reduce', dataset, kernel: fn as unknown as Kernel, args: options.args },
    allChunks(grid),
    { operation: 'reduce', collective: true, signal: options.signal, onProgress: options.onProgress },
  );
  ds.lastRun = report;
  // Each rank has its own chunks' partials: every rank gets them all, then folds them alike.
  const mine = report.tasks.map((t) => [position(t.chunk, grid), t.partial] as const);
  const all = ds.connection.size > 1 ? (await session.allgather(mine, `${what} (partial results)`)).flat() : mine;
  all.sort((a, b) => a[0] - b[0]);
  let result = init;
  for (const [, partial] of all) result = combine(result, partial as Partial);
  return result;
}

/** A chunk's place in the grid's C order. */
function position(chunk: readonly number[], grid: readonly number[]): number {
  let p = 0;
  for (let a = 0; a < grid.length; a++) p = p * grid[a] + chunk[a];
  return p;
}

/** `ds.stats()`: NumPy's size, min, max, sum, mean and std over every cell. */
export async function datasetStats(ds: Dataset, options: RunControl = {}): Promise<DatasetStats> {
  checkOptions('stats', options, [...RUN_CONTROL]);
  return finishStats(await reduceDataset<StatsPartial, StatsPartial, undefined>(ds, kernels.stats, combineStats, EMPTY_STATS, options));
}

/**
 * `ds.histogram(bins, range)`: NumPy's `histogram(a, bins, range)` with equal-width bins. The
 * range is the data's own minimum and maximum when not given (one more pass, as NumPy's), widened
 * by 0.5 each way when they are equal.
 */
export async function datasetHistogram(ds: Dataset, bins: number, range?: readonly [number, number], options: RunControl = {}): Promise<Histogram> {
  checkOptions('histogram', options, [...RUN_CONTROL]);
  if (!Number.isSafeInteger(bins) || bins < 1) throw new OptionError(`histogram: bins must be a positive integer, got ${bins}`);
  const float32 = ds.dtype === 'float32';
  let lo: number;
  let hi: number;
  let norm: number;
  if (range !== undefined) {
    if (!Array.isArray(range) || range.length !== 2 || !range.every((x) => typeof x === 'number')) throw new ShapeError('histogram: range must be [lo, hi]');
    [lo, hi] = range;
    if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new OptionError(`histogram: the range [${lo}, ${hi}] is not finite`);
    if (lo > hi) throw new OptionError(`histogram: max must be larger than min in range [${lo}, ${hi}]`);
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    norm = bins / (hi - lo);
  } else {
    const stats = await datasetStats(ds, options);
    [lo, hi] = [stats.min, stats.max];
    if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new OptionError(`histogram: the autodetected range [${lo}, ${hi}] is not finite; give a range`);
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    // NumPy subtracts the data's own scalars, in their precision.
    norm = bins / (float32 ? Math.fround(hi - lo) : hi - lo);
  }
  const edges = histogramEdges(bins, lo, hi, float32);
  const args: HistogramArgs = { bins, lo, hi, norm, float32, edges };
  const counts = await reduceDataset<Float64Array, Float64Array, HistogramArgs>(ds, kernels.histogram, combineHistograms, new Float64Array(bins), { ...options, args });
  return { counts: Array.from(counts), edges };
}
