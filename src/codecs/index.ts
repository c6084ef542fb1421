/**
 * Chunk compression, the same bytes on every backend (h5py's `compression=`/`shuffle=`,
 * zarr's compressors): an optional byte shuffle, then gzip (deflate), zstd or LZ4.
 *
 * The codecs are Node's own `node:zlib` (deflate and zstd, run on libuv's thread pool, so
 * several chunks compress at once even on the `cpu` engine) and lz4js for LZ4. What differs
 * between backends is only the framing around the compressed bytes:
 * - `numcodecs` (ram, s3, ceph; what zarr stores): gzip as a gzip stream, zstd as a zstd
 *   frame, LZ4 as numcodecs' LZ4 (size + block); the metadata names the codecs as numcodecs
 *   does (`{"id": "shuffle", "elementsize": 4}`, `{"id": "zstd", "level": 3}`).
 * - `hdf5` (the hdf5 backend's chunk files): HDF5's filters: shuffle (2), deflate (1, a zlib
 *   stream), zstd (32015, a zstd frame), LZ4 (32004, hdf5plugin's framing).
 * Compression runs where the chunk's task runs: in the worker threads under `worker-pool`.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { OptionError } from '../errors.js';
import { checkOptions } from '../options.js';
import { decodeHdf5Lz4, decodeNumcodecsLz4, encodeHdf5Lz4, encodeNumcodecsLz4 } from './lz4.js';
import { shuffle, unshuffle } from './shuffle.js';

/** The compressors: `'gzip'` (deflate), `'zstd'`, `'lz4'`. */
export type CompressionName = 'gzip' | 'zstd' | 'lz4';

export const COMPRESSIONS: readonly CompressionName[] = ['gzip', 'zstd', 'lz4'];

/** How a dataset's chunks are compressed (fixed at creation). */
export interface Compression {
  readonly codec: CompressionName;
  /** gzip: 0-9 (default 4, as h5py); zstd: 1-22 (default 3, zstd's own); LZ4 has none (0). */
  readonly level: number;
  /** Whether bytes are shuffled first (HDF5's shuffle filter, numcodecs' `Shuffle`). */
  readonly shuffle: boolean;
}

/** The framings compressed bytes are stored in (see the module's comment). */
export type Framing = 'numcodecs' | 'hdf5';

const LEVELS: Record<CompressionName, { min: number; max: number; default: number } | undefined> = {
  gzip: { min: 0, max: 9, default: 4 },
  zstd: { min: 1, max: 22, default: 3 },
  lz4: undefined,
};

/**
 * Checks `createDataset`'s `compression`, `compressionLevel` and `shuffle` and returns the
 * dataset's compression, or `undefined` for none.
 */
export function checkCompression(options: { compression?: unknown; compressionLevel?: unknown; shuffle?: unknown }): Compression | undefined {
  const { compression = null, compressionLevel, shuffle: shuffled } = options;
  if (shuffled !== undefined && typeof shuffled !== 'boolean') throw new OptionError(`shuffle must be true or false, got ${JSON.stringify(shuffled)}`);
  if (compression === null) {
    if (compressionLevel !== undefined) throw new OptionError('compressionLevel needs compression (gzip, zstd)');
    if (shuffled) throw new OptionError('shuffle needs compression (gzip, zstd or lz4): it only helps a compressor');
    return undefined;
  }
  if (typeof compression !== 'string' || !COMPRESSIONS.includes(compression as CompressionName)) {
    throw new OptionError(`compression must be one of ${COMPRESSIONS.map((c) => `'${c}'`).join(', ')} or null, got ${JSON.stringify(compression)}`);
  }
  const codec = compression as CompressionName;
  const range = LEVELS[codec];
  if (!range) {
    if (compressionLevel !== undefined) throw new OptionError(`compression '${codec}' has no levels; leave out compressionLevel`);
    return { codec, level: 0, shuffle: shuffled ?? false };
  }
  const level = compressionLevel ?? range.default;
  if (typeof level !== 'number' || !Number.isInteger(level) || level < range.min || level > range.max) {
    throw new OptionError(`compressionLevel of '${codec}' must be an integer from ${range.min} to ${range.max}, got ${JSON.stringify(level)}`);
  }
  return { codec, level, shuffle: shuffled ?? false };
}

/** A compression from stored metadata (checked as `checkCompression` does). */
export function compressionFrom(stored: unknown): Compression | undefined {
  if (stored === undefined || stored === null) return undefined;
  const { codec, level, shuffle: shuffled } = checkOptions('stored compression', stored as Record<string, unknown>, ['codec', 'level', 'shuffle']);
  return checkCompression({ compression: codec, compressionLevel: LEVELS[codec as CompressionName] ? level : undefined, shuffle: shuffled });
}

/** A short description: `zstd level 3 + shuffle`. */
export function describeCompression(c: Compression | undefined): string {
  if (!c) return 'none';
  return `${c.codec}${LEVELS[c.codec] ? ` level ${c.level}` : ''}${c.shuffle ? ' + shuffle' : ''}`;
}

