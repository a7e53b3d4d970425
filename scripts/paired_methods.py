#!/usr/bin/env python3
"""Paired comparison of two method families of one `metalearn eval --json-out` file.

eval's verdict pairs the chosen meta-learner with the chosen baseline; this pairs any two
families it evaluated on the same episodes (e.g. two runs given to one `eval --checkpoint A,B`):
at each K, each family's setting chosen on the validation tasks (the file's "choices"), scored
on the new tasks, and the mean per-task difference A - B with its 95% Student t interval over
tasks (as metrics/confidence.hpp's paired_difference_ci computes it; tasks where either value
is undefined are left out).

  scripts/paired_methods.py data/results/movielens_sequence/new.json maml_seq maml_bow
"""
import argparse
import json
import math
import sys


def betacf(a, b, x):
    # Continued fraction of the regularised incomplete beta (Numerical Recipes, 6.4).
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def t_cdf(t, df):
    x = df / (df + t * t)
    a, b = df / 2.0, 0.5
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) +
                     a * math.log(x) + b * math.log(1 - x))
    ibeta = front * betacf(a, b, x) / a if x < (a + 1) / (a + b + 2) else \
        1 - front * betacf(b, a, 1 - x) / b
    return 1 - 0.5 * ibeta if t > 0 else 0.5 * ibeta


def t_quantile(p, df):
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", help="an eval --json-out file of the new tasks")
    parser.add_argument("a", help="family A (a run's name in eval, e.g. maml_seq)")
    parser.add_argument("b", help="family B")
    parser.add_argument("--metric", default="auc", help="the metric (default auc)")
    args = parser.parse_args()
    result = json.load(open(args.json))
    families = sorted({c["family"] for c in result["choices"]})
    for name in (args.a, args.b):
        if name not in families:
            sys.exit(f"{args.json}: no family '{name}' among the choices ({', '.join(families)})")
    print(f"K  {args.a} (chosen)  {args.b} (chosen)  tasks  {args.metric} A - B [95% CI]")
    for k in sorted({c["shots"] for c in result["choices"]}):
        chosen = {c["family"]: c for c in result["choices"] if c["shots"] == k}
        if args.a not in chosen or args.b not in chosen:
            continue
        values = []
        for name in (args.a, args.b):
            c = chosen[name]
            cell = next(x for x in result["cells"]
                        if x["method"] == c["method"] and x["shots"] == k and
                        x["steps"] == c["steps"])
            values.append([t["value"] for t in cell["metrics"][args.metric]["per_task"]])
        diffs = [a - b for a, b in zip(*values)
                 if a is not None and b is not None and not (math.isnan(a) or math.isnan(b))]
        n = len(diffs)
        mean = sum(diffs) / n if n else float("nan")
        half = float("nan")
        if n > 1:
            sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
            half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        setting = {name: f"{chosen[name]['method']}, {chosen[name]['steps']} steps"
                   for name in (args.a, args.b)}
        print(f"{k}  {setting[args.a]}  {setting[args.b]}  {n}  "
              f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]")


if __name__ == "__main__":
    main()
