/**
 * Resizing a dataset (h5py's `resize`, zarr's `resize`): the metadata gets the new shape, and
 * the chunks are made to agree with it.
 *
 * Every stored chunk keeps the fill value in its cells beyond the dataset's shape (edge chunks
 * are written padded with it), so growing needs no chunk touched: the new cells read as the
 * fill value, as in h5py. Shrinking removes the chunks wholly outside the new shape and sets
 * the cut-off cells of the chunks across its edge back to the fill value, before the metadata
 * changes: if the process dies in between, the dataset keeps its old shape with those cells
 * cleared (each chunk old or new), and if it grows again later the cut-off cells read as the
 * fill value, never as their old data.
 */
import { commitChunk } from './commit.js';
import type { TypedArray } from './dtypes.js';
import { product } from './slicing.js';
import type { ChunkIndex, DatasetMeta, Store } from './store.js';

/**
 * Makes the stored chunks agree with a dataset cut down to `keep` cells per axis: chunks
 * wholly beyond are deleted, cells beyond in the chunks across the edge become the fill value.
 * Returns how many chunks it deleted and rewrote.
 */
export async function trimChunks(store: Store, meta: DatasetMeta, keep: readonly number[]): Promise<{ deleted: number; trimmed: number }> {
  const { chunkSize } = meta;
  const beyond: ChunkIndex[] = [];
  const across: ChunkIndex[] = [];
  for (const index of await store.listChunks(meta)) {
    if (index.some((i, a) => i * chunkSize[a] >= keep[a])) beyond.push(index);
    // Across the edge of an axis that is cut (on other axes, cells past the shape are fill already).
    else if (index.some((i, a) => keep[a] < meta.shape[a] && (i + 1) * chunkSize[a] > keep[a])) across.push(index);
  }
  if (store.deleteChunks) await store.deleteChunks(meta, beyond);
  else for (const index of beyond) await store.deleteChunk(meta, index);
  for (const index of across) {
    const limits = chunkSize.map((c, a) => keep[a] - index[a] * c);
    await commitChunk(store, meta, index, { overlay: (chunk) => fillBeyond(chunk, chunkSize, limits, meta.fillValue) });
  }
  return { deleted: beyond.length, trimmed: across.length };
}

/**
 * Sets the cells of a C-order chunk whose coordinate on some axis is at or past `limits[axis]`
 * to `fill`, a row (the last axis) at a time: a whole row when an outer coordinate is past its
 * limit, its tail otherwise.
 */
export function fillBeyond(chunk: TypedArray, chunkSize: readonly number[], limits: readonly number[], fill: number | bigint): void {
  const ndim = chunkSize.length;
  const rowLength = chunkSize[ndim - 1];
  const tailFrom = Math.max(0, Math.min(rowLength, limits[ndim - 1]));
  const rows = product(chunkSize.slice(0, -1));
  const coords = new Array<number>(Math.max(0, ndim - 1)).fill(0);
  const data = chunk as unknown as { fill(value: number | bigint, start: number, end: number): void };
  for (let row = 0; row < rows; row++) {
    const start = row * rowLength;
    const outside = coords.some((c, a) => c >= limits[a]);
    if (outside) data.fill(fill, start, start + rowLength);
    else if (tailFrom < rowLength) data.fill(fill, start + tailFrom, start + rowLength);
    for (let a = ndim - 2; a >= 0 && ++coords[a] === chunkSize[a]; a--) coords[a] = 0;
  }
}
