/*
 * pct_testutil.c
 *	  Test-only helper of the TAP tests (never installed): small operations
 *	  on a data directory through libpgcrypttools.
 *
 *	  pct_testutil control-show PGDATA
 *		  print "version N", "encryption N" (0 for version 1300), "state N",
 *		  "checksums N" of global/pg_control, one per line
 *	  pct_testutil control-1400 PGDATA VALUE
 *		  convert pg_control from 1300 to 1400 with the encryption field
 *		  VALUE (method 1..3 for generation 2, key length in bits for 1)
 *	  pct_testutil control-1300 PGDATA
 *		  convert pg_control from 1400 back to 1300
 *	  pct_testutil unwrap KEYDIR KEKHEX
 *		  check a key sub-directory (e.g. $PGDATA/pg_cryptokeys/live) for
 *		  the current user, unwrap both keys with the KEK and print
 *		  "generation G", "keylen L", "key 0 HEX", "key 1 HEX" (HEX: the L
 *		  data key bytes)
 *
 *	  pct_testutil journal-show PGDATA
 *		  print the newest journal header: "op N", "mode N" (pct_op,
 *		  pct_resilience values), "complete 0|1", "done FILE OFFSET BYTES";
 *		  then "zone I PATH OFFSET LEN" per hotzone of the unfinished
 *		  batches (none, the active one, or the active one and the one
 *		  before it whose data may not be durable yet), oldest first; I
 *		  counts their zones from 0; PATH from the file map built as
 *		  pct_engine does
 *
 *	  The checks below print one line per violation (the first 200) and a
 *	  summary line last, and exit 0 when there is none, 1 when there are
 *	  violations, 2 when they cannot check.  Paths are the file map's
 *	  (absolute) or relative to the data directories; PAGE is the page
 *	  index within the file (offset / 8192).
 *
 *	  pct_testutil iv-audit PGDATA
 *		  PGDATA encrypted (pg_control 1400): group every non-new page of
 *		  every relation main fork by its IV (FORMAT 3); a group whose
 *		  bytes 16..8191 differ is "SHARED-IV PATH:PAGE PATH:PAGE" (its first
 *		  differing pair), unless all its pages have real LSNs (>= the WAL
 *		  segment size) and every differing pair lies in different
 *		  databases ("known-limit ...", FORMAT 3.1).  Summary:
 *		  "pages N groups-identical A known-limit B violations C" (groups).
 *	  pct_testutil compare-encrypted ORIG ENC
 *		  ORIG a stopped plain cluster (its pg_tblspc links leading to its
 *		  own copies), ENC the same after encryption.  Relation pages of
 *		  ORIG's file map: new pages byte-identical; others keep pd_flags,
 *		  pd_lower, pd_upper; keep a real LSN, or (LSN below the segment
 *		  size, or unlogged) carry one fake LSN per relation (permanent:
 *		  1..segsize-1, unlogged: >= 1000), unique per kind; bytes 16..8191
 *		  differ, with at most 8 equal aligned 16-byte blocks.  WAL pages
 *		  in use: header (24/40 bytes) identical, the rest differs likewise;
 *		  others identical.  Every other file identical except pg_control,
 *		  postgresql.conf, postgresql.auto.conf; ENC may add pg_cryptokeys/.
 *		  Summary: "files N pages-encrypted A pages-new B
 *		  wal-pages-encrypted C wal-pages-unused D lsns-replaced E
 *		  violations V".
 *	  pct_testutil compare-decrypted ORIG DEC
 *		  ORIG as above, DEC the cluster after encryption and decryption:
 *		  the same regular files (pg_tblspc links followed; postmaster.pid,
 *		  postmaster.opts and log/ skipped), modes and symlink targets, no
 *		  pg_cryptokeys; relation main forks page by page equal, or
 *		  differing only in bytes 0..9 where ORIG's LSN was below the
 *		  segment size or the relation is unlogged (and then a permanent
 *		  relation's LSN is 1..segsize-1); pg_control equal but for
 *		  unloggedLSN (128..135) and the CRC (288..291); every other file
 *		  byte-identical.  Summary: "files N pages-identical A
 *		  pages-lsn-replaced B violations C".
 *
 * Exit 0 on success, 1 on failure (the library's messages on stderr), 2 on
 * bad usage (the checks: see above).  It prints data keys: a test tool,
 * never for real clusters.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg_cryptokeys.h"
#include "lib/pct_internal.h"	/* journal internals for journal-show */

static const char *progname = "pct_testutil";

static void
log_stderr(void *arg, pct_level level, const char *msg, const char *detail,
		   const char *hint)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};

	(void) arg;
	fprintf(stderr, "%s: %s: %s\n", progname,
			level <= PCT_LOG_ERROR ? names[level] : "log", msg);
	if (detail)
		fprintf(stderr, "%s: detail: %s\n", progname, detail);
	if (hint)
		fprintf(stderr, "%s: hint: %s\n", progname, hint);
}

static void
finding_stderr(void *arg, const char *path, const char *what)
{
	(void) arg;
	fprintf(stderr, "%s: problem: %s: %s\n", progname, path, what);
}

static int
failed(const char *what, pct_rc rc)
{
	fprintf(stderr, "%s: %s failed: %s\n", progname, what, pct_rc_str(rc));
	return 1;
}

static int
usage(void)
{
	fprintf(stderr,
			"usage: %s control-show PGDATA\n"
			"       %s control-1400 PGDATA VALUE\n"
			"       %s control-1300 PGDATA\n"
			"       %s unwrap KEYDIR KEKHEX\n"
			"       %s iv-audit PGDATA\n"
			"       %s compare-encrypted ORIG ENC\n"
			"       %s compare-decrypted ORIG DEC\n"
			"       %s journal-show PGDATA\n",
			progname, progname, progname, progname, progname, progname,
			progname, progname);
	return 2;
}

