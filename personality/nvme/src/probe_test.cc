// The probes against the simulated subsystem: real SQEs answered with real Identify pages, namespace lists longer
// than a page, controllers that refuse CNS 03h or fail a command, data cut short or malformed by handler overrides,
// and link faults from the simulated SAN, all on a ManualClock.
#include "mpath/nvme/probe.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mpath/core/registry.h"
#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::nvme {
namespace {

using fake::CommandContext;
using fake::NamespaceConfig;
using fake::SubsystemConfig;
using spec::Cns;

constexpr std::uint8_t kIdentify = static_cast<std::uint8_t>(spec::AdminOpcode::kIdentify);
constexpr std::string_view kHostNqn = "nqn.2014-08.org.nvmexpress:uuid:host-under-test";
constexpr std::array<std::uint8_t, 16> kHostId = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                                  0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
constexpr std::array<std::uint8_t, 16> kNguid = {0x6b, 0x2f, 0x00, 0x11, 0x9a, 0x04, 0x47, 0x3c,
                                                 0x80, 0x5e, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc};
constexpr std::array<std::uint8_t, 8> kEui64 = {0x00, 0x0e, 0x1e, 0x09, 0x00, 0x00, 0x00, 0x2a};
constexpr std::array<std::uint8_t, 16> kUuid = {0xc0, 0xff, 0xee, 0x00, 0x12, 0x34, 0x45, 0x67,
                                                0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67};

// One Identify as the controller received it.
struct IdentifyCall {
  Cns cns;
  std::uint32_t nsid;
  friend bool operator==(const IdentifyCall&, const IdentifyCall&) = default;
};
std::ostream& operator<<(std::ostream& os, const IdentifyCall& c) {
  return os << "{CNS " << int(c.cns) << ", NSID " << c.nsid << "}";
}

// Records every Identify and checks what the probe promises of each command. `defer` makes it answer later: the
// command reaches the controller from a task on the executor, so no answer ever comes back inside Submit.
class Recorder final : public NvmeTransport {
 public:
  Recorder(NvmeTransport& inner, Executor& executor, bool defer, Nanos timeout)
      : inner_(inner), executor_(executor), defer_(defer), timeout_(timeout) {}
  void Submit(NvmeCommand& command) override {
    EXPECT_EQ(command.executor, &executor_);
    EXPECT_EQ(command.queue, QueueKind::kAdmin);
    EXPECT_EQ(command.direction, DataDirection::kFromController);
    EXPECT_EQ(command.timeout, timeout_);
    EXPECT_EQ(command.data.size(), spec::kIdentifyDataSize);
    if (command.sqe.opc == kIdentify) {
      const spec::IdentifyFields f = spec::DecodeIdentify(command.sqe);
      calls.push_back({f.cns, f.nsid});
    }
    if (!defer_) {
      inner_.Submit(command);
      return;
    }
    executor_.Post([this, &command] { inner_.Submit(command); });
  }
  std::vector<IdentifyCall> calls;

 private:
  NvmeTransport& inner_;
  Executor& executor_;
  const bool defer_;
  const Nanos timeout_;
};

template <typename T>
struct Outcome {
  int calls = 0;
  std::optional<Result<T>> result;
};

OptInPolicy Policy(MultipathMode mode) {
  OptInPolicy policy;
  policy.mode = mode;
  return policy;
}

class ProbeTest : public ::testing::Test {
 protected:
  ProbeTest() : executor_(clock_) {
    auto san = sim::SimSan::Create({.clock = &clock_, .seed = 5});
    EXPECT_TRUE(san) << san.error().ToString();
    san_ = std::move(*san);
  }

  fake::Subsystem& AddSubsystem(const std::string& name, SubsystemConfig config = {}) {
    auto subsystem = san_->AddNvmeSubsystem(name, std::move(config));
    EXPECT_TRUE(subsystem) << subsystem.error().ToString();
    EXPECT_TRUE((*subsystem)->AddPort(1));
    EXPECT_TRUE((*subsystem)->AddPort(2));
    return **subsystem;
  }
  static void AddNamespace(fake::Subsystem& subsystem, NamespaceConfig ns) {
    auto added = subsystem.AddNamespace(ns);
    ASSERT_TRUE(added) << added.error().ToString();
  }
  NvmeTransport& Connect(const std::string& path, const std::string& subsystem = "nvme0", std::uint16_t port = 1) {
    auto transport = san_->ConnectNvme({.name = path, .subsystem = subsystem, .host_nqn = std::string(kHostNqn),
                                        .host_id = kHostId, .port = port});
    EXPECT_TRUE(transport) << transport.error().ToString();
    return **transport;
  }
  sim::LinkFaults& Faults(const std::string& path) { return **san_->Faults(path); }

