/*
 * check_filemap.c
 *	  Unit tests of lib/filemap.c: which files a bulk operation rewrites
 *	  (FORMAT sections 3 and 4) and the refusals of FORMAT 5.
 *
 * Owns: the file map suite.  Two cases:
 *	- "initdb": a real PostgreSQL 15 cluster (initdb -X, so pg_wal is a
 *	  link), started with pg_ctl on a Unix socket in a temporary directory
 *	  and filled by psql with an unlogged table and sequence, a tablespace
 *	  outside PGDATA (with a database in it), a second database; the server
 *	  is asked (pg_relation_filepath, relpersistence, in every database,
 *	  template0 included) which relation files exist, and the map must hold
 *	  exactly those main forks with the right unlogged flags, plus the
 *	  segments and WAL files made by hand, and none of the decoys (a
 *	  temporary relation's files, another cluster's PG_ directory, .history,
 *	  .backup, archive_status/...).  Then the refusals: hard links, odd
 *	  sizes, symbolic links.  initdb refuses root, so this case fails
 *	  (loudly) when the suite runs as root; `make check` runs it as an
 *	  unprivileged user.
 *	- "fake": hand-made directory trees for the name grammar, the order,
 *	  in-place tablespaces and every refusal.
 * Tests that change the shared cluster undo their change, so the suite also
 * passes with CK_FORK=no.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#define FMT(f, a) __attribute__((format(printf, f, a)))

#define SEG_SIZE	(16u * 1024 * 1024)
#define CATVERSION	202209061u

/* ---- helpers ---- */

/* snprintf into a PATH_MAX buffer, asserting it fits. */
static void FMT(2, 3)
pathf(char *buf, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && n < PATH_MAX, "path too long");
}

