// The CUDA launch plan (plan_cuda_launch, launch_cuda.h) on its own: a pure function of the
// kernel's layout, the call's sizes and the device's limits, checked without a GPU.
#include <gtest/gtest.h>

#include <algorithm>

#include "codegen_cuda.h"
#include "errors.h"
#include "launch_cuda.h"

using namespace rkeops;

namespace {

// A generic-scheme kernel: float32, outer rows of `wx` values, inner rows of `wy` values.
CudaCode kernel_layout(int wx, int wy, int state_t = 1, int state_i = 0) {
  CudaCode c;
  c.elem = 4;
  c.state_elem = 4;
  c.block = 256;
  c.tile = 256;
  c.wx = wx;
  c.wy = wy;
  c.state_t = state_t;
  c.state_i = state_i;
  return c;
}

// An H200-like device: 132 multiprocessors, 8 resident blocks of 256 threads, plenty of memory.
DeviceLimits big_gpu() {
  DeviceLimits d;
  d.sm_count = 132;
  d.resident_256 = 8;
  d.resident_128 = 16;
  d.resident_hd = 2;
  d.available_bytes = 100LL << 30;
  return d;
}

// Every outer row is covered by the chunks, none of which is empty.
void expect_covers(const LaunchPlan& p, long long rows) {
  EXPECT_GE(p.outer_chunk, 1);
  EXPECT_GE(p.outer_chunk * p.outer_chunks, rows);
  EXPECT_LT(p.outer_chunk * (p.outer_chunks - 1), std::max(rows, 1LL));
  EXPECT_GE(p.inner_chunk * p.inner_pieces, 1);
}

}  // namespace

TEST(LaunchPlan, LargeCallOneChunkNoSplitNoSlots) {
  const CudaCode c = kernel_layout(3, 4);
  const long long n = 1000000, rows = 5000000;
  // 1e5 inner rows: 5e6 outer rows make 5e11 terms, one launch (about 1e12 per launch)
  LaunchPlan p = plan_cuda_launch(c, 100000, rows, 1, false, big_gpu());
  EXPECT_EQ(p.block, 256);
  EXPECT_EQ(p.rows_per_block, 256);
  EXPECT_EQ(p.concurrent, 132 * 8);
  EXPECT_TRUE(p.resident);
  EXPECT_EQ(p.inner_pieces, 1);  // 1.6 MB of inner rows: under one piece
  EXPECT_EQ(p.outer_chunks, 1);
  EXPECT_EQ(p.splits(rows), 1);  // 19532 blocks: more than 16 waves of 1056
  EXPECT_EQ(p.slots(rows), 0);   // rk_reduce finalises
  expect_covers(p, rows);
  // 1e6 rows: 3907 blocks, under 16 waves: the inner range split 5 ways, merged by rk_merge
  LaunchPlan q = plan_cuda_launch(c, n, n, 1, false, big_gpu());
  EXPECT_EQ(q.splits(n), (16 * 1056 + 3906) / 3907);
  EXPECT_EQ(q.slots(n), q.splits(n));
}

TEST(LaunchPlan, FewRowsSplitTheInnerRangeIntoSlots) {
  const CudaCode c = kernel_layout(3, 4);
  LaunchPlan p = plan_cuda_launch(c, 1000000, 1000, 1, false, big_gpu());
  const long long s = p.splits(1000);
  // 4 blocks of rows: enough splits for 16 waves of the GPU's 1056 resident blocks, but
  // each split at least 4 tiles of 256 inner rows
  EXPECT_EQ(s, std::min<long long>((16 * 1056 + 3) / 4, 1000000 / 1024));
  EXPECT_EQ(p.slots(1000), s);
  LaunchPlan r = plan_cuda_launch(c, 100000000, 1000, 1, false, big_gpu());
  EXPECT_EQ(r.splits(1000), (16 * 1056 + 3) / 4);
  // each split at least 4 tiles long
  LaunchPlan q = plan_cuda_launch(c, 4096, 1000, 1, false, big_gpu());
  EXPECT_EQ(q.splits(1000), 4096 / (4 * 256));
}

TEST(LaunchPlan, PartialStatesAlwaysGoThroughSlots) {
  const CudaCode c = kernel_layout(3, 4, 1, 1);
  LaunchPlan p = plan_cuda_launch(c, 1000000, 5000000, 2, true, big_gpu());
  EXPECT_EQ(p.splits(5000000), 1);
  EXPECT_EQ(p.slots(5000000), 1);
  LaunchPlan q = plan_cuda_launch(c, 1000000, 5000000, 2, false, big_gpu());
  EXPECT_EQ(q.slots(5000000), 0);
}

