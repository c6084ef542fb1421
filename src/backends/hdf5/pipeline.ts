/**
 * Compressed chunk files, written by us: an HDF5 file whose `/data` is one chunk stored with
 * HDF5's filter pipeline (shuffle = filter 2, deflate = 1, zstd = 32015, LZ4 = 32004), so h5py
 * reads shuffle + gzip with no plugin and zstd/LZ4 with hdf5plugin's filters. h5wasm can write
 * only deflate, and only through its C library, so the fast path for compressed chunks builds
 * the file itself, as the uncompressed one does from a template:
 *
 * ```text
 *   superblock v3 (48 bytes)              end-of-file address, root object header address
 *   root group object header (v2)         link info, group info, a hard link "data"
 *   /data object header (v2)              dataspace (the chunk shape), datatype, fill value,
 *                                         layout v4: chunked, single-chunk index with filters
 *                                         (the filtered size and the chunk's address),
 *                                         filter pipeline v2
 *   the filtered chunk
 * ```
 *
 * For one dtype, chunk shape and codec only the filtered size (and with it the end-of-file
 * address and two checksums) changes, so the header is built once and patched per chunk. A
 * file is read fast only when its header is exactly the one we would write for its size; any
 * other file (h5py's, an older dosna's, a damaged one) goes through HDF5 itself. The format is
 * the HDF5 File Format Specification, version 3.0; each layout is checked once by reading a
 * file back through HDF5 (h5wasm).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import type { Compression } from '../../codecs/index.js';
import { shuffle } from '../../codecs/shuffle.js';
import { bytesPerElement, type DType } from '../../dtypes.js';
import { DosnaError } from '../../errors.js';
import { readThroughHdf5, withHdf5File } from './h5lib.js';
import { lookup3 } from './template.js';

const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const UNDEFINED_ADDRESS = 0xffffffffffffffffn;
const SUPERBLOCK_BYTES = 48;

/** HDF5's filter identifiers. */
export const FILTER_IDS = { shuffle: 2, gzip: 1, zstd: 32015, lz4: 32004 } as const;

/** A header for chunk files of one layout, and where its per-chunk fields are. */
export interface PipelineHeader {
  /** The header with the filtered size 0. */
  readonly bytes: Buffer;
  /** Offsets in `bytes`: the filtered size (u64) in the layout message, the /data object header and its length (checksum excluded). */
  readonly sizeAt: number;
  readonly datasetHeaderAt: number;
  readonly datasetHeaderLength: number;
}

