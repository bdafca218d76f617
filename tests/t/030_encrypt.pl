#!/usr/bin/perl
#
# 030_encrypt.pl
#	  pg_encrypt_cluster on real clusters: encrypt, prove the result, decrypt,
#	  prove that the cluster is back; and every refusal changes nothing.
#
#  Two clusters, both filled with: pgbench data (scale 5), an unlogged table
#  with btree and GiST indexes, a table bulk-loaded under wal_level=minimal
#  in its creating transaction (LSN 0 pages), GiST, GIN, BRIN and hash
#  indexes, a TOAST-ed table, a sequence, a materialized view, a tablespace
#  outside PGDATA (table and indexes), and three databases (postgres,
#  one made with STRATEGY file_copy, one with wal_log); a table made in
#  template1 before the file copy and read only in the copy (FORMAT 3.1's
#  known limit where checksums are off).
#   A. data checksums on, aes128, -N, plus a table over 1 GB (a ".1"
#      segment), loaded with COPY FREEZE under wal_level=minimal so that
#      its pages keep LSN 0 (rule 3.1 on a multi-segment relation).
#   B. data checksums off, aes256, durable (no -N); the refusals.
#
#  1. Before: pg_dump of each database, clean stop, ORIG = cp -a of PGDATA
#     and of the tablespace (ORIG's pg_tblspc link led to its copy).
#  2. Encrypt: exit 0; pg_control 1400 with the method; live/ holds the
#     generation 2 keys of the cipher; cluster_key_command set; a stock
#     server refuses a copy (its log names PG_CONTROL_VERSION 1400);
#     pct_testutil compare-encrypted and iv-audit pass; A: the stock
#     pg_checksums --check passes on a copy converted back to 1300;
#     sample relation pages (a fake LSN, a real one, the tablespace, the
#     unlogged table, A: segment .1) and WAL pages (long and short
#     header) decrypt with the openssl command and the IVs of FORMAT 3
#     and 4; the pages, WAL pages and LSNs the tool reports are the ones
#     the comparison counted; the unlogged fake LSNs lie below the new
#     unloggedLSN; pg_verify_cryptokeys passes.  The checkers are shown to
#     fail on a page tampered with (and restored).
#  3. Decrypt (key command from the configuration): exit 0; no
#     pg_cryptokeys, no cluster_key_command; compare-decrypted passes;
#     the stock server starts; pg_dump of each database equals the one
#     before (A: without the 1 GB table's rows, which are counted and
#     compared by compare-decrypted instead); amcheck (btree with
#     heapallindexed, verify_heapam) passes in every database.
#  4. Refusals (exit 1, the message, "no changes were made", the tree
#     unchanged): a running server, an unclean shutdown, wal_level=minimal
#     in pg_control (hint: replica), pg_control version 1200 (named), a key
#     command exiting 3, too little space for the journal
#     (PCT_TEST_FREE_BYTES), a hard-linked relation file, an already
#     encrypted cluster; --decrypt of a plain cluster and with a wrong
#     cluster key.  A dry run (-n) exits 0, prints the plan, changes
#     nothing.

use strict;
use warnings;

use File::Path qw(rmtree);
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

use PctTest;

my $KEK = PctTest::test_kek('030 encrypt');
my $KEYCMD = PctTest::kek_command($KEK);
my $t0 = Time::HiRes::time();

sub elapsed { return sprintf('%.1fs', Time::HiRes::time() - $t0); }

sub encrypt_cluster
{
	my ($args, %opt) = @_;
	return PctTest::run_cmd([ 'pg_encrypt_cluster', @$args ], %opt);
}

# Snapshot of a cluster and its tablespace: every entry with its change
# time (any write, chmod, link or rename shows), files up to 1 MB hashed.
sub tree_snapshot
{
	my (@roots) = @_;
	my %s;
	for my $r (@roots)
	{
		my $snap = PctTest::snapshot($r, ctime => 1, hash_max => 1 << 20);
		$s{"$r:$_"} = $snap->{$_} for keys %$snap;
	}
	return \%s;
}

