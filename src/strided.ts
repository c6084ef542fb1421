/**
 * The hot path: copying an N-d strided block between two flat typed arrays of the same dtype.
 * Contiguous innermost runs go through `TypedArray.set` (or `fill` for a broadcast value);
 * axes that are contiguous in both arrays are merged first, so a whole-chunk copy is one
 * `set`. No per-element allocation.
 */
import type { Scalar, TypedArray } from './dtypes.js';

/** A strided view on a flat typed array: element (i0, i1, ...) is at `offset + sum(i_k * strides[k])`. */
export interface StridedView<T extends TypedArray = TypedArray> {
  readonly data: T;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
}

/** Merges adjacent axes that are contiguous in every view; drops axes of length 1. */
export function coalesce(shape: readonly number[], stridesList: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = stridesList.map(() => []);
  for (let axis = 0; axis < shape.length; axis++) {
    const n = shape[axis];
    if (n === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && stridesList.every((st, v) => outStrides[v][last] === st[axis] * n)) {
      outShape[last] *= n;
      stridesList.forEach((st, v) => { outStrides[v][last] = st[axis]; });
      continue;
    }
    outShape.push(n);
    stridesList.forEach((st, v) => outStrides[v].push(st[axis]));
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
 * Contiguous short rows copied as raw 32-bit words: one monomorphic Int32Array loop serves
 * every dtype (and copies bits exactly: no float NaN rewriting). Rows, offsets and strides must
 * fall on 4-byte boundaries in both arrays (always true for 4- and 8-byte dtypes; for 1- and
 * 2-byte ones when the row lengths and positions are multiples of 4 or 2 elements, as chunk
 * rows of even size are); returns false, copying nothing, when they do not.
 */
function copyShortRuns(
  shape: readonly number[], ds: readonly number[], ss: readonly number[],
  dOffset: number, sOffset: number, d: TypedArray, s: TypedArray,
): boolean {
  const bpe = d.BYTES_PER_ELEMENT;
  const inner = shape.length - 1;
  if (bpe < 4) {
    const onWord = (elements: number) => (elements * bpe) % 4 === 0;
    if (d.byteOffset % 4 !== 0 || s.byteOffset % 4 !== 0 || !onWord(shape[inner]) || !onWord(dOffset) || !onWord(sOffset)) return false;
    for (let axis = 0; axis < inner; axis++) if (!onWord(ds[axis]) || !onWord(ss[axis])) return false;
  }
  const dw = new Int32Array(d.buffer, d.byteOffset, d.byteLength >> 2);
  const sw = new Int32Array(s.buffer, s.byteOffset, s.byteLength >> 2);
  const n = (shape[inner] * bpe) >> 2;
  const counter = new Array<number>(inner).fill(0);
  const dStep = ds.map((x) => (x * bpe) >> 2);
  const sStep = ss.map((x) => (x * bpe) >> 2);
  let di = (dOffset * bpe) >> 2;
  let si = (sOffset * bpe) >> 2;
  for (;;) {
    for (let k = 0; k < n; k++) dw[di + k] = sw[si + k];
    let axis = inner - 1;
    for (; axis >= 0; axis--) {
      di += dStep[axis];
      si += sStep[axis];
      if (++counter[axis] < shape[axis]) break;
      di -= dStep[axis] * shape[axis];
      si -= sStep[axis] * shape[axis];
      counter[axis] = 0;
    }
    if (axis < 0) return true;
  }
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
