/**
 * `dosna worker`: takes the chunk tasks of `queue` engine runs from Redis (BullMQ) and runs
 * them, on any machine that can open the stores they name. Tasks run in worker threads
 * (BullMQ's sandbox: src/queue/processor.ts), so the main thread keeps renewing job locks
 * however long a kernel computes; a worker that dies has its tasks run again by another.
 */
import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { ConnectionError } from '../errors.js';
import { threadEntry } from '../thread-entry.js';
import { LOCK_MS, MAX_STALLED, STALLED_CHECK_MS } from './protocol.js';

/** Options of `startWorker`. */
export interface WorkerOptions {
  /** Redis URL, e.g. redis://host:6379. */
  redis: string;
  /** BullMQ queue name (`dosna` by default). */
  queue: string;
  /** Chunk tasks at once (worker threads). */
  concurrency: number;
  /** Called with one line per task done or failed. */
  log?: (line: string) => void;
}

/** Checks that Redis answers, within a few seconds. */
export async function pingRedis(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null, enableOfflineQueue: false });
  client.on('error', () => {}); // reported below
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new ConnectionError(`cannot reach Redis at ${url}: ${(error as Error).message}`, { cause: error });
  } finally {
    client.disconnect();
  }
}

/** Starts a worker; resolves once it listens, with a function that stops it (after running tasks end). */
export async function startWorker(options: WorkerOptions): Promise<{ name: string; close: () => Promise<void> }> {
  await pingRedis(options.redis);
  // The sandbox threads read it for apply's commit notes.
  process.env.DOSNA_QUEUE_REDIS = options.redis;
  const { url: file, execArgv } = threadEntry(import.meta.url, 'processor', 'dosna worker');
  const name = `${hostname()}:${process.pid}`;
  const connection = new Redis(options.redis, { maxRetriesPerRequest: null });
  // Redis away: BullMQ keeps reconnecting; say so once per outage, not once per attempt.
  let down = false;
  connection.on('error', (error) => {
    if (!down) options.log?.(`${name}: lost Redis at ${options.redis} (${error.message}); reconnecting`);
    down = true;
  });
  connection.on('ready', () => {
    if (down) options.log?.(`${name}: Redis at ${options.redis} is back`);
    down = false;
  });
  const worker = new Worker(options.queue, file, {
    connection, name, concurrency: options.concurrency, useWorkerThreads: true, workerThreadsOptions: { execArgv },
    lockDuration: LOCK_MS, stalledInterval: STALLED_CHECK_MS, maxStalledCount: MAX_STALLED,
  });
  worker.on('completed', (job) => options.log?.(`${name}: chunk task ${job.id} done`));
  worker.on('failed', (job, error) => options.log?.(`${name}: chunk task ${job?.id ?? '?'} failed: ${error.message}`));
  worker.on('error', (error) => { if (!down) options.log?.(`${name}: ${error.message}`); });
  await worker.waitUntilReady();
  return {
    name,
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
}
