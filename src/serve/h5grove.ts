/**
 * The h5grove 4.0 API over one dosna connection, so that H5Web's `H5GroveProvider` browses its
 * groups and datasets as if they were one HDF5 file: `/meta`, `/attr`, `/data`, `/paths` and
 * `/stats`, with h5grove's JSON shapes (the entity `kind`, HDF5 `type` objects, attribute
 * metadata, full metadata of a group's children) and its error messages. This module answers
 * requests; server.ts does HTTP.
 */
import { IndexError, InvalidNameError, DatasetNotFoundError, GroupNotFoundError } from '../errors.js';
import type { Connection } from '../connection.js';
import type { Dataset } from '../dataset/index.js';
import { bytesPerElement, type DType, type TypedArray } from '../dtypes.js';
import type { AttrValue, Attrs } from '../attrs.js';
import { normalizeIndex, product, squeezedShape } from '../slicing.js';
import { parseSelection, SelectionSyntaxError } from './selection.js';

/** An answer with an HTTP status other than 200, sent as h5grove's `{ "message": ... }`. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** An HDF5 datatype as h5grove describes it (`class` 0 integer, 1 float, 3 string, 8 enum). */
export interface H5Type {
  class: number;
  dtype: string;
  size: number;
  order?: number;
  sign?: number;
  cset?: number;
  strpad?: number;
  vlen?: boolean;
  members?: Record<string, number>;
  base?: H5Type;
}

/** Metadata of one attribute: never its value (that is `/attr`). */
export interface AttributeMeta {
  name: string;
  shape: number[];
  type: H5Type;
}

export interface DatasetMetaResponse {
  kind: 'dataset';
  name: string;
  attributes: AttributeMeta[];
  shape: number[];
  type: H5Type;
  chunks: number[];
  filters: { id: number; name: string }[] | null;
}

export interface GroupMetaResponse {
  kind: 'group';
  name: string;
  attributes: AttributeMeta[];
  children?: (DatasetMetaResponse | GroupMetaResponse)[];
}

/** A body and its content type. */
export interface Payload {
  body: Buffer | string;
  contentType: string;
  /** Set for downloads (`format=npy`, `csv`). */
  filename?: string;
}

const NUMPY_CODES: Record<DType, string> = {
  int8: '|i1', uint8: '|u1', int16: '<i2', uint16: '<u2', int32: '<i4', uint32: '<u4',
  int64: '<i8', uint64: '<u8', float32: '<f4', float64: '<f8',
};

/** The h5grove type of a dataset dtype (all of dosna's are little-endian numbers). */
export function h5Type(dtype: DType): H5Type {
  const size = bytesPerElement(dtype);
  if (dtype.startsWith('float')) return { class: 1, dtype: NUMPY_CODES[dtype], size, order: 0 };
  return { class: 0, dtype: NUMPY_CODES[dtype], size, order: 0, sign: dtype.startsWith('u') ? 0 : 1 };
}

const STRING_TYPE: H5Type = { class: 3, dtype: '|O', size: 8, cset: 1, strpad: 0, vlen: true };
const BOOL_TYPE: H5Type = { class: 8, dtype: '|b1', size: 1, members: { FALSE: 0, TRUE: 1 }, base: { class: 0, dtype: '|i1', size: 1, order: 0, sign: 1 } };

/**
 * An attribute's shape and type, as the HDF5 export writes it (src/backends/hdf5/attributes.ts):
 * strings and JSON values as UTF-8 strings, whole numbers as int64, others as float64, bigints
 * as (u)int64, typed arrays with their dtype; but booleans as h5py's (an enum H5Web shows as a
 * boolean), where the export keeps them as JSON text.
 */
export function attributeMeta(name: string, value: AttrValue): AttributeMeta {
  if (typeof value === 'string') return { name, shape: [], type: STRING_TYPE };
  if (typeof value === 'boolean') return { name, shape: [], type: BOOL_TYPE };
  if (typeof value === 'number') return { name, shape: [], type: h5Type(Number.isSafeInteger(value) && !Object.is(value, -0) ? 'int64' : 'float64') };
  if (typeof value === 'bigint') return { name, shape: [], type: h5Type(value >= 2n ** 63n ? 'uint64' : 'int64') };
  if (ArrayBuffer.isView(value)) {
    const array = value as TypedArray;
    return { name, shape: [array.length], type: h5Type(dtypeName(array)) };
  }
  return { name, shape: [], type: STRING_TYPE };
}

function dtypeName(array: TypedArray): DType {
  const names: Record<string, DType> = {
    Int8Array: 'int8', Uint8Array: 'uint8', Int16Array: 'int16', Uint16Array: 'uint16', Int32Array: 'int32', Uint32Array: 'uint32',
    BigInt64Array: 'int64', BigUint64Array: 'uint64', Float32Array: 'float32', Float64Array: 'float64',
  };
  return names[array.constructor.name];
}

