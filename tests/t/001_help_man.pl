#!/usr/bin/perl
#
# 001_help_man.pl
#	  Each tool's --help and its man page must agree.
#
# For every tool this test:
#  1. runs "TOOL --help" and extracts the Usage lines and every option
#     (short and long spelling and argument name) from it;
#  2. reads man/man1/TOOL.1, turns its roff into plain text line by line
#     and extracts the SYNOPSIS lines and the tags of the .TP paragraphs of
#     the OPTIONS section;
#  3. asserts that the synopses are the same (whitespace and roff escapes
#     normalised) and that the option sets are identical in both directions
#     and in the same order;
#  4. checks that the page has the usual sections and formats without
#     groff warnings, that -? prints the same as --help, that "TOOL -V" (and
#     --version) names the package and a version, and that an unknown option
#     exits 1 with the usual "Try ... --help" hint.
#
# The tools are taken from PATH (the Makefile's tap target puts bin/ first);
# the man pages from $TOP (the tree top; default: the current directory).

use strict;
use warnings;

use File::Spec;
use IPC::Run ();
use Test::More;

my @TOOLS = qw(pg_alterckey pg_encrypt_cluster pg_verify_cryptokeys);
my $TOP = $ENV{TOP} // File::Spec->curdir;

# ---- running programs ----

# Run a command with stdin from /dev/null; return (exit status, stdout,
# stderr).  Exit status is -1 when the program could not be started and
# 128+N when it was killed by signal N.
sub run_command
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
		1;
	};
	return (-1, '', $@) unless $ok;
	my $status = $?;
	my $rc = ($status & 127) ? 128 + ($status & 127) : $status >> 8;
	return ($rc, $out, $err);
}

# ---- the --help text ----

sub squeeze
{
	my ($s) = @_;
	$s =~ s/\s+/ /g;
	$s =~ s/^ | $//g;
	return $s;
}

# The Usage lines: the lines after "Usage:" up to the first blank line.
sub help_usage
{
	my ($help) = @_;
	my @usage;
	my $in = 0;
	for my $line (split /\n/, $help)
	{
		if (!$in)
		{
			$in = 1 if $line =~ /^Usage:\s*$/;
			next;
		}
		last if $line =~ /^\s*$/;
		push @usage, squeeze($line);
	}
	return @usage;
}

