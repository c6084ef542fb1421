/**
 * Starts what the selected backends need before any test runs. The core backends need
 * nothing; `s3` and `ceph` need an S3 endpoint:
 *
 * - DOSNA_S3_ENDPOINT (with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, optionally AWS_REGION
 *   and DOSNA_CEPH_CONF) names one that already runs: it is used as is;
 * - otherwise `scripts/ceph-rgw.sh start` runs a one-node Ceph RGW on 127.0.0.1 (installing
 *   the Debian packages when missing), and teardown stops it if this run started it.
 *
 * The endpoint, keys and the ceph conf file reach the test files through process.env (set
 * here before any test worker starts; workers inherit it) and through `provide('dosnaS3')`.
 * When neither works the run fails with a message saying how to get an endpoint: tests of
 * these backends are never skipped silently.
 *
 * Every run also gets its own TMPDIR, checked empty at teardown: tests leave no files behind.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import * as dn from '../../src/index.js';
import { startRedis, startWorkers, stopProcess, TEST_QUEUE } from '../../scripts/queue-service.js';

/** What the tests of the s3 and ceph backends connect to. */
export interface S3TestService {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** A ceph-style conf (`[dosna]` section) naming the same endpoint and keys. */
  readonly cephConf: string;
  /** True when the endpoint is the loopback RGW that scripts/ceph-rgw.sh runs. */
  readonly local: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    dosnaS3: S3TestService | null;
  }
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'ceph-rgw.sh');

const HOW_TO = [
  'The s3 and ceph backends are tested against a real S3 endpoint. Either:',
  '  - let the tests start a local Ceph RGW: needs Debian/Ubuntu with root (scripts/ceph-rgw.sh installs',
  '    ceph-mon ceph-osd radosgw ceph-common) or those packages installed; see scripts/ceph-rgw.sh --help;',
  '  - or point them at a running service: DOSNA_S3_ENDPOINT=http://host:port AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...',
  '    [AWS_REGION=...] [DOSNA_CEPH_CONF=<conf with a [dosna] section>];',
  '  - or leave these backends out: run_tests.sh --backend ram --backend hdf5 (DOSNA_TEST_BACKENDS=ram,hdf5).',
].join('\n');

function selectedBackends(): string[] {
  const raw = process.env.DOSNA_TEST_BACKENDS;
  const wanted = raw ? raw.split(',').map((x) => x.trim()).filter(Boolean) : [];
  return wanted.length > 0 ? wanted : [...dn.backends.available];
}

