#!/usr/bin/perl
#
# 031_encrypt_interrupt.pl
#	  An interrupted pg_encrypt_cluster (either direction, either resilience
#	  mode) keeps the cluster away from both kinds of server, and rerunning
#	  the same command finishes it with exactly the cluster it started from;
#	  a torn sector is rolled back (journal mode) or reported with its file
#	  and offset (checksum mode).  FORMAT sections 1, 3 and 5.
#
#  0. The cluster: initdb -k --wal-segsize=1, pgbench -i -s 1, an unlogged
#     table with an index, a GiST index, a table bulk-loaded under
#     wal_level=minimal (pages with LSN 0), a second database; amcheck
#     installed in both databases; then wal_level=replica, pg_dump of both
#     databases, a clean stop and ORIG, a copy.
#  1. PCT_FAULT_LIST=1 lists the durable steps of each direction and mode
#     (1..K, in the order FORMAT 5 demands); the listing runs are the
#     uninterrupted baseline: compare-encrypted and iv-audit pass on the
#     encrypted cluster, compare-decrypted with ORIG after decryption.  ENC,
#     a fully encrypted copy of ORIG, is where every decryption starts.
#  2. Once per direction and mode, interrupted just after the first batch of
#     data was written: pg_alterckey and the other direction are refused
#     with a message naming the command to rerun (encryption: so are other
#     options), the stock server refuses to start, and none of these
#     changes pg_cryptokeys, pg_control or the configuration.
#  3. PCT_FAULT_STEP=N, on a fresh copy, for every step N in 1..50, 20
#     random later steps (seeded: the seed is printed, PCT_TEST_SEED repeats
#     a run), the final steps (after the last batch's data: the same in both
#     modes, so in checksum mode only) and K+1: exit 75 (0 for K+1);
#     meanwhile the lock file is there (until the last step) and pg_control
#     is 1400 once data may have changed (until decryption's data is
#     complete); the same command rerun exits 0; encryption's result passes
#     compare-encrypted and iv-audit (every fourth run, and the four below)
#     and is decrypted; then compare-decrypted with ORIG passes.  Four
#     results per direction and mode (the first batch's data durable, an
#     early and a later random step, data complete) are also started with
#     the stock server: pg_dump of both databases equals the one before,
#     pg_amcheck (bt_index_check with heapallindexed on every btree index,
#     verify_heapam on every table) finds nothing, and index scans of the
#     GiST and the unlogged index answer as before.
#  4. kill -9 at random moments: per direction 20 runs (the modes
#     alternating) with PCT_STEP_DELAY_MS=5, and one left to finish, all
#     started together, each killed after a random time within the
#     estimated duration of a run; the same checks as in 3 after the rerun
#     (with PCT_BATCH_KB=64).
#  5. Torn sector: encryption stopped right after a "journal batch
#     recorded" step (the batch is recorded, none of its data written);
#     bytes 2048..4095 of the first 4 KiB sector of one of the batch's
#     hotzones (journal-show) are overwritten with 0x5A, neither old nor
#     new.  Journal mode: the rerun rolls it back and exits 0, and the
#     cluster decrypts to ORIG.  Checksum mode: the rerun names the file
#     and offset of the damaged sector, finishes, and exits 1; every other
#     file is intact (compare-encrypted and compare-decrypted report
#     violations in that file only).
#
# Every run uses -N (no fsync).  A process that stops (PCT_FAULT_STEP) or is
# killed loses nothing that reached the page cache; only a crash of the
# machine could lose more, and no test here simulates one.  So -N keeps the
# test fast without weakening what it proves.  PCT_BATCH_KB=64 makes the
# batches small, so that this small cluster has about 800 of them.  The
# reruns of sections 2 and 3 go without it (the same command, in the
# default batches once the recorded ones are finished: half the time);
# those of sections 4 and 5 keep it.
#
# The runs of sections 3 and 4 are independent of each other: forked
# workers (PCT_TEST_JOBS of them, default 2) carry them out on copies of
# their own and record what they saw; every assertion is made here, in
# order, from those records.  The time of each section is noted (wall and
# CPU): most of it goes to copying, rewriting and comparing the 53 MB
# cluster, some 350 times each.

use strict;
use warnings;

use Digest::SHA ();
use File::Find ();
use File::Path qw(make_path rmtree);
use JSON::PP ();
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

use PctTest;

my $T0 = Time::HiRes::time();
my $t_section = $T0;

# Wall time of a section, and CPU time (ours and our children's) in all.
sub timing
{
	my ($what) = @_;
	my $now = Time::HiRes::time();
	my ($u, $s, $cu, $cs) = times();
	note(sprintf('timing: %s took %.1f s (%.1f s in all, CPU %.1f s)',
			$what, $now - $t_section, $now - $T0, $u + $s + $cu + $cs));
	$t_section = $now;
	return;
}

# The hooks of this test come from here only.
delete $ENV{$_}
  for qw(PCT_FAULT_STEP PCT_FAULT_LIST PCT_STEP_DELAY_MS PCT_BATCH_KB
  PCT_TEST_FREE_BYTES);

my $BATCH_KB = 64;
my $DELAY_MS = 5;
my $NWORKERS = $ENV{PCT_TEST_JOBS} // 2;
my $FIRST_STEPS = 50;
my $RANDOM_STEPS = 20;
my $KILLS = 20;
my %OP = (encrypt => 1, decrypt => 2);	# pct_op in journal-show
my %OPNAME = (encrypt => 'encryption', decrypt => 'decryption');
my %RERUN_CMD =
  (encrypt => 'pg_encrypt_cluster', decrypt => 'pg_encrypt_cluster --decrypt');
my @DIRS = ('encrypt', 'decrypt');
my @MODES = ('checksum', 'journal');

my $seed = $ENV{PCT_TEST_SEED} // (time() ^ $$);
note("random seed $seed (set PCT_TEST_SEED=$seed to repeat)");
srand($seed);

my $KEK = PctTest::test_kek('encrypt interrupt');
my $KEYCMD = PctTest::kek_command($KEK);

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $node = PostgreSQL::Test::Cluster->new('encrypt_interrupt');
my @DBS = ('postgres', 'second');
my (@PROBE, %dump_before, $probe_before);
# a port for the stock server of each worker
my @PORTS = map { PostgreSQL::Test::Cluster::get_free_port() } 1 .. $NWORKERS;
my $ORIG = "$tmp/orig";
my $ENC = "$tmp/enc";
my %BASE = (encrypt => $ORIG, decrypt => $ENC);

# ---- helpers ----

