/** Module kernels for tests: imported by reference (dn.kernel) in every engine. */
import { ndarray, type ChunkContext, type NdArray } from '../../src/index.js';

export function scale(chunk: NdArray, ctx: ChunkContext<{ factor: number }>): NdArray {
  const out = Float64Array.from(chunk.data as Float64Array, (v) => v * ctx.args.factor);
  return ndarray(out, chunk.shape);
}
