/**
 * Conditional commits: the one way a process changes some cells of a stored chunk without
 * losing cells that other processes write at the same time (optimistic concurrency, as
 * TensorStore does). The chunk is read with its generation, this process's cells are laid
 * over a copy, and the copy is stored only if the chunk's generation is still the one read;
 * if another writer got there first, the chunk is read again and only this process's cells are
 * laid over the new contents. Every engine's partial writes and every cache flush go through
 * here, so the rule cannot differ between them.
 */
import { allocate, allocateUninitialized, bytesOf, type TypedArray } from './dtypes.js';
import { ConflictError } from './errors.js';
import { product } from './slicing.js';
import type { ChunkIndex, ChunkVersion, DatasetMeta, Generation, Store } from './store.js';

/** Attempts before a commit gives up (each loses only to a writer that committed in between). */
export const MAX_COMMIT_ATTEMPTS = 64;

/** What a committed chunk now holds: its generation and the bytes that were stored. */
export interface Committed {
  readonly generation: Generation;
  /** The stored chunk, as a typed array of the dataset's dtype (owned by the caller unless the store is `sharedMemory`). */
  readonly data: TypedArray;
}

export interface CommitRequest {
  /**
   * Lays this process's cells over `chunk` (a full chunk holding the current stored contents,
   * or the fill value where nothing is stored). Called once per attempt.
   */
  readonly overlay: (chunk: TypedArray) => void;
  /** A chunk already read (and not modified), to use on the first attempt instead of reading. */
  readonly base?: ChunkVersion;
  /**
   * A complete new chunk to try first, valid if the stored generation is still `expected`
   * (the cache's copy of a chunk it read, with this process's cells already in it).
   */
  readonly candidate?: { readonly data: TypedArray; readonly expected: Generation | null };
  /** Counts what the commit moved. */
  readonly stats?: { bytesRead: number; bytesWritten: number };
}

/**
 * A full-chunk buffer of the dataset's dtype: a copy of `bytes`, or the fill value everywhere
 * (or, with `uninitialized`, whatever memory held). In shared memory when the store keeps
 * chunks there, so it can adopt the buffer instead of copying it.
 */
export function chunkCopy(meta: DatasetMeta, store: Store, bytes: Uint8Array | undefined, uninitialized = false): TypedArray {
  const shared = store.capabilities.sharedMemory === true;
  const n = product(meta.chunkSize);
  if (uninitialized && !shared) return allocateUninitialized(meta.dtype, n);
  const data = allocate(meta.dtype, n, shared);
  if (uninitialized) return data;
  if (bytes) bytesOf(data).set(bytes);
  else if (!Object.is(meta.fillValue, 0) && meta.fillValue !== 0n) (data as Float64Array).fill(meta.fillValue as number); // -0 is not 0 in bits
  return data;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Backoff before attempt `attempt` (2, 3, ...): full jitter over an exponential window, so
 * writers that collided do not collide again in lock step. The window stops growing at 100 ms.
 */
function backoffMs(attempt: number): number {
  return Math.random() * Math.min(100, 0.5 * 2 ** attempt);
}

/**
 * Commits this process's cells of chunk `index`: read, overlay, conditional write, repeated
 * until no other writer intervened. Throws `ConflictError` after `MAX_COMMIT_ATTEMPTS`.
 */
export async function commitChunk(store: Store, meta: DatasetMeta, index: ChunkIndex, request: CommitRequest): Promise<Committed> {
  const { overlay, stats } = request;
  if (request.candidate) {
    const { data, expected } = request.candidate;
    const generation = await store.writeChunkIf(meta, index, [bytesOf(data)], expected);
    if (stats) stats.bytesWritten += data.byteLength;
    if (generation !== undefined) return { generation, data };
  }
  let base = request.base;
  for (let attempt = 1; ; attempt++) {
    const current = base ?? await store.readChunkVersion(meta, index);
    base = undefined;
    if (stats && current.bytes) stats.bytesRead += current.bytes.byteLength;
    const data = chunkCopy(meta, store, current.bytes);
    overlay(data);
    const generation = await store.writeChunkIf(meta, index, [bytesOf(data)], current.generation);
    if (stats) stats.bytesWritten += data.byteLength;
    if (generation !== undefined) return { generation, data };
    if (attempt >= MAX_COMMIT_ATTEMPTS) {
      throw new ConflictError(
        `chunk [${index.join(', ')}] of dataset ${JSON.stringify(meta.name)} changed under ${attempt} attempts in a row to commit to it; `
        + 'too many writers are updating this chunk at once',
        [...index],
      );
    }
    await sleep(backoffMs(attempt + 1));
  }
}
