/** Datasets: N-d arrays stored as a grid of chunks, sliced like NumPy arrays. */
import { ndarray, type NdArray } from '../ndarray.js';
import type { ChunkJob } from '../chunk-ops.js';
import { DataChunk } from '../chunk.js';
import type { RunReport } from '../concurrency.js';
import type { Connection } from '../connection.js';
import { allocate, castInto, checkDType, dtypeOfArray, type DType, type Scalar, type TypedArray } from '../dtypes.js';
import { checkOptions } from '../options.js';
import { Attributes } from '../attrs.js';
import type { CompressionName } from '../codecs/index.js';
import type { ExportHdf5Options } from '../interop/hdf5-file.js';
import { chunkSlicesOf, outArray, RUN_CONTROL, sortChunks, type ChunkSlice, type CloneOptions, type GetOptions, type MapOptions, type RunControl } from './options.js';
import { KnownMetadata } from './known-metadata.js';
import { readSelection, writeSelection } from './selection-io.js';
import { applyDataset, cloneDataset, mapDataset, sameDataset, type OpenDataset } from './transforms.js';
import { appendToDataset, resizeDataset } from './reshape.js';
import { datasetHistogram, datasetStats, reduceDataset, type Histogram, type ReduceKernel, type ReduceOptions } from './reductions.js';
import type { DatasetStats } from '../kernels/reductions.js';
import { ChunkExistsError, DatasetNotFoundError, DTypeError, IndexError, ShapeError, OptionError } from '../errors.js';
import type { Kernel } from '../kernel.js';
import { allChunks, formatShape, normalizeIndex, product, squeezedShape, type Index, type Selection } from '../slicing.js';
import type { ChunkIndex, DatasetMeta, Generation } from '../store.js';
import { broadcastTo, inspectArray, isNdArray, toStridedView, type ArrayValue, type Value } from '../values.js';

/**
 * A dataset of a connection. Get one from `createDataset` or `getDataset`.
 *
 * Every operation first checks that the dataset this handle was opened on still exists (a
 * stat, a HEAD): a handle on a dataset that another handle or process deleted, or deleted and
 * created again, fails with `DatasetNotFoundError` instead of reading or writing. (Reads may
 * skip that check with the connection option `recheckCachedMetadata`.)
 */
export class Dataset {
  /** The report of the last engine run on this object (`get`, `set`, `load`, `map`, ...): timings and bytes per chunk. */
  lastRun: RunReport | undefined;
  /** The metadata this handle knows, and when the store last confirmed it. */
  readonly #known: KnownMetadata;
  /** A handle on a dataset made from this one (map's output, a clone), on the same connection. */
  readonly #open: OpenDataset = (meta, generation) => new Dataset(this.connection, meta, generation);

  /** @internal Use `createDataset`/`getDataset`. */
  constructor(readonly connection: Connection, meta: DatasetMeta, generation: Generation) {
    this.#known = new KnownMetadata(connection, meta, generation);
  }

  get #meta(): DatasetMeta { return this.#known.meta; }

