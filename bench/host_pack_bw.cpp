// Throughput of the GPU launcher's host packing (src/engine/host_pack.cpp): R's float64 columns
// into float32 column-major staging, for the high-dimension k-NN's shapes (issue 9: from R, the
// D = 784 k-NN spent 20-27 ms converting its 440 MB of doubles), with 1..16 threads; the plain
// conversion loop of bench/host_bw.cu is the machine's reference.
//   g++ -O2 -std=c++17 -pthread -Isrc/engine -o /tmp/host_pack_bw bench/host_pack_bw.cpp \
//       src/engine/host_pack.cpp && /tmp/host_pack_bw
#include <chrono>
#include <cstdio>
#include <vector>

#include "host_pack.h"

using namespace rkeops;
using Clock = std::chrono::steady_clock;

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
      std::printf("%lld x %lld%s, %2d threads: %.2f ms, %.1f GB/s of doubles\n", s.rows, s.cols,
                  s.pair ? " (shifted, normed)" : "", nt, best, static_cast<double>(src.size()) * 8e-6 / best);
    }
  }
  return 0;
}
