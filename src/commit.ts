/**
 * Conditional commits: the one way a process changes some cells of a stored chunk without
 * losing cells that other processes write at the same time (optimistic concurrency, as
 * TensorStore does). The chunk is read with its generation, this process's cells are laid
 * over a copy, and the copy is stored only if the chunk's generation is still the one read;
 * if another writer got there first, the chunk is read again and only this process's cells are
 * laid over the new contents. Every engine's partial writes and every cache flush go through
 * here, so the rule cannot differ between them.
 */
import { takeBuffer, giveBack } from './buffer-pool.js';
import { allocate, allocateSharedUninitialized, allocateUninitialized, bytesOf, bytesPerElement, viewAs, type TypedArray } from './dtypes.js';
import { ConflictError } from './errors.js';
import { product } from './slicing.js';
import { copyRun, fillArray } from './strided.js';
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
  /** The caller keeps the committed chunk (`Committed.data`); otherwise its buffer goes back to the pool. */
  readonly keep?: boolean;
}

/**
 * The chunk as a typed array the caller may change: `version`'s own bytes when the store gave
 * them away (no copy), else a copy of them, or the fill value everywhere when nothing is stored.
 */
export function ownedChunk(meta: DatasetMeta, store: Store, bytes: Uint8Array | undefined): TypedArray {
  if (bytes && !store.capabilities.sharedMemory) return viewAs(meta.dtype, bytes);
  return chunkCopy(meta, store, bytes);
}

/**
 * Reads a chunk for changing it: its generation and its contents as a typed array the caller
 * owns (read into a recycled buffer where the store allows; the fill value when nothing is
 * stored), and how many bytes were read.
 */
export async function readForUpdate(store: Store, meta: DatasetMeta, index: ChunkIndex): Promise<{ data: TypedArray; generation: Generation | null; bytesRead: number }> {
  const lent = store.capabilities.sharedMemory ? undefined : takeBuffer(product(meta.chunkSize) * bytesPerElement(meta.dtype));
  const version = await store.readChunkVersion(meta, index, lent && new Uint8Array(lent));
  if (lent && version.bytes?.buffer !== lent) giveBack(new Uint8Array(lent));
  return { data: ownedChunk(meta, store, version.bytes), generation: version.generation, bytesRead: version.bytes?.byteLength ?? 0 };
}

/**
 * A full-chunk buffer of the dataset's dtype: a copy of `bytes`, or the fill value everywhere
 * (or, with `uninitialized`, whatever memory held). In shared memory when the store keeps
 * chunks there, so it can adopt the buffer instead of copying it.
 */
export function chunkCopy(meta: DatasetMeta, store: Store, bytes: Uint8Array | undefined, uninitialized = false): TypedArray {
  const shared = store.capabilities.sharedMemory === true;
  const n = product(meta.chunkSize);
  // Not zeroed when every byte is about to be written (a whole chunk's bytes copied in).
  const overwritten = uninitialized || bytes?.byteLength === n * bytesPerElement(meta.dtype);
  const data = overwritten
    ? (shared ? allocateSharedUninitialized(meta.dtype, n) : allocateUninitialized(meta.dtype, n))
    : allocate(meta.dtype, n, shared);
  if (uninitialized) return data;
  if (bytes) copyRun(bytesOf(data), 0, bytes, 0, bytes.byteLength);
  else if (!Object.is(meta.fillValue, 0) && meta.fillValue !== 0n) chunkFill(data, meta);
  return data;
}

/** Sets every cell of a chunk buffer to the fill value (-0 is not 0 in bits: filled too). */
export function chunkFill(data: TypedArray, meta: DatasetMeta): void {
  fillArray(data, meta.fillValue);
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
 * Runs `attempt` (read, change, conditional write: `undefined` when another writer got there
 * first) until it lands, with the same jittered backoff as chunk commits. Metadata and
 * attribute updates go through it. Throws `ConflictError` (naming `what`) after
 * `MAX_COMMIT_ATTEMPTS`.
 */
export async function untilCommitted<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
  for (let n = 1; ; n++) {
    const done = await attempt();
    if (done !== undefined) return done;
    if (n >= MAX_COMMIT_ATTEMPTS) throw new ConflictError(`${what} kept changing under ${n} attempts to update it`, []);
    await sleep(backoffMs(n + 1));
  }
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
    const current = base
      ? { data: ownedChunk(meta, store, base.bytes), generation: base.generation, bytesRead: 0 }
      : await readForUpdate(store, meta, index);
    base = undefined;
    if (stats) stats.bytesRead += current.bytesRead;
    const { data } = current;
    overlay(data);
    const generation = await store.writeChunkIf(meta, index, [bytesOf(data)], current.generation);
    if (stats) stats.bytesWritten += data.byteLength;
    if (generation !== undefined) {
      if (!request.keep && !store.capabilities.sharedMemory) giveBack(data);
      return { generation, data };
    }
    if (!store.capabilities.sharedMemory) giveBack(data);
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
