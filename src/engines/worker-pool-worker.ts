/**
 * The worker thread side of the `worker-pool` engine: runs one chunk task with the same
 * `executeChunk` as every engine. Stores are opened here from the connection settings
 * (cached per thread); the in-process `ram` store cannot be, so its chunks arrive with the
 * task as SharedArrayBuffers and the chunks this task writes go back the same way.
 */
import { threadId } from 'node:worker_threads';
import { loadBackend } from '../backends/index.js';
import { executeChunk, type ChunkJob, type ChunkStats } from '../chunk-ops.js';
import { DosnaError } from '../errors.js';
import { reviveKernel, installShims, type ShippedKernel } from '../shipping.js';
import { serializeError, type SerializedError } from '../remote-error.js';
import type { ChunkIndex, ConnectionSettings, DatasetMeta, Store } from '../store.js';

/** A chunk handed over with a task: `[storeKey, dataset, chunkKey, buffer or null when absent]`. */
export type SharedChunk = [string, string, string, SharedArrayBuffer | null];

/** A job as sent to a worker: like ChunkJob, with a map's kernel shipped. */
export type WorkerJob = Exclude<ChunkJob, { kind: 'map' }> | (Omit<Extract<ChunkJob, { kind: 'map' }>, 'kernel'> & { kernel: ShippedKernel });

export interface WorkerTask {
  readonly settings: ConnectionSettings;
  readonly job: WorkerJob;
  readonly index: ChunkIndex;
  /** Stores (by settingsKey) whose chunks travel with the task instead of being opened here. */
  readonly sharedStores: readonly string[];
  readonly chunks: readonly SharedChunk[];
}

export interface WorkerResult {
  readonly worker: number;
  readonly stats?: ChunkStats;
  /** Chunks written or deleted in shared stores: `[dataset, chunkKey, buffer or null]`. */
  readonly writes?: [string, string, SharedArrayBuffer | null][];
  readonly error?: SerializedError;
}

export const settingsKey = (settings: ConnectionSettings): string => JSON.stringify(settings);
export const chunkKey = (index: ChunkIndex): string => index.join('.');

installShims();

const opened = new Map<string, Promise<Store>>();

function openStore(settings: ConnectionSettings): Promise<Store> {
  const key = settingsKey(settings);
  let store = opened.get(key);
  if (!store) {
    store = loadBackend(settings.backend).then(async (backend) => {
      const s = backend.open(settings.name, settings.options);
      await s.connect();
      return s;
    });
    store.catch(() => opened.delete(key));
    opened.set(key, store);
  }
  return store;
}

/** A store made of the chunks that came with one task; writes are collected for the main thread. */
class HandedOverStore implements Store {
  readonly capabilities = { sharedMemory: true };
  constructor(
    private readonly chunks: Map<string, SharedArrayBuffer | null>,
    private readonly writes: [string, string, SharedArrayBuffer | null][] | undefined,
  ) {}

  private lookup(meta: DatasetMeta, index: ChunkIndex): SharedArrayBuffer | null {
    const key = `${meta.name}\u0000${chunkKey(index)}`;
    if (!this.chunks.has(key)) throw new DosnaError(`internal: chunk ${chunkKey(index)} of ${meta.name} was not handed to the worker`);
    return this.chunks.get(key)!;
  }

  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}
  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    const buffer = this.lookup(meta, index);
    return buffer ? new Uint8Array(buffer) : undefined;
  }
  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.lookup(meta, index) !== null;
  }
  async writeChunk(meta: DatasetMeta, index: ChunkIndex, bytes: Uint8Array): Promise<void> {
    let buffer = bytes.buffer;
    if (!(buffer instanceof SharedArrayBuffer) || bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength) {
      buffer = new SharedArrayBuffer(bytes.byteLength);
      new Uint8Array(buffer).set(bytes);
    }
    this.record(meta, index, buffer as SharedArrayBuffer);
  }
  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    this.record(meta, index, null);
    return true;
  }
  private record(meta: DatasetMeta, index: ChunkIndex, buffer: SharedArrayBuffer | null): void {
    if (!this.writes) throw new DosnaError(`internal: a worker task tried to write a chunk of ${meta.name} in a store it only reads`);
    this.writes.push([meta.name, chunkKey(index), buffer]);
  }
  // The rest of the Store interface is never used by a chunk task.
  async listDatasets(): Promise<string[]> { throw new DosnaError('internal: not available in a worker task'); }
  async readMeta(): Promise<DatasetMeta | undefined> { throw new DosnaError('internal: not available in a worker task'); }
  async createMeta(): Promise<void> { throw new DosnaError('internal: not available in a worker task'); }
  async deleteDataset(): Promise<void> { throw new DosnaError('internal: not available in a worker task'); }
  async listChunks(): Promise<ChunkIndex[]> { throw new DosnaError('internal: not available in a worker task'); }
}

/** Runs one task; failures come back as data so the pool survives and the caller gets the stack. */
export default async function runTask(task: WorkerTask): Promise<WorkerResult> {
  try {
    const ownKey = settingsKey(task.settings);
    const byStore = new Map<string, Map<string, SharedArrayBuffer | null>>();
    for (const [store, dataset, chunk, buffer] of task.chunks) {
      let table = byStore.get(store);
      if (!table) byStore.set(store, (table = new Map()));
      table.set(`${dataset}\u0000${chunk}`, buffer);
    }
    const writes: [string, string, SharedArrayBuffer | null][] = [];
    const storeFor = async (settings: ConnectionSettings): Promise<Store> => {
      const key = settingsKey(settings);
      if (!task.sharedStores.includes(key)) return openStore(settings);
      return new HandedOverStore(byStore.get(key) ?? new Map(), key === ownKey ? writes : undefined);
    };
    const job: ChunkJob = task.job.kind === 'map'
      ? { ...task.job, kernel: await reviveKernel(task.job.kernel) }
      : task.job;
    const stats = await executeChunk({ store: await storeFor(task.settings), storeFor }, job, task.index);
    return { worker: threadId, stats, writes };
  } catch (error) {
    return { worker: threadId, error: serializeError(error) };
  }
}
