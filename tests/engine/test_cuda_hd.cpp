// The CUDA high-dimension scheme's pure parts (codegen_cuda_hd.h): when it applies, its tiles,
// its input layout and its launch configuration. Its kernels are compiled with NVRTC in
// test_cuda_codegen.cpp and run on the emulated device in test_cuda_emulation.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codegen_cuda.h"
#include "codegen_cuda_hd.h"
#include "formula.h"

using namespace rkeops;

namespace {

HdPlan plan(const std::string& formula, const std::vector<std::string>& aliases, DType dt = DType::Float32) {
  CodeOptions o;
  o.dtype = dt;
  return plan_cuda_hd(parse_formula(formula, aliases), o);
}

}  // namespace

TEST(CudaHd, AppliesToInnerProductsAndDistancesOfHighDimension) {
  const std::vector<std::string> xy = {"x=Vi(100)", "y=Vj(100)"};
  HdPlan p = plan("ArgKMin_Reduction(SqDist(x, y), 10, 1)", xy);
  ASSERT_TRUE(p.applies) << p.why;
  EXPECT_EQ(p.x_pos, 0);
  EXPECT_EQ(p.y_pos, 1);
  EXPECT_EQ(p.dim, 100);
  ASSERT_EQ(p.nodes.size(), 1u);
  EXPECT_TRUE(p.nodes[0].dist);
  EXPECT_TRUE(p.center);
  // axis 0: y is the outer variable
  p = plan("Sum_Reduction(Exp(-SqDist(x, y)), 0)", xy);
  ASSERT_TRUE(p.applies) << p.why;
  EXPECT_EQ(p.x_pos, 1);
  EXPECT_EQ(p.y_pos, 0);
  // an inner product: not shift-invariant, so no common point is subtracted
  p = plan("LogSumExp_Reduction((x | y), 1)", xy);
  ASSERT_TRUE(p.applies) << p.why;
  EXPECT_FALSE(p.nodes[0].dist);
  EXPECT_FALSE(p.center);
  // SqNorm2(x - y), WeightedSqDist with a scalar weight (any expression), operands swapped
  EXPECT_TRUE(plan("Sum_Reduction(SqNorm2(y - x), 1)", xy).applies);
  p = plan("Sum_Reduction(WeightedSqDist(Exp(b), y, x) * b, 1)", {"x=Vi(100)", "y=Vj(100)", "b=Vj(1)"});
  ASSERT_TRUE(p.applies) << p.why;
  EXPECT_GE(p.nodes[0].weight, 0);
  // several nodes on one pair
  p = plan("KMin_Reduction(Concat(SqDist(x, y), (x | y)), 2, 1)", xy);
  ASSERT_TRUE(p.applies) << p.why;
  EXPECT_EQ(p.nodes.size(), 2u);
  EXPECT_FALSE(p.center);
  // low-dimension pairs alongside are ordinary per-pair code
  EXPECT_TRUE(
      plan("Sum_Reduction(Exp(-SqDist(x, y) - SqDist(u, v)), 1)", {"x=Vi(64)", "y=Vj(64)", "u=Vi(3)", "v=Vj(3)"})
          .applies);
}

TEST(CudaHd, DoesNotApplyElsewhere) {
  const std::vector<std::string> xy = {"x=Vi(100)", "y=Vj(100)"};
  EXPECT_FALSE(plan("ArgKMin_Reduction(SqDist(x, y), 10, 1)", {"x=Vi(31)", "y=Vj(31)"}).applies);  // low dimension
  EXPECT_FALSE(plan("Sum_Reduction(SqDist(x, y) * Sum(y), 1)", xy).applies);                       // y used elsewhere
  EXPECT_FALSE(plan("Sum_Reduction(SqNorm2(x - y) + Sum(x - y), 1)", xy).applies);           // x - y used elsewhere
  EXPECT_FALSE(plan("Sum_Reduction(SqDist(x, y) * x, 1)", xy).applies);                      // x as a value
  EXPECT_FALSE(plan("Sum_Reduction(SqDist(x, 2 * y), 1)", xy).applies);                      // not a variable
  EXPECT_FALSE(plan("Sum_Reduction(SqDist(x, y), 1)", {"x=Vi(100)", "y=Vi(100)"}).applies);  // both outer
  EXPECT_FALSE(plan("Sum_Reduction(WeightedSqDist(w, x, y), 1)", {"w=Pm(100)", "x=Vi(100)", "y=Vj(100)"}).applies);
  EXPECT_FALSE(plan("Sum_Reduction(SqDist(x, y) + (u | v), 1)", {"x=Vi(64)", "y=Vj(64)", "u=Vi(64)", "v=Vj(64)"})
                   .applies);  // two pairs
  // the rest is not cheap per pair while the generic kernel can take the rows
  EXPECT_FALSE(plan("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", {"x=Vi(64)", "y=Vj(64)", "b=Vj(40)"}).applies);
  EXPECT_FALSE(plan("ArgKMin_Reduction(SqDist(x, y), 40, 1)", xy).applies);
  // ... but when it cannot, the scheme takes it anyway
  EXPECT_TRUE(plan("ArgKMin_Reduction(SqDist(x, y), 40, 1)", {"x=Vi(20000)", "y=Vj(20000)"}).applies);
}

