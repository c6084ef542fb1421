/**
 * The queue engine's workloads, on hdf5, beside the engines it is measured against in the same
 * process and minute: a redis-server and `dosna worker`s of its own (scripts/queue-service.ts).
 * - per-chunk overhead: an identity map over 512 small chunks (128³ float32 in 16³ chunks), with
 *   worker-pool (2 threads) and queue (2 workers, one task each); milliseconds per chunk;
 * - gaussian map (sigma 1.5, N=256, 64³ chunks) with the queue's 2 local workers against cpu.
 * Runs alternate between engines round by round, so a noisy minute weighs on all alike.
 * usage: queue.ts --runs 3
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as dn from '../src/index.js';
import { startRedis, startWorkers, stopProcess } from '../scripts/queue-service.js';
import { emit, median, randomFloat32 } from './common.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
const directory = mkdtempSync(join(tmpdir(), 'dosna-bench-queue-'));
const redis = await startRedis();
const workers = await startWorkers(redis.url, 'bench', 2, {}, 1);
const engines: Record<string, { engine: string; engineOptions: Record<string, unknown> }> = {
  cpu: { engine: 'cpu', engineOptions: {} },
  'worker-pool': { engine: 'worker-pool', engineOptions: { threads: 2 } },
  queue: { engine: 'queue', engineOptions: { redis: redis.url, queue: 'bench' } },
};

/** Times `map(kernel)` over dataset `name` (made once by `make`) on each engine, `runs` rounds, engines alternating. */
async function measure(workload: string, name: string, make: (con: dn.Connection) => Promise<void>, kernel: dn.Kernel, args: unknown, which: string[]): Promise<void> {
  const cons = new Map<string, dn.Connection>();
  for (const key of which) cons.set(key, await dn.connect('bench-queue', { backend: 'hdf5', directory, create: true, ...engines[key] }));
  const first = cons.get(which[0])!;
  if (!(await first.hasDataset(name))) await make(first);
  const times = new Map<string, number[]>(which.map((k) => [k, []]));
  let chunks = 0;
  for (let round = -1; round < runs; round++) { // round -1 warms every engine up (kernels compiled, stores opened)
    for (const key of which) {
      const con = cons.get(key)!;
      const ds = await con.getDataset(name);
      if (await con.hasDataset('out')) await con.delDataset('out');
      const t = performance.now();
      const out = await ds.map(kernel, 'out', { args });
      if (round >= 0) times.get(key)!.push(performance.now() - t);
      chunks = ds.totalChunks;
      await out.delete();
    }
  }
  for (const key of which) {
    const all = times.get(key)!;
    emit({ kind: 'queue', workload, engine: key, workers: key === 'queue' ? 2 : key === 'worker-pool' ? 2 : 1, chunks, runs: all.length, ms: median(all), all, msPerChunk: median(all) / chunks });
  }
  for (const con of cons.values()) await con.disconnect();
}

try {
  await measure('overhead', 'small', async (con) => {
    await con.createDataset('small', { data: dn.ndarray(randomFloat32(128 ** 3, 3), [128, 128, 128]), chunkSize: [16, 16, 16] });
  }, (chunk: dn.NdArray) => chunk, undefined, ['worker-pool', 'queue']);
  await measure('gaussian', 'cube', async (con) => {
    await con.createDataset('cube', { data: dn.ndarray(randomFloat32(256 ** 3, 5), [256, 256, 256]), chunkSize: [64, 64, 64] });
  }, dn.gaussianKernels.gaussian3d, { sigma: 1.5 }, ['cpu', 'queue']);
} finally {
  await Promise.all(workers.map((w) => stopProcess(w)));
  await redis.stop();
  rmSync(directory, { recursive: true, force: true });
}
