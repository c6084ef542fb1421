/**
 * `npm run bench`: the benchmark command. Runs the slicing/I/O workloads and the convolution
 * map for the chosen backends and engines, each in its own process (so peak RSS is per
 * workload) beside its reference from the same run; prints medians, ratios and peak RSS;
 * writes bench/results/latest.json and regenerates docs/benchmarks.md.
 *
 *   npm run bench                       quick (a few minutes on 2 cores)
 *   npm run bench -- --full             every chunk size, more runs, N = 512 convolution
 *   npm run bench -- --backends ram,hdf5 --engines cpu,worker-pool --runs 5
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    full: { type: 'boolean', default: false },
    backends: { type: 'string', default: 'ram,hdf5,s3,ceph' },
    engines: { type: 'string', default: 'cpu,worker-pool' },
    runs: { type: 'string' },
    out: { type: 'string', default: 'bench/results' },
    docs: { type: 'string', default: 'docs/benchmarks.md' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: npm run bench -- [--full] [--backends ram,hdf5,s3,ceph] [--engines cpu,worker-pool] [--runs N] [--out DIR] [--docs FILE]');
  process.exit(0);
}
const full = values.full!;
const runs = Number(values.runs ?? 5);
const backends = values.backends!.split(',');
const engines = values.engines!.split(',');
const here = new URL('.', import.meta.url).pathname;
const node = process.execPath;
type Record_ = Record<string, any>;
const results: Record_[] = [];
const notes: string[] = [];

/** Runs one built bench script in its own process and collects its BENCH lines. */
async function child(script: string, args: string[], env: NodeJS.ProcessEnv = {}, launcher?: number): Promise<Record_[]> {
  const argv = launcher ? [join(here, '../../bin/dosna.mjs'), 'launch', '-n', String(launcher), join(here, script), ...args] : [join(here, script), ...args];
  const label = `${script} ${args.join(' ')}${launcher ? ` (x${launcher} ranks)` : ''}`;
  process.stdout.write(`  ${label} ... `);
  // Earlier workloads leave up to gigabytes of dirty pages; flushed now, their write-back
  // cannot take CPU from this one (it would hit a run that keeps both cores busy the most).
  execFileSync('sync');
  try {
    const { stdout } = await run(node, argv, { env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20, timeout: 30 * 60_000 });
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

const remote = backends.some((b) => b === 's3' || b === 'ceph') ? s3Environment() : undefined;
console.log('slicing and I/O:');
for (const backend of backends) {
  const isRemote = backend === 's3' || backend === 'ceph';
  if (isRemote && !remote) continue;
  const n = isRemote ? 128 : 256;
  const chunks = full ? (isRemote ? '32,64' : '32,64,128') : isRemote ? '32' : '64';
  for (const engine of engines) {
    const extra = engine === 'worker-pool' ? ['--engine-options', 'threads=2'] : [];
    results.push(...(await child('io.js', ['--backend', backend, '--engine', engine, ...extra, '--n', String(n), '--chunks', chunks, '--runs', String(runs)], remote?.env)));
  }
}

// The remaining workloads do not use the RGW; stopped, its daemons take no CPU from them.
if (remote?.started) execFileSync('bash', [join(here, '../../scripts/ceph-rgw.sh'), 'stop'], { stdio: 'inherit' });

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

// ----------------------------------------------------------------------------------------
const MB = 1e6;
const fmt = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);
const ok = (met: boolean) => (met ? 'met' : '**not met**');
const io = results.filter((r) => r.kind === 'io');
const conv = results.filter((r) => r.kind === 'conv');
const kernel = results.find((r) => r.kind === 'kernel');
const memory = results.filter((r) => r.kind === 'memory');

const ioTable = [
  '| backend | engine | N | C | write MB/s | ref write MB/s | ratio | read MB/s | ref read MB/s | ratio | read into reused \`out\` MB/s (ratio) | new N^3 array alone ms | misaligned cost/byte vs aligned | plane ms | line ms | set block ms | apply ms | peak RSS MiB |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...io.map((r) => `| ${r.backend} | ${r.engine} | ${r.N} | ${r.C} | ${fmt(mbps(r.bytes, r.ms.write), 0)} | ${fmt(mbps(r.bytes, r.reference.write), 0)} (${r.reference.name}) | ${fmt(r.reference.write / r.ms.write, 2)} | ${fmt(mbps(r.bytes, r.ms.read), 0)} | ${fmt(mbps(r.bytes, r.reference.read), 0)} | ${fmt(r.reference.read / r.ms.read, 2)} | ${fmt(mbps(r.bytes, r.ms.readInto), 0)} (${fmt(r.reference.read / r.ms.readInto, 2)}) | ${r.ms.freshArray === undefined ? '' : fmt(r.ms.freshArray, 1)} | ${fmt(r.misalignedCostPerByte, 2)} | ${fmt(r.ms.plane, 2)} | ${fmt(r.ms.line, 2)} | ${fmt(r.ms.setBlock)} | ${fmt(r.ms.apply)} | ${fmt(r.peakRssMiB, 0)} |`),
];
const convTable = [
  '| backend | engine | ranks/threads | N | C | median ms | speedup vs cpu (same backend) | speedup in each round | compute ms/chunk | peak RSS MiB |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...conv.map((r) => {
    const base = conv.find((c) => c.engine === 'cpu' && c.backend === r.backend && c.N === r.N);
    const par = r.engine === 'worker-pool' ? `${r.engineOptions?.threads ?? '?'} threads` : r.engine === 'cluster-rank' ? `${r.ranks} ranks` : '1';
    // Rounds are interleaved, so a round's ratio compares runs made close together in time.
    const perRound = base?.roundMs && r.roundMs && r !== base ? r.roundMs.map((ms: number, i: number) => fmt(base.roundMs[i] / ms, 2)).join(', ') : '-';
    return `| ${r.backend} | ${r.engine} | ${par} | ${r.N} | ${r.C} | ${fmt(r.ms, 0)} | ${base ? fmt(base.ms / r.ms, 2) : '-'} | ${perRound} | ${fmt(r.computeMsPerChunk)} | ${fmt(r.peakRssMiB, 0)} |`;
  }),
];

