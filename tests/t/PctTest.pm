
=pod

=head1 NAME

PctTest - helpers shared by the pgcrypttools TAP tests

=head1 SYNOPSIS

  use PctTest;

  my $node = PctTest::encrypted_node('alter_b128', 'b_aes128');
  my $v = PctTest::vector('b_aes128');
  my $before = PctTest::snapshot($node->data_dir);
  my ($rc, $out, $err) = PctTest::run_cmd(
	  [ 'pg_alterckey', '-N', $v->{key_command}, PctTest::kek_command($new),
		'-D', $node->data_dir ]);
  is(PctTest::snapshot_diff($before, PctTest::snapshot($node->data_dir)),
	  '', 'nothing changed');

=head1 DESCRIPTION

The vector sets live in $ENV{VECTORS} (tests/vectors; see its README.md).
An "encrypted" test cluster is a stock PostgreSQL 15 cluster made by
PostgreSQL::Test::Cluster whose pg_cryptokeys/live/ holds a vector set's key
files and whose pg_control was converted to version 1400 with the field
value the set requires; postgresql.conf sets cluster_key_command to a
command that prints the set's KEK.  A stock server cannot start such a
cluster (it refuses pg_control 1400 and the unknown setting); the offline
tools work on it as on a real one.

Test programs (pct_testutil, pg_alterckey, ...) are found in PATH, which the
Makefile's tap target sets.

=cut

package PctTest;

use strict;
use warnings;

use Carp;
use Digest::SHA;
use Fcntl qw(:mode);
use File::Copy ();
use File::Find ();
use File::Path qw(rmtree);
use IPC::Run ();
use JSON::PP ();
use POSIX ();
use Time::HiRes ();

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils ();

# ---- vector sets ----

my %vector_cache;

=pod

=over

=item vector(SET)

