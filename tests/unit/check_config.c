/*
 * check_config.c
 *	  Unit tests of config.c: reading postgresql.conf, postgresql.auto.conf
 *	  and their includes as the server does, and changing them.
 *
 * Owns: the config suite.  No server is needed; the manual cross-check
 * against a real PostgreSQL 15 server is described in the report of the
 * change that added this file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

/* ---- helpers ---- */

/* Write dir/rel (creating dir's sub-directories on the way) with mode. */
static void
put(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char		path[4096];
	char	   *slash;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash != NULL;
		 slash = strchr(slash + 1, '/'))
	{
		*slash = '\0';
		if (mkdir(path, 0700) != 0)
			ck_assert_msg(errno == EEXIST, "mkdir %s: %s", path,
						  strerror(errno));
		*slash = '/';
	}
	unit_write_file(path, text, strlen(text), mode);
}

/* The whole contents of dir/rel (malloc'd, NUL-terminated). */
static char *
slurp(const char *dir, const char *rel)
{
	char		path[4096];
	char	   *buf = NULL;
	size_t		len = 0;
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	for (;;)
	{
		ssize_t		n;

		buf = realloc(buf, len + 65536 + 1);
		ck_assert_ptr_nonnull(buf);
		n = read(fd, buf + len, 65536);
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		len += (size_t) n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static void
assert_file(const char *dir, const char *rel, const char *expect)
{
	char	   *text = slurp(dir, rel);

	ck_assert_msg(strcmp(text, expect) == 0,
				  "%s/%s is\n[%s]\nexpected\n[%s]", dir, rel, text, expect);
	free(text);
}

static mode_t
mode_of(const char *dir, const char *rel)
{
	char		path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Assert that name's value is expect (NULL: not set), set in dir/rel at
 * line (when rel is not NULL). */
static void
assert_get(const char *pgdata, const char *name, const char *expect,
		   const char *rel, int line)
{
	char	   *value = (char *) 1,
			   *file = (char *) 1;
	int			l = -1;
	pct_rc		rc;

	unit_capture_log();
	rc = pct_config_get(pgdata, name, &value, &file, &l);
	ck_assert_msg(rc == PCT_OK, "get %s: %s", name, unit_last_error());
	if (expect == NULL)
	{
		ck_assert_ptr_null(value);
		ck_assert_ptr_null(file);
		ck_assert_int_eq(l, 0);
		return;
	}
	ck_assert_ptr_nonnull(value);
	ck_assert_msg(strcmp(value, expect) == 0, "%s is [%s], expected [%s]",
				  name, value, expect);
	if (rel != NULL)
	{
		char		path[4096];

		snprintf(path, sizeof(path), "%s/%s", pgdata, rel);
		ck_assert_str_eq(file, path);
		ck_assert_int_eq(l, line);
	}
	free(value);
	free(file);
}

/* A copy of text with every "$PG" replaced by pgdata (malloc'd). */
static char *
expand_pg(const char *text, const char *pgdata)
{
	char	   *out = malloc(strlen(text) * (strlen(pgdata) + 1) + 1);
	char	   *o = out;

	ck_assert_ptr_nonnull(out);
	while (*text != '\0')
	{
		if (strncmp(text, "$PG", 3) == 0)
		{
			strcpy(o, pgdata);
			o += strlen(pgdata);
			text += 3;
		}
		else
			*o++ = *text++;
	}
	*o = '\0';
	return out;
}

/* Assert that reading fails with rc and the error message contains text
 * ("$PG" in it stands for pgdata). */
static void
assert_get_fails(const char *pgdata, pct_rc expect_rc, const char *text)
{
	char	   *value = NULL,
			   *file = NULL;
	int			line = 0;
	char	   *expect = expand_pg(text, pgdata);
	pct_rc		rc;

	unit_capture_log();
	rc = pct_config_get(pgdata, "cluster_name", &value, &file, &line);
	ck_assert_msg(rc == expect_rc, "rc %d (%s), expected %d", rc,
				  unit_last_error(), expect_rc);
	ck_assert_ptr_null(value);
	ck_assert_ptr_null(file);
	ck_assert_msg(strstr(unit_last_error(), expect) != NULL,
				  "error [%s] does not contain [%s]", unit_last_error(),
				  expect);
	free(expect);
}

/* Number of temporary files (".tmp.") left in dir. */
static int
count_tmp(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static void
set_ok(const char *pgdata, const char *name, const char *value)
{
	pct_rc		rc;

	unit_capture_log();
	rc = pct_config_set(pgdata, name, value);
	ck_assert_msg(rc == PCT_OK, "set %s: %s", name, unit_last_error());
}

static char *pg;

static void
setup(void)
{
	pct_set_sync(false);
	pg = unit_mkdtemp();
}

static void
teardown(void)
{
	unit_rmtree(pg);
	free(pg);
	pg = NULL;
	pct_set_log(NULL, NULL);
}

/* ---- reading ---- */

START_TEST(test_last_wins)
{
	put(pg, "postgresql.conf",
		"# comment\n"
		"cluster_name = 'one'\n"
		"  Cluster_Name 'two'   # trailing comment\n"
		"other = 5\n"
		"CLUSTER_NAME=three\n"
		"\n", 0600);
	assert_get(pg, "cluster_name", "three", "postgresql.conf", 5);
	assert_get(pg, "CLUSTER_name", "three", "postgresql.conf", 5);
	assert_get(pg, "other", "5", "postgresql.conf", 4);
	assert_get(pg, "missing", NULL, NULL, 0);
	/* an empty auto.conf changes nothing */
	put(pg, "postgresql.auto.conf", "", 0600);
	assert_get(pg, "cluster_name", "three", "postgresql.conf", 5);
}
END_TEST

START_TEST(test_relative_pgdata)
{
	char		cwd[4096];
	char	   *slash = strrchr(pg, '/');
	char		rel[4096];

	put(pg, "postgresql.conf", "cluster_name = 'x'\n", 0600);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	*slash = '\0';
	ck_assert_int_eq(chdir(pg), 0);
	snprintf(rel, sizeof(rel), "./%s/", slash + 1);
	*slash = '/';
	{
		char	   *value,
				   *file;
		int			line;

		ck_assert_int_eq(pct_config_get(rel, "cluster_name", &value, &file,
										&line), PCT_OK);
		ck_assert_int_eq(chdir(cwd), 0);
		ck_assert_str_eq(value, "x");
		snprintf(rel, sizeof(rel), "%s/postgresql.conf", pg);
		ck_assert_str_eq(file, rel);
		free(value);
		free(file);
	}
}
END_TEST

START_TEST(test_auto_wins)
{
	put(pg, "postgresql.conf", "cluster_name = 'main'\nwork_mem = 1MB\n",
		0600);
	put(pg, "postgresql.auto.conf",
		"# Do not edit this file manually!\n"
		"cluster_name = 'auto'\n", 0600);
	assert_get(pg, "cluster_name", "auto", "postgresql.auto.conf", 2);
	assert_get(pg, "work_mem", "1MB", "postgresql.conf", 2);
}
END_TEST

START_TEST(test_include_relative)
{
	char		text[8192];

	put(pg, "postgresql.conf",
		"cluster_name = 'main'\n"
		"include 'sub/a.conf'\n"
		"work_mem = '2MB'\n", 0600);
	put(pg, "sub/a.conf", "include = 'b.conf'\n", 0600);
	put(pg, "sub/b.conf", "\ncluster_name = 'from b'\n", 0600);
	assert_get(pg, "cluster_name", "from b", "sub/b.conf", 2);
	assert_get(pg, "work_mem", "2MB", "postgresql.conf", 3);

	/* "..", "." and "//" are resolved; an absolute name is used as is */
	put(pg, "sub/a.conf", "include '../other//./../sub/c.conf'\n", 0600);
	put(pg, "sub/c.conf", "cluster_name = 'from c'\n", 0600);
	assert_get(pg, "cluster_name", "from c", "sub/c.conf", 1);
	snprintf(text, sizeof(text), "INCLUDE '%s/sub/b.conf'\n", pg);
	put(pg, "sub/a.conf", text, 0600);
	assert_get(pg, "cluster_name", "from b", "sub/b.conf", 2);
	/* unquoted file name (not "c.conf": a qualified name is no value) */
	put(pg, "sub/a.conf", "include c-x.conf\n", 0600);
	put(pg, "sub/c-x.conf", "cluster_name = 'from c-x'\n", 0600);
	assert_get(pg, "cluster_name", "from c-x", "sub/c-x.conf", 1);
	/* a file included twice is read twice, as by the server */
	put(pg, "postgresql.conf",
		"include 'sub/c.conf'\ncluster_name = 'mid'\ninclude 'sub/c.conf'\n",
		0600);
	assert_get(pg, "cluster_name", "from c", "sub/c.conf", 1);
}
END_TEST

START_TEST(test_include_if_exists)
{
	put(pg, "postgresql.conf",
		"cluster_name = 'main'\n"
		"include_if_exists 'nope.conf'\n"
		"include_if_exists = 'missing/dir/x.conf'\n", 0600);
	assert_get(pg, "cluster_name", "main", "postgresql.conf", 1);
	put(pg, "yes.conf", "cluster_name = 'yes'\n", 0600);
	put(pg, "postgresql.conf",
		"cluster_name = 'main'\ninclude_if_exists 'yes.conf'\n", 0600);
	assert_get(pg, "cluster_name", "yes", "yes.conf", 1);
	/* postgresql.auto.conf is optional too */
	assert_get(pg, "cluster_name", "yes", "yes.conf", 1);
}
END_TEST

START_TEST(test_include_missing)
{
	put(pg, "postgresql.conf",
		"cluster_name = 'main'\ninclude 'nope.conf'\n", 0600);
	assert_get_fails(pg, PCT_ERR_SYS,
					 "could not open configuration file \"$PG/nope.conf\": "
					 "No such file or directory");
	ck_assert_msg(strstr(unit_all_log(), "line 2") != NULL,
				  "no line: %s", unit_all_log());

	/* in an included file, relative to that file */
	put(pg, "postgresql.conf", "include 'd/a.conf'\n", 0600);
	put(pg, "d/a.conf", "include 'nope.conf'\n", 0600);
	assert_get_fails(pg, PCT_ERR_SYS,
					 "could not open configuration file \"$PG/d/nope.conf\"");

	/* postgresql.conf itself must exist */
	{
		char		path[4096];

		snprintf(path, sizeof(path), "%s/postgresql.conf", pg);
		ck_assert_int_eq(unlink(path), 0);
	}
	assert_get_fails(pg, PCT_ERR_SYS,
					 "could not open configuration file \"$PG/postgresql.conf\"");

	/* empty names */
	put(pg, "postgresql.conf", "include ''\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT, "empty configuration file name");
	put(pg, "postgresql.conf", "include_dir ' '\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT, "empty configuration directory name");
	put(pg, "postgresql.conf", "include_dir 'nodir'\n", 0600);
	assert_get_fails(pg, PCT_ERR_SYS,
					 "could not open configuration directory \"$PG/nodir\"");
}
END_TEST

START_TEST(test_include_dir)
{
	char		path[4096];

	put(pg, "postgresql.conf",
		"cluster_name = 'main'\n"
		"include_dir 'conf.d'\n", 0600);
	put(pg, "conf.d/b.conf", "cluster_name = 'b'\nx = b\n", 0600);
	put(pg, "conf.d/a.conf", "cluster_name = 'a'\nx = a\ny = a\n", 0600);
	put(pg, "conf.d/B.conf", "y = B\nz = B\n", 0600);
	put(pg, "conf.d/10.conf", "z = 10\n", 0600);
	/* not read: hidden, wrong suffix, too short, a directory */
	put(pg, "conf.d/.hidden.conf", "w = hidden\n", 0600);
	put(pg, "conf.d/zz.conf~", "w = backup\n", 0600);
	put(pg, "conf.d/zz.conf.bak", "w = backup\n", 0600);
	put(pg, "conf.d/.conf", "w = short\n", 0600);
	put(pg, "conf.d/dir.conf/x.conf", "w = dir\n", 0600);
	/* a symbolic link to a file is read */
	put(pg, "elsewhere/target", "v = linked\n", 0600);
	snprintf(path, sizeof(path), "%s/conf.d/c.conf", pg);
	ck_assert_int_eq(symlink("../elsewhere/target", path), 0);

	/* C order: 10.conf B.conf a.conf b.conf c.conf */
	assert_get(pg, "cluster_name", "b", "conf.d/b.conf", 1);
	assert_get(pg, "x", "b", "conf.d/b.conf", 2);
	assert_get(pg, "y", "a", "conf.d/a.conf", 3);
	assert_get(pg, "z", "B", "conf.d/B.conf", 2);
	assert_get(pg, "w", NULL, NULL, 0);
	assert_get(pg, "v", "linked", "conf.d/c.conf", 1);

	/* an empty directory is fine; a later setting still wins */
	put(pg, "postgresql.conf",
		"include_dir 'conf.d'\ninclude_dir 'empty'\ncluster_name = last\n",
		0600);
	snprintf(path, sizeof(path), "%s/empty", pg);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	assert_get(pg, "cluster_name", "last", "postgresql.conf", 3);
}
END_TEST

START_TEST(test_depth)
{
	char		rel[64],
				text[64];
	int			i;

	/* postgresql.conf (depth 0) -> f1 ... f10 (depth 10): allowed */
	put(pg, "postgresql.conf", "include 'f1.conf'\n", 0600);
	for (i = 1; i < 10; i++)
	{
		snprintf(rel, sizeof(rel), "f%d.conf", i);
		snprintf(text, sizeof(text), "include 'f%d.conf'\n", i + 1);
		put(pg, rel, text, 0600);
	}
	put(pg, "f10.conf", "cluster_name = deep\n", 0600);
	assert_get(pg, "cluster_name", "deep", "f10.conf", 1);

	/* one more level is too deep */
	put(pg, "f10.conf", "include 'f11.conf'\n", 0600);
	put(pg, "f11.conf", "cluster_name = deeper\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT,
					 "could not open configuration file \"f11.conf\": "
					 "maximum nesting depth exceeded");

	/* a loop through two files ends at the depth limit */
	put(pg, "f1.conf", "include 'loop.conf'\n", 0600);
	put(pg, "loop.conf", "include 'f1.conf'\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT, "maximum nesting depth exceeded");

	/* a file including itself */
	put(pg, "postgresql.conf", "include 'postgresql.conf'\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT,
					 "configuration file recursion in \"$PG/postgresql.conf\"");
	put(pg, "postgresql.conf", "include 'sub/x.conf'\n", 0600);
	put(pg, "sub/x.conf", "include_dir '.'\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT,
					 "configuration file recursion in \"$PG/sub/x.conf\"");
}
END_TEST

START_TEST(test_values)
{
	put(pg, "postgresql.conf",
		"a = 'it''s'\n"
		"b = 'back\\\\slash'\n"
		"c = 'tab\\there\\nnl\\rcr\\bbs\\fff'\n"
		"d = '\\101\\1012\\0101x\\7'\n"
		"e = '\\q\\'\\ '\n"
		"f = 5min\n"
		"g = -1.5e3\n"
		"h = on\n"
		"i = some.value/with:colons-and_dash\n"
		"j.k = 12\n"
		"l 'nospace'\n"
		"m=''\n"
		"n = 0x1F\n"
		"o = '\xc3\xbcn\xc3\xaf" "code'\n"
		"p = 'a'''\n"
		"q = '''a'''\t# comment\r\n"
		"r = \xc3\xa9t\xc3\xa9\n"
		"s = .5\n"
		"t = +12kB\n"
		"u = ''''\n"
		"v = 'x # not a comment'   # a comment\n"
		"w = 'one\ttab and \"double\" quotes'\n"
		"x = '\\'\n'\n"			/* \' then a new line: syntax error? no: */
		, 0600);
	/* the last line is a syntax error: check it, then drop it */
	assert_get_fails(pg, PCT_ERR_FORMAT,
					 "syntax error in file \"$PG/postgresql.conf\" line 23, "
					 "near token \"'\"");
	{
		char	   *text = slurp(pg, "postgresql.conf");

		strstr(text, "\nx = ")[1] = '\0';
		put(pg, "postgresql.conf", text, 0600);
		free(text);
	}
	assert_get(pg, "a", "it's", NULL, 0);
	assert_get(pg, "b", "back\\slash", NULL, 0);
	assert_get(pg, "c", "tab\there\nnl\rcr\bbs\fff", NULL, 0);
	assert_get(pg, "d", "AA2\b1x\a", NULL, 0);
	assert_get(pg, "e", "q' ", NULL, 0);
	assert_get(pg, "f", "5min", NULL, 0);
	assert_get(pg, "g", "-1.5e3", NULL, 0);
	assert_get(pg, "h", "on", NULL, 0);
	assert_get(pg, "i", "some.value/with:colons-and_dash", NULL, 0);
	assert_get(pg, "J.K", "12", "postgresql.conf", 10);
	assert_get(pg, "l", "nospace", NULL, 0);
	assert_get(pg, "m", "", "postgresql.conf", 12);
	assert_get(pg, "n", "0x1F", NULL, 0);
	assert_get(pg, "o", "\xc3\xbcn\xc3\xaf" "code", NULL, 0);
	assert_get(pg, "p", "a'", NULL, 0);
	assert_get(pg, "q", "'a'", "postgresql.conf", 16);
	assert_get(pg, "r", "\xc3\xa9t\xc3\xa9", NULL, 0);
	assert_get(pg, "s", ".5", NULL, 0);
	assert_get(pg, "t", "+12kB", NULL, 0);
	assert_get(pg, "u", "'", NULL, 0);
	assert_get(pg, "v", "x # not a comment", NULL, 0);
	assert_get(pg, "w", "one\ttab and \"double\" quotes", "postgresql.conf",
			   22);
}
END_TEST

START_TEST(test_syntax_errors)
{
	static const struct
	{
		const char *text;
		int			line;
		const char *near;		/* NULL: near end of line */
	}			cases[] =
	{
		{"a = b\n\nc = d e\n", 3, "e"},
		{"a = 1\nb =\n", 2, NULL},
		{"a = 1\nb =", 2, NULL},
		{"a\n", 1, NULL},
		{"a = 'unterminated\n", 1, "'"},
		{"a = 'line\\\nbreak'\n", 1, "'"},
		{"a b c\n", 1, "c"},
		{"= 5\n", 1, "="},
		{"5 = 5\n", 1, "5"},
		{"'a' = 5\n", 1, "'a'"},
		{"a = /path\n", 1, "/"},
		{"x.y.z = 1\n", 1, "x.y.z"},
		{"a = b.c\n", 1, "b.c"},
		{"a-b = 1\n", 1, "a-b"},
		{"a = 1e10\n", 1, "10"},
		{"a = 'x' # ok\nb = 'y' 'z'\n", 2, "'z'"},
		{"a = = 1\n", 1, "="},
		{"a = \"dq\"\n", 1, "\""},
		{"a = 1 2\n", 1, "2"},
		{"a = -\n", 1, "-"},
		{"a = 12ab3\n", 1, "3"},
		{"a = 'x'\fb\n", 1, "\f"},
	};
	size_t		i;
	char		fmt[512];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		put(pg, "postgresql.conf", cases[i].text, 0600);
		if (cases[i].near != NULL)
			snprintf(fmt, sizeof(fmt),
					 "syntax error in file \"$PG/postgresql.conf\" line %d, "
					 "near token \"%s\"", cases[i].line, cases[i].near);
		else
			snprintf(fmt, sizeof(fmt),
					 "syntax error in file \"$PG/postgresql.conf\" line %d, "
					 "near end of line", cases[i].line);
		assert_get_fails(pg, PCT_ERR_FORMAT, fmt);
	}

	/* in an included file, and in postgresql.auto.conf */
	put(pg, "postgresql.conf", "a = 1\ninclude 'inc.conf'\n", 0600);
	put(pg, "inc.conf", "\n\nfoo bar baz\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT,
					 "syntax error in file \"$PG/inc.conf\" line 3, "
					 "near token \"baz\"");
	put(pg, "inc.conf", "\n", 0600);
	put(pg, "postgresql.auto.conf", "cluster_name = 'x' y\n", 0600);
	assert_get_fails(pg, PCT_ERR_FORMAT,
					 "syntax error in file \"$PG/postgresql.auto.conf\" line 1, "
					 "near token \"y\"");

	/* nothing is written when a file cannot be read */
	ck_assert_int_eq(pct_config_set(pg, "cluster_name", "z"), PCT_ERR_FORMAT);
	assert_file(pg, "postgresql.conf", "a = 1\ninclude 'inc.conf'\n");
	assert_file(pg, "postgresql.auto.conf", "cluster_name = 'x' y\n");
}
END_TEST

START_TEST(test_long_lines)
{
	size_t		n = 100 * 1024;
	char	   *text = malloc(n + 64);
	char	   *value = malloc(n + 1);
	size_t		i;

	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(value);
	for (i = 0; i < n; i++)
		value[i] = (char) ('a' + i % 26);
	value[n] = '\0';
	snprintf(text, n + 64, "x = 1\nlong = '%s'\ny = 2\n", value);
	put(pg, "postgresql.conf", text, 0600);
	assert_get(pg, "long", value, "postgresql.conf", 2);
	assert_get(pg, "y", "2", "postgresql.conf", 3);
	/* and unquoted */
	snprintf(text, n + 64, "long %s\n", value);
	put(pg, "postgresql.conf", text, 0600);
	assert_get(pg, "long", value, "postgresql.conf", 1);
	free(text);
	free(value);
}
END_TEST

/* ---- quoting ---- */

START_TEST(test_quote)
{
	static const char *const cases[][2] = {
		{"", "''"},
		{"abc", "'abc'"},
		{"it's", "'it''s'"},
		{"a\\b", "'a\\\\b'"},
		{"'\\'", "'''\\\\'''"},
		{"%d %p %%", "'%d %p %%'"},
		{"tab\there", "'tab\there'"},
		{"two\nlines\r", "'two\\nlines\\r'"},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char	   *q = pct_config_quote(cases[i][0]);

		ck_assert_ptr_nonnull(q);
		ck_assert_str_eq(q, cases[i][1]);
		free(q);
	}
}
END_TEST

/* ---- changing ---- */

START_TEST(test_set_replace_in_include)
{
	static const char main_conf[] =
		"# main\n"
		"cluster_name = 'old main'   # overridden below\n"
		"include 'conf.d/extra.conf'\n"
		"work_mem = 4MB\n";

	put(pg, "postgresql.conf", main_conf, 0600);
	put(pg, "conf.d/extra.conf",
		"  # extra\n"
		"shared_buffers = 128MB\n"
		"\tCluster_Name = 'old' # the name\r\n"
		"max_connections=10", 0640);
	set_ok(pg, "cluster_name", "new 'value'");
	assert_file(pg, "postgresql.conf", main_conf);
	assert_file(pg, "conf.d/extra.conf",
				"  # extra\n"
				"shared_buffers = 128MB\n"
				"cluster_name = 'new ''value''' # the name\r\n"
				"max_connections=10");
	ck_assert_int_eq(mode_of(pg, "conf.d/extra.conf"), 0640);
	assert_get(pg, "cluster_name", "new 'value'", "conf.d/extra.conf", 3);

	/* the winner in postgresql.auto.conf is changed there */
	put(pg, "postgresql.auto.conf", "cluster_name = 'auto'\n", 0600);
	set_ok(pg, "cluster_name", "auto2");
	assert_file(pg, "postgresql.auto.conf", "cluster_name = 'auto2'\n");
	assert_file(pg, "postgresql.conf", main_conf);
	assert_get(pg, "cluster_name", "auto2", "postgresql.auto.conf", 1);

	/* a value at the end of a file without a newline */
	set_ok(pg, "max_connections", "20");
	assert_file(pg, "conf.d/extra.conf",
				"  # extra\n"
				"shared_buffers = 128MB\n"
				"cluster_name = 'new ''value''' # the name\r\n"
				"max_connections = '20'");
	assert_get(pg, "max_connections", "20", "conf.d/extra.conf", 4);

	/* a dotted custom name */
	put(pg, "postgresql.conf", "a = 1\nMy.Setting 'x'\nb = 2\n", 0600);
	set_ok(pg, "my.setting", "y");
	assert_file(pg, "postgresql.conf", "a = 1\nmy.setting = 'y'\nb = 2\n");
}
END_TEST

START_TEST(test_set_append)
{
	put(pg, "postgresql.conf", "a = 1", 0600);
	set_ok(pg, "cluster_name", "x");
	assert_file(pg, "postgresql.conf", "a = 1\ncluster_name = 'x'\n");
	assert_get(pg, "cluster_name", "x", "postgresql.conf", 2);

	set_ok(pg, "b", "it's");
	assert_file(pg, "postgresql.conf",
				"a = 1\ncluster_name = 'x'\nb = 'it''s'\n");

	/* appended to postgresql.conf even when includes exist */
	put(pg, "postgresql.conf", "include_if_exists 'x.conf'\n", 0600);
	put(pg, "postgresql.auto.conf", "other = 1\n", 0600);
	set_ok(pg, "c", "v");
	assert_file(pg, "postgresql.conf", "include_if_exists 'x.conf'\nc = 'v'\n");
	assert_file(pg, "postgresql.auto.conf", "other = 1\n");

	/* an empty file */
	put(pg, "postgresql.conf", "", 0600);
	set_ok(pg, "c", "");
	assert_file(pg, "postgresql.conf", "c = ''\n");
	assert_get(pg, "c", "", "postgresql.conf", 1);
}
END_TEST

START_TEST(test_set_remove)
{
	put(pg, "postgresql.conf",
		"a = 1\n"
		"cluster_name = 'one'\n"
		"include 'inc.conf'\n"
		"CLUSTER_NAME = 'two' # comment\n"
		"include 'inc.conf'\n"
		"b = 2\n", 0640);
	put(pg, "inc.conf", "cluster_name three\nc = 3\ncluster_name = 'four'",
		0604);
	put(pg, "postgresql.auto.conf", "# auto\ncluster_name = 'five'", 0600);
	put(pg, "untouched.conf", "cluster_name = 'never read'\n", 0600);
	assert_get(pg, "cluster_name", "five", "postgresql.auto.conf", 2);

	set_ok(pg, "cluster_name", NULL);
	assert_file(pg, "postgresql.conf",
				"a = 1\ninclude 'inc.conf'\ninclude 'inc.conf'\nb = 2\n");
	assert_file(pg, "inc.conf", "c = 3\n");
	assert_file(pg, "postgresql.auto.conf", "# auto\n");
	assert_file(pg, "untouched.conf", "cluster_name = 'never read'\n");
	ck_assert_int_eq(mode_of(pg, "postgresql.conf"), 0640);
	ck_assert_int_eq(mode_of(pg, "inc.conf"), 0604);
	assert_get(pg, "cluster_name", NULL, NULL, 0);
	assert_get(pg, "c", "3", "inc.conf", 1);

	/* removing what is not set changes nothing */
	set_ok(pg, "cluster_name", NULL);
	assert_file(pg, "postgresql.conf",
				"a = 1\ninclude 'inc.conf'\ninclude 'inc.conf'\nb = 2\n");
}
END_TEST

START_TEST(test_roundtrip)
{
	static const char *const values[] = {
		"", "plain", "it's", "''", "'", "\\", "\\\\'", "a\\nb", "\\101",
		"%d %p %R %%", " leading and trailing ", "\ttab\t", "new\nline",
		"cr\rx", "# not a comment", "x = 'y'",
		"/usr/bin/printf '%s' \"$(cat /x)\" | sed 's/\\\\/x/g' # done",
		"\xc3\xa9t\xc3\xa9 \x7f\x01",
	};
	char	   *big = malloc(70000);
	size_t		i;

	ck_assert_ptr_nonnull(big);
	for (i = 0; i + 1 < 70000; i++)
		big[i] = "ab'\\% \tc\"\nz#="[i % 14];
	big[69999] = '\0';

	put(pg, "postgresql.conf", "# head\nx = 1\n", 0600);
	put(pg, "postgresql.auto.conf", "# auto\n", 0600);
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
	{
		set_ok(pg, "cluster_name", values[i]);
		assert_get(pg, "cluster_name", values[i], "postgresql.conf", 3);
		set_ok(pg, "custom.key_command", values[i]);
		assert_get(pg, "custom.key_command", values[i], "postgresql.conf", 4);
		set_ok(pg, "x", values[i]);
		assert_get(pg, "x", values[i], "postgresql.conf", 2);
	}
	set_ok(pg, "cluster_name", big);
	assert_get(pg, "cluster_name", big, "postgresql.conf", 3);
	/* removed, then appended again */
	set_ok(pg, "cluster_name", NULL);
	set_ok(pg, "cluster_name", big);
	assert_get(pg, "cluster_name", big, "postgresql.conf", 4);
	assert_get(pg, "custom.key_command",
			   values[sizeof(values) / sizeof(values[0]) - 1], "postgresql.conf",
			   3);
	assert_file(pg, "postgresql.auto.conf", "# auto\n");
	free(big);
}
END_TEST

START_TEST(test_modes_and_links)
{
	char		path[4096];

	put(pg, "postgresql.conf", "include 'link.conf'\n", 0640);
	put(pg, "real/target.conf", "cluster_name = 'a'\n", 0604);
	snprintf(path, sizeof(path), "%s/link.conf", pg);
	ck_assert_int_eq(symlink("real/target.conf", path), 0);
	put(pg, "postgresql.auto.conf", "", 0644);

	set_ok(pg, "cluster_name", "b");
	/* the link is kept, its target rewritten with its mode */
	{
		struct stat st;

		ck_assert_int_eq(lstat(path, &st), 0);
		ck_assert(S_ISLNK(st.st_mode));
	}
	assert_file(pg, "real/target.conf", "cluster_name = 'b'\n");
	ck_assert_int_eq(mode_of(pg, "real/target.conf"), 0604);
	assert_get(pg, "cluster_name", "b", "link.conf", 1);

	set_ok(pg, "other", "1");
	ck_assert_int_eq(mode_of(pg, "postgresql.conf"), 0640);
	set_ok(pg, "cluster_name", NULL);
	ck_assert_int_eq(mode_of(pg, "real/target.conf"), 0604);
	ck_assert_int_eq(mode_of(pg, "postgresql.auto.conf"), 0644);
	/* no temporary file is left behind */
	{
		snprintf(path, sizeof(path), "%s/real", pg);
		ck_assert_int_eq(count_tmp(pg), 0);
		ck_assert_int_eq(count_tmp(path), 0);
	}
}
END_TEST

START_TEST(test_bad_arguments)
{
	static const char *const bad[] = {
		"", "1abc", "a b", "a.b.c", "a-b", "'a'", "include", "Include_Dir",
		"include_if_exists", "a=",
	};
	char	   *value,
			   *file;
	int			line;
	size_t		i;

	put(pg, "postgresql.conf", "a = 1\n", 0600);
	unit_capture_log();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		ck_assert_msg(pct_config_set(pg, bad[i], "x") == PCT_ERR_ARG,
					  "set accepted [%s]", bad[i]);
		ck_assert_msg(pct_config_get(pg, bad[i], &value, &file, &line) ==
					  PCT_ERR_ARG, "get accepted [%s]", bad[i]);
	}
	ck_assert_int_eq(pct_config_get(pg, NULL, &value, &file, &line),
					 PCT_ERR_ARG);
	ck_assert_int_eq(pct_config_get("", "a", &value, &file, &line),
					 PCT_ERR_ARG);
	assert_file(pg, "postgresql.conf", "a = 1\n");
	/* file and line may be NULL */
	ck_assert_int_eq(pct_config_get(pg, "a", &value, NULL, NULL), PCT_OK);
	ck_assert_str_eq(value, "1");
	free(value);
	/* valid unusual names */
	set_ok(pg, "_x9", "1");
	set_ok(pg, "a1.b_2", "1");
	assert_file(pg, "postgresql.conf", "a = 1\n_x9 = '1'\na1.b_2 = '1'\n");
}
END_TEST

static Suite *
config_suite(void)
{
	Suite	   *s = suite_create("config");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_last_wins);
	tcase_add_test(tc, test_relative_pgdata);
	tcase_add_test(tc, test_auto_wins);
	tcase_add_test(tc, test_include_relative);
	tcase_add_test(tc, test_include_if_exists);
	tcase_add_test(tc, test_include_missing);
	tcase_add_test(tc, test_include_dir);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_quote);
	tcase_add_test(tc, test_set_replace_in_include);
	tcase_add_test(tc, test_set_append);
	tcase_add_test(tc, test_set_remove);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_modes_and_links);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(config_suite)
