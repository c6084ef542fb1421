/**
 * Every SharedArrayBuffer dosna makes comes from {@link newSharedBuffer}, so that V8 hears of it.
 *
 * V8 counts an ArrayBuffer's memory towards the external memory whose growth makes it collect
 * garbage, but not a SharedArrayBuffer's. A store that replaces chunks (the ram backend swaps in
 * a new buffer on every write, so readers holding the old one never see a torn chunk) then
 * piles up dead buffers that nothing collects: measured in Node 24, 30 rounds of replacing 64
 * chunks of 1 MiB left 1.9 GiB of them in the process, and each round, paying for fresh pages,
 * took ~200 ms against ~20 ms once the memory was reported. Through the native module
 * (napi_adjust_external_memory) each buffer is reported when made and taken back when V8
 * collects it (a FinalizationRegistry), so replaced chunks go as ordinary arrays do and malloc
 * hands their warm pages to the next ones. Without the module the buffers are plain
 * SharedArrayBuffers, collected whenever V8 collects for other reasons.
 */
import { externalMemoryCounter } from './native.js';

const adjust = externalMemoryCounter();
const collected = adjust && new FinalizationRegistry<number>((bytes) => { adjust(-bytes); });

/** A new zeroed SharedArrayBuffer of `byteLength` bytes, its memory reported to V8 (see above). */
export function newSharedBuffer(byteLength: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(byteLength);
  if (collected && byteLength > 0) {
    adjust(byteLength);
    collected.register(buffer, byteLength);
  }
  return buffer;
}
