"""Split the questions of data.xml into train and test (stdlib only).

A stand-in for example-get-started's prepare.py: same arguments, same
params, same outputs (data/prepared/train.tsv, test.tsv)."""
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
    p = params("prepare")
    seed, split = int(p["seed"]), float(p["split"])
    os.makedirs(os.path.join("data", "prepared"), exist_ok=True)
    train = open(os.path.join("data", "prepared", "train.tsv"), "w")
    test = open(os.path.join("data", "prepared", "test.tsv"), "w")
    for i, line in enumerate(open(sys.argv[1])):
        if "<row " not in line:
            continue
        body = line.split('Body="')[1].split('"')[0]
        label = 1 if "&lt;r&gt;" in line.split('Tags="')[1] else 0
        out = test if (i * 7919 + seed) % 100 < split * 100 else train
        out.write(f"{i}\t{label}\t{body}\n")
    with open("runs.log", "a") as log:
        log.write("prepare\n")


main()
