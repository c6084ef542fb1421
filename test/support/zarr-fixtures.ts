/**
 * zarr arrays no implementation at hand writes, made by hand after the spec for the tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { crc32c } from '../../src/backends/zarr/sharding.js';

/**
 * A zarr v3 sharded array written by hand after the spec (no implementation at hand writes
 * shards: zarrita reads them only, and reading it back with zarrita checks the fixture): int32
 * [10, 12], shards [8, 8] of inner chunks [4, 4] compressed with zstd, index at the end with its
 * CRC32C; one inner chunk never written. Cell (i, j) holds 100 i + j.
 */
export function writeShardedArray(dir: string): void {
  const shape = [10, 12];
  const fill = -5;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'zarr.json'), JSON.stringify({ zarr_format: 3, node_type: 'group', attributes: {} }));
  const arr = path.join(dir, 'sharded');
  fs.mkdirSync(arr);
  fs.writeFileSync(path.join(arr, 'zarr.json'), JSON.stringify({
    zarr_format: 3, node_type: 'array', shape, data_type: 'int32', fill_value: fill, attributes: { made: 'by hand' },
    chunk_grid: { name: 'regular', configuration: { chunk_shape: [8, 8] } },
    chunk_key_encoding: { name: 'default', configuration: { separator: '/' } },
    codecs: [{ name: 'sharding_indexed', configuration: {
      chunk_shape: [4, 4],
      codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'zstd', configuration: { level: 1, checksum: false } }],
      index_codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'crc32c' }],
      index_location: 'end',
    } }],
  }));
  for (const [sy, sx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    const parts: Buffer[] = [];
    const index = new DataView(new ArrayBuffer(16 * 4));
    let offset = 0;
    [[0, 0], [0, 1], [1, 0], [1, 1]].forEach(([a, b], k) => {
      if (sy === 0 && sx === 0 && a === 0 && b === 1) { // never written
        index.setBigUint64(16 * k, 2n ** 64n - 1n, true);
        index.setBigUint64(16 * k + 8, 2n ** 64n - 1n, true);
        return;
      }
      const cells = new Int32Array(16).map((_, c) => {
        const i = sy * 8 + a * 4 + Math.floor(c / 4);
        const j = sx * 8 + b * 4 + (c % 4);
        return i < shape[0] && j < shape[1] ? 100 * i + j : fill;
      });
      const packed = zstdCompressSync(new Uint8Array(cells.buffer));
      index.setBigUint64(16 * k, BigInt(offset), true);
      index.setBigUint64(16 * k + 8, BigInt(packed.length), true);
      parts.push(packed);
      offset += packed.length;
    });
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32c(new Uint8Array(index.buffer)));
    fs.mkdirSync(path.join(arr, 'c', String(sy)), { recursive: true });
    fs.writeFileSync(path.join(arr, 'c', String(sy), String(sx)), Buffer.concat([...parts, Buffer.from(index.buffer), crc]));
  }
}

/** The cells of the sharded array, C order: 100 i + j, and the fill value -5 in the inner chunk never written. */
export const SHARDED_EXPECTED: readonly number[] = Array.from({ length: 120 }, (_, c) => {
  const i = Math.floor(c / 12);
  const j = c % 12;
  return i < 4 && j >= 4 && j < 8 ? -5 : 100 * i + j;
});