TEST(LaunchPlan, Block128WhenMoreThreadsAreResident) {
  const CudaCode c = kernel_layout(3, 4);
  DeviceLimits d = big_gpu();
  d.resident_256 = 3;
  d.resident_128 = 7;  // 896 threads against 768
  LaunchPlan p = plan_cuda_launch(c, 50000, 50000, 1, false, d);
  EXPECT_EQ(p.block, 128);
  EXPECT_EQ(p.rows_per_block, 128);
  EXPECT_EQ(p.concurrent, 7 * 132);
  d.resident_128 = 6;  // a tie keeps 256
  EXPECT_EQ(plan_cuda_launch(c, 50000, 50000, 1, false, d).block, 256);
}

TEST(LaunchPlan, ResidentInnerRowsInPiecesOfWholeTiles) {
  const CudaCode c = kernel_layout(3, 4);  // 16 bytes per inner row
  DeviceLimits d = big_gpu();
  d.piece_bytes = 1 << 20;
  const long long n_in = 300000;  // 4.8 MB: 5 pieces
  LaunchPlan p = plan_cuda_launch(c, n_in, 1000, 1, false, d);
  EXPECT_TRUE(p.resident);
  EXPECT_EQ(p.inner_chunk % p.tile, 0);
  EXPECT_EQ(p.inner_pieces, (n_in + p.inner_chunk - 1) / p.inner_chunk);
  EXPECT_LE(p.inner_pieces, 8);
  EXPECT_GE(p.inner_pieces, 5);
  EXPECT_EQ(p.inner_device_rows, n_in);
  const long long huge = 40000000;  // 640 MB: still at most 8 pieces
  LaunchPlan q = plan_cuda_launch(c, huge, 1000, 1, false, d);
  EXPECT_TRUE(q.resident);
  EXPECT_EQ(q.inner_pieces, 8);
}

// Inner rows packed on the host (ramp): the resident pieces start at a tenth of a piece and
// grow by three quarters each time up to a piece and a half, whole tiles, covering the inner
// range in order; when that would take more than 8 pieces, equal pieces as without the ramp.
TEST(LaunchPlan, HostPackedPiecesRampUp) {
  const CudaCode c = kernel_layout(3, 4);  // 16 bytes per inner row
  DeviceLimits d = big_gpu();
  d.piece_bytes = 1 << 20;
  const long long n_in = 300000;  // 4.8 MB: 5 equal pieces without the ramp
  const LaunchPlan flat = plan_cuda_launch(c, n_in, 1000, 1, false, d);
  const LaunchPlan p = plan_cuda_launch(c, n_in, 1000, 1, false, d, false, true);
  EXPECT_EQ(p.inner_chunk, flat.inner_chunk);
  ASSERT_GT(p.inner_pieces, flat.inner_pieces);
  ASSERT_LE(p.inner_pieces, 8);
  ASSERT_EQ(static_cast<long long>(p.piece_rows.size()), p.inner_pieces);
  EXPECT_LE(p.piece_rows[0], p.inner_chunk / 10 + p.tile);
  long long sum = 0;
  for (long long q = 0; q < p.inner_pieces; ++q) {
    const long long r = p.piece_rows[static_cast<size_t>(q)];
    EXPECT_EQ(p.piece_start(q), sum);
    if (q + 1 < p.inner_pieces) {
      EXPECT_EQ(r % p.tile, 0);
      EXPECT_LE(p.piece_rows[static_cast<size_t>(q + 1)], std::max(r, r * 7 / 4 + p.tile));
    }
    EXPECT_LE(r, p.inner_chunk * 3 / 2 + p.tile);
    EXPECT_GT(r, 0);
    sum += r;
  }
  EXPECT_EQ(sum, n_in);
  for (long long q = 0; q < flat.inner_pieces; ++q)  // without the ramp: equal pieces
    EXPECT_EQ(flat.piece_start(q), q * flat.inner_chunk);
  // 8 pieces of a piece each: no room for a ramp
  const LaunchPlan full = plan_cuda_launch(c, 40000000, 1000, 1, false, d, false, true);
  EXPECT_EQ(full.inner_pieces, 8);
  EXPECT_EQ(full.piece_rows[0], full.inner_chunk);
  // one piece, streamed inner rows, block-sparse calls: no ramp
  EXPECT_EQ(plan_cuda_launch(c, 1000, 1000, 1, false, d, false, true).inner_pieces, 1);
  // ... but the high-dimension scheme ramps up inner rows of more than a quarter of a piece
  // that fit in one (0.48 MB here), from a tenth of them
  CudaCode h = kernel_layout(3, 4);
  h.hd.bm = 64;
  h.tile = 128;
  const long long n1 = 30000;
  EXPECT_EQ(plan_cuda_launch(c, n1, 1000, 1, false, d, false, true).inner_pieces, 1);
  const LaunchPlan r1 = plan_cuda_launch(h, n1, 1000, 1, false, d, false, true);
  EXPECT_EQ(r1.inner_chunk, n1);
  ASSERT_EQ(r1.inner_pieces, 4);  // 3072, 5376, 9472 and the rest
  EXPECT_EQ(r1.piece_rows[0], (n1 / 10 + 127) / 128 * 128);
  EXPECT_EQ(r1.piece_start(3) + r1.piece_rows[3], n1);
  EXPECT_EQ(plan_cuda_launch(h, 10000, 1000, 1, false, d, false, true).inner_pieces, 1);  // 0.16 MB
  EXPECT_EQ(plan_cuda_launch(h, n1, 1000, 1, false, d).inner_pieces, 1);                 // no ramp
}

