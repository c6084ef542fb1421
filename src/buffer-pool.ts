/**
 * Spare chunk-sized buffers of this thread, for the next chunk of the same size. A fresh
 * megabyte costs page faults when first written and, released, work for the garbage collector
 * (which unmaps it); a recycled one costs neither. The chunk cache and conditional commits
 * take from it and give back what they no longer use. Bounded in bytes; plain (unshared)
 * ArrayBuffers only, so nothing another thread can see is ever reused.
 */

/** Bytes of spare buffers kept at most. */
export const POOL_BYTES = 64 * 2 ** 20;
/**
 * Spare buffers kept at most per size. Bytes bound the pool; this only keeps one size from
 * crowding out the others. Each fresh buffer is new external memory to V8, and Node 24's V8
 * collects garbage for every few megabytes of that on a small heap. At 16, writing 256 planes
 * of a 256 x 384 x 384 uint16 volume again (36 chunks of 2 MiB in the chunk cache) took 20
 * fresh buffers; at 64 it takes 4, the pool's bytes holding 32. Medians of 12 runs per
 * process, three processes per setting, the settings alternating: hdf5 77.9, 83.0, 76.7 ->
 * 70.2, 69.7, 70.9 ms; zarr 82.2, 70.0 -> 67.2, 64.6 ms.
 */
export const PER_SIZE = 64;

/**
 * Spare buffers by size, the sizes in the order they were last used (least recent first). When
 * a buffer does not fit, the sizes least recently used make room: a process that moves on to
 * datasets of another chunk size (or a chunk cache that does) would otherwise find the pool
 * full of buffers no one takes and get fresh ones for good. Measured with the benchmark's io.js,
 * chunk sizes 32, 64 and 128 in one process (as `npm run bench -- --full` runs them): at C=128
 * (8 MiB chunks) a pool still full of the 1 MiB buffers of C=64 left every read to fresh
 * buffers, each new external memory that V8 collects garbage for. Medians, ms, before -> after
 * (two processes each on hdf5, one on zarr): the misaligned block 11.5, 10.7 -> 5.4, 5.7 on
 * hdf5 and 14.4 -> 7.6 on zarr; a plane 0.73, 0.52 -> 0.12, 0.11 and 0.91 -> 0.17.
 */
const spare = new Map<number, ArrayBuffer[]>();
let pooled = 0;

/** Marks `bytes` as the size used most recently (a size with no spare buffer left has no entry). */
function touch(bytes: number, list: ArrayBuffer[]): void {
  spare.delete(bytes);
  if (list.length > 0) spare.set(bytes, list);
}

/** A spare buffer of exactly `bytes` (its contents are whatever its last user left), if there is one. */
export function takeBuffer(bytes: number): ArrayBuffer | undefined {
  const list = spare.get(bytes);
  const buffer = list?.pop();
  if (!buffer) return undefined;
  pooled -= buffer.byteLength;
  touch(bytes, list!);
  return buffer;
}

/**
 * Keeps the buffer under `view` for the next taker, when `view` spans a whole plain buffer that
 * fits in the pool, dropping spare buffers of the sizes least recently used to make room (never
 * of its own size). The caller must not use `view` afterwards.
 */
export function giveBack(view: ArrayBufferView): void {
  const { buffer } = view;
  if (!(buffer instanceof ArrayBuffer) || view.byteOffset !== 0 || view.byteLength !== buffer.byteLength || buffer.byteLength === 0) return;
  const bytes = buffer.byteLength;
  const list = spare.get(bytes) ?? [];
  if (bytes > POOL_BYTES || list.length >= PER_SIZE || list.includes(buffer)) return;
  for (const [size, buffers] of spare) {
    if (pooled + bytes <= POOL_BYTES) break;
    if (size === bytes) continue;
    while (buffers.length > 0 && pooled + bytes > POOL_BYTES) pooled -= buffers.pop()!.byteLength;
    if (buffers.length === 0) spare.delete(size);
  }
  if (pooled + bytes > POOL_BYTES) return; // its own size fills the pool
  list.push(buffer);
  pooled += bytes;
  touch(bytes, list);
}
