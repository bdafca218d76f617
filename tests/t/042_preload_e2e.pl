#!/usr/bin/perl
#
# 042_preload_e2e.pl
#	  End to end: a real cluster encrypted by pg_encrypt_cluster runs the
#	  stock PostgreSQL 15 server under the test preload (tests/preload)
#	  through queries, pgbench, a crash, a cluster key change while it runs,
#	  streaming standbys (a cold copy and a pg_basebackup) and a promotion,
#	  and every copy decrypts back to exactly what a plaintext twin holds.
#
#  Two configurations: data checksums on with AES-128, off with AES-256.
#  Each has an encrypted node ENC and a plaintext twin TWIN that receives
#  exactly the same statements (the twin is never encrypted; autovacuum is
#  off on both, statements run one at a time).  pg_dump of a node and of its
#  twin are compared with the rows of each table sorted (a page that one
#  of them could not prune at that moment puts an updated row elsewhere);
#  dumps of copies of one cluster (before and after decryption, standbys)
#  byte for byte.
#   1. Both: pgbench -i -s 2, amcheck, an unlogged table with an index, a
#      TOAST-ed table, a sequence, a table with GIN and GiST indexes, a
#      database made with STRATEGY file_copy.  ENC is stopped, encrypted
#      with pg_encrypt_cluster (KEK 1) and started under the preload (its
#      log says which cipher and whether checksums are on).
#   2. Every query (also through each index) equals the twin's; the same
#      deterministic work on both (updates, deletes, TOAST updates, VACUUM,
#      nextval, a database made with STRATEGY wal_log); equal again.
#   3. ENC only: database bench, pgbench -i -s 1 and pgbench -T 30 -c 4
#      under the preload; pgbench's invariants hold (the balances of
#      accounts, tellers and branches each sum to the history's deltas, one
#      history row per transaction reported).
#   4. CHECKPOINT, then an immediate-mode stop of both (a crash) and the
#      restart: crash recovery replayed WAL on ENC, the unlogged table is
#      empty on both, every committed pgbench transaction is there; equal
#      again; refill the unlogged table, more work; equal again.  pg_dump of
#      each database of ENC, taken under the preload, equals the twin's.
#   5. pg_alterckey --update-config KEK1 KEK2 while ENC runs (it keeps
#      serving); the configuration names the new command; a restart runs it
#      (its marker file grows) and succeeds; with the old command put back
#      into the configuration, a start fails (wrong key; no server left);
#      the new command back, it starts.
#   6. Replication: standby S1 from a cold copy of ENC's data directory and
#      standby S2 from pg_basebackup of the running ENC, both under the
#      preload (the backup holds the 1300 view of pg_control with the
#      preload's mark, which a stock server never gets to read: it refuses
#      cluster_key_command; S2's preload recognises the mark, and its
#      pg_control is 1400 again once it ran); pgbench -T 3 on
#      bench and more work on ENC (and the twin); both replay it: their
#      queries equal ENC's.  pg_dump of ENC under the preload (DUMP_P)
#      equals the twin's (DUMP_T); S1 is stopped; S2 is promoted and written to, and
#      the twin gets the same writes (DUMP_T2).  Clean stops.
#   7. pg_verify_cryptokeys -D passes on ENC, S1 and S2; each is decrypted
#      with pg_encrypt_cluster --decrypt; the stock server starts on each;
#      amcheck (verify_heapam on every table, TOAST table and materialized
#      view, bt_index_check with heapallindexed on every btree index) passes
#      in every database; pg_dump of each database equals:
#        ENC: DUMP_P (the same node before decryption), and DUMP_T for the
#             twin's databases;
#        S1:  DUMP_P (unlogged table data excluded: a standby has none);
#        S2:  DUMP_T2 for the twin's databases, DUMP_P for bench (unlogged
#             table data excluded).
#      With data checksums, the stock pg_checksums --check passes on each
#      (stopped).
#
#  PCT_E2E_PGBENCH_SECONDS overrides the 30 s of step 3 (for quick runs).

use strict;
use warnings;

use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

use PctTest;
use PctPreload;

my $t0 = Time::HiRes::time();
sub elapsed { return sprintf('%.1fs', Time::HiRes::time() - $t0); }

my $PGBENCH_SECONDS = $ENV{PCT_E2E_PGBENCH_SECONDS} // 30;
my @TWIN_DBS = ('postgres', 'db_fc', 'db_wl');

