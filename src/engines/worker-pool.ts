/**
 * The `worker-pool` engine: chunk tasks run on a pool of worker threads (piscina). Workers
 * open their own store from the connection settings and move chunk bytes themselves; with
 * the in-process `ram` store, chunks are handed over as SharedArrayBuffers (no copies), and
 * `get` results are written by the workers straight into one shared output buffer.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { chunkReads, runChunks, writtenDataset, type ChunkJob } from '../chunk-ops.js';
import { BatchQueue, KeyedMutex, runTasks, summarize, type RunReport } from '../concurrency.js';
import { allocateSharedUninitialized, allocateUninitialized, bytesPerElement, type TypedArray } from '../dtypes.js';
import type { Engine, EngineContext, EngineSession } from '../engine.js';
import { AbortError, ConflictError, DosnaError, KernelError, OptionError } from '../errors.js';
import { checkOptions } from '../options.js';
import { reviveError } from '../remote-error.js';
import { shipKernel } from '../shipping.js';
import { copyRun, type StridedView } from '../strided.js';
import type { ChunkIndex, ConnectionSettings, DatasetMeta, Store } from '../store.js';
import { concurrencyOption, DEFAULT_CONCURRENCY } from './cpu.js';
import { threadEntry } from '../thread-entry.js';
import { chunkKey, settingsKey, type ChunkOutcome, type ChunkWrite, type SharedChunk, type WorkerJob, type WorkerResult, type WorkerTask } from './worker-pool-worker.js';
import { MAX_COMMIT_ATTEMPTS } from '../commit.js';
import { nativeModule } from '../native.js';
import { dropSharedBuffer, keepSharedBuffer, newSharedBuffer } from '../shared-memory.js';

/**
 * Reads and writes of at most this many bytes run on the calling thread: a round trip to a
 * worker (a message each way, about a tenth of a millisecond or more on a busy machine) costs
 * more than copying this much.
 */
const SMALL_BYTES = 1 << 20;

function positiveInteger(value: unknown, name: string, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new OptionError(`engine option ${name} must be a positive integer, got ${JSON.stringify(value) ?? String(value)}`);
  return v;
}

/** Copies a typed array into shared memory unless it is there already (one copy per run, not per task). */
function shared<T extends TypedArray>(data: T): T {
  if (data.buffer instanceof SharedArrayBuffer) return data;
  const copy = new (data.constructor as new (buffer: SharedArrayBuffer) => T)(newSharedBuffer(data.byteLength, false));
  copyRun(copy, 0, data, 0, data.length);
  return copy;
}

/** The job as workers receive it: kernels shipped, big arrays in shared memory. */
function toWorkerJob(job: ChunkJob): WorkerJob {
  switch (job.kind) {
    case 'map': return { ...job, kernel: shipKernel(job.kernel) };
    case 'reduce': return { ...job, kernel: shipKernel(job.kernel) };
    case 'read':
      if (!(job.out.buffer instanceof SharedArrayBuffer)) throw new DosnaError('internal: worker-pool read into a non-shared buffer');
      return job;
    case 'write': {
      const source: StridedView = { ...job.source, data: shared(job.source.data) };
      return { ...job, source };
    }
    default: return job;
  }
}

/**
 * The error for a task whose worker thread died under it (a kernel called `process.exit`, ran
 * out of memory, crashed): for map and apply a `KernelError` naming the chunk, as for a kernel
 * that throws; otherwise a `DosnaError` naming the chunk.
 */
function workerDied(job: ChunkJob, index: ChunkIndex, error: unknown): Error {
  if (error instanceof DosnaError) return error;
  const why = error instanceof Error ? error.message : String(error);
  const at = `chunk [${index.join(', ')}]`;
  if (job.kind === 'map' || job.kind === 'reduce') return new KernelError(`chunk function failed on ${at}: the worker thread running it died (${why})`, [...index], { cause: error });
  return new DosnaError(`a worker thread died while running ${job.kind} on ${at} (${why})`, { cause: error });
}

/**
 * A batch's outcomes when its worker thread died under it: every chunk of the batch fails with
 * one error naming the chunk the thread died on, whichever of them the caller sees first. That
 * is the chunk whose chunk function was running (`progress[1]`); a batch with none running
 * names its first unfinished chunk, and answers a turn of the event loop later, so that the
 * batch of the chunk function that ended the thread (a worker runs two tasks at once) is the
 * one the caller hears of. None of a batch's writes to a handed-over store reached this thread,
 * so those chunks keep their old data; a store the worker opened itself has the chunks it
 * finished, each written whole.
 */
