/**
 * Chunk commits of the hdf5 backend, and the sweep of what crashed writers leave behind.
 *
 * A commit writes the new chunk file under a temporary name, then makes "compare the chunk's
 * generation, replace the chunk" one step between processes on one host and between hosts on a
 * shared file system, with a lock that becomes the new file (as TensorStore's file kvstore
 * does): the temporary file is hard-linked as `<chunk file>.lock` (`link` fails when the name
 * exists: an exclusive create that is atomic on local file systems and on NFS alike, and that
 * allocates no inode), the generation is compared, and `rename(lock, chunk)` replaces the chunk
 * and releases the lock at once. The temporary name, which carries its writer's host and
 * process id, keeps pointing at the lock's inode until the commit is done: that is how a lock's
 * owner is found.
 *
 * With dosna's native module, on a local Linux file system, a commit makes its new file with no
 * name at all (O_TMPFILE), notes its owner on the file (extended attribute `user.dosna.owner`)
 * and links it as the lock directly, then checks and renames in the same call
 * (native/commit-file.c): two changes of the folder instead of four (creating a named file and
 * unlinking it take the folder's lock, under which ext4 also allocates the new inode), one
 * hand-off to libuv's pool instead of four, and nothing to sweep if the writer dies before its
 * link. Elsewhere (no native module, NFS, no user extended attributes) commits use the
 * temporary name; the two kinds exclude each other through the same lock name.
 *
 * A lock whose owner died (SIGKILL between link and rename) is stale: on the owner's host when
 * its process is gone; elsewhere, or when its owner cannot be found, when it is older than
 * `STALE_LOCK_MS`. A stale lock is broken under a second exclusive file (`.lock.break`), and
 * only if it is still the lock that was judged stale (same inode), so two processes breaking one
 * lock cannot remove a fresh one.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { DosnaError } from '../../errors.js';
import { nativeModule } from '../../native.js';
import type { Generation } from '../../store.js';
import { BLOCKING_IO, statGeneration, uniqueStamp, writeFileParts } from './files.js';

const renameAsync = promisify(fs.rename);
const linkAsync = promisify(fs.link);
const unlinkAsync = promisify(fs.unlink);

/**
 * Removes a file name if it is there. A plain unlink: `fs.rm` would stat the name twice first,
 * two more system calls in every commit.
 */
async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlinkAsync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

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

/**
 * Renames the complete folder `staging` to `dir` (a new dataset or group appears whole). When
 * `dir` exists, `taken()` throws if it is a real node; otherwise it is a leftover (a dataset
 * that lost its metadata, a crash's half-made folder) whose files must never show in the new
 * node: it is moved aside and removed, and the rename tried again.
 */
export async function placeFolder(staging: string, dir: string, taken: () => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      fs.renameSync(staging, dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
    taken();
    if (attempt >= 5) throw new DosnaError(`cannot create ${dir}: it keeps being re-created`);
    const aside = asideName(path.dirname(dir), path.basename(dir), 'deleted');
    try {
      fs.renameSync(dir, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      continue;
    }
    await fs.promises.rm(aside, { recursive: true, force: true });
  }
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

/** Who a break marker belongs to (a symlink's target: short, so ext4 keeps it in the inode). */
const ownerLine = () => `${HOST} ${process.pid} ${NONCE}`;

interface Owner { readonly host: string; readonly pid: number }

/**
 * Whether a lock is stale: when its owners are all known to be dead; when one is alive, when it
 * has been held (since it was last linked or renamed: its ctime) longer than `STALE_LOCK_MS`, as
 * a commit holds it for a stat and a rename (a worker thread of a live process may have died
 * holding it); when no owner's liveness can be told here, when it is older than that.
 */
function isStale(owners: readonly Owner[], stat: fs.Stats): boolean {
  const verdicts = owners.map((o) => alive(o.host, o.pid));
  if (verdicts.length > 0 && verdicts.every((v) => v === false)) return true;
  if (verdicts.includes(true)) return Date.now() - stat.ctimeMs > STALE_LOCK_MS;
  // No owner known (no note, or no native module to read one): by its last change, the ctime
  // too, not only the mtime: a swapped-in commit's lock is the old chunk file, whose mtime is
  // the chunk's, while the swap renewed its ctime. (Swaps happen only on a local file system,
  // so a lock whose owner is on another host is a new file: its mtime is its age.)
  if (owners.length === 0) return Date.now() - Math.max(stat.mtimeMs, stat.ctimeMs) > STALE_LOCK_MS;
  return ageMs(stat) > STALE_LOCK_MS;
}

/** The owner noted on a file by a native commit, if any. */
function notedOwner(file: string): Owner | undefined {
  const line = nativeModule()?.fileOwner(file);
  const [host, pid] = line?.split(' ') ?? [];
  return host && /^\d+$/.test(pid ?? '') ? { host, pid: Number(pid) } : undefined;
}

/**
 * The lock of `file`'s inode and owners, or `undefined` when there is none. The owners are the
 * processes whose temporary files are links of it; only when there are none, the one noted on
 * it (a one-step commit's lock has no other name). An `exchange` commit puts the old chunk
 * file under the lock's name: through named files it marks the lock its own by a temporary
 * name; in one call (native/commit-file.c) it notes itself on the old file first, and swaps
 * only a file with no other name, so that no dead writer's temporary name speaks for the lock.
 */
function lockOwner(lock: string): { stat: fs.Stats; owners: Owner[] } | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(lock);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // released meanwhile
    throw error;
  }
  const owners: Owner[] = [];
  const dir = path.dirname(lock);
  const stem = `${path.basename(lock, '.lock')}.tmp-`;
  try {
    for (const name of fs.readdirSync(dir)) {
      if (!name.startsWith(stem)) continue;
      const m = TEMP_RE.exec(name);
      try {
        if (m && fs.lstatSync(path.join(dir, name)).ino === stat.ino) owners.push({ host: m[1], pid: Number(m[2]) });
      } catch { /* gone meanwhile */ }
    }
  } catch { /* the folder is gone */ }
  const noted = owners.length === 0 ? notedOwner(lock) : undefined;
  if (noted) owners.push(noted);
  return { stat, owners };
}