// The K family's lane lists in the high-dimension scheme continue from piece to piece
// (CudaCode::Hd::resume): one piece's worth of slots for all the pieces; without resume, one
// set of slots per piece.
TEST(LaunchPlan, ResumingPiecesShareOnePiecesSlots) {
  CudaCode h = kernel_layout(3, 4, 10, 10);
  h.hd.bm = 64;
  h.tile = 128;
  h.hd.lane_slots = 8;
  DeviceLimits d = big_gpu();
  d.piece_bytes = 1 << 20;
  const long long n_in = 60000, rows = 10000;  // 0.96 MB: ramps up over several pieces
  const LaunchPlan fresh = plan_cuda_launch(h, n_in, rows, 10, true, d, false, true);
  h.hd.resume = true;
  const LaunchPlan p = plan_cuda_launch(h, n_in, rows, 10, true, d, false, true);
  ASSERT_GT(p.inner_pieces, 1);
  EXPECT_FALSE(fresh.resume);
  EXPECT_TRUE(p.resume);
  EXPECT_EQ(p.inner_pieces, fresh.inner_pieces);
  EXPECT_EQ(fresh.slots(rows), fresh.inner_pieces * fresh.splits(rows) * 8);
  EXPECT_EQ(p.slots(rows), p.splits(rows) * 8);
  h.hd.bm = 0;  // (only the high-dimension scheme resumes)
  EXPECT_FALSE(plan_cuda_launch(h, n_in, rows, 10, true, d, false, true).resume);
}

TEST(LaunchPlan, LittleMemoryStreamsInnerRowsAndChunksOuterRows) {
  const CudaCode c = kernel_layout(3, 4);
  DeviceLimits d = big_gpu();
  d.available_bytes = 20LL << 20;  // 16 MiB budget
  const long long n = 4000000;
  LaunchPlan p = plan_cuda_launch(c, n, n, 1, false, d);
  EXPECT_FALSE(p.resident);
  EXPECT_EQ(p.inner_chunk % p.tile, 0);
  EXPECT_LE(p.inner_chunk * 16, p.budget / 2);
  EXPECT_EQ(p.inner_device_rows, p.inner_chunk);
  EXPECT_GT(p.outer_chunks, 1);
  // what a chunk holds fits in the budget
  const long long per_row = 3 * 4 + 8 + p.slots(p.outer_chunk) * 4;
  EXPECT_LE(p.inner_device_rows * 16 + p.outer_chunk * per_row, p.budget);
  expect_covers(p, n);
}

TEST(LaunchPlan, NotEvenOneRowFitsIsAGpuError) {
  const CudaCode c = kernel_layout(3000, 4);  // 12 KB per outer row
  DeviceLimits d = big_gpu();
  d.available_bytes = 0;  // the budget's floor, 16 KiB, all for the inner rows
  try {
    plan_cuda_launch(c, 1000000, 1000000, 1, false, d);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(e.kind, "gpu");
    EXPECT_NE(std::string(e.what()).find("not enough GPU memory"), std::string::npos);
  }
}

