#include "mpath/sim/link_faults.h"

#include <algorithm>

namespace mpath::sim {

LinkFaults::LinkFaults(const Clock& clock, std::uint64_t seed) : clock_(clock), random_(seed) {}

void LinkFaults::SetLinkDown(bool down) {
  std::lock_guard lock(mu_);
  settings_.link_down = down;
}

void LinkFaults::SetHang(bool hang) {
  std::lock_guard lock(mu_);
  settings_.hang = hang;
}

void LinkFaults::SetLatency(Nanos latency, Nanos jitter) {
  std::lock_guard lock(mu_);
  settings_.latency = std::max(latency, Nanos(0));
  settings_.jitter = std::max(jitter, Nanos(0));
}

void LinkFaults::SetFailIo(bool fail, std::optional<std::uint64_t> only_unit) {
  std::lock_guard lock(mu_);
  settings_.fail_io = fail;
  settings_.fail_io_unit = fail ? only_unit : std::nullopt;
}

void LinkFaults::SetFlapping(Nanos down, Nanos up) {
  std::lock_guard lock(mu_);
  settings_.flap_down = std::max(down, Nanos(0));
  settings_.flap_up = std::max(up, Nanos(0));
  flap_origin_ = clock_.Now();
}

void LinkFaults::SetDropCompletions(double probability) {
  std::lock_guard lock(mu_);
  settings_.drop_probability = std::clamp(probability, 0.0, 1.0);
}

void LinkFaults::Clear() {
  std::lock_guard lock(mu_);
  settings_ = {};
}

bool LinkFaults::IsDownLocked() const {
  if (settings_.link_down) return true;
  if (settings_.flap_down <= Nanos(0)) return false;
  const Nanos cycle = settings_.flap_down + settings_.flap_up;
  const Nanos into_cycle = (clock_.Now() - flap_origin_) % cycle;
  return into_cycle < settings_.flap_down;
}

bool LinkFaults::IsDown() const {
  std::lock_guard lock(mu_);
  return IsDownLocked();
}

LinkVerdict LinkFaults::Decide(bool media_io, std::uint64_t unit) {
  std::lock_guard lock(mu_);
  if (IsDownLocked()) {
    ++counts_.link_down;
    return {LinkAction::kLinkDown, Nanos(0)};
  }
  if (settings_.hang) {
    ++counts_.hung;
    return {LinkAction::kHang, Nanos(0)};
  }
  Nanos delay = settings_.latency;
  if (settings_.jitter > Nanos(0)) {
    std::uniform_int_distribution<Nanos::rep> draw(0, settings_.jitter.count());
    delay += Nanos(draw(random_));
  }
  if (media_io && settings_.fail_io && (!settings_.fail_io_unit || *settings_.fail_io_unit == unit)) {
    ++counts_.failed_io;
    return {LinkAction::kFailIo, delay};
  }
  if (settings_.drop_probability > 0.0 && std::bernoulli_distribution(settings_.drop_probability)(random_)) {
    ++counts_.dropped;
    return {LinkAction::kDropCompletion, delay};
  }
  ++counts_.delivered;
  return {LinkAction::kDeliver, delay};
}

LinkFaultSettings LinkFaults::settings() const {
  std::lock_guard lock(mu_);
  return settings_;
}

LinkFaultCounts LinkFaults::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

}  // namespace mpath::sim
