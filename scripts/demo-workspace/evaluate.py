"""Score the model on the test shards and write metrics.json."""
import glob
import json
import pickle
import numpy as np

with open("models/model.pkl", "rb") as f:
    model = pickle.load(f)
d = np.vstack([np.loadtxt(p, delimiter=",") for p in sorted(glob.glob("features/test-*.csv"))])
acc = float((model.predict(d[:, :-1]) == d[:, -1]).mean())
with open("metrics.json", "w") as f:
    json.dump({"accuracy": round(acc, 4), "n_test": int(len(d))}, f)
print(f"accuracy {acc:.4f}")
