// The PR coordinator against the simulated SAN: one LU behind four target ports in two port groups, reached by
// four I_T nexuses from one initiator port (the paths of one head), plus nexuses the coordinator does not own (an
// observer that checks the array's own view, another host, a second HBA). Everything the array answers is real
// PERSISTENT RESERVE and READ bytes; time and tasks move only through ManualClock and ManualExecutor.
#include "mpath/scsi/pr_coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/scsi/fake/array.h"
#include "mpath/scsi/raw_status.h"
#include "mpath/scsi/spec/sbc_cdb.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::scsi {
namespace {

using namespace std::chrono_literals;
using spec::PrInServiceAction;
using spec::PrOutServiceAction;
using spec::PrType;
using spec::SenseKey;
namespace asc = spec::asc;

constexpr std::uint64_t kLun = 0;
constexpr std::uint32_t kBlockSize = 512;
constexpr std::uint64_t kKey = 0x1234'5678'9ABC'DEF0;
constexpr std::uint64_t kForeignKey = 0xF0F0'0000'0000'0001;
constexpr std::uint8_t kPrIn = spec::op::kPersistentReserveIn;
constexpr std::uint8_t kPrOut = spec::op::kPersistentReserveOut;
constexpr auto kEaRo = PrType::kExclusiveAccessRegistrantsOnly;

const std::string kHost = "iqn.2026-11.io.mpath:host-a,i,0x00023d000001";
const std::string kSecondHba = "iqn.2026-11.io.mpath:host-a,i,0x00023d000002";
const std::string kForeignHost = "iqn.2026-11.io.mpath:host-b,i,0x00023d000001";
const std::string kObserver = "iqn.2026-11.io.mpath:observer,i,0x00023d000001";

template <wire::WireStruct T>
void Append(std::vector<std::byte>& out, const T& value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

// One command's answer, as the initiator saw it.
struct Io {
  Delivery delivery = Delivery::kDelivered;
  std::uint8_t status = 0xFF;
  std::optional<spec::SenseCode> sense;
  std::vector<std::byte> data;  // the data-in bytes that arrived

  [[nodiscard]] bool good() const { return delivery == Delivery::kDelivered && status == 0x00; }
  [[nodiscard]] bool conflict() const { return delivery == Delivery::kDelivered && status == 0x18; }
  [[nodiscard]] bool unit_attention() const { return sense && sense->key == SenseKey::kUnitAttention; }
};

struct Events {
  std::vector<PrPathKey> ready;
  std::vector<PrPathKey> hold;
  std::vector<std::pair<PrPathKey, PrError>> register_failed;
  std::vector<PrPreemption> preempted;
  std::vector<std::pair<PrPathKey, spec::SenseCode>> unit_attentions;
};

class PrCoordinatorTest : public ::testing::Test {
 protected:
  // ATP_C of the array and the coordinator's options; the four head paths are connected, not yet added.
  void Build(bool all_target_ports, PrCoordinatorOptions options = {}) {
    auto san = sim::SimSan::Create({.clock = &clock_, .seed = 7});
    ASSERT_TRUE(san.has_value());
    san_ = std::move(*san);
    fake::ArrayConfig config;
    config.pr_all_target_ports = all_target_ports;
    auto array = san_->AddScsiArray("array0", config);
    ASSERT_TRUE(array.has_value()) << array.error().ToString();
    array_ = *array;
    ASSERT_TRUE(array_->AddPortGroup({.id = 10, .state = fake::AluaState::kActiveOptimized, .preferred = true,
                                      .relative_ports = {1, 2}}));
    ASSERT_TRUE(array_->AddPortGroup({.id = 20, .state = fake::AluaState::kActiveNonOptimized, .preferred = false,
                                      .relative_ports = {3, 4}}));
    fake::LogicalUnitConfig lu;
    lu.lun = kLun;
    lu.blocks = 256;
    lu.block_size = kBlockSize;
    lu.naa = {0x60, 0x01, 0x40, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
    lu.serial = "pr-disk0";
    ASSERT_TRUE(array_->AddLogicalUnit(lu));
    for (PrPathKey p = 1; p <= 4; ++p) Connect(p, kHost, static_cast<std::uint16_t>(p));
    observer_ = ConnectNamed("observer", kObserver, 1);

    PrCallbacks callbacks;
    callbacks.on_path_ready = [this](PrPathKey p) {
      events_.ready.push_back(p);
      if (on_ready_) on_ready_(p);
    };
    callbacks.on_path_hold = [this](PrPathKey p) { events_.hold.push_back(p); };
    callbacks.on_path_register_failed = [this](PrPathKey p, const PrError& e) {
      events_.register_failed.emplace_back(p, e);
    };
    callbacks.on_preempted = [this](const PrPreemption& p) { events_.preempted.push_back(p); };
    callbacks.on_unit_attention = [this](PrPathKey p, spec::SenseCode c) {
      events_.unit_attentions.emplace_back(p, c);
    };
    auto coordinator = PrCoordinator::Create(executor_, std::move(callbacks), options);
    ASSERT_TRUE(coordinator.has_value()) << coordinator.error().ToString();
    coordinator_ = std::move(*coordinator);
  }

  void TearDown() override {
    coordinator_.reset();
    executor_.RunUntilIdle();
  }

  ScsiTransport* ConnectNamed(const std::string& name, const std::string& initiator, std::uint16_t port) {
    auto transport = san_->ConnectScsi({.name = name, .array = "array0", .initiator_port = initiator,
                                        .relative_port = port});
    EXPECT_TRUE(transport.has_value()) << (transport ? "" : transport.error().ToString());
    return transport ? *transport : nullptr;
  }
  // Head path `p` ("p<p>") from `initiator` to target port `port`.
  void Connect(PrPathKey p, const std::string& initiator, std::uint16_t port) {
    paths_[p] = ConnectNamed("p" + std::to_string(p), initiator, port);
    nexus_[p] = PrNexusInfo{initiator, port};
  }
  void AddPath(PrPathKey p) { coordinator_->AddPath(p, *paths_.at(p), kLun, nexus_.at(p)); }
  void AddPaths(PrPathKey last = 4) {
    for (PrPathKey p = 1; p <= last; ++p) AddPath(p);
    executor_.RunUntilIdle();
  }
  // Takes the 29/00 every fresh nexus holds, for tests that count commands: an attempt answered with a unit
  // attention is counted too.
  void DrainUnitAttentions(PrPathKey last = 4) {
    for (PrPathKey p = 1; p <= last; ++p) {
      for (int i = 0; i < 8; ++i) {
        if (!Send(*paths_.at(p), spec::TestUnitReadyCdb::Make(), DataDirection::kNone, {}).unit_attention()) break;
      }
    }
  }
  sim::LinkFaults& Faults(PrPathKey p) { return **san_->Faults("p" + std::to_string(p)); }

  // Runs one coordinator operation to its callback.
  template <typename T, typename Start>
  PrResult<T> Await(Start start) {
    std::optional<PrResult<T>> result;
    start(PrCallback<T>([&result](PrResult<T>&& r) { result.emplace(std::move(r)); }));
    executor_.RunUntilIdle();
    if (!result) {
      ADD_FAILURE() << "the operation never called back";
      PrError e;
      e.message = "no callback";
      return std::unexpected(e);
    }
    return *std::move(result);
  }
  PrResult<> Register(std::uint64_t key = kKey) {
    return Await<void>([&](PrCallback<> done) { coordinator_->Register(key, {}, std::move(done)); });
  }
  PrResult<> Reserve(PrType type) {
    return Await<void>([&](PrCallback<> done) { coordinator_->Reserve(type, std::move(done)); });
  }

  template <wire::WireStruct Cdb>
  Io Send(ScsiTransport& transport, const Cdb& cdb, DataDirection direction, std::vector<std::byte> buffer) {
    ScsiCommand c;
    c.SetCdb(cdb);
    c.direction = direction;
    c.data = buffer;
    c.executor = &executor_;
    bool finished = false;
    c.OnFinish([](ScsiCommand&, void* arg) { *static_cast<bool*>(arg) = true; }, &finished);
    transport.Submit(kLun, c);
    if (!finished) executor_.RunUntilIdle();
    EXPECT_TRUE(finished);
    Io io;
    io.delivery = c.delivery;
    io.status = c.status;
    if (c.status == 0x02) {
      if (auto sense = spec::ParseSense(c.sense_bytes())) io.sense = sense->code;
    }
    auto received = c.received();
    io.data.assign(received.begin(), received.end());
    return io;
  }
  Io Read(ScsiTransport& transport, std::uint32_t lba) {
    return Send(transport, spec::Read10Cdb::Make(lba, 1), DataDirection::kFromDevice,
                std::vector<std::byte>(kBlockSize));
  }

  // One block read the way the head does it: a unit attention goes to the coordinator and is retried on the same
  // path; RESERVATION CONFLICT goes to the coordinator and up, never to another path.
  Io HeadRead(PrPathKey p, std::uint32_t lba) {
    Io io;
    for (int attempt = 0; attempt < 8; ++attempt) {
      io = Read(*paths_.at(p), lba);
      if (io.unit_attention()) {
        coordinator_->OnSense(p, *io.sense);
        continue;
      }
      if (io.conflict()) coordinator_->OnReservationConflict(p);
      break;
    }
    executor_.RunUntilIdle();
    return io;
  }

  // PERSISTENT RESERVE IN/OUT sent by hand (not through the coordinator), unit attentions retried.
  Io RawPrIn(ScsiTransport& transport, PrInServiceAction action, std::uint16_t allocation = 4096) {
    Io io;
    for (int attempt = 0; attempt < 8; ++attempt) {
      io = Send(transport, spec::PersistentReserveInCdb::Make(action, allocation), DataDirection::kFromDevice,
                std::vector<std::byte>(allocation));
      if (!io.unit_attention()) break;
    }
    return io;
  }
  Io RawPrOut(ScsiTransport& transport, PrOutServiceAction action, std::uint64_t key, std::uint64_t sa_key,
              PrType type = PrType::kWriteExclusive) {
    std::vector<std::byte> list;
    Append(list, spec::PrOutParameterList::Make(key, sa_key));
    Io io;
    for (int attempt = 0; attempt < 8; ++attempt) {
      io = Send(transport, spec::PersistentReserveOutCdb::Make(action, 24, type), DataDirection::kToDevice, list);
      if (!io.unit_attention()) break;
    }
    return io;
  }
  // The array's own view, from a nexus the coordinator does not know.
  std::vector<std::uint64_t> ObservedKeys() {
    Io io = RawPrIn(*observer_, PrInServiceAction::kReadKeys);
    EXPECT_TRUE(io.good());
    auto keys = spec::ParseReadKeys(io.data);
    EXPECT_TRUE(keys && keys->complete());
    return keys ? keys->keys : std::vector<std::uint64_t>{};
  }
  spec::PrFullStatus ObservedFullStatus() {
    Io io = RawPrIn(*observer_, PrInServiceAction::kReadFullStatus);
    EXPECT_TRUE(io.good());
    auto status = spec::ParseReadFullStatus(io.data);
    EXPECT_TRUE(status && status->complete());
    return status ? *status : spec::PrFullStatus{};
  }
  std::optional<spec::PrHeldReservation> ObservedReservation() {
    Io io = RawPrIn(*observer_, PrInServiceAction::kReadReservation);
    EXPECT_TRUE(io.good());
    auto report = spec::ParseReadReservation(io.data);
    EXPECT_TRUE(report.has_value());
    return report ? report->reservation : std::nullopt;
  }
  PrPathStatus PathStatus(PrPathKey p) {
    for (const PrPathStatus& s : coordinator_->Snapshot().paths) {
      if (s.path == p) return s;
    }
    ADD_FAILURE() << "no path " << p;
    return {};
  }

  ManualClock clock_;
  testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Array* array_ = nullptr;
  std::map<PrPathKey, ScsiTransport*> paths_;
  std::map<PrPathKey, PrNexusInfo> nexus_;
  ScsiTransport* observer_ = nullptr;
  Events events_;
  std::function<void(PrPathKey)> on_ready_;  // runs inside on_path_ready, as the head's reaction would
  std::unique_ptr<PrCoordinator> coordinator_;
};

// --- The scenario: four paths, round-robin, EXCLUSIVE ACCESS - REGISTRANTS ONLY, then another host.

class PrScenarioTest : public PrCoordinatorTest, public ::testing::WithParamInterface<bool> {};

TEST_P(PrScenarioTest, FourPathsReadUntilAnotherHostPreemptsThenConflictEverywhere) {
  Build(/*all_target_ports=*/GetParam());
  AddPaths();
  EXPECT_EQ(events_.ready, (std::vector<PrPathKey>{1, 2, 3, 4})) << "nothing registered: ready at once";
  ASSERT_TRUE(Register()) << Register().error().ToString();
  auto reserved = Reserve(kEaRo);
  ASSERT_TRUE(reserved) << reserved.error().ToString();
  PrSnapshot snapshot = coordinator_->Snapshot();
  EXPECT_EQ(snapshot.state, PrState::kRegistered);
  EXPECT_EQ(snapshot.reservation, kEaRo);
  EXPECT_EQ(snapshot.all_target_ports, GetParam());
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>(GetParam() ? 1 : 4, kKey));

  std::map<PrPathKey, int> good;
  for (std::uint32_t i = 0; i < 100; ++i) {
    const PrPathKey p = 1 + i % 4;
    Io io = HeadRead(p, i);
    EXPECT_TRUE(io.good()) << "read " << i << " on path " << p << " status " << int(io.status);
    if (io.good()) ++good[p];
  }
  EXPECT_EQ(good, (std::map<PrPathKey, int>{{1, 25}, {2, 25}, {3, 25}, {4, 25}}));
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered);

  ASSERT_TRUE(array_->ForeignPreempt(kLun, kForeignHost, kForeignKey, static_cast<std::uint8_t>(kEaRo)));
  const std::uint64_t pr_out_before = array_->CommandCount(kPrOut);
  std::map<PrPathKey, int> conflicts;
  for (std::uint32_t i = 0; i < 100; ++i) {
    const PrPathKey p = 1 + i % 4;
    Io io = HeadRead(p, i);
    EXPECT_TRUE(io.conflict()) << "read " << i << " on path " << p << " status " << int(io.status);
    if (io.conflict()) ++conflicts[p];
  }
  EXPECT_EQ(conflicts, (std::map<PrPathKey, int>{{1, 25}, {2, 25}, {3, 25}, {4, 25}}));

  snapshot = coordinator_->Snapshot();
  EXPECT_EQ(snapshot.state, PrState::kPreempted);
  EXPECT_FALSE(snapshot.reservation.has_value());
  ASSERT_EQ(events_.preempted.size(), 1u);
  const PrPreemption& preemption = events_.preempted[0];
  EXPECT_EQ(preemption.reported_by, 1u) << "the first path to read after the takeover";
  EXPECT_EQ(preemption.unit_attention, asc::kRegistrationsPreempted);
  EXPECT_EQ(preemption.keys, std::vector<std::uint64_t>{kForeignKey});
  ASSERT_TRUE(preemption.reservation.has_value());
  EXPECT_EQ(preemption.reservation->key, kForeignKey);
  EXPECT_EQ(preemption.reservation->type, static_cast<std::uint8_t>(kEaRo));

  // Not fought: paths that fail, return or appear are not registered again, and nothing else is sent.
  coordinator_->PathFailed(2);
  coordinator_->PathRestored(2);
  Connect(5, kSecondHba, 4);
  AddPath(5);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kPrOut), pr_out_before);
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>{kForeignKey});
  EXPECT_TRUE(PathStatus(5).ready);
  EXPECT_TRUE(HeadRead(5, 0).conflict());
  auto reserve = Reserve(kEaRo);
  ASSERT_FALSE(reserve);
  EXPECT_EQ(reserve.error().code, Errc::kReservationConflict);
  EXPECT_EQ(array_->CommandCount(kPrOut), pr_out_before);
}