static int
control_show(const char *pgdata)
{
	pct_control ctl;
	pct_rc		rc;

	if ((rc = pct_control_read(pgdata, &ctl)) != PCT_OK)
		return failed("reading pg_control", rc);
	printf("version %" PRIu32 "\n", ctl.version);
	printf("encryption %" PRIu32 "\n",
		   ctl.version == PCT_CONTROL_VERSION_ENCRYPTED ? ctl.encryption : 0);
	printf("state %" PRId32 "\n", ctl.state);
	printf("checksums %" PRIu32 "\n", ctl.data_checksum_version);
	return 0;
}

static int
control_convert(const char *pgdata, const char *value)
{
	pct_control ctl;
	pct_rc		rc;

	if ((rc = pct_control_read(pgdata, &ctl)) != PCT_OK)
		return failed("reading pg_control", rc);
	if (value)
	{
		char	   *end;
		unsigned long v = strtoul(value, &end, 10);

		if (*value == '\0' || *end != '\0' || v > UINT32_MAX)
		{
			fprintf(stderr, "%s: invalid value \"%s\"\n", progname, value);
			return 2;
		}
		rc = pct_control_to_1400(&ctl, (uint32_t) v);
	}
	else
		rc = pct_control_to_1300(&ctl);
	if (rc != PCT_OK)
		return failed("converting pg_control", rc);
	if ((rc = pct_control_write(pgdata, &ctl)) != PCT_OK)
		return failed("writing pg_control", rc);
	return 0;
}

static int
unwrap(const char *dir, const char *kekhex)
{
	uint8_t    *kek;
	pct_keyset *ks;
	int			generation = 0;
	int			problems = 0;
	int			status = 1;
	pct_rc		rc;

	kek = pct_secure_alloc(PCT_KEK_LEN);
	ks = pct_secure_alloc(sizeof(*ks));
	if (kek == NULL || ks == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		goto out;
	}
	if ((rc = pct_kek_parse(kekhex, strlen(kekhex), kek)) != PCT_OK)
	{
		failed("parsing the KEK", rc);
		goto out;
	}
	rc = pct_keydir_check(dir, geteuid(), &generation, finding_stderr, NULL,
						  &problems);
	if (rc != PCT_OK)
	{
		failed("checking the key directory", rc);
		goto out;
	}
	if (problems > 0)
	{
		fprintf(stderr, "%s: %d problem(s) in \"%s\"\n", progname, problems,
				dir);
		goto out;
	}
	rc = pct_keydir_read(dir, geteuid(), kek, 0, ks);
	if (rc != PCT_OK)
	{
		failed("unwrapping", rc);
		goto out;
	}
	printf("generation %d\n", ks->generation);
	printf("keylen %d\n", ks->keylen);
	for (int id = 0; id < PCT_NUM_KEYS; id++)
	{
		const uint8_t *b = PCT_DATAKEY_BYTES(&ks->key[id]);

		printf("key %d ", id);
		for (int i = 0; i < ks->keylen; i++)
			printf("%02x", b[i]);
		printf("\n");
	}
	status = fflush(stdout) == 0 ? 0 : 1;
out:
	if (kek)
		pct_secure_free(kek, PCT_KEK_LEN);
	if (ks)
		pct_secure_free(ks, sizeof(*ks));
	return status;
}

/* ==== comparison and audit helpers (iv-audit, compare-*, journal-show) ==== */

#define CHUNK		(4 * 1024 * 1024)
#define PAGE		8192
#define MAX_SHOWN	200			/* violation lines printed per command */

static uint64_t shown;			/* violation lines printed so far */

static void
violation(const char *fmt,...)
__attribute__((format(printf, 1, 2)));

/* Print one violation line (the first MAX_SHOWN of them). */
static void
violation(const char *fmt,...)
{
	va_list		ap;

	if (shown++ >= MAX_SHOWN)
	{
		if (shown == MAX_SHOWN + 1)
			printf("(further violations not shown)\n");
		return;
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* PG_VERSION, pg_control and the file map of a data directory, as the
 * tools build them. */
typedef struct cluster_info
{
	const char *pgdata;
	int			major;
	pct_control ctl;
	pct_filemap fm;
} cluster_info;

static bool
cluster_load(const char *pgdata, cluster_info *ci)
{
	pct_rc		rc;

	memset(ci, 0, sizeof(*ci));
	ci->pgdata = pgdata;
	if ((rc = pct_cluster_check_dir(pgdata, &ci->major)) != PCT_OK)
		failed("checking the data directory", rc);
	else if ((rc = pct_control_read(pgdata, &ci->ctl)) != PCT_OK)
		failed("reading pg_control", rc);
	else if ((rc = pct_filemap_build(pgdata, ci->major, &ci->ctl, &ci->fm)) != PCT_OK)
		failed("building the file map", rc);
	return rc == PCT_OK;
}

/* The absolute path of a map file, in one of four buffers used in turn
 * (a message names up to two). */
static const char *
fpath(const pct_filemap *fm, const pct_file *f)
{
	static char bufs[4][PCT_MAXPATH];
	static unsigned next;

	return pct_file_path(fm, f, bufs[next++ % 4]);
}

/* Path of a map file relative to its data directory (tablespace files
 * through pg_tblspc/TS/PG_<major>_<catversion>/). */
static void
map_relpath(const cluster_info *ci, const pct_file *f, char *buf, size_t len)
{
	size_t		n;

	if (f->kind == PCT_FILE_WAL)
	{
		const char *path = fpath(&ci->fm, f);

		snprintf(buf, len, "pg_wal/%s", strrchr(path, '/') + 1);
		return;
	}
	if (f->tablespace == 1664)
		n = (size_t) snprintf(buf, len, "global/%u", f->relfilenode);
	else if (f->tablespace == 1663)
		n = (size_t) snprintf(buf, len, "base/%u/%u", f->database, f->relfilenode);
	else
		n = (size_t) snprintf(buf, len, "pg_tblspc/%u/PG_%d_%u/%u/%u",
							  f->tablespace, ci->major, ci->ctl.catalog_version,
							  f->database, f->relfilenode);
	if (f->segno > 0 && n < len)
		snprintf(buf + n, len - n, ".%u", f->segno);
}

static bool
same_rel(const pct_file *a, const pct_file *b)
{
	return a->kind == PCT_FILE_RELATION && b->kind == PCT_FILE_RELATION &&
		a->tablespace == b->tablespace && a->database == b->database &&
		a->relfilenode == b->relfilenode;
}

static int
open_ro(const char *path)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "%s: could not open file \"%s\": %s\n", progname,
				path, strerror(errno));
	return fd;
}

