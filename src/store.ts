/**
 * The backend seam. A backend is a small set of storage primitives (dataset metadata and
 * chunk bytes), nothing more: slicing, broadcasting, caching and parallelism live above it, so
 * a new backend is one file of plain I/O. Chunks travel as raw little-endian C-order bytes of
 * the full chunk shape (edge chunks padded with the fill value).
 *
 * Every stored chunk and every dataset's metadata has a {@link Generation}: a token that
 * changes whenever the stored bytes are replaced. Conditional writes (`writeChunkIf`) compare
 * it atomically, across processes and hosts, which is what lets several writers update cells
 * of one chunk without losing each other's updates (see `commit.ts` and docs/concurrency.md).
 */
import type { Attrs, AttrsVersion } from './attrs.js';
import type { Compression } from './codecs/index.js';
import type { DType, Scalar } from './dtypes.js';

/** Everything a backend stores about a dataset. Plain data (bigints aside): safe to send to workers. */
export interface DatasetMeta {
  /** The dataset's path: `vol` at the top, `scan1/vol` in group `scan1` (see `paths.ts`). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly chunkSize: readonly number[];
  readonly fillValue: Scalar;
  /**
   * Identity of this incarnation of the dataset, fixed at creation: a dataset deleted and
   * created again under the same name gets a new one, so handles and chunks of the old one
   * are never taken for the new one. Empty for datasets written by tools that do not set it
   * (Python DosNa).
   */
  readonly uid: string;
  /** How chunks are compressed (`codecs/`), fixed at creation; absent: raw bytes. */
  readonly compression?: Compression;
  /** Backend-specific settings fixed at creation (none of today's backends takes any), or found in what other tools wrote (a zarr array's sharding). */
  readonly options?: Readonly<Record<string, unknown>>;
  /**
   * Why the dataset can be read but not changed (a zarr array in a layout dosna reads but does
   * not write); absent: it can be changed. Every change is refused before anything is written.
   */
  readonly readOnly?: string;
}

/** The grid index of a chunk: one integer per axis. */
export type ChunkIndex = readonly number[];

/**
 * Identifies one stored version of a chunk or of a dataset's metadata. Opaque; equal
 * generations mean the same stored version (an S3 ETag, a counter, a file's inode and its
 * unique modification time).
 */
export type Generation = string;

/** One chunk's part in a batched read (`Store.readChunksInto`): its bytes from `start` on, in order, into `segments`. */
export interface ChunkReadRequest {
  readonly index: ChunkIndex;
  readonly start: number;
  readonly segments: readonly Uint8Array[];
}

/**
 * A copy out of a chunk read (`Store.readChunkInto`): the rows of `plan` (`nativeCopyPlan`)
 * from `src`, the segment the read fills, into `dst`, the caller's array.
 */
export interface CopyOut {
  readonly dst: ArrayBufferView;
  readonly src: Uint8Array;
  readonly plan: Float64Array;
}

/** A chunk as read for a read-modify-write: its bytes and the generation they belong to. */
export interface ChunkVersion {
  /** The chunk's bytes, or `undefined` when it reads as the fill value (never written). */
  readonly bytes: Uint8Array | undefined;
  /**
   * The generation to pass to `writeChunkIf`: `null` when nothing is stored. (A stored object
   * that is not this dataset's, such as a leftover of an earlier dataset of the same name,
   * reads as absent but has a generation, so a conditional write replaces it.)
   */
  readonly generation: Generation | null;
}

/** What a path names: a dataset or a group. */
export type NodeKind = 'dataset' | 'group';

/** One child of a group. */
export interface NodeEntry {
  readonly name: string;
  readonly kind: NodeKind;
}

/** Whose attributes: a dataset (by its metadata, so a replaced dataset is not taken for it) or a group (`''` is the root). */
export type AttrsOwner = { readonly dataset: DatasetMeta } | { readonly group: string };

/** Dataset metadata with the generation it was read at. */
export interface MetaVersion {
  readonly meta: DatasetMeta;
  readonly generation: Generation;
}

/**
 * How to open the same connection again, elsewhere (a worker thread, another rank): must be
 * structured-cloneable, so backends keep only plain data in `options`.
 */
