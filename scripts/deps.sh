#!/bin/sh
# deps.sh
#	  Make sure the Debian packages that building and testing pgcrypttools
#	  need (`make all`, `make check`) are installed.
#
# Quiet when nothing is missing.  When something is missing: as root,
# `apt-get update` once and install it; otherwise print the missing
# packages and the command that installs them, and fail.
#
# asan needs nothing more (gcc ships libasan/libubsan); valgrind and lint
# have their own tools and are not part of `make check`.
set -eu

packages="
	build-essential
	pkg-config
	libssl-dev
	libpq-dev
	zlib1g-dev
	check
	postgresql-15
	postgresql-contrib
	postgresql-server-dev-15
	libipc-run-perl
	libio-pty-perl
	openssl
	time
	strace
"

missing=
for p in $packages; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$status" in
		ii*) ;;
		*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing Debian packages:$missing" >&2
	echo "deps.sh: install them as root with:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is meant
apt-get install -y -qq --no-install-recommends $missing