# ---- queries and checks ----

# Queries whose results must agree, per kind of database.
my @Q_POSTGRES = (
	PctTest::check_queries('pgbench_accounts'),
	[
		'pgbench_accounts through its index',
		q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), sum(abalance), md5(string_agg(aid::text, ',' ORDER BY aid))
		  FROM pgbench_accounts WHERE aid BETWEEN 1000 AND 150000}
	],
	PctTest::check_queries(
		'pgbench_branches and pgbench_tellers', 'pgbench_history (but mtime)',
		'unlogged table ul', 'unlogged table ul through its indexes',
		'TOAST-ed values', 'sequence'),
	[
		'GIN and GiST indexes',
		q{SET enable_seqscan = off;
		  SELECT count(*), sum(id) FROM docs WHERE tags @> ARRAY[3];
		  SELECT count(*), sum(id) FROM docs WHERE p <@ box(point(10,10), point(40,40))}
	],);
my @Q_OTHER = PctTest::check_queries('table t', 'table t through its index');

sub queries_of { return $_[0] eq 'postgres' ? @Q_POSTGRES : @Q_OTHER; }

# The results of the queries for DB on NODE, one psql session (RESET ALL
# after each query): {query name => result}.
sub query_results
{
	my ($node, $db, %opt) = @_;
	my @q = grep { !($opt{skip_unlogged} && $_->[0] =~ /unlogged/) } queries_of($db);
	return PctTest::query_results($node, $db, \@q);
}

# Every query of DBS gives the same result on both nodes (on a standby,
# skip_unlogged: unlogged tables cannot be read during recovery).
sub compare
{
	my ($label, $a, $b, $dbs, %opt) = @_;
	for my $db (@$dbs)
	{
		my $ra = query_results($a, $db, %opt);
		my $rb = query_results($b, $db, %opt);
		for my $what (map { $_->[0] } queries_of($db))
		{
			next unless exists $ra->{$what};
			ok($ra->{$what} ne '' && $ra->{$what} eq $rb->{$what},
				"$label: $db: $what: " . $a->name . ' equals ' . $b->name)
			  or diag("got:\n$ra->{$what}\nexpected:\n$rb->{$what}");
		}
	}
	return;
}


# pg_dump of each database; with no_unlogged, without the unlogged table's
# rows (a standby has none).
sub dumps
{
	my ($node, $dbs, %opt) = @_;
	return PctTest::pg_dumps($node, $dbs,
		exclude_data => $opt{no_unlogged} ? ['public.ul'] : []);
}

# A dump with the rows of each COPY block sorted: two clusters that got the
# same statements hold the same rows, but a page pruned in one and not in
# the other (pruning and VACUUM skip a page whose buffer another process
# holds pinned at that moment) can put an updated row elsewhere.
sub canonical
{
	my ($dump) = @_;
	my (@out, @rows);
	my $in = 0;
	for my $l (split /\n/, $dump, -1)
	{
		if ($in && $l eq '\.')
		{
			push @out, sort(@rows), $l;
			@rows = ();
			$in = 0;
		}
		elsif ($in)
		{
			push @rows, $l;
		}
		else
		{
			push @out, $l;
			$in = 1 if $l =~ /^COPY .* FROM stdin;$/;
		}
	}
	die 'unterminated COPY block in a dump' if $in;
	return join("\n", @out);
}

# Dumps of the same databases are equal: byte for byte for copies of one
# cluster (physical: standbys, decryption), with the rows of each table
# sorted (rows_sorted) between a node and its twin.
sub dumps_equal
{
	my ($label, $got, $want, $dbs, %opt) = @_;
	for my $db (@$dbs)
	{
		my ($g, $w) = ($got->{$db}, $want->{$db});
		($g, $w) = (canonical($g), canonical($w)) if $opt{rows_sorted};
		ok(length($g) > 1000 && $g eq $w,
			"$label: pg_dump of $db" . ($opt{rows_sorted} ? ' (rows sorted)' : ''))
		  or diag(PctTest::first_difference($w, $g));
	}
	return;
}

sub databases
{
	my ($node) = @_;
	return split /\n/, $node->safe_psql('postgres',
		'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1');
}

