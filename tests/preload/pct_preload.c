/*
 * pct_preload.c
 *	  The data path of the test preload: the interposed libc calls, the
 *	  table of tracked file descriptors, and the page transforms that make
 *	  a stock PostgreSQL 15 server read and write FORMAT.md sections 2-4.
 *
 * Owns: every exported symbol of pct_preload.so (the interposed calls and
 * pct_preload_intercepts, their list), the fd table, the relation, WAL
 * and pg_control transforms, and the re-encryption of a relation that
 * gains an _init fork.  See README.md for the design and its reasoning.
 *
 * Theory of operation:
 *	1. Every open variant classifies its path, relative to the data
 *	   directory (tablespaces through pg_tblspc/): a main-fork segment of a
 *	   relation (global/N, base/D/N, pg_tblspc/T/PG_x/D/N, with .S), a WAL
 *	   file (pg_wal/ segment, .partial, xlogtemp.N, RECOVERYXLOG), or
 *	   global/pg_control.  The first such open activates the library
 *	   (pct_keys.c).  On an encrypted cluster the fd is tracked in a table
 *	   indexed by fd number; close, dup, dup2, dup3 and fcntl(F_DUPFD*)
 *	   keep the table true.  Everything else (other forks, temporary
 *	   relations, SLRUs, configuration) is never tracked: FORMAT leaves it
 *	   plain.
 *	2. Relation files: reads and writes must cover whole 8192-byte blocks
 *	   at block-aligned offsets (pread/pwrite, and read/write at the file
 *	   position, found with lseek).  A read decrypts each block in the
 *	   caller's buffer; a write encrypts a copy (the caller's buffer, often
 *	   shared memory, is never touched).  The IV's block number is the
 *	   segment number times RELSEG_SIZE (from pg_control) plus the offset
 *	   over 8192; its unlogged flag is whether the relation's _init fork
 *	   exists (5).  New pages (pd_upper 0) stay as they are.  With data
 *	   checksums the server sees a checksum over the plaintext and the disk
 *	   holds one over the ciphertext; a failing checksum keeps failing by
 *	   the same difference (as the bulk engine does).
 *	3. WAL files: whole pages at page-aligned offsets are transformed with
 *	   the library's page function; any other range (a partial page)
 *	   byte-range CTR: the page's first 16 bytes come from the buffer when
 *	   it holds them, else from the file.  Pages without this version's
 *	   xlp_magic (zeros, preallocated) stay as they are.  Roles: a physical
 *	   walsender reads WAL as it is on disk (the replication stream and
 *	   base backups carry ciphertext), and the walreceiver writes it as it
 *	   came; a database walsender (logical decoding) reads whole pages.
 *	4. pg_control: a read returns the bytes of the file converted to the
 *	   stock 1300 layout; a write (always the whole 8192 bytes at offset 0)
 *	   is converted to 1400 with the cluster's method before it reaches the
 *	   disk.  A physical walsender's pread (base backup) gets the file.
 *	5. Unlogged relations: the server creates an index's main fork and
 *	   writes it (nbtsort, buffer evictions) before it creates its _init
 *	   fork; CREATE DATABASE copies main forks before or after _init
 *	   forks.  Every page the library writes while a relation has no _init
 *	   fork uses flag 0, so when a server process creates an _init fork the
 *	   library re-encrypts the relation's main fork with flag 0x80 before
 *	   the open() returns.  A generation counter and a registration in the
 *	   shared state keep the other processes' I/O on that relation out of
 *	   the way meanwhile, and make them look again at the _init fork
 *	   (without a stat per I/O otherwise).
 *	6. Anything on a tracked fd the library cannot make correct (an
 *	   unaligned relation write, mmap, copy_file_range, sendfile, splice,
 *	   RWF flags, a partial pg_control write) aborts the process with a
 *	   PANIC message on stderr: never plaintext on disk, never ciphertext
 *	   to the server.
 *
 * Not thread-safe: PostgreSQL 15 server processes are single-threaded.
 * The file is compiled without _FORTIFY_SOURCE, whose inline wrappers
 * would clash with the definitions of read() and friends below.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/pct_internal.h"
#include "pct_preload.h"

#define PP_EXPORT __attribute__((visibility("default")))

#define BLK			PCT_BLCKSZ
#define WALBLK		PCT_XLOG_BLCKSZ
/* Copies for writes and the re-encryption of (5) go through this. */
#define PP_SCRATCH	(256 * 1024)

/*
 * The interposed calls.  pct_preload_intercepts below spells this list,
 * and it is exactly the set of functions the library exports.
 */
#define PP_INTERCEPTS(X) \
	X(open) X(open64) X(__open_2) X(__open64_2) X(openat) X(openat64) \
	X(__openat_2) X(__openat64_2) X(creat) X(creat64) X(fopen) X(fopen64) \
	X(close) X(dup) X(dup2) X(dup3) X(fcntl) X(fcntl64) \
	X(read) X(__read_chk) X(readv) X(pread) X(pread64) X(__pread_chk) \
	X(__pread64_chk) X(preadv) X(preadv64) X(preadv2) X(preadv64v2) \
	X(write) X(writev) X(pwrite) X(pwrite64) X(pwritev) X(pwritev64) \
	X(pwritev2) X(pwritev64v2) \
	X(mmap) X(mmap64) X(copy_file_range) X(sendfile) X(sendfile64) X(splice)

/* Fortified entry points, not declared without _FORTIFY_SOURCE. */
int			__open_2(const char *path, int flags);
int			__open64_2(const char *path, int flags);
int			__openat_2(int dirfd, const char *path, int flags);
int			__openat64_2(int dirfd, const char *path, int flags);
ssize_t		__read_chk(int fd, void *buf, size_t nbytes, size_t buflen);
ssize_t		__pread_chk(int fd, void *buf, size_t nbytes, off_t offset,
						size_t buflen);
ssize_t		__pread64_chk(int fd, void *buf, size_t nbytes, off64_t offset,
						  size_t buflen);
extern _Noreturn void __chk_fail(void);

#define PP_DECLARE_REAL(name) static __typeof__(name) *real_##name;
PP_INTERCEPTS(PP_DECLARE_REAL)
static __typeof__(lseek) *real_lseek;

#define PP_NAME(name) #name " "
/* "pct_preload intercepts: open open64 ..." (for the guard test). */
PP_EXPORT extern const char pct_preload_intercepts[];
const char	pct_preload_intercepts[] =
"pct_preload intercepts: " PP_INTERCEPTS(PP_NAME);

