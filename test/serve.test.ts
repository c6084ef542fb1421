/**
 * `dosna serve`'s h5grove API against h5grove 4.0's contract (the JSON shapes of /meta, /attr,
 * /paths and /stats, binary payloads equal to `ds.get`, h5grove's error messages), over every
 * backend x engine; its security (loopback unless a token is given, the token on every request,
 * nothing outside the connection); cancellation when the client goes away; and the real
 * `dosna serve` and `dosna view` commands.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { serve, type DosnaServer } from '../src/serve/server.js';
import { colourTable } from '../src/view/render.js';
import { closeConnection, combos, openConnection, type Combo } from './support/matrix.js';

const exec = promisify(execFile);

/** A GET; the status, content type and body (JSON when it says so, else bytes). */
async function get(server: DosnaServer, endpoint: string, params: Record<string, string | string[]>, init: RequestInit = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) query.append(k, one);
  const response = await fetch(`${server.url}/${endpoint}?${query}`, init);
  const type = response.headers.get('content-type') ?? '';
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, type, headers: response.headers, bytes, json: type.startsWith('application/json') ? JSON.parse(bytes.toString()) as unknown : undefined };
}

/** The 3-D pattern of the tests: every cell different, its value telling where it is. */
const PATTERN_SHAPE = [6, 10, 12];
const pattern = () => Float32Array.from({ length: 6 * 10 * 12 }, (_, i) => (i % 7 === 3 ? -i / 8 : i / 4));

