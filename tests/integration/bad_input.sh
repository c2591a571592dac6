#!/usr/bin/env bash
# Bad config files and bad arguments: each must fail with a clear message naming what was wrong and a non-zero exit
# below 128 (no crash, no signal), within a bounded time.
# Usage: bad_input.sh MPATH_BINARY SOURCE_TREE SCRATCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
init_test "$@"
cd "$scratch"

# --- Config files. The message must name the file and line, and the key at fault.
printf '[defaults\niopolicy = "round-robin"\n' >syntax.toml
printf '[defaults]\niopolicy = "numa"\nqueue_if_no_pathh = true\n' >unknown_key.toml
printf '[defaults]\ndelayed_removal_secs = "soon"\n' >wrong_type.toml
printf '[defaults]\ndelayed_removal_secs = -5\n' >impossible.toml
printf '[defaults]\niopolicy = "fastest"\n' >bad_policy.toml
cat >bad_reference.toml <<'EOF'
[[sim.scsi_array]]
name = "array0"

  [[sim.scsi_array.port_group]]
  id = 1
  ports = [1]

  [[sim.scsi_array.lu]]
  naa = "60014050abcd00000000000000000001"

[[sim.path]]
name = "p1"
target = "array9"
port = 1
EOF
printf '# no fabric at all\n[defaults]\niopolicy = "numa"\n' >empty_fabric.toml
printf '[export]\nunix_socket = ""\n' >export_nothing.toml
printf '[export]\ntcp_port = 10809\ntcp_address = "localhost"\n' >export_address.toml
printf '[export]\ntcp_address = "::1"\n' >export_no_port.toml
printf '[export]\ntcp_port = 70000\n' >export_port.toml
printf '[export]\nqueue_depth = 0\n' >export_depth.toml
printf '[export]\nmax_connection = 8\n' >export_unknown.toml
printf '[export]\nread_only = "yes"\n' >export_type.toml

expect 2 '^syntax\.toml:1:[0-9]+: ' -- "$mpath" daemon --config syntax.toml --control ctl.sock
expect 2 "^unknown_key\.toml:3:[0-9]+: .*queue_if_no_pathh" -- "$mpath" daemon --config unknown_key.toml --control ctl.sock
expect 2 '^wrong_type\.toml:2:[0-9]+: .*delayed_removal_secs' -- "$mpath" daemon --config wrong_type.toml --control ctl.sock
expect 2 '^impossible\.toml:2:[0-9]+: .*delayed_removal_secs' -- "$mpath" daemon --config impossible.toml --control ctl.sock
expect 2 "^bad_policy\.toml:2:[0-9]+: .*fastest" -- "$mpath" daemon --config bad_policy.toml --control ctl.sock
expect 2 "^bad_reference\.toml:13:[0-9]+: .*array9" -- "$mpath" daemon --config bad_reference.toml --control ctl.sock
expect 2 'missing\.toml.*No such file' -- "$mpath" daemon --config missing.toml --control ctl.sock
expect 2 '^export_nothing\.toml:2:[0-9]+: export: nothing to listen on' -- "$mpath" daemon --config export_nothing.toml --control ctl.sock
expect 2 "^export_address\.toml:3:[0-9]+: export\.tcp_address: 'localhost' is not an IPv4 or IPv6 address" -- "$mpath" daemon --config export_address.toml --control ctl.sock
expect 2 '^export_no_port\.toml:2:[0-9]+: export\.tcp_address: is used only with tcp_port' -- "$mpath" daemon --config export_no_port.toml --control ctl.sock
expect 2 '^export_port\.toml:2:[0-9]+: export\.tcp_port: must be between 1 and 65535' -- "$mpath" daemon --config export_port.toml --control ctl.sock
expect 2 '^export_depth\.toml:2:[0-9]+: export\.queue_depth: must be between 1 and 4096' -- "$mpath" daemon --config export_depth.toml --control ctl.sock
expect 2 "^export_unknown\.toml:2:[0-9]+: unknown key 'max_connection' in \[export\]" -- "$mpath" daemon --config export_unknown.toml --control ctl.sock
expect 2 '^export_type\.toml:2:[0-9]+: export\.read_only: expected a boolean' -- "$mpath" daemon --config export_type.toml --control ctl.sock
# A valid file with nothing to serve is not a usage error, but the daemon must not start.
expect 1 'no head' -- "$mpath" daemon --config empty_fabric.toml --control ctl.sock
[[ ! -e ctl.sock ]] || note_failure "a failed daemon left its socket"
# An NBD socket that cannot be served (its directory is a file): exit 1, the reason, and no control socket left.
touch not_a_dir
expect 1 'cannot serve the NBD export on not_a_dir/nbd\.sock' -- "$mpath" daemon --config "$src/examples/mpath.toml" --control ctl.sock --nbd not_a_dir/nbd.sock
[[ ! -e ctl.sock ]] || note_failure "a daemon that could not serve NBD left its control socket"
# A TCP port already taken: the same. A listener holds the port for as long as the daemon runs.
cat >busy_port.py <<'EOF'
import socket, subprocess, sys
mpath, example = sys.argv[1], sys.argv[2]
held = socket.socket()
held.bind(("127.0.0.1", 0))
held.listen()
port = held.getsockname()[1]
# The example has an [export] table already; a second one would be a TOML error.
text = open(example).read().replace('unix_socket = "/run/mpath/nbd.sock"', f'unix_socket = ""\ntcp_port = {port}', 1)
open("busy_port.toml", "w").write(text)
sys.exit(subprocess.run([mpath, "daemon", "--config", "busy_port.toml", "--control", "ctl.sock"]).returncode)
EOF
expect 1 'cannot serve the NBD export on 127\.0\.0\.1:[0-9]+: .*Address already in use' -- python3 busy_port.py "$mpath" "$src/examples/mpath.toml"
[[ ! -e ctl.sock ]] || note_failure "a daemon that could not serve NBD left its control socket"

