/**
 * One chunk's reads and writes, shared by every job of chunk-ops.ts: where a selection's part
 * lies in a chunk, reading it (whole, a byte span, or vectored rows) and writing it (whole,
 * assembled, or through the conditional commit of commit.ts), with what each cost.
 */
import { allocateSharedUninitialized, allocateUninitialized, bytesOf, bytesPerElement, viewAs, type TypedArray } from './dtypes.js';
import { chunkCopy, chunkFill, commitChunk } from './commit.js';
import { giveBack, takeBuffer } from './buffer-pool.js';
import { chunkPart, cStrides, product, selectionShape, touchedChunks, type AxisPart, type Selection } from './slicing.js';
import type { ChunkIndex, ChunkReadRequest, DatasetMeta, Generation, Store } from './store.js';
import { planSegments, type SegmentPlan } from './segments.js';
import { copyStrided, copyStridedJoined, fillStrided, nativeCopyPlan, type StridedView } from './strided.js';

/** What running one chunk cost (and, for a reduce job, what its kernel returned). */
export interface ChunkStats { bytesRead: number; bytesWritten: number; ioMs: number; computeMs: number; partial?: unknown }

/** Nothing spent yet. */
export function newStats(): ChunkStats {
  return { bytesRead: 0, bytesWritten: 0, ioMs: 0, computeMs: 0 };
}

