#!/usr/bin/perl
#
# 041_preload_guard.pl
#	  Guard test of the test preload (tests/preload): PostgreSQL must touch
#	  its data files only through calls the preload intercepts, so that an
#	  update of PostgreSQL (or of the preload) cannot silently let plaintext
#	  reach an encrypted file or ciphertext reach the server.
#
#  0. The model.  The preload names the libc functions it intercepts in its
#     string pct_preload_intercepts (PctPreload::intercepts()); that list
#     must be exactly its dynamic symbol table (nm -D --defined-only).  The
#     libc functions PostgreSQL calls are the undefined dynamic symbols of
#     the postgres binary and of the server modules in pkglibdir.
#  1. A cluster with data checksums (pgbench -i -s 1, an unlogged table with
#     an index) is encrypted with pg_encrypt_cluster (aes128).
#  2. Trace A: the server started under the preload by pg_ctl, all of it
#     traced by strace -f (every process it forks, one file each): the log
#     shows the preload active; fsync is on; pgbench for a few seconds, a
#     new WAL segment (wal_recycle off), CHECKPOINT, an in-place tablespace
#     with a table, CREATE DATABASE with STRATEGY file_copy and wal_log,
#     writes there, a truncation by VACUUM, a dropped table, an
#     immediate-mode stop (a crash).
#  3. Trace B: the next start (crash recovery, the unlogged table reset from
#     its _init fork; its count is 0), a base backup by pg_basebackup (its
#     pg_control is the 1300 view with the preload's mark), and
#     trace C: the standby made from it, under the preload, streaming and
#     replaying pgbench and more writes (its data equals the primary's), a
#     restartpoint, a promotion (the timeline switch copies the last
#     segment) and writes on the promoted node.  Clean stops; the standby's
#     pg_control is version 1400 again.
#  4. The traces: every system call whose file descriptor or path names a
#     data file of either data directory (a main-fork segment of a relation
#     under global/, base/ or pg_tblspc/; a WAL file in pg_wal: a segment,
#     .partial, xlogtemp.N or RECOVERYXLOG; global/pg_control, which the
#     preload converts) is classified:
#       - a call that moves file bytes (read, pread64, readv, preadv[2],
#         write, pwrite64, writev, pwritev[2]) or makes, copies or closes a
#         file descriptor (open, openat, creat, close, dup, dup2, dup3,
#         fcntl F_DUPFD) must come from libc functions the preload
#         intercepts: at least one of the functions that issue it, and
#         every one of those that PostgreSQL calls (so pread alone does not
#         pass when PostgreSQL also calls __pread_chk);
#       - a call in the allow list (%ALLOWED below: each says why it needs
#         no transform) passes;
#       - anything else fails: calls the preload refuses on a data file
#         (mmap, copy_file_range, sendfile, splice: the process would have
#         stopped before the call, so one in the trace went around it),
#         calls that hide the data from both (io_uring, Linux AIO, anywhere
#         in the server), and any call nobody reviewed.
#     No violation may be found.  The traces must show the paths exercised:
#     pread64, pwrite64, read and write on relation files, pwrite64, pwritev
#     and pread64 on WAL, pg_control read and written, a walsender's
#     pread64 and the walreceiver's pwrite64 on WAL, the promoted standby's
#     read and write of WAL (the timeline switch copy), WAL synced,
#     relation files truncated.
#  5. The check cannot pass vacuously: rerun on the same traces with one
#     intercepted function left out of the list, for every function that
#     PostgreSQL calls and whose system call was seen, it must report a
#     violation naming that call (and with all the functions of a call left
#     out, for every call seen); with an empty list (a stock server) every
#     call of the first group is a violation; made-up trace lines (an mmap,
#     a copy_file_range, an ioctl on a data file, io_uring_setup, a relative
#     unlink, a dup) are classified as they should be.
#
#  The model's known limit: a system call is attributed to the libc
#  functions that can issue it, not to the one that did.  stdio on a data
#  file (fopen, then fread: pg_read_binary_file(), which the preload does
#  not transform) would pass as open and read; the workload makes no such
#  call.  strace -k (a stack per call) would tell, but costs about 10 ms
#  per call here.

use strict;
use warnings;

use Cwd ();
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

use PctTest;
use PctPreload;