# Start CMD (an array ref) with stdin from /dev/null, stdout and stderr to
# the files $f.out and $f.err, %env added to the environment (undef:
# removed), killed by SIGALRM after the default timeout.  Returns the PID.
sub spawn
{
	my ($cmd, $f, %env) = @_;
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	return $pid if $pid;
	open(my $in, '<', '/dev/null') or POSIX::_exit(126);
	open(my $out, '>', "$f.out") or POSIX::_exit(126);
	open(my $err, '>', "$f.err") or POSIX::_exit(126);
	POSIX::dup2(fileno($in), 0);
	POSIX::dup2(fileno($out), 1);
	POSIX::dup2(fileno($err), 2);
	while (my ($k, $v) = each %env)
	{
		if (defined $v) { $ENV{$k} = $v; }
		else { delete $ENV{$k}; }
	}
	alarm($PostgreSQL::Test::Utils::timeout_default);
	{
		no warnings 'exec';
		exec { $cmd->[0] } @$cmd;
	}
	my $msg = "could not run $cmd->[0]: $!\n";
	POSIX::write(2, $msg, length($msg));
	POSIX::_exit(127);
}

# Wait for a spawned command.  Returns (exit status, stdout, stderr).
sub reap
{
	my ($pid, $f) = @_;
	waitpid($pid, 0) == $pid or die "waitpid failed: $!";
	my $rc = PctTest::exit_status($?);
	my @r = ($rc, PctTest::slurp_bytes("$f.out"), PctTest::slurp_bytes("$f.err"));
	unlink("$f.out", "$f.err");
	return @r;
}

# Run CMD and wait: (exit status, stdout, stderr) as PctTest::run_cmd
# returns them, at a fraction of IPC::Run's cost (this test runs some 3000
# commands, most of them in forked workers).
sub run
{
	my ($cmd, %env) = @_;
	my $f = "$tmp/cmd.$$";
	return reap(spawn($cmd, $f, %env), $f);
}

sub tool_cmd
{
	my ($dir, $mode, $pgdata) = @_;
	return [
		'pg_encrypt_cluster', '-N', "--resilience=$mode", '-D', $pgdata,
		$dir eq 'encrypt' ? ('-c', $KEYCMD) : ('--decrypt')
	];
}

# Run the tool with small batches (and more of the hooks from %env).
sub tool
{
	my ($dir, $mode, $pgdata, %env) = @_;
	return run(tool_cmd($dir, $mode, $pgdata), PCT_BATCH_KB => $BATCH_KB, %env);
}

# Make $to a copy of the data directory $from: cp -a the first time; then
# in place, which is several times faster than removing and copying again
# (no files and pages to free and allocate): every file of $from is
# written over its namesake (truncated to its size), modes are set, and
# whatever $from does not have is removed.  Timestamps and inode numbers
# are not kept; no tool or check looks at them.
sub fresh_copy
{
	my ($from, $to) = @_;
	if (!-d $to)
	{
		system('cp', '-a', $from, $to) == 0
		  or die "cp -a \"$from\" \"$to\" failed";
		return;
	}
	my %want;
	File::Find::find(
		{
			no_chdir => 1,
			wanted => sub {
				my $rel = substr($File::Find::name, length($from));
				my ($s, $d) = ($File::Find::name, "$to$rel");
				my @st = lstat($s) or die "lstat \"$s\": $!";
				$want{$rel} = 1;
				if (-l _)
				{
					my $target = readlink($s);
					if (!-l $d || readlink($d) ne $target)
					{
						rmtree($d) if -d $d && !-l $d;
						unlink($d);
						symlink($target, $d) or die "symlink \"$d\": $!";
					}
					return;
				}
				if (-d _)
				{
					unlink($d) if -e $d && !-d $d || -l $d;
					mkdir($d) unless -d $d;
				}
				else
				{
					rmtree($d) if -d $d && !-l $d;
					unlink($d) if -l $d;
					open(my $in, '<:raw', $s) or die "open \"$s\": $!";
					open(my $out, (-e $d ? '+<:raw' : '>:raw'), $d)
					  or die "open \"$d\": $!";
					my $buf;
					while (my $n = sysread($in, $buf, 1 << 20))
					{
						syswrite($out, $buf) == $n or die "write \"$d\": $!";
					}
					truncate($out, $st[7]) or die "truncate \"$d\": $!";
					close($out) or die "close \"$d\": $!";
					close($in);
				}
				chmod($st[2] & 07777, $d) or die "chmod \"$d\": $!";
			}
		},
		$from);
	my @extra;
	File::Find::finddepth(
		{
			no_chdir => 1,
			wanted => sub {
				push @extra, $File::Find::name
				  unless $want{ substr($File::Find::name, length($to)) };
			}
		},
		$to);
	for my $e (@extra)
	{
		if (-d $e && !-l $e) { rmdir($e) or rmtree($e); }
		else { unlink($e) or die "unlink \"$e\": $!"; }
	}
	return;
}

sub save
{
	my ($file, $text) = @_;
	open(my $fh, '>', $file) or die "could not write \"$file\": $!";
	print $fh $text or die "could not write \"$file\": $!";
	close $fh or die "could not write \"$file\": $!";
	return;
}

sub connstr
{
	my ($port, $db) = @_;
	return "host=" . $node->host . " port=$port dbname=$db";
}

sub probe
{
	my ($port) = @_;
	return run(
		[
			'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', connstr($port, 'postgres'), map { ('-c', $_) } @PROBE
		]);
}

sub testutil
{
	return run([ 'pct_testutil', @_ ]);
}

# What an interrupted or finished run left: lock file, journal (with
# journal-show's view of it), pg_control version, key directory entries.
sub cluster_state
{
	my ($pgdata) = @_;
	my $kd = PctTest::keydir($pgdata);
	my %s = (
		keydir => -d $kd ? 1 : 0,
		lock => -e "$kd/pg_alterckey.pid" ? 1 : 0,
		journal => -e "$kd/operation.journal" ? 1 : 0);
	$s{entries} = $s{keydir} ? PctTest::keydir_entries($pgdata) : '';
	my ($rc, $out, $err) = testutil('control-show', $pgdata);
	$s{version} =
	  $rc == 0 && $out =~ /^version (\d+)$/m ? $1 : "unreadable ($err)";
	if ($s{journal})
	{
		($rc, $out, $err) = testutil('journal-show', $pgdata);
		if ($rc != 0)
		{
			$s{journal_error} = "journal-show exit $rc: $err";
		}
		else
		{
			$s{op} = $out =~ /^op (\d+)$/m ? $1 : '?';
			$s{complete} = $out =~ /^complete (\d)$/m ? $1 : '?';
			$s{done_bytes} = $out =~ /^done \d+ \d+ (\d+)$/m ? $1 : '?';
			$s{zones} = [ $out =~ /^zone \d+ (.*) (\d+) (\d+)$/mg ];
		}
	}
	return \%s;
}