# amcheck on every relation of every database.
sub amcheck_all
{
	my ($label, $node) = @_;
	for my $db (databases($node))
	{
		my ($brc, $bout, $berr, $hrc, $hout, $herr) = PctTest::amcheck($node, $db);
		ok($brc == 0 && $bout > 20,
			"$label: $db: bt_index_check (heapallindexed) passes on every btree index ($bout)")
		  or diag($berr);
		is("$hrc $hout", '0 ', "$label: $db: verify_heapam finds nothing") or diag($herr);
	}
	return;
}

# pgbench against NODE; returns the number of transactions it reports.
sub pgbench
{
	my ($label, $node, $db, @args) = @_;
	my ($rc, $out, $err) = PctTest::run_cmd(
		[ 'pgbench', '-h', $node->host, '-p', $node->port, @args, $db ],
		timeout => 600);
	is($rc, 0, "$label: pgbench @args exits 0") or diag($out, $err);
	my ($n) = $out =~ /^number of transactions actually processed: (\d+)/m;
	my ($failed) = $out =~ /^number of failed transactions: (\d+)/m;
	note("$label: pgbench @args: " . join(' | ', grep { /^(tps|number of|latency)/ } split /\n/, $out));
	ok(defined $n && $n > 0 && (!defined $failed || $failed == 0),
		"$label: pgbench committed transactions (" . ($n // 'none') . '), none failed');
	return $n // 0;
}

# The value of cluster_key_command in the configuration (postgresql.auto.conf
# wins over postgresql.conf).
sub config_key_command
{
	my ($pgdata) = @_;
	my $value;
	for my $f ('postgresql.conf', 'postgresql.auto.conf')
	{
		next unless -f "$pgdata/$f";
		for (split /\n/, slurp_file("$pgdata/$f"))
		{
			$value = $1 =~ s/''/'/gr if /^\s*cluster_key_command\s*=\s*'((?:[^']|'')*)'/;
		}
	}
	return $value;
}

# Put COMMAND in every cluster_key_command line of the configuration.
sub set_config_key_command
{
	my ($pgdata, $cmd) = @_;
	(my $q = $cmd) =~ s/'/''/g;
	my $n = 0;
	for my $f ('postgresql.conf', 'postgresql.auto.conf')
	{
		my $path = "$pgdata/$f";
		next unless -f $path;
		my $text = slurp_file($path);
		$n += $text =~ s/^(\s*cluster_key_command\s*=\s*).*$/$1'$q'/mg;
		open(my $fh, '>', $path) or die "could not write $path: $!";
		print $fh $text or die "could not write $path: $!";
		close $fh or die "could not write $path: $!";
	}
	die "no cluster_key_command in $pgdata" unless $n;
	return;
}

sub count_lines
{
	my ($file) = @_;
	return 0 unless -f $file;
	my @l = split /\n/, slurp_file($file);
	return scalar @l;
}

# ---- the statements both nodes receive ----

sub fill
{
	my ($node) = @_;
	$node->safe_psql('template1', 'CREATE EXTENSION amcheck');
	$node->safe_psql('postgres', 'CREATE EXTENSION amcheck');
	my ($rc, $out, $err) = PctTest::run_cmd(
		[ 'pgbench', '-i', '-s', '2', '-q', '-h', $node->host, '-p', $node->port, 'postgres' ]);
	die "pgbench -i failed: $err" if $rc != 0;
	$node->safe_psql('postgres', q{
		CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, v text);
		INSERT INTO ul SELECT g, md5(g::text) FROM generate_series(1, 10000) g;
		CREATE INDEX ul_v ON ul (v);

		CREATE TABLE toasty (id int PRIMARY KEY, body text);
		ALTER TABLE toasty ALTER body SET STORAGE EXTERNAL;
		INSERT INTO toasty SELECT g, repeat(md5(g::text), 200)
		  FROM generate_series(1, 150) g;

		CREATE SEQUENCE seq;
		SELECT count(nextval('seq')) FROM generate_series(1, 7);
		SELECT setval('seq', (SELECT last_value FROM seq));

		CREATE TABLE docs (id int PRIMARY KEY, tags int[], p point);
		INSERT INTO docs SELECT g, ARRAY[g % 10, g % 7], point(g % 50, g / 50)
		  FROM generate_series(1, 5000) g;
		CREATE INDEX docs_tags ON docs USING gin (tags);
		CREATE INDEX docs_p ON docs USING gist (p);

		CREATE DATABASE db_fc STRATEGY file_copy;
	});
	$node->safe_psql('db_fc', q{
		CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
		CREATE INDEX t_v ON t (v);
	});
	return;
}

# Deterministic work; every batch that draws from seq ends with a setval,
# which WAL-logs the exact value (crash recovery and standbys then agree).
sub work1
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		UPDATE pgbench_accounts SET abalance = abalance + aid % 13 WHERE aid % 7 = 0;
		UPDATE pgbench_tellers SET tbalance = tbalance + 5 WHERE tid % 2 = 0;
		INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
		  SELECT g % 20 + 1, g % 2 + 1, g, g % 100, '2024-01-01'
		  FROM generate_series(1, 3000) g;
		DELETE FROM pgbench_accounts WHERE aid % 97 = 0;
		VACUUM pgbench_accounts;
		INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
		  SELECT 200000 + g, 1, g, 'refilled' FROM generate_series(1, 1000) g;
		UPDATE toasty SET body = body || repeat('x', 1000) WHERE id % 3 = 0;
		DELETE FROM toasty WHERE id % 10 = 0;
		UPDATE ul SET v = upper(v) WHERE id % 5 = 0;
		INSERT INTO docs SELECT g, ARRAY[g % 10, g % 3], point(g % 60, g / 60)
		  FROM generate_series(5001, 7000) g;
		SELECT count(nextval('seq')) FROM generate_series(1, 50);
		SELECT setval('seq', (SELECT last_value FROM seq));
		CREATE DATABASE db_wl STRATEGY wal_log;
	});
	$node->safe_psql('db_wl', q{
		CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 4000) g;
	});
	$node->safe_psql('db_fc', q{
		UPDATE t SET v = v || '!' WHERE id % 3 = 0;
		DELETE FROM t WHERE id % 11 = 0;
	});
	return;
}

