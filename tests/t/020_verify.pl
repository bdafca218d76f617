#!/usr/bin/perl
#
# 020_verify.pl
#	  pg_verify_cryptokeys: passes on good clusters, reports every problem,
#	  tells "could not check" apart, and never writes.
#
#  1. Every good vector set: exit 0 and only "ok:" lines; with -q no
#     output at all.
#  2. Each FAIL of the contract, one at a time on a good cluster, exit 1:
#     wrong KEK (-c), a missing key file, a duplicate generation 1 key file
#     ("00"), a group/world writable key file, a key file that is a
#     symbolic link, a key length pg_control disagrees with, leftover new/
#     and old/, a lock held by a running process (with the OFD lock
#     pg_alterckey holds, or only its PID in the file) and a lock file left
#     by a dead process.  (A key file of another owner needs root: not
#     tested.)
#     -q prints the FAIL lines and nothing else.
#  3. Could not check, exit 2: the key command fails, the cluster is not
#     encrypted (pg_control 1300), no data directory.
#  4. It never writes: every file, mode and modification time of the data
#     directory (directories included) is the same after each run.

use strict;
use warnings;

use File::Copy ();
use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use PctTest;

# Run pg_verify_cryptokeys on $pgdata; check that it changed nothing under
# $pgdata: no entry created or removed, and every entry's mode, size,
# modification and change time (directories included) and the contents of
# files up to 64 kB are the same.  Returns (exit, stdout, stderr).
my @SNAP = (mtime => 'all', ctime => 1, hash_max => 65536);

sub verify
{
	my ($name, $pgdata, @args) = @_;
	my %opt = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
	my $before = PctTest::snapshot($pgdata, @SNAP);
	my @r = PctTest::run_cmd([ 'pg_verify_cryptokeys', @args ], %opt);
	is(PctTest::snapshot_diff($before, PctTest::snapshot($pgdata, @SNAP)),
		'', "$name: nothing under PGDATA changed");
	return @r;
}

# ---- 1. good clusters ----

for my $set (PctTest::good_sets())
{
	my $node = PctTest::encrypted_node("verify_$set", $set);
	my $pgdata = $node->data_dir;

	my ($rc, $out, $err) = verify("$set", $pgdata, '-D', $pgdata);
	is($rc, 0, "$set: exit 0") or diag($out, $err);
	like($out, qr/\Aok: /, "$set: prints ok: lines");
	is(join('', grep { !/^ok: / } split /^/, $out),
		'', "$set: only ok: lines");
	is($err, '', "$set: nothing on stderr");

	($rc, $out, $err) = verify("$set -q", $pgdata, '-q', $pgdata);
	is("$rc [$out] [$err]", '0 [] []', "$set: -q prints nothing");

	# PGDATA from the environment.
	($rc, $out, $err) =
	  verify("$set PGDATA", $pgdata, '-q', { env => { PGDATA => $pgdata } });
	is("$rc [$out] [$err]", '0 [] []', "$set: PGDATA from the environment");

	$node->clean_node;
}

# ---- 2. each FAIL ----

my $node = PostgreSQL::Test::Cluster->new('verify_fail');
$node->init;
my $pgdata = $node->data_dir;
my $kd = PctTest::keydir($pgdata);
my $live = PctTest::live_dir($pgdata);
my $elsewhere = PostgreSQL::Test::Utils::tempdir();

# One case: load SET, break it with $setup, expect exit 1 and a FAIL line
# matching $re (with -q: FAIL lines only).
sub fails
{
	my ($name, $set, $setup, $re, @args) = @_;
	my $v = PctTest::load_vector($pgdata, $set);
	$setup->($v);
	my ($rc, $out, $err) = verify($name, $pgdata, @args, '-D', $pgdata);
	is($rc, 1, "$name: exit 1") or diag($out, $err);
	like($out, qr/^FAIL: .*$re/m, "$name: FAIL line");
	is(join('', grep { !/^(ok|FAIL): / } split /^/, $out),
		'', "$name: only ok:/FAIL: lines");

	($rc, $out, $err) = verify("$name -q", $pgdata, @args, '-q', '-D', $pgdata);
	is($rc, 1, "$name -q: exit 1");
	like($out, qr/^FAIL: .*$re/m, "$name -q: FAIL line");
	is(join('', grep { !/^FAIL: / } split /^/, $out),
		'', "$name -q: FAIL lines only");
	return;
}

fails('wrong KEK', 'b_aes128', sub { },
	qr/wrong cluster key or damaged key file/,
	'-c', PctTest::kek_command(PctTest::test_kek('wrong')));