The decoded vector.json of SET (e.g. "b_aes128", "negative/b_bitflip"),
with three derived fields: C<generation> (1 or 2), C<control_value> (the
pg_control field: method 1..3 for generation 2, key length in bits for
generation 1; negative sets take it from their C<base> set when they do not
give it) and C<kek_command> (the vector's C<key_command>).

=cut

sub vector
{
	my ($set) = @_;
	return $vector_cache{$set} if $vector_cache{$set};

	my $file = "$ENV{VECTORS}/$set/vector.json";
	my $v = JSON::PP->new->decode(PostgreSQL::Test::Utils::slurp_file($file));
	$v->{set} = $set;
	$v->{generation} =
		$v->{format} eq 'B' ? 2
	  : $v->{format} eq 'C1' ? 1
	  : croak "$file: unknown format \"$v->{format}\"";
	my $field = $v->{generation} == 2 ? 'control_method' : 'file_encryption_keylen';
	my $value = $v->{$field};
	$value = vector($v->{base})->{control_value}
	  if !defined $value && defined $v->{base};
	croak "$file: no $field and no base set" unless defined $value;
	$v->{control_value} = $value;
	$v->{kek_command} = $v->{key_command};
	return $vector_cache{$set} = $v;
}

# The sets in $ENV{VECTORS}: directories holding vector.json.
sub _sets
{
	my ($sub) = @_;
	my $dir = $ENV{VECTORS} . ($sub ? "/$sub" : '');
	opendir(my $dh, $dir) or croak "could not open \"$dir\": $!";
	my @sets = sort grep { !/^\./ && -f "$dir/$_/vector.json" } readdir $dh;
	closedir $dh;
	return map { $sub ? "$sub/$_" : $_ } @sets;
}

=pod

=item good_sets(), negative_sets()

The names of the sets that must unwrap (top level, C<expect> "ok") and of
those that must fail (C<negative/*>, C<expect> "fail").  Dies when a set's
C<expect> disagrees with where it is, or when there are none.

=cut

sub good_sets
{
	my @sets = _sets('');
	croak "no vector sets in $ENV{VECTORS}" unless @sets;
	for (@sets)
	{
		croak "vector $_ expects " . vector($_)->{expect}
		  if vector($_)->{expect} ne 'ok';
	}
	return @sets;
}

sub negative_sets
{
	my @sets = _sets('negative');
	croak "no negative vector sets in $ENV{VECTORS}/negative" unless @sets;
	for (@sets)
	{
		croak "vector $_ expects " . vector($_)->{expect}
		  if vector($_)->{expect} ne 'fail';
	}
	return @sets;
}

=pod

=item kek_command(HEX)

A cluster key command that prints the KEK HEX: C<echo HEX>.

=item test_kek(LABEL)

A KEK (64 hex digits) made from LABEL; different labels give different keys.

=cut

sub kek_command { return "echo $_[0]"; }

sub test_kek { return Digest::SHA::sha256_hex("pgcrypttools test kek: $_[0]"); }

# ---- running programs ----

=pod

=item run_cmd(CMD, [env => {NAME => VALUE, NAME => undef}, timeout => SECS])

Run CMD (an array ref) with stdin from /dev/null and wait.  Returns (exit
status, stdout, stderr); the status is 128+N when the program was killed by
signal N, -1 when it could not be started.  C<env> sets (or, with undef,
removes) environment variables for this run only.

=cut

sub run_cmd
{
	my ($cmd, %opt) = @_;
	my ($out, $err) = ('', '');
	local %ENV = %ENV;
	_apply_env($opt{env});
	my $timeout = $opt{timeout} // $PostgreSQL::Test::Utils::timeout_default;
	my $ok = eval {
		IPC::Run::run($cmd, '<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout($timeout));
		1;
	};
	return (-1, $out, "$err$@") unless $ok;
	return (exit_status($?), $out, $err);
}

sub _apply_env
{
	my ($env) = @_;
	return unless $env;
	while (my ($k, $v) = each %$env)
	{
		if (defined $v) { $ENV{$k} = $v; }
		else { delete $ENV{$k}; }
	}
}

=pod

=item exit_status(WAIT_STATUS)

The exit status of a wait status ($?): 128+N when killed by signal N.

=cut

sub exit_status
{
	my ($st) = @_;
	return ($st & 127) ? 128 + ($st & 127) : $st >> 8;
}

=pod

=item start_cmd(CMD, [env => {...}])

Start CMD in the background (stdin /dev/null).  Returns a handle for
finish_cmd() and the process's PID (from IPC::Run).

=item finish_cmd(HANDLE)

Wait for it; returns (exit status, stdout, stderr) like run_cmd().

=cut

sub start_cmd
{
	my ($cmd, %opt) = @_;
	my $h = { out => '', err => '' };
	local %ENV = %ENV;
	_apply_env($opt{env});
	$h->{run} = IPC::Run::start($cmd, '<', \undef, '>', \$h->{out},
		'2>', \$h->{err},
		IPC::Run::timeout($opt{timeout}
			  // $PostgreSQL::Test::Utils::timeout_default));
	return ($h, $h->{run}{KIDS}[0]{PID});
}

sub finish_cmd
{
	my ($h) = @_;
	$h->{run}->finish;
	return (exit_status($h->{run}->full_result(0)), $h->{out}, $h->{err});
}

=pod

=item dead_pid()

The PID of a process that has exited and been reaped.

=cut

sub dead_pid
{
	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	POSIX::_exit(0) if $pid == 0;
	waitpid($pid, 0) == $pid or croak "waitpid failed: $!";
	croak "process $pid still exists" if kill(0, $pid);
	return $pid;
}

# ---- clusters ----

=pod

=item keydir(PGDATA), live_dir(PGDATA)

$PGDATA/pg_cryptokeys and its live/ sub-directory.

=cut

sub keydir { return "$_[0]/pg_cryptokeys"; }
sub live_dir { return "$_[0]/pg_cryptokeys/live"; }

=pod

=item install_keys(PGDATA, SET)

Replace PGDATA/pg_cryptokeys by SET's (only live/), directories mode 0700
and files 0600.

=cut

sub install_keys
{
	my ($pgdata, $set) = @_;
	my $from = "$ENV{VECTORS}/$set/pg_cryptokeys/live";
	my $kd = keydir($pgdata);
	rmtree($kd);
	croak "could not remove \"$kd\"" if -e $kd;
	for my $d ($kd, "$kd/live")
	{
		mkdir($d, 0700) or croak "could not create \"$d\": $!";
		chmod(0700, $d) or croak "chmod \"$d\": $!";
	}
	opendir(my $dh, $from) or croak "could not open \"$from\": $!";
	for my $f (sort grep { -f "$from/$_" } readdir $dh)
	{
		File::Copy::copy("$from/$f", "$kd/live/$f")
		  or croak "could not copy \"$from/$f\": $!";
		chmod(0600, "$kd/live/$f") or croak "chmod \"$kd/live/$f\": $!";
	}
	closedir $dh;
	return;
}

=pod

=item testutil(ARGS...)

Run pct_testutil ARGS; dies unless it exits 0; returns its stdout.

=item control_show(PGDATA)

pg_control as a hash: version, encryption, state, checksums.

=item control_1400(PGDATA, VALUE), control_1300(PGDATA)

Convert pg_control (see pct_testutil).

=cut

sub testutil
{
	my @args = @_;
	my ($rc, $out, $err) = run_cmd([ 'pct_testutil', @args ]);
	croak "pct_testutil @args failed (exit $rc): $err" if $rc != 0;
	return $out;
}

sub control_show
{
	my ($pgdata) = @_;
	my %c = testutil('control-show', $pgdata) =~ /^(\w+) (\d+)$/mg;
	return \%c;
}

sub control_1400 { testutil('control-1400', $_[0], $_[1]); return; }
sub control_1300 { testutil('control-1300', $_[0]); return; }

=pod

=item unwrap(DIR, KEKHEX)

Unwrap the keys of a key sub-directory with pct_testutil.  Returns a hash
ref (generation, keylen, key0, key1) on success, undef otherwise; in list
context also (exit status, stderr).

=cut

sub unwrap
{
	my ($dir, $kek) = @_;
	my ($rc, $out, $err) = run_cmd([ 'pct_testutil', 'unwrap', $dir, $kek ]);
	my $r;
	if ($rc == 0)
	{
		my %h = $out =~ /^(generation|keylen) (\d+)$/mg;
		my %k = $out =~ /^key (\d) ([0-9a-f]+)$/mg;
		$r = { %h, key0 => $k{0}, key1 => $k{1} };
	}
	return wantarray ? ($r, $rc, $err) : $r;
}

=pod

=item vector_keys(SET)

The data keys of SET as unwrap() returns them.

=cut

sub vector_keys
{
	my ($set) = @_;
	my $v = vector($set);
	my %k = map { ("key$_->{id}" => $_->{dek_hex}) } @{ $v->{keys} };
	return {
		generation => $v->{generation},
		keylen => length($k{key0}) / 2,
		%k
	};
}

=pod

=item set_key_command(PGDATA, COMMAND)

Remove every cluster_key_command line of postgresql.conf and append
C<cluster_key_command = 'COMMAND'>.

=cut

sub set_key_command
{
	my ($pgdata, $cmd) = @_;
	my $conf = "$pgdata/postgresql.conf";
	my $text = PostgreSQL::Test::Utils::slurp_file($conf);
	$text =~ s/^\s*cluster_key_command\s*=.*\n//mg;
	(my $q = $cmd) =~ s/'/''/g;
	$text .= "cluster_key_command = '$q'\n";
	open(my $fh, '>', $conf) or croak "could not write \"$conf\": $!";
	print $fh $text or croak "could not write \"$conf\": $!";
	close $fh or croak "could not write \"$conf\": $!";
	return;
}

=pod

=item load_vector(PGDATA, SET)

Make the stopped test cluster at PGDATA an encrypted cluster of SET: its
keys (install_keys), pg_control at 1400 with the set's field value
(converted back to 1300 first when needed), and its key command in
postgresql.conf.

=item encrypted_node(NAME, SET)

A new PostgreSQL::Test::Cluster NAME, initialised (not started) and made an
encrypted cluster of SET by load_vector().

=cut

sub load_vector
{
	my ($pgdata, $set) = @_;
	my $v = vector($set);
	install_keys($pgdata, $set);
	control_1300($pgdata) if control_show($pgdata)->{version} == 1400;
	control_1400($pgdata, $v->{control_value});
	set_key_command($pgdata, $v->{kek_command});
	return $v;
}

sub encrypted_node
{
	my ($name, $set) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	load_vector($node->data_dir, $set);
	return $node;
}

# ---- key files ----

=pod

=item slurp_bytes(PATH)

The contents of a file (binary).

=item gen1_counter(PATH), gen1_padding(PATH)

The counter (bytes 8..15, u64 LE) and the padding (bytes 68..71, as hex) of
a generation 1 key file.

=cut

sub slurp_bytes
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or croak "could not open \"$path\": $!";
	local $/;
	my $b = <$fh>;
	close $fh;
	return $b // '';
}

sub gen1_counter
{
	my $b = slurp_bytes($_[0]);
	croak "$_[0]: shorter than 72 bytes" if length($b) < 72;
	return unpack('Q<', substr($b, 8, 8));
}

sub gen1_padding
{
	my $b = slurp_bytes($_[0]);
	croak "$_[0]: shorter than 72 bytes" if length($b) < 72;
	return unpack('H*', substr($b, 68, 4));
}

# ---- snapshots ----

=pod

=item snapshot(ROOT, [mtime => 'files'|'all'|'none', ctime => 1, hash_max => BYTES, only => [REL...]])

A hash ref describing every file under ROOT (symlinks not followed):
relative path => "type mode size sha256" for files, "link -> target" for
symlinks, "dir mode" for directories; with C<mtime> 'files' (the default)
the modification time (ns) of files and symlinks is included, with 'all'
also that of directories (ROOT itself included, as ".").  C<ctime> adds
every entry's inode change time, which no write, chmod, chown or rename can
leave as it was; with it, C<hash_max> skips hashing files larger than that
(the change time covers them).  C<only> limits the snapshot to those paths
relative to ROOT (missing ones are recorded as missing).

=cut

sub snapshot
{
	my ($root, %opt) = @_;
	my $mtime = $opt{mtime} // 'files';
	croak "bad mtime option \"$mtime\"" unless $mtime =~ /^(files|all|none)$/;
	croak "hash_max needs ctime" if defined $opt{hash_max} && !$opt{ctime};
	my %snap;
	my $describe = sub {
		my ($path, $rel) = @_;
		my @st = Time::HiRes::lstat($path);
		if (!@st)
		{
			$snap{$rel} = 'missing';
			return;
		}
		my $mode = sprintf('%04o', S_IMODE($st[2]));
		my $d;
		my $with_mtime = $mtime eq 'all';
		if (S_ISLNK($st[2]))
		{
			$d = 'link -> ' . readlink($path);
			$with_mtime ||= $mtime eq 'files';
		}
		elsif (S_ISDIR($st[2]))
		{
			$d = "dir $mode";
		}
		elsif (S_ISREG($st[2]))
		{
			my $hash = 'unhashed';
			if (!defined $opt{hash_max} || $st[7] <= $opt{hash_max})
			{
				$hash = Digest::SHA->new(256)->addfile($path, 'b')->hexdigest;
			}
			$d = "file $mode $st[7] $hash";
			$with_mtime ||= $mtime eq 'files';
		}
		else
		{
			$d = sprintf('other %o', $st[2]);
		}
		$d .= sprintf(' mtime %.9f', $st[9]) if $with_mtime;
		$d .= sprintf(' ctime %.9f', $st[10]) if $opt{ctime};
		$snap{$rel} = $d;
	};
	my @roots = $opt{only} ? @{ $opt{only} } : ('.');
	for my $r (@roots)
	{
		my $start = $r eq '.' ? $root : "$root/$r";
		if (!-e $start && !-l $start)
		{
			$snap{$r} = 'missing';
			next;
		}
		File::Find::find(
			{
				no_chdir => 1,
				wanted => sub {
					my $rel = $File::Find::name;
					$rel =~ s/^\Q$root\E\/?//;
					$rel = '.' if $rel eq '';
					$describe->($File::Find::name, $rel);
				},
			},
			$start);
	}
	return \%snap;
}

=pod

=item snapshot_diff(A, B)

The differences between two snapshots, one line each ("+ path: ...",
"- path: ...", "~ path: ... => ..."), joined by newlines; '' when equal.

=cut

sub snapshot_diff
{
	my ($a, $b) = @_;
	my @d;
	my %all = map { $_ => 1 } keys %$a, keys %$b;
	for my $p (sort keys %all)
	{
		if (!exists $b->{$p}) { push @d, "- $p: $a->{$p}"; }
		elsif (!exists $a->{$p}) { push @d, "+ $p: $b->{$p}"; }
		elsif ($a->{$p} ne $b->{$p}) { push @d, "~ $p: $a->{$p} => $b->{$p}"; }
	}
	return join("\n", @d);
}

=pod

=item cluster_snapshot(PGDATA, [mtime => ...])

snapshot() of what the key tools may change: pg_cryptokeys (whole tree),
global/pg_control, postgresql.conf and postgresql.auto.conf.

=cut

sub cluster_snapshot
{
	my ($pgdata, %opt) = @_;
	return snapshot($pgdata, %opt,
		only => [
			'pg_cryptokeys', 'global/pg_control',
			'postgresql.conf', 'postgresql.auto.conf'
		]);
}

=pod

=item keydir_entries(PGDATA)

The sorted names in PGDATA/pg_cryptokeys, joined by spaces.

=cut

sub keydir_entries
{
	my ($pgdata) = @_;
	my $kd = keydir($pgdata);
	opendir(my $dh, $kd) or return "(cannot open $kd: $!)";
	my @e = sort grep { $_ ne '.' && $_ ne '..' } readdir $dh;
	closedir $dh;
	return join(' ', @e);
}

=pod

=item hold_lock(PGDATA)

Start a process that creates pg_cryptokeys/pg_alterckey.pid holding its own
PID and keeps an open file description (OFD) write lock on it, as a running
pg_alterckey does.  Returns (handle, pid); release_lock(handle) ends it
(the file stays).

=cut

sub hold_lock
{
	my ($pgdata) = @_;
	my $file = keydir($pgdata) . '/pg_alterckey.pid';
	# struct flock on Linux x86_64/aarch64: short l_type, short l_whence,
	# (pad), off_t l_start, off_t l_len, pid_t l_pid, (pad).  F_OFD_SETLK 37,
	# F_WRLCK 1.
	my $script = q{
		use Fcntl;
		open(my $fh, '+>', $ARGV[0]) or die "open: $!";
		chmod(0600, $ARGV[0]);
		my $fl = pack('s s x4 q q l x4', 1, 0, 0, 0, 0);
		fcntl($fh, 37, $fl) or die "F_OFD_SETLK: $!";
		syswrite($fh, "$$\n") or die "write: $!";
		print STDOUT "locked\n";
		close STDOUT;
		sleep 600;
	};
	my $out = '';
	my $h = IPC::Run::start([ $^X, '-e', $script, $file ],
		'<', \undef, '>', \$out, '2>', \my $err);
	my $pid = $h->{KIDS}[0]{PID};
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while ($out !~ /locked/)
	{
		croak "lock holder failed: " . ($err // '') unless $h->pumpable;
		croak "lock holder timed out" if time > $deadline;
		$h->pump_nb;
		Time::HiRes::sleep(0.01);
	}
	return ($h, $pid);
}

=pod

=item write_lock_file(PGDATA, PID)

Write PID and a newline to pg_cryptokeys/pg_alterckey.pid (mode 0600), as a
pg_alterckey that was killed leaves it; no lock is held on it.

=cut

sub write_lock_file
{
	my ($pgdata, $pid) = @_;
	my $file = keydir($pgdata) . '/pg_alterckey.pid';
	open(my $fh, '>', $file) or croak "could not write \"$file\": $!";
	print $fh "$pid\n";
	close $fh or croak "could not write \"$file\": $!";
	chmod(0600, $file) or croak "chmod \"$file\": $!";
	return;
}

sub release_lock
{
	my ($h) = @_;
	$h->kill_kill;
	$h->finish;
	return;
}

# ---- whole clusters and raw bytes ----

=pod

=item copy_tree(FROM, TO)

C<cp -a FROM TO> (TO must not exist); dies on failure.

=cut

sub copy_tree
{
	my ($from, $to) = @_;
	croak "\"$to\" exists" if -e $to || -l $to;
	system('cp', '-a', $from, $to) == 0
	  or croak "cp -a \"$from\" \"$to\" failed: exit " . exit_status($?);
	return;
}

=pod

=item read_bytes(PATH, OFFSET, LEN), write_bytes(PATH, OFFSET, BYTES)

Read LEN bytes at OFFSET (dies on a short read); overwrite bytes at OFFSET
in place (the file keeps its inode).

=item page_lsn(PATH, BLOCK)

The pd_lsn of page BLOCK of a relation file as a 64-bit value (high word
first on the page, each word little-endian).

=cut

sub read_bytes
{
	my ($path, $off, $len) = @_;
	open(my $fh, '<:raw', $path) or croak "could not open \"$path\": $!";
	sysseek($fh, $off, 0) or croak "could not seek in \"$path\": $!";
	my $n = sysread($fh, my $b, $len);
	croak "short read of \"$path\" at $off" unless defined $n && $n == $len;
	close $fh;
	return $b;
}

sub write_bytes
{
	my ($path, $off, $bytes) = @_;
	open(my $fh, '+<:raw', $path) or croak "could not open \"$path\": $!";
	sysseek($fh, $off, 0) or croak "could not seek in \"$path\": $!";
	my $n = syswrite($fh, $bytes);
	croak "short write of \"$path\" at $off"
	  unless defined $n && $n == length $bytes;
	close $fh or croak "could not write \"$path\": $!";
	return;
}

sub page_lsn
{
	my ($path, $blk) = @_;
	my ($hi, $lo) = unpack('V V', read_bytes($path, $blk * 8192, 8));
	return $hi * 4294967296 + $lo;
}

=pod

=item crc32c(BYTES)

CRC-32C (Castagnoli) of BYTES, as PostgreSQL computes it.

=item control_set_version(PGDATA, VERSION)

Write VERSION into pg_control's version field and recompute the CRC of
the version 1300 layout (bytes 0..287, CRC at 288), so that only the
version is unusual.

=cut

my @crc32c_table;

sub crc32c
{
	my ($bytes) = @_;
	if (!@crc32c_table)
	{
		for my $b (0 .. 255)
		{
			my $c = $b;
			$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
			push @crc32c_table, $c;
		}
	}
	my $crc = 0xFFFFFFFF;
	$crc = $crc32c_table[ ($crc ^ $_) & 0xFF ] ^ ($crc >> 8)
	  for unpack('C*', $bytes);
	return $crc ^ 0xFFFFFFFF;
}

sub control_set_version
{
	my ($pgdata, $version) = @_;
	my $file = "$pgdata/global/pg_control";
	my $b = slurp_bytes($file);
	croak "$file: not 8192 bytes" unless length($b) == 8192;
	substr($b, 8, 4) = pack('V', $version);
	substr($b, 288, 4) = pack('V', crc32c(substr($b, 0, 288)));
	write_bytes($file, 0, $b);
	return;
}

=pod

=item remove_key_command(PGDATA)

Remove every cluster_key_command line of postgresql.conf.

=item config_has_key_command(PGDATA)

Whether postgresql.conf or postgresql.auto.conf sets cluster_key_command.

=cut

sub remove_key_command
{
	my ($pgdata) = @_;
	my $conf = "$pgdata/postgresql.conf";
	my $text = PostgreSQL::Test::Utils::slurp_file($conf);
	$text =~ s/^\s*cluster_key_command\s*=.*\n//mg;
	open(my $fh, '>', $conf) or croak "could not write \"$conf\": $!";
	print $fh $text or croak "could not write \"$conf\": $!";
	close $fh or croak "could not write \"$conf\": $!";
	return;
}

sub config_has_key_command
{
	my ($pgdata) = @_;
	for my $f ('postgresql.conf', 'postgresql.auto.conf')
	{
		next unless -f "$pgdata/$f";
		return 1
		  if PostgreSQL::Test::Utils::slurp_file("$pgdata/$f") =~
		  /^\s*cluster_key_command\s*=/m;
	}
	return 0;
}

=pod

=item pg_dumps(NODE, DBS, [exclude_data => [TABLE, ...]])

pg_dump (with a fixed restrict key) of each database named in the array
ref DBS on the running NODE, without the rows of the tables named in
exclude_data: { database => dump text }.  Dies when pg_dump fails.

=cut

sub pg_dumps
{
	my ($node, $dbs, %opt) = @_;
	my %d;
	for my $db (@$dbs)
	{
		my ($rc, $out, $err) = run_cmd(
			[
				'pg_dump', '--restrict-key=fixed',
				(map { "--exclude-table-data=$_" } @{ $opt{exclude_data} // [] }),
				'-h', $node->host, '-p', $node->port, '-d', $db
			]);
		die 'pg_dump ' . $node->name . " $db failed: $err" if $rc != 0;
		$d{$db} = $out;
	}
	return \%d;
}

=pod

=item check_queries(NAME, ...)

[NAME, SQL] pairs of the queries the preload tests compare between nodes,
by name, for the objects both build: pgbench's tables, the table t, the
unlogged table ul (two btree indexes), the TOAST-ed table toasty and the
sequence seq.  Dies on an unknown name.

=cut

my %CHECK_QUERIES = (
	'pgbench_accounts' => q{SELECT count(*), sum(abalance),
		md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid))
	  FROM pgbench_accounts},
	'pgbench_branches and pgbench_tellers' =>
	  q{SELECT (SELECT string_agg(bid || ':' || bbalance, ',' ORDER BY bid)
			  FROM pgbench_branches),
			 (SELECT md5(string_agg(tid || ':' || tbalance, ',' ORDER BY tid))
			  FROM pgbench_tellers)},
	'pgbench_history (but mtime)' =>
	  q{SELECT count(*), md5(string_agg(concat_ws(':', tid, bid, aid, delta),
		',' ORDER BY tid, bid, aid, delta)) FROM pgbench_history},
	'table t' =>
	  q{SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM t},
	'table t through its index' =>
	  q{SET enable_seqscan = off; SET enable_bitmapscan = off;
	  SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM t WHERE id > 0},
	'unlogged table ul' =>
	  q{SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM ul},
	'unlogged table ul through its indexes' =>
	  q{SET enable_seqscan = off; SET enable_bitmapscan = off;
	  SELECT count(*), md5(string_agg(v, ',' ORDER BY v)) FROM ul WHERE v > '';
	  SELECT count(*), sum(id) FROM ul WHERE id > 0},
	'TOAST-ed values' => q{SELECT count(*), sum(length(body)),
		md5(string_agg(md5(body), ',' ORDER BY id)) FROM toasty},
	'sequence' => q{SELECT last_value, is_called FROM seq},);

sub check_queries
{
	return map {
		croak "no check query \"$_\"" unless exists $CHECK_QUERIES{$_};
		[ $_, $CHECK_QUERIES{$_} ]
	} @_;
}

=pod

=item amcheck(NODE, DB)

amcheck in database DB of the running NODE (the extension must exist):
bt_index_check with heapallindexed on every valid btree index, and
verify_heapam on every table, materialized view and TOAST table (not
temporary ones).  Returns (btree psql exit, number of indexes checked,
btree stderr, heap psql exit, heap findings (empty when none), heap
stderr).

=cut

sub amcheck
{
	my ($node, $db) = @_;
	my @btree = $node->psql($db, q{
		SELECT count(bt_index_check(c.oid, true))
		  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		  JOIN pg_am am ON am.oid = c.relam
		 WHERE am.amname = 'btree' AND i.indisvalid AND c.relpersistence <> 't'});
	my @heap = $node->psql($db, q{
		SELECT c.oid::regclass, v.blkno, v.offnum, v.msg
		  FROM pg_class c CROSS JOIN LATERAL verify_heapam(c.oid) v
		 WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't'});
	return (@btree, @heap);
}

=pod

=item query_results(NODE, DB, QUERIES)

Run the queries of the array ref QUERIES ([NAME, SQL] pairs; SQL may hold
SET statements before its SELECTs) on the running NODE in database DB, in
one psql session with RESET ALL after each: { NAME => output, without
trailing newlines }.  Dies when psql fails or a query's output is missing.

=cut

sub query_results
{
	my ($node, $db, $queries) = @_;
	my $sql = join("\n",
		map { "\\echo ###$_\n$queries->[$_][1];\nRESET ALL;" } 0 .. $#$queries);
	my @parts = split /^###(\d+)\n?/m, $node->safe_psql($db, $sql);
	shift @parts;
	my %by_index = @parts;
	my %r;
	for my $i (0 .. $#$queries)
	{
		my $v = $by_index{$i};
		die "query \"$queries->[$i][0]\" on $db: no output" unless defined $v;
		$v =~ s/\n+\z//;
		$r{ $queries->[$i][0] } = $v;
	}
	return \%r;
}

=pod

=item pgbench_invariant(NODE, DB)

pgbench's own invariant in database DB of the running NODE: "t|N" when
the balances of pgbench_accounts, pgbench_tellers and pgbench_branches each
sum to the deltas of pgbench_history, whose N rows are one per transaction.

=cut

sub pgbench_invariant
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, q{
		SELECT (SELECT sum(abalance) FROM pgbench_accounts)
			 = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
		   AND (SELECT sum(tbalance) FROM pgbench_tellers)
			 = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
		   AND (SELECT sum(bbalance) FROM pgbench_branches)
			 = (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
		  (SELECT count(*) FROM pgbench_history)});
}

=pod

=item first_difference(EXPECTED, GOT)

The first line where two texts (dumps, listings) differ, with its number,
as "line N:\n- expected\n+ got" ('(end)' past the end of one of them);
'no difference' when they are equal.  For test diagnostics.

=cut

sub first_difference
{
	my ($x, $y) = @_;
	my @x = split /\n/, $x;
	my @y = split /\n/, $y;
	for my $i (0 .. ($#x > $#y ? $#x : $#y))
	{
		my ($p, $q) = ($x[$i] // '(end)', $y[$i] // '(end)');
		return 'line ' . ($i + 1) . ":\n- $p\n+ $q" if $p ne $q;
	}
	return 'no difference';
}

=pod

=back

=cut

1;