/* mkdir -p */
static void FMT(1, 2)
mkdirs(const char *fmt,...)
{
	char		path[PATH_MAX];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	for (char *p = path + 1; *p != '\0'; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		ck_assert_msg(mkdir(path, 0700) == 0 || errno == EEXIST,
					  "mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	ck_assert_msg(mkdir(path, 0700) == 0 || errno == EEXIST,
				  "mkdir %s: %s", path, strerror(errno));
}

/* A file of size bytes (sparse). */
static void FMT(2, 3)
mkfile(off_t size, const char *fmt,...)
{
	char		path[PATH_MAX];
	va_list		ap;
	int			fd;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_msg(ftruncate(fd, size) == 0, "ftruncate %s", path);
	ck_assert_int_eq(close(fd), 0);
}

static void FMT(2, 3)
mksymlink(const char *target, const char *fmt,...)
{
	char		path[PATH_MAX];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	ck_assert_msg(symlink(target, path) == 0, "symlink %s: %s", path,
				  strerror(errno));
}

static void FMT(1, 2)
rmfile(const char *fmt,...)
{
	char		path[PATH_MAX];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	ck_assert_msg(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
}

/* realpath() that must succeed, into a PATH_MAX buffer. */
static void
resolve(const char *path, char *out)
{
	ck_assert_msg(realpath(path, out) != NULL, "realpath %s: %s", path,
				  strerror(errno));
}

/* The path of a file of fm, in one of eight buffers used in turn. */
static const char *
fp(const pct_filemap *fm, const pct_file *f)
{
	static char bufs[8][PCT_MAXPATH];
	static unsigned next;

	return pct_file_path(fm, f, bufs[next++ % 8]);
}

/* The map cmp_key's WAL files belong to. */
static const pct_filemap *cmp_map;

/* The file of the map with this path, or NULL. */
static const pct_file *
find_file(const pct_filemap *fm, const char *path)
{
	for (size_t i = 0; i < fm->nfiles; i++)
		if (strcmp(fp(fm, &fm->files[i]), path) == 0)
			return &fm->files[i];
	return NULL;
}

static int
cmp_key(const pct_file *a, const pct_file *b)
{
	if (a->kind != b->kind)
		return a->kind == PCT_FILE_RELATION ? -1 : 1;
	if (a->kind == PCT_FILE_WAL)
	{
		char		x[PCT_MAXPATH],
					y[PCT_MAXPATH];

		/* the file names, which are in the same directory */
		return strcmp(pct_file_path(cmp_map, a, x), pct_file_path(cmp_map, b, y));
	}
	if (a->tablespace != b->tablespace)
		return a->tablespace < b->tablespace ? -1 : 1;
	if (a->database != b->database)
		return a->database < b->database ? -1 : 1;
	if (a->relfilenode != b->relfilenode)
		return a->relfilenode < b->relfilenode ? -1 : 1;
	if (a->segno != b->segno)
		return a->segno < b->segno ? -1 : 1;
	return 0;
}

/*
 * Invariants of every map: strictly sorted, paths absolute and unique,
 * sizes as on disk, totals the sums, no file of a skipped kind.
 */
static void
check_invariants(const pct_filemap *fm)
{
	uint64_t	rel = 0,
				wal = 0;

	cmp_map = fm;

	for (size_t i = 0; i < fm->nfiles; i++)
	{
		const pct_file *f = &fm->files[i];
		const char *base = strrchr(fp(fm, f), '/');
		struct stat st;

		ck_assert_msg(fp(fm, f)[0] == '/', "not absolute: %s", fp(fm, f));
		ck_assert_ptr_nonnull(base);
		base++;
		ck_assert_msg(strchr(base, '_') == NULL, "fork or temp file %s",
					  fp(fm, f));
		ck_assert_msg(base[0] != 't', "temporary relation %s", fp(fm, f));
		ck_assert_msg(lstat(fp(fm, f), &st) == 0, "lstat %s", fp(fm, f));
		ck_assert(S_ISREG(st.st_mode));
		ck_assert_uint_eq(st.st_nlink, 1);
		ck_assert_uint_eq((uint64_t) st.st_size, f->size);
		if (i > 0)
			ck_assert_msg(cmp_key(&fm->files[i - 1], f) < 0,
						  "not sorted: %s before %s", fp(fm, &fm->files[i - 1]),
						  fp(fm, f));
		if (f->kind == PCT_FILE_RELATION)
		{
			rel += f->size;
			ck_assert_uint_eq(f->size % 8192, 0);
		}
		else
		{
			wal += f->size;
			ck_assert(!f->unlogged);
			/* the name comes back from its numbers (lstat above) */
			ck_assert_int_eq(f->partial, strstr(fp(fm, f), ".partial") != NULL);
		}
	}
	for (size_t i = 0; i < fm->nfiles; i++)
		for (size_t j = i + 1; j < fm->nfiles && j < i + 2; j++)
			ck_assert_str_ne(fp(fm, &fm->files[i]), fp(fm, &fm->files[j]));
	ck_assert_uint_eq(fm->relation_bytes, rel);
	ck_assert_uint_eq(fm->wal_bytes, wal);
}

/* Control data as filemap.c needs it, for fake trees. */
static void
fake_ctl(pct_control *ctl)
{
	memset(ctl, 0, sizeof(*ctl));
	ctl->version = PCT_CONTROL_VERSION_STOCK;
	ctl->catalog_version = CATVERSION;
	ctl->state = PCT_DB_SHUTDOWNED;
	ctl->blcksz = 8192;
	ctl->relseg_size = 131072;
	ctl->xlog_blcksz = 8192;
	ctl->xlog_seg_size = SEG_SIZE;
}

/* Build expecting failure rc; the map must be empty afterwards. */
static void
build_fails(const char *pgdata, const pct_control *ctl, pct_rc want)
{
	pct_filemap fm;

	memset(&fm, 0x7f, sizeof(fm));
	unit_capture_log();
	ck_assert_int_eq(pct_filemap_build(pgdata, 15, ctl, &fm), want);
	ck_assert_ptr_null(fm.files);
	ck_assert_uint_eq(fm.nfiles, 0);
	ck_assert_uint_eq(fm.relation_bytes, 0);
	ck_assert_uint_eq(fm.wal_bytes, 0);
	ck_assert_msg(unit_last_error()[0] != '\0', "no error reported");
	pct_filemap_free(&fm);
}

/* The last error contains every one of the NULL-terminated strings. */
static void
error_has(const char *first,...)
{
	va_list		ap;
	const char *log = unit_all_log();

	va_start(ap, first);
	for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
		ck_assert_msg(strstr(log, s) != NULL, "\"%s\" not in: %s", s, log);
	va_end(ap);
}

/* ====================================================================
 * A real cluster
 * ==================================================================== */

static char *real_dir;			/* holds pgdata, wal, tsloc, sock, logs */
static char real_pgdata[PATH_MAX];	/* resolved */
static char real_ts[PATH_MAX];	/* tablespace location, resolved */
static char real_wal[PATH_MAX];	/* initdb -X directory, resolved */
static char real_error[2048];
static pct_control real_ctl;

/* What the server said: a relation file and its persistence. */
typedef struct expect_rel
{
	char	   *path;			/* resolved absolute path */
	uint32_t	ts,
				db,
				node,
				segno;
	bool		unlogged;
	bool		seen;
} expect_rel;

static expect_rel *real_expect;
static size_t real_nexpect;
/* Relative paths of one unlogged relation, one in the tablespace, one of
 * global/, from the server. */
static char real_unlogged_rel[PATH_MAX];
static char real_ts_rel[PATH_MAX];
static char real_global_rel[PATH_MAX];

static const char *
pg_bindir(void)
{
	const char *v = getenv("PG_BINDIR");

	return v ? v : "/usr/lib/postgresql/15/bin";
}

/*
 * Run a PostgreSQL program (LC_ALL=C); stdout to out (or the log), both
 * appended; stderr to log.  Exit status, or -1.  No ck_assert: also used by
 * the fixture.
 */
static int
run_pg(char *const argv[], const char *out, const char *log)
{
	char		prog[PATH_MAX];
	char	   *av[40];
	pid_t		pid;
	int			status;
	int			n;

	snprintf(prog, sizeof(prog), "%s/%s", pg_bindir(), argv[0]);
	av[0] = prog;
	for (n = 1; argv[n] != NULL && n < 39; n++)
		av[n] = argv[n];
	av[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
	{
		int			e = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int			o = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600) : e;

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		setenv("LC_ALL", "C", 1);
		unsetenv("PGDATA");
		unsetenv("PGHOST");
		unsetenv("PGPORT");
		unsetenv("PGOPTIONS");
		execv(prog, av);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char real_sock[PATH_MAX];
static char real_port[16];
static char real_log[PATH_MAX];

/* Run SQL through psql in a database; stdout (unaligned, tuples only,
 * space-separated) to out when not NULL.  Exit status. */
static int
psql(const char *db, const char *sql, const char *out)
{
	char	   *argv[] = {"psql", "-X", "-q", "-A", "-t", "-F", " ",
		"-v", "ON_ERROR_STOP=1", "-h", real_sock, "-p", real_port,
		"-U", "postgres", "-d", (char *) (uintptr_t) db,
		"-c", (char *) (uintptr_t) sql, NULL};

	return run_pg(argv, out, real_log);
}

/* Record a problem of the fixture (the first one wins). */
static void FMT(1, 2)
setup_error(const char *fmt,...)
{
	va_list		ap;

	if (real_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(real_error, sizeof(real_error), fmt, ap);
	va_end(ap);
}

/* vsnprintf into a PATH_MAX buffer for the fixture: a path that does not
 * fit is a setup error. */
static void FMT(2, 3)
spath(char *buf, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		setup_error("path too long: %.100s", buf);
}

/*
 * Split a relative relation path of the server into its tablespace,
 * database and relfilenode.
 */
static bool
parse_relpath(const char *rel, expect_rel *e)
{
	unsigned	a,
				b,
				c;
	int			n = 0;

	e->segno = 0;
	if (sscanf(rel, "global/%u%n", &a, &n) == 1 && rel[n] == '\0')
	{
		e->ts = 1664;
		e->db = 0;
		e->node = a;
		return true;
	}
	if (sscanf(rel, "base/%u/%u%n", &a, &b, &n) == 2 && rel[n] == '\0')
	{
		e->ts = 1663;
		e->db = a;
		e->node = b;
		return true;
	}
	if (sscanf(rel, "pg_tblspc/%u/PG_15_%*u/%u/%u%n", &a, &b, &c, &n) == 3 &&
		rel[n] == '\0')
	{
		e->ts = a;
		e->db = b;
		e->node = c;
		return true;
	}
	return false;
}

static int
cmp_expect(const void *a, const void *b)
{
	return strcmp(((const expect_rel *) a)->path,
				  ((const expect_rel *) b)->path);
}

/* Append e, with a copy of path, to the expected files. */
static bool
push_expect(expect_rel *e, const char *path)
{
	static size_t cap;

	if (real_nexpect == cap || real_expect == NULL)
	{
		size_t		ncap = cap < 256 ? 256 : 2 * cap;
		expect_rel *n = realloc(real_expect, ncap * sizeof(expect_rel));

		if (n == NULL)
		{
			setup_error("out of memory");
			return false;
		}
		real_expect = n;
		cap = ncap;
	}
	e->path = strdup(path);
	if (e->path == NULL)
	{
		setup_error("out of memory");
		return false;
	}
	real_expect[real_nexpect++] = *e;
	return true;
}

/* Add the server's answer (lines "relpath persistence") to the expected
 * files; shared catalogs come once per database, so duplicates are
 * dropped later. */
static void
load_expect(const char *outfile)
{
	FILE	   *f = fopen(outfile, "r");
	char		line[PATH_MAX + 16];

	if (f == NULL)
	{
		setup_error("open %s: %s", outfile, strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char		rel[PATH_MAX];
		char		abs[PATH_MAX];
		char		resolved[PATH_MAX];
		char		pers;
		expect_rel e;

		memset(&e, 0, sizeof(e));
		if (sscanf(line, "%4095s %c", rel, &pers) != 2 ||
			!parse_relpath(rel, &e))
		{
			setup_error("unexpected line from the server: %s", line);
			break;
		}
		spath(abs, "%s/%s", real_pgdata, rel);
		if (realpath(abs, resolved) == NULL)
		{
			/* Every relation with storage has a main fork file. */
			setup_error("relation file %s is missing: %s", abs,
						strerror(errno));
			break;
		}
		e.unlogged = pers == 'u';
		if (pers != 'p' && pers != 'u')
			setup_error("unexpected persistence %c of %s", pers, rel);
		if (!push_expect(&e, resolved))
			break;
	}
	fclose(f);
}

/* Add a segment made by hand: rel (relative) plus ".segno". */
static void
add_fake_segment(const char *rel, uint32_t segno, bool unlogged,
				 off_t size)
{
	char		path[PATH_MAX];
	char		resolved[PATH_MAX];
	expect_rel	e;
	int			fd;

	memset(&e, 0, sizeof(e));
	spath(path, "%s/%s.%u", real_pgdata, rel, segno);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, size) != 0 || close(fd) != 0 ||
		realpath(path, resolved) == NULL || !parse_relpath(rel, &e))
	{
		setup_error("could not make %s: %s", path, strerror(errno));
		return;
	}
	e.segno = segno;
	e.unlogged = unlogged;
	(void) push_expect(&e, resolved);
}

/* Read the control data filemap.c needs straight from pg_control. */
static void
load_control(void)
{
	char		path[PATH_MAX];
	uint8_t		buf[PCT_CONTROL_FILE_SIZE];
	int			fd;

#define U32(off) ((uint32_t) buf[off] | (uint32_t) buf[(off) + 1] << 8 | \
				  (uint32_t) buf[(off) + 2] << 16 | (uint32_t) buf[(off) + 3] << 24)
	spath(path, "%s/global/pg_control", real_pgdata);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf)) != (ssize_t) sizeof(buf))
	{
		setup_error("read %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	memset(&real_ctl, 0, sizeof(real_ctl));
	real_ctl.version = U32(PCT_CTL_OFF_VERSION);
	real_ctl.catalog_version = U32(PCT_CTL_OFF_CATVERSION);
	real_ctl.state = (int32_t) U32(PCT_CTL_OFF_STATE);
	real_ctl.blcksz = U32(PCT_CTL_OFF_BLCKSZ);
	real_ctl.relseg_size = U32(PCT_CTL_OFF_RELSEG_SIZE);
	real_ctl.xlog_blcksz = U32(PCT_CTL_OFF_XLOG_BLCKSZ);
	real_ctl.xlog_seg_size = U32(PCT_CTL_OFF_XLOG_SEG_SIZE);
#undef U32
	if (real_ctl.catalog_version != CATVERSION ||
		real_ctl.state != PCT_DB_SHUTDOWNED)
		setup_error("unexpected pg_control: catversion %u, state %d",
					real_ctl.catalog_version, (int) real_ctl.state);
}

static const char *const setup_sql[] = {
	/* an unlogged table with an index, a TOAST table, an unlogged
	 * sequence; a permanent table, a materialized view */
	"CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, t text);"
	"INSERT INTO ul SELECT g, repeat('x', 3000) FROM generate_series(1, 50) g;"
	"CREATE INDEX ul_t ON ul (t);"
	"CREATE UNLOGGED SEQUENCE ul_seq;"
	"CREATE TABLE pt (a int);"
	"INSERT INTO pt SELECT generate_series(1, 1000);"
	"CREATE MATERIALIZED VIEW mv AS SELECT a FROM pt WHERE a < 10",
	/* a tablespace outside PGDATA: a table, an unlogged table with an
	 * index there, and a whole database */
	"CREATE TABLESPACE ts LOCATION '@TS@'",
	"CREATE TABLE tst (a int) TABLESPACE ts;"
	"INSERT INTO tst SELECT generate_series(1, 100);"
	"CREATE INDEX tst_a ON tst (a) TABLESPACE ts;"
	"CREATE UNLOGGED TABLE tsu (a int) TABLESPACE ts;"
	"CREATE INDEX tsu_a ON tsu (a) TABLESPACE ts",
	"CREATE DATABASE db2",
	"CREATE DATABASE db3 TABLESPACE ts",
	"ALTER DATABASE template0 ALLOW_CONNECTIONS true",
	NULL
};

static const char *const relation_query =
"SELECT pg_relation_filepath(oid), relpersistence FROM pg_class "
"WHERE pg_relation_filepath(oid) IS NOT NULL";

static void
real_setup(void)
{
	char		pgdata[PATH_MAX],
				wal[PATH_MAX],
				ts[PATH_MAX],
				opts[PATH_MAX + 64],
				sql[PATH_MAX + 64],
				out[PATH_MAX],
				path[PATH_MAX];
	char	   *initdb[] = {"initdb", "-D", pgdata, "-X", wal, "-N", "-A",
		"trust", "-U", "postgres", "--no-instructions", NULL};
	char	   *start[] = {"pg_ctl", "-D", pgdata, "-l", path, "-o", opts,
		"-w", "-t", "60", "start", NULL};
	char	   *stop[] = {"pg_ctl", "-D", pgdata, "-m", "fast", "-w", "-t",
		"60", "stop", NULL};
	const char *dbs[] = {"postgres", "template1", "template0", "db2", "db3"};
	int			rc;

	real_error[0] = '\0';
	if (geteuid() == 0)
	{
		setup_error("these tests run initdb, which refuses to run as root: "
					"run the unit tests as an unprivileged user (make check "
					"does this)");
		return;
	}
	real_dir = unit_mkdtemp();
	spath(pgdata, "%s/pgdata", real_dir);
	spath(wal, "%s/wal", real_dir);
	spath(ts, "%s/tsloc", real_dir);
	spath(real_sock, "%s/sock", real_dir);
	spath(real_log, "%s/commands.log", real_dir);
	spath(path, "%s/server.log", real_dir);
	/* The socket is private to this directory, so any port will do. */
	snprintf(real_port, sizeof(real_port), "%d",
			 20000 + (int) ((unsigned) getpid() * 7919u % 30000u));
	snprintf(opts, sizeof(opts),
			 "-k %s -p %s -c listen_addresses='' -c fsync=off",
			 real_sock, real_port);
	if (mkdir(real_sock, 0700) != 0 || mkdir(ts, 0700) != 0)
	{
		setup_error("mkdir: %s", strerror(errno));
		return;
	}
	if ((rc = run_pg(initdb, NULL, real_log)) != 0)
	{
		setup_error("initdb failed with status %d, see %s", rc, real_log);
		return;
	}
	if (realpath(pgdata, real_pgdata) == NULL ||
		realpath(wal, real_wal) == NULL || realpath(ts, real_ts) == NULL)
	{
		setup_error("realpath: %s", strerror(errno));
		return;
	}
	if ((rc = run_pg(start, NULL, real_log)) != 0)
	{
		setup_error("pg_ctl start failed with status %d, see %s", rc,
					real_log);
		return;
	}

	for (int i = 0; setup_sql[i] != NULL && real_error[0] == '\0'; i++)
	{
		const char *at = strstr(setup_sql[i], "@TS@");

		if (at != NULL)
			snprintf(sql, sizeof(sql), "%.*s%s%s", (int) (at - setup_sql[i]),
					 setup_sql[i], real_ts, at + 4);
		else
			snprintf(sql, sizeof(sql), "%s", setup_sql[i]);
		if (psql("postgres", sql, NULL) != 0)
			setup_error("psql failed on \"%.300s\", see %s", setup_sql[i],
						real_log);
	}
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]) && !real_error[0]; i++)
	{
		spath(out, "%s/rels.%s", real_dir, dbs[i]);
		if (psql(dbs[i], relation_query, out) != 0)
			setup_error("psql failed in %s, see %s", dbs[i], real_log);
		else
			load_expect(out);
	}
	if (real_error[0] == '\0')
	{
		const char *q =
			"SELECT pg_relation_filepath('ul'), "
			"pg_relation_filepath('tst'), "
			"pg_relation_filepath('pg_database');"
			"ALTER DATABASE template0 ALLOW_CONNECTIONS false";
		FILE	   *f;

		spath(out, "%s/picked", real_dir);
		if (psql("postgres", q, out) != 0 || (f = fopen(out, "r")) == NULL)
			setup_error("psql failed, see %s", real_log);
		else
		{
			if (fscanf(f, "%4095s %4095s %4095s", real_unlogged_rel,
					   real_ts_rel, real_global_rel) != 3)
				setup_error("unexpected answer in %s", out);
			fclose(f);
		}
	}

	/* Stop even after a failure (the teardown would use -m immediate). */
	if ((rc = run_pg(stop, NULL, real_log)) != 0)
	{
		setup_error("pg_ctl stop failed with status %d, see %s", rc,
					real_log);
		return;
	}
	if (real_error[0] != '\0')
		return;
	load_control();

	/* Shared catalogs came once per database. */
	qsort(real_expect, real_nexpect, sizeof(expect_rel), cmp_expect);
	{
		size_t		n = 0;

		for (size_t i = 0; i < real_nexpect; i++)
		{
			if (n > 0 && strcmp(real_expect[n - 1].path,
								real_expect[i].path) == 0)
			{
				if (real_expect[n - 1].unlogged != real_expect[i].unlogged)
					setup_error("%s answered differently",
								real_expect[i].path);
				free(real_expect[i].path);
				continue;
			}
			real_expect[n++] = real_expect[i];
		}
		real_nexpect = n;
	}

	/* Second segments by hand (a 1 GB table is too big for a unit test). */
	add_fake_segment(real_unlogged_rel, 1, true, 3 * 8192);
	add_fake_segment(real_ts_rel, 1, false, 8192);
	add_fake_segment(real_ts_rel, 2, false, 0);
	qsort(real_expect, real_nexpect, sizeof(expect_rel), cmp_expect);

	/* Decoys, never in the map. */
	{
		char		dbdir[PATH_MAX];
		char	   *slash;
		const char *decoys[] = {
			"t3_12345", "t3_12345.1", "t3_12345_fsm", "t12_99_init",
			"pgsql_tmp12.0", "12345_foo", "012345", "12345.0", "12345.",
			"99999_init", "README", "4294967296", "0",
		};

		spath(dbdir, "%s/%s", real_pgdata, real_unlogged_rel);
		slash = strrchr(dbdir, '/');
		*slash = '\0';
		for (size_t i = 0; i < sizeof(decoys) / sizeof(decoys[0]); i++)
		{
			spath(path, "%s/%s", dbdir, decoys[i]);
			if (creat(path, 0600) < 0)
				setup_error("creat %s: %s", path, strerror(errno));
		}
		/* The server's temporary file directory. */
		spath(path, "%s/base/pgsql_tmp", real_pgdata);
		if (mkdir(path, 0700) != 0)
			setup_error("mkdir %s: %s", path, strerror(errno));
		spath(path, "%s/base/pgsql_tmp/pgsql_tmp99.0",
				 real_pgdata);
		if (creat(path, 0600) < 0)
			setup_error("creat %s: %s", path, strerror(errno));
		/* Another cluster's directory in the tablespace. */
		spath(path, "%s/PG_99_123", real_ts);
		if (mkdir(path, 0700) != 0)
			setup_error("mkdir %s: %s", path, strerror(errno));
		spath(path, "%s/PG_99_123/5", real_ts);
		if (mkdir(path, 0700) != 0)
			setup_error("mkdir %s: %s", path, strerror(errno));
		spath(path, "%s/PG_99_123/5/16384", real_ts);
		if (creat(path, 0600) < 0)
			setup_error("creat %s: %s", path, strerror(errno));
		/* WAL that is not a segment. */
		{
			const char *wdecoys[] = {
				"00000002.history",
				"000000010000000000000001.00000028.backup",
				"archive_status/000000010000000000000001.done",
				"archive_status/000000010000000000000007.ready",
				"xlogtemp.12345",
				"00000001000000000000000a",
				"0000000100000000000000010",
				"000000010000000000000001.partial.gz",
			};

			for (size_t i = 0; i < sizeof(wdecoys) / sizeof(wdecoys[0]); i++)
			{
				spath(path, "%s/%s", real_wal, wdecoys[i]);
				if (creat(path, 0600) < 0)
					setup_error("creat %s: %s", path, strerror(errno));
			}
		}
		/* A shorter .partial, whole pages. */
		spath(path, "%s/000000010000000000000007.partial",
				 real_wal);
		{
			int			fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

			if (fd < 0 || ftruncate(fd, 5 * 8192) != 0 || close(fd) != 0)
				setup_error("could not make %s", path);
		}
	}
}