describe.each(combos())('h5grove API: $label', (combo: Combo) => {
  let con: dn.Connection;
  let server: DosnaServer;
  let file: string;
  const values = pattern();

  beforeAll(async () => {
    con = await openConnection(combo);
    file = con.name;
    await con.attrs.set('facility', 'DLS');
    const vol = await con.createDataset('scan1/vol', { data: dn.ndarray(values, PATTERN_SHAPE), chunkSize: [4, 4, 5], compression: 'zstd', shuffle: true });
    await vol.attrs.update({ units: 'mm', angles: new Float32Array([0, 0.5]), frames: 12, big: 2n ** 62n + 1n, run: { id: 7 }, flag: true, voxel: 0.65 });
    const counts = await con.createDataset('counts', { shape: [40], dtype: 'int64', chunkSize: [16] });
    await counts.set([], dn.ndarray(BigInt64Array.from({ length: 40 }, (_, i) => BigInt(i) * 2n ** 40n), [40]));
    await con.createDataset('scan1/mask', { shape: [5, 7], dtype: 'uint8', chunkSize: [2, 3], fillValue: 1 });
    await (await con.createGroup('scan1/sub')).attrs.set('note', 'empty group');
    server = await serve(con, { maxBytes: 4096 });
  });
  afterAll(async () => {
    await server?.close();
    await closeConnection(con);
  });

  it('/meta of the root: a group with its children, datasets in full, groups with their attributes', async () => {
    const { status, json } = await get(server, 'meta', { file, path: '/' });
    expect(status).toBe(200);
    expect(json).toEqual({
      kind: 'group', name: '',
      attributes: [{ name: 'facility', shape: [], type: { class: 3, dtype: '|O', size: 8, cset: 1, strpad: 0, vlen: true } }],
      children: [
        { kind: 'dataset', name: 'counts', attributes: [], shape: [40], chunks: [16], filters: null, type: { class: 0, dtype: '<i8', size: 8, order: 0, sign: 1 } },
        { kind: 'group', name: 'scan1', attributes: [] },
      ],
    });
  });

  it('/meta of a group and of a dataset: shape, HDF5 type, chunks, filters, attribute metadata sorted by name', async () => {
    const group = (await get(server, 'meta', { file, path: '/scan1' })).json as { name: string; children: { name: string; kind: string }[] };
    expect(group.name).toBe('scan1');
    expect(group.children.map((c) => [c.name, c.kind])).toEqual([['mask', 'dataset'], ['sub', 'group'], ['vol', 'dataset']]);
    expect(group.children[1]).toEqual({ kind: 'group', name: 'sub', attributes: [{ name: 'note', shape: [], type: expect.objectContaining({ class: 3 }) }] });
    const { json } = await get(server, 'meta', { file, path: '/scan1/vol' });
    expect(json).toEqual({
      kind: 'dataset', name: 'vol', shape: PATTERN_SHAPE, chunks: [4, 4, 5],
      type: { class: 1, dtype: '<f4', size: 4, order: 0 },
      filters: [{ id: 2, name: 'shuffle' }, { id: 32015, name: 'zstd' }],
      attributes: [
        { name: 'angles', shape: [2], type: { class: 1, dtype: '<f4', size: 4, order: 0 } },
        { name: 'big', shape: [], type: { class: 0, dtype: '<i8', size: 8, order: 0, sign: 1 } },
        { name: 'flag', shape: [], type: expect.objectContaining({ class: 8, members: { FALSE: 0, TRUE: 1 } }) },
        { name: 'frames', shape: [], type: { class: 0, dtype: '<i8', size: 8, order: 0, sign: 1 } },
        { name: 'run', shape: [], type: expect.objectContaining({ class: 3 }) },
        { name: 'units', shape: [], type: expect.objectContaining({ class: 3 }) },
        { name: 'voxel', shape: [], type: { class: 1, dtype: '<f8', size: 8, order: 0 } },
      ],
    });
    expect((await get(server, 'meta', { file, path: 'scan1/mask/' })).json).toMatchObject({ name: 'mask', type: { class: 0, dtype: '|u1', size: 1, sign: 0 } });
  });

  it('/attr: every value (64-bit integers with all their digits, JSON values as their JSON text), or those named', async () => {
    const { status, bytes } = await get(server, 'attr', { file, path: '/scan1/vol' });
    expect(status).toBe(200);
    expect(bytes.toString()).toContain(`"big":${2n ** 62n + 1n}`);
    expect(JSON.parse(bytes.toString())).toEqual({ angles: [0, 0.5], big: Number(2n ** 62n + 1n), flag: true, frames: 12, run: '{"id":7}', units: 'mm', voxel: 0.65 });
    expect((await get(server, 'attr', { file, path: '/scan1/vol', attr_keys: ['units', 'frames'] })).json).toEqual({ units: 'mm', frames: 12 });
    expect((await get(server, 'attr', { file, path: '/' })).json).toEqual({ facility: 'DLS' });
    const missing = await get(server, 'attr', { file, path: '/scan1/vol', attr_keys: 'nope' });
    expect([missing.status, missing.json]).toEqual([404, { message: '/scan1/vol has no attribute "nope"' }]);
  });

  it('/data?format=bin&dtype=safe: the bytes of ds.get for h5grove selections', async () => {
    const ds = await con.getDataset('scan1/vol');
    const cases: [string, dn.Index][] = [
      ['', []], ['3', [3]], ['0,:,:', [0, s(), s()]], ['1,2:9:3,-1', [1, s(2, 9, 3), -1]], ['::2,4', [s(null, null, 2), 4]],
      ['-2,-3:,1:11:4', [-2, s(-3), s(1, 11, 4)]], [' 5 , 0:100 ', [5, s(0, 100)]],
    ];
    for (const [selection, index] of cases) {
      const { status, type, bytes } = await get(server, 'data', { file, path: '/scan1/vol', format: 'bin', dtype: 'safe', ...(selection ? { selection } : {}) });
      const expected = (await ds.get(index)).data as Float32Array;
      expect([status, type], selection).toEqual([200, 'application/octet-stream']);
      expect(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), selection).toEqual(expected);
    }
    const counts = await get(server, 'data', { file, path: '/counts', format: 'bin', dtype: 'safe', selection: '30:' });
    expect(Array.from(new BigInt64Array(counts.bytes.buffer, counts.bytes.byteOffset, 10))).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(30 + i) * 2n ** 40n));
    const mask = await get(server, 'data', { file, path: '/scan1/mask', format: 'bin' });
    expect([...mask.bytes]).toEqual(new Array(35).fill(1));
  });

  it('/data as JSON (nested or flat lists, 64-bit integers exact), .npy and CSV', async () => {
    const nested = await get(server, 'data', { file, path: '/scan1/vol', selection: '2,1:3,0:3' });
    const at = (z: number, y: number, x: number) => values[(z * 10 + y) * 12 + x];
    expect(nested.json).toEqual([[at(2, 1, 0), at(2, 1, 1), at(2, 1, 2)], [at(2, 2, 0), at(2, 2, 1), at(2, 2, 2)]]);
    expect((await get(server, 'data', { file, path: '/scan1/vol', selection: '2,1:3,0:3', flatten: 'true' })).json).toEqual([at(2, 1, 0), at(2, 1, 1), at(2, 1, 2), at(2, 2, 0), at(2, 2, 1), at(2, 2, 2)]);
    expect((await get(server, 'data', { file, path: '/scan1/vol', selection: '5,9,11' })).json).toBe(at(5, 9, 11));
    expect((await get(server, 'data', { file, path: '/counts', selection: '39' })).bytes.toString()).toBe(String(39n * 2n ** 40n));
    const npy = await get(server, 'data', { file, path: '/scan1/vol', selection: '1,:,:', format: 'npy' });
    expect(npy.headers.get('content-disposition')).toBe('attachment; filename="data.npy"');
    const headerLength = npy.bytes.readUInt16LE(8);
    expect(npy.bytes.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
    expect((10 + headerLength) % 64).toBe(0);
    expect(npy.bytes.subarray(10, 10 + headerLength).toString()).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(10, 12\), \} *\n$/);
    expect(new Float32Array(npy.bytes.buffer.slice(npy.bytes.byteOffset + 10 + headerLength, npy.bytes.byteOffset + npy.bytes.byteLength))).toEqual(values.subarray(120, 240));
    const csv = await get(server, 'data', { file, path: '/scan1/mask', format: 'csv' });
    expect([csv.type, csv.bytes.toString()]).toEqual(['text/csv', '1,1,1,1,1,1,1\n'.repeat(5)]);
  });

  it('/paths lists every path below a group, depth first; /stats summarises a selection', async () => {
    expect((await get(server, 'paths', { file })).json).toEqual(['/', '/counts', '/scan1', '/scan1/mask', '/scan1/sub', '/scan1/vol']);
    expect((await get(server, 'paths', { file, path: '/scan1' })).json).toEqual(['/scan1', '/scan1/mask', '/scan1/sub', '/scan1/vol']);
    const slice = values.subarray(3 * 120, 4 * 120);
    const mean = slice.reduce((a, b) => a + b, 0) / slice.length;
    const std = Math.sqrt(slice.reduce((a, b) => a + (b - mean) ** 2, 0) / slice.length);
    const stats = (await get(server, 'stats', { file, path: '/scan1/vol', selection: '3' })).json as Record<string, number>;
    expect(stats.min).toBe(Math.min(...slice));
    expect(stats.max).toBe(Math.max(...slice));
    expect(stats.positive_min).toBe(Math.min(...slice.filter((v) => v >= 0)));
    expect(stats.strict_positive_min).toBe(Math.min(...slice.filter((v) => v > 0)));
    expect(stats.mean).toBeCloseTo(mean, 10);
    expect(stats.std).toBeCloseTo(std, 10);
  });

  it('bad requests get h5grove-style JSON errors, and the server keeps serving', async () => {
    const cases: [Record<string, string>, string, number, RegExp][] = [
      [{ file, path: '/nope' }, 'meta', 404, /^\/nope is not a valid path in /],
      [{ file, path: '/scan1/../../etc/passwd' }, 'meta', 404, /is not a valid path in /],
      [{ file: '../other', path: '/' }, 'meta', 404, /^File not found!/],
      [{ path: '/' }, 'meta', 422, /file is required/],
      [{ file, path: '/scan1/vol', selection: '6' }, 'data', 422, /index 6 is out of bounds for axis 0 with size 6/],
      [{ file, path: '/scan1/vol', selection: '1,2,3,4' }, 'data', 422, /4 members for a dataset of 3 dimensions/],
      [{ file, path: '/scan1/vol', selection: 'a:b' }, 'data', 422, /start "a" is not an integer/],
      [{ file, path: '/scan1/vol', selection: '::-1' }, 'data', 422, /step must be positive/],
      [{ file, path: '/scan1/vol', selection: '0,,1' }, 'data', 422, /empty member/],
      [{ file, path: '/scan1/vol', format: 'tiff' }, 'data', 422, /format must be json, bin, npy or csv/],
      [{ file, path: '/scan1/vol', dtype: 'float16' }, 'data', 422, /dtype must be origin or safe/],
      [{ file, path: '/scan1/vol', format: 'csv' }, 'data', 422, /CSV holds 1-D or 2-D/],
      [{ file, path: '/scan1' }, 'data', 422, /is a group/],
      [{ file, path: '/counts' }, 'paths', 422, /is a dataset/],
      [{ file, path: '/', bogus: '1' }, 'meta', 422, /unknown query parameter bogus/],
      [{ file }, 'nothing', 404, /no endpoint \/nothing/],
      // 6 x 10 x 12 float32 is 2880 bytes: within the 4096 limit as bytes (as text, over its eighth).
      [{ file, path: '/scan1/vol', format: 'bin' }, 'data', 200, /.*/],
      [{ file, path: '/scan1/vol' }, 'data', 413, /over this server's limit of 512 for an answer as text/],
    ];
    for (const [params, endpoint, status, message] of cases) {
      const answer = await get(server, endpoint, params);
      expect(answer.status, `${endpoint} ${JSON.stringify(params)}`).toBe(status);
      if (status !== 200) expect((answer.json as { message: string }).message, JSON.stringify(params)).toMatch(message);
    }
    const big = await con.createDataset('big', { shape: [64, 64], dtype: 'float64' });
    const refused = await get(server, 'data', { file, path: '/big', format: 'bin' });
    expect([refused.status, (refused.json as { message: string }).message]).toEqual([413, expect.stringMatching(/32768 bytes, over this server's limit of 4096 \(dosna serve --max-bytes\); select a slice/)]);
    expect((await get(server, 'data', { file, path: '/big', selection: '3', format: 'bin' })).bytes.length).toBe(512);
    // As JSON, an eighth of the limit: the text takes several times the bytes.
    expect((await get(server, 'data', { file, path: '/big', selection: '3' })).status).toBe(200);
    const asText = await get(server, 'data', { file, path: '/big', selection: '3:5' });
    expect([asText.status, (asText.json as { message: string }).message]).toEqual([413, expect.stringMatching(/1024 bytes, over this server's limit of 512 for an answer as text/)]);
    await big.delete();
    const post = await fetch(`${server.url}/data?file=${file}&path=/counts`, { method: 'POST', body: 'x' });
    expect([post.status, await post.json()]).toEqual([405, { message: 'POST is not allowed: dosna serve is read-only' }]);
    expect((await get(server, 'meta', { file, path: '/counts' })).status).toBe(200);
  });
});

describe('dosna serve: access, cancellation, the page and its files', () => {
  let con: dn.Connection;
  beforeAll(async () => {
    con = await openConnection({ backend: 'ram', engine: 'cpu', cache: 'on', label: 'ram' });
    await con.createDataset('vol', { data: dn.ndarray(pattern(), PATTERN_SHAPE) });
  });
  afterAll(async () => closeConnection(con));

  it('refuses an address beyond loopback without a token, and unknown options', async () => {
    await expect(serve(con, { host: '0.0.0.0' })).rejects.toThrow(/give a token \(--token, or DOSNA_SERVE_TOKEN\), or bind to 127.0.0.1/);
    await expect(serve(con, { host: '192.168.1.10' })).rejects.toBeInstanceOf(dn.OptionError);
    await expect(serve(con, { prot: 8080 } as never)).rejects.toThrow(/unknown serve option prot/);
    await expect(serve(con, { maxBytes: -1 })).rejects.toThrow(/maxBytes must be a positive integer/);
  });

  it("the library loads the server only when serve is called: importing dosna leaves Node's HTTP stack unloaded", async () => {
    // In a fresh process: the test runner has loaded node:http already.
    const index = JSON.stringify(pathToFileURL(resolve('src/index.ts')).href);
    const script = `
      const loaded = () => process.moduleLoadList.includes('NativeModule http');
      const before = loaded();
      const dn = await import(${index});
      const afterImport = loaded();
      const con = await dn.connect('lazy-serve', { backend: 'ram' });
      await con.createDataset('a', { shape: [4], dtype: 'int8' });
      const server = await dn.serve(con);
      const status = (await fetch(server.url + '/meta/?file=lazy-serve&path=/a')).status;
      await server.close();
      await con.disconnect();
      console.log(JSON.stringify({ before, afterImport, afterServe: loaded(), status }));`;
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ before: false, afterImport: false, afterServe: true, status: 200 });
  });

  it('with a token, every request carries it: a Bearer header, ?token=, or the cookie the page gets', async () => {
    const server = await serve(con, { token: 's3cret' });
    try {
      const url = `${server.url}/meta?file=${con.name}&path=/vol`;
      expect((await fetch(url)).status).toBe(401);
      expect(await (await fetch(url, { headers: { authorization: 'Bearer wrong' } })).json()).toEqual({ message: 'wrong token' });
      expect((await fetch(url, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
      expect((await fetch(`${url}&token=s3cret`)).status).toBe(200);
      expect((await fetch(`${server.url}/`)).status).toBe(401);
      expect((await fetch(`${server.url}/app.js`)).status).toBe(401);
      const page = await fetch(`${server.url}/?token=s3cret`);
      expect(page.status).toBe(200);
      const cookie = page.headers.get('set-cookie')!;
      expect(cookie).toMatch(/^dosna_token=s3cret; HttpOnly; SameSite=Strict; Path=\/$/);
      expect((await fetch(url, { headers: { cookie: cookie.split(';')[0] } })).status).toBe(200);
      expect((await fetch(url, { headers: { cookie: 'dosna_token=nope' } })).status).toBe(401);
      // A CORS preflight (H5Web on another origin sending the header) needs no token.
      const preflight = await fetch(url, { method: 'OPTIONS' });
      expect([preflight.status, preflight.headers.get('access-control-allow-headers')]).toEqual([204, 'Authorization']);
    } finally {
      await server.close();
    }
    // Beyond loopback with a token is allowed.
    const open = await serve(con, { host: '0.0.0.0', token: 't' });
    await open.close();
  });

  it('serves the page, its script and style, and what it shows of the connection (never its options)', async () => {
    const server = await serve(con);
    try {
      const html = await fetch(`${server.url}/`);
      expect([html.status, html.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
      expect(await html.text()).toContain('<script type="module" src="app.js"></script>');
      const script = await fetch(`${server.url}/app.js`);
      expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect((await script.text()).length).toBeGreaterThan(5000);
      expect(await (await fetch(`${server.url}/dosna.json`)).json()).toEqual({ file: con.name, backend: 'ram', engine: 'cpu', maxBytes: 256 * 2 ** 20 });
      expect((await fetch(`${server.url}/package.json`)).status).toBe(404);
      expect((await fetch(`${server.url}/../../package.json`)).status).toBe(404);
      expect((await fetch(`${server.url}/%2e%2e/%2e%2e/package.json`)).status).toBe(404);
      expect((await fetch(`${server.url}/meta/?file=${con.name}`)).status).toBe(200); // h5grove 2.x-3.x paths
    } finally {
      await server.close();
    }
  });

  it('stops reading chunks for a client that went away', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'dosna-serve-'));
    const lines: string[] = [];
    try {
      await dn.withConnection('slow', { backend: 'hdf5', directory, create: true }, async (hdf5) => {
        // 256 chunks, each its own HDF5 file: reading all takes far longer than the client waits.
        const ds = await hdf5.createDataset('vol', { shape: [64, 256, 256], dtype: 'float32', chunkSize: [4, 64, 64], compression: 'gzip' });
        await ds.set([], 1.5);
        const server = await serve(hdf5, { log: (line) => lines.push(line) });
        try {
          const started = performance.now();
          await expect(fetch(`${server.url}/data?file=slow&path=/vol&format=bin`, { signal: AbortSignal.timeout(30) })).rejects.toThrow();
          await expect.poll(() => lines.find((l) => l.includes('cancelled')), { timeout: 10_000 }).toMatch(/^GET \/data\?file=slow&path=%2Fvol&format=bin cancelled: the client closed the connection after \d+\.\d ms$/);
          const cancelledAfter = performance.now() - started;
          // The server is free again at once, and a whole read takes longer than the cancelled one did.
          const t = performance.now();
          const whole = await fetch(`${server.url}/data?file=slow&path=/vol&format=bin`);
          expect((await whole.arrayBuffer()).byteLength).toBe(64 * 256 * 256 * 4);
          expect(performance.now() - t).toBeGreaterThan(cancelledAfter / 4);
        } finally {
          await server.close();
        }
      });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('the dosna serve and dosna view commands', () => {
  const directory = mkdtempSync(join(tmpdir(), 'dosna-serve-cli-'));
  const flags = ['--backend', 'hdf5', '--connection', 'store', '--connection-options', `directory=${directory}`];
  const dosna = (...args: string[]) => exec(process.execPath, ['bin/dosna.mjs', ...args], { timeout: 60_000 });
  const failure = (...args: string[]) => dosna(...args).then(() => { throw new Error('expected a failure'); }, (e: { code: number; stderr: string }) => e);
  const ramp = (rows: number, cols: number, z: number) => Float32Array.from({ length: rows * cols }, (_, i) => z * 1000 + i);

  beforeAll(async () => {
    await dn.withConnection('store', { backend: 'hdf5', directory, create: true }, async (con) => {
      const data = new Float32Array(8 * 16 * 20);
      for (let z = 0; z < 8; z++) data.set(ramp(16, 20, z), z * 320);
      await con.createDataset('vol', { data: dn.ndarray(data, [8, 16, 20]), chunkSize: [4, 8, 8] });
      await con.createDataset('line', { data: dn.ndarray(Float64Array.from({ length: 50 }, (_, i) => Math.sin(i / 5)), [50]) });
    });
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('dosna serve answers h5grove requests, logs them, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['bin/dosna.mjs', 'serve', ...flags, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b; });
    child.stderr.on('data', (b: Buffer) => { stderr += b; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      // The address line and the H5Web line are two writes: the pipe may bring them apart.
      await expect.poll(() => stdout, { timeout: 30_000 }).toMatch(/on http:\/\/127\.0\.0\.1:\d+\/[\s\S]*H5Web: /);
      const url = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout)![1];
      expect(stdout).toContain(`H5Web: <H5GroveProvider url="${url}" filepath="store">`);
      const meta = await (await fetch(`${url}/meta?file=store&path=/vol`)).json();
      expect(meta).toMatchObject({ kind: 'dataset', shape: [8, 16, 20] });
      await expect.poll(() => stderr).toMatch(/^GET \/meta\?file=store&path=%2Fvol 200 \d+ B \d+\.\d ms$/m);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('dosna serve refuses a public address without a token (exit 1, saying why)', async () => {
    const e = await failure('serve', ...flags, '--host', '0.0.0.0');
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/OptionError: serving on 0\.0\.0\.0 lets anyone who reaches it read the data: give a token/);
    expect((await failure('serve', ...flags, '--max-bytes', 'lots')).code).toBe(2);
  });

  it('dosna view draws the middle slice of axis 0 by default, in viridis with a colour bar', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dosna-view-'));
    try {
      const file = join(out, 'slice.png');
      const { stdout } = await dosna('view', 'vol', '-o', file, ...flags);
      expect(stdout.trim()).toBe(`wrote ${file}: vol, axis 0 = 4 (16 x 20 float32, values 4000 to 4319)`);
      const png = PNG.sync.read(readFileSync(file));
      // 20 x 16 pixels scaled 26x to 520 x 416, at (16, 44) as the figure lays them out.
      const pixel = (x: number, y: number) => Array.from(png.data.subarray(4 * (y * png.width + x), 4 * (y * png.width + x) + 3));
      const viridis = colourTable('viridis');
      expect(pixel(16 + 5, 44 + 5)).toEqual(Array.from(viridis.subarray(0, 3))); // [4, 0, 0]: the lowest value
      expect(pixel(16 + 520 - 5, 44 + 416 - 5)).toEqual(Array.from(viridis.subarray(765, 768))); // [4, 15, 19]: the highest
      // The colour bar (a gradient through 11 stops of the map): its top at the top, its bottom at the bottom.
      const near = (got: number[], want: ArrayLike<number>) => got.every((c, i) => Math.abs(c - want[i]) <= 6);
      expect(near(pixel(16 + 520 + 16 + 9, 44 + 2), viridis.subarray(765, 768)), String(pixel(16 + 520 + 16 + 9, 44 + 2))).toBe(true);
      expect(near(pixel(16 + 520 + 16 + 9, 44 + 416 - 2), viridis.subarray(0, 3)), String(pixel(16 + 520 + 16 + 9, 44 + 416 - 2))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('dosna view: another axis and index, a colour map, fixed limits, a 1-D line plot, and clear errors', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dosna-view-'));
    try {
      const file = join(out, 'slice.png');
      expect((await dosna('view', 'vol', '--axis', '2', '--index=-1', '--colour-map', 'gray', '--range', '0,8000', '-o', file, ...flags)).stdout)
        .toContain('vol, axis 2 = 19 (8 x 16 float32, values 19 to 7319)');
      const png = PNG.sync.read(readFileSync(file));
      const pixel = (x: number, y: number) => Array.from(png.data.subarray(4 * (y * png.width + x), 4 * (y * png.width + x) + 3));
      // Axis 2 cut at 19: rows are axis 0 (8), columns axis 1 (16), scaled 32x; [0, 0, 19] = 19 of 0..8000 is grey 1.
      expect(pixel(16 + 5, 44 + 5)).toEqual([1, 1, 1]);
      // [7, 15, 19] = 7319: round(7319 / 8000 * 255) = 233.
      expect(pixel(16 + 512 - 5, 44 + 256 - 5)).toEqual([233, 233, 233]);
      expect((await dosna('view', 'line', '-o', file, ...flags)).stdout).toContain('line (50 float64, values -0.9962 to 0.9996)');
      expect(PNG.sync.read(readFileSync(file)).width).toBe(736);
      expect((await failure('view', 'vol', '--axis', '3', '-o', file, ...flags)).stderr).toMatch(/--axis must be 0 to 2/);
      expect((await failure('view', 'vol', '--index', '8', '-o', file, ...flags)).stderr).toMatch(/IndexError: index 8 is out of bounds for axis 0 with size 8/);
      expect((await failure('view', 'vol', '--colour-map', 'jet', '-o', file, ...flags)).stderr).toMatch(/--colour-map must be one of viridis, magma/);
      expect((await failure('view', 'vol', '--range', '5,1', '-o', file, ...flags)).stderr).toMatch(/--range must be LO,HI with LO < HI/);
      expect((await failure('view', 'line', '--axis', '0', '-o', file, ...flags)).stderr).toMatch(/1-D and drawn whole as a line plot/);
      expect((await failure('view', 'vol', ...flags)).stderr).toMatch(/view needs -o FILE.png/);
      expect((await failure('view', 'nope', '-o', join(out, 'nope.png'), ...flags)).stderr).toMatch(/DatasetNotFoundError/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
