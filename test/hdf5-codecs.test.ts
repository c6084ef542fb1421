/**
 * Compressed hdf5 chunk files against h5py (issue 16): what dosna writes, h5py reads (shuffle
 * + gzip with no plugin, LZ4 with Debian's filter plugin, zstd by decoding h5py's raw chunk
 * with python-zstandard, as Debian has no zstd filter); what h5py writes with HDF5's own
 * filters (gzip, shuffle, fletcher32, scale-offset), dosna reads.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { ensureDebianPackages, pythonWith } from './support/python.js';

const PLUGINS = '/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins';
let tmp: string;

/** Runs Python with `pluginPath` as HDF5's only plugin folder (none: a folder with no plugins). */
function python(code: string, pluginPath: string, ...args: string[]): string {
  return pythonWith({ HDF5_PLUGIN_PATH: pluginPath }, code, ...args);
}

beforeAll(() => {
  ensureDebianPackages('python3-h5py', 'python3-numpy', 'python3-zstandard', 'hdf5-filter-plugin');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-hdf5-codecs-'));
}, 600_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const READER = `
import h5py, json, numpy as np, os, sys, zstandard
folder, dtype, shuffle = sys.argv[1], sys.argv[2], sys.argv[3] == 'true'
out = {}
for name in sorted(os.listdir(folder)):
    if not name.startswith('chunk_'):
        continue
    with h5py.File(os.path.join(folder, name), 'r') as f:
        d = f['data']
        try:
            a = d[...]
            how = 'h5py'
        except OSError as e:
            # No zstd filter here: decode the raw chunk as the filter would.
            mask, raw = d.id.read_direct_chunk((0,) * d.ndim)
            b = zstandard.ZstdDecompressor().decompress(raw)
            n = np.dtype(dtype).itemsize
            if shuffle:
                b = np.frombuffer(b, 'u1').reshape(n, -1).T.tobytes()
            a = np.frombuffer(b, dtype).reshape(d.shape)
            how = 'zstandard'
        out[name] = {'how': how, 'filters': {str(k): list(v) if isinstance(v, tuple) else v for k, v in d._filters.items()}, 'sum': float(a.astype('f8').sum()), 'first': a.ravel()[:3].astype('f8').tolist(), 'shape': list(d.shape), 'dtype': d.dtype.str}
print(json.dumps(out))
`;

describe('hdf5 compressed chunk files and h5py', () => {
  const cases = [
    { compression: 'gzip', shuffle: true, dtype: 'float32', plugins: 'none', filters: { shuffle: [4], gzip: 4 } },
    { compression: 'gzip', shuffle: false, dtype: 'int16', plugins: 'none', filters: { gzip: 4 } },
    { compression: 'lz4', shuffle: true, dtype: 'float64', plugins: PLUGINS, filters: { shuffle: [8], 32004: [0] } },
    { compression: 'lz4', shuffle: false, dtype: 'uint8', plugins: PLUGINS, filters: { 32004: [0] } },
    { compression: 'zstd', shuffle: true, dtype: 'float32', plugins: 'none', filters: { shuffle: [4], 32015: [3] } },
    { compression: 'zstd', shuffle: false, dtype: 'int64', plugins: 'none', filters: { 32015: [3] } },
  ] as const;

  it.each(cases)('h5py reads $compression (shuffle $shuffle) chunk files of $dtype', async ({ compression, shuffle, dtype, plugins, filters }) => {
    const name = `${compression}-${shuffle}-${dtype}`;
    await dn.withConnection('written', { backend: 'hdf5', directory: tmp, create: true }, async (con) => {
      const n = 24 * 40;
      const values = Array.from({ length: n }, (_, i) => Math.round(Math.sin(i / 40) * 100) + 100);
      const data = dtype === 'int64' ? BigInt64Array.from(values, BigInt) : dtype === 'float32' ? Float32Array.from(values, (v) => v / 4) : dtype === 'float64' ? Float64Array.from(values, (v) => v / 8) : dtype === 'int16' ? Int16Array.from(values) : Uint8Array.from(values);
      await con.createDataset(name, { data: dn.ndarray(data, [24, 40]), chunkSize: [16, 32], compression, shuffle });
    });
    const noPlugins = path.join(tmp, 'no-plugins');
    fs.mkdirSync(noPlugins, { recursive: true });
    const out = JSON.parse(python(READER, plugins === 'none' ? noPlugins : plugins, path.join(tmp, 'written', name), dtype === 'float32' ? '<f4' : dtype === 'float64' ? '<f8' : dtype === 'int16' ? '<i2' : dtype === 'int64' ? '<i8' : '|u1', String(shuffle)));
    expect(Object.keys(out)).toEqual(['chunk_0_0.h5', 'chunk_0_1.h5', 'chunk_1_0.h5', 'chunk_1_1.h5']);
    // What dosna reads back is what h5py read, chunk by chunk (edge chunks padded with the fill value).
    const con = await dn.connect('written', { backend: 'hdf5', directory: tmp });
    try {
      const ds = await con.getDataset(name);
      expect(ds.compression).toBe(compression);
      for (const [file, chunk] of Object.entries(out) as [string, { how: string; filters: unknown; sum: number; first: number[]; shape: number[] }][]) {
        expect(chunk.how).toBe(compression === 'zstd' ? 'zstandard' : 'h5py');
        expect(chunk.filters).toEqual(filters);
        expect(chunk.shape).toEqual([16, 32]);
        const [i, j] = file.match(/\d+/g)!.map(Number);
        const got = (await ds.getChunk([i, j]).getData()).data as ArrayLike<number | bigint>;
        const sum = Array.from(got, Number).reduce((a, b) => a + b, 0);
        expect(chunk.sum).toBeCloseTo(sum, 6);
        expect(chunk.first).toEqual(Array.from(got, Number).slice(0, 3));
      }
    } finally {
      await con.disconnect();
    }
  });

  it('reads chunk files h5py writes with HDF5\'s filters: gzip + shuffle + fletcher32, scale-offset, in raw and compressed datasets', async () => {
    await dn.withConnection('frompy', { backend: 'hdf5', directory: tmp, create: true }, async (con) => {
      await con.createDataset('raw', { shape: [8, 10], dtype: 'int32', chunkSize: [4, 10] });
      await con.createDataset('zipped', { shape: [8, 10], dtype: 'int32', chunkSize: [4, 10], compression: 'gzip', shuffle: true });
    });
    python(`
import h5py, numpy as np, os, sys
root = sys.argv[1]
for ds in ('raw', 'zipped'):
    for i, kw in enumerate([dict(compression='gzip', shuffle=True, fletcher32=True), dict(scaleoffset=0)]):
        with h5py.File(os.path.join(root, ds, 'chunk_%d_0.h5' % i), 'w') as f:
            f.create_dataset('data', data=np.arange(40, dtype='<i4').reshape(4, 10) + 100 * i, chunks=(4, 10), **kw)
`, path.join(tmp, 'no-plugins'), path.join(tmp, 'frompy'));
    const con = await dn.connect('frompy', { backend: 'hdf5', directory: tmp });
    try {
      for (const name of ['raw', 'zipped']) {
        const ds = await con.getDataset(name);
        const got = Array.from((await ds.get([s(), 3])).data as Int32Array);
        expect(got, name).toEqual([3, 13, 23, 33, 103, 113, 123, 133]);
        // And a partial write over h5py's chunk is stored in our own layout, which h5py reads.
        await ds.set([1, 3], -5);
        await ds.flush();
        expect(Array.from((await ds.get([s(0, 2), 3])).data as Int32Array)).toEqual([3, -5]);
      }
    } finally {
      await con.disconnect();
    }
    expect(python(`
import h5py, os, sys
print(int(h5py.File(os.path.join(sys.argv[1], 'zipped', 'chunk_0_0.h5'), 'r')['data'][1, 3]))
`, path.join(tmp, 'no-plugins'), path.join(tmp, 'frompy')).trim()).toBe('-5');
  });
});
