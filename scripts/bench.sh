#!/bin/sh
# bench.sh
#	  Time pg_encrypt_cluster (encrypt and --decrypt) side by side with
#	  `pg_checksums --enable` and `cp -a` on one pgbench cluster, in one run
#	  (`make bench [BENCH_SCALE=N]`).  A benchmark, not a test: it asserts no
#	  speed, it prints a table and ratios.
#
# Environment:
#	BENCH_SCALE  pgbench scale factor (default 100, about 1.5 GB)
#	BENCH_DIR    the work directory is made in this directory (default
#	             /var/tmp); everything stays on its file system
#
# Runs as an unprivileged user (as root, `make bench` runs it through
# scripts/unprivileged.sh), with the built tools and the PostgreSQL 15
# programs on PATH.
#
#	1. Check free space (about 3 times the cluster), make the work directory.
#	2. initdb (data checksums off: see below), pgbench -i -s $BENCH_SCALE,
#	   CHECKPOINT, stop.
#	3. For each tool, on the same data directory in this order: sync, read
#	   every file of the data directory (page cache warm for every tool
#	   alike: dropping caches needs root), then time the tool with
#	   /usr/bin/time (wall seconds, peak RSS):
#	   a. cp -a DATADIR to a sibling directory (removed afterwards)
#	   b. pg_checksums --enable: it rewrites every page and leaves data
#	      checksums on, so (c) starts from a cluster with checksums on, as
#	      after initdb -k
#	   c. pg_encrypt_cluster -c CMD, defaults, durable (no -N)
#	   d. pg_encrypt_cluster --decrypt
#	   e. the disk itself: dd overwriting a file of the size pg_encrypt_cluster
#	      rewrote, in place, 1 MiB at a time, then one fdatasync (the file
#	      is written once untimed first, so no block is newly allocated):
#	      what the storage gives, in this same run, for rewriting that many
#	      bytes in place durably in one go, without reading or computing
#	4. pg_checksums --check of the decrypted cluster (untimed sanity check).
#	5. Print the table and the ratios; remove the work directory.
#
# Why initdb without -k: pg_checksums --disable changes only pg_control
# and leaves every page's checksum in place, and pg_checksums --enable
# (PostgreSQL 14 and later) does not write a page whose checksum is already
# right, so on an initdb -k cluster "--disable, then --enable" writes no
# block at all and would time a read-only scan.
#
# MB is 2^20 bytes.  Bytes rewritten: cp -a, every regular file;
# pg_checksums, its "Blocks written" times the block size;
# pg_encrypt_cluster, the relation and WAL pages it reports rewritten times
# the block and WAL block sizes (its -n plan is shown too).
set -eu

prog=bench.sh

fail()
{
	echo "$prog: error: $*" >&2
	exit 1
}

if [ "$(id -u)" -eq 0 ]; then
	fail "must not be run as root: PostgreSQL and the pgcrypttools tools refuse it
$prog: hint: run \"make bench\" as root (it runs this script as an unprivileged user), or run it as a non-root user"
fi

top=$(cd "$(dirname "$0")/.." && pwd)
kekcmd_prog=$top/share/pct-kek-file

scale=${BENCH_SCALE:-100}
case $scale in
	'' | *[!0-9]* | 0*) fail "BENCH_SCALE must be a positive integer, not \"$scale\"" ;;
esac
benchdir=${BENCH_DIR:-/var/tmp}
[ -d "$benchdir" ] || fail "BENCH_DIR \"$benchdir\" is not a directory"

for p in initdb pg_ctl pg_isready pgbench psql pg_checksums pg_controldata \
	pg_encrypt_cluster pg_verify_cryptokeys openssl cp find df awk; do
	command -v "$p" >/dev/null 2>&1 ||
		fail "\"$p\" not found on PATH (PATH=$PATH)"
done
[ -x "$kekcmd_prog" ] || fail "\"$kekcmd_prog\" is missing or not executable"

if [ -x /usr/bin/time ]; then
	timer=gnu
elif command -v bash >/dev/null 2>&1; then
	timer=bash
	echo "$prog: /usr/bin/time is missing (Debian package \"time\"): timing with bash's time, no peak RSS"
else
	fail "neither /usr/bin/time (Debian package \"time\") nor bash is available to time the tools"
fi

