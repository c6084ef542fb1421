/**
 * LZ4 blocks (lz4js, a plain-JavaScript LZ4) in the two framings we store:
 * - numcodecs' `LZ4` (zarr, the s3/ceph/ram backends): the uncompressed size as a 4-byte
 *   little-endian integer, then one LZ4 block;
 * - HDF5's LZ4 filter (32004, as hdf5plugin builds it): the uncompressed size as an 8-byte
 *   big-endian integer, the block size as 4 bytes big-endian, then each block as its 4-byte
 *   big-endian compressed size and its bytes (stored raw when LZ4 would not make it smaller).
 */
import * as lz4 from 'lz4js';

/** HDF5's LZ4 filter's default block size (1 GiB): a chunk is one block. */
const HDF5_BLOCK = 2 ** 30;

const hashTables: Uint32Array[] = [];

/** Compresses `src` as one LZ4 block into `dst` at `at`; returns its length, or 0 when it does not shrink. */
function compressBlock(src: Uint8Array, dst: Uint8Array, at: number): number {
  const table = hashTables.pop() ?? new Uint32Array(1 << 16);
  try {
    const out = dst.subarray(at);
    return lz4.compressBlock(src, out, 0, src.length, table);
  } finally {
    table.fill(0);
    hashTables.push(table);
  }
}

/** Decompresses one LZ4 block into `dst` (exactly `dst.length` bytes expected). */
function decompressBlock(src: Uint8Array, dst: Uint8Array): void {
  const end = lz4.decompressBlock(src, dst, 0, src.length, 0);
  if (end !== dst.length) throw new Error(`an LZ4 block decoded to ${end} bytes, expected ${dst.length}`);
}

export function encodeNumcodecsLz4(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + lz4.compressBound(src.length));
  new DataView(out.buffer).setUint32(0, src.length, true);
  let n = compressBlock(src, out, 4);
  if (n === 0) {
    // Incompressible: one block of literals only (LZ4 has no stored mode in this framing).
    n = literalBlock(src, out, 4);
  }
  return out.subarray(0, 4 + n);
}

export function decodeNumcodecsLz4(src: Uint8Array, expected: number): Uint8Array {
  if (src.length < 4) throw new Error('an LZ4 chunk shorter than its header');
  const size = new DataView(src.buffer, src.byteOffset, src.byteLength).getUint32(0, true);
  if (size !== expected) throw new Error(`an LZ4 chunk of ${size} bytes, expected ${expected}`);
  const out = new Uint8Array(size);
  decompressBlock(src.subarray(4), out);
  return out;
}

export function encodeHdf5Lz4(src: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(src.length / HDF5_BLOCK));
  const out = new Uint8Array(12 + blocks * 4 + lz4.compressBound(src.length) + blocks * 16);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(src.length), false);
  view.setUint32(8, Math.min(src.length, HDF5_BLOCK), false);
  let at = 12;
  for (let start = 0; start < src.length || (start === 0 && src.length === 0); start += HDF5_BLOCK) {
    const block = src.subarray(start, Math.min(src.length, start + HDF5_BLOCK));
    let n = block.length === 0 ? 0 : compressBlock(block, out, at + 4);
    if (n === 0 || n >= block.length) {
      out.set(block, at + 4); // stored raw: the reader knows by its size
      n = block.length;
    }
    view.setUint32(at, n, false);
    at += 4 + n;
    if (src.length === 0) break;
  }
  return out.subarray(0, at);
}

export function decodeHdf5Lz4(src: Uint8Array, expected: number): Uint8Array {
  if (src.length < 12) throw new Error('an LZ4 chunk shorter than its header');
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const total = Number(view.getBigUint64(0, false));
  const blockSize = view.getUint32(8, false);
  if (total !== expected) throw new Error(`an LZ4 chunk of ${total} bytes, expected ${expected}`);
  const out = new Uint8Array(total);
  let at = 12;
  for (let start = 0; start < total; start += blockSize) {
    const length = Math.min(blockSize, total - start);
    if (at + 4 > src.length) throw new Error('an LZ4 chunk cut short');
    const n = view.getUint32(at, false);
    at += 4;
    if (at + n > src.length) throw new Error('an LZ4 chunk cut short');
    const block = src.subarray(at, at + n);
    if (n === length) out.set(block, start);
    else decompressBlock(block, out.subarray(start, start + length));
    at += n;
  }
  return out;
}

/** An LZ4 block holding `src` as literals (for data LZ4 cannot shrink). */
function literalBlock(src: Uint8Array, dst: Uint8Array, at: number): number {
  let p = at;
  const n = src.length;
  if (n >= 15) {
    dst[p++] = 0xf0;
    let rest = n - 15;
    while (rest >= 255) {
      dst[p++] = 255;
      rest -= 255;
    }
    dst[p++] = rest;
  } else {
    dst[p++] = n << 4;
  }
  dst.set(src, p);
  return p + n - at;
}
