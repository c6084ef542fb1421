/**
 * One backend x engine of the slicing and I/O workloads (../shared/BENCHMARKS.md), beside the
 * reference for that backend measured in the same process:
 *   ram -> copying the same bytes with TypedArray.prototype.set (alloc + set);
 *   hdf5 -> writing/reading the same bytes as the same number of plain files with fs;
 *   s3/ceph -> a plain @aws-sdk/client-s3 loop putting/getting the same objects at the same concurrency.
 * usage: io.ts --backend B --engine E [--engine-options k=v] --n 256 --chunks 64 --runs 5
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { parseConnectionArgs } from '../src/cli/connection-args.js';
import { emit, median, pairedRounds, peakRssMiB, pool, randomFloat32, timeRuns } from './common.js';
import { profileShares, type ProfileShares } from './profile.js';
import { resolveCommitMode, type CommitOption } from '../src/backends/hdf5/commit-mode.js';
import type { CommitMode } from '../src/backends/hdf5/locks.js';
import { nativeModule } from '../src/native.js';

const { args, values } = parseConnectionArgs(process.argv.slice(2), {
  n: { type: 'string', default: '256' }, chunks: { type: 'string', default: '64' }, runs: { type: 'string', default: '5' },
  profile: { type: 'boolean', default: false },
});
/** Whether to add one profiled run of each workload (bench/profile.ts). */
const profiling = values.profile === true;
const backend = args.backend ?? 'ram';
const engine = args.engine ?? 'cpu';
const N = Number(values.n);
const runs = Number(values.runs);
const chunkSizes = String(values.chunks).split(',').map(Number);
const cube = dn.ndarray(randomFloat32(N ** 3), [N, N, N]);
const bytes = N ** 3 * 4;
const scale = (v: number) => Math.round((v * N) / 256);
const block = [s(scale(36), scale(180)), s(scale(89), scale(250)), s(scale(7), scale(200))];
const blockShape = [scale(180) - scale(36), scale(250) - scale(89), scale(200) - scale(7)];
const blockData = dn.ndarray(randomFloat32(blockShape[0] * blockShape[1] * blockShape[2], 7), blockShape);
/** A chunk-aligned block (the middle half of every axis), as bench/peers.py reads it. */
const aligned = [s(N / 4, (3 * N) / 4), s(N / 4, (3 * N) / 4), s(N / 4, (3 * N) / 4)];
/** The apply workload's chunk function (defined here, so the profile can tell it from dosna's code). */
const plusOne = (c: dn.NdArray) => {
  const d = c.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] += 1;
};
/** A chunk function that does nothing: apply with it is what dosna costs around the chunk function. */
const doNothing = (_c: dn.NdArray) => {};
const scratch = mkdtempSync(join(tmpdir(), 'dosna-bench-'));

function connectionOptions(): Record<string, unknown> {
  const base: Record<string, unknown> = { backend, engine, engineOptions: args.engineOptions, ...args.connectionOptions };
  if (backend === 'hdf5' || backend === 'zarr') return { directory: scratch, create: true, ...base };
  if (backend === 's3') return { endpoint: process.env.DOSNA_S3_ENDPOINT, region: process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: true, create: true, credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY }, ...base };
  if (backend === 'ceph') return { conffile: process.env.DOSNA_CEPH_CONF, create: true, ...base };
  return base;
}

/** A plain reference's two operations, each one run of it, and how to let go of it. */
interface ReferenceOps { name: string; write(): Promise<unknown>; read(): Promise<unknown>; close(): void }

