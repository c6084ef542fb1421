/**
 * The pool of spare chunk buffers (src/buffer-pool.ts): bounded in bytes, and when it is full
 * the sizes used least recently make room, so a process that moves on to another chunk size is
 * not left with a pool of buffers no one takes.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { PER_SIZE, POOL_BYTES } from '../src/buffer-pool.js';

type Pool = typeof import('../src/buffer-pool.js');
const MiB = 2 ** 20;

/** Takes every spare buffer of `bytes` there is, and counts them. */
function drain(pool: Pool, bytes: number): ArrayBuffer[] {
  const taken: ArrayBuffer[] = [];
  for (let b = pool.takeBuffer(bytes); b; b = pool.takeBuffer(bytes)) taken.push(b);
  return taken;
}

describe('buffer pool', () => {
  let pool: Pool;
  beforeEach(async () => {
    // A fresh module, so each test starts from an empty pool.
    vi.resetModules();
    pool = await import('../src/buffer-pool.js');
  });

  it('gives back the very buffer it was given, once, and only of the size asked', () => {
    const buffer = new ArrayBuffer(4096);
    pool.giveBack(new Uint8Array(buffer));
    pool.giveBack(new Uint8Array(buffer)); // twice: still one spare
    expect(pool.takeBuffer(8192)).toBeUndefined();
    expect(pool.takeBuffer(4096)).toBe(buffer);
    expect(pool.takeBuffer(4096)).toBeUndefined();
  });

  it('keeps no part of a buffer, no shared memory and nothing empty', () => {
    const buffer = new ArrayBuffer(4096);
    pool.giveBack(new Uint8Array(buffer, 16));
    pool.giveBack(new Uint8Array(buffer, 0, 1024));
    pool.giveBack(new Uint8Array(new SharedArrayBuffer(4096)));
    pool.giveBack(new Uint8Array(0));
    expect(pool.takeBuffer(4096)).toBeUndefined();
    expect(pool.takeBuffer(4080)).toBeUndefined();
    expect(pool.takeBuffer(1024)).toBeUndefined();
  });

  it('moves on to a new chunk size: buffers of the size used least recently make room', () => {
    // Buffers of 1 MiB (C=64 float32 chunks) fill the pool.
    const ones = POOL_BYTES / MiB;
    for (let i = 0; i < ones; i++) pool.giveBack(new Uint8Array(MiB));
    // Then 8 MiB chunks (C=128): each one given back is kept, in place of eight 1 MiB ones.
    const large = Array.from({ length: 3 }, () => new ArrayBuffer(8 * MiB));
    for (const buffer of large) pool.giveBack(new Uint8Array(buffer));
    const drained = drain(pool, 8 * MiB);
    // (Compared by identity: a failing toEqual would print megabytes.)
    expect(drained.length).toBe(3);
    expect(drained.every((buffer, i) => buffer === large[2 - i])).toBe(true);
    expect(drain(pool, MiB)).toHaveLength(ones - 3 * 8);
  });

  it('drops the size used least recently first, and never a buffer of the size given back', () => {
    for (let i = 0; i < 32; i++) pool.giveBack(new Uint8Array(MiB)); // 32 MiB
    for (let i = 0; i < 8; i++) pool.giveBack(new Uint8Array(2 * MiB)); // 16 MiB
    for (let i = 0; i < 4; i++) pool.giveBack(new Uint8Array(4 * MiB)); // 16 MiB: full
    // 1 MiB buffers taken and given back: now the most recently used size.
    const kept = pool.takeBuffer(MiB)!;
    pool.giveBack(new Uint8Array(kept));
    // Room for 8 MiB comes from the 2 MiB buffers (least recent), not the 1 MiB or 4 MiB ones.
    pool.giveBack(new Uint8Array(8 * MiB));
    expect(drain(pool, 2 * MiB)).toHaveLength(4);
    expect(drain(pool, MiB)).toHaveLength(32);
    expect(drain(pool, 4 * MiB)).toHaveLength(4);
    expect(drain(pool, 8 * MiB)).toHaveLength(1);
  });

  it('holds no more bytes than its bound, and nothing larger than the bound', () => {
    pool.giveBack(new Uint8Array(POOL_BYTES + 1));
    expect(pool.takeBuffer(POOL_BYTES + 1)).toBeUndefined();
    // One size alone: as many as fit (a size never evicts its own buffers), at most PER_SIZE of them.
    for (let i = 0; i < 10; i++) pool.giveBack(new Uint8Array(24 * MiB));
    expect(drain(pool, 24 * MiB)).toHaveLength(2);
    for (let i = 0; i < PER_SIZE + 36; i++) pool.giveBack(new Uint8Array(4096));
    expect(drain(pool, 4096)).toHaveLength(PER_SIZE);
    // Mixed sizes given back in turn: what is kept never exceeds the bound.
    const sizes = [3 * MiB, 5 * MiB, 7 * MiB];
    for (let i = 0; i < 60; i++) pool.giveBack(new Uint8Array(sizes[i % 3]));
    const held = sizes.reduce((sum, size) => sum + drain(pool, size).length * size, 0);
    expect(held).toBeLessThanOrEqual(POOL_BYTES);
    expect(held).toBeGreaterThan(POOL_BYTES - 7 * MiB);
  });
});
