/**
 * Datasets made from a dataset's chunks, run on the engine like every chunk job: `map` (a
 * chunk function into a new dataset, with a halo, rechunked if asked), `apply` (in place) and
 * `clone` (the same layout byte for byte, or rechunked).
 */
import { randomUUID as newUid } from 'node:crypto';
import type { Connection } from '../connection.js';
import type { Dataset } from './index.js';
import { bytesPerElement, checkDType, type DType } from '../dtypes.js';
import { checkChunkBytes, checkShape } from '../chunk-shape.js';
import { checkOptions } from '../options.js';
import { checkKernel, RUN_CONTROL, sortChunks, type CloneOptions, type MapOptions } from './options.js';
import { DatasetExistsError, OptionError, ShapeError } from '../errors.js';
import type { Kernel } from '../kernel.js';
import { ancestorsOf, baseName, checkPath, joinPath, parentOf } from '../paths.js';
import { allChunks } from '../slicing.js';
import type { DatasetMeta, Generation } from '../store.js';

/** Whether two metadata objects describe the same incarnation of a dataset. */
export const sameDataset = (a: DatasetMeta) => (b: DatasetMeta) => a.name === b.name && a.uid === b.uid;

/** Makes the handle on a dataset just created (the Dataset class's constructor, from index.ts). */
export type OpenDataset = (meta: DatasetMeta, generation: Generation) => Dataset;

/**
 * The metadata a new dataset made from `meta` (map's output, a clone) starts from: its shape,
 * dtype, chunks, fill value and codec, without the settings the store kept it with (a zarr
 * array's sharding, which dosna reads but does not write).
 */
function derived(meta: DatasetMeta): DatasetMeta {
  const { options: _stored, readOnly: _readOnly, ...rest } = meta;
  return rest;
}


/** `ds.map(fn, name, options)`. */
export async function mapDataset<Args>(ds: Dataset, fn: Kernel<Args>, name: string, options: MapOptions<Args>, open: OpenDataset): Promise<Dataset> {
  checkOptions('map', options, ['halo', 'args', 'dtype', 'chunkSize', ...RUN_CONTROL]);
  name = checkPath(name);
  checkKernel(fn);
  if (options.dtype !== undefined) checkDType(options.dtype);
  const halo = checkHalo(ds, options.halo);
  const chunkSize = options.chunkSize === undefined ? undefined : checkChunkSize(ds, options.chunkSize, options.dtype ?? ds.meta.dtype);
  if (chunkSize && chunkSize.join() !== ds.meta.chunkSize.join()) {
    // The function runs on this dataset's chunks; the result is rechunked after.
    if (await ds.connection.hasDataset(name)) throw new DatasetExistsError(`dataset ${JSON.stringify(name)} already exists`);
    const { chunkSize: _rechunk, ...rest } = options;
    // Beside the output, named the same on every rank (collective under cluster-rank).
    const temp = await ds.map(fn, joinPath(parentOf(name), `__dosna_map_${baseName(name).slice(0, 100)}_${ds.meta.uid.slice(0, 8)}`), rest);
    try {
      return await temp.clone(name, { data: true, chunkSize, signal: options.signal });
    } finally {
      await temp.delete();
    }
  }
  const what = `${ds.call('map')} into ${JSON.stringify(name)}`;
  const input = await ds.prepareCollective(what);
  const session = ds.connection.session;
  const store = ds.connection.store;
  const { output, generation } = await createOnRoot(ds, { ...derived(input), name, uid: newUid(), dtype: options.dtype ?? input.dtype }, what);
  try {
    ds.lastRun = await session.run(
      { kind: 'map', input, output, kernel: fn as Kernel, halo, args: options.args },
      allChunks(ds.chunkGrid),
      { operation: 'map', collective: true, signal: options.signal, onProgress: options.onProgress },
    );
  } catch (error) {
    await session.onRoot(() => store.deleteDataset(name), what).catch(() => {});
    ds.connection.metadataChanged();
    throw error;
  }
  return open(output, generation);
}

