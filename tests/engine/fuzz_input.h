// The input format of the fuzz targets: first line = formula, further lines = aliases.
#pragma once
#include <string>
#include <vector>

namespace rkeops_fuzz {

inline void split_input(const unsigned char* data, unsigned long size, std::string* formula,
                        std::vector<std::string>* aliases) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t k = 0; k <= text.size(); ++k) {
    if (k == text.size() || text[k] == '\n') {
      lines.push_back(text.substr(start, k - start));
      start = k + 1;
    }
  }
  *formula = lines.empty() ? "" : lines[0];
  aliases->assign(lines.size() > 1 ? lines.begin() + 1 : lines.end(), lines.end());
}

}  // namespace rkeops_fuzz
