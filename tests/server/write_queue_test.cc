// WriteQueue, the one queue behind lorad's streaming replies: order, the end handed out once,
// the write turn of a pushed writer (one holder at a time, given back when idle), Break and
// Abort dropping what is queued, `held`, and a pulling writer waiting across threads.
#include "server/common/write_queue.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace lorad::server {
namespace {

using Queue = WriteQueue<std::string, int>;

TEST(WriteQueueTest, PushedWriterTakesTheTurnOnceAndGivesItBackWhenIdle) {
  Queue q(Queue::Writer::kPushed);
  EXPECT_TRUE(q.Push("a", std::nullopt));   // the caller now holds the turn
  EXPECT_FALSE(q.Push("b", std::nullopt));  // held: queued only
  EXPECT_EQ(q.Next().message, "a");
  EXPECT_EQ(q.Next().message, "b");
  Queue::Step idle = q.Next();  // nothing: the turn is given back
  EXPECT_FALSE(idle.message.has_value());
  EXPECT_FALSE(idle.end.has_value());
  EXPECT_TRUE(q.Push(std::nullopt, 7));  // taken again, for the end
  Queue::Step end = q.Next();
  EXPECT_EQ(end.end, 7);
  EXPECT_FALSE(q.Push("late", 8));         // after the end: ignored
  EXPECT_FALSE(q.Next().end.has_value());  // the end is handed out once
}

TEST(WriteQueueTest, MessagesBeforeTheEndAreDeliveredFirst) {
  Queue q(Queue::Writer::kPushed);
  ASSERT_TRUE(q.Push("x", std::nullopt));
  EXPECT_FALSE(q.Push("last", 0));
  EXPECT_EQ(q.Next().message, "x");
  EXPECT_EQ(q.Next().message, "last");
  EXPECT_EQ(q.Next().end, 0);
}

TEST(WriteQueueTest, BreakDropsMessagesButKeepsTheEnd) {
  Queue q(Queue::Writer::kPushed);
  ASSERT_TRUE(q.Push("a", std::nullopt));
  EXPECT_FALSE(q.Push("b", std::nullopt));
  q.Break();
  EXPECT_TRUE(q.broken());
  EXPECT_FALSE(q.Next().message.has_value());  // "b" dropped; the turn is given back
  EXPECT_TRUE(q.Push("c", 3));                 // "c" dropped, the end kept
  Queue::Step step = q.Next();
  EXPECT_FALSE(step.message.has_value());
  EXPECT_EQ(step.end, 3);
}

TEST(WriteQueueTest, AbortReplacesNothingAlreadyQueuedAsTheEnd) {
  Queue q(Queue::Writer::kPushed);
  ASSERT_TRUE(q.Push("a", 1));
  EXPECT_FALSE(q.Abort(2));
  Queue::Step step = q.Next();  // "a" dropped by the abort; the first end stays
  EXPECT_FALSE(step.message.has_value());
  EXPECT_EQ(step.end, 1);

  Queue r(Queue::Writer::kPushed);
  EXPECT_TRUE(r.Abort(5));
  EXPECT_EQ(r.Next().end, 5);
}

TEST(WriteQueueTest, HeldQueueHandsOutNothingUntilReleased) {
  Queue q(Queue::Writer::kPushed, /*held=*/true);
  EXPECT_FALSE(q.Push("a", std::nullopt));
  EXPECT_FALSE(q.Push(std::nullopt, 9));
  EXPECT_TRUE(q.Release());
  EXPECT_EQ(q.Next().message, "a");
  EXPECT_EQ(q.Next().end, 9);

  Queue empty(Queue::Writer::kPushed, /*held=*/true);
  EXPECT_FALSE(empty.Release());  // nothing to hand out: no turn
}

TEST(WriteQueueTest, PullingWriterWaitsForMessagesFromAnotherThread) {
  Queue q(Queue::Writer::kPulling);
  Queue::Step none = q.WaitNext(absl::Milliseconds(10));
  EXPECT_FALSE(none.message.has_value());
  EXPECT_FALSE(none.end.has_value());
  constexpr int kMessages = 1000;
  std::thread producer([&] {
    for (int i = 0; i < kMessages; ++i) {
      EXPECT_FALSE(q.Push(std::to_string(i), std::nullopt));  // never takes a pulling turn
    }
    EXPECT_FALSE(q.Push(std::nullopt, -1));
  });
  std::vector<std::string> got;
  std::optional<int> end;
  while (!end.has_value()) {
    Queue::Step step = q.WaitNext(absl::Seconds(10));
    if (step.message.has_value()) got.push_back(*step.message);
    end = step.end;
  }
  producer.join();
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(got[i], std::to_string(i));
  EXPECT_EQ(*end, -1);
}

}  // namespace
}  // namespace lorad::server
