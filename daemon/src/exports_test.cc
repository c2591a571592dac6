// The fabric's heads as NBD exports, on a real fabric over the simulated SAN: what List shows (names, sizes, block
// sizes, descriptions, order), how Find resolves an alias, an identity, a head name and the default export, a head
// that goes away leaving the catalog, and the server options [export] turns into.
#include "mpath/daemon/exports.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mpath/daemon/config.h"
#include "mpath/daemon/fabric.h"
#include "mpath/nbd/spec.h"

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;

// One ALUA array with two LUs (the first aliased, the second 4 KiB blocks) and an NVMe subsystem with one namespace;
// two paths to each. A head left with no path removes itself at once, so that a remapped LU's old head goes away.
constexpr char kConfig[] = R"(
[defaults]
iopolicy = "round-robin"
queue_if_no_path = false

[[device]]
match = "naa.60014050abcd0000000000000000000a"
alias = "db0"

[[sim.scsi_array]]
name = "array0"
  [[sim.scsi_array.port_group]]
  id = 1
  ports = [1, 2]
  [[sim.scsi_array.lu]]
  lun = 0
  size_mib = 16
  naa = "60014050abcd0000000000000000000a"
  [[sim.scsi_array.lu]]
  lun = 1
  size_mib = 8
  block_size = 4096
  naa = "60014050abcd0000000000000000000b"

[[sim.nvme_subsystem]]
name = "subsys0"
  [[sim.nvme_subsystem.namespace]]
  nsid = 1
  size_mib = 4
  nguid = "6d706174000000000000000000000001"

[[sim.path]]
name = "a0-tp1"
target = "array0"
port = 1
[[sim.path]]
name = "a0-tp2"
target = "array0"
port = 2
[[sim.path]]
name = "s0-p1"
target = "subsys0"
port = 1
[[sim.path]]
name = "s0-p2"
target = "subsys0"
port = 2
)";

// A single head: one LU, one path.
constexpr char kOneHeadConfig[] = R"(
[[sim.scsi_array]]
name = "array0"
  [[sim.scsi_array.port_group]]
  id = 1
  ports = [1]
  [[sim.scsi_array.lu]]
  naa = "60014050abcd00000000000000000001"
[[sim.path]]
name = "a0-tp1"
target = "array0"
)";

constexpr char kLu0[] = "naa.60014050abcd0000000000000000000a";
constexpr char kLu1[] = "naa.60014050abcd0000000000000000000b";
constexpr char kNs1[] = "nguid.6d706174000000000000000000000001@nqn.2026-11.io.mpath.sim:subsys0/ns1";

// Polls `done` until it holds or `limit` passes; real time, short steps.
bool WaitFor(const std::function<bool()>& done, Nanos limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::unique_ptr<Fabric> BuildFabric(std::string_view text) {
  auto config = ParseConfig(text, "exports_test.toml");
  EXPECT_TRUE(config.has_value()) << config.error().ToString();
  if (!config) return nullptr;
  auto fabric = Fabric::Create(std::move(*config), {.io_threads = 2});
  EXPECT_TRUE(fabric.has_value()) << fabric.error().ToString();
  if (!fabric) return nullptr;
  auto report = (*fabric)->Build();
  EXPECT_TRUE(report.has_value() && report->ok()) << (report ? "a path failed" : report.error().ToString());
  return std::move(*fabric);
}

std::vector<std::string> Names(const std::vector<nbd::ExportInfo>& exports) {
  std::vector<std::string> names;
  for (const nbd::ExportInfo& info : exports) names.push_back(info.name);
  return names;
}

const nbd::ExportInfo* Named(const std::vector<nbd::ExportInfo>& exports, std::string_view name) {
  auto it = std::find_if(exports.begin(), exports.end(), [&](const nbd::ExportInfo& e) { return e.name == name; });
  return it == exports.end() ? nullptr : &*it;
}

class FabricExportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fabric_ = BuildFabric(kConfig);
    ASSERT_NE(fabric_, nullptr);
    lu0_ = fabric_->FindHead(kLu0);
    lu1_ = fabric_->FindHead(kLu1);
    ns1_ = fabric_->FindHead(kNs1);
    ASSERT_NE(lu0_, nullptr);
    ASSERT_NE(lu1_, nullptr);
    ASSERT_NE(ns1_, nullptr);
  }

  std::unique_ptr<Fabric> fabric_;
  std::shared_ptr<Head> lu0_, lu1_, ns1_;
};