/* The next definition of name (libc's), found once. */
#define PP_RESOLVER(name) \
	static inline __typeof__(name) *resolve_##name(void) \
	{ \
		if (real_##name == NULL) \
			real_##name = (__typeof__(name) *) dlsym(RTLD_NEXT, #name); \
		return real_##name; \
	}
PP_INTERCEPTS(PP_RESOLVER)
PP_RESOLVER(lseek)
#define REAL(name) (resolve_##name())

#define PP_RESOLVE(name) (void) resolve_##name();

__attribute__((constructor))
static void
pp_init(void)
{
	PP_INTERCEPTS(PP_RESOLVE)
	(void) resolve_lseek();
	pp_detect_server();
}

/* ---- 1. the fd table ---- */

typedef enum pp_kind
{
	PK_NONE = 0,
	PK_REL,						/* main-fork segment: FORMAT 3 */
	PK_WAL,						/* WAL file: FORMAT 4 */
	PK_CONTROL,					/* global/pg_control: FORMAT 2 */
	PK_INIT						/* an _init fork (classified, never tracked) */
} pp_kind;

typedef struct pp_fd
{
	uint8_t		kind;			/* pp_kind; PK_NONE: not tracked */
	bool		unlogged;		/* PK_REL: the _init fork exists (final) */
	uint32_t	blkbase;		/* PK_REL: segno * relseg_size */
	uint64_t	gen;			/* PK_REL: shared gen when unlogged was
								 * looked at (0: never) */
	uint64_t	relhash;		/* PK_REL: hash of the relation's path */
	char	   *path;			/* relative to the data directory */
	char	   *initpath;		/* PK_REL: its relation's _init fork */
} pp_fd;

static pp_fd *fds;
static int	nfds;

/* A path classified by classify(). */
typedef struct pp_class
{
	pp_kind		kind;
	uint32_t	segno;			/* PK_REL, PK_INIT */
	size_t		mainlen;		/* PK_REL, PK_INIT: length of rel[] up to
								 * the relfilenode (no fork, no segment) */
	char		rel[PCT_MAXPATH];	/* relative to the data directory */
} pp_class;

static inline pp_fd *
fd_get(int fd)
{
	if ((unsigned) fd < (unsigned) nfds && fds[fd].kind != PK_NONE)
		return &fds[fd];
	return NULL;
}

static void
fd_forget(int fd)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return;
	free(f->path);
	free(f->initpath);
	memset(f, 0, sizeof(*f));
}

static pp_fd *
fd_slot(int fd)
{
	if (fd >= nfds)
	{
		int			n = nfds > 0 ? nfds : 256;
		pp_fd	   *t;

		while (n <= fd)
			n *= 2;
		t = realloc(fds, (size_t) n * sizeof(pp_fd));
		if (t == NULL)
			pp_die("out of memory for the file descriptor table");
		memset(t + nfds, 0, (size_t) (n - nfds) * sizeof(pp_fd));
		fds = t;
		nfds = n;
	}
	fd_forget(fd);
	return &fds[fd];
}