my $t0 = Time::HiRes::time();
sub elapsed { return sprintf('%.1fs', Time::HiRes::time() - $t0); }

# ---- 0. the model ----

# The libc functions (x86-64 glibc) that issue each system call.
my @OPENS = qw(open open64 __open_2 __open64_2 openat openat64 __openat_2
  __openat64_2 creat creat64);
my %ENTRY = (
	# file bytes: the preload transforms them
	read => [qw(read __read_chk)],
	pread64 => [qw(pread pread64 __pread_chk __pread64_chk)],
	readv => [qw(readv)],
	preadv => [qw(preadv preadv64)],
	preadv2 => [qw(preadv2 preadv64v2)],
	write => [qw(write)],
	pwrite64 => [qw(pwrite pwrite64)],
	writev => [qw(writev)],
	pwritev => [qw(pwritev pwritev64)],
	pwritev2 => [qw(pwritev2 pwritev64v2)],
	# file descriptors: the preload keeps its table of data fds true
	open => [@OPENS],
	openat => [@OPENS],
	creat => [qw(creat creat64)],
	close => [qw(close)],
	dup => [qw(dup)],
	dup2 => [qw(dup2)],
	dup3 => [qw(dup3)],
	fcntl_dupfd => [qw(fcntl fcntl64)],    # fcntl(F_DUPFD[_CLOEXEC])
);

# Calls on a data file that need no transform and leave the preload's fd
# table true.  Each entry says why.
my %ALLOWED = (
	fsync => 'durability only: no bytes pass through the process',
	fdatasync => 'durability only: no bytes pass through the process',
	sync_file_range => 'writeback request (checkpoint flush): no bytes pass',
	fadvise64 => 'readahead/prefetch hint: no bytes pass',
	lseek => 'file size (mdnblocks) and position only; read() and write() '
	  . 'at the position are intercepted and find it with lseek themselves',
	fstat => 'metadata only',
	newfstatat => 'metadata only',
	statx => 'metadata only',
	stat => 'metadata only',
	lstat => 'metadata only',
	access => 'existence check (the preload itself looks for _init forks)',
	faccessat => 'existence check',
	faccessat2 => 'existence check',
	readlink => 'the preload resolves a directory fd through /proc/self/fd',
	ftruncate => 'shrinks a relation (or zero-extends): removed pages or '
	  . 'all-zero pages, which FORMAT 3 and 4 leave as they are; no bytes pass',
	truncate => 'same as ftruncate (md.c empties a segment before unlinking it)',
	fallocate => 'allocates all-zero space, which FORMAT 3 and 4 leave as it is',
	unlink => 'a name goes; the content is untouched',
	unlinkat => 'a name goes; the content is untouched',
	rename => 'a name moves (WAL recycling, xlogtemp.N installed as a '
	  . 'segment): the content is untouched, the preload classifies a file by '
	  . 'its name when it is opened, and a WAL page decrypts with the IV of '
	  . 'its own header (FORMAT 4), whatever the file is called',
	renameat => 'as rename',
	renameat2 => 'as rename',
	fcntl => 'file status flags and locks (any F_DUPFD is checked as a dup)',
);

# Seen anywhere in the server: the data would travel where neither strace's
# -y nor the preload sees its file descriptor.
my %HIDDEN_IO = map { $_ => 1 } qw(io_setup io_submit io_uring_setup
  io_uring_enter io_uring_register);

# What the preload refuses on a data file (it stops the process before
# the call): such a call in the trace went around the preload.
my %REFUSED = map { $_ => 1 } qw(mmap copy_file_range sendfile splice tee
  vmsplice);

# The kind of data file PATH is ('rel', 'wal' or 'control') when it is one
# in one of the data directories ROOTS (real paths), else undef.
sub data_file_kind
{
	my ($path, $roots) = @_;
	$path =~ s/ \(deleted\)$//;
	for my $r (@$roots)
	{
		next unless substr($path, 0, length($r) + 1) eq "$r/";
		my $rel = substr($path, length($r) + 1);
		return 'wal'
		  if $rel =~ m{^pg_wal/(?:[0-9A-F]{24}(?:\.partial)?|xlogtemp\.\d+|RECOVERYXLOG)$};
		return 'control' if $rel eq 'global/pg_control';
		return 'rel'
		  if $rel =~ m{^(?:global|base/\d+|pg_tblspc/\d+/PG_\d+_\d+/\d+)/\d+(?:\.\d+)?$};
		return;
	}
	return;
}

