// What the GPU host can do for a call from R (issue 9: from R, the high-dimension k-NN at
// D = 784 spends 20 ms converting 376 MB of doubles). Measures, for 1..16 host threads: the
// read bandwidth of a double array, float64 -> float32 conversion into pageable and page-locked
// memory; and the bus: page-locked float32 H2D, pageable float64 H2D (the driver's staging),
// registering the doubles in place (cuMemHostRegister) and copying them from there.
//   nvcc -O3 -arch=sm_90 -o /tmp/host_bw bench/host_bw.cu -lcuda && /tmp/host_bw [MB of doubles]
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;
static double ms(Clock::time_point a) { return std::chrono::duration<double, std::milli>(Clock::now() - a).count(); }

template <class F>
static double run_threads(int nt, long long n, const F& fn) {
  auto t0 = Clock::now();
  std::vector<std::thread> th;
  const long long step = (n + nt - 1) / nt;
  for (int t = 0; t < nt; ++t) {
    long long a = t * step, b = std::min(n, a + step);
    th.emplace_back([&fn, a, b] { fn(a, b); });
  }
  for (auto& t : th) t.join();
  return ms(t0);
}

static double best(int reps, const std::function<double()>& f) {
  double b = 1e30;
  for (int r = 0; r < reps; ++r) b = std::min(b, f());
  return b;
}

int main(int argc, char** argv) {
  const long long mb = argc > 1 ? atoll(argv[1]) : 376;
  const long long n = mb * (1LL << 20) / 8;
  std::vector<double> src(n);
  for (long long i = 0; i < n; ++i) src[i] = static_cast<double>(i % 1000) * 1e-3;
  std::vector<float> pageable(n);
  float* pinned = nullptr;
  cudaMallocHost(&pinned, n * sizeof(float));
  for (long long i = 0; i < n; ++i) pinned[i] = 0.f, pageable[i] = 0.f;
  float* dev = nullptr;
  double* dev64 = nullptr;
  cudaMalloc(&dev, n * sizeof(float));
  cudaMalloc(&dev64, n * sizeof(double));
  std::printf("host_bw: %lld MB of doubles (%lld values), %u hardware threads\n", mb, n,
              std::thread::hardware_concurrency());
  std::vector<double> sink(64);
  for (int nt : {1, 2, 4, 8, 16, 32}) {
    const double r = best(3, [&] {
      return run_threads(nt, n, [&](long long a, long long b) {
        double s = 0;
        for (long long i = a; i < b; ++i) s += src[i];
        sink[a % 64] = s;
      });
    });
    const double cp = best(3, [&] {
      return run_threads(nt, n, [&](long long a, long long b) {
        for (long long i = a; i < b; ++i) pageable[i] = static_cast<float>(src[i]);
      });
    });
    const double cl = best(3, [&] {
      return run_threads(nt, n, [&](long long a, long long b) {
        for (long long i = a; i < b; ++i) pinned[i] = static_cast<float>(src[i]);
      });
    });
    std::printf("threads %2d: read %.1f ms (%.1f GB/s); convert to pageable %.1f ms (%.1f GB/s read), to page-locked %.1f ms (%.1f GB/s)\n",
                nt, r, n * 8e-6 / r, cp, n * 8e-6 / cp, cl, n * 8e-6 / cl);
  }
  cudaDeviceSynchronize();
  auto h2d = [&](void* d, const void* h, size_t bytes) {
    return best(3, [&] {
      auto t0 = Clock::now();
      cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice);
      return ms(t0);
    });
  };
  double t = h2d(dev, pinned, n * sizeof(float));
  std::printf("H2D page-locked float32 %.0f MB: %.1f ms (%.1f GB/s)\n", n * 4e-6, t, n * 4e-6 / t);
  t = h2d(dev64, src.data(), n * sizeof(double));
  std::printf("H2D pageable float64 %.0f MB: %.1f ms (%.1f GB/s)\n", n * 8e-6, t, n * 8e-6 / t);
  auto t0 = Clock::now();
  cudaError_t e = cudaHostRegister(src.data(), n * sizeof(double), cudaHostRegisterDefault);
  const double reg = ms(t0);
  t = h2d(dev64, src.data(), n * sizeof(double));
  t0 = Clock::now();
  cudaHostUnregister(src.data());
  const double unreg = ms(t0);
  std::printf("cudaHostRegister %.0f MB: %.1f ms (%s), H2D from it %.1f ms (%.1f GB/s), unregister %.1f ms\n",
              n * 8e-6, reg, cudaGetErrorString(e), t, n * 8e-6 / t, unreg);
  return 0;
}