INSTANTIATE_TEST_SUITE_P(AllTargetPortsOrEachPath, PrScenarioTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "AllTargetPorts" : "EachPath";
                         });

// The array does enforce registration per I_T nexus: a nexus the coordinator was not given reads nothing.
TEST_F(PrCoordinatorTest, ANexusLeftOutOfRegistrationConflicts) {
  Build(/*all_target_ports=*/false);
  AddPaths(3);
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(kEaRo));
  Io io = Read(*paths_[4], 0);
  if (io.unit_attention()) io = Read(*paths_[4], 0);
  EXPECT_TRUE(io.conflict());
  EXPECT_TRUE(HeadRead(3, 0).good());
}

// --- Registration.

TEST_F(PrCoordinatorTest, RegistersOnceWithAllTargetPortsWhenTheArraySaysAtpC) {
  Build(/*all_target_ports=*/true);
  AddPaths();
  ASSERT_TRUE(Register());
  EXPECT_EQ(array_->CommandCount(kPrOut), 1u) << "one REGISTER covers every target port of the initiator port";
  spec::PrFullStatus status = ObservedFullStatus();
  ASSERT_EQ(status.entries.size(), 1u);
  EXPECT_TRUE(status.entries[0].all_target_ports);
  EXPECT_EQ(status.entries[0].key, kKey);
  EXPECT_EQ(status.entries[0].initiator_port, kHost);
  PrSnapshot snapshot = coordinator_->Snapshot();
  EXPECT_TRUE(snapshot.all_target_ports);
  for (const PrPathStatus& s : snapshot.paths) EXPECT_TRUE(s.registered && s.ready) << "path " << s.path;

  // A second HBA is another initiator port: ALL_TG_PT of the first does not cover it.
  Connect(5, kSecondHba, 2);
  AddPath(5);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kPrOut), 2u);
  status = ObservedFullStatus();
  ASSERT_EQ(status.entries.size(), 2u);
  EXPECT_EQ(status.entries[1].initiator_port, kSecondHba);
  EXPECT_FALSE(status.entries[1].all_target_ports);
  EXPECT_EQ(status.entries[1].relative_target_port, 2);
  EXPECT_TRUE(PathStatus(5).ready);
}

