/** Datasets: N-d arrays stored as a grid of chunks, sliced like NumPy arrays. */
import { ndarray } from './ndarray.js';
import type { NdArray } from './ndarray.js';
import type { ChunkJob } from './chunk-ops.js';
import { DataChunk } from './chunk.js';
import type { Progress, RunReport } from './concurrency.js';
import type { Connection } from './connection.js';
import { dtypeOfArray, type DType, type Scalar, type TypedArray } from './dtypes.js';
import { ChunkExistsError, DosnaError, DTypeError, IndexError, ShapeError } from './errors.js';
import { isKernelRef, type Kernel } from './kernel.js';
import { checkName } from './names.js';
import {
  allChunks, chunkPart, formatShape, normalizeIndex, partToSlice, product, selectionShape, squeezedShape,
  touchedChunks, type Index, type Selection, type Slice,
} from './slicing.js';
import type { ChunkIndex, DatasetMeta } from './store.js';
import { broadcastTo, inspectArray, toStridedView, type ArrayValue, type Value } from './values.js';

/** Options shared by the operations that run over every chunk. */
export interface RunControl {
  /** Cancels the operation: no new chunk starts, and the promise rejects with `AbortError`. */
  signal?: AbortSignal;
  /** Called after each chunk with chunks done / total and bytes moved. */
  onProgress?: (progress: Progress) => void;
}

/** Options of `map` and `apply`. */
export interface MapOptions<Args = unknown> extends RunControl {
  /** Cells of neighbouring data around each chunk (per axis, or one number for all axes). */
  halo?: number | readonly number[];
  /** Passed to the function as `ctx.args`. */
  args?: Args;
  /** dtype of the output dataset of `map` (the input's by default). */
  dtype?: DType;
}

/** One chunk touched by an index: where it is in the grid, which part of it, where that lands in the result. */
export interface ChunkSlice {
  /** Grid index of the chunk. */
  readonly index: readonly number[];
  /** The part of the chunk, one slice per dataset axis, in chunk-local coordinates. */
  readonly chunk: readonly Slice[];
  /** Where that part lands in the result of `get`, one slice per result axis (integer-indexed axes removed). */
  readonly result: readonly Slice[];
}

/** A dataset of a connection. Get one from `createDataset` or `getDataset`. */
export class Dataset {
  /** The report of the last engine run on this object (`get`, `set`, `load`, `map`, ...): timings and bytes per chunk. */
  lastRun: RunReport | undefined;

  constructor(readonly connection: Connection, readonly meta: DatasetMeta) {}

  get name(): string { return this.meta.name; }
  get shape(): number[] { return [...this.meta.shape]; }
  get ndim(): number { return this.meta.shape.length; }
  get size(): number { return product(this.meta.shape); }
  get dtype(): DType { return this.meta.dtype; }
  get chunkSize(): number[] { return [...this.meta.chunkSize]; }
  /** Number of chunks along each axis. */
  get chunkGrid(): number[] { return this.meta.shape.map((n, a) => Math.ceil(n / this.meta.chunkSize[a])); }
  get totalChunks(): number { return product(this.chunkGrid); }
  get fillValue(): Scalar { return this.meta.fillValue; }

  /**
   * Reads a NumPy-style slice: `ds.get([0, 0, s(0, 10)])`. Integer-indexed axes are removed
   * from the result; no index (or `'...'`) reads everything. Returns a C-order ndarray of the
   * dataset's dtype.
   *
   * With `{ out }` the values land in that typed array instead of a new one (as h5py's
   * `read_direct`): it must be of the dataset's dtype and hold exactly the selection's
   * elements. Reading many slices into one reused array saves allocating (and page-faulting)
   * a fresh one each time. If the read fails (a corrupt chunk, a lost connection), `out` may
   * hold part of the selection.
   */
  async get(index?: Index, options: { out?: TypedArray } = {}): Promise<NdArray<TypedArray>> {
    return this.readSelection(normalizeIndex(index, this.meta.shape), undefined, options.out);
  }

  /**
   * Writes a NumPy-style slice: `ds.set([s(36, 80), s(89, null)], value)`. The value
   * broadcasts by NumPy's rules and is cast to the dataset's dtype; a value that cannot
   * broadcast throws `ShapeError` before anything is written.
   */
  async set(index: Index | undefined, value: Value): Promise<void> {
    await this.writeSelection(normalizeIndex(index, this.meta.shape), value);
  }

