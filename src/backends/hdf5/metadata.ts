/**
 * `dataset.h5`: a dataset's metadata as DosNa keeps it, root attributes of an HDF5 file
 * (shape, dtype, fillvalue, chunk_grid, chunk_size), read and written through h5wasm so Python
 * DosNa and h5py read it. dosna adds `dosna_uid` (the dataset's identity) and, for compressed
 * datasets, `compression` (gzip, zstd, lz4), `compression_level` and `dosna_shuffle`; other
 * tools ignore them.
 */
import * as fs from 'node:fs';
import { castScalar, fromNumpyTypeString, isBigIntDType, toNumpyTypeString, type DType, type Scalar } from '../../dtypes.js';
import { CorruptChunkError, DosnaError, OptionError } from '../../errors.js';
import { checkOptions } from '../../options.js';
import { compressionFrom, type Compression } from '../../codecs/index.js';
import type { ChunkIndex, DatasetMeta } from '../../store.js';
import { DATASET_METADATA_NAMES, type Attrs } from '../../attrs.js';
import { readHdf5Attrs, writeHdf5Attrs } from './attributes.js';
import { h5, H5WASM_CODES, hdf5Reason, withHdf5File } from './h5lib.js';

export const METADATA_FILE = 'dataset.h5';
/** The root attribute that holds the dataset's identity. */
export const UID_ATTRIBUTE = 'dosna_uid';
export const CHUNK_RE = /^chunk_(\d+(?:_\d+)*)\.h5$/;

/** The root attribute that says a compressed dataset's chunks are shuffled (1) or not (0). */
export const SHUFFLE_ATTRIBUTE = 'dosna_shuffle';

/** The hdf5 backend takes no dataset options of its own (compression is `createDataset`'s). */
export function checkDatasetOptions(name: string, options: Readonly<Record<string, unknown>> | undefined): void {
  if (!options) return;
  if ('compression' in options || 'compressionLevel' in options) {
    throw new OptionError(`dataset ${JSON.stringify(name)}: give compression to createDataset itself ({ compression: 'gzip', compressionLevel, shuffle }), not in options`);
  }
  checkOptions(`dataset ${JSON.stringify(name)} on the hdf5 backend`, options, []);
}

function int64Attr(values: readonly number[]): BigInt64Array {
  return BigInt64Array.from(values, (v) => BigInt(v));
}

function typedScalar(dtype: DType, value: Scalar) {
  switch (dtype) {
    case 'int8': return Int8Array.of(Number(value));
    case 'uint8': return Uint8Array.of(Number(value));
    case 'int16': return Int16Array.of(Number(value));
    case 'uint16': return Uint16Array.of(Number(value));
    case 'int32': return Int32Array.of(Number(value));
    case 'uint32': return Uint32Array.of(Number(value));
    case 'int64': return BigInt64Array.of(BigInt(value));
    case 'uint64': return BigUint64Array.of(BigInt(value));
    case 'float32': return Float32Array.of(Number(value));
    case 'float64': return Float64Array.of(Number(value));
  }
}

/** The file that marks a folder as a group, holding the group's attributes (the root's too). */
export const GROUP_FILE = '.dosna-group.h5';

/** Writes a group file (a temporary name) holding `attrs`. */
export function writeGroupFile(file: string, attrs: Attrs): void {
  const { lib } = h5();
  withHdf5File(file, 'create', (id) => writeHdf5Attrs(new lib.Group(id, '/'), attrs));
}

/** Reads a group file's attributes; `undefined` when it does not exist. */
export function readGroupFile(file: string): Attrs | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return withHdf5File(file, 'read', (id) => readHdf5Attrs(id, []));
  } catch (error) {
    if (!fs.existsSync(file)) return undefined;
    throw new CorruptChunkError(`cannot read group file ${file}: ${hdf5Reason(error)}`, file, { cause: error });
  }
}

/** Writes dataset.h5 to `file` (a temporary name), with the dataset's attributes. */
export function writeMetaFile(file: string, meta: DatasetMeta, attrs: Attrs = {}): void {
  const compression = meta.compression;
  const { lib } = h5();
  withHdf5File(file, 'create', (id) => {
    const root = new lib.Group(id, '/');
    const grid = meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a]));
    root.create_attribute('shape', int64Attr(meta.shape), [meta.shape.length], '<q');
    root.create_attribute('dtype', toNumpyTypeString(meta.dtype));
    root.create_attribute('fillvalue', typedScalar(meta.dtype, meta.fillValue), [], H5WASM_CODES[meta.dtype]);
    root.create_attribute('chunk_grid', int64Attr(grid), [grid.length], '<q');
    root.create_attribute('chunk_size', int64Attr(meta.chunkSize), [meta.chunkSize.length], '<q');
    if (meta.uid) root.create_attribute(UID_ATTRIBUTE, meta.uid);
    if (compression) {
      root.create_attribute('compression', compression.codec);
      root.create_attribute('compression_level', BigInt64Array.of(BigInt(compression.level)), [], '<q');
      root.create_attribute(SHUFFLE_ATTRIBUTE, BigInt64Array.of(compression.shuffle ? 1n : 0n), [], '<q');
    }
    writeHdf5Attrs(root, attrs);
  });
}

