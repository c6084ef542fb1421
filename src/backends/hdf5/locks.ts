/**
 * Chunk locks of the hdf5 backend, and the sweep of what crashed writers leave behind.
 *
 * A commit compares the chunk file's generation and renames the new file over it; the lock
 * makes those two steps one, between processes on one host and between hosts on a shared
 * file system. It is a file `<chunk file>.lock` created with O_EXCL (atomic on local file
 * systems and on NFS v3+), holding its owner's host, process id and a nonce. It is held only
 * for a stat and a rename (the new file is written before), so waiting for it is short.
 *
 * A lock whose owner died (SIGKILL between creating and removing it) is stale: on the owner's
 * host when its process is gone; elsewhere when it is older than `STALE_LOCK_MS`. A stale lock
 * is broken under a second O_EXCL file (`.lock.break`), and only if it still holds what was
 * judged stale, so two processes breaking the same lock cannot remove a fresh one.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DosnaError } from '../../errors.js';

/** A lock this old is stale whoever holds it (a commit holds it for a stat and a rename). */
export const STALE_LOCK_MS = 60_000;
/** Give up waiting for a lock after this long (it is then held by a live, stuck process). */
const LOCK_WAIT_MS = 120_000;
/** A temporary file or folder this old is removed even when its owner's liveness cannot be checked. */
const STALE_TEMP_MS = 3600_000;
/** A lock-break marker this old belongs to a process that died while breaking a lock. */
const STALE_BREAK_MS = 10_000;

/** This host, short: temporary names carry it so only their own host judges their owner's liveness. */
export const HOST = createHash('sha1').update(os.hostname()).digest('hex').slice(0, 8);
const NONCE = randomBytes(6).toString('hex');
let tmpCounter = 0;

/** A unique temporary name beside `file`: `<file>.tmp-<host>-<pid>-<nonce>-<n>`. */
export function tmpName(file: string): string {
  return `${file}.tmp-${HOST}-${process.pid}-${NONCE}-${(tmpCounter++).toString(36)}`;
}

/** A unique hidden name for folder `name` in `parent` while it is created or deleted. */
export function asideName(parent: string, name: string, why: 'creating' | 'deleted'): string {
  // Keep it under 255 bytes whatever the name's length.
  const short = Buffer.from(name).subarray(0, 120).toString('utf8').replace(/\uFFFD/g, '');
  return path.join(parent, `.${short}.${why}-${HOST}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

const TEMP_RE = /\.(?:tmp|creating|deleted)-([0-9a-f]{8})-(\d+)-[0-9a-z-]+$/;

/** Whether process `pid` of host `host` is alive: `undefined` when it runs elsewhere (cannot tell). */
function alive(host: string, pid: number): boolean | undefined {
  if (host !== HOST) return undefined;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ageMs(stat: fs.Stats): number {
  return Date.now() - stat.mtimeMs;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const ownerLine = () => `${HOST} ${process.pid} ${NONCE}-${randomBytes(4).toString('hex')} ${os.hostname()}\n`;

function isStaleLock(content: string, stat: fs.Stats): boolean {
  const [host, pidText] = content.split(' ');
  const pid = Number(pidText);
  if (!host || !Number.isInteger(pid)) return ageMs(stat) > 5000; // its owner died before writing it
  const living = alive(host, pid);
  if (living === false) return true;
  return ageMs(stat) > STALE_LOCK_MS;
}

/** Removes `lock` if it is stale and still the lock that was judged so. Returns whether the caller should try again at once. */
function breakIfStale(lock: string): boolean {
  let content: string;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(lock);
    content = fs.readFileSync(lock, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true; // released meanwhile
    throw error;
  }
  if (!isStaleLock(content, stat)) return false;
  const marker = `${lock}.break`;
  try {
    fs.closeSync(fs.openSync(marker, 'wx'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    try {
      if (ageMs(fs.statSync(marker)) > STALE_BREAK_MS) fs.rmSync(marker, { force: true });
    } catch { /* gone */ }
    return false;
  }
  try {
    let now: string;
    try {
      now = fs.readFileSync(lock, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw error;
    }
    if (now !== content) return true; // another process broke it and took it: wait on that one
    fs.rmSync(lock, { force: true });
    return true;
  } finally {
    fs.rmSync(marker, { force: true });
  }
}

/**
 * Runs `fn` holding the lock of `file`. `fn` should be short: a stat and a rename. Throws the
 * file system's error when the folder is gone (the caller knows what that means).
 */
export async function withFileLock<T>(file: string, fn: () => T): Promise<T> {
  const lock = `${file}.lock`;
  const started = Date.now();
  let delay = 0.25;
  for (;;) {
    try {
      const fd = fs.openSync(lock, 'wx');
      try {
        fs.writeSync(fd, ownerLine());
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (breakIfStale(lock)) continue;
    if (Date.now() - started > LOCK_WAIT_MS) {
      let owner = '';
      try { owner = fs.readFileSync(lock, 'utf8').trim(); } catch { /* gone */ }
      throw new DosnaError(`chunk file ${file} has stayed locked for ${Math.round((Date.now() - started) / 1000)} s (by ${owner || 'an unknown process'}); if that process is gone, remove ${lock}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 20);
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/**
 * Removes what crashed writers left in a dataset folder: temporary chunk files whose writer is
 * gone (or that are an hour old), stale locks, and stale lock-break markers.
 */
export function sweepFolder(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const full = path.join(dir, name);
    try {
      if (name.endsWith('.lock')) {
        breakIfStale(full);
      } else if (name.endsWith('.lock.break')) {
        if (ageMs(fs.statSync(full)) > STALE_BREAK_MS) fs.rmSync(full, { force: true });
      } else if (isAbandoned(name, () => fs.statSync(full))) {
        fs.rmSync(full, { recursive: true, force: true });
      }
    } catch { /* raced with its owner or another sweeper: leave it */ }
  }
}

/** Whether `name` is a temporary file or folder (see `tmpName`, `asideName`) that nobody will finish. */
export function isAbandoned(name: string, stat: () => fs.Stats): boolean {
  const m = TEMP_RE.exec(name);
  if (!m) return false;
  const living = alive(m[1], Number(m[2]));
  return living === false || (living === undefined && ageMs(stat()) > STALE_TEMP_MS);
}

/** Whether `name` is one of this backend's temporary or lock files (not a chunk, not a dataset). */
export function isScratchName(name: string): boolean {
  return TEMP_RE.test(name) || name.endsWith('.lock') || name.endsWith('.lock.break');
}
