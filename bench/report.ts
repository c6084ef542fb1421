/**
 * The benchmark report (docs/benchmarks.md): every dosna figure beside the Python peers' from
 * the same run (h5py, zarr-python 2, numpy) and beside our own references (memcpy, plain
 * files, an SDK loop), as ratios; the targets of ../shared/BENCHMARKS.md with their status and,
 * for any not met, the reason the measurements gave; and the figures of the run before this
 * round of work, so nothing can get slower unseen.
 */
import { cpus } from 'node:os';
import { CATEGORY_LABELS, topShares, type ProfileCategory, type ProfileShares } from './profile.js';
import { COLD_RUNS, median, TIMED_MS, TIMED_RUNS, WARMUP_MS, WARMUP_RUNS } from './common.js';
import { v8AccountingSection } from './report-v8.js';

export type Row = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface BenchRun {
  readonly command: string;
  readonly date: string;
  readonly node: string;
  readonly runs: number;
  readonly minutes: number;
  readonly results: Row[];
  readonly notes: string[];
  /** The figures of the run before this round (bench/results/baseline.json), if any. */
  readonly baseline?: { readonly date: string; readonly results: Row[] };
  /** The last full run committed before the native module (bench/results/previous.json), if any. */
  readonly previous?: { readonly date: string; readonly results: Row[] };
  /** The last full run before chunk files were read and written in one step (bench/results/before-one-step-files.json), if any. */
  readonly beforeOneStep?: { readonly date: string; readonly results: Row[] };
  /** Why targets are missed, by what profiles showed: pattern of the target line -> reason. */
  readonly reasons: readonly [RegExp, string][];
}

const MB = 1e6;
export const fmt = (v: number | undefined, d = 1) => (v !== undefined && Number.isFinite(v) ? v.toFixed(d) : '-');
/** A time in ms with the hdf5 commit mode that made it, when the result says (bench/io.ts). */
const withCommit = (ms: number | undefined, commit: string | undefined) => (ms === undefined ? '-' : commit ? `${fmt(ms, 1)} (${commit})` : fmt(ms, 1));

/** How many rounds a median of round ratios comes from, and the middle half of them. */
function roundSpread(ratios: readonly number[]): string {
  const sorted = [...ratios].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `${sorted.length} rounds, middle half ${fmt(at(0.25), 2)}-${fmt(at(0.75), 2)}`;
}
const mbps = (bytes: number, ms: number | undefined) => (ms ? bytes / MB / (ms / 1000) : NaN);
const ok = (met: boolean) => (met ? 'met' : '**not met**');

/** The bytes each workload moves (what its MB/s is of), for a cube of N. */
export function workloadBytes(N: number): Record<string, number> {
  const scale = (v: number) => Math.round((v * N) / 256);
  const block = (scale(180) - scale(36)) * (scale(250) - scale(89)) * (scale(200) - scale(7)) * 4;
  return {
    write: N ** 3 * 4, read: N ** 3 * 4, readInto: N ** 3 * 4, misaligned: block, aligned: (N / 2) ** 3 * 4,
    plane: N ** 2 * 4, line: N * 4, setBlock: block, apply: N ** 3 * 4,
  };
}

/** Workloads as the issue names them, with the key of their time in the records. */
export const WORKLOADS: readonly [string, string][] = [
  ['write', 'write'], ['read_all', 'read'], ['read_into', 'readInto'], ['read_sub', 'misaligned'], ['read_aligned', 'aligned'],
  ['read_plane', 'plane'], ['read_line', 'line'], ['write_sub', 'setBlock'], ['apply', 'apply'],
];

/** The peers each dosna backend is compared with. */
const PEERS: Record<string, string[]> = { hdf5: ['h5py', 'zarr-dir'], ram: ['zarr-mem'], zarr: ['zarr-dir'] };
/** The backends whose rows against the peers are targets (the bulk-speed issue's); others are shown for comparison. */
const PEER_TARGETS = new Set(['hdf5', 'ram']);

/** The median of a record's first runs of a workload (its warm-up's first COLD_RUNS, every round's), if it has them. */
const coldMs = (r: Row, key: string): number | undefined => (r.coldSamples?.[key]?.length ? median(r.coldSamples[key]) : undefined);

function bestPeer(results: Row[], backend: string, N: number, C: number, key: string): { peer: string; ms: number; coldMs?: number } | undefined {
  let best: { peer: string; ms: number; coldMs?: number } | undefined;
  for (const r of results.filter((x) => x.kind === 'peer-io' && x.N === N && x.C === C && (PEERS[backend] ?? []).includes(x.peer))) {
    const ms = r.ms[key];
    if (ms !== undefined && (!best || ms < best.ms)) best = { peer: r.peer, ms, coldMs: coldMs(r, key) };
  }
  return best;
}