/**
 * JSON text of a value as h5grove's encoder writes it: NaN and infinities as null, 64-bit
 * integers with all their digits, typed arrays as lists, JSON attributes as their JSON text (a
 * string, as the HDF5 export stores them).
 */
export function toJson(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'null';
  if (ArrayBuffer.isView(value)) {
    const items: string[] = [];
    for (const item of value as unknown as Iterable<number | bigint>) items.push(toJson(item));
    return `[${items.join(',')}]`;
  }
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** An attribute's value as `/attr` sends it: JSON values (other than strings and booleans) as their JSON text. */
function attributeValue(value: AttrValue): unknown {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) return JSON.stringify(value);
  return value;
}

const FILTERS = { shuffle: { id: 2, name: 'shuffle' }, gzip: { id: 1, name: 'deflate' }, zstd: { id: 32015, name: 'zstd' }, lz4: { id: 32004, name: 'lz4' } };

/** Query parameters of one request (repeated keys as arrays). */
export type Query = Record<string, string | string[] | undefined>;

const one = (query: Query, key: string): string | undefined => {
  const value = query[key];
  if (Array.isArray(value)) {
    if (value.length > 1) throw new HttpError(422, `query parameter ${key} is given ${value.length} times`);
    return value[0];
  }
  return value;
};

const QUERY_KEYS: Record<string, readonly string[]> = {
  meta: ['file', 'path', 'resolve_links'],
  attr: ['file', 'path', 'attr_keys'],
  data: ['file', 'path', 'selection', 'format', 'dtype', 'flatten'],
  paths: ['file', 'path', 'resolve_links'],
  stats: ['file', 'path', 'selection'],
};

/** The h5grove endpoints over one connection, shown as the file named `fileName`. */
export class H5GroveApi {
  constructor(
    private readonly con: Connection,
    /** The `file` every request must name: the connection's name. */
    readonly fileName: string,
    /** The largest selection `/data` and `/stats` read, in bytes. */
    private readonly maxBytes: number,
  ) {}

  /** Answers endpoint `endpoint` (`meta`, `attr`, `data`, `paths`, `stats`). */
  async handle(endpoint: string, query: Query, signal: AbortSignal): Promise<Payload> {
    const known = QUERY_KEYS[endpoint];
    if (!known) throw new HttpError(404, `no endpoint /${endpoint}: this server speaks h5grove's /meta, /attr, /data, /paths and /stats`);
    const unknown = Object.keys(query).filter((k) => !known.includes(k) && k !== 'token');
    if (unknown.length > 0) throw new HttpError(422, `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} for /${endpoint} (known: ${known.join(', ')})`);
    const file = one(query, 'file');
    if (file === undefined) throw new HttpError(422, 'the query parameter file is required (the connection\'s name)');
    if (file !== this.fileName) throw new HttpError(404, `File not found! This server serves ${JSON.stringify(this.fileName)}, not ${JSON.stringify(file)}`);
    const path = one(query, 'path') ?? '/';
    const resolveLinks = one(query, 'resolve_links');
    if (resolveLinks !== undefined && !['none', 'only_valid', 'all', 'true', 'false'].includes(resolveLinks.toLowerCase())) {
      throw new HttpError(422, `resolve_links must be none, only_valid or all, got ${JSON.stringify(resolveLinks)}`);
    }
    const json = (value: unknown): Payload => ({ body: toJson(value), contentType: 'application/json' });
    switch (endpoint) {
      case 'meta': return json(await this.meta(path));
      case 'attr': return json(await this.attr(path, query.attr_keys));
      case 'paths': return json(await this.paths(path));
      case 'stats': return json(await this.stats(path, one(query, 'selection'), signal));
      default: return this.data(path, query, signal);
    }
  }

  /** A path's entity: a dataset, a group, or a 404 in h5grove's words. */
  private async entity(path: string): Promise<{ kind: 'dataset'; ds: Dataset } | { kind: 'group'; path: string }> {
    const clean = path.replace(/^\/+|\/+$/g, '');
    const notFound = () => new HttpError(404, `${path} is not a valid path in ${this.fileName}`);
    if (clean === '') return { kind: 'group', path: '' };
    try {
      if (await this.con.hasGroup(clean)) return { kind: 'group', path: clean };
      return { kind: 'dataset', ds: await this.con.getDataset(clean) };
    } catch (error) {
      if (error instanceof DatasetNotFoundError || error instanceof GroupNotFoundError || error instanceof InvalidNameError) throw notFound();
      throw error;
    }
  }

