/**
 * Dataset and chunk shapes: what is accepted, and the chunk shape chosen when none is given.
 *
 * Python DosNa made a dataset without `chunk_size` one chunk, the whole array: a 5 GB volume
 * then fails at its first write. dosna chooses chunks as zarr-python does (its
 * `guess_chunks`, the same rule as h5py's `guess_chunk` with bigger targets, suited to object
 * stores): about 256 KiB for a 1 MiB dataset, growing slowly with the dataset up to 64 MiB,
 * shaped like the array (each axis halved in turn). Small datasets stay one chunk.
 */
import { ShapeError } from './errors.js';
import { formatShape, product } from './slicing.js';

/** Largest chunk, in bytes: a chunk travels as one buffer, and a typed array beyond this cannot be allocated everywhere. */
export const MAX_CHUNK_BYTES = 2 ** 31;

const CHUNK_BASE = 256 * 1024;
const CHUNK_MIN = 128 * 1024;
const CHUNK_MAX = 64 * 1024 * 1024;

/** zarr-python's guess of a chunk shape for an array of `shape` and `itemSize`-byte elements. */
export function guessChunks(shape: readonly number[], itemSize: number): number[] {
  const chunks = shape.map((n) => Math.max(1, n));
  const datasetBytes = product(chunks) * itemSize;
  const target = Math.min(CHUNK_MAX, Math.max(CHUNK_MIN, CHUNK_BASE * 2 ** Math.log10(datasetBytes / (1024 * 1024))));
  for (let axis = 0; ; axis++) {
    const bytes = product(chunks) * itemSize;
    if ((bytes < target || Math.abs(bytes - target) / target < 0.5) && bytes < CHUNK_MAX) break;
    if (product(chunks) === 1) break;
    const a = axis % chunks.length;
    chunks[a] = Math.ceil(chunks[a] / 2);
  }
  return chunks;
}

/**
 * Checks a shape (or chunk shape): a non-empty array of safe integers (at least 1 for chunks),
 * with a number of elements that is a safe integer too, so every position is exact.
 */
export function checkShape(shape: unknown, what: string, allowZero: boolean): number[] {
  if (!Array.isArray(shape) || shape.length === 0
    || !shape.every((n) => Number.isSafeInteger(n) && (allowZero ? n >= 0 : n >= 1))) {
    throw new ShapeError(`${what} must be a non-empty array of ${allowZero ? 'non-negative' : 'positive'} integers (at most 2^53 - 1), got ${JSON.stringify(shape)}`);
  }
  if (!Number.isSafeInteger(product(shape))) {
    throw new ShapeError(`${what} ${formatShape(shape)} has ${product(shape)} elements, more than 2^53 - 1`);
  }
  return [...shape];
}

/** Checks that a chunk of `chunkSize` and `itemSize`-byte elements can be held in memory as one buffer. */
export function checkChunkBytes(chunkSize: readonly number[], itemSize: number): void {
  const bytes = product(chunkSize) * itemSize;
  if (bytes > MAX_CHUNK_BYTES) {
    throw new ShapeError(`a chunk of ${formatShape(chunkSize)} elements takes ${bytes} bytes, more than the ${MAX_CHUNK_BYTES} a chunk may have; use smaller chunks`);
  }
}
