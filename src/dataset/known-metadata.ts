/**
 * What a dataset handle knows of its dataset's metadata, and when the store last confirmed it:
 * the check every operation makes that another handle or process did not resize, replace or
 * delete the dataset meanwhile (docs/concurrency.md), and the rules by which a read skips the
 * check (`recheckCachedMetadata`), makes it first (a local stat) or overlaps it (a HEAD).
 */
import type { Connection } from '../connection.js';
import { DatasetNotFoundError } from '../errors.js';
import { now } from '../recheck.js';
import type { DatasetMeta, Generation } from '../store.js';
import { sameDataset } from './transforms.js';

export class KnownMetadata {
  #meta: DatasetMeta;
  #generation: Generation;
  /** When the store last confirmed `#meta` (epoch ms, before it was asked), and the connection's metadata epoch then: see `recheckCachedMetadata`. */
  #confirmedAt = -Infinity;
  #confirmedEpoch = -1;

  constructor(readonly connection: Connection, meta: DatasetMeta, generation: Generation) {
    this.#meta = meta;
    this.#generation = generation;
  }

  /** The metadata as the handle last saw it. */
  get meta(): DatasetMeta {
    return this.#meta;
  }

  /**
   * Checks that the dataset still exists as the handle knows it, and returns its current
   * metadata; throws `DatasetNotFoundError` when it was deleted (or deleted and created again).
   */
  async current(): Promise<DatasetMeta> {
    if (this.#confirmedNow()) return this.#meta;
    const store = this.connection.store;
    const name = this.#meta.name;
    const asked = now();
    const epoch = this.connection.metadataEpoch;
    const generation = await store.metaGeneration(name);
    if (generation === this.#generation) return this.#confirmed(asked, epoch);
    const found = generation === null ? undefined : await store.readMeta(name);
    if (!found || found.meta.uid !== this.#meta.uid) {
      await this.connection.cache?.discard(sameDataset(this.#meta));
      throw new DatasetNotFoundError(
        `dataset ${JSON.stringify(name)} of connection ${JSON.stringify(this.connection.name)} was deleted${found ? ' and created again' : ''} `
        + 'since this handle was opened; open it again with getDataset',
      );
    }
    this.#meta = found.meta;
    this.#generation = found.generation;
    return this.#confirmed(asked, epoch);
  }

  /**
   * Runs a read against the known metadata while the store confirms that it is still current
   * (see `Dataset.readOnCurrent`): without asking when the connection trusts the metadata,
   * after a local check (a stat costs less than overlapping it), or beside a remote one.
   * (When the local check finds a change, `current` stats the file again before reading the
   * new metadata: a rare path, kept simple.)
   */
  async readOnCurrent<T>(read: (meta: DatasetMeta) => Promise<T>): Promise<T> {
    const known = this.#meta;
    if (this.#trusted() || this.#confirmedNow()) return read(known);
    // A local store said at once that the metadata changed: read on the new one (or throw).
    if (this.connection.store.metaGenerationNow) return read(await this.current());
    const [checked, attempt] = await Promise.allSettled([this.current(), read(known)]);
    if (checked.status === 'rejected') {
      // Chunks the attempt cached after the check dropped that dataset's: dropped too.
      await this.connection.cache?.discard(sameDataset(known));
      throw checked.reason;
    }
    if (checked.value !== known) return read(checked.value);
    if (attempt.status === 'rejected') throw attempt.reason;
    return attempt.value;
  }

  /**
   * Whether the store, asked at once (`metaGenerationNow`, stores that check locally), still
   * has the known metadata; then notes it confirmed. `false` when it cannot tell at once or
   * the metadata changed: `current` then reads the new metadata or reports the deletion.
   */
  #confirmedNow(): boolean {
    const store = this.connection.store;
    if (!store.metaGenerationNow) return false;
    const asked = now();
    const epoch = this.connection.metadataEpoch;
    if (store.metaGenerationNow(this.#meta.name) !== this.#generation) return false;
    this.#confirmed(asked, epoch);
    return true;
  }

  /** Notes that the store confirmed the known metadata (asked at `asked`, with the connection's metadata epoch `epoch`), and returns it. */
  #confirmed(asked: number, epoch: number): DatasetMeta {
    this.#confirmedAt = asked;
    this.#confirmedEpoch = epoch;
    return this.#meta;
  }

  /**
   * Whether a read may use the known metadata without asking the store: confirmed at or after
   * the connection's `recheckCachedMetadata` time, and no resize or deletion made through this
   * connection since.
   */
  #trusted(): boolean {
    return this.#confirmedEpoch === this.connection.metadataEpoch && this.#confirmedAt >= this.connection.metadataTrustedSince;
  }
}