TEST_F(PrCoordinatorTest, RegistersEveryPathWhenTheArrayHasNoAtpC) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  DrainUnitAttentions();
  ASSERT_TRUE(Register());
  EXPECT_EQ(array_->CommandCount(kPrOut), 4u);
  spec::PrFullStatus status = ObservedFullStatus();
  ASSERT_EQ(status.entries.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_FALSE(status.entries[i].all_target_ports);
    EXPECT_EQ(status.entries[i].key, kKey);
    EXPECT_EQ(status.entries[i].initiator_port, kHost);
    EXPECT_EQ(status.entries[i].relative_target_port, i + 1);
  }
  EXPECT_FALSE(coordinator_->Snapshot().all_target_ports);
}

TEST_F(PrCoordinatorTest, PathsWhoseInitiatorIsUnknownAreRegisteredThemselves) {
  Build(/*all_target_ports=*/true);
  coordinator_->AddPath(1, *paths_[1], kLun, nexus_[1]);
  for (PrPathKey p = 2; p <= 4; ++p) coordinator_->AddPath(p, *paths_[p], kLun);  // no PrNexusInfo
  executor_.RunUntilIdle();
  DrainUnitAttentions();
  ASSERT_TRUE(Register());
  EXPECT_EQ(array_->CommandCount(kPrOut), 4u) << "coverage could not be proven for paths 2-4";
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>{kKey}) << "registering again only rewrote the same record";
}

