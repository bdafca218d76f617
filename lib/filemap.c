/*
 * filemap.c
 *	  The file map: which files of a cluster a bulk operation rewrites.
 *
 * Owns: pct_filemap_build(), pct_filemap_free(), pct_file_path(); the rules of FORMAT
 * sections 3 and 4 that say which files are encrypted (main forks of
 * permanent and unlogged relations, WAL segments), which relations are
 * unlogged, and the checks FORMAT 5 and the block sizes require before any
 * file is rewritten in place (no hard links, no symbolic links, whole
 * blocks).
 *
 * Theory of operation:
 *	1. Resolve PGDATA to an absolute path without symbolic links.
 *	2. Scan global/ (tablespace 1664), every database directory of base/
 *	   (tablespace 1663) and, for each entry of pg_tblspc (a link, or a
 *	   directory for an in-place tablespace), this cluster's
 *	   PG_<major>_<catversion> directory and its database directories.
 *	   Other PG_* directories there belong to other clusters; a tablespace
 *	   without this cluster's directory is refused.  No symbolic link is
 *	   followed but the pg_tblspc entries and pg_wal itself.
 *	3. In each relation directory keep the main-fork segments (N, N.S),
 *	   remember which relfilenodes have an _init fork, and at the end of
 *	   the directory mark the segments of those as unlogged (one sorted set
 *	   per directory, binary search: no quadratic work).
 *	4. Scan pg_wal for segments (24 upper-case hex digits) and .partial
 *	   files.
 *	5. Every kept file is checked with lstat(): a regular file, one link,
 *	   a size of whole blocks (relations: at most one segment; WAL: exactly
 *	   one segment, or whole WAL pages for a .partial).  Problems are
 *	   collected over the whole scan and reported together, the first few
 *	   files of each kind by name, so one run shows the user everything.
 *	6. No directory may be reached twice (two tablespace links to one
 *	   place would have its files rewritten twice).
 *	7. Sort (relations by tablespace, database, relfilenode, segment, then
 *	   WAL by name; in place) and add up the sizes.
 * An entry takes 32 bytes: it names its directory by number, and its own
 * name is rebuilt from the numbers it holds (pct_file_path), which is
 * exact because the names kept have no leading zeros (relations) or are
 * upper-case hex of a fixed length (WAL).  A million files take 32 MB.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pct_internal.h"

/* Tablespace OIDs of pg_default (base/) and pg_global (global/). */
#define TS_DEFAULT		1663
#define TS_GLOBAL		1664

/* WAL file names: 24 hex digits, optionally followed by this. */
#define WAL_NAME_LEN	24
#define WAL_PARTIAL		".partial"

/* How many files of each kind of problem are named in the report. */
#define MAX_NAMED		10

_Static_assert(sizeof(pct_file) == 32, "a file map entry takes 32 bytes");

/* Kinds of problems that make a file unfit for rewriting in place. */
typedef enum problem_kind
{
	PROB_TYPE,					/* symbolic link, not a regular file... */
	PROB_LINKS,					/* more than one hard link */
	PROB_SIZE,					/* not whole blocks */
	NUM_PROB
} problem_kind;

typedef struct problem_list
{
	size_t		count;
	char	   *named[MAX_NAMED];	/* "\"path\" (reason)" */
	char	   *first_path;		/* path of the first one */
	char	   *first_reason;	/* and its reason */
} problem_list;

/* A directory already scanned, to find one reached twice. */
typedef struct seen_dir
{
	dev_t		dev;
	ino_t		ino;
	uint32_t	ts;				/* tablespace OID; 0 for pg_wal */
	char	   *path;
} seen_dir;

/* What a relation directory entry's name says. */
typedef enum relname_kind
{
	REL_NONE,					/* not a relation file */
	REL_MAIN,					/* main fork segment */
	REL_INIT,					/* _init fork (segment) */
	REL_OTHER					/* _fsm, _vm fork */
} relname_kind;

