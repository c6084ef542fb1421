/**
 * Reductions on every backend x engine: `stats` and `histogram` equal NumPy's (histogram counts
 * and edges exactly, in NumPy's precision for each dtype; sums to 1e-12), over stored chunks,
 * unstored ones (the fill value) and edge chunks; `reduce` folds partials in chunk order;
 * `allreduce` with one rank. (Several ranks: test/cluster-rank.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { python } from './support/python.js';
import { closeConnection, combos, openConnection, type Combo } from './support/matrix.js';

const SHAPE = [13, 9, 7];
const N = 13 * 9 * 7;
const CHUNKS = [4, 4, 4];

/** The datasets of the tests, built the same way here and in NumPy. */
const PYTHON_DATA = `
import numpy as np, json
n = ${N}
i = np.arange(n)
base = ((i * 37) % 101).astype(np.float64)
f32 = np.full(n, 2.5, np.float32); f32[:5 * 63] = (base[:5 * 63] / 7 - 3).astype(np.float32)   # rows 5.. are never written
f64 = base * 1e7 - 3e8 + i / 3
i16 = (base * 300 - 15000).astype(np.int16)
u64 = (base.astype(np.uint64) * np.uint64(2**40) + np.uint64(7))
nan = f64.copy(); nan[100] = np.nan
out = {}
def h(a, bins, rng=None):
    c, e = np.histogram(a, bins, rng)
    return {"counts": c.tolist(), "edges": [float(x) for x in e]}
def st(a):
    b = a.astype(np.float64)
    return {"count": int(a.size), "min": float(a.min()), "max": float(a.max()), "sum": float(b.sum()), "mean": float(b.mean()), "std": float(b.std())}
for name, a in [("f32", f32), ("f64", f64), ("i16", i16), ("u64", u64)]:
    out[name] = {"stats": st(a), "h10": h(a, 10, (-2.0, 12.0)), "hauto": h(a, 17), "h1": h(a, 1, (0.0, 50.0)), "hflat": h(a, 3, (5.0, 5.0)), "hwide": h(a, 64, (-1e9, 2e9))}
out["nan"] = {"h": h(nan, 6, (-3e8, 7e8))}
print(json.dumps(out))
`;

/** The same data in JS. */
function testData() {
  const base = Float64Array.from({ length: N }, (_, i) => (i * 37) % 101);
  const f32 = new Float32Array(N);
  for (let i = 0; i < 5 * 63; i++) f32[i] = base[i] / 7 - 3;
  const f64 = Float64Array.from(base, (b, i) => b * 1e7 - 3e8 + i / 3);
  const i16 = Int16Array.from(base, (b) => b * 300 - 15000);
  const u64 = BigUint64Array.from(base, (b) => BigInt(b) * 2n ** 40n + 7n);
  const nan = f64.slice();
  nan[100] = NaN;
  return { f32, f64, i16, u64, nan };
}

interface Reference {
  stats: dn.DatasetStats;
  h10: dn.Histogram; hauto: dn.Histogram; h1: dn.Histogram; hflat: dn.Histogram; hwide: dn.Histogram;
}

let numpy: Record<'f32' | 'f64' | 'i16' | 'u64', Reference> & { nan: { h: dn.Histogram } };
beforeAll(() => {
  numpy = JSON.parse(python(PYTHON_DATA));
});

