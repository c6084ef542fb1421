/**
 * What happens to one chunk in each operation. A job is plain data describing an operation
 * on a dataset; `executeChunk` carries it out for one chunk against a store. Every engine
 * runs these same functions (in-process, in a worker thread or on another rank) and differs
 * only in where and how many at once, so the semantics cannot drift between engines.
 */
import { allocate, castInto, type DType, type TypedArray } from './dtypes.js';
import { cStrides, selectionShape, touchedChunks, type Selection } from './slicing.js';
import type { ConnectionSettings, DatasetMeta, ChunkIndex, Store } from './store.js';
import type { StridedView } from './strided.js';
import type { Kernel } from './kernel.js';
import {
  boxSelection, chunkOrigin, newStats, readPart, readPartsNow, readPartsBatched, sideBySideEnd, readRegion, timed, validShape, writePart, writeWholeChunk, type ChunkStats,
} from './chunk-io.js';
import { AbortError } from './errors.js';
import { runTasks, type RunTasksOptions, type TaskRecord } from './concurrency.js';
import { mapChunk, mapInput, reduceChunk, type CommitLedger } from './chunk-kernels.js';

// What the engines and the queue take from here with the jobs.
export type { ChunkStats } from './chunk-io.js';
export type { CommitLedger, CommitRecord } from './chunk-kernels.js';

/** Copy the selected part of each chunk into `out` (C order over the unsqueezed selection). */
export interface ReadJob { readonly kind: 'read'; readonly dataset: DatasetMeta; readonly selection: Selection; readonly out: TypedArray }
/** Write `source` (strided over the unsqueezed selection shape, already of the dtype) into each chunk. */
export interface WriteJob { readonly kind: 'write'; readonly dataset: DatasetMeta; readonly selection: Selection; readonly source: StridedView }
/** Fill each chunk from the same region of another dataset (possibly another connection). */
export interface CopyJob { readonly kind: 'copy'; readonly dataset: DatasetMeta; readonly source: { readonly settings: ConnectionSettings; readonly meta: DatasetMeta } }
/** Apply a kernel to each chunk of `input`, writing `output` (the same dataset for `apply`). */
export interface MapJob {
  readonly kind: 'map'; readonly input: DatasetMeta; readonly output: DatasetMeta;
  readonly kernel: Kernel; readonly halo: readonly number[]; readonly args: unknown;
}
/** Remove each chunk. */
export interface ClearJob { readonly kind: 'clear'; readonly dataset: DatasetMeta }
/** Run a kernel on each chunk's cells and keep what it returns (the chunk's partial result of a reduction). */
export interface ReduceJob { readonly kind: 'reduce'; readonly dataset: DatasetMeta; readonly kernel: Kernel; readonly args: unknown }
/** Copy each stored chunk's bytes to another dataset of the same layout. */
export interface CloneJob { readonly kind: 'clone'; readonly dataset: DatasetMeta; readonly target: DatasetMeta }

export type ChunkJob = ReadJob | WriteJob | CopyJob | MapJob | ClearJob | CloneJob | ReduceJob;

/** The dataset a job writes, if any: its chunks are locked while a task writes them. */
export function writtenDataset(job: ChunkJob): DatasetMeta | undefined {
  switch (job.kind) {
    case 'read': case 'reduce': return undefined;
    case 'map': return job.output;
    case 'clone': return job.target;
    default: return job.dataset;
  }
}

/** Where a task finds what it needs besides its own store. */
export interface ChunkEnv {
  readonly store: Store;
  /** A connected store for other settings (the source of a `copy` job). */
  storeFor(settings: ConnectionSettings): Promise<Store>;
  /**
   * Where `apply` notes each chunk's commit before making it, for engines that may run a task
   * again after it committed (a task queue's at-least-once delivery): see `mapChunk`.
   */
  readonly ledger?: CommitLedger;
}

/** A chunk that a task reads: of the job's own connection (`settings` undefined) or another. */
export interface ChunkRead {
  readonly settings?: ConnectionSettings;
  readonly meta: DatasetMeta;
  readonly index: ChunkIndex;
}

/**
 * Every chunk a task on `index` may read. Engines whose workers cannot open the store
 * themselves (the in-process `ram` store) hand these over with the task.
 */
export function chunkReads(job: ChunkJob, index: ChunkIndex): ChunkRead[] {
  switch (job.kind) {
    case 'read': case 'write': case 'reduce': return [{ meta: job.dataset, index }];
    case 'clone': return [{ meta: job.dataset, index }];
    case 'clear': return [];
    case 'copy': {
      const box = boxSelection(chunkOrigin(job.dataset, index), validShape(job.dataset, index));
      return touchedChunks(box, job.source.meta.chunkSize).map((c) => ({ settings: job.source.settings, meta: job.source.meta, index: c }));
    }
    case 'map': {
      const { box } = mapInput(job.input, index, job.halo);
      return touchedChunks(box, job.input.chunkSize).map((c) => ({ meta: job.input, index: c }));
    }
  }
}

/** Runs one chunk of a job. */
export async function executeChunk(env: ChunkEnv, job: ChunkJob, index: ChunkIndex, stats = newStats()): Promise<ChunkStats> {
  switch (job.kind) {
    case 'read': await readPart(env.store, job.dataset, job.selection, job.out, index, stats); break;
    case 'write': await writePart(env.store, job.dataset, job.selection, job.source, index, stats); break;
    case 'copy': await copyChunk(env, job, index, stats); break;
    case 'map': await mapChunk(env.store, job, index, stats, env.ledger); break;
    case 'clear': await timed(stats, 'ioMs', () => env.store.deleteChunk(job.dataset, index)); break;
    case 'clone': await cloneChunk(env.store, job, index, stats); break;
    case 'reduce': await reduceChunk(env.store, job, index, stats); break;
  }
  return stats;
}