static void
real_teardown(void)
{
	char		path[PATH_MAX];
	char		pgdata[PATH_MAX];

	for (size_t i = 0; i < real_nexpect; i++)
		free(real_expect[i].path);
	free(real_expect);
	real_expect = NULL;
	real_nexpect = 0;
	if (real_dir == NULL)
		return;
	/* A failed setup may have left the server running. */
	spath(pgdata, "%s/pgdata", real_dir);
	spath(path, "%s/postmaster.pid", pgdata);
	if (access(path, F_OK) == 0)
	{
		char	   *argv[] = {"pg_ctl", "-D", pgdata, "-m", "immediate", "-w",
		"stop", NULL};

		(void) run_pg(argv, NULL, real_log);
	}
	unit_rmtree(real_dir);
	free(real_dir);
	real_dir = NULL;
}

static void
need_real(void)
{
	ck_assert_msg(real_error[0] == '\0', "%s", real_error);
	ck_assert_ptr_nonnull(real_dir);
}

/* The map of the real cluster, which must build. */
static void
real_build(pct_filemap *fm)
{
	unit_capture_log();
	ck_assert_msg(pct_filemap_build(real_pgdata, 15, &real_ctl, fm) == PCT_OK,
				  "%s", unit_all_log());
}

/* Exactly the relation files the server named (and the segments made by
 * hand), with their unlogged flags; exactly the WAL segments. */
