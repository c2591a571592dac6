// What the ALUA engine tests share: a simulated array on a ManualClock, its I_T nexuses, an engine driven by a
// ManualExecutor, and a recorder of everything the engine reports.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/scsi/alua_engine.h"
#include "mpath/scsi/fake/array.h"
#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"
#include "mpath/scsi/transport.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::scsi::alua_testing {

using fake::AluaState;
using namespace std::chrono_literals;

inline constexpr std::uint8_t kRtpgOpcode = spec::op::kMaintenanceIn;
inline constexpr std::uint8_t kStpgOpcode = spec::op::kMaintenanceOut;
inline constexpr spec::SenseCode kStateChanged = spec::asc::kAsymmetricAccessStateChanged;

struct Reported {
  AccessState state = AccessState::kUnavailable;
  bool preferred = false;
  friend bool operator==(const Reported&, const Reported&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const Reported& r) {
  return os << Name(r.state) << (r.preferred ? "+pref" : "");
}

// Everything the engine said, in order.
struct Recorder {
  struct Change {
    PathKey key;
    Reported reported;
  };
  std::vector<Change> changes;
  std::map<PathKey, Reported> latest;
  std::vector<PathKey> rescans;
  std::vector<PathKey> identities;
  std::vector<std::pair<PathKey, spec::SenseCode>> unit_attentions;
  // Runs inside on_state, after the change is recorded.
  std::function<void(PathKey, AccessState)> on_state_hook;

  AluaCallbacks Callbacks() {
    AluaCallbacks callbacks;
    callbacks.on_state = [this](PathKey key, AccessState state, bool preferred) {
      changes.push_back({key, {state, preferred}});
      latest[key] = {state, preferred};
      if (on_state_hook) on_state_hook(key, state);
    };
    callbacks.on_rescan = [this](PathKey key) { rescans.push_back(key); };
    callbacks.on_identity = [this](PathKey key) { identities.push_back(key); };
    callbacks.on_unit_attention = [this](PathKey key, spec::SenseCode code) {
      unit_attentions.emplace_back(key, code);
    };
    return callbacks;
  }

  [[nodiscard]] std::vector<Reported> History(PathKey key) const {
    std::vector<Reported> out;
    for (const Change& c : changes) {
      if (c.key == key) out.push_back(c.reported);
    }
    return out;
  }
};

inline std::array<std::uint8_t, 16> NaaFor(std::uint64_t lun, std::uint8_t salt = 0) {
  std::array<std::uint8_t, 16> naa{0x60, 0x01, 0x40, 0x50, salt};
  naa[14] = static_cast<std::uint8_t>(lun >> 8);
  naa[15] = static_cast<std::uint8_t>(lun);
  return naa;
}

// Sends one command on a nexus that answers inline (the array) and returns once it has.
inline void RunInline(ScsiTransport& nexus, std::uint64_t lun, ScsiCommand& command) {
  bool done = false;
  command.OnFinish([](ScsiCommand&, void* arg) { *static_cast<bool*>(arg) = true; }, &done);
  nexus.Submit(lun, command);
  ASSERT_TRUE(done) << "the array answers inline";
}

// Consumes every pending unit attention of (nexus, lun) with REQUEST SENSE, so that command counts stay exact.
inline void ClearUnitAttentions(ScsiTransport& nexus, std::uint64_t lun) {
  for (int i = 0; i < 16; ++i) {
    std::vector<std::byte> data(252);
    ScsiCommand c;
    c.SetCdb(spec::RequestSenseCdb::Make(static_cast<std::uint8_t>(data.size())));
    c.direction = DataDirection::kFromDevice;
    c.data = data;
    RunInline(nexus, lun, c);
    const auto sense = spec::ParseSense(c.received());
    if (!sense || sense->code.key != spec::SenseKey::kUnitAttention) return;
  }
  ADD_FAILURE() << "unit attentions never ran out";
}

// A decorator that lets the device answer at once but holds the answer until Release: an RTPG "in flight".
// Threading: the test thread only.
class GatedTransport final : public ScsiTransport {
 public:
  explicit GatedTransport(ScsiTransport& inner) : inner_(inner) {}

  void Submit(std::uint64_t lun, ScsiCommand& command) override {
    if (!closed_) {
      inner_.Submit(lun, command);
      return;
    }
    held_.push_back({&command, command.ExchangeHook({&GatedTransport::Hold, this})});
    inner_.Submit(lun, command);
  }

