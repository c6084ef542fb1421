"""The Python peers of `npm run bench`, run in the same run on the same data: h5py (a chunked
dataset with the same chunks), zarr-python 2 (DirectoryStore and MemoryStore, no compressor)
and numpy. A benchmark reference only (Debian's /usr/bin/python3), never a dependency of dosna.

Prints one `BENCH {json}` line per result, as the TypeScript benchmark scripts do.

    python3 bench/peers.py io --n 256 --chunks 32,64,128 --runs 5 --dir /tmp/x
    python3 bench/peers.py planes --runs 3 --dir /tmp/x
    python3 bench/peers.py map --n 256 --chunks 64 --runs 3 --dir /tmp/x
    python3 bench/peers.py codecs --n 256 --chunks 64 --runs 3 --dir /tmp/x
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np


def emit(record):
    print('BENCH ' + json.dumps(record), flush=True)


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


WARMUP_MS = 300  # as bench/common.ts: untimed runs first, until this much time is spent
WARMUP_RUNS = 2000
COLD_RUNS = 10  # as bench/common.ts: the first warm-up runs are kept apart (a process's first runs)
TIMED_MS = 250  # as bench/common.ts: short workloads timed more often, up to this much time
TIMED_RUNS = 100


def time_runs(runs, fn, before=None, warmup=False, extend=False, cold=None):
    """`runs` timed runs; with `warmup`, after untimed ones (at least one, repeated while they
    take under WARMUP_MS in all, at most WARMUP_RUNS), the first COLD_RUNS of them appended to
    `cold`; with `extend`, more timed runs while they take under TIMED_MS in all (at most
    TIMED_RUNS): as bench/common.ts does for dosna."""
    def once():
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000

    if warmup:
        spent = 0.0
        r = 0
        while r < WARMUP_RUNS and (r == 0 or spent < WARMUP_MS):
            ms = once()
            if cold is not None and r < COLD_RUNS:
                cold.append(ms)
            spent += ms
            r += 1
    times = []
    spent = 0.0
    while len(times) < runs or (extend and len(times) < TIMED_RUNS and spent < TIMED_MS):
        times.append(once())
        spent += times[-1]
    return times


def random_float32(n, seed=1):
    """bench/common.ts's randomFloat32 (mulberry32), vectorised: the same values, bit for bit."""
    m = np.uint64(0xFFFFFFFF)
    a = (np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x6D2B79F5)) & m

    def imul(x, y):
        return (x * y) & m

    t = imul(a ^ (a >> np.uint64(15)), a | np.uint64(1))
    t = (t ^ ((t + imul(t ^ (t >> np.uint64(7)), t | np.uint64(61))) & m)) & m
    return (((t ^ (t >> np.uint64(14))) & m).astype(np.float64) / 4294967296.0).astype(np.float32)


def scaled(v, n):
    return int(round(v * n / 256))


def regions(n):
    block = (slice(scaled(36, n), scaled(180, n)), slice(scaled(89, n), scaled(250, n)), slice(scaled(7, n), scaled(200, n)))
    q = n // 4
    aligned = (slice(q, 3 * q), slice(q, 3 * q), slice(q, 3 * q))
    return block, aligned


def chunk_slices(shape, chunks):
    import itertools
    ranges = [range(0, s, c) for s, c in zip(shape, chunks)]
    for origin in itertools.product(*ranges):
        yield tuple(slice(o, min(o + c, s)) for o, c, s in zip(origin, chunks, shape))


