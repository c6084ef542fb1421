/**
 * The `ram` backend: an object store in this process's memory. Connections with the same
 * name share their datasets for the life of the process (as connections to one real store
 * do). Chunks live in SharedArrayBuffers so worker threads can read and write them without
 * copies; each process has its own memory, so multi-process engines cannot use it.
 *
 * Generations are numbers from one counter of the process, so a chunk replaced twice never
 * shows an earlier generation again; every write swaps in a new buffer (stored buffers are
 * never modified in place), so a reader holding the old one never sees a half-written chunk.
 */
import { DatasetExistsError, DatasetNotFoundError, DosnaError } from '../errors.js';
import { checkName } from '../names.js';
import { sharedBufferOf } from '../segments.js';
import type { Backend, ChunkIndex, ChunkVersion, DatasetMeta, Generation, MetaVersion, Store } from '../store.js';

interface StoredChunk {
  readonly buffer: SharedArrayBuffer;
  readonly generation: Generation;
}

interface RamDataset {
  meta: DatasetMeta;
  generation: Generation;
  chunks: Map<string, StoredChunk>;
}

/** Every ram connection of this process, by name. */
const connections = new Map<string, Map<string, RamDataset>>();

let counter = 0;
const nextGeneration = (): Generation => String(++counter);

const key = (index: ChunkIndex) => index.join('.');

class RamStore implements Store {
  readonly capabilities = { sharedMemory: true };
  constructor(private readonly name: string) {}

  private get datasets(): Map<string, RamDataset> {
    let table = connections.get(this.name);
    if (!table) {
      table = new Map();
      connections.set(this.name, table);
    }
    return table;
  }

  /** The dataset of this incarnation: a handle on a deleted (or deleted and re-created) dataset finds none. */
  private dataset(meta: DatasetMeta | string): RamDataset {
    const name = typeof meta === 'string' ? meta : meta.name;
    const ds = this.datasets.get(name);
    if (!ds || (typeof meta !== 'string' && ds.meta.uid !== meta.uid)) {
      throw new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in ram connection ${JSON.stringify(this.name)}`);
    }
    return ds;
  }

  async connect(): Promise<void> {
    void this.datasets;
  }

  async disconnect(): Promise<void> {}

  async listDatasets(): Promise<string[]> {
    return [...this.datasets.keys()].sort();
  }

  async readMeta(name: string): Promise<MetaVersion | undefined> {
    const ds = this.datasets.get(name);
    return ds && { meta: ds.meta, generation: ds.generation };
  }

  async metaGeneration(name: string): Promise<Generation | null> {
    return this.datasets.get(name)?.generation ?? null;
  }

  async createMeta(meta: DatasetMeta): Promise<Generation> {
    if (this.datasets.has(meta.name)) throw new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists`);
    const generation = nextGeneration();
    this.datasets.set(meta.name, { meta, generation, chunks: new Map() });
    return generation;
  }

  async deleteDataset(name: string): Promise<void> {
    this.dataset(name);
    this.datasets.delete(name);
  }

  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    const stored = this.dataset(meta).chunks.get(key(index));
    return stored && new Uint8Array(stored.buffer);
  }

  async readChunkVersion(meta: DatasetMeta, index: ChunkIndex): Promise<ChunkVersion> {
    const stored = this.dataset(meta).chunks.get(key(index));
    return stored ? { bytes: new Uint8Array(stored.buffer), generation: stored.generation } : { bytes: undefined, generation: null };
  }

  async chunkGeneration(meta: DatasetMeta, index: ChunkIndex): Promise<Generation | null> {
    return this.dataset(meta).chunks.get(key(index))?.generation ?? null;
  }

  async writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation> {
    const generation = nextGeneration();
    this.dataset(meta).chunks.set(key(index), { buffer: sharedBufferOf(parts), generation });
    return generation;
  }

  async writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined> {
    // One thread owns this map and nothing below awaits: the comparison and the swap are one step.
    const chunks = this.dataset(meta).chunks;
    const current = chunks.get(key(index))?.generation ?? null;
    if (current !== expected) return undefined;
    const generation = nextGeneration();
    chunks.set(key(index), { buffer: sharedBufferOf(parts), generation });
    return generation;
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.dataset(meta).chunks.has(key(index));
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.dataset(meta).chunks.delete(key(index));
  }

  async deleteChunks(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<void> {
    const chunks = this.dataset(meta).chunks;
    for (const index of indices) chunks.delete(key(index));
  }

  async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    return [...this.dataset(meta).chunks.keys()].map((k) => k.split('.').map(Number));
  }
}

export const backend: Backend = {
  name: 'ram',
  open(name, options) {
    checkName(name, 'connection');
    const unknown = Object.keys(options);
    if (unknown.length > 0) throw new DosnaError(`the ram backend takes no options, got ${unknown.join(', ')}`);
    return new RamStore(name);
  },
};
