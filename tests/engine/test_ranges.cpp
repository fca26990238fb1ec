// The work items of block-sparse reductions (plan_range_items, ranges.h) and the launch plan
// of a block-sparse call on the GPU.
#include <gtest/gtest.h>

#include "errors.h"
#include "launch_cuda.h"
#include "ranges.h"

using namespace rkeops;

namespace {

std::vector<long long> item(const RangeItems& r, long long w) {
  return {r.items[4 * w], r.items[4 * w + 1], r.items[4 * w + 2], r.items[4 * w + 3]};
}

std::string input_error(const BlockRanges& b, long long n_out, long long n_in) {
  try {
    plan_range_items(b, n_out, n_in, 4);
  } catch (const UserError& e) {
    EXPECT_EQ(e.kind, "input");
    return e.what();
  }
  return "";
}

}  // namespace

TEST(RangeItems, CoverEveryRowWithGapsNeutral) {
  BlockRanges b;
  b.outer = {2, 7, 7, 9};  // rows 0-1 and 9 in no range
  b.slices = {3, 3};       // range 2 keeps nothing
  b.inner = {10, 12, 0, 4, 4, 6};
  const RangeItems r = plan_range_items(b, 10, 12, 4);
  // rows [0,2) gap, [2,6) and [6,7) of range 1, [7,9) of range 2, [9,10) gap
  ASSERT_EQ(r.count(), 5);
  EXPECT_EQ(item(r, 0), (std::vector<long long>{0, 2, 0, 0}));
  EXPECT_EQ(item(r, 1), (std::vector<long long>{2, 6, 0, 2}));
  EXPECT_EQ(item(r, 2), (std::vector<long long>{6, 7, 0, 2}));
  EXPECT_EQ(item(r, 3)[0], 7);
  EXPECT_EQ(item(r, 3)[2], item(r, 3)[3]);
  EXPECT_EQ(item(r, 4), (std::vector<long long>{9, 10, 0, 0}));
  // the list sorted, [0,4) and [4,6) merged: [0,6), then [10,12)
  EXPECT_EQ(r.jranges, (std::vector<long long>{0, 6, 10, 12}));
  EXPECT_DOUBLE_EQ(r.pairs, 5.0 * 8);
  EXPECT_DOUBLE_EQ(r.cost[1], 4.0 * 8);
}

TEST(RangeItems, EmptyInnerRangesDropped) {
  BlockRanges b;
  b.outer = {0, 3};
  b.slices = {2};
  b.inner = {1, 1, 2, 2};
  const RangeItems r = plan_range_items(b, 3, 5, 8);
  ASSERT_EQ(r.count(), 1);
  EXPECT_EQ(item(r, 0)[2], item(r, 0)[3]);
  EXPECT_TRUE(r.jranges.empty());
  EXPECT_DOUBLE_EQ(r.pairs, 0);
}

TEST(RangeItems, BadRangesAreInputErrors) {
  BlockRanges b;
  b.outer = {0, 2, 1, 3};
  b.slices = {0, 0};
  EXPECT_NE(input_error(b, 5, 5).find("starts before the end"), std::string::npos);
  b.outer = {0, 2, 2, 6};
  EXPECT_NE(input_error(b, 5, 5).find("not within the 5 result rows"), std::string::npos);
  b.outer = {0, 2};
  b.slices = {0, 0};
  EXPECT_NE(input_error(b, 5, 5).find("slices"), std::string::npos);
  b.slices = {2};
  b.inner = {0, 3};
  EXPECT_NE(input_error(b, 5, 5).find("non-decreasing and at most 1"), std::string::npos);
  b.slices = {1};
  b.inner = {0, 7};
  EXPECT_NE(input_error(b, 5, 5).find("rows reduced over"), std::string::npos);
  b.slices = {2};
  b.inner = {0, 3, 2, 4};
  EXPECT_NE(input_error(b, 5, 5).find("overlap"), std::string::npos);
  b.inner = {3, 2};
  b.slices = {1};
  EXPECT_NE(input_error(b, 5, 5).find("inner range 1"), std::string::npos);
  b.inner = {0, 1, 2};
  EXPECT_NE(input_error(b, 5, 5).find("pairs"), std::string::npos);
}

TEST(LaunchPlan, BlockSparseCallsRunWholeOnTheDevice) {
  CudaCode c;
  c.elem = 4;
  c.state_elem = 4;
  c.tile = 256;
  c.wx = 3;
  c.wy = 4;
  c.state_t = 1;
  DeviceLimits d;
  d.sm_count = 132;
  d.resident_256 = 8;
  d.resident_128 = 16;
  d.available_bytes = 100LL << 30;
  d.piece_bytes = 1 << 20;
  const long long n = 3000000;
  LaunchPlan p = plan_cuda_launch(c, n, n, 1, false, d, true);
  EXPECT_TRUE(p.resident);
  EXPECT_EQ(p.inner_pieces, 1);
  EXPECT_EQ(p.outer_chunks, 1);
  EXPECT_EQ(p.outer_chunk, n);
  EXPECT_EQ(p.splits(10), 1);
  EXPECT_EQ(p.slots(10), 0);
  d.available_bytes = 40LL << 20;  // 48 MB of inner rows do not fit
  try {
    plan_cuda_launch(c, n, n, 1, false, d, true);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(e.kind, "gpu");
    EXPECT_NE(std::string(e.what()).find("block-sparse"), std::string::npos);
  }
}
