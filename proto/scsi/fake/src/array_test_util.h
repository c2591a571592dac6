// What the array conformance tests share: a host on one I_T nexus that sends a CDB and keeps the whole answer, and
// a fixture with the LIO lab's layout (group 10 active/optimized behind port 1, group 20 active/non-optimized behind
// port 2, one LU), driven by a ManualClock.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/scsi/fake/array.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi::fake::testing {

// One command's answer, as the initiator sees it.
struct Answer {
  Delivery delivery = Delivery::kDelivered;
  std::uint8_t status = 0xFF;
  std::vector<std::uint8_t> sense;
  std::uint32_t residual = 0;
  std::vector<std::byte> buffer;  // the whole data buffer after the command

  [[nodiscard]] bool good() const { return delivery == Delivery::kDelivered && status == 0 && sense.empty(); }
  [[nodiscard]] bool check_condition() const { return status == 0x02; }
  [[nodiscard]] bool conflict() const { return status == 0x18; }
  // The sense code of a CHECK CONDITION; {} when there is none or it does not parse.
  [[nodiscard]] spec::SenseCode code() const {
    auto parsed = spec::ParseSense(sense);
    return parsed ? parsed->code : spec::SenseCode{};
  }
  [[nodiscard]] std::span<const std::byte> received() const {
    return std::span<const std::byte>(buffer).first(buffer.size() - std::min<std::size_t>(residual, buffer.size()));
  }
  [[nodiscard]] std::vector<std::uint8_t> received_u8() const {
    auto r = received();
    std::vector<std::uint8_t> out(r.size());
    if (!r.empty()) std::memcpy(out.data(), r.data(), r.size());
    return out;
  }
  [[nodiscard]] std::uint8_t at(std::size_t i) const { return static_cast<std::uint8_t>(buffer.at(i)); }
};

inline std::vector<std::byte> Pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 9)) & 0xFF);
  return out;
}