function u8(...values: number[]): Buffer {
  return Buffer.from(values);
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

function u64(value: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

/** Datatype message (type 3): a little-endian integer or IEEE float of the dtype. */
function datatypeMessage(dtype: DType): Buffer {
  const size = bytesPerElement(dtype);
  if (dtype.startsWith('float')) {
    const [exponentLocation, exponentSize, mantissaSize, bias] = size === 4 ? [23, 8, 23, 127] : [52, 11, 52, 1023];
    // Class 1 (floating point), version 1; mantissa normalization 2 (msb implied); sign bit on top.
    return Buffer.concat([u8(0x11, 0x20, size * 8 - 1, 0), u32(size), u16(0), u16(size * 8), u8(exponentLocation, exponentSize, 0, mantissaSize), u32(bias)]);
  }
  const signed = dtype.startsWith('int') ? 0x08 : 0;
  // Class 0 (fixed point), version 1, little-endian.
  return Buffer.concat([u8(0x10, signed, 0, 0), u32(size), u16(0), u16(size * 8)]);
}

/** Filter pipeline message (type 11), version 2. */
function filterPipelineMessage(c: Compression, itemsize: number): Buffer {
  const filters: { id: number; flags: number; values: number[] }[] = [];
  // HDF5 marks shuffle and deflate optional (H5Pset_shuffle, H5Pset_deflate); plugins mandatory.
  if (c.shuffle) filters.push({ id: FILTER_IDS.shuffle, flags: 1, values: [itemsize] });
  if (c.codec === 'gzip') filters.push({ id: FILTER_IDS.gzip, flags: 1, values: [c.level] });
  if (c.codec === 'zstd') filters.push({ id: FILTER_IDS.zstd, flags: 0, values: [c.level] });
  if (c.codec === 'lz4') filters.push({ id: FILTER_IDS.lz4, flags: 0, values: [0] }); // 0: the default block size
  const parts = [u8(2, filters.length)];
  for (const f of filters) {
    parts.push(u16(f.id));
    if (f.id >= 256) parts.push(u16(0)); // name length: no name
    parts.push(u16(f.flags), u16(f.values.length), ...f.values.map(u32));
  }
  return Buffer.concat(parts);
}

/** A version-2 object header holding `messages` (type, body), with a 4-byte chunk size and its checksum. */
function objectHeader(messages: readonly [number, Buffer][]): Buffer {
  const body = Buffer.concat(messages.flatMap(([type, data]) => [u8(type), u16(data.length), u8(0), data]));
  const header = Buffer.concat([Buffer.from('OHDR'), u8(2, 0x02), u32(body.length), body]);
  return Buffer.concat([header, u32(lookup3(header))]);
}

const headers = new Map<string, PipelineHeader>();

/** The header of compressed chunk files of `dtype`, `chunkShape` and `c` (built once per layout). */
export function pipelineHeader(dtype: DType, chunkShape: readonly number[], c: Compression): PipelineHeader {
  const key = `${dtype}:${chunkShape.join(',')}:${c.codec}:${c.level}:${c.shuffle}`;
  const known = headers.get(key);
  if (known) return known;
  const itemsize = bytesPerElement(dtype);
  const ndim = chunkShape.length;
  const linkInfo = Buffer.concat([u8(0, 0), u64(UNDEFINED_ADDRESS), u64(UNDEFINED_ADDRESS)]);
  const groupInfo = u8(0, 0);
  const rootLength = objectHeader([[0x02, linkInfo], [0x0a, groupInfo], [0x06, Buffer.concat([u8(1, 0, 4), Buffer.from('data'), u64(0)])]]).length;
  const datasetAt = SUPERBLOCK_BYTES + rootLength;
  const root = objectHeader([[0x02, linkInfo], [0x0a, groupInfo], [0x06, Buffer.concat([u8(1, 0, 4), Buffer.from('data'), u64(datasetAt)])]]);
  const dataspace = Buffer.concat([u8(2, ndim, 0, 1), ...chunkShape.map(u64)]);
  // Fill value v3: allocation incremental, written if set, no value of its own (HDF5's default).
  const fill = u8(3, 0x03 | (2 << 2));
  // Dimension sizes take the fewest bytes that hold the largest (HDF5 2.0 insists): floor(log2(d)) / 8 + 1.
  const dims = [...chunkShape, itemsize];
  const width = Math.max(...dims.map((d) => Math.floor((Math.floor(Math.log2(d)) + 8) / 8)));
  const dimension = (d: number) => {
    const b = Buffer.alloc(width);
    b.writeUIntLE(d, 0, width);
    return b;
  };
  const layoutHead = Buffer.concat([u8(4, 2, 0x02, ndim + 1, width), ...dims.map(dimension), u8(1)]);
  const layoutFor = (dataAt: number) => Buffer.concat([layoutHead, u64(0), u32(0), u64(dataAt)]);
  const pipeline = filterPipelineMessage(c, itemsize);
  const messages = (dataAt: number): [number, Buffer][] => [[0x01, dataspace], [0x03, datatypeMessage(dtype)], [0x05, fill], [0x08, layoutFor(dataAt)], [0x0b, pipeline]];
  const datasetLength = objectHeader(messages(0)).length;
  const dataAt = datasetAt + datasetLength;
  const dataset = objectHeader(messages(dataAt));
  const superblock = Buffer.concat([SIGNATURE, u8(3, 8, 8, 0), u64(0), u64(UNDEFINED_ADDRESS), u64(dataAt), u64(SUPERBLOCK_BYTES)]);
  const bytes = Buffer.concat([superblock, u32(0), root, dataset]);
  // The filtered size: in the layout message, right after the index type byte.
  const layoutAt = dataset.indexOf(layoutHead);
  const header: PipelineHeader = {
    bytes,
    sizeAt: datasetAt + layoutAt + layoutHead.length,
    datasetHeaderAt: datasetAt,
    datasetHeaderLength: dataset.length - 4,
  };
  patchHeader(header, bytes, 0);
  verify(header, dtype, chunkShape, c);
  headers.set(key, header);
  return header;
}

/**
 * Checks a layout once by reading a file made with it back through HDF5 (h5wasm): the data
 * itself when HDF5 has the filters (deflate, shuffle), the dataset's shape otherwise (zstd and
 * LZ4 are plugins h5wasm does not carry; h5py reads them in the tests).
 */
function verify(header: PipelineHeader, dtype: DType, chunkShape: readonly number[], c: Compression): void {
  const itemsize = bytesPerElement(dtype);
  const bytes = chunkShape.reduce((a, b) => a * b, 1) * itemsize;
  // The data is checked for chunks up to 8 MiB (a one-off deflate of a bigger one costs seconds).
  const withData = c.codec === 'gzip' && bytes <= 8 * 2 ** 20;
  const sample = new Uint8Array(withData ? bytes : 0);
  for (let i = 0; i < sample.length; i++) sample[i] = (i * 131 + 7) & 255;
  const filtered = withData ? deflateSync(c.shuffle ? shuffle(sample, itemsize) : sample, { level: c.level }) : new Uint8Array(16);
  const file = path.join(os.tmpdir(), `dosna-hdf5-pipeline-${process.pid}-${randomBytes(6).toString('hex')}.h5`);
  try {
    fs.writeFileSync(file, Buffer.concat([headerFor(header, filtered.length), filtered]));
    const shape = withHdf5File(file, 'read', (id, M) => M.get_dataset_metadata(id, '/data').shape);
    if (JSON.stringify(shape?.map(Number)) !== JSON.stringify(chunkShape)) throw new Error(`HDF5 reads /data as shape ${JSON.stringify(shape)}`);
    if (withData) {
      const back = readThroughHdf5(file, { dtype, bytes, chunkShape: chunkShape.map(BigInt), writeMetadata: null, compressed: true });
      if (!Buffer.from(back).equals(Buffer.from(sample))) throw new Error('HDF5 reads other values than were written');
    }
  } catch (error) {
    throw new DosnaError(`internal: a ${dtype} ${chunkShape.join('x')} chunk file compressed with ${c.codec}${c.shuffle ? ' + shuffle' : ''} does not read back through HDF5: ${(error as Error).message}`, { cause: error });
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Sets the filtered size (and the end-of-file address and checksums that follow from it) in `into`, a copy of the header. */
function patchHeader(header: PipelineHeader, into: Buffer, size: number): void {
  const end = header.bytes.length + size;
  into.writeBigUInt64LE(BigInt(size), header.sizeAt);
  const { datasetHeaderAt: at, datasetHeaderLength: length } = header;
  into.writeUInt32LE(lookup3(into.subarray(at, at + length)), at + length);
  into.writeBigUInt64LE(BigInt(end), 28); // end-of-file address
  into.writeUInt32LE(lookup3(into.subarray(0, 44)), 44);
}

/** The header of a file holding `size` bytes of filtered chunk (a new buffer). */
export function headerFor(header: PipelineHeader, size: number): Buffer {
  const out = Buffer.from(header.bytes);
  patchHeader(header, out, size);
  return out;
}

/**
 * The filtered chunk of a file we wrote with `header`'s layout, or `undefined` when `file` is
 * not such a file byte for byte (then HDF5 reads it).
 */
export function filteredChunkOf(header: PipelineHeader, file: Uint8Array): Uint8Array | undefined {
  const length = header.bytes.length;
  if (file.length < length) return undefined;
  const view = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const size = Number(view.readBigUInt64LE(header.sizeAt));
  if (length + size !== file.length) return undefined;
  if (!headerFor(header, size).equals(view.subarray(0, length))) return undefined;
  return file.subarray(length);
}