TEST_F(PrCoordinatorTest, RegisteringTheSameKeyAgainIsIdempotentAndAnotherKeyIsRefused) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Register());
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>(4, kKey));
  auto other = Register(0x77);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::kAlreadyExists);
  auto zero = Register(0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, Errc::kInvalidArgument);
}

TEST_F(PrCoordinatorTest, AptplRegistrationsSurviveAPowerCycle) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  auto registered =
      Await<void>([&](PrCallback<> done) { coordinator_->Register(kKey, {.aptpl = true}, std::move(done)); });
  ASSERT_TRUE(registered) << registered.error().ToString();
  auto caps = Await<spec::PrReportCapabilitiesData>(
      [&](PrCallback<spec::PrReportCapabilitiesData> done) { coordinator_->ReportCapabilities(std::move(done)); });
  ASSERT_TRUE(caps);
  EXPECT_TRUE(caps->ptpl_a());
  array_->PowerCycle();
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>(4, kKey));
}

TEST_F(PrCoordinatorTest, ALinkDownPathRollsTheRegistrationBack) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  Faults(3).SetLinkDown(true);
  auto result = Register();
  ASSERT_FALSE(result);
  const PrError& e = result.error();
  EXPECT_EQ(e.code, Errc::kPathError);
  ASSERT_TRUE(e.path.has_value());
  EXPECT_EQ(*e.path, 3u);
  EXPECT_EQ(e.delivery, Delivery::kLinkDown);
  ASSERT_TRUE(DecodeRawStatus(e.raw).has_value());
  EXPECT_EQ(DecodeRawStatus(e.raw)->delivery, Delivery::kLinkDown);
  EXPECT_NE(e.message.find("rolled back 2 registration(s)"), std::string::npos) << e.message;
  EXPECT_TRUE(ObservedKeys().empty()) << "paths 1 and 2 were unregistered again";
  PrSnapshot snapshot = coordinator_->Snapshot();
  EXPECT_EQ(snapshot.state, PrState::kUnregistered);
  for (const PrPathStatus& s : snapshot.paths) EXPECT_FALSE(s.registered);
}

TEST_F(PrCoordinatorTest, ARefusedRegisterRollsBackAndCarriesTheTargetsSense) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  DrainUnitAttentions();
  int registers = 0;
  array_->SetHandler(kPrOut, [&registers](fake::CommandContext& context) {
    const auto action = static_cast<PrOutServiceAction>(context.command.cdb[1] & 0x1F);
    if (action == PrOutServiceAction::kRegisterAndIgnoreExistingKey && ++registers == 3) {
      spec::SetCheckCondition(context.command, spec::SenseFormat::kFixed, asc::kInsufficientRegistrationResources);
      return;
    }
    context.array.DefaultHandler(context);
  });
  auto result = Register();
  array_->SetHandler(kPrOut, {});
  ASSERT_FALSE(result);
  const PrError& e = result.error();
  EXPECT_EQ(e.path, std::optional<PrPathKey>(3));
  EXPECT_EQ(e.status, 0x02);
  EXPECT_EQ(e.sense, asc::kInsufficientRegistrationResources);
  ASSERT_GE(e.raw_sense().size(), 14u);
  EXPECT_EQ(e.raw_sense()[12], 0x55);
  Error core = e.ToError();
  EXPECT_EQ(core.code(), Errc::kInvalidArgument);
  std::optional<ScsiOutcome> outcome = DecodeRawStatus(core.raw());
  ASSERT_TRUE(outcome.has_value()) << "the personality's own RawStatus encoding";
  EXPECT_TRUE(outcome->check_condition());
  EXPECT_TRUE(outcome->sense_parsed);
  EXPECT_EQ(outcome->sense, asc::kInsufficientRegistrationResources);
  EXPECT_EQ(outcome->opcode, kPrOut);
  EXPECT_TRUE(ObservedKeys().empty());
}

TEST_F(PrCoordinatorTest, AllTargetPortsRegistrationIsRolledBackWhenAnotherInitiatorPortFails) {
  Build(/*all_target_ports=*/true);
  AddPaths();
  Connect(5, kSecondHba, 3);
  AddPath(5);
  executor_.RunUntilIdle();
  Faults(5).SetLinkDown(true);
  auto result = Register();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().path, std::optional<PrPathKey>(5));
  EXPECT_TRUE(ObservedKeys().empty());
  EXPECT_TRUE(ObservedFullStatus().entries.empty());
}

TEST_F(PrCoordinatorTest, ALatePathIsRegisteredBeforeItIsReady) {
  Build(/*all_target_ports=*/false);
  AddPaths(3);
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(kEaRo));
  const std::uint64_t pr_out = array_->CommandCount(kPrOut);
  events_.ready.clear();
  // The head sends I/O the moment it hears the path is ready: that first READ must find the nexus registered.
  std::optional<Io> first_read;
  std::optional<std::size_t> keys_when_ready;
  on_ready_ = [&](PrPathKey p) {
    if (p != 4) return;
    keys_when_ready = ObservedKeys().size();
    first_read = Read(*paths_[4], 7);
  };
  AddPath(4);
  EXPECT_TRUE(events_.ready.empty()) << "nothing runs before the executor does";
  executor_.RunUntilIdle();
  ASSERT_EQ(events_.ready, std::vector<PrPathKey>{4});
  EXPECT_EQ(keys_when_ready, 4u);
  EXPECT_EQ(array_->CommandCount(kPrOut), pr_out + 1);
  ASSERT_TRUE(first_read.has_value());
  EXPECT_TRUE(first_read->good()) << "status " << int(first_read->status) << " (29/00 was taken by the registration)";
}

// --- Dead holder.

