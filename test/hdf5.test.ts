/**
 * The hdf5 backend against real files: what we write h5py reads, what h5py writes in DosNa's
 * layout we read, every dtype, gzip, bad names, a missing folder, a corrupt chunk, and a
 * writer killed with SIGKILL mid-load.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { DTYPES, type DType } from '../src/dtypes.js';
import { CorruptChunkError } from '../src/errors.js';
import { nativeModule } from '../src/native.js';
import { ensureDebianPackages, python, PYTHON } from './support/python.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let tmp: string;

function connection(name: string, options: Record<string, unknown> = {}) {
  return dn.connection(name, { backend: 'hdf5', directory: tmp, create: true, ...options });
}

beforeAll(() => {
  ensureDebianPackages('python3-h5py', 'python3-numpy');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-hdf5-test-'));
}, 600_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

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
`, tmp));
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
    execFileSync(PYTHON, [path.join(ROOT, 'scripts/make_dosna_fixture.py'), tmp, 'frompy']);
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
`, tmp).trim()).toBe('1234');
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
`, tmp, name));
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
    const size = fs.statSync(path.join(tmp, 'gz', 'g', 'chunk_0_0.h5')).size;
    expect(size).toBeLessThan(25 * 40 * 4);
    await con.disconnect();
    const out = JSON.parse(python(`
import h5py, json, os, sys
c = h5py.File(os.path.join(sys.argv[1], 'gz', 'g', 'chunk_1_0.h5'), 'r')['data']
m = h5py.File(os.path.join(sys.argv[1], 'gz', 'g', 'dataset.h5'), 'r')
print(json.dumps({'compression': c.compression, 'level': c.compression_opts, 'sum': int(c[...].sum()), 'first': c[0, :5].tolist(),
                  'attr': m.attrs['compression'], 'attr_level': int(m.attrs['compression_level'])}))
`, tmp));
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
    const [a, b] = ['swap-a', 'swap-b'].map((n) => path.join(tmp, n));
    fs.writeFileSync(a, 'A');
    fs.writeFileSync(b, 'B');
    expect(await native.exchangeFiles(a, b)).toBe(true);
    expect([fs.readFileSync(a, 'utf8'), fs.readFileSync(b, 'utf8')]).toEqual(['B', 'A']);
    expect(await native.exchangeFiles(a, path.join(tmp, 'swap-missing'))).toBe(false);
    await expect(native.exchangeFiles(path.join(tmp, 'no-such-folder', 'x'), path.join(tmp, 'no-such-folder', 'y'))).resolves.toBe(false);
    fs.rmSync(a);
    fs.rmSync(b);

    const swaps = vi.spyOn(native, 'exchangeFiles');
    try {
      const con = await connection('exchanged', { commit: 'exchange' }).connect();
      const ds = await con.createDataset('x', { shape: [8, 8], dtype: 'float32', chunkSize: [4, 4] });
      await ds.set(undefined, 1); // new chunk files: renamed in, nothing to swap with
      const file = path.join(tmp, 'exchanged', 'x', 'chunk_0_0.h5');
      const before = fs.statSync(file).ino;
      await ds.set([s(1, 3), s(1, 3)], 7); // partial writes of one chunk: merged and swapped in
      await ds.flush();
      expect(fs.statSync(file).ino).not.toBe(before);
      expect(swaps).toHaveBeenCalled();
      expect(await swaps.mock.results.at(-1)!.value).toBe(true);
      expect(Array.from((await ds.get([1, s(0, 4)])).data as Float32Array)).toEqual([1, 7, 7, 1]);
      expect(fs.readdirSync(path.dirname(file)).filter((n) => !/^chunk_\d+_\d+\.h5$|^dataset\.h5$/.test(n)), 'left beside the chunks').toEqual([]);
      await con.disconnect();
      const rows = JSON.parse(python(`
import h5py, json, sys
print(json.dumps(h5py.File(sys.argv[1], 'r')['data'][1].tolist()))
`, file));
      expect(rows).toEqual([1, 7, 7, 1]);
    } finally {
      swaps.mockRestore();
    }
    for (const commit of ['fast', true, '']) {
      await expect(dn.connect('exchanged', { backend: 'hdf5', directory: tmp, commit })).rejects.toThrow(dn.OptionError);
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
      await expect(dn.connection(bad, { backend: 'hdf5', directory: tmp }).connect()).rejects.toThrow(dn.InvalidNameError);
    }
    const con = await connection('names').connect();
    for (const bad of ['..', 'a/../b', 'a//b', 'x\\y', '', 'nul\0byte', '.dosna-group.h5']) {
      await expect(con.createDataset(bad, { shape: [2] })).rejects.toThrow(dn.InvalidNameError);
    }
    expect(fs.readdirSync(path.join(tmp, 'names'))).toEqual([]);
    await con.disconnect();
  });

  it('fails to connect to a missing folder with a ConnectionError naming the path; create: true makes it', async () => {
    const missing = path.join(tmp, 'nowhere');
    const con = dn.connection('conn', { backend: 'hdf5', directory: missing });
    const error = await con.connect().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(dn.ConnectionError);
    expect((error as Error).message).toContain(path.join(missing, 'conn'));
    const made = await dn.connection('conn', { backend: 'hdf5', directory: missing, create: true }).connect();
    expect(fs.statSync(path.join(missing, 'conn')).isDirectory()).toBe(true);
    await made.disconnect();
    expect(() => dn.connection('conn', { backend: 'hdf5', directory: tmp, bogus: 1 })).not.toThrow();
    await expect(dn.connection('conn', { backend: 'hdf5', directory: tmp, bogus: 1 }).connect()).rejects.toThrow(/the hdf5 backend: unknown option "bogus"; it takes directory, create, fastPath/);
  });

  for (const damage of ['garbage', 'truncated']) {
    it(`names the file of a ${damage} chunk and still reads the others`, async () => {
      const con = await connection(`corrupt-${damage}`).connect();
      const ds = await con.createDataset('d', { shape: [4, 4], dtype: 'float64', chunkSize: [2, 4], fillValue: 0 });
      await ds.set(undefined, 2.5);
      const file = path.join(tmp, `corrupt-${damage}`, 'd', 'chunk_1_0.h5');
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
    const dir = path.join(tmp, 'admin', 'd');
    fs.writeFileSync(path.join(dir, 'chunk_0_1.h5.tmp-1-abcdef'), 'partial');
    expect((await ds.storedChunks()).map((c) => c.join()).sort()).toEqual(['0,0', '1,1']);
    expect(await ds.hasChunk([1, 1])).toBe(true);
    expect(await ds.delChunk([1, 1])).toBe(true);
    expect(await ds.delChunk([1, 1])).toBe(false);
    await expect(con.createDataset('d', { shape: [1] })).rejects.toThrow(dn.DatasetExistsError);
    fs.mkdirSync(path.join(tmp, 'admin', 'not-a-dataset'));
    expect(await con.listDatasets()).toEqual(['d']);
    await con.delDataset('d');
    expect(fs.existsSync(dir)).toBe(false);
    expect(await con.listDatasets()).toEqual([]);
    await expect(con.delDataset('d')).rejects.toThrow(dn.DatasetNotFoundError);
    await con.disconnect();
  });
});

describe('hdf5 backend: crash safety', () => {
  it('leaves every chunk absent, all-old or all-new after SIGKILL mid-load', async () => {
    const name = 'killed';
    const con = await connection(name).connect();
    await con.createDataset('k', { shape: [64, 64, 64], dtype: 'float32', chunkSize: [16, 16, 16] });
    await con.disconnect();
    const child = spawn('npx', ['tsx', path.join(ROOT, 'test/fixtures/hdf5-load-loop.ts'), tmp, name, 'k'], {
      cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // Let it finish a few loads, then kill it (and npx's process group) a moment into the next.
    const deadline = Date.now() + 60_000;
    while (!/loaded 2\n/.test(output)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the loader did not start: ${output}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 3 + Math.random() * 10));
    process.kill(-child.pid!, 'SIGKILL');
    await exited;

    const re = await connection(name).connect();
    const k = await re.getDataset('k');
    const meta = (await re.store.readMeta('k'))!.meta;
    const stored = await k.storedChunks();
    expect(stored.length).toBeLessThanOrEqual(64);
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) for (let l = 0; l < 4; l++) {
      const bytes = await re.store.readChunk(meta, [i, j, l]);
      if (!bytes) continue;
      const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      expect([11, 22]).toContain(values[0]);
      expect(values.every((v) => v === values[0]), `chunk ${i},${j},${l} is torn`).toBe(true);
      seen.add(values[0]);
    }
    expect(seen.size).toBeGreaterThan(0);
    await re.disconnect();
    // h5py, an independent reader, agrees: every chunk file is whole.
    const report = python(`
import h5py, os, sys, numpy as np
d = os.path.join(sys.argv[1], sys.argv[2], 'k')
bad = []
n = 0
for f in os.listdir(d):
    if not (f.startswith('chunk_') and f.endswith('.h5')):
        continue
    n += 1
    a = h5py.File(os.path.join(d, f), 'r')['data'][...]
    if a.shape != (16, 16, 16) or not (np.all(a == 11) or np.all(a == 22)):
        bad.append(f)
print(n, len(bad))
`, tmp, name).trim();
    const [files, bad] = report.split(' ').map(Number);
    expect(files).toBe(stored.length);
    expect(bad).toBe(0);
  }, 120_000);
});

describe('hdf5 backend: dataset identity and what crashed writers leave', () => {
  /** A process id that is certainly not running now (a child that exited and was reaped). */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.once('exit', resolve));
    return child.pid!;
  }

  it('a folder that lost its dataset.h5 is replaced whole when the dataset is created again: no old chunk shows', async () => {
    const con = await connection('identity').connect();
    try {
      const ds = await con.createDataset('v', { shape: [4, 4], dtype: 'int16', chunkSize: [2, 2], fillValue: -7 });
      await ds.set(undefined, 3);
      const folder = path.join(tmp, 'identity', 'v');
      fs.rmSync(path.join(folder, 'dataset.h5'));
      expect(fs.readdirSync(folder).filter((n) => n.startsWith('chunk_'))).toHaveLength(4);
      expect(await con.hasDataset('v')).toBe(false);
      const again = await con.createDataset('v', { shape: [4, 4], dtype: 'int16', chunkSize: [2, 2], fillValue: -7 });
      expect(Array.from((await again.get()).data as Int16Array)).toEqual(new Array(16).fill(-7));
      expect(fs.readdirSync(folder)).toEqual(['dataset.h5']);
      expect(fs.readdirSync(path.join(tmp, 'identity')).filter((n) => n.startsWith('.'))).toEqual([]); // nothing set aside is left
    } finally {
      await con.disconnect();
    }
  });

  it('a dataset whose dataset.h5 is corrupt cannot be opened (CorruptChunkError) but can be deleted', async () => {
    const con = await connection('corrupt-meta').connect();
    try {
      await con.createDataset('bad', { shape: [4], chunkSize: [2] });
      fs.writeFileSync(path.join(tmp, 'corrupt-meta', 'bad', 'dataset.h5'), 'not an HDF5 file');
      await expect(con.getDataset('bad')).rejects.toBeInstanceOf(CorruptChunkError);
      await con.delDataset('bad');
      expect(fs.existsSync(path.join(tmp, 'corrupt-meta', 'bad'))).toBe(false);
      await expect(con.delDataset('bad')).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
    } finally {
      await con.disconnect();
    }
  });

  it('a stale handle after a delete writes no file at all', async () => {
    const con = await connection('stale-files').connect();
    try {
      const ds = await con.createDataset('gone', { shape: [4, 4], chunkSize: [2, 2] });
      await ds.set([0, 0], 1);
      await (await con.getDataset('gone')).delete();
      await expect(ds.set([3, 3], 2)).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      await expect(ds.load(dn.ndarray(new Float32Array(16), [4, 4]))).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      await con.flush();
      expect(fs.readdirSync(path.join(tmp, 'stale-files'))).toEqual([]);
    } finally {
      await con.disconnect();
    }
  });

  it('makes the samples of a chunk layout in the dataset folder, as temporary files a sweep removes after a kill', async () => {
    const { sampleNames } = await import('../src/backends/hdf5/template.js');
    const { isScratchName } = await import('../src/backends/hdf5/locks.js');
    const dir = fs.mkdtempSync(path.join(tmp, 'samples-'));
    const names = sampleNames(dir);
    expect(names).toHaveLength(3);
    for (const name of names) {
      expect(path.dirname(name)).toBe(dir);
      expect(isScratchName(path.basename(name)), name).toBe(true);
    }
    expect(new Set(names).size).toBe(3);
    fs.rmSync(dir, { recursive: true });
  });

  it('sweeps temporary files, locks and half-made folders of dead writers; waits for a live lock', async () => {
    const { HOST } = await import('../src/backends/hdf5/locks.js');
    const con = await connection('sweep').connect();
    try {
      const ds = await con.createDataset('s', { shape: [4, 4], dtype: 'float32', chunkSize: [2, 2] });
      const folder = path.join(tmp, 'sweep', 's');
      const dead = await deadPid();
      const tmpFile = path.join(folder, `chunk_0_0.h5.tmp-${HOST}-${dead}-abc-1`);
      fs.writeFileSync(tmpFile, 'half a chunk');
      // A lock is a hard link of its writer's temporary file: one of a dead writer, and one of
      // a writer on another host, two hours old (its liveness cannot be checked from here).
      const deadTmp = path.join(folder, `chunk_1_1.h5.tmp-${HOST}-${dead}-abc-2`);
      fs.writeFileSync(deadTmp, 'new chunk');
      fs.linkSync(deadTmp, path.join(folder, 'chunk_1_1.h5.lock'));
      const foreignTmp = path.join(folder, 'chunk_1_0.h5.tmp-ffffffff-1-abc-3');
      fs.writeFileSync(foreignTmp, 'new chunk');
      fs.utimesSync(foreignTmp, new Date(Date.now() - 7200_000), new Date(Date.now() - 7200_000));
      fs.linkSync(foreignTmp, path.join(folder, 'chunk_1_0.h5.lock'));
      const halfMade = path.join(tmp, 'sweep', `.x.creating-${HOST}-${dead}-abcdef`);
      fs.mkdirSync(halfMade);
      // The first write to the dataset sweeps its folder; each stale lock is broken.
      await ds.set([s(0, 4), s(0, 4)], 1);
      await ds.flush();
      expect(fs.readdirSync(folder).sort()).toEqual(['chunk_0_0.h5', 'chunk_0_1.h5', 'chunk_1_0.h5', 'chunk_1_1.h5', 'dataset.h5']);
      expect(await con.listDatasets()).toEqual(['s']);
      expect(fs.existsSync(halfMade)).toBe(false);

      // A live owner's lock is waited for, then the write goes through.
      const live = path.join(folder, 'chunk_0_0.h5.lock');
      const liveTmp = path.join(folder, `chunk_0_0.h5.tmp-${HOST}-${process.pid}-live-1`);
      fs.writeFileSync(liveTmp, 'being committed');
      fs.linkSync(liveTmp, live);
      let done = false;
      const writing = ds.getChunk([0, 0]).setData(5).then(() => { done = true; });
      await new Promise((r) => setTimeout(r, 150));
      expect(done).toBe(false);
      fs.rmSync(live);
      fs.rmSync(liveTmp);
      await writing;
      expect(Array.from((await ds.get([0, s(0, 2)])).data as Float32Array)).toEqual([5, 5]);
    } finally {
      await con.disconnect();
    }
  });

  it('h5py reads the dataset identity attribute; Python DosNa\'s attributes are unchanged', async () => {
    const con = await connection('uid').connect();
    const ds = await con.createDataset('u', { shape: [3], dtype: 'uint8', chunkSize: [3] });
    await con.disconnect();
    const out = JSON.parse(python(`
import h5py, json, os, sys
with h5py.File(os.path.join(sys.argv[1], 'uid', 'u', 'dataset.h5'), 'r') as m:
    print(json.dumps({k: (m.attrs[k].decode() if isinstance(m.attrs[k], bytes) else str(m.attrs[k])) for k in m.attrs}))
`, tmp));
    expect(out.dosna_uid).toBe(ds.meta.uid);
    expect(Object.keys(out).sort()).toEqual(['chunk_grid', 'chunk_size', 'dosna_uid', 'dtype', 'fillvalue', 'shape']);
  });

  it('h5py reads the attributes of datasets, groups and the root, and a resized shape; dosna reads what h5py adds', async () => {
    const con = await connection('meta').connect();
    const ds = await con.createDataset('scan1/vol', { shape: [4, 6], dtype: 'uint16', chunkSize: [2, 3] });
    await ds.attrs.update({
      units: 'µm', voxel: 0.65, frames: 1800, big: 2n ** 63n + 5n, angles: new Float32Array([0, 0.5]),
      flags: new Uint8Array([1, 0]), json: { energy: 12.4, tags: ['a'] }, on: true,
    });
    await (await con.getGroup('scan1')).attrs.set('sample', 'ruby');
    await con.attrs.set('facility', 'DLS');
    await ds.set([s()], 7);
    await ds.resize([3, 8]);
    await con.disconnect();
    const root = path.join(tmp, 'meta');
    const out = JSON.parse(python(`
import h5py, json, os, sys
root = sys.argv[1]
def attrs(f):
    with h5py.File(f, 'r') as h:
        return {k: (v.tolist() if hasattr(v, 'tolist') else v) for k, v in h.attrs.items()}, {k: h.attrs[k].dtype.str if hasattr(h.attrs[k], 'dtype') else type(h.attrs[k]).__name__ for k in h.attrs}
ds, types = attrs(os.path.join(root, 'scan1', 'vol', 'dataset.h5'))
group, _ = attrs(os.path.join(root, 'scan1', '.dosna-group.h5'))
top, _ = attrs(os.path.join(root, '.dosna-group.h5'))
with h5py.File(os.path.join(root, 'scan1', 'vol', 'dataset.h5'), 'a') as h:
    h.attrs['added_by_h5py'] = 3
    h.attrs['pixel'] = [1.5, 2.5]
    h.attrs['note'] = 'from python'
print(json.dumps({'ds': ds, 'types': types, 'group': group, 'top': top}))
`, root));
    expect(out.ds).toMatchObject({ units: 'µm', voxel: 0.65, frames: 1800, big: Number(2n ** 63n + 5n), angles: [0, 0.5], flags: [1, 0], shape: [3, 8], chunk_grid: [2, 3] });
    expect(JSON.parse(out.ds.json)).toEqual({ energy: 12.4, tags: ['a'] });
    expect(out.types).toMatchObject({ frames: '<i8', voxel: '<f8', big: '<u8', angles: '<f4', flags: '|u1' });
    expect(out.group).toEqual({ sample: 'ruby' });
    expect(out.top).toEqual({ facility: 'DLS' });
    // Python DosNa's own attributes are where it reads them, and dosna reads h5py's additions.
    const again = await connection('meta').connect();
    try {
      const vol = await again.getDataset('scan1/vol');
      expect(vol.shape).toEqual([3, 8]);
      expect(Array.from((await vol.get([2])).data as Uint16Array)).toEqual([7, 7, 7, 7, 7, 7, 0, 0]);
      const attrs = await vol.attrs.toObject();
      expect(attrs).toMatchObject({ added_by_h5py: 3, note: 'from python', big: 2n ** 63n + 5n, json: { energy: 12.4, tags: ['a'] }, on: true, frames: 1800 });
      expect(attrs.pixel).toStrictEqual(new Float64Array([1.5, 2.5]));
      expect(Object.keys(attrs)).not.toContain('shape');
    } finally {
      await again.disconnect();
    }
  });
});