  Recorder& Record(NvmeTransport& inner, bool defer = false, ProbeOptions options = {}) {
    recorders_.push_back(std::make_unique<Recorder>(inner, executor_, defer, options.command_timeout));
    return *recorders_.back();
  }

  // Probes to the end, checking that the probe starts on the executor and that `done` runs exactly once.
  Result<ProbedController> ProbeCtrl(NvmeTransport& transport, ProbeOptions options = {}) {
    Outcome<ProbedController> out;
    ProbeController(transport, executor_, options, [&out](Result<ProbedController> r) {
      ++out.calls;
      out.result = std::move(r);
    });
    EXPECT_EQ(out.calls, 0) << "the probe starts on the executor, not inside the call";
    executor_.RunUntilIdle();
    EXPECT_EQ(out.calls, 1);
    if (!out.result) return MakeError(Errc::kInternal, "the probe never finished");
    return std::move(*out.result);
  }
  Result<ProbedNamespace> ProbeNs(NvmeTransport& transport, std::uint32_t nsid, ProbeOptions options = {}) {
    auto controller = ProbeCtrl(transport, options);
    if (!controller) return std::unexpected(std::move(controller).error());
    Outcome<ProbedNamespace> out;
    {
      // A copy that dies before the probe runs: the probe must not keep the caller's reference.
      ControllerSummary summary = controller->controller;
      ProbeNamespace(transport, summary, nsid, executor_, options, [&out](Result<ProbedNamespace> r) {
        ++out.calls;
        out.result = std::move(r);
      });
    }
    EXPECT_EQ(out.calls, 0);
    executor_.RunUntilIdle();
    EXPECT_EQ(out.calls, 1);
    if (!out.result) return MakeError(Errc::kInternal, "the probe never finished");
    return std::move(*out.result);
  }

  // Overrides Identify so that `cns` gets `handler` and every other CNS the default answer.
  static void OverrideCns(fake::Subsystem& subsystem, Cns cns, std::function<void(CommandContext&)> handler) {
    subsystem.SetHandler(QueueKind::kAdmin, kIdentify,
                         [&subsystem, cns, handler = std::move(handler)](CommandContext& context) {
                           if (spec::DecodeIdentify(context.command.sqe).cns == cns) {
                             handler(context);
                           } else {
                             subsystem.DefaultHandler(context);
                           }
                         });
  }
  // The default answer, then `edit` over its data.
  static void EditAnswer(fake::Subsystem& subsystem, Cns cns, std::function<void(std::span<std::byte>)> edit) {
    OverrideCns(subsystem, cns, [&subsystem, edit = std::move(edit)](CommandContext& context) {
      subsystem.DefaultHandler(context);
      edit(context.command.data);
    });
  }
  static void Fail(fake::Subsystem& subsystem, Cns cns, spec::Status status) {
    OverrideCns(subsystem, cns, [status](CommandContext& context) { context.command.cqe.set_status(status); });
  }