TEST(CudaHd, LayoutPutsThePairFirstAndTheNormsLast) {
  Formula f = parse_formula("Sum_Reduction(Exp(-g * SqDist(x, y)) * b + u, 1)",
                            {"b=Vj(2)", "g=Pm(1)", "u=Vi(1)", "x=Vi(50)", "y=Vj(50)"});
  CodeOptions o;
  o.dtype = DType::Float32;
  CudaCode c = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
  ASSERT_GT(c.hd.bm, 0);
  EXPECT_EQ(c.x_off, (std::vector<int>{-1, -1, 50, 0, -1}));
  EXPECT_EQ(c.y_off, (std::vector<int>{50, -1, -1, -1, 0}));
  EXPECT_EQ(c.p_off, (std::vector<int>{-1, 0, -1, -1, -1}));
  EXPECT_EQ(c.wx, 52);  // x, u, |x|^2
  EXPECT_EQ(c.wy, 53);  // y, b, |y|^2
  EXPECT_EQ(c.hd.x_norm, 51);
  EXPECT_EQ(c.hd.y_norm, 52);
  EXPECT_EQ(c.hd.x_pos, 3);
  EXPECT_EQ(c.hd.y_pos, 4);
  EXPECT_TRUE(c.hd.center);
  EXPECT_EQ(c.block, 128);  // float32: the tensor cores' tile, 4 warps
  EXPECT_NE(c.source.find("__launch_bounds__(kNT, kMinBlocks)"), std::string::npos);
  EXPECT_NE(c.source.find("constexpr int kMinBlocks = 3;"), std::string::npos);  // a small state
  EXPECT_EQ(c.tile % 16, 0);
  EXPECT_NE(c.source.find("high-dimension scheme"), std::string::npos);
  // inner products only: no norms, no shift
  Formula g = parse_formula("Sum_Reduction((x | y), 0)", {"x=Vi(50)", "y=Vj(50)"});
  CudaCode d = generate_cuda_code(g, o, RKEOPS_INCLUDE_DIR);
  EXPECT_EQ(d.wx, 50);
  EXPECT_EQ(d.wy, 50);
  EXPECT_EQ(d.hd.x_norm, -1);
  EXPECT_FALSE(d.hd.center);
  EXPECT_EQ(d.hd.x_pos, 1);  // axis 0: the outer variable is y
}

TEST(CudaHd, TilesShrinkWithTheReductionState) {
  EXPECT_EQ(hd_tile(true, 1, 100, 2).tm, 8);
  EXPECT_EQ(hd_tile(true, 20, 100, 1).tm, 4);  // ArgKMin K = 10
  EXPECT_EQ(hd_tile(true, 64, 100, 1).tm, 2);
  EXPECT_EQ(hd_tile(true, 200, 100, 1).tm, 1);
  EXPECT_EQ(hd_tile(true, 20, 100, 1).bn(), 256);
  EXPECT_LT(hd_tile(true, 20, 100, 9).bn(), 256);  // many values per inner row in shared memory
  for (bool f32 : {true, false})
    for (int s : {1, 4, 8, 20, 48, 64, 200})
      for (int ncol : {0, 1, 4, 9}) {
        HdTile t = hd_tile(f32, s, 257, ncol);
        EXPECT_LE(hd_shared_bytes(t, f32, ncol), 49152);
        EXPECT_EQ(t.bm() * t.bn() / (t.tm * t.tn), t.threads);
        EXPECT_EQ(t.threads, 256);  // (without tensor cores)
        EXPECT_LE(t.tm, t.ntx);  // one row per lane of those sharing it (the final stores)
        EXPECT_LE(t.ntx, 32);    // a row group within a warp (the shuffles)
        EXPECT_EQ(t.bn() % 4, 0);
      }
}

TEST(CudaHd, TensorCoreTilesKeepTheAccumulatorLayout) {
  // float32 only; one 16-row tile per warp by default (two with 100 m + n), 4 warps stacked,
  // 3 blocks a multiprocessor for small states
  for (int s : {1, 4, 20, 48, 64})
    for (int ncol : {0, 1, 4, 9})
      for (int mma : {1, 104, 208, 116}) {
        HdTile t = hd_tile(true, s, 257, ncol, mma);
        EXPECT_TRUE(t.mma);
        EXPECT_EQ(t.ntx, 4);  // the 4 lanes of a quad share rows
        EXPECT_EQ(t.tm % 2, 0);
        EXPECT_EQ(t.tn % 2, 0);
        EXPECT_LE(t.tm, t.ntx);
        EXPECT_EQ(t.threads, 128);
        EXPECT_EQ(t.min_blocks, s <= 24 && mma < 200 ? 3 : 1);  // (one row tile a warp)
        EXPECT_EQ(t.bm(), 4 * 8 * t.tm);  // 4 warps of tm / 2 tiles of 16 rows
        EXPECT_EQ(t.bk % 8, 0);
        EXPECT_EQ(t.lda() % 32, 8);  // a fragment load hits the 32 banks
        EXPECT_EQ(t.ldb() % 32, 8);
        EXPECT_LE(hd_shared_bytes(t, true, ncol), 49152);
      }
  EXPECT_EQ(hd_tile(true, 20, 100, 1, 1).tm, 2);   // k-NN: 64 x 128
  EXPECT_EQ(hd_tile(true, 20, 100, 1, 1).bm(), 64);
  EXPECT_EQ(hd_tile(true, 20, 100, 1, 1).bn(), 128);
  EXPECT_EQ(hd_tile(true, 20, 100, 1, 208).bm(), 128);
  EXPECT_FALSE(hd_tile(false, 20, 100, 1, 1).mma);  // float64: FP64 multiply-adds
  EXPECT_FALSE(hd_tile(true, 20, 100, 1, 0).mma);
}