# The FORMAT 1/5 rules for a run that stopped or was killed (not for the
# end of one): while the journal exists the operation is unfinished and
# the lock file keeps a patched server out; once data may have changed
# (a batch recorded, bytes done, or data complete), pg_control is 1400 so
# that a stock server refuses it, until decryption's data is complete.
# Returns the violations, one a line ('' when none).
sub state_problems
{
	my ($dir, $s) = @_;
	my @p;
	return '' unless $s->{journal};
	push @p, 'journal present but no lock file' unless $s->{lock};
	if ($s->{journal_error})
	{
		push @p, $s->{journal_error};
		return join("\n", @p);
	}
	push @p, "journal names op $s->{op}, not the $OPNAME{$dir} ($OP{$dir})"
	  if $s->{op} ne $OP{$dir};
	my $changed = @{ $s->{zones} } || $s->{done_bytes} || $s->{complete};
	if ($changed && !($dir eq 'decrypt' && $s->{complete}))
	{
		push @p, "data may have changed but pg_control is $s->{version}"
		  if $s->{version} ne '1400';
	}
	return join("\n", @p);
}

# The end state of a finished run.
sub done_problems
{
	my ($dir, $s) = @_;
	my @p;
	push @p, 'lock file left' if $s->{lock};
	push @p, 'journal left' if $s->{journal};
	if ($dir eq 'encrypt')
	{
		push @p, "pg_control is $s->{version}, not 1400"
		  if $s->{version} ne '1400';
		push @p, "pg_cryptokeys holds \"$s->{entries}\", not \"live\""
		  if $s->{entries} ne 'live';
	}
	else
	{
		push @p, "pg_control is $s->{version}, not 1300"
		  if $s->{version} ne '1300';
		push @p, 'pg_cryptokeys left' if $s->{keydir};
	}
	return join("\n", @p);
}