START_TEST(test_real_relations)
{
	pct_filemap fm;
	size_t		nrel = 0,
				nunlogged = 0,
				nts = 0,
				nglobal = 0;
	char		prefix[PATH_MAX];

	need_real();
	real_build(&fm);
	check_invariants(&fm);
	pathf(prefix, "%s/PG_15_%u/", real_ts, CATVERSION);

	for (size_t i = 0; i < real_nexpect; i++)
		real_expect[i].seen = false;
	for (size_t i = 0; i < fm.nfiles; i++)
	{
		const pct_file *f = &fm.files[i];
		expect_rel	key;
		expect_rel *e;
		char		kp[PCT_MAXPATH];

		if (f->kind != PCT_FILE_RELATION)
			continue;
		nrel++;
		snprintf(kp, sizeof(kp), "%s", fp(&fm, f));
		key.path = kp;
		e = bsearch(&key, real_expect, real_nexpect, sizeof(expect_rel),
					cmp_expect);
		ck_assert_msg(e != NULL, "the map holds %s, which the server did "
					  "not name", fp(&fm, f));
		ck_assert_msg(!e->seen, "%s twice", fp(&fm, f));
		e->seen = true;
		ck_assert_msg(f->unlogged == e->unlogged, "%s: unlogged %d, want %d",
					  fp(&fm, f), f->unlogged, e->unlogged);
		ck_assert_uint_eq(f->tablespace, e->ts);
		ck_assert_uint_eq(f->database, e->db);
		ck_assert_uint_eq(f->relfilenode, e->node);
		ck_assert_uint_eq(f->segno, e->segno);
		if (f->unlogged)
			nunlogged++;
		if (f->tablespace == 1664)
		{
			nglobal++;
			ck_assert_uint_eq(f->database, 0);
		}
		if (f->tablespace != 1663 && f->tablespace != 1664)
		{
			/* Found through the link, in this cluster's directory. */
			ck_assert_msg(strncmp(fp(&fm, f), prefix, strlen(prefix)) == 0,
						  "%s is not under %s", fp(&fm, f), prefix);
			ck_assert_uint_ge(f->tablespace, 16384);
			nts++;
		}
	}
	for (size_t i = 0; i < real_nexpect; i++)
		ck_assert_msg(real_expect[i].seen, "%s is missing from the map",
					  real_expect[i].path);
	ck_assert_uint_eq(nrel, real_nexpect);
	/* ul, its TOAST table and index, its two indexes, the sequence, its
	 * second segment; tsu and its index. */
	ck_assert_uint_ge(nunlogged, 9);
	/* db3's catalogs live in the tablespace. */
	ck_assert_uint_gt(nts, 100);
	ck_assert_uint_gt(nglobal, 20);
	pct_filemap_free(&fm);
	ck_assert_ptr_null(fm.files);
	ck_assert_uint_eq(fm.nfiles, 0);
}
END_TEST

/* WAL: every segment of the pg_wal link's target and the .partial; no
 * decoy. */
