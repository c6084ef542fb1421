/**
 * DosNa's chunk-size convolution study (examples/convolution.py) in TypeScript: random float32
 * cubes of several sizes, stored with several cubic chunk sizes, filtered by a gaussian
 * (SciPy's gaussian_filter, mode 'reflect', truncate 4) per chunk, as one 3-D map and as three
 * separable 1-D maps. Without a halo each chunk is filtered alone (as DosNa does: both methods
 * agree to float rounding); with --halo 6 the result equals filtering the whole cube at once.
 *
 *   npx tsx examples/convolutions.ts --data-sizes 128 --chunk-sizes 32 64 --out out/conv
 *   npx tsx examples/convolutions.ts --backend hdf5 --engine worker-pool --engine-options threads=2
 *   npx dosna launch -n 2 examples/convolutions.ts --backend hdf5 --engine cluster-rank
 *
 * Every configuration runs once untimed first (engine start-up, JIT), then --ntest timed runs.
 * Output in --out: timings.h5 (timings with axes described by attributes), figures of the
 * middle slice of the input and of both outputs for every chunk size of the largest data
 * size (with a colour bar), and time-vs-chunk-size.png.
 */
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import * as dn from '../src/index.js';
import { parseScriptArgs, positiveIntegers, scriptConnectionOptions } from '../src/cli/connection-args.js';
import { writeChartPng, writeHdf5, writeSliceFigure } from './lib/outputs.js';

const USAGE = `usage: convolutions.ts [--backend B] [--engine E] [--connection NAME] [--connection-options k=v ...]
       [--engine-options k=v ...] [--out DIR] [--data-sizes 128 256] [--chunk-sizes 24 32 ...]
       [--sigma 1.5] [--ntest 3] [--halo 0] [--no-progress]

  --data-sizes N ...    cube sides (default 128 256); lists also take commas: 128,256
  --chunk-sizes C ...   cubic chunk sides (default 24 32 36 48 64 72 96 128)
  --sigma S             gaussian sigma in voxels (default 1.5)
  --ntest K             timed runs per configuration, after one untimed warm-up (default 3)
  --halo H              voxels of neighbouring chunks each chunk sees (default 0, as DosNa)
  --out DIR             where timings.h5 and the figures go (default out/convolutions)
  --no-progress         no progress bar`;