typedef struct builder
{
	const pct_control *ctl;
	int			major;
	pct_file   *files;
	size_t		nfiles;
	size_t		capfiles;
	uint32_t   *inits;			/* relfilenodes with an _init fork, per
								 * directory */
	size_t		ninits;
	size_t		capinits;
	seen_dir   *dirs;
	size_t		ndirs;
	size_t		capdirs;
	char	  **fdirs;			/* the map's directories (of its files) */
	size_t		nfdirs;
	size_t		capfdirs;
	problem_list problems[NUM_PROB];
} builder;

/* ---- small helpers ---- */

static pct_rc
no_memory(void)
{
	return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
}

/*
 * Room for at least need elements of size elsize in arr (capacity *cap):
 * arr itself or a larger copy (the caller stores it), NULL when out of
 * memory (arr is then unchanged and still owned by the caller).
 */
static void *
grow(void *arr, size_t *cap, size_t need, size_t elsize)
{
	size_t		ncap;
	void	   *p;

	if (arr != NULL && need <= *cap)
		return arr;
	ncap = *cap < 64 ? 64 : *cap;
	while (ncap < need)
	{
		if (ncap > SIZE_MAX / 2 / elsize)
			return NULL;
		ncap *= 2;
	}
	p = realloc(arr, ncap * elsize);
	if (p != NULL)
		*cap = ncap;
	return p;
}

/* "dir/name" in new memory, or NULL. */
static char *
join_path(const char *dir, const char *name)
{
	size_t		dl = strlen(dir);
	size_t		nl = strlen(name);
	char	   *p = malloc(dl + 1 + nl + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, dir, dl);
	p[dl] = '/';
	memcpy(p + dl + 1, name, nl + 1);
	return p;
}

/*
 * Parse n decimal digits at s as an OID-like number: 1 to 4294967295,
 * written without leading zeros (as the server writes them).
 */
static bool
parse_number(const char *s, size_t n, uint32_t *out)
{
	uint64_t	v = 0;

	if (n == 0 || n > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t) v;
	return true;
}

/* Is the whole name a number (database, tablespace OID)? */
static bool
parse_oid_name(const char *name, uint32_t *out)
{
	return parse_number(name, strlen(name), out);
}

/*
 * Parse a relation file name: NODE[_FORK][.SEG], NODE and SEG numbers as
 * above, FORK one of fsm, vm, init.  Temporary relations (tB_N...) and
 * everything else are REL_NONE.
 */
static relname_kind
parse_relname(const char *name, uint32_t *node, uint32_t *segno)
{
	size_t		n = strspn(name, "0123456789");
	const char *p = name + n;
	relname_kind kind = REL_MAIN;

	if (!parse_number(name, n, node))
		return REL_NONE;
	if (*p == '_')
	{
		if (strncmp(p, "_init", 5) == 0)
		{
			kind = REL_INIT;
			p += 5;
		}
		else if (strncmp(p, "_fsm", 4) == 0)
		{
			kind = REL_OTHER;
			p += 4;
		}
		else if (strncmp(p, "_vm", 3) == 0)
		{
			kind = REL_OTHER;
			p += 3;
		}
		else
			return REL_NONE;
	}
	*segno = 0;
	if (*p == '.')
	{
		p++;
		n = strspn(p, "0123456789");
		if (p[n] != '\0' || !parse_number(p, n, segno))
			return REL_NONE;
		return kind;
	}
	return *p == '\0' ? kind : REL_NONE;
}

/* A WAL segment (24 upper-case hex digits) or a .partial one? */
static bool
is_wal_name(const char *name, bool *partial)
{
	if (strspn(name, "0123456789ABCDEF") != WAL_NAME_LEN)
		return false;
	if (name[WAL_NAME_LEN] == '\0')
	{
		*partial = false;
		return true;
	}
	if (strcmp(name + WAL_NAME_LEN, WAL_PARTIAL) == 0)
	{
		*partial = true;
		return true;
	}
	return false;
}

/* ---- problems ---- */

static const char *
type_reason(mode_t mode, bool want_dir)
{
	if (S_ISLNK(mode))
		return "a symbolic link";
	return want_dir ? "not a directory" : "not a regular file";
}

