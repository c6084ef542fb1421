/**
 * One-file HDF5 export and import against h5py (issue 17): h5py opens an export as one dataset
 * equal to the source (values, chunks, compression, attributes), from any backend; what h5py
 * writes (chunked, compressed, contiguous, in groups) imports equal to it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { ensureDebianPackages, python } from './support/python.js';

let tmp: string;

beforeAll(() => {
  ensureDebianPackages('python3-h5py', 'python3-numpy');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-hdf5-export-'));
}, 600_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('exportHdf5 and importHdf5', () => {
  it('h5py opens an export as one dataset equal to the source: values, fill, chunks, compression, attributes', async () => {
    await dn.withConnection('export', { backend: 'ram' }, async (con) => {
      const ds = await con.createDataset('scan/vol', { shape: [20, 30, 7], dtype: 'int16', chunkSize: [8, 16, 7], fillValue: -3, compression: 'gzip', compressionLevel: 6 });
      await ds.set([s(0, 12)], dn.ndarray(Int16Array.from({ length: 12 * 30 * 7 }, (_, i) => (i % 1000) - 500), [12, 30, 7]));
      await ds.attrs.update({ units: 'counts', angles: new Float32Array([0, 0.5]), run: { id: 7 } });
      await ds.exportHdf5(path.join(tmp, 'vol.h5'), { path: '/entry/data' });
      const zs = await con.createDataset('z', { data: dn.ndarray(Float64Array.from({ length: 100 }, (_, i) => i / 4), [10, 10]), chunkSize: [4, 10], compression: 'zstd', shuffle: true });
      await zs.exportHdf5(path.join(tmp, 'z.h5'));
      await expect(zs.exportHdf5(path.join(tmp, 'z.h5'))).rejects.toBeInstanceOf(dn.DatasetExistsError);
      await zs.exportHdf5(path.join(tmp, 'z.h5'), { overwrite: true });
      await expect(zs.exportHdf5(path.join(tmp, 'x.h5'), { path: '/a/../b' })).rejects.toBeInstanceOf(dn.OptionError);
      await expect(zs.exportHdf5(path.join(tmp, 'x.h5'), { bogus: 1 } as never)).rejects.toBeInstanceOf(dn.OptionError);
    });
    const out = JSON.parse(python(`
import h5py, json, sys, os, numpy as np
f = h5py.File(os.path.join(sys.argv[1], 'vol.h5'), 'r')
d = f['/entry/data']
a = d[...]
z = h5py.File(os.path.join(sys.argv[1], 'z.h5'), 'r')['z']
print(json.dumps({'shape': list(d.shape), 'dtype': d.dtype.str, 'chunks': list(d.chunks), 'compression': d.compression, 'level': d.compression_opts,
  'sum': int(a.astype('i8').sum()), 'first': a[0, 0, :3].tolist(), 'fillrow': a[15, 0, :3].tolist(),
  'units': d.attrs['units'], 'angles': d.attrs['angles'].tolist(), 'zsum': float(z[...].sum()), 'zshape': list(z.shape), 'zcompression': z.compression}))
`, tmp));
    const values = Int16Array.from({ length: 12 * 30 * 7 }, (_, i) => (i % 1000) - 500);
    expect(out).toMatchObject({ shape: [20, 30, 7], dtype: '<i2', chunks: [8, 16, 7], compression: 'gzip', level: 6, first: [-500, -499, -498], fillrow: [-3, -3, -3], units: 'counts', angles: [0, 0.5] });
    expect(out.sum).toBe(values.reduce((a, b) => a + b, 0) + 8 * 30 * 7 * -3);
    expect(out).toMatchObject({ zsum: Array.from({ length: 100 }, (_, i) => i / 4).reduce((a, b) => a + b, 0), zshape: [10, 10], zcompression: 'gzip' });
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('imports what h5py writes (chunked gzip + shuffle in a group, contiguous) equal to it, with attributes; all or nothing', async () => {
    python(`
import h5py, sys, os, numpy as np
with h5py.File(os.path.join(sys.argv[1], 'in.h5'), 'w') as f:
    d = f.create_dataset('/entry/data', data=np.arange(24 * 10, dtype='<f4').reshape(24, 10) / 2, chunks=(5, 10), compression='gzip', compression_opts=3, shuffle=True)
    d.attrs['units'] = 'mm'
    d.attrs['shape'] = 'not taken: the dataset has its own'
    f.create_dataset('flat', data=np.arange(50, dtype='<u8'))
    f.create_dataset('text', data=np.array([b'a', b'b']))
`, tmp);
    await dn.withConnection('import', { backend: 'hdf5', directory: tmp, create: true }, async (con) => {
      const ds = await con.importHdf5(path.join(tmp, 'in.h5'), '/entry/data', 'scan/data');
      expect([ds.shape, ds.dtype, ds.chunkSize, ds.compression, ds.compressionLevel, ds.shuffle]).toEqual([[24, 10], 'float32', [5, 10], 'gzip', 3, true]);
      expect(Array.from((await ds.get([23])).data as Float32Array)).toEqual(Array.from({ length: 10 }, (_, i) => (230 + i) / 2));
      expect(await ds.attrs.toObject()).toEqual({ units: 'mm' });
      const flat = await con.importHdf5(path.join(tmp, 'in.h5'), 'flat', 'flat', { compression: 'zstd' });
      expect([flat.dtype, flat.compression]).toEqual(['uint64', 'zstd']);
      expect(Array.from((await flat.get([s(47, 50)])).data as BigUint64Array)).toEqual([47n, 48n, 49n]);
      await expect(con.importHdf5(path.join(tmp, 'in.h5'), 'text', 'text')).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(con.importHdf5(path.join(tmp, 'in.h5'), 'entry', 'g')).rejects.toThrow(/not a dataset/);
      await expect(con.importHdf5(path.join(tmp, 'nope.h5'), 'x', 'y')).rejects.toThrow(/no such file/);
      await expect(con.importHdf5(path.join(tmp, 'in.h5'), 'flat', 'flat')).rejects.toBeInstanceOf(dn.DatasetExistsError);
      expect((await con.list()).map((e) => e.name)).toEqual(['flat', 'scan']);
      // And h5py reads the dataset dosna made from its file, chunk file by chunk file.
      const roundTrip = path.join(tmp, 'back.h5');
      await ds.exportHdf5(roundTrip);
      expect(python(`
import h5py, sys, numpy as np
a = h5py.File(sys.argv[1], 'r')['/scan/data'][...]
b = h5py.File(sys.argv[2], 'r')['/entry/data'][...]
print(bool(np.array_equal(a, b)))
`, roundTrip, path.join(tmp, 'in.h5')).trim()).toBe('True');
    });
  });
});