# Resolve a path string of a call made with working directory CWD.
sub resolve_path
{
	my ($dir, $p) = @_;
	return $p if $p =~ m{^/};
	$p =~ s{^(?:\./)+}{};
	return "$dir/$p";
}

# Parse the lines of one strace -y output (one process): a hash ref
# {"CALL KIND" => [count, first line]} of the calls on data files, plus
# {"hidden CALL" => ...} for io_uring / AIO calls anywhere.
sub parse_trace_lines
{
	my ($lines, $roots, $cwd, $acc) = @_;
	$acc //= {};
	for my $l (@$lines)
	{
		next unless $l =~ /^([a-z_0-9]+)\((.*)$/;
		my ($call, $rest) = ($1, $2);
		if ($HIDDEN_IO{$call})
		{
			my $e = $acc->{"$call hidden"} //= [ 0, $l ];
			$e->[0]++;
			next;
		}
		my %kinds;
		# file descriptors decoded by -y: 12</abs/path>
		while ($rest =~ /(?<![A-Za-z_])\d+<(\/[^<>]*)>/g)
		{
			my $k = data_file_kind($1, $roots);
			$kinds{$k} = 1 if $k;
		}
		# path arguments: "path", relative to the directory fd before it
		# (AT_FDCWD</dir>, 5</dir>) or to the working directory
		while ($rest =~ /(?:(?:AT_FDCWD|\d+)<(\/[^<>]*)>, )?"((?:[^"\\]|\\.)+)"/g)
		{
			my ($dir, $p) = ($1, $2);
			my $k = data_file_kind(resolve_path($dir // $cwd, $p), $roots);
			$kinds{$k} = 1 if $k;
		}
		next unless %kinds;
		$call = 'fcntl_dupfd'
		  if $call =~ /^fcntl(?:64)?$/ && $rest =~ /^\d+<[^<>]*>, F_DUPFD/;
		for my $k (keys %kinds)
		{
			my $e = $acc->{"$call $k"} //= [ 0, $l ];
			$e->[0]++;
		}
	}
	return $acc;
}

# The violations of SEEN ({"CALL KIND" => [count, line]}) when the preload
# intercepts INTERCEPTED ({name => 1}) and PostgreSQL calls IMPORTS.
sub violations
{
	my ($seen, $intercepted, $imports) = @_;
	my @v;
	for my $key (sort keys %$seen)
	{
		my ($call, $kind) = split / /, $key;
		my ($n, $line) = @{ $seen->{$key} };
		chomp $line;
		my $why;
		if ($kind eq 'hidden')
		{
			$why = 'asynchronous I/O: the data fds are hidden from the preload';
		}
		elsif ($ENTRY{$call})
		{
			my @src = @{ $ENTRY{$call} };
			my @missing = grep { $imports->{$_} && !$intercepted->{$_} } @src;
			if (!grep { $intercepted->{$_} } @src)
			{
				$why = "none of @src is intercepted";
			}
			elsif (@missing)
			{
				$why = "PostgreSQL calls @missing, which the preload does not intercept";
			}
		}
		elsif ($REFUSED{$call})
		{
			$why = 'the preload refuses it on a data file, so it went around the preload';
		}
		elsif (!$ALLOWED{$call})
		{
			$why = 'not intercepted and not in the allow list';
		}
		push @v, "$call on $kind ($n times): $why; e.g. $line" if $why;
	}
	return @v;
}

# ---- the lists ----

my @intercepts = PctPreload::intercepts();
my %intercepted = map { $_ => 1 } @intercepts;
note('the preload intercepts: ' . join(' ', @intercepts));

my ($rc, $out, $err) = PctTest::run_cmd(
	[ 'nm', '-D', '--defined-only', PctPreload::preload_path() ]);
is($rc, 0, 'nm -D lists the symbols the preload defines') or diag($err);
my @exported = sort grep { $_ ne 'pct_preload_intercepts' }
  map { my @f = split ' '; @f == 3 && $f[1] =~ /^[TWi]$/ ? $f[2] : () }
  split /\n/, $out;
is("@exported", join(' ', sort @intercepts),
	'the list names exactly the functions the preload exports');

($rc, $out, $err) = PctTest::run_cmd([ 'pg_config', '--bindir' ]);
chomp(my $bindir = $out);
($rc, $out, $err) = PctTest::run_cmd([ 'pg_config', '--pkglibdir' ]);
chomp(my $pkglibdir = $out);
my @objects = ("$bindir/postgres", sort glob("$pkglibdir/*.so"));
my %imports;
($rc, $out, $err) = PctTest::run_cmd([ 'nm', '-D', '--undefined-only', @objects ]);
die "nm -D --undefined-only failed: $err" if $rc != 0;
for (split /\n/, $out)
{
	$imports{$1} = 1 if /^\s*U\s+([A-Za-z_0-9]+)/;
}
my @pg_calls = sort grep { $imports{$_} } map { @$_ } values %ENTRY;
my %uniq;
@pg_calls = grep { !$uniq{$_}++ } @pg_calls;
ok($imports{pread} && $imports{pwrite} && $imports{open},
	'PostgreSQL calls pread, pwrite and open (' . scalar(@objects) . ' objects)');
note("of those, PostgreSQL calls: @pg_calls");
my @unhandled = grep { !$intercepted{$_} } @pg_calls;
is("@unhandled", '', 'the preload intercepts every one of them that PostgreSQL calls');

# ---- 1. the cluster ----

my ($strace_rc) = PctTest::run_cmd([ 'strace', '-V' ]);
BAIL_OUT('strace is not installed (Debian package strace)') if $strace_rc != 0;

my $tracedir = PostgreSQL::Test::Utils::tempdir();
my $primary = PostgreSQL::Test::Cluster->new('guard_primary');
$primary->init(allows_streaming => 1, extra => ['-k']);
# fsync on (PostgreSQL::Test::Cluster turns it off): the real server's
# fsync, fdatasync and sync_file_range calls are traced too.
$primary->append_conf('postgresql.conf', q{
fsync = on
shared_buffers = 2MB
allow_in_place_tablespaces = on
wal_recycle = off
max_wal_size = 32MB
min_wal_size = 32MB
checkpoint_timeout = 1h
});
$primary->start;
$primary->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ], 'pgbench -i -s 1');
$primary->safe_psql('postgres', q{
	CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, v text);
	INSERT INTO ul SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	CREATE INDEX ul_v ON ul (v);
});
my $enc = PctPreload::encrypt_node($primary, method => 'aes128', args => ['-N']);
note('encrypted at ' . elapsed());

