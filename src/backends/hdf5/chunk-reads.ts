/**
 * Reading chunk files: raw ones we laid out by plain file reads on HDF5's own byte template
 * (template.ts), compressed ones we wrote by one read and our decoder, and any other file
 * (h5py's, Python DosNa's, a damaged one) through HDF5 itself. Every read that HDF5 makes by
 * name checks the file's generation before and after, so a chunk replaced meanwhile is read
 * again, never half old and half new.
 */
import * as fs from 'node:fs';
import { bytesPerElement } from '../../dtypes.js';
import { CorruptChunkError, DosnaError } from '../../errors.js';
import type { ChunkIndex, ChunkVersion, CopyOut, DatasetMeta, Generation } from '../../store.js';
import { codecReason, decodeChunk } from '../../codecs/index.js';
import { fillSegments } from '../../segments.js';
import type { DatasetInfo } from './dataset-info.js';
import { readTemplated, readTemplatedInto, readTemplatedWithGeneration, readWholeFile, statGeneration } from './files.js';
import { hdf5Reason, readThroughHdf5 } from './h5lib.js';
import { filteredChunkOf } from './pipeline.js';
import { makeTemplate } from './template.js';

/** How many times a read retries when the file changed while HDF5 read it by name. */
export const READ_ATTEMPTS = 8;

/** One chunk's file and what is needed to read it. */
export interface ChunkFile {
  readonly meta: DatasetMeta;
  readonly index: ChunkIndex;
  readonly file: string;
  readonly info: DatasetInfo;
}

/** The chunk's bytes (into `into` when it fits and the file is ours), `undefined` when it has no file. */
export async function readChunkFile(chunk: ChunkFile, fastPath: boolean, into?: Uint8Array): Promise<Uint8Array | undefined> {
  const { file, info } = chunk;
  if (info.pipeline) return (await readCompressed(chunk)).bytes;
  const template = fastPath ? makeTemplate(info) : null;
  if (template) {
    const bytes = await readTemplated(file, template, info.bytes, into?.byteLength === info.bytes ? into : undefined);
    if (bytes === undefined) return undefined;
    if (bytes !== null) return bytes;
    // Not our template (h5py wrote it, or it is damaged): HDF5 decides.
  } else if (!fs.existsSync(file)) {
    return undefined;
  }
  return readThroughLibrary(chunk);
}

/** The chunk's bytes with the generation of the file they came from. */
export async function readChunkFileVersion(chunk: ChunkFile, fastPath: boolean, into?: Uint8Array): Promise<ChunkVersion> {
  const { file, info } = chunk;
  if (info.pipeline) return readCompressed(chunk);
  const template = fastPath ? makeTemplate(info) : null;
  for (let attempt = 1; ; attempt++) {
    let before: Generation | null;
    if (template) {
      const read = await readTemplatedWithGeneration(file, template, info.bytes, into?.byteLength === info.bytes ? into : undefined);
      if (!read) return { bytes: undefined, generation: null };
      if (read.bytes) return { bytes: read.bytes, generation: read.generation };
      before = read.generation;
    } else {
      before = statGeneration(file);
      if (before === null) return { bytes: undefined, generation: null };
    }
    // HDF5 opens the file by name: it must be the file whose generation we hold.
    const bytes = readThroughLibrary(chunk);
    const after = statGeneration(file);
    if (after === before) return { bytes, generation: before };
    if (after === null) return { bytes: undefined, generation: null };
    if (attempt >= READ_ATTEMPTS) throw new DosnaError(`chunk file ${file} kept changing while it was read`);
  }
}

/**
 * Reads the chunk's bytes from `start` on into `segments` (one after another); `false` when it
 * has no file, `'copied'` when `copyOut` was made too (see `Store.readChunkInto`).
 */
export async function readChunkFileInto(chunk: ChunkFile, fastPath: boolean, start: number, segments: readonly Uint8Array[], copyOut?: CopyOut): Promise<boolean | 'copied'> {
  const { file, info } = chunk;
  const template = fastPath && !info.pipeline ? makeTemplate(info) : null;
  if (info.pipeline) {
    if (!fs.existsSync(file)) return false;
  } else if (template) {
    const status = await readTemplatedInto(file, template, info.bytes, start, segments, copyOut);
    if (status === 'copied') return status;
    if (status !== 'foreign') return status === 'read';
  } else if (!fs.existsSync(file)) {
    return false;
  }
  const bytes = info.pipeline ? (await readCompressed(chunk)).bytes : readThroughLibrary(chunk);
  if (!bytes) return false;
  fillSegments(segments, bytes, start);
  return true;
}

/**
 * Reads a compressed chunk file with its generation: one read of the whole file, decoded
 * here when we wrote it (its header is ours byte for byte), else read through HDF5 (h5py's
 * files; HDF5 decodes deflate, shuffle, fletcher32 and scale-offset itself).
 */
async function readCompressed(chunk: ChunkFile): Promise<ChunkVersion> {
  const { meta, index, file, info } = chunk;
  const c = meta.compression!;
  for (let attempt = 1; ; attempt++) {
    const read = await readWholeFile(file);
    if (!read) return { bytes: undefined, generation: null };
    const filtered = filteredChunkOf(info.pipeline!, read.bytes);
    if (filtered) {
      try {
        return { bytes: await decodeChunk(c, bytesPerElement(meta.dtype), filtered, info.bytes, 'hdf5'), generation: read.generation };
      } catch (error) {
        throw new CorruptChunkError(`cannot decode chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} from ${file}: ${codecReason(c, error)}`, file, { cause: error });
      }
    }
    const bytes = readThroughLibrary(chunk);
    const after = statGeneration(file);
    if (after === read.generation) return { bytes, generation: after };
    if (after === null) return { bytes: undefined, generation: null };
    if (attempt >= READ_ATTEMPTS) throw new DosnaError(`chunk file ${file} kept changing while it was read`);
  }
}

/** Reads a chunk file through HDF5 itself (any layout, compression, writer). */
function readThroughLibrary({ meta, index, file, info }: ChunkFile): Uint8Array | undefined {
  try {
    return readThroughHdf5(file, info);
  } catch (error) {
    if (error instanceof DosnaError) throw error;
    if (!fs.existsSync(file)) return undefined; // deleted while we read it
    throw new CorruptChunkError(`cannot read chunk ${JSON.stringify(index)} of dataset ${JSON.stringify(meta.name)} from ${file}: ${hdf5Reason(error)}`, file, { cause: error });
  }
}
