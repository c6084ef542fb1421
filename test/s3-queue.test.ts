/**
 * The queue engine on the s3 backend (the test RGW) with the workers of the test run: the
 * results are right, and Redis, which other users may share, never sees a secret: every key
 * Redis holds, during a run and after it, is read and searched for the access and secret keys.
 * (A file of the s3 backend: run_tests.sh leaves it out when s3 is not among the backends tested.)
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { closeConnection, openConnection } from './support/matrix.js';

/**
 * Every value of every key, as text: the keys listed first, then their types and values each in
 * one pipeline, so that a snapshot taken while jobs wait is taken before they are done (one
 * round trip per key, over the thousands of keys earlier runs leave, took longer than the run).
 */
async function everything(client: Redis): Promise<string> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const types = (await client.pipeline(keys.map((key) => ['type', key])).exec())!.map(([, type]) => type as string);
  const reads = client.pipeline();
  keys.forEach((key, i) => {
    const type = types[i];
    if (type === 'string') reads.getBuffer(key);
    else if (type === 'hash') reads.hgetall(key);
    else if (type === 'list') reads.lrange(key, 0, -1);
    else if (type === 'set') reads.smembers(key);
    else if (type === 'zset') reads.zrange(key, 0, -1);
    else if (type === 'stream') reads.xrange(key, '-', '+');
    else reads.exists(key); // gone meanwhile: keeps the results in step with the keys
  });
  const values = (await reads.exec())!.map(([, value]) => value);
  return keys.map((key, i) => {
    const value = values[i];
    return `${key}\n${Buffer.isBuffer(value) ? value.toString('latin1') : JSON.stringify(value)}`;
  }).join('\n');
}

describe('the queue engine on s3', () => {
  let con: dn.Connection;
  let redis: Redis;
  beforeAll(async () => {
    con = await openConnection({ backend: 's3', engine: 'queue', cache: 'on', label: 's3 x queue' });
    redis = new Redis(process.env.DOSNA_TEST_REDIS!);
  });
  afterAll(async () => {
    redis?.disconnect();
    await closeConnection(con);
  });

  it('maps and applies through the workers, and no key of Redis holds the S3 keys', async () => {
    const { accessKeyId, secretAccessKey } = (con.settings.options.credentials as { accessKeyId: string; secretAccessKey: string });
    expect(secretAccessKey.length).toBeGreaterThan(8);
    const data = Float32Array.from({ length: 32 * 32 * 32 }, (_, i) => i % 97);
    const ds = await con.createDataset('v', { data: dn.ndarray(data, [32, 32, 32]), chunkSize: [8, 16, 16] });
    let during = '';
    const out = await ds.map((chunk) => {
      const until = Date.now() + 40;
      while (Date.now() < until) { /* long enough to look at Redis while jobs wait */ }
      return Float32Array.from(chunk.data as Float32Array, (v) => v / 2);
    }, 'half', { onProgress: ({ done }) => { if (done === 2) void everything(redis).then((text) => { during = text; }); } });
    const mapRun = ds.lastRun!;
    await ds.apply((chunk) => { const d = chunk.data as Float32Array; for (let i = 0; i < d.length; i++) d[i] += 1; });
    expect((await out.get()).data).toEqual(Float32Array.from(data, (v) => v / 2));
    expect((await ds.get()).data).toEqual(Float32Array.from(data, (v) => v + 1));
    // The slow map's chunks were spread over the workers (the test run's three, two tasks each).
    expect(new Set(mapRun.tasks.map((t) => t.worker)).size).toBeGreaterThanOrEqual(2);
    expect(mapRun.engine).toBe('queue');
    await expect.poll(() => during.length).toBeGreaterThan(0);
    expect(during).toMatch(/backend\\*":\\*"s3/); // the jobs were there to search
    const after = await everything(redis);
    for (const text of [during, after]) {
      expect(text.includes(secretAccessKey)).toBe(false);
      expect(text.includes(accessKeyId)).toBe(false);
    }
  });
});
