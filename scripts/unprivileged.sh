#!/bin/sh
# unprivileged.sh TARGET
#	  Run `make TARGET` as an unprivileged user.
#
# PostgreSQL (initdb, postgres) and the pgcrypttools tools refuse to run as
# root.  Not root: run `make TARGET` here.  Root:
#   1. install missing Debian packages (scripts/deps.sh);
#   2. create the system user $TEST_USER (default pgcrypttools) if missing;
#   3. copy the source tree (tracked and untracked non-ignored files, no
#      .git, no build outputs) to a fresh directory
#      $PCT_CHECK_DIR/TARGET/src owned by that user, so that it never needs
#      to read a root-only path; ../shared beside the tree is copied along;
#   4. run `make TARGET` there as that user with a clean environment (CI,
#      TERM, PROVE_FLAGS, PROVE_TESTS, PG_CONFIG, CC, BENCH_SCALE, BENCH_DIR and PCT_*
#      pass);
#   5. exit with make's status; on failure say where the logs are and show
#      the end of the regress log of every failed TAP test.
set -u

target=${1:?usage: unprivileged.sh TARGET}
top=$(cd "$(dirname "$0")/.." && pwd)
make=${MAKE:-make}

if [ "$(id -u)" -ne 0 ]; then
	exec "$make" -C "$top" --no-print-directory "$target"
fi

user=${TEST_USER:-pgcrypttools}
base=${PCT_CHECK_DIR:-/var/tmp/pgcrypttools-check}
work=$base/$target
src=$work/src

sh "$top/scripts/deps.sh" || exit 1

if ! id -u "$user" >/dev/null 2>&1; then
	useradd --system -m -s /bin/sh "$user" || exit 1
fi
home=$(getent passwd "$user" | cut -d: -f6)

# ---- 3. a fresh copy of the tree the user owns ----
# $base sits in a world-writable directory: it must be root's own.
mkdir -p "$base" || exit 1
if [ -L "$base" ] || [ "$(stat -c %u "$base")" != 0 ]; then
	echo "unprivileged.sh: $base is not a directory owned by root" >&2
	exit 1
fi
chmod 0755 "$base" || exit 1
rm -rf "$work" || exit 1
mkdir -p "$src" || exit 1

copy_tree()					# copy_tree FROM TO
{
	if [ -e "$1/.git" ] && command -v git >/dev/null 2>&1 &&
		git -C "$1" -c safe.directory='*' rev-parse --git-dir >/dev/null 2>&1; then
		# Tracked files (those deleted in the work tree are skipped) and
		# untracked files that are not ignored; build outputs are ignored.
		(cd "$1" && git -c safe.directory='*' ls-files -z --cached --others \
			--exclude-standard | tar --null --no-recursion \
			--ignore-failed-read -T - -cf - 2>/dev/null) |
			tar -C "$2" -xf -
	else
		# Not a git checkout: everything but .git; `make clean` below
		# removes the build outputs.
		need_clean=1
		tar -C "$1" --exclude=.git --exclude=build-asan --exclude=tmp_check \
			-cf - . | tar -C "$2" -xf -
	fi
}
need_clean=

copy_tree "$top" "$src" || { echo "unprivileged.sh: could not copy $top" >&2; exit 1; }
if [ -d "$top/../shared" ]; then
	mkdir -p "$work/shared" &&
		tar -C "$top/../shared" -cf - . | tar -C "$work/shared" -xf - || exit 1
fi
chown -R "$user:" "$work" || exit 1

# ---- 4. make TARGET as the user ----
set -- HOME="$home" USER="$user" LOGNAME="$user" LANG=C.UTF-8 \
	PATH=/usr/local/bin:/usr/bin:/bin
for v in $(env | sed -n 's/^\(PCT_[A-Za-z0-9_]*\)=.*/\1/p') \
	CI TERM PROVE_FLAGS PROVE_TESTS PG_CONFIG CC BENCH_SCALE BENCH_DIR; do
	eval "isset=\${$v+x}"
	[ -n "$isset" ] || continue
	eval "set -- \"\$@\" \"$v=\${$v}\""
done

as_user()
{
	runuser -u "$user" -- env -i "$@"
}
if [ -n "$need_clean" ]; then
	as_user "$@" "$make" -C "$src" --no-print-directory -s clean || exit 1
fi

echo "unprivileged.sh: make $target as $user in $src"
# Root writes these, so not in the user's directory.
log=$base/$target.log
status=$base/$target.status
rm -f "$log" "$status"
{
	as_user "$@" "$make" -C "$src" --no-print-directory "$target" 2>&1
	echo $? >"$status"
} | tee "$log"
rc=$(cat "$status" 2>/dev/null || echo 1)

if [ "$rc" -ne 0 ]; then
	logdir=$src/tests/tmp_check/log
	echo ""
	echo "unprivileged.sh: make $target failed (exit $rc) as $user in $src"
	echo "unprivileged.sh: make output: $log"
	[ -d "$logdir" ] && echo "unprivileged.sh: TAP logs: $logdir"
	# prove's summary names each failed test: "tests/t/x.pl (Wstat: ...".
	for t in $(sed -n 's/^\(tests\/t\/[^ ]*\.pl\) *(Wstat:.*/\1/p' "$log" | sort -u); do
		name=$(basename "$t" .pl)
		f=$logdir/regress_log_$name
		[ -f "$f" ] || continue
		echo ""
		echo "==== last 60 lines of $f"
		runuser -u "$user" -- tail -n 60 "$f"
	done
fi
exit "$rc"