/* Note a problem with path; reason is a short phrase. */
static pct_rc
add_problem(builder *b, problem_kind kind, const char *path,
			const char *reason)
{
	problem_list *pl = &b->problems[kind];

	if (pl->count == 0)
	{
		pl->first_path = strdup(path);
		pl->first_reason = strdup(reason);
		if (pl->first_path == NULL || pl->first_reason == NULL)
			return no_memory();
	}
	if (pl->count < MAX_NAMED)
	{
		size_t		len = strlen(path) + strlen(reason) + 8;
		char	   *s = malloc(len);

		if (s == NULL)
			return no_memory();
		snprintf(s, len, "\"%s\" (%s)", path, reason);
		pl->named[pl->count] = s;
	}
	pl->count++;
	return PCT_OK;
}

static pct_rc
add_problem_at(builder *b, problem_kind kind, const char *dir,
			   const char *name, const char *reason)
{
	char	   *path = join_path(dir, name);
	pct_rc		rc;

	if (path == NULL)
		return no_memory();
	rc = add_problem(b, kind, path, reason);
	free(path);
	return rc;
}

static const char *const problem_hint[NUM_PROB] = {
	"Only the tablespace links in pg_tblspc and the pg_wal directory may be "
	"symbolic links.",
	"Files are rewritten in place, which would also change every other link "
	"to them (a cluster upgraded with pg_upgrade --link shares its files "
	"with the old one).  Remove the other links, or replace each file with a "
	"copy of itself.",
	"Relation files must hold whole blocks and at most one segment, WAL "
	"files whole WAL pages and one segment; the cluster may be damaged.",
};

/* Report one kind of problem; PCT_OK when there is none. */
static pct_rc
report_problems(const problem_list *pl, problem_kind kind)
{
	char	   *detail;
	size_t		len = 64;
	size_t		named = pl->count < MAX_NAMED ? pl->count : MAX_NAMED;
	pct_rc		rc;

	if (pl->count == 0)
		return PCT_OK;
	if (pl->count == 1)
	{
		switch (kind)
		{
			case PROB_TYPE:
				return pct_fail(PCT_ERR_STATE, NULL, problem_hint[kind],
								"\"%s\" is %s", pl->first_path,
								pl->first_reason);
			case PROB_LINKS:
				return pct_fail(PCT_ERR_STATE, NULL, problem_hint[kind],
								"file \"%s\" has %s", pl->first_path,
								pl->first_reason);
			case PROB_SIZE:
			case NUM_PROB:
				break;
		}
		return pct_fail(PCT_ERR_STATE, NULL, problem_hint[kind],
						"file \"%s\" has an invalid size: %s",
						pl->first_path, pl->first_reason);
	}

	for (size_t i = 0; i < named; i++)
		len += strlen(pl->named[i]) + 2;
	detail = malloc(len);
	if (detail == NULL)
		return no_memory();
	detail[0] = '\0';
	for (size_t i = 0; i < named; i++)
	{
		if (i > 0)
			strcat(detail, ", ");
		strcat(detail, pl->named[i]);
	}
	if (pl->count > named)
		snprintf(detail + strlen(detail), len - strlen(detail),
				 ", and %zu more.", pl->count - named);
	else
		strcat(detail, ".");

	switch (kind)
	{
		case PROB_TYPE:
			rc = pct_fail(PCT_ERR_STATE, detail, problem_hint[kind],
						  "%zu files or directories have an unexpected type",
						  pl->count);
			break;
		case PROB_LINKS:
			rc = pct_fail(PCT_ERR_STATE, detail, problem_hint[kind],
						  "%zu files have more than one hard link",
						  pl->count);
			break;
		default:
			rc = pct_fail(PCT_ERR_STATE, detail, problem_hint[kind],
						  "%zu files have an invalid size", pl->count);
			break;
	}
	free(detail);
	return rc;
}

/* ---- directories ---- */

/* Remember a directory of tablespace ts by identity (see check_dirs). */
static pct_rc
remember_dir(builder *b, const char *path, uint32_t ts,
			 const struct stat *st)
{
	seen_dir   *dirs = grow(b->dirs, &b->capdirs, b->ndirs + 1,
							sizeof(seen_dir));

	if (dirs == NULL)
		return no_memory();
	b->dirs = dirs;
	b->dirs[b->ndirs].path = strdup(path);
	if (b->dirs[b->ndirs].path == NULL)
		return no_memory();
	b->dirs[b->ndirs].dev = st->st_dev;
	b->dirs[b->ndirs].ino = st->st_ino;
	b->dirs[b->ndirs].ts = ts;
	b->ndirs++;
	return PCT_OK;
}

