/**
 * What travels through Redis between the `queue` engine (the caller) and `dosna worker`s: one
 * BullMQ job per chunk, its data and result encoded as the ranks' wire encodes them (bigints,
 * NaN and typed arrays kept). Connection settings go without their secrets: a worker takes
 * credentials from its own environment (the AWS SDK's default chain, a ceph conf file).
 */
import type { ChunkStats } from '../chunk-ops.js';
import type { SerializedError } from '../remote-error.js';
import type { ChunkIndex, ConnectionSettings } from '../store.js';
import type { WorkerJob } from '../engines/worker-pool-worker.js';

/** The queue's name when none is given. */
export const DEFAULT_QUEUE = 'dosna';
export const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

/**
 * BullMQ's timings, tuned so a dead worker is noticed in seconds: a worker holds a job's lock
 * for LOCK_MS and renews it every half of that (from its main thread, which never runs
 * kernels); a lock that expires (the worker died) puts the job back within STALLED_CHECK_MS.
 * A job goes back at most MAX_STALLED times before it fails the run.
 */
export const LOCK_MS = 4000;
export const STALLED_CHECK_MS = 2000;
export const MAX_STALLED = 10;

/** Options that may hold secrets: never sent. */
const SECRET_OPTIONS = new Set(['credentials', 'accessKey', 'secretKey', 'accessKeyId', 'secretAccessKey', 'sessionToken', 'password', 'token']);

/**
 * The settings a worker gets: the connection's, without its secrets, and without `create`: a
 * worker opens what the caller made, and a store it cannot find is an error, not a new store.
 */
export function publicSettings(settings: ConnectionSettings): ConnectionSettings {
  return { ...settings, options: Object.fromEntries(Object.entries(settings.options).filter(([k]) => !SECRET_OPTIONS.has(k) && k !== 'create')) };
}

/**
 * The Redis key that marks a run as given up (failed, aborted, or no worker left): a job of
 * that run still on the queue, or put back later by a dead worker's expired lock, does nothing.
 */
export const cancelledKey = (queue: string, run: string): string => `dosna:${queue}:cancelled:${run}`;

/** One chunk's task. */
export interface QueueTask {
  /** The run's id, and its queue (for `cancelledKey`). */
  readonly run: string;
  readonly queue: string;
  readonly settings: ConnectionSettings;
  readonly job: WorkerJob;
  readonly index: ChunkIndex;
  /** The Redis hash where `apply` notes its commits (see chunk-ops' CommitLedger). */
  readonly ledger?: string;
}

/** What a worker answers: its stats, or the error with the remote stack. Errors do not make BullMQ retry. */
export interface QueueResult {
  readonly worker: string;
  readonly pid: number;
  readonly stats?: ChunkStats;
  readonly error?: SerializedError;
}

/** The BullMQ job data: the encoded task. */
export interface QueueJobData {
  readonly task: string;
}