async function diedOutcomes(job: ChunkJob, indices: readonly ChunkIndex[], progress: Int32Array, error: unknown): Promise<{ error: Error }[]> {
  const running = Atomics.load(progress, 1);
  if (running === 0) await new Promise((resolve) => setImmediate(resolve));
  const at = running > 0 ? running - 1 : Math.min(Atomics.load(progress, 0), indices.length - 1);
  const died = workerDied(job, indices[at], error);
  return indices.map(() => ({ error: died }));
}

/**
 * The error of a chunk its batch did not start because the run stopped: never the one the
 * caller sees (the abort, or the failure that stopped it, comes first).
 */
function notRun(index: ChunkIndex, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) return new AbortError('operation aborted', { cause: signal.reason });
  return new DosnaError(`chunk [${index.join(', ')}] was not run: the operation stopped at an earlier failure`);
}

/**
 * Chunks travel to the workers in batches of up to this many bytes: a task's fixed cost (a
 * message each way, waking a thread, the task's setup: 0.1-0.2 ms on this project's 2-core
 * machine) is then paid once per batch instead of once per chunk. Measured by hand on ram,
 * 256^3 float32, applies of a function that does nothing (medians of 15, alternating builds):
 * 32^3 chunks 74-88 ms one per task, 43-65 ms in batches of 1 MiB, 35-48 ms of 4 MiB; 64^3
 * chunks 28-41 ms one per task, 26-33 ms in batches of 4 MiB; the gaussian map of 64^3 chunks
 * 118-124 ms one per task, 105 ms in batches of 4 MiB.
 */
const TASK_BYTES = 4 << 20;

/** How many chunks go in one worker task for `job` over `count` chunks (see {@link TASK_BYTES}). */
export function chunksPerTask(job: ChunkJob, count: number, concurrency: number): number {
  const meta = job.kind === 'map' ? job.input : job.dataset;
  const chunkBytes = meta.chunkSize.reduce((n, c) => n * c, bytesPerElement(meta.dtype));
  // At least two batches per task slot, so that the last batches still keep every worker busy.
  const byCount = Math.ceil(count / (2 * concurrency));
  return Math.max(1, Math.min(Math.floor(TASK_BYTES / chunkBytes), byCount));
}

/**
 * Applies a task's writes to the main thread's store; `false` when a conditional one found the
 * chunk changed. The chunks a write brings were marked kept (`keepSharedBuffer`); those it does
 * not store (refused, or after a refusal or a failure) are dropped here at once, so that this
 * thread's collector counts them (shared-memory.ts).
 * @internal exported for tests
 */
export async function applyWrites(store: Store, target: DatasetMeta | undefined, writes: readonly ChunkWrite[]): Promise<boolean> {
  if (writes.length > 0 && !target) throw new DosnaError('internal: a worker task wrote chunks of a job that writes nothing');
  let done = 0;
  try {
    for (const [, key, buffer, expected] of writes) {
      const index = key.split('.').map(Number);
      if (!buffer) await store.deleteChunk(target!, index);
      else if (expected === undefined) await store.writeChunk(target!, index, [new Uint8Array(buffer)]);
      else if (await store.writeChunkIf(target!, index, [new Uint8Array(buffer)], expected) === undefined) return false;
      done++;
    }
    return true;
  } finally {
    for (const [, , buffer] of writes.slice(done)) if (buffer) dropSharedBuffer(buffer);
  }
}

/** Whether plain reads and writes of `dataset` copy on the calling thread (see `runsHere`). */
function copiesHere(dataset: DatasetMeta): boolean {
  return nativeModule() !== undefined && dataset.compression === undefined;
}