/** Runs the RGW script; resolves with stdout, rejects with the script's own explanation. */
export function runRgwScript(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT, ...args], { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const tail = stderr.trim().split('\n').slice(-15).join('\n');
        reject(new Error(`scripts/ceph-rgw.sh ${args.join(' ')} failed (${error.code ?? error.signal ?? error.message}):\n${tail}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** The variables of the script's `export NAME=value` lines (values quoted by bash's printf %q). */
export function parseExports(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2];
    const single = /^'(.*)'$/.exec(value);
    const ansi = /^\$'(.*)'$/.exec(value);
    if (single) value = single[1];
    else if (ansi) value = ansi[1].replace(/\\(.)/g, '$1');
    else value = value.replace(/\\(.)/g, '$1');
    out[m[1]] = value;
  }
  return out;
}

/** Scratch folders this run made (removed at teardown). */
const scratch: string[] = [];

function cephConfFor(endpoint: string, accessKeyId: string, secretAccessKey: string, region: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dosna-s3-test-'));
  scratch.push(dir);
  const file = join(dir, 'dosna-ceph.conf');
  writeFileSync(file, `[dosna]\nendpoint = ${endpoint}\naccess_key = ${accessKeyId}\nsecret_key = ${secretAccessKey}\nregion = ${region}\n`, { mode: 0o600 });
  return file;
}

/**
 * The Debian packages the suite's reference checks use (h5py, SciPy, Open MPI's mpiexec),
 * installed once here, before test files run in parallel (dpkg takes one installer at a time).
 */
// fonts-dejavu-core: the text of the examples' charts and slice figures (resvg draws with system fonts).
const DEBIAN_PACKAGES = ['python3-numpy', 'python3-h5py', 'python3-scipy', 'openmpi-bin', 'fonts-dejavu-core'];

function ensureDebianPackages(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(ROOT, 'scripts', 'ensure-debian-packages.sh'), ...DEBIAN_PACKAGES], { timeout: 900_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`installing ${DEBIAN_PACKAGES.join(' ')} failed: ${stderr.trim() || error.message}`));
      else resolve();
    });
  });
}

/** Where this run's failures that belong to no test go; scripts/summarize-vitest.mjs counts them. */
export const EXTRA_FAILURES = join(ROOT, '.vitest-extra-failures.json');

/**
 * Gives the run its own temporary folder (TMPDIR, inherited by test workers and every process
 * they start) and returns the check that runs at teardown: the tests must have removed all
 * they made there. Whatever is left is removed and reported as a failure naming it.
 */
function privateTmpdir(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'dosna-test-run-'));
  process.env.TMPDIR = dir;
  rmSync(EXTRA_FAILURES, { force: true });
  return () => {
    // Tools keep compile caches in TMPDIR (tsx: tsx-<uid>; npm turns on Node's node-compile-cache):
    // caches of the tools, not files a test made.
    const left = readdirSync(dir).filter((name) => !/^(tsx-\d+|node-compile-cache)$/.test(name));
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) {
      writeFileSync(EXTRA_FAILURES, JSON.stringify([{ name: 'tests leave no files behind', message: `left in the temporary folder: ${left.sort().join(', ')}` }]));
    }
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureDebianPackages();
  const checkTmpdir = privateTmpdir();
  const stopS3 = await setupS3(project);
  const stopQueue = await setupQueue();
  return async () => {
    await stopQueue();
    await stopS3();
    checkTmpdir();
  };
}

/**
 * With the queue engine among those tested: a Redis server and three `dosna worker`s
 * (test/support/queue-service.ts), started after the S3 service so the workers have its keys
 * in their environment, as workers on other machines would have theirs.
 */
async function setupQueue(): Promise<() => Promise<void>> {
  const raw = process.env.DOSNA_TEST_ENGINES;
  const engines = raw ? raw.split(',').map((x) => x.trim()) : [...dn.engines.available];
  if (!engines.includes('queue')) return async () => {};
  const redis = await startRedis();
  process.env.DOSNA_TEST_REDIS = redis.url;
  let workers: ChildProcess[] = [];
  try {
    workers = await startWorkers(redis.url, TEST_QUEUE, 3);
  } catch (error) {
    await redis.stop();
    throw error;
  }
  return async () => {
    await Promise.all(workers.map((w) => stopProcess(w)));
    await redis.stop();
  };
}

/** The S3 service of the s3, ceph and zarr-on-S3 tests (see the module comment); returns its teardown. */
async function setupS3(project: TestProject): Promise<() => Promise<void>> {
  // zarr runs on S3 too (storage: 's3').
  const needed = selectedBackends().some((b) => b === 's3' || b === 'ceph' || b === 'zarr');
  if (!needed) {
    project.provide('dosnaS3', null);
    return async () => {};
  }

  let service: S3TestService;
  let startedHere = false;
  const given = process.env.DOSNA_S3_ENDPOINT;
  if (given) {
    const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new Error(`DOSNA_S3_ENDPOINT=${given} is set but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not.\n${HOW_TO}`);
    }
    const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    service = {
      endpoint: given, accessKeyId, secretAccessKey, region,
      cephConf: process.env.DOSNA_CEPH_CONF ?? cephConfFor(given, accessKeyId, secretAccessKey, region),
      local: false,
    };
  } else {
    const running = await runRgwScript(['env'], process.env, 30_000).catch(() => undefined);
    let exports: Record<string, string>;
    if (running && parseExports(running).DOSNA_S3_ENDPOINT) {
      exports = parseExports(running);
    } else {
      try {
        exports = parseExports(await runRgwScript(['start']));
        startedHere = true;
      } catch (error) {
        throw new Error(`could not start a local Ceph RGW for the s3/ceph tests: ${(error as Error).message}\n\n${HOW_TO}`);
      }
    }
    const { DOSNA_S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = exports;
    if (!endpoint || !accessKeyId || !secretAccessKey || !exports.DOSNA_CEPH_CONF) {
      throw new Error(`scripts/ceph-rgw.sh printed no endpoint/keys (got ${Object.keys(exports).join(', ') || 'nothing'}).\n${HOW_TO}`);
    }
    service = {
      endpoint, accessKeyId, secretAccessKey, region: exports.AWS_REGION ?? 'us-east-1',
      cephConf: exports.DOSNA_CEPH_CONF, local: true,
    };
  }

  process.env.DOSNA_S3_ENDPOINT = service.endpoint;
  process.env.AWS_ACCESS_KEY_ID = service.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = service.secretAccessKey;
  process.env.AWS_REGION = service.region;
  process.env.DOSNA_CEPH_CONF = service.cephConf;
  if (service.local) process.env.DOSNA_S3_LOCAL = '1';
  project.provide('dosnaS3', service);

  return async () => {
    for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
    if (startedHere) await runRgwScript(['stop'], process.env, 120_000);
  };
}
