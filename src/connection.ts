/** Connections: where datasets are created, found and deleted. */
import { loadBackend } from './backends/index.js';
import { checkBackendName, checkEngineName, current, currentEngineOptions } from './config.js';
import { bytesPerElement, castScalar, checkDType, type DType, type Scalar } from './dtypes.js';
import { checkChunkBytes, checkShape, guessChunks } from './chunk-shape.js';
import { checkObject, checkOptions } from './options.js';
import type { EngineSession } from './engine.js';
import { loadEngine } from './engines/index.js';
import { ConnectionError, DatasetNotFoundError, DosnaError, GroupExistsError, GroupNotFoundError, ShapeError, OptionError } from './errors.js';
import type { Attributes } from './attrs.js';
import { Group, groupAttributes, type DelGroupOptions } from './group.js';
import { ancestorsOf, checkPath, ROOT } from './paths.js';
import { Dataset } from './dataset/index.js';
import { forgetDataset } from './dataset/transforms.js';
import { ChunkCache, DEFAULT_CACHE_BYTES, type CacheStats } from './chunk-cache/index.js';
import type { ChunkJob } from './chunk-ops.js';
import { normalizeIndex } from './slicing.js';
import { checkRecheck, trustedSince } from './recheck.js';
import { randomUUID } from 'node:crypto';
import { ALLREDUCE_OPS, checkAllreduceValue, combineValues, type AllreduceOp, type AllreduceValue } from './allreduce.js';
import { checkCompression, type CompressionName } from './codecs/index.js';
import type { ImportHdf5Options } from './interop/hdf5-file.js';
import type { ConnectionSettings, DatasetMeta, NodeEntry, Store } from './store.js';
import { broadcastTo, inspectArray, toStridedView, type ArrayValue } from './values.js';

/** Options of `dn.connection`: the backend's own options, plus optional per-connection choices. */
export interface ConnectionOptions {
  /** Overrides the process-wide backend for this connection. */
  backend?: string;
  /** Overrides the process-wide engine for this connection. */
  engine?: string;
  engineOptions?: Record<string, unknown>;
  /**
   * Bytes of this connection's chunk cache (default 64 MiB; 0 turns it off, and every
   * partial write is then committed before `set` returns). See docs/concurrency.md.
   */
  cacheBytes?: number;
  /**
   * When a read may use a chunk the cache holds without asking the store whether another
   * process changed it (TensorStore's `recheck_cached_data`): `true` (default) asks every time
   * (a stat of the chunk file, a HEAD of the object), so reads are never staler than the
   * store; `false` never asks, as h5py's and zarr-python's chunk caches never do: another
   * process's writes to a cached chunk are seen only once it leaves the cache (evicted, or
   * dropped by this process's own write); a number, seconds since the epoch, trusts chunks
   * confirmed at or after that time (`Date.now() / 1000` when the data is known to be final).
   * This process's own writes are seen whatever the choice. See docs/concurrency.md.
   */
  recheckCachedData?: boolean | number;
  /**
   * The same choice for a dataset handle's metadata (TensorStore's `recheck_cached_metadata`):
   * `true` (default) makes every `get` check that the dataset is still as the handle knows it
   * (a stat of its metadata file, a HEAD of its metadata object), so a read on a dataset that
   * another process resized or deleted sees it; `false` reads with the shape the handle last
   * confirmed; a number, seconds since the epoch, trusts a confirmation made at or after it.
   * Writes always check, and this connection's own resizes and deletions are seen whatever the
   * choice.
   */
  recheckCachedMetadata?: boolean | number;
  /** Backend options (`directory`, `endpoint`, `conffile`, ...). */
  [option: string]: unknown;
}