TEST_F(PrCoordinatorTest, ADeadHolderHandsTheReservationToALivePath) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(kEaRo));
  ASSERT_EQ(coordinator_->Snapshot().holder, std::optional<PrPathKey>(1));

  Faults(1).SetLinkDown(true);
  coordinator_->PathFailed(1);
  executor_.RunUntilIdle();

  PrSnapshot snapshot = coordinator_->Snapshot();
  EXPECT_EQ(snapshot.state, PrState::kRegistered);
  ASSERT_TRUE(snapshot.holder.has_value());
  const PrPathKey holder = *snapshot.holder;
  EXPECT_NE(holder, 1u);
  EXPECT_FALSE(snapshot.holder_lost);
  EXPECT_EQ(snapshot.reservation, kEaRo);
  // The self-preempt removed the other paths' registrations: they were held and registered again.
  std::vector<PrPathKey> others;
  for (PrPathKey p = 2; p <= 4; ++p) {
    if (p != holder) others.push_back(p);
  }
  EXPECT_EQ(events_.hold, others);
  EXPECT_TRUE(events_.register_failed.empty());

  std::optional<spec::PrHeldReservation> reservation = ObservedReservation();
  ASSERT_TRUE(reservation.has_value());
  EXPECT_EQ(reservation->key, kKey);
  EXPECT_EQ(reservation->type, static_cast<std::uint8_t>(kEaRo));
  spec::PrFullStatus status = ObservedFullStatus();
  ASSERT_EQ(status.entries.size(), 3u) << "the dead path's registration went with the preempt";
  int holders = 0;
  for (const spec::PrFullStatusEntry& entry : status.entries) {
    EXPECT_EQ(entry.key, kKey);
    EXPECT_NE(entry.relative_target_port, 1);
    if (entry.holder) {
      ++holders;
      EXPECT_EQ(entry.relative_target_port, holder) << "the holder is the live nexus the coordinator names";
    }
  }
  EXPECT_EQ(holders, 1);
  EXPECT_EQ(ObservedKeys().size(), 3u);
  for (PrPathKey p = 2; p <= 4; ++p) {
    EXPECT_TRUE(PathStatus(p).ready);
    EXPECT_TRUE(HeadRead(p, p).good()) << "path " << p;
  }
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered) << "our own preempt's 2A/05 is not a takeover";
  EXPECT_TRUE(events_.preempted.empty());

  // The old holder returns: registered before it is ready again.
  events_.ready.clear();
  Faults(1).SetLinkDown(false);
  coordinator_->PathRestored(1);
  executor_.RunUntilIdle();
  EXPECT_EQ(events_.ready, std::vector<PrPathKey>{1});
  EXPECT_EQ(ObservedKeys().size(), 4u);
  EXPECT_TRUE(Read(*paths_[1], 3).good());
  EXPECT_EQ(coordinator_->Snapshot().holder, std::optional<PrPathKey>(holder));
}

TEST_F(PrCoordinatorTest, ADeadHolderUnderAllTargetPortsMovesWithOnePreempt) {
  Build(/*all_target_ports=*/true);
  AddPaths();
  ASSERT_TRUE(Register());
  // EXCLUSIVE ACCESS: only the holder nexus may read, which shows which nexus holds it.
  ASSERT_TRUE(Reserve(PrType::kExclusiveAccess));
  EXPECT_TRUE(HeadRead(1, 0).good());
  EXPECT_TRUE(HeadRead(2, 0).conflict());
  const std::uint64_t pr_out = array_->CommandCount(kPrOut);

  Faults(1).SetLinkDown(true);
  coordinator_->PathFailed(1);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kPrOut), pr_out + 1) << "the ALL_TG_PT registration survives the preempt";
  EXPECT_TRUE(events_.hold.empty());
  ASSERT_EQ(coordinator_->Snapshot().holder, std::optional<PrPathKey>(2));
  EXPECT_TRUE(HeadRead(2, 0).good());
  EXPECT_TRUE(HeadRead(3, 0).conflict());
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered);
}

TEST_F(PrCoordinatorTest, AnAllRegistrantsReservationIsNotMoved) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(PrType::kExclusiveAccessAllRegistrants));
  const std::uint64_t pr_out = array_->CommandCount(kPrOut);
  Faults(1).SetLinkDown(true);
  coordinator_->PathFailed(1);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kPrOut), pr_out);
  EXPECT_TRUE(HeadRead(2, 0).good());
}

TEST_F(PrCoordinatorTest, ReleaseThroughADeadHolderMovesTheReservationFirst) {
  Build(/*all_target_ports=*/false, PrCoordinatorOptions{});
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(kEaRo));
  Faults(1).SetLinkDown(true);
  // The link is down but nobody told the coordinator: Release finds the holder unreachable only by trying, so tell it.
  coordinator_->PathFailed(1);
  auto released = Await<void>([&](PrCallback<> done) { coordinator_->Release(kEaRo, std::move(done)); });
  ASSERT_TRUE(released) << released.error().ToString();
  EXPECT_FALSE(ObservedReservation().has_value());
  EXPECT_FALSE(coordinator_->Snapshot().reservation.has_value());
}

// --- Head operations.

TEST_F(PrCoordinatorTest, ReserveReadReleaseClearRoundTrips) {
  Build(/*all_target_ports=*/true);
  AddPaths();
  ASSERT_TRUE(Register());
  auto caps = Await<spec::PrReportCapabilitiesData>(
      [&](PrCallback<spec::PrReportCapabilitiesData> done) { coordinator_->ReportCapabilities(std::move(done)); });
  ASSERT_TRUE(caps);
  EXPECT_TRUE(caps->atp_c());
  EXPECT_TRUE(caps->supports(kEaRo));

  ASSERT_TRUE(Reserve(PrType::kWriteExclusive));
  auto reservation = Await<spec::PrReservationReport>(
      [&](PrCallback<spec::PrReservationReport> done) { coordinator_->ReadReservation(std::move(done)); });
  ASSERT_TRUE(reservation && reservation->reservation);
  EXPECT_EQ(reservation->reservation->key, kKey);
  EXPECT_EQ(reservation->reservation->type, static_cast<std::uint8_t>(PrType::kWriteExclusive));
  auto keys =
      Await<spec::PrKeyList>([&](PrCallback<spec::PrKeyList> done) { coordinator_->ReadKeys(std::move(done)); });
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->keys, std::vector<std::uint64_t>{kKey});
  auto full = Await<spec::PrFullStatus>(
      [&](PrCallback<spec::PrFullStatus> done) { coordinator_->ReadFullStatus(std::move(done)); });
  ASSERT_TRUE(full);
  ASSERT_EQ(full->entries.size(), 1u);
  EXPECT_TRUE(full->entries[0].holder);

  auto released =
      Await<void>([&](PrCallback<> done) { coordinator_->Release(PrType::kWriteExclusive, std::move(done)); });
  ASSERT_TRUE(released);
  EXPECT_FALSE(ObservedReservation().has_value());
  EXPECT_FALSE(coordinator_->Snapshot().reservation.has_value());

  ASSERT_TRUE(Reserve(kEaRo));
  auto cleared = Await<void>([&](PrCallback<> done) { coordinator_->Clear(std::move(done)); });
  ASSERT_TRUE(cleared);
  EXPECT_TRUE(ObservedKeys().empty());
  EXPECT_FALSE(ObservedReservation().has_value());
  EXPECT_EQ(coordinator_->state(), PrState::kUnregistered);
  // Our other paths' 2A/03 from the CLEAR is not a takeover.
  EXPECT_TRUE(HeadRead(3, 0).good());
  EXPECT_TRUE(events_.preempted.empty());

  ASSERT_TRUE(Register());
  auto unregistered = Await<void>([&](PrCallback<> done) { coordinator_->Unregister(std::move(done)); });
  ASSERT_TRUE(unregistered);
  EXPECT_TRUE(ObservedKeys().empty());
  EXPECT_EQ(coordinator_->state(), PrState::kUnregistered);
}

