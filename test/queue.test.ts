/**
 * The queue engine's failure semantics, with a real redis-server and real `dosna worker`
 * processes on the hdf5 backend: a worker SIGKILLed in the middle of a map and of an apply (both
 * complete; the map equals the cpu engine's, every cell of the apply changes exactly once, also
 * when a worker dies right after committing, before BullMQ hears of it); kernels that throw;
 * no Redis, Redis stopped, no worker, workers gone, a worker that cannot open the store: clear
 * errors, not hangs. (The conformance suites run on the queue engine too: test/support/matrix.ts.)
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { startRedis, startWorkers, stopProcess } from '../scripts/queue-service.js';

/** A chunk kernel that takes about `ctx.args.ms` of CPU (so a run lasts long enough to kill a worker in it), then adds 1. */
const slowPlusOne = (chunk: dn.NdArray, ctx: dn.ChunkContext) => {
  const until = Date.now() + (ctx.args as { ms: number }).ms;
  while (Date.now() < until) { /* busy: a kernel computing */ }
  const d = chunk.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] += 1;
};

const SHAPE = [24, 24, 24];
const CHUNKS = [8, 8, 4]; // 3 x 3 x 6 = 54 chunks
const pattern = () => Float32Array.from({ length: 24 ** 3 }, (_, i) => (i * 7) % 1000);