  template <typename T>
  static void ExpectError(const Result<T>& r, Errc code, std::initializer_list<std::string_view> phrases) {
    ASSERT_FALSE(r.has_value()) << "probe succeeded";
    EXPECT_EQ(r.error().code(), code) << r.error().ToString();
    for (std::string_view phrase : phrases) {
      EXPECT_NE(r.error().message().find(phrase), std::string::npos)
          << "'" << phrase << "' not in: " << r.error().message();
    }
  }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_;
  std::unique_ptr<sim::SimSan> san_;
  std::vector<std::unique_ptr<Recorder>> recorders_;
};

NamespaceConfig Ns(std::uint32_t nsid, std::uint64_t blocks = 64) {
  NamespaceConfig ns;
  ns.nsid = nsid;
  ns.blocks = blocks;
  ns.nguid = kNguid;
  ns.nguid[15] = static_cast<std::uint8_t>(nsid);
  return ns;
}

// ---- Identify Controller and the namespace list

TEST_F(ProbeTest, ControllerReportsItsSubsystemAndActiveNamespaces) {
  SubsystemConfig config;
  config.nqn = "nqn.2026-01.io.example:array7";
  config.model = "Example NVMe Array";
  config.serial = "SER-7";
  config.firmware = "2.4";
  config.max_namespaces = 64;
  config.nanagrpid = 8;
  auto& subsystem = AddSubsystem("nvme0", config);
  for (std::uint32_t nsid : {7u, 2u, 30u}) AddNamespace(subsystem, Ns(nsid));
  auto& first = Record(Connect("c1"));
  auto& second = Record(Connect("c2", "nvme0", 2));

  const auto a = ProbeCtrl(first);
  const auto b = ProbeCtrl(second);
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE(b) << b.error().ToString();
  const ControllerSummary& c = a->controller;
  EXPECT_EQ(c.subnqn, "nqn.2026-01.io.example:array7");
  EXPECT_EQ(c.model, "Example NVMe Array");
  EXPECT_EQ(c.serial, "SER-7");
  EXPECT_EQ(c.firmware, "2.4");
  EXPECT_EQ(c.cntlid, 1);
  EXPECT_EQ(b->controller.cntlid, 2);
  EXPECT_TRUE(c.multi_controller);
  EXPECT_TRUE(c.ana_reporting);
  EXPECT_TRUE(c.ana_change_notices);
  EXPECT_TRUE(c.namespace_attribute_notices);
  EXPECT_EQ(c.anatt_secs, 10);
  EXPECT_EQ(c.nanagrpid, 8u);
  EXPECT_EQ(c.nn, 64u);
  EXPECT_EQ(c.mnan, 64u);
  EXPECT_EQ(c.AnaLogBytes(), 16u + 8u * 32u + 64u * 4u);
  EXPECT_EQ(c.MaxTransferBytes(), 128u * 1024u);
  EXPECT_EQ(c.aerl, 3);
  EXPECT_TRUE(c.reservations);
  EXPECT_TRUE(c.write_zeroes);
  EXPECT_TRUE(c.extended_log_data);
  EXPECT_EQ(a->active_nsids, (std::vector<std::uint32_t>{2, 7, 30}));
  EXPECT_EQ(b->active_nsids, a->active_nsids);
  EXPECT_EQ(first.calls, (std::vector<IdentifyCall>{{Cns::kController, 0}, {Cns::kActiveNamespaceList, 0}}));
}

TEST_F(ProbeTest, ControllerAnsweringLater) {
  auto& subsystem = AddSubsystem("nvme0");
  AddNamespace(subsystem, Ns(1));
  AddNamespace(subsystem, Ns(4));
  ProbeOptions options;
  options.command_timeout = std::chrono::seconds(7);
  auto& deferred = Record(Connect("c1"), /*defer=*/true, options);
  const auto a = ProbeCtrl(deferred, options);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->active_nsids, (std::vector<std::uint32_t>{1, 4}));
  EXPECT_EQ(deferred.calls.size(), 2u);
}

// The probe may be started from any thread; the work and the callback run on the executor's (here, this test's).
TEST_F(ProbeTest, StartedFromAnotherThread) {
  auto& subsystem = AddSubsystem("nvme0");
  AddNamespace(subsystem, Ns(3));
  auto& recorder = Record(Connect("c1"), /*defer=*/true);
  Outcome<ProbedController> out;
  const std::thread::id test_thread = std::this_thread::get_id();
  std::thread starter([&] {
    ProbeController(recorder, executor_, {}, [&out, test_thread](Result<ProbedController> r) {
      EXPECT_EQ(std::this_thread::get_id(), test_thread);
      ++out.calls;
      out.result = std::move(r);
    });
  });
  starter.join();
  executor_.RunUntilIdle();
  ASSERT_EQ(out.calls, 1);
  ASSERT_TRUE(*out.result) << out.result->error().ToString();
  EXPECT_EQ((*out.result)->active_nsids, (std::vector<std::uint32_t>{3}));
}

TEST_F(ProbeTest, NoNamespacesIsAnEmptyList) {
  AddSubsystem("nvme0");
  const auto a = ProbeCtrl(Connect("c1"));
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_TRUE(a->active_nsids.empty());
}

