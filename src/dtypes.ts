/**
 * dtypes: the names users write, the typed arrays that hold them, NumPy's type strings
 * (for on-disk metadata shared with Python DosNa), and casting of user values.
 */
import { DTypeError } from './errors.js';

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
  return new ctor(new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT)) as TypedArrayFor[D];
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
 * Converts one user scalar to the dtype, refusing what the dtype cannot hold: a fraction or
 * NaN for an integer dtype, or an integer outside its range. (Arrays are cast with C-like
 * wrap-around instead, as NumPy's `astype` does; a single scalar that does not fit is almost
 * always a mistake, so it is refused, as NumPy 2 does for Python integers.)
 */
export function castScalar(dtype: DType, value: unknown): Scalar {
  const info = INFO[dtype];
  if (typeof value === 'boolean') value = value ? 1 : 0;
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    throw new DTypeError(`expected a number or bigint for dtype ${dtype}, got ${describe(value)}`);
  }
  if (!info.integer) {
    // float32 rounds on store; a bigint beyond 2^53 loses precision as it does in NumPy.
    return Number(value);
  }
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

/** Converts a number/bigint to the element type of a typed array family with C-like casting. */
export function toBigIntElement(value: number): bigint {
  if (!Number.isFinite(value)) throw new DTypeError(`cannot cast ${value} to a 64-bit integer`);
  return BigInt(Math.trunc(value));
}

/**
 * Copies `src` into `dst` element by element position, converting between element types.
 * Same-family arrays use `TypedArray.set` (native conversion); number <-> bigint needs a loop.
 */
export function castInto(dst: TypedArray, src: TypedArray | ArrayLike<number | bigint>): void {
  const dstBig = dst instanceof BigInt64Array || dst instanceof BigUint64Array;
  const srcBig = src instanceof BigInt64Array || src instanceof BigUint64Array;
  if (ArrayBuffer.isView(src) && dstBig === srcBig) {
    (dst as Float64Array).set(src as Float64Array);
    return;
  }
  const n = src.length;
  if (dstBig) {
    const d = dst as BigInt64Array;
    for (let i = 0; i < n; i++) {
      const v = src[i];
      // Element assignment wraps modulo 2^64 (ToBigInt64/ToBigUint64), as a C cast would.
      d[i] = typeof v === 'bigint' ? v : toBigIntElement(v);
    }
  } else {
    const d = dst as Float64Array;
    for (let i = 0; i < n; i++) d[i] = Number(src[i]);
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'}`;
  return `${typeof value} ${String(value)}`;
}