describe.each(combos())('reductions: $label', (combo: Combo) => {
  let con: dn.Connection;
  const data = testData();
  const datasets: Record<string, dn.Dataset> = {};

  beforeAll(async () => {
    con = await openConnection(combo);
    // float32 with only rows 0-4 written: the other chunks are not stored and read as the fill value.
    datasets.f32 = await con.createDataset('f32', { shape: SHAPE, dtype: 'float32', chunkSize: CHUNKS, fillValue: 2.5 });
    await datasets.f32.set([s(0, 5)], dn.ndarray(data.f32.slice(0, 5 * 63), [5, 9, 7]));
    for (const name of ['f64', 'i16', 'u64', 'nan'] as const) {
      datasets[name] = await con.createDataset(name, { data: dn.ndarray(data[name], SHAPE), chunkSize: CHUNKS, compression: name === 'i16' ? 'zstd' : null });
    }
  });
  afterAll(async () => closeConnection(con));

  it('stats: count, min, max exactly; sum, mean and std to 1e-12, as NumPy on float64', async () => {
    for (const name of ['f32', 'f64', 'i16', 'u64'] as const) {
      const got = await datasets[name].stats();
      const want = numpy[name].stats;
      expect([got.count, got.min, got.max], name).toEqual([want.count, want.min, want.max]);
      for (const k of ['sum', 'mean', 'std'] as const) expect(Math.abs(got[k] - want[k]), `${name} ${k}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want[k])));
    }
    expect(datasets.f32.lastRun).toMatchObject({ operation: 'reduce', chunks: expect.any(Number) });
  });

  it('histogram: counts and edges equal NumPy\'s, with a range, without (the data\'s), one bin, a flat range', async () => {
    for (const name of ['f32', 'f64', 'i16', 'u64'] as const) {
      const ds = datasets[name];
      expect(await ds.histogram(10, [-2, 12]), `${name} h10`).toEqual(numpy[name].h10);
      expect(await ds.histogram(17), `${name} hauto`).toEqual(numpy[name].hauto);
      expect(await ds.histogram(1, [0, 50]), `${name} h1`).toEqual(numpy[name].h1);
      expect(await ds.histogram(3, [5, 5]), `${name} hflat`).toEqual(numpy[name].hflat);
      expect(await ds.histogram(64, [-1e9, 2e9]), `${name} hwide`).toEqual(numpy[name].hwide);
    }
  });

  it('NaN: stats are NaN but the count, a histogram leaves it out, an automatic range refuses it', async () => {
    const stats = await datasets.nan.stats();
    expect(stats.count).toBe(N);
    for (const k of ['min', 'max', 'sum', 'mean', 'std'] as const) expect(stats[k], k).toBeNaN();
    expect(await datasets.nan.histogram(6, [-3e8, 7e8])).toEqual(numpy.nan.h);
    await expect(datasets.nan.histogram(6)).rejects.toThrow(/autodetected range \[NaN, NaN\] is not finite; give a range/);
    await expect(datasets.f64.histogram(0)).rejects.toBeInstanceOf(dn.OptionError);
    await expect(datasets.f64.histogram(4, [3, 1])).rejects.toThrow(/max must be larger than min/);
  });

  it('reduce: partials in chunk order (the grid\'s C order), args, and a kernel\'s error naming its chunk', async () => {
    const ds = datasets.f64;
    const order = await ds.reduce((_chunk, ctx) => ctx.index.join('.'), (acc: string[], p: string) => [...acc, p], []);
    const expected: string[] = [];
    for (let x = 0; x < 4; x++) for (let y = 0; y < 3; y++) for (let z = 0; z < 2; z++) expected.push(`${x}.${y}.${z}`);
    expect(order).toEqual(expected);
    const above = await ds.reduce((chunk, ctx) => {
      let n = 0;
      for (const v of chunk.data as Float64Array) if (v > (ctx.args as number)) n++;
      return n;
    }, (a: number, b: number) => a + b, 0, { args: 0 });
    expect(above).toBe(Array.from(data.f64).filter((v) => v > 0).length);
    // Typed-array partials (a per-chunk column sum) combine in order too.
    const columns = await ds.reduce((chunk) => {
      const sums = new Float64Array(7);
      const values = chunk.data as Float64Array;
      for (let i = 0; i < values.length; i++) sums[i % chunk.shape[2]] += values[i];
      return sums;
    }, (acc: Float64Array, p: Float64Array) => acc.map((v, i) => v + (p[i] ?? 0)), new Float64Array(7));
    expect(columns.length).toBe(7);
    await expect(ds.reduce((_c, ctx) => { if (ctx.index.join() === '2,1,0') throw new Error('bad chunk'); return 0; }, (a: number) => a, 0))
      .rejects.toThrow(/chunk function failed on chunk \[2, 1, 0\]: bad chunk/);
    await expect(ds.reduce(() => 0, 'x' as never, 0)).rejects.toBeInstanceOf(dn.OptionError);
    await expect(ds.reduce(() => 0, (a: number) => a, 0, { halo: 1 } as never)).rejects.toThrow(/unknown option.*halo/);
  });

  it('allreduce with one rank gives the value back; bad ops and values are refused', async () => {
    expect(await con.allreduce(3.5, 'sum')).toBe(3.5);
    expect(await con.allreduce([1, 2], 'max')).toEqual([1, 2]);
    expect(await con.allreduce(7n, 'min')).toBe(7n);
    await expect(con.allreduce(1, 'prod' as never)).rejects.toBeInstanceOf(dn.OptionError);
    await expect(con.allreduce('x' as never, 'sum')).rejects.toBeInstanceOf(dn.DTypeError);
  });
});