# ---- 1. space and work directory ----
# pgbench: about 15 MB of relations per scale unit, plus the WAL (up to
# max_wal_size, 1 GB by default) and the catalogs; room for the cluster, its
# copy and the journal.
est_mb=$((scale * 16 + 1100))
need_mb=$((est_mb * 3))
avail_mb=$(df -Pk "$benchdir" | awk 'NR == 2 { print int($4 / 1024) }')
if [ "$avail_mb" -lt "$need_mb" ]; then
	fail "not enough free space in \"$benchdir\": $avail_mb MB free, need about $need_mb MB (3 times a cluster of about $est_mb MB at scale $scale)
$prog: hint: set BENCH_DIR to a directory with more space, or lower BENCH_SCALE"
fi

work=$(mktemp -d "$benchdir/pgcrypttools-bench.XXXXXX")
pgdata=$work/data
copy=$work/data.copy
sockdir=$work/sock
log=$work/server.log
started=

cleanup()
{
	rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$started" ] && [ -f "$pgdata/postmaster.pid" ]; then
		pg_ctl -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	[ "$rc" -eq 0 ] || echo "$prog: FAILED (exit $rc)" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

case "$top$work" in
	*[\"\'\$\`\\%]*)
		fail "the paths \"$top\" and \"$work\" must not contain quotes, \$, \`, \\ or %" ;;
esac
mkdir -m 0700 "$sockdir"

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
export PGHOST="$sockdir" PGPORT="$port" PGDATABASE=postgres PGUSER=postgres
unset PGDATA PGSERVICE PGOPTIONS 2>/dev/null || true

# ---- helpers ----

# Sum of the sizes of the regular files found by find ARGS..., in bytes.
bytes_of()
{
	find "$@" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# Relation files, as pg_checksums rewrites them (tablespaces followed).
relation_bytes()
{
	set --
	for d in base global pg_tblspc; do
		[ -d "$pgdata/$d" ] && set -- "$@" "$pgdata/$d"
	done
	find -L "$@" -type f -printf '%f %s\n' |
		awk '$1 ~ /^[0-9]+(_(fsm|vm|init))?(\.[0-9]+)?$/ { s += $2 } END { printf "%.0f\n", s }'
}

mb()	# bytes -> MB with one decimal
{
	awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'
}

# Same starting point for every tool: dirty pages written back, and every
# file of the data directory just read.
prepare()
{
	sync
	find -L "$pgdata" -type f -exec cat {} + >/dev/null
}

checksums_state()
{
	pg_controldata "$pgdata" | sed -n 's/^Data page checksum version: *//p'
}

# timed NAME COMMAND...: run COMMAND with its output in $work/NAME.log and
# set t_secs and t_rss_mb.
timed()
{
	name=$1
	shift
	tlog=$work/$name.log
	tout=$work/$name.time
	echo "  \$ $*"
	if [ "$timer" = gnu ]; then
		st=0
		/usr/bin/time -f '%e %M' -o "$tout" "$@" >"$tlog" 2>&1 || st=$?
		if [ "$st" -ne 0 ]; then
			sed 's/^/    | /' "$tlog" >&2
			fail "$name failed (exit $st)"
		fi
		read -r t_secs rss_kb <<EOF
$(tail -n 1 "$tout")
EOF
		t_rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
	else
		st=0
		# shellcheck disable=SC2016 # expanded by bash
		bash -c 'TIMEFORMAT=%R; log=$1; shift; { time "$@" >"$log" 2>&1; } 2>&1' \
			bench "$tlog" "$@" >"$tout" || st=$?
		if [ "$st" -ne 0 ]; then
			sed 's/^/    | /' "$tlog" >&2
			fail "$name failed (exit $st)"
		fi
		t_secs=$(tail -n 1 "$tout")
		t_rss_mb=-
	fi
	sed 's/^/    | /' "$tlog"
	echo "  $t_secs s, peak RSS $t_rss_mb MB"
}

# pg_encrypt_cluster -n ARGS...: show the plan (untimed).
show_plan()
{
	echo "  \$ pg_encrypt_cluster -n $*    (plan, untimed)"
	out=$(pg_encrypt_cluster -n "$@") || fail "pg_encrypt_cluster -n $* failed"
	echo "$out" | sed 's/^/    | /'
}

# Bytes pg_encrypt_cluster rewrote, from "N relation pages and M WAL pages
# rewritten" in its output LOG.
pages_bytes()
{
	sed -n 's/^\([0-9][0-9]*\) relation pages and \([0-9][0-9]*\) WAL pages rewritten.*/\1 \2/p' "$1" |
		awk -v b="$blcksz" -v w="$walblcksz" \
			'NF == 2 { printf "%.0f\n", $1 * b + $2 * w; ok = 1 } END { if (!ok) exit 1 }' ||
		fail "could not read the pages rewritten from \"$1\""
}

# ---- 2. the cluster ----
echo "== bench: pgbench scale $scale in $work (socket $sockdir, port $port)"
echo "== build the cluster (initdb without -k, pgbench -i -s $scale, CHECKPOINT)"
initdb -A trust -U postgres --no-instructions -D "$pgdata" >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log" >&2; fail "initdb failed"; }
cat >>"$pgdata/postgresql.conf" <<EOF

# bench.sh: private unix socket only
listen_addresses = ''
unix_socket_directories = '$sockdir'
port = $port
EOF
started=1
pg_ctl -D "$pgdata" -l "$log" -w -t 120 start >/dev/null ||
	{ tail -n 20 "$log" >&2; fail "the server did not start"; }
pgbench -i -q -s "$scale" >"$work/pgbench.log" 2>&1 ||
	{ cat "$work/pgbench.log" >&2; fail "pgbench -i failed"; }
grep -v '^NOTICE' "$work/pgbench.log" | sed 's/^/    | /'
psql -X -q -v ON_ERROR_STOP=1 -c CHECKPOINT >/dev/null || fail "CHECKPOINT failed"
pg_ctl -D "$pgdata" -m fast -w -t 120 stop >/dev/null || fail "the server did not stop"
started=

total_bytes=$(bytes_of "$pgdata")
rel_bytes=$(relation_bytes)
wal_bytes=$(bytes_of "$pgdata/pg_wal")
echo "data directory: $(mb "$total_bytes") MB in all, relation files $(mb "$rel_bytes") MB, pg_wal $(mb "$wal_bytes") MB"
echo "data checksums: version $(checksums_state) (0: off)"
blcksz=$(pg_controldata "$pgdata" | sed -n 's/^Database block size: *//p')
walblcksz=$(pg_controldata "$pgdata" | sed -n 's/^WAL block size: *//p')
case "$blcksz$walblcksz" in
	'' | *[!0-9]*) fail "could not read the block sizes from pg_controldata" ;;
esac

avail_mb=$(df -Pk "$benchdir" | awk 'NR == 2 { print int($4 / 1024) }')
need_mb=$((total_bytes * 2 / 1048576 + 100))
[ "$avail_mb" -ge "$need_mb" ] ||
	fail "not enough free space left in \"$benchdir\" for the copy: $avail_mb MB free, need about $need_mb MB"

echo ""
echo "Caches: dropping the page cache needs root, so before every timed run all"
echo "files of the data directory are read (cat > /dev/null) after a sync: every"
echo "tool starts with the same warm cache.  cp -a does not fsync; pg_checksums"
echo "and pg_encrypt_cluster (without -N) wait for their writes to reach disk."
echo "Timer: $([ "$timer" = gnu ] && echo "/usr/bin/time (wall seconds, peak RSS)" || echo "bash time (wall seconds only)").  CPUs: $(nproc 2>/dev/null || echo '?')"

# ---- 3a. cp -a ----
echo ""
echo "== a. cp -a"
prepare
timed cp cp -a "$pgdata" "$copy"
cp_secs=$t_secs cp_rss=$t_rss_mb cp_bytes=$total_bytes
copied=$(bytes_of "$copy")
[ "$copied" = "$total_bytes" ] || fail "cp -a copied $copied bytes, not $total_bytes"
rm -rf "$copy"

# ---- 3b. pg_checksums --enable ----
echo ""
echo "== b. pg_checksums --enable"
[ "$(checksums_state)" = 0 ] || fail "data checksums are on before pg_checksums --enable"
prepare
timed pg_checksums pg_checksums --enable -D "$pgdata"
ck_secs=$t_secs ck_rss=$t_rss_mb
ck_blocks=$(sed -n 's/^Blocks written: *\([0-9][0-9]*\)$/\1/p' "$work/pg_checksums.log")
[ -n "$ck_blocks" ] || fail "could not read \"Blocks written\" from pg_checksums --enable"
ck_scanned=$(sed -n 's/^Blocks scanned: *\([0-9][0-9]*\)$/\1/p' "$work/pg_checksums.log")
[ "$ck_blocks" -gt 0 ] && [ "$ck_blocks" = "$ck_scanned" ] ||
	echo "  note: pg_checksums wrote $ck_blocks of the $ck_scanned blocks it scanned"
ck_bytes=$((ck_blocks * blcksz))
[ "$(checksums_state)" = 1 ] || fail "data checksums are not on after pg_checksums --enable"

# ---- 3c. pg_encrypt_cluster ----
echo ""
echo "== c. pg_encrypt_cluster (defaults, durable)"
(umask 077 && openssl rand -hex 32 >"$work/kek") || fail "openssl rand failed"
cmd="\"$kekcmd_prog\" \"$work/kek\""
show_plan -D "$pgdata" -c "$cmd"
prepare
timed pg_encrypt_cluster pg_encrypt_cluster -D "$pgdata" -c "$cmd"
enc_secs=$t_secs enc_rss=$t_rss_mb
enc_bytes=$(pages_bytes "$work/pg_encrypt_cluster.log")
pg_verify_cryptokeys -q -D "$pgdata" || fail "pg_verify_cryptokeys failed after encryption"

# ---- 3d. pg_encrypt_cluster --decrypt ----
echo ""
echo "== d. pg_encrypt_cluster --decrypt"
show_plan --decrypt -D "$pgdata"
prepare
timed decrypt pg_encrypt_cluster --decrypt -D "$pgdata"
dec_secs=$t_secs dec_rss=$t_rss_mb
dec_bytes=$(pages_bytes "$work/decrypt.log")

# ---- 3e. the disk ----
echo ""
echo "== e. the disk: dd overwriting $(mb "$enc_bytes") MB in place, then fdatasync"
disk_mb=$(((enc_bytes + 1048575) / 1048576))
dd if=/dev/zero of="$work/disk.dat" bs=1M count="$disk_mb" conv=fdatasync 2>/dev/null ||
	fail "dd could not write \"$work/disk.dat\""
prepare
timed disk dd if=/dev/zero of="$work/disk.dat" bs=1M count="$disk_mb" conv=notrunc,fdatasync
disk_secs=$t_secs disk_rss=$t_rss_mb disk_bytes=$((disk_mb * 1048576))
rm -f "$work/disk.dat"

# ---- 4. sanity ----
echo ""
echo "== check: pg_checksums --check of the decrypted cluster (untimed)"
out=$(pg_checksums --check -D "$pgdata") || {
	echo "$out" >&2
	fail "pg_checksums --check failed after decryption"
}
echo "$out" | sed 's/^/    | /'
[ "$(checksums_state)" = 1 ] || fail "data checksums are not on after decryption"

# ---- 5. table ----
rate()	# bytes secs -> MB/s
{
	awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1048576 / s; else printf "-" }'
}
ratio()	# a b -> a / b
{
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else printf "-" }'
}
cp_rate=$(rate "$cp_bytes" "$cp_secs")
ck_rate=$(rate "$ck_bytes" "$ck_secs")
enc_rate=$(rate "$enc_bytes" "$enc_secs")
dec_rate=$(rate "$dec_bytes" "$dec_secs")
disk_rate=$(rate "$disk_bytes" "$disk_secs")

