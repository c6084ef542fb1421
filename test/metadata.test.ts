/**
 * The conformance suite for what sits around the array (issue 15): attributes of datasets,
 * groups and the root; groups and dataset paths; resize and append. Run unchanged over every
 * backend x engine, as test/conformance.test.ts is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { writeSelection } from '../src/dataset/selection-io.js';
import { normalizeIndex } from '../src/slicing.js';
import { closeConnection, combos, openConnection, reopen, type Combo } from './support/matrix.js';

const flat = (a: { data: ArrayLike<number | bigint> }): (number | bigint)[] => Array.from(a.data as ArrayLike<number | bigint>);

/** Every kind of attribute value, as a user would set them. */
const SAMPLES: Record<string, dn.AttrValue> = {
  units: 'mm',
  greek: 'µm → Å',
  empty: '',
  voxel: 0.65,
  count: 42,
  negativeZero: -0,
  nan: NaN,
  inf: Infinity,
  ninf: -Infinity,
  big: 2n ** 63n - 1n,
  small: -(2n ** 63n),
  flag: true,
  nothing: null,
  angles: new Float32Array([0, 0.5, 1.25]),
  offsets: new Int16Array([-3, 7]),
  counts: new BigUint64Array([1n, 2n ** 64n - 1n]),
  bytes: new Uint8Array([1, 2, 255]),
  list: [1, 'two', null, [3, { four: 4 }]],
  nested: { energy: { value: 12.4, units: 'keV' }, tags: ['a', 'b'], ok: false },
  shape: 'not the dataset shape (allowed on groups)',
};