# --- Arguments.
expect 2 "unknown subcommand 'frobnicate'" -- "$mpath" frobnicate
expect 2 'subcommand is required' -- "$mpath"
expect 2 'head is required' -- "$mpath" show
expect 2 'policy is required' -- "$mpath" set-policy db0
expect 2 "unknown iopolicy 'fastest'" -- "$mpath" set-policy db0 fastest
expect 2 "--key: invalid key '0xZZ'" -- "$mpath" pr reserve db0 --key 0xZZ
expect 2 "--sa-key: invalid key '99999999999999999999'.*64 bits" -- "$mpath" pr register db0 --sa-key 99999999999999999999
expect 2 'steal not in' -- "$mpath" pr steal db0
expect 2 'sideways not in' -- "$mpath" pr reserve db0 --key 1 --type sideways
expect 2 "argument 'slow' is not key=value" -- "$mpath" inject a0-tp1 latency slow
expect 2 'yaml not in' -- "$mpath" list -o yaml
expect 2 'path is required' -- "$mpath" path fail
expect 2 'subcommand is required' -- "$mpath" path
expect 2 'config is required' -- "$mpath" daemon
expect 2 'io-threads' -- "$mpath" daemon --config "$src/examples/mpath.toml" --io-threads many
expect 2 '--nbd: needs a socket path' -- "$mpath" daemon --config "$src/examples/mpath.toml" --control ctl.sock --nbd ''
expect 2 '--nbd: .*longer than 107 bytes' -- "$mpath" daemon --config "$src/examples/mpath.toml" --control ctl.sock --nbd "/tmp/$(printf 'x%.0s' {1..120})"
expect 2 'excludes' -- "$mpath" daemon --config "$src/examples/mpath.toml" --control ctl.sock --nbd x.sock --no-nbd
expect 2 'nbd' -- "$mpath" daemon --config "$src/examples/mpath.toml" --control ctl.sock --nbd
expect 2 'seconds' -- "$mpath" demo --seconds -1
expect 2 'seconds' -- "$mpath" demo --seconds soon
expect 2 'missing\.toml' -- "$mpath" scenario run missing.toml

# --- A client with no daemon.
none=$scratch/none.sock
expect 1 "cannot connect to $none: No such file or directory; is \`mpath daemon\` running\?" -- "$mpath" list --control "$none"
expect 1 "cannot connect to $none" -- "$mpath" path fail a0-tp1:lun0 --control "$none"
expect 1 "cannot connect to $none" -- env MPATH_CONTROL="$none" "$mpath" pr read-keys db0
expect 1 "longer than 107 bytes" -- "$mpath" list --control "/tmp/$(printf 'x%.0s' {1..120})"

expect_no_failures
echo "bad_input: ok"