static int
cmp_dir(const void *pa, const void *pb)
{
	const seen_dir *a = pa;
	const seen_dir *b = pb;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return strcmp(a->path, b->path);
}

/*
 * A directory scanned twice (reached through two tablespace links) would
 * have its files rewritten twice: refuse.
 */
static pct_rc
check_dirs(builder *b)
{
	const seen_dir *x = NULL;
	const seen_dir *y = NULL;

	if (b->ndirs < 2)
		return PCT_OK;
	qsort(b->dirs, b->ndirs, sizeof(seen_dir), cmp_dir);
	/* Of all directories reached twice, name the top-most one. */
	for (size_t i = 1; i < b->ndirs; i++)
	{
		if (b->dirs[i].dev == b->dirs[i - 1].dev &&
			b->dirs[i].ino == b->dirs[i - 1].ino &&
			(x == NULL || strlen(b->dirs[i].path) < strlen(y->path)))
		{
			x = &b->dirs[i - 1];
			y = &b->dirs[i];
		}
	}
	if (x == NULL)
		return PCT_OK;
	if (x->ts != y->ts && x->ts != 0 && y->ts != 0)
		return pct_fail(PCT_ERR_STATE, NULL,
						"Each tablespace must have a directory of its own.",
						"tablespaces %u and %u share directory \"%s\"",
						x->ts < y->ts ? x->ts : y->ts,
						x->ts < y->ts ? y->ts : x->ts, y->path);
	if (strcmp(x->path, y->path) == 0)
		return pct_fail(PCT_ERR_STATE, NULL, NULL,
						"directory \"%s\" is reached twice", x->path);
	return pct_fail(PCT_ERR_STATE, NULL, NULL,
					"directory \"%s\" is the same as \"%s\"",
					x->path, y->path);
}

/*
 * Open a directory to scan; path must not be a symbolic link (that is a
 * problem, as is any other non-directory: *d is then NULL).  remember:
 * note its identity, as a directory of tablespace ts, for check_dirs().
 */
static pct_rc
open_dir(builder *b, const char *path, bool remember, uint32_t ts, DIR **d)
{
	struct stat st;
	int			fd;
	pct_rc		rc;

	*d = NULL;
	if (lstat(path, &st) != 0)
		return pct_syserr("could not stat directory \"%s\"", path);
	if (!S_ISDIR(st.st_mode))
		return add_problem(b, PROB_TYPE, path, type_reason(st.st_mode, true));
	if (remember && (rc = remember_dir(b, path, ts, &st)) != PCT_OK)
		return rc;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return pct_syserr("could not open directory \"%s\"", path);
	*d = fdopendir(fd);
	if (*d == NULL)
	{
		rc = pct_syserr("could not open directory \"%s\"", path);
		close(fd);
		return rc;
	}
	return PCT_OK;
}

/* readdir() that tells the end from an error. */
static pct_rc
next_entry(DIR *d, const char *path, struct dirent **de)
{
	errno = 0;
	*de = readdir(d);
	if (*de == NULL && errno != 0)
		return pct_syserr("could not read directory \"%s\"", path);
	return PCT_OK;
}

/* ---- files ---- */

/*
 * Check a file to be rewritten (lstat data st, name in directory dir) and,
 * when it is fit, add it to the map.
 */
