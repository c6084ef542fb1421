/**
 * A Store over one S3 bucket, shared by the `s3` and `ceph` backends (they differ only in how
 * a dataset's metadata is laid out, their {@link MetaLayout}).
 *
 * Chunks are objects `<dataset>/<i>.<j>.<k>` holding the raw little-endian C-order bytes of
 * the full chunk, or those bytes compressed (numcodecs' framing, `codecs/`) when the dataset
 * is. A PUT replaces an object atomically, so readers see the old chunk or the
 * new, never a mix. A chunk's generation is its ETag, and conditional writes are PUTs with
 * `If-Match` / `If-None-Match: *`. Each chunk carries its dataset's uid as user metadata
 * (`x-amz-meta-dosna-uid`), so a chunk left by an earlier dataset of the same name (written by
 * a handle that raced its deletion) never shows in a new one; creating a dataset also removes
 * whatever is left under its prefix.
 */
import { randomUUID } from 'node:crypto';
import type { Attrs, AttrsVersion } from '../../attrs.js';
import { codecReason, decodeChunk, encodeChunk } from '../../codecs/index.js';
import { bytesPerElement } from '../../dtypes.js';
import { CorruptChunkError, DatasetExistsError, DatasetNotFoundError, DosnaError, GroupExistsError, OptionError } from '../../errors.js';
import type { AttrsOwner, ChunkIndex, ChunkVersion, DatasetMeta, Generation, MetaVersion, NodeEntry, NodeKind, Store, StoreCapabilities } from '../../store.js';
import { S3Access, type GotObject } from './access.js';
import { GROUP_OBJECT, ObjectNodes } from './nodes.js';
import { checkDatasetName, type ClientSettings } from './settings.js';

/** How one backend lays out a dataset's metadata; chunks are `<dataset>/<i>.<j>.<k>` in both. */
export interface MetaLayout {
  /** Object key of the dataset's metadata object. */
  metaKey(name: string): string;
  /**
   * Body and user metadata of the metadata object. `revision` (a replacement's, unique) must
   * change the body when the body would not change otherwise, so the ETag, which conditional
   * replacements compare, changes with every version.
   */
  encode(meta: DatasetMeta, revision?: string): { body: Uint8Array; metadata?: Record<string, string>; contentType: string };
  /** Reads a dataset's metadata with its generation; undefined when the dataset does not exist. */
  read(access: S3Access, name: string): Promise<MetaVersion | undefined>;
  /**
   * The generation of a dataset's metadata as `read` gives it (null when there is none), from
   * a HEAD of the metadata object: its ETag when the body holds the metadata, more when the
   * user metadata does (the ETag covers only the body).
   */
  generation(head: { etag: string | undefined; metadata: Record<string, string> }): Generation;
  /** Names of every dataset in the bucket, sorted. */
  list(access: S3Access): Promise<string[]>;
}

/** The user-metadata key (as the SDK shows it) of a chunk's dataset uid. */
export const UID_METADATA = 'dosna-uid';

const CHUNK_NAME = /^\d+(?:\.\d+)*$/;

export function chunkGrid(meta: Pick<DatasetMeta, 'shape' | 'chunkSize'>): number[] {
  return meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a]));
}

const concat = (parts: readonly Uint8Array[]): Uint8Array => (parts.length === 1 ? parts[0] : Buffer.concat(parts));

export class ObjectStore implements Store {
  readonly capabilities: StoreCapabilities = { rangeReads: true };
  readonly access: S3Access;
  readonly #layout: MetaLayout;
  readonly #nodes: ObjectNodes;

  constructor(settings: ClientSettings, layout: MetaLayout) {
    this.access = new S3Access(settings);
    this.#layout = layout;
    this.#nodes = new ObjectNodes(this.access, (name) => layout.metaKey(name));
  }

  nodeKind(path: string): Promise<NodeKind | undefined> {
    return this.#nodes.kind(path);
  }

  createGroup(path: string): Promise<boolean> {
    return this.#nodes.createGroup(path);
  }

  deleteGroup(path: string): Promise<void> {
    return this.#nodes.deleteGroup(path);
  }

  list(path: string): Promise<NodeEntry[]> {
    return this.#nodes.list(path);
  }

  readAttrs(owner: AttrsOwner): Promise<AttrsVersion> {
    return this.#nodes.readAttrs(owner);
  }

  writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined> {
    return this.#nodes.writeAttrsIf(owner, attrs, expected);
  }