# Run pg_encrypt_cluster expecting a refusal that changes nothing.
sub refused
{
	my ($name, $args, $re, %opt) = @_;
	my $before = tree_snapshot(@{ $opt{roots} });
	my ($rc, $out, $err) = encrypt_cluster($args, env => $opt{env});
	is($rc, 1, "$name: exits 1");
	like($err, $re, "$name: says why");
	like($err, qr/^pg_encrypt_cluster: no changes were made$/m,
		"$name: says no changes were made");
	is(PctTest::snapshot_diff($before, tree_snapshot(@{ $opt{roots} })),
		'', "$name: nothing changed");
	return $err;
}

sub psql_ok
{
	my ($node, $db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}


# AES-CTR by the openssl command, independent of the library: data XOR
# the keystream that starts at counter IV (16 bytes).
sub aes_ctr
{
	my ($keyhex, $iv, $data) = @_;
	my $bits = length($keyhex) * 4;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ 'openssl', 'enc', "-aes-$bits-ctr", '-K', $keyhex, '-iv', unpack('H*', $iv) ],
		'<', \$data, '>', \$out, '2>', \$err)
	  or die "openssl enc failed: $err";
	return $out;
}

# FORMAT 3 by hand: page BLK of ENC decrypts to ORIG's bytes 16..8191
# with IV = pd_lsn as stored, block number in the fork, unlogged flag.
sub check_page_iv
{
	my ($name, $keyhex, $orig, $enc, $blk, $blkno, $unlogged) = @_;
	my $o = PctTest::read_bytes($orig, $blk * 8192, 8192);
	my $e = PctTest::read_bytes($enc, $blk * 8192, 8192);
	my $iv = substr($e, 0, 8) . pack('V', $blkno) . ($unlogged ? "\x80" : "\0") . "\0\0\0";
	ok(substr($o, 0, 16) ne '' && substr($o, 14, 2) ne "\0\0"
		  && aes_ctr($keyhex, $iv, substr($e, 16)) eq substr($o, 16),
		"$name: decrypts by hand with the IV of FORMAT 3 (block $blkno"
		  . ($unlogged ? ', unlogged' : '') . ')');
	return;
}

# FORMAT 4 by hand: WAL page PAGE of ENC decrypts to ORIG past the header
# with IV = xlp_pageaddr (BE), xlp_tli (BE), zeros; block k at byte 16k.
sub check_wal_iv
{
	my ($name, $keyhex, $orig, $enc, $page) = @_;
	my $o = PctTest::read_bytes($orig, $page * 8192, 8192);
	my $e = PctTest::read_bytes($enc, $page * 8192, 8192);
	my ($magic, $info, $tli, $lo, $hi) = unpack('v v V V V', $o);
	my $hdr = ($info & 2) ? 40 : 24;
	is(sprintf('%04X', $magic), 'D110', "$name: WAL page $page is in use");
	my $iv = pack('N N N', $hi, $lo, $tli) . "\0\0\0\0";
	ok(substr(aes_ctr($keyhex, $iv, $e), $hdr) eq substr($o, $hdr),
		"$name: WAL page $page ($hdr-byte header) decrypts by hand with the IV of FORMAT 4");
	return;
}