static pct_rc
add_file(builder *b, const char *dir, uint32_t dirno, const char *name,
		 const struct stat *st, pct_file_kind kind, bool partial,
		 uint32_t ts, uint32_t db, uint32_t node, uint32_t segno)
{
	const pct_control *ctl = b->ctl;
	uint64_t	size = (uint64_t) st->st_size;
	char		reason[160];
	bool		ok = true;
	pct_rc		rc;
	pct_file   *f;

	if (!S_ISREG(st->st_mode))
		return add_problem_at(b, PROB_TYPE, dir, name,
							  type_reason(st->st_mode, false));
	if (st->st_nlink > 1)
	{
		snprintf(reason, sizeof(reason), "%ju hard links",
				 (uintmax_t) st->st_nlink);
		if ((rc = add_problem_at(b, PROB_LINKS, dir, name, reason)) != PCT_OK)
			return rc;
		ok = false;
	}

	reason[0] = '\0';
	if (kind == PCT_FILE_RELATION)
	{
		uint64_t	segbytes = (uint64_t) ctl->relseg_size * ctl->blcksz;

		if (size % ctl->blcksz != 0)
			snprintf(reason, sizeof(reason),
					 "%" PRIu64 " bytes, not a multiple of the block size %u",
					 size, ctl->blcksz);
		else if (size > segbytes)
			snprintf(reason, sizeof(reason),
					 "%" PRIu64 " bytes, more than a segment of %u blocks",
					 size, ctl->relseg_size);
		/* Block numbers (segno * relseg_size + i) must stay below
		 * InvalidBlockNumber (0xFFFFFFFF). */
		else if ((uint64_t) segno * ctl->relseg_size + size / ctl->blcksz >
				 UINT32_MAX)
			snprintf(reason, sizeof(reason),
					 "segment %u goes past the largest block number", segno);
	}
	else
	{
		if (size % ctl->xlog_blcksz != 0)
			snprintf(reason, sizeof(reason),
					 "%" PRIu64 " bytes, not a multiple of the WAL block "
					 "size %u", size, ctl->xlog_blcksz);
		else if (partial ? size > ctl->xlog_seg_size :
				 size != ctl->xlog_seg_size)
			snprintf(reason, sizeof(reason),
					 "%" PRIu64 " bytes, %s the WAL segment size %u", size,
					 partial ? "more than" : "not", ctl->xlog_seg_size);
	}
	if (reason[0] != '\0')
	{
		if ((rc = add_problem_at(b, PROB_SIZE, dir, name, reason)) != PCT_OK)
			return rc;
		ok = false;
	}
	if (!ok)
		return PCT_OK;

	f = grow(b->files, &b->capfiles, b->nfiles + 1, sizeof(pct_file));
	if (f == NULL)
		return no_memory();
	b->files = f;
	f += b->nfiles;
	memset(f, 0, sizeof(*f));
	f->dir = dirno;
	f->kind = (uint8_t) kind;
	f->size = size;
	if (kind == PCT_FILE_WAL)
	{
		/* is_wal_name checked the 24 upper-case hex digits */
		for (int k = 0; k < 3; k++)
			for (int i = 0; i < 8; i++)
			{
				char		c = name[8 * k + i];

				f->wal_name[k] = f->wal_name[k] << 4 |
					(uint32_t) (c <= '9' ? c - '0' : c - 'A' + 10);
			}
		f->partial = partial;
	}
	else
	{
		f->tablespace = ts;
		f->database = db;
		f->relfilenode = node;
		f->segno = segno;
	}
	b->nfiles++;
	return PCT_OK;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a;
	uint32_t	y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

/* Add path to the map's directories; its index in *dirno. */
static pct_rc
add_fdir(builder *b, const char *path, uint32_t *dirno)
{
	char	  **d;

	if (b->nfdirs >= UINT32_MAX ||
		(d = grow(b->fdirs, &b->capfdirs, b->nfdirs + 1, sizeof(char *))) == NULL)
		return no_memory();
	b->fdirs = d;
	if ((d[b->nfdirs] = strdup(path)) == NULL)
		return no_memory();
	*dirno = (uint32_t) b->nfdirs++;
	return PCT_OK;
}

/*
 * Scan a directory of relation files (global/, base/DB,
 * pg_tblspc/TS/PG_x/DB).
 */
static pct_rc
scan_reldir(builder *b, const char *path, uint32_t ts, uint32_t db)
{
	DIR		   *d;
	struct dirent *de;
	size_t		first = b->nfiles;
	uint32_t	dirno;
	pct_rc		rc;

	if ((rc = open_dir(b, path, true, ts, &d)) != PCT_OK || d == NULL)
		return rc;
	if ((rc = add_fdir(b, path, &dirno)) != PCT_OK)
	{
		closedir(d);
		return rc;
	}
	b->ninits = 0;
	for (;;)
	{
		uint32_t	node,
					segno;
		relname_kind kind;
		struct stat st;

		if ((rc = next_entry(d, path, &de)) != PCT_OK || de == NULL)
			break;
		kind = parse_relname(de->d_name, &node, &segno);
		if (kind == REL_NONE || kind == REL_OTHER)
			continue;
		if (kind == REL_INIT)
		{
			/* Only the name matters: the relation is unlogged. */
			uint32_t   *inits = grow(b->inits, &b->capinits, b->ninits + 1,
									 sizeof(uint32_t));

			if (inits == NULL)
			{
				rc = no_memory();
				break;
			}
			b->inits = inits;
			b->inits[b->ninits++] = node;
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			rc = pct_syserr("could not stat file \"%s/%s\"", path,
							de->d_name);
			break;
		}
		rc = add_file(b, path, dirno, de->d_name, &st, PCT_FILE_RELATION,
					  false, ts, db, node, segno);
		if (rc != PCT_OK)
			break;
	}
	closedir(d);
	if (rc != PCT_OK)
		return rc;

	/* Mark the unlogged relations of this directory. */
	if (b->ninits > 0)
	{
		qsort(b->inits, b->ninits, sizeof(uint32_t), cmp_u32);
		for (size_t i = first; i < b->nfiles; i++)
			b->files[i].unlogged =
				bsearch(&b->files[i].relfilenode, b->inits, b->ninits,
						sizeof(uint32_t), cmp_u32) != NULL;
	}
	return PCT_OK;
}

/* Scan a directory of database directories (base/, a tablespace's
 * PG_<major>_<catversion>). */
static pct_rc
scan_dbparent(builder *b, const char *path, uint32_t ts)
{
	DIR		   *d;
	struct dirent *de;
	pct_rc		rc;

	if ((rc = open_dir(b, path, true, ts, &d)) != PCT_OK || d == NULL)
		return rc;
	for (;;)
	{
		uint32_t	db;
		char	   *sub;

		if ((rc = next_entry(d, path, &de)) != PCT_OK || de == NULL)
			break;
		/* Databases are named by OID; pgsql_tmp and the like are not. */
		if (!parse_oid_name(de->d_name, &db))
			continue;
		sub = join_path(path, de->d_name);
		if (sub == NULL)
		{
			rc = no_memory();
			break;
		}
		rc = scan_reldir(b, sub, ts, db);
		free(sub);
		if (rc != PCT_OK)
			break;
	}
	closedir(d);
	return rc;
}

/* Scan each tablespace of pg_tblspc: this cluster's directory only. */
static pct_rc
scan_tablespaces(builder *b, const char *pgdata)
{
	char		path[PCT_MAXPATH];
	char		vdir[64];
	DIR		   *d;
	struct dirent *de;
	pct_rc		rc;

	if ((rc = pct_path(path, "%s/pg_tblspc", pgdata)) != PCT_OK)
		return rc;
	snprintf(vdir, sizeof(vdir), "PG_%d_%u", b->major,
			 b->ctl->catalog_version);
	if ((rc = open_dir(b, path, false, 0, &d)) != PCT_OK || d == NULL)
		return rc;
	for (;;)
	{
		uint32_t	ts;
		char		link[PCT_MAXPATH];
		char		resolved[PATH_MAX];
		char		verpath[PCT_MAXPATH];
		struct stat st;

		if ((rc = next_entry(d, path, &de)) != PCT_OK || de == NULL)
			break;
		if (!parse_oid_name(de->d_name, &ts))
			continue;
		if ((rc = pct_path(link, "%s/%s", path, de->d_name)) != PCT_OK)
			break;
		/* A link to the tablespace, or (allow_in_place_tablespaces) a
		 * directory. */
		if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
		{
			rc = pct_syserr("could not stat tablespace link \"%s\"", link);
			break;
		}
		if (!S_ISDIR(st.st_mode))
		{
			rc = add_problem(b, PROB_TYPE, link, "not a directory");
			if (rc != PCT_OK)
				break;
			continue;
		}
		if (realpath(link, resolved) == NULL)
		{
			rc = pct_syserr("could not resolve tablespace link \"%s\"", link);
			break;
		}
		if ((rc = pct_path(verpath, "%s/%s", resolved, vdir)) != PCT_OK)
			break;
		if (lstat(verpath, &st) != 0)
		{
			if (errno == ENOENT)
			{
				char		detail[PCT_MAXPATH + 64];

				snprintf(detail, sizeof(detail),
						 "Directory \"%s\" does not exist.", verpath);
				rc = pct_fail(PCT_ERR_STATE, detail, NULL,
							  "tablespace %u (\"%s\") has no directory for "
							  "this cluster", ts, resolved);
			}
			else
				rc = pct_syserr("could not stat directory \"%s\"", verpath);
			break;
		}
		if ((rc = scan_dbparent(b, verpath, ts)) != PCT_OK)
			break;
	}
	closedir(d);
	return rc;
}

/* Scan pg_wal (which may be a link: initdb -X). */
static pct_rc
scan_wal(builder *b, const char *pgdata)
{
	char		link[PCT_MAXPATH];
	char		path[PATH_MAX];
	DIR		   *d;
	struct dirent *de;
	struct stat st;
	uint32_t	dirno;
	pct_rc		rc;

	if ((rc = pct_path(link, "%s/pg_wal", pgdata)) != PCT_OK)
		return rc;
	if (stat(link, &st) != 0)
		return pct_syserr("could not stat directory \"%s\"", link);
	if (!S_ISDIR(st.st_mode))
		return add_problem(b, PROB_TYPE, link, "not a directory");
	if (realpath(link, path) == NULL)
		return pct_syserr("could not resolve directory \"%s\"", link);
	if ((rc = open_dir(b, path, true, 0, &d)) != PCT_OK || d == NULL)
		return rc;
	if ((rc = add_fdir(b, path, &dirno)) != PCT_OK)
	{
		closedir(d);
		return rc;
	}
	for (;;)
	{
		bool		partial;

		if ((rc = next_entry(d, path, &de)) != PCT_OK || de == NULL)
			break;
		/* Not .history, .backup, archive_status/, xlogtemp.N */
		if (!is_wal_name(de->d_name, &partial))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			rc = pct_syserr("could not stat file \"%s/%s\"", path,
							de->d_name);
			break;
		}
		rc = add_file(b, path, dirno, de->d_name, &st, PCT_FILE_WAL, partial,
					  0, 0, 0, 0);
		if (rc != PCT_OK)
			break;
	}
	closedir(d);
	return rc;
}

