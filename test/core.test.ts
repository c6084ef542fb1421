/** Unit tests of the pieces under the public API: selection, copies, halos, config, lifecycle. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { reflectIndex, paddedAxis, gatherPadded } from '../src/halo.js';
import { normalizeIndex, sliceIndices, Slice } from '../src/slicing.js';
import { copyRun, copyStrided, copyStridedJoined, fillArray, fillStrided, markCold } from '../src/strided.js';
import { nativeModule, nativeStatus, setNativeEnabled } from '../src/native.js';
import { allocate, fromNumpyTypeString, toNumpyTypeString, castScalar, viewAs } from '../src/dtypes.js';
import { BatchQueue, KeyedMutex, runTasks } from '../src/concurrency.js';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

describe('slices', () => {
  it('follow Python slice.indices for every sign combination', () => {
    // Expected values computed by Python: len(range(*slice(a, b, c).indices(10)))
    const cases: [number | null, number | null, number | null, number, number, number][] = [
      [null, null, null, 0, 1, 10], [2, 8, 3, 2, 3, 2], [null, null, -1, 9, -1, 10], [8, 2, -2, 8, -2, 3],
      [-3, null, null, 7, 1, 3], [-100, 100, null, 0, 1, 10], [100, -100, -1, 9, -1, 10], [5, 5, null, 5, 1, 0],
      [null, -1, -1, 9, -1, 0], [-1, -11, -1, 9, -1, 10],
    ];
    for (const [a, b, c, start, step, count] of cases) {
      expect(sliceIndices(new Slice(a, b, c), 10), `${a}:${b}:${c}`).toEqual({ start, step, count });
    }
  });

  it('s() formats like NumPy and rejects non-integers', () => {
    expect(String(s(36, 80))).toBe('36:80');
    expect(String(s(null, null, -1))).toBe('::-1');
    expect(() => s(1.5)).toThrow(dn.IndexError);
    expect(() => s(0, 1, 0)).toThrow(/zero/);
  });

  it('normalizes a single entry, ellipsis in the middle, and squeezes integers', () => {
    expect(normalizeIndex(3, [5, 6])).toEqual([
      { start: 3, step: 1, count: 1, squeeze: true }, { start: 0, step: 1, count: 6, squeeze: false },
    ]);
    expect(normalizeIndex([1, '...', 2], [4, 5, 6, 7]).map((a) => a.count)).toEqual([1, 5, 6, 1]);
  });
});

describe('the native copy', () => {
  it('is built and loaded here (npm ci builds it; without it every copy runs in JavaScript)', () => {
    expect(nativeStatus()).toMatchObject({ loaded: true });
  });

  describe('malloc thresholds', () => {
    /** What `body` (a module's text, with `dn`, `MiB` and `settle` in scope) prints as JSON, in a fresh process started with `env`. */
    const inProcess = (body: string, env: Record<string, string> = {}) => {
      const index = fileURLToPath(new URL('../src/index.ts', import.meta.url));
      const script = `const dn = await import(${JSON.stringify(index)});
        const MiB = 2 ** 20;
        const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); } };
        ${body}`;
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(MALLOC_|GLIBC_TUNABLES|DOSNA_NATIVE)/.test(k)));
      return JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { env: { ...clean, ...env }, encoding: 'utf8' }));
    };
    /** nativeStatus().malloc of a fresh process started with `env`. */
    const mallocIn = (env: Record<string, string>) => inProcess('console.log(JSON.stringify(dn.nativeStatus().malloc));', env);

    it('are set by the module in a process that chose none', () => {
      expect(mallocIn({})).toEqual({
        tuned: true,
        detail: 'mmap threshold 32 MiB, trim threshold 256 MiB, big arrays kept in the heap, free heap over 512 MiB returned after full garbage collections',
      });
    });

    /** Page faults of allocating and filling a 96 MiB array, a second time after the first was collected. */
    const refill = `const fill = () => { const before = process.resourceUsage().minorPageFault; Buffer.allocUnsafeSlow(96 * MiB).fill(7); return process.resourceUsage().minorPageFault - before; };
      const first = fill(); await settle(); const second = fill(); console.log(JSON.stringify({ first, second }));`;

    it('keep a big array freed in the heap: the next one of its size reuses its pages, where glibc alone maps fresh ones', () => {
      // 96 MiB in 4 KiB pages is 24,576 faults when fresh (no huge pages in these processes).
      const kept = inProcess(refill);
      expect(kept.first).toBeGreaterThan(20_000);
      expect(kept.second).toBeLessThan(1_000);
      const glibcAlone = inProcess(refill, { MALLOC_MMAP_MAX_: '65536' });
      expect(glibcAlone.second).toBeGreaterThan(20_000);
    });

    it('give free heap over 512 MiB back to the kernel after a full garbage collection', () => {
      // A 768 MiB array freed below a small live block (not at the top of the heap, which glibc trims itself).
      const report = inProcess(`const rss = () => process.memoryUsage().rss / MiB;
        const base = rss();
        let big = Buffer.allocUnsafeSlow(768 * MiB).fill(1);
        const pin = Buffer.allocUnsafeSlow(256 * 1024).fill(2);
        const peak = rss();
        big = undefined;
        await settle();
        console.log(JSON.stringify({ grew: peak - base, kept: rss() - base, pin: pin[0] }));`);
      expect(report.grew).toBeGreaterThan(700);
      expect(report.kept).toBeLessThan(200);
    });

    it("leave the process's own choice standing, and malloc alone without the module", () => {
      expect(mallocIn({ MALLOC_TRIM_THRESHOLD_: '131072' })).toEqual({ tuned: false, detail: 'left to MALLOC_TRIM_THRESHOLD_=131072' });
      expect(mallocIn({ MALLOC_MMAP_MAX_: '65536' })).toEqual({ tuned: false, detail: 'left to MALLOC_MMAP_MAX_=65536' });
      expect(mallocIn({ GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0' })).toEqual({ tuned: false, detail: 'left to glibc.malloc.mmap_max in GLIBC_TUNABLES' });
      expect(mallocIn({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=65536' }))
        .toEqual({ tuned: false, detail: 'left to glibc.malloc.mmap_threshold in GLIBC_TUNABLES' });
      expect(mallocIn({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' })).toMatchObject({ tuned: true });
      expect(mallocIn({ DOSNA_NATIVE: '0' })).toEqual({ tuned: false, detail: 'the native module is not loaded' });
    });

    it('are refused when not positive byte counts below 2 GiB, before malloc is touched', () => {
      const tune = nativeModule()!.tuneMalloc;
      for (const [mmap, trim] of [[0, 1], [1, -1], [2 ** 31, 1], [1, Number.NaN]]) {
        expect(() => tune(mmap, trim), `${mmap}, ${trim}`).toThrow(expect.objectContaining({ code: 'DOSNA_NATIVE_PLAN' }));
      }
      for (const keep of [-1, Number.NaN, 'all']) {
        expect(() => nativeModule()!.trimMalloc(keep as number), String(keep)).toThrow(expect.objectContaining({ code: 'DOSNA_NATIVE_PLAN' }));
      }
    });
  });

  describe('shared buffers', () => {
    /** Runs `body` (a module's text, with `newSharedBuffer`, `adjust` and `MiB` in scope) in a fresh process; its JSON output. */
    const inChild = (body: string, flags: string[] = []) => {
      const url = (file: string) => JSON.stringify(new URL(`../src/${file}`, import.meta.url).href);
      const script = `const { newSharedBuffer } = await import(${url('shared-memory.ts')});
        const adjust = (await import(${url('native.ts')})).externalMemoryCounter();
        const MiB = 2 ** 20;
        ${body}`;
      return JSON.parse(execFileSync(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }));
    };

    it('are counted by V8 while alive and taken back once collected', () => {
      const counts = inChild(`
        const base = adjust(0);
        let live = Array.from({ length: 64 }, () => newSharedBuffer(MiB));
        const alive = adjust(0) - base;
        live = undefined;
        for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
        console.log(JSON.stringify({ alive: alive / MiB, after: (adjust(0) - base) / MiB }));`, ['--expose-gc']);
      expect(counts.alive).toBeGreaterThanOrEqual(64);
      expect(counts.after).toBeLessThan(8);
    });

    it('replaced over and over, as the ram backend replaces chunks, do not pile up uncollected', () => {
      // 64 chunks of 1 MiB kept, each replaced 24 times: 1.5 GiB made, 64 MiB alive at any time.
      const { peak } = inChild(`
        const live = [];
        let peak = 0;
        for (let round = 0; round < 24; round++) {
          for (let i = 0; i < 64; i++) live[i] = new Uint8Array(newSharedBuffer(MiB)).fill(round);
          peak = Math.max(peak, process.memoryUsage().arrayBuffers / MiB);
          await new Promise((r) => setImmediate(r));
        }
        console.log(JSON.stringify({ peak }));`);
      expect(peak).toBeLessThan(640);
    });

    it('of a chunk\'s size reuse the memory of collected ones, zeroed when asked, never while a worker thread still holds them', () => {
      const result = inChild(`
        const { sharedBufferPool } = await import(${JSON.stringify(new URL('../src/native.ts', import.meta.url).href)});
        const { Worker } = await import('node:worker_threads');
        const stats = () => sharedBufferPool().sharedPoolStats();
        const collect = async () => { for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); } };
        // A worker keeps one buffer (filled with 7) after this thread drops it.
        const kept = newSharedBuffer(MiB, false);
        new Uint8Array(kept).fill(7);
        const worker = new Worker('const { parentPort } = process.getBuiltinModule("node:worker_threads"); let held; parentPort.on("message", (m) => { if (m.buffer) { held = new Uint8Array(m.buffer); parentPort.postMessage("held"); } else parentPort.postMessage(held.every((v) => v === 7)); });', { eval: true });
        const ask = (m) => new Promise((r) => { worker.once('message', r); worker.postMessage(m); });
        await ask({ buffer: kept });
        let dropped = Array.from({ length: 16 }, () => new Uint8Array(newSharedBuffer(MiB, false)).fill(9));
        dropped = undefined;
        await collect();
        const before = stats();
        // Made from the pool: buffers that held 9; the one the worker holds is not among them.
        const zeroed = new Uint8Array(newSharedBuffer(MiB));
        const again = Array.from({ length: 16 }, () => new Uint8Array(newSharedBuffer(MiB, false)));
        for (const b of again) b.fill(1);
        const intact = await ask({});
        await worker.terminate();
        const after = stats();
        console.log(JSON.stringify({ pooled: before.pooledBytes / MiB, reused: after.reused - before.reused, zeroed: zeroed.every((v) => v === 0), intact }));`, ['--expose-gc']);
      expect(result.pooled).toBeGreaterThanOrEqual(16);
      expect(result.reused).toBeGreaterThanOrEqual(16);
      expect(result.zeroed).toBe(true);
      expect(result.intact).toBe(true);
    });

    it('in the pool make room for the sizes in use: a full pool of another size does not keep them out', () => {
      const result = inChild(`
        const { sharedBufferPool } = await import(${JSON.stringify(new URL('../src/native.ts', import.meta.url).href)});
        const stats = () => sharedBufferPool().sharedPoolStats();
        const collect = async () => { for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); } };
        // More than the pool's 256 MiB of an old size, then the new size comes and goes.
        let old = Array.from({ length: 300 }, () => newSharedBuffer(MiB + 4096, false));
        old = undefined;
        await collect();
        const full = stats().pooledBytes / MiB;
        let recent = Array.from({ length: 16 }, () => newSharedBuffer(MiB, false));
        recent = undefined;
        await collect();
        const before = stats();
        const again = Array.from({ length: 16 }, () => newSharedBuffer(MiB, false));
        console.log(JSON.stringify({ full, reused: stats().reused - before.reused, pooled: stats().pooledBytes / MiB, kept: again.length }));`, ['--expose-gc']);
      expect(result.full).toBeGreaterThan(200);
      expect(result.full).toBeLessThanOrEqual(256);
      expect(result.reused).toBe(16);
      expect(result.pooled).toBeLessThanOrEqual(256);
    });
  });

  it('copies runs and fills arrays in shared memory exactly, as set and fill do (any length, any offset)', () => {
    for (const Ctor of [Float32Array, Float64Array, Int16Array, Uint8Array, BigInt64Array] as const) {
      for (const n of [1, 300, 1000, 70_001]) {
        const make = (bytes: number, byteOffset: number, length: number) =>
          new (Ctor as unknown as new (b: ArrayBufferLike, o: number, n: number) => dn.TypedArray)(new SharedArrayBuffer(bytes), byteOffset, length);
        const src = make(n * Ctor.BYTES_PER_ELEMENT + 64, 8, n); // a view that starts inside its buffer
        for (let i = 0; i < n; i++) (src as unknown as number[])[i] = (Ctor === BigInt64Array ? BigInt(i * 7 - 5) : (i * 7) % 120 - 5) as never;
        const dst = make((n + 10) * Ctor.BYTES_PER_ELEMENT, 0, n + 10);
        const expected = new Ctor(n + 10);
        const count = Math.max(0, n - 3);
        copyRun(dst as never, 4, src as never, 3, count);
        (expected as unknown as Float64Array).set((src as unknown as Float64Array).subarray(3, 3 + count), 4);
        expect(Array.from(dst as never), `${Ctor.name} copy ${n}`).toEqual(Array.from(expected as never));
        const value = Ctor === BigInt64Array ? -3n : Ctor === Uint8Array ? 200 : -3;
        fillArray(dst as never, value as never);
        expect((dst as unknown as ArrayLike<unknown>).length).toBe(n + 10);
        expect(Array.from(dst as never).every((v) => v === value), `${Ctor.name} fill ${n}`).toBe(true);
      }
    }
  });

  it('refuses a plan outside either array before copying anything', () => {
    const src = new Float32Array(1024);
    const dst = new Float32Array(1024).fill(7);
    // 5 rows of 256 floats: the last row ends past both arrays.
    const shape = [5, 256];
    expect(() => copyStrided({ data: dst, offset: 0, shape, strides: [256, 1] }, { data: src, offset: 0, shape, strides: [256, 1] }))
      .toThrow(/outside/);
    expect(dst.every((v) => v === 7)).toBe(true);
  });

  it('copies the rows of chunks side by side as one row of the destination (copyStridedJoined), at every alignment, and leaves to copyRows what it streams', () => {
    // native/strided.c's copyRowsJoined: pieces of each row from several sources, end to end.
    // Every byte of every row is checked, and that none around the rows changes.
    const sources = [0, 1, 2, 3].map((k) => Uint8Array.from({ length: 40_000 }, (_, i) => (i * 131 + 7 + k * 59) % 251));
    const check = (dst: Uint8Array, rowStep: number, label: string) => {
      for (const pieces of [[128, 128], [64, 64, 64, 64], [100, 128, 32], [228, 256, 256, 32], [512, 512], [17, 3, 48, 200], [1000, 24]]) {
        for (const dstShift of [0, 16, 32, 48, 5]) {
          const run = pieces.reduce((a, b) => a + b, 0);
          const rows = 3;
          const dstOffset = dst.length - run - (rows - 1) * rowStep - dstShift;
          dst.fill(0xee, dstOffset - 64, dst.length);
          let at = dstOffset;
          const dsts = pieces.map((row) => {
            const view = { data: dst, offset: at, shape: [rows, row], strides: [rowStep, 1] };
            at += row;
            return view;
          });
          const srcs = pieces.map((row, k) => ({ data: sources[k], offset: 3 + k, shape: [rows, row], strides: [row + 9, 1] }));
          const what = `${label}: pieces ${pieces} every ${rowStep}, shift ${dstShift}`;
          expect(copyStridedJoined(dsts, srcs), what).toBe(true);
          for (let r = 0; r < rows; r++) {
            let start = dstOffset + r * rowStep;
            expect(dst[start - 1], `the byte before a row, ${what}`).toBe(0xee);
            pieces.forEach((row, k) => {
              const from = 3 + k + r * (row + 9);
              expect(dst.subarray(start, start + row), `piece ${k} of row ${r}, ${what}`).toEqual(sources[k].subarray(from, from + row));
              start += row;
            });
            if (r < rows - 1) expect(dst[start], `the byte after a row, ${what}`).toBe(0xee);
          }
        }
      }
    };
    const big = new Uint8Array(32 * 2 ** 20 + 64);
    check(big, 4099, '32 MiB, rows at varying offsets');
    const result = new Uint8Array(4 * 2 ** 20 + 64);
    markCold(result);
    check(result, 4099, 'a new result, rows at varying offsets');
    check(new Uint8Array(1 << 20), 4096, 'a small array, rows placed alike');
    // Rows placed alike in an array copyRows streams into: left to it, nothing copied.
    for (const [dst, label] of [[big, '32 MiB'], [result, 'a new result']] as const) {
      dst.fill(0xee);
      const views = [0, 1].map((k) => ({ data: dst, offset: 64 + 256 * k, shape: [3, 256], strides: [4096, 1] }));
      const srcs = [0, 1].map((k) => ({ data: sources[k], offset: 0, shape: [3, 256], strides: [256, 1] }));
      expect(copyStridedJoined(views, srcs), label).toBe(false);
      expect(dst.every((v) => v === 0xee), label).toBe(true);
    }
    // Not joined (nothing copied, the caller copies one by one): pieces not end to end, a stepped row, one piece.
    const dst = new Uint8Array(4096).fill(1);
    const view = (offset: number, row: number, step = 1) => ({ data: dst, offset, shape: [2, row], strides: [1024, step] });
    const src = (row: number) => ({ data: sources[0], offset: 0, shape: [2, row], strides: [row, 1] });
    expect(copyStridedJoined([view(0, 64), view(65, 64)], [src(64), src(64)])).toBe(false);
    expect(copyStridedJoined([view(0, 64), view(64, 32, 2)], [src(64), src(32)])).toBe(false);
    expect(copyStridedJoined([view(0, 64)], [src(64)])).toBe(false);
    expect(dst.every((v) => v === 1)).toBe(true);
    // A plan outside a source or the destination, or with unknown flags, is refused before anything moves.
    const plan = (rowBytes: number, flags = 0) => Float64Array.of(1, 2, 0, flags, 2, 1024, rowBytes, 0, rowBytes, rowBytes, 0, rowBytes);
    const small = new Uint8Array(100);
    expect(() => nativeModule()!.copyRowsJoined(dst, [sources[0], small], plan(64))).toThrow(/outside a source/);
    expect(() => nativeModule()!.copyRowsJoined(new Uint8Array(1100), [sources[0], sources[1]], plan(64))).toThrow(/outside the destination/);
    expect(() => nativeModule()!.copyRowsJoined(dst, [sources[0], sources[1]], plan(64, 2))).toThrow(/unknown flags/);
    expect(() => nativeModule()!.copyRowsJoined(dst, [sources[0]], plan(64))).toThrow(/wrong length/);
    expect(() => nativeModule()!.copyRowsJoined(dst, [sources[0], 'x' as unknown as Uint8Array], plan(64))).toThrow(/typed arrays/);
    expect(dst.every((v) => v === 1)).toBe(true);
    expect(nativeModule()!.copyRowsJoined(dst, [sources[0], sources[1]], plan(64))).toBe(true);
    expect(dst.subarray(1024, 1088)).toEqual(sources[0].subarray(64, 128));
    expect(dst.subarray(1088, 1152)).toEqual(sources[1].subarray(64, 128));
  });
});

describe.each(['native', 'JavaScript'] as const)('strided copies (%s)', (path) => {
  beforeAll(() => setNativeEnabled(path === 'native'));
  afterAll(() => setNativeEnabled(true));

  it('copy rows, reversed runs and broadcast rows', () => {
    const src = Float64Array.from({ length: 12 }, (_, i) => i);
    const dst = new Float64Array(6);
    copyStrided({ data: dst, offset: 0, shape: [2, 3], strides: [3, 1] }, { data: src, offset: 11, shape: [2, 3], strides: [-4, -1] });
    expect(Array.from(dst)).toEqual([11, 10, 9, 7, 6, 5]);
    copyStrided({ data: dst, offset: 0, shape: [2, 3], strides: [3, 1] }, { data: src, offset: 4, shape: [2, 3], strides: [0, 1] });
    expect(Array.from(dst)).toEqual([4, 5, 6, 4, 5, 6]);
    copyStrided({ data: dst, offset: 0, shape: [2, 3], strides: [3, 1] }, { data: src, offset: 2, shape: [2, 3], strides: [1, 0] });
    expect(Array.from(dst)).toEqual([2, 2, 2, 3, 3, 3]);
    fillStrided({ data: dst, offset: 1, shape: [2], strides: [3] }, -1);
    expect(Array.from(dst)).toEqual([2, -1, 2, 3, -1, 3]);
  });

  it('copy every dtype exactly, over random blocks with aligned and misaligned offsets (the word-copy fast path and its fallbacks)', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (const dtype of dn.DTYPES) {
      for (let t = 0; t < 60; t++) {
        const shape = [1 + rand(4), 1 + rand(5), 1 + rand(t % 3 === 0 ? 300 : 70)];
        // A source array bigger than the block in every axis, the block at a random place.
        const outer = shape.map((n) => n + rand(5));
        const srcStrides = [outer[1] * outer[2], outer[2], 1];
        const srcOffset = rand(outer[0] - shape[0] + 1) * srcStrides[0] + rand(outer[1] - shape[1] + 1) * srcStrides[1] + rand(outer[2] - shape[2] + 1);
        const dstOuter = shape.map((n) => n + rand(4));
        const dstStrides = [dstOuter[1] * dstOuter[2], dstOuter[2], 1];
        const dstOffset = rand(dstOuter[0] - shape[0] + 1) * dstStrides[0] + rand(dstOuter[2] - shape[2] + 1);
        const byteShift = rand(2) * 8; // views that do not start at their buffer's start
        const Ctor = allocate(dtype, 0).constructor as { new (b: ArrayBuffer, o: number, n: number): dn.TypedArray; BYTES_PER_ELEMENT: number };
        const make = (n: number) => new Ctor(new ArrayBuffer(byteShift + n * Ctor.BYTES_PER_ELEMENT), byteShift, n);
        const src = make(outer[0] * srcStrides[0]);
        const bytes = new Uint8Array(src.buffer);
        for (let i = 0; i < bytes.length; i++) bytes[i] = rand(256);
        const dst = make(dstOuter[0] * dstStrides[0]);
        const expected = dst.slice();
        for (let a = 0; a < shape[0]; a++) for (let b = 0; b < shape[1]; b++) for (let c = 0; c < shape[2]; c++) {
          (expected as Float64Array)[dstOffset + a * dstStrides[0] + b * dstStrides[1] + c] = (src as Float64Array)[srcOffset + a * srcStrides[0] + b * srcStrides[1] + c];
        }
        copyStrided({ data: dst, offset: dstOffset, shape, strides: dstStrides }, { data: src, offset: srcOffset, shape, strides: srcStrides });
        // Compared as bytes: NaN payloads must come through unchanged too.
        expect(new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength), `${dtype} block ${shape} at ${srcOffset} -> ${dstOffset}`)
          .toEqual(new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength));
      }
    }
  });

  it('copy rows into a destination of 32 MiB or more, or a new result of 4 MiB or more (streamed past the caches where the machine can), at every alignment and at its end', () => {
    // native/strided.c streams the whole 64-byte lines of rows of 128 bytes or more into such
    // destinations (ordinary stores for a partial first and last line), judging rows placed alike
    // once and rows placed at varying offsets one by one. Every split is checked, and that no
    // byte around a row changes.
    const src = Uint8Array.from({ length: 8192 }, (_, i) => (i * 131 + 7) % 251);
    const check = (big: Uint8Array, rowStep: number, label: string) => {
      for (const row of [127, 128, 129, 191, 192, 255, 256, 257, 320, 511, 512, 513, 1000, 2049]) {
        for (const dstShift of [0, 1, 5, 15, 16, 17, 31, 48, 63, 64]) {
          for (const srcShift of [0, 3]) {
            // Three rows `rowStep` bytes apart, the last ending at the destination's very end.
            const dstOffset = big.length - row - 2 * rowStep - dstShift;
            big.fill(0xee, dstOffset - 64, big.length);
            copyStrided({ data: big, offset: dstOffset, shape: [3, row], strides: [rowStep, 1] }, { data: src, offset: srcShift, shape: [3, row], strides: [row + 9, 1] });
            for (let r = 0; r < 3; r++) {
              const at = dstOffset + r * rowStep;
              const what = `${label}: row ${row} every ${rowStep}, shifts ${dstShift}/${srcShift}`;
              expect(big.subarray(at, at + row), what).toEqual(src.subarray(srcShift + r * (row + 9), srcShift + r * (row + 9) + row));
              expect(big[at - 1], `the byte before a row, ${what}`).toBe(0xee);
              if (r < 2) expect(big[at + row], `the byte after a row, ${what}`).toBe(0xee);
            }
          }
        }
      }
    };
    const big = new Uint8Array(32 * 2 ** 20 + 64);
    check(big, 4099, '32 MiB'); // rows at varying offsets within a line
    check(big, 4096, '32 MiB'); // rows placed alike
    // A new result (as get marks it) from 4 MiB: the same at every alignment.
    const result = new Uint8Array(4 * 2 ** 20 + 64);
    markCold(result);
    check(result, 4099, 'new result');
    check(result, 4096, 'new result');
    if (path === 'JavaScript') return;
    // The same buffer on both sides (overlapping rows): memmove's rules, never streamed.
    const shared = new Uint8Array(32 * 2 ** 20);
    shared.set(src.subarray(0, 4096), 1000);
    copyStrided({ data: shared, offset: 1100, shape: [1, 4000], strides: [0, 1] }, { data: shared, offset: 1000, shape: [1, 4000], strides: [0, 1] });
    expect(shared.subarray(1100, 5100)).toEqual(src.subarray(0, 4000));
    shared.set(src.subarray(0, 4096), 1000);
    copyStrided({ data: shared, offset: 900, shape: [2, 2000], strides: [2000, 1] }, { data: shared, offset: 1000, shape: [2, 2000], strides: [2000, 1] });
    expect(shared.subarray(900, 4900)).toEqual(src.subarray(0, 4000));
    // A plan's flags are checked like the rest of it: an unknown one is refused before anything moves.
    const dst = new Uint8Array(4096).fill(1);
    // One outer axis of 2 rows of 8 bytes, steps 16, then the flags.
    expect(() => nativeModule()!.copyRows(dst, src, Float64Array.of(1, 8, 0, 0, 2, 16, 16, 2))).toThrow(/unknown flags/);
    expect(dst.every((v) => v === 1)).toBe(true);
    expect(nativeModule()!.copyRows(dst, src, Float64Array.of(1, 8, 0, 0, 2, 16, 16, 1))).toBe(true);
    expect(dst.subarray(16, 24)).toEqual(src.subarray(16, 24));
  });

  it('copy 5-d blocks whose axes do not merge, with reversed axes (the word copy with more than two outer axes)', () => {
    for (const Ctor of [Float64Array, Float32Array, Int16Array]) {
      const shape = [2, 3, 2, 3, 4];
      const outer = [3, 4, 3, 5, 8];
      const strides = outer.map((_, a) => outer.slice(a + 1).reduce((x, y) => x * y, 1));
      const src = new Ctor(outer.reduce((x, y) => x * y, 1)).map((_, i) => i);
      // The source read with axes 1 and 3 reversed: offset at their last used index, negative strides.
      const srcStrides = strides.map((st, a) => (a === 1 || a === 3 ? -st : st));
      const srcOffset = (shape[1] - 1) * strides[1] + (shape[3] - 1) * strides[3];
      const dst = new Ctor(shape.reduce((x, y) => x * y, 1));
      const dstStrides = shape.map((_, a) => shape.slice(a + 1).reduce((x, y) => x * y, 1));
      copyStrided({ data: dst, offset: 0, shape, strides: dstStrides }, { data: src, offset: srcOffset, shape, strides: srcStrides });
      const expected: number[] = [];
      for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) for (let d = 0; d < 3; d++) for (let e = 0; e < 4; e++) {
        expected.push(src[a * strides[0] + (2 - b) * strides[1] + c * strides[2] + (2 - d) * strides[3] + e] as number);
      }
      expect(Array.from(dst as ArrayLike<number>), Ctor.name).toEqual(expected);
    }
  });
});

