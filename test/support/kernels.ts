/** Module kernels for tests: imported by reference (dn.kernel) in every engine. */
import { ndarray, type ChunkContext, type NdArray } from '../../src/index.js';

export function scale(chunk: NdArray, ctx: ChunkContext<{ factor: number }>): NdArray {
  const out = Float64Array.from(chunk.data as Float64Array, (v) => v * ctx.args.factor);
  return ndarray(out, chunk.shape);
}

/**
 * Doubles the chunk, but first records the run (a line in `<dir>/runs`) and, on the first
 * run, says it has read the chunk (`<dir>/started`) and waits for `<dir>/go`: the test writes
 * to the chunk in between, so this run's result is stale and must not be committed.
 */
export async function doubleAfterSignal(chunk: NdArray, ctx: ChunkContext<{ dir: string }>): Promise<void> {
  const { appendFileSync, existsSync, readFileSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { dir } = ctx.args;
  appendFileSync(join(dir, 'runs'), 'run\n');
  if (readFileSync(join(dir, 'runs'), 'utf8').split('\n').length === 2) {
    writeFileSync(join(dir, 'started'), '');
    const t0 = Date.now();
    while (!existsSync(join(dir, 'go'))) {
      if (Date.now() - t0 > 30_000) throw new Error('never told to go on');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  const d = chunk.data as Float64Array;
  for (let i = 0; i < d.length; i++) d[i] *= 2;
}
