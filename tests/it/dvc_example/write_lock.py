"""Writes dvc.lock for the outputs on disk, as `dvc repro` (DVC 3) would.

The test's independent oracle for DVC's hashes: hashlib's md5 of each file,
and for a directory the md5 of its manifest as dvc-data writes it
(`json.dumps` of the sorted [{"md5", "relpath"}] list) plus `.dir`.
Usage: python3 write_lock.py (in the project root)."""
import hashlib
import json
import os

STAGES = {
    "prepare": ("python src/prepare.py data/data.xml", ["data/data.xml", "src/prepare.py"],
                {"prepare.seed", "prepare.split"}, ["data/prepared"]),
    "featurize": ("python src/featurization.py data/prepared data/features", ["data/prepared", "src/featurization.py"],
                  {"featurize.max_features", "featurize.ngrams"}, ["data/features"]),
    "train": ("python src/train.py data/features model.pkl", ["data/features", "src/train.py"],
              {"train.min_split", "train.n_est", "train.seed"}, ["model.pkl"]),
    "evaluate": ("python src/evaluate.py model.pkl data/features", ["data/features", "model.pkl", "src/evaluate.py"],
                 set(), ["eval"]),
}


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def entry(path):
    if os.path.isdir(path):
        files = []
        for root, _, names in os.walk(path):
            for name in names:
                full = os.path.join(root, name)
                files.append({"md5": md5(full), "relpath": os.path.relpath(full, path).replace(os.sep, "/")})
        files.sort(key=lambda e: e["relpath"])
        manifest = json.dumps(files, sort_keys=True).encode("utf-8")
        size = sum(os.path.getsize(os.path.join(path, e["relpath"])) for e in files)
        return [("path", path), ("hash", "md5"), ("md5", hashlib.md5(manifest).hexdigest() + ".dir"),
                ("size", size), ("nfiles", len(files))]
    return [("path", path), ("hash", "md5"), ("md5", md5(path)), ("size", os.path.getsize(path))]


def params():
    out, current = {}, None
    for line in open("params.yaml"):
        if not line.strip():
            continue
        if not line.startswith(" "):
            current = line.split(":")[0].strip()
        else:
            key, value = line.split(":", 1)
            out[current + "." + key.strip()] = value.strip()
    return out


def main():
    values = params()
    lines = ["schema: '2.0'", "stages:"]
    for name, (cmd, deps, keys, outs) in STAGES.items():
        lines += [f"  {name}:", f"    cmd: {cmd}", "    deps:"]
        for d in deps:
            e = entry(d)
            lines.append(f"    - {e[0][0]}: {e[0][1]}")
            lines += [f"      {k}: {v}" for k, v in e[1:]]
        if keys:
            lines += ["    params:", "      params.yaml:"]
            lines += [f"        {k}: {float(values[k]) if '.' in values[k] else int(values[k])}" for k in sorted(keys)]
        lines.append("    outs:")
        for o in outs:
            e = entry(o)
            lines.append(f"    - {e[0][0]}: {e[0][1]}")
            lines += [f"      {k}: {v}" for k, v in e[1:]]
    open("dvc.lock", "w").write("\n".join(lines) + "\n")


main()
