/**
 * dosna: chunked N-dimensional arrays in object stores, processed in parallel.
 *
 * ```ts
 * import * as dn from 'dosna';
 * const con = await dn.connect('tutorial');
 * const ds = await con.createDataset('data', { shape: [100, 100, 100], chunkSize: [32, 32, 32] });
 * await ds.set([dn.s(36, 80)], 5);
 * ```
 * @packageDocumentation
 */
import { Connection, type ConnectionOptions } from './connection.js';
import type { DosnaServer, ServeOptions } from './serve/server.js';

export { use, current, backends, engines, type UseOptions } from './config.js';
export { Connection, type ConnectionOptions, type CreateDatasetOptions } from './connection.js';
export { Dataset } from './dataset/index.js';
export type { ChunkSlice, MapOptions, RunControl, GetOptions, CloneOptions } from './dataset/options.js';
export type { ReduceOptions, ReduceFunction, ReduceKernel, Histogram } from './dataset/reductions.js';
export type { DatasetStats } from './kernels/reductions.js';
export type { AllreduceOp, AllreduceValue } from './allreduce.js';
export { DataChunk } from './chunk.js';
export { Group, type DelGroupOptions } from './group.js';
export { Attributes, type AttrValue, type Attrs, type JsonValue, type AttrsVersion, type AttrsStorage } from './attrs.js';
export type { CacheStats } from './chunk-cache/index.js';
export type { Compression, CompressionName } from './codecs/index.js';
export type { ExportHdf5Options, ImportHdf5Options } from './interop/hdf5-file.js';
export { s, Slice, ELLIPSIS, type Index, type IndexEntry } from './slicing.js';
export { DTYPES, type DType, type Scalar, type TypedArray, type TypedArrayFor, type NumberTypedArray, type BigIntTypedArray } from './dtypes.js';
export { kernel, type ChunkContext, type ChunkFunction, type Kernel, type KernelRef } from './kernel.js';
export type { Progress, RunReport, TaskRecord } from './concurrency.js';
export type { ArrayValue, NestedArray, Value } from './values.js';
export type { Backend, Store, StoreCapabilities, DatasetMeta, ChunkIndex, ConnectionSettings, NodeEntry, NodeKind, AttrsOwner, ChunkVersion, MetaVersion } from './store.js';
export type { Engine, EngineSession, EngineContext, RunOptions } from './engine.js';
export type { ChunkJob, ChunkStats, ReadJob, WriteJob, CopyJob, MapJob, ClearJob, CloneJob, ReduceJob } from './chunk-ops.js';
export type { StridedView } from './strided.js';
export type { Selection, AxisSelection } from './slicing.js';
export { ndarray, type NdArray } from './ndarray.js';
export { nativeStatus, type NativeStatus } from './native.js';
export type { MallocPolicy } from './malloc-policy.js';
export type { ServeOptions, DosnaServer } from './serve/server.js';
export { gaussianWeights, gaussianFilter, gaussianFilter1d, kernels as gaussianKernels, type GaussianArgs, type FloatArray } from './kernels/gaussian.js';
export {
  DosnaError, DatasetNotFoundError, DatasetExistsError, IndexError, ShapeError, DTypeError,
  ConnectionError, InvalidNameError, KernelError, KernelShippingError, AbortError, ChunkExistsError, CorruptChunkError,
  ConflictError, OptionError, GroupNotFoundError, GroupExistsError,
} from './errors.js';

/**
 * Serves connection `con` over HTTP: h5grove's API for the "file" named as the connection and
 * the viewer page at `/` (see serve/server.ts). Throws `OptionError` for an unknown option, or
 * a host beyond loopback without a token.
 *
 * The server's module loads on the first call, not with the library: importing `node:http`
 * loads Node's HTTP stack (undici with it), 1.9 MB of objects that every full garbage
 * collection then marks again. Measured by hand, hdf5, a 256^3 float32 cube in 64^3 chunks,
 * 60 `get`s of it per process, three processes each way alternating: medians 23.6-24.7 ms with
 * the server loaded, 19.9-22.6 ms without (each `get` brings a full collection, see the guide).
 */
export async function serve(con: Connection, options?: ServeOptions): Promise<DosnaServer> {
  return (await import('./serve/server.js')).serve(con, options);
}

/** A connection, not yet connected, with the current backend and engine (or those named in `options`). */
export function connection(name: string, options: ConnectionOptions = {}): Connection {
  return new Connection(name, options);
}

/** Makes and connects a connection; use with `await using con = await dn.connect(...)`. */
export async function connect(name: string, options: ConnectionOptions = {}): Promise<Connection> {
  return new Connection(name, options).connect();
}

/** Connects, runs `fn`, and always disconnects. */
export async function withConnection<T>(name: string, fn: (con: Connection) => Promise<T>): Promise<T>;
export async function withConnection<T>(name: string, options: ConnectionOptions, fn: (con: Connection) => Promise<T>): Promise<T>;
export async function withConnection<T>(
  name: string,
  optionsOrFn: ConnectionOptions | ((con: Connection) => Promise<T>),
  maybeFn?: (con: Connection) => Promise<T>,
): Promise<T> {
  const [options, fn] = typeof optionsOrFn === 'function' ? [{}, optionsOrFn] : [optionsOrFn, maybeFn!];
  const con = await connect(name, options);
  try {
    return await fn(con);
  } finally {
    await con.disconnect();
  }
}
