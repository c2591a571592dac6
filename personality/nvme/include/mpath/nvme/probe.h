// Discovery over one controller: the commands Linux's nvme core sends before a namespace is usable (Identify
// controller, the active namespace list, Identify namespace and its identification descriptors), sent asynchronously
// through the transport seam on the admin queue.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/executor.h"
#include "mpath/nvme/identity.h"
#include "mpath/nvme/transport.h"

namespace mpath::nvme {

struct ProbeOptions {
  Nanos command_timeout = std::chrono::seconds(60);  // per admin command; 0: the transport's default
};

struct ProbedController {
  ControllerSummary controller;
  std::vector<std::uint32_t> active_nsids;  // CNS 02h, every page of it, ascending
};

struct ProbedNamespace {
  NamespaceSummary ns;
  std::optional<spec::NamespaceIdentifiers> descriptors;  // nullopt when CNS 03h was refused
  NamespaceIdentity identity;
};

using ControllerProbeCallback = std::move_only_function<void(Result<ProbedController>)>;
using NamespaceProbeCallback = std::move_only_function<void(Result<ProbedNamespace>)>;

// Identify Controller, then the active namespace list (CNS 02h, continued from the last NSID while a page comes back
// full). Every command is submitted from `executor`'s thread with command.executor = &executor; `done` runs exactly
// once, on that thread, with the result or the first error:
//   - kPathError / kTimedOut / kAborted: a command was not delivered;
//   - kTargetError: a command failed (the raw NVMe status kept) or its data is malformed.
// REQUIRES: `transport` and `executor` outlive the probe (until `done` has run).
// Threading: may be called from any thread; the work runs as tasks on `executor`.
void ProbeController(NvmeTransport& transport, Executor& executor, ProbeOptions options, ControllerProbeCallback done);

// Identify Namespace for `nsid`, then its descriptor list (a refusal of CNS 03h is not an error: the identity then
// comes from Identify Namespace), and the identity chosen by ChooseNamespaceIdentity. An inactive NSID is kNotFound.
// Same contract as ProbeController otherwise.
void ProbeNamespace(NvmeTransport& transport, const ControllerSummary& controller, std::uint32_t nsid,
                    Executor& executor, ProbeOptions options, NamespaceProbeCallback done);

}  // namespace mpath::nvme