export interface ConnectionSettings {
  readonly backend: string;
  readonly name: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/** What a store can do beyond the required primitives, so the layers above can pick fast paths. */
export interface StoreCapabilities {
  /** Chunks live in SharedArrayBuffers that other threads of this process may use directly. */
  readonly sharedMemory?: boolean;
  /** Data lives in this process's memory only: another process (a rank, the `dosna` command) sees none of it. */
  readonly processLocal?: boolean;
  /** `readChunkRange` is cheaper than reading the whole chunk. */
  readonly rangeReads?: boolean;
}

/** One open connection to where chunks live. */
export interface Store {
  readonly capabilities: StoreCapabilities;
  /** Checks the store is reachable; throws `ConnectionError` naming what failed. */
  connect(): Promise<void>;
  disconnect(): Promise<void>;

  /** The datasets at the top of the connection (not in groups), sorted. */
  listDatasets(): Promise<string[]>;
  /** The dataset's metadata and its generation, or `undefined` when it does not exist. */
  readMeta(name: string): Promise<MetaVersion | undefined>;
  /** The generation of the dataset's metadata (cheap: a stat, a HEAD), or `null` when it does not exist. */
  metaGeneration(name: string): Promise<Generation | null>;
  /**
   * Optional, for stores whose check is local (a stat, a lookup in this process's memory):
   * `metaGeneration` at once. A read whose metadata must be confirmed then checks it before
   * reading, with no promise (see `Dataset.readOnCurrent`).
   */
  metaGenerationNow?(name: string): Generation | null;
  /**
   * Creates the dataset's metadata and returns its generation; throws `DatasetExistsError`
   * if the dataset exists. Leftovers of an earlier dataset of that name are not shown by it.
   */
  createMeta(meta: DatasetMeta): Promise<Generation>;
  /**
   * Removes the dataset and every chunk; throws `DatasetNotFoundError` if it does not exist.
   * Works on a dataset whose metadata cannot be read.
   */
  deleteDataset(name: string): Promise<void>;
  /**
   * Replaces the dataset's metadata (a resize) if its generation is still `expected`, keeping
   * its attributes; the new generation, or `undefined` when it changed.
   */
  writeMetaIf(meta: DatasetMeta, expected: Generation): Promise<Generation | undefined>;

  /** What `path` names (`''`, the root, is a group), or `undefined`. */
  nodeKind(path: string): Promise<NodeKind | undefined>;
  /**
   * Makes group `path` (its parent must exist); resolves `false` when it is a group already.
   * Throws `DatasetExistsError` when a dataset has that path.
   */
  createGroup(path: string): Promise<boolean>;
  /** Removes an empty group; throws `GroupNotFoundError`, or `DosnaError` when it is not empty. */
  deleteGroup(path: string): Promise<void>;
  /** The datasets and groups in group `path`, sorted by name; throws `GroupNotFoundError`. */
  list(path: string): Promise<NodeEntry[]>;
  /** The attributes of a dataset or group with their generation (an absent node: `DatasetNotFoundError`/`GroupNotFoundError`). */
  readAttrs(owner: AttrsOwner): Promise<AttrsVersion>;
  /** Replaces them if their generation is still `expected`: the new generation, or `undefined`. */
  writeAttrsIf(owner: AttrsOwner, attrs: Attrs, expected: Generation | null): Promise<Generation | undefined>;

