/**
 * The options of a dataset's operations, and the checks shared by them.
 */
import type { Progress } from '../concurrency.js';
import { DosnaError, DTypeError } from '../errors.js';
import type { DType, TypedArray } from '../dtypes.js';
import { isKernelRef } from '../kernel.js';
import type { NdArray } from '../ndarray.js';
import { isNdArray } from '../values.js';
import { chunkPart, cStrides, normalizeIndex, partToSlice, product, touchedChunks, type Index, type Slice } from '../slicing.js';
import type { ChunkIndex, DatasetMeta } from '../store.js';

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
  /** dtype of the output dataset of `map` (the input's by default); not for `apply`. */
  dtype?: DType;
  /**
   * Chunk shape of the output dataset of `map` (the input's by default); not for `apply`. The
   * function still sees the input's chunks: the result is written with them, then rechunked.
   */
  chunkSize?: readonly number[];
}

/** Options of `get`. */
export interface GetOptions {
  /**
   * Read into this array (as h5py's `read_direct`): a typed array, or a C-contiguous ndarray,
   * of the result's dtype holding exactly the selection's elements.
   */
  out?: TypedArray | NdArray<TypedArray>;
  /** Return the values cast to this dtype (as NumPy's `astype`; see docs/guide.md on casting). */
  dtype?: DType;
  /** Cancels the read (e.g. when the client of `dosna serve` goes away): no new chunk starts, and the promise rejects with `AbortError`. */
  signal?: AbortSignal;
}

/** Options of `clone`. */
export interface CloneOptions extends RunControl {
  /** Copy the stored chunks too (default: an empty dataset of the same layout). */
  data?: boolean;
  /** Chunk shape of the clone (this dataset's by default); with `data`, the values are rechunked. */
  chunkSize?: readonly number[];
}

export const RUN_CONTROL = ['signal', 'onProgress'] as const;

/** One chunk touched by an index: where it is in the grid, which part of it, where that lands in the result. */
export interface ChunkSlice {
  /** Grid index of the chunk. */
  readonly index: readonly number[];
  /** The part of the chunk, one slice per dataset axis, in chunk-local coordinates. */
  readonly chunk: readonly Slice[];
  /** Where that part lands in the result of `get`, one slice per result axis (integer-indexed axes removed). */
  readonly result: readonly Slice[];
}

/** Which chunks `index` touches in a dataset of `meta`, which part of each, and where each part lands in the result. */
export function chunkSlicesOf(meta: DatasetMeta, index: Index | undefined): ChunkSlice[] {
  const sel = normalizeIndex(index, meta.shape);
  return touchedChunks(sel, meta.chunkSize).map((chunk) => {
    const parts = chunkPart(sel, meta.chunkSize, chunk)!;
    return {
      index: chunk,
      chunk: parts.map((p) => partToSlice(p.localStart, p.step, p.count)),
      result: parts.filter((_, a) => !sel[a].squeeze).map((p) => partToSlice(p.outStart, 1, p.count)),
    };
  });
}

/** `get`'s `out` as a typed array: an ndarray is taken when C-contiguous from its start. */
export function outArray(out: TypedArray | NdArray<TypedArray>): TypedArray {
  if (ArrayBuffer.isView(out)) return out as TypedArray;
  if (isNdArray(out)) {
    const contiguous = out.offset === 0 && out.stride.join() === cStrides(out.shape).join() && out.data.length === product(out.shape);
    if (!contiguous) throw new DTypeError('out must be a C-contiguous array from its start; pass a typed array (out.data of a fresh ndarray)');
    return out.data;
  }
  throw new DTypeError('out must be a typed array, or a C-contiguous ndarray, of the result\'s dtype');
}

/** Checks that `fn` is a kernel: a function, or a `dn.kernel` reference. */
export function checkKernel(fn: unknown): void {
  if (typeof fn !== 'function' && !isKernelRef(fn)) {
    throw new DosnaError('map/apply need a function (chunk, ctx) => result, or dn.kernel(url, exportName)');
  }
}

/** C order, so every rank deals the same chunk list the same way. */
export function sortChunks(chunks: readonly ChunkIndex[]): number[][] {
  return chunks.map((c) => [...c]).sort((a, b) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  });
}
