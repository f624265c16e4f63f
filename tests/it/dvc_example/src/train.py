"""A small classifier: per-feature weights from the label means (stdlib only)."""
import json
import os
import sys


def params(section):
    out, current = {}, None
    for line in open("params.yaml"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            current = line.split(":")[0].strip()
        elif current == section:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def main():
    p = params("train")
    n_est, min_split = int(p["n_est"]), float(p["min_split"])
    lines = open(os.path.join(sys.argv[1], "train.tsv")).read().splitlines()
    header, rows = lines[0].split("\t"), [l.split("\t") for l in lines[1:]]
    weights = {}
    for j, word in enumerate(header[2:], start=2):
        pos = [int(r[j]) for r in rows if r[1] == "1"]
        neg = [int(r[j]) for r in rows if r[1] == "0"]
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0
        w = mean(pos) - mean(neg)
        if abs(w) >= min_split / 10:
            weights[word] = round(w * n_est / 50, 6)
    with open(sys.argv[2], "w") as out:
        json.dump({"weights": weights, "bias": -0.5}, out, sort_keys=True)
    with open("runs.log", "a") as log:
        log.write("train\n")


main()
