#!/usr/bin/env python3
"""numpy interop fixtures for src/io/npy.ts (a dev tool; the tests never run Python).

    python3 scripts/make_npy_fixtures.py              # (re)writes test/fixtures/npy/*.npy + expected.json
    python3 scripts/make_npy_fixtures.py --check DIR  # numpy loads every .npy in DIR, compares with
                                                      # DIR/expected.json and with np.save's own bytes

expected.json maps each file name to either {"error": "<substring of our error message>"} or
{"dtype", "shape", "values" (flat, C order), "byteIdentical" (np.save writes exactly these bytes)}.
float values are JSON numbers, or "nan" / "inf" / "-inf" / "-0"; int64 values are decimal strings; float16
entries also carry "bits" (the raw uint16 values). To get files written by our encoder, run the tests with
NPY_INTEROP_OUT=DIR set (test/io/npy.test.ts then writes its files and expected.json there).
"""

import argparse
import io
import json
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'test', 'fixtures', 'npy')

DTYPE_NAMES = {'f4': 'float32', 'f2': 'float16', 'f8': 'float64', 'i8': 'int64', 'i4': 'int32'}


def json_value(x, kind):
    if kind == 'i':
        return str(int(x)) if x.dtype.itemsize == 8 else int(x)
    f = float(x)
    if math.isnan(f):
        return 'nan'
    if math.isinf(f):
        return 'inf' if f > 0 else '-inf'
    return f


def describe(a, byte_identical):
    entry = {
        'dtype': DTYPE_NAMES[a.dtype.str[1:]],
        'shape': list(a.shape),
        'values': [json_value(x, a.dtype.kind) for x in np.ascontiguousarray(a).reshape(-1)],
        'byteIdentical': byte_identical,
    }
    if a.dtype.kind == 'f' and a.dtype.itemsize == 2:
        entry['bits'] = [int(b) for b in a.astype('<f2').reshape(-1).view('<u2')]
    return entry


def write_fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    for name in os.listdir(FIXTURES):
        if name.endswith('.npy'):
            os.remove(os.path.join(FIXTURES, name))
    expected = {}

    def save(name, a, byte_identical=True):
        np.save(os.path.join(FIXTURES, name), a)
        expected[name] = describe(a, byte_identical)

    def write_version(name, a, version):
        with open(os.path.join(FIXTURES, name), 'wb') as f:
            np.lib.format.write_array(f, a, version=version)
        expected[name] = describe(a, False)

    save('f4_2x3.npy', np.array([[1.5, -2.25, 3.0], [0.1, 1e-30, -7e20]], dtype='<f4'))
    half = np.array(
        [0.0, -0.0, 1.0, -2.0, 65504.0, 6.103515625e-05, 5.960464477539063e-08, 6.097555160522461e-05,
         float('inf'), float('-inf'), float('nan'), 1 / 3],
        dtype='<f2',
    )
    save('f2_special.npy', half.reshape(3, 4))
    save('f8_2x2.npy', np.array([[math.pi, -1e300], [5e-324, -0.0]], dtype='<f8'))
    save('i8_3.npy', np.array([-(2**63), 2**53 + 1, 2**63 - 1], dtype='<i8'))
    save('i4_2x2.npy', np.array([[-(2**31), 2**31 - 1], [0, -7]], dtype='<i4'))
    save('be_f4_2x2.npy', np.array([[1.0, -2.5], [3.25, 1e-3]], dtype='>f4'), False)
    save('be_i8_2.npy', np.array([-3, 2**60 + 5], dtype='>i8'), False)
    save('be_f2_3.npy', np.array([1.0, -0.0, float('inf')], dtype='>f2'), False)
    write_version('v2_f4_2x2.npy', np.array([[1.0, 2.0], [3.0, 4.0]], dtype='<f4'), (2, 0))
    write_version('v3_i4_3.npy', np.array([7, 8, 9], dtype='<i4'), (3, 0))
    save('f8_0d.npy', np.array(2.5, dtype='<f8'))
    save('f4_1d.npy', np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype='<f4'))
    save('f4_empty_0x3.npy', np.zeros((0, 3), dtype='<f4'))
    # Fortran order: numpy writes fortran_order: True for a non-C-contiguous 2-D array.
    np.save(os.path.join(FIXTURES, 'fortran_2x3.npy'), np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
    expected['fortran_2x3.npy'] = {'error': 'Fortran-order arrays are not supported'}
    np.save(os.path.join(FIXTURES, 'bool_4.npy'), np.array([True, False, True, True]))
    expected['bool_4.npy'] = {'error': "dtype '|b1' is not supported"}
    np.save(os.path.join(FIXTURES, 'i2_3.npy'), np.array([1, 2, 3], dtype='<i2'))
    expected['i2_3.npy'] = {'error': "dtype '<i2' is not supported"}

    with open(os.path.join(FIXTURES, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, allow_nan=False)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(FIXTURES, n)) for n in os.listdir(FIXTURES))
    print(f'wrote {len(expected)} fixtures to {FIXTURES} ({total} bytes in all)')


