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
 * thread to keep (a chunk the ram store adopts) is therefore reported again by the thread that
 * keeps it ({@link adoptSharedBuffer}); otherwise that thread never collects for it, the memory
 * never comes back to the pool, and the worker's next chunks take fresh pages (measured: 64
 * chunks of 1 MiB made and filled in a worker thread and kept by the main thread, 41 ms a round
 * against 6 ms once the main thread reports them).
 */
import { externalMemoryCounter, sharedBufferPool } from './native.js';

/** Buffers from this size up come from the native pool; smaller ones are not worth it. */
const POOLED_MIN_BYTES = 64 * 1024;

const adjust = externalMemoryCounter();
const collected = adjust && new FinalizationRegistry<number>((bytes) => { adjust(-bytes); });
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

/**
 * Reports a SharedArrayBuffer to this thread's collector until it collects this handle: one
 * this thread made, or one another thread made and this thread now keeps (see above). Each
 * handle is reported once: call it on the buffer as made or as received.
 */
export function adoptSharedBuffer(buffer: SharedArrayBuffer): void {
  if (collected && buffer.byteLength > 0) {
    adjust(buffer.byteLength);
    collected.register(buffer, buffer.byteLength);
  }
}
