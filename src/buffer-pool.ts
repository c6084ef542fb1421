/**
 * Spare chunk-sized buffers of this thread, for the next chunk of the same size. A fresh
 * megabyte costs page faults when first written and, released, work for the garbage collector
 * (which unmaps it); a recycled one costs neither. The chunk cache and conditional commits
 * take from it and give back what they no longer use. Bounded in bytes; plain (unshared)
 * ArrayBuffers only, so nothing another thread can see is ever reused.
 */

/** Bytes of spare buffers kept at most. */
const POOL_BYTES = 64 * 2 ** 20;
/**
 * Spare buffers kept at most per size. Bytes bound the pool; this only keeps one size from
 * crowding out the others. Each fresh buffer is new external memory to V8, and Node 24's V8
 * collects garbage for every few megabytes of that on a small heap. At 16, writing 256 planes
 * of a 256 x 384 x 384 uint16 volume again (36 chunks of 2 MiB in the chunk cache) took 20
 * fresh buffers; at 64 it takes 4, the pool's bytes holding 32. Medians of 12 runs per
 * process, three processes per setting, the settings alternating: hdf5 77.9, 83.0, 76.7 ->
 * 70.2, 69.7, 70.9 ms; zarr 82.2, 70.0 -> 67.2, 64.6 ms.
 */
const PER_SIZE = 64;

const spare = new Map<number, ArrayBuffer[]>();
let pooled = 0;

/** A spare buffer of exactly `bytes` (its contents are whatever its last user left), if there is one. */
export function takeBuffer(bytes: number): ArrayBuffer | undefined {
  const buffer = spare.get(bytes)?.pop();
  if (buffer) pooled -= buffer.byteLength;
  return buffer;
}

/**
 * Keeps the buffer under `view` for the next taker, when `view` spans a whole plain buffer that
 * the pool has room for. The caller must not use `view` afterwards.
 */
export function giveBack(view: ArrayBufferView): void {
  const { buffer } = view;
  if (!(buffer instanceof ArrayBuffer) || view.byteOffset !== 0 || view.byteLength !== buffer.byteLength || buffer.byteLength === 0) return;
  if (pooled + buffer.byteLength > POOL_BYTES) return;
  let list = spare.get(buffer.byteLength);
  if (!list) spare.set(buffer.byteLength, (list = []));
  if (list.length >= PER_SIZE || list.includes(buffer)) return;
  list.push(buffer);
  pooled += buffer.byteLength;
}
