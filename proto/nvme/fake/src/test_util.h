// A subsystem with two ports and two namespaces, and helpers that submit SQEs the way a host would and hand back the
// completion. Shared by the subsystem's conformance tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/spec/async_event.h"
#include "mpath/nvme/spec/features.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/log_ana.h"
#include "mpath/nvme/spec/nvm_io.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/reservations.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::nvme::fake::testing {

using spec::Dnr;
using spec::GenericStatus;
using spec::MakeStatus;
using spec::More;
using spec::PathStatus;
using spec::Status;

inline spec::HostId MakeHostId(std::uint8_t tag) {
  spec::HostId id{};
  id.fill(tag);
  return id;
}

inline const spec::HostId kHostA = MakeHostId(0xA1);
inline const spec::HostId kHostB = MakeHostId(0xB2);
inline const spec::HostId kHostC = MakeHostId(0xC3);

inline constexpr std::array<std::uint8_t, 16> kNguid1{0x6C, 0x61, 0x62, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
inline constexpr std::array<std::uint8_t, 8> kEui1{0x00, 0x25, 0x38, 0xB1, 0x00, 0x00, 0x00, 0x01};
inline constexpr std::array<std::uint8_t, 16> kUuid1{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};

// One command as a host thread submits it: the SQE, its data and the completion that comes back.
struct Exchange {
  NvmeCommand command;
  std::vector<std::byte> data;
  int finished = 0;

  static void OnDone(NvmeCommand& /*command*/, void* arg) { ++static_cast<Exchange*>(arg)->finished; }

  Exchange(QueueKind queue, const spec::SubmissionQueueEntry& sqe, std::size_t data_bytes,
           DataDirection direction = DataDirection::kFromController)
      : data(data_bytes) {
    command.sqe = sqe;
    command.queue = queue;
    command.direction = data_bytes == 0 ? DataDirection::kNone : direction;
    command.data = data;
    command.OnFinish(&Exchange::OnDone, this);
  }
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  [[nodiscard]] Status status() const { return command.cqe.status(); }
  [[nodiscard]] std::uint32_t dw0() const { return command.cqe.dw0.value(); }
  [[nodiscard]] std::uint8_t byte(std::size_t i) const { return static_cast<std::uint8_t>(data.at(i)); }
  [[nodiscard]] std::uint16_t le16(std::size_t i) const { return static_cast<std::uint16_t>(byte(i) | byte(i + 1) << 8); }
  [[nodiscard]] std::uint32_t le32(std::size_t i) const { return le16(i) | std::uint32_t{le16(i + 2)} << 16; }
  [[nodiscard]] std::uint64_t le64(std::size_t i) const { return le32(i) | std::uint64_t{le32(i + 4)} << 32; }
  template <typename T>
  [[nodiscard]] T As() const {
    T value{};
    std::memcpy(&value, data.data(), std::min(sizeof(T), data.size()));
    return value;
  }
};

inline bool IsZero(const std::vector<std::byte>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

inline std::vector<std::byte> Pattern(std::size_t bytes, std::uint8_t seed) {
  std::vector<std::byte> out(bytes);
  for (std::size_t i = 0; i < bytes; ++i) out[i] = static_cast<std::byte>(seed + i * 7 + (i >> 9));
  return out;
}

class SubsystemTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kBlocks = 2048;

  void SetUp() override {
    auto created = Subsystem::Create(SubsystemConfig{}, clock_);
    ASSERT_TRUE(created) << created.error().ToString();
    subsystem_ = std::move(*created);
    ASSERT_TRUE(subsystem_->AddPort(1));
    ASSERT_TRUE(subsystem_->AddPort(2));
    ASSERT_TRUE(subsystem_->AddNamespace(NamespaceConfig{
        .nsid = 1, .blocks = kBlocks, .block_size = 512, .nguid = kNguid1, .eui64 = kEui1, .uuid = kUuid1,
        .ana_group = 1, .shared = true}));
    ASSERT_TRUE(subsystem_->AddNamespace(NamespaceConfig{
        .nsid = 2, .blocks = kBlocks, .block_size = 4096, .nguid = {}, .eui64 = {}, .uuid = {}, .ana_group = 2,
        .shared = true}));
  }

  void TearDown() override {
    controllers_.clear();
    executor_.RunUntilIdle();
  }

  // Connects and keeps the controller until the end of the test.
  NvmeTransport& Connect(const spec::HostId& host, std::uint16_t port) {
    auto controller = subsystem_->Connect("nqn.2014-08.org.nvmexpress:uuid:host-" + std::to_string(host[0]), host, port);
    EXPECT_TRUE(controller) << controller.error().ToString();
    controllers_.push_back(std::move(*controller));
    return *controllers_.back();
  }

  // Submits and expects the command to finish inside Submit.
  static std::unique_ptr<Exchange> Run(NvmeTransport& controller, QueueKind queue, const spec::SubmissionQueueEntry& sqe,
                                       std::size_t data_bytes = 0) {
    auto exchange = std::make_unique<Exchange>(queue, sqe, data_bytes);
    controller.Submit(exchange->command);
    EXPECT_EQ(exchange->finished, 1) << "command did not complete inside Submit";
    EXPECT_EQ(exchange->command.delivery, Delivery::kDelivered);
    return exchange;
  }
  static std::unique_ptr<Exchange> Admin(NvmeTransport& controller, const spec::SubmissionQueueEntry& sqe,
                                         std::size_t data_bytes = 0) {
    return Run(controller, QueueKind::kAdmin, sqe, data_bytes);
  }
  static std::unique_ptr<Exchange> Io(NvmeTransport& controller, const spec::SubmissionQueueEntry& sqe,
                                      std::size_t data_bytes = 0) {
    return Run(controller, QueueKind::kIo, sqe, data_bytes);
  }

  static Status Write(NvmeTransport& controller, std::uint32_t nsid, std::uint64_t slba,
                      const std::vector<std::byte>& bytes, std::uint32_t block_size) {
    auto x = std::make_unique<Exchange>(QueueKind::kIo,
                                        spec::MakeWrite(nsid, slba, static_cast<std::uint32_t>(bytes.size() / block_size)),
                                        bytes.size(), DataDirection::kToController);
    std::copy(bytes.begin(), bytes.end(), x->data.begin());
    controller.Submit(x->command);
    EXPECT_EQ(x->finished, 1);
    return x->status();
  }
  static std::unique_ptr<Exchange> Read(NvmeTransport& controller, std::uint32_t nsid, std::uint64_t slba,
                                        std::uint32_t blocks, std::uint32_t block_size) {
    return Io(controller, spec::MakeRead(nsid, slba, blocks), std::size_t{blocks} * block_size);
  }

  // An Asynchronous Event Request completed on the test's executor. The fixture owns it, so that it outlives the
  // controllers that may still hold it when the test body ends.
  Exchange* SubmitAer(NvmeTransport& controller) {
    aers_.push_back(std::make_unique<Exchange>(QueueKind::kAdmin, spec::MakeAsyncEventRequest(), 0));
    Exchange* aer = aers_.back().get();
    aer->command.executor = &executor_;
    controller.Submit(aer->command);
    return aer;
  }

  std::unique_ptr<Exchange> AnaLog(NvmeTransport& controller, std::uint32_t bytes = 4096,
                                   spec::AnaLogScope scope = spec::AnaLogScope::kGroupsAndNamespaces,
                                   spec::RetainAsyncEvent rae = spec::RetainAsyncEvent::kClear) {
    return Admin(controller, spec::MakeGetAnaLog(bytes, scope, rae), bytes);
  }

  spec::AnaLog ParsedAnaLog(NvmeTransport& controller) {
    auto log = AnaLog(controller, 4096, spec::AnaLogScope::kGroupsAndNamespaces, spec::RetainAsyncEvent::kRetain);
    EXPECT_TRUE(log->status().ok());
    auto parsed = spec::ParseAnaLog(log->data);
    EXPECT_TRUE(parsed) << parsed.error().ToString();
    return parsed ? *parsed : spec::AnaLog{};
  }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_{clock_};
  std::unique_ptr<Subsystem> subsystem_;
  std::vector<std::unique_ptr<Exchange>> aers_;
  std::vector<std::unique_ptr<NvmeTransport>> controllers_;
};

}  // namespace mpath::nvme::fake::testing