/** Options of `createDataset`. Give `data`, or `shape` (and optionally `dtype`). */
export interface CreateDatasetOptions {
  /** Initial data; shape and dtype come from it unless given. */
  data?: ArrayValue | Dataset;
  shape?: readonly number[];
  /** Element type; `float32` by default (as in DosNa), or the data's own type. */
  dtype?: DType;
  /** Value of every cell never written; 0 by default. */
  fillValue?: Scalar;
  /**
   * Shape of each chunk. By default dosna chooses one as zarr-python does (a few hundred KiB to
   * a few MiB, shaped like the array; a small dataset is one chunk), where Python DosNa made
   * the whole array one chunk. `ds.chunkSize` tells what was chosen.
   */
  chunkSize?: readonly number[];
  /** Replace a dataset of that name if there is one (as h5py's `require_dataset` cannot, and `del f[name]` then create does). */
  overwrite?: boolean;
  /**
   * Compress every chunk: `'gzip'` (h5py's default compressor; read everywhere), `'zstd'`
   * (better ratio, ~2x faster), `'lz4'` (fastest, lowest ratio), or `null` (default). The same
   * bytes on every backend; on hdf5, the chunk files carry HDF5's filters (docs/guide.md,
   * "Compression").
   */
  compression?: CompressionName | null;
  /** gzip: 0-9 (default 4, as h5py); zstd: 1-22 (default 3); not for lz4. */
  compressionLevel?: number;
  /** Shuffle bytes before compressing (HDF5's shuffle filter): much better ratios for numbers wider than a byte. Default false, as in h5py. */
  shuffle?: boolean;
  /** Backend-specific dataset settings (none of today's backends takes any). */
  options?: Record<string, unknown>;
}

const RESERVED = new Set(['backend', 'engine', 'engineOptions', 'cacheBytes', 'recheckCachedData', 'recheckCachedMetadata']);
/** What `createDataset` takes. */
const CREATE_OPTIONS = ['data', 'shape', 'dtype', 'fillValue', 'chunkSize', 'overwrite', 'compression', 'compressionLevel', 'shuffle', 'options'] as const;

/** A connection to one named store (a ram table, a folder, a bucket). Create with `dn.connection`. */
export class Connection {
  /** The connection's name: a folder for `hdf5`, a bucket for `s3`/`ceph`. */
  readonly name: string;
  readonly backend: string;
  readonly engine: string;
  #backendOptions: Record<string, unknown>;
  #engineOptions: Record<string, unknown>;
  readonly #cacheBytes: number;
  /** From when (epoch ms) cached chunks are used without asking the store (`recheckCachedData`). */
  readonly #dataTrustedSince: number;
  /** From when (epoch ms) a handle's confirmed metadata is used without asking the store (`recheckCachedMetadata`). */
  readonly #metadataTrustedSince: number;
  /** Changes of dataset metadata made through this connection (see `metadataChanged`). */
  #metadataEpoch = 0;
  #store: Store | undefined;
  #session: EngineSession | undefined;
  #cache: ChunkCache | undefined;
  #foreignStores = new Map<string, Promise<Store>>();

  constructor(name: string, options: ConnectionOptions = {}) {
    this.name = name;
    checkObject('connection', options);
    checkObject('connection: engineOptions', options.engineOptions);
    const selected = current();
    this.backend = options.backend === undefined ? selected.backend : checkBackendName(options.backend);
    this.engine = options.engine === undefined ? selected.engine : checkEngineName(options.engine);
    this.#engineOptions = options.engineOptions
      ?? (options.engine === undefined || options.engine === selected.engine ? currentEngineOptions() : {});
    this.#backendOptions = Object.fromEntries(Object.entries(options).filter(([k]) => !RESERVED.has(k)));
    const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (typeof cacheBytes !== 'number' || !Number.isSafeInteger(cacheBytes) || cacheBytes < 0) {
      throw new OptionError(`option cacheBytes must be a non-negative integer number of bytes (0 turns the chunk cache off), got ${JSON.stringify(cacheBytes)}`);
    }
    this.#cacheBytes = cacheBytes;
    this.#dataTrustedSince = trustedSince(checkRecheck('recheckCachedData', options.recheckCachedData));
    this.#metadataTrustedSince = trustedSince(checkRecheck('recheckCachedMetadata', options.recheckCachedMetadata));
  }

