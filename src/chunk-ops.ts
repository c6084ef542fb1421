/**
 * What happens to one chunk in each operation. A job is plain data describing an operation
 * on a dataset; `executeChunk` carries it out for one chunk against a store. Every engine
 * runs these same functions (in-process, in a worker thread or on another rank) and differs
 * only in where and how many at once, so the semantics cannot drift between engines.
 */
import { createHash } from 'node:crypto';
import { ndarray, type NdArray } from './ndarray.js';
import { allocate, allocateUninitialized, bytesOf, bytesPerElement, castInto, viewAs, type DType, type TypedArray } from './dtypes.js';
import { ConflictError, KernelError, ShapeError } from './errors.js';
import { chunkCopy, chunkFill, commitChunk, MAX_COMMIT_ATTEMPTS } from './commit.js';
import { giveBack, takeBuffer } from './buffer-pool.js';
import { gatherPadded, paddedAxis, type PaddedAxis } from './halo.js';
import { resolveKernel, type ChunkContext, type Kernel } from './kernel.js';
import {
  chunkPart, cStrides, formatShape, product, selectionShape, touchedChunks,
  type AxisPart, type Selection,
} from './slicing.js';
import type { ChunkIndex, ChunkVersion, ConnectionSettings, DatasetMeta, Generation, Store } from './store.js';
import { planSegments } from './segments.js';
import { copyStrided, fillStrided, type StridedView } from './strided.js';
import { toStridedView } from './values.js';

/** Copy the selected part of each chunk into `out` (C order over the unsqueezed selection). */
export interface ReadJob { readonly kind: 'read'; readonly dataset: DatasetMeta; readonly selection: Selection; readonly out: TypedArray }
/** Write `source` (strided over the unsqueezed selection shape, already of the dtype) into each chunk. */
export interface WriteJob { readonly kind: 'write'; readonly dataset: DatasetMeta; readonly selection: Selection; readonly source: StridedView }
/** Fill each chunk from the same region of another dataset (possibly another connection). */
export interface CopyJob { readonly kind: 'copy'; readonly dataset: DatasetMeta; readonly source: { readonly settings: ConnectionSettings; readonly meta: DatasetMeta } }
/** Apply a kernel to each chunk of `input`, writing `output` (the same dataset for `apply`). */
export interface MapJob {
  readonly kind: 'map'; readonly input: DatasetMeta; readonly output: DatasetMeta;
  readonly kernel: Kernel; readonly halo: readonly number[]; readonly args: unknown;
}
/** Remove each chunk. */
export interface ClearJob { readonly kind: 'clear'; readonly dataset: DatasetMeta }
/** Run a kernel on each chunk's cells and keep what it returns (the chunk's partial result of a reduction). */
export interface ReduceJob { readonly kind: 'reduce'; readonly dataset: DatasetMeta; readonly kernel: Kernel; readonly args: unknown }
/** Copy each stored chunk's bytes to another dataset of the same layout. */
export interface CloneJob { readonly kind: 'clone'; readonly dataset: DatasetMeta; readonly target: DatasetMeta }

export type ChunkJob = ReadJob | WriteJob | CopyJob | MapJob | ClearJob | CloneJob | ReduceJob;

/** The dataset a job writes, if any: its chunks are locked while a task writes them. */
export function writtenDataset(job: ChunkJob): DatasetMeta | undefined {
  switch (job.kind) {
    case 'read': case 'reduce': return undefined;
    case 'map': return job.output;
    case 'clone': return job.target;
    default: return job.dataset;
  }
}

/** What running one chunk cost (and, for a reduce job, what its kernel returned). */
export interface ChunkStats { bytesRead: number; bytesWritten: number; ioMs: number; computeMs: number; partial?: unknown }

/** Where a task finds what it needs besides its own store. */
export interface ChunkEnv {
  readonly store: Store;
  /** A connected store for other settings (the source of a `copy` job). */
  storeFor(settings: ConnectionSettings): Promise<Store>;
  /**
   * Where `apply` notes each chunk's commit before making it, for engines that may run a task
   * again after it committed (a task queue's at-least-once delivery): see `mapChunk`.
   */
  readonly ledger?: CommitLedger;
}

/** What an in-place commit is about to do: the generation it replaces, and the SHA-256 of the bytes it writes. */
export interface CommitRecord { readonly generation: Generation | null; readonly digest: string }

