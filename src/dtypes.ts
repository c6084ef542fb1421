/**
 * dtypes: the names users write, the typed arrays that hold them, NumPy's type strings
 * (for on-disk metadata shared with Python DosNa), and casting of user values.
 */
import { DTypeError } from './errors.js';
import { newSharedBuffer } from './shared-memory.js';

/** The element types a dataset can hold. 64-bit integers are held in BigInt arrays. */
export type DType =
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'float32' | 'float64';

/** The typed array that holds each dtype. */
export interface TypedArrayFor {
  int8: Int8Array; int16: Int16Array; int32: Int32Array; int64: BigInt64Array;
  uint8: Uint8Array; uint16: Uint16Array; uint32: Uint32Array; uint64: BigUint64Array;
  float32: Float32Array; float64: Float64Array;
}

export type NumberTypedArray =
  | Int8Array | Int16Array | Int32Array | Uint8Array | Uint8ClampedArray | Uint16Array | Uint32Array
  | Float32Array | Float64Array;
export type BigIntTypedArray = BigInt64Array | BigUint64Array;
export type TypedArray = NumberTypedArray | BigIntTypedArray;

/** A scalar of some dtype: `bigint` for 64-bit integers, `number` otherwise. */
export type Scalar = number | bigint;

interface TypedArrayConstructorLike {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
}

interface DTypeInfo {
  readonly ctor: TypedArrayConstructorLike;
  /** NumPy array-protocol type string, as DosNa stores it (`<f4`, `|u1`, ...). */
  readonly numpy: string;
  readonly bigint: boolean;
  readonly integer: boolean;
  readonly min: Scalar;
  readonly max: Scalar;
}

const INFO: Record<DType, DTypeInfo> = {
  int8: { ctor: Int8Array, numpy: '|i1', bigint: false, integer: true, min: -128, max: 127 },
  int16: { ctor: Int16Array, numpy: '<i2', bigint: false, integer: true, min: -32768, max: 32767 },
  int32: { ctor: Int32Array, numpy: '<i4', bigint: false, integer: true, min: -2147483648, max: 2147483647 },
  int64: { ctor: BigInt64Array, numpy: '<i8', bigint: true, integer: true, min: -(2n ** 63n), max: 2n ** 63n - 1n },
  uint8: { ctor: Uint8Array, numpy: '|u1', bigint: false, integer: true, min: 0, max: 255 },
  uint16: { ctor: Uint16Array, numpy: '<u2', bigint: false, integer: true, min: 0, max: 65535 },
  uint32: { ctor: Uint32Array, numpy: '<u4', bigint: false, integer: true, min: 0, max: 4294967295 },
  uint64: { ctor: BigUint64Array, numpy: '<u8', bigint: true, integer: true, min: 0n, max: 2n ** 64n - 1n },
  float32: { ctor: Float32Array, numpy: '<f4', bigint: false, integer: false, min: -Infinity, max: Infinity },
  float64: { ctor: Float64Array, numpy: '<f8', bigint: false, integer: false, min: -Infinity, max: Infinity },
};

/** Every dtype name, in a stable order. */
export const DTYPES = Object.keys(INFO) as DType[];

/** True when `name` is a dtype this library knows. */
export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && Object.hasOwn(INFO, name);
}

/** Checks a dtype name given by a user; throws {@link DTypeError} listing the valid ones. */
export function checkDType(name: unknown): DType {
  if (!isDType(name)) {
    throw new DTypeError(`unknown dtype ${JSON.stringify(name)}; expected one of ${DTYPES.join(', ')}`);
  }
  return name;
}

export function bytesPerElement(dtype: DType): number {
  return INFO[dtype].ctor.BYTES_PER_ELEMENT;
}

export function isBigIntDType(dtype: DType): boolean {
  return INFO[dtype].bigint;
}

/** A new zeroed typed array of `length` elements, on a SharedArrayBuffer when `shared`. */
export function allocate<D extends DType>(dtype: D, length: number, shared = false): TypedArrayFor[D] {
  const { ctor } = INFO[dtype];
  if (!shared) return new ctor(length) as TypedArrayFor[D];
  return new ctor(newSharedBuffer(length * ctor.BYTES_PER_ELEMENT)) as TypedArrayFor[D];
}

/** A typed array of `length` elements on a SharedArrayBuffer that is not zeroed, for one about to be overwritten entirely. */
export function allocateSharedUninitialized<D extends DType>(dtype: D, length: number): TypedArrayFor[D] {
  const { ctor } = INFO[dtype];
  return new ctor(newSharedBuffer(length * ctor.BYTES_PER_ELEMENT, false)) as TypedArrayFor[D];
}

/**
 * A typed array whose contents are whatever the allocator had (not zeroed), for buffers
 * that are about to be overwritten entirely. Recycled malloc memory avoids the page faults a
 * fresh zeroed buffer costs.
 */
