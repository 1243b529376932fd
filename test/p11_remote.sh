# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash disable=SC2034 # P11_*: the sourcing script's
# A remote PKCS#11 token for the tests: source it (after lib.sh), then
#
#   p11_remote_start DIR [TOKENDIR]
#                           makes the SoftHSM2 token of test/pkcs11_token.sh
#                           in DIR (or serves the one made before in
#                           TOKENDIR) and exports it with `p11-kit server` on
#                           DIR/p11.sock; exports P11_KIT_SERVER_ADDRESS
#                           and SOFTHSM2_CONF, sets P11_SERVER_PID (a
#                           process group leader: the server forks a
#                           p11-kit-remote per connection into its group),
#                           P11_CLIENT (p11-kit-client.so, the module
#                           offload loads) and P11_ECDH (yes when the client
#                           lists CKM_ECDH1_DERIVE: p11-kit 0.24's RPC does
#                           not carry its parameters). 1 after saying why:
#                           a prerequisite missing is a failure, not a skip.
#   p11_remote_stop         kills the server's process group and reaps it.

P11_SOFTHSM=${PKCS11_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
P11_CLIENT=${P11_KIT_CLIENT_MODULE:-/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so}
P11_SERVER_PID=
P11_ECDH=no

p11_kit_version() {
    pkg-config --modversion p11-kit-1 2>/dev/null || echo unknown
}

p11_remote_start() {
    local dir=$1 tokdir=${2:-$1} i pid
    local here
    here=$(dirname "${BASH_SOURCE[0]}")
    for tool in p11-kit setsid pkcs11-tool; do
        command -v "$tool" >/dev/null ||
            { echo "FAIL: $tool is missing (scripts/bootstrap installs p11-kit, opensc)"; return 1; }
    done
    [ -f "$P11_CLIENT" ] ||
        { echo "FAIL: $P11_CLIENT is missing (p11-kit-modules)"; return 1; }
    if [ $# -lt 2 ]; then
        bash "$here/pkcs11_token.sh" "$dir" || { echo "FAIL: cannot make the token"; return 1; }
    fi
    export SOFTHSM2_CONF=$tokdir/softhsm2.conf
    # setsid: the server leads its own process group (run from a script, with
    # no job control, setsid execs in place, so $! is the server's pid).
    # A socket or log left by an earlier server must not pass for this one.
    rm -f "$dir/p11.sock" "$dir/p11-server.log"
    XDG_RUNTIME_DIR=$dir setsid p11-kit server -f --provider "$P11_SOFTHSM" \
        -n "$dir/p11.sock" "pkcs11:token=edge" >"$dir/p11-server.log" 2>&1 </dev/null &
    P11_SERVER_PID=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$dir/p11.sock" ] && grep -q '^P11_KIT_SERVER_PID=' "$dir/p11-server.log" && break
        kill -0 "$P11_SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -S "$dir/p11.sock" ]; then
        echo "FAIL: p11-kit server did not start:"
        cat "$dir/p11-server.log"
        p11_remote_stop
        return 1
    fi
    pid=$(sed -n 's/^P11_KIT_SERVER_PID=\([0-9]*\);.*/\1/p' "$dir/p11-server.log")
    if [ "$pid" != "$P11_SERVER_PID" ] ||
        [ "$(ps -o pgid= -p "$P11_SERVER_PID" | tr -d ' ')" != "$P11_SERVER_PID" ]; then
        echo "FAIL: p11-kit server pid $pid, started as $P11_SERVER_PID, is not its group's leader"
        p11_remote_stop
        return 1
    fi
    export P11_KIT_SERVER_ADDRESS=unix:path=$dir/p11.sock
    if ! pkcs11-tool --module "$P11_CLIENT" -L 2>&1 | grep -q 'token label *: edge'; then
        echo "FAIL: $P11_CLIENT does not see the token through the server:"
        pkcs11-tool --module "$P11_CLIENT" -L 2>&1 | head -5
        p11_remote_stop
        return 1
    fi
    if pkcs11-tool --module "$P11_CLIENT" --token-label edge -M 2>/dev/null | grep -q 'ECDH1-DERIVE'; then
        P11_ECDH=yes
    fi
    echo "p11-kit $(p11_kit_version): CKM_ECDH1_DERIVE through the RPC: $P11_ECDH"
    return 0
}

p11_remote_stop() {
    [ -n "$P11_SERVER_PID" ] || return 0
    kill -TERM -- "-$P11_SERVER_PID" 2>/dev/null
    wait "$P11_SERVER_PID" 2>/dev/null
    P11_SERVER_PID=
}