template <wire::WireStruct T>
void Append(std::vector<std::byte>& out, const T& value) {
  // resize + memcpy rather than insert: g++ 12 at -O2 misreads a span insert as an overflow (-Wstringop-overflow).
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

// One initiator port on one target port. Threading: one thread at a time.
class Host {
 public:
  Host(Array& array, std::string initiator, std::uint16_t port) : initiator_(std::move(initiator)), port_(port) {
    auto transport = array.Connect(initiator_, port_);
    EXPECT_TRUE(transport.has_value()) << (transport ? "" : transport.error().ToString());
    if (transport) transport_ = std::move(*transport);
  }

  // Sends raw CDB bytes with a data buffer (data-in of `buffer.size()` bytes, or data-out of its contents).
  Answer Raw(std::uint64_t lun, std::span<const std::uint8_t> cdb, DataDirection direction,
             std::vector<std::byte> buffer) {
    ScsiCommand c;
    if (!cdb.empty()) std::memcpy(c.cdb.data(), cdb.data(), std::min(cdb.size(), c.cdb.size()));
    c.cdb_length = static_cast<std::uint8_t>(cdb.size());
    c.direction = direction;
    c.data = buffer;
    c.status = 0xFF;  // the transport must overwrite everything it answers
    c.residual = 0xDEAD;
    c.delivery = Delivery::kTimedOut;
    bool finished = false;
    c.OnFinish([](ScsiCommand&, void* arg) { *static_cast<bool*>(arg) = true; }, &finished);
    transport_->Submit(lun, c);
    EXPECT_TRUE(finished) << "the array completes inline";
    Answer a;
    a.delivery = c.delivery;
    a.status = c.status;
    a.sense.assign(c.sense.begin(), c.sense.begin() + c.sense_length);
    a.residual = c.residual;
    a.buffer = std::move(buffer);
    return a;
  }

  template <wire::WireStruct Cdb>
  Answer In(std::uint64_t lun, const Cdb& cdb, std::size_t size) {
    return Raw(lun, AsCdb(cdb), DataDirection::kFromDevice, std::vector<std::byte>(size, std::byte{0xCC}));
  }
  template <wire::WireStruct Cdb>
  Answer Out(std::uint64_t lun, const Cdb& cdb, std::vector<std::byte> data) {
    return Raw(lun, AsCdb(cdb), DataDirection::kToDevice, std::move(data));
  }
  template <wire::WireStruct Cdb>
  Answer None(std::uint64_t lun, const Cdb& cdb) {
    return Raw(lun, AsCdb(cdb), DataDirection::kNone, {});
  }

  // Takes every pending unit attention of `lun` with TEST UNIT READY; returns them oldest first.
  std::vector<spec::SenseCode> DrainUnitAttentions(std::uint64_t lun = 0) {
    std::vector<spec::SenseCode> out;
    for (int i = 0; i < 32; ++i) {
      Answer a = None(lun, spec::TestUnitReadyCdb::Make());
      if (!a.check_condition() || a.code().key != spec::SenseKey::kUnitAttention) break;
      out.push_back(a.code());
    }
    return out;
  }

  ScsiTransport& transport() { return *transport_; }
  void Disconnect() { transport_.reset(); }

 private:
  template <wire::WireStruct Cdb>
  static std::vector<std::uint8_t> AsCdb(const Cdb& cdb) {
    auto b = wire::BytesOf(cdb);
    std::vector<std::uint8_t> out(b.size());
    std::memcpy(out.data(), b.data(), b.size());
    return out;
  }

  std::string initiator_;
  std::uint16_t port_;
  std::unique_ptr<ScsiTransport> transport_;
};

inline constexpr std::array<std::uint8_t, 16> kNaa = {0x60, 0x01, 0x40, 0x5a, 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
inline constexpr std::uint64_t kBlocks = 4096;
inline constexpr std::uint32_t kBlockSize = 512;
inline const std::string kHostA = "iqn.2026-01.io.mpath:host-a";
inline const std::string kHostB = "iqn.2026-01.io.mpath:host-b";

inline LogicalUnitConfig DefaultLu(std::uint64_t lun = 0) {
  LogicalUnitConfig lu;
  lu.lun = lun;
  lu.blocks = kBlocks;
  lu.block_size = kBlockSize;
  lu.naa = kNaa;
  lu.naa[15] = static_cast<std::uint8_t>(lun + 1);
  lu.serial = "sim-disk" + std::to_string(lun);
  lu.max_transfer_blocks = 256;
  lu.max_unmap_blocks = 2048;
  lu.max_unmap_descriptors = 4;
  lu.max_write_same_blocks = 1024;
  return lu;
}

// The LIO lab layout. Hosts a (port 1) and b (port 2) start with their 29/00 already taken.
class ArrayTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(ArrayConfig{}); }

  void Build(ArrayConfig config) {
    a_.reset();
    b_.reset();
    array_.reset();
    auto created = Array::Create(std::move(config), clock_);
    ASSERT_TRUE(created) << created.error().ToString();
    array_ = std::move(*created);
    ASSERT_TRUE(array_->AddPortGroup({.id = 10, .state = AluaState::kActiveOptimized, .relative_ports = {1}}));
    ASSERT_TRUE(array_->AddPortGroup({.id = 20, .state = AluaState::kActiveNonOptimized, .relative_ports = {2}}));
    ASSERT_TRUE(array_->AddLogicalUnit(DefaultLu(0)));
    a_ = std::make_unique<Host>(*array_, kHostA, 1);
    b_ = std::make_unique<Host>(*array_, kHostB, 2);
    a_->DrainUnitAttentions();
    b_->DrainUnitAttentions();
  }

  void TearDown() override {
    a_.reset();
    b_.reset();
    array_.reset();
  }

  Host& a() { return *a_; }
  Host& b() { return *b_; }
  Array& array() { return *array_; }

  ManualClock clock_;
  std::unique_ptr<Array> array_;
  std::unique_ptr<Host> a_;
  std::unique_ptr<Host> b_;
};

}  // namespace mpath::scsi::fake::testing
