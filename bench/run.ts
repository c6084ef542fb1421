/**
 * `npm run bench`: the benchmark command. Runs the slicing/I/O workloads, the plane-by-plane
 * writes and the convolution map for the chosen backends and engines, each in its own process
 * (so peak RSS is per workload), beside its references and the Python peers (bench/peers.py:
 * h5py, zarr-python 2, numpy) from the same run; prints the targets; writes
 * bench/results/latest.json, and docs/benchmarks.md when asked (--docs).
 *
 *   npm run bench                       quick (a few minutes on 2 cores)
 *   npm run bench -- --full             every chunk size, more runs, N = 512 convolution
 *   npm run bench -- --backends ram,hdf5 --engines cpu,worker-pool --runs 5
 *   npm run bench -- --docs             also rewrite docs/benchmarks.md from this run
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BENCH_HELP, parseBenchArgs, type BenchOptions } from './options.js';
import { report, type BenchRun } from './report.js';
import { withHugePages } from '../src/huge-pages.js';
import { REASONS } from './reasons.js';
import { poolRounds } from './rounds.js';

const run = promisify(execFile);
let options: BenchOptions;
try {
  options = parseBenchArgs(process.argv.slice(2));
} catch (error) {
  console.error(`bench: ${(error as Error).message}\n\n${BENCH_HELP}`);
  process.exit(2);
}
if (options.help) {
  console.log(BENCH_HELP);
  process.exit(0);
}
/** An earlier run kept for comparison in bench/results/ (baseline.json, previous.json, before-one-step-files.json), if there. */
function earlierRun(file: string): { date: string; results: Record<string, unknown>[] } | undefined {
  const path = new URL(`../../bench/results/${file}`, import.meta.url);
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : undefined;
}

if (options.report) {
  const last = JSON.parse(readFileSync(join(options.out, 'latest.json'), 'utf8')) as { command: string; date: string; node: string; runs: number; minutes?: number; results: Record<string, unknown>[]; notes: string[] };
  writeFileSync(options.docsFile, report({
    command: last.command, date: last.date, node: last.node, runs: last.runs, minutes: last.minutes ?? NaN, results: last.results, notes: last.notes,
    baseline: earlierRun('baseline.json'), previous: earlierRun('previous.json'), beforeOneStep: earlierRun('before-one-step-files.json'), reasons: REASONS,
  }));
  console.log(`wrote ${options.docsFile} from ${join(options.out, 'latest.json')}`);
  process.exit(0);
}
const { full, runs, backends, engines } = options;
const here = new URL('.', import.meta.url).pathname;
const node = process.execPath;
type Record_ = Record<string, any>;
const results: Record_[] = [];
const notes: string[] = [];

/** Runs one built bench script in its own process and collects its BENCH lines. */
async function child(script: string, args: string[], env: NodeJS.ProcessEnv = {}, launcher?: number, nodeFlags: string[] = []): Promise<Record_[]> {
  const argv = launcher ? [join(here, '../../bin/dosna.mjs'), 'launch', '-n', String(launcher), join(here, script), ...args] : [...nodeFlags, join(here, script), ...args];
  const label = `${nodeFlags.length ? `node ${nodeFlags.join(' ')} ` : ''}${script} ${args.join(' ')}${launcher ? ` (x${launcher} ranks)` : ''}`;
  process.stdout.write(`  ${label} ... `);
  // Earlier workloads leave up to gigabytes of dirty pages; flushed now, their write-back
  // cannot take CPU from this one (it would hit a run that keeps both cores busy the most).
  execFileSync('sync');
  try {
    // Huge pages for Node's large arrays, as numpy gets them (src/huge-pages.ts).
    const { stdout } = await run(node, argv, { env: withHugePages({ ...process.env, ...env }), maxBuffer: 64 * 2 ** 20, timeout: 30 * 60_000 });
    const records = stdout.split('\n').filter((l) => l.startsWith('BENCH ')).map((l) => JSON.parse(l.slice(6)) as Record_);
    process.stdout.write('done\n');
    return records;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    process.stdout.write('FAILED\n');
    notes.push(`${label} failed: ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' / ')}`);
    return [];
  }
}

