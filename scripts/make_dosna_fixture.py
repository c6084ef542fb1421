#!/usr/bin/env python3
"""Makes a DosNa hdf5-backend folder with h5py, exactly as Python DosNa lays it out:

    <directory>/<connection>/<dataset>/dataset.h5            attrs shape, dtype, fillvalue, chunk_grid, chunk_size
    <directory>/<connection>/<dataset>/chunk_<i>_<j>_<k>.h5  dataset /data of the full chunk shape

usage: make_dosna_fixture.py DIRECTORY CONNECTION

Creates dataset `vol`: shape (5, 7, 3), dtype <i2, chunk_size (2, 3, 3), fillvalue -7,
values arange(105).reshape(5, 7, 3) - 50, with chunk (1, 1, 0) left out (it reads as the
fill value), chunk (0, 0, 0) stored big-endian and gzip-compressed (as another writer might).
Creates dataset `f64`: shape (4,), dtype <f8, fillvalue nan, one chunk (0,) of 2 values.
"""
import os
import sys

import h5py
import numpy as np


def make(directory, connection):
    root = os.path.join(directory, connection)
    os.makedirs(root, exist_ok=True)

    def dataset(name, data_shape, dtype, chunk_size, fillvalue):
        path = os.path.join(root, name)
        os.mkdir(path)
        grid = np.ceil(np.asarray(data_shape, float) / chunk_size).astype(int)
        with h5py.File(os.path.join(path, 'dataset.h5'), 'w') as f:
            f.attrs['shape'] = data_shape
            f.attrs['dtype'] = np.dtype(dtype).str
            f.attrs['fillvalue'] = np.dtype(dtype).type(fillvalue)
            f.attrs['chunk_grid'] = np.asarray(grid, dtype=int)
            f.attrs['chunk_size'] = np.asarray(chunk_size, dtype=int)
        return path, grid

    values = (np.arange(5 * 7 * 3).reshape(5, 7, 3) - 50).astype('<i2')
    path, grid = dataset('vol', (5, 7, 3), '<i2', (2, 3, 3), -7)
    for idx in np.ndindex(*grid):
        if idx == (1, 1, 0):
            continue
        sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, (2, 3, 3)))
        block = np.full((2, 3, 3), -7, dtype='<i2')
        part = values[sl]
        block[tuple(slice(0, n) for n in part.shape)] = part
        name = os.path.join(path, 'chunk_{}.h5'.format('_'.join(map(str, idx))))
        with h5py.File(name, 'w') as f:
            if idx == (0, 0, 0):
                f.create_dataset('data', data=block.astype('>i2'), chunks=(2, 3, 3), compression='gzip', fillvalue=-7)
            else:
                f.create_dataset('data', data=block, fillvalue=-7)

    path, grid = dataset('f64', (4,), '<f8', (2,), float('nan'))
    with h5py.File(os.path.join(path, 'chunk_0.h5'), 'w') as f:
        f.create_dataset('data', data=np.array([1.25, -2.5], dtype='<f8'), fillvalue=np.nan)


if __name__ == '__main__':
    make(sys.argv[1], sys.argv[2])