static char *
dup_str(const char *s, size_t n)
{
	char	   *p = malloc(n + 1);

	if (p == NULL)
		pp_die("out of memory for the file descriptor table");
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void
fd_track(int fd, const pp_class *c)
{
	pp_fd	   *f = fd_slot(fd);

	f->kind = (uint8_t) c->kind;
	f->path = dup_str(c->rel, strlen(c->rel));
	if (c->kind == PK_REL)
	{
		char		init[PCT_MAXPATH];

		snprintf(init, sizeof(init), "%.*s_init", (int) c->mainlen, c->rel);
		f->initpath = dup_str(init, strlen(init));
		f->relhash = pct_hash64(c->rel, c->mainlen);
		f->blkbase = c->segno * pp_cl.relseg_size;
	}
}

/* After dup(from) returned to: the new fd is the same file. */
static void
fd_copy(int from, int to)
{
	pp_fd	   *f,
			   *t;

	if (nfds == 0 || from == to)
		return;
	if (fd_get(from) == NULL)
	{
		fd_forget(to);
		return;
	}
	t = fd_slot(to);			/* may move the table */
	f = &fds[from];
	*t = *f;
	t->path = dup_str(f->path, strlen(f->path));
	if (f->initpath != NULL)
		t->initpath = dup_str(f->initpath, strlen(f->initpath));
}

/* ---- classification ---- */

/* n decimal digits, no leading zero (as the server writes OIDs). */
static size_t
number_len(const char *s)
{
	size_t		n = strspn(s, "0123456789");

	return (n == 0 || n > 10 || s[0] == '0') ? 0 : n;
}

/* NODE[_init][.SEG] at name (a whole path component); fsm/vm forks and
 * temporary relations (tB_N) are PK_NONE. */
static pp_kind
classify_relfile(const char *name, uint32_t *segno, size_t *nodelen)
{
	size_t		n = number_len(name);
	const char *p = name + n;
	pp_kind		kind = PK_REL;

	if (n == 0)
		return PK_NONE;
	*nodelen = n;
	if (strncmp(p, "_init", 5) == 0)
	{
		kind = PK_INIT;
		p += 5;
	}
	*segno = 0;
	if (*p == '.')
	{
		size_t		m = number_len(p + 1);
		unsigned long v;

		if (m == 0 || p[1 + m] != '\0')
			return PK_NONE;
		v = strtoul(p + 1, NULL, 10);
		if (v > UINT32_MAX / 2)
			return PK_NONE;
		*segno = (uint32_t) v;
		return kind;
	}
	return *p == '\0' ? kind : PK_NONE;
}

static bool
is_wal_name(const char *name)
{
	if (strspn(name, "0123456789ABCDEF") == 24)
		return name[24] == '\0' || strcmp(name + 24, ".partial") == 0;
	if (strncmp(name, "xlogtemp.", 9) == 0)
		return number_len(name + 9) > 0 &&
			name[9 + number_len(name + 9)] == '\0';
	return strcmp(name, "RECOVERYXLOG") == 0;
}

/* Does rel start with "word/"?  Then skip it. */
static bool
skip_prefix(const char **rel, const char *word)
{
	size_t		n = strlen(word);

	if (strncmp(*rel, word, n) != 0 || (*rel)[n] != '/')
		return false;
	*rel += n + 1;
	return true;
}

/* Does rel start with a number and "/"?  Then skip it. */
static bool
skip_number(const char **rel)
{
	size_t		n = number_len(*rel);

	if (n == 0 || (*rel)[n] != '/')
		return false;
	*rel += n + 1;
	return true;
}

/*
 * The path made relative to the data directory, into c->rel; false when
 * it is not inside it.  Relative paths are relative to the server's
 * working directory, the data directory; openat() with a directory fd
 * resolves the directory through /proc/self/fd.
 */
static bool
relative_path(int dirfd, const char *path, pp_class *c)
{
	const char *dd = pp_server_datadir();
	char		abs[PCT_MAXPATH];
	size_t		n;

	if (dd == NULL)
		return false;
	if (path[0] != '/' && dirfd != AT_FDCWD)
	{
		char		link[64];
		char		dir[PCT_MAXPATH];
		ssize_t		r;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		r = readlink(link, dir, sizeof(dir) - 1);
		if (r <= 0)
			return false;
		dir[r] = '\0';
		if ((size_t) snprintf(abs, sizeof(abs), "%s/%s", dir, path) >= sizeof(abs))
			return false;
		path = abs;
	}
	if (path[0] == '/')
	{
		n = strlen(dd);
		if (strncmp(path, dd, n) != 0 || path[n] != '/')
			return false;
		path += n + 1;
	}
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (strlen(path) >= sizeof(c->rel))
		return false;
	strcpy(c->rel, path);
	return true;
}

/* Is this a path under one of the data file directories?  (Before
 * activation, which the first such open triggers.) */
static bool
maybe_data_path(int dirfd, const char *path)
{
	static const char *const dirs[] = {"global", "base", "pg_tblspc", "pg_wal"};
	pp_class	c;

	if (!relative_path(dirfd, path, &c))
		return false;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
	{
		const char *p = c.rel;

		if (skip_prefix(&p, dirs[i]))
			return true;
	}
	return false;
}

static pp_kind
classify(int dirfd, const char *path, pp_class *c)
{
	const char *p;
	pp_kind		kind;
	size_t		nodelen;

	c->kind = PK_NONE;
	if (!relative_path(dirfd, path, c))
		return PK_NONE;
	p = c->rel;
	if (skip_prefix(&p, "pg_wal"))
		return c->kind = is_wal_name(p) ? PK_WAL : PK_NONE;
	if (strcmp(c->rel, PCT_CONTROL_FILE) == 0)
		return c->kind = PK_CONTROL;
	if (skip_prefix(&p, "global"))
		;
	else if (skip_prefix(&p, "base"))
	{
		if (!skip_number(&p))
			return PK_NONE;
	}
	else if (skip_prefix(&p, "pg_tblspc"))
	{
		/* only this cluster's own directory under the link (FORMAT 3) */
		if (!skip_number(&p) || !skip_prefix(&p, pp_cl.tsdir) ||
			!skip_number(&p))
			return PK_NONE;
	}
	else
		return PK_NONE;
	kind = classify_relfile(p, &c->segno, &nodelen);
	if (kind == PK_NONE)
		return PK_NONE;
	c->mainlen = (size_t) (p - c->rel) + nodelen;
	return c->kind = kind;
}

/* ---- 2. relation pages ---- */

static uint8_t scratch[PP_SCRATCH] __attribute__((aligned(4096)));

/*
 * Encrypt or decrypt one page in place (CTR: the same operation) with
 * the checksum rule of FORMAT 3: the difference between the stored and the
 * computed checksum is kept.
 */
static void
rel_page(uint8_t *page, uint32_t blkno, bool unlogged, const char *path)
{
	uint16_t	delta = 0;

	if (pct_page_is_new(page))
		return;
	if (pp_cl.checksums)
		delta = pct_page_checksum(page, blkno) ^ pct_page_get_checksum(page);
	if (pct_page_crypt(pp_cl.rel, page, blkno, unlogged) != PCT_OK)
		pp_die("could not encrypt or decrypt block %u of \"%s\"", blkno, path);
	if (pp_cl.checksums)
		pct_page_set_checksum(page, pct_page_checksum(page, blkno) ^ delta);
}

static void
rel_pages(pp_fd *f, uint8_t *buf, size_t len, off_t off, bool unlogged)
{
	uint32_t	blk = f->blkbase + (uint32_t) (off / BLK);

	for (size_t i = 0; i + BLK <= len; i += BLK)
		rel_page(buf + i, blk++, unlogged, f->path);
}

/* ---- 5. relations that gain an _init fork ---- */

/* Free the slots of processes that died (the server restarts then). */
static void
conv_reap(void)
{
	pp_shared  *sh = pp_cl.shared;

	for (int i = 0; i < PP_MAX_CONV; i++)
	{
		int			pid = atomic_load(&sh->conv[i].pid);

		if (pid != 0 && kill(pid, 0) != 0 && errno == ESRCH &&
			atomic_compare_exchange_strong(&sh->conv[i].pid, &pid, 0))
			atomic_fetch_sub(&sh->nconv, 1);
	}
}

/* Is a conversion of relhash registered by another live process?  Then
 * wait until it is over and return true. */
static bool
conv_wait(uint64_t relhash)
{
	pp_shared  *sh = pp_cl.shared;
	bool		waited = false;
	int			me = (int) getpid();

	for (int i = 0; i < PP_MAX_CONV; i++)
	{
		for (;;)
		{
			int			pid = atomic_load(&sh->conv[i].pid);

			if (pid == 0 || pid == me ||
				atomic_load(&sh->conv[i].relhash) != relhash)
				break;
			if (kill(pid, 0) != 0 && errno == ESRCH)
			{
				conv_reap();	/* it died (and the server restarts) */
				break;
			}
			waited = true;
			usleep(1000);
		}
	}
	return waited;
}

static int
conv_register(uint64_t relhash)
{
	pp_shared  *sh = pp_cl.shared;

	for (;;)
	{
		for (int i = 0; i < PP_MAX_CONV; i++)
		{
			int			zero = 0;

			if (atomic_compare_exchange_strong(&sh->conv[i].pid, &zero,
											   (int) getpid()))
			{
				atomic_store(&sh->conv[i].relhash, relhash);
				atomic_fetch_add(&sh->nconv, 1);
				return i;
			}
		}
		conv_reap();
		usleep(1000);
	}
}

static void
conv_unregister(int slot)
{
	pp_shared  *sh = pp_cl.shared;

	atomic_store(&sh->conv[slot].relhash, 0);
	atomic_store(&sh->conv[slot].pid, 0);
	atomic_fetch_sub(&sh->nconv, 1);
}

/*
 * The unlogged flag for the next I/O on f, and in *gen the generation it
 * holds for.  Waits while the relation is being converted.
 */
static bool
rel_unlogged(pp_fd *f, uint64_t *gen)
{
	pp_shared  *sh = pp_cl.shared;

	for (;;)
	{
		uint64_t	g = atomic_load(&sh->gen);

		*gen = g;
		if (f->unlogged)
			return true;
		if (atomic_load(&sh->nconv) != 0 && conv_wait(f->relhash))
			continue;
		if (f->gen != g)
		{
			if (access(f->initpath, F_OK) == 0)
				f->unlogged = true;
			else if (errno != ENOENT)
				pp_die("could not check for \"%s\": %s", f->initpath,
					   strerror(errno));
			f->gen = g;
		}
		return f->unlogged;
	}
}

/* After I/O done with flag (from rel_unlogged at gen): did an _init fork
 * appear meanwhile, so that it must be redone with *flag? */
static bool
rel_changed(pp_fd *f, bool *flag, uint64_t *gen)
{
	if (*flag || atomic_load(&pp_cl.shared->gen) == *gen)
		return false;
	if (rel_unlogged(f, gen) == *flag)
		return false;
	*flag = true;
	return true;
}

/*
 * Re-encrypt every non-new page of the main fork whose relation is mainpath
 * (all segments) from flag 0 to flag 0x80.  Straight to libc.
 */
static void
convert_relation(const char *mainpath)
{
	uint64_t	pages = 0;
	char		path[PCT_MAXPATH];

	for (uint32_t seg = 0;; seg++)
	{
		uint32_t	blk = seg * pp_cl.relseg_size;
		off_t		off = 0;
		int			fd;

		if ((size_t) (seg == 0 ? snprintf(path, sizeof(path), "%s", mainpath) :
					  snprintf(path, sizeof(path), "%s.%u", mainpath, seg)) >=
			sizeof(path))
			pp_die("path too long: \"%s\"", mainpath);
		fd = REAL(open) (path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
		{
			if (errno == ENOENT)
				break;
			pp_die("could not open \"%s\" to re-encrypt it as unlogged: %s",
				   path, strerror(errno));
		}
		fd_forget(fd);
		for (;;)
		{
			ssize_t		r = REAL(pread) (fd, scratch, PP_SCRATCH, off);
			size_t		whole;

			if (r < 0)
				pp_die("could not read \"%s\": %s", path, strerror(errno));
			whole = (size_t) r / BLK * BLK;
			if (whole == 0)
				break;
			for (size_t i = 0; i < whole; i += BLK, blk++)
			{
				if (pct_page_is_new(scratch + i))
					continue;
				rel_page(scratch + i, blk, false, path);
				rel_page(scratch + i, blk, true, path);
				pages++;
			}
			if (REAL(pwrite) (fd, scratch, whole, off) != (ssize_t) whole)
				pp_die("could not write \"%s\": %s", path, strerror(errno));
			off += (off_t) whole;
		}
		if (fsync(fd) != 0)
			pp_die("could not fsync \"%s\": %s", path, strerror(errno));
		REAL(close) (fd);
	}
	if (pages > 0)
		pp_log("LOG", "re-encrypted %llu pages of \"%s\" as an unlogged relation (its _init fork was created)",
			   (unsigned long long) pages, mainpath);
}

/* ---- 3. WAL pages ---- */

static void
wal_pages(uint8_t *buf, size_t len, const char *path)
{
	for (size_t i = 0; i + WALBLK <= len; i += WALBLK)
		if (pct_wal_crypt_page(pp_cl.wal, buf + i, pp_cl.wal_magic,
							   NULL) != PCT_OK)
			pp_die("could not encrypt or decrypt a WAL page of \"%s\"", path);
}

/* ctr += n, a 128-bit big-endian counter. */
static void
ctr_add(uint8_t ctr[16], uint64_t n)
{
	for (int i = 15; i >= 0 && n != 0; i--)
	{
		n += ctr[i];
		ctr[i] = (uint8_t) n;
		n >>= 8;
	}
}

/* XOR data (page bytes from..from+len) with the keystream of iv. */
static void
ctr_xor(const uint8_t iv[16], size_t from, uint8_t *data, size_t len,
		const char *path)
{
	uint8_t		ctr[16];
	size_t		skip = from % 16;

	memcpy(ctr, iv, 16);
	ctr_add(ctr, from / 16);
	if (skip != 0)
	{
		uint8_t		ks[16] = {0};
		size_t		n = len < 16 - skip ? len : 16 - skip;

		if (pct_cipher_ctr(pp_cl.wal, ctr, ks, 16) != PCT_OK)
			pp_die("AES-CTR failed on \"%s\"", path);
		for (size_t i = 0; i < n; i++)
			data[i] ^= ks[skip + i];
		data += n;
		len -= n;
		ctr_add(ctr, 1);
	}
	if (len > 0 && pct_cipher_ctr(pp_cl.wal, ctr, data, len) != PCT_OK)
		pp_die("AES-CTR failed on \"%s\"", path);
}

/*
 * Transform the WAL bytes buf[0..len), file offset off, whatever their
 * alignment (byte-range CTR).  Each page's first 16 bytes (magic, info,
 * TLI, page address: everything the IV and the header length need) come
 * from buf where it holds them, the rest from the file (already written
 * for a write: WAL is written in order).
 */
static void
wal_range(int fd, uint8_t *buf, size_t len, off_t off, const char *path)
{
	uint64_t	start = (uint64_t) off,
				end = start + len;

	for (uint64_t ps = start - start % WALBLK; ps < end; ps += WALBLK)
	{
		size_t		a = (size_t) ((start > ps ? start : ps) - ps);
		size_t		b = (size_t) ((end < ps + WALBLK ? end : ps + WALBLK) - ps);
		uint8_t		hdr[16];
		uint8_t		iv[16];
		size_t		hl,
					from;

		if (b <= PCT_WAL_SHORT_HEADER_LEN)
			continue;			/* header bytes only: clear */
		if (a > 0)
		{
			size_t		want = a < 16 ? a : 16;

			if (REAL(pread) (fd, hdr, want, (off_t) ps) != (ssize_t) want)
				continue;		/* no header on disk: not in use */
		}
		if (a < 16)
			memcpy(hdr + a, buf + (ps + a - start), 16 - a);
		if (!pct_wal_page_in_use(hdr, pp_cl.wal_magic))
			continue;
		hl = (size_t) pct_wal_header_len(hdr);
		if (b <= hl)
			continue;
		from = a > hl ? a : hl;
		pct_wal_iv(hdr, iv);
		ctr_xor(iv, from, buf + (ps + from - start), b - from, path);
	}
}

static void
wal_transform(int fd, pp_fd *f, uint8_t *buf, size_t len, off_t off)
{
	if (off % WALBLK == 0 && len % WALBLK == 0)
		wal_pages(buf, len, f->path);
	else
		wal_range(fd, buf, len, off, f->path);
}

/* ---- 4. pg_control ---- */

static pct_control ctlbuf;

/*
 * The file as the server must see it, into ctlbuf.raw: version 1400
 * converted to 1300; a base backup's 1300 file with the mark (see
 * control_read) without it.
 */
static bool
control_as_1300(int fd)
{
	uint8_t		raw[PCT_CONTROL_FILE_SIZE];

	if (REAL(pread) (fd, raw, sizeof(raw), 0) != (ssize_t) sizeof(raw) ||
		pct_control_parse(raw, sizeof(raw), &ctlbuf) != PCT_OK)
		return false;
	if (ctlbuf.version == PCT_CONTROL_VERSION_STOCK &&
		pp_backup_mark(ctlbuf.raw) != 0)
	{
		memset(ctlbuf.raw + PCT_CTL_OFF_CRC_1400, 0, 4);
		return true;
	}
	return ctlbuf.version == PCT_CONTROL_VERSION_ENCRYPTED &&
		pct_control_to_1300(&ctlbuf) == PCT_OK;
}

/*
 * A base backup (PostgreSQL 15.20's walsender reads pg_control with read()
 * and checks its 1300 CRC before sending it) gets the 1300 view with the
 * encryption method in the mark (pct_preload.h): the struct's padding after
 * the 1300 CRC, which the server copies along and never looks at.
 */
static void
control_read(int fd, pp_fd *f, uint8_t *buf, ssize_t r, off_t off)
{
	uint8_t		mark[4];
	size_t		n;

	if (off >= PCT_CONTROL_FILE_SIZE)
		return;
	if (!control_as_1300(fd))
	{
		pp_log("WARNING", "\"%s\" is not a valid version %d control file: passed to the server as it is",
			   f->path, PCT_CONTROL_VERSION_ENCRYPTED);
		return;
	}
	if (pp_server_phys_walsender())
	{
		pct_put_u32(mark, PP_BACKUP_MARK(pp_cl.method));
		memcpy(ctlbuf.raw + PCT_CTL_OFF_CRC_1400, mark, 4);
	}
	n = (size_t) r;
	if (n > (size_t) (PCT_CONTROL_FILE_SIZE - off))
		n = (size_t) (PCT_CONTROL_FILE_SIZE - off);
	memcpy(buf, ctlbuf.raw + off, n);
}

/* The server's 1300 image converted to 1400, into scratch. */
static void
control_to_disk(pp_fd *f, const void *buf, size_t n, off_t off)
{
	if (off != 0 || n != PCT_CONTROL_FILE_SIZE)
		pp_die("unexpected write of %zu bytes at offset %lld to \"%s\"",
			   n, (long long) off, f->path);
	memcpy(scratch, buf, n);
	if (pct_get_u32(scratch + PCT_CTL_OFF_VERSION) != PCT_CONTROL_VERSION_STOCK)
		pp_die("the server wrote a control file of version %u to \"%s\"",
			   (unsigned) pct_get_u32(scratch + PCT_CTL_OFF_VERSION), f->path);
	/* padding after the 1300 CRC: not covered by it, zero in 1300 */
	memset(scratch + PCT_CTL_OFF_CRC_1400, 0, 4);
	if (pct_control_parse(scratch, n, &ctlbuf) != PCT_OK ||
		pct_control_to_1400(&ctlbuf, pp_cl.method) != PCT_OK)
		pp_die("could not convert the control file the server wrote to version %d",
			   PCT_CONTROL_VERSION_ENCRYPTED);
	memcpy(scratch, ctlbuf.raw, n);
}

/* ---- reads and writes on tracked fds ---- */

/*
 * Read n bytes at off into buf (off < 0: at the file position, with
 * read()) and transform them.
 */
static ssize_t
data_read(int fd, pp_fd *f, void *vbuf, size_t n, off_t off)
{
	uint8_t    *buf = vbuf;
	bool		positional = off >= 0;
	bool		flag = false;
	uint64_t	gen = 0;
	ssize_t		r;

	if (!positional && (off = REAL(lseek) (fd, 0, SEEK_CUR)) < 0)
		pp_die("could not find the file position of \"%s\": %s", f->path,
			   strerror(errno));

	if (f->kind == PK_REL)
	{
		if (positional && pp_server_phys_walsender() &&
			!pp_server_in_shared_buffers(buf, n))
			return REAL(pread) (fd, buf, n, off);	/* base backup */
		if (off % BLK != 0)
			pp_die("unaligned read of %zu bytes at offset %lld of relation file \"%s\"",
				   n, (long long) off, f->path);
		for (;;)
		{
			flag = rel_unlogged(f, &gen);
			r = positional ? REAL(pread) (fd, buf, n, off) :
				REAL(read) (fd, buf, n);
			if (r <= 0 || !rel_changed(f, &flag, &gen))
				break;
			/* converted under our feet: read it again */
			if (!positional && REAL(lseek) (fd, off, SEEK_SET) < 0)
				return -1;
		}
		if (r <= 0)
			return r;
		rel_pages(f, buf, (size_t) r, off, flag);
		if (r % BLK != 0)
		{
			/* a torn last block: the server rejects (or zero-fills, in
			 * recovery) a short block anyway */
			pp_log("WARNING", "short read of %zd bytes at offset %lld of \"%s\": partial block zeroed",
				   r, (long long) off, f->path);
			memset(buf + r / BLK * BLK, 0, (size_t) (r % BLK));
		}
		return r;
	}

	r = positional ? REAL(pread) (fd, buf, n, off) : REAL(read) (fd, buf, n);
	if (r <= 0)
		return r;
	if (f->kind == PK_WAL)
	{
		if (pp_server_phys_walsender())
			return r;			/* streamed and backed up as on disk */
		if (pp_server_db_walsender() &&
			(off % WALBLK != 0 || r % WALBLK != 0))
			pp_die("a database walsender read %zd bytes at offset %lld of \"%s\": only whole WAL pages (logical decoding) are supported there",
				   r, (long long) off, f->path);
		wal_transform(fd, f, buf, (size_t) r, off);
	}
	else if (f->kind == PK_CONTROL)
	{
		/* a base backup that copies the file (older minor versions):
		 * as it is */
		if (positional && pp_server_phys_walsender())
			return r;
		control_read(fd, f, buf, r, off);
	}
	return r;
}

/* Write buf[0..len) at off from the scratch copy (positional: pwrite). */
static ssize_t
put(int fd, size_t len, off_t off, bool positional)
{
	return positional ? REAL(pwrite) (fd, scratch, len, off) :
		REAL(write) (fd, scratch, len);
}

/*
 * Transform a copy of n bytes and write it at off (off < 0: at the file
 * position, with write()).
 */
static ssize_t
data_write(int fd, pp_fd *f, const void *vbuf, size_t n, off_t off)
{
	const uint8_t *buf = vbuf;
	bool		positional = off >= 0;
	size_t		done = 0;

	if (!positional && (off = REAL(lseek) (fd, 0, SEEK_CUR)) < 0)
		pp_die("could not find the file position of \"%s\": %s", f->path,
			   strerror(errno));

	if (f->kind == PK_WAL && pp_server_walreceiver())
		return positional ? REAL(pwrite) (fd, buf, n, off) :
			REAL(write) (fd, buf, n);	/* as the primary sent it */
	if (f->kind == PK_CONTROL)
	{
		control_to_disk(f, buf, n, off);
		return put(fd, n, off, positional);
	}
	if (f->kind == PK_REL && (off % BLK != 0 || n % BLK != 0))
		pp_die("unaligned write of %zu bytes at offset %lld to relation file \"%s\"",
			   n, (long long) off, f->path);

	while (done < n)
	{
		off_t		at = off + (off_t) done;
		size_t		len = n - done;
		ssize_t		r;

		/* chunks end on page boundaries */
		if (len > PP_SCRATCH - (size_t) (at % WALBLK))
			len = PP_SCRATCH - (size_t) (at % WALBLK);
		memcpy(scratch, buf + done, len);
		if (f->kind == PK_REL)
		{
			uint64_t	gen;
			bool		flag = rel_unlogged(f, &gen);

			rel_pages(f, scratch, len, at, flag);
			r = put(fd, len, at, positional);
			if (r > 0 && rel_changed(f, &flag, &gen))
			{
				/* an _init fork appeared meanwhile: write it again with
				 * the flag, over what the re-encryption may have seen */
				memcpy(scratch, buf + done, (size_t) r);
				rel_pages(f, scratch, (size_t) r, at, flag);
				if (REAL(pwrite) (fd, scratch, (size_t) r, at) != r)
					pp_die("could not rewrite \"%s\" at offset %lld: %s",
						   f->path, (long long) at, strerror(errno));
			}
		}
		else
		{
			wal_transform(fd, f, scratch, len, at);
			r = put(fd, len, at, positional);
		}
		if (r < 0)
			return done > 0 ? (ssize_t) done : -1;
		done += (size_t) r;
		if ((size_t) r < len)
			break;
	}
	return (ssize_t) done;
}

static bool
iov_zero(const struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
	{
		const uint8_t *p = iov[i].iov_base;
		size_t		n = iov[i].iov_len;

		/* p[0] is zero and every byte equals the next one */
		if (n > 0 && (p[0] != 0 || memcmp(p, p + 1, n - 1) != 0))
			return false;
	}
	return true;
}

static ssize_t
einval(void)
{
	errno = EINVAL;
	return -1;
}

/* Vectored I/O on a tracked fd, one buffer at a time (off < 0: at the
 * file position). */
static ssize_t
iov_io(int fd, pp_fd *f, const struct iovec *iov, int cnt, off_t off,
	   bool write)
{
	ssize_t		total = 0;

	if (cnt < 0)
	{
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < cnt; i++)
	{
		off_t		at = off >= 0 ? off + total : -1;
		ssize_t		r = write ?
			data_write(fd, f, iov[i].iov_base, iov[i].iov_len, at) :
			data_read(fd, f, iov[i].iov_base, iov[i].iov_len, at);

		if (r < 0)
			return total > 0 ? total : -1;
		total += r;
		if ((size_t) r < iov[i].iov_len)
			break;
	}
	return total;
}

/* ---- the interposed calls: open ---- */

typedef enum pp_open_kind
{
	OPEN_PLAIN, OPEN_64, OPEN_2, OPEN64_2, OPENAT, OPENAT64, OPENAT_2,
	OPENAT64_2, CREAT, CREAT64
} pp_open_kind;

/* The call the caller made, for files that are not tracked. */
static int
real_open_as(pp_open_kind k, int dirfd, const char *path, int flags,
			 mode_t mode)
{
	switch (k)
	{
		case OPEN_PLAIN:
			return REAL(open) (path, flags, mode);
		case OPEN_64:
			return REAL(open64) (path, flags, mode);
		case OPEN_2:
			return REAL(__open_2) (path, flags);
		case OPEN64_2:
			return REAL(__open64_2) (path, flags);
		case OPENAT:
			return REAL(openat) (dirfd, path, flags, mode);
		case OPENAT64:
			return REAL(openat64) (dirfd, path, flags, mode);
		case OPENAT_2:
			return REAL(__openat_2) (dirfd, path, flags);
		case OPENAT64_2:
			return REAL(__openat64_2) (dirfd, path, flags);
		case CREAT:
			return REAL(creat) (path, mode);
		case CREAT64:
			return REAL(creat64) (path, mode);
	}
	errno = EINVAL;
	return -1;
}

/*
 * Create an _init fork (5): register, bump the generation, create, and
 * when it did not exist re-encrypt the relation's main fork as unlogged.
 */
static int
open_init(pp_open_kind k, int dirfd, const char *path, int flags,
		  mode_t mode, const pp_class *c)
{
	pp_shared  *sh = pp_cl.shared;
	char		mainpath[PCT_MAXPATH];
	int			slot,
				fd;
	bool		existed;

	snprintf(mainpath, sizeof(mainpath), "%.*s", (int) c->mainlen, c->rel);
	slot = conv_register(pct_hash64(c->rel, c->mainlen));
	atomic_fetch_add(&sh->gen, 1);
	existed = faccessat(dirfd, path, F_OK, 0) == 0;
	fd = real_open_as(k, dirfd, path, flags, mode);
	if (fd >= 0)
		fd_forget(fd);
	if (fd >= 0 && !existed && c->segno == 0)
	{
		int			save = errno;

		atomic_fetch_add(&sh->gen, 1);
		convert_relation(mainpath);
		errno = save;
	}
	conv_unregister(slot);
	atomic_fetch_add(&sh->gen, 1);
	return fd;
}

static int
pp_open(pp_open_kind k, int dirfd, const char *path, int flags, mode_t mode)
{
	pp_class	c;
	int			fd;

	if (pp_state == PP_OFF || pp_busy || path == NULL)
		return real_open_as(k, dirfd, path, flags, mode);
	if (pp_state == PP_SERVER && maybe_data_path(dirfd, path))
		pp_activate();			/* may refuse to start */
	if (pp_state != PP_ACTIVE || classify(dirfd, path, &c) == PK_NONE)
	{
		fd = real_open_as(k, dirfd, path, flags, mode);
		if (fd >= 0)
			fd_forget(fd);
		return fd;
	}
	if (c.kind == PK_INIT)
	{
		if (flags & O_CREAT)
			return open_init(k, dirfd, path, flags, mode, &c);
		fd = real_open_as(k, dirfd, path, flags, mode);
		if (fd >= 0)
			fd_forget(fd);
		return fd;
	}
	fd = real_open_as(k, dirfd, path, flags, mode);
	if (fd >= 0)
	{
		int			save = errno;

		fd_track(fd, &c);
		errno = save;
	}
	return fd;
}

/* The mode argument is there when the flags need one. */
#define OPEN_MODE(flags, mode) \
	do { \
		if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) \
		{ \
			va_list		ap; \
			va_start(ap, flags); \
			mode = (mode_t) va_arg(ap, int); \
			va_end(ap); \
		} \
	} while (0)

PP_EXPORT int
open(const char *path, int flags,...)
{
	mode_t		mode = 0;

	OPEN_MODE(flags, mode);
	return pp_open(OPEN_PLAIN, AT_FDCWD, path, flags, mode);
}

PP_EXPORT int
open64(const char *path, int flags,...)
{
	mode_t		mode = 0;

	OPEN_MODE(flags, mode);
	return pp_open(OPEN_64, AT_FDCWD, path, flags, mode);
}

PP_EXPORT int
__open_2(const char *path, int flags)
{
	return pp_open(OPEN_2, AT_FDCWD, path, flags, 0);
}

PP_EXPORT int
__open64_2(const char *path, int flags)
{
	return pp_open(OPEN64_2, AT_FDCWD, path, flags, 0);
}

PP_EXPORT int
openat(int dirfd, const char *path, int flags,...)
{
	mode_t		mode = 0;

	OPEN_MODE(flags, mode);
	return pp_open(OPENAT, dirfd, path, flags, mode);
}

PP_EXPORT int
openat64(int dirfd, const char *path, int flags,...)
{
	mode_t		mode = 0;

	OPEN_MODE(flags, mode);
	return pp_open(OPENAT64, dirfd, path, flags, mode);
}

PP_EXPORT int
__openat_2(int dirfd, const char *path, int flags)
{
	return pp_open(OPENAT_2, dirfd, path, flags, 0);
}

PP_EXPORT int
__openat64_2(int dirfd, const char *path, int flags)
{
	return pp_open(OPENAT64_2, dirfd, path, flags, 0);
}

PP_EXPORT int
creat(const char *path, mode_t mode)
{
	return pp_open(CREAT, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

PP_EXPORT int
creat64(const char *path, mode_t mode)
{
	return pp_open(CREAT64, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC,
				   mode);
}

/* fopen: only to define cluster_key_command (pct_pgserver.c); stdio on a
 * data file (pg_read_binary_file) is neither seen nor transformed. */
PP_EXPORT FILE *
fopen(const char *path, const char *mode)
{
	if (pp_state != PP_OFF && path != NULL)
		pp_server_config_opened(path);
	return REAL(fopen) (path, mode);
}

PP_EXPORT FILE *
fopen64(const char *path, const char *mode)
{
	if (pp_state != PP_OFF && path != NULL)
		pp_server_config_opened(path);
	return REAL(fopen64) (path, mode);
}

/* ---- close, dup ---- */

PP_EXPORT int
close(int fd)
{
	fd_forget(fd);
	return REAL(close) (fd);
}

PP_EXPORT int
dup(int fd)
{
	int			r = REAL(dup) (fd);

	if (r >= 0)
		fd_copy(fd, r);
	return r;
}

PP_EXPORT int
dup2(int fd, int fd2)
{
	int			r = REAL(dup2) (fd, fd2);

	if (r >= 0)
		fd_copy(fd, r);
	return r;
}

PP_EXPORT int
dup3(int fd, int fd2, int flags)
{
	int			r = REAL(dup3) (fd, fd2, flags);

	if (r >= 0)
		fd_copy(fd, r);
	return r;
}

/* The third argument, whatever its type (int or pointer), is passed on as
 * it came: on the supported ABI (x86-64) both travel the same way. */
#define FCNTL_BODY(realfn) \
	do { \
		va_list		ap; \
		void	   *arg; \
		int			r; \
		va_start(ap, cmd); \
		arg = va_arg(ap, void *); \
		va_end(ap); \
		r = realfn(fd, cmd, arg); \
		if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) \
			fd_copy(fd, r); \
		return r; \
	} while (0)

PP_EXPORT int
fcntl(int fd, int cmd,...)
{
	FCNTL_BODY(REAL(fcntl));
}

PP_EXPORT int
fcntl64(int fd, int cmd,...)
{
	FCNTL_BODY(REAL(fcntl64));
}

/* ---- reads ---- */

PP_EXPORT ssize_t
read(int fd, void *buf, size_t n)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(read) (fd, buf, n);
	return data_read(fd, f, buf, n, -1);
}

PP_EXPORT ssize_t
__read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(__read_chk) (fd, buf, n, buflen);
	if (n > buflen)
		__chk_fail();
	return data_read(fd, f, buf, n, -1);
}