/** How a waiter judges `lock` now: gone, held by a live owner, or stale (its owner dead, or silent too long). */
export function judgeLock(lock: string): 'free' | 'held' | 'stale' {
  const judged = lockOwner(lock);
  return !judged ? 'free' : isStale(judged.owners, judged.stat) ? 'stale' : 'held';
}

/** Removes `lock` if it is stale and still the lock that was judged so. Returns whether the caller should try again at once. */
function breakIfStale(lock: string): boolean {
  const judged = lockOwner(lock);
  if (!judged) return true;
  if (!isStale(judged.owners, judged.stat)) return false;
  const marker = `${lock}.break`;
  try {
    fs.symlinkSync(ownerLine(), marker);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    try {
      if (ageMs(fs.lstatSync(marker)) > STALE_BREAK_MS) fs.rmSync(marker, { force: true });
    } catch { /* gone */ }
    return false;
  }
  try {
    let now: fs.Stats;
    try {
      now = fs.lstatSync(lock);
    } catch {
      return true; // released meanwhile
    }
    if (now.ino !== judged.stat.ino) return true; // another process broke it and took it: wait on that one
    fs.rmSync(lock, { force: true });
    return true;
  } finally {
    fs.rmSync(marker, { force: true });
  }
}

/** Takes the lock of `file` by linking `holder` (a temporary file of this process) as it. */
async function acquire(file: string, holder: string): Promise<string> {
  const lock = `${file}.lock`;
  const started = Date.now();
  let delay = 0.25;
  for (;;) {
    try {
      // Asynchronous, as every directory change here: under heavy writing each one may wait
      // for the file system's journal, and this thread has copying to do meanwhile.
      await linkAsync(holder, lock);
      return lock;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (breakIfStale(lock)) continue;
    if (Date.now() - started > LOCK_WAIT_MS) {
      const held = lockOwner(lock)?.owners[0];
      throw new DosnaError(`chunk file ${file} has stayed locked for ${Math.round((Date.now() - started) / 1000)} s (by ${held ? `process ${held.pid} of host ${held.host}` : 'an unknown process'}); if that process is gone, remove ${lock}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 20);
  }
}

let locking = true;

/**
 * Runs `fn` with chunk commits that rename without taking the chunk's lock, which is unsafe
 * with other writers: only for the benchmark that measures what the lock costs a load.
 * @internal
 */
export async function withoutLocksForBenchmark<T>(fn: () => Promise<T>): Promise<T> {
  locking = false;
  try {
    return await fn();
  } finally {
    locking = true;
  }
}

/**
 * How a commit puts the new chunk file in place of the old one (the hdf5 option `commit`, whose
 * default picks one per folder: commit-mode.ts):
 * - `rename`: renamed over it. ext4 (auto_da_alloc) then starts writing the new file's data to
 *   disk before the rename is journaled, so after a power cut each chunk is old or new; the
 *   commit pays for starting that write-out.
 * - `exchange`: swapped with it in one step (Linux's renameat2 RENAME_EXCHANGE, through dosna's
 *   native module: in the same call as the rest of a one-step commit, native/commit-file.c), and
 *   the old file removed. Just as atomic for every process, but no write-out is forced: measured
 *   on ext4, 64 commits of 1 MiB took ~33 ms against ~80-100 ms renamed. On a journaling file
 *   system a power cut may then leave recently committed chunks empty, as h5py's in-place writes
 *   may leave them torn. Where the swap is not available (no native module, another system, a
 *   file system without it, no old file) the commit renames.
 */
export type CommitMode = 'rename' | 'exchange';

/**
 * Puts `from` (held under the chunk's lock) in place of `file`. In `exchange` mode the old file
 * keeps a temporary name of this process until its last name is gone: the lock's name points to
 * it between the swap and the release, and a writer waiting for the lock must find its owner
 * (alive) through that name, not judge the lock stale and take it while this commit removes it.
 */
async function replaceLocked(from: string, file: string, mode: CommitMode): Promise<void> {
  const swap = mode === 'exchange' ? nativeModule()?.exchangeFiles : undefined;
  if (!swap) return renameAsync(from, file);
  const old = tmpName(file);
  try {
    await linkAsync(file, old);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return renameAsync(from, file); // a new chunk: nothing to swap with
    throw error;
  }
  try {
    if (!(await swap(from, file))) return await renameAsync(from, file);
    await unlinkIfPresent(from); // the old file's name as the lock: releases the lock
  } finally {
    await unlinkIfPresent(old);
  }
}

/**
 * Replaces `file` with `tmp` (a complete new file of this process, named by `tmpName`) if
 * `check()` passes when nobody else can replace it; resolves whether it did. `tmp` is gone
 * afterwards either way. `check` should be quick (a stat or two); it may throw.
 */
export async function commitFile(file: string, tmp: string, check: () => boolean, mode: CommitMode = 'rename'): Promise<boolean> {
  if (!locking) {
    if (!check()) return false;
    await renameAsync(tmp, file);
    return true;
  }
  try {
    const lock = await acquire(file, tmp);
    let replaced = false;
    try {
      if (!check()) return false;
      // Replaces the chunk and releases the lock (in one step when renamed). Asynchronous: a
      // rename over a file makes ext4 start writing the new data out (auto_da_alloc), which must
      // not block this thread.
      await replaceLocked(lock, file, mode);
      replaced = true;
      return true;
    } finally {
      if (!replaced) await unlinkIfPresent(lock);
    }
  } finally {
    await unlinkIfPresent(tmp);
  }
}

/** What must still hold when a new chunk file replaces the old one. */
export interface CommitCondition {
  /** The dataset's folder, which must still have inode `folderIno` (not a new dataset of the same name). */
  readonly folder: string;
  readonly folderIno: bigint;
  /** The generation `file` must still have (`null`: no file), or `undefined` to replace whatever is there. */
  readonly expected?: Generation | null;
}

/** The new file's generation, or why it did not replace the old one. */
export type CommitOutcome = Generation | 'conflict' | 'folder-changed';

/** Folders where unnamed files cannot be made (see the module comment): commits there use temporary names. */
const namedOnly = new Set<string>();

/**
 * Writes a new file and puts it in place of `file` if `condition` holds when nobody else can
 * replace it (see the module comment for how): its generation, `'conflict'` when `expected` did
 * not hold, `'folder-changed'` when the folder is not the dataset's any more. The new file is
 * `parts`, or what `write` makes at the temporary name it is given (returning its generation).
 * Nothing of the new file is left behind unless it replaced `file`.
 */
export async function writeAndCommit(
  file: string, content: readonly Uint8Array[] | { write(tmp: string): Promise<Generation> }, condition: CommitCondition, mode: CommitMode = 'rename',
): Promise<CommitOutcome> {
  const native = nativeModule();
  const dir = path.dirname(file);
  const parts = Array.isArray(content) ? content as readonly Uint8Array[] : undefined;
  if (parts && native && locking && !namedOnly.has(dir)) {
    const outcome = await native.commitNewFile(
      `${file}.lock`, parts, uniqueStamp(), ownerLine(), condition.folder, condition.folderIno.toString(), file, condition.expected, mode, BLOCKING_IO,
    );
    if (typeof outcome === 'string') return outcome;
    if (outcome === 0) return 'conflict';
    if (outcome === 3) return 'folder-changed';
    if (outcome === 2) {
      if (namedOnly.size >= 1024) namedOnly.clear();
      namedOnly.add(dir);
    }
    // 1: the lock is held; the named commit below waits for it.
  }
  const tmp = tmpName(file);
  try {
    const generation = parts ? await writeFileParts(tmp, parts) : await (content as { write(tmp: string): Promise<Generation> }).write(tmp);
    let folderChanged = false;
    const replaced = await commitFile(file, tmp, () => {
      folderChanged = fs.statSync(condition.folder, { bigint: true }).ino !== condition.folderIno;
      return !folderChanged && (condition.expected === undefined || statGeneration(file) === condition.expected);
    }, mode);
    return replaced ? generation : folderChanged ? 'folder-changed' : 'conflict';
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

/** Removes `file` (resolving whether it existed), atomically with respect to `commitFile`. */
export async function removeFile(file: string): Promise<boolean> {
  const holder = tmpName(file);
  fs.closeSync(fs.openSync(holder, 'wx'));
  try {
    const lock = await acquire(file, holder);
    try {
      fs.unlinkSync(file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    } finally {
      fs.rmSync(lock, { force: true });
    }
  } finally {
    fs.rmSync(holder, { force: true });
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
  // Locks first: a stale lock's owner is found through its temporary file, swept next.
  for (const name of names.filter((n) => n.endsWith('.lock')).concat(names.filter((n) => !n.endsWith('.lock')))) {
    const full = path.join(dir, name);
    try {
      if (name.endsWith('.lock')) {
        breakIfStale(full);
      } else if (name.endsWith('.lock.break')) {
        if (ageMs(fs.lstatSync(full)) > STALE_BREAK_MS) fs.rmSync(full, { force: true });
      } else if (isAbandoned(name, () => fs.lstatSync(full))) {
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
