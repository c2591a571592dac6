#!/usr/bin/env python3
"""A raw-socket NBD client that says what well-behaved clients never do, and checks the server's answers.

Usage: bad_client.py SOCKET EXPORT [--daemon-pid PID] [--max-connections N]

Each case opens its own connection, misbehaves in one way, and checks the answer the NBD protocol asks for: a close,
an option error reply after which haggling goes on, or an error reply after which transmission goes on. After every
case a fresh, well-behaved client writes and reads back a block, and the daemon must still be running. Every socket
operation has a timeout, so a server that hangs fails the case instead of the test run.

Only the standard library. Constants come from the NBD protocol document (NetworkBlockDevice/nbd doc/proto.md).
"""

import argparse
import os
import socket
import struct
import sys
import time

# NBD protocol "Newstyle negotiation" and "Fixed newstyle negotiation".
NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPTION_REPLY_MAGIC = 0x3E889045565A9
FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1
CLIENT_FLAGS = FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES

# NBD protocol "Option types".
OPT_EXPORT_NAME = 1
OPT_LIST = 3
OPT_INFO = 6
OPT_GO = 7

# NBD protocol "Option reply types".
REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_ERR = 1 << 31
REP_ERR_UNSUP = REP_ERR | 1
REP_ERR_UNKNOWN = REP_ERR | 6
REP_ERR_TOO_BIG = REP_ERR | 9

# NBD protocol "NBD_REP_INFO" types.
INFO_EXPORT = 0
INFO_BLOCK_SIZE = 3

# NBD protocol "Request message", "Simple reply message", "Request types".
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2

# NBD protocol "Error values".
EINVAL = 22
ENOSPC = 28
EOVERFLOW = 75

TIMEOUT = 5.0  # seconds any one socket operation may take


class Closed(Exception):
    """The server closed the connection."""


class Failure(Exception):
    """The server answered something other than what the case expects."""


def expect(condition, what):
    if not condition:
        raise Failure(what)