/** The S3 endpoint: given in the environment, or a Ceph RGW started by the project's script. */
function s3Environment(): { env: NodeJS.ProcessEnv; started: boolean } | undefined {
  if (process.env.DOSNA_S3_ENDPOINT) return { env: {}, started: false };
  try {
    const text = execFileSync('bash', [join(here, '../../scripts/ceph-rgw.sh'), 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const env: NodeJS.ProcessEnv = {};
    for (const m of text.matchAll(/^export (\w+)=['"]?([^'"\n]*)['"]?$/gm)) env[m[1]] = m[2];
    return { env, started: true };
  } catch (error) {
    notes.push(`s3/ceph not measured: no DOSNA_S3_ENDPOINT and scripts/ceph-rgw.sh start failed (${(error as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

const started = Date.now();
console.log(`dosna benchmarks (${full ? 'full' : 'quick'}), ${runs} runs each, ${cpus().length} cores, Node ${process.version}`);
console.log('per-chunk kernel:');
results.push(...(await child('kernel.js', [])));

// The remote backends, with the RGW started for them, then (after it is stopped, so its
// daemons take no CPU) the local backends in rounds with the Python peers.
const isRemote = (b: string) => b === 's3' || b === 'ceph';
/** io.js's arguments for one backend and engine. */
function ioArgs(backend: string, engine: string, timedRuns: number, profile: boolean): string[] {
  const n = isRemote(backend) ? 128 : 256;
  const chunks = full ? (isRemote(backend) ? '32,64' : '32,64,128') : isRemote(backend) ? '32' : '64';
  const extra = engine === 'worker-pool' ? ['--engine-options', 'threads=2'] : [];
  return ['--backend', backend, '--engine', engine, ...extra, '--n', String(n), '--chunks', chunks, '--runs', String(timedRuns), ...(profile ? ['--profile'] : [])];
}
const remoteBackends = backends.filter(isRemote);
// No Python peer reads an object store: each figure is paired with its plain SDK reference
// round by round inside io.js instead.
const remote = remoteBackends.length > 0 ? s3Environment() : undefined;
if (remote) {
  console.log('slicing and I/O on the object stores:');
  for (const backend of remoteBackends) {
    for (const engine of engines) results.push(...(await child('io.js', ioArgs(backend, engine, runs, true), remote.env)));
  }
}

// The remaining workloads do not use the RGW; stopped, its daemons take no CPU from them.
if (remote?.started) execFileSync('bash', [join(here, '../../scripts/ceph-rgw.sh'), 'stop'], { stdio: 'inherit' });

/** Runs bench/peers.py (Debian's python3 with h5py, zarr, SciPy) and collects its BENCH lines. */
async function peers(args: string[]): Promise<Record_[]> {
  const label = `peers.py ${args.join(' ')}`;
  process.stdout.write(`  ${label} ... `);
  execFileSync('sync');
  const dir = mkdtempSync(join(tmpdir(), 'dosna-bench-peers-'));
  try {
    const { stdout } = await run('/usr/bin/python3', [join(here, '../../bench/peers.py'), ...args, '--dir', dir], { maxBuffer: 16 * 2 ** 20, timeout: 30 * 60_000 });
    process.stdout.write('done\n');
    return stdout.split('\n').filter((l) => l.startsWith('BENCH ')).map((l) => JSON.parse(l.slice(6)) as Record_);
  } catch (error) {
    process.stdout.write('FAILED\n');
    notes.push(`${label} failed: ${((error as { stderr?: string }).stderr || (error as Error).message).trim().split('\n').slice(-3).join(' / ')}`);
    return [];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const local = backends.filter((b) => b === 'ram' || b === 'hdf5' || b === 'zarr');
/** Whether the Python peers can run here (Debian's python3 with h5py, zarr, SciPy; installed if missing). */
let peersReady = false;
if (options.peers && local.length > 0) {
  try {
    execFileSync('bash', [join(here, '../../scripts/ensure-debian-packages.sh'), 'python3-h5py', 'python3-zarr', 'python3-scipy'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const versions = execFileSync('/usr/bin/python3', ['-c', 'import sys, h5py, zarr; print(h5py.__version__, zarr.__version__, sys.version.split()[0])'], { encoding: 'utf8' }).trim().split(' ');
    results.push({ kind: 'peer-versions', h5py: versions[0], zarr: versions[1], python: versions[2] });
    peersReady = true;
  } catch (error) {
    notes.push(`Python peers not measured: ${(error as Error).message.split('\n')[0]}`);
  }
}

// The local backends' I/O and the peers' in interleaved rounds (bench/rounds.ts): each round
// times every workload a few times (after its warm-up); the profile is taken in the first.
const IO_ROUNDS = 2;
/** The V8 flag (Node 24's V8) that counts external memory in the heap's global limit, as later V8 always does. */
const V8_GLOBAL_LIMIT_FLAG = '--external-memory-accounted-in-global-limit';
/** Rounds of the comparison with and without it. */
const V8_ACCOUNTING_ROUNDS = 2;
if (local.length > 0) {
  const ioPeers = ['numpy', ...(local.includes('hdf5') ? ['h5py'] : []), ...(local.includes('hdf5') || local.includes('zarr') ? ['zarr-dir'] : []), ...(local.includes('ram') ? ['zarr-mem'] : [])];
  // A process's first runs after its warm-up are still not its steady state (V8's heap and
  // malloc's are still growing), so each round takes a few runs rather than one.
  const roundCount = Math.min(runs, IO_ROUNDS);
  const runsPerRound = Math.max(Math.min(runs, 3), Math.ceil(runs / roundCount));
  const rounds: Record_[][] = [];
  for (let round = 0; round < roundCount; round++) {
    console.log(`slicing and I/O, round ${round + 1} of ${roundCount} (${runsPerRound} runs each):`);
    const records: Record_[] = [];
    // The engines take turns going first: on a file system that makes a new file's inode skip
    // the inodes freed in the last minutes (this machine's ext4, which has no journal), a
    // process that writes chunk files pays for those the ones before it deleted. By hand, hdf5
    // create + load in 32^3 chunks, the cpu and worker-pool engines alternating process by
    // process: 52.8 and 55.6 ms, then 63.6 and 74.2, then 85.6 and 85.3, each slower than the
    // one before it, so an engine always run second was timed after more deletes. (A quick run
    // has one round, and the profiles are taken in the first; since 351d7a5 each dataset's
    // folder is placed apart, which leaves the order far less to decide.)
    const order = round % 2 === 0 ? engines : [...engines].reverse();
    for (const backend of local) {
      for (const engine of order) records.push(...(await child('io.js', ioArgs(backend, engine, runsPerRound, round === 0))));
    }
    if (peersReady) records.push(...(await peers(['io', '--n', '256', '--chunks', full ? '32,64,128' : '64', '--runs', String(runsPerRound), '--peers', ioPeers.join(',')])));
    rounds.push(records);
  }
  results.push(...poolRounds(rounds));

  // V8's accounting of external memory (docs/guide.md): the same workloads, cpu engine, 64^3
  // chunks, in processes with and without the V8 flag that later V8 versions made their only
  // behaviour, alternating, so the report can show what the accounting costs a new result.
  const accounted = local.filter((b) => b === 'ram' || b === 'hdf5');
  if (accounted.length > 0) {
    console.log(`V8's accounting of external memory (${V8_ACCOUNTING_ROUNDS} rounds, with and without ${V8_GLOBAL_LIMIT_FLAG}):`);
    const sides: Record_[][][] = [[], []];
    for (let round = 0; round < V8_ACCOUNTING_ROUNDS; round++) {
      for (const [side, flags] of [[], [V8_GLOBAL_LIMIT_FLAG]].entries()) {
        const records: Record_[] = [];
        for (const backend of accounted) {
          const args = ['--backend', backend, '--engine', 'cpu', '--n', '256', '--chunks', '64', '--runs', String(runsPerRound)];
          records.push(...(await child('io.js', args, {}, undefined, flags)));
        }
        sides[side].push(records);
      }
    }
    for (const [side, kind] of ['io-v8-default', 'io-v8-global-limit'].entries()) {
      results.push(...poolRounds(sides[side]).map((r) => ({ ...r, kind })));
    }
  }
}

if (peersReady) {
  try {
    console.log('Python peers (h5py, zarr-python 2, numpy):');
    if (local.includes('hdf5')) {
      results.push(...(await peers(['planes', '--runs', String(Math.max(2, Math.ceil(runs / 2)))])));
      results.push(...(await peers(['map', '--n', '256', '--chunks', '64', '--runs', String(Math.max(2, Math.ceil(runs / 2))), '--peers', 'h5py,zarr-dir'])));
    }
  } catch (error) {
    notes.push(`Python peers not measured: ${(error as Error).message.split('\n')[0]}`);
  }
}
if (local.includes('hdf5')) {
  console.log('compression (float32 cube, random and smooth, per codec):');
  const codecN = full ? '256' : '128';
  for (const engine of engines.filter((e) => e !== 'cluster-rank')) {
    const extra = engine === 'worker-pool' ? ['--engine-options', 'threads=2'] : [];
    results.push(...(await child('codecs.js', ['--backend', 'hdf5', '--engine', engine, ...extra, '--n', codecN, '--chunk', '64', '--runs', String(runs)])));
  }
  if (options.peers) results.push(...(await peers(['codecs', '--n', codecN, '--chunks', '64', '--runs', String(runs)])));
}
if (local.length > 0) {
  console.log('plane by plane (256 x set([z], plane) of a 256 x 384 x 384 uint16 volume):');
  for (const backend of local) {
    for (const engine of engines) {
      const extra = engine === 'worker-pool' ? ['--engine-options', 'threads=2'] : [];
      results.push(...(await child('planes.js', ['--backend', backend, '--engine', engine, ...extra, '--runs', String(runs)])));
    }
  }
}

console.log('convolution (gaussian sigma 1.5, 3-D map per chunk):');
const convN = full ? [256, 512] : [256];
/**
 * Speedups compare engines measured apart in time, on a machine others share: each engine's
 * runs are split over interleaved rounds (cpu, parallel, cpu, parallel, ...) and pooled, so a
 * noisy minute weighs on both sides alike.
 */
const ROUNDS = 5;
async function convRounds(variants: { key: string; run: () => Promise<Record_[]> }[]): Promise<void> {
  const pooled = new Map<string, Record_>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      for (const r of await v.run()) {
        const seen = pooled.get(v.key);
        if (!seen) pooled.set(v.key, { ...r, roundMs: [r.ms] });
        else {
          seen.all.push(...r.all);
          seen.roundMs.push(r.ms);
          seen.peakRssMiB = Math.max(seen.peakRssMiB, r.peakRssMiB);
        }
      }
    }
  }
  for (const r of pooled.values()) {
    const sorted = [...r.all].sort((a: number, b: number) => a - b);
    r.ms = sorted[Math.floor(sorted.length / 2)];
    r.runs = sorted.length;
    results.push(r);
  }
}
const perRound = String(Math.max(2, Math.ceil(runs / 2)));
for (const n of convN) {
  for (const backend of backends.filter((b) => b === 'ram' || b === 'hdf5')) {
    const variants = engines.map((engine) => ({
      key: `${backend}/${engine}`,
      run: () => child('conv.js', ['--backend', backend, '--engine', engine, ...(engine === 'worker-pool' ? ['--engine-options', 'threads=2'] : []), '--n', String(n), '--chunk', '64', '--runs', perRound]),
    }));
    if (backend === 'hdf5') {
      variants.push({
        key: 'hdf5/cluster-rank',
        run: async () => {
          const dir = mkdtempSync(join(tmpdir(), 'dosna-bench-rank-'));
          try {
            return await child('conv.js', ['--backend', 'hdf5', '--engine', 'cluster-rank', '--n', String(n), '--chunk', '64', '--runs', perRound, '--directory', dir], {}, 2);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      });
    }
    await convRounds(variants);
  }
}

if (options.queue && backends.includes('hdf5')) {
  console.log('queue engine (a redis-server and 2 dosna workers here):');
  results.push(...(await child('queue.js', ['--runs', String(runs)])));
}

if (backends.includes('hdf5')) {
  console.log('memory (map over a 1 GiB hdf5 dataset):');
  // The input is written by one process; each engine's map then runs in a fresh process,
  // so its peak RSS is the map's own.
  const dir = mkdtempSync(join(tmpdir(), 'dosna-bench-memory-'));
  const common = ['--backend', 'hdf5', '--shape', '1024,512,512', '--chunk', '64', '--directory', dir, '--connection', 'memory'];
  await child('conv.js', [...common, '--engine', 'cpu', '--load-only', '--runs', '1']);
  for (const engine of engines) {
    const extra = engine === 'worker-pool' ? ['--engine-options', 'threads=2'] : [];
    const records = await child('conv.js', [...common, '--engine', engine, ...extra, '--skip-load', '--runs', '1']);
    for (const r of records) r.kind = 'memory';
    results.push(...records);
  }
  rmSync(dir, { recursive: true, force: true });
}

const command = `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const benchRun: BenchRun = {
  command, date: new Date().toISOString(), node: process.version, runs, minutes: (Date.now() - started) / 60000,
  results, notes, baseline: earlierRun('baseline.json'), previous: earlierRun('previous.json'), beforeOneStep: earlierRun('before-one-step-files.json'), reasons: REASONS,
};
const doc = report(benchRun);
mkdirSync(options.out, { recursive: true });
writeFileSync(join(options.out, 'latest.json'), JSON.stringify({ command, date: benchRun.date, node: process.version, cpus: cpus().length, runs, full, minutes: benchRun.minutes, results, notes }, null, 2));
const targets = doc.slice(doc.indexOf('## Targets'), doc.indexOf('\n## ', doc.indexOf('## Targets') + 5)).trim();
console.log(`\n${targets}\n\nwrote ${join(options.out, 'latest.json')}`);
if (options.docs) {
  writeFileSync(options.docsFile, doc);
  console.log(`wrote ${options.docsFile}`);
} else {
  console.log('docs/benchmarks.md left as it is (pass --docs to rewrite it from this run)');
}