TEST_F(FabricExportsTest, ListShowsEveryHeadByAliasElseIdentityInHeadNameOrder) {
  const FabricExports exports(*fabric_, ExportSettings{});
  const std::vector<nbd::ExportInfo> list = exports.List();
  ASSERT_EQ(list.size(), 3u);

  std::vector<std::shared_ptr<Head>> by_name = {lu0_, lu1_, ns1_};
  std::sort(by_name.begin(), by_name.end(), [](const auto& a, const auto& b) { return a->name() < b->name(); });
  std::vector<std::string> expected;
  for (const auto& head : by_name) expected.push_back(head == lu0_ ? "db0" : head->identity().str());
  EXPECT_EQ(Names(list), expected);

  const nbd::ExportInfo* db0 = Named(list, "db0");
  ASSERT_NE(db0, nullptr);
  EXPECT_EQ(db0->size_bytes, 16u << 20);
  EXPECT_EQ(db0->block_size, 512u);
  EXPECT_EQ(db0->preferred_block_size, 4096u);
  EXPECT_EQ(db0->max_payload, nbd::spec::kDefaultMaxPayload);
  EXPECT_EQ(db0->description, lu0_->name() + ": scsi MPATHSIM ALUA-ARRAY, 2 paths, round-robin");
  EXPECT_FALSE(db0->read_only);
  EXPECT_TRUE(db0->multi_conn);
  EXPECT_TRUE(db0->trim);
  EXPECT_TRUE(db0->write_zeroes);

  const nbd::ExportInfo* lu1 = Named(list, kLu1);
  ASSERT_NE(lu1, nullptr);
  EXPECT_EQ(lu1->size_bytes, 8u << 20);
  EXPECT_EQ(lu1->block_size, 4096u);
  EXPECT_EQ(lu1->preferred_block_size, 4096u);

  const nbd::ExportInfo* ns1 = Named(list, kNs1);
  ASSERT_NE(ns1, nullptr);
  EXPECT_EQ(ns1->size_bytes, 4u << 20);
  EXPECT_EQ(ns1->block_size, 512u);
  EXPECT_TRUE(ns1->description.starts_with(ns1_->name() + ": nvme ")) << ns1->description;
  EXPECT_TRUE(ns1->description.ends_with(", 2 paths, round-robin")) << ns1->description;

  // The description follows the head: a policy change shows at the next listing.
  ASSERT_TRUE(fabric_->SetPolicy("db0", IoPolicyKind::kQueueDepth));
  EXPECT_EQ(Named(exports.List(), "db0")->description, lu0_->name() + ": scsi MPATHSIM ALUA-ARRAY, 2 paths, queue-depth");
}

TEST_F(FabricExportsTest, ReadOnlyReachesEveryExportAndItsFlags) {
  ExportSettings settings;
  settings.read_only = true;
  const FabricExports exports(*fabric_, settings);
  for (const nbd::ExportInfo& info : exports.List()) {
    SCOPED_TRACE(info.name);
    EXPECT_TRUE(info.read_only);
    EXPECT_NE(info.TransmissionFlags() & nbd::spec::kTxReadOnly, 0);
    EXPECT_EQ(info.TransmissionFlags() & nbd::spec::kTxSendTrim, 0);
  }
  const std::optional<nbd::Export> db0 = exports.Find("db0");
  ASSERT_TRUE(db0.has_value());
  EXPECT_TRUE(db0->info.read_only);
}

TEST_F(FabricExportsTest, FindTakesTheAliasTheIdentityOrTheHeadName) {
  const FabricExports exports(*fabric_, ExportSettings{});
  for (const std::string& name : {std::string("db0"), std::string(kLu0), lu0_->name()}) {
    SCOPED_TRACE(name);
    const std::optional<nbd::Export> found = exports.Find(name);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->head, lu0_);
    EXPECT_EQ(found->info.name, "db0") << "the export's own name, however it was asked for";
    EXPECT_EQ(found->info.size_bytes, 16u << 20);
  }
  for (const std::string& name : {std::string(kLu1), lu1_->name()}) {
    SCOPED_TRACE(name);
    const std::optional<nbd::Export> found = exports.Find(name);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->head, lu1_);
    EXPECT_EQ(found->info.name, kLu1);
    EXPECT_EQ(found->info.block_size, 4096u);
  }
  const std::optional<nbd::Export> ns1 = exports.Find(kNs1);
  ASSERT_TRUE(ns1.has_value());
  EXPECT_EQ(ns1->head, ns1_);

  EXPECT_FALSE(exports.Find("nosuch").has_value());
  EXPECT_FALSE(exports.Find("DB0").has_value()) << "names are exact";
  EXPECT_FALSE(exports.Find("naa.60014050abcd*").has_value()) << "a [[device]] match is not a name";
  EXPECT_FALSE(exports.Find(std::string(5000, 'x')).has_value());
}

