/**
 * Compression (issue 16): the random cube and a smooth one (N^3 float32, cubic chunks of C)
 * written (create + load) and read (`get()`) with each codec, beside their raw write and read
 * in the same process; the ratio is stored bytes over raw bytes. h5py (gzip + shuffle) and
 * zarr-python 2 (Blosc zstd + shuffle) do the same in bench/peers.py, same run, same data.
 * usage: codecs.ts --backend B --engine E [--engine-options k=v] --n 256 --chunk 64 --runs 3
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dn from '../src/index.js';
import { parseConnectionArgs } from '../src/cli/connection-args.js';
import { emit, median, peakRssMiB, randomFloat32, timeRuns } from './common.js';

const { args, values } = parseConnectionArgs(process.argv.slice(2), { n: { type: 'string', default: '256' }, chunk: { type: 'string', default: '64' }, runs: { type: 'string', default: '3' } });
const backend = args.backend ?? 'hdf5';
const engine = args.engine ?? 'cpu';
const n = Number(values.n);
const c = Number(values.chunk);
const runs = Number(values.runs);
const shape = [n, n, n];

/** Smooth data of few significant bits (a detector's counts scaled): bench/peers.py's smooth_float32. */
function smoothFloat32(size: number): Float32Array {
  const out = new Float32Array(size ** 3);
  let i = 0;
  for (let z = 0; z < size; z++) {
    for (let y = 0; y < size; y++) {
      const zy = Math.sin(z / 20) * Math.cos(y / 25);
      for (let x = 0; x < size; x++) out[i++] = Math.round(1000 * zy * Math.sin(x / 30 + 1)) / 8;
    }
  }
  return out;
}

const CODECS: { label: string; options: Pick<dn.CreateDatasetOptions, 'compression' | 'compressionLevel' | 'shuffle'> }[] = [
  { label: 'raw', options: {} },
  { label: 'zstd 1 + shuffle', options: { compression: 'zstd', compressionLevel: 1, shuffle: true } },
  { label: 'gzip 4 + shuffle', options: { compression: 'gzip', compressionLevel: 4, shuffle: true } },
  { label: 'lz4 + shuffle', options: { compression: 'lz4', shuffle: true } },
];

const scratch = mkdtempSync(join(tmpdir(), 'dosna-bench-codecs-'));
try {
  const options = { backend, engine, engineOptions: args.engineOptions, ...(backend === 'hdf5' ? { directory: scratch, create: true } : {}), ...args.connectionOptions };
  await dn.withConnection(`codecs-${process.pid}`, options, async (con) => {
    for (const [data, values] of [['random', randomFloat32(n ** 3)], ['smooth', smoothFloat32(n)]] as const) {
      const cube = dn.ndarray(values, shape);
      const out = new Float32Array(n ** 3);
      for (const codec of CODECS) {
        const fresh = async () => { if (await con.hasDataset('v')) await con.delDataset('v'); };
        const write = async () => { await con.createDataset('v', { data: cube, chunkSize: [c, c, c], ...codec.options }); };
        // One untimed round first (codec set-up, the hdf5 layout's first check).
        await fresh();
        await write();
        const writes = await timeRuns(runs, write, { before: fresh });
        const ds = await con.getDataset('v');
        const stored = await ds.storedBytes();
        await ds.get(undefined, { out });
        const reads = await timeRuns(runs, () => ds.get(undefined, { out }));
        if (!out.every((v, i) => v === values[i])) throw new Error(`${codec.label} on ${data}: read back other values`);
        await fresh();
        emit({
          kind: 'codecs', backend, engine, engineOptions: args.engineOptions, N: n, C: c, data, codec: codec.label, runs, bytes: n ** 3 * 4,
          ms: { write: median(writes), read: median(reads) }, storedBytes: stored, ratio: stored / (n ** 3 * 4), peakRssMiB: peakRssMiB(),
        });
      }
    }
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
