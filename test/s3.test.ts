/**
 * What the `s3` backend does beyond the conformance suite: the object layout, paging past
 * 1000 keys, range reads, failures that are quick and clear, bucket-name rules, credentials
 * that never leak, and settings other processes can re-open from. Runs against the endpoint
 * test/support/global-setup.ts provides (a local Ceph RGW unless DOSNA_S3_ENDPOINT is set).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { S3RequestError } from '../src/backends/s3.js';
import {
  identityTests, dropBucket, everythingSaid, rawClient, rawList, rejection, s3Options, service, uniqueBucket,
} from './fixtures/s3-helpers.js';

const flat = (a: { data: ArrayLike<number | bigint> }) => Array.from(a.data);

/** Runs `fn` with the port of a local server that accepts connections and never answers. */
async function withSilentServer(fn: (port: number) => Promise<void>): Promise<void> {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => { sockets.push(socket); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    await fn((silent.address() as AddressInfo).port);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
}

describe('s3 backend', () => {
  let raw: S3Client;
  let con: dn.Connection;
  let bucket: string;
  const buckets: string[] = [];

  beforeAll(async () => {
    raw = rawClient();
    bucket = uniqueBucket('dosna-s3');
    buckets.push(bucket);
    con = await dn.connect(bucket, { backend: 's3', engine: 'cpu', ...s3Options() });
  });

  afterAll(async () => {
    await con?.disconnect();
    for (const b of buckets) await dropBucket(raw, b);
    raw?.destroy();
  });

  identityTests(() => ({ con, raw, bucket }));

  it('recheckCachedData and recheckCachedMetadata false: cached chunks and metadata are used without asking the RGW; this connection\'s own writes are seen', async () => {
    const name = 'trusting';
    const ds = await con.createDataset(name, { shape: [32, 8, 8], dtype: 'float32', chunkSize: [8, 8, 8], compression: 'gzip' });
    await ds.load(dn.ndarray(Float32Array.from({ length: 32 * 64 }, (_, i) => i), [32, 8, 8]));
    const trusting = await dn.connect(bucket, { backend: 's3', engine: 'cpu', ...s3Options(), recheckCachedData: false, recheckCachedMetadata: false });
    try {
      const mine = await trusting.getDataset(name);
      const line = async () => flat(await mine.get([s(), 2, 3]));
      const expected = Array.from({ length: 32 }, (_, z) => z * 64 + 2 * 8 + 3);
      expect(await line()).toEqual(expected); // compressed chunks are read whole, into the cache
      // Another connection rewrites a chunk and grows the dataset: the trusting one does not ask, so it does not see either.
      await ds.set([s(0, 8)], -1);
      await ds.resize([40, 8, 8]);
      const seen = await mine.get([s(), 2, 3]);
      expect(seen.shape).toEqual([32]);
      expect(flat(seen)).toEqual(expected);
      expect(trusting.cacheStats).toMatchObject({ fills: 4, hits: 4, stale: 0 });
      // Its own write of a whole chunk and its own resize are seen at once.
      await mine.set([s(8, 16)], -2);
      await mine.resize([48, 8, 8]);
      const after = await mine.get([s(), 2, 3]);
      expect(after.shape).toEqual([48]);
      expect(flat(after).slice(0, 17)).toEqual([...expected.slice(0, 8), ...new Array(8).fill(-2), expected[16]]);
    } finally {
      await trusting.disconnect();
      await con.delDataset(name);
    }
  });

  it('lays a dataset out as <ds>/.dosna.json plus <ds>/<i>.<j> objects of raw little-endian C-order full chunks', async () => {
    const ds = await con.createDataset('layout', { shape: [5, 7], dtype: 'int64', chunkSize: [2, 4], fillValue: 2n ** 60n });
    await ds.set([s(0, 2), s(0, 4)], dn.ndarray(BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i) - 3n), [2, 4]));
    await ds.set([4, 6], -1n); // edge chunk [2, 1]: 1x3 valid cells, padded with the fill value
    await ds.flush(); // the partial write is buffered in the chunk cache until then
    const keys = (await rawList(raw, bucket, 'layout/')).sort();
    expect(keys).toEqual(['layout/.dosna.json', 'layout/0.0', 'layout/2.1']);

    const metaText = await (await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'layout/.dosna.json' }))).Body!.transformToString();
    const doc = JSON.parse(metaText);
    expect(doc).toMatchObject({ shape: [5, 7], dtype: '<i8', fillvalue: String(2n ** 60n), chunk_size: [2, 4], chunk_grid: [3, 2], uid: ds.meta.uid });
    expect(ds.meta.uid).toMatch(/^[0-9a-f-]{36}$/);

    const got = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'layout/0.0' }));
    expect(got.Metadata).toEqual({ 'dosna-uid': ds.meta.uid }); // which dataset the chunk belongs to
    const chunk = await got.Body!.transformToByteArray();
    expect(chunk.byteLength).toBe(2 * 4 * 8);
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    expect(Array.from({ length: 8 }, (_, i) => view.getBigInt64(i * 8, true))).toEqual(Array.from({ length: 8 }, (_, i) => BigInt(i) - 3n));

    const edge = await (await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'layout/2.1' }))).Body!.transformToByteArray();
    expect(edge.byteLength).toBe(2 * 4 * 8); // full chunk shape, not the 1x3 valid part
    const ev = new DataView(edge.buffer, edge.byteOffset, edge.byteLength);
    const cells = Array.from({ length: 8 }, (_, i) => ev.getBigInt64(i * 8, true));
    expect(cells[2]).toBe(-1n);
    expect(cells.filter((v) => v === 2n ** 60n)).toHaveLength(7);

    expect(await con.listDatasets()).toContain('layout');
    const back = await con.getDataset('layout');
    expect(back.fillValue).toBe(2n ** 60n);
    expect(flat(await back.get([4]))).toEqual([...new Array(6).fill(2n ** 60n), -1n]);
  });

  it('stores NaN, infinities and -0 fill values as strings Python reads', async () => {
    for (const [name, fill, text] of [['fnan', NaN, 'nan'], ['finf', -Infinity, '-inf'], ['fneg0', -0, '-0.0']] as const) {
      const ds = await con.createDataset(name, { shape: [3], dtype: 'float64', fillValue: fill });
      const doc = JSON.parse(await (await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `${name}/.dosna.json` }))).Body!.transformToString());
      expect(doc.fillvalue).toBe(text);
      expect(Object.is((await con.getDataset(name)).fillValue, fill)).toBe(true);
      await ds.delete();
    }
  });

  it('pages past 1000 keys: lists 1100 chunks and delDataset leaves no object behind', async () => {
    const ds = await con.createDataset('many', { shape: [1100], dtype: 'uint8', chunkSize: [1] });
    await ds.set(undefined, 1);
    expect(await rawList(raw, bucket, 'many/')).toHaveLength(1101);
    expect(await ds.storedChunks()).toHaveLength(1100);
    await con.delDataset('many');
    expect(await rawList(raw, bucket, 'many/')).toEqual([]);
    expect(await con.hasDataset('many')).toBe(false);
  }, 120_000);

  it('reads a small slice of a big chunk with a range GET: fewer bytes fetched', async () => {
    const n = 256;
    const values = Float32Array.from({ length: n * n }, (_, i) => i);
    const ds = await con.createDataset('big', { data: dn.ndarray(values, [n, n]), chunkSize: [n, n] });
    const row = await ds.get([100, s(10, 20)]);
    expect(flat(row)).toEqual(Array.from({ length: 10 }, (_, i) => 100 * n + 10 + i));
    expect(ds.lastRun?.bytesRead).toBe(10 * 4);
    const whole = await ds.get();
    expect(ds.lastRun?.bytesRead).toBe(n * n * 4);
    expect(whole.get(255, 255)).toBe(n * n - 1);
    // A missing chunk reads as the fill value through the range path too.
    await ds.delChunk([0, 0]);
    expect(flat(await ds.get([7, s(0, 3)]))).toEqual([0, 0, 0]);
  });

  it('an unreachable endpoint is a ConnectionError within a few seconds', async () => {
    const t0 = Date.now();
    const error = await rejection(dn.connect(uniqueBucket('dosna-s3'), { backend: 's3', ...s3Options(), endpoint: 'http://127.0.0.1:1' }));
    expect(error).toBeInstanceOf(dn.ConnectionError);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(error.message).toMatch(/HeadBucket/);
    expect(error.message).toMatch(/127\.0\.0\.1:1/);
    expect(everythingSaid(error)).not.toContain(service().secretAccessKey);
  });

  it('a server that accepts connections but never answers is a ConnectionError after requestTimeout, not a hang', async () => {
    await withSilentServer(async (port) => {
      const t0 = Date.now();
      const error = await rejection(dn.connect(uniqueBucket('dosna-s3'), {
        backend: 's3', ...s3Options(), endpoint: `http://127.0.0.1:${port}`, requestTimeout: 500, maxAttempts: 2,
      }));
      expect(error).toBeInstanceOf(dn.ConnectionError);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(error.message).toMatch(/HeadBucket .*no response/);
    });
  });

  it('with the default options, a server that never answers is a ConnectionError within ~15 s, naming the timeouts', async () => {
    await withSilentServer(async (port) => {
      const t0 = Date.now();
      const error = await rejection(dn.connect(uniqueBucket('dosna-s3'), { backend: 's3', ...s3Options(), endpoint: `http://127.0.0.1:${port}` }));
      const seconds = (Date.now() - t0) / 1000;
      expect(error).toBeInstanceOf(dn.ConnectionError);
      expect(error.message).toMatch(/HeadBucket .*no response/);
      // 3 attempts of 5 s (the defaults, docs/backends/s3.md); was 132 s with the SDK's own.
      expect(seconds).toBeGreaterThan(9);
      expect(seconds).toBeLessThan(25);
    });
  }, 60_000);

  it('a chunk object of the wrong size is a CorruptChunkError naming the object', async () => {
    const ds = await con.createDataset('short-chunk', { shape: [4, 4], dtype: 'float64', chunkSize: [2, 2] });
    await ds.set([s(0, 2), s(0, 2)], 1);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'short-chunk/0.0', Body: new Uint8Array(5), Metadata: { 'dosna-uid': ds.meta.uid } }));
    const fresh = await dn.connect(bucket, { backend: 's3', engine: 'cpu', ...s3Options(), cacheBytes: 0 });
    try {
      const error = await rejection((await fresh.getDataset('short-chunk')).get());
      expect(error).toBeInstanceOf(dn.CorruptChunkError);
      expect(error.message).toMatch(/holds 5 bytes, not the 32 of a full 2x2 float64 chunk/);
      expect((error as dn.CorruptChunkError).file).toMatch(/short-chunk\/0\.0/);
    } finally {
      await fresh.disconnect();
    }
    await ds.delete();
  });

  it('a missing bucket is a ConnectionError unless create: true; create makes it', async () => {
    const name = uniqueBucket('dosna-s3-missing');
    const error = await rejection(dn.connect(name, { backend: 's3', ...s3Options(), create: false }));
    expect(error).toBeInstanceOf(dn.ConnectionError);
    expect(error.message).toMatch(/does not exist/);
    expect(error.message).toContain(name);
    expect(error.message).toMatch(/create: true/);
    buckets.push(name);
    const made = await dn.connect(name, { backend: 's3', ...s3Options(), create: true });
    await made.disconnect();
    await expect(raw.send(new HeadBucketCommand({ Bucket: name }))).resolves.toBeDefined();
  });

  it('never puts credentials in errors (wrong secret, unknown key id, failed requests)', async () => {
    const { accessKeyId } = service();
    const wrongSecret = 'Wr0ngSecretThatMustNotLeak/abc+xyz';
    const e1 = await rejection(dn.connect(bucket, { backend: 's3', ...s3Options(), credentials: { accessKeyId, secretAccessKey: wrongSecret } }));
    expect(e1).toBeInstanceOf(dn.ConnectionError);
    expect(e1.message).toMatch(/HTTP 403/);
    expect(everythingSaid(e1)).not.toContain(wrongSecret);
    const unknownId = 'AKIAUNKNOWNKEYID0001';
    const e2 = await rejection(dn.connect(bucket, { backend: 's3', ...s3Options(), credentials: { accessKeyId: unknownId, secretAccessKey: wrongSecret } }));
    expect(e2).toBeInstanceOf(dn.ConnectionError);
    for (const secret of [wrongSecret, unknownId]) expect(everythingSaid(e2)).not.toContain(secret);
  });

  it('S3 errors say operation, bucket, key and HTTP status', async () => {
    const ds = await con.createDataset('status', { shape: [4], chunkSize: [4] });
    await ds.set(undefined, 1);
    const store = (con as unknown as { store: dn.Store }).store;
    // A range beyond the object: HTTP 416 from the service.
    const bigger = { ...ds.meta, chunkSize: [1000] } as dn.DatasetMeta;
    const error = await rejection(store.readChunkRange!(bigger, [0], 3000, 3004));
    expect(error).toBeInstanceOf(S3RequestError);
    const e = error as S3RequestError;
    expect(e.status).toBe(416);
    expect(e.bucket).toBe(bucket);
    expect(e.key).toBe('status/0');
    expect(e.message).toMatch(/GetObject\(range\) s3:\/\/dosna-s3-[^ ]+\/status\/0 .*HTTP 416/);
    expect(everythingSaid(e)).not.toContain(service().secretAccessKey);
  });

  it('refuses connection names that are not bucket names with InvalidNameError', async () => {
    for (const bad of ['ab', 'Upper-case', 'under_score', '-leading', 'trailing-', 'a..b', '192.168.5.4', 'x'.repeat(64), 'xn--punycode', 'a/b', '']) {
      const error = await rejection(dn.connect(bad, { backend: 's3', ...s3Options() }));
      expect(error, bad).toBeInstanceOf(dn.InvalidNameError);
    }
    expect(() => dn.connection('good-name-1', { backend: 's3', ...s3Options() })).not.toThrow();
  });

  it('rejects unknown and malformed options before any request', async () => {
    await expect(dn.connect(bucket, { backend: 's3', ...s3Options(), bogus: 1 })).rejects.toThrow(/the s3 backend: unknown option "bogus"/);
    await expect(dn.connect(bucket, { backend: 's3', ...s3Options(), maxConcurrency: 0 })).rejects.toThrow(/maxConcurrency/);
    await expect(dn.connect(bucket, { backend: 's3', ...s3Options(), endpoint: 'ftp://x' })).rejects.toThrow(/http/);
    await expect(dn.connect(bucket, { backend: 's3', ...s3Options(), credentials: { accessKeyId: 'x' } })).rejects.toThrow(/credentials/);
  });

  it('keeps settings plain: another connection re-opened from a structured clone of them sees the data', async () => {
    const ds = await con.createDataset('shared', { shape: [6], dtype: 'int32', chunkSize: [4] });
    await ds.set(undefined, [1, 2, 3, 4, 5, 6]);
    const settings = structuredClone(con.settings);
    expect(settings.backend).toBe('s3');
    const other = await dn.connect(settings.name, { backend: settings.backend, ...settings.options });
    try {
      expect(flat(await (await other.getDataset('shared')).get())).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await other.disconnect();
    }
  });

  it('takes credentials from a named profile of the shared files (profile option) over the environment', async () => {
    const svc = service();
    const dir = mkdtempSync(join(tmpdir(), 'dosna-aws-'));
    writeFileSync(join(dir, 'credentials'), `[dosnatest]\naws_access_key_id = ${svc.accessKeyId}\naws_secret_access_key = ${svc.secretAccessKey}\n`);
    writeFileSync(join(dir, 'config'), '[profile dosnatest]\nregion = us-east-1\n');
    const saved = { ...process.env };
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
    process.env.AWS_CONFIG_FILE = join(dir, 'config');
    process.env.AWS_ACCESS_KEY_ID = 'AKIAWRONGENVKEY00001';
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong-env-secret';
    delete process.env.AWS_REGION;
    try {
      const viaProfile = await dn.connect(bucket, { backend: 's3', endpoint: svc.endpoint, profile: 'dosnatest' });
      expect(await viaProfile.listDatasets()).toContain('layout');
      await viaProfile.disconnect();
      // Without the profile the (wrong) environment keys are used: access denied.
      await expect(dn.connect(bucket, { backend: 's3', endpoint: svc.endpoint, region: 'us-east-1' })).rejects.toBeInstanceOf(dn.ConnectionError);
    } finally {
      for (const k of ['AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bounds concurrent requests to maxConcurrency', async () => {
    const limited = await dn.connect(bucket, { backend: 's3', engine: 'cpu', engineOptions: { concurrency: 16 }, ...s3Options(), maxConcurrency: 2 });
    try {
      const store = (limited as unknown as { store: { access: { traffic: { requests: number } } } & dn.Store }).store;
      // Count requests in flight through a wrapper around the client's send.
      const access = store.access as unknown as { settings: { maxConcurrency: number } };
      expect(access.settings.maxConcurrency).toBe(2);
      const client = (store.access as unknown as { client: S3Client }).client;
      const send = client.send.bind(client);
      let inFlight = 0;
      let peak = 0;
      client.send = (async (...args: Parameters<S3Client['send']>) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        try {
          return await (send as (...a: unknown[]) => Promise<unknown>)(...args);
        } finally {
          inFlight--;
        }
      }) as S3Client['send'];
      const ds = await limited.createDataset('bounded', { shape: [64], dtype: 'uint8', chunkSize: [4] });
      await ds.set(undefined, 3);
      expect(flat(await ds.get())).toEqual(new Array(64).fill(3));
      expect(peak).toBeLessThanOrEqual(2);
      expect(peak).toBe(2);
    } finally {
      await limited.disconnect();
    }
  });
});