/** `ds.apply(fn, options)`. */
export async function applyDataset<Args>(ds: Dataset, fn: Kernel<Args>, options: Omit<MapOptions<Args>, 'dtype' | 'chunkSize'>): Promise<void> {
  if (options && typeof options === 'object' && ('dtype' in options || 'chunkSize' in options)) {
    throw new OptionError('apply: it changes the chunks in place, so it cannot change the dtype or the chunk shape (options dtype, chunkSize); use map');
  }
  checkOptions('apply', options, ['halo', 'args', ...RUN_CONTROL]);
  checkKernel(fn);
  ds.checkWritable('apply');
  const halo = checkHalo(ds, options.halo);
  const control = { signal: options.signal, onProgress: options.onProgress };
  const cache = ds.connection.cache;
  if (halo.some((h) => h > 0)) {
    const temp = await ds.map(fn, `__dosna_apply_${ds.meta.name}_${Date.now().toString(36)}`, options);
    try {
      const chunks = await ds.connection.session.onRoot(() => ds.connection.store.listChunks(temp.meta), ds.call('apply'));
      await cache?.discard(sameDataset(ds.meta));
      ds.lastRun = await ds.connection.session.run(
        { kind: 'clone', dataset: temp.meta, target: ds.meta }, sortChunks(chunks),
        { operation: 'apply', collective: true, ...control },
      );
    } finally {
      await temp.delete();
    }
    return;
  }
  const meta = await ds.prepareCollective(ds.call('apply'));
  try {
    ds.lastRun = await ds.connection.session.run(
      { kind: 'map', input: meta, output: meta, kernel: fn as Kernel, halo, args: options.args },
      allChunks(ds.chunkGrid),
      { operation: 'apply', collective: true, ...control },
    );
  } finally {
    // Clean cached chunks are stale now (they are re-checked anyway; this frees the room).
    await cache?.discard(sameDataset(meta));
  }
}

/** `ds.clone(name, options)`. */
export async function cloneDataset(ds: Dataset, name: string, options: CloneOptions | undefined, open: OpenDataset): Promise<Dataset> {
  const { data, chunkSize: wanted, signal, onProgress } = checkOptions('clone', options, ['data', 'chunkSize', ...RUN_CONTROL]);
  name = checkPath(name);
  if (data !== undefined && typeof data !== 'boolean') throw new OptionError(`clone: option data must be true or false, got ${JSON.stringify(data)}`);
  const chunkSize = wanted === undefined ? ds.meta.chunkSize : checkChunkSize(ds, wanted, ds.meta.dtype);
  const what = `${ds.call('clone')} as ${JSON.stringify(name)}`;
  const meta = await ds.prepareCollective(what);
  const session = ds.connection.session;
  const store = ds.connection.store;
  const { output: target, generation } = await createOnRoot(ds, { ...derived(meta), name, uid: newUid(), chunkSize }, what);
  const clone = open(target, generation);
  if (data) {
    const control = { collective: true, signal, onProgress };
    if (chunkSize.join() === meta.chunkSize.join()) {
      const chunks = await session.onRoot(() => store.listChunks(meta), what);
      ds.lastRun = await session.run({ kind: 'clone', dataset: meta, target }, sortChunks(chunks), { operation: 'clone', ...control });
    } else {
      // Rechunked: every chunk of the clone is filled from the region of this dataset it covers.
      ds.lastRun = await session.run({ kind: 'copy', dataset: target, source: { settings: ds.connection.settings, meta } },
        allChunks(clone.chunkGrid), { operation: 'clone', ...control });
    }
  }
  return clone;
}

/** A chunk shape given for a new dataset of `ds`'s shape: its axes, its limits. */
function checkChunkSize(ds: Dataset, chunkSize: unknown, dtype: DType): number[] {
  const checked = checkShape(chunkSize, 'chunkSize', false);
  if (checked.length !== ds.ndim) {
    throw new ShapeError(`chunkSize ${JSON.stringify(checked)} has ${checked.length} axes but the dataset has ${ds.ndim}`);
  }
  checkChunkBytes(checked, bytesPerElement(dtype));
  return checked;
}

/** A halo given as one width for every axis or one per axis. */
function checkHalo(ds: Dataset, halo: number | readonly number[] | undefined): number[] {
  const list = halo === undefined ? 0 : halo;
  const values = typeof list === 'number' ? ds.meta.shape.map(() => list) : [...list];
  if (values.length !== ds.ndim || !values.every((h) => Number.isInteger(h) && h >= 0)) {
    throw new ShapeError(`halo must be a non-negative integer or one per axis (${ds.ndim}), got ${JSON.stringify(halo)}`);
  }
  return values;
}

/**
 * Stores the metadata of a new dataset (and its missing groups) on the root rank. Every rank
 * drew its own uid; the root's, stored, becomes the output's on every rank.
 */
async function createOnRoot(ds: Dataset, meta: DatasetMeta, what: string): Promise<{ output: DatasetMeta; generation: Generation }> {
  const store = ds.connection.store;
  const { uid, generation } = await ds.connection.session.onRoot(async () => {
    for (const group of ancestorsOf(meta.name)) await store.createGroup(group);
    return { uid: meta.uid, generation: await store.createMeta(meta) };
  }, what);
  return { output: { ...meta, uid }, generation };
}

/** Forgets the cached chunks of any incarnation of dataset `name` (it is being deleted). @internal */
export function forgetDataset(connection: Connection, name: string): Promise<void> | undefined {
  return connection.cache?.discard((m) => m.name === name);
}
