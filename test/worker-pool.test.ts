/** What the worker-pool engine promises beyond the conformance suite. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { freeIdentifiers } from '../src/shipping.js';
import { setNativeEnabled, sharedBufferPool } from '../src/native.js';
import { keepSharedBuffer, reportedSharedBytes } from '../src/shared-memory.js';
import { applyWrites, chunksPerTask } from '../src/engines/worker-pool.js';
import { closeConnection, combos, openConnection } from './support/matrix.js';

const flat = (a: dn.NdArray) => Array.from(a.data as ArrayLike<number>);
const backends = [...new Set(combos().filter((c) => c.engine === 'worker-pool').map((c) => c.backend))];

describe('function shipping', () => {
  it('finds the free identifiers of a function', () => {
    expect(freeIdentifiers('(a, { b, c: [d] }) => { const e = a + b + d + f; return g(e, Math.PI, obj.prop); }'))
      .toEqual(['Math', 'f', 'g', 'obj']);
    expect(freeIdentifiers('function f(x) { for (let i = 0; i < x.length; i++) label: { break label; } return f; }')).toEqual([]);
    expect(freeIdentifiers('(x) => ({ key: x, short })')).toEqual(['short']);
  });
});

describe.each(backends.map((backend) => ({ backend, engine: 'worker-pool', cache: 'on' as const, label: `${backend} x worker-pool` })))('worker-pool on $backend', (combo) => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection(combo, { threads: 2 }); });
  afterAll(async () => { await closeConnection(con); });

  it('runs chunk tasks on more than one worker thread', async () => {
    const ds = await con.createDataset('spread', { shape: [64, 64], chunkSize: [8, 8] });
    await ds.apply((c) => {
      const end = Date.now() + 2; // long enough that one thread cannot take every task
      while (Date.now() < end);
      return c;
    });
    const workers = new Set(ds.lastRun!.tasks.map((t) => t.worker));
    expect(ds.lastRun!.engine).toBe('worker-pool');
    expect(workers.size).toBe(2);
    expect([...workers].every((w) => w > 0)).toBe(true);
  });

  it('get results of compressed chunks land in one shared buffer written by the workers', async () => {
    const ds = await con.createDataset('sharedout', { shape: [1100, 1000], dtype: 'int16', chunkSize: [300, 300], compression: 'gzip' });
    await ds.set(undefined, dn.ndarray(Int16Array.from({ length: 1100 * 1000 }, (_, i) => i % 30_000), [1100, 1000]));
    const got = await ds.get([s(1, 1100), s(2, 1000, 1)]); // over 1 MiB and compressed: workers decode it
    expect(got.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ds.lastRun!.tasks.every((t) => t.worker > 0)).toBe(true);
    const values = got.data as Int16Array;
    for (const [r, c] of [[0, 0], [5, 7], [1098, 997]]) expect(values[r * 998 + c]).toBe(((r + 1) * 1000 + c + 2) % 30_000);
  });

  it('reads and writes of a megabyte or less run on the calling thread: a worker round trip costs more', async () => {
    const ds = await con.createDataset('small', { shape: [64, 64], chunkSize: [8, 8] });
    await ds.set([s(0, 8)], 2); // whole chunks: written through the engine
    expect(ds.lastRun!.tasks.map((t) => t.worker)).toEqual(new Array(8).fill(0));
    expect(flat(await ds.get([5, s(0, 4)]))).toEqual([2, 2, 2, 2]);
    expect(ds.lastRun!.tasks.map((t) => t.worker)).toEqual([0]);
  });

  it('copies plain reads and writes on this thread (no staging copy); compressed chunks and arrays in shared memory in the workers, in parallel', async () => {
    const ds = await con.createDataset('placed', { shape: [512, 1024], chunkSize: [128, 256] }); // 2 MiB
    const values = Float32Array.from({ length: 512 * 1024 }, (_, i) => i);
    const mine = dn.ndarray(values, [512, 1024]);
    await ds.load(mine);
    expect(ds.lastRun!.tasks.every((t) => t.worker === 0)).toBe(true);
    const out = new Float32Array(512 * 1024);
    await ds.get(undefined, { out });
    expect(ds.lastRun!.tasks.every((t) => t.worker === 0)).toBe(true);
    expect(out).toEqual(values);
    const fresh = await ds.get(); // a fresh result is ordinary memory, filled here
    expect(fresh.data).toEqual(values);
    expect(fresh.data.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(ds.lastRun!.tasks.every((t) => t.worker === 0)).toBe(true);
    // Compressed chunks are decoded by the workers, in parallel, into a shared result.
    const packed = await con.createDataset('packed', { shape: [512, 1024], chunkSize: [128, 256], compression: 'zstd' });
    await packed.load(mine);
    expect(new Set(packed.lastRun!.tasks.map((t) => t.worker)).size).toBe(2);
    const unpacked = await packed.get();
    expect(unpacked.data).toEqual(values);
    expect(unpacked.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(new Set(packed.lastRun!.tasks.map((t) => t.worker)).size).toBe(2);
    // An array already in shared memory goes to the workers as it is.
    const shared = new Float32Array(new SharedArrayBuffer(values.byteLength));
    shared.set(values.map((v) => -v));
    await ds.load(dn.ndarray(shared, [512, 1024]));
    expect(ds.lastRun!.tasks.every((t) => t.worker > 0)).toBe(true);
    expect((await ds.get()).data).toEqual(shared);
  });

  it('runs tasks on this thread as many at once as the cpu engine does, and two per worker thread; a concurrency given is used for both', async () => {
    const ds = await con.createDataset('inflight', { shape: [512, 1024], chunkSize: [128, 256] }); // 2 MiB, 16 chunks
    await ds.load(dn.ndarray(Float32Array.from({ length: 512 * 1024 }, (_, i) => i), [512, 1024]));
    expect(ds.lastRun!.tasks.every((t) => t.worker === 0)).toBe(true);
    expect(ds.lastRun!.concurrency).toBe(8);
    await ds.apply((c) => c);
    expect(ds.lastRun!.tasks.every((t) => t.worker > 0)).toBe(true);
    expect(ds.lastRun!.concurrency).toBe(4);
    const { backend, name, options } = con.settings;
    const given = await dn.connect(name, { ...options, backend, engine: 'worker-pool', engineOptions: { threads: 2, concurrency: 3 } });
    try {
      const same = await given.getDataset('inflight');
      await same.get();
      expect(same.lastRun!.tasks.every((t) => t.worker === 0)).toBe(true);
      expect(same.lastRun!.concurrency).toBe(3);
      await same.apply((c) => c);
      expect(same.lastRun!.concurrency).toBe(3);
    } finally {
      await given.disconnect();
    }
  });

  it('without the native copy, stages the caller\'s own arrays in shared memory and copies them in the workers', async () => {
    setNativeEnabled(false);
    try {
      const ds = await con.createDataset('staged', { shape: [512, 1024], chunkSize: [128, 256] });
      const values = Float32Array.from({ length: 512 * 1024 }, (_, i) => i * 2);
      await ds.load(dn.ndarray(values, [512, 1024]));
      expect(ds.lastRun!.tasks.every((t) => t.worker > 0)).toBe(true);
      const out = new Float32Array(512 * 1024);
      await ds.get(undefined, { out });
      expect(ds.lastRun!.tasks.every((t) => t.worker > 0)).toBe(true);
      expect(out).toEqual(values);
      const fresh = await ds.get(); // shared memory, filled by the workers
      expect(fresh.data.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(new Set(ds.lastRun!.tasks.map((t) => t.worker)).size).toBe(2);
      expect(fresh.data).toEqual(values);
    } finally {
      setNativeEnabled(true);
    }
  });

  it('refuses a closure before touching any chunk, saying why and how to fix it', async () => {
    const ds = await con.createDataset('closure', { shape: [4], chunkSize: [2] });
    await ds.set(undefined, [1, 2, 3, 4]);
    const factor = 3;
    const attempt = ds.map((c) => Float32Array.from(c.data as Float32Array, (v) => v * factor), 'closure-out');
    await expect(attempt).rejects.toBeInstanceOf(dn.KernelShippingError);
    await expect(ds.apply((c) => Float32Array.from(c.data as Float32Array, (v) => v * factor)))
      .rejects.toThrow(/'factor'.*enclosing scope.*args.*dn\.kernel/s);
    expect(await con.hasDataset('closure-out')).toBe(false);
    expect(flat(await ds.get())).toEqual([1, 2, 3, 4]);
    // The fix the message suggests: pass the value through args.
    const out = await ds.map((c, ctx) => Float32Array.from(c.data as Float32Array, (v) => v * (ctx.args as number)), 'closure-fixed', { args: factor });
    expect(flat(await out.get())).toEqual([3, 6, 9, 12]);
  });

  it('imports a module kernel with imports once per worker and runs it', async () => {
    const ds = await con.createDataset('modkernel', { shape: [6], chunkSize: [2] });
    await ds.set(undefined, [-5, 0, 1, 2, 9, 10]);
    const out = await ds.map(dn.kernel(new URL('./support/kernels-with-import.ts', import.meta.url), 'clampKernel'), 'modkernel-out', { args: { lo: 0, hi: 5 } });
    expect(flat(await out.get())).toEqual([0, 0, 1, 2, 5, 5]);
  });

  it('a throwing kernel rejects with the worker stack and the chunk; the pool keeps working', async () => {
    const ds = await con.createDataset('throws', { shape: [8], chunkSize: [2] });
    const error = await ds.map((_c, ctx) => {
      if (ctx.index[0] === 2) throw new TypeError(`bad chunk ${ctx.index[0]}`);
    }, 'throws-out').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(dn.KernelError);
    const kernelError = error as dn.KernelError;
    expect(kernelError.chunk).toEqual([2]);
    expect(kernelError.message).toMatch(/chunk \[2\].*bad chunk 2/);
    expect(kernelError.stack).toMatch(/in worker thread \d+/);
    expect((kernelError.cause as Error).name).toBe('TypeError');
    expect(await con.hasDataset('throws-out')).toBe(false);

    const fromModule = await ds.map(dn.kernel(new URL('./support/kernels-with-import.ts', import.meta.url), 'failingKernel'), 'throws-out2')
      .catch((e: unknown) => e as dn.KernelError);
    expect((fromModule as Error).cause).toBeInstanceOf(Error);
    expect(((fromModule as Error).cause as Error).stack).toMatch(/kernels-with-import\.ts/);

    const ok = await ds.map((c) => c, 'after-failure');
    expect(ok.lastRun?.chunks ?? ds.lastRun?.chunks).toBe(4);
  });

  it('a kernel that ends its worker thread (process.exit) is a KernelError naming the chunk; the pool recovers', async () => {
    const ds = await con.createDataset('exits', { shape: [8], chunkSize: [2] });
    const error = await ds.map((c, ctx) => {
      if (ctx.index[0] === 1) process.exit(7);
      return c;
    }, 'exits-out').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(dn.KernelError);
    expect((error as dn.KernelError).chunk).toEqual([1]);
    expect((error as Error).message).toMatch(/chunk \[1\]: the worker thread running it died \(.*code: 7\)/);
    expect(await con.hasDataset('exits-out')).toBe(false);
    await ds.set(undefined, [1, 2, 3, 4, 5, 6, 7, 8]);
    const ok = await ds.map((c) => Float32Array.from(c.data as Float32Array, (v) => -v), 'exits-after');
    expect(flat(await ok.get())).toEqual([-1, -2, -3, -4, -5, -6, -7, -8]);
  });

  it('small chunks go to the workers in batches; each chunk is still its own task, named when it fails or ends its thread', async () => {
    // 32 chunks of 8 bytes, 4 tasks in flight: 4 chunks per worker task.
    const ds = await con.createDataset('batched', { shape: [64], dtype: 'int32', chunkSize: [2] });
    expect(chunksPerTask({ kind: 'clear', dataset: ds.meta }, 32, 4)).toBe(4);
    await ds.set(undefined, 1);
    await ds.apply((c, ctx) => Int32Array.from(c.data as Int32Array, (v) => v + ctx.index[0]));
    expect(ds.lastRun!.tasks.map((t) => t.chunk[0]).sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(ds.lastRun!.tasks.every((t) => t.worker > 0)).toBe(true);
    expect(flat(await ds.get())).toEqual(Array.from({ length: 64 }, (_, i) => 1 + Math.floor(i / 2)));

    await ds.set(undefined, 1);
    const thrown = await ds.apply((c, ctx) => {
      if (ctx.index[0] === 13) throw new RangeError('not chunk 13');
      return new Int32Array(c.data.length).fill(2);
    }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(dn.KernelError);
    expect((thrown as dn.KernelError).chunk).toEqual([13]);
    expect(((thrown as Error).cause as Error).name).toBe('RangeError');
    const values = flat(await ds.get());
    for (let chunk = 0; chunk < 32; chunk++) expect([[1, 1], [2, 2]]).toContainEqual(values.slice(chunk * 2, chunk * 2 + 2));
    expect(values.slice(26, 28)).toEqual([1, 1]);

    const died = await ds.map((c, ctx) => {
      if (ctx.index[0] === 21) process.exit(9);
      return c;
    }, 'batched-out').catch((e: unknown) => e);
    expect(died).toBeInstanceOf(dn.KernelError);
    expect((died as dn.KernelError).chunk).toEqual([21]);
    expect((died as Error).message).toMatch(/chunk \[21\]: the worker thread running it died \(.*code: 9\)/);
    expect(await con.hasDataset('batched-out')).toBe(false);
    const after = await ds.map((c) => Int32Array.from(c.data as Int32Array, (v) => -v), 'batched-after');
    expect(flat(await after.get())).toEqual(values.map((v) => -v));
  });

  it('an abort stops the batches in the workers before their next chunk', async () => {
    // 32 chunks in batches of 4, four batches started at once; each chunk takes 40 ms.
    const ds = await con.createDataset('batched-abort', { shape: [64], dtype: 'int32', chunkSize: [2] });
    expect(chunksPerTask({ kind: 'clear', dataset: ds.meta }, 32, 4)).toBe(4);
    await ds.set(undefined, 1);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 60);
    const error = await ds.apply((c) => {
      const end = Date.now() + 40;
      while (Date.now() < end);
      return new Int32Array(c.data.length).fill(2);
    }, { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(dn.AbortError);
    const values = flat(await ds.get());
    let changed = 0;
    for (let chunk = 0; chunk < 32; chunk++) {
      const pair = values.slice(chunk * 2, chunk * 2 + 2);
      expect([[1, 1], [2, 2]]).toContainEqual(pair);
      if (pair[0] === 2) changed++;
    }
    // Two threads ran a chunk or two each before the abort and finish the one they are on; the
    // four batches started whole would have made 16.
    expect(changed).toBeLessThan(12);
  });

  it('after a failed apply every chunk holds its old or its new data', async () => {
    const ds = await con.createDataset('halfapplied', { shape: [20], dtype: 'int32', chunkSize: [2] });
    await ds.set(undefined, 1);
    await expect(ds.apply((c, ctx) => {
      if (ctx.index[0] === 7) throw new Error('stop here');
      return new Int32Array(c.data.length).fill(2);
    })).rejects.toBeInstanceOf(dn.KernelError);
    const values = flat(await ds.get());
    for (let chunk = 0; chunk < 10; chunk++) {
      const pair = values.slice(chunk * 2, chunk * 2 + 2);
      expect([[1, 1], [2, 2]]).toContainEqual(pair);
    }
    expect(values.slice(14, 16)).toEqual([1, 1]);
  });
});

describe('worker-pool on ram: shared memory', () => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection({ backend: 'ram', engine: 'worker-pool', cache: 'on', label: 'ram x worker-pool' }, { threads: 2 }); });
  afterAll(async () => { await closeConnection(con); });

  it('chunks the workers make and this thread keeps give their memory back to the pool once replaced', async () => {
    // Without this thread counting them, they were never collected in time: every new chunk took fresh memory.
    const ds = await con.createDataset('pooled', { shape: [256, 256, 256], dtype: 'float32', chunkSize: [64, 64, 64] });
    await ds.set(undefined, 1);
    const pool = sharedBufferPool()!;
    const before = pool.sharedPoolStats();
    for (let round = 0; round < 12; round++) await ds.apply((c) => { (c.data as Float32Array)[0] += 1; });
    const after = pool.sharedPoolStats();
    const reused = after.reused - before.reused;
    const made = after.made - before.made;
    expect(reused + made).toBeGreaterThanOrEqual(12 * 64);
    expect(reused).toBeGreaterThan(made);
    expect((await ds.get([0, 0, 0])).data[0]).toBe(13);
  });

  it('chunks the workers make are counted here when the store drops them, not on arrival: they are live', async () => {
    // Counted on arrival, the 64 MiB of a map's output made this thread collect garbage 3-7
    // times per map with nothing to collect (shared-memory.ts); they count once dropped.
    const ds = await con.createDataset('arrival', { shape: [256, 256, 256], dtype: 'float32', chunkSize: [64, 64, 64] });
    await ds.set(undefined, 2);
    const MiB = 2 ** 20;
    const before = reportedSharedBytes();
    const out = await ds.map((c) => { const d = c.data as Float32Array; for (let i = 0; i < d.length; i++) d[i] *= 3; return c; }, 'arrival-out');
    expect(ds.lastRun?.tasks.length).toBe(64);
    expect(reportedSharedBytes() - before).toBeLessThan(16 * MiB);
    expect((await out.get([255, 255, 255])).data[0]).toBe(6);
    const kept = reportedSharedBytes();
    await out.delete();
    // Dropped, the 64 chunks are reported until this thread collects them.
    expect(reportedSharedBytes() - kept).toBeGreaterThanOrEqual(48 * MiB);
    await ds.delete();
  });
});

describe('worker-pool: chunks a worker made that the main thread does not store', () => {
  it('are counted by this thread at once when a conditional write refuses them (and the writes after it)', async () => {
    const con = await dn.connect(`refused-${process.pid}`, { backend: 'ram', engine: 'cpu' });
    try {
      const ds = await con.createDataset('r', { shape: [2, 64, 64], dtype: 'float32', chunkSize: [1, 64, 64] });
      await ds.set(undefined, 1);
      const bytes = 64 * 64 * 4;
      // As a worker's chunks arrive: made (and counted) in another thread, kept here.
      const arrived = () => { const b = new SharedArrayBuffer(bytes); keepSharedBuffer(b); return b; };
      const stale = (await con.store.readChunkVersion(ds.meta, [0, 0, 0])).generation;
      await ds.set([0], 2); // the chunk changes: the generation the worker read is stale now
      const before = reportedSharedBytes();
      const refused = await applyWrites(con.store, ds.meta, [['r', '0.0.0', arrived(), stale], ['r', '1.0.0', arrived(), null]]);
      expect(refused).toBe(false);
      expect(reportedSharedBytes() - before).toBe(2 * bytes);
      // Stored ones are not counted until the store drops them.
      const current = (await con.store.readChunkVersion(ds.meta, [1, 0, 0])).generation;
      const stored = await applyWrites(con.store, ds.meta, [['r', '1.0.0', arrived(), current]]);
      expect(stored).toBe(true);
      expect(reportedSharedBytes() - before).toBe(2 * bytes);
      await ds.delete();
      expect(reportedSharedBytes() - before).toBeGreaterThanOrEqual(3 * bytes);
    } finally {
      await con.disconnect();
    }
  });
});

describe('worker-pool from the built package', () => {
  it('loads its worker as plain JavaScript from dist/ (no tsx) and runs a map', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const run = promisify(execFile);
    await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { timeout: 120_000 });
    const script = `
      import * as dn from './dist/index.js';
      const con = await dn.connect('built', { engine: 'worker-pool', engineOptions: { threads: 2 } });
      const ds = await con.createDataset('x', { data: dn.ndarray(Float32Array.from({ length: 64 }, (_, i) => i), [8, 8]), chunkSize: [4, 4] });
      const out = await ds.map(dn.gaussianKernels.gaussian3d, 'y', { args: { sigma: 1 } });
      const twice = await ds.map((c) => Float32Array.from(c.data, (v) => v * 2), 'z');
      console.log(JSON.stringify({ engine: ds.lastRun?.engine, mapped: out.shape, sum: Array.from((await twice.get()).data).reduce((a, b) => a + b, 0) }));
      await con.disconnect();`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(JSON.parse(stdout)).toEqual({ engine: 'worker-pool', mapped: [8, 8], sum: 2 * (63 * 64) / 2 });
  }, 180_000);
});
