/** A cached chunk and its identity in the cache. */
import type { TypedArray } from '../dtypes.js';
import { product } from '../slicing.js';
import type { ChunkIndex, DatasetMeta, Generation } from '../store.js';
import type { DirtyCells } from './dirty-cells.js';

/** A cached chunk: its buffer, how much of it is valid, and what this process wrote since its last commit. */
export interface Entry {
  readonly key: string;
  readonly meta: DatasetMeta;
  readonly index: readonly number[];
  /** The full chunk (padding included). */
  data: TypedArray;
  /** Every cell of `data` is valid: the stored chunk at `generation`, with the dirty cells over it. */
  loaded: boolean;
  generation: Generation | null;
  /**
   * When `generation` was last known to be the store's (epoch ms, taken before the store was
   * asked): a read may use a clean entry without asking again when this is at or after the
   * connection's `recheckCachedData` time.
   */
  confirmedAt: number;
  /** Cells written here since the last commit, or null. */
  dirty: DirtyCells | null;
  /** What the entry counts against the cache's capacity. */
  bytes: number;
}

/**
 * Makes the cache's keys of chunks: a short number for the dataset's incarnation (its name and
 * uid), then the chunk's index. A lookup hashes a fresh key, and keys that spelled out the name
 * and the 36-character uid cost 0.7 us a lookup, against 0.2 for these (by hand): 6 us of a
 * line of 8 cached chunks.
 */
export class EntryKeys {
  /**
   * The number of each dataset incarnation seen (`name NUL uid`), for the cache's life (a few
   * dozen bytes each): an incarnation must keep its number while any metadata object of it may
   * still name it, which this map cannot tell.
   */
  readonly #numbers = new Map<string, string>();
  /** The next number; numbers are never reused. */
  #next = 0;
  /** The key prefix of each metadata object seen (the handles pass the same one with every read). */
  readonly #prefixes = new WeakMap<DatasetMeta, string>();

  /** The key of chunk `index` of dataset `meta`. */
  of(meta: DatasetMeta, index: ChunkIndex): string {
    let key = this.#prefixes.get(meta) ?? this.#prefixOf(meta);
    for (let a = 0; a < index.length; a++) key += a === 0 ? `${index[a]}` : `,${index[a]}`;
    return key;
  }

  #prefixOf(meta: DatasetMeta): string {
    const incarnation = `${meta.name}\u0000${meta.uid}`;
    let prefix = this.#numbers.get(incarnation);
    if (prefix === undefined) {
      prefix = `${this.#next++}:`;
      this.#numbers.set(incarnation, prefix);
    }
    this.#prefixes.set(meta, prefix);
    return prefix;
  }
}

/** Cells of a full chunk (padding included). */
export function chunkElements(meta: DatasetMeta): number {
  return product(meta.chunkSize);
}
