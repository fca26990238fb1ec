// Block-sparse reductions: the work items the kernels run, computed from the kept blocks
// (BlockRanges, engine.h). A work item is a block of at most `rows_per_item` result rows inside
// one outer range (or a gap between ranges) and the list of inner ranges its rows reduce over:
// sorted, the empty ones dropped, the contiguous ones merged (fewer, longer tiles).
#pragma once
#include <vector>

#include "engine.h"

namespace rkeops {

struct RangeItems {
  std::vector<long long> items;    // 4 per item: row0, row1, first range, end of ranges
  std::vector<long long> jranges;  // 2 per inner range: start, end
  std::vector<double> cost;        // per item: rows x inner rows (terms computed)
  double pairs = 0;                // terms of the whole call
  long long count() const { return static_cast<long long>(items.size() / 4); }
};

// Checks `r` against a call with `n_out` result rows and `n_in` inner rows and returns its work
// items, covering every result row. Throws UserError("input") naming the faulty array for
// ranges out of bounds, outer ranges unsorted or overlapping, slices that do not fit, or inner
// ranges of one list that overlap (an inner row would count twice).
RangeItems plan_range_items(const BlockRanges& r, long long n_out, long long n_in, long long rows_per_item);

}  // namespace rkeops
