/**
 * The report's section on V8's accounting of external memory: the same workloads in processes
 * started with and without `--external-memory-accounted-in-global-limit` (bench/run.ts), the
 * V8 flag that later V8 versions made their only behaviour. It shows what V8's older
 * heuristic costs the workloads that make new arrays (a full garbage collection for every few
 * tens of megabytes of them on a small heap), and what the newer one costs in memory.
 */
import { fmt, WORKLOADS, type Row } from './report.js';

/** Enough digits for sub-millisecond figures. */
const ms = (v: number | undefined) => fmt(v, v !== undefined && v < 1 ? 3 : 1);

/** The section's markdown, or an empty string when the run did not measure it. */
export function v8AccountingSection(results: readonly Row[]): string {
  const before = results.filter((r) => r.kind === 'io-v8-default');
  const after = results.filter((r) => r.kind === 'io-v8-global-limit');
  const rows: string[] = [];
  const memory: string[] = [];
  for (const old of before) {
    const now = after.find((r) => r.backend === old.backend && r.engine === old.engine && r.C === old.C);
    if (!now) continue;
    for (const [label, key] of WORKLOADS) {
      const a = old.ms[key];
      const b = now.ms[key];
      if (a === undefined || b === undefined) continue;
      rows.push(`| ${old.backend} | ${old.engine} | ${old.C} | ${label} | ${ms(a)} | ${ms(b)} | ${fmt(a / b, 2)} |`);
    }
    memory.push(`${old.backend} ${fmt(old.peakRssMiB, 0)} MiB without it, ${fmt(now.peakRssMiB, 0)} MiB with it`);
  }
  if (rows.length === 0) return '';
  return `## V8's accounting of external memory

Node 24's V8 adds the array buffers made since its last full garbage collection to its old generation when it checks that
generation's limit, which on a heap of a few megabytes lies only some megabytes above what it holds: a \`get\` of the 256^3
cube (a new 64 MiB array) brings a full collection per call, and so do every few \`get\`s of an 8 MiB block. numpy frees
each result at once. Later V8 versions count external memory in a global limit of its own instead, which grows with what stays
alive (\`--external-memory-accounted-in-global-limit\` in Node 24, then the only behaviour; see the guide, "V8's accounting of
external memory"). The same workloads (cpu engine, medians of ${before[0]?.runs ?? '-'} runs or more per side), each side in its own processes,
the two alternating (bench/run.ts), same run, ms; above 1: faster with the flag. Peak resident memory: ${memory.join('; ')}.

| backend | engine | C | workload | without the flag | with the flag | ratio |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}
