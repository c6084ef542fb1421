/**
 * DosNa's chunk-size convolution study (examples/convolution.py) in TypeScript: random float32
 * cubes of several sizes, stored with several cubic chunk sizes, filtered by a gaussian
 * (SciPy's gaussian_filter, mode 'reflect', truncate 4) per chunk, as one 3-D map and as three
 * separable 1-D maps. Without a halo each chunk is filtered alone (as DosNa does: both methods
 * agree to float rounding); with --halo 6 the result equals filtering the whole cube at once.
 *
 *   npx tsx examples/convolutions.ts --data-sizes 128 --chunk-sizes 32,64 --out out/conv
 *   npx tsx examples/convolutions.ts --backend hdf5 --engine worker-pool --engine-options threads=2
 *   npx dosna launch -n 2 examples/convolutions.ts --backend hdf5 --engine cluster-rank
 *
 * Output in --out: timings.h5 (timings with axes described by attributes), PNG images of the
 * middle slice of the input and both outputs, and time-vs-chunk-size.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import * as dn from '../src/index.js';
import { parseConnectionArgs, toConnectionOptions } from '../src/cli/connection-args.js';
import { writeChartPng, writeHdf5, writeSlicePng } from './lib/outputs.js';

const HELP = `usage: convolutions.ts [--backend B] [--engine E] [--connection NAME] [--connection-options k=v ...]
       [--engine-options k=v ...] [--out DIR] [--data-sizes 128,256] [--chunk-sizes 24,32,...]
       [--sigma 1.5] [--ntest 3] [--halo 0] [--no-progress]`;

const { args, values } = parseConnectionArgs(process.argv.slice(2), {
  out: { type: 'string', default: 'out/convolutions' },
  'data-sizes': { type: 'string', default: '128,256' },
  'chunk-sizes': { type: 'string', default: '24,32,36,48,64,72,96,128' },
  sigma: { type: 'string', default: '1.5' },
  ntest: { type: 'string', default: '3' },
  halo: { type: 'string', default: '0' },
  'no-progress': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const list = (text: string) => text.split(',').map((v) => Number(v.trim())).filter((v) => Number.isInteger(v) && v > 0);
const sizes = list(values['data-sizes'] as string);
const chunkSizes = list(values['chunk-sizes'] as string);
const sigma = Number(values.sigma);
const ntest = Number(values.ntest);
const halo = Number(values.halo);
const out = values.out as string;
if (sizes.length === 0 || chunkSizes.length === 0 || !(sigma > 0) || !(ntest >= 1) || !(halo >= 0)) {
  console.error(`bad arguments\n${HELP}`);
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const options = toConnectionOptions(args);
if ((args.backend ?? dn.current().backend) === 'hdf5' && options.directory === undefined) Object.assign(options, { directory: out, create: true });
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

await dn.withConnection(args.connection ?? 'dosna-convolutions', options, async (con) => {
  const root = con.isRoot;
  const log = (...m: unknown[]) => { if (root) console.log(...m); };
  log(`${con}, ${con.size} rank(s); sizes ${sizes}, chunks ${chunkSizes}, sigma ${sigma}, halo ${halo}, ${ntest} repeat(s)`);
  const timings = new Float64Array(sizes.length * chunkSizes.length * METHODS.length * ntest).fill(NaN);
  const at = (s: number, c: number, m: number, t: number) => ((s * chunkSizes.length + c) * METHODS.length + m) * ntest + t;
  const work = sizes.reduce((acc, n) => acc + chunkSizes.filter((c) => c <= n).length * ntest, 0);
  const bar = root && !values['no-progress'] ? new SingleBar({ format: ' {bar} {value}/{total} runs | N={n} C={c} | {eta_formatted} left' }, Presets.shades_classic) : undefined;
  bar?.start(work, 0, { n: '-', c: '-' });
  let worstDifference = 0;
  const rows: { size: number; chunk: number; method: string; seconds: number }[] = [];

  for (const [s, n] of sizes.entries()) {
    const cube = dn.ndarray(randomCube(n, n), [n, n, n]);
    for (const [c, chunk] of chunkSizes.entries()) {
      if (chunk > n) continue;
      for (let t = 0; t < ntest; t++) {
        bar?.update({ n, c: chunk });
        const time = async (m: number, fn: () => Promise<void>) => {
          await con.barrier();
          const t0 = performance.now();
          await fn();
          timings[at(s, c, m, t)] = (performance.now() - t0) / 1000;
        };
        let ds!: dn.Dataset;
        let three!: dn.Dataset;
        let one!: dn.Dataset;
        await time(0, async () => {
          ds = await con.createDataset(`data-${n}-${chunk}`, { shape: [n, n, n], dtype: 'float32', chunkSize: [chunk, chunk, chunk] });
          await ds.load(cube);
        });
        await time(1, async () => {
          three = await ds.map(dn.gaussianKernels.gaussian3d, `gauss3d-${n}-${chunk}`, { halo, args: { sigma } });
        });
        await time(2, async () => {
          let pass = ds;
          for (const axis of [0, 1, 2]) {
            const next = await pass.map(dn.gaussianKernels.gaussian1d, `gauss1d-${n}-${chunk}-${axis}`, { halo, args: { sigma, axis } });
            if (pass !== ds) await pass.delete();
            pass = next;
          }
          one = pass;
        });
        if (root) {
          const mid = Math.floor(n / 2);
          const [a, b, x] = await Promise.all([three.get([mid]), one.get([mid]), ds.get([mid])]);
          for (let i = 0; i < a.data.length; i++) worstDifference = Math.max(worstDifference, Math.abs((a.data[i] as number) - (b.data[i] as number)));
          if (s === sizes.length - 1 && t === ntest - 1 && (chunk === 64 || c === chunkSizes.filter((v) => v <= n).length - 1)) {
            writeSlicePng(join(out, `input-${n}.png`), x.data as Float32Array, n, n);
            writeSlicePng(join(out, `gaussian3d-${n}-c${chunk}.png`), a.data as Float32Array, n, n, [0, 1]);
            writeSlicePng(join(out, `gaussian1d-${n}-c${chunk}.png`), b.data as Float32Array, n, n, [0, 1]);
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
  }, { methods: [...METHODS], backend: con.backend, engine: con.engine, ranks: con.size, sigma, halo, truncate: 4 });
  await writeChartPng(join(out, 'time-vs-chunk-size.png'), {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `gaussian (sigma ${sigma}${halo ? `, halo ${halo}` : ''}) on ${con.backend} / ${con.engine} x ${con.size}`,
    width: 480, height: 300,
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'chunk', type: 'quantitative', title: 'chunk size (cubic)' },
      y: { field: 'seconds', type: 'quantitative', title: 'median time (s)' },
      color: { field: 'method', type: 'nominal' },
      strokeDash: { field: 'size', type: 'nominal', title: 'data size' },
    },
  });
  console.log(`\nwrote ${join(out, 'timings.h5')}, ${join(out, 'time-vs-chunk-size.png')} and slice images`);
});
