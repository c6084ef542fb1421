import h5wasm, { dtype_to_metadata } from 'h5wasm/node';
import * as fs from 'node:fs';
const M: any = await h5wasm.ready;
M.activate_throwing_error_handler();
const dir = '/tmp/h5bench'; fs.rmSync(dir, { recursive: true, force: true }); fs.mkdirSync(dir);
const n = 64, N = 64 * 64 * 64;
const chunk = new Float32Array(N).map((_, i) => i);
const bytes = new Uint8Array(chunk.buffer);
const meta = { ...dtype_to_metadata('<f' as any), shape: [64n, 64n, 64n], maxshape: [64n,64n,64n], chunks: null, compression: 0, compression_opts: [], track_order: false };
function h5write(path: string) {
  const id = M.open(path, M.H5F_ACC_TRUNC, false, -1, -1);
  const ptr = M._malloc(bytes.byteLength);
  try { M.HEAPU8.set(bytes, ptr); M.create_dataset(id, '/data', BigInt(ptr), meta); } finally { M._free(ptr); M.close_file(id); }
}
function h5read(path: string): Uint8Array {
  const id = M.open(path, M.H5F_ACC_RDONLY, false, -1, -1);
  const ptr = M._malloc(bytes.byteLength);
  try { M.get_dataset_data(id, '/data', null, null, null, BigInt(ptr)); return M.HEAPU8.slice(ptr, ptr + bytes.byteLength); } finally { M._free(ptr); M.close_file(id); }
}
for (let rep = 0; rep < 3; rep++) {
let t = performance.now();
for (let i = 0; i < n; i++) { const p = `${dir}/c${i}.h5`; h5write(p + '.tmp'); fs.renameSync(p + '.tmp', p); }
const hw = performance.now() - t; t = performance.now();
for (let i = 0; i < n; i++) h5read(`${dir}/c${i}.h5`);
const hr = performance.now() - t; t = performance.now();
for (let i = 0; i < n; i++) { const p = `${dir}/f${i}.bin`; fs.writeFileSync(p + '.tmp', bytes); fs.renameSync(p + '.tmp', p); }
const fw = performance.now() - t; t = performance.now();
for (let i = 0; i < n; i++) fs.readFileSync(`${dir}/f${i}.bin`);
const fr = performance.now() - t;
const mb = n * bytes.byteLength / 1e6;
console.log(`h5 write ${(mb/hw*1000).toFixed(0)} MB/s read ${(mb/hr*1000).toFixed(0)} MB/s | fs write ${(mb/fw*1000).toFixed(0)} read ${(mb/fr*1000).toFixed(0)} | ratio w ${(fw/hw).toFixed(2)} r ${(fr/hr).toFixed(2)}`);
}
console.log(fs.statSync(`${dir}/c0.h5`).size);
