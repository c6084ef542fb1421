/**
 * h5wasm (the HDF5 C library compiled to WebAssembly), as the hdf5 backend uses it: loaded once
 * per thread, every call guarded so HDF5 failures become exceptions, files opened and closed
 * around each use, and chunk data moved through one reused heap buffer. h5wasm is synchronous
 * and its heap is capped at 2 GiB: each call moves one chunk.
 */
import { bytesPerElement, type DType } from '../../dtypes.js';
import { ConnectionError, CorruptChunkError, DosnaError } from '../../errors.js';

/** Largest chunk moved through the wasm heap (h5wasm caps the heap at 2 GiB; HDF5 needs room too). */
export const MAX_CHUNK_BYTES = 1024 * 1024 * 1024;
/** The scratch buffer kept in the heap between calls stays at most this big; larger chunks get their own allocation. */
export const SCRATCH_LIMIT = 64 * 1024 * 1024;

/** How a dataset's chunk files are laid out: what HDF5 needs to write and check one. */
export interface ChunkFileLayout {
  readonly dtype: DType;
  /** Bytes of one (uncompressed) chunk. */
  readonly bytes: number;
  readonly chunkShape: readonly bigint[];
  /** h5wasm's dataset creation metadata for /data. */
  readonly writeMetadata: unknown;
  /** Whether chunk files are compressed (HDF5 filters); only uncompressed files have a byte template. */
  readonly compressed: boolean;
}

/** The parts of h5wasm's emscripten module this backend uses (its own d.ts types them loosely). */
export interface H5Module {
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

export interface H5Metadata {
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

export async function loadH5(): Promise<H5> {
  loading ??= (async () => {
    const lib = await import('h5wasm/node');
    const M = (await lib.ready) as unknown as H5Module;
    loaded = { lib, M };
    return loaded;
  })();
  return loading;
}

export function h5(): H5 {
  if (!loaded) throw new ConnectionError('the hdf5 backend is not connected; call connect() first');
  return loaded;
}

/** h5wasm's format letters (struct module codes): `<i8` would mean int32 to it. */
export const H5WASM_CODES: Record<DType, string> = {
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
export function withHdf5File<T>(file: string, mode: 'read' | 'create', use: (id: bigint, M: H5Module) => T): T {
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
export function hdf5Reason(error: unknown): string {
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

/** Writes an uncompressed chunk file through HDF5. */
export function writeThroughHdf5(file: string, info: ChunkFileLayout, bytes: Uint8Array): void {
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
export function readThroughHdf5(file: string, info: ChunkFileLayout): Uint8Array {
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

/** Why a chunk file's /data does not hold the dataset's chunk, or `undefined` when it does. */
function mismatch(md: H5Metadata, info: ChunkFileLayout): string | undefined {
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
