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

/** The identity of a dataset's chunk in the cache: the name and the incarnation (uid). */
export function entryKey(meta: DatasetMeta, index: ChunkIndex): string {
  return `${meta.name}\u0000${meta.uid}\u0000${index.join(',')}`;
}

/** Cells of a full chunk (padding included). */
export function chunkElements(meta: DatasetMeta): number {
  return product(meta.chunkSize);
}
