# PyTorch anchor: cdist + topk (float32) on the GPU, same sizes as bench/gpu.R's k-NN section.
import sys, numpy as np, torch
def bench(fn, reps=10):
    for _ in range(3): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); torch.cuda.synchronize(); ts.append(a.elapsed_time(b))
    return float(np.median(ts))
def knn(x, y, k=10):
    if x.shape[0] * y.shape[0] * 4 > 20e9:  # chunks of queries for huge distance matrices
        return torch.cat([knn(c, y, k) for c in x.split(x.shape[0] // 4)])
    return torch.cdist(x, y).topk(k, dim=1, largest=False).indices
print("torch", torch.__version__, torch.cuda.get_device_name(0), "allow_tf32 =", torch.backends.cuda.matmul.allow_tf32)
torch.manual_seed(0)
for D, nq, npt in [(100, 10000, 60000), (256, 10000, 60000), (784, 10000, 60000), (100, 10000, 1000000)]:
    x = torch.rand(nq, D, device="cuda"); y = torch.rand(npt, D, device="cuda")
    on_gpu = bench(lambda: knn(x, y))
    xh = np.random.rand(nq, D); yh = np.random.rand(npt, D)
    from_host = bench(lambda: knn(torch.from_numpy(xh).cuda().float(), torch.from_numpy(yh).cuda().float()).cpu(), 5)
    print(f"torch knn D={D} {nq}x{npt}: {on_gpu:.2f} ms (data on the GPU), {from_host:.2f} ms (float64 host arrays -> indices on the host)")
    del x, y; torch.cuda.empty_cache()
