/**
 * The `queue` engine: a script's collective operations (load from another dataset, map, apply,
 * clone, the reductions) become one BullMQ job per chunk in Redis, run by `dosna worker`
 * processes on any machines that share the store; `get`, `set` and loads from the caller's own
 * arrays stay in the calling process. Workers may come and go: a worker that dies has its job
 * run again by another (BullMQ's stalled-job detection, tuned to seconds), so delivery is at
 * least once, and `apply` notes each commit in Redis before making it so a second run of a task
 * never applies the kernel twice (chunk-ops' CommitLedger). A failing kernel fails the run with
 * the worker's stack, as on every engine. No Redis, or no worker for a while, is a clear error.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { runChunks, type ChunkJob } from '../chunk-ops.js';
import { decode, encode } from '../cluster/wire.js';
import { KeyedMutex, summarize, type RunReport, type TaskRecord } from '../concurrency.js';
import { allocateUninitialized } from '../dtypes.js';
import type { Engine, EngineContext, EngineSession, RunOptions } from '../engine.js';
import { AbortError, ConnectionError, DosnaError, OptionError } from '../errors.js';
import { checkOptions } from '../options.js';
import { reviveError, serializeError } from '../remote-error.js';
import { shipKernel } from '../shipping.js';
import type { ChunkIndex } from '../store.js';
import { pingRedis } from '../queue/worker.js';
import { cancelledKey, DEFAULT_QUEUE, DEFAULT_REDIS, publicSettings, type QueueResult, type QueueTask } from '../queue/protocol.js';
import type { WorkerJob } from './worker-pool-worker.js';
import { concurrencyOption, DEFAULT_CONCURRENCY } from './cpu.js';

/** How often a run checks that some worker is there and Redis answers. */
const WATCH_MS = 1000;

