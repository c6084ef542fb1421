/**
 * The BullMQ processor of `dosna worker`, run in a worker thread of BullMQ's sandbox so that
 * kernels never block the main thread, which renews the job locks. One chunk task per job, with
 * the same `executeChunk` as every engine: the store is opened here from the settings, with the
 * worker's own credentials. Failures come back as data (the error and its stack), not as a
 * thrown error, so BullMQ does not retry them: only a worker's death makes a job run again, and
 * `apply` then finds its note in Redis (see chunk-ops' CommitLedger) instead of applying twice.
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { SandboxedJob } from 'bullmq';
import { executeChunk, type ChunkJob, type CommitLedger, type CommitRecord } from '../chunk-ops.js';
import { decode, encode } from '../cluster/wire.js';
import { serializeError } from '../remote-error.js';
import { installShims, reviveKernel } from '../shipping.js';
import { openStore } from '../store-cache.js';
import type { ConnectionSettings, ChunkIndex } from '../store.js';
import { cancelledKey, type QueueJobData, type QueueResult, type QueueTask } from './protocol.js';
import { DosnaError } from '../errors.js';

installShims();

let redis: Redis | undefined;

/** The worker's Redis, for commit notes and cancelled runs (its URL comes from `dosna worker` through the environment). */
function ledgerClient(): Redis {
  if (!redis) {
    redis = new Redis(process.env.DOSNA_QUEUE_REDIS ?? '', { maxRetriesPerRequest: 3 });
    redis.on('error', () => {}); // a ledger call that fails fails its task, which says why
  }
  return redis;
}

function redisLedger(key: string): CommitLedger {
  const field = (index: ChunkIndex) => index.join('.');
  return {
    async get(index) {
      const raw = await ledgerClient().hget(key, field(index));
      return raw === null ? undefined : (JSON.parse(raw) as CommitRecord);
    },
    async set(index, record) {
      // Kept a day: long enough for any retry of the run, then gone from a shared Redis.
      await ledgerClient().multi().hset(key, field(index), JSON.stringify(record)).expire(key, 86_400).exec();
    },
  };
}

/** Worker-side options merged into every connection's (e.g. a folder mounted elsewhere here): DOSNA_WORKER_OPTIONS, JSON. */
function localSettings(settings: ConnectionSettings): ConnectionSettings {
  const extra = process.env.DOSNA_WORKER_OPTIONS ? (JSON.parse(process.env.DOSNA_WORKER_OPTIONS) as Record<string, unknown>) : {};
  return { ...settings, options: { ...settings.options, ...extra } };
}

export default async function processChunk(job: SandboxedJob<QueueJobData>): Promise<string> {
  const worker = `${hostname()}:${process.pid}`;
  try {
    const task = decode(job.data.task) as QueueTask;
    if (await ledgerClient().exists(cancelledKey(task.queue, task.run))) {
      throw new DosnaError(`the run of this chunk task was given up by its caller (it failed or was aborted): chunk [${task.index.join(', ')}] left alone`);
    }
    const store = await openStore(localSettings(task.settings));
    const chunkJob: ChunkJob = task.job.kind === 'map' || task.job.kind === 'reduce'
      ? { ...task.job, kernel: await reviveKernel(task.job.kernel) }
      : task.job;
    const env = {
      store,
      storeFor: (settings: ConnectionSettings) => openStore(localSettings(settings)),
      ...(task.ledger ? { ledger: redisLedger(task.ledger) } : {}),
    };
    const stats = await executeChunk(env, chunkJob, task.index);
    // Fault injection, for the tests of at-least-once delivery: with DOSNA_QUEUE_FAULT=die-after-task
    // the worker process dies right after its first task did its work (an apply committed), before
    // BullMQ hears of it, as a machine that loses power at the worst moment.
    if (process.env.DOSNA_QUEUE_FAULT === 'die-after-task') process.kill(process.pid, 'SIGKILL');
    return encode({ worker, pid: process.pid, stats } satisfies QueueResult);
  } catch (error) {
    return encode({ worker, pid: process.pid, error: serializeError(error) } satisfies QueueResult);
  }
}