  async writeMetaIf(meta: DatasetMeta, expected: Generation): Promise<Generation | undefined> {
    const key = this.#layout.metaKey(checkDatasetName(meta.name));
    const head = await this.access.head(key);
    if (!head || this.#layout.generation(head) !== expected || !head.etag) return undefined;
    const { body, metadata, contentType } = this.#layout.encode(meta, randomUUID());
    const etag = await this.access.put(key, body, { metadata, contentType, ifMatch: head.etag });
    return etag === undefined ? undefined : this.#layout.generation({ etag, metadata: metadata ?? {} });
  }

  async connect(): Promise<void> {
    this.access.open();
    try {
      await this.access.checkBucket();
    } catch (error) {
      this.access.close();
      throw error;
    }
  }

  async disconnect(): Promise<void> {
    this.access.close();
  }

  listDatasets(): Promise<string[]> {
    return this.#layout.list(this.access);
  }

  readMeta(name: string): Promise<MetaVersion | undefined> {
    return this.#layout.read(this.access, checkDatasetName(name));
  }

  async metaGeneration(name: string): Promise<Generation | null> {
    const head = await this.access.head(this.#layout.metaKey(checkDatasetName(name)));
    return head ? this.#layout.generation(head) : null;
  }

  async createMeta(meta: DatasetMeta): Promise<Generation> {
    checkDatasetName(meta.name);
    if (meta.options && Object.keys(meta.options).length > 0) {
      throw new OptionError(`the ${this.access.settings.backend} backend takes no dataset options, got ${Object.keys(meta.options).join(', ')}`);
    }
    // A group's marker under that prefix: creating a dataset there would sweep the group away.
    if (await this.access.head(`${meta.name}/${GROUP_OBJECT}`)) throw new GroupExistsError(`a group named ${JSON.stringify(meta.name)} exists in bucket ${JSON.stringify(this.access.bucket)}`);
    const { body, metadata, contentType } = this.#layout.encode(meta);
    // Conditional: of two processes creating it, one wins, and an object of that name that is
    // not a dataset is not overwritten either.
    const etag = await this.access.put(this.#layout.metaKey(meta.name), body, { metadata, contentType, ifAbsent: true });
    if (etag === undefined) throw new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists in bucket ${JSON.stringify(this.access.bucket)}`);
    const generation = this.#layout.generation({ etag, metadata: metadata ?? {} });
    // Nobody can have written a chunk of this new dataset yet: anything under its prefix is
    // left from an earlier one of that name.
    const leftovers = (await this.access.listKeys(`${meta.name}/`)).filter((k) => k !== this.#layout.metaKey(meta.name));
    if (leftovers.length > 0) await this.access.deleteMany(leftovers);
    return generation;
  }

  async deleteDataset(name: string): Promise<void> {
    checkDatasetName(name);
    const metaKey = this.#layout.metaKey(name);
    // Its metadata need not be readable: a dataset is there when its metadata object is.
    if ((await this.metaGeneration(name)) === null) {
      throw new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in bucket ${JSON.stringify(this.access.bucket)}`);
    }
    // Chunks first, the metadata last: an interrupted delete leaves a dataset (with fewer
    // chunks), never chunks without a dataset.
    const keys = (await this.access.listKeys(`${name}/`)).filter((k) => k !== metaKey);
    await this.access.deleteMany(keys);
    await this.access.delete(metaKey);
  }

  chunkKey(meta: DatasetMeta, index: ChunkIndex): string {
    const grid = chunkGrid(meta);
    if (index.length !== grid.length || !index.every((i, a) => Number.isSafeInteger(i) && i >= 0 && i < Math.max(1, grid[a]))) {
      throw new DosnaError(`chunk index ${JSON.stringify(index)} is not valid for dataset ${JSON.stringify(meta.name)} with chunk grid ${JSON.stringify(grid)}`);
    }
    return `${meta.name}/${index.join('.')}`;
  }

  private chunkBytes(meta: DatasetMeta): number {
    return meta.chunkSize.reduce((a, b) => a * b, 1) * bytesPerElement(meta.dtype);
  }

  /** Whether a stored object belongs to this incarnation of the dataset (objects without a uid do). */
  protected ours(meta: DatasetMeta, metadata: Record<string, string>): boolean {
    const uid = metadata[UID_METADATA];
    return uid === undefined || meta.uid === '' || uid === meta.uid;
  }

  private where(key: string): string {
    return `s3://${this.access.bucket}/${key}`;
  }

  /** The chunk object as read, checked (and decompressed): `undefined` when absent or another dataset's. */
  private async getChunk(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<{ got: GotObject | undefined; key: string }> {
    const key = this.chunkKey(meta, index);
    const c = meta.compression;
    const got = await this.access.getObject(key, undefined, c ? undefined : into);
    if (!got || !this.ours(meta, got.metadata)) return { got, key };
    if (c) {
      try {
        const bytes = await decodeChunk(c, bytesPerElement(meta.dtype), got.bytes, this.chunkBytes(meta), 'numcodecs');
        return { got: { ...got, bytes }, key };
      } catch (error) {
        throw new CorruptChunkError(`cannot decode chunk object ${this.where(key)}: ${codecReason(c, error)}`, this.where(key), { cause: error });
      }
    }
    if (got.bytes.byteLength !== this.chunkBytes(meta)) {
      throw new CorruptChunkError(`chunk object ${this.where(key)} holds ${got.bytes.byteLength} bytes, not the ${this.chunkBytes(meta)} of a full ${meta.chunkSize.join('x')} ${meta.dtype} chunk`, this.where(key));
    }
    return { got, key };
  }

  async readChunk(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<Uint8Array | undefined> {
    const { got } = await this.getChunk(meta, index, into);
    return got && this.ours(meta, got.metadata) ? got.bytes : undefined;
  }

  async readChunkVersion(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<ChunkVersion> {
    const { got } = await this.getChunk(meta, index, into);
    if (!got) return { bytes: undefined, generation: null };
    return { bytes: this.ours(meta, got.metadata) ? got.bytes : undefined, generation: got.etag ?? '' };
  }

  async chunkGeneration(meta: DatasetMeta, index: ChunkIndex): Promise<Generation | null> {
    const head = await this.access.head(this.chunkKey(meta, index));
    return head ? head.etag ?? '' : null;
  }

  async readChunkRange(meta: DatasetMeta, index: ChunkIndex, start: number, end: number): Promise<Uint8Array | undefined> {
    if (meta.compression) return (await this.readChunk(meta, index))?.subarray(start, end);
    const key = this.chunkKey(meta, index);
    const total = this.chunkBytes(meta);
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && end <= total)) {
      throw new DosnaError(`byte range [${start}, ${end}) is outside chunk ${key} of ${total} bytes`);
    }
    if (start === end) return (await this.hasChunk(meta, index)) ? new Uint8Array(0) : undefined;
    const got = await this.access.getObject(key, { start, end });
    if (!got || !this.ours(meta, got.metadata)) return undefined;
    if (got.bytes.byteLength !== end - start) {
      throw new CorruptChunkError(`range GET of ${this.where(key)} bytes ${start}-${end - 1} returned ${got.bytes.byteLength} bytes; the chunk object is shorter than a full chunk`, this.where(key));
    }
    return got.bytes;
  }

  private async putChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], condition: { ifAbsent?: boolean; ifMatch?: string }): Promise<string | undefined> {
    const key = this.chunkKey(meta, index);
    const length = parts.reduce((n, p) => n + p.byteLength, 0);
    if (length !== this.chunkBytes(meta)) {
      throw new DosnaError(`chunk ${key} must be ${this.chunkBytes(meta)} bytes, got ${length}`);
    }
    const body = meta.compression ? await encodeChunk(meta.compression, bytesPerElement(meta.dtype), parts, 'numcodecs') : concat(parts);
    return this.access.put(key, body, { ...condition, ...(meta.uid ? { metadata: { [UID_METADATA]: meta.uid } } : {}) });
  }