// ---------------------------------------------------------------------------------------------
// numcodecs names, as zarr v2 records `filters` and `compressor`.

/** A numcodecs codec configuration. */
export type NumcodecsConfig = { readonly id: string } & Readonly<Record<string, unknown>>;

export function toNumcodecs(c: Compression, itemsize: number): { filters: NumcodecsConfig[] | null; compressor: NumcodecsConfig } {
  const compressor: NumcodecsConfig = c.codec === 'lz4' ? { id: 'lz4', acceleration: 1 } : { id: c.codec, level: c.level };
  return { filters: c.shuffle ? [{ id: 'shuffle', elementsize: itemsize }] : null, compressor };
}

export function fromNumcodecs(filters: unknown, compressor: unknown, where: string): Compression | undefined {
  if (compressor === undefined || compressor === null) {
    if (Array.isArray(filters) && filters.length > 0) throw new OptionError(`${where}: filters without a compressor are not supported`);
    return undefined;
  }
  const id = (compressor as { id?: unknown }).id;
  const shuffled = Array.isArray(filters) && filters.some((f) => (f as { id?: unknown }).id === 'shuffle');
  const others = Array.isArray(filters) ? filters.filter((f) => (f as { id?: unknown }).id !== 'shuffle') : [];
  if (others.length > 0) throw new OptionError(`${where}: unsupported filters ${JSON.stringify(others)}`);
  if (id === 'gzip' || id === 'zstd') return checkCompression({ compression: id, compressionLevel: (compressor as { level?: unknown }).level, shuffle: shuffled });
  if (id === 'lz4') return checkCompression({ compression: 'lz4', shuffle: shuffled });
  throw new OptionError(`${where}: unsupported compressor ${JSON.stringify(compressor)}`);
}

// ---------------------------------------------------------------------------------------------
// Encoding and decoding

const deflate = promisify(zlib.deflate);
const gzip = promisify(zlib.gzip);
const unzip = promisify(zlib.unzip);
const zstdCompress = promisify(zlib.zstdCompress);
const zstdDecompress = promisify(zlib.zstdDecompress);

/** zlib's output piece size for `bytes` of output: all of it in one piece, within zlib's limits. */
function outputChunk(bytes: number): number {
  return Math.min(Math.max(bytes + 64, zlib.constants.Z_MIN_CHUNK), 2 ** 30);
}

/** The chunk's bytes (given in parts) shuffled and compressed, framed for `framing`. */
export async function encodeChunk(c: Compression, itemsize: number, parts: readonly Uint8Array[], framing: Framing): Promise<Uint8Array> {
  const whole = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  const input = c.shuffle ? shuffle(whole, itemsize) : whole;
  switch (c.codec) {
    case 'gzip': return framing === 'hdf5' ? deflate(input, { level: c.level, chunkSize: outputChunk(input.length) }) : gzip(input, { level: c.level, chunkSize: outputChunk(input.length) });
    // With the size pledged the frame records it, as one-shot ZSTD_compress does: HDF5's zstd
    // filter and python-zstandard need it to size their output.
    case 'zstd': return zstdCompress(input, { params: { [zlib.constants.ZSTD_c_compressionLevel]: c.level }, pledgedSrcSize: input.length, chunkSize: outputChunk(input.length) });
    case 'lz4': return framing === 'hdf5' ? encodeHdf5Lz4(input) : encodeNumcodecsLz4(input);
  }
}

/**
 * The chunk's raw bytes from its stored bytes: decompressed (and unshuffled) to exactly
 * `expected` bytes. Throws a plain `Error` saying what is wrong; the backend names the chunk.
 */
export async function decodeChunk(c: Compression, itemsize: number, stored: Uint8Array, expected: number, framing: Framing): Promise<Uint8Array> {
  let raw: Uint8Array;
  switch (c.codec) {
    // unzip takes both a zlib stream (HDF5's deflate) and a gzip stream (numcodecs').
    // One output buffer of the chunk's size (zlib's default 16 KiB pieces, concatenated, cost
    // more in garbage collection than the decoding itself).
    case 'gzip': raw = await unzip(stored, { maxOutputLength: Math.max(expected, 1), chunkSize: outputChunk(expected) }); break;
    case 'zstd': raw = await zstdDecompress(stored, { maxOutputLength: Math.max(expected, 1), chunkSize: outputChunk(expected) }); break;
    case 'lz4': raw = framing === 'hdf5' ? decodeHdf5Lz4(stored, expected) : decodeNumcodecsLz4(stored, expected); break;
  }
  if (raw.length !== expected) throw new Error(`it decompresses to ${raw.length} bytes, not the chunk's ${expected}`);
  return c.shuffle ? unshuffle(raw, itemsize) : raw;
}

/** Why decoding failed, in a few words (zlib's errors have a code and a message). */
export function codecReason(c: Compression, error: unknown): string {
  const e = error as { code?: string; message?: string };
  return `${describeCompression(c)}: ${e.message ?? String(error)}${e.code && !(e.message ?? '').includes(e.code) ? ` (${e.code})` : ''}`;
}
