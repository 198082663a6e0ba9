"""Generate the raw dataset: a small synthetic classification problem."""
import numpy as np

rng = np.random.default_rng(7)
n = 2000
x = rng.normal(size=(n, 6))
y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] + rng.normal(scale=0.5, size=n) > 0).astype(int)
with open("raw/data.csv", "w") as f:
    f.write("f0,f1,f2,f3,f4,f5,label\n")
    for row, label in zip(x, y):
        f.write(",".join(f"{v:.5f}" for v in row) + f",{label}\n")