  /**
   * @internal Counts a change of dataset metadata made through this connection (a resize, a
   * deletion, a replacement): a handle uses metadata it confirmed without asking the store only
   * while this count is what it was at the confirmation (see `recheckCachedMetadata`).
   */
  metadataChanged(): void {
    this.#metadataEpoch++;
  }

  /** @internal How many changes `metadataChanged` counted so far. */
  get metadataEpoch(): number {
    return this.#metadataEpoch;
  }

  /** @internal Confirmations of a handle's metadata at or after this time (epoch ms) are trusted. */
  get metadataTrustedSince(): number {
    return this.#metadataTrustedSince;
  }

  /** True between `connect()` and `disconnect()`. */
  get connected(): boolean {
    return this.#session !== undefined;
  }

  /** How to open this connection elsewhere (a worker, another rank): plain, cloneable data. */
  get settings(): ConnectionSettings {
    return { backend: this.backend, name: this.name, options: { ...this.#backendOptions } };
  }

  /** This process's rank under `cluster-rank` (0 otherwise). */
  get rank(): number { return this.#session?.rank ?? 0; }
  /** The number of ranks under `cluster-rank` (1 otherwise). */
  get size(): number { return this.#session?.size ?? 1; }
  get isRoot(): boolean { return this.rank === 0; }

  /**
   * Commits this rank's buffered writes, then waits for every rank: after a barrier every
   * rank sees what every rank wrote before it (a flush alone with one rank).
   */
  async barrier(): Promise<void> {
    await this.flush();
    await this.session.barrier('barrier()');
  }

  /**
   * Combines a value of every rank (smalldata's `smd.sum`, MPI's allreduce): a number, a
   * bigint, or an array (or typed array) combined element by element, with 'sum', 'min' or
   * 'max'; every rank gets the result, folded in rank order (reproducible). With one rank (every
   * engine but `cluster-rank`), the value itself.
   */
  async allreduce<T extends AllreduceValue>(value: T, op: AllreduceOp): Promise<T> {
    if (!ALLREDUCE_OPS.includes(op)) throw new OptionError(`allreduce: op must be one of ${ALLREDUCE_OPS.join(', ')}, got ${JSON.stringify(op)}`);
    checkAllreduceValue(value);
    const values: AllreduceValue[] = await this.session.allgather<AllreduceValue>(value, `allreduce(${op})`);
    return values.reduce((a, b) => combineValues(a, b, op)) as T;
  }

  /**
   * Commits every buffered write of this connection's datasets (see `Dataset.flush`).
   * `disconnect()` and `barrier()` flush too.
   */
  async flush(): Promise<void> {
    await this.#cache?.flush();
  }

  /** @internal The chunk cache, when this connection has one. */
  get cache(): ChunkCache | undefined {
    return this.#cache;
  }

  /** What the chunk cache did so far (hits, commits, evictions, bytes), or `undefined` with `cacheBytes: 0`. */
  get cacheStats(): Readonly<CacheStats> | undefined {
    return this.#cache && { ...this.#cache.stats };
  }

  /** Opens the store and the engine. Throws `ConnectionError` when the store cannot be reached. */
  async connect(): Promise<this> {
    if (this.#session) return this;
    const backend = await loadBackend(this.backend);
    const store = backend.open(this.name, this.#backendOptions);
    await store.connect();
    try {
      const engine = await loadEngine(this.engine);
      this.#session = await engine.open({
        settings: this.settings,
        store,
        options: this.#engineOptions,
        storeFor: (settings) => this.storeFor(settings),
      });
    } catch (error) {
      await store.disconnect();
      throw error;
    }
    this.#store = store;
    this.#cache = this.#cacheBytes > 0 ? new ChunkCache(store, this.#cacheBytes, this.#dataTrustedSince) : undefined;
    return this;
  }

  /**
   * Commits buffered writes, then closes the engine and the store. Safe to call twice. If the
   * commit fails (the store went away), everything is closed all the same and the commit's
   * error is thrown: the writes it could not store are lost.
   */
  async disconnect(): Promise<void> {
    let failure: { error: unknown } | undefined;
    try {
      await this.#cache?.flush();
    } catch (error) {
      failure = { error };
    }
    const session = this.#session;
    const store = this.#store;
    this.#session = undefined;
    this.#store = undefined;
    this.#cache = undefined;
    const foreign = [...this.#foreignStores.values()];
    this.#foreignStores.clear();
    await session?.close();
    await store?.disconnect();
    for (const s of foreign) await (await s.catch(() => undefined))?.disconnect();
    if (failure) throw failure.error;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.disconnect();
  }

  /** @internal The engine session; throws when not connected. */
  get session(): EngineSession {
    if (!this.#session) throw new ConnectionError(`connection ${JSON.stringify(this.name)} is not connected; call connect() first`);
    return this.#session;
  }

  /** @internal The store; throws when not connected. */
  get store(): Store {
    if (!this.#store) throw new ConnectionError(`connection ${JSON.stringify(this.name)} is not connected; call connect() first`);
    return this.#store;
  }

  /** @internal A connected store for other settings (this one's own when they match). */
  storeFor(settings: ConnectionSettings): Promise<Store> {
    const key = JSON.stringify(settings);
    if (key === JSON.stringify(this.settings)) return Promise.resolve(this.store);
    let store = this.#foreignStores.get(key);
    if (!store) {
      store = loadBackend(settings.backend).then(async (backend) => {
        const s = backend.open(settings.name, settings.options);
        await s.connect();
        return s;
      });
      this.#foreignStores.set(key, store);
    }
    return store;
  }

  /**
   * Creates a dataset from `data`, or empty (all `fillValue`) from `shape`. All or nothing:
   * data that cannot be stored is refused before the dataset is created, and a dataset whose
   * initial load fails is removed again.
   */
  async createDataset(path: string, options: CreateDatasetOptions): Promise<Dataset> {
    const name = checkPath(path);
    const meta = describeNewDataset(name, options);
    const session = this.session;
    // Convert (and so check) the data before anything is stored.
    let job: ChunkJob | undefined;
    if (options.data instanceof Dataset) {
      const source = options.data;
      await source.flush();
      job = { kind: 'copy', dataset: meta, source: { settings: source.connection.settings, meta: await source.current() } };
    } else if (options.data !== undefined) {
      const full = normalizeIndex(undefined, meta.shape);
      job = { kind: 'write', dataset: meta, selection: full, source: broadcastTo(toStridedView(options.data, meta.dtype), meta.shape, full.map(() => false)) };
    }
    const what = `createDataset(${JSON.stringify(name)})`;
    // What the cache holds of the dataset replaced goes first, as delDataset's does: none of it
    // may be committed (a write-behind, see chunk-cache/index.ts) after the store deleted the dataset.
    if (options.overwrite) await forgetDataset(this, name);
    // Every rank made its own uid: the root's, stored, is the dataset's on every rank.
    const { uid, generation } = await session.onRoot(async () => {
      await this.makeGroups(ancestorsOf(name));
      if (options.overwrite && (await this.store.metaGeneration(name)) !== null) await this.store.deleteDataset(name);
      return { uid: meta.uid, generation: await this.store.createMeta(meta) };
    }, what);
    if (options.overwrite) {
      this.metadataChanged();
      await forgetDataset(this, name);
    }
    const ds = new Dataset(this, { ...meta, uid }, generation);
    if (job) {
      try {
        await ds.runLoad(job);
      } catch (error) {
        await session.onRoot(() => this.store.deleteDataset(name), what).catch(() => {});
        this.metadataChanged();
        throw error;
      }
    }
    return ds;
  }

  /** The dataset at `path` (`'vol'`, `'scan1/vol'`); throws `DatasetNotFoundError` when it does not exist. */
  async getDataset(path: string): Promise<Dataset> {
    const name = checkPath(path);
    const found = await this.store.readMeta(name);
    if (!found) throw new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in connection ${JSON.stringify(this.name)}`);
    return new Dataset(this, found.meta, found.generation);
  }

  async hasDataset(path: string): Promise<boolean> {
    const name = checkPath(path);
    return (await this.store.metaGeneration(name)) !== null;
  }

  /**
   * Deletes a dataset and all its chunks (buffered writes to it are dropped); throws
   * `DatasetNotFoundError` when it does not exist. A dataset whose metadata cannot be read
   * can still be deleted.
   */
  async delDataset(path: string): Promise<void> {
    const name = checkPath(path);
    const store = this.store;
    await forgetDataset(this, name);
    await this.session.onRoot(() => store.deleteDataset(name), `delDataset(${JSON.stringify(name)})`).finally(() => this.metadataChanged());
  }

  /** The datasets at the top of the connection (as Python DosNa lists them); `list` shows groups too. */
  async listDatasets(): Promise<string[]> {
    return this.store.listDatasets();
  }

  /**
   * Makes dataset `name` from the HDF5 dataset at `objPath` of `file` (chunked or contiguous,
   * any integer or float type), with its chunks, its gzip/shuffle compression and its
   * attributes unless `options` say otherwise. Streams chunk by chunk; all or nothing.
   */
  async importHdf5(file: string, objPath: string, name: string, options?: ImportHdf5Options): Promise<Dataset> {
    const { importHdf5 } = await import('./interop/hdf5-file.js');
    return importHdf5(this, file, objPath, name, options);
  }

  /** The root group's attributes (the connection's own): `await con.attrs.set('facility', 'DLS')`. */
  get attrs(): Attributes {
    return groupAttributes(this, ROOT);
  }

  /**
   * Creates group `path` (`'scan1'`, `'scan1/raw'`), and the groups above it that are missing,
   * as h5py does; throws `GroupExistsError` when it exists. Collective under `cluster-rank`.
   */
  async createGroup(path: string): Promise<Group> {
    const name = checkPath(path, 'group');
    await this.session.onRoot(async () => {
      await this.makeGroups(ancestorsOf(name));
      if (!(await this.store.createGroup(name))) throw new GroupExistsError(`group ${JSON.stringify(name)} already exists in connection ${JSON.stringify(this.name)}`);
    }, `createGroup(${JSON.stringify(name)})`);
    return new Group(this, name);
  }

  /** Group `path` (`''` or `'/'` is the root group); throws `GroupNotFoundError` when there is none. */
  async getGroup(path: string): Promise<Group> {
    const name = checkPath(path, 'group', true);
    if ((await this.store.nodeKind(name)) !== 'group') throw new GroupNotFoundError(`group ${JSON.stringify(name)} not found in connection ${JSON.stringify(this.name)}`);
    return new Group(this, name);
  }

  /** Whether there is a group at `path`. */
  async hasGroup(path: string): Promise<boolean> {
    return (await this.store.nodeKind(checkPath(path, 'group', true))) === 'group';
  }

  /**
   * Deletes group `path`: an empty one, or with `{ recursive: true }` everything in it (as
   * `rm -r`). Collective under `cluster-rank`.
   */
  async delGroup(path: string, options?: DelGroupOptions): Promise<void> {
    const { recursive = false } = checkOptions('delGroup', options, ['recursive']);
    if (typeof recursive !== 'boolean') throw new OptionError(`delGroup: option recursive must be true or false, got ${JSON.stringify(recursive)}`);
    const name = checkPath(path, 'group');
    await this.cache?.discard((m) => m.name.startsWith(`${name}/`));
    await this.session.onRoot(async () => {
      if ((await this.store.nodeKind(name)) !== 'group') throw new GroupNotFoundError(`group ${JSON.stringify(name)} not found in connection ${JSON.stringify(this.name)}`);
      if (recursive) await this.deleteTree(name);
      else if ((await this.store.list(name)).length > 0) throw new DosnaError(`group ${JSON.stringify(name)} is not empty; delGroup(${JSON.stringify(name)}, { recursive: true }) deletes it with what it holds`);
      await this.store.deleteGroup(name);
    }, `delGroup(${JSON.stringify(name)})`).finally(() => this.metadataChanged());
  }

  /** The datasets and groups in group `path` (the root by default), sorted by name. */
  async list(path = ROOT): Promise<NodeEntry[]> {
    const name = checkPath(path, 'group', true);
    if ((await this.store.nodeKind(name)) !== 'group') throw new GroupNotFoundError(`group ${JSON.stringify(name)} not found in connection ${JSON.stringify(this.name)}`);
    return this.store.list(name);
  }

  /** Makes the groups `paths` (outermost first) that do not exist. */
  private async makeGroups(paths: readonly string[]): Promise<void> {
    for (const p of paths) await this.store.createGroup(p);
  }

  /** Deletes what group `path` holds, depth first. */
  private async deleteTree(path: string): Promise<void> {
    for (const child of await this.store.list(path)) {
      const full = `${path}/${child.name}`;
      if (child.kind === 'dataset') await this.store.deleteDataset(full);
      else {
        await this.deleteTree(full);
        await this.store.deleteGroup(full);
      }
    }
  }

  toString(): string {
    return `Connection(${JSON.stringify(this.name)}, backend=${this.backend}, engine=${this.engine}${this.connected ? '' : ', disconnected'})`;
  }
}

/** Validates createDataset's options into metadata, before anything is stored. */
export function describeNewDataset(name: string, options: CreateDatasetOptions): DatasetMeta {
  name = checkPath(name);
  if (typeof options !== 'object' || options === null) throw new OptionError('createDataset needs options: { data } or { shape, dtype, ... }');
  checkOptions('createDataset', options, CREATE_OPTIONS);
  let shape: number[];
  let dtype: DType;
  if (options.data !== undefined) {
    const data = options.data;
    const inferred = data instanceof Dataset ? { shape: [...data.shape], dtype: data.dtype } : inspectArray(data);
    shape = inferred.shape;
    if (options.shape !== undefined) {
      const given = checkShape(options.shape, 'shape', true);
      if (given.join() !== shape.join()) {
        throw new ShapeError(`shape ${JSON.stringify(given)} does not match the data's shape ${JSON.stringify(shape)}`);
      }
    }
    dtype = options.dtype === undefined ? inferred.dtype : checkDType(options.dtype);
  } else {
    if (options.shape === undefined) throw new ShapeError('createDataset needs a shape (or data)');
    shape = checkShape(options.shape, 'shape', true);
    dtype = options.dtype === undefined ? 'float32' : checkDType(options.dtype);
  }
  checkShape(shape, 'shape', true);
  const chunkSize = options.chunkSize === undefined
    ? guessChunks(shape, bytesPerElement(dtype))
    : checkShape(options.chunkSize, 'chunkSize', false);
  if (chunkSize.length !== shape.length) {
    throw new ShapeError(`chunkSize ${JSON.stringify(chunkSize)} has ${chunkSize.length} axes but the shape ${JSON.stringify(shape)} has ${shape.length}`);
  }
  checkChunkBytes(chunkSize, bytesPerElement(dtype));
  if (options.overwrite !== undefined && typeof options.overwrite !== 'boolean') {
    throw new OptionError(`createDataset: option overwrite must be true or false, got ${JSON.stringify(options.overwrite)}`);
  }
  const fillValue = castScalar(dtype, options.fillValue ?? 0);
  const compression = checkCompression(options);
  return {
    name, shape, dtype, chunkSize, fillValue, uid: randomUUID(),
    ...(compression ? { compression } : {}),
    ...(options.options ? { options: { ...options.options } } : {}),
  };
}