TEST_F(PrCoordinatorTest, UnregisterReachesTheRegistrationOfADeadPath) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(kEaRo));
  Faults(4).SetLinkDown(true);
  coordinator_->PathFailed(4);
  executor_.RunUntilIdle();
  auto unregistered = Await<void>([&](PrCallback<> done) { coordinator_->Unregister(std::move(done)); });
  ASSERT_TRUE(unregistered) << unregistered.error().ToString();
  EXPECT_TRUE(ObservedKeys().empty());
  EXPECT_FALSE(ObservedReservation().has_value());
}

TEST_F(PrCoordinatorTest, ReservationConflictIsReturnedNotRetriedElsewhere) {
  Build(/*all_target_ports=*/false);
  ScsiTransport* foreign = ConnectNamed("foreign", kForeignHost, 3);
  ASSERT_TRUE(RawPrOut(*foreign, PrOutServiceAction::kRegister, 0, kForeignKey).good());
  ASSERT_TRUE(RawPrOut(*foreign, PrOutServiceAction::kReserve, kForeignKey, 0, PrType::kWriteExclusive).good());
  AddPaths();
  ASSERT_TRUE(Register());
  const std::uint64_t pr_out = array_->CommandCount(kPrOut);
  auto reserved = Reserve(PrType::kExclusiveAccess);
  ASSERT_FALSE(reserved);
  EXPECT_EQ(reserved.error().code, Errc::kReservationConflict);
  EXPECT_TRUE(reserved.error().IsReservationConflict());
  EXPECT_EQ(reserved.error().status, 0x18);
  EXPECT_EQ(array_->CommandCount(kPrOut), pr_out + 1) << "one RESERVE, on one path";

  auto preempted = Await<void>([&](PrCallback<> done) {
    coordinator_->Preempt(kForeignKey, PrType::kExclusiveAccess, PrPreemptMode::kPreemptAndAbort, std::move(done));
  });
  ASSERT_TRUE(preempted) << preempted.error().ToString();
  std::optional<spec::PrHeldReservation> reservation = ObservedReservation();
  ASSERT_TRUE(reservation.has_value());
  EXPECT_EQ(reservation->key, kKey);
  EXPECT_EQ(reservation->type, static_cast<std::uint8_t>(PrType::kExclusiveAccess));
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>(4, kKey));
  PrSnapshot snapshot = coordinator_->Snapshot();
  EXPECT_EQ(snapshot.reservation, PrType::kExclusiveAccess);
  ASSERT_TRUE(snapshot.holder.has_value());
  EXPECT_TRUE(HeadRead(*snapshot.holder, 0).good());
  Io foreign_read = Read(*foreign, 0);
  if (foreign_read.unit_attention()) foreign_read = Read(*foreign, 0);  // its 2A/05
  EXPECT_TRUE(foreign_read.conflict());
}

TEST_F(PrCoordinatorTest, OperationsNeedARegistration) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  auto reserved = Reserve(kEaRo);
  ASSERT_FALSE(reserved);
  EXPECT_EQ(reserved.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(array_->CommandCount(kPrOut), 0u);
}

TEST_F(PrCoordinatorTest, ASelfPreemptChangesTheTypeAndKeepsEveryPathRegistered) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(PrType::kWriteExclusive));
  auto preempted = Await<void>([&](PrCallback<> done) {
    coordinator_->Preempt(kKey, kEaRo, PrPreemptMode::kPreempt, std::move(done));
  });
  ASSERT_TRUE(preempted) << preempted.error().ToString();
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>(4, kKey));
  EXPECT_EQ(coordinator_->Snapshot().reservation, kEaRo);
  for (PrPathKey p = 1; p <= 4; ++p) EXPECT_TRUE(HeadRead(p, 0).good()) << "path " << p;
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered);
}

// --- What the I/O path reports.

TEST_F(PrCoordinatorTest, ReservationsReleasedUpdatesTheHeldReservation) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(kEaRo));
  ASSERT_EQ(coordinator_->Snapshot().holder, std::optional<PrPathKey>(1));
  // Released behind the coordinator's back (another tool on the same nexus): the others are told 2A/04.
  ASSERT_TRUE(RawPrOut(*paths_[1], PrOutServiceAction::kRelease, kKey, 0, kEaRo).good());
  EXPECT_TRUE(HeadRead(2, 0).good());
  EXPECT_FALSE(coordinator_->Snapshot().reservation.has_value());
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered);
}

TEST_F(PrCoordinatorTest, AConflictWhileOurKeyIsStillThereIsNotATakeover) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(PrType::kExclusiveAccess));  // only the holder may read
  const std::uint64_t pr_in = array_->CommandCount(kPrIn);
  EXPECT_TRUE(HeadRead(2, 0).conflict());
  EXPECT_GT(array_->CommandCount(kPrIn), pr_in) << "the conflict was checked with READ KEYS";
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered);
  EXPECT_TRUE(events_.preempted.empty());
  EXPECT_EQ(coordinator_->Snapshot().reservation, PrType::kExclusiveAccess);
}

// 2A/05 with our key still listed is one of our own preempts reaching the I/O path: the path gets its registration
// back and nothing is declared.
TEST_F(PrCoordinatorTest, RegistrationsPreemptedWhileOurKeyRemainsRegistersThePathAgain) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  ASSERT_TRUE(Reserve(kEaRo));
  ASSERT_TRUE(RawPrOut(*paths_[3], PrOutServiceAction::kRegisterAndIgnoreExistingKey, 0, 0).good());
  ASSERT_EQ(ObservedKeys().size(), 3u);
  ASSERT_TRUE(Read(*paths_[3], 0).conflict()) << "path 3 lost its registration (not reported)";
  coordinator_->OnSense(3, asc::kRegistrationsPreempted);
  executor_.RunUntilIdle();
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered);
  EXPECT_TRUE(events_.preempted.empty());
  EXPECT_EQ(ObservedKeys().size(), 4u);
  EXPECT_TRUE(HeadRead(3, 0).good());
  EXPECT_EQ(coordinator_->Snapshot().reservation, kEaRo);
}

