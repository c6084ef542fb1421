/**
 * The per-chunk gaussian kernel on one 64^3 float32 block, beside SciPy's gaussian_filter
 * (Debian's python3-scipy). Both are timed in interleaved rounds and pooled, so a noisy
 * moment on a shared machine weighs on both alike.
 */
import { execFileSync } from 'node:child_process';
import * as dn from '../src/index.js';
import { emit, median, randomFloat32 } from './common.js';

const n = 64;
const rounds = 5;
const perRound = 11;
const x = randomFloat32(n ** 3);
const js: number[] = [];
const scipy: number[] = [];
let note = '';
for (let round = 0; round < rounds; round++) {
  for (let r = 0; r < perRound; r++) {
    const t = performance.now();
    dn.gaussianFilter(x, [n, n, n], 1.5);
    js.push(performance.now() - t);
  }
  if (note) continue;
  try {
    const out = execFileSync('/usr/bin/python3', ['-c', `
import time, numpy as np
from scipy.ndimage import gaussian_filter
x = np.random.default_rng(1).random((${n}, ${n}, ${n})).astype(np.float32)
gaussian_filter(x, 1.5, mode='reflect', truncate=4)
for _ in range(${perRound}):
    t = time.perf_counter(); gaussian_filter(x, 1.5, mode='reflect', truncate=4); print((time.perf_counter() - t) * 1000)
`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    scipy.push(...out.trim().split('\n').map(Number));
  } catch (error) {
    note = `SciPy reference not run: ${(error as Error).message.split('\n')[0]} (bash scripts/ensure-debian-packages.sh python3-scipy)`;
  }
}
js.splice(0, 3); // the first calls include compiling the kernel
emit({ kind: 'kernel', block: [n, n, n], ms: median(js), scipyMs: scipy.length ? median(scipy) : null, runs: js.length, note });
