/**
 * One-file HDF5 export and import (h5py's world): `ds.exportHdf5(file, { path })` writes the
 * whole dataset as one chunked HDF5 dataset that h5py, HDFView or H5Web open; `con.importHdf5`
 * makes a dataset from any HDF5 dataset (chunked or contiguous).
 *
 * Both stream chunk by chunk through h5wasm (the HDF5 library in WebAssembly): memory holds a
 * few chunks, never the array, and the store side (reads for an export, writes for an import)
 * overlaps the HDF5 side. The HDF5 side is one thread: the file is written or read in order.
 * An export is written to a temporary name beside the file and renamed into place.
 */
import * as fs from 'node:fs';
import type { Connection } from '../connection.js';
import type { Dataset } from '../dataset/index.js';
import type { CompressionName } from '../codecs/index.js';
import { DATASET_METADATA_NAMES } from '../attrs.js';
import { allocate, DTYPES, type DType, type TypedArray } from '../dtypes.js';
import { DatasetExistsError, DosnaError, DTypeError, OptionError } from '../errors.js';
import { ndarray } from '../ndarray.js';
import { checkOptions } from '../options.js';
import { allChunks, s } from '../slicing.js';
import { loadH5, H5WASM_CODES } from '../backends/hdf5/h5lib.js';
import { readHdf5Attrs, writeHdf5Attrs } from '../backends/hdf5/attributes.js';
import { tmpName } from '../backends/hdf5/locks.js';

/** Chunks read ahead of the one being written (an export), or written behind the one read (an import). */
const IN_FLIGHT = 4;

/** Options of `exportHdf5`. */
export interface ExportHdf5Options {
  /** Where the dataset goes in the file (`/vol`, `/entry/data`); the dataset's name by default. Groups on the way are made. */
  path?: string;
  /** Replace an existing file (otherwise an existing file is an error). */
  overwrite?: boolean;
}

/** Options of `importHdf5`. */
export interface ImportHdf5Options {
  /** Chunk shape of the new dataset: the file's chunks by default (or one chosen for a contiguous dataset). */
  chunkSize?: readonly number[];
  /** Compression of the new dataset: what the file's dataset uses (gzip, shuffle) by default. */
  compression?: CompressionName | null;
  compressionLevel?: number;
  shuffle?: boolean;
}

function checkObjectPath(value: unknown, what: string): string[] {
  if (typeof value !== 'string' || value.replace(/^\/+|\/+$/g, '') === '') throw new OptionError(`${what} must be an HDF5 path such as "/vol", got ${JSON.stringify(value)}`);
  const segments = value.replace(/^\/+|\/+$/g, '').split('/');
  if (segments.some((seg) => seg === '' || seg === '.' || seg === '..')) throw new OptionError(`${what} ${JSON.stringify(value)} has an empty, "." or ".." segment`);
  return segments;
}

/** The chunk boxes of `shape` in `chunkSize`, in C order, as `[start, stop)` per axis. */
function chunkBoxes(shape: readonly number[], chunkSize: readonly number[]): [number, number][][] {
  const grid = shape.map((n, a) => Math.ceil(n / chunkSize[a]));
  if (grid.some((g) => g === 0)) return [];
  return allChunks(grid).map((index) => index.map((i, a) => [i * chunkSize[a], Math.min(shape[a], (i + 1) * chunkSize[a])] as [number, number]));
}

