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
import { commitChunk, untilCommitted } from './commit.js';
import type { TypedArray } from './dtypes.js';
import { IndexError, ShapeError } from './errors.js';
import { formatShape, normalizeIndex, product, s, type Selection } from './slicing.js';
import type { ChunkIndex, DatasetMeta, Store } from './store.js';

/**
 * Commits a new shape of dataset `meta`, computed by `change` from the stored metadata (read
 * again whenever another process committed first), after trimming the chunks a shrink cuts off.
 * `gone` throws the error for a dataset that was deleted or replaced. Returns the shape
 * committed.
 */
export async function commitShape(
  store: Store, meta: DatasetMeta, change: (old: DatasetMeta) => readonly number[], gone: () => Promise<never>,
): Promise<readonly number[]> {
  let shape: readonly number[] = meta.shape;
  await untilCommitted(`the metadata of dataset ${JSON.stringify(meta.name)}`, async () => {
    const found = await store.readMeta(meta.name);
    if (!found || found.meta.uid !== meta.uid) return gone();
    const old = found.meta;
    shape = change(old);
    if (shape.some((n, a) => n < old.shape[a])) await trimChunks(store, old, old.shape.map((n, a) => Math.min(n, shape[a])));
    return store.writeMetaIf({ ...old, shape }, found.generation);
  });
  return shape;
}

/** How `append` grows a dataset: the new shape from the stored one, and where the data goes. */
export interface AppendPlan {
  /** The shape grown by the data's extent (throws `ShapeError` if the data no longer fits it). */
  readonly grow: (old: DatasetMeta) => readonly number[];
  /** The region of a grown `shape` the data fills: its last `extent` positions along the axis. */
  readonly regionIn: (shape: readonly number[]) => Selection;
}

/**
 * Checks that data of shape `dataShape` can be appended to `meta` along `axis` (negative
 * counts from the end): it has the dataset's shape on the other axes, and either has `axis`
 * (a block) or leaves it out (one frame, written at an integer index).
 */
export function planAppend(meta: DatasetMeta, dataShape: readonly number[], axis: unknown): AppendPlan {
  const ndim = meta.shape.length;
  if (typeof axis !== 'number' || !Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new IndexError(`append: axis ${String(axis)} is out of range for ${ndim} axes`);
  }
  const at = axis < 0 ? axis + ndim : axis;
  const frame = dataShape.length === ndim - 1;
  const extent = frame ? 1 : dataShape[at];
  const expected = frame ? [...dataShape.slice(0, at), 1, ...dataShape.slice(at)] : dataShape;
  const grow = (old: DatasetMeta): readonly number[] => {
    if (expected.length !== ndim || expected.some((n, a) => a !== at && n !== old.shape[a])) {
      throw new ShapeError(`append: data of shape ${formatShape(dataShape)} does not fit dataset ${JSON.stringify(old.name)} of shape ${formatShape(old.shape)} along axis ${at}`);
    }
    return old.shape.map((n, a) => (a === at ? n + extent : n));
  };
  const regionIn = (shape: readonly number[]): Selection => {
    const start = shape[at] - extent;
    return normalizeIndex(shape.map((_, a) => (a !== at ? s() : frame ? start : s(start, start + extent))), shape);
  };
  return { grow, regionIn };
}

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