/* ---- the map ---- */

static int
cmp_file(const void *pa, const void *pb)
{
	const pct_file *a = pa;
	const pct_file *b = pb;

	if (a->kind != b->kind)
		return a->kind == PCT_FILE_RELATION ? -1 : 1;
	if (a->kind == PCT_FILE_WAL)
	{
		/* as the names compare: 24 hex digits, then ".partial" */
		for (int k = 0; k < 3; k++)
			if (a->wal_name[k] != b->wal_name[k])
				return a->wal_name[k] < b->wal_name[k] ? -1 : 1;
		return (int) a->partial - (int) b->partial;
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
 * Sort the files in place (heapsort): qsort may allocate a copy of the
 * whole array, which for millions of files would double the map's memory.
 */
static void
sift_down(pct_file *f, size_t root, size_t n)
{
	for (;;)
	{
		size_t		child = 2 * root + 1;
		pct_file	tmp;

		if (child >= n)
			return;
		if (child + 1 < n && cmp_file(&f[child], &f[child + 1]) < 0)
			child++;
		if (cmp_file(&f[root], &f[child]) >= 0)
			return;
		tmp = f[root];
		f[root] = f[child];
		f[child] = tmp;
		root = child;
	}
}

static void
sort_files(pct_file *f, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(f, i, n);
	for (size_t end = n; end-- > 1;)
	{
		pct_file	tmp = f[0];

		f[0] = f[end];
		f[end] = tmp;
		sift_down(f, 0, end);
	}
}

static void
free_builder(builder *b)
{
	free(b->files);
	for (size_t i = 0; i < b->nfdirs; i++)
		free(b->fdirs[i]);
	free(b->fdirs);
	free(b->inits);
	for (size_t i = 0; i < b->ndirs; i++)
		free(b->dirs[i].path);
	free(b->dirs);
	for (int k = 0; k < NUM_PROB; k++)
	{
		problem_list *pl = &b->problems[k];

		for (size_t i = 0; i < pl->count && i < MAX_NAMED; i++)
			free(pl->named[i]);
		free(pl->first_path);
		free(pl->first_reason);
	}
	memset(b, 0, sizeof(*b));
}

pct_rc
pct_filemap_build(const char *pgdata, int major, const pct_control *ctl,
				  pct_filemap *fm)
{
	builder		b;
	char		root[PATH_MAX];
	char		path[PCT_MAXPATH];
	pct_rc		rc;

	if (fm == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "no file map given");
	memset(fm, 0, sizeof(*fm));
	if (pgdata == NULL || ctl == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"no data directory or control data given");
	if (ctl->blcksz == 0 || ctl->relseg_size == 0 || ctl->xlog_blcksz == 0 ||
		ctl->xlog_seg_size == 0 || ctl->xlog_seg_size % ctl->xlog_blcksz != 0)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"invalid block or segment sizes in control data");
	if (major <= 0)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"invalid major version %d", major);
	if (realpath(pgdata, root) == NULL)
		return pct_syserr("could not resolve data directory \"%s\"", pgdata);

	memset(&b, 0, sizeof(b));
	b.ctl = ctl;
	b.major = major;

	if ((rc = pct_path(path, "%s/global", root)) == PCT_OK &&
		(rc = scan_reldir(&b, path, TS_GLOBAL, 0)) == PCT_OK &&
		(rc = pct_path(path, "%s/base", root)) == PCT_OK &&
		(rc = scan_dbparent(&b, path, TS_DEFAULT)) == PCT_OK &&
		(rc = scan_tablespaces(&b, root)) == PCT_OK &&
		(rc = scan_wal(&b, root)) == PCT_OK)
		rc = check_dirs(&b);

	if (rc == PCT_OK)
	{
		for (int k = 0; k < NUM_PROB; k++)
		{
			pct_rc		r = report_problems(&b.problems[k], (problem_kind) k);

			if (r != PCT_OK && rc == PCT_OK)
				rc = r;
		}
	}
	if (rc != PCT_OK)
	{
		free_builder(&b);
		return rc;
	}

	sort_files(b.files, b.nfiles);
	for (size_t i = 0; i < b.nfiles; i++)
	{
		if (b.files[i].kind == PCT_FILE_RELATION)
			fm->relation_bytes += b.files[i].size;
		else
			fm->wal_bytes += b.files[i].size;
	}
	fm->files = b.files;
	fm->nfiles = b.nfiles;
	fm->dirs = b.fdirs;
	fm->ndirs = b.nfdirs;
	b.files = NULL;
	b.nfiles = 0;
	b.fdirs = NULL;
	b.nfdirs = 0;
	free_builder(&b);
	return PCT_OK;
}

void
pct_filemap_free(pct_filemap *fm)
{
	if (fm == NULL)
		return;
	free(fm->files);
	for (size_t i = 0; i < fm->ndirs; i++)
		free(fm->dirs[i]);
	free(fm->dirs);
	memset(fm, 0, sizeof(*fm));
}

const char *
pct_file_path(const pct_filemap *fm, const pct_file *f, char *buf)
{
	const char *dir = f->dir < fm->ndirs ? fm->dirs[f->dir] : "?";

	if (f->kind == PCT_FILE_WAL)
		snprintf(buf, PCT_MAXPATH, "%s/%08X%08X%08X%s", dir, f->wal_name[0],
				 f->wal_name[1], f->wal_name[2], f->partial ? WAL_PARTIAL : "");
	else if (f->segno != 0)
		snprintf(buf, PCT_MAXPATH, "%s/%u.%u", dir, f->relfilenode, f->segno);
	else
		snprintf(buf, PCT_MAXPATH, "%s/%u", dir, f->relfilenode);
	return buf;
}