# ---- tracing ----

my @STRACE = (
	'strace', '-f', '-ff', '-qq', '-y', '-s', '0', '-e', 'signal=none',
	'-e', 'trace=%desc,%file,io_setup,io_submit,io_uring_setup,'
	  . 'io_uring_enter,io_uring_register');
my %sessions;    # name => {pid, dir, node, offset}

# Start NODE's server with pg_ctl under the preload, all of it traced, into
# $tracedir/NAME/t.PID.  Waits until it accepts connections.
sub start_traced
{
	my ($name, $node) = @_;
	my $dir = "$tracedir/$name";
	mkdir($dir) or die "mkdir $dir: $!";
	my $offset = -s $node->logfile // 0;
	my @cmd = (
		@STRACE, '-o', "$dir/t", '-E', 'LD_PRELOAD=' . PctPreload::preload_path(),
		'pg_ctl', '-w', '-D', $node->data_dir, '-l', $node->logfile,
		'-o', '--cluster-name=' . $node->name, 'start');
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		delete $ENV{PGAPPNAME};
		open(STDIN, '<', '/dev/null') or POSIX::_exit(126);
		open(STDOUT, '>', "$dir/strace.out") or POSIX::_exit(126);
		open(STDERR, '>&', \*STDOUT) or POSIX::_exit(126);
		exec(@cmd) or POSIX::_exit(127);
	}
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	for (;;)
	{
		my @pf = -f $pidfile ? split(/\n/, slurp_file($pidfile)) : ();
		last if @pf >= 8 && $pf[7] =~ /^(?:ready|standby)/;
		if (waitpid($pid, POSIX::WNOHANG()) == $pid)
		{
			my $so = slurp_file("$dir/strace.out");
			my $log = slurp_file($node->logfile, $offset);
			BAIL_OUT("traced start of $name failed: $so\n$log");
		}
		if (time() > $deadline)
		{
			$node->_update_pid(-1);    # so that the END block stops it
			diag(slurp_file($node->logfile, $offset));
			BAIL_OUT("traced start of $name timed out");
		}
		Time::HiRes::sleep(0.1);
	}
	$node->_update_pid(1);
	$sessions{$name} = { pid => $pid, dir => $dir, node => $node, offset => $offset };
	like(slurp_file($node->logfile, $offset),
		qr/^pct_preload\[\d+\]: LOG:  encrypted cluster \(AES-128, data checksums on\)/m,
		"trace $name: the server runs under the active preload");
	return;
}