/** The queue engine's rows (bench/queue.ts): per-chunk overhead against worker-pool, the gaussian map against cpu. */
function queueSection(results: readonly Row[]): string {
  const rows = results.filter((r) => r.kind === 'queue');
  if (rows.length === 0) return 'not measured (run with --queue or --full: it starts a redis-server and two `dosna worker`s)';
  const find = (workload: string, engine: string) => rows.find((r) => r.workload === workload && r.engine === engine);
  const lines = ['| workload (hdf5) | engine | ms (median) | ms per chunk | against |', '| --- | --- | --- | --- | --- |'];
  const pool = find('overhead', 'worker-pool');
  const queue = find('overhead', 'queue');
  if (pool) lines.push(`| identity map, ${pool.chunks} chunks of 16^3 | worker-pool, 2 threads | ${fmt(pool.ms, 0)} | ${fmt(pool.msPerChunk, 2)} | reference |`);
  if (queue) lines.push(`| identity map, ${queue.chunks} chunks of 16^3 | queue, 2 workers | ${fmt(queue.ms, 0)} | ${fmt(queue.msPerChunk, 2)} | ${pool ? `${fmt(queue.ms / pool.ms, 2)}x worker-pool's time` : ''} |`);
  const cpu = find('gaussian', 'cpu');
  const qg = find('gaussian', 'queue');
  if (cpu) lines.push(`| gaussian map N=256, ${cpu.chunks} chunks of 64^3 | cpu | ${fmt(cpu.ms, 0)} | ${fmt(cpu.msPerChunk, 1)} | reference |`);
  if (qg) lines.push(`| gaussian map N=256, ${qg.chunks} chunks of 64^3 | queue, 2 workers | ${fmt(qg.ms, 0)} | ${fmt(qg.msPerChunk, 1)} | ${cpu ? `${fmt(cpu.ms / qg.ms, 2)}x cpu's speed` : ''} |`);
  return `A redis-server and two \`dosna worker\`s (one task each) on this machine, engines alternating round by round in one process
(bench/queue.ts). The overhead row is what a chunk task costs beyond its work: a BullMQ job added, taken, run in a worker's thread,
and its result read back, against worker-pool's hand-off to a thread.

${lines.join('\n')}`;
}

export function report(run: BenchRun): string {
  const { results } = run;
  const io = results.filter((r) => r.kind === 'io');
  const conv = results.filter((r) => r.kind === 'conv');
  const kernel = results.find((r) => r.kind === 'kernel');
  const memory = results.filter((r) => r.kind === 'memory');
  const planes = results.filter((r) => r.kind === 'planes');
  const peerPlanes = results.filter((r) => r.kind === 'peer-planes');
  const peerMaps = results.filter((r) => r.kind === 'peer-map');
  const numpy = results.find((r) => r.kind === 'peer-io' && r.peer === 'numpy');
  const targets: string[] = ['| target | measured | status |', '| --- | --- | --- |'];
  // The profile of the same run behind a target line (bench/profile.ts), quoted with its reason.
  const profileOf = new Map<string, ProfileShares>();
  const target = (line: string, shares?: ProfileShares) => {
    targets.push(line);
    if (shares) profileOf.set(line, shares);
  };

  // --- versus the peers -----------------------------------------------------------------------
  const peerRows: string[] = [];
  for (const r of io.filter((x) => PEERS[x.backend])) {
    const bytes = workloadBytes(r.N);
    for (const [label, key] of WORKLOADS) {
      const best = bestPeer(results, r.backend, r.N, r.C, key);
      const ours = r.ms[key];
      if (ours === undefined || !best) continue;
      const ratio = best.ms / ours;
      // The same workload's first runs in each process, dosna's and the same peer's.
      const oursCold = coldMs(r, key);
      const firstRuns = oursCold !== undefined && best.coldMs !== undefined
        ? `${fmt(mbps(bytes[key], oursCold), 0)} / ${fmt(mbps(bytes[key], best.coldMs), 0)} = ${fmt(best.coldMs / oursCold, 2)}` : '-';
      peerRows.push(`| ${r.backend} | ${r.engine} | ${r.C} | ${label} | ${fmt(mbps(bytes[key], ours), 0)} | ${best.peer} | ${fmt(mbps(bytes[key], best.ms), 0)} | ${fmt(ratio, 2)} | ${firstRuns} |`);
      if (label === 'read_into' || !PEER_TARGETS.has(r.backend)) continue; // read_into: a second view of read_all
      target(`| ${r.backend} x ${r.engine} C=${r.C}: ${label} >= best peer (${best.peer}) | ${fmt(ratio, 2)}x | ${ok(ratio >= 1)} |`, r.profiles?.[key]);
    }
  }
  for (const r of conv.filter((x) => x.N === 256 && x.C === 64 && (x.backend === 'hdf5' || x.backend === 'ram'))) {
    const best = peerMaps.filter((p) => p.N === r.N && p.C === r.C).sort((a, b) => a.ms - b.ms)[0];
    if (!best) continue;
    peerRows.push(`| ${r.backend} | ${r.engine} | ${r.C} | map gaussian | ${fmt(mbps(r.N ** 3 * 4, r.ms), 0)} | ${best.peer} + SciPy | ${fmt(mbps(r.N ** 3 * 4, best.ms), 0)} | ${fmt(best.ms / r.ms, 2)} | - |`);
    targets.push(`| ${r.backend} x ${r.engine} N=${r.N} C=64: map gaussian ahead of the best peer (${best.peer} + SciPy) | ${fmt(best.ms / r.ms, 2)}x | ${ok(best.ms / r.ms >= 1)} |`);
  }

  // --- planes ---------------------------------------------------------------------------------
  const h5Default = peerPlanes.find((p) => p.peer === 'h5py default cache');
  const h5Big = peerPlanes.find((p) => p.peer === 'h5py 64 MiB cache');
  const planeRows = planes.map((p) => `| ${p.backend} | ${p.engine} | ${fmt(p.ms, 0)} | ${fmt(p.loadMs, 0)} | ${fmt(p.ratio, 2)} (${roundSpread(p.roundRatios)}) | ${fmt(h5Default?.ms, 0)} | ${fmt(h5Big?.ms, 0)} | ${h5Default ? fmt(h5Default.ms / p.ms, 2) : '-'} | ${p.cache ? `${p.cache.commits} (${p.cache.blindCommits} without a read), ${fmt(p.cache.bytesRead / MB, 1)} MB read` : 'cache off'} | ${p.profiles ? `${topShares(p.profiles.planes, 4)} / ${topShares(p.profiles.load, 4)}` : '-'} |`);
  for (const p of planes) {
    if (h5Default) targets.push(`| ${p.backend} x ${p.engine}: planes <= h5py with its default cache | ${fmt(p.ms, 0)} ms vs ${fmt(h5Default.ms, 0)} ms | ${ok(p.ms <= h5Default.ms)} |`);
    target(`| ${p.backend} x ${p.engine}: planes within 1.5x of one load | ${fmt(p.ratio, 2)}x (median of each round's ratio) | ${ok(p.ratio <= 1.5)} |`, p.profiles?.planes);
  }

  // --- compression ----------------------------------------------------------------------------
  const codecs = results.filter((r) => r.kind === 'codecs');
  const peerCodecs = results.filter((r) => r.kind === 'peer-codecs');
  const codecRows = [...codecs, ...peerCodecs].map((r) => `| ${r.data} | ${r.kind === 'codecs' ? `dosna ${r.backend} x ${r.engine}` : r.peer} | ${r.codec} | ${fmt(mbps(r.bytes, r.ms.write), 0)} | ${fmt(mbps(r.bytes, r.ms.read), 0)} | ${fmt(r.ratio, 3)} |`);
  for (const r of codecs.filter((x) => x.codec === 'zstd 1 + shuffle')) {
    const h5 = peerCodecs.find((p) => p.peer === 'h5py' && p.codec === 'gzip 4 + shuffle' && p.data === r.data && p.N === r.N);
    if (!h5) continue;
    const write = h5.ms.write / r.ms.write;
    const read = h5.ms.read / r.ms.read;
    targets.push(`| ${r.backend} x ${r.engine}, ${r.data} cube: zstd + shuffle writes faster than h5py gzip 4 + shuffle | ${fmt(write, 2)}x | ${ok(write >= 1)} |`);
    targets.push(`| ${r.backend} x ${r.engine}, ${r.data} cube: zstd + shuffle reads faster than h5py gzip 4 + shuffle | ${fmt(read, 2)}x | ${ok(read >= 1)} |`);
    targets.push(`| ${r.backend} x ${r.engine}, ${r.data} cube: zstd + shuffle ratio <= h5py gzip 4 + shuffle's | ${fmt(r.ratio, 3)} vs ${fmt(h5.ratio, 3)} | ${ok(r.ratio <= h5.ratio * 1.0005)} |`);
  }

  // --- our own references (the first round's targets) ------------------------------------------
  const ioTable = [
    '| backend | engine | N | C | write MB/s | ref write MB/s | ratio | read MB/s | ref read MB/s | ratio | read into reused `out` MB/s (ratio) | new N^3 array alone ms | misaligned cost/byte vs aligned | plane ms | line ms | write_sub ms | apply ms | peak RSS MiB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...io.map((r) => `| ${r.backend} | ${r.engine} | ${r.N} | ${r.C} | ${fmt(mbps(r.bytes, r.ms.write), 0)} | ${fmt(mbps(r.bytes, r.reference.write), 0)} (${r.reference.name}) | ${fmt(r.referenceRatios?.write ?? r.reference.write / r.ms.write, 2)} | ${fmt(mbps(r.bytes, r.ms.read), 0)} | ${fmt(mbps(r.bytes, r.reference.read), 0)} | ${fmt(r.referenceRatios?.read ?? r.reference.read / r.ms.read, 2)} | ${fmt(mbps(r.bytes, r.ms.readInto), 0)} (${fmt(r.reference.read / r.ms.readInto, 2)}) | ${fmt(r.ms.freshArray, 1)} | ${fmt(r.misalignedCostPerByte, 2)} | ${fmt(r.ms.plane, 2)} | ${fmt(r.ms.line, 2)} | ${fmt(r.ms.setBlock)} | ${fmt(r.ms.apply)} | ${fmt(r.peakRssMiB, 0)} |`),
  ];
  for (const r of io) {
    // Ratios of runs made next to each other when the run has them (bench/io.ts), else of medians.
    const w = r.referenceRatios?.write ?? r.reference.write / r.ms.write;
    const rd = r.referenceRatios?.read ?? r.reference.read / r.ms.read;
    const need = r.backend === 'ram' || r.backend === 'hdf5' || r.backend === 'zarr' ? 0.5 : 0.8;
    target(`| ${r.backend} x ${r.engine} C=${r.C}: write >= ${need * 100}% of ${r.reference.name} | ${fmt(w * 100, 0)}% | ${ok(w >= need)} |`, r.profiles?.write);
    target(`| ${r.backend} x ${r.engine} C=${r.C}: read >= ${need * 100}% of ${r.reference.name} | ${fmt(rd * 100, 0)}% | ${ok(rd >= need)} |`, r.profiles?.read);
    target(`| ${r.backend} x ${r.engine} C=${r.C}: misaligned read <= 2x aligned per byte | ${fmt(r.misalignedCostPerByte, 2)}x | ${ok(r.misalignedCostPerByte <= 2)} |`, r.profiles?.misaligned);
  }
  const floorRows = io.filter((r) => r.writeSubFloor).map((r) => {
    const h5 = results.find((x) => x.kind === 'peer-io' && x.peer === 'h5py' && x.N === r.N && x.C === r.C);
    return `| ${r.backend} | ${r.engine} | ${r.C} | ${r.writeSubFloor.chunks} | ${withCommit(r.ms.setBlock, r.commitMode)} | ${withCommit(r.otherCommit?.setBlock, r.otherCommit?.commit)} | ${fmt(r.writeSubFloor.replace, 1)} | ${fmt(r.writeSubFloor.swap, 1)} | ${fmt(r.writeSubFloor.inPlace, 1)} | ${fmt(h5?.ms.setBlock, 1)} |`;
  });
  const applyFloorRows = io.filter((r) => r.applyFloor).map((r) => {
    const h5 = results.find((x) => x.kind === 'peer-io' && x.peer === 'h5py' && x.N === r.N && x.C === r.C);
    return `| ${r.backend} | ${r.engine} | ${r.C} | ${r.applyFloor.chunks} | ${withCommit(r.ms.apply, r.commitMode)} | ${withCommit(r.otherCommit?.apply, r.otherCommit?.commit)} | ${fmt(r.applyFloor.replace, 1)} | ${fmt(r.applyFloor.swap, 1)} | ${fmt(r.applyFloor.inPlace, 1)} | ${fmt(h5?.ms.apply, 1)} |`;
  });
  const writeFloorRows = io.filter((r) => r.writeFloor).map((r) => {
    const peer = (name: string) => results.find((x) => x.kind === 'peer-io' && x.peer === name && x.N === r.N && x.C === r.C);
    return `| ${r.backend} | ${r.engine} | ${r.C} | ${r.writeFloor.chunks} | ${fmt(r.ms.write, 1)} | ${fmt(r.writeFloor.write, 1)} | ${fmt(r.writeFloor.floor, 1)} | ${fmt(peer('zarr-dir')?.ms.write, 1)} | ${fmt(peer('h5py')?.ms.write, 1)} |`;
  });
  const commitRows = io.filter((r) => r.writeWithoutLocks !== undefined).map((r) =>
    `| ${r.backend} | ${r.engine} | ${r.C} | ${r.chunks} | ${withCommit(r.ms.write, r.commitMode)} | ${fmt(r.writeWithoutLocks, 1)} | ${fmt((100 * (r.ms.write - r.writeWithoutLocks)) / r.writeWithoutLocks, 1)}% | ${withCommit(r.otherCommit?.write, r.otherCommit?.commit)} |`);

  // --- convolution ----------------------------------------------------------------------------
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

  const unmet = targets.filter((t) => t.includes('**not met**'));
  const reasons = unmet.map((t) => {
    const shares = profileOf.get(t);
    const profile = shares ? ` Profile of this workload, same run (see "Where the time goes"): ${topShares(shares, 4)}.` : '';
    return `- ${t.split('|')[1].trim()}: ${run.reasons.find(([re]) => re.test(t))?.[1] ?? 'not analysed yet'}${profile}`;
  });
  const profileTable = profileRows(io);

  // --- the run before this round --------------------------------------------------------------
  const before = (run.beforeOneStep ? baselineTable(run.beforeOneStep, io, ONE_STEP_TITLE) : '')
    + (run.previous ? baselineTable(run.previous, io, PREVIOUS_TITLE) : '') + (run.baseline ? baselineTable(run.baseline, io, BASELINE_TITLE) : '');

  return `# Benchmarks

Made by \`${run.command}\` on ${run.date.slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${run.node}, at least ${run.runs} runs per figure (medians), ${fmt(run.minutes, 1)} minutes in all.
Workloads and targets are those of the project's benchmark plan (the first round's, and the second round's against the Python
peers). Every figure stands beside a reference measured in the same run on the same machine; these machines are shared and noisy,
so the ratios mean more than the absolute times. Each workload ran in its own process (peak RSS is that process's, worker threads
included). The I/O workloads of the local backends (ram, hdf5, zarr) and the Python peers' ran in interleaved rounds (every
backend and engine, the engines in turn going first, then the peers, then the next round; a few timed runs each per round, after a
warm-up), and each figure is the median of all the rounds' runs: a drift of the machine's speed over minutes weighs on dosna and its peers alike. Short repeated
workloads (a read, write_sub, apply: dosna's and the peers' alike) get more timed runs per round, until they take
${TIMED_MS} ms in all or reach ${TIMED_RUNS} runs (bench/common.ts): a handful of sub-millisecond runs made their medians move by 30%
and more between runs of the benchmark. Every workload, dosna's and the peers', first runs untimed for ${WARMUP_MS} ms (at least
once, at most ${WARMUP_RUNS} times), so a read of a millisecond is timed once V8 has optimized its path, as a long one is after its first run; the table against
the peers also gives the median of each process's first ${COLD_RUNS} runs of a workload, dosna's and the same peer's: what a script
that reads a few planes and exits sees. Raw figures: \`bench/results/latest.json\`.

## Targets

${targets.join('\n')}
${reasons.length ? `\n### Why the unmet targets are not met\n\n${reasons.join('\n')}\n` : ''}
## Versus the Python peers

The same float32 cube (N = ${io.find((r) => !['s3', 'ceph'].includes(String(r.backend)))?.N ?? '-'}, the same random values, generated in each language by the same algorithm) in cubic chunks
of C, written and read by dosna and, in the same run, by h5py ${results.find((r) => r.kind === 'peer-versions')?.h5py ?? ''} (one
chunked HDF5 file, the same chunks, its default 1 MiB chunk cache) and zarr-python ${results.find((r) => r.kind === 'peer-versions')?.zarr ?? ''}
(\`DirectoryStore\`, zarr format 2, for the hdf5 and zarr rows, \`MemoryStore\` for the ram rows, no compressor), Debian's builds on Python
${results.find((r) => r.kind === 'peer-versions')?.python ?? ''}. write = create + write the whole cube; read_all = the whole cube into a
new array; read_into = into a reused array (h5py \`read_direct\`); read_sub = \`[36:180, 89:250, 7:200]\`; read_aligned = the middle
half of each axis; read_plane = \`[N/2]\`; read_line = \`[:, 5, 7]\`; write_sub = the block written and flushed; apply = \`+1\` over
every chunk, in place; map = the gaussian of the convolution study into a new dataset (peers: SciPy's \`gaussian_filter\` per chunk).
The zarr rows are dosna's \`zarr\` backend (zarr format 3, uncompressed, in a folder: what zarr-python and zarrita open) beside
zarr-python writing and reading its own format 2 folder: shown for comparison, not targets of the benchmark plan.
Ratio = dosna's MB/s over the best peer's (above 1: dosna is faster).${numpy ? ` For scale: numpy copies the cube (a new array) in ${fmt(numpy.ms.copy, 1)} ms (${fmt(mbps(numpy.bytes, numpy.ms.copy), 0)} MB/s), into a reused one in ${fmt(numpy.ms.copyInto, 1)} ms.` : ''}

The copy under a read: gathering the cube's chunks (separate arrays in memory, no store) into one reused array, by the strided
copy \`get\` uses (dosna's native module: one C call per chunk, a \`memmove\` per row, or streaming stores for the whole cache lines of
rows of 128 bytes or more into an array this large, 64 MiB), by the JavaScript word loop it falls back to
where the module is not built (\`DOSNA_NATIVE=0\`), and by numpy (\`out[sl] = chunk\`, a C loop per row), same run, ms:
${io.filter((r) => r.gatherFloor !== undefined).map((r) => `C=${r.C} (${r.engine}): ${r.nativeCopy ? 'native' : 'native (not built, so JavaScript)'} ${fmt(r.gatherFloor, 1)}, JavaScript ${fmt(r.gatherFloorJs, 1)}, numpy ${fmt(numpy?.ms[`gather${r.C}`], 1)}`).join('; ') || 'not measured (ram not selected)'}.

Fresh shared memory, the floor under the ram backend's writes: the cube's chunks made fresh buffers and filled by the same native
copy, each set kept until the next run replaces it, as stored chunks are: as dosna's SharedArrayBuffers (what the ram backend
stores, so worker threads read chunks without a copy; their memory reported to V8, see the guide), as bare SharedArrayBuffers
(which V8 does not count towards collecting garbage, so replaced ones pile up and new ones take fresh pages) and as ordinary
ArrayBuffers; same run, ms:
${io.filter((r) => r.freshChunks !== undefined).map((r) => `C=${r.C} (${r.engine}): dosna's ${fmt(r.freshChunks.shared, 1)}, bare SharedArrayBuffer ${fmt(r.freshChunks.sharedUnreported, 1)}, ArrayBuffer ${fmt(r.freshChunks.plain, 1)}`).join('; ') || 'not measured (ram not selected)'}.

The chunk function alone, the floor under apply with the benchmark's \`+1\`: the same JavaScript loop over the cube's chunks held
as ordinary arrays (no store, no copy, no commit) beside dosna's apply with it, dosna's apply with a chunk function that does
nothing (what dosna costs around the function) and numpy's \`chunk += 1\` over its chunk arrays, same run, ms:
${io.filter((r) => r.kernelAlone !== undefined).map((r) => `C=${r.C} (${r.engine}): JavaScript ${fmt(r.kernelAlone, 1)}, dosna apply ${fmt(r.ms.apply, 1)}, dosna apply of nothing ${fmt(r.applyNothing, 1)}, numpy ${fmt(numpy?.ms[`plusOne${r.C}`], 1)}`).join('; ') || 'not measured (ram not selected)'}.

The line \`[:, 5, 7]\` without asking the store: the same read through a second connection that uses the chunks and the metadata
it holds as they are (\`recheckCachedData: false, recheckCachedMetadata: false\`, as h5py's open file and chunk cache and zarr-python's
caches always do; by default dosna stats each cached chunk's file and the dataset's metadata file first, so another process's write
or resize is never missed), beside the default and the best peer, same run, MB/s:
${io.filter((r) => r.ms.lineTrusted !== undefined).map((r) => {
  const best = bestPeer(results, r.backend, r.N, r.C, 'line');
  const bytes = workloadBytes(r.N).line;
  return `${r.backend} C=${r.C} (${r.engine}): trusted ${fmt(mbps(bytes, r.ms.lineTrusted), 0)}, default ${fmt(mbps(bytes, r.ms.line), 0)}, ${best?.peer ?? 'peer'} ${fmt(mbps(bytes, best?.ms), 0)}`;
}).join('; ') || 'not measured (hdf5 and zarr not selected)'}.

| backend | engine | C | workload | dosna MB/s | best peer | peer MB/s | ratio | first runs: dosna / peer MB/s = ratio |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${peerRows.join('\n')}
${profileTable}
${v8AccountingSection(results)}
## Plane by plane

A detector's pattern: 256 \`set([z], plane)\` into a 256 x 384 x 384 uint16 volume chunked 64 x 128 x 128, then \`flush()\`,
beside one \`load\` of the same volume (same process, one of each per round, taking turns to go first, in as many rounds as the run's timed runs and
more while they take under 3 s in all, up to 25) and h5py's own plane-by-plane writes (same run) with its default chunk cache
(1 MiB: each 2 MiB chunk is read, changed and written back at every plane) and with a 64 MiB one.

| backend | engine | planes ms | one load ms | planes / load (median of the rounds) | h5py default ms | h5py 64 MiB ms | h5py default / dosna | chunk commits | profile: planes / load |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${planeRows.join('\n')}

## Compression

A float32 cube (N = ${codecs[0]?.N ?? '-'}, 64^3 chunks), twice: the random values of the other workloads (hardly compressible) and
smooth data of few significant bits (\`round(1000 sin(z/20) cos(y/25) sin(x/30 + 1)) / 8\`, as a detector's counts scaled to float).
write = create + write the whole cube; read = the whole cube into an array; ratio = bytes stored (chunk files or objects with their
overhead) over raw bytes. dosna's codecs run on Node's \`node:zlib\` (deflate, zstd; libuv's thread pool) and lz4js; h5py
${results.find((r) => r.kind === 'peer-versions')?.h5py ?? ''} with HDF5's shuffle + deflate; zarr-python ${results.find((r) => r.kind === 'peer-versions')?.zarr ?? ''} with Blosc (zstd, byte shuffle, its own threads). Same run, same data, MB/s of raw bytes.

| data | who | codec | write MB/s | read MB/s | stored / raw |
| --- | --- | --- | --- | --- | --- |
${codecRows.join('\n')}

## The floor under write_sub on hdf5

Writing the misaligned block changes most of the chunks it touches only in part: each must be read, changed and written back.
dosna's hdf5 layout is a file per chunk, and a chunk must be replaced whole so that a crash leaves it old or new: a new file written
beside it and put in its place, renamed over it or swapped with it (the hdf5 option \`commit\`). The same read and replace of as
many chunk files, with plain \`fs\` and nothing else (no copy of the block, no lock, no check; the files in a folder made where
dosna makes its datasets' folders, so placed alike), is the floor for any library on this layout and file system; the same files
rewritten in place (what one HDF5 file allows h5py, and what a crash can tear) show what the replacements cost. On ext4 a rename
over a file makes the file system start writing the new file's data to disk (auto_da_alloc), which with a journal keeps a power
cut from leaving the chunk empty; a swap (Linux's renameat2 RENAME_EXCHANGE, as atomic for every process) forces nothing out.
dosna's default, \`commit: 'auto'\`, swaps on an ext4 without a journal, where the rename guarantees nothing, and renames
elsewhere (backends/hdf5.md). The commit each dosna figure used (the default's choice where the benchmark ran) is in brackets,
with the same workload committed the other way beside it. Same run, ms.

| backend | engine | C | partly written chunks | dosna write_sub | dosna, the other commit | plain files, renamed | plain files, swapped | plain files, in place | h5py write_sub |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${floorRows.join('\n')}
${applyFloorRows.length ? `
## The floor under apply on hdf5

apply reads every chunk and writes it back; on dosna's layout each write is a new chunk file put in place of the old one (see
write_sub above). The same read and replace of every chunk file with plain \`fs\` and nothing else (no kernel, no copy, no lock,
no check), renamed and swapped, the same files rewritten in place (what one HDF5 file lets h5py do, and what a crash can tear),
and dosna committing the other way, same run, ms:

| backend | engine | C | chunk files | dosna apply | dosna, the other commit | plain files, renamed | plain files, swapped | plain files, in place | h5py apply |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${applyFloorRows.join('\n')}
` : ''}
${writeFloorRows.length ? `
## The floor under write on hdf5

write creates the dataset and loads the cube: on dosna's layout a new file per chunk, written under a temporary name and
renamed in, into the folder of a dataset deleted just before (each run deletes the previous one, as the peers' runs do). Beside
it: the same number of new files made with plain \`fs\` and nothing else (written under a temporary name and renamed in) in a new
folder after the previous one was removed, each run of it followed by a run of dosna's create + load ("dosna write, after the
floor"), and zarr-python writing its own folder of chunk files (one file per chunk, also renamed in), same run, ms. This
machine's root file system is ext4 without a journal; there a new inode skips every inode freed in the last 30 s to 3 min
(\`recently_deleted\`, so that a crash cannot reuse one whose deletion is not yet on disk), so what files cost to make depends on
what was deleted just before them, and the files of one folder are created, linked, renamed and unlinked under the folder's lock. Profiled by hand with \`perf\` (10
loads of 512 chunk files of 32^3, each after a delete), 25% of the samples were threads spinning on a folder's lock
(\`rwsem_spin_on_owner\`) and 14% that scan of recently freed inodes, under \`ext4_create\`: the kernel's, on any layout of
many files, where h5py appends the chunks to one open file. The scan covers the inodes freed in the new file's block group, which
ext4 picks by its folder; dosna marks the folder datasets are made in (\`chattr +T\`) so that their folders are spread over the
groups (backends/hdf5.md), and the plain files' folders here are made in that same folder.

| backend | engine | C | chunk files | dosna write | dosna write, after the floor | plain new files, renamed in | zarr-python write | h5py write |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${writeFloorRows.join('\n')}
` : ''}
## What conditional commits cost a whole-chunk load

A load replaces chunks outright (no read, no condition), but on hdf5 each chunk write still takes the chunk's lock (a hard link
of the new file) around its rename, so that conditional commits of other writers stay atomic. The same create + load, in the same
process, with the locks switched off (safe only with no other writer: a switch for this measurement alone) gives the lock's cost;
the unique modification time every chunk file gets is in both. ram and s3/ceph loads add nothing: a counter, a plain PUT. The last column is the same load
committed the other way (the hdf5 option \`commit\`, see "The floor under write_sub on hdf5"): a load's chunks are new files,
which are renamed in all the same, so it should differ only by noise.

| backend | engine | C | chunks | write ms | without locks ms | overhead | the other commit |
| --- | --- | --- | --- | --- | --- | --- | --- |
${commitRows.join('\n')}

## Against our own references

A float32 cube of N^3 random values in cubic chunks of C. write = create + load the whole cube; read = \`get()\` of it; misaligned =
\`[36:180, 89:250, 7:200]\` (scaled to N), reported as its time per byte over the aligned read's; plane = \`[N/2, :, :]\`;
line = \`[:, 5, 7]\`; write_sub = \`set\` of the misaligned block and \`flush\`; apply = \`+1\` in place over every chunk. References: ram ->
allocating and copying the same bytes with \`TypedArray.prototype.set\`; hdf5 and zarr -> the same bytes as the same number of plain files
with \`fs\`; s3/ceph -> a plain \`@aws-sdk/client-s3\` put/get loop over the same objects at the engine's concurrency. The ratios
(reference time over dosna's) are medians of ratios taken round by round, each dosna write or read next to a run of its reference,
so that the drift of a shared machine within a run hits both alike, the two taking turns to go first (whichever follows a write meets
the store still busy with it), in as many rounds as the run's timed runs and more while they take under 3 s in all (up to 25 per process: one
round's ratio on the RGW ranged from 0.45 to 1.83 by hand); the reference's MB/s are medians of its runs in those rounds.

${ioTable.join('\n')}

## Convolution

A gaussian (sigma 1.5, truncated at 4 sigma: radius 6, SciPy's \`mode='reflect'\`) as one 3-D \`map\` per chunk, 64^3 chunks.
Each process makes one untimed warm-up run (every worker thread and rank compiles the kernel once); engines run in interleaved
rounds and the medians pool every round's runs; each round's own ratio is listed too, because on a shared 2-core machine a burst
of other load hits a run that keeps both cores busy harder than one that leaves a core idle.
${kernel ? `Per-chunk kernel on one 64^3 float32 block: ${fmt(kernel.ms, 2)} ms${kernel.scipyMs ? `; SciPy \`gaussian_filter\` ${fmt(kernel.scipyMs, 2)} ms` : ''}.` : ''}

${convTable.join('\n')}

## Queue engine

${queueSection(results)}

## Memory

${memory.length ? memory.map((r) => `- gaussian map over a ${fmt(r.bytes / 2 ** 30, 2)} GiB float32 hdf5 dataset (${r.shape.join(' x ')}, 64^3 chunks, written beforehand by another process) with ${r.engine}: peak RSS of the process that ran the map ${fmt(r.peakRssMiB, 0)} MiB, map ${fmt(r.ms / 1000, 1)} s.`).join('\n') : 'not measured (hdf5 not selected)'}
${before}
${run.notes.length ? `## Notes\n\n${run.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;
}

/**
 * Where each workload's time went: one extra run of it under V8's sampling profiler in the same
 * process (bench/profile.ts), its self time by category. Empty when the run had no profiles.
 */
function profileRows(io: Row[]): string {
  const profiled = io.filter((r) => r.profiles);
  if (profiled.length === 0) return '';
  const categories = Object.keys(CATEGORY_LABELS) as ProfileCategory[];
  const rows: string[] = [];
  for (const r of profiled) {
    for (const [label, key] of WORKLOADS) {
      const shares: ProfileShares | undefined = r.profiles[key];
      if (shares) rows.push(`| ${r.backend} | ${r.engine} | ${r.C} | ${label} | ${categories.map((c) => (shares[c] >= 0.5 ? fmt(shares[c], 0) : '')).join(' | ')} |`);
    }
  }
  return `
### Where the time goes

Each workload ran once more, untimed, under V8's sampling profiler (every 100 us; repeated until 150 ms were sampled), in the
same process as its figures; the table gives its samples' self time by what the code was, in percent. Only the thread that
calls dosna is sampled: with worker-pool, the work in the worker threads shows as \`idle\` here. Categories:
${categories.map((c) => `\`${c}\` ${CATEGORY_LABELS[c]}`).join('; ')}.

