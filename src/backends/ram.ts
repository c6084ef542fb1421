/**
 * The `ram` backend: an object store in this process's memory. Connections with the same
 * name share their datasets for the life of the process (as connections to one real store
 * do). Chunks live in SharedArrayBuffers so worker threads can read and write them without
 * copies; each process has its own memory, so multi-process engines cannot use it.
 *
 * Generations are numbers from one counter of the process, so a chunk replaced twice never
 * shows an earlier generation again; every write swaps in a new buffer (stored buffers are
 * never modified in place), so a reader holding the old one never sees a half-written chunk.
 *
 * A compressed dataset keeps its chunks compressed (numcodecs' framing, as s3 stores them);
 * they are decoded into a new SharedArrayBuffer on every read.
 */
import type { Attrs, AttrsVersion } from '../attrs.js';
import { CorruptChunkError, DatasetExistsError, DatasetNotFoundError, DosnaError, GroupExistsError, GroupNotFoundError, OptionError } from '../errors.js';
import { checkOptions } from '../options.js';
import { checkName } from '../names.js';
import { baseName, parentOf, ROOT } from '../paths.js';
import { sharedBufferOf } from '../segments.js';
import { dropSharedBuffer } from '../shared-memory.js';
import { codecReason, decodeChunk, encodeChunk } from '../codecs/index.js';
import { bytesPerElement } from '../dtypes.js';
import { product } from '../slicing.js';
import type { AttrsOwner, Backend, ChunkIndex, ChunkVersion, DatasetMeta, Generation, MetaVersion, NodeEntry, NodeKind, Store } from '../store.js';

interface StoredChunk {
  readonly buffer: SharedArrayBuffer;
  readonly generation: Generation;
}

/** Attributes as stored: replaced whole on every write, never changed in place. */
interface RamAttrs {
  attrs: Attrs;
  attrsGeneration: Generation | null;
}

interface RamDataset extends RamAttrs {
  meta: DatasetMeta;
  generation: Generation;
  chunks: Map<string, StoredChunk>;
}

/** A connection's datasets and groups, by path; the root group is `''`. */
interface RamTable {
  datasets: Map<string, RamDataset>;
  groups: Map<string, RamAttrs>;
}

/** Every ram connection of this process, by name. */
const connections = new Map<string, RamTable>();

let counter = 0;
const nextGeneration = (): Generation => String(++counter);

const key = (index: ChunkIndex) => index.join('.');

class RamStore implements Store {
  readonly capabilities = { sharedMemory: true, processLocal: true };
  constructor(private readonly name: string) {}

  private get table(): RamTable {
    let table = connections.get(this.name);
    if (!table) {
      table = { datasets: new Map(), groups: new Map([[ROOT, { attrs: {}, attrsGeneration: null }]]) };
      connections.set(this.name, table);
    }
    return table;
  }

  private get datasets(): Map<string, RamDataset> {
    return this.table.datasets;
  }

  private group(path: string): RamAttrs {
    const group = this.table.groups.get(path);
    if (!group) throw new GroupNotFoundError(`group ${JSON.stringify(path)} not found in ram connection ${JSON.stringify(this.name)}`);
    return group;
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
    void this.table;
  }

  async disconnect(): Promise<void> {}

  async listDatasets(): Promise<string[]> {
    return [...this.datasets.keys()].filter((name) => !name.includes('/')).sort();
  }

  async nodeKind(path: string): Promise<NodeKind | undefined> {
    if (this.table.groups.has(path)) return 'group';
    return this.datasets.has(path) ? 'dataset' : undefined;
  }

  async createGroup(path: string): Promise<boolean> {
    if (this.datasets.has(path)) throw new DatasetExistsError(`a dataset named ${JSON.stringify(path)} exists`);
    if (this.table.groups.has(path)) return false;
    this.group(parentOf(path));
    this.table.groups.set(path, { attrs: {}, attrsGeneration: null });
    return true;
  }

  async deleteGroup(path: string): Promise<void> {
    this.group(path);
    if ((await this.list(path)).length > 0) throw new DosnaError(`group ${JSON.stringify(path)} is not empty`);
    this.table.groups.delete(path);
  }

  async list(path: string): Promise<NodeEntry[]> {
    this.group(path);
    const children: NodeEntry[] = [];
    for (const [paths, kind] of [[this.datasets.keys(), 'dataset'], [this.table.groups.keys(), 'group']] as const) {
      for (const p of paths) if (p !== ROOT && parentOf(p) === path) children.push({ name: baseName(p), kind });
    }
    return children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private attrsOf(owner: AttrsOwner): RamAttrs {
    return 'dataset' in owner ? this.dataset(owner.dataset) : this.group(owner.group);
  }

  async readAttrs(owner: AttrsOwner): Promise<AttrsVersion> {
    const node = this.attrsOf(owner);
    return { attrs: node.attrs, generation: node.attrsGeneration };
  }

  async writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    const node = this.attrsOf(owner);
    if (node.attrsGeneration !== expected) return undefined;
    node.attrs = attrs;
    node.attrsGeneration = nextGeneration();
    return node.attrsGeneration;
  }

  async writeMetaIf(meta: DatasetMeta, expected: Generation): Promise<Generation | undefined> {
    const ds = this.dataset(meta);
    if (ds.generation !== expected) return undefined;
    ds.meta = meta;
    ds.generation = nextGeneration();
    return ds.generation;
  }

  async readMeta(name: string): Promise<MetaVersion | undefined> {
    const ds = this.datasets.get(name);
    return ds && { meta: ds.meta, generation: ds.generation };
  }

