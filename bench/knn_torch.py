# The PyTorch anchor of bench/gpu.R's k-NN section: torch.cdist + topk (float32, K = 10) on
# the GPU, median of CUDA-event timings after a warm-up; data on the GPU, and from float64
# host arrays to indices on the host (what an R user's data goes through).
# Usage: python3 bench/knn_torch.py D:NQ:NP [D:NQ:NP ...]   prints one line per size.
import sys
import numpy as np
import torch


def bench(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    return float(np.median(ts))


def knn(x, y, k=10):
    if x.shape[0] * y.shape[0] * 4 > 20e9:  # the distance matrix in chunks of queries
        return torch.cat([knn(c, y, k) for c in x.split((x.shape[0] + 3) // 4)])
    return torch.cdist(x, y).topk(k, dim=1, largest=False).indices


torch.manual_seed(0)
print(f"# torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
      f"matmul.allow_tf32 = {torch.backends.cuda.matmul.allow_tf32}")
for spec in sys.argv[1:]:
    D, nq, npt = (int(float(v)) for v in spec.split(":"))
    x = torch.rand(nq, D, device="cuda")
    y = torch.rand(npt, D, device="cuda")
    on_gpu = bench(lambda: knn(x, y), 10)
    xh, yh = np.random.rand(nq, D), np.random.rand(npt, D)
    from_host = bench(lambda: knn(torch.from_numpy(xh).cuda().float(), torch.from_numpy(yh).cuda().float()).cpu(), 5)
    print(f"{D} {nq} {npt} {on_gpu:.2f} {from_host:.2f}", flush=True)
    del x, y
    torch.cuda.empty_cache()
