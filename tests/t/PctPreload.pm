
=pod

=head1 NAME

PctPreload - run PostgreSQL::Test::Cluster nodes on encrypted clusters
under the pgcrypttools test preload

=head1 SYNOPSIS

  use PostgreSQL::Test::Cluster;
  use PctTest;
  use PctPreload;

  my $node = PostgreSQL::Test::Cluster->new('enc');
  $node->init(allows_streaming => 1, extra => ['-k']);
  $node->start;
  # ... fill it ...

  # Stop, encrypt with pg_encrypt_cluster, and from now on start the
  # node under the preload.
  my $enc = PctPreload::encrypt_node($node, method => 'aes128');
  $node->start;
  $node->safe_psql('postgres', 'CHECKPOINT');
  $node->stop('immediate');
  $node->start;                     # crash recovery, still encrypted

  # A refusal: the start fails, the log says why.
  my ($ok, $log) = PctPreload::try_start($node);

  # Back to a plain cluster and the stock server.
  PctPreload::decrypt_node($node);
  $node->start;

=head1 DESCRIPTION

F<tests/preload/pct_preload.so> (see F<tests/preload/README.md>) makes the
stock PostgreSQL 15 server run on a cluster encrypted by
pg_encrypt_cluster.  This module starts nodes under it: a node is made
"encrypted" by reblessing it into B<PctPreload::Cluster>, a subclass of
PostgreSQL::Test::Cluster whose C<start> and C<restart> run pg_ctl with
C<LD_PRELOAD> set to the library.  Everything the server forks inherits
it; every other command of the node (psql, pg_basebackup, pg_ctl stop,
promote, reload) runs without it.  The library acts only inside server
processes, so a process that inherits C<LD_PRELOAD> anyway (an archive
command, the key command's shell) is not affected.

Nodes made later from an encrypted node (C<init_from_backup>, a cold copy)
are plain PostgreSQL::Test::Cluster objects: call C<enable> on them.  A
base backup (C<backup>, pg_basebackup) of a node running under the preload
holds pg_control in the stock 1300 layout with a mark that the preload
recognises; the node made from it becomes a normal encrypted cluster
(pg_control 1400) at its first start.  Until then pg_verify_cryptokeys
calls it "not encrypted".

Programs (pg_encrypt_cluster, pg_verify_cryptokeys) are found in PATH, as
the Makefile's tap target sets it; the library in C<$ENV{PCT_PRELOAD}>, or
else F<$ENV{TOP}/tests/preload/pct_preload.so>, which C<make tap> builds.

=head1 FUNCTIONS

=cut

package PctPreload;

use strict;
use warnings;

use Carp;
use File::Spec;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils ();

use PctTest;

=pod

=over

=item preload_path()

The absolute path of the library: C<$ENV{PCT_PRELOAD}>, else
F<$ENV{TOP}/tests/preload/pct_preload.so>.  Dies when it does not exist.

=cut

sub preload_path
{
	my $path = $ENV{PCT_PRELOAD};
	if (!defined $path || $path eq '')
	{
		croak 'neither PCT_PRELOAD nor TOP is set' unless defined $ENV{TOP};
		$path = "$ENV{TOP}/tests/preload/pct_preload.so";
	}
	$path = File::Spec->rel2abs($path);
	croak "the preload library \"$path\" does not exist (make preload)"
	  unless -f $path;
	return $path;
}

=pod

=item intercepts()

The names of the libc functions the library intercepts, in its own order
(e.g. C<open>, C<pread64>, C<__read_chk>), read from its
C<pct_preload_intercepts> string ("pct_preload intercepts: open open64
..."), which the smoke test checks against its dynamic symbol table.  A
guard test compares these with the calls a traced server makes on data
files.

=cut

sub intercepts
{
	my $bytes = PctTest::slurp_bytes(preload_path());
	my ($list) = $bytes =~ /pct_preload intercepts: ([0-9A-Za-z_ ]*)\0/
	  or croak 'no pct_preload_intercepts string in ' . preload_path();
	return split ' ', $list;
}

=pod

=item enable(NODE), disable(NODE), enabled(NODE)

C<enable> reblesses NODE into PctPreload::Cluster, so that its C<start>
and C<restart> run under the preload from now on; C<disable> gives it back
its own class.  Both return NODE.  C<enabled> tells whether NODE starts
under the preload.

=cut

sub enable
{
	my ($node) = @_;
	return $node if enabled($node);
	$node->{_pct_plain_class} = ref $node;
	bless $node, 'PctPreload::Cluster';
	return $node;
}

sub disable
{
	my ($node) = @_;
	return $node unless enabled($node);
	bless $node, delete $node->{_pct_plain_class};
	return $node;
}

sub enabled
{
	my ($node) = @_;
	return ref($node) eq 'PctPreload::Cluster';
}

=pod

=item start_encrypted(NODE, [start options])

C<enable> NODE and start it (options as for C<start>, e.g. C<fail_ok =E<gt>
1>); returns what C<start> returns.

=cut

sub start_encrypted
{
	my ($node, %opt) = @_;
	return enable($node)->start(%opt);
}

=pod

=item with_preload(CODE)

Run CODE with C<LD_PRELOAD> set to the library (for a server started some
other way, e.g. pg_ctl by hand); returns what CODE returns.

=cut

sub with_preload
{
	my ($code) = @_;
	local $ENV{LD_PRELOAD} = preload_path();
	return $code->();
}

=pod

=item try_start(NODE)

Start NODE (under the preload when it is enabled) expecting that it may
fail.  Returns (1 if it started, the server log written by this attempt).

=cut

sub try_start
{
	my ($node) = @_;
	my $offset = -s $node->logfile // 0;
	my $ok = $node->start(fail_ok => 1);
	my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile, $offset);
	return ($ok ? 1 : 0, $log);
}

=pod

=item encrypt_node(NODE, [kek => HEX, key_command => CMD, method => 'aes128'|'aes192'|'aes256', args => [...], enable => 1])

Stop NODE (fast mode, a clean shutdown) if it runs, then run
C<pg_encrypt_cluster -D DATADIR -c CMD -K METHOD ARGS...>.  C<kek>
defaults to C<PctTest::test_kek(NODE name)>, C<key_command> to
C<PctTest::kek_command(kek)>, C<method> to aes256; C<args> are more
options (e.g. C<['-N']>).  Dies unless it exits 0.  Unless C<enable> is
0, the node is then enabled (C<enable>).  Returns a hash ref: C<kek>,
C<key_command>, C<method>, C<stdout>, C<stderr>.

=cut

sub encrypt_node
{
	my ($node, %opt) = @_;
	my $kek = $opt{kek} // PctTest::test_kek($node->name);
	my $cmd = $opt{key_command} // PctTest::kek_command($kek);
	my $method = $opt{method} // 'aes256';
	croak "unknown method \"$method\"" unless $method =~ /^aes(128|192|256)$/;

	$node->stop if defined $node->{_pid};
	my ($rc, $out, $err) = PctTest::run_cmd(
		[
			'pg_encrypt_cluster', '-D', $node->data_dir, '-c', $cmd,
			'-K', $method, @{ $opt{args} // [] }
		]);
	croak "pg_encrypt_cluster of node \"" . $node->name
	  . "\" exited $rc:\n$out$err"
	  if $rc != 0;
	enable($node) unless defined $opt{enable} && !$opt{enable};
	return {
		kek => $kek,
		key_command => $cmd,
		method => $method,
		stdout => $out,
		stderr => $err
	};
}

=pod

=item decrypt_node(NODE, [args => [...]])

Stop NODE (fast) if it runs, run C<pg_encrypt_cluster --decrypt -D
DATADIR ARGS...> (the key command from the cluster's configuration), die
unless it exits 0, and C<disable> the node: it starts with the stock
server again.  Returns (stdout, stderr).

=cut

sub decrypt_node
{
	my ($node, %opt) = @_;
	$node->stop if defined $node->{_pid};
	my ($rc, $out, $err) = PctTest::run_cmd(
		[
			'pg_encrypt_cluster', '--decrypt', '-D', $node->data_dir,
			@{ $opt{args} // [] }
		]);
	croak "pg_encrypt_cluster --decrypt of node \"" . $node->name
	  . "\" exited $rc:\n$out$err"
	  if $rc != 0;
	disable($node);
	return ($out, $err);
}

=pod

=item verify_node(NODE)

Run C<pg_verify_cryptokeys -D DATADIR> on NODE; returns (exit status,
stdout, stderr).

=cut

sub verify_node
{
	my ($node) = @_;
	return PctTest::run_cmd([ 'pg_verify_cryptokeys', '-D', $node->data_dir ]);
}

=pod

=back

=head1 PctPreload::Cluster

A PostgreSQL::Test::Cluster whose C<start> and C<restart> run under the
preload, made by C<enable>.  C<promote> promotes with C<SELECT
pg_promote()> (waiting up to 60 seconds): the stock C<pg_ctl promote>
reads pg_control itself, finds version 1400 and stops with "control file
appears to be corrupt" (the library acts only in server processes).  All
other methods are inherited.

=cut

package PctPreload::Cluster;

use strict;
use warnings;

use parent -norequire, 'PostgreSQL::Test::Cluster';

sub start
{
	my ($self, @args) = @_;
	local $ENV{LD_PRELOAD} = PctPreload::preload_path();
	return $self->SUPER::start(@args);
}

sub restart
{
	my ($self, @args) = @_;
	local $ENV{LD_PRELOAD} = PctPreload::preload_path();
	return $self->SUPER::restart(@args);
}

sub promote
{
	my ($self) = @_;
	my $name = $self->name;
	print "### Promoting node \"$name\" with pg_promote()\n";
	my $r = $self->safe_psql('postgres', 'SELECT pg_promote(true, 60)');
	die "promotion of node \"$name\" failed" unless $r eq 't';
	return;
}

1;