// 2050 namespaces at odd NSIDs: the list comes in pages of 1024, each continued from the last NSID of the one before
// (not from a count), and every NSID arrives once, in order.
TEST_F(ProbeTest, NamespaceListContinuesFromTheLastNsidOfAFullPage) {
  SubsystemConfig config;
  config.max_namespaces = 5000;
  auto& subsystem = AddSubsystem("nvme0", config);
  std::vector<std::uint32_t> expected;
  for (std::uint32_t nsid = 1; expected.size() < 2050; nsid += 2) {
    AddNamespace(subsystem, Ns(nsid, 8));
    expected.push_back(nsid);
  }
  auto& recorder = Record(Connect("c1"));
  const auto a = ProbeCtrl(recorder);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->active_nsids, expected);
  EXPECT_EQ(recorder.calls, (std::vector<IdentifyCall>{{Cns::kController, 0},
                                                       {Cns::kActiveNamespaceList, 0},
                                                       {Cns::kActiveNamespaceList, 2047},
                                                       {Cns::kActiveNamespaceList, 4095}}));
  EXPECT_EQ(subsystem.CommandCount(QueueKind::kAdmin, kIdentify), 4u);
}

TEST_F(ProbeTest, ExactlyOneFullPageIsFollowedByAnEmptyOne) {
  SubsystemConfig config;
  config.max_namespaces = 2048;
  auto& subsystem = AddSubsystem("nvme0", config);
  for (std::uint32_t nsid = 1; nsid <= 1024; ++nsid) AddNamespace(subsystem, Ns(nsid, 8));
  auto& recorder = Record(Connect("c1"));
  const auto a = ProbeCtrl(recorder);
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_EQ(a->active_nsids.size(), 1024u);
  EXPECT_EQ(a->active_nsids.front(), 1u);
  EXPECT_EQ(a->active_nsids.back(), 1024u);
  EXPECT_EQ(recorder.calls.back(), (IdentifyCall{Cns::kActiveNamespaceList, 1024}));
  EXPECT_EQ(recorder.calls.size(), 3u);

  // A page short of full ends the list: one namespace fewer, one command fewer.
  ASSERT_TRUE(subsystem.RemoveNamespace(1024));
  auto& again = Record(Connect("c2"));
  const auto b = ProbeCtrl(again);
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(b->active_nsids.size(), 1023u);
  EXPECT_EQ(again.calls.size(), 2u);
}

TEST_F(ProbeTest, FailureOnALaterListPageNamesWhereItStarted) {
  SubsystemConfig config;
  config.max_namespaces = 2048;
  auto& subsystem = AddSubsystem("nvme0", config);
  for (std::uint32_t nsid = 1; nsid <= 1030; ++nsid) AddNamespace(subsystem, Ns(nsid, 8));
  OverrideCns(subsystem, Cns::kActiveNamespaceList, [&subsystem](CommandContext& context) {
    if (spec::DecodeIdentify(context.command.sqe).nsid == 0) {
      subsystem.DefaultHandler(context);
    } else {
      context.command.cqe.set_status(spec::MakeStatus(spec::GenericStatus::kInternalError));
    }
  });
  const auto a = ProbeCtrl(Connect("c1"));
  ExpectError(a, Errc::kTargetError, {"CNS 02h", "from NSID 1024", "Internal Error"});
}

// ---- Identify Namespace, descriptors and identity