sub work2
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		INSERT INTO ul SELECT g, md5(g::text) FROM generate_series(1, 8000) g;
		UPDATE ul SET v = v || 'u' WHERE id % 4 = 0;
		UPDATE pgbench_accounts SET abalance = abalance - 1 WHERE aid % 11 = 0;
		INSERT INTO toasty SELECT g, repeat(md5(g::text), 300)
		  FROM generate_series(1001, 1050) g;
		SELECT count(nextval('seq')) FROM generate_series(1, 20);
		SELECT setval('seq', (SELECT last_value FROM seq));
	});
	$node->safe_psql('db_wl', q{UPDATE t SET v = 'w' || v WHERE id % 2 = 0});
	return;
}

sub work3
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		UPDATE pgbench_accounts SET abalance = abalance + 2 WHERE aid % 5 = 0;
		INSERT INTO docs SELECT g, ARRAY[g % 9], point(g % 30, g / 30)
		  FROM generate_series(7001, 8000) g;
		UPDATE toasty SET body = repeat(md5(id::text), 250) WHERE id % 4 = 1;
		SELECT count(nextval('seq')) FROM generate_series(1, 5);
		SELECT setval('seq', (SELECT last_value FROM seq));
	});
	$node->safe_psql('db_fc', q{INSERT INTO t SELECT g, md5(g::text) FROM generate_series(5001, 6000) g});
	return;
}

# Written to the promoted standby and the twin: new rows in a new table
# only, so that both place them alike.
sub work_promoted
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		CREATE TABLE after_promotion (id int PRIMARY KEY, v text);
		INSERT INTO after_promotion SELECT g, repeat(md5(g::text), 3)
		  FROM generate_series(1, 3000) g;
		UPDATE after_promotion SET v = 'p' WHERE id % 10 = 0;
		SELECT count(nextval('seq')) FROM generate_series(1, 3);
		SELECT setval('seq', (SELECT last_value FROM seq));
	});
	return;
}

# ---- one configuration ----

