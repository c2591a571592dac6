// The faults of one simulated link (an I_T nexus or an NVMe controller connection), protocol-neutral: the SCSI and
// NVMe fault decorators ask it what to do with each command. Deterministic under a seed and an injected clock.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>

#include "mpath/core/clock.h"

namespace mpath::sim {

// What the link does with one command.
enum class LinkAction : std::uint8_t {
  kDeliver,          // pass it to the device (after `delay`)
  kLinkDown,         // fail it at once: no connection
  kHang,             // never answer; the initiator's timeout ends it
  kFailIo,           // a path that reports ready but fails every I/O: the transport aborts media commands
  kDropCompletion,   // deliver it, lose the answer; the initiator's timeout ends it
};

struct LinkVerdict {
  LinkAction action = LinkAction::kDeliver;
  Nanos delay{0};
};

// The current fault settings, for listings and reports.
struct LinkFaultSettings {
  bool link_down = false;
  bool hang = false;
  Nanos latency{0};
  Nanos jitter{0};
  bool fail_io = false;
  std::optional<std::uint64_t> fail_io_unit;  // only this LUN / NSID fails; nullopt: every unit
  Nanos flap_down{0};                         // flapping: down this long, then up `flap_up`, repeating
  Nanos flap_up{0};
  double drop_probability = 0.0;
};

// How often each fault acted, for tests and the demo's report.
struct LinkFaultCounts {
  std::uint64_t delivered = 0;
  std::uint64_t link_down = 0;
  std::uint64_t hung = 0;
  std::uint64_t failed_io = 0;
  std::uint64_t dropped = 0;
};

// Threading: every method is safe from any thread (one mutex; the simulator is not on mpath's hot path).
class LinkFaults {
 public:
  // `clock` must outlive this object; flapping phases are measured on it.
  LinkFaults(const Clock& clock, std::uint64_t seed);

  void SetLinkDown(bool down);
  void SetHang(bool hang);
  // Every delivered command waits `latency` plus a uniform draw from [0, jitter].
  void SetLatency(Nanos latency, Nanos jitter = Nanos(0));
  void SetFailIo(bool fail, std::optional<std::uint64_t> only_unit = std::nullopt);
  // Down for `down`, up for `up`, repeating from now (down first); zero `down` stops flapping.
  void SetFlapping(Nanos down, Nanos up);
  // Each delivered command loses its answer with this probability (0 off, 1 every command).
  void SetDropCompletions(double probability);
  // Back to a healthy link; the random sequence carries on.
  void Clear();

  // Decides the fate of one command. `media_io` is true for reads, writes and their kin (not for TEST UNIT READY,
  // INQUIRY, Identify, Keep Alive...); `unit` is its LUN or NSID.
  LinkVerdict Decide(bool media_io, std::uint64_t unit);
  // True while the link is down or in a down phase of flapping: a command that waited out its latency checks again.
  [[nodiscard]] bool IsDown() const;

  [[nodiscard]] LinkFaultSettings settings() const;
  [[nodiscard]] LinkFaultCounts counts() const;

 private:
  [[nodiscard]] bool IsDownLocked() const;

  const Clock& clock_;
  mutable std::mutex mu_;
  LinkFaultSettings settings_;   // guarded by mu_
  TimePoint flap_origin_{};      // guarded by mu_
  LinkFaultCounts counts_;       // guarded by mu_
  std::mt19937_64 random_;       // guarded by mu_
};

}  // namespace mpath::sim