TEST_F(ProbeTest, IdentityFromEachKindOfIdentifier) {
  auto& subsystem = AddSubsystem("nvme0");
  NamespaceConfig all = Ns(1, 1000);
  all.block_size = 4096;
  all.eui64 = kEui64;
  all.uuid = kUuid;
  all.ana_group = 3;
  NamespaceConfig eui{.nsid = 2, .blocks = 100, .eui64 = kEui64, .uuid = kUuid};
  NamespaceConfig uuid{.nsid = 3, .blocks = 100, .uuid = kUuid};
  NamespaceConfig none{.nsid = 4, .blocks = 100};
  for (const auto& ns : {all, eui, uuid, none}) AddNamespace(subsystem, ns);
  NvmeTransport& path = Connect("c1");
  const std::string scope = "@" + subsystem.config().nqn;

  const auto p1 = ProbeNs(path, 1);
  ASSERT_TRUE(p1) << p1.error().ToString();
  EXPECT_EQ(p1->ns.nsid, 1u);
  EXPECT_EQ(p1->ns.nsze, 1000u);
  EXPECT_EQ(p1->ns.block_size, 4096u);
  EXPECT_TRUE(p1->ns.shared);
  EXPECT_EQ(p1->ns.anagrpid, 3u);
  EXPECT_EQ(p1->ns.nguid[15], 1);
  EXPECT_EQ(p1->ns.eui64, kEui64);
  ASSERT_TRUE(p1->descriptors.has_value());
  EXPECT_EQ(p1->descriptors->uuid, kUuid);
  EXPECT_EQ(p1->descriptors->csi, 0);
  EXPECT_EQ(p1->identity.kind, NamespaceIdKind::kNguid);
  EXPECT_EQ(p1->identity.ToDeviceIdentity().str(), "nguid.6b2f00119a04473c805e123456789a01" + scope + "/ns1");

  const auto p2 = ProbeNs(path, 2);
  ASSERT_TRUE(p2) << p2.error().ToString();
  EXPECT_EQ(p2->identity.kind, NamespaceIdKind::kEui64);
  EXPECT_EQ(p2->identity.ToDeviceIdentity().str(), "eui.000e1e090000002a" + scope + "/ns2");

  const auto p3 = ProbeNs(path, 3);
  ASSERT_TRUE(p3) << p3.error().ToString();
  EXPECT_EQ(p3->identity.kind, NamespaceIdKind::kUuid);
  EXPECT_EQ(p3->identity.ToDeviceIdentity().str(), "uuid.c0ffee00-1234-4567-89ab-cdef01234567" + scope + "/ns3");

  const auto p4 = ProbeNs(path, 4);
  ASSERT_TRUE(p4) << p4.error().ToString();
  EXPECT_EQ(p4->identity.kind, NamespaceIdKind::kNone);
  EXPECT_FALSE(p4->identity.reason.empty());
  const auto ctrl = ProbeCtrl(path);
  ASSERT_TRUE(ctrl) << ctrl.error().ToString();
  const DeviceInfo info = ToDeviceInfo(ctrl->controller, p4->ns, p4->identity);
  EXPECT_TRUE(info.identity.empty());
  EXPECT_FALSE(DecideOptIn(Policy(MultipathMode::kAlways), info).multipath) << "no identity, never multipathed";
}

TEST_F(ProbeTest, SameNamespaceThroughTwoControllersIsOneDevice) {
  auto& subsystem = AddSubsystem("nvme0");
  AddNamespace(subsystem, Ns(5, 2048));
  NvmeTransport& c1 = Connect("c1", "nvme0", 1);
  NvmeTransport& c2 = Connect("c2", "nvme0", 2);
  const auto ctrl1 = ProbeCtrl(c1);
  const auto ctrl2 = ProbeCtrl(c2);
  const auto a = ProbeNs(c1, 5);
  const auto b = ProbeNs(c2, 5);
  ASSERT_TRUE(ctrl1 && ctrl2 && a && b);
  const DeviceInfo ia = ToDeviceInfo(ctrl1->controller, a->ns, a->identity);
  const DeviceInfo ib = ToDeviceInfo(ctrl2->controller, b->ns, b->identity);
  EXPECT_FALSE(ia.identity.empty());
  EXPECT_EQ(ia.identity, ib.identity);
  EXPECT_EQ(ia.capacity_bytes, 2048u * 512u);
  EXPECT_EQ(ia.block_size, 512u);
  EXPECT_TRUE(ia.reports_access_states);
  EXPECT_TRUE(DecideOptIn(Policy(MultipathMode::kOn), ia).multipath);
}

TEST_F(ProbeTest, ClonedVolumeInAnotherSubsystemIsAnotherDevice) {
  auto& first = AddSubsystem("nvme0");
  SubsystemConfig other;
  other.nqn = "nqn.2026-11.io.mpath.sim:clone";
  auto& second = AddSubsystem("nvme1", other);
  AddNamespace(first, Ns(1));
  AddNamespace(second, Ns(1));
  const auto a = ProbeNs(Connect("c1", "nvme0"), 1);
  const auto b = ProbeNs(Connect("c2", "nvme1"), 1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->identity.designator, b->identity.designator) << "the same NGUID in both";
  EXPECT_NE(a->identity.ToDeviceIdentity(), b->identity.ToDeviceIdentity());
}