class Client:
    """One connection, spoken to byte by byte. Thread-unsafe."""

    def __init__(self, address):
        family = socket.AF_INET if isinstance(address, tuple) else socket.AF_UNIX
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(address)

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        chunks = []
        while n:
            try:
                chunk = self.sock.recv(min(n, 1 << 20))
            except ConnectionResetError as e:
                raise Closed() from e
            if not chunk:
                raise Closed()
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def expect_closed(self, what):
        """The server must close the connection within TIMEOUT, answering nothing before it does."""
        deadline = time.monotonic() + TIMEOUT
        received = b""
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                return
            except socket.timeout:
                break
            if not chunk:
                expect(not received, f"{what}: the server answered {received[:64].hex()} before closing")
                return
            received += chunk
        raise Failure(f"{what}: the connection is still open after {TIMEOUT} s")

    # --- Handshake.

    def greeting(self):
        magic, ihaveopt, flags = struct.unpack(">QQH", self.recv_exact(18))
        expect(magic == NBDMAGIC and ihaveopt == IHAVEOPT, f"bad greeting magics {magic:#x} {ihaveopt:#x}")
        expect(flags & FLAG_FIXED_NEWSTYLE, f"greeting flags {flags:#x} lack FIXED_NEWSTYLE")

    def start(self):
        self.greeting()
        self.send(struct.pack(">I", CLIENT_FLAGS))

    def send_option(self, option, data=b"", length=None):
        self.send(struct.pack(">QII", IHAVEOPT, option, len(data) if length is None else length) + data)

    def option_reply(self, option):
        magic, echoed, reply_type, length = struct.unpack(">QIII", self.recv_exact(20))
        expect(magic == OPTION_REPLY_MAGIC, f"option reply magic {magic:#x}")
        expect(echoed == option, f"option reply for option {echoed}, expected {option}")
        return reply_type, self.recv_exact(length)

    def info_or_go(self, option, name):
        """Sends NBD_OPT_INFO or NBD_OPT_GO asking for the block sizes; returns (final reply type, infos)."""
        encoded = name.encode()
        self.send_option(option, struct.pack(">I", len(encoded)) + encoded + struct.pack(">HH", 1, INFO_BLOCK_SIZE))
        infos = {}
        while True:
            reply_type, data = self.option_reply(option)
            if reply_type != REP_INFO:
                return reply_type, infos
            (info_type,) = struct.unpack(">H", data[:2])
            if info_type == INFO_EXPORT:
                infos["size"], infos["flags"] = struct.unpack(">QH", data[2:12])
            elif info_type == INFO_BLOCK_SIZE:
                infos["min"], infos["preferred"], infos["max"] = struct.unpack(">III", data[2:14])

    def go(self, name):
        reply_type, infos = self.info_or_go(OPT_GO, name)
        expect(reply_type == REP_ACK, f"NBD_OPT_GO {name!r} answered {reply_type:#x}")
        expect("size" in infos, "NBD_OPT_GO succeeded without NBD_INFO_EXPORT")
        self.size = infos["size"]
        self.block = infos.get("min", 1)
        return infos

    def list_exports(self):
        self.send_option(OPT_LIST)
        names = []
        while True:
            reply_type, data = self.option_reply(OPT_LIST)
            if reply_type == REP_ACK:
                return names
            expect(reply_type == REP_SERVER, f"NBD_OPT_LIST answered {reply_type:#x}")
            (length,) = struct.unpack(">I", data[:4])
            names.append(data[4 : 4 + length].decode())

    # --- Transmission (simple replies: structured replies are never asked for).

    def request(self, command, offset, length, cookie, payload=b"", flags=0, magic=REQUEST_MAGIC):
        self.send(struct.pack(">IHHQQI", magic, flags, command, cookie, offset, length) + payload)

    def reply(self, cookie, data_length=0):
        """Reads one simple reply for `cookie`; returns (error, data). Data follows only a successful read."""
        magic, error, echoed = struct.unpack(">IIQ", self.recv_exact(16))
        expect(magic == SIMPLE_REPLY_MAGIC, f"reply magic {magic:#x}")
        expect(echoed == cookie, f"reply for cookie {echoed:#x}, expected {cookie:#x}")
        return error, (self.recv_exact(data_length) if error == 0 else b"")

    def expect_error(self, want, what, command, offset, length, cookie, payload=b""):
        self.request(command, offset, length, cookie, payload)
        error, _ = self.reply(cookie)
        expect(error in want, f"{what}: error {error}, expected one of {sorted(want)}")

    def write_read(self, offset, data, cookie):
        self.request(CMD_WRITE, offset, len(data), cookie, data)
        error, _ = self.reply(cookie)
        expect(error == 0, f"write at {offset}: error {error}")
        self.request(CMD_READ, offset, len(data), cookie + 1)
        error, back = self.reply(cookie + 1, len(data))
        expect(error == 0 and back == data, f"read back at {offset}: error {error}, data differs: {back != data}")

    def disconnect(self):
        self.request(CMD_DISC, 0, 0, 0xD15C)
        self.close()


