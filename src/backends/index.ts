/**
 * The backend registry: adding a backend is one file plus one line here. Backends load
 * lazily, so their dependencies (h5wasm, the AWS SDK) cost nothing until used.
 */
import type { Backend } from '../store.js';

const loaders: Record<string, () => Promise<{ backend: Backend }>> = {
  ram: () => import('./ram.js'),
  hdf5: () => import('./hdf5/index.js'),
  s3: () => import('./s3.js'),
  ceph: () => import('./ceph.js'),
  zarr: () => import('./zarr/index.js'),
};

export const backendNames: readonly string[] = Object.freeze(Object.keys(loaders));

export async function loadBackend(name: string): Promise<Backend> {
  return (await loaders[name]()).backend;
}