  async metaGeneration(name: string): Promise<Generation | null> {
    return this.metaGenerationNow(name);
  }

  metaGenerationNow(name: string): Generation | null {
    return this.datasets.get(name)?.generation ?? null;
  }

  async createMeta(meta: DatasetMeta): Promise<Generation> {
    if (meta.options && Object.keys(meta.options).length > 0) {
      throw new OptionError(`the ram backend takes no dataset options, got ${Object.keys(meta.options).join(', ')}`);
    }
    if (this.datasets.has(meta.name)) throw new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists`);
    if (this.table.groups.has(meta.name)) throw new GroupExistsError(`a group named ${JSON.stringify(meta.name)} exists`);
    this.group(parentOf(meta.name));
    const generation = nextGeneration();
    this.datasets.set(meta.name, { meta, generation, chunks: new Map(), attrs: {}, attrsGeneration: null });
    return generation;
  }

  async deleteDataset(name: string): Promise<void> {
    const ds = this.dataset(name);
    this.datasets.delete(name);
    for (const chunk of ds.chunks.values()) dropSharedBuffer(chunk.buffer);
  }

  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    const stored = this.dataset(meta).chunks.get(key(index));
    return stored && this.decode(meta, index, stored.buffer);
  }

  readChunkNow(meta: DatasetMeta, index: ChunkIndex): Uint8Array | undefined {
    return this.readChunkVersionNow(meta, index).bytes;
  }

  readChunkVersionNow(meta: DatasetMeta, index: ChunkIndex): ChunkVersion {
    if (meta.compression) throw new DosnaError(`internal: a synchronous read of dataset ${JSON.stringify(meta.name)}, which is compressed`);
    const stored = this.dataset(meta).chunks.get(key(index));
    return stored ? { bytes: new Uint8Array(stored.buffer), generation: stored.generation } : { bytes: undefined, generation: null };
  }

  async readChunkVersion(meta: DatasetMeta, index: ChunkIndex): Promise<ChunkVersion> {
    const stored = this.dataset(meta).chunks.get(key(index));
    return stored ? { bytes: await this.decode(meta, index, stored.buffer), generation: stored.generation } : { bytes: undefined, generation: null };
  }

  /** A stored chunk's bytes: the buffer itself, or decoded into a new shared one. */
  private async decode(meta: DatasetMeta, index: ChunkIndex, buffer: SharedArrayBuffer): Promise<Uint8Array> {
    const c = meta.compression;
    if (!c) return new Uint8Array(buffer);
    const itemsize = bytesPerElement(meta.dtype);
    try {
      const raw = await decodeChunk(c, itemsize, new Uint8Array(buffer), product(meta.chunkSize) * itemsize, 'numcodecs');
      return new Uint8Array(sharedBufferOf([raw]));
    } catch (error) {
      const where = `ram://${this.name}/${meta.name}/${key(index)}`;
      throw new CorruptChunkError(`cannot decode chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} (${where}): ${codecReason(c, error)}`, where, { cause: error });
    }
  }

  /** A chunk's bytes as stored: shared as they are, or compressed. */
  private async encode(meta: DatasetMeta, parts: readonly Uint8Array[]): Promise<SharedArrayBuffer> {
    const c = meta.compression;
    return sharedBufferOf(c ? [await encodeChunk(c, bytesPerElement(meta.dtype), parts, 'numcodecs')] : parts);
  }

  async chunkGeneration(meta: DatasetMeta, index: ChunkIndex): Promise<Generation | null> {
    return this.dataset(meta).chunks.get(key(index))?.generation ?? null;
  }

  async writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation> {
    const buffer = await this.encode(meta, parts);
    const generation = nextGeneration();
    this.replace(this.dataset(meta).chunks, key(index), { buffer, generation });
    return generation;
  }

  async writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined> {
    const buffer = await this.encode(meta, parts);
    // One thread owns this map and nothing below awaits: the comparison and the swap are one step.
    const chunks = this.dataset(meta).chunks;
    const current = chunks.get(key(index))?.generation ?? null;
    if (current !== expected) return undefined;
    const generation = nextGeneration();
    this.replace(chunks, key(index), { buffer, generation });
    return generation;
  }

  /** Stores a chunk in place of the one before, which goes to the collector (shared-memory.ts). */
  private replace(chunks: Map<string, StoredChunk>, at: string, chunk: StoredChunk): void {
    const old = chunks.get(at);
    chunks.set(at, chunk);
    if (old && old.buffer !== chunk.buffer) dropSharedBuffer(old.buffer);
  }

  /** Removes a chunk, which goes to the collector (shared-memory.ts); whether there was one. */
  private remove(chunks: Map<string, StoredChunk>, at: string): boolean {
    const old = chunks.get(at);
    if (!old) return false;
    chunks.delete(at);
    dropSharedBuffer(old.buffer);
    return true;
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.dataset(meta).chunks.has(key(index));
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    return this.remove(this.dataset(meta).chunks, key(index));
  }

  async deleteChunks(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<void> {
    const chunks = this.dataset(meta).chunks;
    for (const index of indices) this.remove(chunks, key(index));
  }

  async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    return [...this.dataset(meta).chunks.keys()].map((k) => k.split('.').map(Number));
  }

  async storedBytes(meta: DatasetMeta): Promise<number> {
    let bytes = 0;
    for (const chunk of this.dataset(meta).chunks.values()) bytes += chunk.buffer.byteLength;
    return bytes;
  }
}

export const backend: Backend = {
  name: 'ram',
  open(name, options) {
    checkName(name, 'connection');
    checkOptions('the ram backend', options, []);
    return new RamStore(name);
  },
};
