/** What the chunk cache counts (`Connection.cacheStats`). */

/** Counters of what the cache did since the connection opened. */
export interface CacheStats {
  /** Reads served from the cache. */
  hits: number;
  /** Chunks read from the store to complete a cached chunk (its cells that this process did not write). */
  loads: number;
  /** Chunks read whole into the cache for a read of short rows of them (which reads them whole anyway). */
  fills: number;
  /** Clean cached chunks dropped because the store held a newer version. */
  stale: number;
  /** Chunks committed to the store. */
  commits: number;
  /** Of those, chunks stored whole without reading (every cell written here). */
  blindCommits: number;
  /** Chunks committed because the cache was full. */
  evictions: number;
  /** Of the commits, chunks committed in the background once every cell was written (write-behind). */
  writeBehinds: number;
  /** Write-behind commits that failed: their chunks stayed dirty, for the next flush to commit. */
  writeBehindFailures: number;
  bytesRead: number;
  bytesWritten: number;
}

/** Counters at zero. */
export function newCacheStats(): CacheStats {
  return { hits: 0, loads: 0, fills: 0, stale: 0, commits: 0, blindCommits: 0, evictions: 0, writeBehinds: 0, writeBehindFailures: 0, bytesRead: 0, bytesWritten: 0 };
}
