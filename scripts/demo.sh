#!/bin/sh
# demo.sh
#	  Encrypt, verify, rotate and decrypt a throwaway PostgreSQL 15 cluster
#	  with the tools of this tree (`make demo`).
#
# Runs as an unprivileged user (PostgreSQL and the tools refuse root; as
# root, `make demo` runs it through scripts/unprivileged.sh).  Needs the
# built tools (bin/) and the PostgreSQL 15 programs on PATH, and openssl.
# Everything happens in a temporary directory under ${TMPDIR:-/tmp} that is
# removed on exit (the server is stopped first if it is running); the
# server listens only on a private unix socket.
#
# Steps:
#	1. initdb -k (data checksums on), start, pgbench -i -s 10
#	2. pgbench for 5 seconds, pg_dump, stop
#	3. a cluster key file (openssl rand -hex 32, mode 0600)
#	4. pg_encrypt_cluster -P with share/pct-kek-file as the key command
#	5. a stock server refuses to start (expected failure)
#	6. pg_verify_cryptokeys
#	7. pg_alterckey to a second key file --update-config (and
#	   pg_rekey_data --all when it exists)
#	8. pg_verify_cryptokeys again
#	9. pg_encrypt_cluster --decrypt -P
#  10. start the stock server, pg_dump again, compare with the first dump
#
# Exit status 0 when every step and check succeeded, 1 otherwise.
set -eu

prog=demo.sh
steps=10
step=0

fail()
{
	echo "$prog: error: $*" >&2
	exit 1
}

banner()
{
	step=$((step + 1))
	echo ""
	echo "== $step/$steps $*"
}

# Show a command (quoted for sh where needed), then run it.
run()
{
	line=\$
	for a in "$@"; do
		case $a in
			'' | *[!A-Za-z0-9_./:=@%+,-]*)
				a="'$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'" ;;
		esac
		line="$line $a"
	done
	echo "$line"
	"$@"
}

if [ "$(id -u)" -eq 0 ]; then
	fail "must not be run as root: PostgreSQL and the pgcrypttools tools refuse it
$prog: hint: run \"make demo\" as root (it runs this script as an unprivileged user), or run it as a non-root user"
fi

# The tree's top from this script's location (never from the environment).
top=$(cd "$(dirname "$0")/.." && pwd)
kekcmd_prog=$top/share/pct-kek-file

for p in initdb pg_ctl pg_isready pgbench pg_dump psql postgres \
	pg_encrypt_cluster pg_alterckey pg_verify_cryptokeys openssl cmp; do
	command -v "$p" >/dev/null 2>&1 ||
		fail "\"$p\" not found on PATH (PATH=$PATH)"
done
[ -x "$kekcmd_prog" ] || fail "\"$kekcmd_prog\" is missing or not executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pgcrypttools-demo.XXXXXX")
pgdata=$tmp/data
sockdir=$tmp/sock
log=$tmp/server.log
started=