| backend | engine | C | workload | ${categories.join(' | ')} |
| --- | --- | --- | --- | ${categories.map(() => '---').join(' | ')} |
${rows.join('\n')}
`;
}

const BASELINE_TITLE = `## Before this round

The figures of the run committed before this round of work (DATE, \`bench/results/baseline.json\`), beside
this run's: MB/s, and now / then (both measured on this kind of machine, on different days: read the ratio with the noise in mind;
write_sub then did not include a flush, as nothing was buffered).`;

const ONE_STEP_TITLE = `## Before one-step chunk files

The figures of the last full run before the hdf5 and zarr backends opened, read or wrote, and closed each chunk file in one
native call (DATE, \`bench/results/before-one-step-files.json\`, made the same way), beside this run's: MB/s, and now / then
(both on this kind of machine, at different times: read the ratio with the noise in mind).`;

const PREVIOUS_TITLE = `## Before the native module

The figures of the last full run committed before dosna's native copy and the worker-pool change that came with it (DATE,
\`bench/results/previous.json\`, made the same way), beside this run's: MB/s, and now / then (both on this kind of machine, at
different times: read the ratio with the noise in mind; the runs since then also warm up before timing, both dosna and the peers).`;

/** Earlier figures (the run before this round, or before the native module) beside this run's, workload by workload. */
function baselineTable(baseline: { date: string; results: Row[] }, io: Row[], title: string): string {
  const rows: string[] = [];
  for (const old of baseline.results.filter((r) => r.kind === 'io')) {
    const now = io.find((r) => r.backend === old.backend && r.engine === old.engine && r.N === old.N && r.C === old.C);
    const bytes = workloadBytes(old.N);
    for (const [label, key] of WORKLOADS) {
      if (old.ms[key] === undefined) continue;
      const then = mbps(bytes[key], old.ms[key]);
      const current = now ? mbps(bytes[key], now.ms[key]) : NaN;
      rows.push(`| ${old.backend} | ${old.engine} | ${old.C} | ${label} | ${fmt(then, 0)} | ${fmt(current, 0)} | ${fmt(current / then, 2)} |`);
    }
  }
  return `
${title.replace('DATE', baseline.date.slice(0, 10))}

| backend | engine | C | workload | then MB/s | now MB/s | now / then |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}
