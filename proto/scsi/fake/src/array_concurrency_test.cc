// Several initiators submitting on several nexuses from their own threads while the device side changes state:
// the answers stay consistent and ThreadSanitizer finds nothing to say.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "array_test_util.h"
#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::testing {
namespace {

namespace asc = spec::asc;

// Retries through unit attentions and access-state refusals, the way a multipath initiator would.
Answer UntilDone(Host& host, const std::function<Answer(Host&)>& send) {
  Answer r;
  for (int attempt = 0; attempt < 100000; ++attempt) {
    r = send(host);
    const auto key = r.code().key;
    if (!r.check_condition() || (key != spec::SenseKey::kUnitAttention && key != spec::SenseKey::kNotReady)) break;
    std::this_thread::yield();
  }
  return r;
}

using ArrayConcurrency = ArrayTest;

TEST_F(ArrayConcurrency, ManyNexusesManyThreads) {
  constexpr int kWorkers = 4;
  constexpr int kRounds = 150;
  std::vector<std::unique_ptr<Host>> hosts;
  for (int i = 0; i < kWorkers; ++i) {
    hosts.push_back(std::make_unique<Host>(array(), "iqn.2026-01.io.mpath:worker-" + std::to_string(i),
                                           static_cast<std::uint16_t>(1 + i % 2)));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> mismatches{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.emplace_back([&, i] {
      Host& host = *hosts[static_cast<std::size_t>(i)];
      const std::uint32_t lba = static_cast<std::uint32_t>(i) * 64;
      for (int round = 0; round < kRounds; ++round) {
        const auto data = Pattern(4 * kBlockSize, static_cast<std::uint8_t>(i * 31 + round));
        Answer w = UntilDone(host, [&](Host& h) { return h.Out(0, spec::Write10Cdb::Make(lba, 4), data); });
        Answer r = UntilDone(host, [&](Host& h) { return h.In(0, spec::Read16Cdb::Make(lba, 4), 4 * kBlockSize); });
        if (!w.good() || !r.good() || r.buffer != data) {
          ++mismatches;
          ADD_FAILURE() << "worker " << i << " round " << round << " write " << int(w.status) << " "
                        << int(w.code().asc) << "/" << int(w.code().ascq) << " read " << int(r.status) << " "
                        << int(r.code().asc) << "/" << int(r.code().ascq) << " same " << (r.buffer == data);
        }
        if (round % 16 == 0) {
          host.In(0, spec::InquiryCdb::Vpd(spec::vpd::kDeviceIdentification, 256), 256);
          Answer rtpg = UntilDone(host, [](Host& h) { return h.In(0, spec::ReportTargetPortGroupsCdb::Make(256), 256); });
          spec::RtpgReader reader(rtpg.received());
          int groups = 0;
          while (reader.Next()) ++groups;
          if (rtpg.good() && groups != 2) ++mismatches;
        }
      }
    });
  }
  // The device side: access-state changes, unit attentions and observation, all from another thread. A bounded
  // number of changes, so that the initiators, which must take a unit attention before anything else, finish.
  std::thread control([&] {
    for (int i = 0; i < 300 && !stop.load(); ++i) {
      (void)array().SetAccessState(20, (i % 2) ? AluaState::kActiveNonOptimized : AluaState::kActiveOptimized);
      if (i % 3 == 0) array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
      (void)array().AccessState(10);
      (void)array().CommandCount(spec::op::kRead16);
      (void)array().AllocatedBytes(0);
      std::this_thread::yield();
    }
  });
  for (auto& t : workers) t.join();
  stop.store(true);
  control.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GE(array().CommandCount(spec::op::kRead16), std::uint64_t{kWorkers * kRounds});
  hosts.clear();
}

// A completion may submit again from inside Finish: the array has dropped its lock by then.
TEST_F(ArrayConcurrency, CompletionMaySubmitAgain) {
  struct Chain {
    ScsiTransport* transport;
    ScsiCommand command;
    int remaining = 3;
  } chain{&a().transport(), {}, 3};
  const auto cdb = spec::TestUnitReadyCdb::Make();
  chain.command.SetCdb(cdb);
  chain.command.OnFinish(
      [](ScsiCommand&, void* arg) {
        auto* c = static_cast<Chain*>(arg);
        if (--c->remaining > 0) {
          c->command.ResetAnswer();
          c->transport->Submit(0, c->command);
        }
      },
      &chain);
  chain.transport->Submit(0, chain.command);
  EXPECT_EQ(chain.remaining, 0);
  EXPECT_EQ(chain.command.status, 0);
}

}  // namespace
}  // namespace mpath::scsi::fake::testing