def matches(value, want):
    if isinstance(want, str):
        if want == 'nan':
            return math.isnan(value)
        if want in ('inf', '-inf'):
            return value == float(want)
        if want == '-0':
            return value == 0 and math.copysign(1.0, value) < 0
        return int(value) == int(want)
    if isinstance(want, float) and want == 0.0:
        return value == 0.0 and math.copysign(1.0, value) == math.copysign(1.0, want)
    return value == want


def check(directory):
    with open(os.path.join(directory, 'expected.json')) as f:
        expected = json.load(f)
    files = sorted(n for n in os.listdir(directory) if n.endswith('.npy'))
    failures = 0
    for name in files:
        path = os.path.join(directory, name)
        want = expected.get(name)
        problems = []
        if want is None:
            problems.append('not listed in expected.json')
        elif 'error' in want:
            print(f'{name}: skipped (we expect an error: {want["error"]})')
            continue
        else:
            try:
                a = np.load(path, allow_pickle=False)
            except Exception as e:  # noqa: BLE001
                problems.append(f'numpy cannot load it: {e}')
            else:
                if DTYPE_NAMES.get(a.dtype.str[1:]) != want['dtype']:
                    problems.append(f'dtype {a.dtype.str}, expected {want["dtype"]}')
                if list(a.shape) != want['shape']:
                    problems.append(f'shape {a.shape}, expected {tuple(want["shape"])}')
                flat = a.reshape(-1)
                if len(flat) != len(want['values']):
                    problems.append(f'{len(flat)} values, expected {len(want["values"])}')
                else:
                    bad = [i for i, (v, w) in enumerate(zip(flat.tolist(), want['values'])) if not matches(v, w)]
                    if bad:
                        i = bad[0]
                        problems.append(f'{len(bad)} values differ, first at {i}: {flat[i]!r} != {want["values"][i]!r}')
                if 'bits' in want and flat.astype('<f2').view('<u2').tolist() != want['bits']:
                    problems.append('float16 bits differ')
                buf = io.BytesIO()
                np.save(buf, a)
                with open(path, 'rb') as f:
                    ours = f.read()
                if want.get('byteIdentical') and buf.getvalue() != ours:
                    problems.append(f'bytes differ from np.save ({len(ours)} vs {len(buf.getvalue())} bytes)')
        status = 'ok' if not problems else 'FAIL: ' + '; '.join(problems)
        failures += bool(problems)
        print(f'{name}: {status}')
    missing = sorted(set(expected) - set(files))
    for name in missing:
        print(f'{name}: FAIL: listed in expected.json but missing')
    failures += len(missing)
    print(f'{len(files)} files checked, {failures} failed (numpy {np.__version__})')
    return failures == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', metavar='DIR', help='verify that numpy loads every .npy in DIR as expected')
    args = parser.parse_args()
    if args.check:
        sys.exit(0 if check(args.check) else 1)
    write_fixtures()


if __name__ == '__main__':
    main()
