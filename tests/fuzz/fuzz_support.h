// Shared pieces of the fuzz targets: a scratch file for readers that take a path, the tiny
// fixture model's tokenizer and chat template, and a byte-stream splitter that turns one fuzz
// input into several fields. Test-only.
// Thread-safety: none; a fuzz target runs one input at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"

namespace lorad::fuzz {

// Writes `bytes` to this process's scratch file `name` (under $TMPDIR, or /dev/shm when it
// exists) and returns its path. Aborts on an I/O error: the harness, not the input, is broken.
std::string WriteScratchFile(const std::string& name, std::string_view bytes);

// A scratch directory of this process (created once), for multi-file inputs (PEFT dirs).
const std::string& ScratchDir();

// The tokenizer and chat template of the tiny fixture model (tests/fixtures/tiny_model.h):
// byte-level BPE with ChatML special tokens. Built once.
const Tokenizer& TinyTokenizer();
const ChatTemplate& TinyChatTemplate();

// The SentencePiece BPE test vocabulary's tokenizer (tests/fixtures/spm_vocab.h). Built once.
const Tokenizer& SentencePieceTokenizer();

// The tokenizer of the GGUF model at $LORAD_FUZZ_MODEL (scripts/fuzz.sh sets it to the default
// model, a 49k-token byte-level BPE, when it is present); null when the variable is unset.
// Built once; aborts if the file cannot be read.
const Tokenizer* ModelTokenizer();

// Consumes a fuzz input front to back. Length-prefixed fields keep seeds readable: a field is
// a 2-byte little-endian length and that many bytes (clipped to what is left).
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte();            // 0 when empty
  std::string_view Field();  // a length-prefixed field
  std::string_view Rest();   // everything left

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// The inverse of ByteReader::Field, for seed writers.
std::string EncodeField(std::string_view bytes);

}  // namespace lorad::fuzz
