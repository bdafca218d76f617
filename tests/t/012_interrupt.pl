#!/usr/bin/perl
#
# 012_interrupt.pl
#	  An interrupted pg_alterckey always repairs to exactly one KEK.
#
#  1. PCT_FAULT_LIST=1 lists the durable steps of a key change (1..K).
#  2. For each generation and each step N: on fresh keys (pg_cryptokeys and
#     pg_control reloaded from the vector; pg_alterckey touches nothing
#     else, so one initdb serves every run), pg_alterckey with
#     PCT_FAULT_STEP=N stops with exit 75; pg_alterckey -r then exits 0 and
#     leaves only live/ (no lock file, new/, old/), whose keys unwrap with
#     exactly one of OLD and NEW and are the vector's data keys.  Once a
#     step ends in NEW, every later one does too; step K ends in NEW; keys
#     repaired back to OLD are the original files byte for byte.
#     PCT_FAULT_STEP=K+1 never fires.
#  3. kill -9 at random moments (PCT_STEP_DELAY_MS=20 widens the windows;
#     the seed is printed, PCT_TEST_SEED repeats a run): the same
#     assertions after -r.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

use PctTest;

my $node = PostgreSQL::Test::Cluster->new('interrupt');
$node->init;
my $pgdata = $node->data_dir;
my $live = PctTest::live_dir($pgdata);

my (%v, %repairs);
my $NEW = PctTest::test_kek('interrupt');

sub change
{
	my ($set, %env) = @_;
	return PctTest::run_cmd(
		[
			'pg_alterckey', '-N', $v{$set}->{kek_command},
			PctTest::kek_command($NEW), '-D', $pgdata
		],
		env => \%env);
}

