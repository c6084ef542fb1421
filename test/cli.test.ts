/** The `dosna` command, run as the real binary. */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
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

  beforeAll(async () => {
    await dn.withConnection('store', { backend: 'hdf5', directory, create: true }, async (con) => {
      const a = await con.createDataset('alpha', { shape: [10, 20], dtype: 'int16', chunkSize: [4, 8], fillValue: -1 });
      await a.set([dn.s(0, 5)], 3); // touches the chunks of rows 0-7: 2 x 3 of the 3 x 3 grid
      await con.createDataset('beta', { shape: [5], dtype: 'float64', options: { compression: 'gzip' } });
    });
  });

  it('ls lists datasets, as text and JSON', async () => {
    expect((await dosna('ls', ...flags)).stdout.trim().split('\n')).toEqual(['alpha', 'beta']);
    expect(JSON.parse((await dosna('ls', ...flags, '--json')).stdout)).toEqual(['alpha', 'beta']);
  });

  it('info describes a dataset, as text and JSON', async () => {
    const text = (await dosna('info', 'alpha', ...flags)).stdout;
    expect(text).toMatch(/shape\s+10 x 20/);
    expect(text).toMatch(/chunk grid\s+3 x 3 \(9 chunks\)/);
    expect(text).toMatch(/stored chunks\s+6 of 9/);
    expect(JSON.parse((await dosna('info', 'alpha', ...flags, '--json')).stdout)).toEqual({
      name: 'alpha', backend: 'hdf5', connection: 'store', shape: [10, 20], dtype: 'int16', chunkSize: [4, 8],
      chunkGrid: [3, 3], totalChunks: 9, fillValue: -1, storedChunks: 6, storedBytes: 6 * 32 * 2,
    });
    expect(JSON.parse((await dosna('info', 'beta', ...flags, '--json')).stdout).options).toEqual({ compression: 'gzip', compressionLevel: 4 });
  });

  it('has --help on every command', async () => {
    expect((await dosna('--help')).stdout).toMatch(/commands:/);
    for (const command of ['ls', 'info', 'launch']) expect((await dosna(command, '--help')).stdout).toMatch(new RegExp(`usage: dosna ${command}`));
  });

  it('exits 1 with a message when the operation fails, 2 on bad usage', async () => {
    expect(await failure('info', 'nosuch', ...flags)).toMatchObject({ code: 1, stderr: expect.stringMatching(/DatasetNotFoundError: dataset "nosuch" not found/) });
    expect(await failure('ls', '--backend', 'hdf5', '--connection', 'missing', '--connection-options', `directory=${directory}`))
      .toMatchObject({ code: 1, stderr: expect.stringMatching(/ConnectionError: .*missing does not exist/) });
    expect(await failure('ls', '--backend', 'nosuch', '--connection', 'x')).toMatchObject({ code: 1, stderr: expect.stringMatching(/unknown backend "nosuch"/) });
    expect(await failure('info', ...flags)).toMatchObject({ code: 2, stderr: expect.stringMatching(/exactly one dataset/) });
    expect(await failure('ls')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--connection NAME is required/) });
    expect(await failure('ls', '--bogus')).toMatchObject({ code: 2, stderr: expect.stringMatching(/bogus/) });
    expect(await failure('frobnicate')).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command 'frobnicate'/) });
    expect(await failure()).toMatchObject({ code: 2 });
  });
});
