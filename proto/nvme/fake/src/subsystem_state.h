// The simulated subsystem's state and the command handlers that read and change it. Private to the fake: the public
// face is mpath/nvme/fake/subsystem.h.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/spec/async_event.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/status.h"
#include "reservation_book.h"
#include "mpath/proto/sparse_store.h"

namespace mpath::nvme::fake {

// Entries of every submission queue: SQHD wraps here, and Identify reports it as MAXCMD.
inline constexpr std::uint16_t kQueueEntries = 128;
// Asynchronous Event Requests a controller keeps outstanding (AERL + 1).
inline constexpr std::size_t kAerLimit = 4;
// I/O queues every controller grants (Number of Queues, 0-based in the feature).
inline constexpr std::uint16_t kIoQueues = 64;

struct NamespaceState {
  NamespaceConfig config;
  std::uint8_t lbads = 9;
  proto::SparseStore data;
  ReservationBook reservations;

  [[nodiscard]] std::uint64_t blocks() const { return config.blocks; }
};

// One ANA group as seen through one port.
struct GroupState {
  AnaState state = AnaState::kOptimized;  // what the log reports now: kChange while a transition runs
  std::optional<AnaState> target;         // where a running transition ends
  TimePoint transition_end{};
  std::uint64_t chgcnt = 0;
};

struct PortState {
  std::map<std::uint32_t, GroupState> groups;  // a group never set here is optimized with change count 0
};

struct ControllerState {
  std::uint16_t cntlid = 0;
  std::uint16_t port_id = 0;
  std::string host_nqn;
  spec::HostId host_id{};
  std::uint32_t async_event_config = 0;  // Set Features 0Bh
  std::uint32_t kato_ms = 0;             // Set Features 0Fh; stored, not enforced
  std::deque<NvmeCommand*> outstanding_aers;
  std::deque<spec::AsyncEvent> pending_events;  // raised while no request was outstanding
  std::uint32_t masked_notices = 0;       // bit n: notice n was sent and its log not yet read with RAE cleared
  std::set<std::uint32_t> changed_nsids;  // the Changed Namespace List log
  bool changed_overflow = false;
  std::array<std::uint16_t, 2> sq_head{};  // admin, I/O
};

// Threading: every member is guarded by mu except those marked constant.
struct Subsystem::State {
  State(SubsystemConfig c, const Clock& clk) : config(std::move(c)), clock(clk) {}

  // Constant after construction.
  const SubsystemConfig config;
  const Clock& clock;

  mutable std::mutex mu;
  // Guarded by mu.
  std::map<std::uint16_t, PortState> ports;
  std::map<std::uint32_t, std::unique_ptr<NamespaceState>> namespaces;
  std::map<std::uint16_t, ControllerState> controllers;
  std::uint16_t next_cntlid = 1;
  std::uint64_t ana_chgcnt = 0;
  std::array<std::array<std::uint64_t, 256>, 2> command_counts{};
  std::array<std::array<CommandHandler, 256>, 2> handlers;
  // Asynchronous Event Requests finished under mu, to be posted to their executors once mu is released: a posted
  // task may run at once on another thread and submit again.
  std::vector<NvmeCommand*> outbox;

  // Runs `body` under mu, after ending the ANA transitions whose time has come, then posts the completions it left in
  // the outbox.
  template <typename Body>
  auto Locked(Body&& body) -> std::invoke_result_t<Body&> {
    std::vector<NvmeCommand*> finished;
    if constexpr (std::is_void_v<std::invoke_result_t<Body&>>) {
      {
        std::lock_guard lock(mu);
        AdvanceTransitions();
        body();
        finished.swap(outbox);
      }
      PostCompletions(finished);
    } else {
      auto result = [&] {
        std::lock_guard lock(mu);
        AdvanceTransitions();
        auto r = body();
        finished.swap(outbox);
        return r;
      }();
      PostCompletions(finished);
      return result;
    }
  }
  static void PostCompletions(const std::vector<NvmeCommand*>& finished);

  // --- Everything below REQUIRES mu.

  // Executes one command as the controller `cntlid`; returns false when the command is held for later.
  bool Execute(Subsystem& self, std::uint16_t cntlid, NvmeCommand& command);
  void Dispatch(CommandContext& context);
  void FillCompletionHeader(ControllerState& controller, NvmeCommand& command);

  // ANA.
  void AdvanceTransitions();
  [[nodiscard]] AnaState CurrentAnaState(std::uint16_t port_id, std::uint32_t group);
  void ChangeGroup(std::uint16_t port_id, GroupState& group);
  [[nodiscard]] std::vector<std::byte> BuildAnaLog(const ControllerState& controller, bool groups_only);

  // Asynchronous events.
  void RaiseNotice(ControllerState& controller, const spec::AsyncEvent& event);
  void NotifyPort(std::uint16_t port_id, const spec::AsyncEvent& event);
  void NamespaceChanged(std::uint32_t nsid);
  void CompleteAer(ControllerState& controller, NvmeCommand& command, const spec::AsyncEvent& event);

  [[nodiscard]] NamespaceState* FindNamespace(std::uint32_t nsid);
  [[nodiscard]] std::uint64_t MaxTransferBytes() const;

  // Admin commands (admin_commands.cc).
  spec::Status ExecuteAdmin(CommandContext& context, ControllerState& controller);
  spec::Status Identify(ControllerState& controller, NvmeCommand& command);
  spec::Status GetLogPage(ControllerState& controller, NvmeCommand& command);
  spec::Status SetFeatures(ControllerState& controller, NvmeCommand& command);
  spec::Status GetFeatures(ControllerState& controller, NvmeCommand& command);
  spec::Status AsyncEventRequest(CommandContext& context, ControllerState& controller);

  // I/O commands (io_commands.cc).
  spec::Status ExecuteIo(ControllerState& controller, NvmeCommand& command);
  spec::Status ReadWrite(NamespaceState& ns, NvmeCommand& command, bool write);
  spec::Status WriteZeroes(NamespaceState& ns, NvmeCommand& command);
  spec::Status DatasetManagement(NamespaceState& ns, NvmeCommand& command);
  spec::Status ReservationReport(NamespaceState& ns, NvmeCommand& command);
};

}  // namespace mpath::nvme::fake
