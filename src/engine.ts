/**
 * The engine seam. An engine decides where and how many chunk tasks run; the tasks themselves
 * are the shared `executeChunk` of chunk-ops.ts. A session is opened per connection.
 */
import type { ChunkJob } from './chunk-ops.js';
import type { Progress, RunReport } from './concurrency.js';
import type { DType, TypedArray } from './dtypes.js';
import type { ChunkIndex, ConnectionSettings, DatasetMeta, Store } from './store.js';

export interface RunOptions {
  /** Short name of the operation, for reports (`get`, `load`, `map`, ...). */
  readonly operation: string;
  /**
   * Collective operations (load, map, apply, clear, clone) are called by every rank of a
   * multi-process engine and shared out between them; others (get, set) are each caller's own.
   */
  readonly collective: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: Progress) => void;
}

/** An engine attached to one connection. */
export interface EngineSession {
  /** This process's rank and the number of ranks (0 and 1 outside `cluster-rank`). */
  readonly rank: number;
  readonly size: number;
  /**
   * Runs `fn` on the root rank only; the others wait and get its result. `what` names the
   * user's call it belongs to (`delDataset("x")`), for the error when ranks disagree.
   */
  onRoot<T>(fn: () => Promise<T>, what?: string): Promise<T>;
  /** Waits until every rank has arrived; `what` as for `onRoot`. */
  barrier(what?: string): Promise<void>;
  /**
   * Every rank's `value`, in rank order, on every rank (MPI's allgather; `[value]` with one
   * rank). Values cross processes as JSON with bigints, non-finite numbers and typed arrays kept.
   */
  allgather<T>(value: T, what?: string): Promise<T[]>;
  /**
   * A result buffer that this engine's tasks can write into (shared memory where needed);
   * `dataset` is the one the result will be read from, so the engine can tell where its read
   * will run. Not zeroed: a read writes every cell of its result (data or the fill value), and
   * zeroing a fresh result cost as much as the copy into it (profiled: a 8 MiB read of whole
   * 64^3 chunks on ram, half its time in the zeroing allocation).
   */
  allocate(dtype: DType, length: number, dataset?: DatasetMeta): TypedArray;
  /** Runs a job over chunks; rejects with the first task's error after running tasks settle. */
  run(job: ChunkJob, chunks: readonly ChunkIndex[], options: RunOptions): Promise<RunReport>;
  close(): Promise<void>;
}

/** What an engine is given when a connection connects. */
export interface EngineContext {
  readonly settings: ConnectionSettings;
  readonly store: Store;
  readonly options: Readonly<Record<string, unknown>>;
  /** Opens (and caches) a connected store for other settings, e.g. the source of a `load`. */
  storeFor(settings: ConnectionSettings): Promise<Store>;
}

export interface Engine {
  readonly name: string;
  open(context: EngineContext): Promise<EngineSession>;
}
