/**
 * Benchmark of the s3 backend against a plain @aws-sdk/client-s3 loop moving the same objects.
 *
 *   eval "$(bash scripts/ceph-rgw.sh start)"     # or DOSNA_S3_ENDPOINT + AWS_* of any S3 service
 *   npx tsx scripts/bench-s3.ts [--runs 5] [--size 128] [--chunks 32,64] [--concurrency 8] [--backend s3]
 *
 * A size^3 float32 cube, for each chunk size: the whole-cube write (createDataset + load)
 * and read (get) through dosna (cpu engine, `concurrency` chunk tasks at once), and a plain
 * SDK loop that PUTs / GETs the same chunk objects (bytes prepared beforehand) with the same
 * number of requests in flight. After one unrecorded warm-up of each, `runs` runs alternate
 * which of the two goes first; prints the medians and plain time / dosna time.
 * Measures only; nothing is asserted.
 */
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { parseArgs } from 'node:util';
import * as dn from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    size: { type: 'string', default: '128' },
    chunks: { type: 'string', default: '32,64' },
    concurrency: { type: 'string', default: '8' },
    backend: { type: 'string', default: 's3' },
  },
});
const RUNS = Number(args.runs);
const N = Number(args.size);
const CHUNKS = args.chunks!.split(',').map(Number);
const CONCURRENCY = Number(args.concurrency);
const BACKEND = args.backend!;

const endpoint = process.env.DOSNA_S3_ENDPOINT;
const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
const region = process.env.AWS_REGION ?? 'us-east-1';
if (!endpoint || !accessKeyId || !secretAccessKey) {
  console.error('set DOSNA_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, e.g. eval "$(bash scripts/ceph-rgw.sh start)"');
  process.exit(2);
}

const bucket = `dosna-bench-${process.pid}-${Date.now().toString(36)}`;
const backendOptions = BACKEND === 'ceph'
  ? { endpoint, accessKey: accessKeyId, secretKey: secretAccessKey, region, create: true }
  : { endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, create: true };

const client = new S3Client({
  endpoint, region, forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }) }),
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs `fn` over items with `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/** The C-order bytes of every chunk of the cube, keyed as dosna keys them. */
function chunkObjects(data: Float32Array, c: number, prefix: string): { key: string; body: Uint8Array }[] {
  const g = Math.ceil(N / c);
  const out: { key: string; body: Uint8Array }[] = [];
  for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) for (let k = 0; k < g; k++) {
    const buf = new Float32Array(c * c * c);
    for (let x = 0; x < c && i * c + x < N; x++) for (let y = 0; y < c && j * c + y < N; y++) {
      const src = ((i * c + x) * N + (j * c + y)) * N + k * c;
      const len = Math.min(c, N - k * c);
      buf.set(data.subarray(src, src + len), (x * c + y) * c);
    }
    out.push({ key: `${prefix}/${i}.${j}.${k}`, body: new Uint8Array(buf.buffer) });
  }
  return out;
}

async function main(): Promise<void> {
  const data = Float32Array.from({ length: N ** 3 }, (_, i) => (i * 2654435761) % 1000);
  const cube = dn.ndarray(data, [N, N, N]);
  const mib = data.byteLength / 2 ** 20;
  const con = await dn.connect(bucket, { backend: BACKEND, engine: 'cpu', engineOptions: { concurrency: CONCURRENCY }, ...backendOptions });
  console.log(`${BACKEND} at ${endpoint}: ${N}^3 float32 (${mib} MiB), ${CONCURRENCY} in flight, median of ${RUNS}`);
  const rows: string[][] = [['chunk', 'objects', 'op', 'dosna ms', 'plain ms', 'dosna MiB/s', 'plain MiB/s', 'dosna/plain']];
  try {
    for (const c of CHUNKS) {
      const times = { dosnaW: [] as number[], dosnaR: [] as number[], plainW: [] as number[], plainR: [] as number[] };
      const objects = chunkObjects(data, c, `plain-${c}`);
      const dosnaRun = async (run: number, record: boolean) => {
        // dosna: write (create + load), then read.
        const name = `cube-${c}-${run}`;
        let t = performance.now();
        const ds = await con.createDataset(name, { shape: [N, N, N], dtype: 'float32', chunkSize: [c, c, c] });
        await ds.load(cube);
        const w = performance.now() - t;
        t = performance.now();
        const back = await ds.get();
        const r = performance.now() - t;
        if ((back.data as Float32Array)[N ** 3 - 1] !== data[N ** 3 - 1]) throw new Error('dosna read back wrong data');
        await con.delDataset(name);
        if (record) { times.dosnaW.push(w); times.dosnaR.push(r); }
      };
      const plainRun = async (record: boolean) => {
        // plain SDK loop over the same objects.
        let t = performance.now();
        await pool(objects, CONCURRENCY, async (o) => {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: o.body, ContentLength: o.body.byteLength }));
        });
        const w = performance.now() - t;
        t = performance.now();
        let bytes = 0;
        await pool(objects, CONCURRENCY, async (o) => {
          const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.key }));
          const body = await r.Body!.transformToByteArray();
          bytes += body.byteLength;
        });
        const r = performance.now() - t;
        if (bytes !== objects.length * c ** 3 * 4) throw new Error('plain read back the wrong size');
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects.map((o) => ({ Key: o.key })), Quiet: true } }));
        if (record) { times.plainW.push(w); times.plainR.push(r); }
      };
      // One unrecorded warm-up of each, then RUNS runs, alternating which goes first.
      await dosnaRun(-1, false);
      await plainRun(false);
      for (let run = 0; run < RUNS; run++) {
        if (run % 2 === 0) {
          await dosnaRun(run, true);
          await plainRun(true);
        } else {
          await plainRun(true);
          await dosnaRun(run, true);
        }
      }
      for (const [op, d, p] of [['write', times.dosnaW, times.plainW], ['read', times.dosnaR, times.plainR]] as const) {
        const dm = median(d);
        const pm = median(p);
        rows.push([`${c}^3`, String(objects.length), op, dm.toFixed(0), pm.toFixed(0), (mib / (dm / 1000)).toFixed(1), (mib / (pm / 1000)).toFixed(1), `${((pm / dm) * 100).toFixed(0)}%`]);
      }
    }
  } finally {
    // Leave nothing behind: the bucket holds only what this script wrote.
    for (const name of await con.listDatasets()) await con.delDataset(name);
    await con.disconnect();
    await client.send(new (await import('@aws-sdk/client-s3')).DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    client.destroy();
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((x, i) => x.padStart(widths[i])).join('  '));
}

await main();
