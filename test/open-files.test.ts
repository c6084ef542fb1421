/**
 * Chunk files' descriptors kept open between reads (native/open-files.c, used by the hdf5
 * backend's batched reads of small chunk files): a file replaced, rewritten or deleted by anyone
 * is read as it is now, dosna's own replacements and deletions close the descriptors of what
 * they replaced, and the table stays within its bound.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { forgetOpenFiles, readTemplatedParts } from '../src/backends/hdf5/files.js';
import { nativeModule } from '../src/native.js';

const run = promisify(execFile);
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-open-files-test-')); });
afterAll(() => {
  forgetOpenFiles(tmp, true);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const native = () => {
  const module = nativeModule();
  if (!module) throw new Error('the native module is not built (npm ci builds native/; a C compiler is needed)');
  return module;
};
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const template = { prefix: Buffer.from(bytes(96, 1)), suffix: Buffer.from(bytes(40, 2)) };
const DATA = 4096;
const chunkFile = (file: string, seed: number) => fs.writeFileSync(file, Buffer.concat([template.prefix, bytes(DATA, seed), template.suffix]));

/** This process's descriptors open on `file` (from /proc/self/fd). */
function descriptorsOf(file: string): string[] {
  const target = fs.realpathSync(path.dirname(file));
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(path.join(target, path.basename(file)));
    } catch {
      return false; // closed meanwhile (readdir's own descriptor)
    }
  });
}

/** Reads 16 bytes from byte 100 of the data of each file. */
function readParts(...files: string[]) {
  const views = files.map(() => new Uint8Array(16));
  const statuses = readTemplatedParts(template, DATA, files.map((file, i) => ({ file, start: 100, segments: [views[i]] })));
  return { statuses, views };
}

describe('chunk files kept open between reads', () => {
  it('keeps a file read open, and reads it again through the same descriptor while it is unchanged', () => {
    const file = path.join(tmp, 'kept');
    chunkFile(file, 3);
    expect(descriptorsOf(file)).toEqual([]);
    const first = readParts(file);
    expect(first.statuses).toEqual(['read']);
    expect([...first.views[0]]).toEqual([...bytes(DATA, 3).subarray(100, 116)]);
    const kept = descriptorsOf(file);
    expect(kept).toHaveLength(1);
    expect(readParts(file).statuses).toEqual(['read']);
    expect(descriptorsOf(file)).toEqual(kept);
    expect(native().forgetOpenFiles(file, false)).toBe(1);
    expect(descriptorsOf(file)).toEqual([]);
  });

  it('reads a file replaced by another writer (renamed over it) as it is now, and lets the replaced one go', () => {
    const file = path.join(tmp, 'replaced');
    chunkFile(file, 4);
    readParts(file);
    const old = descriptorsOf(file);
    chunkFile(`${file}.new`, 5);
    fs.renameSync(`${file}.new`, file);
    const after = readParts(file);
    expect(after.statuses).toEqual(['read']);
    expect([...after.views[0]]).toEqual([...bytes(DATA, 5).subarray(100, 116)]);
    // One descriptor of the file now, and that one on the new inode (readlink shows a deleted one as such).
    expect(descriptorsOf(file)).toHaveLength(1);
    expect(fs.readlinkSync(`/proc/self/fd/${descriptorsOf(file)[0]}`)).not.toMatch(/deleted/);
    expect(old).toHaveLength(1);
    forgetOpenFiles(file);
  });

  it('reads a file rewritten in place, tells one deleted missing and one no longer of the template foreign', () => {
    const rewritten = path.join(tmp, 'rewritten');
    const deleted = path.join(tmp, 'deleted');
    const changed = path.join(tmp, 'changed');
    for (const f of [rewritten, deleted, changed]) chunkFile(f, 6);
    expect(readParts(rewritten, deleted, changed).statuses).toEqual(['read', 'read', 'read']);
    const fd = fs.openSync(rewritten, 'r+');
    fs.writeSync(fd, Buffer.from(bytes(16, 9)), 0, 16, template.prefix.length + 100);
    fs.closeSync(fd);
    fs.rmSync(deleted);
    fs.appendFileSync(changed, Buffer.from([0])); // longer than the template: HDF5 must read it
    const after = readParts(rewritten, deleted, changed);
    expect(after.statuses).toEqual(['read', 'missing', 'foreign']);
    expect([...after.views[0]]).toEqual([...bytes(16, 9)]);
    expect(descriptorsOf(deleted)).toEqual([]);
    expect(descriptorsOf(changed)).toEqual([]);
    forgetOpenFiles(rewritten);
  });

  it('forgets a folder: every descriptor under it closed, none of a sibling with the same prefix', () => {
    const folder = path.join(tmp, 'folder');
    const sibling = path.join(tmp, 'folder-sibling');
    fs.mkdirSync(folder);
    fs.mkdirSync(sibling);
    const files = [path.join(folder, 'a'), path.join(folder, 'b'), path.join(sibling, 'c')];
    for (const f of files) chunkFile(f, 7);
    readParts(...files);
    expect(files.map((f) => descriptorsOf(f).length)).toEqual([1, 1, 1]);
    expect(native().forgetOpenFiles(folder, true)).toBe(2);
    expect(files.map((f) => descriptorsOf(f).length)).toEqual([0, 0, 1]);
    forgetOpenFiles(sibling, true);
    expect(descriptorsOf(files[2])).toEqual([]);
  });

  it('keeps at most its capacity, closing the least recently used first', () => {
    const { capacity } = native().openFilesStats();
    expect(capacity).toBeGreaterThan(0);
    const folder = path.join(tmp, 'many');
    fs.mkdirSync(folder);
    const files = Array.from({ length: capacity + 10 }, (_, i) => path.join(folder, `f${i}`));
    for (const f of files) chunkFile(f, 8);
    for (let at = 0; at < files.length; at += 100) expect(readParts(...files.slice(at, at + 100)).statuses.every((s) => s === 'read')).toBe(true);
    expect(native().openFilesStats().open).toBe(capacity);
    expect(descriptorsOf(files[0])).toEqual([]);
    expect(descriptorsOf(files.at(-1)!)).toHaveLength(1);
    forgetOpenFiles(folder, true);
    expect(native().openFilesStats().open).toBe(0);
  });

  it('refuses arguments that do not fit before opening any file', () => {
    const f = path.join(tmp, 'refused');
    chunkFile(f, 1);
    const one = (starts: Float64Array, counts: Uint32Array, views: Uint8Array[], outcome = new Float64Array(1), paths = [f], dataBytes = DATA) =>
      () => native().readTemplatedFiles(paths, template.prefix, template.suffix, dataBytes, starts, counts, views, outcome);
    const refused = [
      one(Float64Array.of(0), Uint32Array.of(2), [new Uint8Array(1)]), // counts that do not add up to the views
      one(Float64Array.of(-4), Uint32Array.of(1), [new Uint8Array(1)]), // a negative start
      one(Float64Array.of(DATA - 4), Uint32Array.of(1), [new Uint8Array(8)]), // past the data's end
      one(Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(1)], new Float64Array(2)), // an outcome of another length
      one(Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(1)], new Float64Array(1), ['']), // an empty path
      one(Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(1)], new Float64Array(1), [f], Number.NaN),
    ];
    for (const call of refused) expect(call).toThrow(expect.objectContaining({ code: 'DOSNA_NATIVE_PLAN' }));
    expect(descriptorsOf(f)).toEqual([]);
    // A system call that fails names its path, call and code.
    const long = path.join(tmp, 'x'.repeat(300));
    expect(one(Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(1)], new Float64Array(1), [long])).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG', syscall: 'open', message: expect.stringContaining(long) }));
  });
});

