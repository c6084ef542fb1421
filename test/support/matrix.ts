/**
 * The backend x engine matrix every conformance test runs over. `run_tests.sh` narrows it
 * with DOSNA_TEST_BACKENDS / DOSNA_TEST_ENGINES (comma lists); by default it is everything
 * registered. Each backend gets a fresh, uniquely named connection per test file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dn from '../../src/index.js';

export interface Combo {
  readonly backend: string;
  readonly engine: string;
  /** The connection's chunk cache: the default (64 MiB) or off (`cacheBytes: 0`). */
  readonly cache: 'on' | 'off';
  /** More backend options of this combo (zarr's `format`). */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly label: string;
}

/** The variants of a backend the matrix runs: zarr in both of its formats, in a folder and on S3. */
function variants(backend: string): { options?: Record<string, unknown>; name: string }[] {
  if (backend === 'zarr') {
    return [
      { options: { format: 3 }, name: 'zarr v3' }, { options: { format: 2 }, name: 'zarr v2' },
      { options: { format: 3, storage: 's3' }, name: 'zarr v3 on s3' }, { options: { format: 2, storage: 's3' }, name: 'zarr v2 on s3' },
    ];
  }
  return [{ name: backend }];
}

function listFromEnv(variable: string, available: readonly string[]): string[] {
  const raw = process.env[variable];
  if (!raw) return [...available];
  const wanted = raw.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = wanted.filter((x) => !available.includes(x));
  if (unknown.length > 0) {
    throw new Error(`${variable} names ${unknown.join(', ')}, which is not registered (available: ${available.join(', ')})`);
  }
  return wanted;
}

/** The combinations to test, as `describe.each` rows; `withCacheOff` adds each with the chunk cache off. */
export function combos(withCacheOff = false): Combo[] {
  const backends = listFromEnv('DOSNA_TEST_BACKENDS', dn.backends.available);
  const engines = listFromEnv('DOSNA_TEST_ENGINES', dn.engines.available);
  const caches = withCacheOff ? listFromEnv('DOSNA_TEST_CACHE', ['on', 'off']) as ('on' | 'off')[] : ['on' as const];
  // The queue engine's workers are other processes: a backend in this process's memory is not for them.
  const applicable = (backend: string, engine: string) => !(engine === 'queue' && backend === 'ram');
  return backends.flatMap((backend) => variants(backend).flatMap(({ options, name }) => engines.filter((e) => applicable(backend, e)).flatMap((engine) => caches.map((cache) => ({
    backend, engine, cache, ...(options ? { options } : {}), label: `${name} x ${engine}${cache === 'off' ? ' (cache off)' : ''}`,
  })))));
}

let counter = 0;

/** Folders `backendOptions` made; `closeConnection` removes a connection's folder. */
const scratchFolders = new Set<string>();

/** Extra connection options given on the command line (`--connection-options k=v`), as JSON. */
function optionsFromEnv(): Record<string, unknown> {
  const raw = process.env.DOSNA_TEST_CONNECTION_OPTIONS;
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
}

/** The S3 options the test setup provides (a local Ceph RGW, or DOSNA_S3_ENDPOINT). */
function s3Options(backend: string): Record<string, unknown> {
  // Set by test/support/global-setup.ts.
  const { DOSNA_S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error(`no S3 endpoint for the ${backend} tests: test/support/global-setup.ts should have set DOSNA_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  }
  return { endpoint, credentials: { accessKeyId, secretAccessKey }, region: process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: true, create: true };
}

/**
 * Options that give each backend a private place to write in tests (a new folder for hdf5);
 * `variant` is a matrix variant's options (zarr's `storage: 's3'` puts it in a bucket).
 */
export function backendOptions(backend: string, variant: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  if (backend === 'zarr' && variant.storage === 's3') return s3Options(backend);
  switch (backend) {
    case 'hdf5':
    case 'zarr':
    {
      const directory = mkdtempSync(join(tmpdir(), 'dosna-test-'));
      scratchFolders.add(directory);
      return { directory, create: true };
    }
    case 's3':
      return s3Options(backend);
    case 'ceph': {
      const conffile = process.env.DOSNA_CEPH_CONF;
      if (!conffile) throw new Error('no ceph conf for the ceph tests: test/support/global-setup.ts should have set DOSNA_CEPH_CONF');
      return { conffile, create: true };
    }
    default:
      return {};
  }
}

/** A connected connection for one combo, with a name no other test uses. */
export async function openConnection(combo: Combo, engineOptions: Record<string, unknown> = {}): Promise<dn.Connection> {
  const base = process.env.DOSNA_TEST_CONNECTION ?? 'dosna-test';
  const name = `${base}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
  return dn.connect(name, {
    backend: combo.backend,
    engine: combo.engine,
    engineOptions: { ...(combo.engine === 'queue' ? queueOptions() : {}), ...engineOptions },
    ...(combo.cache === 'off' ? { cacheBytes: 0 } : {}),
    ...backendOptions(combo.backend, combo.options),
    ...combo.options,
    ...optionsFromEnv(),
  });
}

/** The queue engine's options in tests: the Redis and the workers the global setup started. */
export function queueOptions(): Record<string, unknown> {
  const redis = process.env.DOSNA_TEST_REDIS;
  if (!redis) throw new Error('no Redis for the queue engine tests: test/support/global-setup.ts should have set DOSNA_TEST_REDIS');
  return { redis, queue: 'dosna-test' };
}

/** Deletes what a test connection made (buckets and folders on long-lived services stay tidy), then disconnects. */
export async function closeConnection(con: dn.Connection | undefined): Promise<void> {
  if (!con?.connected) return;
  try {
    for (const { name, kind } of await con.list()) {
      if (kind === 'group') await con.delGroup(name, { recursive: true });
      else await con.delDataset(name);
    }
  } finally {
    await con.disconnect();
    const directory = con.settings.options.directory;
    if (typeof directory === 'string' && scratchFolders.delete(directory)) rmSync(directory, { recursive: true, force: true });
  }
}

/** A second connection to the same store as `con` (same backend, engine, options and cache setting). */
export async function reopen(con: dn.Connection): Promise<dn.Connection> {
  const { backend, name, options } = con.settings;
  return dn.connect(name, {
    ...options, backend, engine: con.engine, ...(con.engine === 'queue' ? { engineOptions: queueOptions() } : {}),
    ...(con.cacheStats === undefined ? { cacheBytes: 0 } : {}),
  });
}
