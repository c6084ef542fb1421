/**
 * The `hdf5` backend: DosNa's folder layout of HDF5 files, read and written through h5wasm
 * (the HDF5 C library compiled to WebAssembly), so folders move between Python DosNa, h5py
 * and this library.
 *
 * ```text
 * <directory>/<connection>/                 the connection: a folder
 *   <dataset>/dataset.h5                    root attributes shape, dtype, fillvalue, chunk_grid, chunk_size
 *   <dataset>/chunk_<i>_<j>_<k>.h5          one HDF5 dataset /data of the full chunk shape
 * ```
 *
 * Every file is written beside its final name (`<file>.tmp-<pid>-<random>`) and renamed over
 * it, so readers and crashed writers never leave a torn file behind. h5wasm is synchronous
 * and its heap is capped at 2 GiB: each call moves one chunk, and files are closed at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { bytesPerElement, castScalar, fromNumpyTypeString, isBigIntDType, toNumpyTypeString, type DType, type Scalar } from '../dtypes.js';
import { ConnectionError, CorruptChunkError, DatasetExistsError, DatasetNotFoundError, DosnaError, InvalidNameError } from '../errors.js';
import { checkName } from '../names.js';
import type { Backend, ChunkIndex, DatasetMeta, Store } from '../store.js';
import { readTemplated, readTemplatedInto, renameFile, writeFileParts, type Template } from './hdf5-raw.js';

/** A chunk or metadata file that exists but cannot be read as what DosNa stores there. */

export const METADATA_FILE = 'dataset.h5';
const CHUNK_RE = /^chunk_(\d+(?:_\d+)*)\.h5$/;
/** Largest chunk moved through the wasm heap (h5wasm caps the heap at 2 GiB; HDF5 needs room too). */
export const MAX_CHUNK_BYTES = 1024 * 1024 * 1024;
/** The scratch buffer kept in the heap between calls stays at most this big; larger chunks get their own allocation. */
const SCRATCH_LIMIT = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// h5wasm, loaded once per thread on first use.

/** The parts of h5wasm's emscripten module this backend uses (its own d.ts types them loosely). */
interface H5Module {
  open(filename: string, mode: number, trackOrder: boolean, libverLow: number, libverHigh: number): bigint;
  close_file(fileId: bigint): number;
  create_dataset(fileId: bigint, name: string, dataPtr: bigint, metadata: unknown): number;
  get_dataset_metadata(fileId: bigint, name: string): H5Metadata;
  get_dataset_data(fileId: bigint, name: string, count: bigint[] | null, offset: bigint[] | null, strides: bigint[] | null, ptr: bigint): number;
  get_attribute_names(fileId: bigint, path: string): string[];
  get_attribute_metadata(fileId: bigint, path: string, name: string): H5Metadata;
  activate_throwing_error_handler(): number;
  deactivate_throwing_error_handler(): number;
  _malloc(n: number): number;
  _free(ptr: number): void;
  HEAPU8: Uint8Array;
  MAXIMUM_MEMORY: number;
  H5F_ACC_RDONLY: number;
  H5F_ACC_TRUNC: number;
  FS: { streams: ({ fd: number } | null | undefined)[]; close(stream: unknown): void };
}

interface H5Metadata {
  type: number;
  size: number;
  signed: boolean;
  vlen: boolean;
  littleEndian: boolean;
  shape: number[] | null;
}

type H5Lib = typeof import('h5wasm/node');

interface H5 {
  lib: H5Lib;
  M: H5Module;
}

const H5T_INTEGER = 0;
const H5T_FLOAT = 1;
const H5T_STRING = 3;

let loading: Promise<H5> | undefined;
let loaded: H5 | undefined;

async function loadH5(): Promise<H5> {
  loading ??= (async () => {
    const lib = await import('h5wasm/node');
    const M = (await lib.ready) as unknown as H5Module;
    loaded = { lib, M };
    return loaded;
  })();
  return loading;
}