// `multipath = on` needs a subsystem with several controllers (CMIC bit 1) and a shared namespace (NMIC bit 0);
// `always` needs only the identity.
TEST_F(ProbeTest, OptInFactsComeFromCmicAndNmic) {
  struct Case {
    std::uint8_t cmic;
    bool shared;
    bool on;
  };
  int index = 0;
  for (const Case k : {Case{0x0B, true, true}, Case{0x01, true, false}, Case{0x0B, false, false},
                       Case{0x02, true, true}}) {
    SCOPED_TRACE(::testing::Message() << "CMIC " << int(k.cmic) << " shared " << k.shared);
    SubsystemConfig config;
    config.cmic = k.cmic;
    config.nqn = "nqn.2026-11.io.mpath.sim:optin" + std::to_string(index);
    const std::string name = "s" + std::to_string(index++);
    auto& subsystem = AddSubsystem(name, config);
    NamespaceConfig ns = Ns(1);
    ns.shared = k.shared;
    AddNamespace(subsystem, ns);
    NvmeTransport& path = Connect(name + "c", name);
    const auto ctrl = ProbeCtrl(path);
    const auto p = ProbeNs(path, 1);
    ASSERT_TRUE(ctrl && p);
    const DeviceInfo info = ToDeviceInfo(ctrl->controller, p->ns, p->identity);
    EXPECT_FALSE(DecideOptIn(Policy(MultipathMode::kOff), info).multipath);
    EXPECT_EQ(DecideOptIn(Policy(MultipathMode::kOn), info).multipath, k.on);
    EXPECT_TRUE(DecideOptIn(Policy(MultipathMode::kAlways), info).multipath);
  }
}

TEST_F(ProbeTest, InactiveNsidIsNotFound) {
  auto& subsystem = AddSubsystem("nvme0");
  AddNamespace(subsystem, Ns(1));
  auto& recorder = Record(Connect("c1"));
  ExpectError(ProbeNs(recorder, 9), Errc::kNotFound, {"NSID 9", "not active"});
  EXPECT_EQ(recorder.calls.back(), (IdentifyCall{Cns::kNamespace, 9})) << "no descriptor list for a missing namespace";
  // An NSID beyond NN is not inactive but invalid: the controller fails the command.
  ExpectError(ProbeNs(recorder, 5000), Errc::kTargetError, {"CNS 00h", "Invalid Namespace or Format"});
}

// Controllers before revision 1.3 may not know CNS 03h: the identity then comes from Identify Namespace.
TEST_F(ProbeTest, ControllerRefusingTheDescriptorList) {
  for (const auto refusal : {spec::GenericStatus::kInvalidFieldInCommand, spec::GenericStatus::kInvalidCommandOpcode}) {
    const std::string name = refusal == spec::GenericStatus::kInvalidCommandOpcode ? "opcode" : "field";
    SCOPED_TRACE(name);
    auto& subsystem = AddSubsystem(name);
    AddNamespace(subsystem, Ns(1));
    AddNamespace(subsystem, NamespaceConfig{.nsid = 2, .blocks = 100, .uuid = kUuid});
    Fail(subsystem, Cns::kNamespaceIdentificationDescriptors, spec::MakeStatus(refusal, spec::Dnr::kSet));
    NvmeTransport& path = Connect(name + "-c1", name);

    const auto p1 = ProbeNs(path, 1);
    ASSERT_TRUE(p1) << p1.error().ToString();
    EXPECT_FALSE(p1->descriptors.has_value());
    EXPECT_EQ(p1->identity.kind, NamespaceIdKind::kNguid);

    // A namespace whose only identifier is its UUID has none left.
    const auto p2 = ProbeNs(path, 2);
    ASSERT_TRUE(p2) << p2.error().ToString();
    EXPECT_FALSE(p2->descriptors.has_value());
    EXPECT_EQ(p2->identity.kind, NamespaceIdKind::kNone);
    EXPECT_NE(p2->identity.reason.find("refused"), std::string::npos) << p2->identity.reason;
  }
}

TEST_F(ProbeTest, OtherDescriptorFailuresFailTheProbeWithTheRawStatus) {
  auto& subsystem = AddSubsystem("nvme0");
  AddNamespace(subsystem, Ns(1));
  Fail(subsystem, Cns::kNamespaceIdentificationDescriptors,
       spec::MakeStatus(spec::GenericStatus::kInternalError, spec::Dnr::kClear));
  const auto p = ProbeNs(Connect("c1"), 1);
  ExpectError(p, Errc::kTargetError, {"NSID 1", "CNS 03h", "Internal Error", "0x006"});
  const auto outcome = DecodeRawStatus(p.error().raw());
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(outcome->delivered());
  EXPECT_EQ(outcome->sct, 0);
  EXPECT_EQ(outcome->sc, 0x06);
  EXPECT_FALSE(outcome->dnr);
  EXPECT_TRUE(outcome->admin);
  EXPECT_EQ(outcome->opcode, kIdentify);
}

