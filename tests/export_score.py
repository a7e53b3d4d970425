#!/usr/bin/python3
"""Scores rows with models written by `metalearn export`, as a Python user would: Debian's
python3-torch and nothing of metalearn (tests/test_export.cpp runs it).

usage: export_score.py MODEL.pt ROWS.pt [MODEL.pt ROWS.pt ...]
Prints one JSON list, an object per pair: the model's attributes, its parameters' names and
forward() of the rows (the scores predict gives) as Python floats."""
import json
import sys

import torch

out = []
for model_path, rows_path in zip(sys.argv[1::2], sys.argv[2::2]):
    model = torch.jit.load(model_path)
    rows = torch.jit.load(rows_path)
    with torch.no_grad():
        scores = model(*rows.inputs())
    out.append({
        "output_kind": model.output_kind,
        "class_names": list(model.class_names),
        "input_names": list(model.input_names),
        "rows_input_names": list(rows.input_names),
        "parameters": [name for name, _ in model.named_parameters()],
        "scores": scores.double().tolist(),
    })
print(json.dumps(out))