fails('wrong KEK, generation 1', 'c1_aes128', sub { },
	qr/wrong cluster key or damaged key file/,
	'-c', PctTest::kek_command(PctTest::test_kek('wrong')));
fails('damaged key file', 'b_aes128',
	sub { File::Copy::copy("$ENV{VECTORS}/negative/b_bitflip/pg_cryptokeys/live/relation.wkey",
			"$live/relation.wkey") or die $!; },
	qr/wrong cluster key or damaged key file/);
fails('missing key file', 'b_aes128', sub { unlink("$live/wal.wkey") or die $! },
	qr/missing/);
fails('missing key file, generation 1', 'c1_aes128',
	sub { unlink("$live/1") or die $! }, qr/missing/);
fails(
	'duplicate key file "00"',
	'c1_aes128',
	sub {
		File::Copy::copy("$live/0", "$live/00") or die $!;
		chmod 0600, "$live/00";
	},
	qr/duplicate/);
fails('world writable key file', 'b_aes128',
	sub { chmod(0666, "$live/relation.wkey") or die $! }, qr/mode/);
fails('group writable key file', 'c1_aes128',
	sub { chmod(0620, "$live/0") or die $! }, qr/mode/);
fails(
	'key file is a symbolic link',
	'b_aes128',
	sub {
		File::Copy::move("$live/wal.wkey", "$elsewhere/wal.wkey") or die $!;
		symlink("$elsewhere/wal.wkey", "$live/wal.wkey") or die $!;
	},
	qr/symbolic link/);
fails(
	'key length disagrees with pg_control (method)',
	'b_aes128',
	sub {
		PctTest::control_1300($pgdata);
		PctTest::control_1400($pgdata, 3);
	},
	qr/key length/);
fails(
	'key length disagrees with pg_control (bits)',
	'c1_aes128',
	sub {
		PctTest::control_1300($pgdata);
		PctTest::control_1400($pgdata, 256);
	},
	qr/key length/);

my $copy_live = sub {
	my ($to) = @_;
	mkdir("$kd/$to", 0700) or die $!;
	for my $f ('relation.wkey', 'wal.wkey')
	{
		File::Copy::copy("$live/$f", "$kd/$to/$f") or die $!;
		chmod 0600, "$kd/$to/$f";
	}
};
fails('leftover new/', 'b_aes128', sub { $copy_live->('new') },
	qr/"new" directory.*pg_alterckey -r/);
fails('leftover old/', 'b_aes128', sub { $copy_live->('old') },
	qr/"old" directory.*pg_alterckey -r/);

my ($holder, $holder_pid);
fails(
	'lock held by a running process',
	'b_aes128',
	sub { ($holder, $holder_pid) = PctTest::hold_lock($pgdata); },
	qr/operation in progress \(process \d+\)/);
PctTest::release_lock($holder);
my ($sleep, $sleep_pid) = PctTest::start_cmd([ 'sleep', '60' ]);
fails('lock file naming a running process', 'b_aes128',
	sub { PctTest::write_lock_file($pgdata, $sleep_pid) },
	qr/operation in progress \(process $sleep_pid\)/);
$sleep->{run}->kill_kill;
$sleep->{run}->finish;
my $dead = PctTest::dead_pid();
fails('lock left by a dead process', 'b_aes128',
	sub { PctTest::write_lock_file($pgdata, $dead) },
	qr/interrupted operation .*pg_alterckey -r/);

# ---- 3. could not check ----

sub cannot
{
	my ($name, $re, @args) = @_;
	my ($rc, $out, $err) = verify($name, $pgdata, @args);
	is($rc, 2, "$name: exit 2") or diag($out, $err);
	like($err, qr/^pg_verify_cryptokeys: error: .*$re/m, "$name: error");
	return;
}

PctTest::load_vector($pgdata, 'b_aes128');
cannot('key command fails', qr/cluster key command .*exited with status 3/,
	'-c', 'exit 3', '-D', $pgdata);
cannot('key command prints nothing', qr/cluster key command .*printed nothing/,
	'-c', 'true', '-D', $pgdata);
PctTest::control_1300($pgdata);
cannot('not encrypted', qr/cluster is not encrypted/, '-D', $pgdata);
PctTest::control_1400($pgdata, 1);
cannot('no data directory', qr/no data directory specified/,
	{ env => { PGDATA => undef } });
cannot('data directory does not exist', qr/\Q$pgdata\E\/nonexistent/,
	'-D', "$pgdata/nonexistent");

# And the cluster is good again.
my ($rc, $out, $err) = verify('final', $pgdata, '-q', '-D', $pgdata);
is("$rc [$out] [$err]", '0 [] []', 'the repaired cluster passes');

done_testing();