/**
 * Runs `job` over `chunks` in this thread: what every engine does with the work it keeps (the
 * cpu engine all of it, the others their plain reads and writes, a rank its share). One task
 * per chunk through `runTasks`, except a read of chunks the store reads in batches
 * (`Store.readChunksInto`: small chunk files), which goes in batches of one store call each;
 * its report still has a record per chunk. `worker` names who ran them in the records.
 */
export async function runChunks(
  env: ChunkEnv, job: ChunkJob, chunks: readonly ChunkIndex[], options: RunTasksOptions<ChunkIndex> & { readonly worker?: number },
): Promise<{ wallMs: number; records: TaskRecord[] }> {
  const worker = options.worker ?? 0;
  const { store } = env;
  if (job.kind === 'read' && job.dataset.compression === undefined) {
    if (store.readChunkNow) return readInOnePass(store, job, chunks, worker, options);
    if (store.readChunksInto && store.readsChunksInto?.(job.dataset)) return readInBatches(store, job, chunks, worker, options);
  }
  return runTasks(chunks, async (index) => ({ worker, ...(await executeChunk(env, job, index)) }), options);
}

/**
 * `runChunks` for a read from a store that holds its chunks in this process's memory
 * (`Store.readChunkNow`): every chunk copied in one synchronous pass, with a record per chunk,
 * progress after each and abort between them. No task, promise or await per chunk: for small
 * reads across many chunks that machinery cost more than the copies (measured by hand on ram,
 * a plane of a 256^3 cube in 32^3 chunks: 64 chunks, 190 us and 427 KB of garbage a read).
 */
function readInOnePass(
  store: Store, job: ReadJob, chunks: readonly ChunkIndex[], worker: number, options: RunTasksOptions<ChunkIndex>,
): { wallMs: number; records: TaskRecord[] } {
  const { signal, onProgress } = options;
  const { dataset, selection, out } = job;
  const t0 = performance.now();
  const records: TaskRecord[] = [];
  const outStrides = cStrides(selectionShape(selection));
  let bytes = 0;
  for (let start = 0; start < chunks.length;) {
    stopIfAborted(signal);
    // Chunks side by side along the last axis are copied together (readPartsNow says why).
    const end = sideBySideEnd(chunks, start);
    const group = chunks.slice(start, end);
    const startMs = performance.now();
    const bytesRead = readPartsNow(store, dataset, selection, out, outStrides, group);
    const totalMs = (performance.now() - startMs) / group.length;
    for (let i = 0; i < group.length; i++) {
      records.push({ chunk: group[i], worker, queueMs: startMs - t0, ioMs: 0, computeMs: 0, totalMs, bytesRead: bytesRead[i], bytesWritten: 0 });
      bytes += bytesRead[i];
    }
    onProgress?.({ done: records.length, total: chunks.length, bytes });
    start = end;
  }
  stopIfAborted(signal);
  return { wallMs: performance.now() - t0, records };
}

/** Throws `AbortError` when `signal` was aborted (between the chunks of a read on this thread). */
function stopIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('operation aborted', { cause: signal.reason });
}

/** `runChunks` for a read in batches: a record per chunk, progress and abort between batches. */
async function readInBatches(
  store: Store, job: ReadJob, chunks: readonly ChunkIndex[], worker: number, options: RunTasksOptions<ChunkIndex>,
): Promise<{ wallMs: number; records: TaskRecord[] }> {
  const { signal, onProgress } = options;
  const t0 = performance.now();
  const records: TaskRecord[] = [];
  let bytes = 0;
  stopIfAborted(signal);
  await readPartsBatched(store, job.dataset, job.selection, job.out, chunks, (done) => {
    for (const { at, stats, startMs, endMs } of done) {
      records.push({
        chunk: chunks[at], worker, queueMs: startMs - t0, ioMs: stats.ioMs, computeMs: 0,
        totalMs: endMs - startMs, bytesRead: stats.bytesRead, bytesWritten: 0,
      });
      bytes += stats.bytesRead;
    }
    onProgress?.({ done: records.length, total: chunks.length, bytes });
    stopIfAborted(signal);
  });
  return { wallMs: performance.now() - t0, records };
}

function castArray(data: TypedArray, dtype: DType): TypedArray {
  const out = allocate(dtype, data.length);
  castInto(out, data);
  return out;
}

async function copyChunk(env: ChunkEnv, job: CopyJob, index: ChunkIndex, stats: ChunkStats): Promise<void> {
  const meta = job.dataset;
  const valid = validShape(meta, index);
  const source = await env.storeFor(job.source.settings);
  let data = await readRegion(source, job.source.meta, boxSelection(chunkOrigin(meta, index), valid), stats);
  if (job.source.meta.dtype !== meta.dtype) data = castArray(data, meta.dtype);
  await writeWholeChunk(env.store, meta, index, { data, offset: 0, shape: valid, strides: cStrides(valid) }, stats);
}

async function cloneChunk(store: Store, job: CloneJob, index: ChunkIndex, stats: ChunkStats): Promise<void> {
  const bytes = await timed(stats, 'ioMs', () => store.readChunk(job.dataset, index));
  if (!bytes) return;
  stats.bytesRead += bytes.byteLength;
  await timed(stats, 'ioMs', () => store.writeChunk(job.target, index, [bytes]));
  stats.bytesWritten += bytes.byteLength;
}