  async writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation> {
    return (await this.putChunk(meta, index, parts, {}))!;
  }

  async writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined> {
    return this.putChunk(meta, index, parts, expected === null ? { ifAbsent: true } : { ifMatch: expected });
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    const head = await this.access.head(this.chunkKey(meta, index));
    return head !== undefined && this.ours(meta, head.metadata);
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    const key = this.chunkKey(meta, index);
    const head = await this.access.head(key);
    if (!head) return false;
    await this.access.delete(key);
    return this.ours(meta, head.metadata);
  }

  async deleteChunks(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<void> {
    await this.access.deleteMany(indices.map((index) => this.chunkKey(meta, index)));
  }

  async storedBytes(meta: DatasetMeta): Promise<number> {
    const prefix = `${checkDatasetName(meta.name)}/`;
    let bytes = 0;
    for await (const page of this.access.listPages(prefix)) {
      for (const o of page.objects) if (CHUNK_NAME.test(o.key.slice(prefix.length))) bytes += o.size;
    }
    return bytes;
  }

  async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    const prefix = `${checkDatasetName(meta.name)}/`;
    const ndim = meta.shape.length;
    const out: ChunkIndex[] = [];
    for (const key of await this.access.listKeys(prefix)) {
      const rest = key.slice(prefix.length);
      if (!CHUNK_NAME.test(rest)) continue;
      const index = rest.split('.').map(Number);
      if (index.length === ndim) out.push(index);
    }
    return out;
  }
}
