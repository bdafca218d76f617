#!/usr/bin/perl
#
# 040_preload_smoke.pl
#	  Smoke test of the test preload (tests/preload): the stock PostgreSQL 15
#	  server runs on clusters encrypted by pg_encrypt_cluster, and what it
#	  writes there decrypts to what a plaintext twin holds.
#
#  0. The library's list of intercepted calls (pct_preload_intercepts) is
#     its dynamic symbol table.
#  Two configurations: data checksums on with AES-128, off with AES-256.
#  Each has an encrypted node and a plaintext twin that gets the same
#  statements (the twin is never encrypted).
#  1. Both: pgbench -i -s 1, a table to damage, and database src with a
#     table, an unlogged table with an index, a TOAST-ed table and a
#     sequence; the encrypted node also gets database bench.  The
#     encrypted node is stopped and encrypted.
#  2. The stock server refuses it; under the preload it starts (the log
#     says so) and every query equals the twin's.
#  3. The same deterministic work on both (pgbench -t with a fixed seed,
#     updates, an unlogged table and indexes on unlogged tables made under
#     the preload, whose main forks exist before their _init forks),
#     CHECKPOINT; equal before and after a clean restart (pages read back
#     from disk), and the unlogged indexes were re-encrypted as unlogged.
#  4. pgbench -T on bench (encrypted node only).  First configuration: a
#     base backup of it holds pg_control in the 1300 view with the
#     preload's mark; a node made from it starts under the preload, reads
#     what the encrypted node reads, and has pg_control 1400 again.
#  5. CREATE DATABASE from src with STRATEGY file_copy and wal_log on
#     both; on the encrypted node every relation file of the file copy
#     equals src's byte for byte (copies carry ciphertext: FORMAT's IV
#     has no database or relfilenode); both copies equal the twin's, then
#     after writes and a clean restart.
#  6. An immediate stop and restart (crash recovery, unlogged relations
#     reset from their _init forks) on both: equal again, bench
#     consistent; more unlogged work after it.
#  7. Refusals under the preload, each with a FATAL line naming the cause
#     and no postmaster.pid left: the lock file pg_alterckey.pid, a new/
#     key directory.
#  8. Checksums on: one flipped ciphertext byte in a table's page makes
#     the server report the page invalid (no rows); restored, it reads.
#  9. Clean stop; pg_verify_cryptokeys passes; pg_encrypt_cluster
#     --decrypt; the stock server starts; amcheck (verify_heapam and
#     bt_index_check with heapallindexed) passes in every database; pg_dump
#     of each database equals the twin's; bench is consistent.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

use PctTest;
use PctPreload;

my $t0 = Time::HiRes::time();
sub elapsed { return sprintf('%.1fs', Time::HiRes::time() - $t0); }

# ---- 0. the list of intercepted calls ----

my @intercepts = PctPreload::intercepts();
my ($nmrc, $nmout, $nmerr) = PctTest::run_cmd(
	[ 'nm', '-D', '--defined-only', PctPreload::preload_path() ]);