/** One run's notes of in-place commits, by chunk (kept outside the store, e.g. in Redis). */
export interface CommitLedger {
  get(index: ChunkIndex): Promise<CommitRecord | undefined>;
  set(index: ChunkIndex, record: CommitRecord): Promise<void>;
}

const digestOf = (bytes: Uint8Array | null | undefined): string => createHash('sha256').update(bytes ?? new Uint8Array(0)).digest('hex');

export function newStats(): ChunkStats {
  return { bytesRead: 0, bytesWritten: 0, ioMs: 0, computeMs: 0 };
}

/** A chunk that a task reads: of the job's own connection (`settings` undefined) or another. */
export interface ChunkRead {
  readonly settings?: ConnectionSettings;
  readonly meta: DatasetMeta;
  readonly index: ChunkIndex;
}

/**
 * Every chunk a task on `index` may read. Engines whose workers cannot open the store
 * themselves (the in-process `ram` store) hand these over with the task.
 */
export function chunkReads(job: ChunkJob, index: ChunkIndex): ChunkRead[] {
  switch (job.kind) {
    case 'read': case 'write': case 'reduce': return [{ meta: job.dataset, index }];
    case 'clone': return [{ meta: job.dataset, index }];
    case 'clear': return [];
    case 'copy': {
      const box = boxSelection(chunkOrigin(job.dataset, index), validShape(job.dataset, index));
      return touchedChunks(box, job.source.meta.chunkSize).map((c) => ({ settings: job.source.settings, meta: job.source.meta, index: c }));
    }
    case 'map': {
      const { box } = mapInput(job.input, index, job.halo);
      return touchedChunks(box, job.input.chunkSize).map((c) => ({ meta: job.input, index: c }));
    }
  }
}

/**
 * What a map task reads: the chunk grown by the halo, as padded axes (dataset coordinates of
 * every padded cell, reflected at the edges) and the box of the dataset that covers them.
 * `chunkReads` and `mapChunk` both use it, so a worker is always handed what it will read.
 */
function mapInput(input: DatasetMeta, index: ChunkIndex, halo: readonly number[]): { axes: PaddedAxis[] | null; box: Selection } {
  const valid = validShape(input, index);
  const origin = chunkOrigin(input, index);
  if (halo.every((h) => h === 0)) return { axes: null, box: boxSelection(origin, valid) };
  const axes = valid.map((n, a) => paddedAxis(origin[a], n, halo[a], input.shape[a]));
  return { axes, box: axes.map((ax) => ({ start: ax.lo, step: 1, count: ax.hi - ax.lo, squeeze: false })) };
}

/** Runs one chunk of a job. */
export async function executeChunk(env: ChunkEnv, job: ChunkJob, index: ChunkIndex, stats = newStats()): Promise<ChunkStats> {
  switch (job.kind) {
    case 'read': await readPart(env.store, job.dataset, job.selection, job.out, index, stats); break;
    case 'write': await writePart(env.store, job.dataset, job.selection, job.source, index, stats); break;
    case 'copy': await copyChunk(env, job, index, stats); break;
    case 'map': await mapChunk(env.store, job, index, stats, env.ledger); break;
    case 'clear': await timed(stats, 'ioMs', () => env.store.deleteChunk(job.dataset, index)); break;
    case 'clone': await cloneChunk(env.store, job, index, stats); break;
    case 'reduce': await reduceChunk(env.store, job, index, stats); break;
  }
  return stats;
}

async function timed<T>(stats: ChunkStats, field: 'ioMs' | 'computeMs', fn: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    stats[field] += performance.now() - t0;
  }
}

/** Shape of the chunk's own cells: `chunkSize`, cut at the dataset's far edges. */
export function validShape(meta: DatasetMeta, index: ChunkIndex): number[] {
  return meta.chunkSize.map((c, a) => Math.min(c, meta.shape[a] - index[a] * c));
}

export function chunkOrigin(meta: DatasetMeta, index: ChunkIndex): number[] {
  return meta.chunkSize.map((c, a) => index[a] * c);
}

/** A typed view of stored chunk bytes (shared with the store: read only). */
export function chunkArray(meta: DatasetMeta, bytes: Uint8Array): TypedArray {
  return viewAs(meta.dtype, bytes);
}