PP_EXPORT ssize_t
pread(int fd, void *buf, size_t n, off_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(pread) (fd, buf, n, off);
	if (off < 0)
	{
		errno = EINVAL;
		return -1;
	}
	return data_read(fd, f, buf, n, off);
}

PP_EXPORT ssize_t
pread64(int fd, void *buf, size_t n, off64_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(pread64) (fd, buf, n, off);
	if (off < 0)
	{
		errno = EINVAL;
		return -1;
	}
	return data_read(fd, f, buf, n, (off_t) off);
}

PP_EXPORT ssize_t
__pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (fd_get(fd) == NULL)
		return REAL(__pread_chk) (fd, buf, n, off, buflen);
	if (n > buflen)
		__chk_fail();
	return pread(fd, buf, n, off);
}

PP_EXPORT ssize_t
__pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	if (fd_get(fd) == NULL)
		return REAL(__pread64_chk) (fd, buf, n, off, buflen);
	if (n > buflen)
		__chk_fail();
	return pread64(fd, buf, n, off);
}

PP_EXPORT ssize_t
readv(int fd, const struct iovec *iov, int cnt)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(readv) (fd, iov, cnt);
	return iov_io(fd, f, iov, cnt, -1, false);
}

PP_EXPORT ssize_t
preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(preadv) (fd, iov, cnt, off);
	return off < 0 ? einval() : iov_io(fd, f, iov, cnt, off, false);
}