# Wait for strace to end after its server stopped.
sub end_trace
{
	my ($name) = @_;
	my $s = $sessions{$name};
	my $deadline = time() + 60;
	while (waitpid($s->{pid}, POSIX::WNOHANG()) != $s->{pid})
	{
		if (time() > $deadline)
		{
			kill('TERM', $s->{pid});
			waitpid($s->{pid}, 0);
			fail("trace $name: strace ended with its server");
			return;
		}
		Time::HiRes::sleep(0.1);
	}
	is($? >> 8, 0, "trace $name: strace exits 0")
	  or diag(slurp_file("$s->{dir}/strace.out"));
	return;
}

# ---- 2. trace A: pgbench, CHECKPOINT, file_copy, crash ----

start_traced('A', $primary);
$primary->command_ok(
	[ 'pgbench', '-n', '-T', '4', '-c', '2', 'postgres' ],
	'A: pgbench -T 4 under strace');
# a new WAL segment (wal_recycle is off: made and zero-filled), a checkpoint
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->safe_psql('postgres', 'CREATE TABLE t_after_switch (id int); CHECKPOINT');
$primary->safe_psql('postgres', q{
	CREATE TABLESPACE ts LOCATION '';
	CREATE TABLE in_ts (id int PRIMARY KEY, v text) TABLESPACE ts;
	INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
	CREATE DATABASE fc STRATEGY file_copy;
	CREATE DATABASE wl STRATEGY wal_log;
});
# a truncation by VACUUM, a dropped table
$primary->safe_psql('postgres', q{
	DELETE FROM in_ts WHERE id > 1000;
	VACUUM in_ts;
	CREATE TABLE dropped AS SELECT g FROM generate_series(1, 10000) g;
	DROP TABLE dropped;
	CHECKPOINT;
});
for my $db ('fc', 'wl')
{
	$primary->safe_psql($db, q{
		CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
	});
}
is($primary->safe_psql('postgres', 'SELECT count(*) FROM ul'), '5000',
	'A: the unlogged table reads');
$primary->stop('immediate');
end_trace('A');
note('trace A done at ' . elapsed());

# ---- 3. trace B and C: recovery, base backup, standby, promotion ----

start_traced('B', $primary);
like(slurp_file($primary->logfile, $sessions{B}{offset}),
	qr/redo done at/, 'B: crash recovery replayed WAL');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM ul'), '0',
	'B: the unlogged table was reset from its _init fork');
is($primary->safe_psql('fc', 'SELECT count(*), sum(id) FROM t'), '3000|4501500',
	'B: the file_copy database survived the crash');

$primary->backup('bb');
# PostgreSQL 15.20 sends pg_control as it reads it with read(): the backup
# holds the 1300 view with the preload's mark ("PCT", method 1), which the
# standby's preload recognises (tests/preload/README.md).
my $bb = $primary->backup_dir . '/bb';
is(sprintf('%d %08x', PctTest::control_show($bb)->{version},
		unpack('V', PctTest::read_bytes("$bb/global/pg_control", 292, 4))),
	'1300 50435401', "the base backup holds the 1300 view of pg_control with the preload's mark");
my $standby = PostgreSQL::Test::Cluster->new('guard_standby');
$standby->init_from_backup($primary, 'bb', has_streaming => 1);
PctPreload::enable($standby);
start_traced('C', $standby);
$primary->command_ok(
	[ 'pgbench', '-n', '-T', '3', '-c', '2', 'postgres' ],
	'B: pgbench -T 3 with a streaming standby');