  /** @internal */
  async readSelection(sel: Selection, chunks = touchedChunks(sel, this.meta.chunkSize), into?: TypedArray): Promise<NdArray<TypedArray>> {
    const session = this.connection.session;
    const length = product(selectionShape(sel));
    if (into !== undefined) {
      if (!ArrayBuffer.isView(into) || dtypeOfArray(into) !== this.meta.dtype || into instanceof Uint8ClampedArray) {
        throw new DTypeError(`out must be a typed array of the dataset's dtype ${this.meta.dtype}`);
      }
      if (into.length !== length) {
        throw new ShapeError(`out holds ${into.length} elements but the selection ${formatShape(squeezedShape(sel))} has ${length}`);
      }
    }
    const out = into ?? session.allocate(this.meta.dtype, length);
    if (chunks.length > 0) {
      this.lastRun = await session.run({ kind: 'read', dataset: this.meta, selection: sel, out }, chunks, { operation: 'get', collective: false });
    }
    return ndarray(out, squeezedShape(sel));
  }

  /** @internal */
  async writeSelection(sel: Selection, value: Value, chunks = touchedChunks(sel, this.meta.chunkSize)): Promise<void> {
    const session = this.connection.session;
    const source = broadcastTo(toStridedView(value, this.meta.dtype), squeezedShape(sel), sel.map((a) => a.squeeze));
    if (chunks.length === 0) return;
    this.lastRun = await session.run({ kind: 'write', dataset: this.meta, selection: sel, source }, chunks, { operation: 'set', collective: false });
  }

  /**
   * Fills the whole dataset from data of exactly its shape (an ndarray, typed array, nested
   * arrays, or another Dataset). Collective under `cluster-rank`.
   */
  async load(data: ArrayValue | Dataset, options: RunControl = {}): Promise<void> {
    const session = this.connection.session;
    const all = allChunks(this.chunkGrid);
    let job: ChunkJob;
    if (data instanceof Dataset) {
      this.checkSameShape(data.shape, 'load');
      job = { kind: 'copy', dataset: this.meta, source: { settings: data.connection.settings, meta: data.meta } };
    } else {
      this.checkSameShape(inspectArray(data).shape, 'load');
      const full = normalizeIndex(undefined, this.meta.shape);
      const source = broadcastTo(toStridedView(data, this.meta.dtype), this.meta.shape, full.map(() => false));
      job = { kind: 'write', dataset: this.meta, selection: full, source };
    }
    this.lastRun = await session.run(job, all, { operation: 'load', collective: true, ...options });
  }

  private checkSameShape(shape: readonly number[], what: string): void {
    if (shape.join() !== this.meta.shape.join()) {
      throw new ShapeError(`${what}: data of shape ${formatShape(shape)} does not match the dataset's shape ${formatShape(this.meta.shape)}`);
    }
  }

  /**
   * Applies `fn` to every chunk and stores the results as a new dataset `name` of the same
   * shape and chunking. With `halo: h` each chunk arrives padded with h cells of its
   * neighbours (reflected at the dataset's edges); the result keeps the chunk's own cells.
   * On failure the partial output dataset is removed.
   */
  async map<Args>(fn: Kernel<Args>, name: string, options: MapOptions<Args> = {}): Promise<Dataset> {
    checkName(name);
    checkKernel(fn);
    const halo = this.checkHalo(options.halo);
    const output: DatasetMeta = { ...this.meta, name, dtype: options.dtype ?? this.meta.dtype };
    const session = this.connection.session;
    const store = this.connection.store;
    await session.onRoot(() => store.createMeta(output));
    try {
      this.lastRun = await session.run(
        { kind: 'map', input: this.meta, output, kernel: fn as Kernel, halo, args: options.args },
        allChunks(this.chunkGrid),
        { operation: 'map', collective: true, signal: options.signal, onProgress: options.onProgress },
      );
    } catch (error) {
      await session.onRoot(() => store.deleteDataset(name)).catch(() => {});
      throw error;
    }
    return new Dataset(this.connection, output);
  }

  /**
   * Applies `fn` to every chunk in place. Each chunk is replaced whole, so after a failure
   * every chunk holds either its old or its new data. With a halo, results are computed into
   * a temporary dataset first, so no chunk sees a neighbour that was already changed.
   */
  async apply<Args>(fn: Kernel<Args>, options: MapOptions<Args> = {}): Promise<void> {
    checkKernel(fn);
    const halo = this.checkHalo(options.halo);
    if (options.dtype !== undefined && options.dtype !== this.meta.dtype) {
      throw new DosnaError(`apply cannot change the dtype (${this.meta.dtype} -> ${options.dtype}); use map`);
    }
    const control = { signal: options.signal, onProgress: options.onProgress };
    if (halo.some((h) => h > 0)) {
      const temp = await this.map(fn, `__dosna_apply_${this.meta.name}_${Date.now().toString(36)}`, options);
      try {
        const chunks = await this.connection.session.onRoot(() => this.connection.store.listChunks(temp.meta));
        this.lastRun = await this.connection.session.run(
          { kind: 'clone', dataset: temp.meta, target: this.meta }, sortChunks(chunks),
          { operation: 'apply', collective: true, ...control },
        );
      } finally {
        await temp.delete();
      }
      return;
    }
    this.lastRun = await this.connection.session.run(
      { kind: 'map', input: this.meta, output: this.meta, kernel: fn as Kernel, halo, args: options.args },
      allChunks(this.chunkGrid),
      { operation: 'apply', collective: true, ...control },
    );
  }