TEST_F(ProbeTest, FailedIdentifyControllerKeepsTheRawStatus) {
  auto& subsystem = AddSubsystem("nvme0");
  Fail(subsystem, Cns::kController,
       spec::Status::Of(spec::kSctCommandSpecific, 0x09, /*dnr=*/true));
  const auto a = ProbeCtrl(Connect("c1"));
  ExpectError(a, Errc::kTargetError, {"Identify Controller", "0x109", "DNR"});
  const auto outcome = DecodeRawStatus(a.error().raw());
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->sct, spec::kSctCommandSpecific);
  EXPECT_EQ(outcome->sc, 0x09);
  EXPECT_TRUE(outcome->dnr);
  EXPECT_EQ(outcome->code(), 0x109);
}

// ---- Link faults

TEST_F(ProbeTest, LinkDownBeforeTheProbe) {
  auto& subsystem = AddSubsystem("nvme0");
  NvmeTransport& path = Connect("c1");
  Faults("c1").SetLinkDown(true);
  const auto a = ProbeCtrl(path);
  ExpectError(a, Errc::kPathError, {"Identify Controller", "not delivered"});
  const auto outcome = DecodeRawStatus(a.error().raw());
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->delivery, Delivery::kLinkDown);
  EXPECT_EQ(subsystem.CommandCount(QueueKind::kAdmin, kIdentify), 0u) << "nothing reached the controller";
}

TEST_F(ProbeTest, LinkDownBetweenCommands) {
  auto& subsystem = AddSubsystem("nvme0");
  AddNamespace(subsystem, Ns(1));
  NvmeTransport& path = Connect("c1");
  const auto ctrl = ProbeCtrl(path);
  ASSERT_TRUE(ctrl) << ctrl.error().ToString();

  // The link drops once the controller has answered Identify Namespace: the descriptor list never arrives.
  sim::LinkFaults& faults = Faults("c1");
  OverrideCns(subsystem, Cns::kNamespace, [&subsystem, &faults](CommandContext& context) {
    subsystem.DefaultHandler(context);
    faults.SetLinkDown(true);
  });
  Outcome<ProbedNamespace> out;
  ProbeNamespace(path, ctrl->controller, 1, executor_, {}, [&out](Result<ProbedNamespace> r) {
    ++out.calls;
    out.result = std::move(r);
  });
  executor_.RunUntilIdle();
  ASSERT_EQ(out.calls, 1);
  ExpectError(*out.result, Errc::kPathError, {"NSID 1", "CNS 03h", "link down"});

  // And between Identify Controller and the namespace list.
  faults.SetLinkDown(false);
  OverrideCns(subsystem, Cns::kController, [&subsystem, &faults](CommandContext& context) {
    subsystem.DefaultHandler(context);
    faults.SetLinkDown(true);
  });
  ExpectError(ProbeCtrl(path), Errc::kPathError, {"CNS 02h"});
}

TEST_F(ProbeTest, HungControllerTimesOut) {
  AddSubsystem("nvme0");
  NvmeTransport& path = Connect("c1");
  Faults("c1").SetHang(true);
  ProbeOptions options;
  options.command_timeout = std::chrono::seconds(5);
  Outcome<ProbedController> out;
  ProbeController(path, executor_, options, [&out](Result<ProbedController> r) {
    ++out.calls;
    out.result = std::move(r);
  });
  executor_.RunUntilIdle();
  EXPECT_EQ(out.calls, 0) << "still waiting for the answer";
  executor_.Advance(std::chrono::seconds(4));
  EXPECT_EQ(out.calls, 0);
  executor_.Advance(std::chrono::seconds(1));
  ASSERT_EQ(out.calls, 1);
  ExpectError(*out.result, Errc::kTimedOut, {"Identify Controller", "not delivered"});
}

// ---- Malformed answers

TEST_F(ProbeTest, MalformedIdentifyController) {
  auto& subsystem = AddSubsystem("nvme0");
  NvmeTransport& path = Connect("c1");
  EditAnswer(subsystem, Cns::kController, [](std::span<std::byte> data) {
    std::fill(data.begin() + 768, data.begin() + 1024, std::byte{0});  // SUBNQN
  });
  ExpectError(ProbeCtrl(path), Errc::kTargetError, {"Identify Controller", "empty SUBNQN"});

  // Fewer bytes than a page: the transport narrows the data to what arrived.
  OverrideCns(subsystem, Cns::kController, [&subsystem](CommandContext& context) {
    subsystem.DefaultHandler(context);
    context.command.data = context.command.data.first(512);
  });
  ExpectError(ProbeCtrl(path), Errc::kTargetError, {"Identify Controller", "512 bytes", "4096"});
}

