/**
 * Every SharedArrayBuffer dosna makes comes from {@link newSharedBuffer}, so that V8 hears of it
 * and chunk-sized ones reuse the memory of freed ones.
 *
 * V8 counts an ArrayBuffer's memory towards the external memory whose growth makes it collect
 * garbage, but not a SharedArrayBuffer's. A store that replaces chunks (the ram backend swaps in
 * a new buffer on every write, so readers holding the old one never see a torn chunk) then
 * piles up dead buffers that nothing collects: measured in Node 24, 30 rounds of replacing 64
 * chunks of 1 MiB left 1.9 GiB of them in the process, and each round, paying for fresh pages,
 * took ~200 ms against ~20 ms once the memory was reported. Through the native module
 * (napi_adjust_external_memory) each buffer is reported when made and taken back when V8
 * collects it (a FinalizationRegistry), so replaced chunks go as ordinary arrays do.
 *
 * Even then a new SharedArrayBuffer costs more than the copy that fills it: V8 zeroes it (calloc),
 * in memory malloc may have to fault in afresh. Profiled on ram (a block written across 36 chunks
 * of 1 MiB, then flushed), making the new chunk buffers took 5 of its 11 ms. So buffers of at
 * least {@link POOLED_MIN_BYTES} come from the native module's pool (native/shared-pool.c): a
 * SharedArrayBuffer over a block that a freed buffer of the same size gave back (V8 calls the
 * pool when the last holder in any thread is gone, so no live buffer is ever reused), zeroed
 * only when asked. Without the module, or on a Node without the Node-API call, they are plain
 * SharedArrayBuffers.
 *
 * V8 counts the reported memory per thread (isolate), and a buffer is freed when the last
 * thread's handle on it is collected. A buffer a worker thread makes and hands over for the main
 * thread to keep (a chunk the ram store adopts) must therefore be reported by the thread that
 * keeps it too; otherwise that thread never collects for it, the memory never comes back to
 * the pool, and the worker's next chunks take fresh pages (measured: 64 chunks of 1 MiB made
 * and filled in a worker thread and kept by the main thread, 41 ms a round against 6 ms once the
 * main thread reports them). It is reported when the keeper drops it ({@link keepSharedBuffer},
 * {@link dropSharedBuffer}), not when it arrives: what that thread's collector can win back is
 * the dropped buffers, not the kept ones. Node 24's V8 counts reported memory against the
 * limit of its old generation, a few megabytes above a small heap, so reporting each chunk on
 * arrival cost the main thread 3-7 full collections per worker-pool `map` of 64 chunks of
 * 1 MiB on ram, with nothing to collect (measured by hand, 8 maps: 142-282 ms a map).
 */
import { externalMemoryCounter, sharedBufferPool } from './native.js';

/** Buffers from this size up come from the native pool; smaller ones are not worth it. */
const POOLED_MIN_BYTES = 64 * 1024;

const adjust = externalMemoryCounter();
/** Bytes this thread has reported and not yet taken back (see {@link reportedSharedBytes}). */
let reported = 0;
const collected = adjust && new FinalizationRegistry<number>((bytes) => { adjust(-bytes); reported -= bytes; });
const pool = sharedBufferPool();

/**
 * A new SharedArrayBuffer of `byteLength` bytes, its memory reported to V8 (see above): zeroed,
 * or with `zeroed: false` holding whatever its memory held, for a buffer the caller overwrites
 * entirely.
 */
export function newSharedBuffer(byteLength: number, zeroed = true): SharedArrayBuffer {
  const buffer = (byteLength >= POOLED_MIN_BYTES ? pool?.recycledSharedBuffer(byteLength, zeroed) : undefined) ?? new SharedArrayBuffer(byteLength);
  adoptSharedBuffer(buffer);
  return buffer;
}

/** Reports a SharedArrayBuffer to this thread's collector until it collects this handle: one made here, or a kept one just dropped (see above). */
function adoptSharedBuffer(buffer: SharedArrayBuffer): void {
  if (collected && buffer.byteLength > 0) {
    adjust(buffer.byteLength);
    reported += buffer.byteLength;
    collected.register(buffer, buffer.byteLength);
  }
}

/**
 * The bytes of shared memory this thread has reported to its collector and not yet taken back
 * (V8's own statistics do not show them).
 * @internal for tests and the benchmarks
 */
export function reportedSharedBytes(): number {
  return reported;
}

/** Buffers other threads made that this thread keeps, not reported here until dropped. */
const keptUnreported = new WeakSet<SharedArrayBuffer>();

/**
 * Marks a SharedArrayBuffer another thread made (and reported there) as kept by this thread:
 * it is reported here once this thread drops it ({@link dropSharedBuffer}), see above.
 */
export function keepSharedBuffer(buffer: SharedArrayBuffer): void {
  if (collected && buffer.byteLength > 0) keptUnreported.add(buffer);
}

/**
 * Tells this thread's collector about a kept buffer its keeper (the ram store) just dropped,
 * until it collects the handle: then its memory can go back to the pool. Buffers made here
 * were reported when made, and are left alone.
 */
export function dropSharedBuffer(buffer: SharedArrayBuffer): void {
  if (keptUnreported.delete(buffer)) adoptSharedBuffer(buffer);
}
