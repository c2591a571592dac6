#include "mpath/nbd/export.h"

namespace mpath::nbd {

std::uint16_t ExportInfo::TransmissionFlags() const {
  // Reads are never fragmented, so NBD_CMD_FLAG_DF is honoured for free (the handshake drops SEND_DF for a client
  // without structured replies, as the protocol asks); FUA maps onto the head's FUA writes.
  std::uint16_t flags = spec::kTxHasFlags | spec::kTxSendFlush | spec::kTxSendFua | spec::kTxSendDf;
  if (read_only) flags |= spec::kTxReadOnly;
  if (multi_conn) flags |= spec::kTxCanMultiConn;
  if (trim && !read_only) flags |= spec::kTxSendTrim;
  if (write_zeroes && !read_only) flags |= spec::kTxSendWriteZeroes;
  return flags;
}

}  // namespace mpath::nbd