def io_workloads(name, make, reopen, n, c, runs, cube, block_data, flush):
    """The slicing and I/O workloads on one peer. `make()` creates and fills a new array and
    returns it; `reopen()` gives the array for reading; `flush(array)` makes writes durable as
    far as the peer goes (h5py: flush the file)."""
    block, aligned = regions(n)
    holder = {}
    ms, samples, cold = {}, {}, {}

    def timed(key, fn):
        # Every timed run is kept: the benchmark pools the runs of several rounds (bench/rounds.ts).
        # Repeated workloads (all but write, which makes a new array each time) are timed more
        # often when short, as bench/io.ts times dosna's.
        cold[key] = []
        samples[key] = time_runs(runs, fn, warmup=True, extend=key != 'write', cold=cold[key])
        ms[key] = median(samples[key])

    def write():
        holder['a'] = make()
        holder['a'][...] = cube
        flush(holder['a'])

    timed('write', write)
    a = reopen()
    timed('read', lambda: a[...])
    out = np.empty(cube.shape, dtype=np.float32)
    if hasattr(a, 'read_direct'):
        timed('readInto', lambda: a.read_direct(out))
    timed('misaligned', lambda: a[block])
    timed('aligned', lambda: a[aligned])
    timed('plane', lambda: a[n // 2])
    timed('line', lambda: a[:, 5, 7])

    def set_block():
        a[block] = block_data
        flush(a)

    timed('setBlock', set_block)

    def apply():
        for sl in chunk_slices(a.shape, (c, c, c)):
            a[sl] = a[sl] + np.float32(1)
        flush(a)

    timed('apply', apply)
    emit({'kind': 'peer-io', 'peer': name, 'N': n, 'C': c, 'runs': runs, 'bytes': n ** 3 * 4, 'ms': ms, 'samples': samples,
          'coldSamples': cold})


def h5py_peer(directory, n, c, runs, cube, block_data):
    import h5py
    path = os.path.join(directory, f'h5py-{c}.h5')
    files = []

    def make():
        for f in files:
            f.close()
        files.clear()
        f = h5py.File(path, 'w')
        files.append(f)
        return f.create_dataset('cube', shape=cube.shape, dtype='f4', chunks=(c, c, c))

    def reopen():
        for f in files:
            f.close()
        files.clear()
        f = h5py.File(path, 'r+')
        files.append(f)
        return f['cube']

    io_workloads('h5py', make, reopen, n, c, runs, cube, block_data, lambda a: a.file.flush())
    for f in files:
        f.close()
    os.remove(path)


def zarr_peer(kind, directory, n, c, runs, cube, block_data):
    import zarr
    path = os.path.join(directory, f'zarr-{c}')
    holder = {}

    def make():
        if kind == 'dir':
            shutil.rmtree(path, ignore_errors=True)
            store = zarr.DirectoryStore(path)
        else:
            store = zarr.MemoryStore()
        holder['a'] = zarr.create(shape=cube.shape, chunks=(c, c, c), dtype='f4', compressor=None, store=store, overwrite=True)
        return holder['a']

    io_workloads(f'zarr-{kind}', make, lambda: holder['a'], n, c, runs, cube, block_data, lambda a: None)
    shutil.rmtree(path, ignore_errors=True)


def numpy_peer(n, chunk_sizes, runs, cube):
    """numpy's own copy of the cube (allocate and copy), of a reused array (copy only), its
    gather of the cube from separate chunk arrays into a reused one (the copy under a read), and
    apply's `+1` over those chunk arrays alone (the chunk function without any store)."""
    out = np.empty_like(cube)
    ms = {
        'copy': median(time_runs(runs, lambda: cube.copy())),
        'copyInto': median(time_runs(runs, lambda: np.copyto(out, cube))),
    }
    for c in chunk_sizes:
        if c > n:
            continue
        slices = list(chunk_slices(cube.shape, (c, c, c)))
        chunks = [np.ascontiguousarray(cube[sl]) for sl in slices]

        def gather():
            for sl, chunk in zip(slices, chunks):
                out[sl] = chunk
        ms[f'gather{c}'] = median(time_runs(runs, gather))

        def plus_one():
            for chunk in chunks:
                chunk += 1
        ms[f'plusOne{c}'] = median(time_runs(runs, plus_one, warmup=True))
    emit({'kind': 'peer-io', 'peer': 'numpy', 'N': n, 'C': 0, 'runs': runs, 'bytes': n ** 3 * 4, 'ms': ms})


def planes_workload(directory, runs):
    """A detector's pattern: 256 planes written one by one into a 256x384x384 uint16 volume
    chunked 64x128x128, with h5py's default chunk cache and with a 64 MiB one."""
    import h5py
    shape, chunks = (256, 384, 384), (64, 128, 128)
    planes = (random_float32(384 * 384, 3) * 65535).astype(np.uint16).reshape(384, 384)
    path = os.path.join(directory, 'planes.h5')
    for label, kwargs in (('h5py default cache', {}), ('h5py 64 MiB cache', {'rdcc_nbytes': 64 * 2 ** 20, 'rdcc_nslots': 10007})):
        def run():
            with h5py.File(path, 'w', **kwargs) as f:
                d = f.create_dataset('v', shape=shape, dtype='u2', chunks=chunks)
                for z in range(shape[0]):
                    d[z] = planes
        ms = median(time_runs(runs, run))
        emit({'kind': 'peer-planes', 'peer': label, 'shape': shape, 'chunks': chunks, 'runs': runs, 'ms': ms})
    os.remove(path)


def map_workload(directory, n, c, runs, peers):
    """The convolution study's map: every chunk filtered alone (gaussian, sigma 1.5, radius 6,
    reflected at the chunk's edges, SciPy's gaussian_filter) into a new dataset of the same
    chunks, as dosna's `map` does without a halo."""
    from scipy.ndimage import gaussian_filter
    cube = random_float32(n ** 3).reshape(n, n, n)

    def run_over(inp, make_out, flush):
        def once():
            out = make_out()
            for sl in chunk_slices(inp.shape, (c, c, c)):
                out[sl] = gaussian_filter(inp[sl], 1.5, mode='reflect', truncate=4)
            flush(out)
        return median(time_runs(runs, once))

    if 'h5py' in peers:
        import h5py
        path = os.path.join(directory, 'map.h5')
        with h5py.File(path, 'w') as f:
            inp = f.create_dataset('in', data=cube, chunks=(c, c, c))

            def make_out():
                if 'out' in f:
                    del f['out']
                return f.create_dataset('out', shape=cube.shape, dtype='f4', chunks=(c, c, c))
            emit({'kind': 'peer-map', 'peer': 'h5py', 'N': n, 'C': c, 'runs': runs, 'ms': run_over(inp, make_out, lambda o: o.file.flush())})
        os.remove(path)
    if 'zarr-dir' in peers:
        import zarr
        base = os.path.join(directory, 'map-zarr')
        inp = zarr.create(shape=cube.shape, chunks=(c, c, c), dtype='f4', compressor=None, store=zarr.DirectoryStore(base + '-in'), overwrite=True)
        inp[...] = cube

        def make_out():
            return zarr.create(shape=cube.shape, chunks=(c, c, c), dtype='f4', compressor=None, store=zarr.DirectoryStore(base + '-out'), overwrite=True)
        emit({'kind': 'peer-map', 'peer': 'zarr-dir', 'N': n, 'C': c, 'runs': runs, 'ms': run_over(inp, make_out, lambda o: None)})
        shutil.rmtree(base + '-in', ignore_errors=True)
        shutil.rmtree(base + '-out', ignore_errors=True)


def smooth_float32(n):
    """bench/codecs.ts's smoothFloat32: smooth data of few significant bits."""
    z = np.arange(n, dtype=np.float64)
    zy = (np.sin(z / 20)[:, None] * np.cos(z / 25)[None, :])[:, :, None]
    return (np.round(1000 * zy * np.sin(z / 30 + 1)[None, None, :]) / 8).astype(np.float32)


def dir_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def codecs_workload(directory, n, c, runs):
    """Compression beside bench/codecs.ts: h5py's gzip + shuffle (level 4, h5py's default level;
    and level 1) and zarr-python 2's Blosc zstd + shuffle (clevel 1, its threads), write (create +
    write the cube) and read (the whole cube), and the ratio of stored to raw bytes."""
    import h5py
    import zarr
    from numcodecs import Blosc
    for data, cube in (('random', random_float32(n ** 3).reshape(n, n, n)), ('smooth', smooth_float32(n))):
        raw = cube.nbytes
        variants = [
            ('h5py', 'gzip 4 + shuffle', dict(compression='gzip', compression_opts=4, shuffle=True)),
            ('h5py', 'gzip 1 + shuffle', dict(compression='gzip', compression_opts=1, shuffle=True)),
            ('zarr-dir', 'blosc zstd 1 + shuffle', dict(compressor=Blosc(cname='zstd', clevel=1, shuffle=Blosc.SHUFFLE))),
        ]
        for peer, label, kw in variants:
            path = os.path.join(directory, 'codecs.h5' if peer == 'h5py' else 'codecs.zarr')

            def clear():
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.remove(path)

            def write():
                if peer == 'h5py':
                    with h5py.File(path, 'w') as f:
                        f.create_dataset('v', data=cube, chunks=(c, c, c), **kw)
                else:
                    z = zarr.open(path, mode='w', shape=cube.shape, chunks=(c, c, c), dtype='<f4', **kw)
                    z[...] = cube

            def read():
                if peer == 'h5py':
                    with h5py.File(path, 'r') as f:
                        return f['v'][...]
                return zarr.open(path, mode='r')[...]

            clear()
            write()
            writes = time_runs(runs, write, clear)
            stored = dir_bytes(path)
            read()
            reads = time_runs(runs, read)
            assert np.array_equal(read(), cube)
            clear()
            emit({'kind': 'peer-codecs', 'peer': peer, 'codec': label, 'data': data, 'N': n, 'C': c, 'runs': runs, 'bytes': raw,
                  'ms': {'write': median(writes), 'read': median(reads)}, 'storedBytes': stored, 'ratio': stored / raw})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('workload', choices=['io', 'planes', 'map', 'codecs'])
    parser.add_argument('--n', type=int, default=256)
    parser.add_argument('--chunks', default='64')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--peers', default='h5py,zarr-dir,zarr-mem,numpy')
    parser.add_argument('--dir', required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if args.workload == 'planes':
        planes_workload(args.dir, args.runs)
        return
    if args.workload == 'codecs':
        for c in [int(x) for x in args.chunks.split(',')]:
            codecs_workload(args.dir, args.n, c, args.runs)
        return
    if args.workload == 'map':
        for c in [int(x) for x in args.chunks.split(',')]:
            map_workload(args.dir, args.n, c, args.runs, args.peers.split(','))
        return
    n = args.n
    cube = random_float32(n ** 3).reshape(n, n, n)
    block, _ = regions(n)
    block_shape = tuple(s.stop - s.start for s in block)
    block_data = random_float32(int(np.prod(block_shape)), 7).reshape(block_shape)
    peers = args.peers.split(',')
    if 'numpy' in peers:
        numpy_peer(n, [int(x) for x in args.chunks.split(',')], args.runs, cube)
    for c in [int(x) for x in args.chunks.split(',')]:
        if c > n:
            continue
        if 'h5py' in peers:
            h5py_peer(args.dir, n, c, args.runs, cube, block_data)
        if 'zarr-dir' in peers:
            zarr_peer('dir', args.dir, n, c, args.runs, cube, block_data)
        if 'zarr-mem' in peers:
            zarr_peer('mem', args.dir, n, c, args.runs, cube, block_data)


if __name__ == '__main__':
    sys.exit(main())
