/**
 * What the `ceph` backend does beyond the conformance suite: DosNa's Ceph object layout,
 * datasets written the way Python DosNa writes them, the conf file, paging past 1000 keys,
 * range reads, quick and clear failures, and an RGW that dies in the middle of a `load`
 * (a second, bluestore-backed instance that survives a restart).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { parseCephConf } from '../src/backends/ceph.js';
import { parseExports, runRgwScript } from './support/global-setup.js';
import {
  identityTests, dropBucket, everythingSaid, rawClient, rawList, rejection, service, uniqueBucket,
} from './fixtures/s3-helpers.js';

const flat = (a: { data: ArrayLike<number | bigint> }) => Array.from(a.data);

const confDirs: string[] = [];

function writeConf(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dosna-ceph-conf-'));
  confDirs.push(dir);
  const file = join(dir, 'ceph.conf');
  writeFileSync(file, text);
  return file;
}

describe('ceph backend', () => {
  let raw: S3Client;
  let con: dn.Connection;
  let bucket: string;
  const buckets: string[] = [];

  beforeAll(async () => {
    raw = rawClient();
    bucket = uniqueBucket('dosna-ceph');
    buckets.push(bucket);
    con = await dn.connect(bucket, { backend: 'ceph', engine: 'cpu', conffile: service().cephConf, create: true });
  });

  afterAll(async () => {
    await con?.disconnect();
    for (const b of buckets) await dropBucket(raw, b);
    raw?.destroy();
    for (const dir of confDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  identityTests(() => ({ con, raw, bucket }));

  it('writes DosNa\'s layout: object <ds> with body "DosNa Dataset" and metadata, chunks <ds>/<i>.<j>.<k>', async () => {
    const ds = await con.createDataset('vol', { shape: [100, 100, 100], dtype: 'float32', chunkSize: [50, 50, 50] });
    await ds.set([s(50, 100), s(0, 50), s(50, 100)], 1.5);
    await ds.flush();
    expect((await rawList(raw, bucket)).sort()).toEqual(['vol', 'vol/1.0.1']);

    const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'vol' }));
    const meta = Object.fromEntries(Object.entries(head.Metadata ?? {}).map(([k, v]) => [k.replace(/-/g, '_'), v]));
    expect(meta).toEqual({ shape: '100::100::100', dtype: '<f4', fillvalue: '0.0', chunk_grid: '2::2::2', chunk_size: '50::50::50', uid: ds.meta.uid });
    const body = await (await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'vol' }))).Body!.transformToString();
    expect(body).toBe('DosNa Dataset');

    const chunk = await (await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'vol/1.0.1' }))).Body!.transformToByteArray();
    expect(chunk.byteLength).toBe(50 * 50 * 50 * 4);
    const values = new Float32Array(chunk.slice().buffer);
    expect(values.every((v) => v === 1.5)).toBe(true);
    expect(await con.listDatasets()).toEqual(['vol']);
  });

  it('reads a dataset written the way Python DosNa writes it', async () => {
    await raw.send(new PutObjectCommand({
      Bucket: bucket, Key: 'pyds', Body: 'DosNa Dataset',
      Metadata: { shape: '4::6', dtype: '<i2', fillvalue: 'np.int16(-1)', chunk_grid: '2::2', chunk_size: '2::3' },
    }));
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'pyds/1.1', Body: new Uint8Array(Int16Array.from([1, 2, 3, 4, 5, 6]).buffer) }));
    const ds = await con.getDataset('pyds');
    expect(ds.dtype).toBe('int16');
    expect(ds.fillValue).toBe(-1);
    expect(ds.chunkSize).toEqual([2, 3]);
    expect(flat(await ds.get([s(2, 4), s(3, 6)]))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(flat(await ds.get([0]))).toEqual(new Array(6).fill(-1));
    await con.delDataset('pyds');
    expect(await rawList(raw, bucket, 'pyds')).toEqual([]);
  });

  it('lists only dataset objects; another object under a dataset name is an error, never overwritten', async () => {
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'notes.txt', Body: 'hello' }));
    expect(await con.listDatasets()).not.toContain('notes.txt');
    await expect(con.getDataset('notes.txt')).rejects.toThrow(/not a DosNa dataset/);
    await expect(con.createDataset('notes.txt', { shape: [2] })).rejects.toBeInstanceOf(dn.DosnaError);
    const body = await (await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'notes.txt' }))).Body!.transformToString();
    expect(body).toBe('hello');
  });

  it('pages past 1000 keys: delDataset of 1100 chunks leaves no object behind', async () => {
    const ds = await con.createDataset('many', { shape: [1100], dtype: 'int8', chunkSize: [1], fillValue: 0 });
    await ds.set(undefined, 7);
    expect(await ds.storedChunks()).toHaveLength(1100);
    await con.delDataset('many');
    expect(await rawList(raw, bucket, 'many')).toEqual([]);
  }, 120_000);

  it('reads a small slice of a big chunk with a range GET', async () => {
    const ds = await con.createDataset('bigchunk', { data: dn.ndarray(Float64Array.from({ length: 128 * 128 }, (_, i) => i), [128, 128]), chunkSize: [128, 128] });
    expect(flat(await ds.get([3, s(0, 4)]))).toEqual([384, 385, 386, 387]);
    expect(ds.lastRun?.bytesRead).toBe(4 * 8);
  });

  it('reads endpoint and keys from the [dosna] section, or the section named by option section', async () => {
    const svc = service();
    const text = `# a ceph-style conf\n[global]\nfsid = 0000\n\n[client.rgw]\nendpoint = ${svc.endpoint}\naccess key = ${svc.accessKeyId}\nsecret-key = ${svc.secretAccessKey}\nregion = us-east-1\n`;
    expect(parseCephConf(text).get('client.rgw')?.get('access_key')).toBe(svc.accessKeyId);
    const conffile = writeConf(text);
    await expect(dn.connect(bucket, { backend: 'ceph', conffile })).rejects.toThrow(/no \[dosna\] section.*\[global\], \[client\.rgw\].*option section/);
    const viaSection = await dn.connect(bucket, { backend: 'ceph', conffile, section: 'client.rgw' });
    expect(await viaSection.listDatasets()).toContain('vol');
    await viaSection.disconnect();
    // The same keys as options, without a file.
    const viaOptions = await dn.connect(bucket, { backend: 'ceph', endpoint: svc.endpoint, accessKey: svc.accessKeyId, secretKey: svc.secretAccessKey });
    expect(await viaOptions.listDatasets()).toContain('vol');
    await viaOptions.disconnect();
    // Options win over the file.
    await expect(dn.connect(bucket, { backend: 'ceph', conffile: svc.cephConf, endpoint: 'http://127.0.0.1:1' })).rejects.toBeInstanceOf(dn.ConnectionError);
    expect(() => dn.connection(bucket, { backend: 'ceph', accessKey: 'a', secretKey: 'b' })).not.toThrow();
    await expect(dn.connect(bucket, { backend: 'ceph', accessKey: 'a', secretKey: 'b' })).rejects.toThrow(/needs the RGW endpoint/);
    await expect(dn.connect(bucket, { backend: 'ceph', conffile: '/nonexistent/ceph.conf' })).rejects.toThrow(/cannot read conffile/);
  });

  it('an unreachable endpoint is a ConnectionError within a few seconds, without the secret', async () => {
    const svc = service();
    const conffile = writeConf(`[dosna]\nendpoint = http://127.0.0.1:1\naccess_key = ${svc.accessKeyId}\nsecret_key = ${svc.secretAccessKey}\n`);
    const t0 = Date.now();
    const error = await rejection(dn.connect(bucket, { backend: 'ceph', conffile }));
    expect(error).toBeInstanceOf(dn.ConnectionError);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(everythingSaid(error)).not.toContain(svc.secretAccessKey);
  });

  it('a missing bucket is a ConnectionError; a wrong secret is a ConnectionError that does not show it', async () => {
    const svc = service();
    const missing = await rejection(dn.connect(uniqueBucket('dosna-ceph-missing'), { backend: 'ceph', conffile: svc.cephConf }));
    expect(missing).toBeInstanceOf(dn.ConnectionError);
    expect(missing.message).toMatch(/does not exist/);
    const wrong = 'n0t-the-Secret-Key-9f8e7d';
    const conffile = writeConf(`[dosna]\nendpoint = ${svc.endpoint}\naccess_key = ${svc.accessKeyId}\nsecret_key = ${wrong}\n`);
    const denied = await rejection(dn.connect(bucket, { backend: 'ceph', conffile }));
    expect(denied).toBeInstanceOf(dn.ConnectionError);
    expect(denied.message).toMatch(/403/);
    expect(everythingSaid(denied)).not.toContain(wrong);
  });

  it('refuses connection names that are not bucket names', async () => {
    for (const bad of ['My_Pool', 'ab', 'a..b']) {
      await expect(dn.connect(bad, { backend: 'ceph', conffile: service().cephConf })).rejects.toBeInstanceOf(dn.InvalidNameError);
    }
  });
});

describe('ceph backend: the RGW dies in the middle of a load', () => {
  const env = {
    ...process.env,
    DOSNA_CEPH_DIR: '/tmp/dosna-fault',
    DOSNA_CEPH_OBJECTSTORE: 'bluestore',
    DOSNA_RGW_PORT: '7490',
    DOSNA_CEPH_MON_PORT: '3400',
  };
  let conffile = '';

  beforeAll(async () => {
    await runRgwScript(['stop'], env, 120_000).catch(() => undefined);
    conffile = parseExports(await runRgwScript(['start'], env)).DOSNA_CEPH_CONF;
  }, 300_000);

  afterAll(async () => {
    await runRgwScript(['stop'], env, 120_000).catch(() => undefined);
  }, 120_000);

  it('fails with a clear error; after a restart every acknowledged chunk reads back, none torn', async () => {
    const options = { backend: 'ceph', engine: 'cpu', conffile, create: true, maxAttempts: 2, connectionTimeout: 1000, requestTimeout: 5000 };
    const rows = 1000;
    const width = 32;
    const name = 'fault-pool';
    const A = Float64Array.from({ length: rows * width }, (_, i) => Math.floor(i / width) + 0.25);
    const B = Float64Array.from({ length: rows * width }, (_, i) => -(Math.floor(i / width) + 0.5));

    const con = await dn.connect(name, options);
    const ds = await con.createDataset('vol', { shape: [rows, width], dtype: 'float64', chunkSize: [1, width] });
    await ds.load(dn.ndarray(A, [rows, width]));

    // Record which chunk writes of the second load the store acknowledged.
    const store = (con as unknown as { store: dn.Store }).store;
    const write = store.writeChunk.bind(store);
    const acknowledged = new Set<number>();
    store.writeChunk = async (meta, index, parts) => {
      const generation = await write(meta, index, parts);
      acknowledged.add(index[0]);
      return generation;
    };
    let stopping: Promise<string> | undefined;
    let stoppedAt = 0;
    const t0 = Date.now();
    const error = await rejection(ds.load(dn.ndarray(B, [rows, width]), {
      onProgress: (p) => {
        if (!stopping && p.done >= 200) {
          stoppedAt = Date.now();
          stopping = runRgwScript(['stop', '--keep'], env, 120_000);
        }
      },
    }));
    const failedAfter = Date.now() - stoppedAt;
    console.log(`fault: load failed ${failedAfter} ms after the stop began, ${acknowledged.size}/${rows} chunks acknowledged: ${error.message}`);
    await stopping;
    expect(stoppedAt).toBeGreaterThan(t0);
    expect(error).toBeInstanceOf(dn.DosnaError);
    expect(error.message).toMatch(/PutObject .*fault-pool\/vol\/\d+\.0/);
    expect(error.message).toMatch(/no response|ECONNREFUSED|ECONNRESET|HTTP 5\d\d|socket|timed out/i);
    expect(failedAfter).toBeLessThan(30_000);
    expect(acknowledged.size).toBeGreaterThanOrEqual(200);
    expect(acknowledged.size).toBeLessThan(rows);
    await con.disconnect();

    await runRgwScript(['start'], env);
    const again = await dn.connect(name, options);
    try {
      const back = await (await again.getDataset('vol')).get();
      const got = back.data as Float64Array;
      let torn = 0;
      let lost = 0;
      let newRows = 0;
      for (let r = 0; r < rows; r++) {
        const row = got.subarray(r * width, (r + 1) * width);
        const isA = row.every((v, j) => v === A[r * width + j]);
        const isB = row.every((v, j) => v === B[r * width + j]);
        if (isB) newRows++;
        if (!isA && !isB) torn++;
        if (acknowledged.has(r) && !isB) lost++;
      }
      expect(torn).toBe(0);
      expect(lost).toBe(0);
      expect(newRows).toBeGreaterThanOrEqual(acknowledged.size);
    } finally {
      await again.disconnect();
    }
  }, 300_000);
});