  private async attrsOf(path: string): Promise<Attrs> {
    const entity = await this.entity(path);
    return entity.kind === 'dataset' ? entity.ds.attrs.toObject() : (await this.con.getGroup(entity.path)).attrs.toObject();
  }

  private static attributes(attrs: Attrs): AttributeMeta[] {
    return Object.keys(attrs).sort().map((name) => attributeMeta(name, attrs[name]));
  }

  private static async datasetMeta(ds: Dataset): Promise<DatasetMetaResponse> {
    const compression = ds.meta.compression;
    const filters = compression ? [...(compression.shuffle ? [FILTERS.shuffle] : []), FILTERS[compression.codec]] : null;
    return {
      kind: 'dataset', name: ds.name.split('/').pop()!, attributes: H5GroveApi.attributes(await ds.attrs.toObject()),
      shape: [...ds.shape], type: h5Type(ds.dtype), chunks: [...ds.chunkSize], filters,
    };
  }

  /** `/meta`: a dataset's metadata, or a group's with its children's (datasets in full, groups without children). */
  async meta(path: string): Promise<DatasetMetaResponse | GroupMetaResponse> {
    const entity = await this.entity(path);
    if (entity.kind === 'dataset') return H5GroveApi.datasetMeta(entity.ds);
    const group = await this.con.getGroup(entity.path);
    const children = await Promise.all((await group.list()).map(async (child) => {
      const childPath = entity.path ? `${entity.path}/${child.name}` : child.name;
      if (child.kind === 'dataset') return H5GroveApi.datasetMeta(await this.con.getDataset(childPath));
      const attrs = await (await this.con.getGroup(childPath)).attrs.toObject();
      return { kind: 'group' as const, name: child.name, attributes: H5GroveApi.attributes(attrs) };
    }));
    return { kind: 'group', name: entity.path.split('/').pop()!, attributes: H5GroveApi.attributes(await group.attrs.toObject()), children };
  }

  /** `/attr`: attribute values by name (all, or those of `attr_keys`). */
  async attr(path: string, keys: string | string[] | undefined): Promise<Record<string, unknown>> {
    const attrs = await this.attrsOf(path);
    const wanted = keys === undefined ? Object.keys(attrs).sort() : Array.isArray(keys) ? keys : [keys];
    const missing = wanted.filter((k) => !(k in attrs));
    if (missing.length > 0) throw new HttpError(404, `${path} has no attribute ${missing.map((k) => JSON.stringify(k)).join(', ')}`);
    return Object.fromEntries(wanted.map((k) => [k, attributeValue(attrs[k])]));
  }

  /** `/paths`: the path and every path below it, depth first, as h5py's `visit` lists them. */
  async paths(path: string): Promise<string[]> {
    const entity = await this.entity(path);
    if (entity.kind === 'dataset') throw new HttpError(422, `${path} is a dataset; /paths lists the paths below a group`);
    const out = [entity.path === '' ? '/' : `/${entity.path}`];
    const walk = async (at: string) => {
      for (const child of await this.con.list(at)) {
        const full = at ? `${at}/${child.name}` : child.name;
        out.push(`/${full}`);
        if (child.kind === 'group') await walk(full);
      }
    };
    await walk(entity.path);
    return out;
  }

  /**
   * Reads a selection of a dataset within the size limit (an eighth of it for answers written
   * as text, which take several times the bytes); selection errors are 422s.
   */
  private async read(
    path: string, selection: string | undefined, signal: AbortSignal, asText = false, checkShape?: (shape: readonly number[]) => void,
  ): Promise<{ ds: Dataset; values: TypedArray; shape: number[] }> {
    const entity = await this.entity(path);
    if (entity.kind === 'group') throw new HttpError(422, `${path} is a group; /data and /stats read datasets`);
    const ds = entity.ds;
    let shape: number[];
    let index;
    try {
      index = parseSelection(selection, ds.ndim);
      shape = squeezedShape(normalizeIndex(index, ds.shape));
    } catch (error) {
      if (error instanceof SelectionSyntaxError || error instanceof IndexError) throw new HttpError(422, `${error.message} (dataset ${path} has shape [${ds.shape.join(', ')}])`);
      throw error;
    }
    checkShape?.(shape);
    const bytes = product(shape) * bytesPerElement(ds.dtype);
    const limit = asText ? Math.floor(this.maxBytes / 8) : this.maxBytes;
    if (bytes > limit) {
      const how = asText ? ` for an answer as text (an eighth of --max-bytes ${this.maxBytes}); format=bin takes more` : ' (dosna serve --max-bytes)';
      throw new HttpError(413, `the selection ${selection ?? '(all)'} of ${path} is ${bytes} bytes, over this server's limit of ${limit}${how}; select a slice`);
    }
    const array = await ds.get(index, { signal });
    return { ds, values: array.data as TypedArray, shape };
  }