START_TEST(test_real_wal)
{
	pct_filemap fm;
	size_t		nwal = 0,
				nseg = 0;
	char		path[PATH_MAX];
	char		name[64];
	const pct_file *f;

	need_real();
	real_build(&fm);
	for (size_t i = 0; i < fm.nfiles; i++)
	{
		const char *base;

		f = &fm.files[i];
		if (f->kind != PCT_FILE_WAL)
		{
			ck_assert_uint_eq(nwal, 0);	/* relations first */
			continue;
		}
		nwal++;
		/* The link is resolved. */
		ck_assert_msg(strncmp(fp(&fm, f), real_wal, strlen(real_wal)) == 0 &&
					  fp(&fm, f)[strlen(real_wal)] == '/', "%s", fp(&fm, f));
		base = fp(&fm, f) + strlen(real_wal) + 1;
		ck_assert_msg(strlen(base) == 24 ||
					  strcmp(base, "000000010000000000000007.partial") == 0,
					  "%s", fp(&fm, f));
		ck_assert_uint_eq(strspn(base, "0123456789ABCDEF"), 24);
		if (strlen(base) == 24)
		{
			ck_assert_uint_eq(f->size, SEG_SIZE);
			nseg++;
		}
	}
	/* initdb leaves at least one segment. */
	ck_assert_uint_ge(nseg, 1);
	ck_assert_uint_eq(nwal, nseg + 1);
	pathf(path, "%s/000000010000000000000007.partial", real_wal);
	f = find_file(&fm, path);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->size, 5 * 8192);

	/* Every 24-digit name in the directory is in the map. */
	{
		FILE	   *p;
		char		cmd[PATH_MAX + 64];
		size_t		listed = 0;

		pathf(cmd, "ls '%s'", real_wal);
		p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		while (fscanf(p, "%63s", name) == 1)
		{
			if (strlen(name) != 24 ||
				strspn(name, "0123456789ABCDEF") != 24)
				continue;
			pathf(path, "%s/%s", real_wal, name);
			ck_assert_msg(find_file(&fm, path) != NULL, "%s missing", path);
			listed++;
		}
		pclose(p);
		ck_assert_uint_eq(listed, nseg);
	}
	pct_filemap_free(&fm);
}
END_TEST

/* Hard links are refused, every one counted, the first ten named. */
START_TEST(test_real_hardlinks)
{
	char		src[PATH_MAX],
				dst[PATH_MAX];
	pct_filemap fm;
	size_t		n = 0;

	need_real();
	/* One file, linked from outside PGDATA. */
	pathf(src, "%s/%s", real_pgdata, real_ts_rel);
	resolve(src, src);
	pathf(dst, "%s/outside-link", real_dir);
	ck_assert_int_eq(link(src, dst), 0);
	build_fails(real_pgdata, &real_ctl, PCT_ERR_STATE);
	error_has("file \"", src, "\" has 2 hard links",
			  "pg_upgrade --link", NULL);
	ck_assert_int_eq(unlink(dst), 0);

	/* Twelve of them: all counted, ten named (in the order found). */
	real_build(&fm);
	for (size_t i = 0; i < fm.nfiles && n < 12; i++)
	{
		if (fm.files[i].kind != PCT_FILE_RELATION)
			continue;
		pathf(dst, "%s/link%zu", real_dir, n++);
		ck_assert_int_eq(link(fp(&fm, &fm.files[i]), dst), 0);
	}
	ck_assert_uint_eq(n, 12);
	build_fails(real_pgdata, &real_ctl, PCT_ERR_STATE);
	error_has("12 files have more than one hard link", "(2 hard links)",
			  ", and 2 more.", NULL);
	{
		size_t		named = 0;

		for (size_t i = 0; i < 12; i++)
		{
			char		quoted[PATH_MAX + 8];

			snprintf(quoted, sizeof(quoted), "\"%s\" (2 hard links)",
					 fp(&fm, &fm.files[i]));
			if (strstr(unit_all_log(), quoted) != NULL)
				named++;
		}
		ck_assert_uint_eq(named, 10);
	}
	for (size_t i = 0; i < n; i++)
	{
		pathf(dst, "%s/link%zu", real_dir, i);
		ck_assert_int_eq(unlink(dst), 0);
	}
	pct_filemap_free(&fm);
	/* All well again. */
	real_build(&fm);
	pct_filemap_free(&fm);
}
END_TEST

/* Sizes that are not whole blocks are refused, naming the file. */
START_TEST(test_real_odd_sizes)
{
	char		rel[PATH_MAX],
				dbdir[PATH_MAX],
				walf[PATH_MAX];
	pct_filemap fm;

	need_real();
	pathf(dbdir, "%s/%s", real_pgdata, real_unlogged_rel);
	*strrchr(dbdir, '/') = '\0';
	pathf(rel, "%s/4000000000", dbdir);
	mkfile(8192 + 100, "%s", rel);
	build_fails(real_pgdata, &real_ctl, PCT_ERR_STATE);
	error_has("file \"", rel, "\" has an invalid size: 8292 bytes, not a "
			  "multiple of the block size 8192", NULL);
	rmfile("%s", rel);

	/* A relation file in global/ too, and WAL files: a short segment, an
	 * unaligned .partial.  All three are reported. */
	pathf(rel, "%s/global/4000000000.1", real_pgdata);
	mkfile(1, "%s", rel);
	pathf(walf, "%s/0000000100000000000000FF", real_wal);
	mkfile(8192, "%s", walf);
	mkfile(100, "%s/0000000100000000000000FE.partial", real_wal);
	build_fails(real_pgdata, &real_ctl, PCT_ERR_STATE);
	error_has("3 files have an invalid size", rel, "(1 bytes, not a multiple",
			  walf, "8192 bytes, not the WAL segment size 16777216",
			  "0000000100000000000000FE.partial\" (100 bytes, not a "
			  "multiple of the WAL block size 8192)", NULL);
	rmfile("%s", rel);
	rmfile("%s", walf);
	rmfile("%s/0000000100000000000000FE.partial", real_wal);

	real_build(&fm);
	pct_filemap_free(&fm);
}
END_TEST

/* A relation file, a WAL segment or a database directory that is a
 * symbolic link is refused. */
START_TEST(test_real_symlinks)
{
	char		target[PATH_MAX],
				ln[PATH_MAX],
				ln2[PATH_MAX],
				ln3[PATH_MAX];
	pct_filemap fm;

	need_real();
	/* A relation file moved out of PGDATA, a link in its place. */
	pathf(target, "%s/%s", real_pgdata, real_global_rel);
	pathf(ln, "%s/moved", real_dir);
	ck_assert_int_eq(rename(target, ln), 0);
	mksymlink(ln, "%s", target);
	build_fails(real_pgdata, &real_ctl, PCT_ERR_STATE);
	error_has("\"", target, "\" is a symbolic link",
			  "Only the tablespace links in pg_tblspc and the pg_wal "
			  "directory may be symbolic links", NULL);
	rmfile("%s", target);
	ck_assert_int_eq(rename(ln, target), 0);

	/* A database directory and a WAL segment that are links. */
	pathf(ln2, "%s/base/4000000000", real_pgdata);
	mksymlink(real_ts, "%s", ln2);
	pathf(ln3, "%s/0000000100000000000000FF", real_wal);
	mksymlink("/dev/null", "%s", ln3);
	build_fails(real_pgdata, &real_ctl, PCT_ERR_STATE);
	error_has("2 files or directories have an unexpected type", ln2, ln3,
			  "(a symbolic link)", NULL);
	rmfile("%s", ln2);
	rmfile("%s", ln3);

	real_build(&fm);
	pct_filemap_free(&fm);
}
END_TEST

/* ====================================================================
 * Hand-made trees
 * ==================================================================== */

static char *fake_base;			/* holds every test's tree; removed by the
								 * case's teardown even when a test fails */
static char fake_dir[PATH_MAX];	/* resolved; holds pgdata and outside */
static char fake_pgdata[PATH_MAX];

