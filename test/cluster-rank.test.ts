/**
 * The cluster-rank engine, run for real: the same script as 3 processes under our launcher
 * and under Open MPI's mpiexec (installed by the project's own script), on the hdf5 backend.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { detectRank, ranksFillCores } from '../src/cluster/ranks.js';
import { python } from './support/python.js';

const run = promisify(execFile);
const node = process.execPath;
const scenario = resolve('test/fixtures/cluster-scenario.ts');

interface Outcome { code: number; reports: Record<string, unknown>[]; stderr: string; ms: number }

async function runRanks(launcher: 'dosna' | 'mpiexec', name: string, ranks = 3): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), `dosna-cluster-${name}-`));
  const [cmd, args] = launcher === 'dosna'
    ? [node, ['bin/dosna.mjs', 'launch', '-n', String(ranks), '--grace', '20', scenario, name, dir]]
    // Open MPI tears the whole job down when a rank dies, racing our own detection; with
    // --enable-recovery it leaves the survivors running, so the test sees what dosna does.
    : ['mpiexec', ['--allow-run-as-root', '--oversubscribe', ...(name === 'kill' ? ['--enable-recovery'] : []), '-n', String(ranks), node, '--import', 'tsx', scenario, name, dir]];
  const t0 = Date.now();
  let stdout = '';
  let stderr = '';
  let code = 0;
  try {
    ({ stdout, stderr } = await run(cmd, args, { timeout: 90_000 }));
  } catch (error) {
    const e = error as { stdout: string; stderr: string; code: number };
    ({ stdout, stderr } = e);
    code = e.code;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const reports = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  reports.sort((a, b) => (a.rank as number) - (b.rank as number));
  return { code, reports, stderr, ms: Date.now() - t0 };
}

describe('rank detection', () => {
  it('reads Open MPI, MPICH, Slurm and our launcher; defaults to one rank', () => {
    expect(detectRank({})).toMatchObject({ rank: 0, size: 1, launcher: 'none' });
    expect(detectRank({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4', MASTER_PORT: '1234' })).toMatchObject({ rank: 2, size: 4, launcher: 'openmpi', masterPort: 1234 });
    expect(detectRank({ PMI_RANK: '1', PMI_SIZE: '2' })).toMatchObject({ rank: 1, size: 2, launcher: 'mpich', masterAddr: '127.0.0.1' });
    expect(detectRank({ SLURM_PROCID: '3', SLURM_NTASKS: '8', SLURM_JOB_ID: '77', MASTER_ADDR: 'node01' })).toMatchObject({ rank: 3, size: 8, launcher: 'slurm', masterAddr: 'node01' });
    expect(detectRank({ DOSNA_RANK: '0', DOSNA_SIZE: '1' }).launcher).toBe('dosna');
    // The same job id gives every rank the same default port; another job gets another.
    const a = detectRank({ SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_JOB_ID: '77' }).masterPort;
    expect(detectRank({ SLURM_PROCID: '1', SLURM_NTASKS: '2', SLURM_JOB_ID: '77' }).masterPort).toBe(a);
    expect(() => detectRank({ PMI_RANK: '5', PMI_SIZE: '2' })).toThrow(/bad rank/);
  });

  it('knows how many ranks share this host, and whether they take every core', () => {
    expect(detectRank({ DOSNA_RANK: '1', DOSNA_SIZE: '3' }).localSize).toBe(3); // our launcher starts all here
    expect(detectRank({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '8', OMPI_COMM_WORLD_LOCAL_SIZE: '4' }).localSize).toBe(4);
    expect(detectRank({ PMI_RANK: '0', PMI_SIZE: '4', MPI_LOCALNRANKS: '2' }).localSize).toBe(2);
    expect(detectRank({ SLURM_PROCID: '0', SLURM_NTASKS: '8' }).localSize).toBeUndefined();
    expect(ranksFillCores({ DOSNA_RANK: '0', DOSNA_SIZE: '2' }, 2)).toBe(true);
    expect(ranksFillCores({ DOSNA_RANK: '0', DOSNA_SIZE: '2' }, 4)).toBe(false);
    expect(ranksFillCores({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '64', OMPI_COMM_WORLD_LOCAL_SIZE: '2' }, 32)).toBe(false);
    expect(ranksFillCores({ SLURM_PROCID: '0', SLURM_NTASKS: '64' }, 2)).toBe(false); // unknown: keep background I/O
    expect(ranksFillCores({}, 1)).toBe(false); // one process is not "several ranks"
    expect(ranksFillCores({ PMI_RANK: '9', PMI_SIZE: '2' }, 1)).toBe(false);
  });
});

describe.each(['dosna', 'mpiexec'] as const)('3 ranks under %s on hdf5', (launcher) => {
  beforeAll(() => {
    if (launcher === 'mpiexec') execFileSync('bash', ['scripts/ensure-debian-packages.sh', 'openmpi-bin'], { stdio: 'inherit' });
  }, 600_000);

  it('collective load, slabs, clear, map, clone + load and apply give every rank the right data', async () => {
    const { code, reports, stderr } = await runRanks(launcher, 'collective');
    expect(code, stderr).toBe(0);
    expect(reports.map((r) => r.rank)).toEqual([0, 1, 2]);
    const dealt: string[] = [];
    for (const r of reports) {
      expect(r).toMatchObject({
        size: 3, loadedChunks: 6, readsLoaded: true, clearedToFill: true, storedAfterClear: 0,
        mapped: true, cloneLoaded: true, applied: true, datasets: ['copy', 'data', 'doubled'],
      });
      expect(r.slabs).toEqual(r.expectedSlabs);
      dealt.push(...(r.applyChunks as string[]));
      // Chunk i (C order in the 3x2x3 grid) goes to rank i % 3.
      for (const key of r.applyChunks as string[]) {
        const [a, b, c] = key.split('.').map(Number);
        expect((a * 6 + b * 3 + c) % 3).toBe(r.rank);
      }
    }
    expect(dealt.sort()).toHaveLength(18);
    expect(new Set(dealt).size).toBe(18);
  });

  it('ranks writing interleaved rows of shared chunks lose nothing (cache on, off, and evicting)', async () => {
    const { code, reports, stderr } = await runRanks(launcher, 'interleaved');
    expect(code, stderr).toBe(0);
    expect(reports.map((r) => r.rank)).toEqual([0, 1, 2]);
    expect(reports[0].wrong, 'cells wrong (15 datasets checked on rank 0)').toEqual({ default: 0, off: 0, tiny: 0 });
  });

  it('the guide\'s cluster example stores every rank\'s rows, run after run', async () => {
    const guide = readFileSync('docs/guide.md', 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(guide.slice(guide.indexOf('## Running on a cluster')))![1];
    // The example as the guide prints it, plus a look at the whole dataset before it is deleted.
    const checked = block
      .replace(/from ['"]dosna['"]/, `from '${pathToFileURL(resolve('src/index.ts')).href}'`)
      .replace('await ds.delete();', "if (con.isRoot) console.log('CHECK ' + JSON.stringify(Array.from((await ds.get()).data as Float32Array)));\n  await ds.delete();");
    expect(checked).toContain('CHECK');
    const dir = mkdtempSync(join(tmpdir(), 'dosna-cluster-guide-'));
    try {
      writeFileSync(join(dir, 'example.mts'), `${checked}\nexport {};\n`);
      const ranks = 4;
      // Rank k writes rows 8k..8k+7 with k + 1, apply doubles every cell; rows beyond stay 0.
      const expected = Array.from({ length: 64 * 64 }, (_, i) => { const row = Math.floor(i / 64); return row < 8 * ranks ? 2 * (Math.floor(row / 8) + 1) : 0; });
      for (let attempt = 0; attempt < 3; attempt++) {
        const [cmd, args] = launcher === 'dosna'
          ? [node, [resolve('bin/dosna.mjs'), 'launch', '-n', String(ranks), 'example.mts']]
          : ['mpiexec', ['--allow-run-as-root', '--oversubscribe', '-n', String(ranks), node, '--import', pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href, 'example.mts']];
        const { stdout } = await run(cmd, args, { cwd: dir, timeout: 90_000 });
        const line = stdout.split('\n').find((l) => l.startsWith('CHECK '));
        expect(line, stdout).toBeDefined();
        const got = JSON.parse(line!.slice(6)) as number[];
        expect(got.filter((v, i) => v !== expected[i]).length, `run ${attempt}: cells wrong`).toBe(0);
        expect(line).toBeDefined();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('an error on one rank rejects every rank\'s collective with that rank\'s error and stack', async () => {
    const { code, reports, stderr } = await runRanks(launcher, 'throw');
    expect(code, stderr).toBe(0);
    expect(reports).toHaveLength(3);
    for (const r of reports) {
      expect(r.error).toBe('KernelError');
      expect(r.message).toMatch(/chunk \[1, 1, 1\]: rank-specific failure/);
      expect(r.causeName).toBe('RangeError');
      expect(r.outputExists).toBe(false);
      if (r.rank !== 1) expect(r.stack).toMatch(/\(in rank 1\)/);
    }
  });

  it('ranks making different collective calls are told which call each rank made, in the user\'s terms', async () => {
    const { reports, stderr } = await runRanks(launcher, 'mismatch');
    expect(reports, stderr).toHaveLength(3);
    for (const r of reports) {
      expect(r.error).toBe('DosnaError');
      expect(r.message).toContain(`rank 0 called 'delDataset("victim")', rank 1 called 'barrier()', rank 2 called 'barrier()'`);
      expect(r.message).not.toMatch(/onRoot/);
    }
  });

  it('groups, attributes, append and resize are collective: one result, seen by every rank', async () => {
    const { reports, stderr } = await runRanks(launcher, 'metadata');
    expect(reports, stderr).toHaveLength(3);
    for (const r of reports) {
      expect(r.error, r.message as string).toBeNull();
      expect(r.afterAppend).toEqual([0, 10, 20, 30, 40, 50, 60]); // appended once, not once per rank
      expect(r.shape).toEqual([5, 6]);
      expect(r.rows).toEqual([-1, -2, 0, 0, 0]); // rows 2.. were cut, and read as the fill value
      expect(r.operator).toBe('rank-independent');
      expect(r.list).toEqual([{ name: 'stream', kind: 'dataset' }]);
    }
  });

  it('reductions and allreduce: every rank gets the same results, equal to NumPy\'s, partials combined in chunk order', async () => {
    const { reports, stderr } = await runRanks(launcher, 'reductions');
    expect(reports, stderr).toHaveLength(3);
    const expected = JSON.parse(python(`
import numpy as np, json
a = ((np.arange(12 * 10 * 8) * 37) % 101).astype(np.float32)
h, e = np.histogram(a, 7, (0.0, 100.0))
h2, e2 = np.histogram(a, 5)
print(json.dumps({"min": float(a.min()), "max": float(a.max()), "sum": float(a.astype(np.float64).sum()), "mean": float(a.astype(np.float64).mean()), "std": float(a.astype(np.float64).std()), "h": h.tolist(), "e": e.astype(float).tolist(), "h2": h2.tolist(), "e2": e2.astype(float).tolist()}))
`)) as Record<string, number & number[]>;
    const order = [];
    for (let x = 0; x < 3; x++) for (let y = 0; y < 2; y++) for (let z = 0; z < 3; z++) order.push(`${x}.${y}.${z}`);
    for (const r of reports) {
      expect(r.error, r.message as string).toBeNull();
      expect(r.stats).toEqual(reports[0].stats);
      const stats = r.stats as Record<string, number>;
      expect([stats.count, stats.min, stats.max, stats.sum]).toEqual([960, expected.min, expected.max, expected.sum]);
      expect(stats.mean).toBeCloseTo(expected.mean, 12);
      expect(stats.std).toBeCloseTo(expected.std, 12);
      expect(r.histogram).toEqual({ counts: expected.h, edges: expected.e });
      expect(r.auto).toEqual({ counts: expected.h2, edges: expected.e2 });
      expect(r.order).toEqual(order);
      expect(r.ranSomewhere).toBe(6); // 18 chunks dealt over 3 ranks
      expect([r.sum, r.max, r.min, r.big]).toEqual([6, [2, 0], ['0.5', 'NaN'], String(3n * 2n ** 60n)]);
    }
  });

  it('a killed rank makes the others fail promptly instead of hanging', async () => {
    const { code, reports, ms } = await runRanks(launcher, 'kill');
    // Our launcher reports the killed rank's status; mpiexec with --enable-recovery exits 0.
    if (launcher === 'dosna') expect(code).toBe(128 + 9);
    const survivors = reports.filter((r) => r.rank !== 2);
    expect(survivors.map((r) => r.rank)).toEqual([0, 1]);
    for (const r of survivors) {
      expect(r.error).toBe('ConnectionError');
      expect(r.message).toMatch(/rank 2 disconnected/);
      expect(r.waitedMs as number).toBeLessThan(10_000);
    }
    expect(ms).toBeLessThan(60_000);
  });

  it('refuses the ram backend with more than one rank', async () => {
    const { reports } = await runRanks(launcher, 'ram');
    expect(reports).toHaveLength(3);
    for (const r of reports) {
      expect(r.error).toBe('DosnaError');
      expect(r.message).toMatch(/own memory.*hdf5, s3, ceph/);
    }
  });
});

describe('dosna launch', () => {
  it('prints help and refuses bad arguments with exit code 2', async () => {
    const help = await run(node, ['bin/dosna.mjs', 'launch', '--help']);
    expect(help.stdout).toMatch(/usage: dosna launch -n N/);
    await expect(run(node, ['bin/dosna.mjs', 'launch', 'script.ts'])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/needs -n N/) });
    await expect(run(node, ['bin/dosna.mjs', 'nosuch'])).rejects.toMatchObject({ code: 2 });
  });
});
