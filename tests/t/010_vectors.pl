#!/usr/bin/perl
#
# 010_vectors.pl
#	  pg_alterckey on the key vectors of both generations.
#
#  1. Every good vector set, installed in a fresh cluster: its KEK unwraps
#     its data keys; pg_alterckey OLD NEW succeeds; NEW then unwraps the
#     same data keys and OLD no longer does; key file names (so the
#     generation) are kept, generation 1 counters went up by one with zero
#     padding, a non-key file in live/ is carried over byte for byte, and
#     only live/ remains.
#  2. Every negative set: refused with "wrong cluster key or damaged key
#     file" and nothing changed.
#  3. Identical old and new KEKs (also spelled differently) are refused and
#     nothing changed.
#  4. Failing key commands in either position (non-zero exit, killed by a
#     signal, no output, short output, non-hex, timeout) are refused,
#     nothing changed, and what the command printed is not echoed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use PctTest;

my $README_KMS = "not a key: kept by every key change\n";

# ---- 1. good vector sets ----

my $first = 1;
for my $set (PctTest::good_sets())
{
	my $v = PctTest::vector($set);
	my $node = PctTest::encrypted_node("vec_$set", $set);
	my $pgdata = $node->data_dir;
	my $live = PctTest::live_dir($pgdata);
	my $expect = PctTest::vector_keys($set);
	my @names = map { $_->{file} } @{ $v->{keys} };

	is_deeply(scalar PctTest::unwrap($live, $v->{kek_hex}),
		$expect, "$set: the vector's KEK unwraps its data keys");

	# A file that is not a key file; servers ignore it, tools must keep it.
	open(my $fh, '>', "$live/README.kms") or die $!;
	print $fh $README_KMS;
	close $fh;
	chmod 0600, "$live/README.kms";

	my %before = map { $_ => PctTest::slurp_bytes("$live/$_") } @names;
	if ($v->{generation} == 1)
	{
		for my $k (@{ $v->{keys} })
		{
			is(PctTest::gen1_counter("$live/$k->{file}"),
				$k->{counter}, "$set: key file $k->{file} has the vector's counter");
		}
	}

	my $new = PctTest::test_kek("new $set");
	# The first run syncs (exercises the fsync path); the rest use -N.
	my ($rc, $out, $err) = PctTest::run_cmd(
		[
			'pg_alterckey', ($first ? () : '-N'),
			$v->{kek_command}, PctTest::kek_command($new),
			'-D', $pgdata
		]);
	$first = 0;
	is($rc, 0, "$set: pg_alterckey exits 0") or diag($err);
	like($out, qr/^cluster key changed$/m, "$set: reports the change");

	is_deeply(scalar PctTest::unwrap($live, $new),
		$expect, "$set: the new KEK unwraps the same data keys");
	is(PctTest::unwrap($live, $v->{kek_hex}),
		undef, "$set: the old KEK no longer unwraps");

	is(PctTest::keydir_entries($pgdata),
		'live', "$set: only live/ remains (no lock file, new/, old/)");
	opendir(my $dh, $live) or die $!;
	my @after = sort grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	is("@after", join(' ', sort(@names, 'README.kms')),
		"$set: same file names in live/ (generation kept)");

	for my $k (@{ $v->{keys} })
	{
		my $f = "$live/$k->{file}";
		my $bytes = PctTest::slurp_bytes($f);
		isnt($bytes, $before{ $k->{file} }, "$set: $k->{file} was rewrapped");
		is(sprintf('%04o', (stat $f)[2] & 07777),
			'0600', "$set: $k->{file} has mode 0600");
		if ($v->{generation} == 1)
		{
			is(length($bytes), 72, "$set: $k->{file} is 72 bytes");
			is(PctTest::gen1_counter($f),
				$k->{counter} + 1, "$set: $k->{file} counter incremented");
			is(PctTest::gen1_padding($f),
				'00000000', "$set: $k->{file} padding is zero");
			is(substr($bytes, 0, 8), substr($before{ $k->{file} }, 0, 8),
				"$set: $k->{file} key id kept");
		}
		else
		{
			is(length($bytes), 48, "$set: $k->{file} is 48 bytes");
		}
	}
	is(PctTest::slurp_bytes("$live/README.kms"),
		$README_KMS, "$set: README.kms carried over byte for byte");
}

# ---- 2. negative sets ----

my $neg = PostgreSQL::Test::Cluster->new('vec_negative');
$neg->init;
my $negdata = $neg->data_dir;

