/** DataChunk: one cell of a dataset's chunk grid, read and written like a small dataset. */
import type { NdArray } from './ndarray.js';
import { chunkOrigin, validShape } from './chunk-io.js';
import type { Dataset } from './dataset/index.js';
import type { TypedArray } from './dtypes.js';
import { normalizeIndex, type Index, type Selection } from './slicing.js';
import type { Value } from './values.js';

export class DataChunk {
  /** Grid index of the chunk. */
  readonly index: readonly number[];
  /** Dataset coordinates of the chunk's first cell. */
  readonly origin: readonly number[];
  /** Shape of the chunk's cells inside the dataset (edge chunks are smaller than `chunkSize`). */
  readonly shape: readonly number[];

  constructor(readonly dataset: Dataset, index: readonly number[]) {
    this.index = index;
    this.origin = chunkOrigin(dataset.meta, index);
    this.shape = validShape(dataset.meta, index);
  }

  /** Whether the chunk is stored, or has buffered writes (it reads as the fill value when not). */
  exists(): Promise<boolean> {
    return this.dataset.hasChunk(this.index);
  }

  /** Reads the chunk, or a NumPy-style slice of it in chunk-local coordinates. */
  async getData(index?: Index): Promise<NdArray<TypedArray>> {
    const selection = this.toDataset(normalizeIndex(index, this.shape));
    // Read while the store confirms the dataset is unchanged (see Dataset.get).
    return this.dataset.readOnCurrent((meta) => this.dataset.readSelectionOf(meta, selection, [[...this.index]]));
  }

  /** Writes the chunk, or a slice of it in chunk-local coordinates; the value broadcasts. */
  async setData(value: Value, index?: Index): Promise<void> {
    const selection = this.toDataset(normalizeIndex(index, this.shape));
    await this.dataset.current();
    await this.dataset.writeSelection(selection, value, [[...this.index]]);
  }

  private toDataset(sel: Selection): Selection {
    return sel.map((a, axis) => ({ ...a, start: a.start + this.origin[axis] }));
  }
}
