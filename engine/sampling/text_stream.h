// Turns the bytes of generated tokens into text deltas for streaming: a UTF-8 character is never
// split across deltas, invalid bytes become U+FFFD (clients receive valid UTF-8 only), and text
// stops right before the first occurrence of any stop sequence — text that might begin a stop
// sequence is held back until it cannot.
// Thread-safety: one per sequence; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lorad {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_sequences);

  // Adds the bytes of one token; returns the text that is now final (may be empty). Once a
  // stop sequence is found, stopped() is true and later calls return "".
  std::string Append(std::string_view bytes);
  // End of generation: returns all text still held back (an incomplete character at the end
  // becomes U+FFFD). Returns "" after a stop.
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  // Length of the longest prefix of pending_ made of whole characters, after replacing
  // invalid bytes in pending_ with U+FFFD.
  size_t SanitizeCompletePrefix();

  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace lorad