/** Where a chunk part lies in a full-chunk buffer `data` (`elementShift`: `data` starts that many elements into the chunk). */
export function chunkView(data: TypedArray, meta: DatasetMeta, parts: readonly AxisPart[], elementShift = 0): StridedView {
  const strides = cStrides(meta.chunkSize);
  let offset = -elementShift;
  for (let a = 0; a < parts.length; a++) offset += parts[a].localStart * strides[a];
  return { data, offset, shape: parts.map((p) => p.count), strides: parts.map((p, a) => strides[a] * p.step) };
}

/** Where a chunk part lies in an array laid out over the whole selection (offset and strides of that array). */
export function selectionView(data: TypedArray, offset0: number, strides: readonly number[], parts: readonly AxisPart[]): StridedView {
  let offset = offset0;
  for (let a = 0; a < parts.length; a++) offset += parts[a].outStart * strides[a];
  return { data, offset, shape: parts.map((p) => p.count), strides };
}

/** Element range [first, last] of the chunk that a part touches. */
function elementSpan(meta: DatasetMeta, parts: readonly AxisPart[]): [number, number] {
  const strides = cStrides(meta.chunkSize);
  let lo = 0;
  let hi = 0;
  for (let a = 0; a < parts.length; a++) {
    const first = parts[a].localStart;
    const last = first + (parts[a].count - 1) * parts[a].step;
    lo += Math.min(first, last) * strides[a];
    hi += Math.max(first, last) * strides[a];
  }
  return [lo, hi];
}

/** Copies the part of `selection` inside chunk `index` into `out`. */
export async function readPart(
  store: Store, meta: DatasetMeta, selection: Selection, out: TypedArray, index: ChunkIndex, stats: ChunkStats,
): Promise<void> {
  const parts = chunkPart(selection, meta.chunkSize, index);
  if (!parts) return;
  const dst = selectionView(out, 0, cStrides(selectionShape(selection)), parts);
  const chunkElements = product(meta.chunkSize);
  const partElements = product(parts.map((p) => p.count));
  const [lo, hi] = elementSpan(meta, parts);
  // A compressed chunk is decoded whole: neither vectored reads nor byte ranges apply.
  if (store.readChunkInto && !meta.compression) {
    if (partElements * VECTORED_READ_MAX_SHARE < chunkElements) {
      // A small part of the chunk (a plane of it, a column of long rows): its rows go straight
      // from the file into `out`. Short rows only when the part is sparse in its span: a view
      // and an iovec per row cost more than copying the row, but less than reading its gaps.
      const sparse = hi - lo + 1 > SPARSE_SPAN_FACTOR * partElements;
      const plan = planSegments(chunkView(out, meta, parts), dst, undefined, sparse ? undefined : VECTORED_MIN_ROW_BYTES);
      if (plan) {
        const found = await timed(stats, 'ioMs', () => store.readChunkInto!(meta, index, plan.start, plan.segments));
        if (found) stats.bytesRead += plan.payload;
        else fillStrided(dst, meta.fillValue);
        return;
      }
    }
    await readSpan(store, meta, index, parts, dst, lo, hi, stats);
    return;
  }
  const bpe = out.BYTES_PER_ELEMENT;
  // Fetch a byte range when the part is a small window of a large chunk (remote stores).
  const useRange = store.capabilities.rangeReads && store.readChunkRange && !meta.compression && (hi - lo + 1) * 2 <= chunkElements;
  // A whole chunk is read into a recycled buffer, given back once copied out of.
  const lent = useRange || store.capabilities.sharedMemory ? undefined : takeBuffer(chunkElements * bpe);
  const bytes = await timed(stats, 'ioMs', () => useRange
    ? store.readChunkRange!(meta, index, lo * bpe, (hi + 1) * bpe)
    : store.readChunk(meta, index, lent && new Uint8Array(lent)));
  if (!bytes) {
    fillStrided(dst, meta.fillValue);
  } else {
    stats.bytesRead += bytes.byteLength;
    copyStrided(dst, chunkView(chunkArray(meta, bytes), meta, parts, useRange ? lo : 0));
  }
  if (lent) giveBack(new Uint8Array(lent));
}

/**
 * Reads the elements `[lo, hi]` of a chunk file (the span of the part, gaps and all) into the
 * front of a recycled chunk-sized buffer with one vectored read, and copies the part out of it
 * into `dst`: one contiguous read and the native strided copy, no allocation per chunk or row.
 */