describe.each(combos())('metadata and groups: $label', (combo: Combo) => {
  let con: dn.Connection;
  beforeAll(async () => { con = await openConnection(combo); });
  afterAll(async () => { await closeConnection(con); });

  describe('attributes', () => {
    it('round-trip every kind of value on a dataset, a group and the root, through a new connection', async () => {
      const ds = await con.createDataset('attrs-kinds', { shape: [4], dtype: 'int16' });
      const group = await con.createGroup('attrs-group');
      const { shape: _reserved, ...datasetSamples } = SAMPLES;
      await ds.attrs.update(datasetSamples);
      await group.attrs.update(SAMPLES);
      await con.attrs.set('facility', 'DLS');
      const other = await reopen(con);
      try {
        const back = await (await other.getDataset('attrs-kinds')).attrs.toObject();
        expect(Object.keys(back)).toEqual(Object.keys(datasetSamples).sort());
        for (const [name, value] of Object.entries(datasetSamples)) expect(back[name], name).toStrictEqual(value);
        expect(Object.is(back.negativeZero, -0)).toBe(true);
        expect(back.angles).toBeInstanceOf(Float32Array);
        expect(back.counts).toBeInstanceOf(BigUint64Array);
        expect(await (await other.getGroup('attrs-group')).attrs.toObject()).toStrictEqual(
          Object.fromEntries(Object.keys(SAMPLES).sort().map((k) => [k, SAMPLES[k]])),
        );
        expect(await other.attrs.get('facility')).toBe('DLS');
      } finally {
        await other.disconnect();
      }
    });

    it('get gives copies and undefined for a missing name; has, keys, delete and update behave as a map', async () => {
      const ds = await con.createDataset('attrs-map', { shape: [2] });
      const angles = new Float64Array([1, 2]);
      await ds.attrs.set('angles', angles);
      angles[0] = 99; // the stored value was copied
      const got = (await ds.attrs.get('angles')) as Float64Array;
      expect(Array.from(got)).toEqual([1, 2]);
      got[1] = 99; // and so is what get gives back
      expect(Array.from((await ds.attrs.get('angles')) as Float64Array)).toEqual([1, 2]);
      expect(await ds.attrs.get('missing')).toBeUndefined();
      await ds.attrs.update({ b: 1, a: 'x' });
      expect(await ds.attrs.keys()).toEqual(['a', 'angles', 'b']);
      expect(await ds.attrs.has('a')).toBe(true);
      expect(await ds.attrs.delete('a')).toBe(true);
      expect(await ds.attrs.delete('a')).toBe(false);
      await ds.attrs.set('b', [1, 2]); // replaced, with another kind
      expect(await ds.attrs.toObject()).toStrictEqual({ angles: new Float64Array([1, 2]), b: [1, 2] });
    });

    it('refuses reserved and bad names, and values that are not data, changing nothing', async () => {
      const ds = await con.createDataset('attrs-bad', { shape: [2] });
      await ds.attrs.set('kept', 1);
      for (const name of ['shape', 'dtype', 'fillvalue', 'chunk_size', 'dosna_uid', '', 'nul\0']) {
        await expect(ds.attrs.set(name, 1), name).rejects.toBeInstanceOf(dn.InvalidNameError);
      }
      await expect(con.attrs.set('dosna_x', 1)).rejects.toBeInstanceOf(dn.InvalidNameError);
      const bad: unknown[] = [undefined, () => 1, Symbol('x'), new Map(), new Date(0), [NaN], { x: 1n }, new DataView(new ArrayBuffer(2)), 2n ** 64n];
      for (const value of bad) {
        await expect(ds.attrs.set('v', value as dn.AttrValue), String(typeof value)).rejects.toBeInstanceOf(dn.DTypeError);
      }
      // One bad entry in an update writes none of them.
      await expect(ds.attrs.update({ good: 1, bad: undefined as never })).rejects.toBeInstanceOf(dn.DTypeError);
      expect(await ds.attrs.toObject()).toStrictEqual({ kept: 1 });
    });

    it('two connections setting different keys at once lose none of them', async () => {
      const ds = await con.createDataset('attrs-race', { shape: [2] });
      const other = await reopen(con);
      try {
        const theirs = await other.getDataset('attrs-race');
        const group = await con.createGroup('attrs-race-group');
        const theirGroup = await other.getGroup('attrs-race-group');
        await Promise.all([
          ...Array.from({ length: 8 }, (_, i) => ds.attrs.set(`mine${i}`, i)),
          ...Array.from({ length: 8 }, (_, i) => theirs.attrs.set(`theirs${i}`, -i)),
          ...Array.from({ length: 4 }, (_, i) => group.attrs.set(`g${i}`, i)),
          ...Array.from({ length: 4 }, (_, i) => theirGroup.attrs.set(`h${i}`, i)),
        ]);
        expect((await ds.attrs.keys()).length).toBe(16);
        expect(await theirs.attrs.get('mine7')).toBe(7);
        expect((await group.attrs.keys()).length).toBe(8);
      } finally {
        await other.disconnect();
      }
    });

    it('belong to the dataset: a deleted dataset\'s handle fails, and a new dataset of that name starts with none', async () => {
      const ds = await con.createDataset('attrs-gone', { shape: [2] });
      await ds.attrs.set('old', 1);
      await con.delDataset('attrs-gone');
      await expect(ds.attrs.get('old')).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      await expect(ds.attrs.set('x', 1)).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      const again = await con.createDataset('attrs-gone', { shape: [2] });
      expect(await again.attrs.keys()).toEqual([]);
      await expect(ds.attrs.set('x', 1)).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      expect(await again.attrs.keys()).toEqual([]);
    });
  });

  describe('groups and paths', () => {
    it('create groups (and their parents), datasets in them by path or through the group, and list them', async () => {
      const scan = await con.createGroup('scan1');
      expect(scan.path).toBe('scan1');
      const raw = await con.createGroup('scan1/raw/frames'); // makes scan1/raw too
      expect(raw.name).toBe('frames');
      const vol = await scan.createDataset('vol', { shape: [4, 4], dtype: 'uint8', chunkSize: [2, 2] });
      await vol.set([s(0, 2)], 7);
      await con.createDataset('scan2/vol', { data: [[1, 2]], dtype: 'int32' }); // makes group scan2
      expect(vol.name).toBe('scan1/vol');
      expect(flat(await (await con.getDataset('scan1/vol')).get([0]))).toEqual([7, 7, 7, 7]);
      expect(flat(await (await con.getDataset('/scan2/vol/')).get())).toEqual([1, 2]);
      expect(await scan.hasDataset('vol')).toBe(true);
      expect(await con.hasDataset('vol')).toBe(false);
      expect(await scan.list()).toEqual([{ name: 'raw', kind: 'group' }, { name: 'vol', kind: 'dataset' }]);
      expect(await con.list('scan1/raw')).toEqual([{ name: 'frames', kind: 'group' }]);
      const top = await con.list();
      expect(top).toContainEqual({ name: 'scan1', kind: 'group' });
      expect(top).toContainEqual({ name: 'scan2', kind: 'group' });
      expect(await con.listDatasets()).not.toContain('scan1/vol'); // Python DosNa lists the top only
      expect(await con.hasGroup('scan1/raw')).toBe(true);
      expect(await con.hasGroup('scan1/vol')).toBe(false);
      expect((await con.getGroup('/')).path).toBe('');
      const other = await reopen(con);
      try {
        expect(await (await other.getGroup('scan1')).list()).toEqual(await scan.list());
      } finally {
        await other.disconnect();
      }
    });

    it('refuses to make a group twice, a group where a dataset is, a dataset where a group is; getGroup of nothing fails', async () => {
      await con.createGroup('twice');
      await expect(con.createGroup('twice')).rejects.toBeInstanceOf(dn.GroupExistsError);
      await con.createDataset('twice/ds', { shape: [1] });
      await expect(con.createGroup('twice/ds')).rejects.toBeInstanceOf(dn.DatasetExistsError);
      await expect(con.createGroup('twice/ds/below')).rejects.toBeInstanceOf(dn.DosnaError);
      await expect(con.createDataset('twice', { shape: [1] })).rejects.toBeInstanceOf(dn.DosnaError);
      await expect(con.getGroup('nowhere')).rejects.toBeInstanceOf(dn.GroupNotFoundError);
      await expect(con.list('nowhere')).rejects.toBeInstanceOf(dn.GroupNotFoundError);
      await expect(con.getDataset('twice/nothing')).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      expect(await con.list('twice')).toEqual([{ name: 'ds', kind: 'dataset' }]);
    });

    it('checks every segment of a path before anything is made', async () => {
      for (const path of ['a/../b', '../x', 'a//b', 'a/./b', 'a\\b', 'g/.dosna-group.json', '.dosnax', 'x/nul\0']) {
        await expect(con.createDataset(path, { shape: [1] }), path).rejects.toBeInstanceOf(dn.InvalidNameError);
        await expect(con.createGroup(path), path).rejects.toBeInstanceOf(dn.InvalidNameError);
      }
      expect(await con.hasGroup('a')).toBe(false);
      expect(await con.hasGroup('x')).toBe(false);
    });

    it('delGroup refuses a group that is not empty, and with recursive removes it all', async () => {
      await con.createDataset('tree/a/b/deep', { shape: [4], chunkSize: [2] });
      const deep = await con.getDataset('tree/a/b/deep');
      await deep.set([s()], 3);
      await deep.flush();
      await (await con.getGroup('tree/a')).attrs.set('note', 'x');
      await con.createGroup('tree/empty');
      await con.delGroup('tree/empty');
      expect(await con.hasGroup('tree/empty')).toBe(false);
      await expect(con.delGroup('tree')).rejects.toThrow(/not empty.*recursive: true/);
      expect(await con.hasDataset('tree/a/b/deep')).toBe(true);
      await expect(con.delGroup('tree', { recursive: 'yes' as never })).rejects.toBeInstanceOf(dn.OptionError);
      await con.delGroup('tree', { recursive: true });
      expect(await con.hasGroup('tree')).toBe(false);
      expect(await con.list()).not.toContainEqual({ name: 'tree', kind: 'group' });
      await expect(deep.get()).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      // Made again, nothing of the old tree shows.
      const again = await con.createDataset('tree/a/b/deep', { shape: [4], chunkSize: [2] });
      expect(flat(await again.get())).toEqual([0, 0, 0, 0]);
      expect(await (await con.getGroup('tree/a')).attrs.keys()).toEqual([]);
      await expect(con.delGroup('nowhere')).rejects.toBeInstanceOf(dn.GroupNotFoundError);
      await expect(con.delGroup('')).rejects.toBeInstanceOf(dn.InvalidNameError);
    });

    it('map and clone write to paths in groups', async () => {
      const src = await con.createDataset('paths-src', { data: [[1, 2], [3, 4]], dtype: 'float64', chunkSize: [1, 2] });
      const doubled = await src.map((chunk: dn.NdArray) => (chunk.data as Float64Array).map((v) => v * 2), 'derived/doubled');
      expect(doubled.name).toBe('derived/doubled');
      const copy = await src.clone('derived/copies/src', { data: true });
      expect(flat(await (await con.getDataset('derived/doubled')).get())).toEqual([2, 4, 6, 8]);
      expect(flat(await copy.get())).toEqual([1, 2, 3, 4]);
      expect(await con.list('derived')).toEqual([{ name: 'copies', kind: 'group' }, { name: 'doubled', kind: 'dataset' }]);
    });
  });

  describe('resize and append', () => {
    it('grows with the fill value; shrinks deleting chunks beyond; cut cells read as fill when it grows again', async () => {
      const ds = await con.createDataset('resize', { shape: [5, 6], dtype: 'int32', chunkSize: [2, 4], fillValue: -1 });
      await ds.set([s()], Array.from({ length: 5 }, (_, i) => Array.from({ length: 6 }, (_, j) => i * 6 + j)));
      await ds.resize([7, 9]);
      expect(ds.shape).toEqual([7, 9]);
      const grown = await ds.get();
      expect(flat(await ds.get([s(0, 5), s(0, 6)]))).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(flat(grown).filter((v) => v === -1).length).toBe(63 - 30);
      await ds.resize([3, 5]);
      expect(flat(await ds.get())).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16]);
      expect((await ds.storedChunks()).every(([i, j]) => i * 2 < 3 && j * 4 < 5)).toBe(true);
      await ds.resize([6, 8]);
      const again = await ds.get();
      expect(again.shape).toEqual([6, 8]);
      const expected = Array.from({ length: 48 }, (_, k) => {
        const [i, j] = [Math.floor(k / 8), k % 8];
        return i < 3 && j < 5 ? i * 6 + j : -1;
      });
      expect(flat(again)).toEqual(expected);
    });

    it('cuts buffered writes too, and refuses shapes of another rank or with bad extents', async () => {
      const ds = await con.createDataset('resize-buffered', { shape: [8], dtype: 'uint8', chunkSize: [4] });
      await ds.set([s(2, 7)], 9); // buffered in the chunk cache when there is one
      await ds.resize([3]);
      await ds.resize([8]);
      expect(flat(await ds.get())).toEqual([0, 0, 9, 0, 0, 0, 0, 0]);
      await expect(ds.resize([8, 1])).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.resize([-1])).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.resize([1.5])).rejects.toBeInstanceOf(dn.ShapeError);
      await ds.resize([0]);
      expect((await ds.get()).shape).toEqual([0]);
      expect(await ds.storedChunks()).toEqual([]);
      expect(ds.shape).toEqual([0]);
    });

    it('a handle opened before a resize sees the new shape at its next operation and never reads past it', async () => {
      const ds = await con.createDataset('resize-stale', { shape: [4, 4], dtype: 'float32', chunkSize: [2, 2] });
      await ds.set([s()], 1);
      await ds.flush();
      const other = await reopen(con);
      try {
        const stale = await other.getDataset('resize-stale');
        expect((await stale.get()).shape).toEqual([4, 4]);
        await ds.resize([2, 3]);
        expect((await stale.get()).shape).toEqual([2, 3]);
        expect(stale.shape).toEqual([2, 3]);
        await expect(stale.get([3])).rejects.toBeInstanceOf(dn.IndexError);
        await expect(stale.set([3, 0], 5)).rejects.toBeInstanceOf(dn.IndexError);
        await ds.resize([4, 4]);
        expect(flat(await stale.get([3]))).toEqual([0, 0, 0, 0]);
      } finally {
        await other.disconnect();
      }
    });

    it('a stale handle reads by the current shape: what only the old shape would refuse is read, what it would allow is refused', async () => {
      // get reads with the metadata the handle knows while the store confirms it: when it was
      // not current, neither that read's result nor its errors may show.
      const ds = await con.createDataset('resize-speculative', { shape: [2, 3], dtype: 'int32', chunkSize: [2, 2] });
      await ds.set([s()], 7);
      await ds.flush();
      const other = await reopen(con);
      try {
        const stale = await other.getDataset('resize-speculative');
        expect(stale.shape).toEqual([2, 3]);
        await ds.resize([4, 4]);
        await ds.set([s(2, 4)], 9);
        await ds.flush();
        // Against [2, 3] this out has the wrong shape (ShapeError): against [4, 4] it is right.
        const out = dn.ndarray(new Int32Array(16).fill(-1), [4, 4]);
        const got = await stale.get([s(0, 4), s(0, 4)], { out });
        expect(got).toBe(out);
        expect(flat(out)).toEqual([7, 7, 7, 0, 7, 7, 7, 0, 9, 9, 9, 9, 9, 9, 9, 9]);
        expect(stale.shape).toEqual([4, 4]);
        // And a cast read, through the other dtype's path.
        expect(flat(await stale.get([3], { dtype: 'float64' }))).toEqual([9, 9, 9, 9]);
        // Chunk reads go the same way: what another handle wrote, and after a delete the error.
        const chunk = stale.getChunk([1, 1]);
        await ds.set([s(2, 4), s(2, 4)], 5);
        await ds.flush();
        expect(flat(await chunk.getData())).toEqual([5, 5, 5, 5]);
        await ds.resize([1, 4]);
        // [2] is inside the shape the handle last saw, outside the dataset's: refused.
        await expect(stale.get([2])).rejects.toBeInstanceOf(dn.IndexError);
        expect(stale.shape).toEqual([1, 4]);
        await con.delDataset('resize-speculative');
        const kept = new Int32Array(4).fill(-1);
        await expect(stale.get([0], { out: kept })).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
        await expect(stale.getChunk([0, 0]).getData()).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
      } finally {
        await other.disconnect();
      }
    });

    it('appends frames and blocks along any axis; data that does not fit changes nothing', async () => {
      const ds = await con.createDataset('append', { shape: [0, 3], dtype: 'int16', chunkSize: [2, 2] });
      for (let t = 0; t < 5; t++) await ds.append([t, t + 10, t + 20]);
      expect(ds.shape).toEqual([5, 3]);
      await ds.append([[100, 101, 102], [103, 104, 105]], { axis: 0 });
      await ds.append(new Int16Array(7).fill(-5), { axis: -1 }); // a column: a frame along axis 1
      const got = await ds.get();
      expect(got.shape).toEqual([7, 4]);
      expect(flat(await ds.get([s(), 0]))).toEqual([0, 1, 2, 3, 4, 100, 103]);
      expect(flat(await ds.get([s(), 3]))).toEqual(Array(7).fill(-5));
      expect(flat(await ds.get([6]))).toEqual([103, 104, 105, -5]);
      const other = await reopen(con);
      try {
        expect((await (await other.getDataset('append')).get()).shape).toEqual([7, 4]);
      } finally {
        await other.disconnect();
      }
      await expect(ds.append([1, 2, 3])).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.append([[1, 2]], { axis: 0 })).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.append([NaN, 2, 3, 4])).rejects.toBeInstanceOf(dn.DTypeError);
      await expect(ds.append([[1, 2, 3, 4], [5]])).rejects.toBeInstanceOf(dn.ShapeError);
      await expect(ds.append([1, 2, 3, 4], { axis: 2 })).rejects.toBeInstanceOf(dn.IndexError);
      await expect(ds.append([1, 2, 3, 4], { axes: 0 } as never)).rejects.toBeInstanceOf(dn.OptionError);
      expect(ds.shape).toEqual([7, 4]);
      expect((await ds.get()).shape).toEqual([7, 4]);
    });

    it('two connections appending at once each get rows of their own', async () => {
      const ds = await con.createDataset('append-race', { shape: [0, 4], dtype: 'int32', chunkSize: [3, 4] });
      const other = await reopen(con);
      try {
        const theirs = await other.getDataset('append-race');
        await Promise.all([
          (async () => { for (let i = 0; i < 6; i++) await ds.append([i, i, i, i]); })(),
          (async () => { for (let i = 0; i < 6; i++) await theirs.append([-1 - i, -1 - i, -1 - i, -1 - i]); })(),
        ]);
        await Promise.all([ds.flush(), theirs.flush()]);
        const rows = await ds.get([s(), 0]);
        expect(rows.shape).toEqual([12]);
        expect(flat(rows).map(Number).sort((a, b) => a - b)).toEqual([-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5]);
        const whole = flat(await theirs.get());
        for (let r = 0; r < 12; r++) expect(new Set(whole.slice(r * 4, r * 4 + 4)).size).toBe(1);
      } finally {
        await other.disconnect();
      }
    });

    // A writer that has not yet seen another grow the dataset takes the rows past its shape
    // for padding; they are the other writer's rows and must survive its writes. Each case
    // stores row 1 through a second connection, then writes chunk 0 knowing only row 0.
    describe('a writer behind another one\'s growth keeps the rows that one appended', () => {
      const row = (v: number) => new Int32Array(8).fill(v);
      const expectRows = async (ds: dn.Dataset, first: number) => {
        await ds.flush();
        expect(flat(await ds.get())).toEqual([...row(first), ...row(2)].map(Number));
      };
      async function grownBehind(name: string): Promise<{ ds: dn.Dataset; other: dn.Connection }> {
        const ds = await con.createDataset(name, { shape: [1, 8], dtype: 'int32', chunkSize: [3, 8] });
        return { ds, other: await reopen(con) };
      }
      const appendRow1 = async (other: dn.Connection, name: string) => {
        await (await other.getDataset(name)).append(row(2));
        await other.disconnect();
      };

      it('cells buffered in parts, committed after the growth', async () => {
        const { ds, other } = await grownBehind('behind-cache');
        await ds.set([0, s(0, 2)], 1); // buffered while row 0 is all this writer knows
        await appendRow1(other, 'behind-cache');
        await ds.set([0, s(2, 8)], 1); // row 0 now fully written by this writer
        await expectRows(ds, 1);
      });

      it('a whole row written straight to the store', async () => {
        const { ds, other } = await grownBehind('behind-direct');
        const stale = ds.meta;
        await appendRow1(other, 'behind-direct');
        await writeSelection(con, stale, normalizeIndex([0], stale.shape), row(1));
        await expectRows(ds, 1);
      });

      it('apply on the chunk', async () => {
        const { ds, other } = await grownBehind('behind-apply');
        await ds.set([0], 1);
        await ds.flush();
        const stale = ds.meta;
        await appendRow1(other, 'behind-apply');
        const addTen: dn.Kernel = (chunk) => { const d = chunk.data as Int32Array; for (let i = 0; i < d.length; i++) d[i] += 10; };
        await con.session.run({ kind: 'map', input: stale, output: stale, kernel: addTen, halo: [0, 0], args: undefined }, [[0, 0]], { operation: 'apply', collective: true });
        await expectRows(ds, 11);
      });
    });
  });
});
