#include "adapters/adapter_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <filesystem>

#include <atomic>
#include <fstream>
#include <thread>

#include "adapters/sha256.h"
#include "gtest/gtest.h"
#include "tests/adapters/adapter_test_util.h"

namespace lorad::adapters {
namespace {

using ::lorad::testing::ScopedTempDir;
using ::lorad::testing::TinyAdapterOptions;
using ::lorad::testing::TinyModelOptions;
using ::lorad::testing::TinySpec;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class AdapterStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.File("root");
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
  }
  // Writes a default tiny adapter (3584 bytes in fp16) with `seed` to root/`name`.
  void Write(const std::string& name, uint64_t seed = 7) {
    TinyAdapterOptions o;
    o.seed = seed;
    ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, root_ + "/" + name).ok());
  }
  std::unique_ptr<AdapterStore> Make(int64_t budget = 1 << 30, int32_t max_loaded = 1000,
                                     double max_pinned_fraction = 1.0) {
    AdapterStoreOptions o;
    o.adapter_root = root_;
    o.base = TinySpec(base_);
    o.host_budget_bytes = budget;
    o.max_loaded = max_loaded;
    o.max_pinned_fraction = max_pinned_fraction;
    auto s = AdapterStore::Create(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return *std::move(s);
  }
  static constexpr int64_t kBytes = 3584;
  TinyModelOptions base_;
  ScopedTempDir tmp_;
  std::string root_;
};

TEST_F(AdapterStoreTest, LoadDescribesTheAdapter) {
  Write("a");
  auto store = Make();
  auto info = store->Load("tenant-a", "a", /*pin=*/false);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->adapter_id, "tenant-a");
  EXPECT_EQ(info->source, "a");
  EXPECT_EQ(info->rank, 4);
  EXPECT_EQ(info->alpha, 8.0f);
  EXPECT_EQ(info->target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_FALSE(info->use_rslora);
  EXPECT_EQ(info->bytes, kBytes);
  EXPECT_EQ(info->tier, ResidencyTier::kHost);
  EXPECT_EQ(info->version, 1);
  EXPECT_EQ(info->active_requests, 0);
  const std::string dir = root_ + "/a/";
  EXPECT_EQ(info->digest, Sha256Hex({Slurp(dir + "adapter_config.json"),
                                     Slurp(dir + "adapter_model.safetensors")}));
  EXPECT_EQ(info->digest.size(), 64u);
  EXPECT_EQ(store->List().size(), 1u);
  EXPECT_EQ(store->GetStats().host_bytes, kBytes);
}

