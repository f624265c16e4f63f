"""Scores, curves and a confusion matrix, in dvclive's layout (stdlib only)."""
import json
import os
import sys


def scores(model, path):
    lines = open(path).read().splitlines()
    header, rows = lines[0].split("\t"), [l.split("\t") for l in lines[1:]]
    out = []
    for r in rows:
        s = model["bias"] + sum(model["weights"].get(w, 0) * int(r[j]) for j, w in enumerate(header[2:], start=2))
        out.append((s, int(r[1])))
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=4)


def main():
    model = json.load(open(sys.argv[1]))
    summary = {"avg_prec": {}, "roc_auc": {}}
    for split in ("train", "test"):
        ss = sorted(scores(model, os.path.join(sys.argv[2], split + ".tsv")), reverse=True)
        pos = sum(l for _, l in ss) or 1
        neg = (len(ss) - sum(l for _, l in ss)) or 1
        tp = fp = 0
        roc, prc, auc, ap = [], [], 0.0, 0.0
        for s, l in ss:
            if l:
                tp += 1
                ap += tp / (tp + fp) / pos
            else:
                fp += 1
                auc += tp / pos / neg
            roc.append({"fpr": round(fp / neg, 4), "tpr": round(tp / pos, 4), "threshold": round(s, 4)})
            prc.append({"precision": round(tp / (tp + fp), 4), "recall": round(tp / pos, 4), "threshold": round(s, 4)})
        summary["avg_prec"][split] = round(ap, 4)
        summary["roc_auc"][split] = round(auc, 4)
        write(f"eval/plots/sklearn/roc/{split}.json", {"roc": roc})
        write(f"eval/plots/sklearn/prc/{split}.json", {"prc": prc})
        cm = [{"actual": str(l), "predicted": str(int(s > 0))} for s, l in ss]
        write(f"eval/plots/sklearn/cm/{split}.json", cm)
    write("eval/metrics.json", summary)
    os.makedirs("eval/plots/images", exist_ok=True)
    with open("eval/plots/images/importance.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + json.dumps(sorted(model["weights"])).encode())
    with open("runs.log", "a") as log:
        log.write("evaluate\n")


main()