const targets: string[] = ['| target | measured | status |', '| --- | --- | --- |'];
for (const r of io) {
  const w = r.reference.write / r.ms.write;
  const rd = r.reference.read / r.ms.read;
  const need = r.backend === 'ram' || r.backend === 'hdf5' ? 0.5 : 0.8;
  targets.push(`| ${r.backend} x ${r.engine} C=${r.C}: write >= ${need * 100}% of ${r.reference.name} | ${fmt(w * 100, 0)}% | ${ok(w >= need)} |`);
  targets.push(`| ${r.backend} x ${r.engine} C=${r.C}: read >= ${need * 100}% of ${r.reference.name} | ${fmt(rd * 100, 0)}% | ${ok(rd >= need)} |`);
  targets.push(`| ${r.backend} x ${r.engine} C=${r.C}: misaligned read <= 2x aligned per byte | ${fmt(r.misalignedCostPerByte, 2)}x | ${ok(r.misalignedCostPerByte <= 2)} |`);
}
for (const r of conv.filter((c) => c.engine !== 'cpu')) {
  const base = conv.find((c) => c.engine === 'cpu' && c.backend === r.backend && c.N === r.N);
  if (!base) continue;
  targets.push(`| ${r.engine} (${r.engine === 'worker-pool' ? '2 threads' : `${r.ranks} ranks`}) on ${r.backend}, N=${r.N} C=64: >= 1.7x cpu | ${fmt(base.ms / r.ms, 2)}x | ${ok(base.ms / r.ms >= 1.7)} |`);
}
if (kernel) {
  targets.push(kernel.scipyMs
    ? `| gaussian kernel on 64^3 float32 within 1.5x of SciPy gaussian_filter | ${fmt(kernel.ms, 2)} ms vs ${fmt(kernel.scipyMs, 2)} ms = ${fmt(kernel.ms / kernel.scipyMs, 2)}x | ${ok(kernel.ms / kernel.scipyMs <= 1.5)} |`
    : `| gaussian kernel within 1.5x of SciPy | ${fmt(kernel.ms, 2)} ms; ${kernel.note} | not measured |`);
}
for (const r of memory) targets.push(`| map over 1 GiB hdf5 (${r.engine}) peak RSS < 400 MB | ${fmt(r.peakRssMiB * 1.048576, 0)} MB | ${ok(r.peakRssMiB * 1.048576 < 400)} |`);

