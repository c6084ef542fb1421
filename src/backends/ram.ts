/**
 * The `ram` backend: an object store in this process's memory. Connections with the same
 * name share their datasets for the life of the process (as connections to one real store
 * do). Chunks live in SharedArrayBuffers so worker threads can read and write them without
 * copies; each process has its own memory, so multi-process engines cannot use it.
 */
import { DatasetExistsError, DatasetNotFoundError, DosnaError } from '../errors.js';
import { checkName } from '../names.js';
import type { Backend, ChunkIndex, DatasetMeta, Store } from '../store.js';

interface RamDataset {
  meta: DatasetMeta;
  chunks: Map<string, SharedArrayBuffer>;
}

/** Every ram connection of this process, by name. */
const connections = new Map<string, Map<string, RamDataset>>();

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

  private dataset(meta: DatasetMeta | string): RamDataset {
    const name = typeof meta === 'string' ? meta : meta.name;
    const ds = this.datasets.get(name);
    if (!ds) throw new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in ram connection ${JSON.stringify(this.name)}`);
    return ds;
  }

  async connect(): Promise<void> {
    void this.datasets;
  }

  async disconnect(): Promise<void> {}

  async listDatasets(): Promise<string[]> {
    return [...this.datasets.keys()].sort();
  }

  async readMeta(name: string): Promise<DatasetMeta | undefined> {
    return this.datasets.get(name)?.meta;
  }

  async createMeta(meta: DatasetMeta): Promise<void> {
    if (this.datasets.has(meta.name)) throw new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists`);
    this.datasets.set(meta.name, { meta, chunks: new Map() });
  }

  async deleteDataset(name: string): Promise<void> {
    this.dataset(name);
    this.datasets.delete(name);
  }

  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    const buffer = this.dataset(meta).chunks.get(key(index));
    return buffer && new Uint8Array(buffer);
  }

  async writeChunk(meta: DatasetMeta, index: ChunkIndex, bytes: Uint8Array): Promise<void> {
    const chunks = this.dataset(meta).chunks;
    // Stored buffers are never modified in place: a write swaps in a new buffer, so a reader
    // holding the old one (in this thread or a worker) never sees a half-written chunk.
    const adoptable = bytes.buffer instanceof SharedArrayBuffer && bytes.byteOffset === 0
      && bytes.byteLength === bytes.buffer.byteLength;
    let buffer: SharedArrayBuffer;
    if (adoptable) {
      buffer = bytes.buffer as SharedArrayBuffer;
    } else {
      buffer = new SharedArrayBuffer(bytes.byteLength);
      new Uint8Array(buffer).set(bytes);
    }
    chunks.set(key(index), buffer);
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.dataset(meta).chunks.has(key(index));
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.dataset(meta).chunks.delete(key(index));
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