describe('halo reflection', () => {
  it('matches SciPy mode="reflect" (d c b a | a b c d | d c b a), also past one period', () => {
    expect([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => reflectIndex(i, 4))).toEqual([2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
    expect([-5, -3, 9].map((i) => reflectIndex(i, 2))).toEqual([0, 1, 1]);
    expect(reflectIndex(-7, 1)).toBe(0);
  });

  it('gathers a padded 2-D block from its box', () => {
    const box = Float64Array.from([0, 1, 2, 10, 11, 12]); // rows 0..1, cols 0..2 of a 2x3 dataset
    const axes = [paddedAxis(0, 2, 1, 2), paddedAxis(0, 3, 1, 3)];
    const out = gatherPadded('float64', box, axes);
    expect(Array.from(out as Float64Array)).toEqual([
      0, 0, 1, 2, 2,
      0, 0, 1, 2, 2,
      10, 10, 11, 12, 12,
      10, 10, 11, 12, 12,
    ]);
  });

  it('hands back the box itself where no axis reflects, and a new block where one does', () => {
    // Rows 1..3 and cols 2..5 of a 5 x 8 dataset: a 1-cell halo around rows 2 and cols 3..4 stays inside.
    const box = Float64Array.from({ length: 3 * 4 }, (_, i) => i);
    const inside = [paddedAxis(2, 1, 1, 5), paddedAxis(3, 2, 1, 8)];
    expect(inside.map((a) => [a.lo, a.hi])).toEqual([[1, 4], [2, 6]]);
    expect(gatherPadded('float64', box, inside)).toBe(box);
    // The same chunk at column 0 reflects (col -1 -> col 0): a new block, the box untouched.
    const edge = [paddedAxis(2, 1, 1, 5), paddedAxis(0, 3, 1, 8)];
    const edgeBox = Float64Array.from({ length: 3 * 4 }, (_, i) => i);
    const out = gatherPadded('float64', edgeBox, edge);
    expect(out).not.toBe(edgeBox);
    expect(Array.from(out as Float64Array).slice(0, 5)).toEqual([0, 0, 1, 2, 3]);
    expect(Array.from(edgeBox)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});

describe('dtypes', () => {
  it('map to NumPy type strings and back', () => {
    for (const d of dn.DTYPES) expect(fromNumpyTypeString(toNumpyTypeString(d))).toBe(d);
    expect(fromNumpyTypeString('f4')).toBe('float32');
    expect(() => fromNumpyTypeString('>f4')).toThrow(dn.DTypeError);
    expect(() => fromNumpyTypeString('<c8')).toThrow(dn.DTypeError);
  });

  it('refuse scalars the dtype cannot hold', () => {
    expect(castScalar('uint64', 2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
    expect(() => castScalar('uint64', 2n ** 64n)).toThrow(dn.DTypeError);
    expect(() => castScalar('int8', -129)).toThrow(dn.DTypeError);
    expect(castScalar('int64', 5)).toBe(5n);
    expect(castScalar('float32', 3n)).toBe(3);
  });

  it('view misaligned bytes by copying them once', () => {
    const bytes = new Uint8Array(9);
    new Float32Array(bytes.buffer, 0, 2).set([1.5, -2]);
    const shifted = new Uint8Array(new ArrayBuffer(10), 1, 8);
    shifted.set(bytes.subarray(0, 8));
    expect(Array.from(viewAs('float32', shifted))).toEqual([1.5, -2]);
  });
});

describe('scheduling', () => {
  it('bounds concurrency, stops on the first failure, and waits for running tasks', async () => {
    let running = 0;
    let peak = 0;
    const finished: number[] = [];
    const items = Array.from({ length: 20 }, (_, i) => [i]);
    const run = runTasks(items, async ([i]) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      if (i === 5) throw new Error('task 5 failed');
      finished.push(i);
      return {};
    }, { concurrency: 3 });
    await expect(run).rejects.toThrow('task 5 failed');
    expect(peak).toBe(3);
    expect(running).toBe(0);
    expect(finished.length).toBeLessThan(19);
  });

  it('gathers the items of one turn into batches of at most its size, and answers each item with its own outcome', async () => {
    const sent: number[][] = [];
    const queue = new BatchQueue<number, number>(3, async (items) => {
      sent.push(items);
      if (items.includes(8)) throw new Error('batch with 8 lost');
      return items.map((i) => (i === 4 ? { error: new Error('item 4 failed') } : { value: i * 10 }));
    });
    const first = Array.from({ length: 7 }, (_, i) => queue.submit(i).then((v) => ({ v }), (e: Error) => ({ e: e.message })));
    expect(await Promise.all(first)).toEqual([{ v: 0 }, { v: 10 }, { v: 20 }, { v: 30 }, { e: 'item 4 failed' }, { v: 50 }, { v: 60 }]);
    // Full batches went at once, the partial one after the turn's submissions.
    expect(sent).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    const second = [7, 8].map((i) => queue.submit(i).catch((e: Error) => e.message));
    expect(await Promise.all(second)).toEqual(['batch with 8 lost', 'batch with 8 lost']);
    expect(sent.at(-1)).toEqual([7, 8]);
  });

  it('serializes tasks that share a lock key', async () => {
    const locks = new KeyedMutex();
    const log: string[] = [];
    await Promise.all([1, 2, 3].map((i) => locks.run('k', async () => {
      log.push(`start ${i}`);
      await new Promise((r) => setTimeout(r, 1));
      log.push(`end ${i}`);
    })));
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  });
});

describe('selection and lifecycle', () => {
  it('use() keeps the other key, takes positional form, and refuses unknown names', () => {
    const before = dn.current();
    try {
      dn.use({ backend: 'ram', engine: 'cpu' });
      dn.use({ engine: 'cpu' });
      expect(dn.current()).toEqual({ backend: 'ram', engine: 'cpu' });
      dn.use('ram');
      expect(dn.current()).toEqual({ backend: 'ram', engine: 'cpu' });
      expect(() => dn.use({ backend: 'nosuch' })).toThrow(dn.DosnaError);
      expect(() => dn.use(undefined, 'nosuch')).toThrow(/available/);
      expect(dn.backends.available).toContain('ram');
      expect(dn.engines.available).toContain('cpu');
    } finally {
      dn.use(before);
    }
  });

  it('a fill value of -0 keeps its sign in unwritten cells and in a written chunk\'s padding', async () => {
    await dn.withConnection(`negzero-${process.pid}`, { backend: 'ram' }, async (con) => {
      const ds = await con.createDataset('z', { shape: [6], dtype: 'float64', chunkSize: [4], fillValue: -0 });
      await ds.set([s(0, 2)], 1);
      const got = Array.from((await ds.get()).data as Float64Array);
      expect(got.map((v) => Object.is(v, -0))).toEqual([false, false, true, true, true, true]);
      const chunk = ds.getChunk([0]);
      expect(Object.is((await chunk.getData()).data[3], -0)).toBe(true);
    });
  });

  it('connected toggles, operations need a connection, withConnection always disconnects', async () => {
    const con = dn.connection(`life-${process.pid}`);
    expect(con.connected).toBe(false);
    await expect(con.listDatasets()).rejects.toBeInstanceOf(dn.ConnectionError);
    await con.connect();
    expect(con.connected).toBe(true);
    expect([con.rank, con.size, con.isRoot]).toEqual([0, 1, true]);
    await con.barrier();
    await con.disconnect();
    expect(con.connected).toBe(false);

    let inside: dn.Connection | undefined;
    await expect(dn.withConnection(`life2-${process.pid}`, async (c) => {
      inside = c;
      expect(c.connected).toBe(true);
      throw new Error('user error');
    })).rejects.toThrow('user error');
    expect(inside?.connected).toBe(false);
  });

  it('await using disconnects at the end of the block', async () => {
    let held: dn.Connection;
    {
      await using con = await dn.connect(`life3-${process.pid}`);
      held = con;
      expect(con.connected).toBe(true);
    }
    expect(held.connected).toBe(false);
  });

  it('connection settings are plain data (cloneable to workers and other processes)', () => {
    const con = dn.connection('plain', { backend: 'ram' });
    expect(structuredClone(con.settings)).toEqual({ backend: 'ram', name: 'plain', options: {} });
  });

  it('the ram backend shares a connection name in-process and keeps chunks in SharedArrayBuffers', async () => {
    const name = `shared-${process.pid}`;
    await dn.withConnection(name, async (a) => {
      const ds = await a.createDataset('x', { shape: [4], dtype: 'int32' });
      await ds.set(undefined, [1, 2, 3, 4]);
      await dn.withConnection(name, async (b) => {
        const again = await b.getDataset('x');
        expect(Array.from((await again.get()).data as Int32Array)).toEqual([1, 2, 3, 4]);
        const bytes = await b.store.readChunk(again.meta, [0]);
        expect(bytes?.buffer).toBeInstanceOf(SharedArrayBuffer);
      });
      await ds.delete();
    });
    await expect(dn.connection("bad/name").connect()).rejects.toBeInstanceOf(dn.InvalidNameError);
  });
});