/** Runs `fn`, adding the time it took to `stats[field]`. */
export async function timed<T>(stats: ChunkStats, field: 'ioMs' | 'computeMs', fn: () => Promise<T> | T): Promise<T> {
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

/** Dataset coordinates of the chunk's first cell. */
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
  const [lo, hi] = elementSpan(meta, parts);
  // A compressed chunk is decoded whole: neither vectored reads nor byte ranges apply.
  if (store.readChunkInto && !meta.compression) {
    const plan = vectoredPlan(meta, parts, out, dst, lo, hi);
    if (plan) {
      const found = await timed(stats, 'ioMs', () => store.readChunkInto!(meta, index, plan.start, plan.segments));
      if (found) stats.bytesRead += plan.payload;
      else fillStrided(dst, meta.fillValue);
      return;
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
 * Where the run of chunks side by side along the last axis that starts at `chunks[start]` ends:
 * the first position after it. Chunks come in C order (touchedChunks), so such neighbours are
 * next to each other in the list.
 */
export function sideBySideEnd(chunks: readonly ChunkIndex[], start: number): number {
  const first = chunks[start];
  const last = first.length - 1;
  let end = start + 1;
  for (; end < chunks.length; end++) {
    const next = chunks[end];
    if (last < 0 || next[last] !== chunks[end - 1][last] + 1) break;
    let same = true;
    for (let a = 0; same && a < last; a++) same = next[a] === first[a];
    if (!same) break;
  }
  return end;
}

/**
 * `readPart` for a store that hands over its chunks' bytes at once (`Store.readChunkNow`), for a
 * run of chunks side by side along the last axis (`sideBySideEnd`; one chunk is a run of one):
 * copies the part of `selection` inside each into `out`, whose strides over the selection the
 * caller computed once (`outStrides`), and returns each chunk's bytes read (0 for a chunk never
 * written, whose part gets the fill value, or one the selection steps over). The parts of two
 * or more chunks go in one call when they can, each row of `out` at once (`copyStridedJoined`
 * says why); otherwise, or where a chunk is missing, one by one.
 */
export function readPartsNow(store: Store, meta: DatasetMeta, selection: Selection, out: TypedArray, outStrides: readonly number[], chunks: readonly ChunkIndex[]): number[] {
  const dsts: (StridedView | undefined)[] = [];
  const srcs: (StridedView | undefined)[] = [];
  const bytesRead: number[] = [];
  for (const index of chunks) {
    const parts = chunkPart(selection, meta.chunkSize, index);
    const bytes = parts ? store.readChunkNow!(meta, index) : undefined;
    dsts.push(parts ? selectionView(out, 0, outStrides, parts) : undefined);
    srcs.push(parts && bytes ? chunkView(chunkArray(meta, bytes), meta, parts) : undefined);
    bytesRead.push(bytes?.byteLength ?? 0);
  }
  const whole = srcs.every((src) => src !== undefined);
  if (chunks.length > 1 && whole && copyStridedJoined(dsts as StridedView[], srcs as StridedView[])) return bytesRead;
  for (let i = 0; i < chunks.length; i++) {
    const dst = dsts[i];
    const src = srcs[i];
    if (src) copyStrided(dst!, src);
    else if (dst) fillStrided(dst, meta.fillValue);
  }
  return bytesRead;
}

/**
 * Reads the elements `[lo, hi]` of a chunk file (the span of the part, gaps and all) into the
 * front of a recycled chunk-sized buffer with one vectored read, and copies the part out of it
 * into `dst`: one contiguous read and the native strided copy, no allocation per chunk or row.
 * The store may make that copy itself, on the thread that read (`copyOut`): then the bytes are
 * copied while still in that core's cache, and not on this thread.
 */
async function readSpan(
  store: Store, meta: DatasetMeta, index: ChunkIndex, parts: readonly AxisPart[], dst: StridedView, lo: number, hi: number, stats: ChunkStats,
): Promise<void> {
  const bpe = bytesPerElement(meta.dtype);
  const chunkBytes = product(meta.chunkSize) * bpe;
  const lent = takeBuffer(chunkBytes) ?? allocateUninitialized('uint8', chunkBytes).buffer as ArrayBuffer;
  try {
    const span = new Uint8Array(lent, 0, (hi - lo + 1) * bpe);
    const src = chunkView(chunkArray(meta, span), meta, parts, lo); // a view of `span` (it starts a buffer: aligned)
    const plan = nativeCopyPlan(dst, src);
    const found = await timed(stats, 'ioMs', () => store.readChunkInto!(meta, index, lo * bpe, [span], plan && { dst: dst.data, src: span, plan }));
    if (!found) {
      fillStrided(dst, meta.fillValue);
      return;
    }
    stats.bytesRead += span.byteLength;
    if (found !== 'copied') copyStrided(dst, src);
  } finally {
    giveBack(new Uint8Array(lent));
  }
}

/**
 * The vectored read of a part straight into `out`, when it pays: a small part of the chunk (a
 * plane of it, a column of long rows), whose rows go from the file into `out`. Short rows only
 * when the part is sparse in its span: a view and an iovec per row cost more than copying the
 * row, but less than reading its gaps. `undefined`: read the span and copy it out.
 */
function vectoredPlan(meta: DatasetMeta, parts: readonly AxisPart[], out: TypedArray, dst: StridedView, lo: number, hi: number): SegmentPlan | undefined {
  const partElements = product(parts.map((p) => p.count));
  if (partElements * VECTORED_READ_MAX_SHARE >= product(meta.chunkSize)) return undefined;
  const sparse = hi - lo + 1 > SPARSE_SPAN_FACTOR * partElements;
  return planSegments(chunkView(out, meta, parts), dst, undefined, sparse ? undefined : VECTORED_MIN_ROW_BYTES);
}

/** Spans of chunks staged at once by a batched read: within a core's share of the cache, so they are copied out while still in it. */
const BATCH_STAGING_BYTES = 512 * 1024;
/** Chunks read in one batch at most (one native call each batch; abort and progress are seen between batches). */
const BATCH_CHUNKS = 256;

/**
 * `readPart` for many chunks of one read, through the store's batched reads
 * (`Store.readChunksInto`, which the caller checked serves `meta`): the parts are planned as
 * `readPart` plans them (rows straight into `out`, or the span staged and copied out), read in
 * batches of one store call each, and copied out. `onBatch` hears each batch's chunks (their
 * positions in `indices`) and stats once they are in `out`, and may throw to stop (an abort).
 */
export async function readPartsBatched(
  store: Store, meta: DatasetMeta, selection: Selection, out: TypedArray, indices: readonly ChunkIndex[],
  onBatch: (done: readonly { readonly at: number; readonly stats: ChunkStats; readonly startMs: number; readonly endMs: number }[]) => void,
): Promise<void> {
  const strides = cStrides(selectionShape(selection));
  const bpe = out.BYTES_PER_ELEMENT;
  // Room for at least one whole chunk's span.
  const stagingBytes = Math.max(BATCH_STAGING_BYTES, product(meta.chunkSize) * bpe);
  const staging = new Uint8Array(takeBuffer(stagingBytes) ?? allocateUninitialized('uint8', stagingBytes).buffer as ArrayBuffer);
  try {
    let next = 0;
    while (next < indices.length) {
      const batch: { at: number; dst: StridedView; parts: readonly AxisPart[]; request: ChunkReadRequest; payload: number; span?: { view: Uint8Array; lo: number } }[] = [];
      const untouched: number[] = []; // chunks the selection skips (steps past them): nothing to read
      let staged = 0;
      for (; next < indices.length && batch.length < BATCH_CHUNKS; next++) {
        const index = indices[next];
        const parts = chunkPart(selection, meta.chunkSize, index);
        if (!parts) {
          untouched.push(next);
          continue;
        }
        const dst = selectionView(out, 0, strides, parts);
        const [lo, hi] = elementSpan(meta, parts);
        const plan = vectoredPlan(meta, parts, out, dst, lo, hi);
        if (plan) {
          batch.push({ at: next, dst, parts, request: { index, start: plan.start, segments: plan.segments }, payload: plan.payload });
          continue;
        }
        const bytes = (hi - lo + 1) * bpe;
        if (staged + bytes > staging.byteLength) break; // the next batch takes it (a span fits an empty staging buffer)
        const view = staging.subarray(staged, staged + bytes);
        staged += bytes;
        batch.push({ at: next, dst, parts, request: { index, start: lo * bpe, segments: [view] }, payload: bytes, span: { view, lo } });
      }
      const startMs = performance.now();
      const found = batch.length > 0 ? await store.readChunksInto!(meta, batch.map((b) => b.request)) : [];
      const ioMs = (performance.now() - startMs) / batch.length;
      const done = batch.map((b, k) => {
        const stats = newStats();
        stats.ioMs = ioMs;
        if (!found[k]) {
          fillStrided(b.dst, meta.fillValue);
        } else {
          stats.bytesRead = b.payload;
          if (b.span) copyStrided(b.dst, chunkView(chunkArray(meta, b.span.view), meta, b.parts, b.span.lo));
        }
        return { at: b.at, stats, startMs, endMs: performance.now() };
      });
      for (const at of untouched) done.push({ at, stats: newStats(), startMs, endMs: startMs });
      onBatch(done);
    }
  } finally {
    giveBack(staging);
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
export async function readRegion(store: Store, meta: DatasetMeta, selection: Selection, stats: ChunkStats, shared = false): Promise<TypedArray> {
  // Uninitialized: the touched chunks tile the box, so every cell gets data or the fill value.
  // `shared`: in a SharedArrayBuffer of its own from the pool, for a region that may become a
  // chunk of a store keeping chunks in shared memory (which adopts it without a copy).
  // Otherwise a spare buffer when this thread has one: a caller that gathers the region into
  // another array gives it back (see mapChunk), so a map's regions do not each cost new memory.
  const length = product(selectionShape(selection));
  const spare = shared ? undefined : takeBuffer(length * bytesPerElement(meta.dtype));
  const out = shared ? allocateSharedUninitialized(meta.dtype, length) : spare ? viewAs(meta.dtype, spare, 0, length) : allocateUninitialized(meta.dtype, length);
  await Promise.all(touchedChunks(selection, meta.chunkSize).map((c) => readPart(store, meta, selection, out, c, stats)));
  return out;
}

/** The selection of the box of `shape` cells from `origin` (no steps, no squeezed axes). */
export function boxSelection(origin: readonly number[], shape: readonly number[]): Selection {
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
export async function writeWholeChunk(
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

