/**
 * The values `con.allreduce` combines across ranks, and how: numbers and bigints, or arrays and
 * typed arrays element by element, with sum, min or max (NaN propagates through min and max, as
 * in NumPy's `minimum` and `maximum`).
 */
import { DTypeError, ShapeError } from './errors.js';
import type { TypedArray } from './dtypes.js';

export type AllreduceOp = 'sum' | 'min' | 'max';
export const ALLREDUCE_OPS: readonly AllreduceOp[] = ['sum', 'min', 'max'];
export type AllreduceValue = number | bigint | readonly number[] | TypedArray;

export function checkAllreduceValue(value: unknown): void {
  if (typeof value === 'number' || typeof value === 'bigint') return;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return;
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return;
  throw new DTypeError(`allreduce combines numbers, bigints, arrays of numbers and typed arrays, not ${Object.prototype.toString.call(value)}`);
}

function scalar(a: number | bigint, b: number | bigint, op: AllreduceOp): number | bigint {
  if (typeof a !== typeof b) throw new DTypeError(`allreduce: ranks gave a ${typeof a} and a ${typeof b}`);
  if (op === 'sum') return (a as number) + (b as number);
  if (typeof a === 'number' && (Number.isNaN(a) || Number.isNaN(b as number))) return NaN;
  if (op === 'min') return a < b ? a : b;
  return a > b ? a : b;
}

/** `a` and `b` combined (a new array for arrays; typed arrays keep their type). */
export function combineValues(a: AllreduceValue, b: AllreduceValue, op: AllreduceOp): AllreduceValue {
  if (typeof a === 'number' || typeof a === 'bigint') {
    if (typeof b !== 'number' && typeof b !== 'bigint') throw new DTypeError('allreduce: ranks gave a scalar and an array');
    return scalar(a, b, op);
  }
  const x = a as ArrayLike<number | bigint>;
  const y = b as ArrayLike<number | bigint>;
  if (typeof b === 'number' || typeof b === 'bigint' || x.length !== y.length) {
    throw new ShapeError(`allreduce: ranks gave arrays of different lengths (${x.length} and ${typeof b === 'object' ? y.length : 'a scalar'})`);
  }
  const out = Array.isArray(a) ? new Array<number>(x.length) : new (a.constructor as new (n: number) => TypedArray)(x.length);
  for (let i = 0; i < x.length; i++) (out as unknown as (number | bigint)[])[i] = scalar(x[i], y[i], op);
  return out as AllreduceValue;
}