TEST(LaunchPlan, RandomSizesAreConsistent) {
  unsigned s = 12345;
  auto rnd = [&s](long long n) { s = s * 1103515245u + 12345u; return static_cast<long long>((s >> 8) % n) + 1; };
  for (int t = 0; t < 200; ++t) {
    const CudaCode c = kernel_layout(static_cast<int>(rnd(8)), static_cast<int>(rnd(4)) * 4, static_cast<int>(rnd(20)));
    DeviceLimits d = big_gpu();
    d.available_bytes = rnd(8) << (20 + rnd(8));
    const long long n_in = rnd(3000000), rows = rnd(3000000);
    const bool states = rnd(2) == 1;
    LaunchPlan p;
    try {
      p = plan_cuda_launch(c, n_in, rows, 1, states, d);
    } catch (const UserError&) {
      continue;
    }
    expect_covers(p, rows);
    EXPECT_GE(p.inner_chunk * p.inner_pieces, n_in);
    const long long sp = p.splits(std::min(rows, p.outer_chunk));
    EXPECT_GE(sp, 1);
    EXPECT_LE(sp, 65535);
    if (states) EXPECT_GE(p.slots(p.outer_chunk), 1);
  }
}

// Float16 pair kernels (codegen_cuda.cpp): two outer rows per thread, so a block covers
// 2 x 256 rows and the splits of the inner range count those blocks; halves in X and Y, float
// partial states.
TEST(LaunchPlan, Float16PairsCoverTwoRowsPerThread) {
  CudaCode c = kernel_layout(3, 8);
  c.elem = 2;
  c.state_elem = 4;
  c.rows_per_thread = 2;
  LaunchPlan p = plan_cuda_launch(c, 1000000, 5000000, 1, false, big_gpu());
  EXPECT_EQ(p.block, 256);
  EXPECT_EQ(p.rows_per_block, 512);
  EXPECT_EQ(p.inner_row_bytes, 16);  // 8 halves
  EXPECT_EQ(p.splits(5000000), 2);  // 9766 blocks of 512 rows: fewer than 16 waves of 1056
  // 1e5 rows: 196 blocks of 512 rows (not 391 of 256), split 87 ways for 16 waves of 1056 blocks
  EXPECT_EQ(p.splits(100000), 87);
  const CudaCode c1 = kernel_layout(3, 8);
  EXPECT_EQ(plan_cuda_launch(c1, 1000000, 5000000, 1, false, big_gpu()).splits(100000), 44);
}

// Block-sparse calls (sparse_splits): a work item's inner ranges are split over blocks until
// the blocks make 3 waves of resident blocks, each split at least 4 tiles of a row's inner rows.
TEST(LaunchPlan, SparseSplitsFillOneWaveWithLongEnoughParts) {
  struct Row {
    long long items;
    double pairs;
    long long n_out, concurrent, tile;
    long long splits;
    const char* why;
  };
  const Row rows[] = {
      {1250, 64 * 2e4 * 2e4, 64 * 20000, 1056, 256, 3, "64 problems of 2e4 points: 3750 blocks"},
      {10, 1e10, 10000, 1056, 256, 317, "few items of long rows: 3170 blocks"},
      {157, 8 * 2e4 * 2e4, 8 * 20000, 660, 256, 13, "a piece of 8 problems, 5 blocks an SM: 2041 blocks"},
      {3168, 1e10, 10000, 1056, 256, 1, "3 waves already"},
      {10, 1e9, 10000, 1056, 256, 97, "1e5 inner rows a row: splits of at least 4 tiles (1024 rows)"},
      {10, 1e6, 10000, 1056, 256, 1, "100 inner rows a row: shorter than 4 tiles, not split"},
      {1, 1e12, 1, 100000, 256, 65535, "at most 65535 (gridDim.y)"},
      {0, 0, 0, 1056, 256, 1, "no items, no rows"},
      {4, 4000, 10, 64, 0, 48, "a tile of 0 rows counts as 1"},
  };
  for (const Row& r : rows)
    EXPECT_EQ(sparse_splits(r.items, r.pairs, r.n_out, r.concurrent, r.tile), r.splits) << r.why;
}

TEST(LaunchPlan, SparsePlansLeaveTheSplitsToTheWorkItems) {
  const CudaCode c = kernel_layout(3, 4);
  const LaunchPlan p = plan_cuda_launch(c, 100000, 100000, 1, false, big_gpu(), true);
  EXPECT_EQ(p.outer_chunks, 1);
  EXPECT_EQ(p.inner_pieces, 1);
  EXPECT_EQ(p.splits(100000), 1);  // no dense splits: the work items have their own
  // 100 items whose rows meet 1e5 inner rows each: 32 splits, 3200 blocks (3 waves of 1056)
  EXPECT_EQ(p.concurrent, 1056);
  EXPECT_EQ(sparse_splits(100, 1e10, 100000, p.concurrent, p.tile), 32);
}