class Cases:
    def __init__(self, address, export, daemon_pid, max_connections):
        self.address = address
        self.export = export
        self.daemon_pid = daemon_pid
        self.max_connections = max_connections
        self.passed = 0
        self.size = 0
        self.block = 512

    def connect(self):
        return Client(self.address)

    def transmission(self):
        client = self.connect()
        client.start()
        client.go(self.export)
        return client

    def healthy(self, index):
        """A fresh client still works (writes and reads back one block of its own) and the daemon is alive."""
        if self.daemon_pid:
            try:
                os.kill(self.daemon_pid, 0)
            except ProcessLookupError as e:
                raise Failure("the daemon is gone") from e
        client = self.transmission()
        block = max(client.block, 4096)
        data = bytes((index * 7 + i) & 0xFF for i in range(block))
        client.write_read((index + 1) * block * 16, data, 0x1000 + index * 2)
        client.disconnect()

    def run(self, name, case):
        started = time.monotonic()
        try:
            case()
            self.healthy(self.passed)
        except (Failure, Closed, OSError) as e:
            kind = "closed unexpectedly" if isinstance(e, Closed) else f"{type(e).__name__}: {e}"
            print(f"FAIL {name}: {kind}")
            sys.exit(1)
        self.passed += 1
        print(f"ok   {name} ({time.monotonic() - started:.2f} s)")

    # --- Handshake cases.

    def garbage_client_flags(self):
        client = self.connect()
        client.greeting()
        client.send(b"\xde\xad\xbe\xef" + b"garbage where the client flags belong")
        client.expect_closed("unknown client flags")

    def bad_option_magic(self):
        client = self.connect()
        client.start()
        client.send(struct.pack(">QII", 0x0123456789ABCDEF, OPT_GO, 0))
        client.expect_closed("an option with a bad magic")

    def unknown_option(self):
        client = self.connect()
        client.start()
        client.send_option(0x7FFF0001, b"what?")
        reply_type, _ = client.option_reply(0x7FFF0001)
        expect(reply_type == REP_ERR_UNSUP, f"an unknown option answered {reply_type:#x}, not NBD_REP_ERR_UNSUP")
        names = client.list_exports()  # haggling goes on
        expect(self.export in names, f"NBD_OPT_LIST after the unknown option: {names}")
        client.go(self.export)
        client.write_read(0, b"\x11" * client.block, 1)
        client.disconnect()

    def over_long_option(self):
        client = self.connect()
        client.start()
        length = 1 << 20  # far beyond any sane option, and beyond the 4096-byte string limit
        client.send_option(OPT_INFO, b"\xee" * length)
        reply_type, _ = client.option_reply(OPT_INFO)
        expect(reply_type == REP_ERR_TOO_BIG, f"a 1 MiB option answered {reply_type:#x}, not NBD_REP_ERR_TOO_BIG")
        client.go(self.export)  # the option's data was skipped, not taken for the next option
        client.write_read(0, b"\x22" * client.block, 1)
        client.disconnect()

    def unknown_export(self):
        client = self.connect()
        client.start()
        reply_type, infos = client.info_or_go(OPT_GO, "no-such-export")
        expect(reply_type == REP_ERR_UNKNOWN, f"GO for an unknown export answered {reply_type:#x}")
        expect(not infos, f"GO for an unknown export sent information: {infos}")
        client.go(self.export)
        client.disconnect()

    def unknown_export_by_export_name(self):
        client = self.connect()
        client.start()
        client.send_option(OPT_EXPORT_NAME, b"no-such-export")
        client.expect_closed("NBD_OPT_EXPORT_NAME for an unknown export")

    def negotiation_cut_short(self):
        client = self.connect()
        client.start()
        client.send(struct.pack(">QI", IHAVEOPT, OPT_GO))  # 12 of the 16 header bytes
        client.close()

    # --- Transmission cases; replies are checked for the request's own cookie.

    def out_of_range_and_misaligned(self):
        client = self.transmission()
        size, block = client.size, client.block
        expect(block >= 512, f"the export's minimum block size is {block}")
        client.expect_error({EINVAL}, "a read at the end", CMD_READ, size, block, 10)
        client.expect_error({EINVAL}, "a read across the end", CMD_READ, size - block, 2 * block, 11)
        client.expect_error({EINVAL}, "a read far past the end", CMD_READ, 1 << 62, block, 12)
        client.expect_error({EINVAL}, "a read whose end wraps", CMD_READ, (1 << 64) - block, 2 * block, 13)
        client.expect_error({EINVAL, EOVERFLOW}, "a 4 GiB read", CMD_READ, 0, 0xFFFFF000, 14)
        client.expect_error({EINVAL}, "a misaligned read offset", CMD_READ, 1, block, 15)
        client.expect_error({EINVAL}, "a misaligned read length", CMD_READ, 0, block + 1, 16)
        # The payload of a refused write is consumed: the next request is read from where it starts.
        client.expect_error({ENOSPC}, "a write past the end", CMD_WRITE, size, block, 17, b"\x33" * block)
        client.expect_error({EINVAL}, "a misaligned write", CMD_WRITE, 1, block, 18, b"\x44" * block)
        client.expect_error({EINVAL}, "an unknown command", 0x2A, 0, block, 19)
        client.write_read(0, b"\x55" * block, 20)  # the connection went on
        client.disconnect()

    def bad_request_magic(self):
        client = self.transmission()
        client.request(CMD_READ, 0, client.block, 30, magic=0x25609514)
        client.expect_closed("a request with a bad magic")

    def oversize_write(self):
        client = self.transmission()
        client.request(CMD_WRITE, 0, 0xFFFFF000, 31, payload=b"\x66" * 4096)
        client.expect_closed("a 4 GiB write")

    def half_a_request(self):
        client = self.transmission()
        client.send(struct.pack(">IHHQ", REQUEST_MAGIC, 0, CMD_READ, 32)[:14])
        client.close()

    def write_then_vanish(self):
        client = self.transmission()
        client.request(CMD_WRITE, 0, 64 * 1024, 33, payload=b"\x77" * 1000)  # most of the payload never comes
        client.close()

    # --- Resource limits.

    def too_many_connections(self):
        held = []
        try:
            for _ in range(self.max_connections):
                held.append(self.connect())
                held[-1].greeting()  # accepted: the server greets it
            extra = self.connect()
            extra.expect_closed(f"connection {self.max_connections + 1}")
        finally:
            for client in held:
                client.close()
        # The server notices the closes asynchronously: a slot comes free within the deadline.
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                client = self.transmission()
                client.disconnect()
                return
            except (Closed, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description="Raw-socket bad input for an NBD server.")
    parser.add_argument("socket", help="the server's unix socket")
    parser.add_argument("export", help="an export that exists")
    parser.add_argument("--daemon-pid", type=int, default=0, help="a process that must stay alive")
    parser.add_argument("--max-connections", type=int, default=0,
                        help="the server's connection limit; 0 skips the case that exceeds it")
    args = parser.parse_args()
    cases = Cases(args.socket, args.export, args.daemon_pid, args.max_connections)
    cases.run("a fresh client works", lambda: None)
    cases.run("garbage instead of client flags: closed", cases.garbage_client_flags)
    cases.run("bad option magic: closed", cases.bad_option_magic)
    cases.run("unknown option: NBD_REP_ERR_UNSUP, haggling goes on", cases.unknown_option)
    cases.run("over-long option: NBD_REP_ERR_TOO_BIG, haggling goes on", cases.over_long_option)
    cases.run("GO for an unknown export: NBD_REP_ERR_UNKNOWN, haggling goes on", cases.unknown_export)
    cases.run("EXPORT_NAME for an unknown export: closed", cases.unknown_export_by_export_name)
    cases.run("option header cut short, then close", cases.negotiation_cut_short)
    cases.run("past the end, misaligned, unknown command: EINVAL, transmission goes on",
              cases.out_of_range_and_misaligned)
    cases.run("bad request magic: closed", cases.bad_request_magic)
    cases.run("oversize write length: closed", cases.oversize_write)
    cases.run("half a request, then close", cases.half_a_request)
    cases.run("a write whose payload never comes, then close", cases.write_then_vanish)
    if args.max_connections:
        cases.run(f"connection {args.max_connections + 1} of at most {args.max_connections}: closed",
                  cases.too_many_connections)
    print(f"bad_client: {cases.passed} cases passed")


if __name__ == "__main__":
    main()