async function readSpan(
  store: Store, meta: DatasetMeta, index: ChunkIndex, parts: readonly AxisPart[], dst: StridedView, lo: number, hi: number, stats: ChunkStats,
): Promise<void> {
  const bpe = bytesPerElement(meta.dtype);
  const chunkBytes = product(meta.chunkSize) * bpe;
  const lent = takeBuffer(chunkBytes) ?? allocateUninitialized('uint8', chunkBytes).buffer as ArrayBuffer;
  try {
    const span = new Uint8Array(lent, 0, (hi - lo + 1) * bpe);
    const found = await timed(stats, 'ioMs', () => store.readChunkInto!(meta, index, lo * bpe, [span]));
    if (!found) {
      fillStrided(dst, meta.fillValue);
      return;
    }
    stats.bytesRead += span.byteLength;
    copyStrided(dst, chunkView(chunkArray(meta, span), meta, parts, lo));
  } finally {
    giveBack(new Uint8Array(lent));
  }
}

/** Parts smaller than 1/this of their chunk are candidates for vectored reads of their rows; others are read by span. */
const VECTORED_READ_MAX_SHARE = 4;
/**
 * Rows at least this long go by vectored reads straight into the caller's array; shorter ones
 * are read with their span and copied (a row view and an iovec cost about as much as copying a
 * few KiB).
 */
const VECTORED_MIN_ROW_BYTES = 4096;
/** A part whose span is more than this many times its size is sparse: reading its gaps would cost more than its rows. */
const SPARSE_SPAN_FACTOR = 8;

/**
 * Whether a chunk part covers every cell of the chunk, so that it may replace the chunk without
 * reading it. Never for an edge chunk (the dataset ends inside it): its cells past the shape
 * this process knows may be another process's, which grew the dataset (an `append`) and wrote
 * them; writing the fill value over them would lose that update. Edge chunks are updated by
 * conditional read-modify-write, as zarr does.
 */
export function coversChunk(meta: DatasetMeta, parts: readonly AxisPart[]): boolean {
  return parts.every((p, a) => Math.abs(p.step) === 1 && p.count === meta.chunkSize[a]);
}

/**
 * Writes the part of `source` that falls in chunk `index`. A part that covers the chunk
 * replaces it outright; any other is a conditional read-modify-write (commit.ts), so cells
 * that other writers store at the same time are never lost.
 */
export async function writePart(
  store: Store, meta: DatasetMeta, selection: Selection, source: StridedView, index: ChunkIndex, stats: ChunkStats,
): Promise<void> {
  const parts = chunkPart(selection, meta.chunkSize, index);
  if (!parts) return;
  const from = selectionView(source.data, source.offset, source.strides, parts);
  if (coversChunk(meta, parts)) {
    if (await writeFromRows(store, meta, index, chunkView(source.data, meta, parts), from, stats)) return;
    await writeAssembled(store, meta, index, (buf) => copyStrided(chunkView(buf, meta, parts), from), stats);
    return;
  }
  await timed(stats, 'ioMs', () => commitChunk(store, meta, index, {
    overlay: (chunk) => copyStrided(chunkView(chunk, meta, parts), from),
    stats,
  }));
}

/** Reads a box of a dataset (a selection without integer axes) into a new C-order array. */
export async function readRegion(store: Store, meta: DatasetMeta, selection: Selection, stats: ChunkStats): Promise<TypedArray> {
  // Uninitialized: the touched chunks tile the box, so every cell gets data or the fill value.
  const out = allocateUninitialized(meta.dtype, product(selectionShape(selection)));
  await Promise.all(touchedChunks(selection, meta.chunkSize).map((c) => readPart(store, meta, selection, out, c, stats)));
  return out;
}

function boxSelection(origin: readonly number[], shape: readonly number[]): Selection {
  return shape.map((n, a) => ({ start: origin[a], step: 1, count: n, squeeze: false }));
}

/**
 * Writes a whole chunk straight from the rows of `source` (vectored file writes) when the
 * store takes many parts cheaply and the rows are long enough; `false` when the caller must
 * assemble a buffer. `layout` is where `source` lies in the chunk; every other cell gets the
 * fill value. With `expected`, the write is conditional (see `writeChunkIf`).
 */
async function writeFromRows(
  store: Store, meta: DatasetMeta, index: ChunkIndex, layout: StridedView, source: StridedView, stats: ChunkStats,
): Promise<boolean> {
  if (!store.vectoredWrites || meta.compression) return false;
  const chunkBytes = product(meta.chunkSize) * source.data.BYTES_PER_ELEMENT;
  const plan = planSegments(layout, source, { chunkBytes, fill: meta.fillValue }, VECTORED_WRITE_MIN_ROW);
  if (!plan) return false;
  await timed(stats, 'ioMs', () => store.writeChunk(meta, index, plan.segments));
  stats.bytesWritten += chunkBytes;
  return true;
}

