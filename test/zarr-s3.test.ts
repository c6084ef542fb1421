/**
 * The zarr backend on S3 (`storage: 's3'`) against other implementations reading and writing
 * the same bucket of the test RGW: zarr-python 2 (Debian's python3-zarr) through a store made
 * of boto3 calls for format 2, zarrita.js through a store made of @aws-sdk/client-s3 calls for
 * format 3. The conformance suite runs the backend itself ("zarr v3 on s3", "zarr v2 on s3").
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as zarr from 'zarrita';
import * as dn from '../src/index.js';
import { s } from '../src/index.js';
import { ensureDebianPackages, pythonWith } from './support/python.js';
import { SHARDED_EXPECTED, writeShardedArray } from './support/zarr-fixtures.js';

const env = () => {
  const { DOSNA_S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env;
  if (!endpoint || !accessKeyId || !secretAccessKey) throw new Error('no S3 endpoint: test/support/global-setup.ts starts the RGW when the zarr backend is selected');
  return { endpoint, accessKeyId, secretAccessKey };
};

const options = (format: 2 | 3) => {
  const { endpoint, accessKeyId, secretAccessKey } = env();
  return { backend: 'zarr', storage: 's3', format, endpoint, credentials: { accessKeyId, secretAccessKey }, forcePathStyle: true, create: true };
};

let client: S3Client;
const buckets: string[] = [];
const bucketName = (label: string) => {
  const name = `dosna-zarr-${label}-${process.pid}-${Date.now().toString(36)}`;
  buckets.push(name);
  return name;
};

beforeAll(() => {
  ensureDebianPackages('python3-zarr', 'python3-numpy', 'python3-boto3');
  const { endpoint, accessKeyId, secretAccessKey } = env();
  client = new S3Client({ endpoint, region: process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
}, 600_000);

afterAll(async () => {
  for (const bucket of buckets) {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
    for (const o of listed?.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
    await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
  }
  client?.destroy();
});

/** zarr-python 2 on a bucket: a MutableMapping of boto3 calls (zarr 2 takes any mapping as a store). */
const PY_STORE = `
import sys, os, json, boto3, zarr, numpy as np
from collections.abc import MutableMapping
s3 = boto3.client('s3', endpoint_url=os.environ['DOSNA_S3_ENDPOINT'], region_name='us-east-1',
                  aws_access_key_id=os.environ['AWS_ACCESS_KEY_ID'], aws_secret_access_key=os.environ['AWS_SECRET_ACCESS_KEY'])
class Bucket(MutableMapping):
    def __init__(self, name): self.name = name
    def __getitem__(self, key):
        try: return s3.get_object(Bucket=self.name, Key=key)['Body'].read()
        except s3.exceptions.NoSuchKey: raise KeyError(key)
    def __setitem__(self, key, value): s3.put_object(Bucket=self.name, Key=key, Body=bytes(value))
    def __delitem__(self, key): s3.delete_object(Bucket=self.name, Key=key)
    def __iter__(self):
        for page in s3.get_paginator('list_objects_v2').paginate(Bucket=self.name):
            for o in page.get('Contents', []): yield o['Key']
    def __len__(self): return sum(1 for _ in self)
store = Bucket(sys.argv[1])
`;

const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.round(Math.sin(i / 7) * 100) / 4);

describe('zarr v2 on S3 and zarr-python 2', () => {
  it('zarr-python reads from the bucket what dosna wrote, dosna maps over what zarr-python wrote there, and each reads the other', async () => {
    const bucket = bucketName('v2');
    await dn.withConnection(bucket, options(2), async (con) => {
      await con.attrs.set('facility', 'DLS');
      const ds = await con.createDataset('scan/vol', { shape: [10, 12], dtype: 'float32', chunkSize: [4, 5], fillValue: -1, compression: 'zstd', shuffle: true });
      await ds.set([s(0, 6)], dn.ndarray(ramp(72), [6, 12]));
      await ds.attrs.set('units', 'mm');
    });
    const read = JSON.parse(pythonWith({}, `${PY_STORE}
g = zarr.open_group(store, mode='r')
a = g['scan/vol']
print(json.dumps({'facility': g.attrs['facility'], 'groups': sorted(g.group_keys()), 'sum': float(a[...].astype('f8').sum()),
  'last': a[9].tolist(), 'units': a.attrs['units'], 'compressor': a.compressor.codec_id, 'filters': [f.codec_id for f in a.filters]}))
`, bucket));
    expect(read.facility).toBe('DLS');
    expect(read.groups).toEqual(['scan']);
    expect(read.sum).toBeCloseTo(ramp(72).reduce((x, y) => x + y, 0) - 48, 3);
    expect(read.last).toEqual(Array(12).fill(-1));
    expect([read.units, read.compressor, read.filters]).toEqual(['mm', 'zstd', ['shuffle']]);

    pythonWith({}, `${PY_STORE}
from numcodecs import GZip
g = zarr.open_group(store, mode='a')
b = g.create_dataset('counts', shape=(20, 9), chunks=(8, 4), dtype='<i4', compressor=GZip(level=5), fill_value=-3)
b[:15] = np.arange(15 * 9, dtype='i4').reshape(15, 9)
b.attrs['by'] = 'python'
`, bucket);
    await dn.withConnection(bucket, options(2), async (con) => {
      expect((await con.list()).map((e) => `${e.name}:${e.kind}`)).toEqual(['counts:dataset', 'scan:group']);
      const counts = await con.getDataset('counts');
      expect([counts.dtype, counts.compression, await counts.attrs.get('by')]).toEqual(['int32', 'gzip', 'python']);
      expect(Array.from((await counts.get([14, s(0, 3)])).data as Int32Array)).toEqual([126, 127, 128]);
      expect(Array.from((await counts.get([19, s(0, 2)])).data as Int32Array)).toEqual([-3, -3]);
      // An engine over an array another tool wrote, into a new array of the bucket.
      await counts.map((chunk: dn.NdArray) => {
        const d = chunk.data as Int32Array;
        return Int32Array.from(d, (v) => v * 2);
      }, 'doubled');
    });
    expect(JSON.parse(pythonWith({}, `${PY_STORE}
print(json.dumps(zarr.open_group(store, mode='r')['doubled'][14, :3].tolist()))
`, bucket))).toEqual([252, 254, 256]);
  }, 300_000);
});