  /** A new dataset `name` with this one's shape, dtype, fill value and chunking; with `{ data: true }` the stored chunks are copied too. */
  async clone(name: string, options: { data?: boolean } & RunControl = {}): Promise<Dataset> {
    checkName(name);
    const target: DatasetMeta = { ...this.meta, name };
    const session = this.connection.session;
    const store = this.connection.store;
    await session.onRoot(() => store.createMeta(target));
    if (options.data) {
      const chunks = await session.onRoot(() => store.listChunks(this.meta));
      this.lastRun = await session.run({ kind: 'clone', dataset: this.meta, target }, sortChunks(chunks), {
        operation: 'clone', collective: true, signal: options.signal, onProgress: options.onProgress,
      });
    }
    return new Dataset(this.connection, target);
  }

  /** Sets every value back to the fill value by removing every stored chunk. */
  async clear(options: RunControl = {}): Promise<void> {
    const session = this.connection.session;
    const chunks = await session.onRoot(() => this.connection.store.listChunks(this.meta));
    this.lastRun = await session.run({ kind: 'clear', dataset: this.meta }, sortChunks(chunks), { operation: 'clear', collective: true, ...options });
  }

  /** Deletes the dataset and its chunks from the store. */
  async delete(): Promise<void> {
    await this.connection.delDataset(this.meta.name);
  }

  /** Which chunks an index touches, which part of each, and where each part lands in the result. */
  chunkSlices(index?: Index): ChunkSlice[] {
    const sel = normalizeIndex(index, this.meta.shape);
    return touchedChunks(sel, this.meta.chunkSize).map((chunk) => {
      const parts = chunkPart(sel, this.meta.chunkSize, chunk)!;
      return {
        index: chunk,
        chunk: parts.map((p) => partToSlice(p.localStart, p.step, p.count)),
        result: parts.filter((_, a) => !sel[a].squeeze).map((p) => partToSlice(p.outStart, 1, p.count)),
      };
    });
  }

  /** Grid indices of the chunks that are stored (written and not removed). */
  async storedChunks(): Promise<ChunkIndex[]> {
    return sortChunks(await this.connection.store.listChunks(this.meta));
  }

  async hasChunk(index: readonly number[]): Promise<boolean> {
    return this.connection.store.hasChunk(this.meta, this.checkChunkIndex(index));
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
    await chunk.setData(data ?? this.meta.fillValue);
    return chunk;
  }

  /** Removes chunk `index` (it reads as the fill value afterwards); returns whether it was stored. */
  async delChunk(index: readonly number[]): Promise<boolean> {
    return this.connection.store.deleteChunk(this.meta, this.checkChunkIndex(index));
  }

  /** @internal */
  checkChunkIndex(index: readonly number[]): number[] {
    const grid = this.chunkGrid;
    if (!Array.isArray(index) || index.length !== grid.length || !index.every((v, a) => Number.isInteger(v) && v >= 0 && v < grid[a])) {
      throw new IndexError(`chunk index ${JSON.stringify(index)} is outside the chunk grid ${formatShape(grid)}`);
    }
    return [...index];
  }

  private checkHalo(halo: number | readonly number[] | undefined): number[] {
    const list = halo === undefined ? 0 : halo;
    const values = typeof list === 'number' ? this.meta.shape.map(() => list) : [...list];
    if (values.length !== this.ndim || !values.every((h) => Number.isInteger(h) && h >= 0)) {
      throw new ShapeError(`halo must be a non-negative integer or one per axis (${this.ndim}), got ${JSON.stringify(halo)}`);
    }
    return values;
  }

  toString(): string {
    return `Dataset(${JSON.stringify(this.name)}, shape=${formatShape(this.meta.shape)}, dtype=${this.dtype}, chunkSize=${formatShape(this.meta.chunkSize)})`;
  }
}

function checkKernel(fn: unknown): void {
  if (typeof fn !== 'function' && !isKernelRef(fn)) {
    throw new DosnaError('map/apply need a function (chunk, ctx) => result, or dn.kernel(url, exportName)');
  }
}

/** C order, so every rank deals the same chunk list the same way. */
function sortChunks(chunks: readonly ChunkIndex[]): number[][] {
  return chunks.map((c) => [...c]).sort((a, b) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  });
}