TEST_F(PrCoordinatorTest, APreemptFoundWhileRegisteringALatePathStopsRegistration) {
  Build(/*all_target_ports=*/false);
  AddPaths(3);
  ASSERT_TRUE(Register());
  ASSERT_TRUE(array_->ForeignPreempt(kLun, kForeignHost, kForeignKey, static_cast<std::uint8_t>(kEaRo)));
  const std::uint64_t pr_out = array_->CommandCount(kPrOut);
  AddPath(4);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kPrOut), pr_out) << "path 4 is not registered for a preempted host";
  EXPECT_EQ(coordinator_->state(), PrState::kPreempted);
  ASSERT_EQ(events_.preempted.size(), 1u);
  EXPECT_FALSE(events_.preempted[0].unit_attention.has_value());
  EXPECT_TRUE(PathStatus(4).ready);
}

// --- Unit attentions and malformed answers.

TEST_F(PrCoordinatorTest, UnitAttentionsOnPrCommandsAreRetriedOnTheSamePathAndPassedOn) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  // Each fresh nexus answered its first PR command with 29/00, taken and retried there.
  int resets = 0;
  for (const auto& [path, code] : events_.unit_attentions) {
    if (code == asc::kPowerOnResetOrBusDeviceReset) ++resets;
  }
  EXPECT_EQ(resets, 4);
  array_->RaiseUnitAttentionEverywhere(asc::kAsymmetricAccessStateChanged);
  events_.unit_attentions.clear();
  auto keys =
      Await<spec::PrKeyList>([&](PrCallback<spec::PrKeyList> done) { coordinator_->ReadKeys(std::move(done)); });
  ASSERT_TRUE(keys);
  ASSERT_EQ(events_.unit_attentions.size(), 1u);
  EXPECT_EQ(events_.unit_attentions[0].second, asc::kAsymmetricAccessStateChanged);
}

TEST_F(PrCoordinatorTest, UnitAttentionRetriesAreBounded) {
  PrCoordinatorOptions options;
  options.unit_attention_retries = 3;
  Build(/*all_target_ports=*/false, options);
  AddPaths(1);
  array_->SetHandler(kPrIn, [](fake::CommandContext& context) {
    spec::SetCheckCondition(context.command, spec::SenseFormat::kDescriptor, asc::kPowerOnResetOrBusDeviceReset);
  });
  const std::uint64_t before = array_->CommandCount(kPrIn);
  auto keys =
      Await<spec::PrKeyList>([&](PrCallback<spec::PrKeyList> done) { coordinator_->ReadKeys(std::move(done)); });
  array_->SetHandler(kPrIn, {});
  ASSERT_FALSE(keys);
  EXPECT_EQ(array_->CommandCount(kPrIn), before + 4) << "the first try and three retries";
  EXPECT_EQ(keys.error().code, Errc::kBusy);
  EXPECT_EQ(keys.error().sense, asc::kPowerOnResetOrBusDeviceReset);
}

TEST_F(PrCoordinatorTest, ALongKeyListIsReadAgainAtItsFullLength) {
  PrCoordinatorOptions options;
  options.pr_in_allocation = 16;  // the header and one key
  Build(/*all_target_ports=*/false, options);
  AddPaths();
  ASSERT_TRUE(Register());
  const std::uint64_t before = array_->CommandCount(kPrIn);
  auto keys =
      Await<spec::PrKeyList>([&](PrCallback<spec::PrKeyList> done) { coordinator_->ReadKeys(std::move(done)); });
  ASSERT_TRUE(keys) << keys.error().ToString();
  EXPECT_EQ(keys->keys, std::vector<std::uint64_t>(4, kKey));
  EXPECT_EQ(array_->CommandCount(kPrIn), before + 2);
}

// A target's PR IN answer, written by hand.
struct MalformedCase {
  std::string name;
  PrInServiceAction action;
  std::vector<std::uint8_t> bytes;  // the data-in bytes sent
  std::string expected;             // part of the error message
};

std::vector<std::uint8_t> Header(std::uint32_t generation, std::uint32_t additional_length) {
  return {static_cast<std::uint8_t>(generation >> 24), static_cast<std::uint8_t>(generation >> 16),
          static_cast<std::uint8_t>(generation >> 8),  static_cast<std::uint8_t>(generation),
          static_cast<std::uint8_t>(additional_length >> 24), static_cast<std::uint8_t>(additional_length >> 16),
          static_cast<std::uint8_t>(additional_length >> 8),  static_cast<std::uint8_t>(additional_length)};
}
std::vector<std::uint8_t> Concat(std::vector<std::uint8_t> a, const std::vector<std::uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_F(PrCoordinatorTest, MalformedPrInDataFailsWithAClearError) {
  Build(/*all_target_ports=*/false);
  AddPaths(1);
  const std::vector<std::uint8_t> key(8, 0x11);
  std::vector<std::uint8_t> reservation_bad_type = Concat(Header(1, 16), std::vector<std::uint8_t>(16, 0));
  reservation_bad_type[8 + 13] = 0x02;  // TYPE 2 is obsolete
  std::vector<std::uint8_t> full_status_huge_tid = Concat(Header(1, 24), std::vector<std::uint8_t>(24, 0));
  full_status_huge_tid[8 + 20] = 0xFF;  // ADDITIONAL DESCRIPTOR LENGTH far beyond the data
  const std::vector<MalformedCase> cases = {
      {"keys shorter than the header", PrInServiceAction::kReadKeys, {0, 0, 0, 1, 0}, "fewer than its 8-byte header"},
      {"keys length not a multiple of 8", PrInServiceAction::kReadKeys,
       Concat(Header(1, 12), Concat(key, {0, 0, 0, 0})), "not a multiple of 8"},
      {"keys length beyond the data", PrInServiceAction::kReadKeys, Concat(Header(1, 64), key),
       "ADDITIONAL LENGTH 64 but 8 bytes of keys arrived"},
      {"reservation length 5", PrInServiceAction::kReadReservation, Concat(Header(1, 5), {0, 0, 0, 0, 0}),
       "neither 0 nor 16"},
      {"reservation descriptor cut", PrInServiceAction::kReadReservation, Concat(Header(1, 16), key),
       "only 16 bytes arrived"},
      {"reservation type", PrInServiceAction::kReadReservation, reservation_bad_type, "not a reservation type"},
      {"capabilities cut", PrInServiceAction::kReportCapabilities, {0, 8, 0}, "fewer than 8"},
      {"capabilities length", PrInServiceAction::kReportCapabilities, {0, 2, 0, 0, 0, 0, 0, 0}, "LENGTH 2"},
      {"full status transport id", PrInServiceAction::kReadFullStatus, full_status_huge_tid,
       "descriptors end after 0 bytes"},
  };
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    array_->SetHandler(kPrIn, [&c](fake::CommandContext& context) {
      ScsiCommand& command = context.command;
      const std::size_t n = std::min(c.bytes.size(), command.data.size());
      std::memcpy(command.data.data(), c.bytes.data(), n);
      command.residual = static_cast<std::uint32_t>(command.data.size() - n);
    });
    std::optional<PrError> error;
    auto capture = [&error](const auto& result) {
      if (!result) error = result.error();
    };
    switch (c.action) {
      case PrInServiceAction::kReadKeys:
        coordinator_->ReadKeys([&](const PrResult<spec::PrKeyList>& r) { capture(r); });
        break;
      case PrInServiceAction::kReadReservation:
        coordinator_->ReadReservation([&](const PrResult<spec::PrReservationReport>& r) { capture(r); });
        break;
      case PrInServiceAction::kReportCapabilities:
        coordinator_->ReportCapabilities([&](const PrResult<spec::PrReportCapabilitiesData>& r) { capture(r); });
        break;
      default:
        coordinator_->ReadFullStatus([&](const PrResult<spec::PrFullStatus>& r) { capture(r); });
        break;
    }
    executor_.RunUntilIdle();
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->code, Errc::kTargetError);
    EXPECT_NE(error->message.find("malformed"), std::string::npos) << error->message;
    EXPECT_NE(error->message.find(c.expected), std::string::npos) << error->message;
    EXPECT_EQ(error->path, std::optional<PrPathKey>(1));
  }
  array_->SetHandler(kPrIn, {});
}