  /** The metadata as this handle last saw it. */
  get meta(): DatasetMeta { return this.#meta; }
  get name(): string { return this.#meta.name; }
  get shape(): number[] { return [...this.#meta.shape]; }
  get ndim(): number { return this.#meta.shape.length; }
  get size(): number { return product(this.#meta.shape); }
  get dtype(): DType { return this.#meta.dtype; }
  get chunkSize(): number[] { return [...this.#meta.chunkSize]; }
  /** Number of chunks along each axis. */
  get chunkGrid(): number[] { return this.#meta.shape.map((n, a) => Math.ceil(n / this.#meta.chunkSize[a])); }
  get totalChunks(): number { return product(this.chunkGrid); }
  get fillValue(): Scalar { return this.#meta.fillValue; }
  /** The chunks' compressor (`'gzip'`, `'zstd'`, `'lz4'`), or `null` when they are stored raw. */
  get compression(): CompressionName | null { return this.#meta.compression?.codec ?? null; }
  /** The compressor's level (`null` without compression; 0 for lz4, which has none). */
  get compressionLevel(): number | null { return this.#meta.compression?.level ?? null; }
  /** Whether bytes are shuffled before compression. */
  get shuffle(): boolean { return this.#meta.compression?.shuffle ?? false; }

  /**
   * Checks that the dataset still exists as this handle knows it, and returns its current
   * metadata; throws `DatasetNotFoundError` when it was deleted (or deleted and created again).
   * @internal
   */
  current(): Promise<DatasetMeta> {
    return this.#known.current();
  }

  /** @internal Throws the error of a handle whose dataset was deleted (or replaced) since it was opened. */
  async gone(): Promise<never> {
    await this.current(); // sees the change and throws DatasetNotFoundError, naming it
    throw new DatasetNotFoundError(`dataset ${JSON.stringify(this.#meta.name)} of connection ${JSON.stringify(this.connection.name)} was deleted since this handle was opened`);
  }

  /**
   * Reads a NumPy-style slice: `ds.get([0, 0, s(0, 10)])`. Integer-indexed axes are removed
   * from the result; no index (or `'...'`) reads everything. Returns a C-order ndarray of the
   * dataset's dtype. Reads see this process's buffered writes.
   *
   * With `{ out }` the values land in that typed array instead of a new one (as h5py's
   * `read_direct`): it must be of the dataset's dtype and hold exactly the selection's
   * elements. Reading many slices into one reused array saves allocating (and page-faulting)
   * a fresh one each time. If the read fails (a corrupt chunk, a lost connection), `out` may
   * hold part of the selection.
   */
  async get(index?: Index, options?: GetOptions): Promise<NdArray<TypedArray>> {
    const { out, dtype, signal } = checkOptions('get', options, ['out', 'dtype', 'signal']);
    return this.readOnCurrent((meta) => this.getAs(meta, index, out, dtype, signal));
  }

  /** `get` against `meta`: the selection checked against its shape, the chunks read as it describes them. */
  private async getAs(meta: DatasetMeta, index: Index | undefined, out: GetOptions['out'], dtype: DType | undefined, signal: AbortSignal | undefined): Promise<NdArray<TypedArray>> {
    const sel = normalizeIndex(index, meta.shape);
    const into = out === undefined ? undefined : outArray(out);
    // An ndarray given as out has the result's shape and is the result, as NumPy's out=.
    const shape = squeezedShape(sel);
    if (out !== undefined && isNdArray(out) && out.shape.join() !== shape.join()) {
      throw new ShapeError(`out has shape ${formatShape(out.shape)}, the selection ${formatShape(shape)}`);
    }
    const result = (read: NdArray<TypedArray>) => (out !== undefined && isNdArray(out) ? out : read);
    if (dtype === undefined || checkDType(dtype) === meta.dtype) return result(await this.readSelectionOf(meta, sel, undefined, into, signal));
    // Another dtype: read as stored, then cast (into `out` if given).
    const native = await this.readSelectionOf(meta, sel, undefined, undefined, signal);
    const length = native.data.length;
    if (into !== undefined && (dtypeOfArray(into) !== dtype || into.length !== length)) {
      throw new DTypeError(`out must be a ${dtype} typed array of the selection's ${length} elements`);
    }
    const cast = into ?? allocate(dtype, length);
    castInto(cast, native.data);
    return result(ndarray(cast, native.shape));
  }

  /**
   * Runs a read against the metadata this handle knows while the store confirms that it is
   * still current ({@link current}), instead of before: on an object store that check is a
   * round trip (a HEAD of the metadata object), which the chunk requests now overlap (a store
   * that checks locally, with a stat, is asked first: a promise costs more). When the
   * dataset did change (another process resized it), the read runs again on the current
   * metadata, so the result is what the check-then-read order gives; when it was deleted, the
   * check's error is thrown once the read has settled, so nothing writes into `out` after
   * `get` returns. Errors of the first read (an index outside a shape that is no longer the
   * dataset's) count only when the metadata it used was current. Reads only: a discarded
   * attempt changes nothing but `out` (and the cache, which keeps stored chunks of that dataset).
   * `get` and `DataChunk.getData` read this way.
   * @internal
   */
  readOnCurrent<T>(read: (meta: DatasetMeta) => Promise<T>): Promise<T> {
    return this.#known.readOnCurrent(read);
  }

  /**
   * Writes a NumPy-style slice: `ds.set([s(36, 80), s(89, null)], value)`. The value
   * broadcasts by NumPy's rules and is cast to the dataset's dtype; a value that cannot
   * broadcast throws `ShapeError` before anything is written.
   *
   * Chunks the selection covers whole are written at once. Cells of chunks it covers only in
   * part go to the connection's chunk cache and are committed when the cache needs room, on
   * `flush()`, `disconnect()`, `barrier()` and before collective operations (see
   * docs/concurrency.md); with `cacheBytes: 0` they are committed before `set` returns.
   */
  async set(index: Index | undefined, value: Value): Promise<void> {
    const meta = await this.current();
    await this.writeSelection(normalizeIndex(index, meta.shape), value);
  }

  /**
   * Reads a selection of the dataset as `meta` describes it (the chunks given, or all it
   * touches) into a new array or `into`.
   * @internal
   */
  async readSelectionOf(meta: DatasetMeta, sel: Selection, chunks?: readonly ChunkIndex[], into?: TypedArray, signal?: AbortSignal): Promise<NdArray<TypedArray>> {
    const { array, report } = await readSelection(this.connection, meta, sel, chunks, into, signal);
    if (report) this.lastRun = report;
    return array;
  }

  /** @internal Writes a selection (of the current metadata); see `set`. */
  async writeSelection(sel: Selection, value: Value, chunks?: readonly ChunkIndex[]): Promise<void> {
    this.checkWritable('set');
    const report = await writeSelection(this.connection, this.#meta, sel, value, chunks);
    if (report) this.lastRun = report;
  }

  /**
   * Commits this handle's buffered writes (the cells of partly written chunks held in the
   * connection's chunk cache) to the store. After it resolves they are visible to every other
   * process and survive this one.
   */
  async flush(): Promise<void> {
    await this.connection.cache?.flush(sameDataset(this.#meta));
  }

  /**
   * Before a collective operation: this dataset's buffered writes are committed (on every
   * rank), so the engine's tasks, wherever they run, see them; with several ranks, nobody
   * starts before every rank has.
   * @internal
   */
  async prepareCollective(what: string): Promise<DatasetMeta> {
    const meta = await this.current();
    await this.flush();
    if (this.connection.size > 1) await this.connection.session.barrier(what);
    return meta;
  }

  /** How this dataset's calls are named in messages about collectives: `apply on "x"`. @internal */
  call(operation: string): string {
    return `${operation} on ${JSON.stringify(this.#meta.name)}`;
  }

  /**
   * Fills the whole dataset from data of exactly its shape (an ndarray, typed array, nested
   * arrays, or another Dataset). Collective under `cluster-rank`.
   */
  async load(data: ArrayValue | Dataset, options?: RunControl): Promise<void> {
    checkOptions('load', options, RUN_CONTROL);
    this.checkWritable('load');
    const meta = await this.current();
    let job: ChunkJob;
    if (data instanceof Dataset) {
      this.checkSameShape(data.shape, 'load');
      const source = await data.prepareCollective(this.call('load'));
      job = { kind: 'copy', dataset: meta, source: { settings: data.connection.settings, meta: source } };
    } else {
      this.checkSameShape(inspectArray(data).shape, 'load');
      const full = normalizeIndex(undefined, meta.shape);
      const source = broadcastTo(toStridedView(data, meta.dtype), meta.shape, full.map(() => false));
      job = { kind: 'write', dataset: meta, selection: full, source };
    }
    await this.runLoad(job, options);
  }

  /** @internal Runs a load job built (and validated) by the caller. */
  async runLoad(job: ChunkJob, options: RunControl = {}): Promise<void> {
    // Every chunk is replaced: buffered writes to this dataset are superseded.
    await this.connection.cache?.discard(sameDataset(this.#meta));
    if (this.connection.size > 1) await this.connection.session.barrier(this.call('load'));
    this.lastRun = await this.connection.session.run(job, allChunks(this.chunkGrid), { operation: 'load', collective: true, ...options });
  }

  private checkSameShape(shape: readonly number[], what: string): void {
    if (shape.join() !== this.#meta.shape.join()) {
      throw new ShapeError(`${what}: data of shape ${formatShape(shape)} does not match the dataset's shape ${formatShape(this.#meta.shape)}`);
    }
  }

  /**
   * Applies `fn` to every chunk and stores the results as a new dataset `name` of the same
   * shape and chunking. With `halo: h` each chunk arrives padded with h cells of its
   * neighbours (reflected at the dataset's edges); the result keeps the chunk's own cells.
   * On failure the partial output dataset is removed.
   */
  map<Args>(fn: Kernel<Args>, name: string, options: MapOptions<Args> = {}): Promise<Dataset> {
    return mapDataset(this, fn, name, options, this.#open);
  }

  /**
   * Applies `fn` to every chunk in place. Each chunk is replaced whole, and only if nobody
   * changed it since it was read (otherwise `fn` runs again on what is stored then), so after
   * a failure every chunk holds either its old or its new data and no concurrent write is
   * lost. With a halo, results are computed into a temporary dataset first, so no chunk sees
   * a neighbour that was already changed.
   */
  apply<Args>(fn: Kernel<Args>, options: Omit<MapOptions<Args>, 'dtype' | 'chunkSize'> = {}): Promise<void> {
    return applyDataset(this, fn, options);
  }

  /**
   * A new dataset `name` with this one's shape, dtype, fill value and chunking (or the chunk
   * shape `chunkSize`); with `{ data: true }` the values are copied too: the stored chunks byte
   * for byte, or, with another chunk shape, rechunked.
   */
  clone(name: string, options?: CloneOptions): Promise<Dataset> {
    return cloneDataset(this, name, options, this.#open);
  }

  /** @internal Refuses, before anything is buffered or written, to change a dataset the store only reads. */
  checkWritable(what: string): void {
    if (this.#meta.readOnly) throw new OptionError(`${what}: ${this.#meta.readOnly}`);
  }


  /**
   * Runs `fn` on every chunk (shipped to where chunks run, as `map`'s kernels are) and folds
   * what it returns into `init` with `combine`, in chunk order (the grid's C order), so a
   * floating-point result does not depend on the engine or on which chunk ran first. Partial
   * results must be cloneable (numbers, bigints, arrays, typed arrays, plain objects).
   * Collective under `cluster-rank`: every rank gets the result.
   *
   * ```ts
   * const total = await ds.reduce((chunk) => chunk.data.reduce((a, b) => a + b, 0), (a, b) => a + b, 0);
   * ```
   */
  reduce<Partial, Result, Args = unknown>(
    fn: ReduceKernel<Partial, Args>, combine: (accumulated: Result, partial: Partial) => Result, init: Result, options?: ReduceOptions<Args>,
  ): Promise<Result> {
    return reduceDataset(this, fn, combine, init, options);
  }

  /**
   * Statistics of every cell (fill values included), as NumPy's `a.size`, `a.min()`, `a.max()`,
   * and `sum`, `mean`, `std` (ddof 0) of `a.astype(float64)`; NaN anywhere makes all but the
   * count NaN, as in NumPy. One pass over the chunks, on the engine. Collective under `cluster-rank`.
   */
  stats(options?: RunControl): Promise<DatasetStats> {
    return datasetStats(this, options);
  }

  /**
   * NumPy's `histogram(a, bins, range)`: `bins` equal-width bins over `range` (the data's own
   * minimum and maximum by default), the last bin closed; values outside and NaN are not
   * counted. Counts equal NumPy's exactly (computed in the same precision). Collective under
   * `cluster-rank`.
   */
  histogram(bins: number, range?: readonly [number, number], options?: RunControl): Promise<Histogram> {
    return datasetHistogram(this, bins, range, options);
  }

  /** Sets every value back to the fill value by removing every stored chunk (buffered writes included). */
  async clear(options?: RunControl): Promise<void> {
    checkOptions('clear', options, RUN_CONTROL);
    this.checkWritable('clear');
    options ??= {};
    const meta = await this.current();
    await this.connection.cache?.discard(sameDataset(meta));
    const session = this.connection.session;
    const store = this.connection.store;
    if (session.size > 1) await session.barrier(this.call('clear'));
    const chunks = sortChunks(await session.onRoot(() => store.listChunks(meta), this.call('clear')));
    if (store.deleteChunks) {
      // One batched request per thousand chunks, rather than a task per chunk.
      const deleteChunks = store.deleteChunks.bind(store);
      const t0 = performance.now();
      await session.onRoot(() => deleteChunks(meta, chunks), this.call('clear'));
      options.onProgress?.({ done: chunks.length, total: chunks.length, bytes: 0 });
      this.lastRun = { operation: 'clear', engine: 'store', concurrency: 1, chunks: chunks.length, wallMs: performance.now() - t0, bytesRead: 0, bytesWritten: 0, tasks: [] };
      return;
    }
    this.lastRun = await session.run({ kind: 'clear', dataset: meta }, chunks, { operation: 'clear', collective: true, ...options });
  }

  /** Deletes the dataset and its chunks from the store (buffered writes are dropped). */
  async delete(): Promise<void> {
    await this.connection.delDataset(this.#meta.name);
  }

  /** Which chunks an index touches, which part of each, and where each part lands in the result. */
  chunkSlices(index?: Index): ChunkSlice[] {
    return chunkSlicesOf(this.#meta, index);
  }

  /**
   * The dataset's attributes (h5py's `ds.attrs`): `await ds.attrs.set('units', 'mm')`. Each
   * call reads or changes what is stored; see `Attributes`.
   */
  get attrs(): Attributes {
    return new Attributes({
      what: `dataset ${JSON.stringify(this.#meta.name)}`,
      ofDataset: true,
      read: async () => this.connection.store.readAttrs({ dataset: await this.current() }),
      writeIf: async (attrs, expected) => this.connection.store.writeAttrsIf({ dataset: await this.current() }, attrs, expected),
    });
  }

  /**
   * Changes the shape (h5py's `resize`): any axis may grow or shrink; the number of axes stays.
   * Cells new to the shape read as the fill value; cells cut off are gone (they read as the
   * fill value if the dataset grows again). Collective under `cluster-rank`. Other handles see
   * the new shape at their next operation.
   */
  resize(shape: readonly number[]): Promise<void> {
    return resizeDataset(this, shape);
  }

  /**
   * Appends `data` along `axis` (default 0), growing the dataset by its extent there (h5py's
   * resize-then-write, zarr's `append`). `data` has the dataset's shape on the other axes; it
   * may leave out `axis` to append one frame. The growth is one conditional commit of the
   * metadata, so two processes appending at once each get their own rows. Collective under
   * `cluster-rank`: every rank passes the same data and rank 0 writes it. Like `set`, partial
   * chunks are buffered, so appending frame by frame costs about one write per chunk.
   */
  append(data: ArrayValue, options?: { axis?: number }): Promise<void> {
    return appendToDataset(this, data, options);
  }

  /**
   * Writes the whole dataset to `file` as one chunked HDF5 dataset at `options.path` (default:
   * the dataset's path), with its attributes, for h5py, HDFView or H5Web. Streams chunk by
   * chunk (memory holds a few chunks); gzip datasets stay gzip, zstd and LZ4 ones are written
   * with deflate (what HDF5 reads without plugins). Runs on rank 0 under `cluster-rank`.
   */
  async exportHdf5(file: string, options?: ExportHdf5Options): Promise<void> {
    const { exportHdf5 } = await import('../interop/hdf5-file.js');
    await exportHdf5(this, file, options);
  }

  /**
   * The bytes the store holds for this dataset's chunks, as stored: after compression, with each
   * backend's overhead (an HDF5 file per chunk). Flushes this handle's buffered writes first,
   * as `storedChunks` does (zarr's `nbytes_stored`, h5py's `id.get_storage_size()`).
   */
  async storedBytes(): Promise<number> {
    const meta = await this.current();
    await this.flush();
    return this.connection.store.storedBytes(meta);
  }

  /** Grid indices of the chunks that are stored (written and not removed); buffered writes are committed first. */
  async storedChunks(): Promise<ChunkIndex[]> {
    const meta = await this.current();
    await this.flush();
    return sortChunks(await this.connection.store.listChunks(meta));
  }

  /** Whether chunk `index` is stored, or has buffered writes that will store it. */
  async hasChunk(index: readonly number[]): Promise<boolean> {
    const meta = await this.current();
    const at = this.checkChunkIndex(index);
    return (this.connection.cache?.isDirty(meta, at) ?? false) || this.connection.store.hasChunk(meta, at);
  }

  /** A handle on chunk `index` (no I/O; an unwritten chunk reads as the fill value). */
  getChunk(index: readonly number[]): DataChunk {
    return new DataChunk(this, this.checkChunkIndex(index));
  }

  /** Stores chunk `index` filled with the fill value (or `data`); throws `ChunkExistsError` if it is stored. */
  async createChunk(index: readonly number[], data?: Value): Promise<DataChunk> {
    const chunk = this.getChunk(index);
    if (await chunk.exists()) {
      throw new ChunkExistsError(`chunk [${index.join(', ')}] of dataset ${JSON.stringify(this.name)} already exists`);
    }
    await chunk.setData(data ?? this.#meta.fillValue);
    return chunk;
  }

  /** Removes chunk `index` (it reads as the fill value afterwards, buffered writes to it included); returns whether it was stored. */
  async delChunk(index: readonly number[]): Promise<boolean> {
    this.checkWritable('delChunk');
    const meta = await this.current();
    const at = this.checkChunkIndex(index);
    await this.connection.cache?.discardChunk(meta, at);
    return this.connection.store.deleteChunk(meta, at);
  }

  /** @internal */
  checkChunkIndex(index: readonly number[]): number[] {
    const grid = this.chunkGrid;
    if (!Array.isArray(index) || index.length !== grid.length || !index.every((v, a) => Number.isInteger(v) && v >= 0 && v < grid[a])) {
      throw new IndexError(`chunk index ${JSON.stringify(index)} is outside the chunk grid ${formatShape(grid)}`);
    }
    return [...index];
  }

  toString(): string {
    return `Dataset(${JSON.stringify(this.name)}, shape=${formatShape(this.#meta.shape)}, dtype=${this.dtype}, chunkSize=${formatShape(this.#meta.chunkSize)})`;
  }
}
