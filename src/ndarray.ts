/**
 * The scijs `ndarray` type, narrowed to our typed arrays. (@types/ndarray's Data union does
 * not admit BigInt arrays over SharedArrayBuffer, which our shared result buffers are.)
 */
import createNdArray from 'ndarray';
import type { NdArray as ScijsNdArray } from 'ndarray';
import type { TypedArray } from './dtypes.js';

/** An N-d view on a typed array (scijs `ndarray`): `.data`, `.shape`, `.stride`, `.offset`, `.get(i, j, ...)`. */
export type NdArray<T extends TypedArray = TypedArray> = Omit<ScijsNdArray<T & ScijsNdArray['data']>, 'data' | 'dtype'> & { data: T; dtype: string };

/** Wraps a flat typed array as an ndarray (C order unless strides are given). */
export function ndarray<T extends TypedArray>(data: T, shape: readonly number[], stride?: readonly number[], offset?: number): NdArray<T> {
  return createNdArray(data as never, [...shape], stride && [...stride], offset) as unknown as NdArray<T>;
}