TEST_F(ProbeTest, MalformedNamespaceList) {
  auto& subsystem = AddSubsystem("nvme0");
  NvmeTransport& path = Connect("c1");
  const auto write_list = [&subsystem](std::vector<std::uint32_t> nsids) {
    OverrideCns(subsystem, Cns::kActiveNamespaceList, [&subsystem, nsids](CommandContext& context) {
      subsystem.DefaultHandler(context);
      for (std::size_t i = 0; i < nsids.size(); ++i) {
        for (std::size_t b = 0; b < 4; ++b) {
          context.command.data[4 * i + b] = std::byte(static_cast<std::uint8_t>(nsids[i] >> (8 * b)));
        }
      }
    });
  };
  write_list({5, 3});
  ExpectError(ProbeCtrl(path), Errc::kTargetError, {"CNS 02h", "NSID 3 follows NSID 5"});
  write_list({2, 2});
  ExpectError(ProbeCtrl(path), Errc::kTargetError, {"NSID 2 follows NSID 2"});
  write_list({1, 1025});  // NN is 1024
  ExpectError(ProbeCtrl(path), Errc::kTargetError, {"0x401", "beyond NN 0x400"});
  write_list({0xFFFFFFFF});
  ExpectError(ProbeCtrl(path), Errc::kTargetError, {"0xffffffff"});

  OverrideCns(subsystem, Cns::kActiveNamespaceList, [&subsystem](CommandContext& context) {
    subsystem.DefaultHandler(context);
    context.command.data = context.command.data.first(100);
  });
  ExpectError(ProbeCtrl(path), Errc::kTargetError, {"CNS 02h", "100 bytes of data arrived"});
}

TEST_F(ProbeTest, MalformedIdentifyNamespace) {
  auto& subsystem = AddSubsystem("nvme0");
  AddNamespace(subsystem, Ns(1));
  NvmeTransport& path = Connect("c1");
  EditAnswer(subsystem, Cns::kNamespace, [](std::span<std::byte> data) {
    data[26] = std::byte{0x03};  // FLBAS: format 3 of NLBAF 0
  });
  ExpectError(ProbeNs(path, 1), Errc::kTargetError, {"NSID 1", "CNS 00h", "FLBAS 0x03", "0..0"});

  EditAnswer(subsystem, Cns::kNamespace, [](std::span<std::byte> data) {
    data[128 + 2] = std::byte{7};  // LBADS of format 0: 128-byte blocks
  });
  ExpectError(ProbeNs(path, 1), Errc::kTargetError, {"LBADS 7"});

  OverrideCns(subsystem, Cns::kNamespace, [&subsystem](CommandContext& context) {
    subsystem.DefaultHandler(context);
    context.command.data = context.command.data.first(4000);
  });
  ExpectError(ProbeNs(path, 1), Errc::kTargetError, {"Identify Namespace", "4000 bytes"});
}

TEST_F(ProbeTest, MalformedDescriptorList) {
  auto& subsystem = AddSubsystem("nvme0");
  NamespaceConfig ns = Ns(1);
  AddNamespace(subsystem, ns);  // the list starts with the NGUID descriptor (no EUI-64 set)
  NvmeTransport& path = Connect("c1");

  EditAnswer(subsystem, Cns::kNamespaceIdentificationDescriptors, [](std::span<std::byte> data) {
    data[1] = std::byte{8};  // NIDL 8 for an NGUID
  });
  ExpectError(ProbeNs(path, 1), Errc::kTargetError, {"CNS 03h", "type 2 has length 8"});

  EditAnswer(subsystem, Cns::kNamespaceIdentificationDescriptors, [](std::span<std::byte> data) {
    data[4 + 15] ^= std::byte{0xFF};  // the NGUID's last byte: no longer what Identify Namespace says
  });
  ExpectError(ProbeNs(path, 1), Errc::kTargetError,
              {"CNS 03h", "NGUID", "6b2f00119a04473c805e123456789afe", "6b2f00119a04473c805e123456789a01"});

  OverrideCns(subsystem, Cns::kNamespaceIdentificationDescriptors, [&subsystem](CommandContext& context) {
    subsystem.DefaultHandler(context);
    context.command.data = context.command.data.first(16);
  });
  ExpectError(ProbeNs(path, 1), Errc::kTargetError, {"CNS 03h", "16 bytes of data arrived"});
}

}  // namespace
}  // namespace mpath::nvme