/**
 * Writes `view` (the chunk's valid cells) as the whole chunk: unconditionally, or, with
 * `expected`, only if the stored chunk is still that generation. Resolves whether it wrote.
 */
async function writeWholeChunk(
  store: Store, meta: DatasetMeta, index: ChunkIndex, view: StridedView, stats: ChunkStats, expected?: Generation | null,
): Promise<boolean> {
  const layout = { data: view.data, offset: 0, shape: view.shape, strides: cStrides(meta.chunkSize) };
  if (expected === undefined && await writeFromRows(store, meta, index, layout, view, stats)) return true;
  if (view.data.length === product(meta.chunkSize) && view.offset === 0 && view.strides.join() === cStrides(meta.chunkSize).join()) {
    // Already the whole chunk, laid out as stored.
    const bytes = bytesOf(view.data);
    const written = await timed(stats, 'ioMs', () => expected === undefined
      ? store.writeChunk(meta, index, [bytes])
      : store.writeChunkIf(meta, index, [bytes], expected));
    stats.bytesWritten += bytes.byteLength;
    return written !== undefined;
  }
  return writeAssembled(store, meta, index, (buf) => copyStrided({ ...layout, data: buf }, view), stats, expected);
}

/**
 * Writes a whole chunk that `fill` copies into a buffer holding the fill value where `fill`
 * writes nothing (an edge chunk's padding): a recycled buffer, given back once written, except
 * for a store that keeps chunks in shared memory (it adopts the buffer). Unconditionally, or
 * with `expected` only if the stored chunk is still that generation; resolves whether it wrote.
 */
async function writeAssembled(
  store: Store, meta: DatasetMeta, index: ChunkIndex, fill: (buf: TypedArray) => void, stats: ChunkStats, expected?: Generation | null,
): Promise<boolean> {
  const interior = validShape(meta, index).every((n, a) => n === meta.chunkSize[a]);
  const shared = store.capabilities.sharedMemory === true;
  const spare = shared ? undefined : takeBuffer(product(meta.chunkSize) * bytesPerElement(meta.dtype));
  const buf = spare ? viewAs(meta.dtype, spare) : chunkCopy(meta, store, undefined, interior);
  if (spare && !interior) chunkFill(buf, meta);
  fill(buf);
  const bytes = bytesOf(buf);
  try {
    const written = await timed(stats, 'ioMs', () => expected === undefined
      ? store.writeChunk(meta, index, [bytes])
      : store.writeChunkIf(meta, index, [bytes], expected));
    stats.bytesWritten += bytes.byteLength;
    return written !== undefined;
  } finally {
    if (!shared) giveBack(buf);
  }
}

/**
 * Rows of at least this many bytes go straight from the caller's array to the file (vectored
 * writes); shorter ones are assembled into a recycled chunk buffer, which beats an iovec per
 * row (measured, loads of a 256^3 float32 cube: 297 against 327 ms in 32^3 chunks, 55 against
 * 86 ms in 128^3 chunks with their 512-byte rows).
 */
const VECTORED_WRITE_MIN_ROW = 8192;

function castArray(data: TypedArray, dtype: DType): TypedArray {
  const out = allocate(dtype, data.length);
  castInto(out, data);
  return out;
}

async function copyChunk(env: ChunkEnv, job: CopyJob, index: ChunkIndex, stats: ChunkStats): Promise<void> {
  const meta = job.dataset;
  const valid = validShape(meta, index);
  const source = await env.storeFor(job.source.settings);
  let data = await readRegion(source, job.source.meta, boxSelection(chunkOrigin(meta, index), valid), stats);
  if (job.source.meta.dtype !== meta.dtype) data = castArray(data, meta.dtype);
  await writeWholeChunk(env.store, meta, index, { data, offset: 0, shape: valid, strides: cStrides(valid) }, stats);
}

async function cloneChunk(store: Store, job: CloneJob, index: ChunkIndex, stats: ChunkStats): Promise<void> {
  const bytes = await timed(stats, 'ioMs', () => store.readChunk(job.dataset, index));
  if (!bytes) return;
  stats.bytesRead += bytes.byteLength;
  await timed(stats, 'ioMs', () => store.writeChunk(job.target, index, [bytes]));
  stats.bytesWritten += bytes.byteLength;
}

