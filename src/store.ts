/**
 * The backend seam. A backend is a small set of storage primitives (dataset metadata and
 * chunk bytes), nothing more: slicing, broadcasting and parallelism live above it, so a new
 * backend is one file of plain I/O. Chunks travel as raw little-endian C-order bytes of the
 * full chunk shape (edge chunks padded with the fill value).
 */
import type { DType, Scalar } from './dtypes.js';

/** Everything a backend stores about a dataset. Plain data (bigints aside): safe to send to workers. */
export interface DatasetMeta {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly chunkSize: readonly number[];
  readonly fillValue: Scalar;
  /** Backend-specific settings fixed at creation (e.g. `{ compression: 'gzip' }`). */
  readonly options?: Readonly<Record<string, unknown>>;
}

/** The grid index of a chunk: one integer per axis. */
export type ChunkIndex = readonly number[];

/**
 * How to open the same connection again, elsewhere (a worker thread, another rank). Must be
 * structured-cloneable: backends keep only plain data in `options`.
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
  /** `readChunkRange` is cheaper than reading the whole chunk. */
  readonly rangeReads?: boolean;
}

/** One open connection to where chunks live. */
export interface Store {
  readonly capabilities: StoreCapabilities;
  /** Checks the store is reachable; throws `ConnectionError` naming what failed. */
  connect(): Promise<void>;
  disconnect(): Promise<void>;

  listDatasets(): Promise<string[]>;
  /** The dataset's metadata, or `undefined` when it does not exist. */
  readMeta(name: string): Promise<DatasetMeta | undefined>;
  /** Creates the dataset's metadata; throws `DatasetExistsError` if the dataset exists. */
  createMeta(meta: DatasetMeta): Promise<void>;
  /** Removes the dataset and every chunk; throws `DatasetNotFoundError` if it does not exist. */
  deleteDataset(name: string): Promise<void>;

  /** The chunk's bytes, or `undefined` when it was never written. The result may be shared: do not modify it. */
  readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined>;
  /** Bytes `[start, end)` of the chunk, or `undefined` when it was never written. */
  readChunkRange?(meta: DatasetMeta, index: ChunkIndex, start: number, end: number): Promise<Uint8Array | undefined>;
  /**
   * Replaces the whole chunk atomically: readers see the old bytes or the new, never a mix.
   * The store may keep `bytes` without copying: callers must not modify them afterwards.
   */
  writeChunk(meta: DatasetMeta, index: ChunkIndex, bytes: Uint8Array): Promise<void>;
  /**
   * Optional vectored read, for stores over files: the chunk's bytes from `start` on go, in
   * order, straight into `segments` (views of the caller's array and of gap buffers; see
   * `segments.ts`), with no chunk buffer in between. Resolves `false`, leaving the segments
   * alone, when the chunk was never written. On failure the segments may hold partial data.
   */
  readChunkInto?(meta: DatasetMeta, index: ChunkIndex, start: number, segments: readonly Uint8Array[]): Promise<boolean>;
  /**
   * Optional vectored write: like `writeChunk` with the chunk's bytes given as `parts` whose
   * concatenation is the whole chunk. The store reads the parts only until the promise settles.
   */
  writeChunkParts?(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<void>;
  hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean>;
  /** Removes the chunk; returns whether it existed. */
  deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean>;
  /** Grid indices of every stored chunk. */
  listChunks(meta: DatasetMeta): Promise<ChunkIndex[]>;
}

/** A backend: a name and a way to open a store from serializable options. */
export interface Backend {
  readonly name: string;
  /** Opens (without connecting) the store for connection `name`. Validates options and name. */
  open(name: string, options: Readonly<Record<string, unknown>>): Store;
}