  void Close() { closed_ = true; }
  // Opens the gate and hands every held answer back to its submitter.
  void Release() {
    closed_ = false;
    for (auto& [command, hook] : std::exchange(held_, {})) {
      command->ExchangeHook(hook);
      command->Finish();
    }
  }
  [[nodiscard]] std::size_t held() const { return held_.size(); }

 private:
  static void Hold(ScsiCommand&, void*) {}

  ScsiTransport& inner_;
  bool closed_ = false;
  std::vector<std::pair<ScsiCommand*, ScsiCommand::Hook>> held_;
};

// The LIO lab layout by default: group 10 active/optimized (preferred) behind port 1, group 20 active/non-optimized
// behind port 2.
class AluaFixture : public ::testing::Test {
 protected:
  void MakeArray(fake::ArrayConfig config = {}, std::vector<fake::PortGroupConfig> groups = DefaultGroups(),
                 std::uint64_t luns = 1) {
    auto created = fake::Array::Create(std::move(config), clock_);
    ASSERT_TRUE(created.has_value());
    array_ = std::move(*created);
    for (auto& group : groups) ASSERT_TRUE(array_->AddPortGroup(std::move(group)).has_value());
    for (std::uint64_t lun = 0; lun < luns; ++lun) {
      fake::LogicalUnitConfig lu;
      lu.lun = lun;
      lu.blocks = 64;
      lu.naa = NaaFor(lun);
      lu.serial = "alua" + std::to_string(lun);
      ASSERT_TRUE(array_->AddLogicalUnit(std::move(lu)).has_value());
    }
  }

  static std::vector<fake::PortGroupConfig> DefaultGroups() {
    return {{10, AluaState::kActiveOptimized, true, {1}}, {20, AluaState::kActiveNonOptimized, false, {2}}};
  }

  ScsiTransport& Connect(std::uint16_t relative_port, const std::string& initiator = "iqn.2026-11.io.mpath:host") {
    auto transport = array_->Connect(initiator, relative_port);
    EXPECT_TRUE(transport.has_value());
    nexuses_.push_back(std::move(*transport));
    return *nexuses_.back();
  }

  void MakeEngine(AluaOptions options = {}) {
    auto created = AluaEngine::Create(executor_, options, recorder_.Callbacks());
    ASSERT_TRUE(created.has_value()) << created.error().ToString();
    engine_ = std::move(*created);
  }

  void AddPath(PathKey key, ScsiTransport& nexus, std::uint64_t lun, std::uint16_t port, std::uint16_t group) {
    auto added = engine_->AddPath({key, &nexus, lun, array_->config().target_name, port, group});
    ASSERT_TRUE(added.has_value()) << added.error().ToString();
  }

  // Records the PARAMETER DATA FORMAT and ALLOCATION LENGTH of every RTPG, then lets the array answer it.
  void RecordRtpgs() {
    array_->SetHandler(kRtpgOpcode, [this](fake::CommandContext& context) {
      const auto cdb = wire::LoadPadded<spec::ReportTargetPortGroupsCdb>(
          std::as_bytes(std::span<const std::uint8_t>(context.command.cdb.data(), context.command.cdb_length)));
      formats_.push_back(cdb.parameter_data_format());
      allocations_.push_back(cdb.allocation_length.value());
      context.array.DefaultHandler(context);
    });
  }

  [[nodiscard]] std::uint64_t Rtpgs() const { return array_->CommandCount(kRtpgOpcode); }
  [[nodiscard]] Reported Latest(PathKey key) const {
    auto it = recorder_.latest.find(key);
    return it == recorder_.latest.end() ? Reported{AccessState::kPersistentLoss, false} : it->second;
  }

  // Declared first so that it outlives everything that reads it.
  ManualClock clock_;
  mpath::testing::ManualExecutor executor_{clock_};
  std::unique_ptr<fake::Array> array_;
  std::vector<std::unique_ptr<ScsiTransport>> nexuses_;
  Recorder recorder_;
  std::unique_ptr<AluaEngine> engine_;
  std::vector<std::uint8_t> formats_;
  std::vector<std::uint32_t> allocations_;
};

inline constexpr std::uint8_t kExtended = static_cast<std::uint8_t>(spec::RtpgFormat::kExtended);
inline constexpr std::uint8_t kLengthOnly = static_cast<std::uint8_t>(spec::RtpgFormat::kLengthOnly);

}  // namespace mpath::scsi::alua_testing
