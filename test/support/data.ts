import type { DType, TypedArray } from '../../src/dtypes.js';
import { allocate } from '../../src/dtypes.js';
import { randInt } from './reference.js';
import { ndarray, type NdArray } from '../../src/index.js';

/** Random values that every dtype holds exactly (so comparisons can be exact). */
export function randomTyped(r: () => number, dtype: DType, n: number): TypedArray {
  const out = allocate(dtype, n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'int64': (out as BigInt64Array)[i] = BigInt(randInt(r, -1e9, 1e9)) * 4096n; break;
      case 'uint64': (out as BigUint64Array)[i] = BigInt(randInt(r, 0, 2e9)) * 4096n; break;
      case 'float32': case 'float64': (out as Float64Array)[i] = randInt(r, -1000, 1000) / 8; break;
      case 'uint8': case 'uint16': case 'uint32': (out as Uint8Array)[i] = randInt(r, 0, 250); break;
      default: (out as Int8Array)[i] = randInt(r, -120, 120);
    }
  }
  return out;
}

export const ALL_DTYPES: DType[] = ['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float32', 'float64'];

/** A float32 cube of side `n` whose cell (i, j, k) holds i * 10000 + j * 100 + k (each cell tells where it is). */
export function indexCube(n: number): NdArray<Float32Array> {
  const data = new Float32Array(n ** 3);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) data[(i * n + j) * n + k] = i * 10000 + j * 100 + k;
  return ndarray(data, [n, n, n]);
}