// The tensor cores' forms (CodeOptions::cuda_hd_split): per tile, three TF32 instructions (0, 1)
// or one TF32 and one BF16 (2); heads rounded (0) or masked (1, 2). (Their results: the emulated
// instructions in test_cuda_emulation.cpp, the GPU in tests/testthat/test-gpu.R.)
TEST(CudaHd, TensorCoreFormsPutTheCrossTermsOnOneBf16Instruction) {
  Formula f = parse_formula("ArgKMin_Reduction(SqDist(x, y), 10, 1)", {"x=Vi(100)", "y=Vj(100)"});
  auto count = [](const std::string& s, const std::string& w) {
    size_t n = 0;
    for (size_t p = s.find(w); p != std::string::npos; p = s.find(w, p + 1)) ++n;
    return n;
  };
  for (int split : {0, 1, 2}) {
    SCOPED_TRACE("cuda_hd_split " + std::to_string(split));
    CodeOptions co;
    co.dtype = DType::Float32;
    co.cuda_hd_split = split;
    const std::string src = generate_cuda_code(f, co, RKEOPS_INCLUDE_DIR).source;
    const std::string loop = src.substr(src.find("#ifdef RK_HD_MMA\n    #pragma unroll"));
    const std::string chunk = loop.substr(0, loop.find("#else"));
    EXPECT_EQ(count(chunk, "rk_mma_tf32("), split == 2 ? 1u : 3u);
    EXPECT_EQ(count(chunk, "rk_mma_bf16("), split == 2 ? 1u : 0u);
    EXPECT_EQ(src.find("(__float_as_uint(x) + 0x1000u)") != std::string::npos, split == 0);
    EXPECT_EQ(src.find("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32") != std::string::npos, split == 2);
  }
}

TEST(CudaHd, KNearestNeighboursInsertWithOneCopyOfTheInsertion) {
  // the insertion's code appears once whatever the pairs per thread; the candidates in a mask
  for (int mma : {0, 1, 208}) {
    CodeOptions o;
    o.dtype = DType::Float32;
    o.cuda_hd_mma = mma;
    const std::string src =
        generate_cuda_code(parse_formula("ArgKMin_Reduction(SqDist(x, y), 10, 1)", {"x=Vi(100)", "y=Vj(100)"}), o,
                           RKEOPS_INCLUDE_DIR)
            .source;
    EXPECT_NE(src.find("cand_ |= 1ull << n"), std::string::npos) << mma;
    EXPECT_NE(src.find("rk_any_in_warp(cand_ != 0ull)"), std::string::npos) << mma;
    EXPECT_EQ(src.find("mma.sync") != std::string::npos, mma > 0) << mma;
  }
}

TEST(CudaHd, LaunchSplitsFillTheGpuInFewWaves) {
  // 1e4 queries x 6e4 points, 64 rows per block, 132 blocks at once: the splits give whole
  // waves of blocks that each sweep many tiles.
  const long long s = hd_splits(10000, 60000, 64, 128, 132);
  const long long blocks = (10000 + 63) / 64 * s, waves = (blocks + 131) / 132;
  EXPECT_GE(s, 2);
  EXPECT_GT(static_cast<double>(blocks) / (waves * 132), 0.9);
  EXPECT_GE(hd_jchunk(60000, s, 128) / 128, 8);
  // enough outer rows for many waves: no split; one outer row: many
  EXPECT_EQ(hd_splits(1000000, 1000, 128, 128, 132), 1);
  EXPECT_GT(hd_splits(7, 1000000, 16, 128, 132), 100);
  // every split count covers the range with whole tiles
  for (long long n : {1LL, 127LL, 128LL, 129LL, 60001LL, 1000000LL})
    for (long long k : {1LL, 2LL, 7LL, 54LL, 65535LL}) {
      const long long c = hd_jchunk(n, k, 128);
      EXPECT_EQ(c % 128, 0);
      EXPECT_GE(c * k, n);
      EXPECT_LT(c - 128, (n + k - 1) / k);  // at most one tile more than an even share
    }
  EXPECT_LE(hd_splits(1, 1LL << 40, 16, 128, 132), 65535);
}