PP_EXPORT ssize_t
preadv64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(preadv64) (fd, iov, cnt, off);
	return off < 0 ? einval() : iov_io(fd, f, iov, cnt, (off_t) off, false);
}

PP_EXPORT ssize_t
preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(preadv2) (fd, iov, cnt, off, flags);
	if (flags != 0)
		pp_die("preadv2() with flags 0x%x on \"%s\" is not handled", flags,
			   f->path);
	return iov_io(fd, f, iov, cnt, off, false);	/* -1: file position */
}

PP_EXPORT ssize_t
preadv64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(preadv64v2) (fd, iov, cnt, off, flags);
	if (flags != 0)
		pp_die("preadv64v2() with flags 0x%x on \"%s\" is not handled",
			   flags, f->path);
	return iov_io(fd, f, iov, cnt, (off_t) off, false);
}

/* ---- writes ---- */

PP_EXPORT ssize_t
write(int fd, const void *buf, size_t n)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(write) (fd, buf, n);
	return data_write(fd, f, buf, n, -1);
}

PP_EXPORT ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(pwrite) (fd, buf, n, off);
	if (off < 0)
	{
		errno = EINVAL;
		return -1;
	}
	return data_write(fd, f, buf, n, off);
}

PP_EXPORT ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(pwrite64) (fd, buf, n, off);
	if (off < 0)
	{
		errno = EINVAL;
		return -1;
	}
	return data_write(fd, f, buf, n, (off_t) off);
}