export function allocateUninitialized<D extends DType>(dtype: D, length: number): TypedArrayFor[D] {
  const { ctor } = INFO[dtype];
  const bytes = Buffer.allocUnsafeSlow(length * ctor.BYTES_PER_ELEMENT);
  return new ctor(bytes.buffer, bytes.byteOffset, length) as TypedArrayFor[D];
}

/** A typed-array view of `dtype` on bytes; copies only when the bytes are misaligned for it. */
export function viewAs<D extends DType>(dtype: D, bytes: Uint8Array | ArrayBufferLike, byteOffset = 0, length?: number): TypedArrayFor[D] {
  const { ctor } = INFO[dtype];
  const bpe = ctor.BYTES_PER_ELEMENT;
  let buffer: ArrayBufferLike;
  let offset: number;
  let byteLength: number;
  if (ArrayBuffer.isView(bytes)) {
    buffer = bytes.buffer;
    offset = bytes.byteOffset + byteOffset;
    byteLength = bytes.byteLength - byteOffset;
  } else {
    buffer = bytes;
    offset = byteOffset;
    byteLength = bytes.byteLength - byteOffset;
  }
  const n = length ?? Math.floor(byteLength / bpe);
  if (offset % bpe === 0) return new ctor(buffer, offset, n) as TypedArrayFor[D];
  // Misaligned (e.g. a Buffer slice from a pooled allocation): one copy to an aligned buffer.
  const aligned = new Uint8Array(n * bpe);
  aligned.set(new Uint8Array(buffer, offset, n * bpe));
  return new ctor(aligned.buffer, 0, n) as TypedArrayFor[D];
}

/** The bytes of a typed array, without copying. */
export function bytesOf(array: TypedArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** The dtype of a typed array (Uint8ClampedArray counts as uint8); throws for other objects. */
export function dtypeOfArray(array: unknown): DType {
  if (array instanceof Float64Array) return 'float64';
  if (array instanceof Float32Array) return 'float32';
  if (array instanceof Int8Array) return 'int8';
  if (array instanceof Int16Array) return 'int16';
  if (array instanceof Int32Array) return 'int32';
  if (array instanceof BigInt64Array) return 'int64';
  if (array instanceof Uint8Array || array instanceof Uint8ClampedArray) return 'uint8';
  if (array instanceof Uint16Array) return 'uint16';
  if (array instanceof Uint32Array) return 'uint32';
  if (array instanceof BigUint64Array) return 'uint64';
  throw new DTypeError(`cannot infer a dtype from ${describe(array)}`);
}

/** The NumPy type string of a dtype (`float32` -> `<f4`). */
export function toNumpyTypeString(dtype: DType): string {
  return INFO[dtype].numpy;
}

/** Parses a NumPy type string or dtype name (`<f4`, `float32`, `f4`, `|u1`, `u1`) into a dtype. */
export function fromNumpyTypeString(text: string): DType {
  if (isDType(text)) return text;
  const m = /^([<>|=]?)([iuf])(\d)$/.exec(text);
  if (m) {
    const [, order, kind, size] = m;
    if (order === '>' && size !== '1') {
      throw new DTypeError(`big-endian dtype ${JSON.stringify(text)} is not supported; store little-endian data`);
    }
    const name = `${kind === 'i' ? 'int' : kind === 'u' ? 'uint' : 'float'}${Number(size) * 8}`;
    if (isDType(name)) return name;
  }
  throw new DTypeError(`unsupported NumPy dtype ${JSON.stringify(text)}`);
}

/**
 * A bigint as the nearest float32, rounded once (ties to even). `Math.fround(Number(big))`
 * rounds twice, to 53 bits and then to 24, which can land on the wrong neighbour:
 * 2^60 + 2^36 + 1 would become 2^60 where NumPy gives 2^60 + 2^37.
 */
export function bigintToFloat32(value: bigint): number {
  const negative = value < 0n;
  let magnitude = negative ? -value : value;
  const bits = magnitude.toString(2).length;
  if (bits > 24) {
    const shift = BigInt(bits - 24);
    let kept = magnitude >> shift;
    const rest = magnitude - (kept << shift);
    const half = 1n << (shift - 1n);
    if (rest > half || (rest === half && (kept & 1n) === 1n)) kept += 1n;
    magnitude = kept << shift;
  }
  // At most 25 significant bits now: Number() is exact (below 2^128), fround only checks range.
  const rounded = Math.fround(Number(magnitude));
  return negative ? -rounded : rounded;
}

/** A number or bigint as a float of `dtype`, rounded once. */
function toFloat(dtype: DType, value: number | bigint): number {
  if (typeof value === 'number') return dtype === 'float32' ? Math.fround(value) : value;
  return dtype === 'float32' ? bigintToFloat32(value) : Number(value); // Number(bigint) rounds once (ties to even)
}

/**
 * Converts one user scalar to the dtype, refusing what the dtype cannot hold: a fraction or
 * NaN for an integer dtype, or an integer outside its range. A float dtype gets the nearest
 * value it holds (so a float32 dataset's fill value 0.1 is 0.10000000149011612 on every
 * handle). A single scalar that does not fit is almost always a mistake, so it is refused, as
 * NumPy 2 does for Python integers.
 */
export function castScalar(dtype: DType, value: unknown): Scalar {
  const info = INFO[dtype];
  if (typeof value === 'boolean') value = value ? 1 : 0;
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    throw new DTypeError(`expected a number or bigint for dtype ${dtype}, got ${describe(value)}`);
  }
  if (!info.integer) return toFloat(dtype, value);
  let big: bigint;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      throw new DTypeError(`${value} is not an integer, so dtype ${dtype} cannot hold it`);
    }
    big = BigInt(value);
  } else {
    big = value;
  }
  if (big < BigInt(info.min) || big > BigInt(info.max)) {
    throw new DTypeError(`${value} is out of range for dtype ${dtype} [${info.min}, ${info.max}]`);
  }
  return info.bigint ? big : Number(big);
}

