#include "adapters/sha256.h"

#include <openssl/evp.h>

#include <memory>

#include "engine/base/mapped_file.h"
#include "engine/base/status_macros.h"

namespace lorad::adapters {

std::string Sha256Hex(const std::vector<absl::string_view>& parts) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  for (absl::string_view p : parts) EVP_DigestUpdate(ctx.get(), p.data(), p.size());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

absl::StatusOr<std::string> Sha256HexWithFile(absl::string_view text, const std::string& path) {
  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  return Sha256Hex(
      {text, absl::string_view(reinterpret_cast<const char*>(file->data()), file->size())});
}

}  // namespace lorad::adapters