TEST_F(AdapterStoreTest, Sha256KnownAnswer) {
  EXPECT_EQ(Sha256Hex({"ab", "c"}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(AdapterStoreTest, SourcesAreConfinedToTheRoot) {
  Write("a");
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, {}, tmp_.File("outside")).ok());
  ASSERT_EQ(::symlink(tmp_.File("outside").c_str(), (root_ + "/escape").c_str()), 0);
  ASSERT_EQ(::symlink((root_ + "/a").c_str(), (root_ + "/alias").c_str()), 0);
  auto store = Make();
  struct Case {
    std::string source;
    absl::StatusCode code;
  } cases[] = {
      {tmp_.File("outside"), absl::StatusCode::kInvalidArgument},
      {"../outside", absl::StatusCode::kInvalidArgument},
      {"a/../../outside", absl::StatusCode::kInvalidArgument},
      {"escape", absl::StatusCode::kInvalidArgument},
      {"", absl::StatusCode::kInvalidArgument},
      {"missing", absl::StatusCode::kNotFound},
      {"a/adapter_config.json", absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto r = store->Load("x", c.source, false);
    EXPECT_EQ(r.status().code(), c.code) << c.source << ": " << r.status();
    EXPECT_EQ(r.status().message().find(tmp_.File("outside/")), std::string::npos);
  }
  EXPECT_TRUE(store->Load("x", "alias", false).ok());
  EXPECT_TRUE(store->Load("y", "./a/", false).ok());

  // Pickle weights are refused by name, never read.
  Write("pickled");
  const std::string pickled = root_ + "/pickled/adapter_model.safetensors";
  ASSERT_EQ(::rename(pickled.c_str(), (root_ + "/pickled/adapter_model.bin").c_str()), 0);
  auto pickle = store->Load("pickled", "pickled", false);
  EXPECT_EQ(pickle.status().code(), absl::StatusCode::kFailedPrecondition) << pickle.status();
  EXPECT_NE(pickle.status().message().find("pickle"), std::string::npos) << pickle.status();

  // A directory inside the root whose weights file is a symlink to a file outside: the
  // directory check passes, the file's confined open does not.
  Write("linked");
  const std::string weights = root_ + "/linked/adapter_model.safetensors";
  ASSERT_EQ(::unlink(weights.c_str()), 0);
  ASSERT_EQ(::symlink(tmp_.File("outside/adapter_model.safetensors").c_str(), weights.c_str()), 0);
  auto linked = store->Load("linked", "linked", false);
  EXPECT_EQ(linked.status().code(), absl::StatusCode::kInvalidArgument) << linked.status();
  EXPECT_NE(linked.status().message().find("outside the root"), std::string::npos)
      << linked.status();
  EXPECT_EQ(store->Load("bad id", "a", false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Acquire("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Unload("nope").code(), absl::StatusCode::kNotFound);
}

TEST_F(AdapterStoreTest, LruEvictionAndReloadFromDisk) {
  for (const char* n : {"a", "b", "c", "d"}) Write(n);
  auto store = Make(2 * kBytes);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  ASSERT_TRUE(store->Load("b", "b", false).ok());
  ASSERT_TRUE(store->Load("c", "c", false).ok());  // evicts a
  EXPECT_EQ(store->Get("a")->tier, ResidencyTier::kDisk);
  ASSERT_TRUE(store->Acquire("b").ok());           // b is now most recent
  ASSERT_TRUE(store->Load("d", "d", false).ok());  // evicts c
  EXPECT_EQ(store->Get("b")->tier, ResidencyTier::kHost);
  EXPECT_EQ(store->Get("c")->tier, ResidencyTier::kDisk);
  AdapterStore::Stats s = store->GetStats();
  EXPECT_EQ(s.evictions, 2);
  EXPECT_EQ(s.resident, 2);
  EXPECT_EQ(s.host_bytes, 2 * kBytes);
  EXPECT_EQ(s.disk_bytes, 2 * kBytes);
  EXPECT_EQ(s.hits, 1);

  auto w = store->Acquire("a");  // reload from disk, evicting b (LRU)
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(store->Get("a")->tier, ResidencyTier::kHost);
  EXPECT_EQ(store->Get("a")->version, 1);  // same files: same version
  EXPECT_EQ(store->Get("b")->tier, ResidencyTier::kDisk);
  s = store->GetStats();
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.loads, 5);
  EXPECT_GT(s.load_seconds, 0.0);
}

TEST_F(AdapterStoreTest, MaxLoadedBoundsResidentCount) {
  for (const char* n : {"a", "b"}) Write(n);
  auto store = Make(1 << 30, /*max_loaded=*/1);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  ASSERT_TRUE(store->Load("b", "b", false).ok());
  EXPECT_EQ(store->Get("a")->tier, ResidencyTier::kDisk);
  EXPECT_EQ(store->GetStats().resident, 1);
}

TEST_F(AdapterStoreTest, PinnedAdaptersAreNeverEvicted) {
  for (const char* n : {"a", "b", "c"}) Write(n);
  auto store = Make(2 * kBytes);
  ASSERT_TRUE(store->Load("a", "a", true).ok());
  ASSERT_TRUE(store->Load("b", "b", true).ok());
  auto c = store->Load("c", "c", false);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted) << c.status();
  EXPECT_EQ(store->Get("c").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->Get("a")->pinned);
  // Re-loading a pinned id unpinned makes it evictable.
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  EXPECT_TRUE(store->Load("c", "c", false).ok());
  EXPECT_EQ(store->Get("a")->tier, ResidencyTier::kDisk);
  EXPECT_EQ(store->Get("b")->tier, ResidencyTier::kHost);
  // Bigger than the whole budget.
  auto tiny = Make(100);
  EXPECT_EQ(tiny->Load("a", "a", false).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(AdapterStoreTest, AdaptersInUseAreNotEvicted) {
  for (const char* n : {"a", "b", "c"}) Write(n);
  auto store = Make(2 * kBytes);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  ASSERT_TRUE(store->Load("b", "b", false).ok());
  auto ha = store->Acquire("a");
  auto hb = store->Acquire("b");
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(store->Get("a")->active_requests, 1);
  // No room while a and b are held: c is registered on the disk tier, not refused.
  auto c = store->Load("c", "c", false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tier, ResidencyTier::kDisk);
  EXPECT_EQ(c->version, 1);
  EXPECT_FALSE(c->digest.empty());
  EXPECT_EQ(c->bytes, kBytes);
  // Acquiring it says it fits once held adapters are released; a pin cannot wait.
  EXPECT_EQ(store->Acquire("c").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->GetStats().no_room, 1);
  EXPECT_EQ(store->Load("p", "c", true).status().code(), absl::StatusCode::kResourceExhausted);
  ha->reset();
  EXPECT_EQ(store->Get("a")->active_requests, 0);
  auto hc = store->Acquire("c");
  ASSERT_TRUE(hc.ok()) << hc.status();
  EXPECT_EQ(store->Get("c")->version, 1);  // same files: same version
  EXPECT_EQ(store->Get("a")->tier, ResidencyTier::kDisk);
  EXPECT_EQ(store->Get("b")->tier, ResidencyTier::kHost);
}

TEST_F(AdapterStoreTest, PinnedAdaptersHoldAtMostTheirShareOfTheBudget) {
  for (const char* n : {"a", "b", "c", "d"}) Write(n);
  auto store = Make(4 * kBytes, 1000, /*max_pinned_fraction=*/0.5);
  ASSERT_TRUE(store->Load("a", "a", true).ok());
  ASSERT_TRUE(store->Load("b", "b", true).ok());
  auto c = store->Load("c", "c", true);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("pinned"), std::string::npos) << c.status();
  EXPECT_EQ(store->GetStats().pinned_bytes, 2 * kBytes);
  // Unpinned adapters still have the rest of the budget.
  ASSERT_TRUE(store->Load("c", "c", false).ok());
  ASSERT_TRUE(store->Load("d", "d", false).ok());
  EXPECT_EQ(store->Get("d")->tier, ResidencyTier::kHost);
}

TEST_F(AdapterStoreTest, ConcurrentColdLoadsNeverOvercommitTheBudget) {
  const std::vector<std::string> names = {"a", "b", "c", "d", "e", "f"};
  for (const std::string& n : names) Write(n);
  auto store = Make(2 * kBytes);
  for (const std::string& n : names) ASSERT_TRUE(store->Load(n, n, false).ok());
  ASSERT_EQ(store->GetStats().resident, 2);  // e and f; held or reserved ones are never evicted
  std::vector<std::shared_ptr<const LoraWeights>> held(names.size());
  std::vector<absl::StatusCode> codes(names.size());
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (size_t i = 0; i < names.size(); ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      auto w = store->Acquire(names[i]);
      codes[i] = w.status().code();
      if (w.ok()) held[i] = *w;
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  int ok = 0;
  for (absl::StatusCode code : codes) {
    if (code == absl::StatusCode::kOk) {
      ++ok;
    } else {
      EXPECT_EQ(code, absl::StatusCode::kUnavailable);
    }
  }
  EXPECT_EQ(ok, 2);  // exactly what the budget holds
  EXPECT_LE(store->GetStats().host_bytes, 2 * kBytes);
}

TEST_F(AdapterStoreTest, ReloadOfUnchangedFilesReusesTheDigest) {
  for (const char* n : {"a", "b"}) Write(n);
  // Files written seconds ago are not trusted by their stat key (coarse file times).
  auto age = [&](const std::string& name, int64_t seconds_ago) {
    const struct timespec t = {::time(nullptr) - seconds_ago, 0};
    const struct timespec times[2] = {t, t};
    for (const char* f : {"/adapter_config.json", "/adapter_model.safetensors"}) {
      ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/" + name + f).c_str(), times, 0), 0);
    }
  };
  age("a", 60);
  auto store = Make(kBytes);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  const std::string digest = store->Get("a")->digest;
  ASSERT_TRUE(store->Load("b", "b", false).ok());  // a to disk
  ASSERT_TRUE(store->Acquire("a").ok());
  EXPECT_EQ(store->GetStats().digest_reuses, 1);
  EXPECT_EQ(store->Get("a")->digest, digest);
  EXPECT_EQ(store->Get("a")->version, 1);
  // Changed files (even with an old mtime, a different one) are hashed again.
  ASSERT_TRUE(store->Acquire("b").ok());  // a to disk
  Write("a", /*seed=*/42);
  age("a", 30);
  ASSERT_TRUE(store->Acquire("a").ok());
  EXPECT_EQ(store->GetStats().digest_reuses, 1);
  EXPECT_NE(store->Get("a")->digest, digest);
  EXPECT_EQ(store->Get("a")->version, 2);
}

TEST_F(AdapterStoreTest, ConcurrentAcquiresOfAColdAdapterLoadOnce) {
  for (const char* n : {"a", "b"}) Write(n);
  auto store = Make(kBytes);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  ASSERT_TRUE(store->Load("b", "b", false).ok());  // a goes to disk
  const int64_t loads = store->GetStats().loads;
  std::atomic<bool> go{false};
  std::vector<std::shared_ptr<const LoraWeights>> got(10);
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      auto w = store->Acquire("a");
      ASSERT_TRUE(w.ok()) << w.status();
      got[i] = *w;
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(store->GetStats().loads, loads + 1);
  for (const auto& w : got) EXPECT_EQ(w.get(), got[0].get());
  EXPECT_EQ(store->Get("a")->active_requests, 10);
}

TEST_F(AdapterStoreTest, ReloadPublishesANewVersionWhileOldHoldersKeepOldWeights) {
  Write("a", /*seed=*/1);
  auto store = Make();
  auto v1 = store->Load("a", "a", false);
  ASSERT_TRUE(v1.ok());
  auto old = store->Acquire("a");
  ASSERT_TRUE(old.ok());
  const LoraPair old_q = (*old)->layers[0][0];
  const std::vector<uint16_t> old_a(static_cast<const uint16_t*>(old_q.a),
                                    static_cast<const uint16_t*>(old_q.a) + 4 * 64);
  Write("a", /*seed=*/2);
  auto v2 = store->Load("a", "a", false);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2);
  EXPECT_NE(v2->digest, v1->digest);
  EXPECT_EQ(v2->active_requests, 1);  // the holder of version 1
  EXPECT_EQ(store->GetStats().retired_bytes, kBytes);
  auto now = store->Acquire("a");
  ASSERT_TRUE(now.ok());
  EXPECT_NE(now->get(), old->get());
  EXPECT_EQ(0, std::memcmp((*old)->layers[0][0].a, old_a.data(), old_a.size() * 2));
  EXPECT_NE(0, std::memcmp((*now)->layers[0][0].a, old_a.data(), old_a.size() * 2));

  // Unload: holders keep their weights; the id is gone; versions never repeat.
  ASSERT_TRUE(store->Unload("a").ok());
  EXPECT_EQ(store->Acquire("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(0, std::memcmp((*old)->layers[0][0].a, old_a.data(), old_a.size() * 2));
  EXPECT_EQ(store->Load("a", "a", false)->version, 3);
}

TEST_F(AdapterStoreTest, FilesChangedWhileOnDiskBecomeANewVersion) {
  for (const char* n : {"a", "b"}) Write(n);
  auto store = Make(kBytes);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  const std::string d1 = store->Get("a")->digest;
  ASSERT_TRUE(store->Load("b", "b", false).ok());  // a to disk
  Write("a", /*seed=*/99);
  ASSERT_TRUE(store->Acquire("a").ok());
  EXPECT_EQ(store->Get("a")->version, 2);
  EXPECT_NE(store->Get("a")->digest, d1);
}

TEST_F(AdapterStoreTest, FailedReloadFailsOnlyThatAdapter) {
  for (const char* n : {"a", "b"}) Write(n);
  auto store = Make(kBytes);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  ASSERT_TRUE(store->Load("b", "b", false).ok());  // a to disk
  ASSERT_TRUE(::lorad::testing::WriteBytes(root_ + "/a/adapter_config.json", "{"));
  EXPECT_EQ(store->Acquire("a").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->Acquire("b").ok());
  EXPECT_EQ(store->GetStats().load_failures, 1);
  Write("a");
  EXPECT_TRUE(store->Acquire("a").ok());  // a later Acquire retries
}

// An adapter directory deleted while its weights are cached and held: the holder's weights
// stay readable; once evicted, the next load is NOT_FOUND for that adapter only.
TEST_F(AdapterStoreTest, DeletedDirectoryFailsOnlyTheNextLoadOfThatAdapter) {
  for (const char* n : {"a", "b"}) Write(n);
  auto store = Make(kBytes);
  ASSERT_TRUE(store->Load("a", "a", false).ok());
  absl::StatusOr<std::shared_ptr<const LoraWeights>> held = store->Acquire("a");
  ASSERT_TRUE(held.ok());
  std::filesystem::remove_all(root_ + "/a");
  EXPECT_TRUE(store->Acquire("a").ok());  // still resident
  held->reset();
  ASSERT_TRUE(store->Load("b", "b", false).ok());  // a to disk
  EXPECT_EQ(store->Acquire("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->Acquire("b").ok());
}

}  // namespace
}  // namespace lorad::adapters

namespace lorad::adapters {
namespace {

// Loads, unloads, reloads and acquires from several threads under a budget of two adapters:
// no crash, handed weights stay readable while held, and the budget is never exceeded.
TEST_F(AdapterStoreTest, ConcurrentMixedOperationsKeepInvariants) {
  for (const char* n : {"a", "b", "c", "d"}) Write(n);
  auto store = Make(2 * kBytes);
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  std::atomic<int64_t> reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      uint64_t x = 12345 + t;
      for (int i = 0; i < 150; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const std::string& id = names[(x >> 33) % names.size()];
        switch ((x >> 40) % 4) {
          case 0:
            (void)store->Load(id, id, false);
            break;
          case 1:
            (void)store->Unload(id);
            break;
          default:
            if (auto w = store->Acquire(id); w.ok()) {
              const LoraPair& p = (*w)->layers[1][2];
              ASSERT_EQ(p.rank, 4);
              reads += static_cast<const uint16_t*>(p.b)[0] != 0xffff;
            }
        }
        ASSERT_LE(store->GetStats().host_bytes, 2 * kBytes);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(reads.load(), 0);
  for (const AdapterInfo& info : store->List()) EXPECT_EQ(info.active_requests, 0);
}

}  // namespace
}  // namespace lorad::adapters
