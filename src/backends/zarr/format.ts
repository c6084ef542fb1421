/**
 * Zarr metadata, versions 2 and 3, to and from dosna's `DatasetMeta` and attributes.
 *
 * ```text
 * v3  <node>/zarr.json       {"zarr_format": 3, "node_type": "array" | "group", ..., "attributes": {...}}
 *     <array>/c/<i>/<j>/<k>  a chunk (the default chunk key encoding, separator "/")
 * v2  <array>/.zarray        {"zarr_format": 2, "shape", "chunks", "dtype": "<f4", "compressor", "filters", "fill_value", "order": "C", ...}
 *     <group>/.zgroup        {"zarr_format": 2}
 *     <node>/.zattrs         the attributes
 *     <array>/<i>.<j>.<k>    a chunk
 * ```
 *
 * Chunks hold the full chunk shape (edge chunks padded), little-endian C order, compressed as
 * `codecs/` does for the object stores (numcodecs' framing, which is what zarr stores). The
 * dataset's identity (`dosna_uid`) is kept among the attributes, where zarr tools carry it
 * along untouched; dosna never shows it as an attribute.
 */
import { decodeAttrs, encodeAttrs, RESERVED_ATTR_PREFIX, type Attrs } from '../../attrs.js';
import { checkCompression, fromNumcodecs, toNumcodecs, type Compression } from '../../codecs/index.js';
import { bytesPerElement, castScalar, DTYPES, fromNumpyTypeString, isBigIntDType, toNumpyTypeString, type DType, type Scalar } from '../../dtypes.js';
import { DosnaError, DTypeError, OptionError } from '../../errors.js';
import type { DatasetMeta } from '../../store.js';
import { parseSharding, type ShardingSpec } from './sharding.js';

export type ZarrFormat = 2 | 3;

/** The attribute that holds a dataset's identity. */
export const UID_ATTRIBUTE = 'dosna_uid';

/** The metadata file of an array, of a group, and (v2) of attributes. */
export const FILES = {
  3: { array: 'zarr.json', group: 'zarr.json', attrs: 'zarr.json' },
  2: { array: '.zarray', group: '.zgroup', attrs: '.zattrs' },
} as const;

/** The sharding of an array dosna read (zarr v3 `sharding_indexed`), if it is sharded. */
export function shardingOf(meta: DatasetMeta): ShardingSpec | undefined {
  return meta.options?.sharding as ShardingSpec | undefined;
}

/** Refuses to change a sharded array (dosna reads them; writing shards is not built). */
export function refuseSharded(meta: DatasetMeta, what: string): void {
  if (shardingOf(meta)) throw new OptionError(`dataset ${JSON.stringify(meta.name)} is a sharded zarr array, which dosna reads but has not ${what}: copy it into a new dataset (clone or map) to change it`);
}

/** A chunk's key relative to its array's folder. */
export function chunkKey(format: ZarrFormat, index: readonly number[]): string {
  return format === 3 ? ['c', ...index].join('/') : index.length === 0 ? '0' : index.join('.');
}

/** JSON text in which 64-bit integers stay exact (JSON numbers, as zarr writes them). */
function stringify(value: unknown): string {
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `@dosna-bigint:${v}@` : v), 2);
  return `${text.replace(/"@dosna-bigint:(-?\d+)@"/g, '$1')}\n`;
}

/** A fill value as zarr's JSON has it: numbers, "NaN", "Infinity", "-Infinity". */
function fillToJson(dtype: DType, value: Scalar): unknown {
  if (isBigIntDType(dtype)) return BigInt(value);
  const n = Number(value);
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  return n;
}

/** The fill value of `text` (a metadata document): 64-bit integers read from the text itself. */
function fillFromJson(dtype: DType, raw: unknown, text: string): Scalar {
  if (raw === null || raw === undefined) return castScalar(dtype, 0); // zarr v2: no fill value
  if (isBigIntDType(dtype) && typeof raw === 'number') {
    const m = /"fill_value"\s*:\s*(-?\d+)/.exec(text);
    if (m) return castScalar(dtype, BigInt(m[1]));
  }
  if (typeof raw === 'string') {
    const special: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
    if (raw in special) return castScalar(dtype, special[raw]);
    throw new DosnaError(`fill_value ${JSON.stringify(raw)} is not one dosna reads`);
  }
  if (typeof raw === 'boolean') return castScalar(dtype, raw ? 1 : 0);
  return castScalar(dtype, isBigIntDType(dtype) ? BigInt(raw as number) : raw);
}

