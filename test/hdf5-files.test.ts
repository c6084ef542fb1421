/**
 * The chunk-file I/O under the hdf5 and zarr backends (src/backends/hdf5/files.ts): with
 * dosna's native module one call per file (native/file-io.c), and without it Node's calls one by
 * one. Both must find the same bytes, generations and errors on real files.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generationOf, readFileOfSize, readPartOfSize, readTemplatedParts, readTemplatedVersion, statGeneration, statGenerations, writeFileParts } from '../src/backends/hdf5/files.js';
import { nativeModule, setNativeEnabled } from '../src/native.js';

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-files-test-')); });
afterAll(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const template = { prefix: Buffer.from(bytes(96, 1)), suffix: Buffer.from(bytes(40, 2)) };
const DATA = 4096;

describe('chunk files: the native module is built', () => {
  it('has the one-step file calls (npm ci builds native/; a C compiler is needed)', () => {
    const native = nativeModule();
    expect(native?.readFileRanges, 'native/build/Release/dosna_native.node with readFileRanges').toBeTypeOf('function');
    expect(native?.writeNewFile).toBeTypeOf('function');
    expect(native?.statGenerations).toBeTypeOf('function');
  });
});

for (const mode of ['native', 'node'] as const) {
  describe(`chunk files (${mode === 'native' ? 'native, one call per file' : "Node's calls"})`, () => {
    beforeAll(() => setNativeEnabled(mode === 'native'));
    afterAll(() => setNativeEnabled(true));
    const file = (name: string) => path.join(tmp, `${mode}-${name}`);

    it('gives the generations of many files at once: each one of its file, null where there is none, and other errors thrown', async () => {
      const a = file('gen-a');
      const b = file('gen-b');
      await writeFileParts(a, [bytes(10, 1)]);
      await writeFileParts(b, [bytes(20, 2)]);
      const missing = file('gen-none');
      const throughFile = path.join(a, 'inside'); // a file as a folder: ENOTDIR, no such file
      expect(statGenerations([a, missing, b, throughFile, a])).toEqual([
        generationOf(fs.statSync(a, { bigint: true })), null, generationOf(fs.statSync(b, { bigint: true })), null, generationOf(fs.statSync(a, { bigint: true })),
      ]);
      // A rewrite is a new generation.
      const before = statGenerations([b])[0];
      await writeFileParts(b, [bytes(20, 3)]);
      expect(statGenerations([b])[0]).not.toBe(before);
      expect(statGenerations([])).toEqual([]);
      expect(() => statGenerations([a, path.join(tmp, 'x'.repeat(300))])).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
      // One file's (a dataset's metadata file, at every operation): the same answers.
      expect([statGeneration(a), statGeneration(missing), statGeneration(throughFile)]).toEqual([generationOf(fs.statSync(a, { bigint: true })), null, null]);
      expect(statGeneration(b)).toBe(statGenerations([b])[0]);
      expect(() => statGeneration(path.join(tmp, 'x'.repeat(300)))).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
      // A path with NUL (which no file name holds) is refused, not cut at the NUL.
      expect(() => statGeneration(`${a}\u0000x`)).toThrow(/holds NUL|null bytes/);
      expect(() => statGenerations([a, `${b}\u0000x`])).toThrow(/holds NUL|null bytes/);
      expect(() => statGenerations([a, `${b}\u0000`])).toThrow(/holds NUL|null bytes/);
    });

    it('gives the generations of more files than fit the native call\'s buffers on the stack, of names in any script and of times before 1970', async () => {
      const names = Array.from({ length: 300 }, (_, i) => file(`gen-many-${'n'.repeat(40)}-${i}`));
      for (const [i, f] of names.entries()) if (i % 3 !== 1) await writeFileParts(f, [bytes(4, i)]);
      const unicode = file('gen-é-日本-🙂');
      await writeFileParts(unicode, [bytes(4, 9)]);
      const old = file('gen-1969');
      await writeFileParts(old, [bytes(4, 8)]);
      execFileSync('touch', ['-d', '@-86400.25', old]); // GNU touch: Node's utimes turns a time before 1970 into now
      const all = [...names, unicode, old];
      const expected = all.map((f) => (fs.existsSync(f) ? generationOf(fs.statSync(f, { bigint: true })) : null));
      expect(expected.filter((g) => g === null)).toHaveLength(100);
      expect(expected.at(-1)).toMatch(/^\d+:-\d+$/);
      expect(statGenerations(all)).toEqual(expected);
      expect(all.map(statGeneration)).toEqual(expected);
    });

    it('writes the parts in order, stamps a time later than any before and gives the generation of the file written', async () => {
      const f = file('written');
      const data = bytes(DATA, 3);
      const before = Date.now() / 1000;
      const first = await writeFileParts(f, [template.prefix, data.subarray(0, 1000), data.subarray(1000), template.suffix]);
      const second = await writeFileParts(`${f}.2`, [template.prefix, data, template.suffix]);
      expect(fs.readFileSync(f)).toEqual(Buffer.concat([template.prefix, data, template.suffix]));
      const stats = fs.statSync(f, { bigint: true });
      expect(first).toBe(generationOf(stats));
      expect(Number(stats.mtimeNs) / 1e9).toBeGreaterThan(before - 1);
      expect(Number(fs.statSync(`${f}.2`, { bigint: true }).mtimeNs)).toBeGreaterThan(Number(stats.mtimeNs));
      expect(second).not.toBe(first);
      // An existing file is truncated, not overwritten in part.
      await writeFileParts(f, [Buffer.from('short')]);
      expect(fs.readFileSync(f, 'utf8')).toBe('short');
    });

    it('reads the data between the template, its runs in place, with the generation of the file read', async () => {
      const f = file('read');
      const data = bytes(DATA, 4);
      const written = await writeFileParts(f, [template.prefix, data, template.suffix]);
      const whole = new Uint8Array(DATA);
      expect(await readTemplatedVersion(f, template, DATA, 0, [whole], true)).toEqual({ status: 'read', generation: written });
      expect(whole).toEqual(data);
      // Two segments from byte 100: 8 + 16 bytes.
      const a = new Uint8Array(8);
      const b = new Uint8Array(16);
      expect((await readTemplatedVersion(f, template, DATA, 100, [a, b], false)).status).toBe('read');
      expect([...a, ...b]).toEqual([...data.subarray(100, 124)]);
    });

    it('tells a missing file, a short one, a longer one and one with other bytes around the data apart', async () => {
      const data = bytes(DATA, 5);
      const into = () => [new Uint8Array(DATA)];
      expect((await readTemplatedVersion(file('none'), template, DATA, 0, into(), true)).status).toBe('missing');
      expect((await readTemplatedVersion(path.join(file('read'), 'below-a-file'), template, DATA, 0, into(), false)).status).toBe('missing');
      const short = file('short');
      fs.writeFileSync(short, Buffer.concat([template.prefix, data, template.suffix]).subarray(0, -1));
      expect((await readTemplatedVersion(short, template, DATA, 0, into(), false)).status).toBe('foreign');
      const shorter = file('shorter');
      fs.writeFileSync(shorter, template.prefix.subarray(0, 10));
      expect((await readTemplatedVersion(shorter, template, DATA, 0, into(), false)).status).toBe('foreign');
      const longer = file('longer');
      fs.writeFileSync(longer, Buffer.concat([template.prefix, data, template.suffix, Buffer.from([0])]));
      const read = await readTemplatedVersion(longer, template, DATA, 0, into(), true);
      expect(read).toEqual({ status: 'foreign', generation: generationOf(fs.statSync(longer, { bigint: true })) });
      const other = file('other');
      fs.writeFileSync(other, Buffer.concat([template.suffix, data, template.prefix]));
      expect((await readTemplatedVersion(other, template, DATA, 0, into(), false)).status).toBe('foreign');
    });

    it('reads a file of an expected size whole, and tells one of another size or none apart', async () => {
      const f = file('sized');
      const data = bytes(DATA, 8);
      fs.writeFileSync(f, data);
      expect(await readFileOfSize(f, DATA)).toEqual({ bytes: data, generation: generationOf(fs.statSync(f, { bigint: true })) });
      expect((await readFileOfSize(f, DATA + 1))?.bytes).toBeNull();
      expect((await readFileOfSize(f, DATA - 1))?.bytes).toBeNull();
      expect(await readFileOfSize(file('sized-none'), DATA)).toBeUndefined();
    });

    it('reads part of a file of an expected size into place, and tells one of another size or none apart', async () => {
      const f = file('sized-part');
      const data = bytes(DATA, 9);
      fs.writeFileSync(f, data);
      // Near the start (the length checked by a second run), across a gap, and up to the last byte.
      for (const [start, lengths] of [[0, [10]], [5, [100, 7]], [DATA - 300, [200, 100]], [100, [DATA - 100]]] as const) {
        const views = lengths.map((n) => new Uint8Array(n));
        expect(await readPartOfSize(f, DATA, start, views)).toBe('read');
        expect(Buffer.concat(views)).toEqual(Buffer.from(data.subarray(start, start + lengths.reduce((a, b) => a + b, 0))));
      }
      // Far from the end: the length check is a read of its own (past the gap that merges reads).
      const big = file('sized-big');
      const bigData = bytes(300_000, 10);
      fs.writeFileSync(big, bigData);
      const front = new Uint8Array(64);
      expect(await readPartOfSize(big, bigData.length, 16, [front])).toBe('read');
      expect(front).toEqual(bigData.subarray(16, 80));
      expect(await readPartOfSize(big, bigData.length + 1, 16, [new Uint8Array(64)])).toBe('foreign');
      expect(await readPartOfSize(big, bigData.length - 1, 16, [new Uint8Array(64)])).toBe('foreign');
      expect(await readPartOfSize(f, DATA + 1, 0, [new Uint8Array(10)])).toBe('foreign');
      expect(await readPartOfSize(f, DATA - 1, 0, [new Uint8Array(10)])).toBe('foreign');
      expect(await readPartOfSize(f, DATA - 1, 0, [new Uint8Array(DATA - 1)])).toBe('foreign');
      expect(await readPartOfSize(file('sized-part-none'), DATA, 0, [new Uint8Array(10)])).toBe('missing');
      expect(await readPartOfSize(path.join(f, 'below-a-file'), DATA, 0, [new Uint8Array(10)])).toBe('missing');
      await expect(readPartOfSize(f, DATA, DATA - 5, [new Uint8Array(10)])).rejects.toThrow(/outside a file of 4096 bytes/);
    });

    it('fails with the path and the system error', async () => {
      const folder = file('a-folder');
      fs.mkdirSync(folder);
      const error = await readTemplatedVersion(folder, template, DATA, 0, [new Uint8Array(DATA)], false).then(() => undefined, (e: unknown) => e as Error);
      expect(error?.message).toContain(folder);
      expect(error?.message).toMatch(/EISDIR/);
      const nowhere = path.join(tmp, 'no-such-folder', 'chunk.h5');
      const failed = await writeFileParts(nowhere, [Buffer.from('x')]).then(() => undefined, (e: unknown) => e as NodeJS.ErrnoException);
      expect(failed?.code).toBe('ENOENT');
      expect(failed?.message).toContain(nowhere);
    });
  });
}

describe('chunk files: the native calls themselves', () => {
  const native = () => nativeModule()!;

  it('reads runs of views at their positions, inline or on the thread pool, and stops at the end of the file', async () => {
    const f = path.join(tmp, 'runs');
    fs.writeFileSync(f, Buffer.from(bytes(10_000, 6)));
    const all = bytes(10_000, 6);
    for (const sync of [true, false]) {
      const a = new Uint8Array(10);
      const b = new Float32Array(5); // 20 bytes: any typed array's bytes
      const c = new Uint8Array(30);
      const result = await native().readFileRanges(f, Float64Array.of(0, 5000), Uint32Array.of(2, 1), [a, b, c], true, sync);
      expect(result).toEqual({ bytes: 60, generation: generationOf(fs.statSync(f, { bigint: true })), copied: false });
      expect([...a]).toEqual([...all.subarray(0, 10)]);
      expect([...new Uint8Array(b.buffer)]).toEqual([...all.subarray(10, 30)]);
      expect([...c]).toEqual([...all.subarray(5000, 5030)]);
      // A run past the end: the bytes there are, and no later run.
      const tail = new Uint8Array(100);
      expect(await native().readFileRanges(f, Float64Array.of(9950, 0), Uint32Array.of(1, 1), [tail, new Uint8Array(4)], false, sync)).toEqual({ bytes: 50, copied: false });
      expect(await native().readFileRanges(`${f}-none`, Float64Array.of(0), Uint32Array.of(1), [tail], false, sync)).toBeNull();
    }
  });

  it('reads more views than one system call takes (IOV_MAX)', async () => {
    const f = path.join(tmp, 'many');
    const all = bytes(3000 * 4, 7);
    fs.writeFileSync(f, all);
    const views = Array.from({ length: 3000 }, () => new Uint8Array(4));
    expect(await native().readFileRanges(f, Float64Array.of(0), Uint32Array.of(3000), views, false, false)).toEqual({ bytes: 12000, copied: false });
    expect(views.every((v, i) => v.every((x, j) => x === all[i * 4 + j]))).toBe(true);
    const written = views.map((v) => v.slice());
    await native().writeNewFile(`${f}.copy`, written, 1e9, false);
    expect(fs.readFileSync(`${f}.copy`)).toEqual(Buffer.from(all));
    expect(fs.statSync(`${f}.copy`).mtimeMs).toBe(1e12);
  });

  it('copies rows out after a read that went as expected, on the thread that read, and not after one that did not', async () => {
    // A file of a 16-byte head and a 4x4 float32 block; the block's middle 2x2 goes to a 3x3 array's corner.
    const head = bytes(16, 21);
    const block = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const f = path.join(tmp, 'copy-out');
    fs.writeFileSync(f, Buffer.concat([head, new Uint8Array(block.buffer)]));
    // copyRows' plan: one outer axis of 2 rows of 8 bytes; dst from byte 0 in steps of 12, src from byte 20 in steps of 16.
    const plan = Float64Array.of(1, 8, 0, 20, 2, 12, 16);
    for (const sync of [true, false]) {
      const read = async (checks: ArrayBufferView[], expectBytes = 16 + 64) => {
        const headView = new Uint8Array(16);
        const span = new Uint8Array(64);
        const dst = new Float32Array(9);
        const then = { bytes: expectBytes, checks: checks.length ? [headView, checks[0]] : [], dst, src: span, plan };
        return { r: await native().readFileRanges(f, Float64Array.of(0), Uint32Array.of(2), [headView, span], false, sync, then), dst };
      };
      const good = await read([head]);
      expect(good.r).toEqual({ bytes: 80, copied: true });
      expect([...good.dst]).toEqual([6, 7, 0, 10, 11, 0, 0, 0, 0]);
      // Another head, or a length other than expected: read, not copied, the destination untouched.
      const otherHead = await read([bytes(16, 22)]);
      expect(otherHead.r).toEqual({ bytes: 80, copied: false });
      expect([...otherHead.dst]).toEqual(new Array(9).fill(0));
      const otherLength = await read([], 81);
      expect(otherLength.r).toEqual({ bytes: 80, copied: false });
      expect([...otherLength.dst]).toEqual(new Array(9).fill(0));
      expect(await native().readFileRanges(`${f}-none`, Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(64)], false, sync, { bytes: 64, checks: [], dst: new Float32Array(9), src: new Uint8Array(64), plan })).toBeNull();
    }
  });

  it('reads templated parts of many files at once, telling missing, longer and foreign files apart', () => {
    const data = bytes(DATA, 13);
    const ours = path.join(tmp, 'parts-ours');
    fs.writeFileSync(ours, Buffer.concat([template.prefix, data, template.suffix]));
    const longer = path.join(tmp, 'parts-longer');
    fs.writeFileSync(longer, Buffer.concat([template.prefix, data, template.suffix, Buffer.from([0])]));
    const other = path.join(tmp, 'parts-other');
    fs.writeFileSync(other, Buffer.concat([template.prefix, data, Buffer.from(template.suffix).reverse()]));
    const a = new Uint8Array(16);
    const b = [new Uint8Array(8), new Uint8Array(8)];
    const statuses = readTemplatedParts(template, DATA, [
      { file: ours, start: 100, segments: [a] },
      { file: path.join(tmp, 'parts-none'), start: 0, segments: [new Uint8Array(4)] },
      { file: longer, start: 0, segments: [new Uint8Array(4)] },
      { file: other, start: 0, segments: [new Uint8Array(4)] },
      { file: ours, start: DATA - 16, segments: b },
    ]);
    expect(statuses).toEqual(['read', 'missing', 'foreign', 'foreign', 'read']);
    expect([...a]).toEqual([...data.subarray(100, 116)]);
    expect([...b[0], ...b[1]]).toEqual([...data.subarray(DATA - 16)]);
    expect(() => readTemplatedParts(template, DATA, [{ file: ours, start: DATA - 4, segments: [new Uint8Array(8)] }])).toThrow(/outside a chunk/);
  });

  it('commits a new file in one call: written with no name, its owner noted, stamped, linked as the lock, checked, renamed; a failed check, a held lock or a changed folder leave nothing behind', async () => {
    for (const sync of [true, false]) {
      const dir = fs.mkdtempSync(path.join(tmp, 'commit-'));
      const file = path.join(dir, 'c.h5');
      const lock = `${file}.lock`;
      const ino = fs.statSync(dir, { bigint: true }).ino.toString();
      const commit = (parts: Uint8Array[], expected: string | null | undefined, options: { folderIno?: string; replace?: 'hold' | 'rename' | 'exchange' } = {}) =>
        native().commitNewFile(lock, parts, 1e9 + 0.25, 'abcd0123 42 nonce', dir, options.folderIno ?? ino, file, expected, options.replace ?? 'rename', sync);
      const first = await commit([bytes(100, 1), bytes(28, 2)], null);
      expect(first).toBe(statGeneration(file));
      expect([...fs.readFileSync(file)]).toEqual([...bytes(100, 1), ...bytes(28, 2)]);
      expect(fs.statSync(file).mtimeMs).toBe(1e12 + 250);
      expect(native().fileOwner(file)).toBe('abcd0123 42 nonce');
      expect(fs.readdirSync(dir)).toEqual(['c.h5']);

      expect(await commit([bytes(8, 3)], null)).toBe(0); // there is a file now
      expect(await commit([bytes(8, 3)], `${first}1`)).toBe(0); // another generation
      expect(await commit([bytes(8, 3)], undefined, { folderIno: `${BigInt(ino) + 1n}` })).toBe(3);
      fs.writeFileSync(lock, 'held');
      expect(await commit([bytes(8, 3)], first as string)).toBe(1);
      expect(fs.readFileSync(lock, 'utf8')).toBe('held');
      fs.rmSync(lock);
      expect(fs.readdirSync(dir)).toEqual(['c.h5']);
      expect([...fs.readFileSync(file)]).toEqual([...bytes(100, 1), ...bytes(28, 2)]);

      const second = await commit([bytes(8, 3)], first as string);
      expect(typeof second === 'string' && second !== first).toBe(true);
      expect([...fs.readFileSync(file)]).toEqual([...bytes(8, 3)]);
      // Not replaced: the lock is left held, with the new file under it.
      const held = await commit([bytes(4, 4)], second as string, { replace: 'hold' });
      expect(fs.readdirSync(dir).sort()).toEqual(['c.h5', 'c.h5.lock']);
      expect(statGeneration(lock)).toBe(held);
      expect([...fs.readFileSync(file)]).toEqual([...bytes(8, 3)]);
      expect(native().fileOwner(path.join(dir, 'none'))).toBeNull();
      fs.writeFileSync(path.join(dir, 'plain'), '');
      expect(native().fileOwner(path.join(dir, 'plain'))).toBeNull();
    }
  });

  it('commits in one call by swapping: the new file takes the name, the old one goes with the lock, a reader holding it keeps it whole; with no old file, or an old file with another name, it renames', async () => {
    for (const sync of [true, false]) {
      const dir = fs.mkdtempSync(path.join(tmp, 'swap-'));
      const file = path.join(dir, 'c.h5');
      const ino = fs.statSync(dir, { bigint: true }).ino.toString();
      const commit = (parts: Uint8Array[], expected: string | null | undefined, owner: string) =>
        native().commitNewFile(`${file}.lock`, parts, 1e9 + 0.5, owner, dir, ino, file, expected, 'exchange', sync);
      const counted = async (run: () => unknown) => {
        const before = native().commitCounts();
        const result = await run();
        const after = native().commitCounts();
        return { result, renamed: after.renamed - before.renamed, swapped: after.swapped - before.swapped };
      };
      const first = await counted(() => commit([bytes(64, 1)], null, 'abcd0123 43 first'));
      expect(first).toEqual({ result: statGeneration(file), renamed: 1, swapped: 0 }); // no old file: renamed in

      // An old file with a second name (as a dead writer's temporary name would be): renamed
      // over, its note left as it was.
      const kept = path.join(dir, 'c.h5.kept');
      fs.linkSync(file, kept);
      const second = await counted(() => commit([bytes(48, 2)], first.result as string, 'abcd0123 43 second'));
      expect(second.renamed).toBe(1);
      expect(second.swapped).toBe(0);
      expect(second.result).toBe(statGeneration(file));
      expect(native().fileOwner(kept)).toBe('abcd0123 43 first');
      fs.rmSync(kept);

      const reader = fs.openSync(file, 'r');
      try {
        const third = await counted(() => commit([bytes(32, 3)], second.result as string, 'abcd0123 43 third'));
        expect(third.renamed).toBe(0);
        expect(third.swapped).toBe(1);
        expect(typeof third.result === 'string' && third.result !== second.result).toBe(true);
        expect(third.result).toBe(statGeneration(file));
        expect([...fs.readFileSync(file)]).toEqual([...bytes(32, 3)]);
        expect(fs.readdirSync(dir)).toEqual(['c.h5']); // the old file went with the lock's name
        expect(fs.fstatSync(reader).nlink).toBe(0);
        const old = Buffer.alloc(48);
        expect(fs.readSync(reader, old, 0, 48, 0)).toBe(48);
        expect([...old]).toEqual([...bytes(48, 2)]);
        // A failed check swaps nothing and leaves nothing.
        const fourth = await counted(() => commit([bytes(8, 4)], second.result as string, 'abcd0123 43 fourth'));
        expect(fourth).toEqual({ result: 0, renamed: 0, swapped: 0 });
        expect([...fs.readFileSync(file)]).toEqual([...bytes(32, 3)]);
        expect(fs.readdirSync(dir)).toEqual(['c.h5']);
      } finally {
        fs.closeSync(reader);
      }
    }
  });

  it('refuses arguments that do not fit before touching any file', () => {
    const f = path.join(tmp, 'refused');
    const calls: (() => unknown)[] = [
      () => native().readFileRanges(f, Float64Array.of(0), Uint32Array.of(2), [new Uint8Array(1)], false, true),
      () => native().readFileRanges(f, Float64Array.of(-1), Uint32Array.of(1), [new Uint8Array(1)], false, true),
      () => native().readFileRanges('', Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(1)], false, true),
      () => native().writeNewFile(f, [new Uint8Array(1), 'text' as unknown as Uint8Array], 0, true),
      () => native().writeNewFile(f, [new Uint8Array(1)], Number.NaN, true),
      () => native().commitNewFile(`${f}.lock`, [new Uint8Array(1)], 0, 'owner', tmp, 'not a number', f, undefined, 'rename', true),
      () => native().commitNewFile(`${f}.lock`, [new Uint8Array(1)], 0, 'owner', tmp, '1', f, 5 as never, 'rename', true),
      () => native().commitNewFile(`${f}.lock`, [new Uint8Array(1)], 0, '', tmp, '1', f, undefined, 'rename', true),
      () => native().commitNewFile(`${f}.lock`, [new Uint8Array(1)], 0, 'owner', tmp, '1', f, undefined, true as never, true),
      () => native().commitNewFile(`${f}.lock`, [new Uint8Array(1)], 0, 'owner', tmp, '1', f, undefined, 'swap' as never, true),
      // a copy after the read whose rows fall outside its destination, or that is not an object of typed arrays
      () => native().readFileRanges(f, Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(64)], false, true, { bytes: 64, checks: [], dst: new Float32Array(2), src: new Uint8Array(64), plan: Float64Array.of(1, 8, 0, 0, 2, 12, 16) }),
      () => native().readFileRanges(f, Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(64)], false, true, { bytes: 64, checks: [new Uint8Array(1)], dst: new Float32Array(9), src: new Uint8Array(64), plan: Float64Array.of(0, 4, 0, 0) }),
      () => native().readFileRanges(f, Float64Array.of(0), Uint32Array.of(1), [new Uint8Array(64)], false, true, 'copy' as never),
    ];
    for (const call of calls) expect(call).toThrow(expect.objectContaining({ code: 'DOSNA_NATIVE_PLAN' }));
    expect(fs.existsSync(f)).toBe(false);
  });
});
