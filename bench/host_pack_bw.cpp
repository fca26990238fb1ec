// Throughput of the GPU launcher's host packing (src/engine/host_pack.cpp): R's float64 columns
// into float32 column-major staging, for the high-dimension k-NN's shapes (issue 9: from R, the
// D = 784 k-NN spent 20-27 ms converting its 440 MB of doubles), with 1..16 threads; the plain
// conversion loop of bench/host_bw.cu is the machine's reference.
//   g++ -O2 -std=c++17 -pthread -Isrc/engine -o /tmp/host_pack_bw bench/host_pack_bw.cpp \
//       src/engine/host_pack.cpp && /tmp/host_pack_bw
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "host_pack.h"

using namespace rkeops;
using Clock = std::chrono::steady_clock;

// The packing before (2026-11-30, fourth session), for comparison: a range of rows per thread,
// all the columns of a block of 4096 rows with its norms summed in cache.
void rows_per_thread(const double* src, long long rows, long long cols, const double* center, long long ld,
                     float* dst, int nt) {
  std::vector<std::thread> th;
  const long long step = (rows + nt - 1) / nt;
  for (int t = 0; t < nt; ++t)
    th.emplace_back([=] {
      const long long a = t * step, b = std::min(rows, a + step);
      double nrm[4096];
      for (long long b0 = a; b0 < b; b0 += 4096) {
        const long long n = std::min(b - b0, 4096LL);
        std::fill(nrm, nrm + n, 0.0);
        for (long long k = 0; k < cols; ++k) {
          const double* s = src + b0 + k * rows;
          float* d = dst + k * ld + b0;
          for (long long r = 0; r < n; ++r) {
            const float v = static_cast<float>(s[r] - center[k]);
            d[r] = v;
            nrm[r] += static_cast<double>(v) * static_cast<double>(v);
          }
        }
        for (long long r = 0; r < n; ++r) dst[cols * ld + b0 + r] = static_cast<float>(nrm[r]);
      }
    });
  for (auto& t : th) t.join();
}

int main() {
  struct Shape {
    long long rows, cols;
    bool pair;
  };
  for (Shape s : {Shape{10000, 784, true}, Shape{60000, 784, true}, Shape{125000, 100, true}, Shape{60000, 784, false},
                  Shape{1000000, 3, false}}) {
    std::vector<double> src(static_cast<size_t>(s.rows * s.cols));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<double>(i % 977) * 1e-3;
    const long long ld = (s.rows + 3) / 4 * 4;
    std::vector<float> dst(static_cast<size_t>(ld * (s.cols + 1)));
    std::vector<Input> in(1);
    in[0].data = src.data();
    in[0].rows = s.rows;
    in[0].cols = s.cols;
    std::vector<int> offs = {0};
    std::vector<double> center(static_cast<size_t>(s.cols), 0.25);
    PairPack pp;
    if (s.pair) pp = {0, center.data(), static_cast<int>(s.cols)};
    for (int nt : {1, 4, 8, 16}) {
      double best = 1e30;
      for (int r = 0; r < 5; ++r) {
        const auto t0 = Clock::now();
        pack_columns(4, in, offs, pp, 0, s.rows, ld, dst.data(), nt);
        best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      double before = 1e30;
      for (int r = 0; s.pair && r < 5; ++r) {
        const auto t0 = Clock::now();
        rows_per_thread(src.data(), s.rows, s.cols, center.data(), ld, dst.data(), nt);
        before = std::min(before, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::printf("%lld x %lld%s, %2d threads: %.2f ms, %.1f GB/s of doubles", s.rows, s.cols,
                  s.pair ? " (shifted, normed)" : "", nt, best, static_cast<double>(src.size()) * 8e-6 / best);
      if (s.pair) std::printf(" (a range of rows per thread: %.2f ms)", before);
      std::printf("\n");
    }
  }
  return 0;
}