function h5(): H5 {
  if (!loaded) throw new ConnectionError('the hdf5 backend is not connected; call connect() first');
  return loaded;
}

/** h5wasm's format letters (struct module codes): `<i8` would mean int32 to it. */
const H5WASM_CODES: Record<DType, string> = {
  int8: '<b', uint8: '<B', int16: '<h', uint16: '<H', int32: '<i', uint32: '<I',
  int64: '<q', uint64: '<Q', float32: '<f', float64: '<d',
};

/**
 * Runs HDF5 calls with h5wasm's throwing error handler, so every HDF5 failure becomes an
 * exception instead of a line on stderr and an invalid id. On failure it closes what the
 * failed calls left open: the file (`cleanup`) and the temporary files h5wasm's error handler
 * opens and, since it throws, never closes.
 */
function guarded<T>(fn: (M: H5Module) => T, cleanup?: (M: H5Module) => void): T {
  const { M } = h5();
  const before = M.FS.streams.length;
  const open = new Set<number>();
  M.FS.streams.forEach((s, fd) => { if (s) open.add(fd); });
  M.activate_throwing_error_handler();
  try {
    return fn(M);
  } catch (error) {
    try { cleanup?.(M); } catch { /* already failing */ }
    const streams = M.FS.streams;
    for (let fd = 0; fd < Math.max(before, streams.length); fd++) {
      const s = streams[fd];
      if (s && !open.has(fd)) {
        try { M.FS.close(s); } catch { /* best effort */ }
      }
    }
    throw error;
  } finally {
    M.deactivate_throwing_error_handler();
  }
}

/**
 * Opens `file` through HDF5 (to read, or to create it anew), runs `use` on it and closes it,
 * checking the id and the close status: h5wasm reports those failures only by them.
 */
function withHdf5File<T>(file: string, mode: 'read' | 'create', use: (id: bigint, M: H5Module) => T): T {
  const { M } = h5();
  let id = -1n;
  return guarded(() => {
    id = M.open(file, mode === 'read' ? M.H5F_ACC_RDONLY : M.H5F_ACC_TRUNC, false, -1, -1);
    if (id < 0n) throw new Error(`HDF5 returned an invalid file id for ${file}`);
    const result = use(id, M);
    const closed = M.close_file(id);
    id = -1n;
    if (closed < 0) throw new Error(`closing ${file} failed (status ${closed})`);
    return result;
  }, (M) => { if (id >= 0n) M.close_file(id); });
}

/** First line of an HDF5 error stack that says what went wrong (the innermost `minor:`/message). */
function hdf5Reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const located = lines.filter((l) => /^#\d+:/.test(l));
  const last = located.at(-1);
  if (last) {
    const m = /\): (.*)$/.exec(last);
    return m ? m[1] : last;
  }
  return lines[0] ?? 'unknown HDF5 error';
}

let scratch: { ptr: number; size: number } | undefined;

/** A heap buffer of at least `n` bytes: the kept scratch buffer when small enough. */
function heapBuffer(M: H5Module, n: number): { ptr: number; release(): void } {
  if (n > MAX_CHUNK_BYTES) throw new DosnaError(`a chunk of ${n} bytes is larger than the hdf5 backend's limit of ${MAX_CHUNK_BYTES} bytes (h5wasm's heap is capped at ${M.MAXIMUM_MEMORY} bytes); use smaller chunks`);
  if (n <= SCRATCH_LIMIT) {
    if (!scratch || scratch.size < n) {
      if (scratch) M._free(scratch.ptr);
      scratch = undefined;
      const size = Math.max(n, 1024 * 1024);
      const ptr = M._malloc(size);
      if (!ptr) throw new DosnaError(`h5wasm could not allocate ${size} bytes`);
      scratch = { ptr, size };
    }
    return { ptr: scratch.ptr, release() {} };
  }
  const ptr = M._malloc(n);
  if (!ptr) throw new DosnaError(`h5wasm could not allocate ${n} bytes for a chunk (its heap is capped at ${M.MAXIMUM_MEMORY} bytes); use smaller chunks`);
  return { ptr, release: () => M._free(ptr) };
}

