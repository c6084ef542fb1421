/**
 * Where a new cache entry's memory comes from. It follows what the cache saw of each dataset's
 * last commit: blind (every cell of the chunk written here, as plane-by-plane writes do) or a
 * commit of part of a chunk.
 */
import { takeBuffer } from '../buffer-pool.js';
import { allocateSharedUninitialized, bytesPerElement, viewAs, type TypedArray } from '../dtypes.js';
import type { AxisPart } from '../slicing.js';
import type { DatasetMeta, Store } from '../store.js';
import { chunkElements } from './entry.js';

/** Datasets whose last kind of commit is remembered (the most recent ones). */
const BLIND_HINTS = 64;

export class EntryMemory {
  /** Whether the last commit of each dataset (by name, the most recent BLIND_HINTS) was blind. */
  readonly #blindLast = new Map<string, boolean>();

  constructor(private readonly store: Store) {}

  /** Notes the kind of dataset `name`'s latest commit. */
  noteCommit(name: string, blind: boolean): void {
    this.#blindLast.delete(name);
    this.#blindLast.set(name, blind);
    if (this.#blindLast.size > BLIND_HINTS) this.#blindLast.delete(this.#blindLast.keys().next().value!);
  }

  /**
   * Whether a write of `parts` starts its new entry from the stored chunk (the cache's
   * `#createFromStored`): on a store that holds uncompressed chunks in this process's memory
   * (`readChunkVersionNow`: ram), for a write of part of a chunk, unless this dataset's last
   * commit here was blind (plane-by-plane writes, which fill whole chunks: `take`).
   */
  startsFromStored(meta: DatasetMeta, parts: readonly AxisPart[]): boolean {
    return this.store.readChunkVersionNow !== undefined && meta.compression === undefined
      && this.#blindLast.get(meta.name) !== true && parts.some((p, a) => p.count < meta.chunkSize[a]);
  }

  /**
   * A buffer for a new entry of `meta` (uninitialized: whatever the last chunk held), or
   * `undefined` when the caller should allocate one.
   *
   * For a store that keeps chunks in shared memory, a shared buffer from the native pool when
   * this dataset's last commit here was blind (every cell written: plane-by-plane writes): the
   * store then keeps the entry's buffer itself, where a plain one is copied into a new shared
   * buffer at the commit. Profiled on ram, the 256 planes of a 256 x 384 x 384 uint16 volume in
   * 64 x 128 x 128 chunks spent as long in that copy as in copying the planes into the cache.
   * Otherwise plain memory from the pool of spare buffers: a partial commit stores a new shared
   * buffer anyway (commit.ts), and a shared entry then costs fresh pages twice per chunk
   * (measured on ram, a block written across 36 chunks of 64^3 float32: 21 of them cached, 57
   * fresh megabytes against 36), as it goes back to the native pool only once V8 collects it.
   */
  take(meta: DatasetMeta): TypedArray | undefined {
    if (this.store.capabilities.sharedMemory && this.#blindLast.get(meta.name) === true) {
      return allocateSharedUninitialized(meta.dtype, chunkElements(meta));
    }
    const spare = takeBuffer(chunkElements(meta) * bytesPerElement(meta.dtype));
    return spare && viewAs(meta.dtype, spare);
  }
}