PP_EXPORT ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL)
		return REAL(writev) (fd, iov, cnt);
	return iov_io(fd, f, iov, cnt, -1, true);
}

/* Zeros are stored as zeros (new relation pages, WAL pages not in use):
 * one call, as the server made it. */
#define ZERO_PASSES(f) ((f)->kind == PK_REL || (f)->kind == PK_WAL)

PP_EXPORT ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL || (ZERO_PASSES(f) && iov_zero(iov, cnt)))
		return REAL(pwritev) (fd, iov, cnt, off);
	return off < 0 ? einval() : iov_io(fd, f, iov, cnt, off, true);
}

PP_EXPORT ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL || (ZERO_PASSES(f) && iov_zero(iov, cnt)))
		return REAL(pwritev64) (fd, iov, cnt, off);
	return off < 0 ? einval() : iov_io(fd, f, iov, cnt, (off_t) off, true);
}

PP_EXPORT ssize_t
pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL || (flags == 0 && ZERO_PASSES(f) && iov_zero(iov, cnt)))
		return REAL(pwritev2) (fd, iov, cnt, off, flags);
	if (flags != 0)
		pp_die("pwritev2() with flags 0x%x on \"%s\" is not handled", flags,
			   f->path);
	return iov_io(fd, f, iov, cnt, off, true);	/* -1: file position */
}

