/**
 * The worker thread side of the `worker-pool` engine: runs one task (a batch of chunks, one after
 * another) with the same `executeChunk` as every engine. Stores are opened here from the connection settings
 * (cached per thread); the in-process `ram` store cannot be, so its chunks arrive with the
 * task as SharedArrayBuffers and the chunks this task writes go back the same way.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { isMainThread, threadId } from 'node:worker_threads';
import { openStore, settingsKey } from '../store-cache.js';
import { executeChunk, type ChunkJob, type ChunkStats } from '../chunk-ops.js';
import { watchKernels } from '../chunk-kernels.js';
import { sharedBufferOf } from '../segments.js';
import { DosnaError } from '../errors.js';
import { reviveKernel, installShims, type ShippedKernel } from '../shipping.js';
import { serializeError, type SerializedError } from '../remote-error.js';
import type { AttrsVersion } from '../attrs.js';
import type { ChunkIndex, ChunkVersion, ConnectionSettings, DatasetMeta, Generation, MetaVersion, NodeEntry, NodeKind, Store } from '../store.js';

/** A chunk handed over with a task: `[storeKey, dataset, chunkKey, buffer or null when absent, its generation]`. */
export type SharedChunk = [string, string, string, SharedArrayBuffer | null, Generation | null];

/**
 * A chunk a task wrote or deleted in a handed-over store: `[dataset, chunkKey, buffer or null
 * (deleted), expected generation]`; the main thread applies it, conditionally when `expected`
 * is not `undefined` (then `null` means the chunk must still be absent).
 */
export type ChunkWrite = [string, string, SharedArrayBuffer | null, (Generation | null)?];

/** A job as sent to a worker: like ChunkJob, with a map's (or a reduction's) kernel shipped. */
export type WorkerJob = Exclude<ChunkJob, { kind: 'map' | 'reduce' }>
  | (Omit<Extract<ChunkJob, { kind: 'map' }>, 'kernel'> & { kernel: ShippedKernel })
  | (Omit<Extract<ChunkJob, { kind: 'reduce' }>, 'kernel'> & { kernel: ShippedKernel });

export interface WorkerTask {
  readonly settings: ConnectionSettings;
  readonly job: WorkerJob;
  /** The chunks of this task, run in this order. */
  readonly indices: readonly ChunkIndex[];
  /** Stores (by settingsKey) whose chunks travel with the task instead of being opened here. */
  readonly sharedStores: readonly string[];
  /** The handed-over chunks every one of `indices` may read. */
  readonly chunks: readonly SharedChunk[];
  /**
   * Shared memory where the worker notes how many of `indices` it has finished (`[0]`) and
   * which one's chunk function is running (`[1]`, its position plus one, or 0), so that if the
   * thread dies the main thread knows which chunk it died on; and where the main thread (or the
   * worker, at a chunk's failure) asks it to start no more of them (`[2]` not 0: the operation
   * was aborted or failed).
   */
  readonly progress: Int32Array;
}

/** How one chunk of a task ended. */
export interface ChunkOutcome {
  /** Not started: the task was asked to stop (`progress[2]`). */
  readonly notRun?: true;
  readonly stats?: ChunkStats;
  /** Chunks written or deleted in shared stores. */
  readonly writes?: ChunkWrite[];
  readonly error?: SerializedError;
}

export interface WorkerResult {
  readonly worker: number;
  /** One per chunk of the task, in its order; absent when the task failed as a whole (`error`). */
  readonly outcomes?: ChunkOutcome[];
  readonly error?: SerializedError;
}

export { settingsKey };
export const chunkKey = (index: ChunkIndex): string => index.join('.');

installShims();

/** The task chunk running in the current async context: where a chunk function's start is noted. */
const runningChunk = new AsyncLocalStorage<{ readonly progress: Int32Array; readonly position: number }>();
// Only in the workers (the main thread imports this module's helpers too).
if (!isMainThread) {
  watchKernels((running) => {
    const at = runningChunk.getStore();
    if (at) Atomics.store(at.progress, 1, running ? at.position + 1 : 0);
  });
}

/** A store made of the chunks that came with one task; writes are collected for the main thread. */
class HandedOverStore implements Store {
  readonly capabilities = { sharedMemory: true };
  constructor(
    private readonly chunks: Map<string, [SharedArrayBuffer | null, Generation | null]>,
    private readonly writes: ChunkWrite[] | undefined,
  ) {}

