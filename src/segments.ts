/**
 * Byte segments for vectored chunk I/O. A chunk travels as its C-order bytes; the part of it
 * that an operation touches lies in the caller's array as runs (rows) of bytes. Listing those
 * runs in the chunk's byte order, with the gaps between them, lets a store over files move
 * the bytes straight between the file and the caller's array with one `readv`/`writev`: no
 * chunk-sized buffer, no copy in JavaScript (the kernel copies each run, as HDF5 does for a
 * hyperslab of a contiguous dataset).
 */
import type { Scalar, TypedArray } from './dtypes.js';
import { coalesce, copyRun, forEachRow, type StridedView } from './strided.js';
import { newSharedBuffer } from './shared-memory.js';

/** Where a chunk part lies inside the chunk: element offset, shape and strides (in elements). */
export interface ChunkLayout {
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
}

/** The bytes of a chunk from `start` on, in order, as views into the caller's array and gap buffers. */
export interface SegmentPlan {
  /** Byte offset in the chunk where the first segment begins. */
  readonly start: number;
  readonly segments: Uint8Array[];
  /** Bytes that belong to the caller's array (the rest are gaps). */
  readonly payload: number;
}

/**
 * Rows shorter than this go through a chunk buffer instead: below it the per-segment cost of
 * vectored I/O (a view here, an iovec in the kernel) outweighs the copy it saves.
 */
const MIN_RUN_BYTES = 64;
/** Gap buffers are at most this big; longer gaps take several segments of the same buffer. */
const GAP_PIECE_BYTES = 1 << 20;

let discard: Uint8Array | undefined;
const fills = new Map<string, Uint8Array>();

/** Bytes a read may overwrite and nobody reads: the gaps between runs of a read. */
function discardBuffer(): Uint8Array {
  discard ??= new Uint8Array(GAP_PIECE_BYTES);
  return discard;
}

/** Views that take `bytes` of a read nobody wants (a gap between the parts of a file read). */
export function discardViews(bytes: number): Uint8Array[] {
  const views: Uint8Array[] = [];
  pushGap(views, discardBuffer(), bytes);
  return views;
}

/** Bytes holding `fill` repeatedly (shared, never written): the padding of a written chunk. */
function fillBuffer(like: TypedArray, fill: Scalar): Uint8Array {
  const key = `${like.constructor.name}:${Object.is(fill, -0) ? '-0' : String(fill)}`; // -0 has its own bits
  let bytes = fills.get(key);
  if (!bytes) {
    const ctor = like.constructor as new (n: number) => TypedArray;
    const values = new ctor(GAP_PIECE_BYTES / like.BYTES_PER_ELEMENT);
    if (!Object.is(fill, 0) && fill !== 0n) (values as Float64Array).fill(fill as number);
    bytes = new Uint8Array(values.buffer);
    if (fills.size >= 16) fills.clear(); // a handful of (dtype, fill) pairs in practice
    fills.set(key, bytes);
  }
  return bytes;
}

function pushGap(segments: Uint8Array[], gap: Uint8Array, bytes: number): void {
  for (let left = bytes; left > 0; left -= gap.byteLength) segments.push(gap.subarray(0, Math.min(left, gap.byteLength)));
}

/**
 * The segments that carry a chunk part to or from `user` (a strided view of the same element
 * size and shape as `chunk`), or `undefined` when the part is not made of forward, contiguous
 * rows of at least `MIN_RUN_BYTES` in both (then a chunk buffer and a strided copy serve).
 *
 * For a read, gaps between runs go to a discard buffer and the plan starts at the first run.
 * For a write (`whole` with the fill value), the plan covers the whole chunk of `chunkBytes`:
 * every byte outside the part (an edge chunk's padding) comes from a buffer of the fill value.
 */
export function planSegments(
  chunk: ChunkLayout, user: StridedView, whole?: { readonly chunkBytes: number; readonly fill: Scalar }, minRunBytes = MIN_RUN_BYTES,
): SegmentPlan | undefined {
  const bpe = user.data.BYTES_PER_ELEMENT;
  const { shape, strides } = coalesce(chunk.shape, [chunk.strides, user.strides]);
  if (shape.some((n) => n === 0)) return undefined;
  const [cs, us] = strides;
  const inner = shape.length - 1;
  // Forward runs only: then chunk order is forEachRow's order.
  if (inner < 0 || cs[inner] !== 1 || us[inner] !== 1 || cs.some((s) => s <= 0)) return undefined;
  const runBytes = shape[inner] * bpe;
  if (runBytes < minRunBytes) return undefined;
  const gap = whole ? fillBuffer(user.data, whole.fill) : discardBuffer();
  const { buffer, byteOffset } = user.data;
  const segments: Uint8Array[] = [];
  const start = whole ? 0 : chunk.offset * bpe;
  let at = start;
  forEachRow(shape, cs, us, chunk.offset, user.offset, (ci, ui) => {
    const runStart = ci * bpe;
    if (runStart > at) pushGap(segments, gap, runStart - at);
    segments.push(new Uint8Array(buffer, byteOffset + ui * bpe, runBytes));
    at = runStart + runBytes;
  });
  const payload = shape.reduce((bytes, n) => bytes * n, bpe);
  if (whole && whole.chunkBytes > at) pushGap(segments, gap, whole.chunkBytes - at);
  return { start, segments, payload };
}

/** Copies a chunk's bytes from `start` on into `segments`, in order (what a vectored read of them would fill). */
export function fillSegments(segments: readonly Uint8Array[], bytes: Uint8Array, start: number): void {
  let at = start;
  for (const s of segments) {
    s.set(bytes.subarray(at, at + s.byteLength));
    at += s.byteLength;
  }
}

/**
 * A chunk given as `parts` (its bytes in order) as one SharedArrayBuffer, for stores that keep
 * chunks in shared memory: a single part that already spans a whole SharedArrayBuffer is
 * adopted as it is, anything else is copied once.
 */
export function sharedBufferOf(parts: readonly Uint8Array[]): SharedArrayBuffer {
  if (parts.length === 1) {
    const [bytes] = parts;
    if (bytes.buffer instanceof SharedArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes.buffer;
  }
  // Not zeroed: the parts fill it.
  const buffer = newSharedBuffer(parts.reduce((n, p) => n + p.byteLength, 0), false);
  const view = new Uint8Array(buffer);
  let at = 0;
  for (const p of parts) {
    copyRun(view, at, p, 0, p.byteLength);
    at += p.byteLength;
  }
  return buffer;
}