// ---------------------------------------------------------------------------------------------
// Files.

/** Unique per process and thread (a random tag) and per call (a counter): no random bytes per write. */
const TMP_TAG = `${process.pid}-${randomBytes(4).toString('hex')}`;
let tmpCounter = 0;
const tmpName = (file: string) => `${file}.tmp-${TMP_TAG}-${(tmpCounter++).toString(36)}`;

function product(shape: readonly number[]): number {
  let n = 1;
  for (const x of shape) n *= x;
  return n;
}

interface Compression {
  compression: 'gzip';
  compressionLevel: number;
}

function checkDatasetOptions(name: string, options: Readonly<Record<string, unknown>> | undefined): Compression | undefined {
  if (!options) return undefined;
  const known = new Set(['compression', 'compressionLevel']);
  const unknown = Object.keys(options).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new DosnaError(`dataset ${JSON.stringify(name)}: the hdf5 backend does not know the dataset option(s) ${unknown.join(', ')}; it takes compression and compressionLevel`);
  const { compression, compressionLevel } = options;
  if (compression === undefined || compression === null || compression === 'none') {
    if (compressionLevel !== undefined) throw new DosnaError(`dataset ${JSON.stringify(name)}: compressionLevel needs compression: 'gzip'`);
    return undefined;
  }
  if (compression !== 'gzip') throw new DosnaError(`dataset ${JSON.stringify(name)}: unknown compression ${JSON.stringify(compression)}; the hdf5 backend supports 'gzip'`);
  const level = compressionLevel ?? 4;
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 9) {
    throw new DosnaError(`dataset ${JSON.stringify(name)}: compressionLevel must be an integer from 0 to 9, got ${JSON.stringify(level)}`);
  }
  return { compression, compressionLevel: level };
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