TEST_F(PrCoordinatorTest, GarbageSenseFailsTheCommandWithoutACrash) {
  Build(/*all_target_ports=*/false);
  AddPaths(1);
  array_->SetHandler(kPrIn, [](fake::CommandContext& context) {
    ScsiCommand& command = context.command;
    command.status = 0x02;
    command.sense_length = 3;
    command.sense[0] = 0x12;  // not a sense response code
    command.sense[1] = 0x34;
    command.sense[2] = 0x56;
  });
  auto keys =
      Await<spec::PrKeyList>([&](PrCallback<spec::PrKeyList> done) { coordinator_->ReadKeys(std::move(done)); });
  array_->SetHandler(kPrIn, {});
  ASSERT_FALSE(keys);
  EXPECT_EQ(keys.error().code, Errc::kTargetError);
  EXPECT_NE(keys.error().message.find("unreadable sense"), std::string::npos) << keys.error().message;
  EXPECT_EQ(keys.error().raw_sense().size(), 3u);
}

TEST_F(PrCoordinatorTest, AMalformedCapabilitiesAnswerFallsBackToOneRegistrationPerPath) {
  Build(/*all_target_ports=*/true);
  AddPaths();
  DrainUnitAttentions();
  array_->SetHandler(kPrIn, [](fake::CommandContext& context) {
    if ((context.command.cdb[1] & 0x1F) == static_cast<std::uint8_t>(PrInServiceAction::kReportCapabilities)) {
      context.command.residual = static_cast<std::uint32_t>(context.command.data.size() - 1);  // one byte
      return;
    }
    context.array.DefaultHandler(context);
  });
  auto registered = Register();
  array_->SetHandler(kPrIn, {});
  ASSERT_TRUE(registered) << registered.error().ToString();
  EXPECT_EQ(array_->CommandCount(kPrOut), 4u);
  EXPECT_FALSE(coordinator_->Snapshot().all_target_ports);
}

// --- Paths and lifetime.

TEST_F(PrCoordinatorTest, RemovePathWaitsForTheCommandInFlight) {
  PrCoordinatorOptions options;
  options.command_timeout = 5s;
  Build(/*all_target_ports=*/false, options);
  AddPaths(2);
  Faults(1).SetHang(true);
  std::optional<PrResult<spec::PrKeyList>> keys;
  coordinator_->ReadKeys([&](PrResult<spec::PrKeyList>&& r) { keys.emplace(std::move(r)); });
  executor_.RunUntilIdle();
  bool released = false;
  coordinator_->RemovePath(1, [&] { released = true; });
  executor_.RunUntilIdle();
  EXPECT_FALSE(released) << "READ KEYS still hangs on path 1";
  EXPECT_FALSE(keys.has_value());
  executor_.Advance(6s);
  ASSERT_TRUE(keys.has_value());
  ASSERT_FALSE(*keys);
  EXPECT_EQ(keys->error().code, Errc::kTimedOut) << "a timeout may have executed: not retried on path 2";
  EXPECT_TRUE(released);
  EXPECT_EQ(coordinator_->Snapshot().paths.size(), 1u);
}

TEST_F(PrCoordinatorTest, AddingAPathTwiceIsRefused) {
  Build(/*all_target_ports=*/false);
  AddPaths(1);
  AddPath(1);
  executor_.RunUntilIdle();
  ASSERT_EQ(events_.register_failed.size(), 1u);
  EXPECT_EQ(events_.register_failed[0].second.code, Errc::kAlreadyExists);
}

TEST_F(PrCoordinatorTest, CreateRefusesAnAllocationThatCannotHoldAHeader) {
  ManualClock clock;
  testing::ManualExecutor executor(clock);
  PrCoordinatorOptions options;
  options.pr_in_allocation = 4;
  EXPECT_FALSE(PrCoordinator::Create(executor, {}, options).has_value());
}

// The I/O path reports from its own threads while the executor runs the coordinator.
TEST_F(PrCoordinatorTest, ReportsFromOtherThreadsAreSafe) {
  Build(/*all_target_ports=*/false);
  AddPaths();
  ASSERT_TRUE(Register());
  std::atomic<bool> stop{false};
  std::thread io([&] {
    for (int i = 0; i < 200; ++i) {
      coordinator_->OnSense(2, asc::kAsymmetricAccessStateChanged);
      coordinator_->OnReservationConflict(3);
      EXPECT_NE(coordinator_->state(), PrState::kPreempted);
    }
    stop = true;
  });
  while (!stop) executor_.RunUntilIdle();
  io.join();
  executor_.RunUntilIdle();
  EXPECT_EQ(coordinator_->state(), PrState::kRegistered);
  EXPECT_EQ(ObservedKeys(), std::vector<std::uint64_t>(4, kKey));
}

}  // namespace
}  // namespace mpath::scsi