PP_EXPORT ssize_t
pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	pp_fd	   *f = fd_get(fd);

	if (f == NULL || (flags == 0 && ZERO_PASSES(f) && iov_zero(iov, cnt)))
		return REAL(pwritev64v2) (fd, iov, cnt, off, flags);
	if (flags != 0)
		pp_die("pwritev64v2() with flags 0x%x on \"%s\" is not handled",
			   flags, f->path);
	return iov_io(fd, f, iov, cnt, (off_t) off, true);
}

/* ---- what cannot be transformed ---- */

static void
refuse_on(int fd, const char *call)
{
	pp_fd	   *f = fd_get(fd);

	if (f != NULL)
		pp_die("%s() on \"%s\" cannot be handled by the preload", call,
			   f->path);
}

PP_EXPORT void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!(flags & MAP_ANONYMOUS))
		refuse_on(fd, "mmap");
	return REAL(mmap) (addr, len, prot, flags, fd, off);
}

PP_EXPORT void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	if (!(flags & MAP_ANONYMOUS))
		refuse_on(fd, "mmap64");
	return REAL(mmap64) (addr, len, prot, flags, fd, off);
}

PP_EXPORT ssize_t
copy_file_range(int in, off64_t *inoff, int out, off64_t *outoff,
				size_t len, unsigned int flags)
{
	refuse_on(in, "copy_file_range");
	refuse_on(out, "copy_file_range");
	return REAL(copy_file_range) (in, inoff, out, outoff, len, flags);
}

PP_EXPORT ssize_t
sendfile(int out, int in, off_t *off, size_t count)
{
	refuse_on(in, "sendfile");
	refuse_on(out, "sendfile");
	return REAL(sendfile) (out, in, off, count);
}

PP_EXPORT ssize_t
sendfile64(int out, int in, off64_t *off, size_t count)
{
	refuse_on(in, "sendfile64");
	refuse_on(out, "sendfile64");
	return REAL(sendfile64) (out, in, off, count);
}

PP_EXPORT ssize_t
splice(int in, off64_t *inoff, int out, off64_t *outoff, size_t len,
	   unsigned int flags)
{
	refuse_on(in, "splice");
	refuse_on(out, "splice");
	return REAL(splice) (in, inoff, out, outoff, len, flags);
}
