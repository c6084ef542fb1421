/**
 * Changing a dataset's shape: `resize` (any axis grows or shrinks) and `append` (grow along an
 * axis and write the new cells). The new shape is one conditional commit of the metadata
 * (resize.ts), so concurrent appends each get their own rows.
 */
import type { Dataset } from './index.js';
import { checkShape } from '../chunk-shape.js';
import { ShapeError } from '../errors.js';
import { checkOptions } from '../options.js';
import { commitShape, planAppend } from '../resize.js';
import { formatShape, squeezedShape } from '../slicing.js';
import type { DatasetMeta } from '../store.js';
import { broadcastTo, inspectArray, toStridedView, type ArrayValue } from '../values.js';
import { sameDataset } from './transforms.js';

/** `ds.resize(shape)`. */
export async function resizeDataset(ds: Dataset, shape: readonly number[]): Promise<void> {
  const next = checkShape(shape, 'shape', true);
  ds.checkWritable('resize');
  const meta = await ds.current();
  if (next.length !== meta.shape.length) {
    throw new ShapeError(`resize: shape ${formatShape(next)} has ${next.length} axes but dataset ${JSON.stringify(meta.name)} has ${meta.shape.length}`);
  }
  await reshape(ds, 'resize', next.some((n, a) => n < meta.shape[a]), () => next);
}

/** `ds.append(data, options)`. */
export async function appendToDataset(ds: Dataset, data: ArrayValue, options?: { axis?: number }): Promise<void> {
  const { axis = 0 } = checkOptions('append', options, ['axis']);
  ds.checkWritable('append');
  const meta = await ds.current();
  const plan = planAppend(meta, inspectArray(data).shape, axis);
  // Converted (and so checked) before the dataset grows: bad data changes nothing.
  const probe = plan.regionIn(plan.grow(meta));
  broadcastTo(toStridedView(data, meta.dtype), squeezedShape(probe), probe.map((r) => r.squeeze));
  const grown = await reshape(ds, 'append', false, plan.grow);
  if (ds.connection.isRoot) await ds.writeSelection(plan.regionIn(grown), data);
}

/**
 * Commits a new shape, computed by `change` from the stored metadata (read again when another
 * process commits first), trimming the chunks a shrink cuts off before the metadata changes.
 * Runs on the root rank; returns the shape committed.
 */
async function reshape(ds: Dataset, call: string, shrinks: boolean, change: (old: DatasetMeta) => readonly number[]): Promise<readonly number[]> {
  const what = ds.call(call);
  // Cut-off cells may be buffered here: committed first, then trimmed with the rest.
  const meta = shrinks ? await ds.prepareCollective(what) : await ds.current();
  const store = ds.connection.store;
  const committed = await ds.connection.session.onRoot(
    () => commitShape(store, meta, change, () => ds.gone()),
    what,
  ).finally(() => ds.connection.metadataChanged());
  if (shrinks) await ds.connection.cache?.discard(sameDataset(meta));
  await ds.current();
  return committed;
}