# The option specs of the "Options:" block: lines indented by at most eight
# columns that start with "-" or "[-", up to the column where the
# description starts (two or more spaces).  Deeper indented lines continue
# a description.
sub help_option_specs
{
	my ($help) = @_;
	my @specs;
	my $in = 0;
	for my $line (split /\n/, $help)
	{
		if (!$in)
		{
			$in = 1 if $line =~ /^Options:\s*$/;
			next;
		}
		last if $line =~ /^\s*$/;
		next unless $line =~ /^\s{0,8}(\[?-.*)$/;
		my $spec = $1;
		$spec =~ s/\s{2,}.*$//;
		push @specs, $spec;
	}
	return @specs;
}

# ---- options, in a canonical form ----

# Parse one option spec as --help or a man page writes it, e.g.
#   "[-D, --pgdata=]DATADIR"           (--help: the option itself optional)
#   "-D DATADIR, --pgdata=DATADIR"     (man page)
#   "-t, --timeout=SECS"  "--update-config"  "-?, --help"
# into "SHORT LONG=ARG" with the absent parts left out, e.g.
# "-D --pgdata=DATADIR", "-t --timeout=SECS", "--update-config",
# "-? --help".  Returns (canonical, undef) or (undef, error text).
sub canonical_option
{
	my ($spec) = @_;
	my $s = squeeze($spec);
	my $trailing_arg;

	# "[-D, --pgdata=]DATADIR": the argument belongs to every spelling.
	if ($s =~ /^\[(.*)\](\S+)$/)
	{
		($s, $trailing_arg) = ($1, $2);
	}

	my ($short, $long, @args);
	for my $part (split /\s*,\s*/, $s)
	{
		if ($part =~ /^(-[^-\s])(?:\s+(\S+))?$/)
		{
			return (undef, "two short spellings in \"$spec\"") if defined $short;
			$short = $1;
			push @args, $2 if defined $2;
		}
		elsif ($part =~ /^(--[A-Za-z0-9][-A-Za-z0-9_]*)(?:=(\S*)|\[=(\S+)\])?$/)
		{
			return (undef, "two long spellings in \"$spec\"") if defined $long;
			$long = $1;
			my $arg = defined $2 ? $2 : $3;
			push @args, $arg if defined $arg && $arg ne '';
			if (defined $2 && $2 eq '' && !defined $trailing_arg)
			{
				return (undef, "\"=\" without an argument in \"$spec\"");
			}
		}
		else
		{
			return (undef, "cannot parse \"$part\" in option \"$spec\"");
		}
	}
	push @args, $trailing_arg if defined $trailing_arg;
	return (undef, "no option in \"$spec\"")
	  unless defined $short || defined $long;

	my %seen = map { $_ => 1 } @args;
	return (undef, "different argument names in \"$spec\"")
	  if keys %seen > 1;

	my $canon = join ' ', grep { defined } $short, $long;
	$canon .= '=' . $args[0] if @args;
	return ($canon, undef);
}

# ---- roff ----

my %ROFF_CHAR = (
	'aq' => "'", 'dq' => '"', 'lq' => '"', 'rq' => '"', 'oq' => "'",
	'cq' => "'", 'hy' => '-', 'en' => '-', 'em' => '--', 'mi' => '-',
	'bu' => '*', 'ti' => '~', 'ha' => '^', 'rs' => '\\', 'sl' => '/',
	'at' => '@', 'sh' => '#', 'Do' => '$', 'ga' => '`', 'lB' => '[',
	'rB' => ']', 'lC' => '{', 'rC' => '}', 'la' => '<', 'ra' => '>',
	'pc' => '.', 'co' => '(c)', 'tm' => '(tm)', 'ba' => '|', 'or' => '|',
	'Fo' => '<<', 'Fc' => '>>',
);

# Plain text of roff inline escapes.
sub roff_unescape
{
	my ($s) = @_;
	my $out = '';
	while ($s =~ /\G([^\\]+|\\(.))/gcs)
	{
		if (!defined $2)
		{
			$out .= $1;
			next;
		}
		my $e = $2;
		if ($e eq 'f')
		{
			# font: \fB \f(BI \f[BI]
			$s =~ /\G(?:\(..|\[[^\]]*\]|.)/gc;
		}
		elsif ($e eq '(')
		{
			$s =~ /\G(..)/gc;
			$out .= $ROFF_CHAR{$1} // '';
		}
		elsif ($e eq '[')
		{
			$s =~ /\G([^\]]*)\]/gc;
			$out .= $ROFF_CHAR{$1} // '';
		}
		elsif ($e eq '*')
		{
			# predefined strings: \*(lq \*[R] \*R
			my $name = '';
			if    ($s =~ /\G\(([^\n]{2})/gc) { $name = $1 }
			elsif ($s =~ /\G\[([^\]]*)\]/gc) { $name = $1 }
			elsif ($s =~ /\G(.)/gc)          { $name = $1 }
			$out .= $ROFF_CHAR{$name} // '';
		}
		elsif ($e eq 's')
		{
			# size: \s0 \s-1 \s+2 \s[10]
			$s =~ /\G(?:[-+]?\d|\[[^\]]*\]|\([-+]?\d\d)/gc;
		}
		elsif ($e eq '"')
		{
			last;    # comment to end of line
		}
		elsif ($e eq '-')             { $out .= '-' }
		elsif ($e eq 'e' || $e eq '\\') { $out .= '\\' }
		elsif ($e eq ' ' || $e eq '~' || $e eq '0') { $out .= ' ' }
		elsif ($e eq '.')             { $out .= '.' }
		elsif ($e eq "'")             { $out .= "'" }
		elsif ($e eq '`')             { $out .= '`' }
		elsif ($e eq 'c')             { $out .= "\0" }   # no-space join
		else
		{
			# \& \| \^ \, \/ \% \: and the like: nothing
		}
	}
	return $out;
}

# Split the arguments of a macro line as roff does ("..." quotes, "" a
# literal quote inside them).
sub roff_args
{
	my ($s) = @_;
	my @args;
	while (1)
	{
		$s =~ s/^[ \t]+//;
		last if $s eq '' || $s =~ /^\\"/;
		if ($s =~ s/^"((?:[^"]|"")*)(?:"|$)//)
		{
			(my $arg = $1) =~ s/""/"/g;
			push @args, $arg;
		}
		elsif ($s =~ s/^((?:\\.|[^ \t\\])+)//)
		{
			push @args, $1;
		}
		else
		{
			push @args, $s;    # a stray backslash at the end
			last;
		}
	}
	return @args;
}

