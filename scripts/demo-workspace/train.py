"""Train a logistic regression; hyper-parameters from params.yaml, --lr overrides C."""
import argparse
import glob
import os
import pickle
import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression

ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float, default=None)
args = ap.parse_args()
with open("params.yaml") as f:
    params = yaml.safe_load(f)
C = args.lr if args.lr is not None else params["C"]
d = np.vstack([np.loadtxt(p, delimiter=",") for p in sorted(glob.glob("features/train-*.csv"))])
model = LogisticRegression(C=C, max_iter=params["max_iter"]).fit(d[:, :-1], d[:, -1])
os.makedirs("models", exist_ok=True)
with open("models/.model.pkl.tmp", "wb") as f:
    pickle.dump(model, f)
os.replace("models/.model.pkl.tmp", "models/model.pkl")
