/** Shared pieces of the benchmark scripts: timing, medians, and one-line JSON results. */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs `fn` `runs` times; returns the times in ms. `before`/`after` are not timed. With
 * `extend`, short workloads are timed more often: after the `runs`, further runs while the
 * timed ones take under TIMED_MS in all (up to TIMED_RUNS in all), as bench/peers.py does for
 * the peers.
 */
export async function timeRuns(
  runs: number, fn: () => Promise<unknown>,
  hooks: {
    before?: () => Promise<unknown>; after?: () => Promise<unknown>; warmup?: boolean; extend?: boolean;
    /** Receives the times of the first COLD_RUNS warm-up runs (a process's first runs of the workload). */
    cold?: number[];
  } = {},
): Promise<number[]> {
  const once = async () => {
    await hooks.before?.();
    const t0 = performance.now();
    await fn();
    const ms = performance.now() - t0;
    await hooks.after?.();
    return ms;
  };
  // Warm-up, untimed (bench/peers.py warms its workloads up the same way): at least one run,
  // repeated while they take under WARMUP_MS in all (up to WARMUP_RUNS), so a sub-millisecond
  // read is timed once V8 has compiled its path, as a long one is after its first run. The
  // first of them are kept apart (`cold`): the report shows them too.
  if (hooks.warmup) {
    let spent = 0;
    for (let r = 0; r < WARMUP_RUNS && (r === 0 || spent < WARMUP_MS); r++) {
      const ms = await once();
      if (r < COLD_RUNS) hooks.cold?.push(ms);
      spent += ms;
    }
  }
  const times: number[] = [];
  let spent = 0;
  for (let r = 0; r < runs || (hooks.extend && r < TIMED_RUNS && spent < TIMED_MS); r++) {
    const ms = await once();
    times.push(ms);
    spent += ms;
  }
  return times;
}

/**
 * Warm-up before timed runs: repeated until this much time is spent, at most WARMUP_RUNS times.
 * The time decides: a plane read of 32^3 chunks on hdf5 needed 150-400 runs (by hand, --trace-opt
 * and medians of 50 reads: 0.5-0.6 ms until V8 had optimized its path, 0.33-0.40 ms after), and
 * the cap of 50 runs this had until then ended its warm-up after 25 ms, so its timed runs were
 * mostly the unoptimized ones. The cap only bounds reads of a few microseconds.
 */
export const WARMUP_MS = 300;
export const WARMUP_RUNS = 2000;
/** How many of the first warm-up runs are kept as a process's first runs (the report's "first runs"). */
export const COLD_RUNS = 10;
/**
 * Timed runs of a repeated workload (a read, write_sub, apply) continue past `runs` until they
 * take this long in all, at most TIMED_RUNS: a read of a plane or a line takes under a
 * millisecond, and the median of a handful of such runs moved by 30% and more between runs of
 * the benchmark (a collection or a cold cache in one of five runs decides it). Workloads of
 * TIMED_MS / runs and more are timed `runs` times as before.
 */
export const TIMED_MS = 250;
export const TIMED_RUNS = 100;

/**
 * Rounds of two workloads side by side (dosna and its reference, or two of dosna's) continue
 * past `runs` while they take under this long in all, at most PAIRED_ROUNDS: one round's ratio
 * moved by 2x and more from round to round on this machine (by hand: 0.45-1.83 for a read of
 * the RGW beside the SDK loop, 0.8-2.7 for the planes beside a load), so the median of five
 * decided little.
 */
export const PAIRED_MS = 3000;
export const PAIRED_ROUNDS = 25;

/**
 * Times two workloads round by round, one run of each per round, after one untimed round, and
 * returns their times in round order (ratios are taken round by round: a drift of a shared
 * machine's speed then weighs on both alike). Each function returns the time it measured
 * itself (so that it can leave its own set-up untimed). Which goes first alternates: whichever
 * follows the other meets what it left behind (a store still busy with what was just written,
 * garbage to collect), and putting the same one there every time biased every ratio.
 */
export async function pairedRounds(
  runs: number, ours: () => Promise<number>, theirs: () => Promise<number>,
): Promise<{ ours: number[]; theirs: number[] }> {
  const times = { ours: [] as number[], theirs: [] as number[] };
  let spent = 0;
  for (let r = -1; r < runs || (r < PAIRED_ROUNDS && spent < PAIRED_MS); r++) {
    let a: number;
    let b: number;
    if (r % 2 === 0) {
      a = await ours();
      b = await theirs();
    } else {
      b = await theirs();
      a = await ours();
    }
    if (r < 0) continue;
    times.ours.push(a);
    times.theirs.push(b);
    spent += a + b;
  }
  return times;
}

/** Peak resident set size of this process so far, in MiB. */
export const peakRssMiB = (): number => process.resourceUsage().maxRSS / 1024;

/** Results go to stdout as one JSON line each, prefixed so the orchestrator can find them. */
export function emit(record: Record<string, unknown>): void {
  console.log(`BENCH ${JSON.stringify(record)}`);
}

/** A bounded-concurrency loop for the plain references (same concurrency as the engine under test). */
export async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/** Seeded random float32 data (mulberry32), identical in every process. */
export function randomFloat32(n: number, seed = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}
