/**
 * The detector's pattern (issue 12): 256 planes written one `set([z], plane)` at a time into a
 * 256 x 384 x 384 uint16 volume chunked 64 x 128 x 128, then flushed; beside one `load` of the
 * same volume in the same process (the target: within 1.5x of it). h5py's figures for the same
 * pattern come from bench/peers.py in the same run.
 * usage: planes.ts --backend B --engine E [--engine-options k=v] --runs 3
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dn from '../src/index.js';
import { parseConnectionArgs } from '../src/cli/connection-args.js';
import { emit, median, pairedRounds, peakRssMiB, randomFloat32, timeRuns } from './common.js';
import { profileShares } from './profile.js';

const { args, values } = parseConnectionArgs(process.argv.slice(2), { runs: { type: 'string', default: '3' } });
const backend = args.backend ?? 'hdf5';
const engine = args.engine ?? 'cpu';
const runs = Number(values.runs);
const shape = [256, 384, 384];
const chunkSize = [64, 128, 128];
const plane = dn.ndarray(Uint16Array.from(randomFloat32(384 * 384, 3), (v) => Math.trunc(v * 65535)), [384, 384]);
const volume = new Uint16Array(shape[0] * 384 * 384);
for (let z = 0; z < shape[0]; z++) volume.set(plane.data as Uint16Array, z * 384 * 384);
const scratch = mkdtempSync(join(tmpdir(), 'dosna-bench-planes-'));

try {
  const options = { backend, engine, engineOptions: args.engineOptions, ...(backend === 'hdf5' || backend === 'zarr' ? { directory: scratch, create: true } : {}), ...args.connectionOptions };
  await dn.withConnection(`planes-${process.pid}`, options, async (con) => {
    const fresh = async () => { if (await con.hasDataset('v')) await con.delDataset('v'); };
    const planesRun = async () => {
      const ds = await con.createDataset('v', { shape, dtype: 'uint16', chunkSize });
      for (let z = 0; z < shape[0]; z++) await ds.set([z], plane);
      await ds.flush();
    };
    const loadRun = async () => {
      const ds = await con.createDataset('v', { shape, dtype: 'uint16', chunkSize });
      await ds.load(dn.ndarray(volume, shape));
    };
    // Interleaved, round by round (bench/common.ts, pairedRounds): on a shared machine a noisy
    // moment then weighs on both alike, and each round's own ratio compares runs made close together.
    let cacheWork: Record<string, number> = {};
    const { ours: planes, theirs: load } = await pairedRounds(runs, async () => {
      const before = { ...con.cacheStats } as Record<string, number>;
      const [ms] = await timeRuns(1, planesRun, { before: fresh });
      const after = con.cacheStats as Record<string, number> | undefined;
      // What the cache did in one run of the planes.
      if (after) cacheWork = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
      return ms;
    }, async () => (await timeRuns(1, loadRun, { before: fresh }))[0]);
    const stats = con.cacheStats ? cacheWork : undefined;
    // One more, untimed run of each under the profiler (bench/profile.ts).
    await fresh();
    const planesProfile = await profileShares(planesRun, import.meta.url, { once: true });
    await fresh();
    const loadProfile = await profileShares(loadRun, import.meta.url, { once: true });
    await fresh();
    emit({
      kind: 'planes', backend, engine, engineOptions: args.engineOptions, shape, chunkSize, runs,
      ms: median(planes), loadMs: median(load), roundRatios: planes.map((p, i) => p / load[i]), ratio: median(planes.map((p, i) => p / load[i])),
      cache: stats, profiles: { planes: planesProfile, load: loadProfile }, peakRssMiB: peakRssMiB(),
    });
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
