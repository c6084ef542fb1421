/**
 * User values (scalars, ndarrays, typed arrays, nested arrays) as strided views of a dtype,
 * and NumPy broadcasting of such a view onto a selection.
 */
import type { NdArray } from './ndarray.js';
import {
  allocate, castElement, castInto, castScalar, describe, dtypeOfArray, type DType, type TypedArray,
} from './dtypes.js';
import { DTypeError, ShapeError } from './errors.js';
import { copyStrided, type StridedView } from './strided.js';
import { cStrides, formatShape, product } from './slicing.js';

/** Anything `set`, `load` and `createDataset({ data })` accept as array data. */
export type ArrayValue = NdArray<TypedArray> | TypedArray | NestedArray;
export type NestedArray = readonly (number | bigint | NestedArray)[];
/** A value for `set`: a scalar broadcasts to the whole selection. */
export type Value = number | bigint | ArrayValue;

export function isNdArray(value: unknown): value is NdArray<TypedArray> {
  return typeof value === 'object' && value !== null && 'data' in value && 'shape' in value
    && 'stride' in value && 'offset' in value && ArrayBuffer.isView((value as { data: unknown }).data);
}

/** Shape and natural dtype of array data, without converting it. */
export function inspectArray(value: unknown): { shape: number[]; dtype: DType } {
  if (isNdArray(value)) return { shape: [...value.shape], dtype: dtypeOfArray(value.data) };
  if (ArrayBuffer.isView(value)) return { shape: [(value as TypedArray).length], dtype: dtypeOfArray(value) };
  if (Array.isArray(value)) {
    // Like NumPy: bigints make int64, anything else float64.
    return { shape: nestedShape(value).shape, dtype: typeof firstLeaf(value) === 'bigint' ? 'int64' : 'float64' };
  }
  throw new DTypeError(`expected array data (ndarray, typed array or nested arrays), got ${describe(value)}`);
}

function firstLeaf(value: NestedArray): unknown {
  let v: unknown = value;
  while (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    v = v[0];
  }
  return v;
}

function nestedShape(value: NestedArray): { shape: number[] } {
  const shape: number[] = [];
  let v: unknown = value;
  while (Array.isArray(v)) {
    shape.push(v.length);
    if (v.length === 0) break;
    v = v[0];
  }
  return { shape };
}

/**
 * A strided view of `value` with elements of `dtype`. Data already of that dtype is viewed
 * as is (ndarray strides kept, no copy); anything else is cast into a new contiguous array.
 */
export function toStridedView(value: Value, dtype: DType): StridedView {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    const data = allocate(dtype, 1);
    data[0] = castScalar(dtype, value) as never;
    return { data, offset: 0, shape: [], strides: [] };
  }
  if (isNdArray(value)) {
    const source: StridedView = { data: value.data, offset: value.offset, shape: value.shape, strides: value.stride };
    if (dtypeOfArray(value.data) === dtype && !(value.data instanceof Uint8ClampedArray)) return source;
    // Cast through a contiguous copy in the source's own type.
    const contiguous = allocate(dtypeOfArray(value.data), product(value.shape));
    copyStrided({ data: contiguous, offset: 0, shape: value.shape, strides: cStrides(value.shape) }, source);
    const data = allocate(dtype, contiguous.length);
    castInto(data, contiguous);
    return { data, offset: 0, shape: [...value.shape], strides: cStrides(value.shape) };
  }
  if (ArrayBuffer.isView(value)) {
    const typed = value as TypedArray;
    let data: TypedArray = typed;
    if (dtypeOfArray(typed) !== dtype || typed instanceof Uint8ClampedArray) {
      data = allocate(dtype, typed.length);
      castInto(data, typed);
    }
    return { data, offset: 0, shape: [typed.length], strides: [1] };
  }
  if (Array.isArray(value)) {
    const { shape } = nestedShape(value);
    const data = allocate(dtype, product(shape));
    flattenNested(value, shape, 0, data, 0, dtype);
    return { data, offset: 0, shape, strides: cStrides(shape) };
  }
  throw new DTypeError(`cannot use ${describe(value)} as data; expected a number, bigint, ndarray, typed array or nested arrays`);
}

function flattenNested(value: unknown, shape: readonly number[], axis: number, out: TypedArray, offset: number, dtype: DType): number {
  if (!Array.isArray(value) || value.length !== shape[axis]) {
    throw new ShapeError(`nested arrays are ragged: expected ${shape[axis]} elements at depth ${axis}`);
  }
  if (axis === shape.length - 1) {
    for (const v of value) {
      if (Array.isArray(v)) throw new ShapeError(`nested arrays are ragged: unexpected array at depth ${axis + 1}`);
      const at = offset;
      out[offset++] = castElement(dtype, v, () => `element [${unravel(at, shape).join(', ')}]`) as never;
    }
    return offset;
  }
  for (const v of value) offset = flattenNested(v, shape, axis + 1, out, offset, dtype);
  return offset;
}

/** The multi-index of flat position `offset` in a C-order array of `shape`. */
function unravel(offset: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    index[a] = offset % shape[a];
    offset = Math.floor(offset / shape[a]);
  }
  return index;
}

/**
 * Broadcasts a value view onto a selection with NumPy's rules. `target` is the squeezed
 * shape (what NumPy would show), `squeeze` marks integer-indexed axes of the full selection.
 * Returns strides over the unsqueezed selection shape (0 on broadcast and squeezed axes).
 */
export function broadcastTo(value: StridedView, target: readonly number[], squeeze: readonly boolean[]): StridedView {
  const fail = () => new ShapeError(
    `could not broadcast value of shape ${formatShape(value.shape)} into selection of shape ${formatShape(target)}`,
  );
  const vs = value.shape;
  const extra = vs.length - target.length;
  for (let i = 0; i < extra; i++) if (vs[i] !== 1) throw fail();
  const squeezedStrides: number[] = [];
  for (let j = 0; j < target.length; j++) {
    const vi = j + extra;
    if (vi < 0) { squeezedStrides.push(0); continue; }
    if (vs[vi] === target[j]) squeezedStrides.push(target[j] === 1 ? 0 : value.strides[vi]);
    else if (vs[vi] === 1) squeezedStrides.push(0);
    else throw fail();
  }
  const shape: number[] = [];
  const strides: number[] = [];
  let j = 0;
  for (const sq of squeeze) {
    if (sq) { shape.push(1); strides.push(0); }
    else { shape.push(target[j]); strides.push(squeezedStrides[j]); j++; }
  }
  return { data: value.data, offset: value.offset, shape, strides };
}

