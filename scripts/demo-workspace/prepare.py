"""Split raw/data.csv into train/test shards, saving atomically (temp + os.replace)."""
import os
import numpy as np

data = np.loadtxt("raw/data.csv", delimiter=",", skiprows=1)
rng = np.random.default_rng(0)
rng.shuffle(data)
cut = int(len(data) * 0.8)
os.makedirs("prepared", exist_ok=True)
for name, part in (("train", data[:cut]), ("test", data[cut:])):
    for i, shard in enumerate(np.array_split(part, 4)):
        tmp = f"prepared/.{name}-{i}.csv.tmp"
        np.savetxt(tmp, shard, delimiter=",", fmt="%.5f")
        os.replace(tmp, f"prepared/{name}-{i}.csv")
