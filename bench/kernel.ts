/** The per-chunk gaussian kernel on one 64^3 float32 block, beside SciPy's gaussian_filter (Debian's python3-scipy). */
import { execFileSync } from 'node:child_process';
import * as dn from '../src/index.js';
import { emit, median, randomFloat32 } from './common.js';

const n = 64;
const runs = 15;
const x = randomFloat32(n ** 3);
const times: number[] = [];
for (let r = 0; r < runs; r++) {
  const t = performance.now();
  dn.gaussianFilter(x, [n, n, n], 1.5);
  times.push(performance.now() - t);
}
let scipyMs: number | null = null;
let note = '';
try {
  scipyMs = Number(execFileSync('/usr/bin/python3', ['-c', `
import time, numpy as np
from scipy.ndimage import gaussian_filter
x = np.random.default_rng(1).random((${n}, ${n}, ${n})).astype(np.float32)
ts = []
for _ in range(${runs}):
    t = time.perf_counter(); gaussian_filter(x, 1.5, mode='reflect', truncate=4); ts.append((time.perf_counter() - t) * 1000)
print(sorted(ts)[len(ts) // 2])
`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim());
} catch (error) {
  note = `SciPy reference not run: ${(error as Error).message.split('\n')[0]} (bash scripts/ensure-debian-packages.sh python3-scipy)`;
}
emit({ kind: 'kernel', block: [n, n, n], ms: median(times), scipyMs, note });
