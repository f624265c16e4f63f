"""Bag-of-words features of the prepared questions (stdlib only)."""
import collections
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


def grams(text, n):
    words = text.lower().split()
    out = list(words)
    for k in range(2, n + 1):
        out += [" ".join(words[i : i + k]) for i in range(len(words) - k + 1)]
    return out


def main():
    p = params("featurize")
    max_features, ngrams = int(p["max_features"]), int(p["ngrams"])
    src, dst = sys.argv[1], sys.argv[2]
    rows = {}
    for split in ("train", "test"):
        rows[split] = [line.rstrip("\n").split("\t") for line in open(os.path.join(src, split + ".tsv"))]
    counts = collections.Counter(g for _, _, text in rows["train"] for g in grams(text, ngrams))
    vocab = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_features]]
    os.makedirs(dst, exist_ok=True)
    for split in ("train", "test"):
        with open(os.path.join(dst, split + ".tsv"), "w") as out:
            out.write("\t".join(["id", "label"] + vocab) + "\n")
            for qid, label, text in rows[split]:
                c = collections.Counter(grams(text, ngrams))
                out.write("\t".join([qid, label] + [str(c[w]) for w in vocab]) + "\n")
    with open("runs.log", "a") as log:
        log.write("featurize\n")


main()