/** Writes dataset.h5 to `file` (a temporary name). */
function writeMetaFile(file: string, meta: DatasetMeta, compression: Compression | undefined): void {
  const { lib } = h5();
  withHdf5File(file, 'create', (id) => {
    const root = new lib.Group(id, '/');
    const grid = meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a]));
    root.create_attribute('shape', int64Attr(meta.shape), [meta.shape.length], '<q');
    root.create_attribute('dtype', toNumpyTypeString(meta.dtype));
    root.create_attribute('fillvalue', typedScalar(meta.dtype, meta.fillValue), [], H5WASM_CODES[meta.dtype]);
    root.create_attribute('chunk_grid', int64Attr(grid), [grid.length], '<q');
    root.create_attribute('chunk_size', int64Attr(meta.chunkSize), [meta.chunkSize.length], '<q');
    if (compression) {
      root.create_attribute('compression', compression.compression);
      root.create_attribute('compression_level', BigInt64Array.of(BigInt(compression.compressionLevel)), [], '<q');
    }
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
function readMetaFile(file: string, name: string): DatasetMeta | undefined {
  if (!fs.existsSync(file)) return undefined;
  const { lib } = h5();
  let raw: Record<string, unknown>;
  try {
    raw = withHdf5File(file, 'read', (id, M) => {
      const root = new lib.Group(id, '/');
      const names = new Set(M.get_attribute_names(id, '/'));
      const out: Record<string, unknown> = {};
      for (const key of ['shape', 'dtype', 'fillvalue', 'chunk_grid', 'chunk_size', 'compression', 'compression_level']) {
        if (names.has(key)) out[key] = root.get_attribute(key, false);
      }
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
  let options: Record<string, unknown> | undefined;
  if (raw.compression !== undefined && raw.compression !== null) {
    const level = raw.compression_level;
    options = { compression: raw.compression, ...(level !== undefined && level !== null ? { compressionLevel: Number(level) } : {}) };
  }
  return { name, shape, dtype, chunkSize, fillValue, ...(options ? { options } : {}) };
}

function chunkFileName(index: ChunkIndex): string {
  return `chunk_${index.join('_')}.h5`;
}


// ---------------------------------------------------------------------------------------------
// The fast path for uncompressed chunks.
//
// An uncompressed chunk file is HDF5's header, then the chunk's bytes (contiguous layout),
// then sometimes a trailer; for a given dtype and chunk shape only the header's timestamps
// vary. So, once per layout, HDF5 (h5wasm) writes two sample files; the bytes around the data
// become a template, with the timestamps set to 0 and the object headers' checksums redone.
// The template is checked by reading a file made from it back through HDF5. Then writing a
// chunk is one writev of template + bytes, and reading a file that matches the template
// byte for byte is one read; any other file (h5py's, gzip, a damaged one) goes through HDF5.

/** Bob Jenkins' lookup3 `hashlittle`, as HDF5 checksums its metadata (H5_checksum_lookup3). */
export function lookup3(key: Uint8Array, initval = 0): number {
  let length = key.length;
  let a = (0xdeadbeef + length + initval) >>> 0;
  let b = a;
  let c = a;
  const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  let k = 0;
  while (length > 12) {
    a = (a + (key[k] | (key[k + 1] << 8) | (key[k + 2] << 16) | (key[k + 3] << 24))) >>> 0;
    b = (b + (key[k + 4] | (key[k + 5] << 8) | (key[k + 6] << 16) | (key[k + 7] << 24))) >>> 0;
    c = (c + (key[k + 8] | (key[k + 9] << 8) | (key[k + 10] << 16) | (key[k + 11] << 24))) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c;
  const at = (i: number) => (i < length ? key[k + i] : 0);
  a = (a + (at(0) | (at(1) << 8) | (at(2) << 16) | (at(3) << 24))) >>> 0;
  b = (b + (at(4) | (at(5) << 8) | (at(6) << 16) | (at(7) << 24))) >>> 0;
  c = (c + (at(8) | (at(9) << 8) | (at(10) << 16) | (at(11) << 24))) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return c;
}

/**
 * Sets the timestamps of every version-2 object header in `bytes` to 0 and redoes their
 * checksums. Returns false when a header does not parse or its checksum does not match
 * (then the template is not used).
 */
function zeroTimestamps(bytes: Buffer): boolean {
  const sig = Buffer.from('OHDR');
  for (let at = bytes.indexOf(sig); at >= 0; at = bytes.indexOf(sig, at + 4)) {
    if (bytes[at + 4] !== 2) return false;
    const flags = bytes[at + 5];
    let p = at + 6;
    const times = flags & 0x20 ? p : -1;
    if (flags & 0x20) p += 16;
    if (flags & 0x10) p += 4;
    const width = 1 << (flags & 3);
    if (p + width > bytes.length) return false;
    const size = Number(bytes.readUIntLE(p, Math.min(width, 6)));
    const end = p + width + size; // the checksum's offset
    if (end + 4 > bytes.length) return false;
    if (lookup3(bytes.subarray(at, end)) !== bytes.readUInt32LE(end)) return false;
    if (times >= 0) {
      bytes.fill(0, times, times + 16);
      bytes.writeUInt32LE(lookup3(bytes.subarray(at, end)), end);
    }
    at = end;
  }
  return true;
}

const templates = new Map<string, Template | null>();

/** Writes an uncompressed chunk file through HDF5. */
function writeThroughHdf5(file: string, info: DatasetInfo, bytes: Uint8Array): void {
  withHdf5File(file, 'create', (id, M) => {
    const buffer = heapBuffer(M, info.bytes);
    try {
      M.HEAPU8.set(bytes, buffer.ptr);
      const status = M.create_dataset(id, '/data', BigInt(buffer.ptr), info.writeMetadata);
      if (status < 0) throw new Error(`writing /data failed (status ${status})`);
    } finally {
      buffer.release();
    }
  });
}

/** Reads /data of a chunk file through HDF5, checking its shape and type. */
function readThroughHdf5(file: string, info: DatasetInfo): Uint8Array {
  return withHdf5File(file, 'read', (id, M) => {
    const problem = mismatch(M.get_dataset_metadata(id, '/data'), info);
    if (problem) throw new CorruptChunkError(`chunk file ${file} ${problem}`, file);
    const buffer = heapBuffer(M, info.bytes);
    try {
      const status = M.get_dataset_data(id, '/data', null, null, null, BigInt(buffer.ptr));
      if (status < 0) throw new Error(`reading /data failed (status ${status})`);
      return M.HEAPU8.slice(buffer.ptr, buffer.ptr + info.bytes);
    } finally {
      buffer.release();
    }
  });
}

function makeTemplate(info: DatasetInfo): Template | null {
  if (info.compression || info.bytes === 0 || info.bytes > SCRATCH_LIMIT) return null;
  const key = `${info.dtype}:${info.chunkShape.join(',')}`;
  const known = templates.get(key);
  if (known !== undefined) return known;
  let template: Template | null = null;
  const base = path.join(os.tmpdir(), `dosna-hdf5-template-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    const one = new Uint8Array(info.bytes).fill(0x5a);
    const two = new Uint8Array(info.bytes).fill(0xa5);
    writeThroughHdf5(`${base}-1.h5`, info, one);
    writeThroughHdf5(`${base}-2.h5`, info, two);
    const a = fs.readFileSync(`${base}-1.h5`);
    const b = fs.readFileSync(`${base}-2.h5`);
    // The data is where the two files differ (after their timestamps are made equal).
    if (a.length === b.length && zeroTimestamps(a) && zeroTimestamps(b)) {
      let first = 0;
      while (first < a.length && a[first] === b[first]) first++;
      const dataEnd = first + info.bytes;
      if (dataEnd <= a.length && a.subarray(dataEnd).equals(b.subarray(dataEnd))
        && a.subarray(first, dataEnd).every((x) => x === 0x5a)) {
        const candidate = { prefix: Buffer.from(a.subarray(0, first)), suffix: Buffer.from(a.subarray(dataEnd)) };
        // Check: a file made from the template reads back through HDF5 as its data.
        const sample = new Uint8Array(info.bytes);
        for (let i = 0; i < sample.length; i++) sample[i] = (i * 131 + 7) & 255;
        fs.writeFileSync(`${base}-3.h5`, Buffer.concat([candidate.prefix, sample, candidate.suffix]));
        const back = readThroughHdf5(`${base}-3.h5`, info);
        if (Buffer.from(back).equals(Buffer.from(sample))) template = candidate;
      }
    }
  } catch {
    template = null;
  } finally {
    for (const n of [1, 2, 3]) fs.rmSync(`${base}-${n}.h5`, { force: true });
  }
  templates.set(key, template);
  return template;
}

// ---------------------------------------------------------------------------------------------
// The store.

interface DatasetInfo {
  dir: string;
  bytes: number;
  compression: Compression | undefined;
  writeMetadata: unknown;
  dtype: DType;
  chunkShape: bigint[];
}

class Hdf5Store implements Store {
  readonly capabilities = {};
  readonly root: string;
  readonly #create: boolean;
  readonly #fastPath: boolean;
  #connected = false;
  /** Per-dataset write settings, by the meta object they were made for. */
  #info = new WeakMap<DatasetMeta, DatasetInfo>();

  constructor(readonly name: string, directory: string, create: boolean, fastPath: boolean) {
    this.root = path.resolve(directory, name);
    this.#create = create;
    this.#fastPath = fastPath;
  }

  async connect(): Promise<void> {
    if (this.#create) {
      try {
        await fs.promises.mkdir(this.root, { recursive: true });
      } catch (error) {
        throw new ConnectionError(`cannot create hdf5 connection folder ${this.root}: ${(error as Error).message}`, { cause: error });
      }
    }
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(this.root);
      await fs.promises.access(this.root, fs.constants.R_OK | fs.constants.X_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist (pass create: true to make it)' : `cannot be read (${code ?? (error as Error).message})`;
      throw new ConnectionError(`hdf5 connection folder ${this.root} ${why}`, { cause: error });
    }
    if (!stat.isDirectory()) throw new ConnectionError(`hdf5 connection path ${this.root} is not a folder`);
    try {
      await loadH5();
    } catch (error) {
      throw new ConnectionError(`cannot load h5wasm for the hdf5 backend: ${(error as Error).message}`, { cause: error });
    }
    this.#connected = true;
  }

  async disconnect(): Promise<void> {
    this.#connected = false;
  }

  private check(): void {
    if (!this.#connected) throw new ConnectionError(`hdf5 connection ${JSON.stringify(this.name)} (${this.root}) is not connected; call connect() first`);
  }

  private datasetDir(name: string): string {
    return path.join(this.root, checkName(name));
  }

  private info(meta: DatasetMeta): DatasetInfo {
    let info = this.#info.get(meta);
    if (!info) {
      const compression = checkDatasetOptions(meta.name, meta.options);
      const chunkShape = meta.chunkSize.map((n) => BigInt(n));
      const { lib } = h5();
      info = {
        dir: this.datasetDir(meta.name),
        bytes: product(meta.chunkSize) * bytesPerElement(meta.dtype),
        compression,
        dtype: meta.dtype,
        chunkShape,
        writeMetadata: {
          ...lib.dtype_to_metadata(H5WASM_CODES[meta.dtype]),
          shape: chunkShape,
          maxshape: chunkShape,
          chunks: compression ? chunkShape : null,
          compression: compression ? 1 : 0,
          compression_opts: compression ? [compression.compressionLevel] : [],
          track_order: false,
        },
      };
      this.#info.set(meta, info);
    }
    return info;
  }

  private chunkPath(meta: DatasetMeta, index: ChunkIndex): string {
    const info = this.info(meta);
    if (index.length !== meta.shape.length || !index.every((i) => Number.isSafeInteger(i) && i >= 0)) {
      throw new DosnaError(`chunk index ${JSON.stringify(index)} is not valid for dataset ${JSON.stringify(meta.name)} of ${meta.shape.length} axes`);
    }
    return path.join(info.dir, chunkFileName(index));
  }

  async listDatasets(): Promise<string[]> {
    this.check();
    const entries = await fs.promises.readdir(this.root, { withFileTypes: true });
    const names: string[] = [];
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      try {
        checkName(e.name);
      } catch {
        continue;
      }
      if (fs.existsSync(path.join(this.root, e.name, METADATA_FILE))) names.push(e.name);
    }
    return names.sort();
  }

  async readMeta(name: string): Promise<DatasetMeta | undefined> {
    this.check();
    const dir = this.datasetDir(name);
    return readMetaFile(path.join(dir, METADATA_FILE), name);
  }

  async createMeta(meta: DatasetMeta): Promise<void> {
    this.check();
    const dir = this.datasetDir(meta.name);
    const compression = checkDatasetOptions(meta.name, meta.options);
    const file = path.join(dir, METADATA_FILE);
    if (fs.existsSync(file)) throw new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists in ${this.root}`);
    await fs.promises.mkdir(dir, { recursive: true });
    const tmp = tmpName(file);
    try {
      try {
        writeMetaFile(tmp, meta, compression);
      } catch (error) {
        throw new DosnaError(`cannot write dataset metadata file ${tmp}: ${hdf5Reason(error)}`, { cause: error });
      }
      // link() fails if dataset.h5 exists: of two processes creating one dataset, one wins.
      try {
        await fs.promises.link(tmp, file);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new DatasetExistsError(`dataset ${JSON.stringify(meta.name)} already exists in ${this.root}`);
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
          await fs.promises.rename(tmp, file); // a file system without hard links
        } else {
          throw error;
        }
      }
    } finally {
      await fs.promises.rm(tmp, { force: true });
    }
  }

  async deleteDataset(name: string): Promise<void> {
    this.check();
    const dir = this.datasetDir(name);
    if (!fs.existsSync(path.join(dir, METADATA_FILE))) {
      throw new DatasetNotFoundError(`dataset ${JSON.stringify(name)} not found in ${this.root}`);
    }
    // Move the folder aside first, so the dataset and all its chunks vanish at once.
    const aside = path.join(this.root, `.${name.slice(0, 200)}.deleted-${process.pid}-${randomBytes(6).toString('hex')}`);
    await fs.promises.rename(dir, aside);
    await fs.promises.rm(path.join(aside, METADATA_FILE), { force: true });
    await fs.promises.rm(aside, { recursive: true, force: true });
  }

  async readChunk(meta: DatasetMeta, index: ChunkIndex): Promise<Uint8Array | undefined> {
    this.check();
    const file = this.chunkPath(meta, index);
    const info = this.info(meta);
    const template = this.#fastPath ? makeTemplate(info) : null;
    if (template) {
      const bytes = await readTemplated(file, template, info.bytes);
      if (bytes === undefined) return undefined;
      if (bytes !== null) return bytes;
      // Not our template (h5py wrote it, or it is damaged): HDF5 decides.
    } else if (!fs.existsSync(file)) {
      return undefined;
    }
    return this.readThroughLibrary(meta, index, file, info);
  }

  async readChunkInto(meta: DatasetMeta, index: ChunkIndex, start: number, segments: readonly Uint8Array[]): Promise<boolean> {
    this.check();
    const file = this.chunkPath(meta, index);
    const info = this.info(meta);
    const template = this.#fastPath ? makeTemplate(info) : null;
    if (template) {
      const status = await readTemplatedInto(file, template, info.bytes, start, segments);
      if (status !== 'foreign') return status === 'read';
    } else if (!fs.existsSync(file)) {
      return false;
    }
    const bytes = this.readThroughLibrary(meta, index, file, info);
    if (!bytes) return false;
    let at = start;
    for (const s of segments) {
      s.set(bytes.subarray(at, at + s.byteLength));
      at += s.byteLength;
    }
    return true;
  }

  /** Reads a chunk file through HDF5 itself (any layout, compression, writer). */
  private readThroughLibrary(meta: DatasetMeta, index: ChunkIndex, file: string, info: DatasetInfo): Uint8Array | undefined {
    try {
      return readThroughHdf5(file, info);
    } catch (error) {
      if (error instanceof DosnaError) throw error;
      if (!fs.existsSync(file)) return undefined; // deleted while we read it
      throw new CorruptChunkError(`cannot read chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} from ${file}: ${hdf5Reason(error)}`, file, { cause: error });
    }
  }

  async writeChunk(meta: DatasetMeta, index: ChunkIndex, bytes: Uint8Array): Promise<void> {
    return this.writeChunkParts(meta, index, [bytes]);
  }

  async writeChunkParts(meta: DatasetMeta, index: ChunkIndex, parts: readonly Uint8Array[]): Promise<void> {
    this.check();
    const file = this.chunkPath(meta, index);
    const info = this.info(meta);
    const length = parts.reduce((n, p) => n + p.byteLength, 0);
    if (length !== info.bytes) {
      throw new DosnaError(`chunk ${JSON.stringify(index)} of ${meta.name} must be ${info.bytes} bytes, got ${length}`);
    }
    const tmp = tmpName(file);
    try {
      const template = this.#fastPath ? makeTemplate(info) : null;
      if (template) {
        await writeFileParts(tmp, [template.prefix, ...parts, template.suffix]);
      } else {
        writeThroughHdf5(tmp, info, parts.length === 1 ? parts[0] : Buffer.concat(parts));
      }
      await renameFile(tmp, file);
    } catch (error) {
      await fs.promises.rm(tmp, { force: true });
      if (!fs.existsSync(info.dir)) {
        throw new DatasetNotFoundError(`dataset ${JSON.stringify(meta.name)} not found in ${this.root}`, { cause: error });
      }
      if (error instanceof DosnaError) throw error;
      throw new DosnaError(`cannot write chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} to ${file}: ${hdf5Reason(error)}`, { cause: error });
    }
  }

  async hasChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    this.check();
    return fs.existsSync(this.chunkPath(meta, index));
  }

  async deleteChunk(meta: DatasetMeta, index: ChunkIndex): Promise<boolean> {
    this.check();
    try {
      await fs.promises.unlink(this.chunkPath(meta, index));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  async listChunks(meta: DatasetMeta): Promise<ChunkIndex[]> {
    this.check();
    const { dir } = this.info(meta);
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DatasetNotFoundError(`dataset ${JSON.stringify(meta.name)} not found in ${this.root}`, { cause: error });
      }
      throw error;
    }
    const grid = meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a]));
    const out: ChunkIndex[] = [];
    for (const n of names) {
      const m = CHUNK_RE.exec(n);
      if (!m) continue;
      const index = m[1].split('_').map(Number);
      if (index.length !== grid.length || index.some((i, a) => i >= grid[a])) continue;
      out.push(index);
    }
    return out;
  }
}