$primary->safe_psql('postgres', q{
	INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(3001, 4000) g;
	INSERT INTO ul SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my $walsender = $primary->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_replication WHERE application_name = 'guard_standby'});
my $walreceiver = $standby->safe_psql('postgres', 'SELECT pid FROM pg_stat_wal_receiver');
like("$walsender $walreceiver", qr/^\d+ \d+$/, 'walsender and walreceiver found');
my $q = q{SELECT (SELECT sum(abalance) FROM pgbench_accounts),
	(SELECT count(*) FROM pgbench_history), (SELECT count(*) FROM in_ts)};
is($standby->safe_psql('postgres', $q), $primary->safe_psql('postgres', $q),
	'C: the standby replayed what the primary holds');
$standby->safe_psql('postgres', 'CHECKPOINT');    # a restartpoint

$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
$standby->safe_psql('postgres', q{
	CREATE TABLE after_promotion (id int PRIMARY KEY, v text);
	INSERT INTO after_promotion SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
	UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0;
	CHECKPOINT;
});
is($standby->safe_psql('postgres', 'SELECT count(*) FROM after_promotion'), '2000',
	'C: the promoted standby is written to');
$standby->stop;
end_trace('C');
is(PctTest::control_show($standby->data_dir)->{version}, 1400,
	"C: the standby's pg_control is version 1400 again");
$primary->stop;
end_trace('B');
note('traces B and C done at ' . elapsed());

# ---- 4. the classification ----