/** Whether a map job writes back into its own input (`apply`). */
function inPlace(job: MapJob): boolean {
  return job.output.name === job.input.name && job.output.uid === job.input.uid;
}

async function mapChunk(store: Store, job: MapJob, index: ChunkIndex, stats: ChunkStats, ledger?: CommitLedger): Promise<void> {
  if (!inPlace(job) || job.halo.some((h) => h > 0)) {
    const { axes, box } = mapInput(job.input, index, job.halo);
    const region = await readRegion(store, job.input, box, stats);
    const data = axes ? gatherPadded(job.input.dtype, region, axes) : region;
    const shape = axes ? axes.map((ax) => ax.coords.length) : validShape(job.input, index);
    const view = await runKernel(job, index, data, shape, stats);
    await writeWholeChunk(store, job.output, index, cropToChunk(view, shape, validShape(job.input, index), job.halo), stats);
    return;
  }
  // In place: the result replaces the chunk only if nobody changed it since it was read;
  // otherwise the kernel runs again on what is stored now, so no concurrent write is lost.
  const meta = job.input;
  const valid = validShape(meta, index);
  const interior = valid.every((n, a) => n === meta.chunkSize[a]);
  for (let attempt = 1; ; attempt++) {
    const version = await timed(stats, 'ioMs', () => store.readChunkVersion(meta, index));
    if (version.bytes) stats.bytesRead += version.bytes.byteLength;
    if (ledger && await committedBefore(ledger, index, version)) return;
    // The kernel gets the chunk's own cells, C order; an interior chunk is exactly its buffer:
    // the bytes read when they are this task's own, else one copy (in shared memory when the
    // store keeps chunks there, so it adopts the result without another copy).
    let data: TypedArray;
    if (interior && (version.bytes || store.capabilities.sharedMemory)) {
      data = store.capabilities.sharedMemory ? chunkCopy(meta, store, version.bytes) : chunkArray(meta, version.bytes!);
    } else {
      data = allocateUninitialized(meta.dtype, product(valid));
      const full = version.bytes ? chunkArray(meta, version.bytes) : chunkCopy(meta, store, undefined); // only read from
      copyStrided({ data, offset: 0, shape: valid, strides: cStrides(valid) }, { data: full, offset: 0, shape: valid, strides: cStrides(meta.chunkSize) });
    }
    const view = await runKernel(job, index, data, valid, stats);
    let result = cropToChunk(view, valid, valid, job.halo);
    if (!interior) {
      // An edge chunk keeps its stored cells past the shape this process knows: another process
      // may have grown the dataset and written them (see coversChunk).
      const whole = chunkCopy(meta, store, version.bytes);
      const chunkStrides = cStrides(meta.chunkSize);
      copyStrided({ data: whole, offset: 0, shape: valid, strides: chunkStrides }, result);
      result = { data: whole, offset: 0, shape: [...meta.chunkSize], strides: chunkStrides };
    }
    const written = ledger
      ? await commitNoted(store, meta, index, result, version.generation, ledger, stats)
      : await writeWholeChunk(store, meta, index, result, stats, version.generation);
    if (written) return;
    if (attempt >= MAX_COMMIT_ATTEMPTS) {
      throw new ConflictError(`chunk [${index.join(', ')}] of dataset ${JSON.stringify(meta.name)} kept changing while apply ran on it (${attempt} attempts)`, [...index]);
    }
  }
}

/**
 * Whether an earlier attempt at this chunk already committed: it noted the generation it
 * replaced and the digest of what it wrote, and the chunk now holds exactly those bytes under
 * another generation. (Under the noted generation it still holds its input: not committed.)
 */
async function committedBefore(ledger: CommitLedger, index: ChunkIndex, version: ChunkVersion): Promise<boolean> {
  const note = await ledger.get(index);
  return note !== undefined && note.generation !== version.generation && note.digest === digestOf(version.bytes);
}

/**
 * An in-place commit for engines that may run a task twice: the whole chunk's bytes are
 * assembled, noted in the ledger (the generation they replace and their digest), then written
 * only if the chunk is still that generation. A run of the task after a commit whose
 * acknowledgement was lost finds the note and the bytes, and does not apply the kernel again.
 */
