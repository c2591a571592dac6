// Several host threads on several controllers while the SAN changes under them: I/O, ANA changes with transitions,
// namespace churn, and AERs completed and re-armed on an executor thread. Run under TSan, it checks the threading
// contract of subsystem.h; everywhere, it checks that every thread reads back what it wrote.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "test_util.h"

namespace mpath::nvme::fake::testing {
namespace {

// An AER that re-arms itself from its completion: reads the ANA log with RAE cleared, then submits again.
struct AerLoop {
  NvmeTransport* controller = nullptr;
  NvmeCommand command;
  std::atomic<bool>* stop = nullptr;
  std::atomic<int>* notices = nullptr;

  void Arm(Executor& executor) {
    command.sqe = spec::MakeAsyncEventRequest();
    command.queue = QueueKind::kAdmin;
    command.executor = &executor;
    command.OnFinish(&AerLoop::OnDone, this);
    controller->Submit(command);
  }

  static void OnDone(NvmeCommand& command, void* arg) {
    auto* self = static_cast<AerLoop*>(arg);
    if (command.delivery != Delivery::kDelivered || self->stop->load()) return;
    self->notices->fetch_add(1);
    Exchange log(QueueKind::kAdmin, spec::MakeGetAnaLog(4096), 4096);
    self->controller->Submit(log.command);
    EXPECT_TRUE(log.status().ok());
    EXPECT_TRUE(spec::ParseAnaLog(log.data));
    self->controller->Submit(command);
  }
};

TEST_F(SubsystemTest, ManyThreadsManyControllers) {
  constexpr int kIoThreads = 4;
  constexpr int kIterations = 150;
  std::vector<NvmeTransport*> io_controllers;
  for (int t = 0; t < kIoThreads; ++t) {
    io_controllers.push_back(&Connect(MakeHostId(static_cast<std::uint8_t>(0x10 + t)), t % 2 == 0 ? 1 : 2));
  }

  std::atomic<bool> stop{false};
  std::atomic<int> notices{0};
  std::vector<std::unique_ptr<AerLoop>> loops;
  for (NvmeTransport* c : io_controllers) {
    for (int i = 0; i < 2; ++i) {
      loops.push_back(std::make_unique<AerLoop>());
      loops.back()->controller = c;
      loops.back()->stop = &stop;
      loops.back()->notices = &notices;
      loops.back()->Arm(executor_);
    }
  }

  std::thread executor_thread([&] {
    while (!stop.load()) {
      executor_.RunUntilIdle();
      std::this_thread::yield();
    }
  });

  std::thread control([&] {
    for (int i = 0; !stop.load(); ++i) {
      const AnaState state = i % 3 == 0 ? AnaState::kInaccessible : AnaState::kOptimized;
      EXPECT_TRUE(subsystem_->SetAnaState(2, 1, state, i % 4 == 0 ? std::chrono::milliseconds(5) : Nanos(0)));
      clock_.Advance(std::chrono::milliseconds(3));
      EXPECT_TRUE(subsystem_->GetAnaState(2, 1));
      if (i % 8 == 0) {
        EXPECT_TRUE(subsystem_->AddNamespace({.nsid = 10, .blocks = 64}));
        EXPECT_TRUE(subsystem_->ChangeCapacity(10, 128));
        EXPECT_TRUE(subsystem_->RemoveNamespace(10));
      }
      std::this_thread::yield();
    }
  });

  std::atomic<int> path_errors{0};  // port 2 goes inaccessible now and then
  std::vector<std::thread> hosts;
  for (int t = 0; t < kIoThreads; ++t) {
    hosts.emplace_back([&, t] {
      NvmeTransport& c = *io_controllers[t];
      const std::uint64_t base = static_cast<std::uint64_t>(t) * 64;
      for (int i = 0; i < kIterations; ++i) {
        const auto data = Pattern(4 * 512, static_cast<std::uint8_t>(t * 31 + i));
        const std::uint64_t lba = base + static_cast<std::uint64_t>(i % 16) * 4;
        Exchange w(QueueKind::kIo, spec::MakeWrite(1, lba, 4), data.size(), DataDirection::kToController);
        std::copy(data.begin(), data.end(), w.data.begin());
        c.Submit(w.command);
        ASSERT_EQ(w.finished, 1);
        if (!w.status().ok()) {
          ASSERT_TRUE(spec::IsAsymmetricAccessError(w.status())) << spec::StatusName(w.status());
          path_errors.fetch_add(1);
          continue;
        }
        Exchange r(QueueKind::kIo, spec::MakeRead(1, lba, 4), data.size());
        c.Submit(r.command);
        ASSERT_EQ(r.finished, 1);
        if (!r.status().ok()) {
          ASSERT_TRUE(spec::IsAsymmetricAccessError(r.status()));
          path_errors.fetch_add(1);
          continue;
        }
        ASSERT_EQ(r.data, data) << "thread " << t << " iteration " << i;
        Exchange id(QueueKind::kAdmin, spec::MakeIdentify(spec::Cns::kNamespace, 1), 4096);
        c.Submit(id.command);
        ASSERT_TRUE(id.status().ok());
      }
    });
  }
  for (auto& h : hosts) h.join();
  // The hosts can finish before the control thread's first change has reached an AER on a loaded machine: keep the
  // control and executor threads going until a notice has gone round (bounded, so a lost notice still fails).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (notices.load() == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  stop.store(true);
  control.join();
  executor_thread.join();

  EXPECT_GT(notices.load(), 0);
  controllers_.clear();  // outstanding AERs finish with kAborted on the executor, and are not re-armed
  executor_.RunUntilIdle();
}

}  // namespace
}  // namespace mpath::nvme::fake::testing