sub run_config
{
	my ($cfg) = @_;
	my $name = $cfg->{name};
	my $kek1 = PctTest::test_kek("042 $name 1");
	my $kek2 = PctTest::test_kek("042 $name 2");
	my $cmd1 = PctTest::kek_command($kek1);
	my $scratch = PostgreSQL::Test::Utils::tempdir();
	my $marker = "$scratch/kek2-runs";
	my $cmd2 = "echo run >> $marker && echo $kek2";

	my $enc = PostgreSQL::Test::Cluster->new("${name}_enc");
	my $twin = PostgreSQL::Test::Cluster->new("${name}_twin");
	for my $node ($enc, $twin)
	{
		$node->init(allows_streaming => 1, extra => $cfg->{checksums} ? ['-k'] : []);
		$node->append_conf('postgresql.conf', q{
autovacuum = off
shared_buffers = 4MB
max_connections = 20
wal_keep_size = 256MB
});
		$node->start;
		fill($node);
	}
	note("$name: filled at " . elapsed());

	# 1. Encrypt ENC and start it under the preload.
	my $e = PctPreload::encrypt_node($enc, kek => $kek1, method => $cfg->{method},
		args => $cfg->{nosync} ? ['-N'] : []);
	like($e->{stdout}, qr/^cluster encrypted$/m, "$name: pg_encrypt_cluster encrypted ENC");
	is(PctTest::control_show($enc->data_dir)->{version}, 1400, "$name: pg_control 1400");
	my ($ok, $log) = PctPreload::try_start($enc);
	ok($ok, "$name: ENC starts under the preload");
	like($log,
		qr/^pct_preload\[\d+\]: LOG:  encrypted cluster \(\Q$cfg->{label}\E, data checksums \Q$cfg->{cklabel}\E\)/m,
		"$name: the preload is active ($cfg->{label}, data checksums $cfg->{cklabel})");
	note("$name: ENC started at " . elapsed());

	# 2. Queries, work, queries.
	compare("$name after encryption", $enc, $twin, [ 'postgres', 'db_fc' ]);
	work1($_) for ($enc, $twin);
	compare("$name after work1", $enc, $twin, \@TWIN_DBS);

	# 3. pgbench on ENC only.
	$enc->safe_psql('postgres', 'CREATE DATABASE bench');
	my ($rc, $out, $err) = PctTest::run_cmd(
		[ 'pgbench', '-i', '-s', '1', '-q', '-h', $enc->host, '-p', $enc->port, 'bench' ]);
	is($rc, 0, "$name: pgbench -i -s 1 under the preload") or diag($err);
	my $ntx = pgbench("$name ENC", $enc, 'bench', '-n', '-T', $PGBENCH_SECONDS, '-c', '4', '-j', '2');
	is(PctTest::pgbench_invariant($enc, 'bench'), "t|$ntx",
		"$name: pgbench invariants hold, one history row per transaction");
	note("$name: pgbench done at " . elapsed());

	# 4. Crash and recovery, on both.
	for my $node ($enc, $twin)
	{
		$node->safe_psql('postgres', 'CHECKPOINT');
		$node->stop('immediate');
	}
	my $offset = -s $enc->logfile;
	$enc->start;
	$twin->start;
	like(slurp_file($enc->logfile, $offset), qr/redo done at/,
		"$name: ENC recovered from the crash by replaying WAL");
	is($enc->safe_psql('postgres', 'SELECT count(*) FROM ul'), '0',
		"$name: the unlogged table was reset");
	is(PctTest::pgbench_invariant($enc, 'bench'), "t|$ntx",
		"$name: after the crash every committed pgbench transaction is there");
	compare("$name after the crash", $enc, $twin, \@TWIN_DBS);
	work2($_) for ($enc, $twin);
	compare("$name after work2", $enc, $twin, \@TWIN_DBS);
	dumps_equal("$name ENC under the preload equals the twin",
		dumps($enc, \@TWIN_DBS), dumps($twin, \@TWIN_DBS), \@TWIN_DBS, rows_sorted => 1);
	note("$name: crash checked at " . elapsed());

	# 5. The cluster key changes while the server runs.
	my $pgdata = $enc->data_dir;
	is(config_key_command($pgdata), $cmd1, "$name: cluster_key_command is the first command");
	($rc, $out, $err) = PctTest::run_cmd(
		[ 'pg_alterckey', '--update-config', $cmd1, $cmd2, '-D', $pgdata ]);
	is($rc, 0, "$name: pg_alterckey --update-config while the server runs") or diag($out, $err);
	like($out, qr/^cluster key changed$/m, "$name: ... says the cluster key changed");
	is(config_key_command($pgdata), $cmd2, "$name: ... and the configuration names the new command");
	is(PctTest::pgbench_invariant($enc, 'bench'), "t|$ntx", "$name: the server kept serving");
	($rc, $out, $err) = PctPreload::verify_node($enc);
	is($rc, 0, "$name: pg_verify_cryptokeys passes on the running server") or diag($out, $err);
	my $runs = count_lines($marker);
	$enc->restart;
	cmp_ok(count_lines($marker), '>', $runs, "$name: the restart ran the new key command");
	is(PctTest::pgbench_invariant($enc, 'bench'), "t|$ntx", "$name: ... and the server is back");
	$enc->stop;
	set_config_key_command($pgdata, $cmd1);
	($ok, $log) = PctPreload::try_start($enc);
	ok(!$ok, "$name: with the old key command back in the configuration the server does not start");
	like($log, qr/^pct_preload\[\d+\]: ERROR: .*wrong cluster key.*\n(?:.*\n)*pct_preload\[\d+\]: FATAL: /m,
		"$name: ... the preload refuses it: wrong cluster key (FATAL)");
	note("$name: start with the old key command:\n$log");
	ok(!-e "$pgdata/postmaster.pid", "$name: ... and no server is left");
	set_config_key_command($pgdata, $cmd2);

	# 6. Replication.  S1: a cold copy (ENC is stopped).
	$enc->backup_fs_cold('cold');
	my $s1 = PostgreSQL::Test::Cluster->new("${name}_s1");
	$s1->init_from_backup($enc, 'cold', has_streaming => 1);
	PctPreload::enable($s1);
	$enc->start;
	$s1->start;
	# S2: pg_basebackup of the running primary.
	$enc->backup('bb');
	my $bb = $enc->backup_dir . '/bb';
	# PostgreSQL 15.20 sends pg_control as it reads it with read() (after a
	# check of its 1300 CRC): the preload gives a physical walsender the
	# 1300 view with its mark in the padding after the CRC, "PCT" and the
	# method (tests/preload/README.md); the standby's first pg_control write
	# makes it 1400 again.
	my $mark = unpack('V', PctTest::read_bytes("$bb/global/pg_control", 292, 4));
	is(sprintf('%d %08x', PctTest::control_show($bb)->{version}, $mark),
		sprintf('1300 %08x', 0x50435400 | $cfg->{method_no}),
		"$name: the base backup holds the 1300 view of pg_control with the preload's mark");
	# A stock server still refuses the backup (its configuration sets
	# cluster_key_command, which only the preload defines).
	my $copy = "$scratch/bbcopy";
	PctTest::copy_tree($bb, $copy);
	my $copylog = "$scratch/bbcopy.log";
	($rc, $out, $err) = PctTest::run_cmd(
		[ 'pg_ctl', 'start', '-w', '-D', $copy, '-l', $copylog, '-o', '-c port=1' ]);
	isnt($rc, 0, "$name: a stock server does not start a copy of the base backup");
	PctTest::run_cmd([ 'pg_ctl', 'stop', '-m', 'immediate', '-D', $copy ]) if $rc == 0;
	like(-f $copylog ? slurp_file($copylog) : '',
		qr/unrecognized configuration parameter "cluster_key_command"/,
		"$name: ... it does not know cluster_key_command");
	rmtree($copy);
	my $s2 = PostgreSQL::Test::Cluster->new("${name}_s2");
	$s2->init_from_backup($enc, 'bb', has_streaming => 1);
	PctPreload::enable($s2);
	$s2->start;
	for my $s ($s1, $s2)
	{
		like(slurp_file($s->logfile), qr/^pct_preload\[\d+\]: LOG:  encrypted cluster/m,
			"$name: " . $s->name . ' runs under the active preload');
	}
	like(slurp_file($s2->logfile),
		qr/^pct_preload\[\d+\]: LOG:  pg_control holds the mark of a base backup of an encrypted cluster \(method $cfg->{method_no}\)/m,
		"$name: the preload takes S2's pg_control for a base backup of an encrypted cluster");

	$ntx += pgbench("$name ENC with standbys", $enc, 'bench', '-n', '-T', '3', '-c', '2');
	work3($_) for ($enc, $twin);
	my $lsn = $enc->lsn('insert');
	for my $s ($s1, $s2)
	{
		$enc->wait_for_catchup($s, 'replay', $lsn);
		is(PctTest::pgbench_invariant($s, 'bench'), "t|$ntx",
			"$name: " . $s->name . ' replayed every pgbench transaction');
	}
	compare("$name S1", $s1, $enc, \@TWIN_DBS, skip_unlogged => 1);
	compare("$name S2", $s2, $enc, \@TWIN_DBS, skip_unlogged => 1);
	compare("$name after work3", $enc, $twin, \@TWIN_DBS);
	my $dump_p = dumps($enc, [ @TWIN_DBS, 'bench' ]);
	my $dump_pu = dumps($enc, [ @TWIN_DBS, 'bench' ], no_unlogged => 1);
	my $dump_t = dumps($twin, \@TWIN_DBS);
	dumps_equal("$name ENC under the preload equals the twin after work3",
		$dump_p, $dump_t, \@TWIN_DBS, rows_sorted => 1);
	$s1->stop;

	$s2->promote;
	$s2->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
	  or die "$name: S2 was not promoted";
	work_promoted($_) for ($s2, $twin);
	is($s2->safe_psql('postgres', 'SELECT count(*), sum(id) FROM after_promotion'),
		'3000|4501500', "$name: the promoted S2 takes writes");
	my $dump_t2 = dumps($twin, \@TWIN_DBS, no_unlogged => 1);
	$s2->stop;
	$enc->stop;
	note("$name: replication done at " . elapsed());

	# 7. Verify, decrypt, check with the stock server.
	is(PctTest::control_show($s2->data_dir)->{version}, 1400,
		"$name: S2's pg_control is version 1400 again");
	for my $node ($enc, $s1, $s2)
	{
		($rc, $out, $err) = PctPreload::verify_node($node);
		is($rc, 0, "$name: pg_verify_cryptokeys -D passes on " . $node->name)
		  or diag($out, $err);
	}
	# S1 starts as a primary at the end of its WAL.
	unlink($s1->data_dir . '/standby.signal') or die "unlink standby.signal: $!";
	for my $node ($enc, $s1, $s2)
	{
		my $n = $node->name;
		my ($dout, $derr) = PctPreload::decrypt_node($node);
		like($dout, qr/^cluster decrypted$/m, "$name: $n decrypted");
		is(PctTest::control_show($node->data_dir)->{version}, 1300, "$name: $n pg_control 1300");
		ok($node->start(fail_ok => 1), "$name: the stock server starts on $n");
		amcheck_all("$name $n decrypted", $node);
	}
	my $d = dumps($enc, [ @TWIN_DBS, 'bench' ]);
	dumps_equal("$name ENC decrypted equals itself before", $d, $dump_p, [ @TWIN_DBS, 'bench' ]);
	dumps_equal("$name ENC decrypted equals the twin", $d, $dump_t, \@TWIN_DBS,
		rows_sorted => 1);
	dumps_equal("$name S1 decrypted equals ENC",
		dumps($s1, [ @TWIN_DBS, 'bench' ], no_unlogged => 1), $dump_pu, [ @TWIN_DBS, 'bench' ]);
	is($s1->safe_psql('postgres', 'SELECT count(*) FROM ul'), '0',
		"$name: S1's unlogged table is empty");
	my $d2 = dumps($s2, [ @TWIN_DBS, 'bench' ], no_unlogged => 1);
	dumps_equal("$name S2 decrypted equals the twin after the promoted writes",
		$d2, $dump_t2, \@TWIN_DBS, rows_sorted => 1);
	dumps_equal("$name S2 decrypted equals ENC", $d2, $dump_pu, ['bench']);
	$_->stop for ($enc, $s1, $s2, $twin);
	if ($cfg->{checksums})
	{
		for my $node ($enc, $s1, $s2)
		{
			($rc, $out, $err) = PctTest::run_cmd([ 'pg_checksums', '--check', '-D', $node->data_dir ]);
			ok($rc == 0 && $out =~ /^Bad checksums:\s+0$/m && $out =~ /^Blocks scanned:\s+[1-9]/m,
				"$name: pg_checksums --check passes on " . $node->name . ' decrypted')
			  or diag($out, $err);
		}
	}
	note("$name: done at " . elapsed());
	return;
}

is(canonical("SET x;\nCOPY public.t (a) FROM stdin;\nb\t2\na\t1\n\\.\n\nCOPY public.u (a) FROM stdin;\n\\.\n"),
	"SET x;\nCOPY public.t (a) FROM stdin;\na\t1\nb\t2\n\\.\n\nCOPY public.u (a) FROM stdin;\n\\.\n",
	'canonical() sorts the rows of each COPY block and keeps everything else');

run_config(
	{
		name => 'ck128',
		checksums => 1,
		method => 'aes128',
		method_no => 1,
		label => 'AES-128',
		cklabel => 'on',
		nosync => 1,
	});
run_config(
	{
		name => 'nock256',
		checksums => 0,
		method => 'aes256',
		method_no => 3,
		label => 'AES-256',
		cklabel => 'off',
		nosync => 0,
	});

done_testing();
