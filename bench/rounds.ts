/**
 * Pools the records of a workload measured in interleaved rounds. The machines this benchmark
 * runs on are shared: their speed drifts by tens of percent over minutes. Measuring all of
 * dosna first and the Python peers ten minutes later lets that drift decide a ratio, so the
 * I/O workloads run in rounds (every backend and engine, then the peers, then again), a few
 * timed runs each per round, and each figure is the median of all the rounds' runs.
 */
import { median } from './common.js';

type Record_ = Record<string, any>;

/** What makes two records the same measurement in different rounds. */
function identity(r: Record_): string {
  return JSON.stringify([r.kind, r.backend, r.engine, r.peer, r.N, r.C]);
}

/**
 * One value from the same field of every round: numbers by their median (`runs` summed,
 * `peakRssMiB` the largest), lists of numbers joined, objects field by field, anything else as
 * the first round had it. A field some rounds lack (a profile, taken in one round) is pooled
 * over the rounds that have it.
 */
function pool(values: unknown[], field: string): unknown {
  const present = values.filter((v) => v !== undefined);
  const first = present[0];
  if (typeof first === 'number') {
    const numbers = present.filter((v): v is number => typeof v === 'number');
    if (field === 'runs') return numbers.reduce((a, b) => a + b, 0);
    if (field === 'peakRssMiB') return Math.max(...numbers);
    return median(numbers);
  }
  if (Array.isArray(first)) return first.every((v) => typeof v === 'number') ? present.flatMap((v) => v as number[]) : first;
  if (first && typeof first === 'object') {
    const keys = new Set(present.flatMap((v) => Object.keys(v as object)));
    return Object.fromEntries([...keys].map((k) => [k, pool(present.map((v) => (v as Record_)[k]), k)]));
  }
  return first;
}

/** The records of every round pooled into one per measurement, in the first round's order. */
export function poolRounds(rounds: Record_[][]): Record_[] {
  const groups = new Map<string, Record_[]>();
  for (const round of rounds) {
    for (const record of round) {
      const key = identity(record);
      groups.set(key, [...(groups.get(key) ?? []), record]);
    }
  }
  return [...groups.values()].map((records) => {
    const pooled = pool(records, '') as Record_;
    // Figures whose every timed run was kept are the median of all of them.
    for (const [key, runs] of Object.entries(pooled.samples ?? {})) pooled.ms[key] = median(runs as number[]);
    for (const [key, runs] of Object.entries(pooled.referenceSamples ?? {})) pooled.reference[key] = median(runs as number[]);
    // The paired ratios are taken of every round's pairs, not as a median of medians.
    const ratios = pooled.referenceRatios;
    if (ratios?.writeRounds && ratios?.readRounds) {
      ratios.write = median(ratios.writeRounds);
      ratios.read = median(ratios.readRounds);
    }
    return pooled;
  });
}