/** Why a target is missed, by what the figures and profiles of this project showed. */
const REASONS: [RegExp, string][] = [
  [/^\| ram x .*: write/, 'Each chunk of the loaded cube becomes a fresh 1 MiB SharedArrayBuffer (the ram backend keeps chunks in shared memory for worker threads; V8 zero-fills it and its pages fault in on first write), and the cube is scattered into it in 256-byte rows. The reference is one contiguous copy into one allocation. Profile: 77% of the time in the row copy, most of it page faults.'],
  [/^\| ram x .*: read/, '`get` allocates one fresh array for the whole cube and gathers every chunk into it in 256-byte rows; the reference copies one contiguous block.'],
  [/^\| hdf5 x .*: write/, 'Every chunk file is written as a temporary file and renamed over its name (atomic writes, which the hdf5 issue requires); the reference overwrites its files in place from bytes already in order. The rows go from the cube to the file by one writev per chunk (4096 rows of 256 bytes at C=64): what is left is the per-row cost on the main thread (a view per row, Node\'s checks of each buffer).'],
  [/^\| hdf5 x .*: read/, 'The reference reads 64 files into 64 buffers that malloc recycles; `get` must return one new 64 MiB array, and allocating it and faulting in its pages alone takes about as long as the whole reference or longer (column "new N^3 array alone"): 50% would need a get faster than allocating its result. The like-for-like figure is the read into a reused array (`get(index, { out })`), whose rows go straight from the files into place (readv).'],
  [/^\| (s3|ceph) x cpu.*(write|read)/, 'With the cpu engine, cutting and assembling chunks runs on the thread that also drives the requests, on 2 cores shared with the RGW daemons. The worker-pool engine moves that work off the main thread: compare its rows.'],
  [/^\| (s3|ceph) x worker-pool.*(write|read) >=/, 'The workers\' requests and the reference loop run at the same concurrency on 2 cores that the RGW\'s own daemons (mon, osd, rgw) share; measured at different moments, this ratio moves by about 15% either way between runs.'],
  [/^\| hdf5 x .*misaligned/, 'The block touches 36 chunks, most of them partly: the rows of a partial chunk are read with the gaps between them (into a discard buffer), so each returned byte costs more file bytes and iovecs than in the whole-cube read; with worker-pool each chunk also costs a hand-off. On this shared machine the figure moves between about 1.2x and 2.1x from run to run.'],
  [/^\| (s3|ceph) x .*misaligned/, 'The misaligned block touches 24 chunks, most of them partly: each costs a request round trip (a range GET) for a fraction of its bytes, and the worker-pool hand-off adds to each; per byte returned that is more than the aligned whole-cube read, which moves whole objects.'],
  [/^\| worker-pool .* on hdf5/, 'On hdf5 the cpu engine is not single-core: its file reads and writes run on libuv\'s thread pool while the main thread filters, so two worker threads compete with a baseline that already uses part of the second core. File I/O does not speed up with more threads here: an identity map (I/O only) takes the cpu engine about 50 ms and two processes sharing it 63-70 ms.'],
  [/^\| cluster-rank/, 'On 2 cores two ranks keep both cores filtering, so the file I/O that the single-process baseline overlaps on its idle second core now costs compute time, and file I/O does not speed up with ranks (an identity map, I/O only: about 50 ms for the cpu engine, 63-70 ms for two ranks doing half each). The filter alone scales 1.98x with two processes.'],
  [/^\| worker-pool .* on ram/, 'With both cores filtering at once they share memory bandwidth and caches: the per-chunk filter time in a worker rises by about a tenth against one core alone.'],
];
const unmet = targets.filter((t) => t.includes('**not met**'));
const reasons = unmet.map((t) => {
  const reason = REASONS.find(([re]) => re.test(t))?.[1] ?? 'not analysed yet';
  return `- ${t.split('|')[1].trim()}: ${reason}`;
});

