/**
 * The hdf5 backend after faults, against real files: a writer killed with SIGKILL mid-load,
 * what crashed writers leave (temporary files, locks, half-made folders) and how it is swept,
 * corrupt metadata, stale handles, and the dataset identity and attributes h5py reads.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { CorruptChunkError } from '../src/errors.js';
import { python } from './support/python.js';
import { hdf5TestFolder } from './support/hdf5-folder.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scratch = hdf5TestFolder();
const connection = scratch.connection;

describe('hdf5 backend: crash safety', () => {
  it('leaves every chunk absent, all-old or all-new after SIGKILL mid-load', async () => {
    const name = 'killed';
    const con = await connection(name).connect();
    await con.createDataset('k', { shape: [64, 64, 64], dtype: 'float32', chunkSize: [16, 16, 16] });
    await con.disconnect();
    const child = spawn('npx', ['tsx', path.join(ROOT, 'test/fixtures/hdf5-load-loop.ts'), scratch.path, name, 'k'], {
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
`, scratch.path, name).trim();
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
      const folder = path.join(scratch.path, 'identity', 'v');
      fs.rmSync(path.join(folder, 'dataset.h5'));
      expect(fs.readdirSync(folder).filter((n) => n.startsWith('chunk_'))).toHaveLength(4);
      expect(await con.hasDataset('v')).toBe(false);
      const again = await con.createDataset('v', { shape: [4, 4], dtype: 'int16', chunkSize: [2, 2], fillValue: -7 });
      expect(Array.from((await again.get()).data as Int16Array)).toEqual(new Array(16).fill(-7));
      expect(fs.readdirSync(folder)).toEqual(['dataset.h5']);
      expect(fs.readdirSync(path.join(scratch.path, 'identity')).filter((n) => n.startsWith('.'))).toEqual([]); // nothing set aside is left
    } finally {
      await con.disconnect();
    }
  });

  it('a dataset whose dataset.h5 is corrupt cannot be opened (CorruptChunkError) but can be deleted', async () => {
    const con = await connection('corrupt-meta').connect();
    try {
      await con.createDataset('bad', { shape: [4], chunkSize: [2] });
      fs.writeFileSync(path.join(scratch.path, 'corrupt-meta', 'bad', 'dataset.h5'), 'not an HDF5 file');
      await expect(con.getDataset('bad')).rejects.toBeInstanceOf(CorruptChunkError);
      await con.delDataset('bad');
      expect(fs.existsSync(path.join(scratch.path, 'corrupt-meta', 'bad'))).toBe(false);
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
      expect(fs.readdirSync(path.join(scratch.path, 'stale-files'))).toEqual([]);
    } finally {
      await con.disconnect();
    }
  });

  it('makes the samples of a chunk layout in the dataset folder, as temporary files a sweep removes after a kill', async () => {
    const { sampleNames } = await import('../src/backends/hdf5/template.js');
    const { isScratchName } = await import('../src/backends/hdf5/locks.js');
    const dir = fs.mkdtempSync(path.join(scratch.path, 'samples-'));
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
      const folder = path.join(scratch.path, 'sweep', 's');
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
      const halfMade = path.join(scratch.path, 'sweep', `.x.creating-${HOST}-${dead}-abcdef`);
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

  it('a lock a killed one-step commit left (its owner noted on the file) is broken at once; one a live process also holds by a temporary name is waited for; a live note under a dead temporary name is not', async () => {
    const { HOST } = await import('../src/backends/hdf5/locks.js');
    const { nativeModule } = await import('../src/native.js');
    const native = nativeModule()!;
    const con = await connection('noted-locks').connect();
    try {
      const ds = await con.createDataset('n', { shape: [4, 4], dtype: 'float32', chunkSize: [2, 2] });
      await ds.set(undefined, 1);
      const folder = path.join(scratch.path, 'noted-locks', 'n');
      const ino = fs.statSync(folder, { bigint: true }).ino.toString();
      const dead = await deadPid();
      // What a writer killed between taking the lock and renaming leaves: the lock, its owner noted on it.
      const leave = (chunk: string) => native.commitNewFile(path.join(folder, `${chunk}.lock`), [new Uint8Array(16)], 1e9, `${HOST} ${dead} abc`, folder, ino, path.join(folder, chunk), undefined, 'hold', true);
      expect(typeof leave('chunk_1_1.h5')).toBe('string');
      const started = Date.now();
      await ds.getChunk([1, 1]).setData(3);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(fs.readdirSync(folder).filter((n) => n.includes('.lock'))).toEqual([]);
      expect(Array.from((await ds.get([3, s(2, 4)])).data as Float32Array)).toEqual([3, 3]);

      // An exchange commit's window: the chunk's old file, with a dead writer's note, under the
      // lock's name, and this live process's temporary name on it. Not stale.
      expect(typeof leave('chunk_0_1.h5')).toBe('string');
      const liveTmp = path.join(folder, `chunk_0_1.h5.tmp-${HOST}-${process.pid}-live-1`);
      fs.linkSync(path.join(folder, 'chunk_0_1.h5.lock'), liveTmp);
      let done = false;
      const writing = ds.getChunk([0, 1]).setData(5).then(() => { done = true; });
      await new Promise((r) => setTimeout(r, 150));
      expect(done).toBe(false);
      fs.rmSync(path.join(folder, 'chunk_0_1.h5.lock'));
      fs.rmSync(liveTmp);
      await writing;
      expect(Array.from((await ds.get([0, s(2, 4)])).data as Float32Array)).toEqual([5, 5]);

      // The other way round (an exchange commit killed in its window): the old file noted by a
      // live process, the lock held by a dead one's temporary name. Stale: broken at once.
      const noted = native.commitNewFile(path.join(folder, 'chunk_1_0.h5.lock'), [new Uint8Array(16)], 1e9, `${HOST} ${process.pid} abc`, folder, ino, path.join(folder, 'chunk_1_0.h5'), undefined, 'hold', true);
      expect(typeof noted).toBe('string');
      fs.linkSync(path.join(folder, 'chunk_1_0.h5.lock'), path.join(folder, `chunk_1_0.h5.tmp-${HOST}-${dead}-abc-9`));
      const again = Date.now();
      await ds.getChunk([1, 0]).setData(7);
      expect(Date.now() - again).toBeLessThan(5000);
      expect(Array.from((await ds.get([2, s(0, 2)])).data as Float32Array)).toEqual([7, 7]);
      // Its temporary name goes at the next sweep (a new connection's first write).
      fs.rmSync(path.join(folder, `chunk_1_0.h5.tmp-${HOST}-${dead}-abc-9`));
      expect(fs.readdirSync(folder).sort()).toEqual(['chunk_0_0.h5', 'chunk_0_1.h5', 'chunk_1_0.h5', 'chunk_1_1.h5', 'dataset.h5']);
    } finally {
      await con.disconnect();
    }
  });

  it('a swapped-in commit\'s window (the old chunk file under the lock\'s name, noted by its live writer) is waited for, also by a waiter that cannot read notes: by the lock\'s ctime, not the old chunk\'s mtime', async () => {
    const { HOST, judgeLock } = await import('../src/backends/hdf5/locks.js');
    const { nativeModule } = await import('../src/native.js');
    const native = nativeModule()!;
    const con = await connection('swap-window').connect();
    try {
      const ds = await con.createDataset('w', { shape: [4, 4], dtype: 'float32', chunkSize: [2, 2] });
      await ds.set(undefined, 1);
      const folder = path.join(scratch.path, 'swap-window', 'w');
      const ino = fs.statSync(folder, { bigint: true }).ino.toString();
      const lock = path.join(folder, 'chunk_0_0.h5.lock');
      // Noted by this (live) process, its mtime an old chunk's (2001), its ctime now.
      expect(typeof native.commitNewFile(lock, [new Uint8Array(16)], 1e9, `${HOST} ${process.pid} abc`, folder, ino, path.join(folder, 'chunk_0_0.h5'), undefined, 'hold', true)).toBe('string');
      expect(fs.statSync(lock).mtimeMs).toBe(1e12);
      expect(judgeLock(lock)).toBe('held');
      const notes = vi.spyOn(native, 'fileOwner').mockReturnValue(null); // a waiter without dosna's native module
      try {
        expect(judgeLock(lock)).toBe('held');
      } finally {
        notes.mockRestore();
      }
      let done = false;
      const writing = ds.getChunk([0, 0]).setData(5).then(() => { done = true; });
      await new Promise((r) => setTimeout(r, 150));
      expect(done).toBe(false);
      fs.rmSync(lock);
      await writing;
      expect(Array.from((await ds.get([0, s(0, 2)])).data as Float32Array)).toEqual([5, 5]);
      expect(judgeLock(lock)).toBe('free');
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
`, scratch.path));
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
    const root = path.join(scratch.path, 'meta');
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