/** Why a chunk file's /data does not hold the dataset's chunk, or `undefined` when it does. */
function mismatch(md: H5Metadata, info: DatasetInfo): string | undefined {
  const shape = md.shape ?? [];
  if (shape.length !== info.chunkShape.length || shape.some((n, a) => BigInt(n) !== info.chunkShape[a])) {
    return `holds /data of shape ${JSON.stringify(shape)}, not the chunk shape ${JSON.stringify(info.chunkShape.map(Number))}`;
  }
  const float = info.dtype.startsWith('float');
  const expectedType = float ? H5T_FLOAT : H5T_INTEGER;
  const signed = info.dtype.startsWith('int');
  if (md.vlen || md.type !== expectedType || md.size !== bytesPerElement(info.dtype) || (!float && md.signed !== signed)) {
    const kind = md.type === H5T_INTEGER ? `${md.signed ? '' : 'u'}int${md.size * 8}` : md.type === H5T_FLOAT ? `float${md.size * 8}` : md.type === H5T_STRING ? 'strings' : `HDF5 type class ${md.type}`;
    return `holds /data of ${kind}, not ${info.dtype}`;
  }
  return undefined;
}

const OPTIONS = new Set(['directory', 'create', 'fastPath']);

export const backend: Backend = {
  name: 'hdf5',
  open(name, options) {
    checkName(name, 'connection');
    const unknown = Object.keys(options).filter((k) => !OPTIONS.has(k));
    if (unknown.length > 0) throw new DosnaError(`unknown hdf5 backend option(s) ${unknown.join(', ')}; it takes directory, create and fastPath`);
    const directory = options.directory ?? '.';
    if (typeof directory !== 'string' || directory.length === 0) throw new DosnaError(`hdf5 option directory must be a non-empty string, got ${JSON.stringify(directory)}`);
    if (directory.includes('\0')) throw new InvalidNameError('hdf5 option directory contains a NUL character');
    const create = options.create ?? false;
    if (typeof create !== 'boolean') throw new DosnaError(`hdf5 option create must be true or false, got ${JSON.stringify(create)}`);
    const fastPath = options.fastPath ?? true;
    if (typeof fastPath !== 'boolean') throw new DosnaError(`hdf5 option fastPath must be true or false, got ${JSON.stringify(fastPath)}`);
    return new Hdf5Store(name, directory, create, fastPath);
  },
};