const { args, values, sizes, chunkSizes, sigma, ntest, halo } = parseScriptArgs(process.argv.slice(2), {
  name: 'convolutions.ts',
  usage: USAGE,
  lists: ['data-sizes', 'chunk-sizes'],
  flags: {
    out: { type: 'string', default: 'out/convolutions' },
    'data-sizes': { type: 'string', default: '128,256' },
    'chunk-sizes': { type: 'string', default: '24,32,36,48,64,72,96,128' },
    sigma: { type: 'string', default: '1.5' },
    ntest: { type: 'string', default: '3' },
    halo: { type: 'string', default: '0' },
    'no-progress': { type: 'boolean', default: false },
  },
}, ({ values: v }) => {
  const number = (flag: string, ok: (x: number) => boolean, what: string) => {
    const x = Number(v[flag]);
    if (!ok(x)) throw new Error(`--${flag} takes ${what}, got ${JSON.stringify(v[flag])}`);
    return x;
  };
  return {
    sizes: positiveIntegers('data-sizes', v['data-sizes'] as string),
    chunkSizes: positiveIntegers('chunk-sizes', v['chunk-sizes'] as string),
    sigma: number('sigma', (x) => Number.isFinite(x) && x > 0, 'a positive number'),
    ntest: number('ntest', (x) => Number.isInteger(x) && x >= 1, 'a positive integer'),
    halo: number('halo', (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer'),
  };
});
const out = values.out as string;
mkdirSync(out, { recursive: true });

const options = scriptConnectionOptions(args, dn.current().backend);
if (['hdf5', 'zarr'].includes(args.backend ?? dn.current().backend) && args.connectionOptions.directory === undefined) Object.assign(options, { directory: out });
const METHODS = ['load', '3d', '1d'] as const;

/** Same numbers on every rank (mulberry32), so a collective load is consistent. */
function randomCube(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n ** 3);
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}

/** How the engine runs, for titles: "worker-pool engine, 2 threads", "cluster-rank engine, 4 ranks". */
function engineDescription(con: dn.Connection): string {
  if (con.engine === 'cluster-rank') return `cluster-rank engine, ${con.size} rank${con.size > 1 ? 's' : ''}`;
  if (con.engine === 'worker-pool') {
    const threads = Number(args.engineOptions.threads ?? availableParallelism());
    return `worker-pool engine, ${threads} thread${threads > 1 ? 's' : ''}`;
  }
  return `${con.engine} engine`;
}

await dn.withConnection(args.connection ?? 'dosna-convolutions', options, async (con) => {
  const root = con.isRoot;
  const log = (...m: unknown[]) => { if (root) console.log(...m); };
  log(`${con}, ${engineDescription(con)}; sizes ${sizes.join(' ')}, chunks ${chunkSizes.join(' ')}, sigma ${sigma}, halo ${halo}, ${ntest} timed run(s) each`);
  const timings = new Float64Array(sizes.length * chunkSizes.length * METHODS.length * ntest).fill(NaN);
  const at = (s: number, c: number, m: number, t: number) => ((s * chunkSizes.length + c) * METHODS.length + m) * ntest + t;
  const work = sizes.reduce((acc, n) => acc + chunkSizes.filter((c) => c <= n).length * ntest, 0);
  const bar = root && !values['no-progress'] ? new SingleBar({ format: ' {bar} {value}/{total} runs | N={n} C={c} | {eta_formatted} left' }, Presets.shades_classic) : undefined;
  let worstDifference = 0;
  const rows: { size: number; chunk: number; method: string; seconds: number }[] = [];
  const figures: string[] = [];

  /** One run: load the cube, filter it as one 3-D map and as three 1-D maps; `time` records each step. */
  async function runOnce(n: number, chunk: number, cube: dn.NdArray, time: (method: number, seconds: number) => void) {
    const timed = async <T>(m: number, fn: () => Promise<T>): Promise<T> => {
      await con.barrier();
      const t0 = performance.now();
      const result = await fn();
      time(m, (performance.now() - t0) / 1000);
      return result;
    };
    const ds = await timed(0, async () => {
      const created = await con.createDataset(`data-${n}-${chunk}`, { shape: [n, n, n], dtype: 'float32', chunkSize: [chunk, chunk, chunk] });
      await created.load(cube);
      return created;
    });
    const three = await timed(1, () => ds.map(dn.gaussianKernels.gaussian3d, `gauss3d-${n}-${chunk}`, { halo, args: { sigma } }));
    const one = await timed(2, async () => {
      let pass = ds;
      for (const axis of [0, 1, 2]) {
        const next = await pass.map(dn.gaussianKernels.gaussian1d, `gauss1d-${n}-${chunk}-${axis}`, { halo, args: { sigma, axis } });
        if (pass !== ds) await pass.delete();
        pass = next;
      }
      return pass;
    });
    return { ds, three, one };
  }

  // Warm-up (untimed): engine start-up (worker threads, rank connections) and JIT belong to no configuration.
  const firstSize = sizes.find((n) => chunkSizes.some((c) => c <= n));
  if (firstSize !== undefined) {
    const chunk = chunkSizes.find((c) => c <= firstSize)!;
    log(`warm-up run (untimed): N = ${firstSize}, chunks ${chunk}`);
    const warm = await runOnce(firstSize, chunk, dn.ndarray(randomCube(firstSize, firstSize), [firstSize, firstSize, firstSize]), () => {});
    await con.barrier();
    for (const d of [warm.three, warm.one, warm.ds]) await d.delete();
  }

  bar?.start(work, 0, { n: '-', c: '-' });
  for (const [s, n] of sizes.entries()) {
    const cube = dn.ndarray(randomCube(n, n), [n, n, n]);
    const mid = Math.floor(n / 2);
    const figure = (name: string, title: string, slice: dn.NdArray) => {
      const file = join(out, name);
      writeSliceFigure(file, slice.data as Float32Array, n, n, { title: `${title}, N = ${n}, slice ${mid} of axis 0`, label: 'value' });
      figures.push(file);
    };
    for (const [c, chunk] of chunkSizes.entries()) {
      if (chunk > n) continue;
      for (let t = 0; t < ntest; t++) {
        bar?.update({ n, c: chunk });
        const { ds, three, one } = await runOnce(n, chunk, cube, (m, seconds) => { timings[at(s, c, m, t)] = seconds; });
        if (root) {
          const [a, b, x] = await Promise.all([three.get([mid]), one.get([mid]), ds.get([mid])]);
          for (let i = 0; i < a.data.length; i++) worstDifference = Math.max(worstDifference, Math.abs((a.data[i] as number) - (b.data[i] as number)));
          // Figures of the largest data size: the input once, both outputs for every chunk size.
          if (s === sizes.length - 1 && t === ntest - 1) {
            if (!figures.some((f) => f.endsWith(`input-${n}.png`))) figure(`input-${n}.png`, 'input (uniform random)', x);
            const how = `chunks ${chunk}³${halo ? `, halo ${halo}` : ''}`;
            figure(`gaussian3d-${n}-c${chunk}.png`, `gaussian 3-D (σ ${sigma}), ${how}`, a);
            figure(`gaussian1d-${n}-c${chunk}.png`, `gaussian 3 x 1-D (σ ${sigma}), ${how}`, b);
          }
        }
        await con.barrier();
        for (const d of [three, one, ds]) await d.delete();
        bar?.increment();
      }
      for (const [m, method] of METHODS.entries()) {
        const runs = Array.from({ length: ntest }, (_, t) => timings[at(s, c, m, t)]).sort((x, y) => x - y);
        rows.push({ size: n, chunk, method, seconds: runs[Math.floor(runs.length / 2)] });
      }
    }
  }
  bar?.stop();
  if (!root) return;

  console.log(`3-D vs 3 x 1-D: largest difference on the middle slices ${worstDifference.toExponential(2)} (float rounding)`);
  console.log('\nmedian seconds:');
  console.table(rows.map((r) => ({ N: r.size, C: r.chunk, method: r.method, s: Number(r.seconds.toFixed(3)) })));
  await writeHdf5(join(out, 'timings.h5'), {
    timings: {
      data: timings, shape: [sizes.length, chunkSizes.length, METHODS.length, ntest],
      attrs: { axes: ['data_size', 'chunk_size', 'method', 'repeat'], units: 'seconds', missing: 'NaN where chunk size > data size' },
    },
    data_sizes: { data: Int32Array.from(sizes), shape: [sizes.length] },
    chunk_sizes: { data: Int32Array.from(chunkSizes), shape: [chunkSizes.length] },
  }, { methods: [...METHODS], backend: con.backend, engine: con.engine, ranks: con.size, sigma, halo, truncate: 4, warmup_runs: 1 });
  const measured = [...new Set(rows.map((r) => r.chunk))];
  const methodNames: Record<string, string> = { load: 'load', '3d': 'gaussian 3-D', '1d': 'gaussian 3 x 1-D' };
  await writeChartPng(join(out, 'time-vs-chunk-size.png'), {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: {
      text: `Gaussian filter (σ ${sigma}${halo ? `, halo ${halo}` : ''}) by chunk size: ${con.backend} backend, ${engineDescription(con)}`,
      subtitle: `median of ${ntest} timed run${ntest > 1 ? 's' : ''} after a warm-up run; data size N means an N³ float32 cube`,
    },
    width: 520, height: 320,
    data: { values: rows.map((r) => ({ ...r, method: methodNames[r.method], size: `N = ${r.size}` })) },
    mark: { type: 'line', point: { size: 50, filled: true } },
    encoding: {
      x: {
        field: 'chunk', type: 'quantitative', title: 'chunk size (cubic side, voxels)',
        // A little room either side, so the end points are not on the frame (and one chunk size still has a range).
        scale: { type: 'log', base: 2, domain: [Math.min(...measured) / 1.15, Math.max(...measured) * 1.15] },
        axis: { values: measured, format: 'd', grid: true },
      },
      y: { field: 'seconds', type: 'quantitative', title: 'median time (s)', scale: { type: 'log' }, axis: { format: '~g' } },
      color: { field: 'method', type: 'nominal', title: 'step', sort: Object.values(methodNames) },
      shape: { field: 'size', type: 'nominal', title: 'data size', sort: sizes.map((n) => `N = ${n}`) },
      strokeDash: { field: 'size', type: 'nominal', title: 'data size', sort: sizes.map((n) => `N = ${n}`) },
    },
  });
  console.log(`\nwrote ${join(out, 'timings.h5')}, ${join(out, 'time-vs-chunk-size.png')} and ${figures.length} slice figures`);
});
