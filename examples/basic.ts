/**
 * DosNa's README tutorial in TypeScript: a random 100^3 cube stored in 32^3 chunks, read
 * back whole and in slices, and a misaligned block written and checked.
 *
 *   npm run example                                  # default backend (ram) and engine (cpu)
 *   npm run example -- --backend hdf5 --connection-options directory=/tmp
 */
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { parseScriptArgs, scriptConnectionOptions } from '../src/cli/connection-args.js';

const USAGE = `usage: basic.ts [--backend B] [--engine E] [--connection NAME] [--connection-options k=v ...]
                [--engine-options k=v ...]

DosNa's tutorial: a random 100^3 float64 cube in 32^3 chunks, read back whole and in slices,
and a misaligned block written and checked. The connection (default dosna-tutorial) is made
if missing; the dataset is deleted at the end.`;

const { args } = parseScriptArgs(process.argv.slice(2), { name: 'basic.ts', usage: USAGE, flags: {} }, () => ({}));
const name = args.connection ?? 'dosna-tutorial';

// Random data, as np.random.randn(100, 100, 100) (float64).
const n = 100;
const data = dn.ndarray(Float64Array.from({ length: n ** 3 }, () => gaussian()), [n, n, n]);

await dn.withConnection(name, scriptConnectionOptions(args, dn.current().backend), async (con) => {
  console.log(`${con}`);
  if (await con.hasDataset('data')) await con.delDataset('data');
  const ds = await con.createDataset('data', { data, chunkSize: [32, 32, 32] });
  console.log(`${ds}: ${ds.totalChunks} chunks in a ${ds.chunkGrid.join('x')} grid`);

  const row = await ds.get([0, 0, s(0, 10)]);
  console.log('ds[0, 0, :10] =', Array.from(row.data as Float64Array, (v) => v.toFixed(8)).join(' '));
  assertEqual(await ds.get(['...']), data, 'ds[...] == data');

  // ds[36:80, 89:, :56] = data[36:80, 89:, :56]
  const block = [s(36, 80), s(89, null), s(null, 56)];
  const twice = dn.ndarray(Float64Array.from({ length: 44 * 11 * 56 }, () => 2 * gaussian()), [44, 11, 56]);
  await ds.set(block, twice);
  assertEqual(await ds.get(block), twice, 'ds[36:80, 89:, :56] after set');
  assertEqual(await ds.get([s(0, 36)]), data.hi(36, n, n), 'untouched ds[:36]');

  await ds.delete();
});

function gaussian(): number {
  // Box-Muller: a standard normal sample.
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}

function assertEqual(got: dn.NdArray, want: dn.NdArray, what: string): void {
  const shape = want.shape;
  if (got.shape.join() !== shape.join()) throw new Error(`${what}: shape ${got.shape} != ${shape}`);
  let k = 0;
  const index = new Array<number>(shape.length).fill(0);
  const total = shape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < total; i++) {
    if (got.data[k++] !== want.get(...index)) throw new Error(`${what}: differs at [${index}]`);
    for (let a = shape.length - 1; a >= 0 && ++index[a] === shape[a]; a--) index[a] = 0;
  }
  console.log(`${what}: equal (${total} values)`);
}
