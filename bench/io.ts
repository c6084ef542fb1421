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
import { emit, median, peakRssMiB, pool, randomFloat32, timeRuns } from './common.js';

const { args, values } = parseConnectionArgs(process.argv.slice(2), {
  n: { type: 'string', default: '256' }, chunks: { type: 'string', default: '64' }, runs: { type: 'string', default: '5' },
});
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
const scratch = mkdtempSync(join(tmpdir(), 'dosna-bench-'));

function connectionOptions(): Record<string, unknown> {
  const base: Record<string, unknown> = { backend, engine, engineOptions: args.engineOptions, ...args.connectionOptions };
  if (backend === 'hdf5') return { directory: scratch, create: true, ...base };
  if (backend === 's3') return { endpoint: process.env.DOSNA_S3_ENDPOINT, region: process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: true, create: true, credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY }, ...base };
  if (backend === 'ceph') return { conffile: process.env.DOSNA_CEPH_CONF, create: true, ...base };
  return base;
}

/** The plain reference for this backend: write and read `count` blobs of `size` bytes. */
async function reference(count: number, size: number, concurrency: number): Promise<{ write: number[]; read: number[] }> {
  const blobs = Array.from({ length: count }, (_, i) => new Uint8Array(cube.data.buffer, (i * size) % Math.max(1, bytes - size + 1), size));
  if (backend === 'ram') {
    const src = cube.data as Float32Array;
    const copy = () => timeRuns(runs, async () => { new Float32Array(src.length).set(src); });
    return { write: await copy(), read: await copy() };
  }
  if (backend === 'hdf5') {
    const dir = mkdtempSync(join(scratch, 'ref-'));
    const keys = blobs.map((_, i) => join(dir, `chunk_${i}.bin`));
    const write = await timeRuns(runs, () => pool(keys, concurrency, (k) => writeFile(k, blobs[keys.indexOf(k)])));
    const read = await timeRuns(runs, () => pool(keys, concurrency, (k) => readFile(k)));
    return { write, read };
  }
  const { S3Client, PutObjectCommand, GetObjectCommand, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: process.env.DOSNA_S3_ENDPOINT, region: process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = `dosna-bench-ref-${process.pid}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const keys = blobs.map((_, i) => `ref/${i}`);
  const write = await timeRuns(runs, () => pool(keys.map((k, i) => [k, i] as const), concurrency, ([k, i]) => client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: blobs[i] }))));
  const read = await timeRuns(runs, () => pool(keys, concurrency, async (k) => (await client.send(new GetObjectCommand({ Bucket: bucket, Key: k }))).Body!.transformToByteArray()));
  client.destroy();
  return { write, read };
}

/** Times gathering every C^3 chunk of the cube (plain arrays) into one reused N^3 array with copyStrided. */
async function gatherCopy(C: number): Promise<number[]> {
  const { copyStrided } = await import('../src/strided.js');
  const k = N / C;
  const chunks = Array.from({ length: k ** 3 }, (_, i) => new Float32Array(cube.data.buffer, (i * C ** 3 * 4) % (bytes - C ** 3 * 4 + 1), C ** 3).slice());
  const out = new Float32Array(N ** 3);
  return timeRuns(runs, async () => {
    let i = 0;
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) for (let c = 0; c < k; c++) {
      copyStrided({ data: out, offset: a * C * N * N + b * C * N + c * C, shape: [C, C, C], strides: [N * N, N, 1] }, { data: chunks[i++], offset: 0, shape: [C, C, C], strides: [C * C, C, 1] });
    }
  });
}

/**
 * The floor under write_sub on a file-per-chunk layout, with plain fs on this file system:
 * `count` chunk files of `size` bytes each read and written back by atomic replacement (a new
 * file renamed over the old, as a crash-safe chunk write must be) and, for comparison, in
 * place (what one HDF5 file allows, and what is not crash-safe). Medians of `runs`, in ms.
 */
async function rewriteFloor(count: number, size: number, concurrency: number): Promise<{ chunks: number; replace: number; inPlace: number }> {
  const { open, readFile, rename, writeFile } = await import('node:fs/promises');
  const dir = mkdtempSync(join(scratch, 'floor-'));
  const files = Array.from({ length: count }, (_, i) => join(dir, `chunk_${i}.h5`));
  const blob = new Uint8Array(cube.data.buffer, 0, size);
  for (const f of files) await writeFile(f, blob);
  const replace = await timeRuns(runs, () => pool(files, concurrency, async (f) => {
    const bytes = await readFile(f);
    await writeFile(`${f}.tmp`, bytes);
    await rename(`${f}.tmp`, f);
  }));
  const inPlace = await timeRuns(runs, () => pool(files, concurrency, async (f) => {
    const handle = await open(f, 'r+');
    const bytes = Buffer.allocUnsafe(size);
    await handle.read(bytes, 0, size, 0);
    await handle.write(bytes, 0, size, 0);
    await handle.close();
  }));
  return { chunks: count, replace: median(replace), inPlace: median(inPlace) };
}

try {
  await dn.withConnection(args.connection ?? `bench-${process.pid}`, connectionOptions(), async (con) => {
    for (const C of chunkSizes) {
      let ds!: dn.Dataset;
      const name = `cube-${C}`;
      const write = await timeRuns(runs, async () => {
        ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
        await ds.load(cube);
      }, { before: async () => { if (await con.hasDataset(name)) await con.delDataset(name); } });
      const concurrency = ds.lastRun!.concurrency;
      const read = await timeRuns(runs, () => ds.get());
      // The same read into one reused array (get's `out`): no fresh allocation to fault in.
      const reused = new Float32Array(N ** 3);
      const readInto = await timeRuns(runs, () => ds.get(undefined, { out: reused }));
      const misaligned = await timeRuns(runs, () => ds.get(block));
      const alignedRead = await timeRuns(runs, () => ds.get(aligned));
      const plane = await timeRuns(runs, () => ds.get([N / 2]));
      const line = await timeRuns(runs, () => ds.get([s(), 5, 7]));
      // Written through the cache and committed, as h5py's figure includes its flush.
      const setBlock = await timeRuns(runs, async () => { await ds.set(block, blockData); await ds.flush(); });
      const apply = await timeRuns(runs, () => ds.apply((c) => {
        const d = c.data as Float32Array;
        for (let i = 0; i < d.length; i++) d[i] += 1;
      }));
      const ref = await reference(ds.totalChunks, C ** 3 * 4, concurrency);
      // The copy alone, no store: every chunk's cells gathered into a reused array by the same
      // strided copy get uses (the floor of a read in JavaScript; numpy's is in peers.py).
      const gatherFloor = backend === 'ram' ? median(await gatherCopy(C)) : undefined;
      // The floor under any get() that returns a new array: allocating one and touching its pages.
      const freshArray = await timeRuns(runs, async () => { new Float32Array(N ** 3).fill(1); });
      await ds.delete();
      const blockBytes = blockShape.reduce((a, b) => a * b, 4);
      emit({
        kind: 'io', backend, engine, engineOptions: args.engineOptions, N, C, runs, bytes, concurrency, chunks: N ** 3 / C ** 3,
        ms: { write: median(write), read: median(read), readInto: median(readInto), freshArray: median(freshArray), misaligned: median(misaligned), aligned: median(alignedRead), plane: median(plane), line: median(line), setBlock: median(setBlock), apply: median(apply) },
        ...(backend === 'hdf5' ? {
          // The same create + load with the chunk locks off (unsafe with other writers, so
          // only here): what the commit protocol costs a load.
          writeWithoutLocks: median(await (await import('../src/backends/hdf5/locks.js')).withoutLocksForBenchmark(() => timeRuns(runs, async () => {
            ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
            await ds.load(cube);
          }, { before: async () => { if (await con.hasDataset(name)) await con.delDataset(name); } }))),
          writeSubFloor: await rewriteFloor(ds.chunkSlices(block).filter((c) => c.chunk.some((sl, a) => (sl.stop! - sl.start!) !== C)).length, C ** 3 * 4, concurrency),
        } : {}),
        reference: { name: backend === 'ram' ? 'TypedArray.set' : backend === 'hdf5' ? 'fs files' : 'SDK loop', write: median(ref.write), read: median(ref.read) },
        misalignedCostPerByte: (median(misaligned) / blockBytes) / (median(read) / bytes),
        ...(gatherFloor !== undefined ? { gatherFloor } : {}),
        peakRssMiB: peakRssMiB(),
      });
    }
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
