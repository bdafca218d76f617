#!/usr/bin/perl
#
# 032_memory.pl
#	  Peak memory of pg_encrypt_cluster stays under 64 MB (10^6 bytes) when
#	  the file map is large.
#
#  A cluster (data checksums on) with a table of 200,000 rows and 400,000
#  extra empty relation files in its database directory: the file map of
#  that many files takes 16 MB (40 bytes a file), the program about 7.4 MB.
#  Journal mode holds two batches with their old data, 48 MiB at full size
#  (71 MB in all): its batches must shrink to leave room for the map.
#  Checksum mode holds no batch data (two passes), only hashes and a
#  hotzone per worker.
#  For each resilience mode, checksum and journal:
#   1. encrypt, then decrypt, each under /usr/bin/time: exit 0, peak RSS
#      under 64,000,000 bytes; journal mode: -v reports the smaller
#      batches naming the number of files;
#   2. compare-decrypted against the copy taken before passes (every file
#      back as it was, up to the LSNs rule 3.1 replaced).

use strict;
use warnings;

use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use PctTest;

my $NFILES = 400_000;
my $LIMIT = 64_000_000;
my $KEK = PctTest::test_kek('032 memory');
my $KEYCMD = PctTest::kek_command($KEK);

-x '/usr/bin/time'
  or BAIL_OUT('/usr/bin/time is missing (Debian package "time"; scripts/deps.sh installs it)');

my $node = PostgreSQL::Test::Cluster->new('memory');
$node->init(extra => ['-k']);
$node->append_conf('postgresql.conf', 'wal_level = replica');
$node->start;
$node->safe_psql('postgres',
	'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g;'
	  . ' CREATE INDEX ON t (id); CHECKPOINT;');
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
$node->stop;

my $pgdata = $node->data_dir;
my $dbdir = "$pgdata/base/$dboid";
for my $i (0 .. $NFILES - 1)
{
	my $f = "$dbdir/" . (3_000_000 + $i);
	open(my $fh, '>', $f) or die "could not create \"$f\": $!";
	close($fh);
}
my $orig = PostgreSQL::Test::Utils::tempdir() . '/orig';
PctTest::copy_tree($pgdata, $orig);

# Run pg_encrypt_cluster under /usr/bin/time; returns (exit, stdout,
# stderr, peak RSS in bytes).
sub measured
{
	my ($name, @args) = @_;
	my $tf = PostgreSQL::Test::Utils::tempdir() . '/time';
	my ($rc, $out, $err) = PctTest::run_cmd(
		[ '/usr/bin/time', '-f', '%M', '-o', $tf, 'pg_encrypt_cluster', @args ]);
	open(my $fh, '<', $tf) or die "could not read \"$tf\": $!";
	my @lines = <$fh>;
	close($fh);
	my ($kb) = $lines[-1] =~ /^(\d+)$/
	  or die "unexpected /usr/bin/time output: @lines";
	note(sprintf('%s: peak RSS %.1f MB', $name, $kb * 1024 / 1e6));
	return ($rc, $out, $err, $kb * 1024);
}

for my $mode (qw(checksum journal))
{
	my ($rc, $out, $err, $rss) = measured("$mode: encrypt",
		'-v', '-D', $pgdata, '-c', $KEYCMD, "--resilience=$mode");
	is($rc, 0, "$mode: encrypt exits 0") or diag($out, $err);
	cmp_ok($rss, '<', $LIMIT, "$mode: encrypt peak RSS under 64 MB");
	if ($mode eq 'journal')
	{
		like($err,
			qr/file map of \d+ files takes \d+ kB: batches of \d+ kB instead of \d+ kB/,
			"$mode: encrypt shrank its batches for the file map");
		my ($nfiles) = $err =~ /file map of (\d+) files/;
		cmp_ok($nfiles // 0, '>', $NFILES,
			"$mode: the map counted the extra files");
	}

	($rc, $out, $err, $rss) = measured("$mode: decrypt",
		'-v', '--decrypt', '-D', $pgdata, "--resilience=$mode");
	is($rc, 0, "$mode: decrypt exits 0") or diag($out, $err);
	cmp_ok($rss, '<', $LIMIT, "$mode: decrypt peak RSS under 64 MB");
	like($err, qr/batches of \d+ kB instead of/,
		"$mode: decrypt shrank its batches for the file map")
	  if $mode eq 'journal';

	($rc, $out, $err) =
	  PctTest::run_cmd([ 'pct_testutil', 'compare-decrypted', $orig, $pgdata ]);
	is($rc, 0, "$mode: compare-decrypted of the copy and the plain cluster")
	  or diag($out, $err);
}

rmtree($orig);
done_testing();