async function commitNoted(
  store: Store, meta: DatasetMeta, index: ChunkIndex, view: StridedView, expected: Generation | null, ledger: CommitLedger, stats: ChunkStats,
): Promise<boolean> {
  const interior = validShape(meta, index).every((n, a) => n === meta.chunkSize[a]);
  const buf = allocateUninitialized(meta.dtype, product(meta.chunkSize));
  if (!interior) chunkFill(buf, meta);
  copyStrided({ data: buf, offset: 0, shape: view.shape, strides: cStrides(meta.chunkSize) }, view);
  const bytes = bytesOf(buf);
  await timed(stats, 'ioMs', () => ledger.set(index, { generation: expected, digest: digestOf(bytes) }));
  const written = await timed(stats, 'ioMs', () => store.writeChunkIf(meta, index, [bytes], expected));
  stats.bytesWritten += bytes.byteLength;
  return written !== undefined;
}

/** Runs the job's kernel on one chunk's data; returns its result (or the data, changed in place). */
async function runKernel(job: MapJob, index: ChunkIndex, data: TypedArray, shape: readonly number[], stats: ChunkStats): Promise<StridedView> {
  const chunk = ndarray(data, shape);
  const result = await callKernel(job.kernel, job.input, index, chunk, job.halo, job.args, stats);
  return toStridedView((result ?? chunk) as Parameters<typeof toStridedView>[0], job.output.dtype);
}

/** Reads a chunk's own cells (C order) and keeps what the kernel returns for them. */
async function reduceChunk(store: Store, job: ReduceJob, index: ChunkIndex, stats: ChunkStats): Promise<void> {
  const valid = validShape(job.dataset, index);
  const data = await readRegion(store, job.dataset, boxSelection(chunkOrigin(job.dataset, index), valid), stats);
  const halo = valid.map(() => 0);
  stats.partial = await callKernel(job.kernel, job.dataset, index, ndarray(data, valid), halo, job.args, stats);
}

/**
 * Calls a kernel on one chunk of `input` (its data, maybe grown by a halo) with the chunk's
 * context; a throw becomes a `KernelError` naming the chunk. The time it takes is compute time.
 */
async function callKernel(
  kernel: Kernel, input: DatasetMeta, index: ChunkIndex, chunk: NdArray<TypedArray>, halo: readonly number[], args: unknown, stats: ChunkStats,
): Promise<unknown> {
  const ctx: ChunkContext = {
    index: [...index], origin: chunkOrigin(input, index), shape: validShape(input, index), halo: [...halo], args,
    dataset: { name: input.name, shape: input.shape, dtype: input.dtype, chunkSize: input.chunkSize },
  };
  const fn = await resolveKernel(kernel);
  const fail = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    return new KernelError(`chunk function failed on chunk [${index.join(', ')}]: ${message}`, [...index], { cause: error });
  };
  // Timed synchronously: awaiting a plain value would let other tasks run inside the measurement.
  const t0 = performance.now();
  let result: Awaited<ReturnType<typeof fn>>;
  try {
    const returned = fn(chunk, ctx);
    result = returned instanceof Promise ? await returned : returned;
  } catch (error) {
    throw fail(error);
  } finally {
    stats.computeMs += performance.now() - t0;
  }
  return result;
}

/**
 * The chunk's own cells of a kernel's result, which may have the padded or the chunk's shape.
 * A flat typed array of exactly that many elements counts as C-order data of that shape, so
 * self-contained kernels can return `Float32Array.from(...)` without building an ndarray.
 */
function cropToChunk(view: StridedView, padded: readonly number[], valid: readonly number[], halo: readonly number[]): StridedView {
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  if (view.shape.length === 1 && valid.length > 1 && view.strides[0] === 1) {
    const n = view.shape[0];
    if (n === product(valid)) view = { ...view, shape: valid, strides: cStrides(valid) };
    else if (n === product(padded)) view = { ...view, shape: padded, strides: cStrides(padded) };
  }
  if (same(view.shape, valid)) return view;
  if (same(view.shape, padded)) {
    let offset = view.offset;
    for (let a = 0; a < halo.length; a++) offset += halo[a] * view.strides[a];
    return { data: view.data, offset, shape: valid, strides: view.strides };
  }
  throw new ShapeError(
    `chunk function returned shape ${formatShape(view.shape)}; expected the chunk's ${formatShape(valid)}`
    + (same(padded, valid) ? '' : ` or the padded ${formatShape(padded)}`),
  );
}