TEST_F(FabricExportsTest, NoNameIsTheDefaultExportElseNothingWhenThereIsAChoice) {
  EXPECT_FALSE(FabricExports(*fabric_, ExportSettings{}).Find("").has_value()) << "three heads: no default";

  ExportSettings by_alias;
  by_alias.default_export = "db0";
  const std::optional<nbd::Export> db0 = FabricExports(*fabric_, by_alias).Find("");
  ASSERT_TRUE(db0.has_value());
  EXPECT_EQ(db0->head, lu0_);
  EXPECT_EQ(db0->info.name, "db0");

  ExportSettings by_head_name;
  by_head_name.default_export = ns1_->name();
  const std::optional<nbd::Export> ns1 = FabricExports(*fabric_, by_head_name).Find("");
  ASSERT_TRUE(ns1.has_value());
  EXPECT_EQ(ns1->head, ns1_);

  ExportSettings dangling;
  dangling.default_export = "nosuch";
  EXPECT_FALSE(FabricExports(*fabric_, dangling).Find("").has_value());
}

TEST(FabricExportsOneHead, NoNameIsTheOnlyHead) {
  std::unique_ptr<Fabric> fabric = BuildFabric(kOneHeadConfig);
  ASSERT_NE(fabric, nullptr);
  const FabricExports exports(*fabric, ExportSettings{});
  const std::optional<nbd::Export> only = exports.Find("");
  ASSERT_TRUE(only.has_value());
  EXPECT_EQ(only->info.name, "naa.60014050abcd00000000000000000001");
  EXPECT_EQ(only->info.description.substr(only->info.description.find(':')),
            ": scsi MPATHSIM ALUA-ARRAY, 1 path, numa");
  ASSERT_NE(only->head, nullptr);
  EXPECT_EQ(only->head->identity().str(), "naa.60014050abcd00000000000000000001");
}

TEST_F(FabricExportsTest, AHeadThatGoesAwayLeavesTheCatalog) {
  const FabricExports exports(*fabric_, ExportSettings{});
  ASSERT_NE(Named(exports.List(), kLu1), nullptr);
  // Another volume answers at LUN 1: its paths move to a new head, and the old one, left with none, removes itself.
  constexpr char kFresh[] = "naa.60014050abcd000000000000000000ee";
  auto remapped = fabric_->Inject({.target = "array0", .fault = "remap",
                                   .args = {{"lun", "1"}, {"naa", "60014050abcd000000000000000000ee"}}});
  ASSERT_TRUE(remapped.has_value()) << remapped.error().ToString();
  EXPECT_TRUE(WaitFor([&] {
    const std::vector<nbd::ExportInfo> list = exports.List();
    return Named(list, kLu1) == nullptr && Named(list, kFresh) != nullptr;
  })) << "exports now: " << fmt::format("{}", fmt::join(Names(exports.List()), ", "));
  EXPECT_FALSE(exports.Find(kLu1).has_value());
  EXPECT_FALSE(exports.Find(lu1_->name()).has_value() && exports.Find(lu1_->name())->head == lu1_);
  const std::optional<nbd::Export> fresh = exports.Find(kFresh);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->info.block_size, 4096u);
  EXPECT_EQ(fresh->info.size_bytes, 8u << 20);
  EXPECT_EQ(exports.List().size(), 3u);
}