static void
fake_case_setup(void)
{
	fake_base = unit_mkdtemp();
}

static void
fake_case_teardown(void)
{
	unit_rmtree(fake_base);
	free(fake_base);
	fake_base = NULL;
}

/* A new tree under fake_base: PGDATA with empty global/, base/, pg_tblspc/,
 * pg_wal/archive_status/ and a few files that are never in a map. */
static void
fake_setup(void)
{
	char		d[PATH_MAX];

	ck_assert_ptr_nonnull(fake_base);
	pathf(d, "%s/tree-XXXXXX", fake_base);
	ck_assert_ptr_nonnull(mkdtemp(d));
	resolve(d, fake_dir);
	pathf(fake_pgdata, "%s/pgdata", fake_dir);
	mkdirs("%s/global", fake_pgdata);
	mkdirs("%s/base", fake_pgdata);
	mkdirs("%s/pg_tblspc", fake_pgdata);
	mkdirs("%s/pg_wal/archive_status", fake_pgdata);
	mkdirs("%s/pg_xact", fake_pgdata);
	mkfile(8192, "%s/global/pg_control", fake_pgdata);
	mkfile(8192, "%s/pg_xact/0000", fake_pgdata);
}

static void
fake_teardown(void)
{
	unit_rmtree(fake_dir);
}

/* The n-th file of the map has these properties. */
static void
want_rel(const pct_filemap *fm, size_t i, const char *path, uint32_t ts,
		 uint32_t db, uint32_t node, uint32_t segno, bool unlogged,
		 uint64_t size)
{
	const pct_file *f;

	ck_assert_uint_lt(i, fm->nfiles);
	f = &fm->files[i];
	ck_assert_str_eq(fp(fm, f), path);
	ck_assert_int_eq(f->kind, PCT_FILE_RELATION);
	ck_assert_uint_eq(f->tablespace, ts);
	ck_assert_uint_eq(f->database, db);
	ck_assert_uint_eq(f->relfilenode, node);
	ck_assert_uint_eq(f->segno, segno);
	ck_assert_int_eq(f->unlogged, unlogged);
	ck_assert_uint_eq(f->size, size);
}

/* The name grammar, unlogged per directory, numeric order, tablespaces
 * (link and in-place), another cluster's directory, plain pg_wal. */
START_TEST(test_fake_names_and_order)
{
	pct_control ctl;
	pct_filemap fm;
	char		p[PATH_MAX],
				ts1[PATH_MAX],
				ts2[PATH_MAX];
	const char *skipped[] = {
		"PG_VERSION", "pg_filenode.map", "pg_internal.init", "9_fsm", "9_vm",
		"9_fsm.1", "10_init", "10_init.1", "13_init", "t3_100", "t3_100.1",
		"t3_100_fsm", "t3_100_init", "0", "01", "011.1", "12.0", "12.",
		"12.x", "12_foo", "12_init_fsm", "12.1.1", "4294967296", "12.01",
		"-1", " 12", "12 ", "x12", "12a",
	};
	size_t		i = 0;
	char		g[PATH_MAX],
				b1[PATH_MAX],
				b2[PATH_MAX],
				w[PATH_MAX];

	fake_setup();
	fake_ctl(&ctl);
	pathf(g, "%s/global", fake_pgdata);
	pathf(b1, "%s/base/1", fake_pgdata);
	pathf(b2, "%s/base/2", fake_pgdata);
	pathf(w, "%s/pg_wal", fake_pgdata);
	mkdirs("%s", b1);
	mkdirs("%s", b2);
	mkdirs("%s/base/pgsql_tmp/pgsql_tmp5.sharedfileset", fake_pgdata);
	mkfile(8192, "%s/base/pgsql_tmp/pgsql_tmp5.0", fake_pgdata);
	mkdirs("%s/base/abc", fake_pgdata);
	mkfile(8192, "%s/base/abc/5", fake_pgdata);

	mkfile(8192, "%s/1262", g);
	mkfile(0, "%s/1213", g);
	mkfile(16384, "%s/1213.1", g);
	mkfile(100, "%s/pg_filenode.map", g);
	mkfile(100, "%s/pg_internal.init", g);
	mkfile(0, "%s/1262_fsm", g);

	for (size_t k = 0; k < sizeof(skipped) / sizeof(skipped[0]); k++)
		mkfile(3, "%s/%s", b1, skipped[k]);
	mkfile(8192, "%s/9", b1);
	mkfile(8192 * 2, "%s/9.1", b1);
	mkfile(8192 * 3, "%s/9.2", b1);
	mkfile(8192 * 4, "%s/9.10", b1);
	mkfile(0, "%s/10", b1);
	mkfile(8192, "%s/14.1", b1);
	mkfile(0, "%s/4294967295", b1);
	/* The same relfilenode in another database is not unlogged. */
	mkfile(8192, "%s/10", b2);

	/* A tablespace through a link, with another cluster's directory. */
	pathf(ts1, "%s/ts1/PG_15_%u/5", fake_dir, CATVERSION);
	mkdirs("%s", ts1);
	mkdirs("%s/ts1/PG_15_%u/pgsql_tmp", fake_dir, CATVERSION);
	mkfile(8192, "%s/ts1/PG_15_%u/pgsql_tmp/pgsql_tmp1.0", fake_dir,
		   CATVERSION);
	mkdirs("%s/ts1/PG_99_123/5", fake_dir);
	mkfile(8192, "%s/ts1/PG_99_123/5/20000", fake_dir);
	mkdirs("%s/ts1/PG_15_1/5", fake_dir);
	mkfile(8192, "%s/ts1/PG_15_1/5/20000", fake_dir);
	mkfile(8192, "%s/20000", ts1);
	mkfile(0, "%s/20000_init", ts1);
	mkfile(8192, "%s/20000.1", ts1);
	mkfile(8192, "%s/20001.1", ts1);
	mkfile(0, "%s/20001_fsm", ts1);
	/* A relative link, as a user might make by hand. */
	mksymlink("../../ts1", "%s/pg_tblspc/16400", fake_pgdata);
	/* An in-place tablespace (allow_in_place_tablespaces). */
	pathf(ts2, "%s/pg_tblspc/16500/PG_15_%u/6", fake_pgdata, CATVERSION);
	mkdirs("%s", ts2);
	mkfile(8192, "%s/40000", ts2);
	mkfile(0, "%s/pg_tblspc/README", fake_pgdata);

	/* Plain pg_wal. */
	mkfile(SEG_SIZE, "%s/000000010000000000000001", w);
	mkfile(SEG_SIZE, "%s/00000001000000000000000A", w);
	mkfile(3 * 8192, "%s/000000010000000000000002.partial", w);
	mkfile(0, "%s/000000010000000000000003.partial", w);
	mkfile(SEG_SIZE, "%s/000000010000000000000003.partial.gz", w);
	mkfile(100, "%s/00000002.history", w);
	mkfile(100, "%s/000000010000000000000001.00000028.backup", w);
	mkfile(0, "%s/archive_status/000000010000000000000001.done", w);
	mkfile(100, "%s/xlogtemp.123", w);
	mkfile(SEG_SIZE, "%s/00000001000000000000000b", w);
	mkfile(SEG_SIZE, "%s/00000001000000000000000BC", w);

	unit_capture_log();
	ck_assert_msg(pct_filemap_build(fake_pgdata, 15, &ctl, &fm) == PCT_OK,
				  "%s", unit_all_log());
	check_invariants(&fm);

	pathf(p, "%s/9", b1);
	want_rel(&fm, i++, p, 1663, 1, 9, 0, false, 8192);
	pathf(p, "%s/9.1", b1);
	want_rel(&fm, i++, p, 1663, 1, 9, 1, false, 16384);
	pathf(p, "%s/9.2", b1);
	want_rel(&fm, i++, p, 1663, 1, 9, 2, false, 3 * 8192);
	pathf(p, "%s/9.10", b1);
	want_rel(&fm, i++, p, 1663, 1, 9, 10, false, 4 * 8192);
	pathf(p, "%s/10", b1);
	want_rel(&fm, i++, p, 1663, 1, 10, 0, true, 0);
	pathf(p, "%s/14.1", b1);
	want_rel(&fm, i++, p, 1663, 1, 14, 1, false, 8192);
	pathf(p, "%s/4294967295", b1);
	want_rel(&fm, i++, p, 1663, 1, 4294967295u, 0, false, 0);
	pathf(p, "%s/10", b2);
	want_rel(&fm, i++, p, 1663, 2, 10, 0, false, 8192);
	pathf(p, "%s/1213", g);
	want_rel(&fm, i++, p, 1664, 0, 1213, 0, false, 0);
	pathf(p, "%s/1213.1", g);
	want_rel(&fm, i++, p, 1664, 0, 1213, 1, false, 16384);
	pathf(p, "%s/1262", g);
	want_rel(&fm, i++, p, 1664, 0, 1262, 0, false, 8192);
	pathf(p, "%s/ts1/PG_15_%u/5/20000", fake_dir, CATVERSION);
	want_rel(&fm, i++, p, 16400, 5, 20000, 0, true, 8192);
	pathf(p, "%s/ts1/PG_15_%u/5/20000.1", fake_dir, CATVERSION);
	want_rel(&fm, i++, p, 16400, 5, 20000, 1, true, 8192);
	pathf(p, "%s/ts1/PG_15_%u/5/20001.1", fake_dir, CATVERSION);
	want_rel(&fm, i++, p, 16400, 5, 20001, 1, false, 8192);
	pathf(p, "%s/40000", ts2);
	want_rel(&fm, i++, p, 16500, 6, 40000, 0, false, 8192);

	pathf(p, "%s/000000010000000000000001", w);
	ck_assert_str_eq(fp(&fm, &fm.files[i]), p);
	ck_assert_uint_eq(fm.files[i++].size, SEG_SIZE);
	pathf(p, "%s/000000010000000000000002.partial", w);
	ck_assert_str_eq(fp(&fm, &fm.files[i]), p);
	ck_assert_uint_eq(fm.files[i++].size, 3 * 8192);
	pathf(p, "%s/000000010000000000000003.partial", w);
	ck_assert_str_eq(fp(&fm, &fm.files[i]), p);
	ck_assert_uint_eq(fm.files[i++].size, 0);
	pathf(p, "%s/00000001000000000000000A", w);
	ck_assert_str_eq(fp(&fm, &fm.files[i]), p);
	ck_assert_int_eq(fm.files[i++].kind, PCT_FILE_WAL);
	ck_assert_uint_eq(fm.nfiles, i);

	ck_assert_uint_eq(fm.relation_bytes, 8192 * (1 + 2 + 3 + 4 + 1 + 1 + 2 +
												 1 + 1 + 1 + 1 + 1));
	ck_assert_uint_eq(fm.wal_bytes, 2ull * SEG_SIZE + 3 * 8192);
	pct_filemap_free(&fm);
	pct_filemap_free(&fm);		/* harmless twice */

	/* A relative data directory gives the same absolute paths. */
	{
		char		cwd[PATH_MAX];

		ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
		ck_assert_int_eq(chdir(fake_dir), 0);
		unit_capture_log();
		ck_assert_msg(pct_filemap_build("pgdata", 15, &ctl, &fm) == PCT_OK,
					  "%s", unit_all_log());
		ck_assert_int_eq(chdir(cwd), 0);
		pathf(p, "%s/9", b1);
		ck_assert_str_eq(fp(&fm, &fm.files[0]), p);
		ck_assert_uint_eq(fm.nfiles, i);
		pct_filemap_free(&fm);
	}
	fake_teardown();
}
END_TEST

