/** The `dosna` command, run as the real binary. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';

const exec = promisify(execFile);
const dosna = (...args: string[]) => exec(process.execPath, ['bin/dosna.mjs', ...args], { timeout: 60_000 });
const failure = (...args: string[]) => dosna(...args).then(
  () => { throw new Error('expected a failure'); },
  (e: { code: number; stderr: string }) => e,
);

describe('dosna command', () => {
  const directory = mkdtempSync(join(tmpdir(), 'dosna-cli-'));
  const flags = ['--backend', 'hdf5', '--connection', 'store', '--connection-options', `directory=${directory}`];
  /** What the chunk files of a dataset take on disk (their sizes, as `du --apparent-size` adds them). */
  const chunkFileBytes = (name: string) => readdirSync(join(directory, 'store', name))
    .filter((f) => /^chunk_[\d_]+\.h5$/.test(f))
    .reduce((sum, f) => sum + statSync(join(directory, 'store', name, f)).size, 0);

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  beforeAll(async () => {
    await dn.withConnection('store', { backend: 'hdf5', directory, create: true }, async (con) => {
      const a = await con.createDataset('alpha', { shape: [10, 20], dtype: 'int16', chunkSize: [4, 8], fillValue: -1 });
      await a.set([dn.s(0, 5)], 3); // touches the chunks of rows 0-7: 2 x 3 of the 3 x 3 grid
      await con.createDataset('beta', { shape: [5], dtype: 'float64', compression: 'gzip' });
      // Compressible: 16 stored chunks of 32 KiB raw each, a few hundred bytes gzipped.
      const gamma = await con.createDataset('gamma', { shape: [256, 256], dtype: 'float64', chunkSize: [64, 64], compression: 'zstd', shuffle: true });
      await gamma.set(undefined, 1.5);
    });
  });

  it('ls lists datasets, as text and JSON', async () => {
    expect((await dosna('ls', ...flags)).stdout.trim().split('\n')).toEqual(['alpha', 'beta', 'gamma']);
    expect(JSON.parse((await dosna('ls', ...flags, '--json')).stdout)).toEqual(['alpha', 'beta', 'gamma'].map((path) => ({ path, kind: 'dataset' })));
  });

  it('info describes a dataset, as text and JSON', async () => {
    const text = (await dosna('info', 'alpha', ...flags)).stdout;
    expect(text).toMatch(/shape\s+10 x 20/);
    expect(text).toMatch(/chunk grid\s+3 x 3 \(9 chunks\)/);
    expect(text).toMatch(/stored chunks\s+6 of 9/);
    expect(JSON.parse((await dosna('info', 'alpha', ...flags, '--json')).stdout)).toEqual({
      name: 'alpha', backend: 'hdf5', connection: 'store', shape: [10, 20], dtype: 'int16', chunkSize: [4, 8],
      chunkGrid: [3, 3], totalChunks: 9, fillValue: -1, compression: null, storedChunks: 6, storedBytes: chunkFileBytes('alpha'), rawBytes: 10 * 20 * 2,
      ratio: chunkFileBytes('alpha') / (6 * 4 * 8 * 2), attrs: {},
    });
    expect(JSON.parse((await dosna('info', 'beta', ...flags, '--json')).stdout).compression).toEqual({ codec: 'gzip', level: 4, shuffle: false });
    expect(text).toMatch(/compression\s+none/);
  });

  it('ls shows groups (ending in /), one group or the whole tree; info shows attributes of datasets and groups', async () => {
    await dn.withConnection('tree', { backend: 'hdf5', directory, create: true }, async (con) => {
      const vol = await con.createDataset('scan1/raw/vol', { shape: [4], dtype: 'uint8' });
      await vol.attrs.update({ units: 'mm', angles: new Float32Array([0, 0.5]), big: 2n ** 62n, run: { id: 7 } });
      await con.createDataset('top', { shape: [2] });
      await (await con.createGroup('empty')).attrs.set('note', 'nothing yet');
      await con.attrs.set('facility', 'DLS');
    });
    const tree = ['--backend', 'hdf5', '--connection', 'tree', '--connection-options', `directory=${directory}`];
    expect((await dosna('ls', ...tree)).stdout.trim().split('\n')).toEqual(['empty/', 'scan1/', 'top']);
    expect((await dosna('ls', 'scan1', ...tree)).stdout.trim().split('\n')).toEqual(['raw/']);
    expect((await dosna('ls', '--recursive', ...tree)).stdout.trim().split('\n')).toEqual(['empty/', 'scan1/', 'scan1/raw/', 'scan1/raw/vol', 'top']);
    expect(JSON.parse((await dosna('ls', 'scan1', '-r', '--json', ...tree)).stdout)).toEqual([
      { path: 'scan1/raw', kind: 'group' }, { path: 'scan1/raw/vol', kind: 'dataset' },
    ]);
    const text = (await dosna('info', 'scan1/raw/vol', ...tree)).stdout;
    expect(text).toMatch(/attributes\s+4\n  angles = float32\[2\] \[0, 0.5\]\n  big = 4611686018427387904n\n  run = \{"id":7\}\n  units = "mm"/);
    expect(JSON.parse((await dosna('info', 'scan1/raw/vol', '--json', ...tree)).stdout).attrs).toEqual({ angles: [0, 0.5], big: '4611686018427387904', run: { id: 7 }, units: 'mm' });
    expect((await dosna('info', 'empty', ...tree)).stdout).toMatch(/group\s+empty \(hdf5 connection tree\)\nholds\s+0 datasets, 0 groups\nattributes\s+1\n  note = "nothing yet"/);
    expect(JSON.parse((await dosna('info', '--json', ...tree)).stdout)).toEqual({ group: '', backend: 'hdf5', connection: 'tree', datasets: 1, groups: 2, attrs: { facility: 'DLS' } });
    const missing = await failure('ls', 'nowhere', ...tree);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/GroupNotFoundError: group "nowhere" not found/);
    expect((await failure('info', 'scan1/nothing', ...tree)).stderr).toMatch(/DatasetNotFoundError/);
    expect((await failure('info', 'a', 'b', ...tree)).code).toBe(2);
  });

  it('export writes one HDF5 file h5py reads; import makes a dataset from it', async () => {
    const file = join(directory, 'alpha.h5');
    expect((await dosna('export', 'alpha', file, '--path', '/entry/alpha', ...flags)).stdout).toMatch(/wrote alpha \(10 x 20 int16\) to /);
    expect((await failure('export', 'alpha', file, ...flags)).stderr).toMatch(/exists; pass \{ overwrite: true \}/);
    expect((await dosna('import', file, '/entry/alpha', 'again', ...flags)).stdout).toMatch(/made again \(10 x 20 int16, chunks 4 x 8\)/);
    const info = JSON.parse((await dosna('info', 'again', '--json', ...flags)).stdout);
    expect(info).toMatchObject({ shape: [10, 20], dtype: 'int16', chunkSize: [4, 8] });
    await dn.withConnection('store', { backend: 'hdf5', directory }, async (con) => {
      const [a, b] = [await con.getDataset('alpha'), await con.getDataset('again')];
      expect(Array.from((await b.get()).data as Int16Array)).toEqual(Array.from((await a.get()).data as Int16Array));
      await con.delDataset('again');
    });
    expect((await failure('import', file, ...flags)).code).toBe(2);
    rmSync(file);
  });

  it('info reports the bytes stored (what du counts), not chunks x raw size', async () => {
    const info = JSON.parse((await dosna('info', 'gamma', ...flags, '--json')).stdout);
    expect(info.storedChunks).toBe(16);
    expect(info.storedBytes).toBe(chunkFileBytes('gamma'));
    expect(info.storedBytes).toBeLessThan(info.rawBytes / 4); // 512 KiB raw, zstd + shuffle
    expect(info.ratio).toBeCloseTo(info.storedBytes / info.rawBytes, 9);
    expect(info.compression).toEqual({ codec: 'zstd', level: 3, shuffle: true });
    const text = (await dosna('info', 'gamma', ...flags)).stdout;
    expect(text).toMatch(new RegExp(`stored bytes\\s+${info.storedBytes} \\(0\\.\\d+ MiB; the whole array is 0\\.500 MiB uncompressed\\)`));
    expect(text).toMatch(/compression\s+zstd level 3 \+ shuffle\n/);
    expect(text).toMatch(new RegExp(`ratio\\s+${info.ratio.toFixed(3)} `));
  });

  it('ls and info on the ram backend say that a new process sees none of its datasets', async () => {
    for (const argv of [['ls', '--connection', 'store'], ['info', 'alpha', '--connection', 'store']]) {
      const e = await failure(...argv);
      expect(e.code).toBe(2);
      expect(e.stderr).toMatch(/the ram backend keeps datasets in the memory of the process that made them, so this new process sees none/);
    }
  });

  it('has --help on every command, and --version', async () => {
    expect((await dosna('--help')).stdout).toMatch(/commands:/);
    for (const command of ['ls', 'info', 'launch']) expect((await dosna(command, '--help')).stdout).toMatch(new RegExp(`usage: dosna ${command}`));
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect((await dosna('--version')).stdout).toBe(`dosna ${version}\n`);
    expect((await dosna('-V')).stdout).toBe(`dosna ${version}\n`);
  });

  it('bench --help lists the flags without building or running anything; a bad flag is refused the same way', async () => {
    const { stdout } = await dosna('bench', '--help');
    for (const flag of ['--full', '--backends', '--engines', '--runs', '--no-peers', '--docs', '--report']) expect(stdout).toContain(flag);
    expect(stdout).not.toMatch(/bootstrap|tsc/);
    expect(await failure('bench', '--fulll')).toMatchObject({ code: 2, stderr: expect.stringMatching(/bench: Unknown option '--fulll'/) });
    expect(await failure('bench', '--backends', 'ram,nosql')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--backends takes a comma-separated list of ram, hdf5, zarr, s3, ceph/) });
  });

  it('launch of a script that does not exist is one line, not a stack per rank', async () => {
    const e = await failure('launch', '-n', '2', 'nosuch.ts');
    expect(e.code).toBe(2);
    expect(e.stderr.trim().split('\n')).toEqual([`dosna: launch: no such script "nosuch.ts" (looked in ${process.cwd()})`]);
  });

  it('exits 1 with a message when the operation fails, 2 on bad usage', async () => {
    expect(await failure('info', 'nosuch', ...flags)).toMatchObject({ code: 1, stderr: expect.stringMatching(/DatasetNotFoundError: dataset "nosuch" not found/) });
    expect(await failure('ls', '--backend', 'hdf5', '--connection', 'missing', '--connection-options', `directory=${directory}`))
      .toMatchObject({ code: 1, stderr: expect.stringMatching(/ConnectionError: .*missing does not exist/) });
    expect(await failure('ls', '--backend', 'nosuch', '--connection', 'x')).toMatchObject({ code: 1, stderr: expect.stringMatching(/unknown backend "nosuch"/) });
    expect(await failure('info', 'alpha', 'beta', ...flags)).toMatchObject({ code: 2, stderr: expect.stringMatching(/info takes one dataset or group/) });
    expect(await failure('ls')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--connection NAME is required/) });
    expect(await failure('ls', '--bogus')).toMatchObject({ code: 2, stderr: expect.stringMatching(/bogus/) });
    expect(await failure('frobnicate')).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command 'frobnicate'/) });
    expect(await failure()).toMatchObject({ code: 2 });
  });
});