// Work items of a batch of B problems of n outer and m inner rows (ranges.h), `per` rows an item.
RangeItems batch_items(long long B, long long n, long long m, long long per) {
  BlockRanges r;
  for (long long b = 0; b < B; ++b) {
    r.outer.insert(r.outer.end(), {static_cast<int>(b * n), static_cast<int>((b + 1) * n)});
    r.inner.insert(r.inner.end(), {static_cast<int>(b * m), static_cast<int>((b + 1) * m)});
    r.slices.push_back(static_cast<int>(b + 1));
  }
  return plan_range_items(r, B * n, B * m, per);
}

// Pieces of a block-sparse call (sparse_pieces): consecutive whole items of about equal terms
// covering every item and row, inner ends a running maximum; one piece when the first needs
// every inner row.
TEST(LaunchPlan, SparsePiecesSplitTheItemsInEqualShares) {
  struct Row {
    RangeItems items;
    long long n_in;
    int want;
    std::vector<SparsePiece> pieces;  // {item0, item1, row0, row1, inner_end}
    const char* why;
  };
  BlockRanges all;  // every row meets every inner row
  all.outer = {0, 40};
  all.inner = {0, 30};
  all.slices = {1};
  BlockRanges back;  // the first rows meet the last inner rows
  back.outer = {0, 10, 10, 20};
  back.inner = {20, 30, 0, 10};
  back.slices = {1, 2};
  BlockRanges skew;  // rows 0-9 meet 30 inner rows, rows 10-39 only 1 (equal terms: 300 + 30)
  skew.outer = {0, 10, 10, 40};
  skew.inner = {0, 30, 30, 31};
  skew.slices = {1, 2};
  const Row rows[] = {
      {batch_items(8, 100, 50, 100), 400, 4, {{0, 2, 0, 200, 100}, {2, 4, 200, 400, 200}, {4, 6, 400, 600, 300}, {6, 8, 600, 800, 400}},
       "8 problems in 4 pieces of 2"},
      {batch_items(8, 100, 50, 100), 400, 1, {{0, 8, 0, 800, 400}}, "one piece wanted"},
      {batch_items(3, 100, 50, 100), 150, 8, {{0, 1, 0, 100, 50}, {1, 2, 100, 200, 100}, {2, 3, 200, 300, 150}},
       "more pieces wanted than items: one item each"},
      {batch_items(2, 100, 50, 30), 100, 2, {{0, 4, 0, 100, 50}, {4, 8, 100, 200, 100}},
       "items of 30 rows: the cut after the 4th (terms 100 of 200)"},
      {plan_range_items(all, 40, 30, 10), 30, 4, {{0, 4, 0, 40, 30}}, "the first piece needs every inner row: whole"},
      {plan_range_items(back, 20, 30, 10), 30, 2, {{0, 2, 0, 20, 30}}, "the first needs the last inner rows: whole"},
      {plan_range_items(skew, 40, 31, 10), 31, 2, {{0, 1, 0, 10, 30}, {1, 4, 10, 40, 31}},
       "the shares count terms, not rows"},
      {RangeItems(), 10, 4, {}, "no items, no pieces"},
  };
  for (const Row& r : rows) {
    const std::vector<SparsePiece> got = sparse_pieces(r.items, r.n_in, r.want);
    ASSERT_EQ(got.size(), r.pieces.size()) << r.why;
    for (size_t g = 0; g < got.size(); ++g) {
      const SparsePiece &a = got[g], &b = r.pieces[g];
      EXPECT_EQ(std::vector<long long>({a.item0, a.item1, a.row0, a.row1, a.inner_end}),
                std::vector<long long>({b.item0, b.item1, b.row0, b.row1, b.inner_end}))
          << r.why << ", piece " << g;
    }
  }
}

TEST(LaunchPlan, SparsePieceCountGrowsWithTheBytes) {
  const long long MB = 1LL << 20;
  EXPECT_EQ(sparse_piece_count(0, 32 * MB), 1);
  EXPECT_EQ(sparse_piece_count(4 * MB, 32 * MB), 1);
  EXPECT_EQ(sparse_piece_count(4 * MB + 1, 32 * MB), 2);
  EXPECT_EQ(sparse_piece_count(35 * MB, 32 * MB), 8);  // a batch of 64 x 2e4 points in 3D
  EXPECT_EQ(sparse_piece_count(1000 * MB, 32 * MB), 8);
  EXPECT_EQ(sparse_piece_count(100, 0), 8);
}
