/**
 * The zarr backend against other zarr implementations, both ways (issue 17): zarr-python 2
 * (Debian's python3-zarr) for format 2, zarrita.js for format 3. What dosna writes they read,
 * values, fill values, attributes and groups included; what they write dosna reads, and its
 * engines run `map` with a halo over it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import FileSystemStore from '@zarrita/storage/fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as zarr from 'zarrita';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { ensureDebianPackages, python } from './support/python.js';
import { crc32c } from '../src/backends/zarr/sharding.js';
import { expectedAutoCommit } from './support/commit-mode.js';
import { nativeModule } from '../src/native.js';
import { SHARDED_EXPECTED, writeShardedArray } from './support/zarr-fixtures.js';

let tmp: string;

beforeAll(() => {
  ensureDebianPackages('python3-zarr', 'python3-numpy');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-zarr-test-'));
}, 600_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.round(Math.sin(i / 7) * 100) / 4);

describe('zarr v2 and zarr-python 2', () => {
  it('zarr-python reads what dosna writes: values, fill values, codecs, attributes, groups', async () => {
    await dn.withConnection('v2out', { backend: 'zarr', directory: tmp, create: true, format: 2 }, async (con) => {
      await con.attrs.set('facility', 'DLS');
      for (const [name, codec] of [['raw', {}], ['zstd', { compression: 'zstd', shuffle: true }], ['gzip', { compression: 'gzip' }], ['lz4', { compression: 'lz4', shuffle: true }]] as const) {
        const ds = await con.createDataset(`scan/${name}`, { shape: [10, 12], dtype: 'float32', chunkSize: [4, 5], fillValue: -1, ...codec });
        await ds.set([s(0, 6)], dn.ndarray(ramp(72), [6, 12]));
        await ds.attrs.update({ units: 'mm', angles: new Float64Array([0, 0.5]) });
      }
      const big = await con.createDataset('big', { shape: [3], dtype: 'int64', fillValue: 2n ** 60n + 1n });
      await big.set([1], 5n);
    });
    const out = JSON.parse(python(`
import json, sys, zarr, numpy as np
g = zarr.open_group(sys.argv[1], mode='r')
res = {'facility': g.attrs['facility'], 'groups': sorted(g.group_keys()), 'scan': sorted(g['scan'].array_keys())}
for name in ('raw', 'zstd', 'gzip', 'lz4'):
    a = g['scan'][name]
    res[name] = {'sum': float(a[...].astype('f8').sum()), 'last_row': a[9].tolist(), 'fill': float(a.fill_value), 'units': a.attrs['units'], 'compressor': a.compressor.codec_id if a.compressor else None, 'filters': [f.codec_id for f in (a.filters or [])]}
res['big'] = [str(v) for v in g['big'][...].tolist()]
print(json.dumps(res))
`, path.join(tmp, 'v2out')));
    expect(out.facility).toBe('DLS');
    expect(out.groups).toEqual(['scan']);
    expect(out.scan).toEqual(['gzip', 'lz4', 'raw', 'zstd']);
    const expectedSum = ramp(72).reduce((a, b) => a + b, 0) - 48;
    for (const name of ['raw', 'zstd', 'gzip', 'lz4']) {
      expect(out[name].sum, name).toBeCloseTo(expectedSum, 3);
      expect(out[name].last_row).toEqual(Array(12).fill(-1));
      expect(out[name].fill).toBe(-1);
      expect(out[name].units).toBe('mm');
    }
    expect([out.raw.compressor, out.zstd.compressor, out.gzip.compressor, out.lz4.compressor]).toEqual([null, 'zstd', 'gzip', 'lz4']);
    expect(out.zstd.filters).toEqual(['shuffle']);
    expect(out.big).toEqual([String(2n ** 60n + 1n), '5', String(2n ** 60n + 1n)]);
  });

  it('dosna reads what zarr-python writes, and runs map with a halo over it', async () => {
    python(`
import sys, zarr, numpy as np
from numcodecs import Zstd, GZip, Shuffle
g = zarr.open_group(sys.argv[1], mode='w')
g.attrs['owner'] = 'python'
sub = g.create_group('scan')
a = sub.create_dataset('vol', shape=(20, 18), chunks=(8, 6), dtype='<f8', compressor=Zstd(level=2), filters=[Shuffle(elementsize=8)], fill_value=np.nan)
a[:15] = np.arange(15 * 18, dtype='f8').reshape(15, 18)
a.attrs['voxel'] = 0.5
b = g.create_dataset('counts', shape=(7,), chunks=(3,), dtype='<u2', compressor=GZip(level=5), fill_value=9)
b[:4] = [1, 2, 3, 4]
`, path.join(tmp, 'v2in'));
    await dn.withConnection('v2in', { backend: 'zarr', directory: tmp, format: 2 }, async (con) => {
      expect(await con.attrs.get('owner')).toBe('python');
      expect(await con.list()).toEqual([{ name: 'counts', kind: 'dataset' }, { name: 'scan', kind: 'group' }]);
      const vol = await con.getDataset('scan/vol');
      expect([vol.dtype, vol.compression, vol.shuffle, Number.isNaN(vol.fillValue as number)]).toEqual(['float64', 'zstd', true, true]);
      expect(await vol.attrs.toObject()).toEqual({ voxel: 0.5 });
      expect(Array.from((await vol.get([14, s(0, 3)])).data as Float64Array)).toEqual([252, 253, 254]);
      expect(Number.isNaN(((await vol.get([19, 0])).get() as number))).toBe(true);
      const counts = await con.getDataset('counts');
      expect(Array.from((await counts.get()).data as Uint16Array)).toEqual([1, 2, 3, 4, 9, 9, 9]);
      // The engines work on arrays others wrote: a 3-point mean along axis 1, halo 1.
      const mean = await vol.map((chunk: dn.NdArray, ctx: dn.ChunkContext) => {
        const [ny, nx] = chunk.shape;
        const h = ctx.halo[1];
        const out = new Float64Array((ny - 2 * ctx.halo[0]) * (nx - 2 * h));
        const w = nx - 2 * h;
        for (let y = ctx.halo[0]; y < ny - ctx.halo[0]; y++) {
          for (let x = h; x < nx - h; x++) out[(y - ctx.halo[0]) * w + (x - h)] = ((chunk.get(y, x - 1) as number) + (chunk.get(y, x) as number) + (chunk.get(y, x + 1) as number)) / 3;
        }
        return out;
      }, 'scan/mean', { halo: [0, 1] });
      expect(Array.from((await mean.get([2, s(5, 8)])).data as Float64Array)).toEqual([41, 42, 43]);
    });
    // And what dosna wrote into it, zarr-python reads.
    expect(JSON.parse(python(`
import json, sys, zarr
print(json.dumps(zarr.open_group(sys.argv[1], mode='r')['scan/mean'][2, 5:8].tolist()))
`, path.join(tmp, 'v2in')))).toEqual([41, 42, 43]);
  });
});

describe('zarr: what dosna does not read is refused by name', () => {
  it('Blosc (zarr-python 2\'s default compressor), Fortran order and bool arrays; a folder of the other format', async () => {
    python(`
import sys, zarr, numpy as np
g = zarr.open_group(sys.argv[1], mode='w')
g.create_dataset('blosc', shape=(4,), chunks=(2,), dtype='<f4')
g.create_dataset('fortran', shape=(4, 4), chunks=(2, 2), dtype='<f4', order='F', compressor=None)
g.create_dataset('flags', shape=(4,), chunks=(2,), dtype='|b1', compressor=None)
g.create_dataset('fine', shape=(4,), chunks=(2,), dtype='<i4', compressor=None)
`, path.join(tmp, 'v2odd'));
    await dn.withConnection('v2odd', { backend: 'zarr', directory: tmp, format: 2 }, async (con) => {
      await expect(con.getDataset('blosc')).rejects.toThrow(/unsupported compressor .*blosc/);
      await expect(con.getDataset('fortran')).rejects.toThrow(/order "F" is not supported/);
      await expect(con.getDataset('flags')).rejects.toBeInstanceOf(dn.DTypeError);
      expect(Array.from((await (await con.getDataset('fine')).get()).data as Int32Array)).toEqual([0, 0, 0, 0]);
    });
    await expect(dn.connect('v2odd', { backend: 'zarr', directory: tmp })).rejects.toThrow(/holds zarr format 2 metadata; connect with format: 2/);
    await expect(dn.connect('v2odd', { backend: 'zarr', directory: tmp, format: 4 })).rejects.toBeInstanceOf(dn.OptionError);
  });
});

describe('zarr v3 and zarrita.js', () => {
  it('zarrita reads what dosna writes: values, fill values, codecs, attributes, groups', async () => {
    await dn.withConnection('v3out', { backend: 'zarr', directory: tmp, create: true }, async (con) => {
      for (const [name, codec] of [['raw', {}], ['zstd', { compression: 'zstd' }], ['gzip', { compression: 'gzip', compressionLevel: 6 }]] as const) {
        const ds = await con.createDataset(`scan/${name}`, { shape: [10, 12], dtype: 'float32', chunkSize: [4, 5], fillValue: -1, ...codec });
        await ds.set([s(0, 6)], dn.ndarray(ramp(72), [6, 12]));
        await ds.attrs.set('units', 'mm');
      }
      await (await con.getGroup('scan')).attrs.set('sample', 'ruby');
    });
    const store = new FileSystemStore(path.join(tmp, 'v3out'));
    const group = await zarr.open(zarr.root(store).resolve('scan'), { kind: 'group' });
    expect(group.attrs).toEqual({ sample: 'ruby' });
    for (const name of ['raw', 'zstd', 'gzip']) {
      const arr = await zarr.open(zarr.root(store).resolve(`scan/${name}`), { kind: 'array' });
      expect(arr.attrs).toEqual({ units: 'mm', dosna_uid: expect.any(String) });
      const got = await zarr.get(arr, null);
      expect(got.shape).toEqual([10, 12]);
      expect(Array.from(got.data as Float32Array).slice(0, 72)).toEqual(Array.from(ramp(72)));
      expect(Array.from(got.data as Float32Array).slice(72)).toEqual(Array(48).fill(-1));
    }
  });

  it('dosna reads what zarrita writes (zstd, raw; fill values; groups) and writes into it', async () => {
    const store = new FileSystemStore(path.join(tmp, 'v3in'));
    const root = await zarr.create(zarr.root(store), { attributes: { owner: 'zarrita' } });
    await zarr.create(root.resolve('scan'), { attributes: {} });
    // zarrita encodes zstd but not gzip (it decodes both; the test above has it read our gzip).
    const codecs = { raw: [{ name: 'bytes', configuration: { endian: 'little' } }], zstd: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'zstd', configuration: { level: 1, checksum: false } }] };
    for (const [name, list] of Object.entries(codecs)) {
      const arr = await zarr.create(root.resolve(`scan/${name}`), { shape: [9, 7], chunkShape: [4, 4], dtype: 'int32', fillValue: -7, codecs: list as never, attributes: { made: name } });
      await zarr.set(arr, [zarr.slice(0, 5), null], { data: Int32Array.from({ length: 35 }, (_, i) => i), shape: [5, 7], stride: [7, 1] });
    }
    await dn.withConnection('v3in', { backend: 'zarr', directory: tmp }, async (con) => {
      expect(await con.attrs.get('owner')).toBe('zarrita');
      expect((await con.list('scan')).map((e) => e.name)).toEqual(['raw', 'zstd']);
      for (const name of ['raw', 'zstd']) {
        const ds = await con.getDataset(`scan/${name}`);
        expect(ds.compression).toBe(name === 'raw' ? null : name);
        expect(await ds.attrs.get('made')).toBe(name);
        const all = Array.from((await ds.get()).data as Int32Array);
        expect(all.slice(0, 35)).toEqual(Array.from({ length: 35 }, (_, i) => i));
        expect(all.slice(35)).toEqual(Array(28).fill(-7));
        await ds.set([8, s()], 100);
      }
    });
    for (const name of ['raw', 'zstd']) {
      const arr = await zarr.open(zarr.root(store).resolve(`scan/${name}`), { kind: 'array' });
      const row = await zarr.get(arr, [8, null]);
      expect(Array.from(row.data as Int32Array), name).toEqual(Array(7).fill(100));
    }
  });
});

describe('zarr v3 sharded arrays (sharding_indexed)', () => {
  it('computes CRC32C as the standard check value says', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('dosna reads a sharded array as zarrita does, maps over it, keeps it sharded when attributes change, and refuses to write it', async () => {
    const dir = path.join(tmp, 'sharded');
    writeShardedArray(dir);
    const expected = SHARDED_EXPECTED;
    // The fixture, read by zarrita.
    const arr = await zarr.open(zarr.root(new FileSystemStore(dir)).resolve('sharded'), { kind: 'array' });
    expect(Array.from((await zarr.get(arr, null)).data as Int32Array)).toEqual(expected);

    await dn.withConnection('sharded', { backend: 'zarr', directory: tmp }, async (con) => {
      const ds = await con.getDataset('sharded');
      expect([ds.dtype, ds.chunkSize, ds.fillValue, ds.compression]).toEqual(['int32', [8, 8], -5, null]);
      expect(Array.from((await ds.get()).data as Int32Array)).toEqual(expected);
      expect(Array.from((await ds.get([9, s(8, 12)])).data as Int32Array)).toEqual([908, 909, 910, 911]);
      const doubled = await ds.map((chunk: dn.NdArray) => Int32Array.from(chunk.data as Int32Array, (v) => 2 * v), 'doubled');
      expect(Array.from((await doubled.get()).data as Int32Array)).toEqual(expected.map((v) => 2 * v));
      const copy = await ds.clone('copy', { data: true });
      expect(Array.from((await copy.get()).data as Int32Array)).toEqual(expected);
      await ds.attrs.set('checked', true);
      await expect(ds.set([0, 0], 1)).rejects.toThrow(dn.OptionError);
      await expect(ds.apply((c: dn.NdArray) => c)).rejects.toThrow(/sharded zarr array/);
      await expect(ds.resize([12, 12])).rejects.toThrow(/sharded zarr array/);
      // Every other change is refused the same way, and none of them wrote anything.
      await expect(ds.load(dn.ndarray(new Int32Array(120), [10, 12]))).rejects.toThrow(/^load: .*sharded zarr array/);
      await expect(ds.clear()).rejects.toThrow(/^clear: .*sharded zarr array/);
      await expect(ds.append(new Int32Array(12))).rejects.toThrow(/^append: .*sharded zarr array/);
      await expect(ds.delChunk([0, 0])).rejects.toThrow(/^delChunk: .*sharded zarr array/);
      await expect(ds.getChunk([1, 1]).setData(0)).rejects.toThrow(/^set: .*sharded zarr array/);
      expect([ds.shape, (await ds.storedChunks()).length]).toEqual([[10, 12], 4]);
      expect(Array.from((await ds.get()).data as Int32Array)).toEqual(expected);
    });
    // Still sharded after the attribute change, and still what zarrita reads.
    const again = await zarr.open(zarr.root(new FileSystemStore(dir)).resolve('sharded'), { kind: 'array' });
    expect(again.attrs).toEqual({ made: 'by hand', checked: true });
    expect(Array.from((await zarr.get(again, null)).data as Int32Array)).toEqual(expected);

    // A damaged shard index is a CorruptChunkError, not wrong values.
    const shard = path.join(dir, 'sharded', 'c', '1', '1');
    const bytes = fs.readFileSync(shard);
    bytes[bytes.length - 10] ^= 0xff;
    fs.writeFileSync(shard, bytes);
    await dn.withConnection('sharded', { backend: 'zarr', directory: tmp }, async (con) => {
      await expect((await con.getDataset('sharded')).get([9, 9])).rejects.toThrow(dn.CorruptChunkError);
    });
  });
});

describe('zarr: part of an uncompressed chunk is read from its file, its length checked', () => {
  it('reads rows of chunks in place (dense and sparse parts), the fill value where none is stored, and refuses a chunk file of the wrong length', async () => {
    for (const format of [2, 3] as const) {
      await dn.withConnection(`parts${format}`, { backend: 'zarr', directory: tmp, create: true, format }, async (con) => {
        const ds = await con.createDataset('a', { shape: [128, 128], dtype: 'float32', chunkSize: [64, 64], fillValue: -1 });
        const values = ramp(128 * 96);
        await ds.set([s(0, 96)], dn.ndarray(values, [96, 128]));
        const row = (r: number, from = 0, to = 128) => Array.from(values.subarray(r * 128 + from, r * 128 + to));
        // A few whole rows of a chunk (read with their span and copied).
        expect(Array.from((await ds.get([s(3, 5), s(0, 64)])).data as Float32Array)).toEqual([...row(3, 0, 64), ...row(4, 0, 64)]);
        // Rows far apart (sparse: each row read on its own), across two chunks along the last axis.
        const sparse = await ds.get([s(1, 64, 20), s(32, 128)]);
        expect(Array.from(sparse.data as Float32Array)).toEqual([1, 21, 41, 61].flatMap((r) => row(r, 32, 128)));
        // Rows 96-127 were never written: the fill value, stored in the chunk, then with no chunk at all.
        expect(Array.from((await ds.get([s(94, 98), s(64, 128)])).data as Float32Array)).toEqual([...row(94, 64), ...row(95, 64), ...new Array(128).fill(-1)]);
        expect(await ds.delChunk([1, 1])).toBe(true);
        expect(Array.from((await ds.get([s(94, 98), s(64, 128)])).data as Float32Array)).toEqual(new Array(256).fill(-1));
        const file = path.join(tmp, `parts${format}`, 'a', format === 2 ? '0.0' : path.join('c', '0', '0'));
        const stored = fs.readFileSync(file);
        for (const wrong of [stored.subarray(0, -1), Buffer.concat([stored, Buffer.from([0])])]) {
          fs.writeFileSync(file, wrong);
          await expect(ds.get([s(3, 5), s(0, 64)])).rejects.toThrow(dn.CorruptChunkError);
          await expect(ds.get([s(1, 64, 20), s(0, 64)])).rejects.toThrow(/holds \d+ bytes, not the 16384/);
        }
      });
    }
  });
});

describe('zarr chunk commits', () => {
  it("commit: 'rename', 'exchange' or 'auto' (the default, as the file system decides) replace chunk files that way, and zarr-python reads them; other values are refused", async () => {
    const commits = vi.spyOn(nativeModule()!, 'commitNewFile');
    try {
      for (const commit of ['rename', 'exchange', undefined] as const) {
        commits.mockClear();
        const name = `commit-${commit ?? 'auto'}`;
        await dn.withConnection(name, { backend: 'zarr', directory: tmp, create: true, format: 2, ...(commit ? { commit } : {}) }, async (con) => {
          const ds = await con.createDataset('x', { shape: [8, 8], dtype: 'float32', chunkSize: [4, 4] });
          await ds.set(undefined, 1);
          const file = path.join(tmp, name, 'x', '0.0');
          const before = fs.statSync(file).ino;
          await ds.set([s(1, 3), s(1, 3)], 7); // a partial write: the chunk read, merged and replaced
          await ds.flush();
          expect(fs.statSync(file).ino).not.toBe(before);
          expect(fs.readdirSync(path.dirname(file)).filter((n) => !/^\d+\.\d+$|^\.z/.test(n)), 'left beside the chunks').toEqual([]);
        });
        const expected = commit ?? expectedAutoCommit(path.join(tmp, name));
        expect(new Set(commits.mock.calls.map((call) => call[8]))).toEqual(new Set([expected]));
        const row = JSON.parse(python(`
import json, sys, zarr
print(json.dumps(zarr.open(sys.argv[1], mode='r')['x'][1].tolist()))
`, path.join(tmp, name)));
        expect(row).toEqual([1, 7, 7, 1, 1, 1, 1, 1]);
      }
    } finally {
      commits.mockRestore();
    }
    for (const commit of ['fast', true, '']) {
      await expect(dn.connect('commit-bad', { backend: 'zarr', directory: tmp, create: true, commit })).rejects.toThrow(dn.OptionError);
    }
    expect(fs.existsSync(path.join(tmp, 'commit-bad'))).toBe(false);
  });
});