/* An empty cluster gives an empty map; a symlinked pg_wal is followed. */
START_TEST(test_fake_empty_and_wal_link)
{
	pct_control ctl;
	pct_filemap fm;
	char		p[PATH_MAX],
				w[PATH_MAX];

	fake_setup();
	fake_ctl(&ctl);
	unit_capture_log();
	ck_assert_int_eq(pct_filemap_build(fake_pgdata, 15, &ctl, &fm), PCT_OK);
	ck_assert_uint_eq(fm.nfiles, 0);
	ck_assert_uint_eq(fm.relation_bytes, 0);
	ck_assert_uint_eq(fm.wal_bytes, 0);
	pct_filemap_free(&fm);

	pathf(p, "%s/pg_wal", fake_pgdata);
	pathf(w, "%s/walhere", fake_dir);
	ck_assert_int_eq(rename(p, w), 0);
	mksymlink(w, "%s", p);
	mkfile(SEG_SIZE, "%s/00000001000000000000000C", w);
	ck_assert_int_eq(pct_filemap_build(fake_pgdata, 15, &ctl, &fm), PCT_OK);
	ck_assert_uint_eq(fm.nfiles, 1);
	pathf(p, "%s/00000001000000000000000C", w);
	ck_assert_str_eq(fp(&fm, &fm.files[0]), p);
	ck_assert_int_eq(fm.files[0].kind, PCT_FILE_WAL);
	ck_assert_uint_eq(fm.wal_bytes, SEG_SIZE);
	pct_filemap_free(&fm);
	fake_teardown();
}
END_TEST

START_TEST(test_fake_bad_arguments)
{
	pct_control ctl;
	pct_filemap fm;

	fake_setup();
	fake_ctl(&ctl);
	unit_capture_log();
	ck_assert_int_eq(pct_filemap_build(fake_pgdata, 15, &ctl, NULL),
					 PCT_ERR_ARG);
	build_fails(NULL, &ctl, PCT_ERR_ARG);
	build_fails(fake_pgdata, NULL, PCT_ERR_ARG);
	ctl.blcksz = 0;
	build_fails(fake_pgdata, &ctl, PCT_ERR_ARG);
	fake_ctl(&ctl);
	ctl.xlog_seg_size = 8192 * 3 + 1;
	build_fails(fake_pgdata, &ctl, PCT_ERR_ARG);
	fake_ctl(&ctl);
	memset(&fm, 0, sizeof(fm));
	ck_assert_int_eq(pct_filemap_build(fake_pgdata, 0, &ctl, &fm),
					 PCT_ERR_ARG);
	/* No such directory. */
	build_fails("/nonexistent/pgdata", &ctl, PCT_ERR_SYS);
	error_has("could not resolve data directory \"/nonexistent/pgdata\"",
			  NULL);
	pct_filemap_free(NULL);
	fake_teardown();
}
END_TEST

