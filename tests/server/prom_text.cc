#include "tests/server/prom_text.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lorad::testing {
namespace {

bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

bool ValidName(absl::string_view name, bool allow_colon) {
  if (name.empty() || !IsNameStart(name[0]) || (!allow_colon && name[0] == ':')) return false;
  for (char c : name) {
    if (!IsNameChar(c) || (!allow_colon && c == ':')) return false;
  }
  return true;
}

bool ParseValue(absl::string_view text, double* value) {
  if (text == "+Inf") return *value = INFINITY, true;
  if (text == "-Inf") return *value = -INFINITY, true;
  if (text == "NaN") return *value = NAN, true;
  return absl::SimpleAtod(text, value);
}

// Parses `{a="x",b="y"}` at the start of `*rest`, consuming it.
bool ParseLabels(absl::string_view* rest, std::map<std::string, std::string>* labels) {
  if (!absl::ConsumePrefix(rest, "{")) return true;
  while (!absl::ConsumePrefix(rest, "}")) {
    const size_t eq = rest->find('=');
    if (eq == absl::string_view::npos) return false;
    const absl::string_view name = rest->substr(0, eq);
    if (!ValidName(name, /*allow_colon=*/false)) return false;
    rest->remove_prefix(eq + 1);
    if (!absl::ConsumePrefix(rest, "\"")) return false;
    std::string value;
    for (;;) {
      if (rest->empty()) return false;
      const char c = rest->front();
      rest->remove_prefix(1);
      if (c == '"') break;
      if (c == '\\') {
        if (rest->empty()) return false;
        const char e = rest->front();
        rest->remove_prefix(1);
        if (e == 'n') {
          value += '\n';
        } else if (e == '\\' || e == '"') {
          value += e;
        } else {
          return false;
        }
      } else {
        value += c;
      }
    }
    (*labels)[std::string(name)] = value;
    absl::ConsumePrefix(rest, ",");
  }
  return true;
}

// The family a sample name belongs to among `families`.
std::string FamilyOf(const std::string& name, const std::map<std::string, PromFamily>& families) {
  if (families.contains(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count", "_total", "_created"}) {
    if (absl::EndsWith(name, suffix)) {
      std::string base = name.substr(0, name.size() - std::strlen(suffix));
      if (families.contains(base)) return base;
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<std::map<std::string, PromFamily>> ParsePromText(const std::string& text) {
  std::map<std::string, PromFamily> families;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", what, ": ", line));
    };
    if (line.empty()) continue;
    if (absl::ConsumePrefix(&line, "# ")) {
      std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 2));
      if (parts.size() < 2) return error("bad comment");
      if (!ValidName(parts[1], /*allow_colon=*/true)) return error("bad metric name");
      PromFamily& family = families[std::string(parts[1])];
      if (parts[0] == "HELP") {
        family.help = parts.size() > 2 ? std::string(parts[2]) : "";
      } else if (parts[0] == "TYPE") {
        if (parts.size() != 3) return error("TYPE without a type");
        static const char* kTypes[] = {"counter", "gauge", "histogram", "summary", "untyped"};
        bool known = false;
        for (const char* type : kTypes) known |= parts[2] == type;
        if (!known) return error("unknown type");
        family.type = std::string(parts[2]);
      } else {
        return error("unknown comment");
      }
      continue;
    }
    if (line[0] == '#') continue;
    size_t end = 0;
    while (end < line.size() && IsNameChar(line[end])) ++end;
    PromSample sample;
    sample.name = std::string(line.substr(0, end));
    if (!ValidName(sample.name, /*allow_colon=*/true)) return error("bad sample name");
    absl::string_view rest = line.substr(end);
    if (!ParseLabels(&rest, &sample.labels)) return error("bad labels");
    if (!absl::ConsumePrefix(&rest, " ")) return error("no space before the value");
    std::vector<absl::string_view> fields = absl::StrSplit(rest, ' ');
    if (fields.empty() || fields.size() > 2) return error("bad value");
    if (!ParseValue(fields[0], &sample.value)) return error("bad value");
    int64_t timestamp = 0;
    if (fields.size() == 2 && !absl::SimpleAtoi(fields[1], &timestamp))
      return error("bad timestamp");
    const std::string family = FamilyOf(sample.name, families);
    if (family.empty() || families[family].type.empty()) return error("sample without # TYPE");
    families[family].samples.push_back(std::move(sample));
  }
  for (const auto& [name, family] : families) {
    if (family.type != "histogram" || family.samples.empty()) continue;
    bool inf = false, sum = false, count = false;
    for (const PromSample& sample : family.samples) {
      inf |= sample.name == name + "_bucket" && sample.labels.contains("le") &&
             sample.labels.at("le") == "+Inf";
      sum |= sample.name == name + "_sum";
      count |= sample.name == name + "_count";
    }
    if (!inf || !sum || !count) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram ", name, " lacks its +Inf bucket, _sum or _count"));
    }
  }
  return families;
}

}  // namespace lorad::testing
