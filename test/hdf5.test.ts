/**
 * The hdf5 backend against real files: what we write h5py reads, what h5py writes in DosNa's
 * layout we read, every dtype, gzip, bad names, a missing folder. Crashed writers, corrupt
 * files and dataset identity: hdf5-recovery.test.ts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { DTYPES, type DType } from '../src/dtypes.js';
import { CorruptChunkError } from '../src/errors.js';
import { nativeModule } from '../src/native.js';
import { renameOrdersData, resolveCommitMode } from '../src/backends/hdf5/commit-mode.js';
import { expectedRenameOrdersData } from './support/commit-mode.js';
import { python, PYTHON } from './support/python.js';
import { hdf5TestFolder } from './support/hdf5-folder.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scratch = hdf5TestFolder();
const connection = scratch.connection;

describe('hdf5 backend: files h5py reads', () => {
  it('writes DosNa layout that h5py reads: attributes, chunk files, padded edges', async () => {
    const con = await connection('written').connect();
    const ds = await con.createDataset('x', { shape: [5, 7], dtype: 'float32', chunkSize: [2, 3], fillValue: 1.5 });
    const values = Float32Array.from({ length: 35 }, (_, i) => i * 0.5 - 3);
    await ds.set([dn.s(0, 4)], dn.ndarray(values.subarray(0, 28), [4, 7]));
    await con.disconnect();
    const out = JSON.parse(python(`
import h5py, json, glob, os, sys
d = os.path.join(sys.argv[1], 'written', 'x')
m = h5py.File(os.path.join(d, 'dataset.h5'), 'r')
chunks = {}
for f in sorted(glob.glob(os.path.join(d, 'chunk_*.h5'))):
    with h5py.File(f, 'r') as h:
        chunks[os.path.basename(f)] = {'shape': list(h['data'].shape), 'dtype': h['data'].dtype.str, 'data': h['data'][...].tolist()}
print(json.dumps({'shape': m.attrs['shape'].tolist(), 'shape_dtype': m.attrs['shape'].dtype.str,
  'dtype': m.attrs['dtype'], 'fillvalue': float(m.attrs['fillvalue']), 'fill_dtype': m.attrs['fillvalue'].dtype.str,
  'chunk_grid': m.attrs['chunk_grid'].tolist(), 'chunk_size': m.attrs['chunk_size'].tolist(), 'chunks': chunks}))
`, scratch.path));
    expect(out.shape).toEqual([5, 7]);
    expect(out.shape_dtype).toBe('<i8');
    expect(out.dtype).toBe('<f4');
    expect(out.fillvalue).toBe(1.5);
    expect(out.fill_dtype).toBe('<f4');
    expect(out.chunk_grid).toEqual([3, 3]);
    expect(out.chunk_size).toEqual([2, 3]);
    // Rows 0..3 written: chunks (0,*) and (1,*) exist, row-chunk 2 does not.
    expect(Object.keys(out.chunks)).toEqual(['chunk_0_0.h5', 'chunk_0_1.h5', 'chunk_0_2.h5', 'chunk_1_0.h5', 'chunk_1_1.h5', 'chunk_1_2.h5']);
    for (const c of Object.values(out.chunks) as { shape: number[]; dtype: string }[]) {
      expect(c.shape).toEqual([2, 3]);
      expect(c.dtype).toBe('<f4');
    }
    // Edge chunk (1, 2) holds column 6 of rows 2..3 and is padded with the fill value.
    const edge = out.chunks['chunk_1_2.h5'].data;
    expect(edge).toEqual([[values[2 * 7 + 6], 1.5, 1.5], [values[3 * 7 + 6], 1.5, 1.5]]);
    // And we read our own files back, the unwritten row as the fill value.
    const again = await connection('written').connect();
    const got = (await (await again.getDataset('x')).get()).data as Float32Array;
    expect([...got.subarray(0, 28)]).toEqual([...values.subarray(0, 28)]);
    expect([...got.subarray(28)]).toEqual(Array(7).fill(1.5));
    await again.disconnect();
  });

  it('reads a DosNa folder made by h5py: values, shape, dtype, fill value, missing chunks, big-endian and gzip chunks', async () => {
    execFileSync(PYTHON, [path.join(ROOT, 'scripts/make_dosna_fixture.py'), scratch.path, 'frompy']);
    const con = await connection('frompy', { create: false }).connect();
    expect(await con.listDatasets()).toEqual(['f64', 'vol']);
    const ds = await con.getDataset('vol');
    expect(ds.shape).toEqual([5, 7, 3]);
    expect(ds.dtype).toBe('int16');
    expect(ds.chunkSize).toEqual([2, 3, 3]);
    expect(ds.fillValue).toBe(-7);
    expect((await ds.storedChunks()).length).toBe(3 * 3 * 1 - 1);
    const got = (await ds.get()).data as Int16Array;
    for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) for (let k = 0; k < 3; k++) {
      const inMissing = i >= 2 && i < 4 && j >= 3 && j < 6; // chunk (1, 1, 0)
      expect(got[(i * 7 + j) * 3 + k]).toBe(inMissing ? -7 : (i * 7 + j) * 3 + k - 50);
    }
    const f = await con.getDataset('f64');
    expect(f.dtype).toBe('float64');
    expect(Number.isNaN(f.fillValue)).toBe(true);
    const fv = (await f.get()).data as Float64Array;
    expect(fv[0]).toBe(1.25);
    expect(fv[1]).toBe(-2.5);
    expect(Number.isNaN(fv[2]) && Number.isNaN(fv[3])).toBe(true);
    // We can write into the h5py folder, and h5py reads it.
    await ds.set([4, 6, 2], 1234);
    await con.disconnect();
    expect(python(`
import h5py, sys, os
print(h5py.File(os.path.join(sys.argv[1], 'frompy', 'vol', 'chunk_2_2_0.h5'), 'r')['data'][0, 0, 2])
`, scratch.path).trim()).toBe('1234');
  });
});

const EXTREMES: Record<DType, { values: (number | bigint)[]; fill: number | bigint }> = {
  int8: { values: [-128, 127, 0, -1], fill: -128 },
  int16: { values: [-32768, 32767, 0, -1], fill: 32767 },
  int32: { values: [-2147483648, 2147483647, 0, -1], fill: -2147483648 },
  int64: { values: [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n], fill: -(2n ** 63n) },
  uint8: { values: [0, 255, 1, 254], fill: 255 },
  uint16: { values: [0, 65535, 1, 65534], fill: 65535 },
  uint32: { values: [0, 4294967295, 1, 4294967294], fill: 4294967295 },
  uint64: { values: [0n, 2n ** 64n - 1n, 1n, 2n ** 64n - 2n], fill: 2n ** 64n - 1n },
  float32: { values: [-3.4028234663852886e38, 1.401298464324817e-45, -0, Infinity], fill: -Infinity },
  float64: { values: [Number.MAX_VALUE, Number.MIN_VALUE, -0, -Infinity], fill: NaN },
};

describe('hdf5 backend: dtypes', () => {
  for (const fastPath of [true, false]) {
    it(`round-trips every dtype through files, extremes and fill values (fastPath ${fastPath})`, async () => {
      const name = `dtypes-${fastPath}`;
      const con = await connection(name, { fastPath }).connect();
      for (const dtype of DTYPES) {
        const { values, fill } = EXTREMES[dtype];
        const ds = await con.createDataset(dtype, { shape: [3, 3], dtype, chunkSize: [2, 2], fillValue: fill });
        for (let i = 0; i < values.length; i++) await ds.set([0, i % 3 === i ? i : 2], values[i]);
      }
      await con.disconnect();
      const re = await connection(name, { fastPath: !fastPath }).connect();
      for (const dtype of DTYPES) {
        const { values, fill } = EXTREMES[dtype];
        const ds = await re.getDataset(dtype);
        expect(ds.dtype).toBe(dtype);
        expect(Object.is(ds.fillValue, fill) || (Number.isNaN(fill as number) && Number.isNaN(ds.fillValue as number))).toBe(true);
        const data = (await ds.get()).data;
        const expected = [values[0], values[1], values[3], fill, fill, fill, fill, fill, fill];
        const seen = [...data];
        for (let i = 0; i < 9; i++) {
          if (typeof expected[i] === 'number' && Number.isNaN(expected[i])) expect(Number.isNaN(seen[i] as number)).toBe(true);
          else expect(Object.is(seen[i], expected[i]), `${dtype}[${i}] = ${String(seen[i])}, expected ${String(expected[i])}`).toBe(true);
        }
      }
      await re.disconnect();
      // h5py sees the same extremes and fill values.
      const out = JSON.parse(python(`
import h5py, json, os, sys
d = os.path.join(sys.argv[1], sys.argv[2])
res = {}
for name in sorted(os.listdir(d)):
    m = h5py.File(os.path.join(d, name, 'dataset.h5'), 'r')
    c = h5py.File(os.path.join(d, name, 'chunk_0_0.h5'), 'r')['data']
    res[name] = {'dtype': m.attrs['dtype'], 'fill': repr(m.attrs['fillvalue'].item()), 'fill_dtype': m.attrs['fillvalue'].dtype.str,
                 'chunk_dtype': c.dtype.str, 'row': [repr(v) for v in c[0].tolist()]}
print(json.dumps(res))
`, scratch.path, name));
      expect(out.int64).toEqual({ dtype: '<i8', fill: '-9223372036854775808', fill_dtype: '<i8', chunk_dtype: '<i8', row: ['-9223372036854775808', '9223372036854775807'] });
      expect(out.uint64).toEqual({ dtype: '<u8', fill: '18446744073709551615', fill_dtype: '<u8', chunk_dtype: '<u8', row: ['0', '18446744073709551615'] });
      expect(out.float64.fill).toBe('nan');
      expect(out.float32.fill).toBe('-inf');
      expect(out.uint8).toMatchObject({ dtype: '|u1', chunk_dtype: '|u1' });
      expect(out.int8).toMatchObject({ dtype: '|i1', fill: '-128' });
    }, 60_000);
  }
});

describe('hdf5 backend: options and errors', () => {
  it('compresses with gzip that h5py reads without plugins, and reports it in the metadata', async () => {
    const con = await connection('gz').connect();
    const ds = await con.createDataset('g', { shape: [50, 40], dtype: 'int32', chunkSize: [25, 40], fillValue: -1, compression: 'gzip', compressionLevel: 6 });
    const values = Int32Array.from({ length: 2000 }, (_, i) => i % 17);
    await ds.set(undefined, dn.ndarray(values, [50, 40]));
    expect((await con.store.readMeta('g'))?.meta.compression).toEqual({ codec: 'gzip', level: 6, shuffle: false });
    expect([...((await (await con.getDataset('g')).get()).data as Int32Array)]).toEqual([...values]);
    const size = fs.statSync(path.join(scratch.path, 'gz', 'g', 'chunk_0_0.h5')).size;
    expect(size).toBeLessThan(25 * 40 * 4);
    await con.disconnect();
    const out = JSON.parse(python(`
import h5py, json, os, sys
c = h5py.File(os.path.join(sys.argv[1], 'gz', 'g', 'chunk_1_0.h5'), 'r')['data']
m = h5py.File(os.path.join(sys.argv[1], 'gz', 'g', 'dataset.h5'), 'r')
print(json.dumps({'compression': c.compression, 'level': c.compression_opts, 'sum': int(c[...].sum()), 'first': c[0, :5].tolist(),
                  'attr': m.attrs['compression'], 'attr_level': int(m.attrs['compression_level'])}))
`, scratch.path));
    expect(out.compression).toBe('gzip');
    expect(out.level).toBe(6);
    expect(out.first).toEqual([...values.subarray(1000, 1005)]);
    expect(out.sum).toBe(values.subarray(1000).reduce((a, b) => a + b, 0));
    expect(out.attr).toBe('gzip');
    expect(out.attr_level).toBe(6);
  });

  it("commit: 'exchange' swaps new chunk files in (new inodes, nothing left beside them, h5py reads them); other modes are refused", async () => {
    // The native swap itself: two files trade names; with no second file there is nothing to swap.
    const native = nativeModule()!;
    const [a, b] = ['swap-a', 'swap-b'].map((n) => path.join(scratch.path, n));
    fs.writeFileSync(a, 'A');
    fs.writeFileSync(b, 'B');
    expect(await native.exchangeFiles(a, b)).toBe(true);
    expect([fs.readFileSync(a, 'utf8'), fs.readFileSync(b, 'utf8')]).toEqual(['B', 'A']);
    expect(await native.exchangeFiles(a, path.join(scratch.path, 'swap-missing'))).toBe(false);
    await expect(native.exchangeFiles(path.join(scratch.path, 'no-such-folder', 'x'), path.join(scratch.path, 'no-such-folder', 'y'))).resolves.toBe(false);
    fs.rmSync(a);
    fs.rmSync(b);

    // Commits in one native call swap in the same call (test/hdf5-files.test.ts); commits through
    // named files (where O_TMPFILE or extended attributes are missing) swap with exchangeFiles.
    const commits = vi.spyOn(native, 'commitNewFile');
    try {
      const con = await connection('exchanged', { commit: 'exchange' }).connect();
      const ds = await con.createDataset('x', { shape: [8, 8], dtype: 'float32', chunkSize: [4, 4] });
      await ds.set(undefined, 1); // new chunk files: renamed in, nothing to swap with
      const file = path.join(scratch.path, 'exchanged', 'x', 'chunk_0_0.h5');
      const before = fs.statSync(file).ino;
      const counts = native.commitCounts();
      await ds.set([s(1, 3), s(1, 3)], 7); // partial writes of one chunk: merged and swapped in
      await ds.flush();
      expect(native.commitCounts()).toEqual({ renamed: counts.renamed, swapped: counts.swapped + 1 });
      expect(fs.statSync(file).ino).not.toBe(before);
      expect(commits).toHaveBeenCalled();
      expect(commits.mock.calls.map((call) => call[8])).toEqual(commits.mock.calls.map(() => 'exchange'));
      expect(typeof (await commits.mock.results.at(-1)!.value)).toBe('string');
      expect(Array.from((await ds.get([1, s(0, 4)])).data as Float32Array)).toEqual([1, 7, 7, 1]);
      expect(fs.readdirSync(path.dirname(file)).filter((n) => !/^chunk_\d+_\d+\.h5$|^dataset\.h5$/.test(n)), 'left beside the chunks').toEqual([]);
      await con.disconnect();
      const rows = JSON.parse(python(`
import h5py, json, sys
print(json.dumps(h5py.File(sys.argv[1], 'r')['data'][1].tolist()))
`, file));
      expect(rows).toEqual([1, 7, 7, 1]);
    } finally {
      commits.mockRestore();
    }
    for (const commit of ['fast', true, '']) {
      await expect(dn.connect('exchanged', { backend: 'hdf5', directory: scratch.path, commit })).rejects.toThrow(dn.OptionError);
    }
  });

  it("commit: 'auto' (the default) swaps chunk files in only where a rename orders nothing: an ext4 without a journal", async () => {
    const journal = expectedRenameOrdersData(scratch.path);
    expect(renameOrdersData(scratch.path)).toBe(journal);
    expect(resolveCommitMode('auto', scratch.path)).toBe(journal === false ? 'exchange' : 'rename');
    expect(resolveCommitMode('rename', scratch.path)).toBe('rename');
    expect(resolveCommitMode('exchange', scratch.path)).toBe('exchange');
    if (fs.existsSync('/dev/shm')) {
      expect(renameOrdersData('/dev/shm')).toBeUndefined(); // tmpfs: not ext4, so renamed as before
      expect(resolveCommitMode('auto', '/dev/shm')).toBe('rename');
    }
    expect(renameOrdersData(path.join(scratch.path, 'no-such-folder'))).toBeUndefined();

    const commits = vi.spyOn(nativeModule()!, 'commitNewFile');
    try {
      const con = await connection('auto-commit').connect();
      const ds = await con.createDataset('x', { shape: [8, 8], dtype: 'float32', chunkSize: [4, 4] });
      await ds.set(undefined, 1);
      await ds.set([s(1, 3), s(1, 3)], 7);
      await ds.flush();
      expect(new Set(commits.mock.calls.map((call) => call[8]))).toEqual(new Set([journal === false ? 'exchange' : 'rename']));
      expect(Array.from((await ds.get([1, s(0, 4)])).data as Float32Array)).toEqual([1, 7, 7, 1]);
      await con.disconnect();
    } finally {
      commits.mockRestore();
    }
  });

  it('refuses bad dataset options', async () => {
    const con = await connection('badopts').connect();
    await expect(con.createDataset('a', { shape: [2], compression: 'lzf' as never })).rejects.toThrow(/compression must be one of/);
    await expect(con.createDataset('a', { shape: [2], options: { compression: 'gzip' } })).rejects.toThrow(/give compression to createDataset itself/);
    await expect(con.createDataset('b', { shape: [2], compression: 'gzip', compressionLevel: 11 })).rejects.toThrow(/compressionLevel/);
    await expect(con.createDataset('c', { shape: [2], options: { shuffle: true } })).rejects.toThrow(dn.OptionError);
    expect(await con.listDatasets()).toEqual([]);
    await con.disconnect();
  });

  it('rejects invalid connection and dataset names with InvalidNameError', async () => {
    for (const bad of ['..', '.', 'a/b', '', 'nul\0byte']) {
      await expect(dn.connection(bad, { backend: 'hdf5', directory: scratch.path }).connect()).rejects.toThrow(dn.InvalidNameError);
    }
    const con = await connection('names').connect();
    for (const bad of ['..', 'a/../b', 'a//b', 'x\\y', '', 'nul\0byte', '.dosna-group.h5']) {
      await expect(con.createDataset(bad, { shape: [2] })).rejects.toThrow(dn.InvalidNameError);
    }
    expect(fs.readdirSync(path.join(scratch.path, 'names'))).toEqual([]);
    await con.disconnect();
  });

  it('fails to connect to a missing folder with a ConnectionError naming the path; create: true makes it', async () => {
    const missing = path.join(scratch.path, 'nowhere');
    const con = dn.connection('conn', { backend: 'hdf5', directory: missing });
    const error = await con.connect().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(dn.ConnectionError);
    expect((error as Error).message).toContain(path.join(missing, 'conn'));
    const made = await dn.connection('conn', { backend: 'hdf5', directory: missing, create: true }).connect();
    expect(fs.statSync(path.join(missing, 'conn')).isDirectory()).toBe(true);
    await made.disconnect();
    expect(() => dn.connection('conn', { backend: 'hdf5', directory: scratch.path, bogus: 1 })).not.toThrow();
    await expect(dn.connection('conn', { backend: 'hdf5', directory: scratch.path, bogus: 1 }).connect()).rejects.toThrow(/the hdf5 backend: unknown option "bogus"; it takes directory, create, fastPath/);
  });

  for (const damage of ['garbage', 'truncated']) {
    it(`names the file of a ${damage} chunk and still reads the others`, async () => {
      const con = await connection(`corrupt-${damage}`).connect();
      const ds = await con.createDataset('d', { shape: [4, 4], dtype: 'float64', chunkSize: [2, 4], fillValue: 0 });
      await ds.set(undefined, 2.5);
      const file = path.join(scratch.path, `corrupt-${damage}`, 'd', 'chunk_1_0.h5');
      if (damage === 'garbage') fs.writeFileSync(file, 'this is not an HDF5 file');
      else fs.truncateSync(file, fs.statSync(file).size - 10);
      const error = await ds.get([dn.s(2, 4)]).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(dn.DosnaError);
      const chain = [error, (error as Error).cause].filter(Boolean) as Error[];
      const corrupt = chain.find((e) => e instanceof CorruptChunkError) as CorruptChunkError | undefined;
      expect(corrupt?.file ?? '', String(error)).toBe(file);
      expect(chain.map((e) => e.message).join(' ')).toContain(file);
      expect([...((await ds.get([dn.s(0, 2)])).data as Float64Array)]).toEqual(Array(8).fill(2.5));
      // Still healthy afterwards: rewriting the damaged chunk repairs it.
      await ds.set([dn.s(2, 4)], 7);
      expect([...((await ds.get()).data as Float64Array)]).toEqual([...Array(8).fill(2.5), ...Array(8).fill(7)]);
      await con.disconnect();
    });
  }

  it('lists, checks and deletes chunks and datasets; temporary files are not chunks', async () => {
    const con = await connection('admin').connect();
    const ds = await con.createDataset('d', { shape: [4, 4], dtype: 'uint8', chunkSize: [2, 2] });
    await ds.set([0, 0], 1);
    await ds.set([3, 3], 1);
    const dir = path.join(scratch.path, 'admin', 'd');
    fs.writeFileSync(path.join(dir, 'chunk_0_1.h5.tmp-1-abcdef'), 'partial');
    expect((await ds.storedChunks()).map((c) => c.join()).sort()).toEqual(['0,0', '1,1']);
    expect(await ds.hasChunk([1, 1])).toBe(true);
    expect(await ds.delChunk([1, 1])).toBe(true);
    expect(await ds.delChunk([1, 1])).toBe(false);
    await expect(con.createDataset('d', { shape: [1] })).rejects.toThrow(dn.DatasetExistsError);
    fs.mkdirSync(path.join(scratch.path, 'admin', 'not-a-dataset'));
    expect(await con.listDatasets()).toEqual(['d']);
    await con.delDataset('d');
    expect(fs.existsSync(dir)).toBe(false);
    expect(await con.listDatasets()).toEqual([]);
    await expect(con.delDataset('d')).rejects.toThrow(dn.DatasetNotFoundError);
    await con.disconnect();
  });
});
