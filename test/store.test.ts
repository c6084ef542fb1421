/**
 * The store contract every backend keeps (as TensorStore's kvstore test kit checks its
 * stores): chunk generations, conditional writes that are atomic, deletes that conditional
 * writes see, and dataset metadata with an identity. Run on the Store itself, below the cache
 * and the engines, so a backend that breaks a rule is caught here first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import type { DatasetMeta, Store } from '../src/store.js';
import { closeConnection, combos, openConnection } from './support/matrix.js';

/** Each backend variant once (zarr in both formats, in a folder and on S3), named as the matrix names it. */
const variants = [...new Map(combos().map((c) => [c.label.split(' x ')[0], c] as const)).entries()];

const bytes = (value: number) => new Uint8Array(new Float64Array(4).fill(value).buffer);
const valueOf = (b: Uint8Array | undefined) => (b ? new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))[0] : undefined);

describe.each(variants)('store contract: %s', (name, combo) => {
  let con: dn.Connection;
  let store: Store;
  let meta: DatasetMeta;
  beforeAll(async () => {
    con = await openConnection({ ...combo, engine: 'cpu', cache: 'off', label: name });
    store = con.store;
    meta = (await con.createDataset('kv', { shape: [8], dtype: 'float64', chunkSize: [4] })).meta;
  });
  afterAll(async () => { await closeConnection(con); });

  it('generations: absent is null; every write gives the chunk a new one; stale conditions fail and write nothing', async () => {
    expect(await store.readChunkVersion(meta, [0])).toEqual({ bytes: undefined, generation: null });
    expect(await store.chunkGeneration(meta, [0])).toBeNull();
    const g1 = await store.writeChunkIf(meta, [0], [bytes(1)], null);
    expect(typeof g1).toBe('string');
    expect(await store.writeChunkIf(meta, [0], [bytes(9)], null)).toBeUndefined(); // must be absent: it is not
    const v1 = await store.readChunkVersion(meta, [0]);
    expect([valueOf(v1.bytes), v1.generation]).toEqual([1, g1]);
    expect(await store.chunkGeneration(meta, [0])).toBe(g1);
    // The batched and synchronous forms (where a store has them) give the same answers.
    expect(await store.chunkGenerations?.(meta, [[0], [1], [0]]) ?? [g1, null, g1]).toEqual([g1, null, g1]);
    expect(store.chunkGenerationsNow?.(meta, [[0], [1], [0]]) ?? [g1, null, g1]).toEqual([g1, null, g1]);

    const g2 = await store.writeChunkIf(meta, [0], [bytes(2)], g1!);
    expect(g2).toBeDefined();
    expect(g2).not.toBe(g1);
    expect(await store.writeChunkIf(meta, [0], [bytes(9)], g1!)).toBeUndefined(); // g1 is stale now
    expect(valueOf(await store.readChunk(meta, [0]))).toBe(2);

    const g3 = await store.writeChunk(meta, [0], [bytes(3)]);
    expect(g3).not.toBe(g2);
    expect(await store.writeChunkIf(meta, [0], [bytes(9)], g2!)).toBeUndefined();
    expect(await store.deleteChunk(meta, [0])).toBe(true);
    expect(await store.chunkGeneration(meta, [0])).toBeNull();
    expect(store.chunkGenerationsNow?.(meta, [[0]]) ?? [null]).toEqual([null]);
    expect(await store.writeChunkIf(meta, [0], [bytes(9)], g3)).toBeUndefined(); // deleted: g3 is stale too
    expect(await store.readChunk(meta, [0])).toBeUndefined();
    expect(await store.deleteChunk(meta, [0])).toBe(false);
  });

  it('a chunk rewritten many times never shows an earlier generation again', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const g = await store.writeChunk(meta, [1], [bytes(100 + i)]); // different bytes each time
      expect(seen.has(g), `generation ${g} came back`).toBe(false);
      seen.add(g);
    }
  });

  it('of many conditional writes racing on one generation, exactly one wins', async () => {
    const base = await store.writeChunk(meta, [1], [bytes(0)]);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.writeChunkIf(meta, [1], [bytes(i + 1)], base)));
    const winners = results.map((g, i) => (g === undefined ? -1 : i)).filter((i) => i >= 0);
    expect(winners).toHaveLength(1);
    expect(valueOf(await store.readChunk(meta, [1]))).toBe(winners[0] + 1);
    const absent = await Promise.all(Array.from({ length: 10 }, (_, i) => store.writeChunkIf(meta, [0], [bytes(i)], null)));
    expect(absent.filter((g) => g !== undefined)).toHaveLength(1);
  });

  it('after disconnect the synchronous checks refuse exactly when the asynchronous ones do', async () => {
    const other = await openConnection({ ...combo, engine: 'cpu', cache: 'off', label: `${name} closed` });
    const ds = await other.createDataset('kv-closed', { shape: [8], dtype: 'float64', chunkSize: [4] });
    const closed = other.store;
    const asyncRefuses = async (fn: () => Promise<unknown>) => fn().then(() => false, () => true);
    const syncRefuses = (fn: () => unknown) => { try { fn(); return false; } catch { return true; } };
    await ds.set([0], 1);
    await other.disconnect();
    try {
      if (closed.metaGenerationNow) {
        expect(syncRefuses(() => closed.metaGenerationNow!('kv-closed'))).toBe(await asyncRefuses(() => closed.metaGeneration('kv-closed')));
      }
      if (closed.chunkGenerationsNow) {
        expect(syncRefuses(() => closed.chunkGenerationsNow!(ds.meta, [[0]]))).toBe(await asyncRefuses(() => closed.chunkGeneration(ds.meta, [0])));
      }
    } finally {
      await other.connect();
      await closeConnection(other);
    }
  });

  it('metadata: a generation per version, a new uid per dataset of the same name, deletable without reading it', async () => {
    expect(await store.metaGeneration('kv-meta')).toBeNull();
    const first = await con.createDataset('kv-meta', { shape: [2], chunkSize: [1] });
    const found = await store.readMeta('kv-meta');
    expect(found?.meta.uid).toBe(first.meta.uid);
    expect(found?.generation).toBe(await store.metaGeneration('kv-meta'));
    expect(store.metaGenerationNow?.('kv-meta') ?? found?.generation).toBe(found?.generation);
    await expect(store.createMeta({ ...first.meta, uid: 'another' })).rejects.toBeInstanceOf(dn.DatasetExistsError);
    const firstGeneration = await store.metaGeneration('kv-meta');
    await store.deleteDataset('kv-meta');
    await expect(store.deleteDataset('kv-meta')).rejects.toBeInstanceOf(dn.DatasetNotFoundError);
    expect(store.metaGenerationNow?.('kv-meta') ?? null).toBeNull();
    const second = await con.createDataset('kv-meta', { shape: [2], chunkSize: [1] });
    expect(second.meta.uid).not.toBe(first.meta.uid);
    // The same metadata but another dataset: another generation, or stale handles would pass.
    expect(await store.metaGeneration('kv-meta')).not.toBe(firstGeneration);
    expect((await store.readMeta('kv-meta'))?.meta.uid).toBe(second.meta.uid);
  });
});