  /** `/data`: a selection as JSON (nested lists, or flat), raw little-endian bytes (`bin`), a `.npy` file or CSV. */
  async data(path: string, query: Query, signal: AbortSignal): Promise<Payload> {
    const format = one(query, 'format') ?? 'json';
    const dtype = one(query, 'dtype') ?? 'origin';
    const flatten = one(query, 'flatten');
    if (!['json', 'bin', 'npy', 'csv'].includes(format)) {
      throw new HttpError(422, `format must be json, bin, npy or csv, got ${JSON.stringify(format)}${format === 'tiff' ? ' (dosna serve writes no TIFF)' : ''}`);
    }
    // dtype=safe asks for types a browser's typed arrays hold: every dosna dtype already is one.
    if (dtype !== 'origin' && dtype !== 'safe') throw new HttpError(422, `dtype must be origin or safe, got ${JSON.stringify(dtype)}`);
    if (flatten !== undefined && !['true', 'false'].includes(flatten.toLowerCase())) throw new HttpError(422, `flatten must be true or false, got ${JSON.stringify(flatten)}`);
    const csvShape = (shape: readonly number[]) => {
      if (shape.length === 0 || shape.length > 2) throw new HttpError(422, `CSV holds 1-D or 2-D selections, not ${shape.length}-D: select a slice`);
    };
    const { ds, values, shape } = await this.read(path, one(query, 'selection'), signal, format === 'json' || format === 'csv', format === 'csv' ? csvShape : undefined);
    const bytes = () => Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    switch (format) {
      case 'bin': return { body: bytes(), contentType: 'application/octet-stream' };
      case 'npy': return { body: Buffer.concat([npyHeader(ds.dtype, shape), bytes()]), contentType: 'application/octet-stream', filename: 'data.npy' };
      case 'csv': return { body: toCsv(values, shape), contentType: 'text/csv', filename: 'data.csv' };
      default: {
        const flat = flatten?.toLowerCase() === 'true' || shape.length <= 1;
        return { body: flat ? (shape.length === 0 ? toJson(values[0]) : toJson(values)) : nestedJson(values, shape), contentType: 'application/json' };
      }
    }
  }

  /** `/stats`: h5grove's statistics of a selection's finite values. */
  async stats(path: string, selection: string | undefined, signal: AbortSignal): Promise<Record<string, number | null>> {
    const { values } = await this.read(path, selection, signal);
    let [count, sum, min, max, positiveMin, strictPositiveMin] = [0, 0, Infinity, -Infinity, Infinity, Infinity];
    for (let i = 0; i < values.length; i++) {
      const v = Number(values[i]);
      if (!Number.isFinite(v)) continue;
      count++; sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
      if (v >= 0 && v < positiveMin) positiveMin = v;
      if (v > 0 && v < strictPositiveMin) strictPositiveMin = v;
    }
    const mean = count > 0 ? sum / count : NaN;
    let squares = 0;
    for (let i = 0; i < values.length; i++) {
      const v = Number(values[i]);
      if (Number.isFinite(v)) squares += (v - mean) ** 2;
    }
    const finite = (v: number) => (Number.isFinite(v) ? v : null);
    return {
      strict_positive_min: finite(strictPositiveMin), positive_min: finite(positiveMin), min: finite(min), max: finite(max),
      mean: finite(mean), std: count > 0 ? Math.sqrt(squares / count) : null,
    };
  }
}

/** Nested JSON lists of a C-order array. */
function nestedJson(values: TypedArray, shape: readonly number[]): string {
  const parts: string[] = [];
  let offset = 0;
  const emit = (axis: number) => {
    if (axis === shape.length - 1) {
      const items: string[] = [];
      for (let i = 0; i < shape[axis]; i++) items.push(toJson(values[offset++]));
      parts.push(`[${items.join(',')}]`);
      return;
    }
    parts.push('[');
    for (let i = 0; i < shape[axis]; i++) {
      if (i > 0) parts.push(',');
      emit(axis + 1);
    }
    parts.push(']');
  };
  emit(0);
  return parts.join('');
}

/** A NumPy `.npy` (format 1.0) header for a C-order array. */
export function npyHeader(dtype: DType, shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${NUMPY_CODES[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const prefix = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1')]);
}

/** CSV of a 1-D (one column) or 2-D array, as NumPy's `savetxt`. */
function toCsv(values: TypedArray, shape: readonly number[]): string {
  const cols = shape.length === 2 ? shape[1] : 1;
  const lines: string[] = [];
  for (let r = 0; r < values.length / cols; r++) {
    const row: string[] = [];
    for (let c = 0; c < cols; c++) row.push(String(values[r * cols + c]));
    lines.push(row.join(','));
  }
  return `${lines.join('\n')}\n`;
}