# Classify one roff source line: returns ('text', plain text) for a line
# that produces text (ordinary lines and font macros), ('break', macro) for
# a macro that ends a line or paragraph, ('other', macro) for the rest,
# ('comment') for comments and empty requests.
sub roff_line
{
	my ($line) = @_;
	return ('break', 'blank') if $line =~ /^\s*$/;
	return ('comment')
	  if $line =~ /^[.']\s*(?:\\".*)?$/ || $line =~ /^\\"/;
	if ($line =~ /^[.']\s*(\S+)\s*(.*)$/)
	{
		my ($macro, $rest) = ($1, $2);
		my @args = roff_args($rest);
		if ($macro =~ /^(?:B|I|SB|SM)$/)
		{
			return ('text', roff_unescape(join ' ', @args));
		}
		if ($macro =~ /^(?:BR|RB|IR|RI|BI|IB)$/)
		{
			return ('text', join '', map { roff_unescape($_) } @args);
		}
		if ($macro eq 'OP')
		{
			# groff_man(7) option synopsis: .OP -D DATADIR is "[-D DATADIR]"
			return ('text',
				'[' . join(' ', map { roff_unescape($_) } @args) . ']');
		}
		if ($macro =~ /^(?:br|sp|PP|P|LP|TP|IP|HP|SH|SS|nf|fi|EX|EE|RS|RE|SY|YS|TH)$/)
		{
			return ('break', $macro, @args);
		}
		return ('other', $macro, @args);
	}
	return ('text', roff_unescape($line));
}

# Join text pieces as filling does: with a space, except after \c.
sub roff_join
{
	my (@pieces) = @_;
	my $s = '';
	for my $p (@pieces)
	{
		if ($s eq '' || $s =~ s/\0$//) { $s .= $p }
		else                           { $s .= ' ' . $p }
	}
	$s =~ s/\0//g;
	return squeeze($s);
}

# Sections of a man page: { NAME => [source lines], ... }, with .TH's
# arguments under "_TH".
sub man_sections
{
	my ($src) = @_;
	my %sec;
	my $cur;
	my @lines = split /\n/, $src;
	for my $line (@lines)
	{
		if ($line =~ /^[.']\s*TH\s+(.*)$/)
		{
			$sec{_TH} = [ roff_args($1) ];
			next;
		}
		if ($line =~ /^[.']\s*SH\s*(.*)$/)
		{
			$cur = squeeze(roff_unescape(join ' ', roff_args($1)));
			$sec{$cur} //= [];
			next;
		}
		push @{ $sec{$cur} }, $line if defined $cur;
	}
	return \%sec;
}

# The SYNOPSIS lines: text between line-breaking requests, filled.
sub man_synopsis
{
	my ($lines) = @_;
	my (@syn, @cur);
	for my $line (@$lines, '.br')
	{
		my ($kind, $text, @args) = roff_line($line);
		next if $kind eq 'comment' || $kind eq 'other';
		if ($kind eq 'text')
		{
			push @cur, $text;
			next;
		}
		my $joined = roff_join(@cur);
		push @syn, $joined if $joined ne '';
		@cur = ();
		# .SY name starts a synopsis with the command name
		push @cur, map { roff_unescape($_) } @args if $text eq 'SY';
	}
	return @syn;
}

# The tags of the .TP paragraphs of OPTIONS (the line after each .TP,
# skipping comments and .PD requests).
sub man_option_tags
{
	my ($lines) = @_;
	my @tags;
	my $want_tag = 0;
	for my $line (@$lines)
	{
		my ($kind, $what) = roff_line($line);
		next if $kind eq 'comment';
		if ($want_tag)
		{
			next if $kind eq 'other' && $what eq 'PD';
			# a tag that is not text (e.g. another request) cannot parse
			push @tags, $kind eq 'text' ? squeeze($what) : $line;
			$want_tag = 0;
			next;
		}
		$want_tag = 1 if $kind eq 'break' && $what eq 'TP';
	}
	return @tags;
}

# ---- the tests ----

for my $tool (@TOOLS)
{
	my $manfile = File::Spec->catfile($TOP, 'man', 'man1', "$tool.1");

	# --help
	my ($rc, $help, $err) = run_command($tool, '--help');
	is($rc, 0, "$tool --help exits 0");
	is($err, '', "$tool --help writes nothing to stderr");
	my @help_usage = help_usage($help);
	ok(@help_usage > 0, "$tool --help has Usage lines");
	my @help_opts;
	for my $spec (help_option_specs($help))
	{
		my ($canon, $why) = canonical_option($spec);
		ok(defined $canon, "$tool --help option \"$spec\" parses")
		  or diag($why);
		push @help_opts, $canon if defined $canon;
	}
	ok(@help_opts > 0, "$tool --help lists options");
	ok((grep { $_ eq '-V --version' } @help_opts),
		"$tool --help lists -V, --version");
	ok((grep { $_ eq '-? --help' } @help_opts), "$tool --help lists -?, --help");

	# -? is --help
	my ($qrc, $qhelp) = run_command($tool, '-?');
	is($qrc, 0, "$tool -? exits 0");
	is($qhelp, $help, "$tool -? prints the --help text");

	# the man page
	my $src;
	if (open(my $fh, '<', $manfile))
	{
		local $/;
		$src = <$fh>;
		close $fh;
	}
	ok(defined $src, "$manfile can be read") or diag("$!");
	$src //= '';
	my $sec = man_sections($src);

	my $th = $sec->{_TH} // [];
	is(uc($th->[0] // ''), uc($tool), "$tool.1: .TH names the tool");
	is($th->[1] // '', '1', "$tool.1: .TH section is 1");
	for my $name ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXIT STATUS',
		'ENVIRONMENT', 'FILES', 'NOTES', 'EXAMPLES', 'SEE ALSO')
	{
		ok(exists $sec->{$name}, "$tool.1 has section $name");
	}
	my ($name_line) = grep { $_ ne '' }
	  map { my ($k, $t) = roff_line($_); $k eq 'text' ? squeeze($t) : '' }
	  @{ $sec->{NAME} // [] };
	like($name_line // '', qr/^\Q$tool\E - \S/,
		"$tool.1: NAME is \"$tool - ...\"");

	# SYNOPSIS = Usage lines
	my @man_syn = man_synopsis($sec->{SYNOPSIS} // []);
	is_deeply(\@man_syn, \@help_usage,
		"$tool.1: SYNOPSIS equals the Usage lines of --help")
	  or diag("man page:\n  " . join("\n  ", @man_syn)
		  . "\n--help:\n  " . join("\n  ", @help_usage));

	# OPTIONS = options of --help, both ways, same order
	my @man_opts;
	for my $tag (man_option_tags($sec->{OPTIONS} // []))
	{
		my ($canon, $why) = canonical_option($tag);
		ok(defined $canon, "$tool.1: OPTIONS entry \"$tag\" parses")
		  or diag($why);
		push @man_opts, $canon if defined $canon;
	}
	my %in_man = map { $_ => 1 } @man_opts;
	my %in_help = map { $_ => 1 } @help_opts;
	my @missing = grep { !$in_man{$_} } @help_opts;
	my @extra = grep { !$in_help{$_} } @man_opts;
	is_deeply(\@missing, [],
		"$tool.1: OPTIONS documents every option of --help")
	  or diag("missing from the man page: @missing");
	is_deeply(\@extra, [], "$tool.1: OPTIONS has no option --help lacks")
	  or diag("not in --help: @extra");
	my %count;
	my @dups = grep { $count{$_}++ == 1 } @man_opts;
	is_deeply(\@dups, [], "$tool.1: OPTIONS lists each option once");
	is_deeply(\@man_opts, \@help_opts,
		"$tool.1: OPTIONS are in the order of --help")
	  or diag("man page: @man_opts\n--help: @help_opts");

	# the page formats cleanly
  SKIP:
	{
		my ($grc) = run_command('sh', '-c', 'command -v groff');
		skip 'groff not installed', 1 if $grc != 0;
		my ($frc, $fout, $ferr) =
		  run_command('groff', '-man', '-Tutf8', '-ww', '-z', $manfile);
		ok($frc == 0 && $ferr eq '', "$tool.1 formats without groff warnings")
		  or diag($ferr);
	}

	# -V
	my ($vrc, $vout, $verr) = run_command($tool, '-V');
	is($vrc, 0, "$tool -V exits 0");
	like($vout, qr/^\Q$tool\E \(pgcrypttools\) \d+\.\d+\.\d+$/m,
		"$tool -V prints name, package and version");
	my ($lrc, $lout) = run_command($tool, '--version');
	is($lout, $vout, "$tool --version prints the same as -V");

	# an unknown option
	my ($urc, $uout, $uerr) = run_command($tool, '--no-such-option');
	is($urc, 1, "$tool with an unknown option exits 1");
	like($uerr, qr/^Try "\Q$tool\E --help" for more information\.$/m,
		"$tool with an unknown option points to --help");
	is($uout, '', "$tool with an unknown option writes nothing to stdout");

	# one argument too many: DATADIR is given by -D and once more after
	# the options (pg_alterckey's two commands come first)
	my @cmds = $tool eq 'pg_alterckey' ? ('true', 'true') : ();
	my ($xrc, $xout, $xerr) =
	  run_command($tool, '-D', '/nonexistent', @cmds, 'surplus-arg');
	is($xrc, 1, "$tool with a surplus argument exits 1");
	like($xerr,
		qr/too many command-line arguments \(first is "surplus-arg"\)/,
		"$tool names the surplus argument");
	($xrc, $xout, $xerr) =
	  run_command($tool, @cmds, '/nonexistent-a', '/nonexistent-b');
	like($xerr,
		qr/too many command-line arguments \(first is "\/nonexistent-b"\)/,
		"$tool takes one DATADIR argument and names the second");
}

done_testing();