# After -r: the state is consistent.  Returns 'old' or 'new' (or a
# description of what is wrong).
sub repair_and_check
{
	my ($set, $name) = @_;
	my ($rc, $out, $err) =
	  PctTest::run_cmd([ 'pg_alterckey', '-N', '-r', '-D', $pgdata ]);
	is($rc, 0, "$name: -r exits 0") or diag($err);
	like($out,
		qr/^(nothing to repair|removed interrupted new key directory|installed new keys from interrupted change|removed old key directory)\n\z/,
		"$name: -r prints one repair line");
	$repairs{ $out =~ s/\n//r }++;
	is(PctTest::keydir_entries($pgdata),
		'live', "$name: only live/ remains (no lock file, new/, old/)");

	my $o = PctTest::unwrap($live, $v{$set}->{kek_hex});
	my $n = PctTest::unwrap($live, $NEW);
	my $which = $o && $n ? 'both' : $o ? 'old' : $n ? 'new' : 'neither';
	like($which, qr/^(old|new)$/, "$name: exactly one KEK unwraps ($which)");
	if ($o || $n)
	{
		is_deeply($o || $n, PctTest::vector_keys($set),
			"$name: the data keys are the vector's");
	}
	if ($which eq 'old')
	{
		my $orig = "$ENV{VECTORS}/$set/pg_cryptokeys/live";
		my $same = 1;
		for my $k (@{ $v{$set}->{keys} })
		{
			$same &&= PctTest::slurp_bytes("$live/$k->{file}") eq
			  PctTest::slurp_bytes("$orig/$k->{file}");
		}
		ok($same, "$name: repaired to OLD, the key files are the originals");
	}
	return $which;
}

# ---- 1. the durable steps ----

my $steps;
for my $set ('b_aes256', 'c1_aes128')
{
	$v{$set} = PctTest::load_vector($pgdata, $set);
	my ($rc, $out, $err) = change($set, PCT_FAULT_LIST => 1);
	is($rc, 0, "$set: key change with PCT_FAULT_LIST") or diag($err);
	my @n = $err =~ /^fault step (\d+): \S.*$/mg;
	ok(@n >= 3, "$set: lists durable steps (" . scalar(@n) . ')');
	is("@n", join(' ', 1 .. scalar @n), "$set: steps are numbered 1..K");
	note("$set: durable steps:\n", join("\n", $err =~ /^(fault step .*)$/mg));
	$steps->{$set} = scalar @n;
}

# ---- 2. stop after each step ----

for my $set (sort keys %v)
{
	my $k = $steps->{$set};
	my @seen;
	for my $n (1 .. $k)
	{
		my $name = "$set step $n/$k";
		PctTest::load_vector($pgdata, $set);
		my ($rc, $out, $err) = change($set, PCT_FAULT_STEP => $n);
		is($rc, 75, "$name: stopped with exit 75") or diag($err);
		push @seen, repair_and_check($set, $name);
	}
	my $seq = join(' ', @seen);
	like($seq, qr/^(old )*(new ?)*$/,
		"$set: OLD up to some step, NEW from then on ($seq)");
	is($seen[-1], 'new', "$set: after the last step the change is done");
	ok((grep { $_ eq 'old' } @seen) >= 1, "$set: an early stop keeps OLD");

	PctTest::load_vector($pgdata, $set);
	my ($rc, $out, $err) = change($set, PCT_FAULT_STEP => $k + 1);
	is($rc, 0, "$set: PCT_FAULT_STEP=K+1 never fires") or diag($err);
}

# ---- 3. kill -9 at random moments ----

my $seed = $ENV{PCT_TEST_SEED} // (time() ^ $$);
note("random seed $seed (set PCT_TEST_SEED=$seed to repeat)");
srand($seed);

# Time a delayed run: when its first durable step is done ($first) and
# when it ends ($duration).  Kills land between $first/2 and the end, so
# that most of them interrupt the change itself rather than its start-up.
my $set = 'c1_aes128';
PctTest::load_vector($pgdata, $set);
my $t0 = Time::HiRes::time();
my ($timed) = PctTest::start_cmd(
	[
		'pg_alterckey', '-N', $v{$set}->{kek_command},
		PctTest::kek_command($NEW), '-D', $pgdata
	],
	env => { PCT_STEP_DELAY_MS => 20, PCT_FAULT_LIST => 1 });
my $first;
while ($timed->{run}->pumpable)
{
	$timed->{run}->pump_nb;
	if (!defined $first && $timed->{err} =~ /^fault step 1:/m)
	{
		$first = Time::HiRes::time() - $t0;
	}
	Time::HiRes::sleep(0.001);
}
my ($rc, $out, $err) = PctTest::finish_cmd($timed);
my $duration = Time::HiRes::time() - $t0;
is($rc, 0, 'a delayed key change completes') or diag($err);
$first //= 0;
note(sprintf('a delayed key change: first step after %.3f s, done after %.3f s',
		$first, $duration));

my %outcome;
for my $i (1 .. 20)
{
	my $s = $i % 2 ? 'b_aes256' : 'c1_aes128';
	my $delay = $first / 2 + rand($duration - $first / 2);
	my $name = sprintf('kill -9 #%d (%s, after %.3f s)', $i, $s, $delay);
	PctTest::load_vector($pgdata, $s);
	my ($h, $pid) = PctTest::start_cmd(
		[
			'pg_alterckey', '-N', $v{$s}->{kek_command},
			PctTest::kek_command($NEW), '-D', $pgdata
		],
		env => { PCT_STEP_DELAY_MS => 20 });
	Time::HiRes::sleep($delay);
	kill('KILL', $pid);
	my ($krc) = PctTest::finish_cmd($h);
	ok($krc == 128 + 9 || $krc == 0, "$name: killed or done (exit $krc)");
	$outcome{ repair_and_check($s, $name) }++;
}
note('kill -9 outcomes: ', join(', ', map { "$_: $outcome{$_}" } sort keys %outcome));
note('repairs over the whole test: ',
	join(', ', map { "$_: $repairs{$_}" } sort keys %repairs));

done_testing();