cleanup()
{
	rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$started" ] && [ -f "$pgdata/postmaster.pid" ]; then
		pg_ctl -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	if [ "$rc" -ne 0 ]; then
		echo "" >&2
		echo "$prog: FAILED at step $step/$steps (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The key command is run through /bin/sh and stored in the configuration
# between single quotes; % introduces substitutions.
case "$top$tmp" in
	*[\"\'\$\`\\%]*)
		fail "the paths \"$top\" and \"$tmp\" must not contain quotes, \$, \`, \\ or %" ;;
esac

mkdir -m 0700 "$sockdir"

# A port nobody answers on (on the default socket directory or localhost);
# our own server listens only on $sockdir anyway.
port=
p=$((5433 + $$ % 60))
for _i in $(seq 1 60); do
	if ! pg_isready -q -h /var/run/postgresql -p "$p" -t 2 >/dev/null 2>&1 &&
		! pg_isready -q -h localhost -p "$p" -t 2 >/dev/null 2>&1; then
		port=$p
		break
	fi
	p=$((p + 1))
	[ "$p" -le 5499 ] || p=5433
done
[ -n "$port" ] || fail "no free port found in 5433..5499"

export PGHOST="$sockdir" PGPORT="$port" PGDATABASE=postgres
unset PGDATA PGUSER PGSERVICE PGOPTIONS 2>/dev/null || true

start_server()
{
	started=1
	run pg_ctl -D "$pgdata" -l "$log" -w -t 60 start ||
		{ tail -n 20 "$log" >&2; fail "the server did not start"; }
}

stop_server()
{
	run pg_ctl -D "$pgdata" -m fast -w -t 60 stop || fail "the server did not stop"
	started=
}

# ---- 1 ----
banner "create a pgbench cluster (initdb -k: data checksums on; socket $sockdir, port $port)"
run initdb -k -A trust -U postgres --no-instructions -D "$pgdata" >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log" >&2; fail "initdb failed"; }
grep -E 'checksums|^creating directory' "$tmp/initdb.log" || true
cat >>"$pgdata/postgresql.conf" <<EOF

# demo.sh: private unix socket only
listen_addresses = ''
unix_socket_directories = '$sockdir'
port = $port
EOF
export PGUSER=postgres
start_server
run pgbench -i -s 10 || fail "pgbench -i failed"

# ---- 2 ----
banner "run pgbench for 5 seconds, take a dump, stop the server"
run pgbench -T 5 -c 2 -j 2 -P 1 || fail "pgbench failed"
run pg_dump --restrict-key=demo -f "$tmp/before.sql" postgres || fail "pg_dump failed"
echo "dump: $(wc -c <"$tmp/before.sql") bytes"
stop_server
echo "data directory: $(du -sh "$pgdata" | cut -f1)"

# ---- 3 ----
banner "make a cluster key file (openssl rand -hex 32, mode 0600)"
(umask 077 && openssl rand -hex 32 >"$tmp/kek1") || fail "openssl rand failed"
ls -l "$tmp/kek1"
cmd1="\"$kekcmd_prog\" \"$tmp/kek1\""
echo "cluster key command: $cmd1"

# ---- 4 ----
banner "encrypt the cluster in place"
run pg_encrypt_cluster -P -D "$pgdata" -c "$cmd1" || fail "pg_encrypt_cluster failed"
echo "configuration: $(grep -h '^[[:space:]]*cluster_key_command' "$pgdata"/postgresql*.conf || true)"

# ---- 5 ----
# A stock server stops at the first obstacle: the configuration now sets
# cluster_key_command, a parameter it does not know.  Then, with a copy of
# the configuration without it (outside the data directory), the real
# barrier: pg_control is version 1400.
banner "a stock PostgreSQL server now refuses to start (expected failure)"
stock_refuses()		# stock_refuses WHAT [POSTGRES OPTIONS]
{
	what=$1
	shift
	: >"$log"
	echo "\$ postgres -D $pgdata $*    ($what)"
	if command -v timeout >/dev/null 2>&1; then
		set -- timeout 30 postgres -D "$pgdata" "$@"
	else
		set -- postgres -D "$pgdata" "$@"
	fi
	started=1
	if "$@" >"$log" 2>&1; then
		fail "the stock server ran on the encrypted cluster"
	fi
	if [ -f "$pgdata/postmaster.pid" ]; then
		fail "the stock server started on the encrypted cluster"
	fi
	started=
	if grep -qE 'FATAL|DETAIL|HINT|unrecognized' "$log"; then
		grep -E 'FATAL|DETAIL|HINT|unrecognized' "$log" | sed 's/^/    /'
	else
		sed 's/^/    /' "$log"
	fi
	grep -q 'FATAL' "$log" || fail "the server failed without a FATAL message"
}
stock_refuses "configuration as it is"
grep -v '^[[:space:]]*cluster_key_command' "$pgdata/postgresql.conf" >"$tmp/stock.conf"
if [ -f "$pgdata/postgresql.auto.conf" ] &&
	grep -q '^[[:space:]]*cluster_key_command' "$pgdata/postgresql.auto.conf"; then
	echo "note: postgresql.auto.conf sets cluster_key_command too: the second try"
	echo "      stops at the configuration as well"
fi
stock_refuses "a copy of postgresql.conf without cluster_key_command" \
	-c "config_file=$tmp/stock.conf" -c "hba_file=$pgdata/pg_hba.conf" \
	-c "ident_file=$pgdata/pg_ident.conf"
grep -q 'incompatible with server' "$log" ||
	fail "the stock server did not report incompatible database files"
echo "ok: the stock server refused the encrypted cluster"

# ---- 6 ----
banner "verify the keys"
run pg_verify_cryptokeys -D "$pgdata" || fail "pg_verify_cryptokeys failed (exit $?)"

# ---- 7 ----
banner "rotate the cluster key"
(umask 077 && openssl rand -hex 32 >"$tmp/kek2") || fail "openssl rand failed"
cmd2="\"$kekcmd_prog\" \"$tmp/kek2\""
run pg_alterckey --update-config "$cmd1" "$cmd2" -D "$pgdata" || fail "pg_alterckey failed"
echo "configuration: $(grep -h '^[[:space:]]*cluster_key_command' "$pgdata"/postgresql*.conf || true)"
if command -v pg_rekey_data >/dev/null 2>&1; then
	run pg_rekey_data -D "$pgdata" --all || fail "pg_rekey_data failed"
else
	echo "note: the data keys (relation and WAL keys) were not rotated: pg_rekey_data"
	echo "      is not part of this build yet; data-key rotation arrives with it"
fi
shred -u "$tmp/kek1" 2>/dev/null || rm -f "$tmp/kek1"
echo "old key file removed"

# ---- 8 ----
banner "verify the keys again (with the new cluster key, old key file gone)"
run pg_verify_cryptokeys -D "$pgdata" || fail "pg_verify_cryptokeys failed (exit $?)"

# ---- 9 ----
banner "decrypt the cluster in place"
run pg_encrypt_cluster --decrypt -P -D "$pgdata" || fail "pg_encrypt_cluster --decrypt failed"
if grep -q '^[[:space:]]*cluster_key_command' "$pgdata"/postgresql*.conf; then
	fail "cluster_key_command is still in the configuration"
fi
[ ! -e "$pgdata/pg_cryptokeys" ] || fail "pg_cryptokeys is still there"

# ---- 10 ----
banner "start the stock server, dump again and compare"
: >"$log"
start_server
run pg_dump --restrict-key=demo -f "$tmp/after.sql" postgres || fail "pg_dump failed"
stop_server
run cmp "$tmp/before.sql" "$tmp/after.sql" || fail "the dumps differ"
echo "dumps match"

echo ""
echo "demo: all steps succeeded"
