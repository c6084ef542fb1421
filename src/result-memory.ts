/**
 * Memory for the new arrays that reads return (`get` without `out`).
 *
 * Why: the copy into a new result of 4 MiB or more writes whole 64-byte lines with streaming
 * stores, which skip reading each line into the cache first (native/strided.c), and only whole
 * lines can be streamed. malloc starts a large block 16 bytes past a line, so a chunk's rows of
 * 128 bytes (32 float32 cells) each held one whole line of three and kept ordinary stores; on a
 * line they are two whole lines. Measured in C on this machine, 64 chunks of 32^3 float32
 * gathered into a 128^3 result not in the caches: 1.03-1.14 ms into a block 16 bytes past a
 * line, 0.35-0.46 ms streamed into one on a line; 64^3 chunks (256-byte rows) 0.53-0.62 against
 * 0.39. A view at an offset into a larger buffer would align the data too, but then
 * `new Float32Array(result.data.buffer)` would no longer be the result: the native module makes
 * an ArrayBuffer over memory of its own instead (native/aligned-buffer.c).
 *
 * Only results whose rows (the last axis) are a whole number of lines: then every row of the
 * copy starts at the same place in a line, and where that is decides whether rows stream. A
 * result of other rows (a misaligned block) keeps plain memory, which malloc may hand out
 * again as soon as V8 frees it, still in the caches (by hand, such a block read 5-10% faster so).
 */
import { allocateUninitialized, bytesPerElement, viewAs, type DType, type TypedArrayFor } from './dtypes.js';
import { nativeModule } from './native.js';

/** Results from this size up may start on a cache line: the size from which their copies stream (native/strided.c). */
export const LINE_ALIGNED_RESULT_BYTES = 4 << 20;
const LINE_BYTES = 64;

/** Whether a result of `bytes` whose rows are `rowBytes` long starts on a line (see above). */
function lineAligned(bytes: number, rowBytes: number | undefined): boolean {
  return bytes >= LINE_ALIGNED_RESULT_BYTES && rowBytes !== undefined && rowBytes % LINE_BYTES === 0;
}

/**
 * A new, not zeroed typed array of `length` elements for a read's result, whose last axis holds
 * `rowBytes`: on a buffer whose memory starts on a 64-byte line when that speeds its copies
 * (see above) and the native module can make one; otherwise as `allocateUninitialized` makes it.
 */
export function allocateResult<D extends DType>(dtype: D, length: number, rowBytes?: number): TypedArrayFor[D] {
  if (lineAligned(length * bytesPerElement(dtype), rowBytes)) {
    const buffer = nativeModule()?.lineAlignedBuffer(length * bytesPerElement(dtype));
    if (buffer) return viewAs(dtype, buffer, 0, length);
  }
  return allocateUninitialized(dtype, length);
}

/**
 * From this many bytes of line-aligned results not yet freed, a new one first lets Node's event
 * loop turn once. Node frees their memory on the JavaScript thread, from its event loop, after
 * V8 collects them; a program reading in a loop of awaits that never waits for I/O (the ram
 * backend's reads, the hdf5 backend's inline ones) would otherwise never let it, and every
 * result past the native module's cap (512 MiB) would go back to plain memory. V8 collects
 * after every 64 MiB or so of new external memory.
 */
const TURN_LOOP_AT_BYTES = 64 << 20;

/** Before a new result of `bytes` in rows of `rowBytes`: lets the memory of collected results be freed when enough is pending (see TURN_LOOP_AT_BYTES). */
export async function makeRoomForResult(bytes: number, rowBytes: number): Promise<void> {
  if (!lineAligned(bytes, rowBytes)) return;
  const native = nativeModule();
  if (native && native.lineAlignedStats().outstandingBytes + bytes > TURN_LOOP_AT_BYTES) await new Promise<void>((resolve) => setImmediate(resolve));
}
