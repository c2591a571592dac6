// What the path driver tests share: a request with its own driver context, a transport decorator that counts what
// reaches it, an observer that records the sense it is told about, and a simulated SAN with the LIO lab's layout
// (group 1 active/optimized behind port 1, group 2 active/non-optimized behind port 2, one thin LU).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mpath/core/executor.h"
#include "mpath/core/io_request.h"
#include "mpath/scsi/classify.h"
#include "mpath/scsi/path_driver.h"
#include "mpath/scsi/raw_status.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::scsi::testing {

inline constexpr std::uint32_t kBlock = 512;
inline constexpr std::uint64_t kBlocks = 4096;
inline constexpr std::uint64_t kCapacity = kBlocks * kBlock;

// One request outside any head: its own context, completion recorded. Threading: one thread.
struct Request {
  Request() {
    io.AttachDriverContext(context, sizeof(context));
    io.OnComplete(&Request::Done, this);
    io.RouteToSubmitter();
  }
  Request(IoOp op, std::uint64_t offset, std::uint32_t length, std::byte* data = nullptr) : Request() {
    io.op = op;
    io.offset = offset;
    io.length = length;
    io.data = data;
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  static void Done(IoRequest& io, void* arg) {
    auto* self = static_cast<Request*>(arg);
    ++self->completions;
    self->status = io.status;
  }
  [[nodiscard]] bool done() const { return completions > 0; }
  [[nodiscard]] Decision decision() const { return ClassifyScsi(io, status); }
  [[nodiscard]] std::string describe() const {
    return std::string(ErrcName(status.code)) + " '" + status.context + "': " + DescribeRawStatus(status.raw);
  }

  IoRequest io;
  alignas(64) std::byte context[256];
  int completions = 0;
  IoStatus status;
};

// Submits on `executor`'s behalf (so that CurrentExecutor() names it) and runs what it has to run.
inline void Submit(PathDriver& driver, Request& request, mpath::testing::ManualExecutor& executor) {
  ScopedCurrentExecutor current(&executor);
  driver.Submit(request.io);
  executor.RunUntilIdle();
}

// Forwards to a transport and counts the commands that reach it. Threading: as the wrapped transport.
class CountingTransport final : public ScsiTransport {
 public:
  explicit CountingTransport(ScsiTransport& inner) : inner_(inner) {}
  void Submit(std::uint64_t lun, ScsiCommand& command) override {
    count_.fetch_add(1, std::memory_order_relaxed);
    inner_.Submit(lun, command);
  }
  [[nodiscard]] std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  ScsiTransport& inner_;
  std::atomic<std::uint64_t> count_{0};
};

// Threading: safe from any thread.
class RecordingObserver final : public ScsiPathObserver {
 public:
  void OnSense(const spec::SenseCode& code) override {
    std::lock_guard lock(mu_);
    codes_.push_back(code);
  }
  [[nodiscard]] std::vector<spec::SenseCode> codes() const {
    std::lock_guard lock(mu_);
    return codes_;
  }
  std::vector<spec::SenseCode> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(codes_, {});
  }

 private:
  mutable std::mutex mu_;
  std::vector<spec::SenseCode> codes_;
};

inline std::vector<std::byte> Pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 9)) & 0xFF);
  return out;
}

inline bool AllZero(const std::vector<std::byte>& bytes) {
  for (std::byte b : bytes) {
    if (b != std::byte{0}) return false;
  }
  return true;
}

// The simulated SAN of the driver tests.
class SanFixture : public ::testing::Test {
 protected:
  static constexpr std::uint16_t kGroupA = 1;  // behind port 1
  static constexpr std::uint16_t kGroupB = 2;  // behind port 2

  void SetUp() override { BuildSan(fake::AluaState::kActiveNonOptimized); }

  void BuildSan(fake::AluaState group_b_state) {
    auto san = sim::SimSan::Create({.clock = &clock_, .seed = 7});
    ASSERT_TRUE(san.has_value());
    san_ = std::move(*san);
    auto array = san_->AddScsiArray("array0", {});
    ASSERT_TRUE(array.has_value()) << array.error().ToString();
    array_ = *array;
    ASSERT_TRUE(array_->AddPortGroup({.id = kGroupA, .state = fake::AluaState::kActiveOptimized, .preferred = true,
                                      .relative_ports = {1}})
                    .has_value());
    ASSERT_TRUE(array_->AddPortGroup({.id = kGroupB, .state = group_b_state, .preferred = false,
                                      .relative_ports = {2}})
                    .has_value());
    fake::LogicalUnitConfig lu{.lun = 0, .blocks = kBlocks, .block_size = kBlock, .naa = {}, .serial = "lu0", .thin = true};
    lu.naa[0] = 0x60;
    lu.naa[15] = 0x01;
    ASSERT_TRUE(array_->AddLogicalUnit(lu).has_value());
  }

  ScsiTransport& Connect(const std::string& name, std::uint16_t port) {
    auto path = san_->ConnectScsi({.name = name, .array = "array0", .initiator_port = "iqn.2026-11.io.mpath:host",
                                   .relative_port = port});
    EXPECT_TRUE(path.has_value()) << path.error().ToString();
    return **path;
  }

  sim::LinkFaults& Faults(const std::string& name) { return **san_->Faults(name); }

  std::unique_ptr<ScsiPathDriver> MakeDriver(ScsiTransport& transport, const ScsiPathDriverOptions& options = {},
                                             ScsiPathObserver* observer = nullptr, std::uint64_t lun = 0,
                                             std::uint64_t blocks = kBlocks) {
    auto driver = ScsiPathDriver::Create(transport, lun, kBlock, blocks, options, observer);
    EXPECT_TRUE(driver.has_value()) << driver.error().ToString();
    return std::move(*driver);
  }

  // The first media command on a new nexus gets 29/00; a probe takes it, the way an initiator's first TUR does.
  void TakePowerOnAttention(ScsiPathDriver& driver) {
    Request probe(IoOp::kProbe, 0, 0);
    Submit(driver, probe, executor_);
    ASSERT_EQ(probe.completions, 1);
    ASSERT_EQ(probe.status.code, Errc::kBusy) << probe.describe();
    ASSERT_EQ(probe.status.raw.bytes[3], 0x29);
    Request again(IoOp::kProbe, 0, 0);
    Submit(driver, again, executor_);
    ASSERT_TRUE(again.status.ok()) << again.describe();
  }

  IoStatus Write(ScsiPathDriver& driver, std::uint64_t offset, std::vector<std::byte>& data, bool fua = false) {
    Request r(IoOp::kWrite, offset, static_cast<std::uint32_t>(data.size()), data.data());
    r.io.fua = fua;
    Submit(driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    return r.status;
  }

  std::vector<std::byte> Read(ScsiPathDriver& driver, std::uint64_t offset, std::size_t length) {
    std::vector<std::byte> data(length);
    Request r(IoOp::kRead, offset, static_cast<std::uint32_t>(length), data.data());
    Submit(driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    EXPECT_TRUE(r.status.ok()) << r.describe();
    return data;
  }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Array* array_ = nullptr;
};

}  // namespace mpath::scsi::testing