/** v3 codecs after `bytes`: zstd and gzip by their core names, shuffle and LZ4 as zarr-python's numcodecs adapters. */
function v3Codecs(c: Compression | undefined, itemsize: number): unknown[] {
  const codecs: unknown[] = [{ name: 'bytes', configuration: { endian: 'little' } }];
  if (!c) return codecs;
  if (c.shuffle) codecs.push({ name: 'numcodecs.shuffle', configuration: { elementsize: itemsize } });
  if (c.codec === 'zstd') codecs.push({ name: 'zstd', configuration: { level: c.level, checksum: false } });
  if (c.codec === 'gzip') codecs.push({ name: 'gzip', configuration: { level: c.level } });
  if (c.codec === 'lz4') codecs.push({ name: 'numcodecs.lz4', configuration: { acceleration: 1 } });
  return codecs;
}

function fromV3Codecs(codecs: unknown, where: string): Compression | undefined {
  if (!Array.isArray(codecs) || codecs.length === 0) throw new DosnaError(`${where}: codecs must be a list`);
  const [first, ...rest] = codecs as { name?: unknown; configuration?: Record<string, unknown> }[];
  if (first.name !== 'bytes') throw new OptionError(`${where}: unsupported array codec ${JSON.stringify(first.name)} (dosna reads "bytes")`);
  if (first.configuration?.endian !== undefined && first.configuration.endian !== 'little') throw new OptionError(`${where}: big-endian arrays are not supported`);
  let shuffle = false;
  let compressor: Compression | undefined;
  for (const codec of rest) {
    if (codec.name === 'numcodecs.shuffle' || codec.name === 'shuffle') {
      if (compressor) throw new OptionError(`${where}: a shuffle after the compressor is not supported`);
      shuffle = true;
    } else if (!compressor && (codec.name === 'zstd' || codec.name === 'gzip')) {
      compressor = checkCompression({ compression: codec.name, compressionLevel: codec.configuration?.level, shuffle });
    } else if (!compressor && (codec.name === 'numcodecs.lz4' || codec.name === 'lz4')) {
      compressor = checkCompression({ compression: 'lz4', shuffle });
    } else {
      throw new OptionError(`${where}: unsupported codec ${JSON.stringify(codec.name)} (dosna reads bytes, numcodecs.shuffle, zstd, gzip, numcodecs.lz4)`);
    }
  }
  if (shuffle && !compressor) throw new OptionError(`${where}: a shuffle without a compressor is not supported`);
  return compressor;
}

/** A node's user attributes plus dosna's identity, as stored. */
function storedAttrs(attrs: Attrs, uid: string): Record<string, unknown> {
  return JSON.parse(encodeAttrs({ ...attrs, ...(uid ? { [UID_ATTRIBUTE]: uid } : {}) })) as Record<string, unknown>;
}

/** Splits stored attributes into the user's and dosna's identity. */
export function splitAttrs(stored: unknown): { attrs: Attrs; uid: string } {
  if (stored === undefined || stored === null) return { attrs: {}, uid: '' };
  if (typeof stored !== 'object' || Array.isArray(stored)) throw new DosnaError('attributes must be a JSON object');
  const all = decodeAttrs(JSON.stringify(stored));
  const uid = typeof all[UID_ATTRIBUTE] === 'string' ? (all[UID_ATTRIBUTE] as string) : '';
  return { attrs: Object.fromEntries(Object.entries(all).filter(([k]) => !k.startsWith(RESERVED_ATTR_PREFIX))), uid };
}

/** The files of an array: name -> text (v3: zarr.json; v2: .zarray and .zattrs). */
export function encodeArray(format: ZarrFormat, meta: DatasetMeta, attrs: Attrs): Record<string, string> {
  const itemsize = bytesPerElement(meta.dtype);
  if (format === 3) {
    return {
      'zarr.json': stringify({
        zarr_format: 3,
        node_type: 'array',
        shape: meta.shape,
        data_type: meta.dtype,
        chunk_grid: { name: 'regular', configuration: { chunk_shape: meta.chunkSize } },
        chunk_key_encoding: { name: 'default', configuration: { separator: '/' } },
        fill_value: fillToJson(meta.dtype, meta.fillValue),
        // A sharded array (read, never made, by dosna) keeps its codec as found.
        codecs: shardingOf(meta) ? [shardingOf(meta)!.codec] : v3Codecs(meta.compression, itemsize),
        attributes: storedAttrs(attrs, meta.uid),
      }),
    };
  }
  const codecs = meta.compression ? toNumcodecs(meta.compression, itemsize) : { filters: null, compressor: null };
  return {
    '.zarray': stringify({
      zarr_format: 2,
      shape: meta.shape,
      chunks: meta.chunkSize,
      dtype: toNumpyTypeString(meta.dtype),
      compressor: codecs.compressor,
      fill_value: fillToJson(meta.dtype, meta.fillValue),
      order: 'C',
      filters: codecs.filters,
      dimension_separator: '.',
    }),
    '.zattrs': stringify(storedAttrs(attrs, meta.uid)),
  };
}