static void *
xmalloc(size_t len)
{
	void	   *p = malloc(len ? len : 1);

	if (p == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		exit(2);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	char	   *p = xmalloc(strlen(s) + 1);

	memcpy(p, s, strlen(s) + 1);
	return p;
}

/* Number of equal aligned 16-byte blocks of a and b in [from, to). */
static int
equal_blocks(const uint8_t *a, const uint8_t *b, size_t from, size_t to)
{
	int			n = 0;

	for (size_t o = (from + 15) & ~(size_t) 15; o + 16 <= to; o += 16)
		if (memcmp(a + o, b + o, 16) == 0)
			n++;
	return n;
}

/* ---- iv-audit ---- */

typedef struct iv_entry
{
	uint8_t		iv[16];
	uint32_t	file;
	uint32_t	page;			/* page index within the file */
} iv_entry;

static int
iv_entry_cmp(const void *pa, const void *pb)
{
	const iv_entry *a = pa,
			   *b = pb;
	int			c = memcmp(a->iv, b->iv, 16);

	if (c != 0)
		return c;
	if (a->file != b->file)
		return a->file < b->file ? -1 : 1;
	return a->page < b->page ? -1 : a->page > b->page;
}

static uint64_t
iv_lsn(const iv_entry *e)
{
	return (uint64_t) pct_get_u32(e->iv) << 32 | pct_get_u32(e->iv + 4);
}

/* Read bytes 16..8191 of a page given by an entry (exit 2 on error). */
static void
read_page_body(const cluster_info *ci, const iv_entry *e, uint8_t *page)
{
	const pct_file *f = &ci->fm.files[e->file];
	int			fd = open_ro(fpath(&ci->fm, f));

	if (fd < 0 ||
		pct_pread_all(fd, page, PAGE, (off_t) e->page * PAGE, fpath(&ci->fm, f)) != PCT_OK)
		exit(2);
	close(fd);
}

static int
iv_audit(const char *pgdata)
{
	cluster_info ci;
	iv_entry   *ents = NULL;
	size_t		nents = 0,
				cap = 0;
	uint8_t    *buf = xmalloc(CHUNK);
	uint64_t	identical = 0,
				known = 0,
				violations = 0;

	if (!cluster_load(pgdata, &ci))
		return 2;
	if (ci.ctl.version != PCT_CONTROL_VERSION_ENCRYPTED)
	{
		fprintf(stderr, "%s: \"%s\" is not encrypted (pg_control version %u)\n",
				progname, pgdata, ci.ctl.version);
		return 2;
	}
	for (uint32_t i = 0; i < ci.fm.nfiles; i++)
	{
		const pct_file *f = &ci.fm.files[i];
		int			fd;

		if (f->kind != PCT_FILE_RELATION || f->size == 0)
			continue;
		if ((fd = open_ro(fpath(&ci.fm, f))) < 0)
			return 2;
		for (uint64_t off = 0; off < f->size; off += CHUNK)
		{
			size_t		len = f->size - off < CHUNK ? (size_t) (f->size - off) : CHUNK;

			if (pct_pread_all(fd, buf, len, (off_t) off, fpath(&ci.fm, f)) != PCT_OK)
				return 2;
			for (size_t p = 0; p < len; p += PAGE)
			{
				uint32_t	page = (uint32_t) ((off + p) / PAGE);

				if (pct_page_is_new(buf + p))
					continue;
				if (nents == cap)
				{
					cap = cap ? 2 * cap : 65536;
					ents = realloc(ents, cap * sizeof(*ents));
					if (ents == NULL)
					{
						fprintf(stderr, "%s: out of memory\n", progname);
						return 2;
					}
				}
				pct_page_iv(buf + p, f->segno * ci.ctl.relseg_size + page,
							f->unlogged, ents[nents].iv);
				ents[nents].file = i;
				ents[nents].page = page;
				nents++;
			}
		}
		close(fd);
	}
	qsort(ents, nents, sizeof(*ents), iv_entry_cmp);
	for (size_t g = 0; g < nents;)
	{
		size_t		end = g + 1;
		bool		differ = false,
					limit_ok = true;
		uint8_t    *pages;

		while (end < nents && memcmp(ents[end].iv, ents[g].iv, 16) == 0)
			end++;
		if (end - g == 1)
		{
			g = end;
			continue;
		}
		pages = xmalloc((end - g) * PAGE);
		for (size_t k = g; k < end; k++)
		{
			read_page_body(&ci, &ents[k], pages + (k - g) * PAGE);
			if (iv_lsn(&ents[k]) < ci.ctl.xlog_seg_size)
				limit_ok = false;
		}
		/* every pair of differing pages must lie in different databases
		 * for the known limit of FORMAT 3.1 */
		for (size_t a = g; a < end; a++)
			for (size_t b = a + 1; b < end; b++)
			{
				if (memcmp(pages + (a - g) * PAGE + 16, pages + (b - g) * PAGE + 16,
						   PAGE - 16) == 0)
					continue;
				if (!differ)
				{
					/* report the group once, by its first differing pair */
					differ = true;
					for (size_t x = g; x < end && limit_ok; x++)
						for (size_t y = x + 1; y < end && limit_ok; y++)
							if (ci.fm.files[ents[x].file].database ==
								ci.fm.files[ents[y].file].database &&
								memcmp(pages + (x - g) * PAGE + 16,
									   pages + (y - g) * PAGE + 16, PAGE - 16) != 0)
								limit_ok = false;
					if (limit_ok)
						printf("known-limit %s:%u %s:%u\n",
							   fpath(&ci.fm, &ci.fm.files[ents[a].file]), ents[a].page,
							   fpath(&ci.fm, &ci.fm.files[ents[b].file]), ents[b].page);
					else
						violation("SHARED-IV %s:%u %s:%u",
								  fpath(&ci.fm, &ci.fm.files[ents[a].file]), ents[a].page,
								  fpath(&ci.fm, &ci.fm.files[ents[b].file]), ents[b].page);
				}
			}
		if (!differ)
			identical++;
		else if (limit_ok)
			known++;
		else
			violations++;
		free(pages);
		g = end;
	}
	printf("pages %zu groups-identical %" PRIu64 " known-limit %" PRIu64
		   " violations %" PRIu64 "\n", nents, identical, known, violations);
	free(ents);
	free(buf);
	pct_filemap_free(&ci.fm);
	return violations > 0 ? 1 : 0;
}

/* ---- directory trees (compare-encrypted, compare-decrypted) ---- */

typedef struct tree_entry
{
	char	   *rel;			/* path relative to the root */
	char	   *path;			/* full path (links of pg_tblspc followed) */
	char		type;			/* 'f' regular file, 'l' symlink, 'o' other */
	mode_t		mode;
	off_t		size;
	char	   *target;			/* symlinks: their target */
} tree_entry;

typedef struct tree
{
	tree_entry *e;
	size_t		n,
				cap;
} tree;

static void
tree_add(tree *t, const char *rel, const char *path, char type,
		 const struct stat *st, const char *target)
{
	if (t->n == t->cap)
	{
		t->cap = t->cap ? 2 * t->cap : 1024;
		t->e = realloc(t->e, t->cap * sizeof(*t->e));
		if (t->e == NULL)
		{
			fprintf(stderr, "%s: out of memory\n", progname);
			exit(2);
		}
	}
	t->e[t->n].rel = xstrdup(rel);
	t->e[t->n].path = xstrdup(path);
	t->e[t->n].type = type;
	t->e[t->n].mode = st->st_mode & 07777;
	t->e[t->n].size = st->st_size;
	t->e[t->n].target = target ? xstrdup(target) : NULL;
	t->n++;
}

/*
 * Collect every non-directory under dir (relative name rel, "" for the
 * root).  The links pg_tblspc/X are followed; no other link is.  Skipped at
 * the top: postmaster.pid, postmaster.opts, log/.
 */
static bool
tree_walk(tree *t, const char *dir, const char *rel)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	bool		ok = true;

	if (d == NULL)
	{
		fprintf(stderr, "%s: could not open directory \"%s\": %s\n",
				progname, dir, strerror(errno));
		return false;
	}
	while (ok && (de = readdir(d)) != NULL)
	{
		char		path[PCT_MAXPATH],
					r[PCT_MAXPATH];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (rel[0] == '\0' &&
			(strcmp(de->d_name, "postmaster.pid") == 0 ||
			 strcmp(de->d_name, "postmaster.opts") == 0 ||
			 strcmp(de->d_name, "log") == 0))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		snprintf(r, sizeof(r), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		if (lstat(path, &st) != 0)
		{
			fprintf(stderr, "%s: could not stat \"%s\": %s\n", progname,
					path, strerror(errno));
			ok = false;
			break;
		}
		if (S_ISLNK(st.st_mode) && strcmp(rel, "pg_tblspc") == 0)
		{
			struct stat tst;

			if (stat(path, &tst) != 0 || !S_ISDIR(tst.st_mode))
			{
				fprintf(stderr, "%s: tablespace link \"%s\" does not lead to a directory\n",
						progname, path);
				ok = false;
				break;
			}
			ok = tree_walk(t, path, r);
		}
		else if (S_ISDIR(st.st_mode))
			ok = tree_walk(t, path, r);
		else if (S_ISLNK(st.st_mode))
		{
			char		target[PCT_MAXPATH];
			ssize_t		n = readlink(path, target, sizeof(target) - 1);

			if (n < 0)
			{
				fprintf(stderr, "%s: could not read link \"%s\": %s\n",
						progname, path, strerror(errno));
				ok = false;
				break;
			}
			target[n] = '\0';
			tree_add(t, r, path, 'l', &st, target);
		}
		else
			tree_add(t, r, path, S_ISREG(st.st_mode) ? 'f' : 'o', &st, NULL);
	}
	closedir(d);
	return ok;
}

static int
tree_entry_cmp(const void *pa, const void *pb)
{
	return strcmp(((const tree_entry *) pa)->rel, ((const tree_entry *) pb)->rel);
}

static bool
tree_build(tree *t, const char *root)
{
	memset(t, 0, sizeof(*t));
	if (!tree_walk(t, root, ""))
		return false;
	qsort(t->e, t->n, sizeof(*t->e), tree_entry_cmp);
	return true;
}

static void
tree_free(tree *t)
{
	for (size_t i = 0; i < t->n; i++)
	{
		free(t->e[i].rel);
		free(t->e[i].path);
		free(t->e[i].target);
	}
	free(t->e);
}

typedef struct map_rel
{
	char	   *rel;
	size_t		file;			/* index in the map */
} map_rel;

static int
map_rel_cmp(const void *a, const void *b)
{
	return strcmp(((const map_rel *) a)->rel, ((const map_rel *) b)->rel);
}

/* The relative paths of the files of a map, sorted. */
static map_rel *
map_relpaths(const cluster_info *ci)
{
	map_rel    *v = xmalloc(ci->fm.nfiles * sizeof(map_rel));

	for (size_t i = 0; i < ci->fm.nfiles; i++)
	{
		char		r[PCT_MAXPATH];

		map_relpath(ci, &ci->fm.files[i], r, sizeof(r));
		v[i].rel = xstrdup(r);
		v[i].file = i;
	}
	qsort(v, ci->fm.nfiles, sizeof(map_rel), map_rel_cmp);
	return v;
}

/* The map file with this relative path, or NULL. */
static const pct_file *
map_lookup(const cluster_info *ci, const map_rel *v, const char *rel)
{
	map_rel		key;
	const map_rel *m;

	memcpy(&key.rel, &rel, sizeof(char *));	/* no const cast */
	key.file = 0;
	m = bsearch(&key, v, ci->fm.nfiles, sizeof(map_rel), map_rel_cmp);
	return m ? &ci->fm.files[m->file] : NULL;
}

/*
 * Compare two files byte by byte, except the byte ranges [skip[2i],
 * skip[2i+1]).  Returns 0 equal, 1 different (*where: first offset), -1
 * error.
 */
static int
compare_bytes(const char *a, const char *b, const size_t *skip, int nskip,
			  uint8_t *ba, uint8_t *bb, uint64_t *where)
{
	int			fa = open_ro(a),
				fb = fa >= 0 ? open_ro(b) : -1;
	struct stat sa,
				sb;
	int			result = 0;

	if (fa < 0 || fb < 0 || fstat(fa, &sa) != 0 || fstat(fb, &sb) != 0)
	{
		if (fa >= 0)
			close(fa);
		if (fb >= 0)
			close(fb);
		return -1;
	}
	if (sa.st_size != sb.st_size)
	{
		*where = (uint64_t) (sa.st_size < sb.st_size ? sa.st_size : sb.st_size);
		result = 1;
	}
	for (uint64_t off = 0; result == 0 && off < (uint64_t) sa.st_size; off += CHUNK)
	{
		size_t		len = (uint64_t) sa.st_size - off < CHUNK ?
			(size_t) ((uint64_t) sa.st_size - off) : CHUNK;

		if (pct_pread_all(fa, ba, len, (off_t) off, a) != PCT_OK ||
			pct_pread_all(fb, bb, len, (off_t) off, b) != PCT_OK)
		{
			result = -1;
			break;
		}
		for (int s = 0; s < nskip; s++)
			for (size_t x = skip[2 * s]; x < skip[2 * s + 1]; x++)
				if (x >= off && x < off + len)
					ba[x - off] = bb[x - off] = 0;
		if (memcmp(ba, bb, len) != 0)
		{
			size_t		x = 0;

			while (ba[x] == bb[x])
				x++;
			*where = off + x;
			result = 1;
		}
	}
	close(fa);
	close(fb);
	return result;
}

/*
 * The file sets of two trees: report missing and extra entries (extras
 * whose path starts with allow_extra are accepted), and for entries in
 * both: type, mode and symlink target.  Calls each(a, b) for regular
 * files in both.  Returns the number of violations, or -1 on error.
 */
typedef int (*pair_fn) (void *arg, const tree_entry *a, const tree_entry *b);

static int64_t
compare_trees(const tree *ta, const tree *tb, const char *allow_extra,
			  pair_fn each, void *arg, uint64_t *nfiles)
{
	size_t		i = 0,
				k = 0;
	int64_t		v = 0;

	*nfiles = 0;
	while (i < ta->n || k < tb->n)
	{
		int			c = i >= ta->n ? 1 : k >= tb->n ? -1 :
			strcmp(ta->e[i].rel, tb->e[k].rel);

		if (c < 0)
		{
			violation("MISSING %s", ta->e[i].rel);
			v++;
			i++;
			continue;
		}
		if (c > 0)
		{
			if (allow_extra == NULL ||
				strncmp(tb->e[k].rel, allow_extra, strlen(allow_extra)) != 0)
			{
				violation("EXTRA %s", tb->e[k].rel);
				v++;
			}
			k++;
			continue;
		}
		if (ta->e[i].type != tb->e[k].type)
		{
			violation("TYPE %s", ta->e[i].rel);
			v++;
		}
		else if (ta->e[i].mode != tb->e[k].mode && ta->e[i].type != 'l')
		{
			violation("MODE %s %04o %04o", ta->e[i].rel,
					  (unsigned) ta->e[i].mode, (unsigned) tb->e[k].mode);
			v++;
		}
		else if (ta->e[i].type == 'l' && strcmp(ta->e[i].target, tb->e[k].target) != 0)
		{
			violation("LINK %s", ta->e[i].rel);
			v++;
		}
		else if (ta->e[i].type == 'f')
		{
			int			r = each(arg, &ta->e[i], &tb->e[k]);

			if (r < 0)
				return -1;
			v += r;
			(*nfiles)++;
		}
		i++;
		k++;
	}
	return v;
}

/* ---- compare-encrypted ---- */

typedef struct enc_state
{
	cluster_info *ci;
	map_rel    *maprel;
	uint8_t    *ba,
			   *bb;
	uint64_t   *rel_lsn;		/* per map file: the fake LSN seen, 0 none */
	uint64_t	pages_enc,
				pages_new,
				wal_enc,
				wal_unused,
				lsns;
} enc_state;

static int
enc_other_file(void *arg, const tree_entry *a, const tree_entry *b)
{
	enc_state  *s = arg;
	uint64_t	where = 0;
	int			r;

	if (map_lookup(s->ci, s->maprel, a->rel) != NULL ||
		strcmp(a->rel, "global/pg_control") == 0 ||
		strcmp(a->rel, "postgresql.conf") == 0 ||
		strcmp(a->rel, "postgresql.auto.conf") == 0)
		return 0;				/* compared page by page, or changed */
	r = compare_bytes(a->path, b->path, NULL, 0, s->ba, s->bb, &where);
	if (r > 0)
		violation("CHANGED %s offset %" PRIu64, a->rel, where);
	return r;
}

/* One relation page; returns the number of violations (0 or 1). */
static int
enc_rel_page(enc_state *s, size_t fi, const char *rel, const uint8_t *o,
			 const uint8_t *e, uint64_t off)
{
	const pct_file *f = &s->ci->fm.files[fi];
	uint32_t	seg = s->ci->ctl.xlog_seg_size;
	uint64_t	olsn = pct_page_get_lsn(o),
				elsn = pct_page_get_lsn(e);
	int			eq;

	if (pct_page_is_new(o))
	{
		s->pages_new++;
		if (memcmp(o, e, PAGE) != 0)
		{
			violation("NEW-PAGE-CHANGED %s offset %" PRIu64, rel, off);
			return 1;
		}
		return 0;
	}
	s->pages_enc++;
	if (memcmp(o + PCT_PAGE_OFF_FLAGS, e + PCT_PAGE_OFF_FLAGS, 6) != 0)
	{
		violation("HEADER-CHANGED %s offset %" PRIu64, rel, off);
		return 1;
	}
	if (f->unlogged || olsn < seg)
	{
		/* rule 3.1: one fake LSN per relation */
		if (f->unlogged ? elsn < PCT_UNLOGGED_LSN_MIN : (elsn == 0 || elsn >= seg))
		{
			violation("BAD-FAKE-LSN %s offset %" PRIu64 " lsn %" PRIu64, rel, off, elsn);
			return 1;
		}
		if (s->rel_lsn[fi] == 0)
			s->rel_lsn[fi] = elsn;
		else if (s->rel_lsn[fi] != elsn)
		{
			violation("FAKE-LSN-VARIES %s offset %" PRIu64 " lsn %" PRIu64 " and %" PRIu64,
					  rel, off, s->rel_lsn[fi], elsn);
			return 1;
		}
		if (elsn != olsn)
			s->lsns++;
	}
	else if (elsn != olsn)
	{
		violation("REAL-LSN-CHANGED %s offset %" PRIu64, rel, off);
		return 1;
	}
	if (memcmp(o + 16, e + 16, PAGE - 16) == 0)
	{
		violation("NOT-ENCRYPTED %s offset %" PRIu64, rel, off);
		return 1;
	}
	if ((eq = equal_blocks(o, e, 16, PAGE)) > 8)
	{
		violation("PARTLY-ENCRYPTED %s offset %" PRIu64 " equal-blocks %d", rel, off, eq);
		return 1;
	}
	return 0;
}

static int
enc_wal_page(enc_state *s, const char *rel, const uint8_t *o, const uint8_t *e,
			 uint64_t off)
{
	int			hdr,
				eq;

	if (!pct_wal_page_in_use(o, pct_wal_magic(s->ci->major)))
	{
		s->wal_unused++;
		if (memcmp(o, e, PAGE) != 0)
		{
			violation("UNUSED-WAL-PAGE-CHANGED %s offset %" PRIu64, rel, off);
			return 1;
		}
		return 0;
	}
	s->wal_enc++;
	hdr = pct_wal_header_len(o);
	if (memcmp(o, e, (size_t) hdr) != 0)
	{
		violation("WAL-HEADER-CHANGED %s offset %" PRIu64, rel, off);
		return 1;
	}
	if (memcmp(o + hdr, e + hdr, PAGE - (size_t) hdr) == 0)
	{
		violation("WAL-NOT-ENCRYPTED %s offset %" PRIu64, rel, off);
		return 1;
	}
	if ((eq = equal_blocks(o, e, (size_t) hdr, PAGE)) > 8)
	{
		violation("WAL-PARTLY-ENCRYPTED %s offset %" PRIu64 " equal-blocks %d", rel, off, eq);
		return 1;
	}
	return 0;
}

static int
compare_encrypted(const char *orig, const char *enc)
{
	cluster_info ci;
	enc_state	s;
	tree		ta,
				tb;
	int64_t		v;
	uint64_t	nfiles;

	if (!cluster_load(orig, &ci))
		return 2;
	memset(&s, 0, sizeof(s));
	s.ci = &ci;
	s.maprel = map_relpaths(&ci);
	s.ba = xmalloc(CHUNK);
	s.bb = xmalloc(CHUNK);
	s.rel_lsn = calloc(ci.fm.nfiles + 1, sizeof(uint64_t));
	if (s.rel_lsn == NULL || !tree_build(&ta, orig) || !tree_build(&tb, enc))
		return 2;

	/* files outside the map: all unchanged; ENC adds pg_cryptokeys */
	v = compare_trees(&ta, &tb, PCT_KEYDIR "/", enc_other_file, &s, &nfiles);
	if (v < 0)
		return 2;

	/* the map's files, page by page */
	for (size_t i = 0; i < ci.fm.nfiles; i++)
	{
		const pct_file *f = &ci.fm.files[i];
		char		rel[PCT_MAXPATH],
					epath[PCT_MAXPATH * 2];
		int			fo,
					fe;
		struct stat st;

		map_relpath(&ci, f, rel, sizeof(rel));
		snprintf(epath, sizeof(epath), "%s/%s", enc, rel);
		if (lstat(epath, &st) != 0 && errno == ENOENT)
			continue;			/* reported as MISSING above */
		if ((fo = open_ro(fpath(&ci.fm, f))) < 0 || (fe = open_ro(epath)) < 0 ||
			fstat(fe, &st) != 0)
			return 2;
		if ((uint64_t) st.st_size != f->size)
		{
			violation("SIZE %s %" PRIu64 " %lld", rel, f->size, (long long) st.st_size);
			v++;
		}
		else
			for (uint64_t off = 0; off < f->size; off += CHUNK)
			{
				size_t		len = f->size - off < CHUNK ? (size_t) (f->size - off) : CHUNK;

				if (pct_pread_all(fo, s.ba, len, (off_t) off, fpath(&ci.fm, f)) != PCT_OK ||
					pct_pread_all(fe, s.bb, len, (off_t) off, epath) != PCT_OK)
					return 2;
				for (size_t p = 0; p < len; p += PAGE)
					v += f->kind == PCT_FILE_RELATION ?
						enc_rel_page(&s, i, rel, s.ba + p, s.bb + p, off + p) :
						enc_wal_page(&s, rel, s.ba + p, s.bb + p, off + p);
			}
		close(fo);
		close(fe);
	}

	/* rule 3.1: the fake LSN of a relation is shared by all its segments
	 * and by no other relation of the same kind */
	{
		uint64_t   *perm = xmalloc((ci.fm.nfiles + 1) * 2 * sizeof(uint64_t));
		size_t		np = 0;

		for (size_t i = 0; i < ci.fm.nfiles;)
		{
			size_t		end = i + 1;
			uint64_t	lsn = s.rel_lsn[i];

			while (end < ci.fm.nfiles && same_rel(&ci.fm.files[i], &ci.fm.files[end]))
				end++;
			for (size_t k = i; k < end; k++)
				if (s.rel_lsn[k] != 0)
				{
					if (lsn != 0 && s.rel_lsn[k] != lsn)
					{
						violation("FAKE-LSN-VARIES %s segment %u", fpath(&ci.fm, &ci.fm.files[k]),
								  ci.fm.files[k].segno);
						v++;
					}
					lsn = s.rel_lsn[k];
				}
			if (lsn != 0)
			{
				perm[2 * np] = lsn;
				perm[2 * np + 1] = ci.fm.files[i].unlogged;
				np++;
			}
			i = end;
		}
		for (size_t a = 0; a < np; a++)
			for (size_t b = a + 1; b < np; b++)
				if (perm[2 * a] == perm[2 * b] && perm[2 * a + 1] == perm[2 * b + 1])
				{
					violation("FAKE-LSN-SHARED %" PRIu64, perm[2 * a]);
					v++;
				}
		free(perm);
	}

	printf("files %" PRIu64 " pages-encrypted %" PRIu64 " pages-new %" PRIu64
		   " wal-pages-encrypted %" PRIu64 " wal-pages-unused %" PRIu64
		   " lsns-replaced %" PRIu64 " violations %" PRId64 "\n",
		   nfiles, s.pages_enc, s.pages_new, s.wal_enc, s.wal_unused, s.lsns, v);
	tree_free(&ta);
	tree_free(&tb);
	pct_filemap_free(&ci.fm);
	return v > 0 ? 1 : 0;
}

/* ---- compare-decrypted ---- */

typedef struct dec_state
{
	cluster_info *ci;
	map_rel    *maprel;
	uint8_t    *ba,
			   *bb;
	uint64_t	identical,
				replaced;
} dec_state;

static int
dec_relation(dec_state *s, const pct_file *f, const tree_entry *a,
			 const tree_entry *b)
{
	int			fa,
				fb;
	int			v = 0;
	uint32_t	seg = s->ci->ctl.xlog_seg_size;

	if (a->size != b->size)
	{
		violation("SIZE %s %lld %lld", a->rel, (long long) a->size, (long long) b->size);
		return 1;
	}
	if ((fa = open_ro(a->path)) < 0 || (fb = open_ro(b->path)) < 0)
		return -1;
	for (uint64_t off = 0; off < (uint64_t) a->size; off += CHUNK)
	{
		size_t		len = (uint64_t) a->size - off < CHUNK ?
			(size_t) ((uint64_t) a->size - off) : CHUNK;

		if (pct_pread_all(fa, s->ba, len, (off_t) off, a->path) != PCT_OK ||
			pct_pread_all(fb, s->bb, len, (off_t) off, b->path) != PCT_OK)
			return -1;
		for (size_t p = 0; p < len; p += PAGE)
		{
			const uint8_t *o = s->ba + p,
					   *d = s->bb + p;
			uint64_t	olsn = pct_page_get_lsn(o),
						dlsn = pct_page_get_lsn(d);

			if (memcmp(o, d, PAGE) == 0)
			{
				s->identical++;
				continue;
			}
			if (memcmp(o + 10, d + 10, PAGE - 10) != 0)
			{
				size_t		x = 10;

				while (o[x] == d[x])
					x++;
				violation("PAGE-DIFFERS %s offset %" PRIu64, a->rel, off + p + x);
				v++;
			}
			else if (pct_page_is_new(o))
			{
				violation("NEW-PAGE-HEADER-CHANGED %s offset %" PRIu64, a->rel, off + p);
				v++;
			}
			else if (!f->unlogged && olsn >= seg)
			{
				violation("REAL-LSN-CHANGED %s offset %" PRIu64, a->rel, off + p);
				v++;
			}
			else if (!f->unlogged && (dlsn == 0 || dlsn >= seg))
			{
				violation("BAD-FAKE-LSN %s offset %" PRIu64 " lsn %" PRIu64,
						  a->rel, off + p, dlsn);
				v++;
			}
			else
				s->replaced++;
		}
	}
	close(fa);
	close(fb);
	return v;
}

static int
dec_file(void *arg, const tree_entry *a, const tree_entry *b)
{
	dec_state  *s = arg;
	const pct_file *f = map_lookup(s->ci, s->maprel, a->rel);
	uint64_t	where = 0;
	int			r;

	if (f != NULL && f->kind == PCT_FILE_RELATION)
		return dec_relation(s, f, a, b);
	if (strcmp(a->rel, "global/pg_control") == 0)
	{
		/* unloggedLSN and the CRC may change */
		static const size_t skip[] = {128, 136, 288, 292};

		r = compare_bytes(a->path, b->path, skip, 2, s->ba, s->bb, &where);
	}
	else
		r = compare_bytes(a->path, b->path, NULL, 0, s->ba, s->bb, &where);
	if (r > 0)
		violation("CHANGED %s offset %" PRIu64, a->rel, where);
	return r;
}

static int
compare_decrypted(const char *orig, const char *dec)
{
	cluster_info ci;
	dec_state	s;
	tree		ta,
				tb;
	int64_t		v;
	uint64_t	nfiles;
	char		kd[PCT_MAXPATH];
	struct stat st;

	if (!cluster_load(orig, &ci))
		return 2;
	memset(&s, 0, sizeof(s));
	s.ci = &ci;
	s.maprel = map_relpaths(&ci);
	s.ba = xmalloc(CHUNK);
	s.bb = xmalloc(CHUNK);
	if (!tree_build(&ta, orig) || !tree_build(&tb, dec))
		return 2;
	v = compare_trees(&ta, &tb, NULL, dec_file, &s, &nfiles);
	if (v < 0)
		return 2;
	snprintf(kd, sizeof(kd), "%s/%s", dec, PCT_KEYDIR);
	if (lstat(kd, &st) == 0)
	{
		violation("EXTRA %s", PCT_KEYDIR);
		v++;
	}
	printf("files %" PRIu64 " pages-identical %" PRIu64 " pages-lsn-replaced %"
		   PRIu64 " violations %" PRId64 "\n", nfiles, s.identical, s.replaced, v);
	tree_free(&ta);
	tree_free(&tb);
	pct_filemap_free(&ci.fm);
	return v > 0 ? 1 : 0;
}

/* ---- journal-show ---- */

static int
journal_show(const char *pgdata)
{
	pct_journal *j;
	pct_jbatch	b[2];
	int			nb = 0,
				major;
	uint32_t	zone = 0;
	pct_control ctl;
	pct_filemap fm;
	pct_rc		rc;

	if ((rc = pct_cluster_check_dir(pgdata, &major)) != PCT_OK)
		return failed("checking the data directory", rc);
	if ((rc = pct_control_read(pgdata, &ctl)) != PCT_OK)
		return failed("reading pg_control", rc);
	if ((rc = pct_journal_open(pgdata, &j)) != PCT_OK)
		return failed("opening the journal", rc);
	printf("op %d\n", (int) j->info.op);
	printf("mode %d\n", (int) j->info.mode);
	printf("complete %d\n", j->info.data_complete ? 1 : 0);
	printf("done %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", j->info.done_file,
		   j->info.done_offset, j->info.done_bytes);
	if ((rc = pct_journal_get_batches(j, b, &nb)) != PCT_OK)
	{
		pct_journal_close(j);
		return failed("reading the unfinished batches", rc);
	}
	if (nb > 0)
	{
		if ((rc = pct_filemap_build(pgdata, major, &ctl, &fm)) != PCT_OK)
		{
			for (int k = 0; k < nb; k++)
				free(b[k].zones);
			pct_journal_close(j);
			return failed("building the file map", rc);
		}
		for (int k = 0; k < nb; k++)
			for (uint32_t i = 0; i < b[k].nzones; i++)
				printf("zone %u %s %" PRIu64 " %u\n", zone++,
					   b[k].zones[i].file < fm.nfiles ?
					   fpath(&fm, &fm.files[b[k].zones[i].file]) : "?",
					   b[k].zones[i].offset, b[k].zones[i].len);
		pct_filemap_free(&fm);
	}
	for (int k = 0; k < nb; k++)
		free(b[k].zones);
	pct_journal_close(j);
	return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	pct_set_log(log_stderr, NULL);
	pct_set_sync(false);		/* test clusters run with fsync = off */

	if (argc == 3 && strcmp(argv[1], "control-show") == 0)
		return control_show(argv[2]);
	if (argc == 4 && strcmp(argv[1], "control-1400") == 0)
		return control_convert(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "control-1300") == 0)
		return control_convert(argv[2], NULL);
	if (argc == 4 && strcmp(argv[1], "unwrap") == 0)
		return unwrap(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "iv-audit") == 0)
		return iv_audit(argv[2]);
	if (argc == 4 && strcmp(argv[1], "compare-encrypted") == 0)
		return compare_encrypted(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "compare-decrypted") == 0)
		return compare_decrypted(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "journal-show") == 0)
		return journal_show(argv[2]);
	return usage();
}