const command = `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const doc = `# Benchmarks

Made by \`${command}\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ${runs} runs per figure (medians), ${((Date.now() - started) / 60000).toFixed(1)} minutes in all.
Workloads and targets are those of \`../shared/BENCHMARKS.md\`. Every figure stands beside a reference measured in the same run on the
same machine; these machines are shared and noisy, so the ratios mean more than the absolute times. Each row ran in its own process
(peak RSS is that process's, worker threads included). Raw figures: \`bench/results/latest.json\`.

## Targets

${targets.join('\n')}
${reasons.length ? `\n### Why the unmet targets are not met\n\n${reasons.join('\n')}\n` : ''}
## Slicing and I/O

A float32 cube of N^3 random values in cubic chunks of C. write = create + load the whole cube; read = \`get()\` of it; misaligned =
\`[36:180, 89:250, 7:200]\` (scaled to N), reported as its time per byte over the aligned read's; plane = \`[N/2, :, :]\`;
line = \`[:, 5, 7]\`; set block = \`set\` of the misaligned block; apply = \`+1\` in place over every chunk. References: ram -> allocating
and copying the same bytes with \`TypedArray.prototype.set\`; hdf5 -> the same bytes as the same number of plain files with \`fs\`;
s3/ceph -> a plain \`@aws-sdk/client-s3\` put/get loop over the same objects at the engine's concurrency.

${ioTable.join('\n')}

## Convolution

A gaussian (sigma 1.5, truncated at 4 sigma: radius 6, SciPy's \`mode='reflect'\`) as one 3-D \`map\` per chunk, 64^3 chunks.
Each process makes one untimed warm-up run (every worker thread and rank compiles the kernel once); engines run in interleaved
rounds (${ROUNDS}) and the medians pool every round's runs; each round's own ratio is listed too, because on a shared 2-core
machine a burst of other load hits a run that keeps both cores busy harder than one that leaves a core idle.
${kernel ? `Per-chunk kernel on one 64^3 float32 block: ${fmt(kernel.ms, 2)} ms${kernel.scipyMs ? `; SciPy \`gaussian_filter\` ${fmt(kernel.scipyMs, 2)} ms` : ''}.` : ''}

${convTable.join('\n')}

## Memory

${memory.length ? memory.map((r) => `- gaussian map over a ${fmt(r.bytes / 2 ** 30, 2)} GiB float32 hdf5 dataset (${r.shape.join(' x ')}, 64^3 chunks, written beforehand by another process) with ${r.engine}: peak RSS of the process that ran the map ${fmt(r.peakRssMiB, 0)} MiB, map ${fmt(r.ms / 1000, 1)} s.`).join('\n') : 'not measured (hdf5 not selected)'}

${notes.length ? `## Notes\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;

mkdirSync(values.out!, { recursive: true });
writeFileSync(join(values.out!, 'latest.json'), JSON.stringify({ command, date: new Date().toISOString(), node: process.version, cpus: cpus().length, runs, full, results, notes }, null, 2));
writeFileSync(values.docs!, doc);
console.log(`\n${targets.join('\n')}\n\nwrote ${join(values.out!, 'latest.json')} and ${values.docs}`);
