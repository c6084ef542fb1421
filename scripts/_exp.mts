import h5wasm from 'h5wasm/node';
import * as fs from 'node:fs';
const M: any = await h5wasm.ready;
M.activate_throwing_error_handler();
fs.writeFileSync('/tmp/h5exp/corrupt.h5', 'not hdf5 at all');
for (const p of ['/tmp/h5exp/missing.h5', '/tmp/h5exp/corrupt.h5']) {
  try { const id = M.open(p, M.H5F_ACC_RDONLY, false, -1, -1); console.log('id', id); } catch (e: any) { console.log('threw', e.constructor.name, String(e.message).split('\n').slice(0,3).join(' | ')); }
}
// truncated real file
const good = fs.readFileSync('/tmp/h5exp/t.h5');
fs.writeFileSync('/tmp/h5exp/trunc.h5', good.subarray(0, good.length - 40));
try { const id = M.open('/tmp/h5exp/trunc.h5', M.H5F_ACC_RDONLY, false, -1, -1); console.log('trunc id', id);
  const meta = M.get_dataset_metadata(id, '/data'); console.log(meta);
  const ptr = M._malloc(32); const st = M.get_dataset_data(id, '/data', null, null, null, BigInt(ptr)); console.log('st', st, M.HEAPU8.slice(ptr, ptr+32)); M.close_file(id);
} catch (e: any) { console.log('trunc threw', String(e.message).split('\n').slice(0,2).join(' | ')); }
// still works?
const f = new h5wasm.File('/tmp/h5exp/t.h5', 'r'); console.log((f.get('data') as any).value); f.close();
// missing dataset path
const id2 = M.open('/tmp/h5exp/t.h5', M.H5F_ACC_RDONLY, false, -1, -1);
try { console.log(M.get_dataset_metadata(id2, '/nope')); } catch (e: any) { console.log('nope threw', String(e.message).split('\n')[0]); }
console.log(M.get_attribute_names(id2, '/'));
M.close_file(id2);
console.log('open ids after', M.FS.streams.filter(Boolean).length);