/** The files of a group with `attrs`. */
export function encodeGroup(format: ZarrFormat, attrs: Attrs): Record<string, string> {
  if (format === 3) return { 'zarr.json': stringify({ zarr_format: 3, node_type: 'group', attributes: storedAttrs(attrs, '') }) };
  return { '.zgroup': stringify({ zarr_format: 2 }), '.zattrs': stringify(storedAttrs(attrs, '')) };
}

function positiveInts(value: unknown, what: string, allowZero: boolean): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v) && (allowZero ? v >= 0 : v > 0))) {
    throw new DosnaError(`${what} must be a list of ${allowZero ? 'non-negative' : 'positive'} integers, got ${JSON.stringify(value)}`);
  }
  return value as number[];
}

/** An array's metadata from its metadata text (and, for v2, its .zattrs text). */
export function decodeArray(format: ZarrFormat, name: string, text: string, attrsText: string | undefined, where: string): { meta: DatasetMeta; attrs: Attrs } {
  const doc = JSON.parse(text) as Record<string, unknown>;
  if (typeof doc !== 'object' || doc === null) throw new DosnaError(`${where} is not a JSON object`);
  if (doc.zarr_format !== format) throw new DosnaError(`${where} is zarr format ${JSON.stringify(doc.zarr_format)}, not ${format}`);
  let dtype: DType;
  let chunkSize: number[];
  let compression: Compression | undefined;
  let stored: unknown;
  let sharding: ShardingSpec | undefined;
  if (format === 3) {
    if (doc.node_type !== 'array') throw new DosnaError(`${where} is not an array`);
    if (typeof doc.data_type !== 'string' || !(DTYPES as readonly string[]).includes(doc.data_type)) {
      throw new DTypeError(`${where}: data_type ${JSON.stringify(doc.data_type)} is not one dosna has (${DTYPES.join(', ')})`);
    }
    dtype = doc.data_type as DType;
    const grid = doc.chunk_grid as { name?: unknown; configuration?: { chunk_shape?: unknown } } | undefined;
    if (grid?.name !== 'regular') throw new OptionError(`${where}: chunk grid ${JSON.stringify(grid?.name)} is not supported (dosna reads "regular")`);
    chunkSize = positiveInts(grid.configuration?.chunk_shape, 'chunk_shape', false);
    const keys = doc.chunk_key_encoding as { name?: unknown; configuration?: { separator?: unknown } } | undefined;
    if (keys?.name !== 'default' || (keys.configuration?.separator ?? '/') !== '/') {
      throw new OptionError(`${where}: chunk key encoding ${JSON.stringify(keys)} is not supported (dosna reads "default" with "/")`);
    }
    const codecList = doc.codecs as { name?: unknown }[] | undefined;
    if (Array.isArray(codecList) && codecList[0]?.name === 'sharding_indexed') {
      if (codecList.length !== 1) throw new OptionError(`${where}: codecs after sharding_indexed are not supported`);
      sharding = parseSharding(codecList[0] as { configuration?: Record<string, unknown> }, chunkSize, where, fromV3Codecs);
    } else {
      compression = fromV3Codecs(doc.codecs, where);
    }
    stored = doc.attributes;
  } else {
    if (typeof doc.dtype !== 'string') throw new DosnaError(`${where}: dtype must be a string`);
    dtype = fromNumpyTypeString(doc.dtype);
    if (doc.dtype.startsWith('>') && bytesPerElement(dtype) > 1) throw new OptionError(`${where}: big-endian arrays are not supported`);
    if (doc.order !== undefined && doc.order !== 'C') throw new OptionError(`${where}: order ${JSON.stringify(doc.order)} is not supported (dosna stores C order)`);
    if ((doc.dimension_separator ?? '.') !== '.') throw new OptionError(`${where}: dimension separator ${JSON.stringify(doc.dimension_separator)} is not supported (dosna reads ".")`);
    chunkSize = positiveInts(doc.chunks, 'chunks', false);
    compression = fromNumcodecs(doc.filters, doc.compressor, where);
    stored = attrsText === undefined ? undefined : JSON.parse(attrsText);
  }
  const shape = positiveInts(doc.shape, 'shape', true);
  if (shape.length !== chunkSize.length) throw new DosnaError(`${where}: shape ${JSON.stringify(shape)} and chunks ${JSON.stringify(chunkSize)} differ in rank`);
  const { attrs, uid } = splitAttrs(stored);
  const meta: DatasetMeta = {
    name, shape, dtype, chunkSize, fillValue: fillFromJson(dtype, doc.fill_value, text), uid,
    ...(compression ? { compression } : {}),
    ...(sharding ? { options: { sharding }, readOnly: `dataset ${JSON.stringify(name)} is a sharded zarr array, which dosna reads but does not write: copy it into a new dataset (clone or map) to change it` } : {}),
  };
  return { meta, attrs };
}