my @roots = map { Cwd::realpath($_->data_dir) } ($primary, $standby);
my %seen;       # "CALL KIND" => [count, line], all traces
my %by_pid;     # pid => {"CALL KIND" => [...]}
my %by_trace;
my $nfiles = 0;
for my $name (sort keys %sessions)
{
	my $s = $sessions{$name};
	my $cwd = Cwd::realpath($s->{node}->data_dir);
	for my $f (sort glob("$s->{dir}/t.*"))
	{
		my ($pid) = $f =~ /\.(\d+)$/;
		open(my $fh, '<', $f) or die "open $f: $!";
		my @lines = <$fh>;
		close $fh;
		$nfiles++;
		my $acc = parse_trace_lines(\@lines, \@roots, $cwd);
		$by_pid{$pid} = $acc;
		for my $k (keys %$acc)
		{
			for my $h (\%seen, ($by_trace{$name} //= {}))
			{
				my $e = $h->{$k} //= [ 0, $acc->{$k}[1] ];
				$e->[0] += $acc->{$k}[0];
			}
		}
	}
}
for my $name (sort keys %by_trace)
{
	my $t = $by_trace{$name};
	note("trace $name, calls on data files:\n"
		  . join("\n", map { sprintf('  %-24s %7d', $_, $t->{$_}[0]) } sort keys %$t));
}

my @v = violations(\%seen, \%intercepted, \%imports);
is(scalar(@v), 0, 'every call on a data file is intercepted by the preload or allowed')
  or diag(join("\n", @v));

# The paths were exercised.
my $sum = 0;
$sum += $_->[0] for values %seen;
cmp_ok($sum, '>', 10000, "$nfiles processes traced, $sum calls on data files");
for my $want (
	[ A => 'pread64 rel', 'relation pages read' ],
	[ A => 'pwrite64 rel', 'relation pages written' ],
	[ A => 'read rel', 'relation files read with read() (file_copy)' ],
	[ A => 'write rel', 'relation files written with write() (file_copy)' ],
	[ A => 'pwrite64 wal', 'WAL written' ],
	[ A => 'pwritev wal', 'new WAL segments zero-filled' ],
	[ A => 'openat rel', 'relation files opened' ],
	[ B => 'pread64 wal', 'WAL read by crash recovery' ],
	[ B => 'write rel', 'the unlogged table reset with write()' ],
	[ B => 'read control', 'pg_control read' ],
	[ B => 'write control', 'pg_control written' ],
	[ C => 'pwrite64 rel', 'the standby writes relation pages (replay, restartpoint)' ],
	[ C => 'read wal', 'the timeline switch reads the last segment with read()' ],
	[ C => 'write wal', 'the timeline switch copies it with write()' ])
{
	my ($trace, $key, $what) = @$want;
	ok($by_trace{$trace}{$key}, "trace $trace: $key seen: $what");
}
ok($seen{'fdatasync wal'} || $seen{'fsync wal'}, 'WAL was synced (fsync is on)');
ok($seen{'ftruncate rel'} || $seen{'truncate rel'}, 'relation files were truncated');
note('allowed calls seen: '
	  . join(', ', sort grep { $ALLOWED{ (split / /)[0] } } keys %seen));
ok($by_pid{$walsender}{'pread64 wal'}, "the walsender ($walsender) read WAL with pread64");
ok($by_pid{$walreceiver}{'pwrite64 wal'},
	"the walreceiver ($walreceiver) wrote WAL with pwrite64");

# ---- 5. the check is not vacuous ----

# Every libc function PostgreSQL calls whose system call was seen: left out
# of the list, the check must fail on that call.
my %seen_calls = map { (split / /)[0] => 1 } keys %seen;
my $nleft = 0;
for my $call (sort grep { $ENTRY{$_} } keys %seen_calls)
{
	for my $fn (grep { $imports{$_} && $intercepted{$_} } @{ $ENTRY{$call} })
	{
		my %less = %intercepted;
		delete $less{$fn};
		my @lv = violations(\%seen, \%less, \%imports);
		ok((grep { /^\Q$call\E on / } @lv),
			"without $fn in the list, the check reports $call calls");
		$nleft++;
	}
	my %less = %intercepted;
	delete $less{$_} for @{ $ENTRY{$call} };
	my @lv = violations(\%seen, \%less, \%imports);
	ok((grep { /^\Q$call\E on .*none of/ } @lv),
		"without any of @{ $ENTRY{$call} }, the check reports $call calls");
}
cmp_ok($nleft, '>=', 6, "$nleft functions were each left out once");
my @stock = violations(\%seen, {}, \%imports);
my @all = sort grep { $ENTRY{(split / /)[0]} } keys %seen;
is(scalar(@stock), scalar(@all),
	'with no interception at all (a stock server) every call of the first group is a violation');

# Made-up lines.
my $r = $roots[0];
my $fake = parse_trace_lines(
	[
		"mmap(NULL, 8192, PROT_READ, MAP_SHARED, 12<$r/base/5/1259>, 0) = 0x7f0000000000\n",
		"mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000\n",
		"copy_file_range(12<$r/base/5/1259>, NULL, 13<$r/base/6/1259>, NULL, 65536, 0) = 65536\n",
		"ioctl(13<$r/base/6/1259>, FICLONE, 12) = 0\n",
		"io_uring_setup(32, 0x7ffc0000) = 9<anon_inode:[io_uring]>\n",
		"unlink(\"base/5/1259.1\") = 0\n",
		"fcntl(14<$r/pg_wal/000000010000000000000003>, F_DUPFD_CLOEXEC, 0) = 15<$r/pg_wal/000000010000000000000003>\n",
		"fcntl(14<$r/pg_wal/000000010000000000000003>, F_SETFD, FD_CLOEXEC) = 0\n",
		"pread64(16<$r/base/5/1259_fsm>, \"\"..., 8192, 0) = 8192\n",
		"pread64(17<$r/base/5/t3_16384>, \"\"..., 8192, 0) = 8192\n",
		"write(18<$r/global/pg_control>, \"\"..., 8192) = 8192\n",
		"openat(AT_FDCWD<$r>, \"pg_tblspc/16400/PG_15_202209061/5/16401.2\", O_RDWR) = 19<$r/pg_tblspc/16400/PG_15_202209061/5/16401.2>\n",
	],
	\@roots, $r);
is(join(',', sort keys %$fake),
	'copy_file_range rel,fcntl wal,fcntl_dupfd wal,io_uring_setup hidden,ioctl rel,'
	  . 'mmap rel,openat rel,unlink rel,write control',
	'made-up lines: the calls on data files are found (not the fsm fork, a '
	  . 'temporary relation or an anonymous mapping)');
is(join("\n", map { s/ \(.*//r } violations($fake, \%intercepted, \%imports)),
	"copy_file_range on rel\nio_uring_setup on hidden\nioctl on rel\nmmap on rel",
	'made-up lines: mmap, copy_file_range, ioctl and io_uring are violations; '
	  . 'fcntl, dup, unlink, open and write are not');

note('done at ' . elapsed());
done_testing();