sub fill_cluster
{
	my ($node, $cfg) = @_;
	my $name = $cfg->{name};

	# Bulk loads under wal_level=minimal (PostgreSQL::Test::Cluster's
	# default: minimal, max_wal_senders 0): created in the same
	# transaction, their pages are written without WAL and keep LSN 0.
	$node->start;
	psql_ok($node, 'postgres', q{
		BEGIN;
		CREATE TABLE bulk (id int, v text);
		INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
		CREATE INDEX bulk_id ON bulk (id);
		COMMIT;
	});
	if ($cfg->{big})
	{
		# 700000 rows of 1500 bytes: 5 per page, 140000 pages (1.07 GiB).
		my $x = 'x' x 1500;
		psql_ok($node, 'postgres', qq{
			BEGIN;
			CREATE TABLE big (t text);
			COPY big FROM PROGRAM 'yes $x | head -n 700000' WITH (FREEZE);
			COMMIT;
		});
	}
	$node->stop;
	note("$name: bulk loads done at " . elapsed());
	is(PctTest::control_show($node->data_dir)->{checksums},
		$cfg->{checksums} ? 1 : 0, "$name: data checksums as configured");

	# Refusal: wal_level=minimal in pg_control.
	refused(
		"$name wal_level=minimal",
		[ '-N', '-D', $node->data_dir, '-c', $KEYCMD ],
		qr/^pg_encrypt_cluster: error: wal_level is minimal.*\n(.*\n)*pg_encrypt_cluster: hint: .*\breplica\b/m,
		roots => [ $node->data_dir ]);

	$node->adjust_conf('postgresql.conf', 'wal_level', 'replica');
	$node->adjust_conf('postgresql.conf', 'max_wal_senders', '10');
	$node->start;

	# Refusals that need the server, before the unlogged table exists
	# (crash recovery after the immediate stop would empty it).
	if ($cfg->{refusals})
	{
		my $pgdata = $node->data_dir;
		my @only = ('pg_cryptokeys', 'postgresql.conf', 'postgresql.auto.conf');
		my $snap = PctTest::snapshot($pgdata, only => \@only);
		my ($rc, $out, $err) =
		  encrypt_cluster([ '-N', '-D', $pgdata, '-c', $KEYCMD ]);
		is($rc, 1, "$name running server: exits 1");
		like($err,
			qr/^pg_encrypt_cluster: error: a server is running on this cluster \(PID \d+\)$/m,
			"$name running server: says so");
		like($err, qr/^pg_encrypt_cluster: no changes were made$/m,
			"$name running server: no changes were made");
		is(PctTest::snapshot_diff($snap, PctTest::snapshot($pgdata, only => \@only)),
			'', "$name running server: no key directory, configuration unchanged");
		is(PctTest::control_show($pgdata)->{version},
			1300, "$name running server: pg_control still 1300");

		$node->stop('immediate');
		refused(
			"$name unclean shutdown",
			[ '-N', '-D', $pgdata, '-c', $KEYCMD ],
			qr/^pg_encrypt_cluster: error: cluster was not shut down cleanly: state is "in production"$/m,
			roots => [ $pgdata, $cfg->{tsdir} ]);
		$node->start;
	}

	$node->command_ok([ 'pgbench', '-i', '-s', '5', '-q', 'postgres' ],
		"$name: pgbench -i -s 5");
	my $ts = $cfg->{tsdir};
	# A table in template1 that only db_fc (a file copy) reads: there its
	# pages gain hint bits, keeping the real LSNs they share with
	# template1's copies (no WAL for hint bits without data checksums):
	# FORMAT 3.1's known limit.
	psql_ok($node, 'template1', q{
		CREATE TABLE tpl (id int, v text) WITH (autovacuum_enabled = false);
		INSERT INTO tpl SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
	});
	psql_ok($node, 'postgres', qq{
		CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, p point, v text);
		INSERT INTO ul SELECT g, point(g % 97, g % 89), md5(g::text)
		  FROM generate_series(1, 20000) g;
		CREATE INDEX ul_v ON ul (v);
		CREATE INDEX ul_p ON ul USING gist (p);

		-- the hash index exists before the rows: its splits leave new
		-- (all-zero) pages, which must stay as they are
		CREATE TABLE idx (id int, p point, tags int[], doc tsvector, n int);
		CREATE INDEX idx_hash ON idx USING hash (id);
		INSERT INTO idx SELECT g, point(g % 100, g / 100), ARRAY[g % 10, g % 7],
			to_tsvector('simple', 'w' || (g % 50) || ' x' || (g % 13)), g
		  FROM generate_series(1, 20000) g;
		CREATE INDEX idx_gist ON idx USING gist (p);
		CREATE INDEX idx_gin ON idx USING gin (tags);
		CREATE INDEX idx_gin_doc ON idx USING gin (doc);
		CREATE INDEX idx_brin ON idx USING brin (n);
		CREATE INDEX idx_btree ON idx (n);

		CREATE TABLE toasty (id int PRIMARY KEY, body text);
		ALTER TABLE toasty ALTER body SET STORAGE EXTERNAL;
		INSERT INTO toasty SELECT g, repeat(md5(g::text), 300)
		  FROM generate_series(1, 200) g;

		CREATE SEQUENCE seq;
		SELECT nextval('seq') FROM generate_series(1, 7);

		CREATE MATERIALIZED VIEW mv AS SELECT n % 100 AS k, count(*) AS c
		  FROM idx GROUP BY 1;

		CREATE TABLESPACE ts LOCATION '$ts';
		CREATE TABLE in_ts (id int, v text) TABLESPACE ts;
		INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
		ALTER TABLE in_ts ADD PRIMARY KEY (id) USING INDEX TABLESPACE ts;
		CREATE INDEX in_ts_v ON in_ts (v) TABLESPACE ts;

		CREATE DATABASE db_fc STRATEGY file_copy;
		CREATE DATABASE db_wl STRATEGY wal_log;
	});
	for my $db ('db_fc', 'db_wl')
	{
		psql_ok($node, $db, q{
			CREATE TABLE t (id int PRIMARY KEY, v text);
			INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
			CREATE INDEX t_v ON t (v);
		});
	}
	is(psql_ok($node, 'db_fc', 'SELECT count(*) FROM tpl'),
		2000, "$name: db_fc reads the table copied from template1");
	psql_ok($node, 'db_wl', q{
		CREATE TABLE t_ts (id int PRIMARY KEY USING INDEX TABLESPACE ts, v text)
		  TABLESPACE ts;
		INSERT INTO t_ts SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	});
	note("$name: filled at " . elapsed());
	return;
}