for my $set (PctTest::negative_sets())
{
	my $v = PctTest::load_vector($negdata, $set);
	is(PctTest::unwrap(PctTest::live_dir($negdata), $v->{kek_hex}),
		undef, "$set: the vector's KEK does not unwrap");

	my $before = PctTest::cluster_snapshot($negdata);
	my ($rc, $out, $err) = PctTest::run_cmd(
		[
			'pg_alterckey', '-N', $v->{kek_command},
			PctTest::kek_command(PctTest::test_kek("new $set")),
			'-D', $negdata
		]);
	is($rc, 1, "$set: pg_alterckey exits 1");
	like($err, qr/wrong cluster key or damaged key file/,
		"$set: reports a wrong key or damaged file");
	like($err, qr/no changes were made/, "$set: says no changes were made");
	is(PctTest::snapshot_diff($before, PctTest::cluster_snapshot($negdata)),
		'', "$set: nothing changed");
}

# ---- 3 and 4: refusals on a good cluster ----

my $set = 'b_aes256';
my $v = PctTest::load_vector($negdata, $set);
my $old = $v->{kek_command};
my $new_kek = PctTest::test_kek('refusals');
my $new = PctTest::kek_command($new_kek);

# Run pg_alterckey, expect a refusal matching $re with nothing changed, and
# none of @secrets on stderr or stdout.
sub refused
{
	my ($name, $re, $args, @secrets) = @_;
	my $before = PctTest::cluster_snapshot($negdata);
	my ($rc, $out, $err) =
	  PctTest::run_cmd([ 'pg_alterckey', '-N', @$args, '-D', $negdata ]);
	is($rc, 1, "$name: exits 1");
	like($err, $re, "$name: error message");
	like($err, qr/no changes were made/, "$name: says no changes were made");
	is(PctTest::snapshot_diff($before, PctTest::cluster_snapshot($negdata)),
		'', "$name: nothing changed");
	for my $s (@secrets)
	{
		unlike("$out\n$err", qr/\Q$s\E/i, "$name: output \"$s\" not echoed");
	}
	return;
}

refused('identical KEKs', qr/old and new cluster keys are identical/,
	[ $old, $old ]);
refused(
	'identical KEKs spelled differently',
	qr/old and new cluster keys are identical/,
	[ $old, 'echo "  ' . uc($v->{kek_hex}) . '  "' ]);

# Commands whose output never appears literally in their text: printf joins
# two halves, so a message quoting the command cannot contain the output.
my ($h1, $h2) = (substr($new_kek, 0, 32), substr($new_kek, 32));
my @bad = (
	[ 'exit 3', "printf '%s%s\\n' leak canary; exit 3", qr/exited with status 3/, 'leakcanary' ],
	[ 'valid key, exit 3', "printf '%s%s\\n' $h1 $h2; exit 3", qr/exited with status 3/, $new_kek ],
	[ 'kill -9', "printf '%s%s\\n' leak canary; kill -9 \$\$", qr/terminated by signal/, 'leakcanary' ],
	[ 'no output', 'true', qr/printed nothing/ ],
	[ 'short output', "printf '%s%s\\n' 0123abcd 4567cdef", qr/is not 64 hexadecimal digits/, '0123abcd4567cdef' ],
	[ 'non-hex', "printf '%s%s\\n' " . substr($h1, 0, 31) . 'g ' . $h2, qr/is not 64 hexadecimal digits/, substr($h1, 0, 31) . 'g' . $h2 ],
	[ 'too long', "printf '%s%s\\n' $h1 ${h2}00", qr/is not 64 hexadecimal digits/, "$h1${h2}00" ],
);
for my $b (@bad)
{
	my ($what, $cmd, $re, @secrets) = @$b;
	my $cmdre = qr/cluster key command .*$re/;
	refused("old command: $what", $cmdre, [ $cmd, $new ], @secrets);
	refused("new command: $what", $cmdre, [ $old, $cmd ], @secrets);
}
refused('old command: timeout', qr/cluster key command .*timed out/,
	[ '-t', '1', 'sleep 30', $new ]);

# After all of this the cluster still changes its key normally.
my ($rc, $out, $err) =
  PctTest::run_cmd([ 'pg_alterckey', '-N', $old, $new, '-D', $negdata ]);
is($rc, 0, 'after the refusals the key change works') or diag($err);
is_deeply(scalar PctTest::unwrap(PctTest::live_dir($negdata), $new_kek),
	PctTest::vector_keys($set), 'and the new KEK unwraps the data keys');

done_testing();