class WorkerPoolSession implements EngineSession {
  readonly rank = 0;
  readonly size = 1;
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly context: EngineContext,
    private readonly pool: Piscina,
    readonly threads: number,
    private readonly concurrency: number,
    /** Tasks in flight for a job that runs on this thread (see {@link runsHere}). */
    private readonly concurrencyHere: number,
  ) {}

  onRoot<T>(fn: () => Promise<T>): Promise<T> { return fn(); }
  async barrier(): Promise<void> {}
  async allgather<T>(value: T): Promise<T[]> { return [value]; }

  /** Shared memory for the workers to fill, unless the read will run on this thread (see {@link runsHere}). */
  allocate(dtype: Parameters<typeof allocateUninitialized>[0], length: number, dataset?: DatasetMeta): TypedArray {
    return dataset && copiesHere(dataset) ? allocateUninitialized(dtype, length) : allocateSharedUninitialized(dtype, length);
  }

  /**
   * Whether the job runs on this thread: a read or write of at most `SMALL_BYTES` (a plane, a
   * line, a few cells), for which handing it to a worker and back costs more than the copy;
   * and, where the native copy is built, any read or write of an uncompressed dataset (the
   * arrays `get` allocates then are ordinary memory) whose array is not in shared memory.
   * Workers could only reach such an array through a staging copy in a fresh
   * SharedArrayBuffer, and V8 maps fresh pages from the kernel for every one (munmapping them
   * again costs every thread of the process): staging cost more than the copy it spread over
   * the workers (measured, loading a 256^3 float32 cube into hdf5 in 64^3 chunks: 156 ms through
   * workers against 64 ms here). The native copy runs at memory speed, and file I/O runs on
   * libuv's threads either way. Compressed chunks (decoding is compute), kernels and arrays
   * already in shared memory still go to the workers.
   */
  private runsHere(job: ChunkJob): boolean {
    const unstaged = (data: TypedArray, dataset: DatasetMeta) => !(data.buffer instanceof SharedArrayBuffer) && copiesHere(dataset);
    if (job.kind === 'read') return job.out.byteLength <= SMALL_BYTES || unstaged(job.out, job.dataset);
    if (job.kind === 'write') return job.selection.reduce((n, a) => n * a.count, job.source.data.BYTES_PER_ELEMENT) <= SMALL_BYTES || unstaged(job.source.data, job.dataset);
    return false;
  }

  async run(job: ChunkJob, chunks: readonly ChunkIndex[], options: Parameters<EngineSession['run']>[2]): Promise<RunReport> {
    const target = writtenDataset(job);
    const runOptions = {
      concurrency: this.concurrency,
      signal: options.signal,
      onProgress: options.onProgress,
      locks: this.locks,
      lockKey: target ? (index: ChunkIndex) => `${target.name}\u0000${index.join(',')}` : undefined,
    };
    if (this.runsHere(job)) {
      const env = { store: this.context.store, storeFor: this.context.storeFor };
      const run = await runChunks(env, job, chunks, { ...runOptions, concurrency: this.concurrencyHere });
      return summarize(options.operation, 'worker-pool', this.concurrencyHere, run);
    }
    if (job.kind === 'read' && !(job.out.buffer instanceof SharedArrayBuffer)) {
      // A caller's own output array (get's `out`) is not shared memory: workers fill a shared
      // one, copied over once at the end.
      const out = new (job.out.constructor as new (buffer: SharedArrayBuffer) => TypedArray)(newSharedBuffer(job.out.byteLength, false));
      const report = await this.run({ ...job, out }, chunks, options);
      copyRun(job.out, 0, out, 0, out.length);
      return report;
    }
    const workerJob = toWorkerJob(job); // throws before any chunk is touched
    const settings = this.context.settings;
    const own = this.context.store;
    const sharedStores = new Map<string, Store>();
    const remember = (s: ConnectionSettings, store: Store) => { if (store.capabilities.sharedMemory) sharedStores.set(settingsKey(s), store); };
    remember(settings, own);
    if (job.kind === 'copy') remember(job.source.settings, await this.context.storeFor(job.source.settings));

    // Small chunks travel to the workers in batches (one message for several chunks), each
    // chunk still its own task here: locked, committed, retried and reported on its own.
    const perTask = chunksPerTask(job, chunks.length, this.concurrency);
    // Batches in the workers, asked to start no more chunks once the run is aborted or a chunk failed.
    const running = new Set<Int32Array>();
    let stopped = false;
    const stop = () => { stopped = true; for (const progress of running) Atomics.store(progress, 2, 1); };
    options.signal?.addEventListener('abort', stop, { once: true });
    const batches = new BatchQueue<[ChunkIndex, SharedChunk[]], Required<Pick<WorkerResult, 'worker'>> & ChunkOutcome>(perTask, async (items) => {
      const handed = new Map<string, SharedChunk>();
      for (const [, list] of items) for (const c of list) handed.set(`${c[0]}\u0000${c[1]}\u0000${c[2]}`, c);
      const progress = new Int32Array(new SharedArrayBuffer(12));
      if (stopped) progress[2] = 1;
      const task: WorkerTask = { settings, job: workerJob, indices: items.map(([index]) => index), sharedStores: [...sharedStores.keys()], chunks: [...handed.values()], progress };
      let result: WorkerResult;
      running.add(progress);
      try {
        result = (await this.pool.run(task)) as WorkerResult;
      } catch (error) {
        stop();
        return diedOutcomes(job, task.indices, progress, error);
      } finally {
        running.delete(progress);
      }
      if (!result.outcomes) {
        stop();
        const error = reviveError(result.error!, `worker thread ${result.worker}`);
        return items.map(() => ({ error }));
      }
      if (result.outcomes.some((o) => o.error || o.notRun)) stop();
      return result.outcomes.map((outcome, i) => outcome.notRun
        ? { error: notRun(items[i][0], options.signal) }
        : { value: { worker: result.worker, ...outcome } });
    });

    const run = await runTasks(chunks, async (index) => {
      // A conditional write that lost to another writer (with the ram store, the main thread
      // compares) makes the task run again on the chunks as they are now.
      for (let attempt = 1; ; attempt++) {
        const handed: SharedChunk[] = [];
        if (sharedStores.size > 0) {
          for (const read of chunkReads(job, index)) {
            const key = settingsKey(read.settings ?? settings);
            const store = sharedStores.get(key);
            if (!store) continue;
            const version = await store.readChunkVersion(read.meta, read.index);
            handed.push([key, read.meta.name, chunkKey(read.index), version.bytes ? (version.bytes.buffer as SharedArrayBuffer) : null, version.generation]);
          }
        }
        const outcome = await batches.submit([index, handed]);
        if (outcome.error) throw reviveError(outcome.error, `worker thread ${outcome.worker}`);
        // The chunks a worker made are kept here (the ram store adopts them): this thread's
        // collector counts them once the store drops them (shared-memory.ts).
        for (const write of outcome.writes ?? []) if (write[2]) keepSharedBuffer(write[2]);
        if (await applyWrites(own, target, outcome.writes ?? [])) return { worker: outcome.worker, ...outcome.stats! };
        if (attempt >= MAX_COMMIT_ATTEMPTS) {
          throw new ConflictError(`chunk [${index.join(', ')}] of dataset ${JSON.stringify(target!.name)} kept changing under ${attempt} attempts to commit to it`, [...index]);
        }
      }
    }, { ...runOptions, concurrency: this.concurrency * perTask }).finally(() => options.signal?.removeEventListener('abort', stop));
    return summarize(options.operation, 'worker-pool', this.concurrency, run);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

export const engine: Engine = {
  name: 'worker-pool',
  async open(context): Promise<EngineSession> {
    checkOptions('the worker-pool engine', context.options, ['threads', 'concurrency']);
    const threads = positiveInteger(context.options.threads, 'threads', availableParallelism());
    // Two tasks per thread keep every worker busy while the next task's chunks are prepared.
    const concurrency = concurrencyOption(context.options, threads * 2);
    // A job that runs on this thread is the cpu engine's work (copies, and file I/O on libuv's
    // threads): it gets that engine's default. Loading a 256^3 float32 cube into hdf5 in 32^3
    // chunks, one process alternating: 232-354 ms with 8 in flight, 271-418 ms with 4.
    const concurrencyHere = context.options.concurrency === undefined ? DEFAULT_CONCURRENCY : concurrency;
    const { url, execArgv } = threadEntry(import.meta.url, 'worker-pool-worker', 'the worker-pool engine');
    const filename = url.href;
    // Two tasks per worker at once: one computes while the other waits on its I/O (chunk tasks are async).
    const pool = new Piscina({ filename, execArgv, minThreads: threads, maxThreads: threads, idleTimeout: 60_000, concurrentTasksPerWorker: 2 });
    return new WorkerPoolSession(context, pool, threads, concurrency, concurrencyHere);
  },
};