# Prove the checkers can fail: tamper with one page, expect a violation,
# restore the bytes exactly.
sub tamper_check
{
	my ($name, $cmd, $file, $off, $bytes, $want) = @_;
	my $saved = PctTest::read_bytes($file, $off, length $bytes);
	PctTest::write_bytes($file, $off, $bytes);
	my ($rc, $out, $err) = PctTest::run_cmd([ 'pct_testutil', @$cmd ]);
	PctTest::write_bytes($file, $off, $saved);
	is($rc, 1, "$name: $cmd->[0] exits 1 on a tampered page");
	like($out, $want, "$name: $cmd->[0] reports it");
	return;
}

sub run_cluster
{
	my ($cfg) = @_;
	my $name = $cfg->{name};
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => $cfg->{checksums} ? ['-k'] : []);
	my $pgdata = $node->data_dir;
	my $scratch = PostgreSQL::Test::Utils::tempdir();
	$cfg->{tsdir} = "$scratch/ts";
	mkdir($cfg->{tsdir}, 0700) or die "mkdir: $!";
	my @roots = ($pgdata, $cfg->{tsdir});
	my @dbs = ('postgres', 'db_fc', 'db_wl');
	my @nosync = $cfg->{nosync} ? ('-N') : ();

	fill_cluster($node, $cfg);

	my %path = map {
		$_ => "$pgdata/" . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$_')")
	} qw(bulk pgbench_accounts pgbench_branches in_ts ul);
	if ($cfg->{big})
	{
		$path{big} = "$pgdata/"
		  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('big')");
		ok(-f "$path{big}.1", "$name: table big has a second segment");
	}

	# 1. Before.
	my $dump_before = PctTest::pg_dumps($node, \@dbs, exclude_data => ['public.big']);
	$node->stop;
	my $lsn_rel = $cfg->{big} ? 'big' : 'bulk';
	is(PctTest::page_lsn($path{$lsn_rel}, 0),
		0, "$name: $lsn_rel, loaded under wal_level=minimal, has LSN 0 pages");
	my $orig = "$scratch/orig";
	my $origts = "$scratch/origts";
	PctTest::copy_tree($pgdata, $orig);
	PctTest::copy_tree($cfg->{tsdir}, $origts);
	opendir(my $dh, "$orig/pg_tblspc") or die $!;
	my @tsl = grep { /^\d+$/ } readdir $dh;
	closedir $dh;
	is(scalar @tsl, 1, "$name: one tablespace");
	unlink("$orig/pg_tblspc/$tsl[0]") or die $!;
	symlink($origts, "$orig/pg_tblspc/$tsl[0]") or die $!;
	note("$name: ORIG copied at " . elapsed());

	my ($rc, $out, $err);
	if ($cfg->{refusals})
	{
		# The comparison itself: ORIG against the untouched cluster.
		($rc, $out, $err) =
		  PctTest::run_cmd([ 'pct_testutil', 'compare-decrypted', $orig, $pgdata ]);
		is($rc, 0, "$name: compare-decrypted of ORIG and the plain cluster")
		  or diag($out, $err);
		like($out, qr/pages-lsn-replaced 0 violations 0$/m,
			"$name: ... every page identical");

		my $copy = "$scratch/v1200";
		PctTest::copy_tree($pgdata, $copy);
		PctTest::control_set_version($copy, 1200);
		refused("$name pg_control version 1200",
			[ '-N', '-D', $copy, '-c', $KEYCMD ],
			qr/^pg_encrypt_cluster: error: control file ".*" has unsupported version 1200$/m,
			roots => [ $copy, $cfg->{tsdir} ]);
		rmtree($copy);

		refused(
			"$name key command exits 3",
			[ '-N', '-D', $pgdata, '-c', 'exit 3' ],
			qr/^pg_encrypt_cluster: error: cluster key command .* exited with status 3$/m,
			roots => \@roots);
		refused(
			"$name no space for the journal",
			[ '-N', '-D', $pgdata, '-c', $KEYCMD ],
			qr/^pg_encrypt_cluster: error: not enough free space for the journal: \d+ bytes needed, 1000 available$/m,
			roots => \@roots,
			env => { PCT_TEST_FREE_BYTES => 1000 });

		my $link = "$scratch/hardlink";
		link($path{pgbench_branches}, $link) or die "link: $!";
		refused(
			"$name hard-linked relation file",
			[ '-N', '-D', $pgdata, '-c', $KEYCMD ],
			qr/^pg_encrypt_cluster: error: file "\Q$path{pgbench_branches}\E" has 2 hard links$/m,
			roots => [ @roots, $link ]);
		unlink($link) or die $!;

		my $before = tree_snapshot(@roots);
		($rc, $out, $err) =
		  encrypt_cluster([ '-n', '-D', $pgdata, '-c', $KEYCMD, '-K', $cfg->{cipher} ]);
		is($rc, 0, "$name dry run: exits 0") or diag($err);
		like($out, qr/^pg_encrypt_cluster would encrypt \d+ relation files \(\d+ MB\) and \d+ WAL files \(\d+ MB\) in place$/m,
			"$name dry run: reports the plan");
		is(PctTest::snapshot_diff($before, tree_snapshot(@roots)),
			'', "$name dry run: nothing changed");

		refused(
			"$name --decrypt of a plain cluster",
			[ '-N', '--decrypt', '-D', $pgdata, '-c', $KEYCMD ],
			qr/^pg_encrypt_cluster: error: cluster is not encrypted: pg_control version is 1300$/m,
			roots => \@roots);
	}

	# 2. Encrypt.
	my $t = Time::HiRes::time();
	($rc, $out, $err) = encrypt_cluster(
		[ @nosync, '-D', $pgdata, '-c', $KEYCMD, '-K', $cfg->{cipher} ]);
	note(sprintf('%s: encryption took %.1fs', $name, Time::HiRes::time() - $t));
	is($rc, 0, "$name: encryption exits 0") or diag($err);
	like($out, qr/^\d+ relation pages and \d+ WAL pages rewritten, [1-9]\d* page LSNs replaced\ncluster encrypted\n\z/,
		"$name: reports pages rewritten and LSNs replaced");
	my @reported = $out =~ /^(\d+) relation pages and (\d+) WAL pages rewritten, (\d+)/;
	is($err, '', "$name: no messages on stderr");
	my $c = PctTest::control_show($pgdata);
	is("$c->{version} $c->{encryption}", "1400 $cfg->{method}",
		"$name: pg_control version 1400 with method $cfg->{method}");
	is(PctTest::keydir_entries($pgdata), 'live',
		"$name: pg_cryptokeys holds live/ only (no lock file, journal, new/)");
	my $keys = PctTest::unwrap(PctTest::live_dir($pgdata), $KEK);
	is($keys && "$keys->{generation} $keys->{keylen}",
		"2 $cfg->{keylen}", "$name: live/ unwraps: generation 2, $cfg->{keylen}-byte keys");
	ok(PctTest::config_has_key_command($pgdata),
		"$name: cluster_key_command set in the configuration");
	# Rule 3.1: the unlogged table's pages carry a fake LSN from the
	# unloggedLSN counter (>= 1000), which moved past it.
	my $ul_lsn = PctTest::page_lsn($path{ul}, 0);
	my $counter = unpack('Q<', PctTest::read_bytes("$pgdata/global/pg_control", 128, 8));
	ok($ul_lsn >= 1000 && $counter > $ul_lsn,
		"$name: unlogged pages got a fake LSN ($ul_lsn) below unloggedLSN ($counter)");

	# A stock server refuses a copy, for its pg_control.
	my $copy = "$scratch/copy";
	PctTest::copy_tree($pgdata, $copy);
	PctTest::remove_key_command($copy);
	ok(!PctTest::config_has_key_command($copy),
		"$name: the copy has no cluster_key_command");
	my $log = "$scratch/copy.log";
	($rc, $out, $err) = PctTest::run_cmd(
		[ 'pg_ctl', 'start', '-w', '-D', $copy, '-l', $log ]);
	isnt($rc, 0, "$name: a stock server does not start the encrypted copy");
	PctTest::run_cmd([ 'pg_ctl', 'stop', '-m', 'immediate', '-D', $copy ]) if $rc == 0;
	like(-f $log ? PostgreSQL::Test::Utils::slurp_file($log) : '',
		qr/initialized with PG_CONTROL_VERSION 1400\b/,
		"$name: the stock server refuses pg_control version 1400");
	if ($cfg->{checksums})
	{
		PctTest::control_1300($copy);
		($rc, $out, $err) =
		  PctTest::run_cmd([ 'pg_checksums', '--check', '-D', $copy ]);
		is($rc, 0, "$name: stock pg_checksums --check passes on the ciphertext")
		  or diag($out, $err);
		like($out, qr/^Bad checksums:\s+0$/m, "$name: ... no bad checksums");
		like($out, qr/^Blocks scanned:\s+[1-9]/m, "$name: ... blocks were scanned");
	}
	rmtree($copy);

	$t = Time::HiRes::time();
	($rc, $out, $err) =
	  PctTest::run_cmd([ 'pct_testutil', 'compare-encrypted', $orig, $pgdata ]);
	note(sprintf('%s: compare-encrypted took %.1fs', $name, Time::HiRes::time() - $t));
	is($rc, 0, "$name: compare-encrypted passes") or diag($out, $err);
	like($out, qr/ pages-encrypted [1-9]\d* pages-new [1-9]\d* wal-pages-encrypted [1-9]\d* .* lsns-replaced [1-9]\d* violations 0$/m,
		"$name: ... pages (new ones kept), WAL pages and LSNs changed, no violations");
	note("$name compare-encrypted: $out");
	my @counted = $out =~ / pages-encrypted (\d+) .* wal-pages-encrypted (\d+) .* lsns-replaced (\d+) /;
	is("@reported", "@counted",
		"$name: the pages and LSNs it reports are those that changed");

	$t = Time::HiRes::time();
	($rc, $out, $err) = PctTest::run_cmd([ 'pct_testutil', 'iv-audit', $pgdata ]);
	note(sprintf('%s: iv-audit took %.1fs', $name, Time::HiRes::time() - $t));
	is($rc, 0, "$name: iv-audit passes") or diag($out, $err);
	like($out, qr/^pages [1-9]\d* groups-identical \d+ known-limit \d+ violations 0$/m,
		"$name: ... no IV shared by differing pages");
	note("$name iv-audit: ", join("\n", grep { !/^known-limit / } split /\n/, $out));
	if (!$cfg->{checksums})
	{
		like($out, qr/^known-limit \S+:\d+ \S+:\d+$/m,
			"$name: ... and reports the known limit (template1 and db_fc pages)");
	}

	# The ciphertext is FORMAT 3 and 4 exactly: decrypt sample pages by hand.
	my $relseg = unpack('V', PctTest::read_bytes("$pgdata/global/pg_control", 220, 4));
	my $o = sub { return "$orig/" . substr($_[0], length($pgdata) + 1); };
	check_page_iv("$name bulk", $keys->{key0}, $o->($path{bulk}), $path{bulk}, 0, 0, 0);
	check_page_iv("$name pgbench_accounts", $keys->{key0}, $o->($path{pgbench_accounts}),
		$path{pgbench_accounts}, 3, 3, 0);
	check_page_iv("$name in_ts", $keys->{key0}, $o->($path{in_ts}), $path{in_ts}, 1, 1, 0);
	check_page_iv("$name ul", $keys->{key0}, $o->($path{ul}), $path{ul}, 2, 2, 1);
	if ($cfg->{big})
	{
		check_page_iv("$name big.1", $keys->{key0}, $o->("$path{big}.1"), "$path{big}.1",
			5, $relseg + 5, 0);
	}
	opendir(my $wd, "$orig/pg_wal") or die $!;
	my ($wal) = sort grep { /^[0-9A-F]{24}$/ } readdir $wd;
	closedir $wd;
	check_wal_iv("$name $wal", $keys->{key1}, "$orig/pg_wal/$wal", "$pgdata/pg_wal/$wal", $_)
	  for (0, 1);

	($rc, $out, $err) =
	  PctTest::run_cmd([ 'pg_verify_cryptokeys', '-D', $pgdata ]);
	is($rc, 0, "$name: pg_verify_cryptokeys passes") or diag($out, $err);

	# The checkers fail when they should.
	my $plain = PctTest::read_bytes("$orig/" . substr($path{pgbench_accounts}, length($pgdata) + 1),
		8192, 8192);
	tamper_check("$name", [ 'compare-encrypted', $orig, $pgdata ],
		$path{pgbench_accounts}, 8192, $plain, qr/^NOT-ENCRYPTED .* offset 8192$/m);
	# Give page 0 of pgbench_branches the LSN of page 0 of bulk (both
	# permanent, both fake LSNs): one IV for two different pages.
	tamper_check("$name", [ 'iv-audit', $pgdata ],
		$path{pgbench_branches}, 0, PctTest::read_bytes($path{bulk}, 0, 8),
		qr/^SHARED-IV /m);

	if ($cfg->{refusals})
	{
		refused(
			"$name already encrypted",
			[ '-N', '-D', $pgdata, '-c', $KEYCMD ],
			qr/^pg_encrypt_cluster: error: cluster is already encrypted$/m,
			roots => \@roots);
		refused(
			"$name --decrypt with a wrong cluster key",
			[ '-N', '--decrypt', '-D', $pgdata, '-c',
				PctTest::kek_command(PctTest::test_kek('wrong')) ],
			qr/^pg_encrypt_cluster: error: .*wrong cluster key/m,
			roots => \@roots);
	}

	# 3. Decrypt, with the key command from the configuration.
	$t = Time::HiRes::time();
	($rc, $out, $err) = encrypt_cluster([ @nosync, '--decrypt', '-D', $pgdata ]);
	note(sprintf('%s: decryption took %.1fs', $name, Time::HiRes::time() - $t));
	is($rc, 0, "$name: decryption exits 0") or diag($err);
	like($out, qr/^\d+ relation pages and \d+ WAL pages rewritten, 0 page LSNs replaced\ncluster decrypted\n\z/,
		"$name: reports the pages rewritten");
	is(join(' ', $out =~ /^(\d+) relation pages and (\d+) WAL/), "@reported[0,1]",
		"$name: decryption rewrote the pages encryption did");
	ok(!-e PctTest::keydir($pgdata), "$name: no pg_cryptokeys");
	ok(!PctTest::config_has_key_command($pgdata),
		"$name: no cluster_key_command in the configuration");
	is(PctTest::control_show($pgdata)->{version}, 1300, "$name: pg_control 1300");

	$t = Time::HiRes::time();
	($rc, $out, $err) =
	  PctTest::run_cmd([ 'pct_testutil', 'compare-decrypted', $orig, $pgdata ]);
	note(sprintf('%s: compare-decrypted took %.1fs', $name, Time::HiRes::time() - $t));
	is($rc, 0, "$name: compare-decrypted passes") or diag($out, $err);
	like($out, qr/^files [1-9]\d* pages-identical [1-9]\d* pages-lsn-replaced [1-9]\d* violations 0$/m,
		"$name: ... only replaced LSNs differ");
	note("$name compare-decrypted: $out");
	tamper_check("$name", [ 'compare-decrypted', $orig, $pgdata ],
		"$pgdata/PG_VERSION", 0, '9', qr/^CHANGED PG_VERSION offset 0$/m);
	# A real LSN (pgbench_branches was written under wal_level=replica)
	# must come back.
	tamper_check("$name", [ 'compare-decrypted', $orig, $pgdata ],
		$path{pgbench_branches}, 4, pack('V', 1),
		qr/^REAL-LSN-CHANGED .* offset 0$/m);

	ok($node->start(fail_ok => 1), "$name: the stock server starts");
	my $dump_after = PctTest::pg_dumps($node, \@dbs, exclude_data => ['public.big']);
	for my $db (@dbs)
	{
		ok($dump_after->{$db} eq $dump_before->{$db},
			"$name: pg_dump of $db equals the one before")
		  or diag(PctTest::first_difference($dump_before->{$db}, $dump_after->{$db}));
	}
	if ($cfg->{big})
	{
		is( $node->safe_psql('postgres',
				'SELECT count(*), min(t) = max(t), length(min(t)) FROM big'),
			'700000|t|1500',
			"$name: table big is intact");
	}
	for my $db (@dbs)
	{
		psql_ok($node, $db, 'CREATE EXTENSION amcheck');
		my ($brc, $bout, $berr, $hrc, $hout, $herr) = PctTest::amcheck($node, $db);
		is($brc, 0, "$name $db: bt_index_check (heapallindexed) passes")
		  or diag($berr);
		cmp_ok($bout || 0, '>', 50, "$name $db: ... on every btree index ($bout)");
		is("$hrc $hout", '0 ', "$name $db: verify_heapam finds nothing")
		  or diag($herr);
	}
	$node->stop;
	rmtree($orig);
	rmtree($origts);
	note("$name: done at " . elapsed());
	return;
}

run_cluster(
	{
		name => 'enc_ck',
		checksums => 1,
		cipher => 'aes128',
		method => 1,
		keylen => 16,
		big => 1,
		nosync => 1,
		refusals => 0,
	});
run_cluster(
	{
		name => 'enc_nock',
		checksums => 0,
		cipher => 'aes256',
		method => 3,
		keylen => 32,
		big => 0,
		nosync => 0,
		refusals => 1,
	});

done_testing();