  /**
   * The chunk's bytes, or `undefined` when it was never written. The result may be shared: do
   * not modify it. `into`, a full-chunk buffer the caller lends, receives the bytes when the
   * store can read straight into it (then the result is `into`); the store may ignore it.
   */
  readChunk(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<Uint8Array | undefined>;
  /**
   * Optional, for stores that hold uncompressed chunks in this process's memory (`ram`): the
   * chunk's stored bytes at once (read only, as `readChunk`'s), or `undefined` when it was never
   * written. A read of many chunks then copies them all in one synchronous pass, with no task or
   * promise per chunk (see chunk-ops.ts, `runChunks`). Only for datasets without compression.
   */
  readChunkNow?(meta: DatasetMeta, index: ChunkIndex): Uint8Array | undefined;
  /** Optional, as `readChunkNow`: the chunk's stored bytes (read only) with their generation, at once. */
  readChunkVersionNow?(meta: DatasetMeta, index: ChunkIndex): ChunkVersion;
  /**
   * The chunk's bytes with their generation, for a read-modify-write. The bytes are the
   * caller's to change, except from a store with `sharedMemory` (they may be the stored ones).
   * `into`, a full-chunk buffer the caller lends, receives the bytes when the store can read
   * straight into it (then `bytes` is `into`); the store may ignore it.
   */
  readChunkVersion(meta: DatasetMeta, index: ChunkIndex, into?: Uint8Array): Promise<ChunkVersion>;
  /** The chunk's current generation (cheap: a stat, a HEAD), `null` when nothing is stored. */
  chunkGeneration(meta: DatasetMeta, index: ChunkIndex): Promise<Generation | null>;
  /**
   * The current generations of many chunks at once, in order (what `chunkGeneration` gives for
   * each): for stores that can ask for them together (one native batch of stats).
   */
  chunkGenerations?(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<(Generation | null)[]>;
  /**
   * Optional, as `metaGenerationNow`: `chunkGenerations` at once, for stores that check with
   * local system calls (the chunk cache's check of a line's chunks then takes no promise).
   */
  chunkGenerationsNow?(meta: DatasetMeta, indices: readonly ChunkIndex[]): (Generation | null)[];
  /** Bytes `[start, end)` of the chunk, or `undefined` when it was never written. */
  readChunkRange?(meta: DatasetMeta, index: ChunkIndex, start: number, end: number): Promise<Uint8Array | undefined>;
  /**
   * Replaces the whole chunk atomically (readers see the old bytes or the new, never a mix)
   * and returns the new generation. `parts` are the chunk's bytes in order; the store reads
   * them only until the promise settles, except a store with `sharedMemory`, which may keep a
   * single part that spans a whole SharedArrayBuffer: callers must not modify it afterwards.
   */
  writeChunk(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<Generation>;
  /**
   * Like `writeChunk`, but only if the chunk's stored generation is still `expected` (`null`:
   * only if nothing is stored). The comparison and the replacement are one atomic step for
   * every writer of any process. Resolves the new generation, or `undefined` (nothing
   * written) when the chunk changed.
   */
  writeChunkIf(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[], expected: Generation | null): Promise<Generation | undefined>;
  /**
   * Optional vectored read, for stores over files: the chunk's bytes from `start` on go, in
   * order, straight into `segments` (views of the caller's array and of gap buffers; see
   * `segments.ts`), with no chunk buffer in between. Resolves `false`, leaving the segments
   * alone, when the chunk was never written. On failure the segments may hold partial data.
   * With `copyOut` (its `src` one of the segments) the store may also copy the part out, on the
   * thread that read it, right after the read: it resolves `'copied'` when it did, and `true`
   * when the caller still has to.
   */
  readChunkInto?(meta: DatasetMeta, index: ChunkIndex, start: number, segments: readonly Uint8Array[], copyOut?: CopyOut): Promise<boolean | 'copied'>;
  /**
   * Optional batched `readChunkInto`, for stores over local files whose chunk files are small:
   * every request read on the calling thread, in one step for all of them. For reads of many
   * small chunk parts (a plane of a cube in 32^3 chunks: 64 files), where a task per chunk costs
   * more than the chunk's file calls. Resolves, per request in order, whether the chunk was found.
   * Only for datasets `readsChunksInto` accepts.
   */
  readChunksInto?(meta: DatasetMeta, requests: readonly ChunkReadRequest[]): Promise<boolean[]>;
  /** Whether `readChunksInto` serves this dataset's chunks. */
  readsChunksInto?(meta: DatasetMeta): boolean;
  /** Whether `writeChunk` takes many small parts cheaply (vectored file writes). */
  readonly vectoredWrites?: boolean;
  hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean>;
  /** Removes the chunk; returns whether it existed. Atomic with respect to conditional writes. */
  deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean>;
  /** Optional batched removal of many chunks (absent ones are ignored). */
  deleteChunks?(meta: DatasetMeta, indices: readonly ChunkIndex[]): Promise<void>;
  /** Grid indices of every stored chunk. */
  listChunks(meta: DatasetMeta): Promise<ChunkIndex[]>;
  /** The bytes the store holds for the dataset's chunks, as stored (after compression, with file overhead). */
  storedBytes(meta: DatasetMeta): Promise<number>;
}

/** A backend: a name and a way to open a store from serializable options. */
export interface Backend {
  readonly name: string;
  /** Opens (without connecting) the store for connection `name`. Validates options and name. */
  open(name: string, options: Readonly<Record<string, unknown>>): Store;
}