# After a finished run: encryption's result must be fully and properly
# encrypted (compare-encrypted and iv-audit, unless $full is false) and is
# then decrypted; both must end equal to ORIG.
sub finish_checks
{
	my ($r, $dir, $pgdata, $full) = @_;
	if ($dir eq 'encrypt')
	{
		if ($full // 1)
		{
			@$r{qw(ce_rc ce_out ce_err)} =
			  testutil('compare-encrypted', $ORIG, $pgdata);
			@$r{qw(iv_rc iv_out iv_err)} = testutil('iv-audit', $pgdata);
		}
		@$r{qw(drc dout derr)} =
		  run(tool_cmd('decrypt', 'checksum', $pgdata));
	}
	@$r{qw(cd_rc cd_out cd_err)} =
	  testutil('compare-decrypted', $ORIG, $pgdata);
	return;
}

sub assert_finish_checks
{
	my ($name, $r, $dir, $full) = @_;
	if ($dir eq 'encrypt')
	{
		if ($full // 1)
		{
			is($r->{ce_rc}, 0, "$name: compare-encrypted with ORIG passes")
			  or diag($r->{ce_out}, $r->{ce_err});
			is($r->{iv_rc}, 0, "$name: iv-audit passes")
			  or diag($r->{iv_out}, $r->{iv_err});
		}
		is($r->{drc}, 0, "$name: decrypts (exit 0)") or diag($r->{derr});
	}
	is($r->{cd_rc}, 0, "$name: compare-decrypted with ORIG passes")
	  or diag($r->{cd_out}, $r->{cd_err});
	return;
}

# Carry out $fn->(JOB, WORKDIR, WORKER) for every job in $NWORKERS forked
# processes; each returns a hash ref.  Returns those in job order (a job
# that died: { error => MESSAGE }).
my $phase = 0;

sub run_parallel
{
	my ($jobs, $fn) = @_;
	my $rdir = "$tmp/results/" . ++$phase;
	make_path($rdir);
	my @pids;
	for my $w (0 .. $NWORKERS - 1)
	{
		my $pid = fork();
		die "fork failed: $!" unless defined $pid;
		if ($pid == 0)
		{
			my $wdir = "$tmp/worker$w";
			make_path($wdir);
			for (my $i = $w; $i < @$jobs; $i += $NWORKERS)
			{
				my $r = eval { $fn->($jobs->[$i], $wdir, $w) };
				$r = { error => $@ || 'no result' } unless ref $r;
				my $f = "$rdir/$i.json";
				if (open(my $fh, '>', $f))
				{
					print $fh JSON::PP->new->encode($r);
					close $fh;
				}
			}
			# no END blocks in a child: they belong to the test
			POSIX::_exit(0);
		}
		push @pids, $pid;
	}
	waitpid($_, 0) for @pids;
	my @res;
	for my $i (0 .. $#$jobs)
	{
		my $f = "$rdir/$i.json";
		my $r =
		  -e $f
		  ? JSON::PP->new->decode(PostgreSQL::Test::Utils::slurp_file($f))
		  : { error => 'the worker recorded no result' };
		push @res, $r;
	}
	rmtree($rdir);
	return @res;
}

# ---- 0. the cluster ----

$node->init(extra => [ '-k', '--wal-segsize=1' ]);
# wal_skip_threshold = 0: a relation created in the committing transaction
# is synced, not WAL-logged, so its pages keep LSN 0.  min/max_wal_size: few
# WAL segments are kept (they make a fifth of the cluster even so).
$node->append_conf('postgresql.conf', <<'EOC');
wal_skip_threshold = 0
min_wal_size = 2MB
max_wal_size = 2MB
EOC
$node->start;
$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ],
	'pgbench -i -s 1');
# COPY FREEZE into a table created in the same transaction: under
# wal_level=minimal with wal_skip_threshold=0 its pages are synced at commit,
# not WAL-logged, and as their tuples are frozen no reader sets a hint bit
# later (with checksums that would WAL-log the page and give it a real LSN).
my $bulk_data = "$tmp/bulk.data";
{
	open(my $fh, '>', $bulk_data) or die "$bulk_data: $!";
	print $fh "$_\t" . ('b' x 60) . "\n" for 1 .. 2000;
	close $fh or die "$bulk_data: $!";
}
$node->safe_psql('postgres', <<"EOS");
CREATE EXTENSION amcheck;
CREATE UNLOGGED TABLE ul (i int PRIMARY KEY, t text);
INSERT INTO ul SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
CREATE TABLE pts (id int, p point);
INSERT INTO pts SELECT g, point(g % 47, g / 47) FROM generate_series(1, 2000) g;
CREATE INDEX pts_gist ON pts USING gist (p);
BEGIN;
CREATE TABLE bulk (i int, t text);
COPY bulk FROM '$bulk_data' WITH (FREEZE);
COMMIT;
CREATE DATABASE second;
EOS
$node->safe_psql('second', <<'EOS');
CREATE EXTENSION amcheck;
CREATE TABLE s (i int PRIMARY KEY, t text);
INSERT INTO s SELECT g, 'second ' || g FROM generate_series(1, 2000) g;
EOS
my $bulk_path = $node->safe_psql('postgres', "SELECT pg_relation_filepath('bulk')");
# Answers that need the GiST and unlogged indexes (index scans forced).
@PROBE = (
	'SET enable_seqscan = off',
	'SET enable_bitmapscan = off',
	"SELECT count(*), sum(id) FROM pts WHERE p <@ box '((10,10),(30,30))'",
	'SELECT count(*), sum(length(t)) FROM ul WHERE i BETWEEN 200 AND 1500',
	"SELECT bt_index_check('ul_pkey', true)");
like(
	$node->safe_psql('postgres',
		join(";\n", @PROBE[ 0, 1 ], "EXPLAIN $PROBE[2]", "EXPLAIN $PROBE[3]")),
	qr/Index Scan using pts_gist.*Index Scan using ul_pkey/s,
	'the probe scans the GiST and the unlogged index');

$node->append_conf('postgresql.conf', "wal_level = replica\n");
$node->restart;
$node->safe_psql('postgres', 'UPDATE pgbench_branches SET bbalance = 1');
# The dumps are kept in files, their digests in memory: the workers fork
# this process thousands of times, and a small process forks faster.
for my $db (@DBS)
{
	my ($rc, $out, $err) = run(
		[ 'pg_dump', '--restrict-key=fixed', '-d', connstr($node->port, $db) ]);
	is($rc, 0, "pg_dump of $db before") or diag($err);
	$dump_before{$db} = Digest::SHA::sha256_hex($out);
	save("$tmp/dump-before-$db", $out);
}
my ($probe_rc, $probe_err);
($probe_rc, $probe_before, $probe_err) = probe($node->port);
is($probe_rc, 0, 'the probe runs') or diag($probe_err);
like($probe_before, qr/\A[1-9]\d*\|\d+\n[1-9]\d*\|\d+\n/,
	'the probe finds rows through both indexes')
  or diag($probe_before);
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop;

{
	my $b = PctTest::slurp_bytes($node->data_dir . "/$bulk_path");
	ok(length($b) >= 8192 && substr($b, 0, 8) eq "\0" x 8,
		'the bulk-loaded table has pages with LSN 0');
}
fresh_copy($node->data_dir, $ORIG);
{
	my $bytes = 0;
	my $files = 0;
	File::Find::find(
		sub { if (-f $_) { $files++; $bytes += -s _; } }, $ORIG);
	note(sprintf('ORIG: %d files, %.1f MB', $files, $bytes / 1048576));
}
timing('building the cluster');

# ---- 1. the durable steps ----

my (%steps, %base_time);
for my $dir (@DIRS)
{
	for my $mode (@MODES)
	{
		my $c = "$dir/$mode";
		my $pg = "$tmp/list";
		fresh_copy($BASE{$dir}, $pg);
		my $t = Time::HiRes::time();
		my ($rc, $out, $err) = tool($dir, $mode, $pg, PCT_FAULT_LIST => 1);
		$base_time{$dir} = Time::HiRes::time() - $t;
		is($rc, 0, "$c: run with PCT_FAULT_LIST completes") or diag($err);
		my @n = $err =~ /^fault step (\d+): .*$/mg;
		my @names = (undef, $err =~ /^fault step \d+: (.*)$/mg);
		my $k = scalar @n;
		is("@n", join(' ', 1 .. $k), "$c: steps are numbered 1..K");
		my @batch = grep { $names[$_] eq 'journal batch recorded' } 1 .. $k;
		# ("batch data written" or "durable": when a batch's data is done)
		my @data = grep { $names[$_] =~ /^batch data / } 1 .. $k;
		my ($complete) = grep { $names[$_] eq 'journal: data complete' } 1 .. $k;
		my @control = grep { $names[$_] eq 'write pg_control' } 1 .. $k;
		ok(@batch >= 200 && @batch == @data,
			"$c: PCT_BATCH_KB=$BATCH_KB gives many batches ("
			  . scalar(@batch) . ')');
		ok($k > $FIRST_STEPS + $RANDOM_STEPS, "$c: K = $k steps");
		note("$c: $k durable steps; the first and last ones:\n",
			join("\n", map { "$_: $names[$_]" } 1 .. 6, $data[-1] .. $k));

		# The order FORMAT 5 demands.
		my $first = $batch[0] // 0;
		is($names[1], 'lock file created', "$c: the lock comes first");
		is($names[$k], 'lock file removed', "$c: the lock goes last");
		is($names[ $k - 1 ], 'journal removed',
			"$c: the journal is removed just before the lock");
		ok(defined $complete && $complete > $data[-1],
			"$c: data complete is recorded after the last batch's data");
		if ($dir eq 'encrypt')
		{
			my ($keys) = grep { $names[$_] eq 'key files written' } 1 .. $k;
			my ($installed) = grep { $names[$_] eq 'keys installed' } 1 .. $k;
			ok(defined $keys && $keys < $first,
				"$c: new keys are staged before the first batch");
			ok(@control && $control[0] < $first,
				"$c: pg_control becomes 1400 before the first batch");
			ok(defined $installed && $installed > $complete,
				"$c: keys are installed after the data is complete");
		}
		else
		{
			ok(@control == 1 && $control[0] > $complete,
				"$c: pg_control becomes 1300 only after the data is complete");
		}
		$steps{$c} = {
			k => $k,
			names => \@names,
			batch => \@batch,
			data => \@data,
			complete => $complete,
		};

		# the uninterrupted baseline
		my %r;
		finish_checks(\%r, $dir, $pg);
		assert_finish_checks("$c: uninterrupted", \%r, $dir);
		if ($dir eq 'encrypt' && $mode eq 'checksum')
		{
			# ENC: the start of every decryption
			fresh_copy($ORIG, $ENC);
			my ($erc, $eout, $eerr) =
			  run(tool_cmd('encrypt', 'checksum', $ENC));
			is($erc, 0, 'ENC: encrypted') or diag($eerr);
			($erc, $eout, $eerr) = testutil('compare-encrypted', $ORIG, $ENC);
			is($erc, 0, 'ENC: compare-encrypted with ORIG passes')
			  or diag($eout, $eerr);
		}
	}
}
rmtree("$tmp/list");
timing('listing the steps');

# ---- 2. refusals while an operation is pending ----

for my $dir (@DIRS)
{
	for my $mode (@MODES)
	{
		my $c = "$dir/$mode";
		my $st = $steps{$c};
		my $n = $st->{data}[0];
		my $name = "$c refusals (stopped after step $n, the first batch's data)";
		my $pg = "$tmp/refuse";
		fresh_copy($BASE{$dir}, $pg);
		my ($rc, $out, $err) = tool($dir, $mode, $pg, PCT_FAULT_STEP => $n);
		is($rc, 75, "$name: stopped with exit 75") or diag($err);
		my $before = PctTest::cluster_snapshot($pg);
		my $expect =
		  qr/an interrupted $OPNAME{$dir} is pending: run "\Q$RERUN_CMD{$dir}\E"/;

		($rc, $out, $err) = run(
			[
				'pg_alterckey', '-N',
				PctTest::kek_command(PctTest::test_kek('x')),
				PctTest::kek_command(PctTest::test_kek('y')),
				'-D', $pg
			]);
		isnt($rc, 0, "$name: pg_alterckey fails");
		like($err, $expect, "$name: pg_alterckey names the command to rerun");

		my $other = $dir eq 'encrypt' ? 'decrypt' : 'encrypt';
		($rc, $out, $err) = run(tool_cmd($other, $mode, $pg));
		isnt($rc, 0, "$name: pg_encrypt_cluster ($other) fails");
		like($err, $expect,
			"$name: pg_encrypt_cluster ($other) names the command to rerun");

		if ($dir eq 'encrypt')
		{
			my $m = $mode eq 'checksum' ? 'journal' : 'checksum';
			($rc, $out, $err) = run(tool_cmd($dir, $m, $pg));
			isnt($rc, 0, "$name: resuming with --resilience=$m fails");
			like($err, qr/interrupted encryption used other options/,
				"$name: ... and says why");
		}

		# The stock server refuses pg_control 1400.
		my $log = "$tmp/refuse.log";
		unlink $log;
		($rc, $out, $err) = run(
			[ 'pg_ctl', '-D', $pg, '-l', $log, '-w', '-t', '60', 'start' ]);
		isnt($rc, 0, "$name: the stock server does not start");
		if ($rc == 0)
		{
			run([ 'pg_ctl', '-D', $pg, '-m', 'immediate', 'stop' ]);
		}
		my $logtext = -e $log ? PostgreSQL::Test::Utils::slurp_file($log) : '';
		# (decryption: the configuration's cluster_key_command stops it
		# even before pg_control is read)
		like(
			$logtext,
			qr/database\ files\ are\ incompatible\ with\ server
			  |unrecognized\ configuration\ parameter\ "cluster_key_command"/x,
			"$name: ... because of pg_control or the configuration")
		  or diag($logtext);

		is(PctTest::snapshot_diff($before, PctTest::cluster_snapshot($pg)),
			'', "$name: none of that changed pg_cryptokeys, pg_control or the configuration");

		my %r;
		($r{rrc}, $r{rout}, $r{rerr}) =
		  run(tool_cmd($dir, $mode, $pg));
		is($r{rrc}, 0, "$name: the rerun completes") or diag($r{rerr});
		finish_checks(\%r, $dir, $pg);
		assert_finish_checks($name, \%r, $dir);
	}
}

# pg_alterckey on an encryption stopped before pg_control became 1400:
# right after the keys were staged (no journal yet) and right after the
# journal was made.  It must name the command to rerun, not merely say
# "not encrypted", and change nothing.
for my $mode (@MODES)
{
	my $c = "encrypt/$mode";
	my @names = @{ $steps{$c}{names} };
	for my $step ('key files written', 'journal created')
	{
		my ($n) = grep { ($names[$_] // '') eq $step } 1 .. $#names;
		my $name = "$c: pg_alterckey after step \"$step\"";
		ok(defined $n, "$name: the step exists") or next;
		my $pg = "$tmp/refuse";
		fresh_copy($BASE{encrypt}, $pg);
		my ($rc, $out, $err) = tool('encrypt', $mode, $pg, PCT_FAULT_STEP => $n);
		is($rc, 75, "$name: stopped with exit 75") or diag($err);
		is(PctTest::control_show($pg)->{version}, 1300,
			"$name: pg_control is still 1300");
		my $before = PctTest::cluster_snapshot($pg);
		($rc, $out, $err) = run(
			[
				'pg_alterckey', '-N',
				PctTest::kek_command(PctTest::test_kek('x')),
				PctTest::kek_command(PctTest::test_kek('y')),
				'-D', $pg
			]);
		is($rc, 1, "$name: fails");
		like($err,
			$step eq 'journal created'
			? qr/an interrupted encryption is pending: run "\Q$RERUN_CMD{encrypt}\E"/
			: qr/an interrupted encryption left it.*\n.*hint: Run "pg_encrypt_cluster" again/,
			"$name: names the command to rerun")
		  or diag($err);
		is(PctTest::snapshot_diff($before, PctTest::cluster_snapshot($pg)),
			'', "$name: changes nothing");
	}
}
rmtree("$tmp/refuse");
timing('refusals');

# ---- 2b. a stop requested with SIGTERM (as Ctrl-C) ----

# The tool finishes the batch in hand, makes it durable, records the
# position and exits 1 saying it stopped at a safe point; the journal
# names no unfinished batch; the rerun completes.  Durable steps are slowed
# down so that the signal comes in the middle of the rewriting.
for my $dir (@DIRS)
{
	for my $mode (@MODES)
	{
		my $c = "$dir/$mode";
		my $name = "$c: SIGTERM";
		my $pg = "$tmp/sigterm";
		fresh_copy($BASE{$dir}, $pg);
		my $f = "$tmp/sigterm.$$";
		my $pid = spawn(tool_cmd($dir, $mode, $pg), $f,
			PCT_BATCH_KB => $BATCH_KB, PCT_FAULT_LIST => 1,
			PCT_STEP_DELAY_MS => 20);
		my $deadline = Time::HiRes::time() + $PostgreSQL::Test::Utils::timeout_default;
		my $durable = 0;
		while (Time::HiRes::time() < $deadline)
		{
			my $err = -e "$f.err" ? PctTest::slurp_bytes("$f.err") : '';
			$durable = () = $err =~ /: batch data durable$/mg;
			last if $durable >= 6 || $err =~ /journal: data complete/;
			Time::HiRes::sleep(0.02);
		}
		kill('TERM', $pid);
		my ($rc, $out, $err) = reap($pid, $f);
		my $batches = () = $err =~ /: journal batch recorded$/mg;
		my $done = () = $err =~ /: batch data durable$/mg;
		ok($durable >= 6, "$name: sent after $durable batches were durable");
		is($rc, 1, "$name: exit status 1") or diag($err);
		like($err, qr/stopped at a safe point/, "$name: says it stopped at a safe point");
		is($done, $batches, "$name: every recorded batch was made durable before the exit");
		unlike($err, qr/journal: data complete/, "$name: ... and the rewriting was not complete");
		my $st = cluster_state($pg);
		is(scalar(@{ $st->{zones} // [] }), 0,
			"$name: the journal names no unfinished batch");
		my %r;
		@r{qw(rrc rout rerr)} = tool($dir, $mode, $pg);
		is($r{rrc}, 0, "$name: the rerun completes") or diag($r{rerr});
		like($r{rout}, qr/resuming interrupted $OPNAME{$dir}/, "$name: ... by resuming");
		finish_checks(\%r, $dir, $pg);
		assert_finish_checks($name, \%r, $dir);
	}
}
rmtree("$tmp/sigterm");
timing('SIGTERM');

# ---- 3. stop after step N ----

# The stock server on a finished, decrypted result (in a worker, on a port
# of its own): pg_dump of both databases (digests; a differing dump is kept
# in a file), pg_amcheck (bt_index_check heapallindexed, verify_heapam),
# the probe.  Returns what it saw.
sub server_run
{
	my ($pgdata, $port, $label) = @_;
	my %s;
	my $log = "$pgdata/server.log";
	($s{start_rc}, undef, $s{start_err}) = run(
		[ 'pg_ctl', '-D', $pgdata, '-l', $log, '-o', "-p $port", '-w', '-t', '60', 'start' ]);
	if ($s{start_rc} != 0)
	{
		$s{log} = -e $log ? PostgreSQL::Test::Utils::slurp_file($log) : '';
		return \%s;
	}
	for my $db (@DBS)
	{
		my ($rc, $out, $err) = run(
			[ 'pg_dump', '--restrict-key=fixed', '-d', connstr($port, $db) ]);
		my $sha = Digest::SHA::sha256_hex($out);
		$s{dump}{$db} = { rc => $rc, err => $err, same => $sha eq $dump_before{$db} ? 1 : 0 };
		if ($rc == 0 && $sha ne $dump_before{$db})
		{
			$s{dump}{$db}{file} = "$tmp/dump-$db-$label";
			save($s{dump}{$db}{file}, $out);
		}
	}
	@s{qw(amcheck_rc amcheck_out amcheck_err)} = run(
		[
			'pg_amcheck', '--heapallindexed', '-h', $node->host, '-p', $port,
			map { ('-d', $_) } @DBS
		]);
	@s{qw(probe_rc probe_out probe_err)} = probe($port);
	($s{stop_rc}, undef, $s{stop_err}) =
	  run([ 'pg_ctl', '-D', $pgdata, '-m', 'fast', '-w', 'stop' ]);
	return \%s;
}

sub server_assert
{
	my ($name, $s) = @_;
	if (!is($s->{start_rc}, 0, "$name: the stock server starts"))
	{
		diag($s->{start_err}, $s->{log});
		return;
	}
	for my $db (@DBS)
	{
		my $d = $s->{dump}{$db};
		is($d->{rc}, 0, "$name: pg_dump of $db") or diag($d->{err});
		ok($d->{same}, "$name: pg_dump of $db equals the one before")
		  or diag("compare $tmp/dump-before-$db and $d->{file}");
	}
	is($s->{amcheck_rc}, 0,
		"$name: pg_amcheck (bt_index_check heapallindexed, verify_heapam) passes")
	  or diag($s->{amcheck_out}, $s->{amcheck_err});
	is($s->{probe_out}, $probe_before,
		"$name: GiST and unlogged index scans answer as before")
	  or diag($s->{probe_err});
	is($s->{stop_rc}, 0, "$name: the server stops") or diag($s->{stop_err});
	return;
}

sub fault_job
{
	my ($job, $wdir, $w) = @_;
	my ($dir, $mode, $n) = @$job{qw(dir mode n)};
	my $pg = "$wdir/pgdata";
	my %r;
	my @t = (Time::HiRes::time());
	fresh_copy($BASE{$dir}, $pg);
	push @t, Time::HiRes::time();
	@r{qw(rc out err)} = tool($dir, $mode, $pg, PCT_FAULT_STEP => $n);
	push @t, Time::HiRes::time();
	$r{state} = cluster_state($pg);
	push @t, Time::HiRes::time();
	if ($r{rc} == 75)
	{
		@r{qw(rrc rout rerr)} = run(tool_cmd($dir, $mode, $pg));
	}
	$r{after} = cluster_state($pg);
	push @t, Time::HiRes::time();
	finish_checks(\%r, $dir, $pg, $job->{full});
	push @t, Time::HiRes::time();
	$r{times} = [ map { $t[$_] - $t[ $_ - 1 ] } 1 .. $#t ];
	$r{server} = server_run($pg, $PORTS[$w], "$dir-$mode-$n")
	  if $job->{server} && ($r{cd_rc} // -1) == 0;
	return \%r;
}

sub assert_fault_result
{
	my ($job, $r) = @_;
	my ($dir, $mode, $n) = @$job{qw(dir mode n)};
	my $c = "$dir/$mode";
	my $st = $steps{$c};
	my $k = $st->{k};
	my $name = "$c step $n/$k (" . ($st->{names}[$n] // 'none') . ')';
	if ($r->{error})
	{
		fail("$name: the run was carried out");
		diag($r->{error});
		return;
	}
	if ($n > $k)
	{
		is($r->{rc}, 0, "$name: PCT_FAULT_STEP past the last step never fires")
		  or diag($r->{err});
	}
	else
	{
		is($r->{rc}, 75, "$name: stopped with exit 75") or diag($r->{err});
		like($r->{err}, qr/stopping after durable step $n \(/,
			"$name: ... at that step");

		my $s = $r->{state};
		my @p = grep { $_ ne '' } state_problems($dir, $s);
		# from the step list: the lock from step 1 until the last step, and
		# pg_control 1400 from the first batch on (encryption) or until
		# pg_control is rewritten (decryption)
		push @p, 'no lock file before the last step' if $n < $k && !$s->{lock};
		push @p, 'lock file after the last step' if $n == $k && $s->{lock};
		push @p, "pg_control is $s->{version} after the first batch"
		  if $dir eq 'encrypt' && $n >= $st->{batch}[0] && $s->{version} ne '1400';
		push @p, "pg_control is $s->{version} before the data is complete"
		  if $dir eq 'decrypt' && $n < $st->{complete} && $s->{version} ne '1400';
		is(join("\n", @p), '',
			"$name: meanwhile both kinds of server are kept out");

		if ($dir eq 'encrypt' && $n == $k && $r->{rrc} != 0)
		{
			# Everything was done; the rerun finds nothing to resume.
			like($r->{rerr}, qr/cluster is already encrypted/,
				"$name: the rerun finds the encryption complete (exit $r->{rrc})");
		}
		elsif (!is($r->{rrc}, 0, "$name: the rerun completes (exit 0)"))
		{
			diag("rerun: ", join(' ', @{ tool_cmd($dir, $mode, 'PGDATA') }),
				"\nstdout:\n$r->{rout}stderr:\n$r->{rerr}",
				"state before the rerun: ", JSON::PP->new->canonical->encode($s),
				"\nstate after: ",
				JSON::PP->new->canonical->encode($r->{after}));
			return;
		}
	}
	is(done_problems($dir, $r->{after}), '', "$name: finished state");
	assert_finish_checks($name, $r, $dir, $job->{full});
	if ($job->{server} && $r->{cd_rc} == 0)
	{
		server_assert("$name, stock server", $r->{server});
	}
	return;
}

sub fault_phase
{
	my ($dir, $mode) = @_;
	my $c = "$dir/$mode";
	my $st = $steps{$c};
	my $k = $st->{k};
	# The final steps: everything after the last batch's data (the same
	# in both modes: checksum mode only), and K+1.
	my @final = (
		$mode eq 'checksum' ? ($st->{data}[-1] + 1 .. $k) : (),
		$k + 1);
	my %have = map { $_ => 1 } 1 .. $FIRST_STEPS, @final;
	my @pool = grep { !$have{$_} } $FIRST_STEPS + 1 .. $k;
	my @random;
	while (@random < $RANDOM_STEPS && @pool)
	{
		push @random, splice(@pool, int(rand(@pool)), 1);
	}
	@random = sort { $a <=> $b } @random;
	note("$c: random later steps: @random; final steps: @final");
	my @ns = (1 .. $FIRST_STEPS, @random, @final);

	# the stock server on: the first data written, a random step
	# among the first ones, a random later one, data complete
	my @early = grep { $_ > $st->{data}[0] } 1 .. $FIRST_STEPS;
	my %server = map { $_ => 1 } $st->{data}[0],
	  $early[ int(rand(@early)) ], $random[ int(rand(@random)) ],
	  $st->{complete};
	# compare-encrypted and iv-audit: on every fourth run and those
	my @jobs = map {
		{
			dir => $dir,
			mode => $mode,
			n => $ns[$_],
			full => ($_ % 4 == 0 || $server{ $ns[$_] }) ? 1 : 0,
			server => $server{ $ns[$_] } ? 1 : 0,
		}
	} 0 .. $#ns;
	my @res = run_parallel(\@jobs, \&fault_job);
	assert_fault_result($jobs[$_], $res[$_]) for 0 .. $#jobs;
	my @sum = (0) x 5;
	for my $r (@res)
	{
		$sum[$_] += $r->{times}[$_] // 0 for 0 .. 4;
	}
	note(sprintf("$c: time per run in a worker: copy %.2f s, stopped run %.2f s, "
			  . "state %.2f s, rerun %.2f s, checks %.2f s",
			map { $_ / @res } @sum));
	timing("$c: " . scalar(@jobs) . ' stop-and-rerun runs, '
		  . scalar(keys %server) . ' with the stock server');
	return;
}

# ---- 4. kill -9 at random moments ----

# Per direction KILLS + 1 runs on copies of their own (PCT_BATCH_KB=64,
# PCT_STEP_DELAY_MS), all started at once by a forked driver; each but the
# last is killed after a random time within the estimated duration of a
# run (a run sleeps $DELAY_MS after each of its K steps; the estimate is
# stretched by 20% as the runs slow each other down).  Then the checks, in
# the workers.
sub start_kills
{
	my ($dir) = @_;
	my $duration =
	  1.2 * ($steps{"$dir/checksum"}{k} * $DELAY_MS / 1000 + $base_time{$dir});
	my @jobs = map {
		{
			dir => $dir,
			mode => $MODES[ $_ % 2 ],
			i => $_,
			delay => $_ < $KILLS ? rand($duration) : undef,
			pg => "$tmp/kill-$_",
			f => "$tmp/kill-$_",
		}
	} 0 .. $KILLS;
	my @copies = run_parallel(\@jobs,
		sub { fresh_copy($BASE{ $_[0]->{dir} }, $_[0]->{pg}); return {}; });
	is(join("\n", map { $_->{error} // () } @copies),
		'', "kill -9 ($dir): fresh copies made");
	my $file = "$tmp/kills-$dir.json";
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $t0 = Time::HiRes::time();
		for my $job (@jobs)
		{
			$job->{pid} = spawn(tool_cmd($dir, $job->{mode}, $job->{pg}),
				$job->{f}, PCT_BATCH_KB => $BATCH_KB,
				PCT_STEP_DELAY_MS => $DELAY_MS);
			$job->{start} = Time::HiRes::time();
		}
		for my $job (sort { $a->{start} + $a->{delay} <=> $b->{start} + $b->{delay} }
			grep { defined $_->{delay} } @jobs)
		{
			my $wait = $job->{start} + $job->{delay} - Time::HiRes::time();
			Time::HiRes::sleep($wait) if $wait > 0;
			kill('KILL', $job->{pid});
		}
		my @r;
		for my $job (@jobs)
		{
			my ($rc, $out, $err) = reap($job->{pid}, $job->{f});
			push @r, { krc => $rc, kerr => $err, end => Time::HiRes::time() - $t0 };
		}
		save($file, JSON::PP->new->encode(\@r));
		# no END blocks in a child: they belong to the test
		POSIX::_exit(0);
	}
	return {
		dir => $dir,
		pid => $pid,
		jobs => \@jobs,
		file => $file,
		duration => $duration
	};
}

sub finish_kills
{
	my ($k) = @_;
	waitpid($k->{pid}, 0);
	my $r =
	  -e $k->{file}
	  ? JSON::PP->new->decode(PostgreSQL::Test::Utils::slurp_file($k->{file}))
	  : [];
	for my $i (0 .. $#{ $k->{jobs} })
	{
		my $job = $k->{jobs}[$i];
		$job->{krc} = $r->[$i]{krc} // -1;
		$job->{kerr} = $r->[$i]{kerr} // 'the kill driver recorded nothing';
		$job->{end} = $r->[$i]{end} // 0;
	}
	note(sprintf('kill -9 (%s): kills within %.2f s of the start; the run left to finish took %.2f s',
			$k->{dir}, $k->{duration}, $k->{jobs}[-1]{end}));
	return;
}

sub check_kills
{
	my ($k) = @_;
	my $dir = $k->{dir};
	my @jobs = @{ $k->{jobs} };
	my @res = run_parallel(
		\@jobs,
		sub {
			my ($job) = @_;
			my %r = (state => cluster_state($job->{pg}));
			@r{qw(rrc rout rerr)} = tool($dir, $job->{mode}, $job->{pg})
			  if $job->{krc} != 0;
			$r{after} = cluster_state($job->{pg});
			finish_checks(\%r, $dir, $job->{pg});
			return \%r;
		});
	my %outcome;
	for my $i (0 .. $#jobs)
	{
		my ($job, $r) = ($jobs[$i], $res[$i]);
		my $name =
		  defined $job->{delay}
		  ? sprintf('kill -9 %s/%s #%d (after %.3f s)',
			$dir, $job->{mode}, $job->{i}, $job->{delay})
		  : "$dir/$job->{mode} not killed";
		if ($r->{error})
		{
			fail("$name: the run was carried out");
			diag($r->{error});
			next;
		}
		if (defined $job->{delay})
		{
			ok($job->{krc} == 128 + 9 || $job->{krc} == 0,
				"$name: killed or done (exit $job->{krc})")
			  or diag($job->{kerr});
			$outcome{
				$job->{krc} == 0 ? 'done before the kill'
				: $r->{state}{journal} ? 'killed, operation pending'
				: 'killed, no journal'
			}++;
		}
		else
		{
			is($job->{krc}, 0, "$name: a run with PCT_STEP_DELAY_MS completes")
			  or diag($job->{kerr});
		}
		is(state_problems($dir, $r->{state}), '',
			"$name: meanwhile both kinds of server are kept out");
		if ($job->{krc} == 0)
		{
			# finished before the kill: nothing to rerun
		}
		elsif ($r->{rrc} != 0 && !$r->{state}{journal} && $dir eq 'encrypt'
			&& $r->{state}{version} eq '1400' && !$r->{state}{lock})
		{
			# killed after its last step; the rerun finds nothing to do
			like($r->{rerr}, qr/cluster is already encrypted/,
				"$name: the rerun finds the encryption complete");
		}
		elsif (!is($r->{rrc}, 0, "$name: the rerun completes (exit 0)"))
		{
			diag("stderr:\n$r->{rerr}state before the rerun: ",
				JSON::PP->new->canonical->encode($r->{state}));
			next;
		}
		is(done_problems($dir, $r->{after}), '', "$name: finished state");
		assert_finish_checks($name, $r, $dir);
	}
	note("kill -9 ($dir) outcomes: ",
		join(', ', map { "$_: $outcome{$_}" } sort keys %outcome));
	ok(($outcome{'killed, operation pending'} // 0) >= $KILLS / 2,
		"kill -9 ($dir): most kills interrupted the rewriting");
	return;
}

for my $dir (@DIRS)
{
	fault_phase($dir, $_) for @MODES;
}
for my $dir (@DIRS)
{
	my $k = start_kills($dir);
	finish_kills($k);
	check_kills($k);
	timing("kill -9 ($dir)");
}

# ---- 5. torn sectors ----

for my $mode (@MODES)
{
	my $c = "encrypt/$mode";
	my $st = $steps{$c};
	my $n = $st->{batch}[ int(@{ $st->{batch} } * 0.4) ];
	my $name = "torn sector, $mode mode (step $n)";
	my $pg = "$tmp/torn";
	fresh_copy($ORIG, $pg);
	my ($rc, $out, $err) = tool('encrypt', $mode, $pg, PCT_FAULT_STEP => $n);
	is($rc, 75, "$name: stopped with exit 75") or diag($err);
	like($err, qr/stopping after durable step $n \(journal batch recorded\)/,
		"$name: ... right after a batch was recorded");
	# journal-show lists the zones of the unfinished batches, oldest first:
	# the last one belongs to the batch just recorded.
	my $s = cluster_state($pg);
	my @z = @{ $s->{zones} // [] };
	my ($path, $off, $len) = @z ? @z[ -3 .. -1 ] : ();
	ok(defined $path && $len >= 8192,
		"$name: journal-show names a hotzone of the batch")
	  or diag(JSON::PP->new->canonical->encode($s));
	$path //= '(none)';
	$off //= 0;
	(my $rel = $path) =~ s{^\Q$pg\E/}{};
	my $orig_bytes = substr(PctTest::slurp_bytes("$ORIG/$rel"), $off, 4096);
	my $now_bytes = substr(PctTest::slurp_bytes($path), $off, 4096);
	is($now_bytes, $orig_bytes, "$name: the batch's data was not written yet");
	isnt(substr($orig_bytes, 2048), "\x5A" x 2048,
		"$name: 0x5A is not the old contents");

	# A torn write: the first half of the sector as it was, the second half
	# neither old nor new.
	open(my $fh, '+<:raw', $path) or die "could not open \"$path\": $!";
	sysseek($fh, $off + 2048, 0) or die "seek: $!";
	syswrite($fh, "\x5A" x 2048) == 2048 or die "write: $!";
	close $fh or die "close: $!";
	note("$name: tore $rel at offset $off (bytes 2048..4095 of the sector)");

	my %r;
	@r{qw(rrc rout rerr)} = tool('encrypt', $mode, $pg);
	$r{after} = cluster_state($pg);
	my @damaged = $r{rerr} =~ /(damaged sector in file .*)/g;
	if ($mode eq 'journal')
	{
		is($r{rrc}, 0, "$name: the rerun completes (exit 0)") or diag($r{rerr});
		is("@damaged", '', "$name: no damage reported (rolled back)");
		is(done_problems('encrypt', $r{after}), '', "$name: finished state");
		finish_checks(\%r, 'encrypt', $pg);
		assert_finish_checks($name, \%r, 'encrypt');
	}
	else
	{
		is($r{rrc}, 1, "$name: the rerun exits 1") or diag($r{rerr});
		like($r{rerr},
			qr/damaged sector in file "\Q$path\E" at offset $off\b/,
			"$name: the rerun names the damaged sector's file and offset");
		is(scalar(@damaged), 1, "$name: one damaged sector reported")
		  or diag($r{rerr});
		is(done_problems('encrypt', $r{after}), '',
			"$name: the rerun still finished the encryption");

		# Every other file is fine.
		my $only_here = sub {
			my ($text) = @_;
			my @v = grep { !/^(files |pages |\(further)/ } split /\n/, $text;
			my @elsewhere = grep { !/^\S+ \Q$rel\E(\s|:|$)/ } @v;
			return (scalar(@v), join("\n", @elsewhere));
		};
		($rc, $out, $err) = testutil('compare-encrypted', $ORIG, $pg);
		my ($nv, $elsewhere) = $only_here->($out);
		is($elsewhere, '', "$name: compare-encrypted: no violation in another file")
		  or diag($out, $err);
		($rc, $out, $err) = testutil('iv-audit', $pg);
		is($rc, 0, "$name: iv-audit passes") or diag($out, $err);

		($rc, $out, $err) =
		  run(tool_cmd('decrypt', 'checksum', $pg));
		ok($rc == 0 || $rc == 1, "$name: decrypts (exit $rc)") or diag($err);
		my @cs = $err =~ /checksum verification failed in file "([^"]*)"/g;
		is(join(' ', grep { $_ ne $path } @cs), '',
			"$name: decryption finds failing checksums in that file only");
		is(done_problems('decrypt', cluster_state($pg)), '',
			"$name: decryption finished");
		($rc, $out, $err) = testutil('compare-decrypted', $ORIG, $pg);
		($nv, $elsewhere) = $only_here->($out);
		is($rc, 1, "$name: compare-decrypted reports the damage")
		  or diag($out, $err);
		ok($nv >= 1, "$name: ... in $nv violation lines");
		is($elsewhere, '', "$name: ... all of them in $rel") or diag($out);
	}
}
rmtree("$tmp/torn");
timing('torn sectors');

note(sprintf('total run time %.1f s', Time::HiRes::time() - $T0));
done_testing();