  private lookup(meta: DatasetMeta, index: ChunkIndex): [SharedArrayBuffer | null, Generation | null] {
    const key = `${meta.name}\u0000${chunkKey(index)}`;
    const found = this.chunks.get(key);
    if (!found) throw new DosnaError(`internal: chunk ${chunkKey(index)} of ${meta.name} was not handed to the worker`);
    return found;
  }

  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}
  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    const [buffer] = this.lookup(meta, index);
    return buffer ? new Uint8Array(buffer) : undefined;
  }
  async readChunkVersion(meta: DatasetMeta, index: ChunkIndex): Promise<ChunkVersion> {
    const [buffer, generation] = this.lookup(meta, index);
    return { bytes: buffer ? new Uint8Array(buffer) : undefined, generation };
  }
  async chunkGeneration(meta: DatasetMeta, index: ChunkIndex): Promise<Generation | null> {
    return this.lookup(meta, index)[1];
  }
  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.lookup(meta, index)[0] !== null;
  }
  async writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation> {
    this.record(meta, index, sharedBufferOf(parts), undefined);
    return 'pending';
  }
  /** Recorded for the main thread, which makes the comparison (and runs the task again if it fails). */
  async writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined> {
    this.record(meta, index, sharedBufferOf(parts), expected);
    return 'pending';
  }
  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    this.record(meta, index, null, undefined);
    return true;
  }
  private record(meta: DatasetMeta, index: ChunkIndex, buffer: SharedArrayBuffer | null, expected: Generation | null | undefined): void {
    if (!this.writes) throw new DosnaError(`internal: a worker task tried to write a chunk of ${meta.name} in a store it only reads`);
    this.writes.push(expected === undefined ? [meta.name, chunkKey(index), buffer] : [meta.name, chunkKey(index), buffer, expected]);
  }
  // The rest of the Store interface is never used by a chunk task.
  async listDatasets(): Promise<string[]> { throw new DosnaError('internal: not available in a worker task'); }
  async readMeta(): Promise<MetaVersion | undefined> { throw new DosnaError('internal: not available in a worker task'); }
  async metaGeneration(): Promise<Generation | null> { throw new DosnaError('internal: not available in a worker task'); }
  async createMeta(): Promise<Generation> { throw new DosnaError('internal: not available in a worker task'); }
  async deleteDataset(): Promise<void> { throw new DosnaError('internal: not available in a worker task'); }
  async listChunks(): Promise<ChunkIndex[]> { throw new DosnaError('internal: not available in a worker task'); }
  async storedBytes(): Promise<number> { throw new DosnaError('internal: not available in a worker task'); }
  async writeMetaIf(): Promise<Generation | undefined> { throw new DosnaError('internal: not available in a worker task'); }
  async nodeKind(): Promise<NodeKind | undefined> { throw new DosnaError('internal: not available in a worker task'); }
  async createGroup(): Promise<boolean> { throw new DosnaError('internal: not available in a worker task'); }
  async deleteGroup(): Promise<void> { throw new DosnaError('internal: not available in a worker task'); }
  async list(): Promise<NodeEntry[]> { throw new DosnaError('internal: not available in a worker task'); }
  async readAttrs(): Promise<AttrsVersion> { throw new DosnaError('internal: not available in a worker task'); }
  async writeAttrsIf(): Promise<Generation | undefined> { throw new DosnaError('internal: not available in a worker task'); }
}

/**
 * Runs one task's chunks one after another; failures come back as data (per chunk, so a chunk
 * that fails does not hide the others' writes), the pool survives and the caller gets the stack.
 */
export default async function runTask(task: WorkerTask): Promise<WorkerResult> {
  let job: ChunkJob;
  const byStore = new Map<string, Map<string, [SharedArrayBuffer | null, Generation | null]>>();
  try {
    for (const [store, dataset, chunk, buffer, generation] of task.chunks) {
      let table = byStore.get(store);
      if (!table) byStore.set(store, (table = new Map()));
      table.set(`${dataset}\u0000${chunk}`, [buffer, generation]);
    }
    job = task.job.kind === 'map' || task.job.kind === 'reduce'
      ? { ...task.job, kernel: await reviveKernel(task.job.kernel) }
      : task.job;
  } catch (error) {
    return { worker: threadId, error: serializeError(error) };
  }
  const ownKey = settingsKey(task.settings);
  const outcomes: ChunkOutcome[] = [];
  for (const index of task.indices) {
    // Stopped (an abort, or a failure here or in another task): start no more chunks, as the
    // main thread starts no more tasks.
    if (Atomics.load(task.progress, 2) !== 0) {
      outcomes.push({ notRun: true });
      Atomics.store(task.progress, 0, outcomes.length);
      continue;
    }
    // Each chunk's writes apart: the main thread commits them chunk by chunk.
    const writes: ChunkWrite[] = [];
    const storeFor = async (settings: ConnectionSettings): Promise<Store> => {
      const key = settingsKey(settings);
      if (!task.sharedStores.includes(key)) return openStore(settings);
      return new HandedOverStore(byStore.get(key) ?? new Map(), key === ownKey ? writes : undefined);
    };
    try {
      const position = outcomes.length;
      const stats = await runningChunk.run({ progress: task.progress, position }, async () => executeChunk({ store: await storeFor(task.settings), storeFor }, job, index));
      outcomes.push({ stats, writes });
    } catch (error) {
      outcomes.push({ error: serializeError(error) });
      Atomics.store(task.progress, 2, 1);
    }
    Atomics.store(task.progress, 0, outcomes.length);
  }
  return { worker: threadId, outcomes };
}
