/**
 * Benchmark of the hdf5 backend against plain files: a 256^3 float32 cube in 64^3 chunks
 * (64 chunks of 1 MiB), written and read whole (a) through the public API, (b) chunk by chunk
 * through the store, and (c) as 64 plain files with node:fs. Prints MB/s (best of N runs).
 *
 *   npx tsx scripts/bench-hdf5.ts [runs=5] [directory=os.tmpdir()] [fastPath=true]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as dn from '../src/index.js';
import { bytesOf } from '../src/dtypes.js';

const runs = Number(process.argv[2] ?? 5);
const base = fs.mkdtempSync(path.join(process.argv[3] ?? os.tmpdir(), 'dosna-bench-'));
const N = 256;
const C = 64;
const cube = new Float32Array(N * N * N);
for (let i = 0; i < cube.length; i++) cube[i] = i % 1000;
const chunkBytes = C * C * C * 4;
const nChunks = (N / C) ** 3;
const MB = (N * N * N * 4) / 1e6;

const fastPath = process.argv[4] !== 'false';
const con = await dn.connect('bench', { backend: 'hdf5', directory: base, create: true, fastPath });
const ds = await con.createDataset('cube', { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
const store = con.store;
const meta = (await store.readMeta('cube'))!.meta;
const chunk = new Uint8Array(chunkBytes);
bytesOf(cube.subarray(0, C * C * C)).forEach((b, i) => { chunk[i] = b; });
const indices: number[][] = [];
for (let i = 0; i < N / C; i++) for (let j = 0; j < N / C; j++) for (let k = 0; k < N / C; k++) indices.push([i, j, k]);
const plainDir = path.join(base, 'plain');
fs.mkdirSync(plainDir);

/** Best time of `runs`; `before` (untimed) runs first each time, e.g. to remove the files. */
async function time(fn: () => Promise<void> | void, before?: () => void): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    before?.();
    const t = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

const results: Record<string, number> = {};
const cubeDir = path.join(base, 'bench', 'cube');
const clearChunks = () => { for (const f of fs.readdirSync(cubeDir)) if (f.startsWith('chunk_')) fs.rmSync(path.join(cubeDir, f)); };
const clearPlain = () => { for (const f of fs.readdirSync(plainDir)) fs.rmSync(path.join(plainDir, f)); };
results['api write'] = await time(() => ds.set(undefined, dn.ndarray(cube, [N, N, N])), clearChunks);
results['api read'] = await time(async () => { await ds.get(); });
const check = (await ds.get()).data as Float32Array;
for (let i = 0; i < cube.length; i += 9973) if (check[i] !== cube[i]) throw new Error(`read back the wrong value at ${i}`);
results['store write'] = await time(async () => { for (const idx of indices) await store.writeChunk(meta, idx, [chunk]); }, clearChunks);
results['store read'] = await time(async () => { for (const idx of indices) await store.readChunk(meta, idx); });
results['fs write'] = await time(() => { for (const idx of indices) fs.writeFileSync(path.join(plainDir, `c_${idx.join('_')}.bin`), chunk); }, clearPlain);
for (const idx of indices) fs.writeFileSync(path.join(plainDir, `c_${idx.join('_')}.bin`), chunk);
results['fs read'] = await time(() => { for (const idx of indices) fs.readFileSync(path.join(plainDir, `c_${idx.join('_')}.bin`)); });
results['fs write+rename'] = await time(() => {
  for (const idx of indices) {
    const f = path.join(plainDir, `r_${idx.join('_')}.bin`);
    fs.writeFileSync(`${f}.tmp`, chunk);
    fs.renameSync(`${f}.tmp`, f);
  }
}, clearPlain);
const ram = await dn.connect('bench', { backend: 'ram' });
const rds = await ram.createDataset('cube', { shape: [N, N, N], dtype: 'float32', chunkSize: [C, C, C] });
results['ram api write'] = await time(() => rds.set(undefined, dn.ndarray(cube, [N, N, N])));
results['ram api read'] = await time(async () => { await rds.get(); });
await ram.disconnect();

await con.disconnect();
fs.rmSync(base, { recursive: true, force: true });

const rate = (ms: number) => MB / (ms / 1000);
console.log(`256^3 float32 (${MB.toFixed(1)} MB) in ${nChunks} chunks of 64^3, best of ${runs} runs, hdf5 fastPath=${fastPath}, node ${process.version}`);
for (const [k, ms] of Object.entries(results)) console.log(`${k.padEnd(16)} ${ms.toFixed(1).padStart(8)} ms ${rate(ms).toFixed(0).padStart(6)} MB/s`);
console.log(`ratio api write / fs write  ${(results['fs write'] / results['api write']).toFixed(2)}`);
console.log(`ratio api read  / fs read   ${(results['fs read'] / results['api read']).toFixed(2)}`);
console.log(`ratio store write / fs write ${(results['fs write'] / results['store write']).toFixed(2)}`);
console.log(`ratio store read  / fs read  ${(results['fs read'] / results['store read']).toFixed(2)}`);
