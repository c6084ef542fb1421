/**
 * What the hdf5 backend works out once per dataset (by its meta object) to read and write its
 * chunk files: the folder, the chunk's byte size, HDF5's write settings and, for compressed
 * datasets, the header every chunk file starts with.
 */
import * as path from 'node:path';
import { bytesPerElement } from '../../dtypes.js';
import type { DatasetMeta } from '../../store.js';
import { h5, H5WASM_CODES, type ChunkFileLayout } from './h5lib.js';
import { pipelineHeader, type PipelineHeader } from './pipeline.js';

export interface DatasetInfo extends ChunkFileLayout {
  readonly dir: string;
  /** `dir` and a separator: chunk paths are this and a file name (path.join took 5% of a cached line read). */
  readonly dirPrefix: string;
  /** The header of compressed chunk files (pipeline.ts); `undefined` for raw ones. */
  readonly pipeline: PipelineHeader | undefined;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const x of shape) n *= x;
  return n;
}

/** The settings of `meta`'s chunk files, in the folder `dir`. h5wasm must be loaded. */
export function datasetInfo(meta: DatasetMeta, dir: string): DatasetInfo {
  const compression = meta.compression;
  const chunkShape = meta.chunkSize.map((n) => BigInt(n));
  const { lib } = h5();
  return {
    dir,
    dirPrefix: dir.endsWith(path.sep) ? dir : dir + path.sep,
    bytes: product(meta.chunkSize) * bytesPerElement(meta.dtype),
    compressed: compression !== undefined,
    dtype: meta.dtype,
    chunkShape,
    // Compressed chunk files are written by pipeline.ts; HDF5 writes (and templates) raw ones.
    writeMetadata: {
      ...lib.dtype_to_metadata(H5WASM_CODES[meta.dtype]),
      shape: chunkShape,
      maxshape: chunkShape,
      chunks: null,
      compression: 0,
      compression_opts: [],
      track_order: false,
    },
    pipeline: compression ? pipelineHeader(meta.dtype, meta.chunkSize, compression) : undefined,
  };
}