/** The plain reference for this backend: write and read `count` blobs of `size` bytes. */
async function referenceOps(count: number, size: number, concurrency: number): Promise<ReferenceOps> {
  const blobs = Array.from({ length: count }, (_, i) => new Uint8Array(cube.data.buffer, (i * size) % Math.max(1, bytes - size + 1), size));
  if (backend === 'ram') {
    const src = cube.data as Float32Array;
    const copy = async () => { new Float32Array(src.length).set(src); };
    return { name: 'TypedArray.set', write: copy, read: copy, close: () => {} };
  }
  if (backend === 'hdf5' || backend === 'zarr') {
    const dir = mkdtempSync(join(scratch, 'ref-'));
    const keys = blobs.map((_, i) => join(dir, `chunk_${i}.bin`));
    return {
      name: 'fs files',
      write: () => pool(keys, concurrency, (k) => writeFile(k, blobs[keys.indexOf(k)])),
      read: () => pool(keys, concurrency, (k) => readFile(k)),
      close: () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const { S3Client, PutObjectCommand, GetObjectCommand, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: process.env.DOSNA_S3_ENDPOINT, region: process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = `dosna-bench-ref-${process.pid}-${size}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const keys = blobs.map((_, i) => `ref/${i}`);
  return {
    name: 'SDK loop',
    write: () => pool(keys.map((k, i) => [k, i] as const), concurrency, ([k, i]) => client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: blobs[i] }))),
    read: () => pool(keys, concurrency, async (k) => (await client.send(new GetObjectCommand({ Bucket: bucket, Key: k }))).Body!.transformToByteArray()),
    close: () => client.destroy(),
  };
}

/** Times gathering every C^3 chunk of the cube (plain arrays) into one reused N^3 array with copyStrided. */
async function gatherCopy(C: number, nativeCopy: boolean): Promise<number[]> {
  const { copyStrided } = await import('../src/strided.js');
  const { setNativeEnabled } = await import('../src/native.js');
  const k = N / C;
  const chunks = Array.from({ length: k ** 3 }, (_, i) => new Float32Array(cube.data.buffer, (i * C ** 3 * 4) % (bytes - C ** 3 * 4 + 1), C ** 3).slice());
  const out = new Float32Array(N ** 3);
  setNativeEnabled(nativeCopy);
  try {
    return await timeRuns(runs, async () => {
      let i = 0;
      for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) for (let c = 0; c < k; c++) {
        copyStrided({ data: out, offset: a * C * N * N + b * C * N + c * C, shape: [C, C, C], strides: [N * N, N, 1] }, { data: chunks[i++], offset: 0, shape: [C, C, C], strides: [C * C, C, 1] });
      }
    }, { warmup: true });
  } finally {
    setNativeEnabled(true);
  }
}

/**
 * The floor under the ram backend's writes: every chunk of the cube made a fresh buffer of
 * its own and filled by the same native copy, as dosna's SharedArrayBuffers (what the ram
 * backend keeps, so worker threads read chunks without a copy; their memory reported to V8,
 * src/shared-memory.ts), as bare SharedArrayBuffers (which V8 does not count, so it does not
 * collect the replaced ones) and, for comparison, as ordinary ArrayBuffers. Medians of `runs`, in ms.
 */
async function freshChunksFloor(C: number): Promise<{ shared: number; sharedUnreported: number; plain: number }> {
  const { copyRun } = await import('../src/strided.js');
  const { newSharedBuffer } = await import('../src/shared-memory.js');
  const chunkBytes = C ** 3 * 4;
  const source = new Uint8Array(cube.data.buffer, 0, chunkBytes);
  const live: Uint8Array[] = [];
  const fill = async (make: () => ArrayBufferLike) => median(await timeRuns(runs, async () => {
    for (let i = 0; i < N ** 3 / C ** 3; i++) {
      const bytes = new Uint8Array(make());
      copyRun(bytes, 0, source, 0, chunkBytes); // as the ram backend's chunkCopy does
      live[i] = bytes; // kept until replaced, as stored chunks are
    }
  }, { warmup: true }));
  return {
    shared: await fill(() => newSharedBuffer(chunkBytes)),
    sharedUnreported: await fill(() => new SharedArrayBuffer(chunkBytes)),
    plain: await fill(() => new ArrayBuffer(chunkBytes)),
  };
}

/**
 * The floor under apply with this benchmark's chunk function: the same `+1` loop over the cube's
 * chunks held as ordinary arrays in memory, no store, no copy, no commit (numpy's `chunk += 1`
 * over its chunk arrays is in peers.py). Median of `runs`, in ms.
 */
async function chunkFunctionAlone(C: number): Promise<number> {
  const chunks = Array.from({ length: N ** 3 / C ** 3 }, (_, i) => dn.ndarray(randomFloat32(C ** 3, 11 + i), [C, C, C]));
  // plusOne's loop, written again here so that this figure does not depend on what V8 learnt of
  // plusOne in the store workloads before, and with the loop over the chunks in the same plain
  // function: called per chunk from the loop over them, V8 inlined it at C=32 (512 chunks) into
  // that loop's Maglev code, which it kept for the whole run (perf put the time in that frame),
  // and this line read 90-100 ms against 11-17 ms at C=64.
  const overChunks = () => {
    for (const chunk of chunks) {
      const d = chunk.data as Float32Array;
      for (let i = 0; i < d.length; i++) d[i] += 1;
    }
  };
  return median(await timeRuns(runs, async () => overChunks(), { warmup: true }));
}

/**
 * The floor under write (create + load) on a file-per-chunk layout, with plain fs on this file
 * system: `count` new files of `size` bytes, each written under a temporary name and renamed in
 * (crash-safe, as zarr-python's DirectoryStore writes too), in a new folder after the previous
 * run's was removed, as the write workload deletes the dataset before each run. How long that
 * takes depends on what was deleted in the last minutes (see the report), so each run of it is
 * followed by a run of dosna's create + load of the same chunks, and the two are compared run by
 * run. Medians of `runs`, in ms.
 */
async function newFilesFloor(con: dn.Connection, name: string, C: number): Promise<{ chunks: number; floor: number; write: number }> {
  const { mkdir, rename, rm, writeFile } = await import('node:fs/promises');
  const count = N ** 3 / C ** 3;
  const blob = new Uint8Array(cube.data.buffer, 0, C ** 3 * 4);
  const names = Array.from({ length: count }, (_, i) => `chunk_${i}.h5`);
  const floor: number[] = [];
  const write: number[] = [];
  let dir = '';
  for (let r = 0; r < runs; r++) {
    if (dir) await rm(dir, { recursive: true, force: true });
    // Beside the dataset folders (a new file's inode is looked for near its folder's parent).
    dir = join(scratch, connectionName, `.new-files-${r}`);
    await mkdir(dir);
    let t = performance.now();
    await pool(names, 8, async (n) => {
      await writeFile(join(dir, `${n}.tmp`), blob);
      await rename(join(dir, `${n}.tmp`), join(dir, n));
    });
    floor.push(performance.now() - t);
    if (await con.hasDataset(name)) await con.delDataset(name);
    t = performance.now();
    const ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
    await ds.load(cube);
    write.push(performance.now() - t);
  }
  await rm(dir, { recursive: true, force: true });
  await con.delDataset(name);
  return { chunks: count, floor: median(floor), write: median(write) };
}

/**
 * The floor under write_sub on a file-per-chunk layout, with plain fs on this file system:
 * `count` chunk files of `size` bytes each read and written back by atomic replacement (a new
 * file renamed over the old, as a crash-safe chunk write must be, or swapped with it and the old
 * removed, as the hdf5 option `commit: 'exchange'` does) and, for comparison, in place (what one
 * HDF5 file allows, and what is not crash-safe). Medians of `runs`, in ms.
 */
async function rewriteFloor(count: number, size: number, concurrency: number): Promise<{ chunks: number; replace: number; swap?: number; inPlace: number }> {
  const { open, readFile, rename, unlink, writeFile } = await import('node:fs/promises');
  const exchangeFiles = nativeModule()?.exchangeFiles;
  // In the connection's folder, as the datasets' folders are (placed alike: see backends/hdf5.md).
  const dir = mkdtempSync(join(scratch, connectionName, '.floor-'));
  const files = Array.from({ length: count }, (_, i) => join(dir, `chunk_${i}.h5`));
  const blob = new Uint8Array(cube.data.buffer, 0, size);
  for (const f of files) await writeFile(f, blob);
  const replace = await timeRuns(runs, () => pool(files, concurrency, async (f) => {
    const bytes = await readFile(f);
    await writeFile(`${f}.tmp`, bytes);
    await rename(`${f}.tmp`, f);
  }));
  let swapped = true;
  const swap = exchangeFiles && await timeRuns(runs, () => pool(files, concurrency, async (f) => {
    const bytes = await readFile(f);
    await writeFile(`${f}.tmp`, bytes);
    // Where this file system cannot swap, the column stays empty (as without the native module).
    if (await exchangeFiles(`${f}.tmp`, f)) await unlink(`${f}.tmp`);
    else { await rename(`${f}.tmp`, f); swapped = false; }
  }));
  const inPlace = await timeRuns(runs, () => pool(files, concurrency, async (f) => {
    const handle = await open(f, 'r+');
    const bytes = Buffer.allocUnsafe(size);
    await handle.read(bytes, 0, size, 0);
    await handle.write(bytes, 0, size, 0);
    await handle.close();
  }));
  return { chunks: count, replace: median(replace), ...(swap && swapped ? { swap: median(swap) } : {}), inPlace: median(inPlace) };
}

/**
 * write, write_sub and apply through a second connection to the same folder that commits chunk
 * files the other way than the default does in this folder (the hdf5 option `commit`: renamed
 * over the old ones, or swapped with them, src/backends/hdf5/commit-mode.ts). Medians of `runs`, in ms.
 */
async function otherCommitTimes(name: string, C: number, commit: CommitMode): Promise<{ commit: CommitMode; write: number; setBlock: number; apply: number }> {
  return dn.withConnection(connectionName, { ...connectionOptions(), commit }, async (con) => {
    let ds!: dn.Dataset;
    const write = await timeRuns(runs, async () => {
      ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
      await ds.load(cube);
    }, { before: async () => { if (await con.hasDataset(name)) await con.delDataset(name); }, warmup: true });
    const setBlock = await timeRuns(runs, async () => { await ds.set(block, blockData); await ds.flush(); }, { warmup: true });
    const apply = await timeRuns(runs, () => ds.apply(plusOne), { warmup: true });
    await ds.delete();
    return { commit, write: median(write), setBlock: median(setBlock), apply: median(apply) };
  });
}

const connectionName = args.connection ?? `bench-${process.pid}`;

try {
  await dn.withConnection(connectionName, connectionOptions(), async (con) => {
    for (const C of chunkSizes) {
      let ds!: dn.Dataset;
      const name = `cube-${C}`;
      // A process's first runs of each workload, before its warm-up ends (bench/common.ts).
      const cold: Record<string, number[]> = { write: [] };
      const write = await timeRuns(runs, async () => {
        ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
        await ds.load(cube);
      }, { before: async () => { if (await con.hasDataset(name)) await con.delDataset(name); }, warmup: true, cold: cold.write });
      const concurrency = ds.lastRun!.concurrency;
      // How the hdf5 backend's default commits chunk files in this folder (commit-mode.ts).
      const defaultCommit = resolveCommitMode((args.connectionOptions?.commit as CommitOption | undefined) ?? 'auto', join(scratch, connectionName));
      // The same read into one reused array (get's `out`): no fresh allocation to fault in.
      const reused = new Float32Array(N ** 3);
      const workloads: Record<string, () => Promise<unknown>> = {
        read: () => ds.get(),
        readInto: () => ds.get(undefined, { out: reused }),
        misaligned: () => ds.get(block),
        aligned: () => ds.get(aligned),
        plane: () => ds.get([N / 2]),
        line: () => ds.get([s(), 5, 7]),
        // Written through the cache and committed, as h5py's figure includes its flush.
        setBlock: async () => { await ds.set(block, blockData); await ds.flush(); },
        apply: () => ds.apply(plusOne),
      };
      const times: Record<string, number[]> = { write };
      for (const [key, fn] of Object.entries(workloads)) times[key] = await timeRuns(runs, fn, { warmup: true, extend: true, cold: (cold[key] = []) });
      // The line again, through a second connection that uses the chunks and metadata it holds
      // without asking the store (recheckCachedData and recheckCachedMetadata false, as h5py's
      // open file and chunk cache and zarr-python's caches): what asking costs.
      if (backend === 'hdf5' || backend === 'zarr') {
        await dn.withConnection(connectionName, { ...connectionOptions(), recheckCachedData: false, recheckCachedMetadata: false }, async (trusting) => {
          const trusted = await trusting.getDataset(name);
          times.lineTrusted = await timeRuns(runs, () => trusted.get([s(), 5, 7]), { warmup: true, extend: true, cold: (cold.lineTrusted = []) });
        });
      }
      // Then one more, untimed run of each under the profiler (bench/profile.ts).
      const profiles: Record<string, ProfileShares> = {};
      if (profiling) {
        if (await con.hasDataset(name)) await con.delDataset(name);
        profiles.write = await profileShares(async () => {
          ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
          await ds.load(cube);
        }, import.meta.url, { once: true });
        for (const [key, fn] of Object.entries(workloads)) profiles[key] = await profileShares(fn, import.meta.url);
      }
      // dosna against its plain reference, round by round (bench/common.ts, pairedRounds): on a
      // shared machine (and beside the RGW's daemons) conditions drift within a run, so the
      // ratio is taken of runs made next to each other.
      const ref = await referenceOps(ds.totalChunks, C ** 3 * 4, concurrency);
      const one = async (fn: () => Promise<unknown>) => (await timeRuns(1, fn))[0];
      const writes = await pairedRounds(runs, async () => {
        if (await con.hasDataset(name)) await con.delDataset(name);
        return one(async () => {
          ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
          await ds.load(cube);
        });
      }, () => one(ref.write));
      const reads = await pairedRounds(runs, () => one(() => ds.get()), () => one(ref.read));
      const paired = { write: writes.ours, refWrite: writes.theirs, read: reads.ours, refRead: reads.theirs };
      ref.close();
      const roundRatios = (ours: number[], theirs: number[]) => ours.map((ms, i) => theirs[i] / ms);
      // The copy alone, no store: every chunk's cells gathered into a reused array by the same
      // strided copy get uses (the floor of a read in JavaScript; numpy's is in peers.py).
      const gatherFloor = backend === 'ram' ? median(await gatherCopy(C, true)) : undefined;
      const gatherFloorJs = backend === 'ram' ? median(await gatherCopy(C, false)) : undefined;
      const freshChunks = backend === 'ram' ? await freshChunksFloor(C) : undefined;
      const kernelAlone = backend === 'ram' ? await chunkFunctionAlone(C) : undefined;
      const applyNothing = backend === 'ram' ? median(await timeRuns(runs, () => ds.apply(doNothing), { warmup: true })) : undefined;
      // The floor under any get() that returns a new array: allocating one and touching its pages.
      const freshArray = await timeRuns(runs, async () => { new Float32Array(N ** 3).fill(1); });
      await ds.delete();
      const blockBytes = blockShape.reduce((a, b) => a * b, 4);
      emit({
        kind: 'io', backend, engine, engineOptions: args.engineOptions, N, C, runs, bytes, concurrency, chunks: N ** 3 / C ** 3,
        // Node and V8 flags this process was started with (bench/run.ts compares some).
        nodeFlags: process.execArgv,
        ms: { ...Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])), freshArray: median(freshArray) },
        // Every timed run, so runs of several rounds pool into one median (bench/rounds.ts).
        samples: { ...times, freshArray },
        coldSamples: cold,
        ...(profiling ? { profiles } : {}),
        ...(backend === 'hdf5' ? {
          // The same create + load with the chunk locks off (unsafe with other writers, so
          // only here): what the commit protocol costs a load.
          writeWithoutLocks: median(await (await import('../src/backends/hdf5/locks.js')).withoutLocksForBenchmark(() => timeRuns(runs, async () => {
            ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
            await ds.load(cube);
          }, { before: async () => { if (await con.hasDataset(name)) await con.delDataset(name); } }))),
          // The same for apply: every chunk file read and replaced.
          applyFloor: await rewriteFloor(N ** 3 / C ** 3, C ** 3 * 4, concurrency),
          writeFloor: await newFilesFloor(con, `${name}-floor`, C),
          // The default's commit here, and the same workloads committed the other way.
          commitMode: defaultCommit,
          otherCommit: await otherCommitTimes(name, C, defaultCommit === 'rename' ? 'exchange' : 'rename'),
          writeSubFloor: await rewriteFloor(ds.chunkSlices(block).filter((c) => c.chunk.some((sl, a) => (sl.stop! - sl.start!) !== C)).length, C ** 3 * 4, concurrency),
        } : {}),
        reference: { name: ref.name, write: median(paired.refWrite), read: median(paired.refRead) },
        referenceSamples: { write: paired.refWrite, read: paired.refRead },
        // Reference time over dosna's, each round's (above 1: dosna is faster), and their medians.
        referenceRatios: {
          write: median(roundRatios(paired.write, paired.refWrite)), read: median(roundRatios(paired.read, paired.refRead)),
          writeRounds: roundRatios(paired.write, paired.refWrite), readRounds: roundRatios(paired.read, paired.refRead),
        },
        misalignedCostPerByte: (median(times.misaligned) / blockBytes) / (median(times.read) / bytes),
        ...(gatherFloor !== undefined ? { gatherFloor, gatherFloorJs, nativeCopy: dn.nativeStatus().loaded, freshChunks, kernelAlone, applyNothing } : {}),
        peakRssMiB: peakRssMiB(),
      });
    }
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