function attrNumbers(value: unknown, what: string, file: string): number[] {
  const list: unknown[] = typeof value === 'number' || typeof value === 'bigint' ? [value]
    : ArrayBuffer.isView(value) || Array.isArray(value) ? [...(value as ArrayLike<unknown> & Iterable<unknown>)] : [];
  if (list.length === 0 && !(ArrayBuffer.isView(value) || Array.isArray(value))) {
    throw new CorruptChunkError(`${file}: attribute ${what} is not an integer array`, file);
  }
  return list.map((v) => {
    const n = Number(v);
    if ((typeof v !== 'number' && typeof v !== 'bigint') || !Number.isSafeInteger(n) || n < 0) {
      throw new CorruptChunkError(`${file}: attribute ${what} holds ${String(v)}, not a non-negative integer`, file);
    }
    return n;
  });
}

/** Reads dataset.h5; `undefined` when it does not exist. */
export function readMetaFile(file: string, name: string): DatasetMeta | undefined {
  return readDatasetFile(file, name, false)?.meta;
}

/** Reads dataset.h5, the metadata and (with `withAttrs`) the dataset's attributes; `undefined` when it does not exist. */
export function readDatasetFile(file: string, name: string, withAttrs: boolean): { meta: DatasetMeta; attrs: Attrs } | undefined {
  if (!fs.existsSync(file)) return undefined;
  const { lib } = h5();
  let raw: Record<string, unknown>;
  let attrs: Attrs = {};
  try {
    raw = withHdf5File(file, 'read', (id, M) => {
      const root = new lib.Group(id, '/');
      const names = new Set(M.get_attribute_names(id, '/'));
      const out: Record<string, unknown> = {};
      for (const key of [...DATASET_METADATA_NAMES, UID_ATTRIBUTE, SHUFFLE_ATTRIBUTE]) {
        if (names.has(key)) out[key] = root.get_attribute(key, false);
      }
      if (withAttrs) attrs = readHdf5Attrs(id, DATASET_METADATA_NAMES);
      return out;
    });
  } catch (error) {
    if (!fs.existsSync(file)) return undefined;
    if (error instanceof DosnaError) throw error;
    throw new CorruptChunkError(`cannot read dataset metadata file ${file}: ${hdf5Reason(error)}`, file, { cause: error });
  }
  for (const key of ['shape', 'dtype', 'fillvalue', 'chunk_size']) {
    if (raw[key] === undefined || raw[key] === null) throw new CorruptChunkError(`dataset metadata file ${file} has no ${key} attribute`, file);
  }
  const dtypeText = raw.dtype instanceof Uint8Array ? new TextDecoder().decode(raw.dtype) : raw.dtype;
  if (typeof dtypeText !== 'string') throw new CorruptChunkError(`${file}: attribute dtype is not a string`, file);
  let dtype: DType;
  try {
    dtype = fromNumpyTypeString(dtypeText.replace(/\0+$/, '').trim());
  } catch (error) {
    throw new CorruptChunkError(`${file}: ${(error as Error).message}`, file, { cause: error });
  }
  const shape = attrNumbers(raw.shape, 'shape', file);
  const chunkSize = attrNumbers(raw.chunk_size, 'chunk_size', file);
  if (chunkSize.length !== shape.length || chunkSize.some((n) => n < 1)) {
    throw new CorruptChunkError(`${file}: chunk_size ${JSON.stringify(chunkSize)} does not fit shape ${JSON.stringify(shape)}`, file);
  }
  if (raw.chunk_grid !== undefined && raw.chunk_grid !== null) {
    const grid = attrNumbers(raw.chunk_grid, 'chunk_grid', file);
    const expected = shape.map((n, a) => Math.ceil(n / chunkSize[a]));
    if (grid.join() !== expected.join()) {
      throw new CorruptChunkError(`${file}: chunk_grid ${JSON.stringify(grid)} does not match shape ${JSON.stringify(shape)} and chunk_size ${JSON.stringify(chunkSize)}`, file);
    }
  }
  let fill = raw.fillvalue;
  if (ArrayBuffer.isView(fill) || Array.isArray(fill)) fill = (fill as ArrayLike<unknown>)[0];
  let fillValue: Scalar;
  try {
    if (typeof fill !== 'number' && typeof fill !== 'bigint') throw new DosnaError(`fillvalue is ${typeof fill}`);
    // A float fill value for an integer dtype (an older writer) is taken if it is integral.
    fillValue = castScalar(dtype, isBigIntDType(dtype) && typeof fill === 'number' && Number.isInteger(fill) ? BigInt(fill) : fill);
  } catch (error) {
    throw new CorruptChunkError(`${file}: attribute fillvalue cannot be a ${dtype} value: ${(error as Error).message}`, file, { cause: error });
  }
  let compression: Compression | undefined;
  if (raw.compression !== undefined && raw.compression !== null) {
    const text = (v: unknown) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v);
    const level = raw.compression_level;
    try {
      compression = compressionFrom({
        codec: text(raw.compression),
        level: level === undefined || level === null ? undefined : Number(ArrayBuffer.isView(level) ? (level as unknown as ArrayLike<unknown>)[0] : level),
        shuffle: Number(raw[SHUFFLE_ATTRIBUTE] ?? 0) === 1,
      });
    } catch (error) {
      throw new CorruptChunkError(`${file}: ${(error as Error).message}`, file, { cause: error });
    }
  }
  const uidValue = raw[UID_ATTRIBUTE] instanceof Uint8Array ? new TextDecoder().decode(raw[UID_ATTRIBUTE] as Uint8Array) : raw[UID_ATTRIBUTE];
  const uid = typeof uidValue === 'string' ? uidValue.replace(/\0+$/, '') : '';
  return { meta: { name, shape, dtype, chunkSize, fillValue, uid, ...(compression ? { compression } : {}) }, attrs };
}

export function chunkFileName(index: ChunkIndex): string {
  return `chunk_${index.join('_')}.h5`;
}