/** zarrita on a bucket: its store interface (get/set of absolute keys) over the SDK. */
function bucketStore(bucket: string) {
  const keyOf = (key: string) => key.replace(/^\//, '');
  return {
    async get(key: `/${string}`): Promise<Uint8Array | undefined> {
      try {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(key) }));
        return await got.Body!.transformToByteArray();
      } catch (error) {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw error;
      }
    },
    async set(key: `/${string}`, value: Uint8Array): Promise<void> {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: keyOf(key), Body: value }));
    },
  };
}

describe('zarr v3 on S3 and zarrita.js', () => {
  it('zarrita reads from the bucket what dosna wrote, and dosna reads and writes what zarrita wrote', async () => {
    const bucket = bucketName('v3');
    await dn.withConnection(bucket, options(3), async (con) => {
      const ds = await con.createDataset('scan/vol', { shape: [10, 12], dtype: 'float32', chunkSize: [4, 5], fillValue: -1, compression: 'gzip' });
      await ds.set([s(0, 6)], dn.ndarray(ramp(72), [6, 12]));
      await (await con.getGroup('scan')).attrs.set('sample', 'ruby');
    });
    const store = bucketStore(bucket);
    expect((await zarr.open(zarr.root(store).resolve('scan'), { kind: 'group' })).attrs).toEqual({ sample: 'ruby' });
    const arr = await zarr.open(zarr.root(store).resolve('scan/vol'), { kind: 'array' });
    const got = await zarr.get(arr, null);
    expect(Array.from(got.data as Float32Array).slice(0, 72)).toEqual(Array.from(ramp(72)));
    expect(Array.from(got.data as Float32Array).slice(72)).toEqual(Array(48).fill(-1));

    const made = await zarr.create(zarr.root(store).resolve('scan/made'), {
      shape: [9, 7], chunkShape: [4, 4], dtype: 'int32', fillValue: -7, attributes: { by: 'zarrita' },
      codecs: [{ name: 'bytes', configuration: { endian: 'little' } }, { name: 'zstd', configuration: { level: 1, checksum: false } }] as never,
    });
    await zarr.set(made, [zarr.slice(0, 5), null], { data: Int32Array.from({ length: 35 }, (_, i) => i), shape: [5, 7], stride: [7, 1] });
    await dn.withConnection(bucket, options(3), async (con) => {
      expect((await con.list('scan')).map((e) => e.name)).toEqual(['made', 'vol']);
      const ds = await con.getDataset('scan/made');
      expect([ds.compression, await ds.attrs.get('by')]).toEqual(['zstd', 'zarrita']);
      const all = Array.from((await ds.get()).data as Int32Array);
      expect(all.slice(0, 35)).toEqual(Array.from({ length: 35 }, (_, i) => i));
      expect(all.slice(35)).toEqual(Array(28).fill(-7));
      await ds.set([8, s()], 100);
    });
    const row = await zarr.get(await zarr.open(zarr.root(store).resolve('scan/made'), { kind: 'array' }), [8, null]);
    expect(Array.from(row.data as Int32Array)).toEqual(Array(7).fill(100));
  }, 300_000);

  it('reads a sharded array from the bucket (a folder made by hand after the spec, uploaded key for key)', async () => {
    const bucket = bucketName('shard');
    await dn.withConnection(bucket, options(3), async () => {}); // makes the bucket and its root group
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dosna-zarr-shard-'));
    try {
      writeShardedArray(folder);
      for (const file of fs.readdirSync(folder, { recursive: true, withFileTypes: true })) {
        if (!file.isFile()) continue;
        const full = path.join(file.parentPath, file.name);
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: path.relative(folder, full).split(path.sep).join('/'), Body: fs.readFileSync(full) }));
      }
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
    await dn.withConnection(bucket, options(3), async (con) => {
      const ds = await con.getDataset('sharded');
      expect(Array.from((await ds.get()).data as Int32Array)).toEqual(SHARDED_EXPECTED);
      expect(Array.from((await ds.get([9, s(8, 12)])).data as Int32Array)).toEqual([908, 909, 910, 911]);
      await expect(ds.set([0, 0], 1)).rejects.toThrow(dn.OptionError);
    });
  }, 120_000);

  it('refuses S3 options without storage: s3, and unknown ones with it', async () => {
    await expect(dn.connect('x', { backend: 'zarr', endpoint: env().endpoint })).rejects.toThrow(/storage: 's3'/);
    await expect(dn.connect('x', { ...options(3), directory: '/tmp' })).rejects.toThrow(dn.OptionError);
    await expect(dn.connect('x', { ...options(3), commit: 'exchange' })).rejects.toThrow(dn.OptionError); // a folder's option
    await expect(dn.connect('x', { backend: 'zarr', storage: 'gcs' })).rejects.toThrow(/storage must be 'folder' or 's3'/);
  });
});
