import h5wasm, { dtype_to_metadata } from 'h5wasm/node';
import * as fs from 'node:fs';
const M: any = await h5wasm.ready;
M.activate_throwing_error_handler();
const dir = '/tmp/h5bench'; 
const n = 64, NB = 64*64*64*4;
const ptr = M._malloc(NB);
const T: Record<string, number> = {};
const tick = (k: string, t0: number) => { T[k] = (T[k] ?? 0) + performance.now() - t0; };
for (let rep = 0; rep < 10; rep++) for (let i = 0; i < n; i++) {
  const path = `${dir}/c${i}.h5`;
  let t = performance.now();
  const id = M.open(path, M.H5F_ACC_RDONLY, false, -1, -1); tick('open', t); t = performance.now();
  const md = M.get_dataset_metadata(id, '/data'); tick('meta', t); t = performance.now();
  M.get_dataset_data(id, '/data', null, null, null, BigInt(ptr)); tick('read', t); t = performance.now();
  M.close_file(id); tick('close', t); t = performance.now();
  const out = M.HEAPU8.slice(ptr, ptr + NB); tick('slice', t); t = performance.now();
  fs.readFileSync(`${dir}/f${i}.bin`); tick('fsread', t); t = performance.now();
  const fd = fs.openSync(`${dir}/f${i}.bin`, 'r'); const b = Buffer.allocUnsafeSlow(NB); fs.readSync(fd, b, 0, NB, 0); fs.closeSync(fd); tick('fsread2', t);
}
for (const [k, v] of Object.entries(T)) console.log(k, (v / 640 * 1000).toFixed(0), 'us/chunk');
