#!/usr/bin/env python3
"""Write an embedding table in metalearn's binary format (.mlemb), for features.embeddings.

The layout, byte by byte, is in src/features/embedding_table.hpp (and README, "Bring your own
vectors"); `metalearn embeddings convert` writes the same bytes from a CSV table. Plain Python
(struct), no numpy needed; from Python code:

    from write_embeddings import write_table
    write_table("items.mlemb", ["i1", "i2"], [[0.1, 0.2], [0.3, 0.4]])

or from a CSV (a key column first, then the vector; a header line unless --no-header):

    /usr/bin/python3 scripts/write_embeddings.py --input items.csv --output items.mlemb
"""
import argparse
import csv
import math
import os
import struct
import sys

MAGIC = b"MLEMBTBL"
VERSION = 1
STRING_KEYS = 1
HEADER_SIZE = 64


def write_table(path, keys, rows):
    """Writes `rows` (equal-length sequences of numbers) keyed by `keys` (str: UTF-8, or bytes)."""
    if len(keys) != len(rows) or not rows:
        raise ValueError("need one key per row, and at least one row")
    dim = len(rows[0])
    if dim < 1:
        raise ValueError("vectors need at least one component")
    encoded = [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in keys]
    if len(set(encoded)) != len(encoded):
        raise ValueError("a key is given twice; a table holds one vector per id")
    keys_size = sum(4 + len(k) for k in encoded)
    vectors_size = 4 * len(rows) * dim
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "wb") as out:
        out.write(MAGIC)
        out.write(struct.pack("<IIQQQQQQ", VERSION, STRING_KEYS, len(rows), dim, HEADER_SIZE,
                              HEADER_SIZE + vectors_size, keys_size, 0))
        for r, row in enumerate(rows):
            if len(row) != dim:
                raise ValueError("row %d has %d values, the first has %d" % (r + 1, len(row), dim))
            values = [float(v) for v in row]
            if not all(math.isfinite(v) for v in values):
                raise ValueError("row %d holds a value that is not finite" % (r + 1))
            out.write(struct.pack("<%df" % dim, *values))
        for k in encoded:
            out.write(struct.pack("<I", len(k)))
            out.write(k)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="CSV: key column, then the vector")
    parser.add_argument("--output", required=True, help="the .mlemb file to write")
    parser.add_argument("--delimiter", default=",")
    parser.add_argument("--no-header", action="store_true")
    args = parser.parse_args()
    if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
        sys.exit("--output '%s' is the --input table; give another file name" % args.output)
    keys, rows = [], []
    with open(args.input, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t" if args.delimiter == "tab" else args.delimiter)
        if not args.no_header:
            next(reader, None)
        for number, line in enumerate(reader, start=1 if args.no_header else 2):
            if not line:
                continue
            if not line[0]:
                sys.exit("%s:%d: the key is empty" % (args.input, number))
            keys.append(line[0])
            try:
                values = [float(v) for v in line[1:]]
            except ValueError as e:
                sys.exit("%s:%d: %s" % (args.input, number, e))
            if not all(math.isfinite(v) and abs(v) <= 3.4028234663852886e38 for v in values):
                sys.exit("%s:%d: a value a float32 cannot hold (finite, at most 3.4e38)"
                         % (args.input, number))
            rows.append(values)
    try:
        write_table(args.output, keys, rows)
    except ValueError as e:
        sys.exit("%s: %s" % (args.input, e))
    print("wrote %s: %d rows of dim %d" % (args.output, len(rows), len(rows[0])))


if __name__ == "__main__":
    main()
