# The PyTorch anchor of bench/kmeans.R: Lloyd's K-means (10 iterations, float32, on the GPU)
# on the data R wrote (row-major float32 files PREFIX.x and PREFIX.c). The distances through
# a matrix product (|x|^2 - 2 x.c + |c|^2), argmin, index_add_ and bincount for the update;
# data already on the GPU (PyTorch's idiom); median of 3 timed runs after a warm-up.
# Usage: python3 bench/kmeans_torch.py PREFIX N D K ITERS
import sys
import time

import numpy as np
import torch

prefix, N, D, K, iters = sys.argv[1], int(float(sys.argv[2])), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
dev = torch.device("cuda")
x = torch.from_numpy(np.fromfile(prefix + ".x", dtype=np.float32).reshape(N, D)).to(dev)
c0 = torch.from_numpy(np.fromfile(prefix + ".c", dtype=np.float32).reshape(K, D)).to(dev)


def kmeans(x, c):
    x2 = (x * x).sum(1, keepdim=True)
    for _ in range(iters):
        d = x2 - 2 * x @ c.T + (c * c).sum(1)
        lab = d.argmin(1)
        s = torch.zeros_like(c).index_add_(0, lab, x)
        n = torch.bincount(lab, minlength=K).to(x.dtype)
        c = torch.where(n[:, None] > 0, s / n.clamp(min=1)[:, None], c)
    return c, lab


kmeans(x, c0)
torch.cuda.synchronize()
ts = []
for _ in range(3):
    t0 = time.perf_counter()
    c, lab = kmeans(x, c0)
    torch.cuda.synchronize()
    ts.append(time.perf_counter() - t0)
print("torch %s, N %d, K %d: %s s" % (torch.__version__, N, K, " ".join("%.4f" % t for t in ts)))
print("torch_seconds %.5f" % float(np.median(ts)))