function stringOption(options: Readonly<Record<string, unknown>>, name: string, fallback: string): string {
  const value = options[name] ?? fallback;
  if (typeof value !== 'string' || value === '') throw new OptionError(`engine option ${name} must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

/** The job as workers get it: kernels shipped (by source, or as module references), a copy's source settings without secrets. */
function toWorkerJob(job: ChunkJob): WorkerJob {
  if (job.kind === 'map' || job.kind === 'reduce') return { ...job, kernel: shipKernel(job.kernel) };
  if (job.kind === 'copy') return { ...job, source: { ...job.source, settings: publicSettings(job.source.settings) } };
  return job as WorkerJob;
}

/** A worker's answer: our encoded text, which BullMQ may hand over once more JSON-quoted. */
function resultOf(returnvalue: unknown): QueueResult {
  let value = returnvalue;
  for (let unwrap = 0; typeof value === 'string' && unwrap < 2; unwrap++) value = decode(value);
  if (!value || typeof value !== 'object') throw new DosnaError(`a dosna worker answered ${JSON.stringify(returnvalue)?.slice(0, 200)}, not a chunk task's result`);
  return value as QueueResult;
}

class QueueSession implements EngineSession {
  readonly rank = 0;
  readonly size = 1;
  private readonly locks = new KeyedMutex();
  /** Listeners of the runs under way, by job id prefix (the run's id). */
  private readonly runs = new Map<string, { completed: (id: string, value: unknown) => void; failed: (id: string, reason: string) => void }>();
  private lost: Error | undefined;

  constructor(
    private readonly context: EngineContext,
    private readonly url: string,
    private readonly queueName: string,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly connections: Redis[],
    private readonly concurrency: number,
    private readonly noWorkerTimeoutMs: number,
  ) {
    const route = (id: string) => this.runs.get(id.slice(0, id.lastIndexOf('_')));
    events.on('completed', ({ jobId, returnvalue }) => route(jobId)?.completed(jobId, returnvalue));
    events.on('failed', ({ jobId, failedReason }) => route(jobId)?.failed(jobId, failedReason));
    for (const c of connections) {
      c.on('end', () => { this.lost ??= new ConnectionError(`lost the connection to Redis at ${url} (queue engine)`); });
    }
  }

  onRoot<T>(fn: () => Promise<T>): Promise<T> { return fn(); }
  async barrier(): Promise<void> {}
  async allgather<T>(value: T): Promise<T[]> { return [value]; }
  allocate(dtype: Parameters<typeof allocateUninitialized>[0], length: number) { return allocateUninitialized(dtype, length); }

  private async workerCount(): Promise<number> {
    try {
      return (await this.queue.getWorkers()).length;
    } catch (error) {
      throw new ConnectionError(`cannot reach Redis at ${this.url} (queue engine): ${(error as Error).message}`, { cause: error });
    }
  }

  async run(job: ChunkJob, chunks: readonly ChunkIndex[], options: RunOptions): Promise<RunReport> {
    const { signal, onProgress, operation } = options;
    // A copy from a dataset in this process's memory (ram) cannot be read by a worker: it runs here too.
    const local = job.kind === 'read' || job.kind === 'write'
      || (job.kind === 'copy' && (await this.context.storeFor(job.source.settings)).capabilities.processLocal === true);
    if (local) {
      // The caller's own arrays: copying them through Redis to a worker to copy them into the store would only add a hop.
      const env = { store: this.context.store, storeFor: this.context.storeFor };
      const target = job.kind === 'read' ? undefined : job.dataset;
      const run = await runChunks(env, job, chunks, {
        concurrency: this.concurrency, signal, onProgress, locks: this.locks,
        lockKey: target ? (index) => `${target.name}\u0000${index.join(',')}` : undefined,
      });
      return summarize(operation, 'queue', this.concurrency, run);
    }
    const shipped = toWorkerJob(job); // throws before anything is queued
    if (signal?.aborted) throw new AbortError('operation aborted', { cause: signal.reason });
    if (this.lost) throw this.lost;
    if (chunks.length === 0) return summarize(operation, 'queue', this.concurrency, { wallMs: 0, records: [] });
    if (await this.workerCount() === 0) {
      throw new ConnectionError(`no dosna worker is listening on queue "${this.queueName}" at ${this.url}: start some with 'dosna worker --redis ${this.url} --queue ${this.queueName}'`);
    }
    const runId = randomUUID();
    const inPlace = job.kind === 'map' && job.output.name === job.input.name && job.output.uid === job.input.uid;
    const ledger = inPlace ? `dosna:${this.queueName}:ledger:${runId}` : undefined;
    const settings = publicSettings(this.context.settings);
    const t0 = performance.now();
    const ids = chunks.map((_, i) => `${runId}_${i}`); // BullMQ ids may not hold ':'
    const outstanding = new Map(ids.map((id, i) => [id, chunks[i]]));
    const records: TaskRecord[] = [];
    let failure: Error | undefined;
    let bytes = 0;

    // Settles when no job of the run is left: all answered, the waiting ones taken off after a
    // failure, or nobody left to answer (Redis gone, no worker).
    let finish!: () => void;
    const done = new Promise<void>((resolve) => { finish = resolve; });
    const settle = (id: string) => {
      outstanding.delete(id);
      if (outstanding.size === 0) finish();
    };
    const stop = () => void this.cancel(outstanding).then(() => { if (outstanding.size === 0) finish(); });
    {
      this.runs.set(runId, {
        completed: (id, value) => {
          const chunk = outstanding.get(id);
          if (!chunk) return;
          let result: QueueResult;
          try {
            result = resultOf(value);
          } catch (error) {
            result = { worker: '?', pid: 0, error: serializeError(error) };
          }
          if (result.error) failure ??= reviveError(result.error, `dosna worker ${result.worker}`);
          else if (result.stats) {
            const { ioMs, computeMs, bytesRead, bytesWritten, partial } = result.stats;
            records.push({
              chunk, worker: result.pid, queueMs: performance.now() - t0 - ioMs - computeMs, ioMs, computeMs, totalMs: ioMs + computeMs,
              bytesRead, bytesWritten, ...(partial !== undefined ? { partial } : {}),
            });
            bytes += bytesRead + bytesWritten;
            onProgress?.({ done: records.length, total: chunks.length, bytes });
          }
          settle(id);
          if (failure) stop();
        },
        failed: (id, reason) => {
          const chunk = outstanding.get(id);
          if (!chunk) return;
          failure ??= new DosnaError(`chunk [${chunk.join(', ')}] failed on queue "${this.queueName}": ${reason}`);
          settle(id);
          stop();
        },
      });
    }

    const onAbort = () => {
      failure ??= new AbortError('operation aborted', { cause: signal?.reason });
      stop();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let noWorkerSince: number | undefined;
    const watch = setInterval(() => {
      void (async () => {
        try {
          if (this.lost) throw this.lost;
          if (await this.workerCount() > 0) noWorkerSince = undefined;
          else if (Date.now() - (noWorkerSince ??= Date.now()) > this.noWorkerTimeoutMs) {
            throw new ConnectionError(`no dosna worker has been on queue "${this.queueName}" at ${this.url} for ${this.noWorkerTimeoutMs / 1000} s, with ${outstanding.size} chunks of ${operation} left`);
          }
        } catch (error) {
          // Nobody will answer: stop waiting (the jobs left are marked given up below).
          failure ??= error as Error;
          outstanding.clear();
          finish();
        }
      })();
    }, WATCH_MS);
    try {
      await this.queue.addBulk(ids.map((id, i) => ({
        name: operation,
        data: { task: encode({ run: runId, queue: this.queueName, settings, job: shipped, index: chunks[i], ...(ledger ? { ledger } : {}) } satisfies QueueTask) },
        opts: { jobId: id, attempts: 1, removeOnComplete: true, removeOnFail: { age: 3600 } },
      })));
      await done;
    } catch (error) {
      failure ??= new ConnectionError(`cannot queue the chunks of ${operation} in Redis at ${this.url}: ${(error as Error).message}`, { cause: error });
    } finally {
      clearInterval(watch);
      signal?.removeEventListener('abort', onAbort);
      this.runs.delete(runId);
      const [client] = this.connections;
      // A failed run's jobs still on the queue (or put back later, when a dead worker's lock
      // expires) must do nothing: a map's output is deleted, an apply's caller was told it failed.
      if (failure) await client.set(cancelledKey(this.queueName, runId), '1', 'EX', 86_400).catch(() => {});
      if (ledger) await client.del(ledger).catch(() => {});
    }
    if (failure) throw failure;
    return summarize(operation, 'queue', this.concurrency, { wallMs: performance.now() - t0, records });
  }

  /** Takes a failed run's jobs that no worker has started off the queue; the started ones finish. */
  private async cancel(outstanding: Map<string, ChunkIndex>): Promise<void> {
    for (const id of [...outstanding.keys()]) {
      try {
        const state = await this.queue.getJobState(id);
        if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'unknown') {
          await this.queue.remove(id);
          outstanding.delete(id);
        }
      } catch {
        outstanding.delete(id); // Redis is gone: nothing more will come
      }
    }
  }

  async close(): Promise<void> {
    await this.events.close().catch(() => {});
    await this.queue.close().catch(() => {});
    for (const c of this.connections) c.disconnect();
  }
}

export const engine: Engine = {
  name: 'queue',
  async open(context): Promise<EngineSession> {
    checkOptions('the queue engine', context.options, ['redis', 'queue', 'concurrency', 'noWorkerTimeoutMs']);
    if (context.store.capabilities.processLocal) {
      throw new DosnaError(`the queue engine runs chunks in dosna worker processes, which cannot see the ${context.settings.backend} backend's data (it lives in this process); use a store they share (hdf5 on a shared filesystem, s3, ceph, zarr)`);
    }
    const url = stringOption(context.options, 'redis', DEFAULT_REDIS);
    const queueName = stringOption(context.options, 'queue', DEFAULT_QUEUE);
    const concurrency = concurrencyOption(context.options, DEFAULT_CONCURRENCY);
    const noWorkerTimeoutMs = context.options.noWorkerTimeoutMs ?? 10_000;
    if (typeof noWorkerTimeoutMs !== 'number' || !(noWorkerTimeoutMs > 0)) throw new OptionError(`engine option noWorkerTimeoutMs must be a positive number, got ${JSON.stringify(noWorkerTimeoutMs)}`);
    await pingRedis(url);
    // Fail fast rather than queue commands while Redis is away: a run then ends with a clear error.
    const retry = (attempt: number) => (attempt > 5 ? null : 200 * attempt);
    const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: retry });
    const blocking = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: retry });
    for (const c of [client, blocking]) c.on('error', () => {}); // surfaced by the run that needs Redis
    const queue = new Queue(queueName, { connection: client });
    const events = new QueueEvents(queueName, { connection: blocking });
    // Both finish their set-up (BullMQ asks Redis its version) before the session exists: a session
    // closed at once must not cut a connection under a set-up still under way, whose rejection no
    // one would then hear.
    try {
      await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    } catch (error) {
      await Promise.allSettled([events.close(), queue.close()]);
      for (const c of [client, blocking]) c.disconnect();
      throw new ConnectionError(`the queue engine could not set up its queue on Redis at ${url}: ${(error as Error).message}`, { cause: error });
    }
    return new QueueSession(context, url, queueName, queue, events, [client, blocking], concurrency, noWorkerTimeoutMs);
  },
};