describe('the hdf5 backend with chunk files kept open', () => {
  const plane = (ds: dn.Dataset) => ds.get([dn.s(8, 9)]);
  const values = (a: dn.NdArray) => [...new Set(Array.from(a.data as Float32Array))];

  it('sees another process replace, delete and recreate chunks it has read, and lets deleted ones go', async () => {
    const directory = path.join(tmp, 'store');
    const con = await dn.connect('kept', { backend: 'hdf5', directory, create: true });
    try {
      const ds = await con.createDataset('d', { shape: [32, 32, 32], dtype: 'float32', chunkSize: [16, 16, 16] });
      await ds.set([dn.s()], 1);
      expect(values(await plane(ds))).toEqual([1]);
      const folder = path.join(directory, 'kept', 'd');
      const kept = () => fs.readdirSync(folder).filter((f) => f.startsWith('chunk_')).flatMap((f) => descriptorsOf(path.join(folder, f)));
      expect(kept()).toHaveLength(4); // the plane's four chunk files
      // Another process: writes the plane, then deletes the dataset and makes a new one of the same name.
      const script = `
        import * as dn from ${JSON.stringify(path.resolve('src/index.ts'))};
        const con = await dn.connect('kept', { backend: 'hdf5', directory: ${JSON.stringify(directory)} });
        const [step, value] = process.argv.slice(-2);
        if (step === 'write') await (await con.getDataset('d')).set([dn.s(8, 9)], Number(value));
        else {
          await con.delDataset('d');
          const ds = await con.createDataset('d', { shape: [32, 32, 32], dtype: 'float32', chunkSize: [16, 16, 16] });
          await ds.set([dn.s()], Number(value));
        }
        await con.disconnect();`;
      const other = (step: string, value: number) => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, step, String(value)], { timeout: 120_000 });
      await other('write', 2);
      expect(values(await plane(ds))).toEqual([2]);
      await other('recreate', 3);
      const again = await con.getDataset('d');
      expect(values(await plane(again))).toEqual([3]);
      // The first read after the recreation let go of every replaced file; the next ones reuse descriptors.
      expect(kept().length).toBe(4);
      // This process's own deletion closes what it kept.
      await con.delDataset('d');
      expect(native().openFilesStats().open).toBe(0);
    } finally {
      await con.disconnect();
    }
  }, 240_000);

  it('closes what a dataset kept when this process replaces its chunks or disconnects', async () => {
    const directory = path.join(tmp, 'own');
    // No chunk cache: every read goes to the files.
    const con = await dn.connect('own', { backend: 'hdf5', directory, create: true, cacheBytes: 0 });
    const ds = await con.createDataset('d', { shape: [32, 32, 32], dtype: 'float32', chunkSize: [16, 16, 16] });
    await ds.set([dn.s()], 1);
    await plane(ds);
    expect(native().openFilesStats().open).toBe(4);
    await ds.set([dn.s(8, 9)], 5); // the four chunk files replaced: their old ones closed at once
    await ds.flush();
    expect(native().openFilesStats().open).toBe(0);
    expect(values(await plane(ds))).toEqual([5]);
    expect(native().openFilesStats().open).toBe(4);
    await con.disconnect();
    expect(native().openFilesStats().open).toBe(0);
  });
});
