/**
 * The chunk files of a zarr array in a folder: reading one (raw, compressed or a shard of
 * sub-chunks, checked against the array's metadata) and finding which ones are stored, under
 * format 2's dotted keys (`0.1.2`) or format 3's nested folders (`c/0/1/2`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { codecReason, decodeChunk } from '../../codecs/index.js';
import { bytesPerElement } from '../../dtypes.js';
import { CorruptChunkError, DosnaError } from '../../errors.js';
import { PathsByName } from '../../paths.js';
import type { ChunkIndex, ChunkVersion, DatasetMeta } from '../../store.js';
import { errorCode, readFileOfSize, readWholeFile } from '../hdf5/files.js';
import { chunkKey, shardingOf, type ZarrFormat } from './format.js';
import { decodeShard } from './sharding.js';

const CHUNK_V2 = /^\d+(?:\.\d+)*$/;
const INDEX = /^\d+$/;

/**
 * The paths of a folder store's array files, with each array's folder and chunk grid kept (per
 * metadata object; the metadata file's path per name): a read of cached chunks stats the
 * metadata file and each chunk's file, and checking and joining the array's path segments every
 * time cost more than the stats (as on hdf5).
 */
export class ArrayPaths {
  readonly #layouts = new WeakMap<DatasetMeta, { prefix: string; grid: number[] }>();
  readonly #metadataFiles: PathsByName;

  /** `folderOf(name)`: the folder of array `name` (checking the name); `metadataFile`: its metadata file's name. */
  constructor(private readonly format: ZarrFormat, private readonly folderOf: (name: string) => string, metadataFile: string) {
    this.#metadataFiles = new PathsByName((name) => path.join(folderOf(name), metadataFile));
  }

  /** The file of chunk `index` of `meta`; throws for an index outside the chunk grid. */
  chunk(meta: DatasetMeta, index: ChunkIndex): string {
    let layout = this.#layouts.get(meta);
    if (!layout) {
      layout = { prefix: this.folderOf(meta.name) + path.sep, grid: meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a])) };
      this.#layouts.set(meta, layout);
    }
    const { prefix, grid } = layout;
    if (index.length !== grid.length || !index.every((i, a) => Number.isSafeInteger(i) && i >= 0 && i < Math.max(1, grid[a]))) {
      throw new DosnaError(`chunk index ${JSON.stringify(index)} is not valid for dataset ${JSON.stringify(meta.name)} with chunk grid ${JSON.stringify(grid)}`);
    }
    return prefix + chunkKey(this.format, index);
  }

  /** The metadata file of array `name`. */
  metadata(name: string): string {
    return this.#metadataFiles.get(name);
  }
}

/** Bytes of one whole chunk of `meta`, decoded. */
export function chunkBytes(meta: DatasetMeta): number {
  return meta.chunkSize.reduce((a, b) => a * b, 1) * bytesPerElement(meta.dtype);
}

/** The chunk stored in `file`: its decoded bytes and generation (no bytes when there is no file). */
export async function readChunkFile(meta: DatasetMeta, index: ChunkIndex, file: string): Promise<ChunkVersion> {
  const sharding = shardingOf(meta);
  const c = meta.compression;
  let read: Awaited<ReturnType<typeof readWholeFile>>;
  try {
    if (!sharding && !c) {
      // Uncompressed: the chunk's size is known, so its bytes are read in one step, and a
      // file of another size is read again whole for the error to say what it holds.
      const exact = await readFileOfSize(file, chunkBytes(meta));
      read = exact?.bytes ? { bytes: exact.bytes, generation: exact.generation } : exact && await readWholeFile(file);
    } else {
      read = await readWholeFile(file);
    }
  } catch (error) {
    if ((error as { cause?: unknown }).cause && errorCode((error as { cause: unknown }).cause) === 'ENOTDIR') return { bytes: undefined, generation: null };
    throw error;
  }
  if (!read) return { bytes: undefined, generation: null };
  if (sharding) {
    try {
      return { bytes: await decodeShard(sharding, meta, read.bytes, file), generation: read.generation };
    } catch (error) {
      throw new CorruptChunkError(`cannot read shard ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)}: ${(error as Error).message}`, file, { cause: error });
    }
  }
  if (c) {
    try {
      return { bytes: await decodeChunk(c, bytesPerElement(meta.dtype), read.bytes, chunkBytes(meta), 'numcodecs'), generation: read.generation };
    } catch (error) {
      throw new CorruptChunkError(`cannot decode chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} from ${file}: ${codecReason(c, error)}`, file, { cause: error });
    }
  }
  if (read.bytes.byteLength !== chunkBytes(meta)) {
    throw new CorruptChunkError(`chunk file ${file} holds ${read.bytes.byteLength} bytes, not the ${chunkBytes(meta)} of a full ${meta.chunkSize.join('x')} ${meta.dtype} chunk`, file);
  }
  return { bytes: read.bytes, generation: read.generation };
}

/** The indices of the chunks stored in the array folder `dir`, inside `meta`'s chunk grid. */
export async function listChunkFiles(meta: DatasetMeta, dir: string, format: ZarrFormat): Promise<ChunkIndex[]> {
  const ndim = meta.shape.length;
  const grid = meta.shape.map((n, a) => Math.ceil(n / meta.chunkSize[a]));
  const inGrid = (index: number[]) => index.length === ndim && index.every((i, a) => i < Math.max(1, grid[a]));
  const out: ChunkIndex[] = [];
  if (format === 2) {
    for (const name of await fs.promises.readdir(dir)) {
      if (!CHUNK_V2.test(name)) continue;
      const index = ndim === 0 ? [] : name.split('.').map(Number);
      if (inGrid(index)) out.push(index);
    }
    return out;
  }
  const walk = async (folder: string, prefix: number[]): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(folder, { withFileTypes: true });
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return;
      throw error;
    }
    for (const e of entries) {
      if (!INDEX.test(e.name)) continue;
      const index = [...prefix, Number(e.name)];
      if (index.length === ndim) {
        if (e.isFile() && inGrid(index)) out.push(index);
      } else if (e.isDirectory()) await walk(path.join(folder, e.name), index);
    }
  };
  if (ndim === 0) {
    if (fs.existsSync(path.join(dir, 'c'))) out.push([]);
  } else await walk(path.join(dir, 'c'), []);
  return out;
}
