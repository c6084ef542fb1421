/**
 * The hot path: copying an N-d strided block between two flat typed arrays of the same dtype.
 * Blocks of contiguous rows go to the native module in one call where it is built (native.ts);
 * otherwise contiguous innermost runs go through `TypedArray.set` or a word loop (or `fill` for a broadcast value);
 * axes that are contiguous in both arrays are merged first, so a whole-chunk copy is one
 * `set`. No per-element allocation.
 */
import type { Scalar, TypedArray } from './dtypes.js';
import { nativeModule } from './native.js';

/** A strided view on a flat typed array: element (i0, i1, ...) is at `offset + sum(i_k * strides[k])`. */
export interface StridedView<T extends TypedArray = TypedArray> {
  readonly data: T;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
}

/**
 * Merges adjacent axes that are contiguous in every view; drops axes of length 1. Plain loops,
 * no callbacks: it runs for every chunk of every read (twice for a batched read's chunk), and
 * closures made per axis were a good part of a plane read's garbage.
 */
export function coalesce(shape: readonly number[], stridesList: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const views = stridesList.length;
  const outShape: number[] = [];
  const outStrides: number[][] = [];
  for (let v = 0; v < views; v++) outStrides.push([]);
  for (let axis = 0; axis < shape.length; axis++) {
    const n = shape[axis];
    if (n === 1) continue;
    const last = outShape.length - 1;
    let merge = last >= 0;
    for (let v = 0; merge && v < views; v++) merge = outStrides[v][last] === stridesList[v][axis] * n;
    if (merge) {
      outShape[last] *= n;
      for (let v = 0; v < views; v++) outStrides[v][last] = stridesList[v][axis];
    } else {
      outShape.push(n);
      for (let v = 0; v < views; v++) outStrides[v].push(stridesList[v][axis]);
    }
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * Rows shorter than this many bytes are copied by a word loop: creating a subarray for
 * `TypedArray.set` costs more than it saves. Measured on V8 (Node 24), scattering 64 MiB of
 * float32 chunks into a cube: 64-element rows 24 ms by loop vs 39 ms by set; 128-element rows
 * break even.
 */
const SHORT_RUN_BYTES = 512;

/**
 * Where the rows of a short-row copy are, counted in machine words of one size: the word
 * count of a row, the first row's positions, and each outer axis's steps. Word counts and
 * positions are small integers (a division would make them doubles for V8, and every element
 * access would convert them): callers check the arrays fit.
 */
interface WordPlan {
  readonly words: number;
  readonly di0: number;
  readonly si0: number;
  /** Outer axes (all but the row's), outermost first. */
  readonly shape: readonly number[];
  readonly dSteps: readonly number[];
  readonly sSteps: readonly number[];
}

function wordPlan(shape: readonly number[], ds: readonly number[], ss: readonly number[], dOffset: number, sOffset: number, bpe: number, wordBytes: number): WordPlan {
  const inner = shape.length - 1;
  const words = (elements: number) => ((elements * bpe) / wordBytes) | 0;
  return {
    words: words(shape[inner]), di0: words(dOffset), si0: words(sOffset),
    shape: shape.slice(0, inner), dSteps: ds.slice(0, inner).map(words), sSteps: ss.slice(0, inner).map(words),
  };
}

/*
 * The row loop, written twice on purpose: once for 8-byte and once for 4-byte words. V8 keeps
 * one type feedback per function literal, so a single loop (or closures made from one literal
 * by a factory) that sees both array types goes polymorphic and runs at half speed (measured:
 * 57-word rows 0.81 GB/s shared against 1.66 GB/s monomorphic). Copies bits exactly: a
 * Float64Array element copy keeps every NaN payload in every V8 tier (checked with random bit
 * patterns optimized, with --no-opt and --jitless). Plain nested loops for up to two outer axes
 * (what most copies coalesce to): an odometer costs more per row than a short row's copy.
 * Steps may be negative (reversed axes).
 */
function copyWords64(dw: Float64Array, sw: Float64Array, plan: WordPlan): void {
  const { words: n, shape, dSteps, sSteps } = plan;
  if (shape.length <= 2) {
    const two = shape.length === 2;
    const rowsA = two ? shape[0] : 1;
    const rowsB = shape.length >= 1 ? shape[shape.length - 1] : 1;
    const dA = two ? dSteps[0] : 0;
    const sA = two ? sSteps[0] : 0;
    const dB = shape.length >= 1 ? dSteps[shape.length - 1] : 0;
    const sB = shape.length >= 1 ? sSteps[shape.length - 1] : 0;
    for (let a = 0; a < rowsA; a++) {
      let di = (plan.di0 + a * dA) | 0;
      let si = (plan.si0 + a * sA) | 0;
      for (let b = 0; b < rowsB; b++) {
        for (let k = 0; k < n; k++) dw[di + k] = sw[si + k];
        di = (di + dB) | 0;
        si = (si + sB) | 0;
      }
    }
    return;
  }
  forEachRow([...shape, 1], dSteps, sSteps, plan.di0, plan.si0, (di, si) => {
    for (let k = 0; k < n; k++) dw[di + k] = sw[si + k];
  });
}

function copyWords32(dw: Int32Array, sw: Int32Array, plan: WordPlan): void {
  const { words: n, shape, dSteps, sSteps } = plan;
  if (shape.length <= 2) {
    const two = shape.length === 2;
    const rowsA = two ? shape[0] : 1;
    const rowsB = shape.length >= 1 ? shape[shape.length - 1] : 1;
    const dA = two ? dSteps[0] : 0;
    const sA = two ? sSteps[0] : 0;
    const dB = shape.length >= 1 ? dSteps[shape.length - 1] : 0;
    const sB = shape.length >= 1 ? sSteps[shape.length - 1] : 0;
    for (let a = 0; a < rowsA; a++) {
      let di = (plan.di0 + a * dA) | 0;
      let si = (plan.si0 + a * sA) | 0;
      for (let b = 0; b < rowsB; b++) {
        for (let k = 0; k < n; k++) dw[di + k] = sw[si + k];
        di = (di + dB) | 0;
        si = (si + sB) | 0;
      }
    }
    return;
  }
  forEachRow([...shape, 1], dSteps, sSteps, plan.di0, plan.si0, (di, si) => {
    for (let k = 0; k < n; k++) dw[di + k] = sw[si + k];
  });
}

/**
 * Contiguous short rows copied as raw words: 8 bytes at a time when every row, offset and
 * stride falls on 8-byte boundaries in both arrays (twice as fast as 4: measured, 64 MiB
 * gathered from 64^3 float32 chunks in 28-33 ms against 48-68), else 4 bytes at a time when
 * they fall on 4-byte ones (true of every 4- and 8-byte dtype; of 1- and 2-byte ones when rows
 * and positions are multiples of 4 or 2 elements, as chunk rows of even size are). Returns
 * false, copying nothing, when neither holds.
 */
function copyShortRuns(
  shape: readonly number[], ds: readonly number[], ss: readonly number[],
  dOffset: number, sOffset: number, d: TypedArray, s: TypedArray,
): boolean {
  const bpe = d.BYTES_PER_ELEMENT;
  const inner = shape.length - 1;
  // Word positions are int32 in the loops: arrays up to 2 GiB words (16 GiB of 8-byte words).
  if (d.byteLength >= 2 ** 31 * 4 || s.byteLength >= 2 ** 31 * 4) return false;
  const onWords = (size: number) => {
    const fits = (elements: number) => (elements * bpe) % size === 0;
    if (d.byteOffset % size !== 0 || s.byteOffset % size !== 0 || !fits(shape[inner]) || !fits(dOffset) || !fits(sOffset)) return false;
    for (let axis = 0; axis < inner; axis++) if (!fits(ds[axis]) || !fits(ss[axis])) return false;
    return true;
  };
  if (onWords(8)) {
    const plan = wordPlan(shape, ds, ss, dOffset, sOffset, bpe, 8);
    copyWords64(new Float64Array(d.buffer, d.byteOffset, d.byteLength >>> 3), new Float64Array(s.buffer, s.byteOffset, s.byteLength >>> 3), plan);
  } else if (onWords(4)) {
    const plan = wordPlan(shape, ds, ss, dOffset, sOffset, bpe, 4);
    copyWords32(new Int32Array(d.buffer, d.byteOffset, d.byteLength >>> 2), new Int32Array(s.buffer, s.byteOffset, s.byteLength >>> 2), plan);
  } else return false;
  return true;
}

/**
 * Copies below this many bytes stay in JavaScript: a call into the native module costs about
 * as much as copying this much with the word loop.
 */
const NATIVE_MIN_BYTES = 1024;
const MAX_NATIVE_AXES = 64;
/** The native copy's plan, reused: [outer axes, row bytes, dst byte, src byte, shape, dst steps, src steps, flags]. */
const nativePlan = new Float64Array(5 + 3 * MAX_NATIVE_AXES);
/** The plan's flag for a destination the caches do not hold (native/strided.c streams large copies into it). */
const PLAN_COLD_DESTINATION = 1;

/** The memory of new results, not yet in any cache (see `markCold`). */
const coldBuffers = new WeakSet<ArrayBufferLike>();

/**
 * Marks `array` as just allocated, so the native copy may write large copies into it with
 * streaming stores, past the caches (native/strided.c: 40-60% faster into memory the caches do
 * not hold, ~20% slower into memory they do). For a `get`'s new result; an array the caller
 * passes in (`out`) may well be cached, even one that was such a result (`markWarm`).
 */
export function markCold(array: TypedArray): void {
  coldBuffers.add(array.buffer);
}

/** Forgets that `array` was new (see `markCold`): the caller has it now, and may have it in the caches. */
export function markWarm(array: TypedArray): void {
  coldBuffers.delete(array.buffer);
}

/** Contiguous rows through the native module (one call for the whole block); false if unavailable. */
function copyRowsNatively(shape: readonly number[], ds: readonly number[], ss: readonly number[], dOffset: number, sOffset: number, d: TypedArray, s: TypedArray): boolean {
  const native = nativeModule();
  if (native === undefined || !worthNativeCopy(shape, d.BYTES_PER_ELEMENT)) return false;
  return native.copyRows(d, s, fillPlan(nativePlan, shape, ds, ss, dOffset, sOffset, d));
}

/** Whether rows of this (coalesced) shape go through the native copy. */
function worthNativeCopy(shape: readonly number[], bpe: number): boolean {
  const outer = shape.length - 1;
  if (outer > MAX_NATIVE_AXES) return false;
  let bytes = shape[outer] * bpe;
  for (let axis = 0; axis < outer; axis++) bytes *= shape[axis];
  return bytes >= NATIVE_MIN_BYTES;
}

/** Writes the native copy's plan for contiguous rows of `shape` into `plan` (see native/strided.c), to copy into `d`. */
function fillPlan(plan: Float64Array, shape: readonly number[], ds: readonly number[], ss: readonly number[], dOffset: number, sOffset: number, d: TypedArray): Float64Array {
  const outer = shape.length - 1;
  const bpe = d.BYTES_PER_ELEMENT;
  plan[0] = outer;
  plan[1] = shape[outer] * bpe;
  plan[2] = dOffset * bpe;
  plan[3] = sOffset * bpe;
  for (let axis = 0; axis < outer; axis++) {
    plan[4 + axis] = shape[axis];
    plan[4 + outer + axis] = ds[axis] * bpe;
    plan[4 + 2 * outer + axis] = ss[axis] * bpe;
  }
  plan[4 + 3 * outer] = coldBuffers.has(d.buffer) ? PLAN_COLD_DESTINATION : 0;
  return plan;
}

/**
 * The native module's plan for `copyStrided(dst, src)`, in a new array, when that copy is one
 * the module makes (contiguous rows, enough bytes, the module loaded); otherwise undefined. For
 * a copy the module makes elsewhere than in a call from here: on the thread that just read a
 * chunk file's bytes into `src` (native/file-io.c, `then`).
 */
export function nativeCopyPlan(dst: StridedView, src: StridedView): Float64Array | undefined {
  if (nativeModule() === undefined || dst.data.BYTES_PER_ELEMENT !== src.data.BYTES_PER_ELEMENT) return undefined;
  const { shape, strides } = coalesce(dst.shape, [dst.strides, src.strides]);
  const [ds, ss] = strides;
  const inner = shape.length - 1;
  if (shape.length === 0 || shape.some((n) => n === 0) || ds[inner] !== 1 || ss[inner] !== 1) return undefined;
  if (!worthNativeCopy(shape, dst.data.BYTES_PER_ELEMENT)) return undefined;
  return fillPlan(new Float64Array(3 * shape.length + 2), shape, ds, ss, dst.offset, src.offset, dst.data);
}

/** Whether either array lives in shared memory (a SharedArrayBuffer). */
const shared = (a: TypedArray, b?: TypedArray) => a.buffer instanceof SharedArrayBuffer || (b !== undefined && b.buffer instanceof SharedArrayBuffer);

/**
 * Copies `count` elements of `src` from `srcStart` to `dst` at `dstStart` (what
 * `dst.set(src.subarray(...), dstStart)` does; same element family). Where either array is
 * in shared memory it goes through the native copy: V8's own `set` copies to or from a
 * SharedArrayBuffer element by element (measured, 64 MiB in 1 MiB pieces: 9-14 ms against
 * 2-3 ms for memcpy), and the ram backend's chunks and worker-pool's results live there.
 */
export function copyRun(dst: TypedArray, dstStart: number, src: TypedArray, srcStart: number, count: number): void {
  const native = nativeModule();
  const bpe = dst.BYTES_PER_ELEMENT;
  if (native && count * bpe >= NATIVE_MIN_BYTES && shared(dst, src)) {
    const plan = nativePlan;
    plan[0] = 0;
    plan[1] = count * bpe;
    plan[2] = dstStart * bpe;
    plan[3] = srcStart * bpe;
    plan[4] = 0; // flags: none
    native.copyRows(dst, src, plan);
    return;
  }
  (dst as Float64Array).set((src as Float64Array).subarray(srcStart, srcStart + count), dstStart);
}

/**
 * Sets every element of `data` to `value` (of its element type). In shared memory, where V8's
 * `fill` stores element by element (measured: 24 times slower than on ordinary memory), the
 * first element is set and copied over doubling spans by the native copy.
 */
export function fillArray(data: TypedArray, value: Scalar): void {
  const n = data.length;
  if (n * data.BYTES_PER_ELEMENT < NATIVE_MIN_BYTES * 4 || !shared(data) || nativeModule() === undefined) {
    (data as Float64Array).fill(value as number);
    return;
  }
  (data as Float64Array).fill(value as number, 0, Math.min(n, 256));
  for (let filled = Math.min(n, 256); filled < n; filled *= 2) copyRun(data, filled, data, 0, Math.min(filled, n - filled));
}

/** Copies `src` into `dst`; both views must have the same shape and element family. */
export function copyStrided(dst: StridedView, src: StridedView): void {
  const { shape, strides } = coalesce(dst.shape, [dst.strides, src.strides]);
  const [ds, ss] = strides;
  const d = dst.data as Float64Array;
  const sd = src.data as Float64Array;
  if (shape.length === 0) {
    if (dst.shape.every((n) => n > 0)) d[dst.offset] = sd[src.offset];
    return;
  }
  if (shape.some((n) => n === 0)) return;
  const inner = shape.length - 1;
  const n = shape[inner];
  const dStep = ds[inner];
  const sStep = ss[inner];
  const mode = dStep === 1 && sStep === 1 ? 0 : dStep === 1 && sStep === 0 ? 1 : 2;
  if (mode === 0 && copyRowsNatively(shape, ds, ss, dst.offset, src.offset, d, sd)) return;
  if (mode === 0 && n * d.BYTES_PER_ELEMENT < SHORT_RUN_BYTES && copyShortRuns(shape, ds, ss, dst.offset, src.offset, d, sd)) return;
  // The odometer over outer axes is inlined (no callback per row): this loop is the hot path.
  const counter = new Array<number>(inner).fill(0);
  let di = dst.offset;
  let si = src.offset;
  for (;;) {
    if (mode === 0) d.set(sd.subarray(si, si + n), di);
    else if (mode === 1) d.fill(sd[si], di, di + n);
    else for (let k = 0; k < n; k++) d[di + k * dStep] = sd[si + k * sStep];
    let axis = inner - 1;
    for (; axis >= 0; axis--) {
      di += ds[axis];
      si += ss[axis];
      if (++counter[axis] < shape[axis]) break;
      di -= ds[axis] * shape[axis];
      si -= ss[axis] * shape[axis];
      counter[axis] = 0;
    }
    if (axis < 0) return;
  }
}

/** Chunks a joined copy takes at most (native/strided.c). */
const MAX_JOINED_PIECES = 4096;
/** The joined copy's plan, reused while large enough. */
let joinedPlan = new Float64Array(64);

/**
 * Copies each `srcs[j]` into `dsts[j]` in one native call when the destinations lie end to end
 * along the last axis: the parts of chunks side by side in one result, every view of the same
 * shape but along the last axis, the destinations of the same strides, each starting where the
 * one before ends, rows contiguous in every view. Each row of the destination is then written
 * piece after piece (copyRowsJoined, native/strided.c), so the line where one chunk's part meets
 * the next is finished in the cache rather than read into it by each chunk's copy. False, having
 * copied nothing, when the views are not so placed, hold nothing, or the module is not built,
 * and for a destination the native copy streams whole rows into (rows placed alike in a large
 * or new array, where chunk by chunk is faster): the caller copies them one by one.
 */
export function copyStridedJoined(dsts: readonly StridedView[], srcs: readonly StridedView[]): boolean {
  const native = nativeModule();
  const pieces = dsts.length;
  if (native === undefined || pieces < 2 || pieces > MAX_JOINED_PIECES || srcs.length !== pieces) return false;
  const first = dsts[0];
  const axes = first.shape.length;
  const outer = axes - 1;
  const bpe = first.data.BYTES_PER_ELEMENT;
  if (axes === 0) return false;
  for (let j = 0; j < pieces; j++) {
    const dst = dsts[j];
    const src = srcs[j];
    if (dst.data !== first.data || src.data.BYTES_PER_ELEMENT !== bpe || dst.shape.length !== axes || src.shape.length !== axes) return false;
    if (dst.strides[outer] !== 1 || src.strides[outer] !== 1 || dst.shape[outer] === 0) return false;
    if (j > 0 && dst.offset !== dsts[j - 1].offset + dsts[j - 1].shape[outer]) return false;
    for (let a = 0; a < outer; a++) {
      if (dst.shape[a] !== first.shape[a] || dst.strides[a] !== first.strides[a] || dst.shape[a] === 0) return false;
    }
  }
  const length = 4 + 2 * outer + pieces * (2 + outer);
  if (joinedPlan.length < length) joinedPlan = new Float64Array(length);
  const plan = joinedPlan;
  plan[0] = outer;
  plan[1] = pieces;
  plan[2] = first.offset * bpe;
  plan[3] = coldBuffers.has(first.data.buffer) ? PLAN_COLD_DESTINATION : 0;
  for (let a = 0; a < outer; a++) {
    plan[4 + a] = first.shape[a];
    plan[4 + outer + a] = first.strides[a] * bpe;
  }
  const sources: TypedArray[] = [];
  for (let j = 0, at = 4 + 2 * outer; j < pieces; j++, at += 2 + outer) {
    const src = srcs[j];
    plan[at] = dsts[j].shape[outer] * bpe;
    plan[at + 1] = src.offset * bpe;
    for (let a = 0; a < outer; a++) plan[at + 2 + a] = src.strides[a] * bpe;
    sources.push(src.data);
  }
  return native.copyRowsJoined(first.data, sources, plan);
}

/** Sets every element of a view to `value` (already of the view's element type). */
export function fillStrided(dst: StridedView, value: Scalar): void {
  const { shape, strides } = coalesce(dst.shape, [dst.strides]);
  const [ds] = strides;
  const d = dst.data as Float64Array;
  const v = value as number;
  if (shape.length === 0) {
    if (dst.shape.every((n) => n > 0)) d[dst.offset] = v;
    return;
  }
  if (shape.some((n) => n === 0)) return;
  const inner = shape.length - 1;
  const n = shape[inner];
  const step = ds[inner];
  forEachRow(shape, ds, ds, dst.offset, dst.offset, (di) => {
    if (step === 1) d.fill(v, di, di + n);
    else for (let k = 0; k < n; k++) d[di + k * step] = v;
  });
}

/**
 * Calls `row(dOffset, sOffset)` for every position of all axes but the last, with an
 * odometer over the outer axes (no recursion, no allocation per row).
 */
export function forEachRow(
  shape: readonly number[], ds: readonly number[], ss: readonly number[],
  dOffset: number, sOffset: number, row: (di: number, si: number) => void,
): void {
  const outer = shape.length - 1;
  if (outer === 0) {
    row(dOffset, sOffset);
    return;
  }
  const counter = new Array<number>(outer).fill(0);
  let di = dOffset;
  let si = sOffset;
  for (;;) {
    row(di, si);
    let axis = outer - 1;
    for (; axis >= 0; axis--) {
      counter[axis]++;
      di += ds[axis];
      si += ss[axis];
      if (counter[axis] < shape[axis]) break;
      di -= ds[axis] * shape[axis];
      si -= ss[axis] * shape[axis];
      counter[axis] = 0;
    }
    if (axis < 0) return;
  }
}
