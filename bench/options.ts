/**
 * The benchmark command's flags, apart from the benchmark itself so `dosna bench --help` and
 * a mistyped flag answer at once, without building or starting anything.
 */
import { parseArgs } from 'node:util';

export const BENCH_HELP = `usage: npm run bench -- [options]     (or: dosna bench [options], from a checkout)

  --full                    every chunk size (32, 64, 128), N = 512 convolution
  --backends LIST           ram,hdf5,zarr,s3,ceph (default: all five)
  --engines LIST            cpu,worker-pool (default: both)
  --runs N                  runs per figure, medians reported (default 5)
  --no-peers                skip the Python peers (h5py, zarr-python, numpy)
  --queue                   also the queue engine's workloads (starts a redis-server and 2 workers; on with --full)
  --out DIR                 where latest.json goes (default bench/results)
  --docs                    also rewrite docs/benchmarks.md (or --docs-file FILE) from this run
  --report                  measure nothing: rewrite docs/benchmarks.md from the last run's latest.json
                            (after the reasons in bench/reasons.ts are brought up to date)`;

const BACKENDS = ['ram', 'hdf5', 'zarr', 's3', 'ceph'];
const ENGINES = ['cpu', 'worker-pool'];

export interface BenchOptions {
  help: boolean;
  full: boolean;
  backends: string[];
  engines: string[];
  runs: number;
  out: string;
  docs: boolean;
  docsFile: string;
  peers: boolean;
  report: boolean;
  /** Also the queue engine's workloads (bench/queue.ts). */
  queue: boolean;
}

/** Parses and checks the flags; throws an Error that names the bad one. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      full: { type: 'boolean', default: false },
      backends: { type: 'string', default: BACKENDS.join(',') },
      engines: { type: 'string', default: ENGINES.join(',') },
      runs: { type: 'string', default: '5' },
      out: { type: 'string', default: 'bench/results' },
      docs: { type: 'boolean', default: false },
      'docs-file': { type: 'string', default: 'docs/benchmarks.md' },
      peers: { type: 'boolean', default: true },
      report: { type: 'boolean', default: false },
      queue: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowNegative: true,
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const list = (flag: string, text: string, known: string[]) => {
    const items = text.split(',').map((v) => v.trim()).filter(Boolean);
    const bad = items.filter((v) => !known.includes(v));
    if (items.length === 0 || bad.length > 0) throw new Error(`--${flag} takes a comma-separated list of ${known.join(', ')}; got ${JSON.stringify(text)}`);
    return items;
  };
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a positive integer, got ${JSON.stringify(values.runs)}`);
  return {
    help: values.help, full: values.full, runs, out: values.out, docs: values.docs, docsFile: values['docs-file'],
    peers: values.peers, report: values.report, queue: values.queue || values.full,
    backends: list('backends', values.backends, BACKENDS),
    engines: list('engines', values.engines, ENGINES),
  };
}