/**
 * One element of nested JS arrays (as NumPy converts the numbers of a Python list into an
 * array of a dtype): into an integer dtype a finite number is truncated toward zero (1.7 -> 1),
 * and NaN, an infinity, or a value outside the dtype's range is refused with `DTypeError`; into
 * a float dtype a bigint is rounded once. `where` says which element, for the message.
 */
export function castElement(dtype: DType, value: unknown, where: () => string): Scalar {
  const info = INFO[dtype];
  if (typeof value === 'boolean') value = value ? 1 : 0;
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    throw new DTypeError(`nested arrays may hold numbers or bigints only, found ${describe(value)} at ${where()}`);
  }
  if (!info.integer) return toFloat(dtype, value);
  let big: bigint;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new DTypeError(`cannot store ${value} (at ${where()}) in dtype ${dtype}: integers have no NaN or infinity`);
    big = BigInt(Math.trunc(value));
  } else {
    big = value;
  }
  if (big < BigInt(info.min) || big > BigInt(info.max)) {
    throw new DTypeError(`${value} (at ${where()}) is out of range for dtype ${dtype} [${info.min}, ${info.max}]`);
  }
  return info.bigint ? big : Number(big);
}

const FLOAT_ARRAYS = [Float32Array, Float64Array] as const;

/**
 * Copies `src` into `dst` element by element position, converting as NumPy's `astype` does:
 * integer to narrower integer wraps around (int16 300 is 44 in int8), a float to an integer is
 * truncated toward zero, a float or bigint to a float is rounded once. A float that an integer
 * dtype cannot hold at all (NaN, an infinity, or outside its range) is refused with
 * `DTypeError` (NumPy leaves those undefined).
 */
export function castInto(dst: TypedArray, src: TypedArray): void {
  const dstType = dtypeOfArray(dst);
  const info = INFO[dstType];
  const n = src.length;
  if (info.integer && FLOAT_ARRAYS.some((F) => src instanceof F)) {
    const s = src as Float64Array;
    const lo = Number(info.min) - 1;
    const hi = Number(info.max) + 1;
    for (let i = 0; i < n; i++) {
      const v = s[i];
      // Truncation toward zero keeps values in (min - 1, max + 1) inside the range.
      if (!(v > lo && v < hi)) throw new DTypeError(`cannot cast ${v} (element ${i}) to dtype ${dstType}: ${Number.isFinite(v) ? 'out of its range' : 'integers have no NaN or infinity'}`);
    }
  }
  const dstBig = info.bigint;
  const srcBig = src instanceof BigInt64Array || src instanceof BigUint64Array;
  if (dstBig === srcBig) {
    // Same family: the engine's conversion wraps integers and rounds floats once.
    (dst as Float64Array).set(src as Float64Array);
    return;
  }
  if (dstBig) {
    const d = dst as BigInt64Array;
    const s = src as Float64Array;
    for (let i = 0; i < n; i++) d[i] = BigInt(Math.trunc(s[i])); // wraps modulo 2^64 on store
    return;
  }
  const d = dst as Float64Array;
  const s = src as BigInt64Array;
  if (!info.integer) {
    for (let i = 0; i < n; i++) d[i] = toFloat(dstType, s[i]);
    return;
  }
  const bits = info.ctor.BYTES_PER_ELEMENT * 8;
  for (let i = 0; i < n; i++) d[i] = Number(BigInt.asIntN(bits, s[i])); // wraps, then the store wraps to unsigned as needed
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'}`;
  return `${typeof value} ${String(value)}`;
}