describe('the queue engine with real workers', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let directory: string;
  const workers: ChildProcess[] = [];
  let queueCount = 0;
  /** A queue of its own for each test, with `count` workers (env added to theirs). */
  async function queueWithWorkers(count: number, env: NodeJS.ProcessEnv = {}, concurrency = 1): Promise<{ queue: string; started: ChildProcess[] }> {
    const queue = `q${process.pid}-${queueCount++}`;
    const started = await startWorkers(redis.url, queue, count, env, concurrency);
    workers.push(...started);
    return { queue, started };
  }
  const connect = (name: string, queue: string, extra: Record<string, unknown> = {}) => dn.connect(name, {
    backend: 'hdf5', directory, create: true, engine: 'queue', engineOptions: { redis: redis.url, queue, ...extra },
  });
  const exited = (child: ChildProcess) => new Promise<NodeJS.Signals | number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode ?? child.exitCode);
    else child.once('exit', (code, signal) => resolve(signal ?? code));
  });

  beforeAll(async () => {
    redis = await startRedis();
    directory = mkdtempSync(join(tmpdir(), 'dosna-queue-'));
  }, 900_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => stopProcess(w)));
    await redis?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  it('a worker SIGKILLed in the middle of a map: the map completes, equal to the cpu engine\'s', async () => {
    const { queue, started } = await queueWithWorkers(3);
    const con = await connect('kill-map', queue);
    try {
      const ds = await con.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      let killed = false;
      const out = await ds.map((chunk, ctx) => {
        const until = Date.now() + (ctx.args as { ms: number }).ms;
        while (Date.now() < until) { /* busy */ }
        return Float32Array.from(chunk.data as Float32Array, (v) => v * 3 - 1);
      }, 'out', {
        args: { ms: 60 },
        onProgress: ({ done }) => { if (done === 6 && !killed) { killed = true; started[0].kill('SIGKILL'); } },
      });
      expect(await exited(started[0])).toBe('SIGKILL');
      const ran = new Set(ds.lastRun!.tasks.map((t) => t.worker));
      expect(ds.lastRun!.tasks).toHaveLength(54);
      expect(ran.size).toBeGreaterThanOrEqual(2);
      const expected = Float32Array.from(pattern(), (v) => v * 3 - 1);
      expect((await out.get()).data).toEqual(expected);
    } finally {
      await con.disconnect();
    }
  });

  it('a worker SIGKILLed in the middle of an apply: every cell changed exactly once', async () => {
    const { queue, started } = await queueWithWorkers(3);
    const con = await connect('kill-apply', queue);
    try {
      const ds = await con.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      let killed = false;
      await ds.apply(slowPlusOne, {
        args: { ms: 60 },
        onProgress: ({ done }) => { if (done === 6 && !killed) { killed = true; started[1].kill('SIGKILL'); } },
      });
      expect(await exited(started[1])).toBe('SIGKILL');
      expect((await ds.get()).data).toEqual(Float32Array.from(pattern(), (v) => v + 1));
    } finally {
      await con.disconnect();
    }
  });

  it('a worker that dies right after committing, before BullMQ hears of it: the retry does not apply twice', async () => {
    // One worker dies after its first task's commit; the others run its task again.
    const faulty = await queueWithWorkers(1, { DOSNA_QUEUE_FAULT: 'die-after-task' });
    const con = await connect('die-after-commit', faulty.queue);
    try {
      const ds = await con.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      const run = ds.apply(slowPlusOne, { args: { ms: 5 } });
      expect(await exited(faulty.started[0])).toBe('SIGKILL');
      // Only now the healthy workers join: the dead worker's job waits for them.
      workers.push(...await startWorkers(redis.url, faulty.queue, 2, {}, 1));
      await run;
      expect((await ds.get()).data).toEqual(Float32Array.from(pattern(), (v) => v + 1));
      // The commit notes are gone with the run.
      const { Redis } = await import('ioredis');
      const client = new Redis(redis.url);
      expect(await client.keys('dosna:*ledger*')).toEqual([]);
      client.disconnect();
    } finally {
      await con.disconnect();
    }
  }, 120_000);

  it('a kernel that throws fails the run with the worker\'s stack and the chunk, and nothing is retried', async () => {
    const { queue } = await queueWithWorkers(2);
    const con = await connect('throws', queue);
    try {
      const ds = await con.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      const error = await ds.map((_c, ctx) => { if (ctx.index.join() === '1,2,3') throw new RangeError('no such sample'); }, 'out').then(() => undefined, (e: unknown) => e as Error);
      expect(error).toBeInstanceOf(dn.KernelError);
      expect(error!.message).toBe('chunk function failed on chunk [1, 2, 3]: no such sample');
      expect(error!.stack).toMatch(/dosna worker [^\n]+:\d+/);
      expect(await con.hasDataset('out')).toBe(false);
    } finally {
      await con.disconnect();
    }
  });

  it('no Redis, Redis stopped, no worker, workers gone: clear errors within seconds', async () => {
    const dead = await startRedis();
    await dead.stop();
    await expect(dn.connect('x', { backend: 'hdf5', directory, create: true, engine: 'queue', engineOptions: { redis: dead.url } }))
      .rejects.toThrow(new RegExp(`cannot reach Redis at ${dead.url}`));

    // Nobody listens on this queue.
    const lonely = await connect('no-worker', `nobody-${process.pid}`);
    try {
      const ds = await lonely.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      await expect(ds.map((c) => c, 'out')).rejects.toThrow(/no dosna worker is listening on queue "nobody-\d+" .*: start some with 'dosna worker --redis/);
    } finally {
      await lonely.disconnect();
    }

    // Every worker dies in the middle: the run fails once none has been there for noWorkerTimeoutMs.
    const { queue, started } = await queueWithWorkers(2);
    const con = await connect('workers-gone', queue, { noWorkerTimeoutMs: 3000 });
    try {
      const ds = await con.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      let killed = false;
      const t0 = Date.now();
      await expect(ds.apply(slowPlusOne, {
        args: { ms: 100 },
        onProgress: () => { if (!killed) { killed = true; for (const w of started) w.kill('SIGKILL'); } },
      })).rejects.toThrow(/no dosna worker has been on queue "q\d+-\d+" .* for 3 s, with \d+ chunks of apply left/);
      expect(Date.now() - t0).toBeLessThan(30_000);
      // What was applied was applied once: every cell is its old or its new value.
      const now = (await ds.get()).data as Float32Array;
      const old = pattern();
      expect(now.every((v, i) => v === old[i] || v === old[i] + 1)).toBe(true);
      // The run's jobs left on the queue (and those of the dead workers, put back when their
      // locks expire) do nothing when a worker comes: the caller gave the run up.
      workers.push(...await startWorkers(redis.url, queue, 1, {}, 1));
      const { Queue } = await import('bullmq');
      const probe = new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port } });
      try {
        await expect.poll(async () => {
          const counts = await probe.getJobCounts('waiting', 'active', 'delayed');
          return counts.waiting + counts.active + counts.delayed;
        }, { timeout: 30_000, interval: 500 }).toBe(0);
      } finally {
        await probe.close();
      }
      expect((await ds.get()).data).toEqual(now);
    } finally {
      await con.disconnect();
    }

    // Redis stops while a run waits: the run ends with a ConnectionError, not a hang.
    const own = await startRedis();
    const ownWorkers = await startWorkers(own.url, 'stopping', 1, {}, 1);
    workers.push(...ownWorkers);
    const stopping = await dn.connect('redis-stops', { backend: 'hdf5', directory, create: true, engine: 'queue', engineOptions: { redis: own.url, queue: 'stopping' } });
    try {
      const ds = await stopping.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      let stopped = false;
      const t0 = Date.now();
      const error = await ds.apply(slowPlusOne, {
        args: { ms: 50 },
        onProgress: () => { if (!stopped) { stopped = true; void own.stop(); } },
      }).then(() => undefined, (e: unknown) => e as Error);
      expect(error).toBeInstanceOf(dn.ConnectionError);
      expect(error!.message).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+/);
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      await stopping.disconnect().catch(() => {});
      await own.stop();
    }
  }, 180_000);

  it('a worker that cannot open the store says so in the caller, once', async () => {
    const { queue } = await queueWithWorkers(1, { DOSNA_WORKER_OPTIONS: JSON.stringify({ directory: join(directory, 'not-here') }) });
    const con = await connect('elsewhere', queue);
    try {
      const ds = await con.createDataset('in', { data: dn.ndarray(pattern(), SHAPE), chunkSize: CHUNKS });
      const error = await ds.map((c) => c, 'out').then(() => undefined, (e: unknown) => e as Error);
      expect(error).toBeInstanceOf(dn.DosnaError);
      expect(`${error!.name}: ${error!.message}`).toMatch(/elsewhere/);
      expect(error!.stack).toMatch(/dosna worker /);
    } finally {
      await con.disconnect();
    }
  });

  it('a connection closed as soon as it is opened leaves no set-up running that could fail later', async () => {
    const { queue } = await queueWithWorkers(0);
    const unhandled: unknown[] = [];
    const listen = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listen);
    try {
      for (let round = 0; round < 20; round++) {
        const con = await connect(`quick-${round}`, queue);
        await con.disconnect();
      }
      await new Promise((resolve) => setTimeout(resolve, 300)); // a late rejection would land here
    } finally {
      process.off('unhandledRejection', listen);
    }
    expect(unhandled).toEqual([]);
  });

  it('refuses the ram backend and unknown options', async () => {
    await expect(dn.connect('r', { backend: 'ram', engine: 'queue', engineOptions: { redis: redis.url } })).rejects.toThrow(/cannot see the ram backend's data/);
    await expect(dn.connect('r', { backend: 'hdf5', directory, create: true, engine: 'queue', engineOptions: { redis: redis.url, threads: 2 } })).rejects.toBeInstanceOf(dn.OptionError);
  });
});