/* Missing or wrong directories. */
START_TEST(test_fake_bad_directories)
{
	pct_control ctl;
	char		p[PATH_MAX],
				q[PATH_MAX];

	fake_setup();
	fake_ctl(&ctl);

	/* base/ missing. */
	pathf(p, "%s/base", fake_pgdata);
	pathf(q, "%s/base.away", fake_dir);
	ck_assert_int_eq(rename(p, q), 0);
	build_fails(fake_pgdata, &ctl, PCT_ERR_SYS);
	error_has("could not stat directory \"", p, "No such file", NULL);
	/* base/ a link (to a directory). */
	mksymlink(q, "%s", p);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("\"", p, "\" is a symbolic link", NULL);
	rmfile("%s", p);
	ck_assert_int_eq(rename(q, p), 0);

	/* pg_wal a file. */
	pathf(p, "%s/pg_wal", fake_pgdata);
	pathf(q, "%s/pg_wal.away", fake_dir);
	ck_assert_int_eq(rename(p, q), 0);
	mkfile(0, "%s", p);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("\"", p, "\" is not a directory", NULL);
	rmfile("%s", p);
	/* pg_wal a dangling link. */
	mksymlink("/nonexistent", "%s", p);
	build_fails(fake_pgdata, &ctl, PCT_ERR_SYS);
	rmfile("%s", p);
	ck_assert_int_eq(rename(q, p), 0);

	/* A relation file that is a directory; a database that is a file. */
	mkdirs("%s/base/1/16384", fake_pgdata);
	mkfile(0, "%s/base/2", fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	pathf(p, "%s/base/1/16384", fake_pgdata);
	pathf(q, "%s/base/2", fake_pgdata);
	error_has("2 files or directories have an unexpected type",
			  "/base/1/16384\" (not a regular file)",
			  "/base/2\" (not a directory)", NULL);
	fake_teardown();
}
END_TEST

/* Tablespaces: without this cluster's directory, its directory a link,
 * two links to one place, a link to a file, a dangling link. */
START_TEST(test_fake_bad_tablespaces)
{
	pct_control ctl;
	char		p[PATH_MAX],
				q[PATH_MAX];

	fake_setup();
	fake_ctl(&ctl);
	mkdirs("%s/ts1/PG_99_123", fake_dir);
	pathf(p, "%s/ts1", fake_dir);
	mksymlink(p, "%s/pg_tblspc/16400", fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("tablespace 16400 (\"", p, "\") has no directory for this "
			  "cluster", "PG_15_202209061\" does not exist", NULL);

	/* This cluster's directory a link. */
	mkdirs("%s/elsewhere/1", fake_dir);
	pathf(q, "%s/elsewhere", fake_dir);
	mksymlink(q, "%s/ts1/PG_15_%u", fake_dir, CATVERSION);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("/ts1/PG_15_202209061\" is a symbolic link", NULL);
	rmfile("%s/ts1/PG_15_%u", fake_dir, CATVERSION);
	mkdirs("%s/ts1/PG_15_%u/1", fake_dir, CATVERSION);
	mkfile(8192, "%s/ts1/PG_15_%u/1/16384", fake_dir, CATVERSION);

	/* Two links to one tablespace directory. */
	mksymlink(p, "%s/pg_tblspc/16401", fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	pathf(q, "tablespaces 16400 and 16401 share directory \"%s/PG_15_%u\"",
		  p, CATVERSION);
	error_has(q, "Each tablespace must have a directory of its own.", NULL);
	rmfile("%s/pg_tblspc/16401", fake_pgdata);

	/* A tablespace entry that is a link to a file, or dangles. */
	mkfile(0, "%s/afile", fake_dir);
	pathf(q, "%s/afile", fake_dir);
	mksymlink(q, "%s/pg_tblspc/16402", fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("/pg_tblspc/16402\" is not a directory", NULL);
	rmfile("%s/pg_tblspc/16402", fake_pgdata);
	mksymlink("/nonexistent/ts", "%s/pg_tblspc/16403", fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_SYS);
	error_has("could not stat tablespace link", "/pg_tblspc/16403", NULL);
	rmfile("%s/pg_tblspc/16403", fake_pgdata);

	/* Fine again. */
	{
		pct_filemap fm;

		unit_capture_log();
		ck_assert_msg(pct_filemap_build(fake_pgdata, 15, &ctl, &fm) ==
					  PCT_OK, "%s", unit_all_log());
		ck_assert_uint_eq(fm.nfiles, 1);
		ck_assert_uint_eq(fm.files[0].tablespace, 16400);
		pct_filemap_free(&fm);
	}
	fake_teardown();
}
END_TEST

/* Relation sizes past a segment or past the last block number; WAL sizes;
 * and every kind of problem reported in one run. */
START_TEST(test_fake_bad_sizes)
{
	pct_control ctl;
	char		p[PATH_MAX];

	fake_setup();
	fake_ctl(&ctl);
	mkdirs("%s/base/1", fake_pgdata);

	/* One block more than a segment (sparse). */
	pathf(p, "%s/base/1/16384", fake_pgdata);
	mkfile((off_t) 131073 * 8192, "%s", p);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("file \"", p, "\" has an invalid size: 1073750016 bytes, more "
			  "than a segment of 131072 blocks", NULL);
	rmfile("%s", p);
	/* A whole segment is fine. */
	mkfile((off_t) 131072 * 8192, "%s", p);

	/* Segment 32767 ends at block 2^32 - 1 = InvalidBlockNumber when full;
	 * one block less is the largest; segment 32768 is past the end. */
	mkfile((off_t) 131071 * 8192, "%s/base/1/16385.32767", fake_pgdata);
	{
		pct_filemap fm;

		unit_capture_log();
		ck_assert_msg(pct_filemap_build(fake_pgdata, 15, &ctl, &fm) ==
					  PCT_OK, "%s", unit_all_log());
		ck_assert_uint_eq(fm.nfiles, 2);
		ck_assert_uint_eq(fm.relation_bytes, (131072ull + 131071) * 8192);
		pct_filemap_free(&fm);
	}
	mkfile((off_t) 131072 * 8192, "%s/base/1/16385.32767", fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("16385.32767\" has an invalid size: segment 32767 goes past "
			  "the largest block number", NULL);
	rmfile("%s/base/1/16385.32767", fake_pgdata);
	mkfile(0, "%s/base/1/16385.32768", fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("segment 32768 goes past", NULL);
	rmfile("%s/base/1/16385.32768", fake_pgdata);

	/* WAL: .partial longer than a segment. */
	mkfile(SEG_SIZE + 8192, "%s/pg_wal/000000010000000000000001.partial",
		   fake_pgdata);
	build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
	error_has("000000010000000000000001.partial\" has an invalid size: "
			  "16785408 bytes, more than the WAL segment size 16777216",
			  NULL);
	rmfile("%s/pg_wal/000000010000000000000001.partial", fake_pgdata);

	/* Three kinds at once: each gets its own message. */
	mkfile(10, "%s/base/1/16386", fake_pgdata);
	mksymlink(p, "%s/base/1/16387", fake_pgdata);
	{
		char		l[PATH_MAX];

		pathf(l, "%s/hardlink", fake_dir);
		ck_assert_int_eq(link(p, l), 0);
		build_fails(fake_pgdata, &ctl, PCT_ERR_STATE);
		error_has("16386\" has an invalid size: 10 bytes",
				  "16387\" is a symbolic link",
				  "16384\" has 2 hard links", NULL);
		rmfile("%s", l);
	}
	fake_teardown();
}
END_TEST

static Suite *
filemap_suite(void)
{
	Suite	   *s = suite_create("filemap");
	TCase	   *fake = tcase_create("fake");
	TCase	   *real = tcase_create("initdb");

	tcase_add_unchecked_fixture(fake, fake_case_setup, fake_case_teardown);
	tcase_set_timeout(fake, 60);
	tcase_add_test(fake, test_fake_names_and_order);
	tcase_add_test(fake, test_fake_empty_and_wal_link);
	tcase_add_test(fake, test_fake_bad_arguments);
	tcase_add_test(fake, test_fake_bad_directories);
	tcase_add_test(fake, test_fake_bad_tablespaces);
	tcase_add_test(fake, test_fake_bad_sizes);
	suite_add_tcase(s, fake);

	/* One cluster for the case, made before the tests fork. */
	tcase_add_unchecked_fixture(real, real_setup, real_teardown);
	tcase_set_timeout(real, 180);
	tcase_add_test(real, test_real_relations);
	tcase_add_test(real, test_real_wal);
	tcase_add_test(real, test_real_hardlinks);
	tcase_add_test(real, test_real_odd_sizes);
	tcase_add_test(real, test_real_symlinks);
	suite_add_tcase(s, real);
	return s;
}

UNIT_MAIN(filemap_suite)