is($nmrc, 0, 'nm lists the dynamic symbols of the preload') or diag($nmerr);
my @exported = sort grep { $_ ne 'pct_preload_intercepts' }
  map { (split ' ')[2] // () } split /\n/, $nmout;
is("@exported", join(' ', sort @intercepts),
	'pct_preload_intercepts names exactly the functions the library exports');
ok((grep { $_ eq 'pread' } @intercepts) && (grep { $_ eq '__read_chk' } @intercepts)
	  && (grep { $_ eq 'pwritev' } @intercepts),
	'... among them pread, __read_chk and pwritev');

# ---- helpers ----

# Queries whose results must be equal on both nodes, per database.
my %queries = (
	postgres => [
		PctTest::check_queries(
			'pgbench_accounts', 'pgbench_branches and pgbench_tellers',
			'pgbench_history (but mtime)'),
		[
			'pgbench_accounts through its index',
			q{SET enable_seqscan = off; SET enable_bitmapscan = off;
			  SELECT count(*), sum(abalance) FROM pgbench_accounts
			   WHERE aid BETWEEN 1000 AND 60000}
		],
		[ 'table flip', q{SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM flip} ],
	],
	src => [
		PctTest::check_queries(
			'table t', 'table t through its index', 'unlogged table ul',
			'unlogged table ul through its indexes', 'TOAST-ed values',
			'sequence'),
	],);
# ul2 and its index exist from step 3 on.
my @ul2_queries = (
	[
		'unlogged table ul2 through its index',
		q{SET enable_seqscan = off; SET enable_bitmapscan = off;
		  SELECT count(*), md5(string_agg(v, ',' ORDER BY v)) FROM ul2 WHERE v > ''}
	]);

# One psql run per node and database (PctTest::query_results); then one
# test per query.
sub compare
{
	my ($pair, $label, @dbs) = @_;
	for my $db (@dbs)
	{
		my @q = @{ $queries{ $db eq 'postgres' ? 'postgres' : 'src' } };
		push @q, @ul2_queries if $db ne 'postgres' && $pair->{ul2};
		my %out = map { $_ => PctTest::query_results($pair->{$_}, $db, \@q) }
		  ('enc', 'twin');
		for my $name (map { $_->[0] } @q)
		{
			my $e = $out{enc}{$name};
			ok($e ne '' && $e eq $out{twin}{$name},
				"$pair->{name} $label: $db: $name equals the twin's")
			  or diag("encrypted node: $e\ntwin: $out{twin}{$name}");
		}
	}
	return;
}

# The same statements on both nodes.
sub both
{
	my ($pair, $db, $sql) = @_;
	$_->safe_psql($db, $sql) for ($pair->{enc}, $pair->{twin});
	return;
}

sub log_text
{
	my ($node) = @_;
	return slurp_file($node->logfile);
}



# pgbench's own invariant (PctTest::pgbench_invariant), after some work.
sub bench_consistent
{
	my ($node, $label) = @_;
	like(PctTest::pgbench_invariant($node, 'bench'), qr/^t\|[1-9]\d*$/,
		"$label: bench balances equal the sum of its history");
	return;
}

# Relation files (NODE, NODE.SEG, NODE_fsm...) of a database directory:
# name => contents.
sub relation_files
{
	my ($dir) = @_;
	opendir(my $dh, $dir) or die "could not open \"$dir\": $!";
	my %f = map { $_ => PctTest::slurp_bytes("$dir/$_") }
	  grep { /^\d+(_\w+)?(\.\d+)?$/ } readdir $dh;
	closedir $dh;
	return \%f;
}

# ---- one configuration ----

sub run_config
{
	my ($cfg) = @_;
	my $name = $cfg->{name};
	my %pair = (name => $name);

	# 1. two nodes, the same data
	for my $role ('enc', 'twin')
	{
		my $node = PostgreSQL::Test::Cluster->new("${role}_$name");
		$node->init(
			allows_streaming => 1,
			extra => $cfg->{checksums} ? ['--data-checksums'] : []);
		$node->append_conf('postgresql.conf', "autovacuum = off\n");
		$node->start;
		$pair{$role} = $node;
	}
	my ($enc, $twin) = @pair{ 'enc', 'twin' };
	for my $node ($enc, $twin)
	{
		$node->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'postgres' ],
			"$name: pgbench -i on " . $node->name);
		$node->safe_psql('postgres', 'CREATE DATABASE src');
	}
	both(\%pair, 'postgres', q{
		CREATE TABLE flip (id int, v text);
		INSERT INTO flip SELECT g, md5(g::text) FROM generate_series(1, 100) g;
	});
	both(\%pair, 'src', q{
		CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
		CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, v text);
		INSERT INTO ul SELECT g, md5('u' || g) FROM generate_series(1, 5000) g;
		CREATE INDEX ul_v ON ul (v);
		CREATE TABLE toasty (id int PRIMARY KEY, body text);
		ALTER TABLE toasty ALTER body SET STORAGE EXTERNAL;
		INSERT INTO toasty SELECT g, repeat(md5(g::text), 300)
		  FROM generate_series(1, 60) g;
		CREATE SEQUENCE seq;
		SELECT nextval('seq') FROM generate_series(1, 7);
	});
	$enc->safe_psql('postgres', 'CREATE DATABASE bench');
	$enc->command_ok([ 'pgbench', '-i', '-s', '1', '-q', 'bench' ],
		"$name: pgbench -i on bench");
	my $flip_path = $enc->safe_psql('postgres', q{SELECT pg_relation_filepath('flip')});
	my $enc_out = PctPreload::encrypt_node($enc, method => $cfg->{method}, args => ['-N']);
	like($enc_out->{stdout}, qr/^cluster encrypted$/m, "$name: pg_encrypt_cluster encrypts");
	ok(PctPreload::enabled($enc), "$name: the node now starts under the preload");
	note("$name: filled and encrypted at " . elapsed());

	# 2. refused by the stock server, started under the preload
	my $off = -s $enc->logfile;
	ok(!$enc->PostgreSQL::Test::Cluster::start(fail_ok => 1),
		"$name: the stock server refuses the encrypted cluster");
	like(slurp_file($enc->logfile, $off),
		qr/unrecognized configuration parameter "cluster_key_command"|PG_CONTROL_VERSION/,
		"$name: ... for the cluster key setting or pg_control 1400");
	my ($ok, $log) = PctPreload::try_start($enc);
	ok($ok, "$name: the stock server starts under the preload");
	my $aes = $cfg->{method} =~ s/^aes//r;
	like($log,
		qr/pct_preload\[\d+\]: LOG:  encrypted cluster \(AES-$aes, data checksums $cfg->{ckword}\)/,
		"$name: ... which says so in the log");
	compare(\%pair, 'after encryption', 'postgres', 'src');

	# 3. the same work on both
	for my $node ($enc, $twin)
	{
		$node->command_ok(
			[ 'pgbench', '-n', '-t', '150', '-c', '1', '--random-seed=11', 'postgres' ],
			"$name: deterministic pgbench on " . $node->name);
	}
	both(\%pair, 'src', q{
		UPDATE t SET v = md5(v) WHERE id % 7 = 0;
		DELETE FROM t WHERE id % 11 = 0;
		INSERT INTO t SELECT g, md5('x' || g) FROM generate_series(20001, 22000) g;
		UPDATE ul SET v = upper(v) WHERE id % 5 = 0;
		INSERT INTO ul SELECT g, md5('u' || g) FROM generate_series(5001, 6000) g;
		CREATE UNLOGGED TABLE ul2 AS
		  SELECT g AS id, md5('v' || g) AS v FROM generate_series(1, 10000) g;
		CREATE INDEX ul2_v ON ul2 (v);
		CREATE INDEX ul_id_v ON ul (id, v);
		UPDATE toasty SET body = body || 'x' WHERE id % 3 = 0;
		SELECT nextval('seq') FROM generate_series(1, 5);
		VACUUM t;
		CHECKPOINT;
	});
	$pair{ul2} = 1;
	compare(\%pair, 'after the same work', 'postgres', 'src');
	$enc->restart;
	compare(\%pair, 'after a clean restart', 'postgres', 'src');
	like(log_text($enc),
		qr/pct_preload\[\d+\]: LOG:  re-encrypted \d+ pages of "base\/\d+\/\d+" as an unlogged relation/,
		"$name: index main forks written before their _init fork were re-encrypted as unlogged");
	note("$name: work and restart done at " . elapsed());

	# 4. pgbench -T on the encrypted node; a base backup of it
	$enc->command_ok([ 'pgbench', '-n', '-T', '3', '-c', '2', 'bench' ],
		"$name: pgbench -T 3 on bench");
	if ($cfg->{backup})
	{
		$enc->backup('bb');
		my $bb = PostgreSQL::Test::Cluster->new("bb_$name");
		$bb->init_from_backup($enc, 'bb');
		my $ctl = PctTest::slurp_bytes($bb->data_dir . '/global/pg_control');
		is(unpack('V', substr($ctl, 8, 4)) . ' ' . unpack('H8', substr($ctl, 292, 4)),
			'1300 0' . ($cfg->{method} eq 'aes128' ? 1 : 3) . '544350',
			"$name: the base backup's pg_control is the 1300 view with the preload's mark");
		PctPreload::enable($bb);
		$bb->start;
		for my $db ('postgres', 'bench')
		{
			my $q = q{SELECT count(*), sum(abalance), md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid))
					  FROM pgbench_accounts};
			is($bb->safe_psql($db, $q), $enc->safe_psql($db, $q),
				"$name: a node made from the base backup starts under the preload and reads $db");
		}
		$bb->stop;
		is(unpack('V', substr(PctTest::slurp_bytes($bb->data_dir . '/global/pg_control'), 8, 4)),
			1400, "$name: ... and its pg_control is version 1400 again");
		$bb->clean_node;
	}

	# 5. database copies
	both(\%pair, 'postgres', 'CREATE DATABASE fc TEMPLATE src STRATEGY file_copy');
	my %oid = map { $_ => $enc->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = '$_'") }
	  ('src', 'fc');
	my $srcf = relation_files($enc->data_dir . "/base/$oid{src}");
	my $fcf = relation_files($enc->data_dir . "/base/$oid{fc}");
	my @differ = grep { !defined $fcf->{$_} || $fcf->{$_} ne $srcf->{$_} } sort keys %$srcf;
	is(scalar(keys %$fcf), scalar(keys %$srcf), "$name: file_copy copied every relation file");
	is("@differ", '', "$name: ... each equal to src's byte for byte (ciphertext carried as it is)");
	both(\%pair, 'postgres', 'CREATE DATABASE wl TEMPLATE src STRATEGY wal_log');
	compare(\%pair, 'database copies', 'fc', 'wl');
	for my $db ('fc', 'wl')
	{
		both(\%pair, $db, q{
			INSERT INTO t SELECT g, 'copy' || g FROM generate_series(30001, 30500) g;
			UPDATE ul SET v = v || '!' WHERE id < 100;
			CREATE INDEX ul_v_id ON ul (v, id);
			INSERT INTO ul2 SELECT g, md5('w' || g) FROM generate_series(10001, 10100) g;
		});
	}
	$enc->restart;
	compare(\%pair, 'database copies after writes and a clean restart', 'fc', 'wl');
	note("$name: copies done at " . elapsed());

	# 6. crash recovery on both
	for my $node ($enc, $twin)
	{
		$node->stop('immediate');
		$node->start;
	}
	like(log_text($enc), qr/database system was interrupted; last known up at/,
		"$name: the restart after the immediate stop ran crash recovery");
	compare(\%pair, 'after crash recovery', 'postgres', 'src', 'fc', 'wl');
	bench_consistent($enc, "$name after crash recovery");
	both(\%pair, 'src', q{
		INSERT INTO ul SELECT g, md5('r' || g) FROM generate_series(1, 3000) g;
		INSERT INTO ul2 SELECT g, md5('s' || g) FROM generate_series(1, 2000) g;
		CREATE INDEX ul_v_desc ON ul (v DESC);
		CHECKPOINT;
	});
	compare(\%pair, 'unlogged work after crash recovery', 'src');
	note("$name: crash recovery done at " . elapsed());

	# 7. refusals
	my $pgdata = $enc->data_dir;
	$enc->stop;
	PctTest::write_lock_file($pgdata, PctTest::dead_pid());
	($ok, $log) = PctPreload::try_start($enc);
	ok(!$ok, "$name: refuses to start while pg_alterckey.pid exists");
	like($log,
		qr/pct_preload\[\d+\]: FATAL:  cannot start on an encrypted cluster while ".*\/pg_cryptokeys\/pg_alterckey\.pid" exists/,
		"$name: ... with a FATAL message naming the lock file");
	ok(!-e "$pgdata/postmaster.pid", "$name: ... and leaves no postmaster.pid");
	unlink(PctTest::keydir($pgdata) . '/pg_alterckey.pid')
	  or die "could not remove the lock file: $!";
	mkdir(PctTest::keydir($pgdata) . '/new', 0700) or die "mkdir: $!";
	($ok, $log) = PctPreload::try_start($enc);
	ok(!$ok, "$name: refuses to start while pg_cryptokeys/new exists");
	like($log, qr/pct_preload\[\d+\]: FATAL:  .*is in state "live and new"/,
		"$name: ... naming the key directory state");
	rmdir(PctTest::keydir($pgdata) . '/new') or die "rmdir: $!";
	mkdir(PctTest::keydir($pgdata) . '/old', 0700) or die "mkdir: $!";
	($ok, $log) = PctPreload::try_start($enc);
	ok(!$ok, "$name: refuses to start while pg_cryptokeys/old exists");
	like($log, qr/pct_preload\[\d+\]: FATAL:  .*is in state "live and old"/,
		"$name: ... naming the key directory state");
	rmdir(PctTest::keydir($pgdata) . '/old') or die "rmdir: $!";
	# pg_control naming another key length than the key files hold
	{
		my $method = PctTest::control_show($pgdata)->{encryption};
		my $other = $method == 1 ? 3 : 1;
		PctTest::control_1300($pgdata);
		PctTest::control_1400($pgdata, $other);
		($ok, $log) = PctPreload::try_start($enc);
		ok(!$ok, "$name: refuses to start when pg_control's method ($other) disagrees with the keys ($method)");
		like($log,
			qr/pct_preload\[\d+\]: ERROR:  key length of \d+ bits in ".*" does not match pg_control \(\d+ bits\)\npct_preload\[\d+\]: FATAL:  could not unwrap the data keys/,
			"$name: ... naming the key length, then a FATAL line")
		  or diag($log);
		ok(!-e "$pgdata/postmaster.pid", "$name: ... and leaves no postmaster.pid");
		PctTest::control_1300($pgdata);
		PctTest::control_1400($pgdata, $method);
	}
	# pg_control back in the stock layout while the keys are there (as
	# after a lost or restored pg_control): never run as a plain cluster
	my $ctl = PctTest::control_show($pgdata);
	PctTest::control_1300($pgdata);
	($ok, $log) = PctPreload::try_start($enc);
	ok(!$ok, "$name: refuses to start on pg_control 1300 with pg_cryptokeys present");
	like($log,
		qr/pct_preload\[\d+\]: FATAL:  pg_control is version 1300 \(not encrypted\) but ".*\/pg_cryptokeys" exists/,
		"$name: ... saying why");
	ok(!-e "$pgdata/postmaster.pid", "$name: ... and leaves no postmaster.pid");
	PctTest::control_1400($pgdata, $ctl->{encryption});
	is(PctTest::control_show($pgdata)->{version}, 1400, "$name: pg_control restored to 1400");

	# 8. a flipped ciphertext byte
	if ($cfg->{checksums})
	{
		my $file = "$pgdata/$flip_path";
		my $orig = PctTest::read_bytes($file, 4000, 1);
		PctTest::write_bytes($file, 4000, chr(ord($orig) ^ 0x01));
		$enc->start;
		my ($rc, $out, $err) = $enc->psql('postgres', 'SELECT id, v FROM flip');
		isnt($rc, 0, "$name: a flipped ciphertext byte makes the query fail");
		like($err, qr/ERROR:  invalid page in block 0 of relation \Q$flip_path\E/,
			"$name: ... reporting the page as invalid");
		is($out, '', "$name: ... and returning no rows");
		$enc->stop;
		PctTest::write_bytes($file, 4000, $orig);
	}
	$enc->start;
	compare(\%pair, 'after the refusals', 'postgres');

	# 9. clean stop, verify, decrypt, the stock server
	$enc->stop;
	my ($rc, $out, $err) = PctPreload::verify_node($enc);
	is($rc, 0, "$name: pg_verify_cryptokeys passes") or diag($out, $err);
	PctPreload::decrypt_node($enc, args => ['-N']);
	ok(!PctPreload::enabled($enc), "$name: decrypted, the node is plain again");
	ok($enc->start(fail_ok => 1), "$name: the stock server starts on the decrypted cluster");
	my @dbs = ('postgres', 'src', 'fc', 'wl');
	my ($de, $dt) = map { PctTest::pg_dumps($_, \@dbs, exclude_data => ['public.pgbench_history']) }
	  ($enc, $twin);
	for my $db (@dbs)
	{
		ok($de->{$db} eq $dt->{$db}, "$name: pg_dump of $db equals the twin's")
		  or diag(PctTest::first_difference($dt->{$db}, $de->{$db}));
	}
	for my $db ('postgres', 'src', 'fc', 'wl', 'bench')
	{
		$enc->safe_psql($db, 'CREATE EXTENSION amcheck');
		my ($brc, $bout, $berr, $hrc, $hout, $herr) = PctTest::amcheck($enc, $db);
		is($brc, 0, "$name $db: bt_index_check (heapallindexed) passes on $bout indexes")
		  or diag($berr);
		is("$hrc $hout", '0 ', "$name $db: verify_heapam finds nothing")
		  or diag($herr);
	}
	compare(\%pair, 'after decryption', 'postgres');
	bench_consistent($enc, "$name after decryption");
	$enc->stop;
	$twin->stop;
	note("$name: done at " . elapsed());
	return;
}

run_config(
	{ name => 'ck128', checksums => 1, ckword => 'on', method => 'aes128', backup => 1 });
run_config(
	{ name => 'nock256', checksums => 0, ckword => 'off', method => 'aes256' });

note('total ' . elapsed());
done_testing();
