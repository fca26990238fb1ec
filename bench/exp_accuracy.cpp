// Accuracy of rk_exp / rk_log (inst/include/rkeops/fastmath_cpu.h) against extended-precision
// references and libm: a measurement run by hand, larger than the engine test
// (tests/engine/test_fastmath.cpp, which asserts the bounds on bounded sweeps) and with the
// same checks (tests/engine/fastmath_check.h), e.g.
//   g++ -std=c++17 -O3 -march=native -fopenmp -Iinst/include -Itests/engine
//       bench/exp_accuracy.cpp -o /tmp/exp_accuracy && /tmp/exp_accuracy
// Option `quick` skips the exhaustive float sweeps (all 2^32 inputs, twice).
#include "fastmath_check.h"

using namespace fastmath_check;

namespace {

template <class T>
void report(Fn f, const char* what, const Stats& st) {
  std::printf("%s\n", st.summary(std::string(fn_name(f)) + (sizeof(T) == 8 ? "(double) " : "(float) ") + what).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  std::mt19937_64 g(20261122);
  const long N = 1L << 24;  // per random sweep

  report<double>(Fn::Exp, "edges", check(Fn::Exp, edges<double>(Fn::Exp, 1000)));
  report<double>(Fn::Exp, "uniform [-745.2, 709.8]", check(Fn::Exp, uniform<double>(g, N, -745.2, 709.8)));
  report<double>(Fn::Exp, "uniform [-1, 1]", check(Fn::Exp, uniform<double>(g, N, -1, 1)));
  report<double>(Fn::Exp, "uniform [-30, 5] (kernel range)", check(Fn::Exp, uniform<double>(g, N, -30, 5)));
  report<double>(Fn::Exp, "uniform [-745.2, -708.4] (subnormal)",
                 check(Fn::Exp, uniform<double>(g, N, -745.2, -708.4)));
  report<double>(Fn::Exp, "random bit patterns", check(Fn::Exp, random_bits<double>(g, N)));

  report<double>(Fn::Log, "edges", check(Fn::Log, edges<double>(Fn::Log, 1000)));
  report<double>(Fn::Log, "uniform [0.5, 2]", check(Fn::Log, uniform<double>(g, N, 0.5, 2)));
  report<double>(Fn::Log, "uniform [0, 1e6]", check(Fn::Log, uniform<double>(g, N, 0, 1e6)));
  report<double>(Fn::Log, "random bit patterns", check(Fn::Log, random_bits<double>(g, N)));
  report<double>(Fn::Log, "positive random bits (all exps)", check(Fn::Log, random_bits<double>(g, N, true)));

  report<float>(Fn::Exp, "edges", check(Fn::Exp, edges<float>(Fn::Exp, 1000)));
  report<float>(Fn::Log, "edges", check(Fn::Log, edges<float>(Fn::Log, 1000)));
  if (!quick) {
    report<float>(Fn::Exp, "all 2^32 inputs", check_float_patterns(Fn::Exp, 0, 1));
    report<float>(Fn::Log, "all 2^32 inputs", check_float_patterns(Fn::Log, 0, 1));
  }
  return 0;
}