echo ""
echo "== results: pgbench scale $scale, data directory $(mb "$total_bytes") MB"
row()
{
	printf '%-34s %9s %13s %9s %13s\n' "$@"
}
row "tool" "seconds" "MB rewritten" "MB/s" "peak RSS MB"
row "----" "-------" "------------" "----" "-----------"
row "cp -a (no fsync)" "$cp_secs" "$(mb "$cp_bytes")" "$cp_rate" "$cp_rss"
row "pg_checksums --enable" "$ck_secs" "$(mb "$ck_bytes")" "$ck_rate" "$ck_rss"
row "pg_encrypt_cluster" "$enc_secs" "$(mb "$enc_bytes")" "$enc_rate" "$enc_rss"
row "pg_encrypt_cluster --decrypt" "$dec_secs" "$(mb "$dec_bytes")" "$dec_rate" "$dec_rss"
row "dd in place + fdatasync (the disk)" "$disk_secs" "$(mb "$disk_bytes")" "$disk_rate" "$disk_rss"
echo ""
echo "ratios:"
echo "  pg_encrypt_cluster MB/s / pg_checksums --enable MB/s:            $(ratio "$enc_rate" "$ck_rate")"
echo "  pg_encrypt_cluster seconds / cp -a seconds:                      $(ratio "$enc_secs" "$cp_secs")"
echo "  pg_encrypt_cluster --decrypt MB/s / pg_checksums --enable MB/s:  $(ratio "$dec_rate" "$ck_rate")"
echo "  pg_encrypt_cluster --decrypt seconds / cp -a seconds:            $(ratio "$dec_secs" "$cp_secs")"
echo "  pg_encrypt_cluster MB/s / the disk's in-place MB/s (dd):         $(ratio "$enc_rate" "$disk_rate")"
