/**
 * The convolution map workload for one backend x engine: a gaussian (sigma 1.5, radius 6)
 * `map` over a random float32 cube, 3-D per chunk. Runs under `dosna launch` too
 * (cluster-rank): every rank times the collective map, rank 0 reports.
 * usage: conv.ts --backend B --engine E [--engine-options k=v] --n 256 --chunk 64 --runs 5 [--halo 0]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dn from '../src/index.js';
import { parseConnectionArgs } from '../src/cli/connection-args.js';
import { emit, median, peakRssMiB, randomFloat32 } from './common.js';

const { args, values } = parseConnectionArgs(process.argv.slice(2), {
  n: { type: 'string', default: '256' }, chunk: { type: 'string', default: '64' }, runs: { type: 'string', default: '5' },
  halo: { type: 'string', default: '0' }, directory: { type: 'string' }, 'skip-load': { type: 'boolean', default: false },
  shape: { type: 'string' },
  /** Only write the input (into --directory), so another process can measure the map alone. */
  'load-only': { type: 'boolean', default: false },
});
const backend = args.backend ?? 'ram';
const engine = args.engine ?? 'cpu';
const N = Number(values.n);
const C = Number(values.chunk);
/** A cube of N by default; --shape z,y,x for others (the memory workload's 1 GiB is 1024 x 512 x 512). */
const shape = values.shape ? String(values.shape).split(',').map(Number) : [N, N, N];
const plane = shape[1] * shape[2];
const runs = Number(values.runs);
const halo = Number(values.halo);
// Ranks share one folder: the orchestrator passes it (a fresh temp folder otherwise).
const directory = (values.directory as string | undefined) ?? mkdtempSync(join(tmpdir(), 'dosna-conv-'));

await dn.withConnection(args.connection ?? 'bench-conv', {
  backend, engine, engineOptions: args.engineOptions, ...(backend === 'hdf5' ? { directory, create: true } : {}), ...args.connectionOptions,
}, async (con) => {
  let ds: dn.Dataset;
  const t0 = performance.now();
  if (await con.hasDataset('input') && values['skip-load']) ds = await con.getDataset('input');
  else {
    if (await con.hasDataset('input')) await con.delDataset('input');
    ds = await con.createDataset('input', { shape, dtype: 'float32', chunkSize: [C, C, C] });
    // One slab of whole chunks at a time keeps peak memory near one slab, not the whole dataset.
    const slab = Math.max(1, Math.floor((64 * 2 ** 20) / (plane * 4 * C))) * C;
    for (let z = 0; z < shape[0]; z += slab) {
      const rows = Math.min(slab, shape[0] - z);
      await ds.set([dn.s(z, z + rows)], dn.ndarray(randomFloat32(rows * plane, 1 + z), [rows, shape[1], shape[2]]));
    }
  }
  const loadMs = performance.now() - t0;
  const peakAfterLoadMiB = peakRssMiB();
  if (values['load-only']) return;
  const times: number[] = [];
  let computeMs = 0;
  // One untimed warm-up run: every worker thread or rank compiles the kernel once.
  for (let r = -1; r < runs; r++) {
    if (await con.hasDataset('output')) await con.delDataset('output');
    await con.barrier();
    const t = performance.now();
    const out = await ds.map(dn.gaussianKernels.gaussian3d, 'output', { halo, args: { sigma: 1.5 } });
    if (r >= 0) times.push(performance.now() - t);
    computeMs = ds.lastRun!.tasks.reduce((a, task) => a + task.computeMs, 0) / ds.lastRun!.tasks.length;
    await out.delete(); // collective: the root deletes, every rank takes part
  }
  if (con.isRoot) {
    emit({ kind: 'conv', backend, engine, engineOptions: args.engineOptions, ranks: con.size, N, shape, bytes: shape.reduce((a, b) => a * b, 4), C, halo, runs, ms: median(times), all: times, loadMs, computeMsPerChunk: computeMs, peakAfterLoadMiB, peakRssMiB: peakRssMiB() });
  }
  if (!values['skip-load']) await ds.delete();
});
if (values.directory === undefined) rmSync(directory, { recursive: true, force: true });
