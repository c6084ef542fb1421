/**
 * Reading zarr v3 sharded arrays (`sharding_indexed`): dosna's chunk is the shard, and a
 * shard's bytes become the chunk's raw C-order cells by decoding its inner chunks into place.
 * Read-only: dosna keeps the codec as it found it (so attribute changes keep it) and refuses
 * to write chunks of a sharded array.
 *
 * A shard holds its inner chunks, each encoded by the inner codecs, and an index of
 * (offset, nbytes) little-endian uint64 pairs, one per inner chunk in C order, at the end (or
 * start) of the shard, optionally followed by its CRC32C; 2^64-1 twice marks an inner chunk
 * never written (fill value).
 */
import { decodeChunk, type Compression } from '../../codecs/index.js';
import { chunkFill } from '../../commit.js';
import { allocate, bytesPerElement, type TypedArray } from '../../dtypes.js';
import { DosnaError, OptionError } from '../../errors.js';
import { cStrides, product } from '../../slicing.js';
import type { DatasetMeta } from '../../store.js';
import { copyStrided } from '../../strided.js';

/** What reading a shard needs, and the codec as stored (kept verbatim when the metadata is rewritten). */
export interface ShardingSpec {
  readonly innerShape: readonly number[];
  readonly inner?: Compression;
  readonly indexAtStart: boolean;
  readonly indexCrc: boolean;
  readonly codec: Readonly<Record<string, unknown>>;
}

const EMPTY = 0xffffffffffffffffn;

/**
 * The sharding of an array whose codec list is `[sharding_indexed]`, checked against the
 * shard (outer chunk) shape; `innerCodecs` parses the inner codec list as the array codecs are.
 */
export function parseSharding(
  codec: { configuration?: Record<string, unknown> }, shardShape: readonly number[], where: string,
  innerCodecs: (codecs: unknown, where: string) => Compression | undefined,
): ShardingSpec {
  const cfg = codec.configuration ?? {};
  const inner = cfg.chunk_shape;
  if (!Array.isArray(inner) || inner.length !== shardShape.length || !inner.every((n, a) => Number.isSafeInteger(n) && n > 0 && shardShape[a] % n === 0)) {
    throw new DosnaError(`${where}: sharding chunk_shape ${JSON.stringify(inner)} must divide the shard shape ${JSON.stringify(shardShape)}`);
  }
  const index = cfg.index_codecs as { name?: unknown; configuration?: { endian?: unknown } }[] | undefined;
  const names = (index ?? [{ name: 'bytes' }]).map((c) => c.name);
  const indexCrc = names.length === 2 && names[1] === 'crc32c';
  if (names[0] !== 'bytes' || (index?.[0]?.configuration?.endian ?? 'little') !== 'little' || !(names.length === 1 || indexCrc)) {
    throw new OptionError(`${where}: shard index codecs ${JSON.stringify(names)} are not supported (dosna reads bytes, then an optional crc32c)`);
  }
  const location = cfg.index_location ?? 'end';
  if (location !== 'end' && location !== 'start') throw new DosnaError(`${where}: index_location ${JSON.stringify(location)} is neither "end" nor "start"`);
  return { innerShape: inner as number[], inner: innerCodecs(cfg.codecs, `${where} (inner codecs)`), indexAtStart: location === 'start', indexCrc, codec: codec as Record<string, unknown> };
}

/** CRC32C (Castagnoli), as zarr's `crc32c` codec appends it (little-endian). */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The raw bytes of the whole shard (the dataset's chunk) from its stored bytes; `where` names it in errors. */
export async function decodeShard(spec: ShardingSpec, meta: DatasetMeta, stored: Uint8Array, where: string): Promise<Uint8Array> {
  const grid = meta.chunkSize.map((n, a) => n / spec.innerShape[a]);
  const count = product(grid);
  const indexBytes = 16 * count + (spec.indexCrc ? 4 : 0);
  if (stored.byteLength < indexBytes) throw new DosnaError(`${where}: a shard of ${stored.byteLength} bytes cannot hold its index of ${indexBytes}`);
  const indexAt = spec.indexAtStart ? 0 : stored.byteLength - indexBytes;
  const index = stored.subarray(indexAt, indexAt + 16 * count);
  if (spec.indexCrc) {
    const view = new DataView(stored.buffer, stored.byteOffset + indexAt + 16 * count, 4);
    if (view.getUint32(0, true) !== crc32c(index)) throw new DosnaError(`${where}: the shard index fails its CRC32C check`);
  }
  const entries = new DataView(index.buffer, index.byteOffset, index.byteLength);
  const itemsize = bytesPerElement(meta.dtype);
  const innerBytes = product(spec.innerShape) * itemsize;
  const out = allocate(meta.dtype, product(meta.chunkSize));
  chunkFill(out, meta);
  const outer = cStrides(meta.chunkSize);
  const innerStrides = cStrides(spec.innerShape);
  const position = new Array<number>(grid.length).fill(0);
  for (let i = 0; i < count; i++) {
    const offset = entries.getBigUint64(16 * i, true);
    const nbytes = entries.getBigUint64(16 * i + 8, true);
    if (!(offset === EMPTY && nbytes === EMPTY)) {
      const start = Number(offset);
      const end = start + Number(nbytes);
      if (end > stored.byteLength) throw new DosnaError(`${where}: inner chunk ${i} (bytes ${start}-${end}) lies outside the shard of ${stored.byteLength} bytes`);
      const raw = stored.subarray(start, end);
      const bytes = spec.inner ? await decodeChunk(spec.inner, itemsize, raw, innerBytes, 'numcodecs') : raw;
      if (bytes.byteLength !== innerBytes) throw new DosnaError(`${where}: inner chunk ${i} holds ${bytes.byteLength} bytes, not ${innerBytes}`);
      const aligned = bytes.byteOffset % itemsize === 0 ? bytes : bytes.slice();
      const cells = new (out.constructor as new (b: ArrayBufferLike, o: number, n: number) => TypedArray)(aligned.buffer, aligned.byteOffset, product(spec.innerShape));
      const origin = position.reduce((sum, p, a) => sum + p * spec.innerShape[a] * outer[a], 0);
      copyStrided({ data: out, offset: origin, shape: spec.innerShape, strides: outer }, { data: cells, offset: 0, shape: spec.innerShape, strides: innerStrides });
    }
    for (let a = grid.length - 1; a >= 0; a--) {
      if (++position[a] < grid[a]) break;
      position[a] = 0;
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
