#include "engine/sampling/text_stream.h"

#include <algorithm>

namespace lorad {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Expected length of the UTF-8 sequence starting with `lead`, 0 if `lead` cannot start one.
int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether byte `k` (1-based position after the lead) is valid in a sequence starting `lead`.
bool ValidContinuation(unsigned char lead, int k, unsigned char c) {
  if ((c & 0xC0) != 0x80) return false;
  if (k != 1) return true;
  if (lead == 0xE0) return c >= 0xA0;  // no overlong 3-byte forms
  if (lead == 0xED) return c <= 0x9F;  // no surrogates
  if (lead == 0xF0) return c >= 0x90;  // no overlong 4-byte forms
  if (lead == 0xF4) return c <= 0x8F;  // nothing above U+10FFFF
  return true;
}

}  // namespace

TextStream::TextStream(std::vector<std::string> stop_sequences)
    : stops_(std::move(stop_sequences)) {}

size_t TextStream::SanitizeCompletePrefix() {
  size_t i = 0;
  while (i < pending_.size()) {
    const auto lead = static_cast<unsigned char>(pending_[i]);
    const int len = SequenceLength(lead);
    if (len == 0) {
      pending_.replace(i, 1, kReplacement);
      i += kReplacement.size();
      continue;
    }
    int k = 1;
    while (k < len && i + k < pending_.size() &&
           ValidContinuation(lead, k, static_cast<unsigned char>(pending_[i + k]))) {
      ++k;
    }
    if (k == len) {
      i += len;
    } else if (i + k == pending_.size()) {
      return i;  // incomplete but still valid: wait for more bytes
    } else {
      pending_.replace(i, k, kReplacement);
      i += kReplacement.size();
    }
  }
  return i;
}

std::string TextStream::Append(std::string_view bytes) {
  if (stopped_) return "";
  pending_.append(bytes);
  const size_t complete = SanitizeCompletePrefix();
  const std::string_view text(pending_.data(), complete);
  size_t first_stop = std::string_view::npos;
  for (const std::string& s : stops_) first_stop = std::min(first_stop, text.find(s));
  if (first_stop != std::string_view::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first_stop);
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix of `text` that is a proper prefix of some stop sequence.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > hold; --len) {
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  const size_t emit = complete - hold;
  std::string out = pending_.substr(0, emit);
  pending_.erase(0, emit);
  return out;
}

std::string TextStream::Flush() {
  if (stopped_) return "";
  const size_t complete = SanitizeCompletePrefix();
  std::string out = pending_.substr(0, complete);
  if (complete < pending_.size()) out.append(kReplacement);
  pending_.clear();
  return out;
}

}  // namespace lorad