/** Writes `ds` to `file` as one HDF5 dataset (see the module's comment). */
export async function exportHdf5(ds: Dataset, file: string, options?: ExportHdf5Options): Promise<void> {
  const { path: objPath, overwrite = false } = checkOptions('exportHdf5', options, ['path', 'overwrite']);
  if (typeof file !== 'string' || file === '') throw new OptionError(`exportHdf5: file must be a path, got ${JSON.stringify(file)}`);
  if (typeof overwrite !== 'boolean') throw new OptionError(`exportHdf5: option overwrite must be true or false, got ${JSON.stringify(overwrite)}`);
  const segments = checkObjectPath(objPath ?? ds.name, 'exportHdf5: path');
  if (!overwrite && fs.existsSync(file)) throw new DatasetExistsError(`exportHdf5: ${file} exists; pass { overwrite: true } to replace it`);
  const meta = await ds.current();
  await ds.flush();
  await ds.connection.session.onRoot(async () => {
    const { lib } = await loadH5();
    const tmp = tmpName(file);
    const out = new lib.File(tmp, 'w');
    let closed = false;
    try {
      let group = out as InstanceType<typeof lib.Group>;
      for (const segment of segments.slice(0, -1)) group = (group.get(segment) as InstanceType<typeof lib.Group> | null) ?? group.create_group(segment);
      // Created empty (extensible up to the shape) and grown: h5wasm writes initial data from one
      // buffer of the whole array, which an export of any size must not need.
      const chunks = meta.chunkSize.map((c, a) => Math.max(1, Math.min(c, Math.max(1, meta.shape[a]))));
      // h5wasm writes one filter: deflate. A zstd or LZ4 dataset is exported with deflate level 4.
      const c = meta.compression;
      const target = group.create_dataset({
        name: segments[segments.length - 1],
        data: allocate(meta.dtype, 0) as never,
        shape: meta.shape.map(() => 0),
        maxshape: [...meta.shape],
        dtype: H5WASM_CODES[meta.dtype],
        chunks,
        ...(c ? { compression: 'gzip' as const, compression_opts: c.codec === 'gzip' ? c.level : 4 } : {}),
      });
      target.resize([...meta.shape]);
      const boxes = chunkBoxes(meta.shape, chunks);
      const pending: Promise<TypedArray>[] = [];
      let next = 0;
      const readAhead = () => {
        while (pending.length < IN_FLIGHT && next < boxes.length) {
          const box = boxes[next++];
          pending.push(ds.get(box.map(([a, b]) => s(a, b))).then((v) => v.data));
        }
      };
      for (const box of boxes) {
        readAhead();
        const values = await pending.shift()!;
        target.write_slice(box, values);
      }
      writeHdf5Attrs(target, await ds.attrs.toObject());
      out.close();
      closed = true;
      fs.renameSync(tmp, file);
    } catch (error) {
      if (!closed) out.close();
      throw error;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }, `exportHdf5 on ${JSON.stringify(meta.name)}`);
}

/** The dosna dtype of an HDF5 dataset's type (integers and IEEE floats; others are refused). */
function dtypeOf(md: { type: number; size: number; signed: boolean; littleEndian: boolean }, where: string): DType {
  const name = md.type === 0 ? `${md.signed ? '' : 'u'}int${md.size * 8}` : md.type === 1 ? `float${md.size * 8}` : '';
  if (!(DTYPES as readonly string[]).includes(name)) throw new DTypeError(`${where} holds HDF5 type class ${md.type} of ${md.size} bytes, which has no dosna dtype (${DTYPES.join(', ')})`);
  return name as DType;
}

/** Makes dataset `name` of `con` from HDF5 dataset `objPath` of `file` (see the module's comment). */
export async function importHdf5(con: Connection, file: string, objPath: string, name: string, options?: ImportHdf5Options): Promise<Dataset> {
  const given = checkOptions('importHdf5', options, ['chunkSize', 'compression', 'compressionLevel', 'shuffle']);
  if (typeof file !== 'string' || !fs.existsSync(file)) throw new DosnaError(`importHdf5: no such file ${JSON.stringify(file)}`);
  const segments = checkObjectPath(objPath, 'importHdf5: path');
  const where = `${file}:/${segments.join('/')}`;
  const { lib } = await loadH5();
  const source = new lib.File(file, 'r');
  try {
    const found = source.get(`/${segments.join('/')}`);
    if (!(found instanceof lib.Dataset)) throw new DosnaError(`importHdf5: ${where} is ${found ? 'not a dataset' : 'not there'}`);
    const md = found.metadata as unknown as { type: number; size: number; signed: boolean; littleEndian: boolean; shape: number[] | null; chunks: number[] | null };
    const dtype = dtypeOf(md, where);
    const shape = md.shape ?? [];
    if (shape.length === 0) throw new DosnaError(`importHdf5: ${where} is a scalar; dosna datasets have at least one axis`);
    const filters = found.filters.map((f) => f.id);
    const fromFile = filters.includes(1) ? { compression: 'gzip' as const, compressionLevel: found.filters.find((f) => f.id === 1)?.cd_values?.[0] ?? 4, shuffle: filters.includes(2) } : {};
    const codec = given.compression !== undefined || given.compressionLevel !== undefined || given.shuffle !== undefined
      ? { compression: given.compression, compressionLevel: given.compressionLevel, shuffle: given.shuffle }
      : fromFile;
    // HDF5 attributes named as DosNa's own metadata (shape, dtype, ...) stay behind: dosna keeps those itself.
    const attrs = readHdf5Attrs(source.file_id, DATASET_METADATA_NAMES, `/${segments.join('/')}`);
    const ds = await con.createDataset(name, { shape, dtype, ...(given.chunkSize ?? md.chunks ? { chunkSize: given.chunkSize ?? md.chunks! } : {}), ...codec });
    try {
      await con.session.onRoot(async () => {
        const pending: Promise<void>[] = [];
        for (const box of chunkBoxes(shape, ds.chunkSize)) {
          const values = found.slice(box) as unknown as TypedArray;
          pending.push(ds.set(box.map(([a, b]) => s(a, b)), ndarray(values, box.map(([a, b]) => b - a))));
          if (pending.length >= IN_FLIGHT) await pending.shift();
        }
        await Promise.all(pending);
        if (Object.keys(attrs).length > 0) await ds.attrs.update(attrs);
        await ds.flush();
      }, `importHdf5 into ${JSON.stringify(name)}`);
    } catch (error) {
      await con.delDataset(name).catch(() => {});
      throw error;
    }
    return ds;
  } finally {
    source.close();
  }
}
