#include "ranges.h"

#include <algorithm>
#include <string>
#include <utility>

#include "errors.h"

namespace rkeops {
namespace {

std::string S(long long v) { return std::to_string(v); }

}  // namespace

RangeItems plan_range_items(const BlockRanges& r, long long n_out, long long n_in, long long rows_per_item) {
  const long long nro = static_cast<long long>(r.outer.size() / 2);
  if (r.outer.size() % 2 || r.inner.size() % 2)
    throw UserError("input", "ranges: the outer and inner ranges must be (start, end) pairs");
  if (static_cast<long long>(r.slices.size()) != nro)
    throw UserError("input", "ranges: " + S(static_cast<long long>(r.slices.size())) + " slices for " + S(nro) +
                                 " outer ranges (one per range)");
  const long long nri = static_cast<long long>(r.inner.size() / 2);
  RangeItems out;
  const long long step = std::max(1LL, rows_per_item);
  auto add_rows = [&](long long a, long long b, long long s0, long long s1, long long len) {
    for (long long i = a; i < b; i += step) {
      const long long e = std::min(b, i + step);
      out.items.insert(out.items.end(), {i, e, s0, s1});
      out.cost.push_back(static_cast<double>(e - i) * static_cast<double>(len));
      out.pairs += out.cost.back();
    }
  };
  long long row = 0, prev_slice = 0;
  std::vector<std::pair<long long, long long>> list;
  for (long long k = 0; k < nro; ++k) {
    const long long a = r.outer[2 * k], b = r.outer[2 * k + 1], s = r.slices[k];
    if (a < 0 || b < a || b > n_out)
      throw UserError("input", "ranges: outer range " + S(k + 1) + " [" + S(a) + ", " + S(b) +
                                   ") is not within the " + S(n_out) + " result rows");
    if (a < row)
      throw UserError("input", "ranges: outer range " + S(k + 1) + " starts before the end of the previous one "
                               "(outer ranges must be sorted and must not overlap)");
    if (s < prev_slice || s > nri)
      throw UserError("input", "ranges: slice " + S(k + 1) + " (" + S(s) + ") must be non-decreasing and at most " +
                                   S(nri) + ", the number of inner ranges");
    add_rows(row, a, 0, 0, 0);  // rows in no range: the neutral value
    list.clear();
    for (long long q = prev_slice; q < s; ++q) {
      const long long c = r.inner[2 * q], d = r.inner[2 * q + 1];
      if (c < 0 || d < c || d > n_in)
        throw UserError("input", "ranges: inner range " + S(q + 1) + " [" + S(c) + ", " + S(d) +
                                     ") is not within the " + S(n_in) + " rows reduced over");
      if (d > c) list.emplace_back(c, d);
    }
    std::sort(list.begin(), list.end());
    const long long s0 = static_cast<long long>(out.jranges.size() / 2);
    long long len = 0;
    for (size_t q = 0; q < list.size(); ++q) {
      if (q > 0 && list[q].first < list[q - 1].second)
        throw UserError("input", "ranges: two inner ranges of the list of outer range " + S(k + 1) +
                                     " overlap (a point would count twice)");
      if (q > 0 && list[q].first == out.jranges.back()) {
        out.jranges.back() = list[q].second;  // contiguous: one range
      } else {
        out.jranges.push_back(list[q].first);
        out.jranges.push_back(list[q].second);
      }
      len += list[q].second - list[q].first;
    }
    add_rows(a, b, s0, static_cast<long long>(out.jranges.size() / 2), len);
    row = b;
    prev_slice = s;
  }
  add_rows(row, n_out, 0, 0, 0);
  return out;
}

}  // namespace rkeops