// A blocking unix-socket client whose every read and write gives up after 10 s, so that a silent server fails the
// test instead of hanging it. Threading: one thread.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    timeval timeout{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }

  // Exactly `size` bytes, or fewer when the peer closed or went quiet.
  std::string Read(std::size_t size) {
    std::string out(size, '\0');
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::read(fd_, out.data() + done, size - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
  }
  bool Write(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

 private:
  int fd_ = -1;
};

std::string Be(std::uint64_t value, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
  return out;
}
std::uint64_t FromBe(std::string_view bytes) {
  std::uint64_t value = 0;
  for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

// The server [export] describes, started on a fabric, answering real clients with the fabric's heads.
TEST_F(FabricExportsTest, TheServerGreetsAndListsTheCatalogOverItsUnixSocket) {
  char scratch_template[] = "/tmp/mpath-exports-test-XXXXXX";
  ASSERT_NE(::mkdtemp(scratch_template), nullptr) << std::strerror(errno);
  const std::filesystem::path scratch = scratch_template;
  ExportSettings settings;
  // Its directory does not exist yet: the server makes it.
  settings.unix_socket = (scratch / "run" / "nbd.sock").string();
  const FabricExports catalog(*fabric_, settings);
  auto server = StartExportServer(*fabric_, catalog, settings);
  ASSERT_TRUE(server.has_value()) << server.error().ToString();
  EXPECT_EQ((*server)->unix_path(), settings.unix_socket);
  EXPECT_EQ((*server)->tcp_port(), 0);

  {
    RawClient client(settings.unix_socket);
    ASSERT_TRUE(client.connected()) << std::strerror(errno);
    // NBD protocol "Newstyle negotiation": both magics, then the handshake flags.
    const std::string greeting = client.Read(18);
    ASSERT_EQ(greeting.size(), 18u);
    EXPECT_EQ(greeting.substr(0, 8), "NBDMAGIC");
    EXPECT_EQ(greeting.substr(8, 8), "IHAVEOPT");
    EXPECT_NE(FromBe(greeting.substr(16, 2)) & nbd::spec::kFlagFixedNewstyle, 0u);

    // NBD protocol "NBD_OPT_LIST": one NBD_REP_SERVER per export, then NBD_REP_ACK.
    ASSERT_TRUE(client.Write(Be(nbd::spec::kClientFlagFixedNewstyle | nbd::spec::kClientFlagNoZeroes, 4)));
    ASSERT_TRUE(client.Write(Be(nbd::spec::kIHaveOpt, 8) + Be(static_cast<std::uint32_t>(nbd::spec::Option::kList), 4) +
                             Be(0, 4)));
    std::vector<std::string> listed;
    for (int replies = 0; replies < 16; ++replies) {
      const std::string header = client.Read(20);
      ASSERT_EQ(header.size(), 20u) << "the server closed or went quiet";
      ASSERT_EQ(FromBe(header.substr(0, 8)), nbd::spec::kOptionReplyMagic);
      ASSERT_EQ(FromBe(header.substr(8, 4)), static_cast<std::uint32_t>(nbd::spec::Option::kList));
      const std::uint64_t type = FromBe(header.substr(12, 4));
      const std::uint64_t length = FromBe(header.substr(16, 4));
      ASSERT_LE(length, 8192u);
      const std::string body = client.Read(length);
      ASSERT_EQ(body.size(), length);
      if (type == static_cast<std::uint32_t>(nbd::spec::OptionReply::kAck)) break;
      ASSERT_EQ(type, static_cast<std::uint32_t>(nbd::spec::OptionReply::kServer));
      ASSERT_GE(length, 4u);
      const std::uint64_t name_length = FromBe(body.substr(0, 4));
      ASSERT_LE(name_length, length - 4);
      listed.push_back(body.substr(4, name_length));
    }
    EXPECT_EQ(listed, Names(catalog.List()));
    ASSERT_TRUE(client.Write(Be(nbd::spec::kIHaveOpt, 8) +
                             Be(static_cast<std::uint32_t>(nbd::spec::Option::kAbort), 4) + Be(0, 4)));
  }

  (*server)->Stop();
  EXPECT_FALSE(std::filesystem::exists(settings.unix_socket)) << "Stop removes the socket file";
  server->reset();
  std::filesystem::remove_all(scratch);
}

TEST(ToServerOptions, CarriesEveryListenerAndLimit) {
  ExportSettings settings;
  settings.unix_socket = "/tmp/x.sock";
  settings.max_connections = 7;
  settings.queue_depth = 9;
  nbd::NbdServerOptions options = ToServerOptions(settings);
  EXPECT_EQ(options.unix_path, "/tmp/x.sock");
  EXPECT_FALSE(options.tcp.has_value());
  EXPECT_EQ(options.max_connections, 7u);
  EXPECT_EQ(options.requests_per_connection, 9u);

  settings.unix_socket.clear();
  settings.tcp_port = 10809;
  settings.tcp_address = "::1";
  options = ToServerOptions(settings);
  EXPECT_TRUE(options.unix_path.empty());
  ASSERT_TRUE(options.tcp.has_value());
  EXPECT_EQ(options.tcp->address, "::1");
  EXPECT_EQ(options.tcp->port, 10809);
}

}  // namespace
}  // namespace mpath::daemon
