#include "mpath/core/registry.h"

#include <algorithm>

#include <fmt/format.h>

namespace mpath {

OptInDecision DecideOptIn(const OptInPolicy& policy, const DeviceInfo& info) {
  const auto& out = policy.opted_out_transports;
  if (std::find(out.begin(), out.end(), info.transport) != out.end()) {
    return {false, fmt::format("transport '{}' is opted out of multipath", info.transport)};
  }
  switch (policy.mode) {
    case MultipathMode::kOff:
      return {false, "multipath is off"};
    case MultipathMode::kOn:
      if (info.identity.empty()) return {false, "the device reports no identity"};
      if (!info.reports_access_states) {
        return {false, "the device reports no asymmetric access states (multipath = on needs them; always does not)"};
      }
      return {true, fmt::format("identity {} with asymmetric access states", info.identity.str())};
    case MultipathMode::kAlways:
      if (info.identity.empty()) return {false, "the device reports no identity"};
      return {true, fmt::format("identity {} (multipath = always)", info.identity.str())};
    default:
      return {false, "unknown multipath mode"};
  }
}

Result<void> RegistryOptions::Validate() const {
  if (head_name_prefix.empty()) return MakeError(Errc::kInvalidArgument, "the head name prefix must not be empty");
  return head.Validate();
}

Result<std::unique_ptr<Registry>> Registry::Create(RegistryOptions options, Executor& control) {
  MPATH_TRY(options.Validate());
  return std::unique_ptr<Registry>(new Registry(std::move(options), control));
}

Registry::Registry(RegistryOptions options, Executor& control)
    : options_(std::move(options)), control_(control), self_(std::make_shared<Registry*>(this)) {}

Registry::~Registry() = default;

Result<Attachment> Registry::Attach(const DeviceInfo& info, const HeadTemplate& personality,
                                    std::unique_ptr<PathDriver> driver) {
  if (driver == nullptr) return MakeError(Errc::kInvalidArgument, fmt::format("path '{}' has no driver", info.name));
  if (info.name.empty()) return MakeError(Errc::kInvalidArgument, "a path needs a name");
  OptInDecision decision = DecideOptIn(options_.opt_in, info);
  if (!decision.multipath) {
    Attachment direct;
    direct.direct = std::make_unique<DirectDevice>(info, std::move(driver));
    direct.reason = std::move(decision.reason);
    return direct;
  }

  std::lock_guard lock(mu_);
  if (auto it = head_of_path_.find(info.name); it != head_of_path_.end()) {
    return MakeError(Errc::kAlreadyExists,
                     fmt::format("path '{}' is already attached to head '{}'", info.name, it->second->name()));
  }
  // A head that removed itself may still be listed until its announcement runs; it never takes paths again.
  std::erase_if(heads_, [](const auto& head) { return head->state() == HeadState::kRemoved; });
  auto it = std::find_if(heads_.begin(), heads_.end(),
                         [&](const auto& head) { return head->identity() == info.identity; });
  std::shared_ptr<Head> head;
  bool created = false;
  if (it != heads_.end()) {
    head = *it;
    if (&head->personality() != &personality) {
      return MakeError(Errc::kMismatch,
                       fmt::format("path '{}' is a {} path but head '{}' is a {} head", info.name,
                                   personality.protocol(), head->name(), head->personality().protocol()));
    }
  } else {
    Head::Config config{fmt::format("{}{}", options_.head_name_prefix, next_head_number_), info.identity,
                        info.capacity_bytes, info.block_size, options_.head};
    std::weak_ptr<Registry*> weak_self = self_;
    head = MPATH_TRY(Head::Create(std::move(config), personality, control_, [weak_self](Head& removed) {
      if (auto self = weak_self.lock()) (*self)->OnHeadRemoved(removed);
    }));
    created = true;
  }
  PathId id = MPATH_TRY(head->AddPath(info, std::move(driver)));
  if (created) {
    ++next_head_number_;
    heads_.push_back(head);
  }
  head_of_path_[info.name] = head;
  Attachment attachment;
  attachment.head = std::move(head);
  attachment.path = id;
  attachment.reason = std::move(decision.reason);
  return attachment;
}

Result<void> Registry::Detach(std::string_view path_name) {
  std::lock_guard lock(mu_);
  auto it = head_of_path_.find(std::string(path_name));
  if (it == head_of_path_.end()) {
    return MakeError(Errc::kNotFound, fmt::format("no multipath path is named '{}'", path_name));
  }
  std::shared_ptr<Head> head = it->second;
  head_of_path_.erase(it);
  auto path = head->FindPath(path_name);
  if (!path) return MakeError(Errc::kNotFound, fmt::format("head '{}' has no path '{}'", head->name(), path_name));
  return head->RemovePath(path->id());
}

std::vector<std::shared_ptr<Head>> Registry::Heads() const {
  std::lock_guard lock(mu_);
  return heads_;
}

std::shared_ptr<Head> Registry::FindHead(std::string_view name_or_identity) const {
  std::lock_guard lock(mu_);
  for (const auto& head : heads_) {
    if (head->name() == name_or_identity || head->identity().str() == name_or_identity) return head;
  }
  return nullptr;
}

void Registry::OnHeadRemoved(Head& head) {
  std::lock_guard lock(mu_);
  std::erase_if(heads_, [&](const auto& h) { return h.get() == &head; });
  std::erase_if(head_of_path_, [&](const auto& entry) { return entry.second.get() == &head; });
}

}  // namespace mpath
