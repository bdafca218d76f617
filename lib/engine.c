/*
 * engine.c
 *	  The bulk engine: rewrite every relation page and WAL page of a
 *	  cluster in place, crash-safe (FORMAT sections 3, 4, 5).
 *
 * Owns: the plan (which fake LSN each relation gets under rule 3.1, the
 * fingerprint of the file map), the batch loop, worker threads, resume,
 * progress.  The journal's bytes are journal.c's; the page transforms are
 * pagecipher.c's and walcipher.c's.
 *
 * Theory of operation:
 *	1. Plan.  Encryption gives every permanent relation a fake LSN F (its
 *	   rank among permanent relations, 1 <= F < segment size) for pages
 *	   whose LSN is below the segment size, and every unlogged relation
 *	   with a non-new page the next value of the unloggedLSN counter
 *	   (from max(counter, 1000)).  The plan depends only on the file map,
 *	   whose fingerprint the journal keeps, and on pd_upper, which
 *	   encryption keeps clear; so a rerun plans the same.
 *	2. Create the journal, or open it and check that it describes this
 *	   operation, these keys and this file map.
 *	3. Resume: an unfinished batch in the journal is finished (checksum
 *	   mode: each 4 KiB sector is old, new or torn by its hashes; old ones
 *	   are transformed, torn ones reported) or rolled back to its old
 *	   contents copied in the journal (journal mode) and redone.
 *	4. Loop over batches of hotzones (at most 1 MiB of one file each).
 *	   Checksum mode, two passes over each batch of up to 256 MiB:
 *	   a. pass 1 (the transform crew: one thread per worker, each with its
 *	      cipher contexts and a hotzone buffer): read and transform every
 *	      zone, keeping only the hash of every sector before and after;
 *	   b. record the batch in the journal, the previous one still marked
 *	      unfinished (it is being synced), and make the record durable;
 *	   c. pass 2: read and transform every zone again, check the hashes
 *	      against the record, write it in place, start its writeback;
 *	   d. wait until the previous batch is durable, then hand this one to
 *	      the sync crew (fdatasync of each file);
 *	   e. report progress (a stop request takes effect here); then pass 1
 *	      over the next batch runs while this one syncs.
 *	   No batch data is held in memory, and the storage gets a quarter of
 *	   a gigabyte between two journal flushes.
 *	   Journal mode, batches of up to 12 MiB held in memory with a copy of
 *	   their old data: the next batch is read and transformed while this
 *	   one is recorded (with the old data) and written (the write crew:
 *	   one thread writes all zones of a file) and the previous one syncs.
 *	   Either way at most two batches are unfinished at any time, and the
 *	   journal names both; resume finishes (or rolls back) both.
 *	5. Wait for the last sync; record in the journal that all data is
 *	   durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pct_internal.h"

#define HOTZONE_MAX		(1024 * 1024)
/* Checksum mode holds only a batch's hashes (16 bytes a sector: 1 MiB for
 * 256 MiB); journal mode holds two batches with their old data, 2 x (12 +
 * 12) MiB, so the peak stays under 64 MB. */
#define BATCH_CHECKSUM	(256 * 1024 * 1024)
#define BATCH_JOURNAL	(12 * 1024 * 1024)
#define MAX_ZONES		4096
#define MAX_THREADS		64		/* -j limit, and the most threads of a phase */
#define IO_THREADS		16		/* threads of the write and sync crews */
#define CREW_STACK		(256 * 1024)	/* stack of each crew thread */
#define SECTOR			PCT_SECTOR_SIZE
#define PAGE			8192

/* Indexes of the counts (batch->cnt, engine->total, journal counters). */
enum
{
	CNT_PAGES,
	CNT_WAL_PAGES,
	CNT_LSNS,
	CNT_CSFAIL,
	CNT_TORN
};

enum sector_state
{
	SECTOR_OLD,
	SECTOR_NEW,
	SECTOR_TORN
};

typedef struct worker
{
	pct_cipher *in_rel,
			   *in_wal,
			   *out_rel,
			   *out_wal;
	uint8_t    *zbuf;			/* checksum mode: one hotzone */
} worker;

/* One batch of hotzones on its way through the phases. */
typedef struct batch
{
	uint8_t    *buf;			/* its data (one of the two buffer sets) */
	uint8_t    *record;			/* its journal record */
	uint8_t    *old;			/* journal mode: copy of the old data, in
								 * place in the record */
	uint64_t   *hashes;			/* old, new per sector */
	pct_jzone  *zones;
	size_t	   *zoff;			/* offset of each zone in the data buffer */
	int		   *fds;
	uint32_t	nzones;
	size_t		bytes;
	uint64_t	end_file,		/* the position after the batch */
				end_offset;
	atomic_ullong cnt[PCT_BATCH_NCOUNTS];	/* what transforming it did */
} batch;

typedef struct engine
{
	const char *pgdata;
	const pct_control *ctl;
	const pct_filemap *fm;
	const pct_engine_opts *o;
	uint64_t   *file_lsn;		/* plan: fake LSN per file, 0 for none */
	pct_journal *j;
	size_t		batch_max;
	uint8_t    *bufs[2];		/* two buffer sets: data (journal mode), */
	uint8_t    *records[2];		/* journal record (with the old data), */
	uint64_t   *hashsets[2];	/* sector hashes */
	size_t		record_max;
	uint8_t    *zonebuf;		/* one hotzone: planning and resume */
	batch		batches[3];		/* syncing, being written, being transformed */
	uint32_t	max_zones;		/* per batch, within the open-file limit */
	bool		skip_rel,
				skip_wal;
	int			nworkers;
	int			ncrew;			/* workers in the transform crew */
	worker	   *workers;
	uint64_t	total[PCT_JOURNAL_NCOUNTERS];	/* of the durable batches */
	pthread_mutex_t err_lock;
	pct_rc		err;
} engine;

typedef void (*work_fn) (engine *e, batch *b, worker *w, uint32_t item);

static void
set_error(engine *e, pct_rc rc)
{
	pthread_mutex_lock(&e->err_lock);
	if (e->err == PCT_OK)
		e->err = rc;
	pthread_mutex_unlock(&e->err_lock);
}

/*
 * A crew: threads that live as long as the engine and work through the
 * zones of one batch per phase.  Three crews run at once: the transform
 * crew (one thread per worker, each with its cipher contexts) on batch
 * n + 1, the write crew on batch n and the sync crew on batch n - 1.
 * crew_start hands a phase to the crew and returns at once; crew_wait
 * waits until every thread has finished it.  A crew that has no threads
 * (thread creation failed) runs the phase in the caller instead.
 */
typedef struct crew
{
	engine	   *e;
	pthread_t	tids[MAX_THREADS];
	int			nthreads;
	bool		with_workers;
	pthread_mutex_t mu;
	pthread_cond_t go,
				done;
	uint64_t	gen;			/* phases started */
	int			active;			/* threads still working on this phase */
	bool		busy,			/* a phase was started and not yet waited for */
				quit;
	batch	   *b;				/* the phase: fn over the zones of b */
	work_fn		fn;
	atomic_uint next;
} crew;

typedef struct crew_member
{
	crew	   *c;
	int			index;
} crew_member;

/* Work through the zones of the current phase; w may be NULL. */
static void
crew_work(crew *c, worker *w)
{
	uint32_t	i;

	while ((i = atomic_fetch_add(&c->next, 1)) < c->b->nzones)
	{
		if (c->e->err != PCT_OK)
			break;
		c->fn(c->e, c->b, w, i);
	}
}

static void *
crew_main(void *p)
{
	crew_member *m = p;
	crew	   *c = m->c;
	worker	   *w = c->with_workers ? &c->e->workers[m->index] : NULL;
	uint64_t	seen = 0;

	free(m);
	for (;;)
	{
		pthread_mutex_lock(&c->mu);
		while (c->gen == seen && !c->quit)
			pthread_cond_wait(&c->go, &c->mu);
		if (c->quit)
		{
			pthread_mutex_unlock(&c->mu);
			return NULL;
		}
		seen = c->gen;
		pthread_mutex_unlock(&c->mu);

		crew_work(c, w);

		pthread_mutex_lock(&c->mu);
		if (--c->active == 0)
			pthread_cond_signal(&c->done);
		pthread_mutex_unlock(&c->mu);
	}
}

/* Start up to nthreads threads; with_workers gives thread t worker t. */
static void
crew_init(crew *c, engine *e, int nthreads, bool with_workers)
{
	pthread_attr_t attr;

	c->e = e;
	c->with_workers = with_workers;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->go, NULL);
	pthread_cond_init(&c->done, NULL);
	pthread_attr_init(&attr);
	(void) pthread_attr_setstacksize(&attr, CREW_STACK);
	for (int t = 0; t < nthreads && t < MAX_THREADS; t++)
	{
		crew_member *m = malloc(sizeof(*m));

		if (m == NULL)
			break;
		*m = (crew_member) {c, t};
		if (pthread_create(&c->tids[t], &attr, crew_main, m) != 0)
		{
			free(m);
			break;
		}
		c->nthreads++;
	}
	pthread_attr_destroy(&attr);
}

static void
crew_start(crew *c, batch *b, work_fn fn)
{
	c->b = b;
	c->fn = fn;
	atomic_store(&c->next, 0);
	c->busy = true;
	if (c->nthreads == 0)
	{
		crew_work(c, c->with_workers ? &c->e->workers[0] : NULL);
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->active = c->nthreads;
	c->gen++;
	pthread_cond_broadcast(&c->go);
	pthread_mutex_unlock(&c->mu);
}

/* Wait for the phase started last; false when none was running. */
static bool
crew_wait(crew *c)
{
	if (!c->busy)
		return false;
	pthread_mutex_lock(&c->mu);
	while (c->active > 0)
		pthread_cond_wait(&c->done, &c->mu);
	pthread_mutex_unlock(&c->mu);
	c->busy = false;
	return true;
}

/* Run one phase to its end. */
static pct_rc
crew_run(crew *c, batch *b, work_fn fn)
{
	crew_start(c, b, fn);
	crew_wait(c);
	return c->e->err;
}

static void
crew_destroy(crew *c)
{
	if (c->e == NULL)
		return;
	crew_wait(c);
	pthread_mutex_lock(&c->mu);
	c->quit = true;
	pthread_cond_broadcast(&c->go);
	pthread_mutex_unlock(&c->mu);
	for (int t = 0; t < c->nthreads; t++)
		pthread_join(c->tids[t], NULL);
	pthread_cond_destroy(&c->go);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->mu);
	c->e = NULL;
}

/* ---- page transforms ---- */

static uint32_t
block_number(const engine *e, const pct_file *f, uint64_t offset)
{
	return f->segno * e->ctl->relseg_size + (uint32_t) (offset / PAGE);
}

/*
 * Transform one relation page in place: check the checksum as the page is
 * on disk, decrypt (input key), apply rule 3.1 (encryption only), encrypt
 * (output key), set the checksum over the result (a page whose checksum
 * failed keeps failing by the same difference).  The work is counted in
 * cnt and reported; with cnt NULL (a resume, whose batch record holds the
 * counts) it is neither.
 */
static void
rel_page(engine *e, worker *w, const pct_file *f, uint64_t flsn,
		 uint8_t *page, uint32_t blkno, uint64_t offset, atomic_ullong *cnt)
{
	bool		checksums = e->ctl->data_checksum_version != 0;
	uint16_t	delta = 0;

	if (pct_page_is_new(page))
		return;
	if (checksums)
	{
		uint16_t	sum = pct_page_checksum(page, blkno);

		delta = sum ^ pct_page_get_checksum(page);
		if (delta != 0 && cnt)
		{
			char		path[PCT_MAXPATH];

			atomic_fetch_add(&cnt[CNT_CSFAIL], 1);
			pct_report(PCT_LOG_WARNING, NULL, NULL,
					   "checksum verification failed in file \"%s\", block %u (offset %llu): page rewritten, checksum left failing",
					   pct_file_path(e->fm, f, path), blkno,
					   (unsigned long long) offset);
		}
	}
	if (w->in_rel)
		pct_page_crypt(w->in_rel, page, blkno, f->unlogged);
	if (flsn != 0 &&
		(f->unlogged || pct_page_get_lsn(page) < e->ctl->xlog_seg_size))
	{
		if (cnt && pct_page_get_lsn(page) != flsn)
			atomic_fetch_add(&cnt[CNT_LSNS], 1);
		pct_page_set_lsn(page, flsn);
	}
	if (w->out_rel)
		pct_page_crypt(w->out_rel, page, blkno, f->unlogged);
	if (checksums)
		pct_page_set_checksum(page, pct_page_checksum(page, blkno) ^ delta);
	if (cnt)
		atomic_fetch_add(&cnt[CNT_PAGES], 1);
}

static void
wal_page(engine *e, worker *w, uint8_t *page, atomic_ullong *cnt)
{
	bool		in_use = false;

	if (w->in_wal)
		pct_wal_crypt_page(w->in_wal, page, e->o->wal_magic, &in_use);
	if (w->out_wal)
		pct_wal_crypt_page(w->out_wal, page, e->o->wal_magic, &in_use);
	if (in_use && cnt)
		atomic_fetch_add(&cnt[CNT_WAL_PAGES], 1);
}

static void
transform_page(engine *e, worker *w, uint32_t fileno, uint8_t *page,
			   uint64_t offset, atomic_ullong *cnt)
{
	const pct_file *f = &e->fm->files[fileno];

	if (f->kind == PCT_FILE_RELATION)
		rel_page(e, w, f, e->file_lsn[fileno], page,
				 block_number(e, f, offset), offset, cnt);
	else
		wal_page(e, w, page, cnt);
}

static bool
skip_file(const engine *e, const pct_file *f)
{
	return f->size == 0 ||
		(f->kind == PCT_FILE_RELATION ? e->skip_rel : e->skip_wal);
}

/* ---- the plan ---- */

static bool
same_relation(const pct_file *a, const pct_file *b)
{
	return a->kind == PCT_FILE_RELATION && b->kind == PCT_FILE_RELATION &&
		a->tablespace == b->tablespace && a->database == b->database &&
		a->relfilenode == b->relfilenode;
}

/* Does the file hold a non-new page (pd_upper != 0)? */
static pct_rc
has_nonnew_page(engine *e, const pct_file *f, bool *found)
{
	char		path[PCT_MAXPATH];
	int			fd;
	pct_rc		rc = PCT_OK;

	*found = false;
	fd = open(pct_file_path(e->fm, f, path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pct_syserr("could not open file \"%s\"", path);
	for (uint64_t off = 0; off < f->size && !*found && rc == PCT_OK;)
	{
		size_t		len = f->size - off > HOTZONE_MAX ? HOTZONE_MAX : f->size - off;

		rc = pct_pread_all(fd, e->zonebuf, len, (off_t) off, path);
		for (size_t p = 0; rc == PCT_OK && p < len && !*found; p += PAGE)
			*found = !pct_page_is_new(e->zonebuf + p);
		off += len;
	}
	close(fd);
	return rc;
}

static pct_rc
plan_lsns(engine *e, uint64_t unlogged_base, uint64_t *unlogged_next)
{
	const pct_filemap *fm = e->fm;
	uint64_t	perm = 0,
				next = unlogged_base;

	*unlogged_next = unlogged_base;
	if (e->o->op != PCT_OP_ENCRYPT)
		return PCT_OK;
	for (size_t i = 0; i < fm->nfiles;)
	{
		const pct_file *f = &fm->files[i];
		size_t		end = i + 1;
		uint64_t	lsn = 0;

		if (f->kind != PCT_FILE_RELATION)
		{
			i++;
			continue;
		}
		while (end < fm->nfiles && same_relation(f, &fm->files[end]))
			end++;
		if (!f->unlogged)
		{
			lsn = ++perm;
			if (lsn >= e->ctl->xlog_seg_size)
				return pct_fail(PCT_ERR_STATE, NULL, NULL,
								"too many relations (%llu) for unique fake LSNs below the WAL segment size",
								(unsigned long long) perm);
		}
		else
		{
			bool		found = false;

			for (size_t k = i; k < end && !found; k++)
			{
				pct_rc		rc = has_nonnew_page(e, &fm->files[k], &found);

				if (rc != PCT_OK)
					return rc;
			}
			if (found)
				lsn = next++;
		}
		for (size_t k = i; k < end; k++)
			e->file_lsn[k] = lsn;
		i = end;
	}
	*unlogged_next = next;
	return PCT_OK;
}

static void
fingerprint(const engine *e, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 32;
	uint8_t		b[24];

	memset(out, 0, 32);
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
	{
		EVP_MD_CTX_free(md);
		return;
	}
	for (size_t i = 0; i < e->fm->nfiles; i++)
	{
		const pct_file *f = &e->fm->files[i];
		char		path[PCT_MAXPATH];

		pct_file_path(e->fm, f, path);
		pct_put_u64(b, f->size);
		pct_put_u32(b + 8, (uint32_t) f->kind);
		pct_put_u32(b + 12, f->unlogged ? 1 : 0);
		pct_put_u32(b + 16, f->segno);
		pct_put_u32(b + 20, 0);
		EVP_DigestUpdate(md, path, strlen(path) + 1);
		EVP_DigestUpdate(md, b, sizeof(b));
	}
	EVP_DigestFinal_ex(md, out, &n);
	EVP_MD_CTX_free(md);
}

/* ---- batches ---- */

static uint32_t
area_size(pct_resilience mode)
{
	size_t		most = mode == PCT_RESILIENCE_JOURNAL ? BATCH_JOURNAL : BATCH_CHECKSUM;

	return pct_journal_record_size(MAX_ZONES, (uint32_t) (most / SECTOR),
								   mode == PCT_RESILIENCE_JOURNAL ? most : 0);
}

uint64_t
pct_engine_journal_space(pct_resilience mode)
{
	return 2 * 4096 + PCT_JOURNAL_AREAS * (uint64_t) area_size(mode);
}

/* Open a file to rewrite and check it is still what the map says. */
static pct_rc
open_checked(const engine *e, const pct_file *f, int *fdp)
{
	char		path[PCT_MAXPATH];
	struct stat st;
	int			fd = open(pct_file_path(e->fm, f, path), O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return pct_syserr("could not open file \"%s\"", path);
	if (fstat(fd, &st) != 0)
	{
		pct_rc		rc = pct_syserr("could not stat file \"%s\"", path);

		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size != f->size || st.st_nlink != 1)
	{
		close(fd);
		return pct_fail(PCT_ERR_STATE, NULL,
						"Files must not change while the cluster is being rewritten.",
						"file \"%s\" changed since the start: size %lld, links %lu",
						path, (long long) st.st_size,
						(unsigned long) st.st_nlink);
	}
	*fdp = fd;
	return PCT_OK;
}

/*
 * Open a zone's file (checked against the map) and read the zone into
 * data.  The descriptor is left in *fd, also after a failed read, for the
 * caller to close.
 */
static pct_rc
load_zone(engine *e, const pct_jzone *z, uint8_t *data, int *fd)
{
	char		path[PCT_MAXPATH];
	pct_rc		rc = open_checked(e, &e->fm->files[z->file], fd);

	if (rc == PCT_OK)
		rc = pct_pread_all(*fd, data, z->len, (off_t) z->offset,
						   pct_file_path(e->fm, &e->fm->files[z->file], path));
	return rc;
}

/*
 * Transform a zone in memory, page by page (so that the page stays in the
 * CPU cache between its hashes and its transform), hashing each sector
 * before and after into h (old, new per sector).  cnt as for rel_page.
 */
static void
transform_zone(engine *e, worker *w, const pct_jzone *z, uint8_t *data,
			   uint64_t *h, atomic_ullong *cnt)
{
	for (uint32_t p = 0; p < z->len; p += PAGE, h += 2 * (PAGE / SECTOR))
	{
		uint8_t    *page = data + p;

		for (uint32_t s = 0; s < PAGE / SECTOR; s++)
			h[2 * s] = pct_sector_hash(page + (size_t) s * SECTOR);
		transform_page(e, w, z->file, page, z->offset + p, cnt);
		for (uint32_t s = 0; s < PAGE / SECTOR; s++)
			h[2 * s + 1] = pct_sector_hash(page + (size_t) s * SECTOR);
	}
}

/* Journal mode: read a zone into the batch, keep a copy of its old data,
 * transform it. */
static void
read_zone(engine *e, batch *b, worker *w, uint32_t i)
{
	const pct_jzone *z = &b->zones[i];
	uint8_t    *data = b->buf + b->zoff[i];
	pct_rc		rc;

	if ((rc = load_zone(e, z, data, &b->fds[i])) != PCT_OK)
	{
		set_error(e, rc);
		return;
	}
	if (b->old)
		memcpy(b->old + b->zoff[i], data, z->len);
	transform_zone(e, w, z, data, b->hashes + 2 * (b->zoff[i] / SECTOR), b->cnt);
}

/*
 * Checksum mode, pass 1: read a zone into the worker's buffer, transform
 * it and keep only the hashes (and counts) for the journal record.
 */
static void
hash_zone(engine *e, batch *b, worker *w, uint32_t i)
{
	const pct_jzone *z = &b->zones[i];
	int			fd = -1;
	pct_rc		rc = load_zone(e, z, w->zbuf, &fd);

	if (fd >= 0)
		close(fd);
	if (rc != PCT_OK)
	{
		set_error(e, rc);
		return;
	}
	transform_zone(e, w, z, w->zbuf, b->hashes + 2 * (b->zoff[i] / SECTOR), b->cnt);
}

/*
 * Checksum mode, pass 2 (the batch is recorded): read the zone again,
 * transform it again, check that both its old and its new sectors hash as
 * recorded (so the file did not change and the transform repeated
 * itself), write it in place and start its writeback.  The descriptor
 * stays open for the sync phase.
 */
static void
rewrite_zone(engine *e, batch *b, worker *w, uint32_t i)
{
	const pct_jzone *z = &b->zones[i];
	const uint64_t *want = b->hashes + 2 * (b->zoff[i] / SECTOR);
	uint64_t	got[2 * (HOTZONE_MAX / SECTOR)];
	char		path[PCT_MAXPATH];
	pct_rc		rc;

	pct_file_path(e->fm, &e->fm->files[z->file], path);
	if ((rc = load_zone(e, z, w->zbuf, &b->fds[i])) != PCT_OK)
	{
		set_error(e, rc);
		return;
	}
	transform_zone(e, w, z, w->zbuf, got, NULL);
	if (memcmp(got, want, 2 * sizeof(uint64_t) * (z->len / SECTOR)) != 0)
	{
		set_error(e, pct_fail(PCT_ERR_STATE, NULL,
							  "Files must not change while the cluster is being rewritten.",
							  "file \"%s\" at offset %llu changed between reading and rewriting",
							  path, (unsigned long long) z->offset));
		return;
	}
	if ((rc = pct_pwrite_all(b->fds[i], w->zbuf, z->len, (off_t) z->offset,
							 path)) != PCT_OK)
	{
		set_error(e, rc);
		return;
	}
	if (pct_sync_enabled())
		(void) sync_file_range(b->fds[i], (off_t) z->offset, z->len,
							   SYNC_FILE_RANGE_WRITE);
}

/*
 * Write a run of zones: the zones of one file are consecutive in a batch,
 * so the first zone of each file writes them all, one after the other
 * (threads writing the same file would only wait for each other on its
 * inode lock), and starts the writeback of each as soon as it is written.
 */
static void
write_zone(engine *e, batch *b, worker *w, uint32_t i)
{
	char		path[PCT_MAXPATH];

	(void) w;
	if (i > 0 && b->zones[i - 1].file == b->zones[i].file)
		return;					/* written by the run's first zone */
	pct_file_path(e->fm, &e->fm->files[b->zones[i].file], path);
	for (uint32_t k = i; k < b->nzones && b->zones[k].file == b->zones[i].file; k++)
	{
		const pct_jzone *z = &b->zones[k];
		pct_rc		rc = pct_pwrite_all(b->fds[i], b->buf + b->zoff[k], z->len,
										(off_t) z->offset, path);

		if (rc != PCT_OK)
		{
			set_error(e, rc);
			return;
		}
		/* durability comes from the sync phase's fdatasync */
		if (pct_sync_enabled())
			(void) sync_file_range(b->fds[i], (off_t) z->offset, z->len,
								   SYNC_FILE_RANGE_WRITE);
	}
}

/*
 * Make a zone's data durable.  Zones are in file order, so only the last
 * zone of each file syncs it (one flush per file and batch, not per zone);
 * every zone closes its own descriptor.
 */
static void
sync_zone(engine *e, batch *b, worker *w, uint32_t i)
{
	bool		last_of_file = i + 1 == b->nzones ||
		b->zones[i + 1].file != b->zones[i].file;

	(void) w;
	if (b->fds[i] < 0)
		return;
	if (last_of_file && pct_sync_enabled() && fdatasync(b->fds[i]) != 0)
	{
		char		path[PCT_MAXPATH];

		set_error(e, pct_syserr("could not fsync file \"%s\"",
								pct_file_path(e->fm, &e->fm->files[b->zones[i].file], path)));
	}
	close(b->fds[i]);
	b->fds[i] = -1;
}

static void
close_fds(batch *b)
{
	for (uint32_t i = 0; i < b->nzones; i++)
		if (b->fds[i] >= 0)
		{
			close(b->fds[i]);
			b->fds[i] = -1;
		}
}

/* Fill b from position (*file, *offset), using buffer set `set`; false
 * when nothing is left. */
static bool
plan_batch(engine *e, batch *b, int set, uint64_t n, uint64_t *file,
		   uint64_t *offset)
{
	size_t		used = 0;
	size_t		most = e->batch_max;

	/* the first batches grow (1/32, 1/8, 1/2 of the full size), so that
	 * the disk starts writing soon instead of waiting for a whole first
	 * batch to be hashed */
	if (n < 3 && e->o->mode == PCT_RESILIENCE_CHECKSUM)
		most = most >> (5 - 2 * n) < HOTZONE_MAX ? HOTZONE_MAX : most >> (5 - 2 * n);
	if (most > e->batch_max)
		most = e->batch_max;

	b->buf = e->bufs[set];
	b->record = e->records[set];
	b->hashes = e->hashsets[set];
	for (int k = 0; k < PCT_BATCH_NCOUNTS; k++)
		atomic_store(&b->cnt[k], 0);
	b->nzones = 0;
	while (*file < e->fm->nfiles && b->nzones < e->max_zones && used < most)
	{
		const pct_file *f = &e->fm->files[*file];
		uint64_t	len;

		if (skip_file(e, f) || *offset >= f->size)
		{
			(*file)++;
			*offset = 0;
			continue;
		}
		len = f->size - *offset;
		if (len > HOTZONE_MAX)
			len = HOTZONE_MAX;
		if (len > most - used)
			len = (most - used) / PAGE * PAGE;
		if (len == 0)
			break;
		b->zones[b->nzones] = (pct_jzone) {(uint32_t) *file, (uint32_t) len, *offset};
		b->zoff[b->nzones] = used;
		b->fds[b->nzones] = -1;
		b->nzones++;
		used += len;
		*offset += len;
	}
	b->bytes = used;
	b->old = e->o->mode == PCT_RESILIENCE_JOURNAL ?
		b->record + pct_journal_data_offset(b->nzones, (uint32_t) (used / SECTOR)) : NULL;
	b->end_file = *file;
	b->end_offset = *offset;
	return b->nzones > 0;
}

/* ---- resume ---- */

static enum sector_state
classify(const uint8_t *sector, const uint8_t *hashes, uint64_t s)
{
	uint64_t	h = pct_sector_hash(sector);

	if (h == pct_get_u64(hashes + 16 * s + 8))
		return SECTOR_NEW;
	if (h == pct_get_u64(hashes + 16 * s))
		return SECTOR_OLD;
	return SECTOR_TORN;
}

/*
 * Finish one page of an unfinished batch (checksum mode).  A page is two
 * sectors, each old or new.  The transform of the second sector depends
 * only on the LSNs (input: as stored; output: after rule 3.1), which the
 * first sector holds in the clear either way, and on a pure XOR; so
 * applying the transform to a page whose second sector is already new
 * turns that sector back into its old form, and vice versa.
 */
static pct_rc
recover_page(engine *e, worker *w, const pct_jzone *z, uint8_t *page,
			 uint64_t offset, const uint8_t *hashes, uint64_t s0, bool *dirty)
{
	const pct_file *f = &e->fm->files[z->file];
	enum sector_state c1 = classify(page, hashes, s0),
				c2 = classify(page + SECTOR, hashes, s0 + 1);
	uint8_t		tmp[PAGE];
	char		path[PCT_MAXPATH];

	*dirty = false;
	if (c1 == SECTOR_NEW && c2 == SECTOR_NEW)
		return PCT_OK;
	if (c1 == SECTOR_TORN || c2 == SECTOR_TORN)
	{
		e->total[CNT_TORN]++;
		pct_report(PCT_LOG_WARNING, NULL,
				   "Storage tore a sector write; restore this file from a backup.",
				   "damaged sector in file \"%s\" at offset %llu: neither its old nor its new contents",
				   pct_file_path(e->fm, f, path),
				   (unsigned long long) (offset + (c1 == SECTOR_TORN ? 0 : SECTOR)));
		return PCT_OK;
	}
	if (c1 == SECTOR_OLD && c2 == SECTOR_NEW)
	{
		memcpy(tmp, page, PAGE);
		transform_page(e, w, z->file, tmp, offset, NULL);
		memcpy(page + SECTOR, tmp + SECTOR, SECTOR);	/* old second half */
		transform_page(e, w, z->file, page, offset, NULL);
	}
	else if (c1 == SECTOR_NEW)
	{
		memcpy(tmp, page, SECTOR);
		transform_page(e, w, z->file, page, offset, NULL);
		memcpy(page, tmp, SECTOR);
	}
	else
		transform_page(e, w, z->file, page, offset, NULL);
	if (classify(page, hashes, s0) != SECTOR_NEW ||
		classify(page + SECTOR, hashes, s0 + 1) != SECTOR_NEW)
		return pct_fail(PCT_ERR_STATE, NULL, NULL,
						"could not reproduce the journaled contents of file \"%s\" at offset %llu",
						pct_file_path(e->fm, f, path), (unsigned long long) offset);
	*dirty = true;
	return PCT_OK;
}

/* Finish (checksum mode) or roll back (journal mode) one batch. */
static pct_rc
resume_batch(engine *e, const pct_jbatch *b)
{
	size_t		dataoff = 0;
	uint64_t	s = 0;
	pct_rc		rc = PCT_OK;

	pct_report(PCT_LOG_INFO, NULL, NULL,
			   "resuming: %s an interrupted batch of %u hotzones",
			   b->olddata ? "rolling back" : "finishing", b->nzones);
	for (uint32_t i = 0; i < b->nzones && rc == PCT_OK; i++)
	{
		const pct_jzone *z = &b->zones[i];
		const pct_file *f;
		char		path[PCT_MAXPATH];
		int			fd = -1;

		if (z->file >= e->fm->nfiles ||
			z->offset + z->len > e->fm->files[z->file].size || z->len % PAGE ||
			z->len > HOTZONE_MAX)
			return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
							"journal names a hotzone outside the files");
		f = &e->fm->files[z->file];
		pct_file_path(e->fm, f, path);
		if ((rc = open_checked(e, f, &fd)) != PCT_OK)
			return rc;
		if (b->olddata)
			rc = pct_pwrite_all(fd, b->olddata + dataoff, z->len,
								(off_t) z->offset, path);
		else if ((rc = pct_pread_all(fd, e->zonebuf, z->len, (off_t) z->offset,
									 path)) == PCT_OK)
		{
			for (uint32_t p = 0; p < z->len && rc == PCT_OK; p += PAGE)
			{
				bool		dirty;

				rc = recover_page(e, &e->workers[0], z, e->zonebuf + p, z->offset + p,
								  b->hashes, s + p / SECTOR, &dirty);
				if (rc == PCT_OK && dirty)
					rc = pct_pwrite_all(fd, e->zonebuf + p, PAGE,
										(off_t) (z->offset + p), path);
			}
		}
		if (rc == PCT_OK && pct_sync_enabled() && fdatasync(fd) != 0)
			rc = pct_syserr("could not fsync file \"%s\"", path);
		close(fd);
		dataoff += z->len;
		s += z->len / SECTOR;
	}
	return rc;
}

/*
 * Step 3: the journal names up to two unfinished batches.  Checksum mode
 * finishes both and continues after the newer; journal mode restores both
 * and continues at the start of the older, redoing them.
 */
static pct_rc
resume_batches(engine *e, uint64_t *file, uint64_t *offset)
{
	pct_jbatch	b[2];
	int			n;
	bool		rolled_back = false;
	pct_rc		rc = pct_journal_get_batches(e->j, b, &n);

	if (rc != PCT_OK)
		return rc;
	for (int i = 0; i < n && rc == PCT_OK; i++)
	{
		rc = resume_batch(e, &b[i]);
		if (b[i].olddata)
			rolled_back = true;
		else if (rc == PCT_OK)
		{
			const pct_jzone *last = &b[i].zones[b[i].nzones - 1];

			/* finished now: its counts were recorded with it */
			for (int k = 0; k < PCT_BATCH_NCOUNTS; k++)
				e->total[k] += b[i].counts[k];
			/* the journal's done position is the older batch's start */
			*file = last->file;
			*offset = last->offset + last->len;
			e->j->info.done_bytes += b[i].datalen ? b[i].datalen :
				(uint64_t) b[i].nsectors * SECTOR;
		}
	}
	for (int i = 0; i < n; i++)
		free(b[i].zones);
	if (rc != PCT_OK || n == 0)
		return rc;
	if (rolled_back)
	{
		*file = e->j->info.done_file;
		*offset = e->j->info.done_offset;
	}
	memcpy(e->j->counters, e->total, sizeof(e->total));
	return pct_journal_set_progress(e->j, *file, *offset, e->j->info.done_bytes,
									false);
}

/* ---- setup ---- */

/*
 * The batch buffers: mapped whole, in huge pages where the kernel has them,
 * and populated at once.  Faulting 48 MiB in page by page cost 160 ms here
 * (a virtual machine backs guest memory on first touch), all of it before
 * the first write; populated in one call 60 ms, in huge pages 5.
 */
static void *
big_alloc(size_t size)
{
	void	   *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
						 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void) madvise(p, size, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
	(void) madvise(p, size, MADV_POPULATE_WRITE);	/* Linux 5.14; a hint */
#endif
	return p;
}

static void
big_free(void *p, size_t size)
{
	if (p != NULL)
		munmap(p, size);
}

static pct_rc
make_workers(engine *e)
{
	const pct_engine_opts *o = e->o;

	e->nworkers = o->jobs < 1 ? 1 : o->jobs > MAX_THREADS ? MAX_THREADS : o->jobs;
	e->ncrew = e->nworkers;
	e->workers = calloc((size_t) e->nworkers, sizeof(worker));
	if (e->workers == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	for (int t = 0; t < e->nworkers; t++)
	{
		worker	   *w = &e->workers[t];
		pct_rc		rc = PCT_OK;

		if (o->in_rel && !e->skip_rel)
			rc = pct_cipher_new(PCT_DATAKEY_BYTES(o->in_rel), o->in_rel->keylen, &w->in_rel);
		if (rc == PCT_OK && o->in_wal && !e->skip_wal)
			rc = pct_cipher_new(PCT_DATAKEY_BYTES(o->in_wal), o->in_wal->keylen, &w->in_wal);
		if (rc == PCT_OK && o->out_rel && !e->skip_rel)
			rc = pct_cipher_new(PCT_DATAKEY_BYTES(o->out_rel), o->out_rel->keylen, &w->out_rel);
		if (rc == PCT_OK && o->out_wal && !e->skip_wal)
			rc = pct_cipher_new(PCT_DATAKEY_BYTES(o->out_wal), o->out_wal->keylen, &w->out_wal);
		if (rc != PCT_OK)
			return rc;
	}
	return PCT_OK;
}

static void
free_engine(engine *e)
{
	if (e->workers)
		for (int t = 0; t < e->nworkers; t++)
		{
			pct_cipher_free(e->workers[t].in_rel);
			pct_cipher_free(e->workers[t].in_wal);
			pct_cipher_free(e->workers[t].out_rel);
			pct_cipher_free(e->workers[t].out_wal);
			big_free(e->workers[t].zbuf, HOTZONE_MAX);
		}
	free(e->workers);
	pct_journal_close(e->j);
	free(e->file_lsn);
	for (int i = 0; i < 2; i++)
	{
		big_free(e->bufs[i], e->batch_max);
		big_free(e->records[i], e->record_max);
		free(e->hashsets[i]);
	}
	free(e->zonebuf);
	for (int i = 0; i < 3; i++)
	{
		free(e->batches[i].zones);
		free(e->batches[i].zoff);
		free(e->batches[i].fds);
	}
	pthread_mutex_destroy(&e->err_lock);
}

/*
 * Peak memory stays under 64 MB (10^6 bytes) whatever the cluster size, as
 * far as the file map allows: the map takes 40 bytes a file (its entry and
 * the plan's LSN), so journal mode's batches shrink to leave room for it,
 * down to one hotzone, and checksum mode runs fewer workers if their
 * hotzone buffers would not fit.  MEMORY_BUDGET is what the map and the
 * buffers may take
 * together; the rest is the program itself (libraries, stacks, the journal
 * header): 7.4 MB measured, and a margin.
 */
#define MEMORY_BUDGET	(48 * 1024 * 1024)

static size_t
map_memory(const engine *e)
{
	size_t		n = 0;

	n += e->fm->nfiles * (sizeof(pct_file) + sizeof(uint64_t));	/* entry, plan */
	for (size_t i = 0; i < e->fm->ndirs; i++)
		n += strlen(e->fm->dirs[i]) + 32;
	return n;
}

/*
 * The buffers of the rewrite and the three batch slots (not needed to
 * plan).  Journal mode: two sets of a data buffer and a record buffer the
 * size of a batch, shrunk so that they and the map fit the budget.
 * Checksum mode holds no batch data, only its hashes (16 bytes a sector)
 * and a hotzone buffer per worker; the workers are cut down to what fits.
 * Either way the batch must fit the journal's areas (a journal made by an
 * older version may have smaller ones).
 */
static pct_rc
alloc_batches(engine *e)
{
	bool		journal = e->o->mode == PCT_RESILIENCE_JOURNAL;
	size_t		map = map_memory(e),
				room = map < MEMORY_BUDGET ? MEMORY_BUDGET - map : 0;

	if (e->batch_max < PAGE)
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "batch size below a page");
	while (e->batch_max > PAGE &&
		   pct_journal_record_size(MAX_ZONES, (uint32_t) (e->batch_max / SECTOR),
								   journal ? e->batch_max : 0) > e->j->area_size)
		e->batch_max = e->batch_max / 2 / PAGE * PAGE;
	if (journal && e->batch_max > room / 4)	/* data, old data; two sets */
	{
		size_t		was = e->batch_max;

		e->batch_max = room / 4 / PAGE * PAGE;
		if (e->batch_max < HOTZONE_MAX)
			e->batch_max = HOTZONE_MAX;
		pct_report(PCT_LOG_INFO, NULL, NULL,
				   "file map of %zu files takes %zu kB: batches of %zu kB instead of %zu kB",
				   e->fm->nfiles, map >> 10, e->batch_max >> 10, was >> 10);
	}
	if (!journal)
	{
		size_t		fixed = 4 * (e->batch_max / SECTOR) * sizeof(uint64_t) +
			2 * (size_t) pct_journal_record_size(MAX_ZONES, (uint32_t) (e->batch_max / SECTOR), 0);
		size_t		fit = room > fixed ? (room - fixed) / HOTZONE_MAX : 0;

		if ((size_t) e->ncrew > fit)
		{
			pct_report(PCT_LOG_INFO, NULL, NULL,
					   "file map of %zu files takes %zu kB: %zu workers instead of %d",
					   e->fm->nfiles, map >> 10, fit ? fit : 1, e->ncrew);
			e->ncrew = fit ? (int) fit : 1;
		}
		for (int t = 0; t < e->ncrew; t++)
			if ((e->workers[t].zbuf = big_alloc(HOTZONE_MAX)) == NULL)
				return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	}
	e->record_max = pct_journal_record_size(MAX_ZONES, (uint32_t) (e->batch_max / SECTOR),
											journal ? e->batch_max : 0);
	for (int i = 0; i < 2; i++)
	{
		e->bufs[i] = journal ? big_alloc(e->batch_max) : NULL;
		e->records[i] = big_alloc(e->record_max);
		e->hashsets[i] = calloc(2 * (e->batch_max / SECTOR), sizeof(uint64_t));
		if ((journal && !e->bufs[i]) || !e->records[i] || !e->hashsets[i])
			return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	}
	for (int i = 0; i < 3; i++)
	{
		e->batches[i].zones = calloc(MAX_ZONES, sizeof(pct_jzone));
		e->batches[i].zoff = calloc(MAX_ZONES, sizeof(size_t));
		e->batches[i].fds = calloc(MAX_ZONES, sizeof(int));
		if (!e->batches[i].zones || !e->batches[i].zoff || !e->batches[i].fds)
			return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	}
	return PCT_OK;
}

static bool
same_key(const pct_datakey *a, const pct_datakey *b)
{
	return a && b && a->keylen == b->keylen &&
		pct_ct_equal(PCT_DATAKEY_BYTES(a), PCT_DATAKEY_BYTES(b), (size_t) a->keylen);
}

static void
identities(const pct_engine_opts *o, uint8_t old_id[32], uint8_t new_id[32])
{
	uint8_t		a[32],
				b[32];

	memset(old_id, 0, 32);
	memset(new_id, 0, 32);
	if (o->in_rel && o->in_wal)
	{
		pct_key_identity(o->in_rel, a);
		pct_key_identity(o->in_wal, b);
		for (int i = 0; i < 32; i++)
			old_id[i] = a[i] ^ (uint8_t) (b[i] * 3 + 1);
	}
	if (o->out_rel && o->out_wal)
	{
		pct_key_identity(o->out_rel, a);
		pct_key_identity(o->out_wal, b);
		for (int i = 0; i < 32; i++)
			new_id[i] = a[i] ^ (uint8_t) (b[i] * 3 + 1);
	}
}

static double now(void);

/* Time spent per phase, printed at the end with PCT_PROFILE set (a
 * development aid, like the test hooks). */
static double prof[4];
static const char *const prof_names[4] = {"wait for transform", "journal", "write", "wait for sync"};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Each zone of the three batches in flight keeps a file open: raise the
 * soft open-file limit to the hard one, and keep the zones within it.
 */
static uint32_t
zones_within_file_limit(void)
{
	struct rlimit rl;
	rlim_t		avail;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 64;
	if (rl.rlim_cur < rl.rlim_max)
	{
		rlim_t		want = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			(void) getrlimit(RLIMIT_NOFILE, &rl);
	}
	avail = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur;
	avail = avail > 64 + 3 * 16 ? (avail - 64) / 3 : 16;
	return avail < MAX_ZONES ? (uint32_t) avail : MAX_ZONES;
}

/* The journal header carries the counts of the durable batches. */
static void
store_counters(engine *e)
{
	memcpy(e->j->counters, e->total, sizeof(e->total));
}

/* A batch became durable: its counts join the totals. */
static void
batch_durable(engine *e, batch *b)
{
	e->j->info.done_bytes += b->bytes;
	for (int k = 0; k < PCT_BATCH_NCOUNTS; k++)
		e->total[k] += atomic_load(&b->cnt[k]);
	pct_durable_step("batch data durable");
}

pct_rc
pct_engine_run(const char *pgdata, const pct_control *ctl,
			   const pct_filemap *fm, const pct_engine_opts *o,
			   pct_engine_result *res)
{
	engine		e;
	pct_journal_info info;
	crew		tc = {0},		/* transform crew */
				wc = {0},		/* write crew */
				sc = {0};		/* sync crew */
	bool		exists;
	uint64_t	file = 0,
				offset = 0,
				unext = 0;
	double		t0 = now();
	pct_rc		rc;

	memset(res, 0, sizeof(*res));
	memset(&e, 0, sizeof(e));
	pthread_mutex_init(&e.err_lock, NULL);
	e.pgdata = pgdata;
	e.ctl = ctl;
	e.fm = fm;
	e.o = o;
	e.skip_rel = (o->op == PCT_OP_REKEY && same_key(o->in_rel, o->out_rel)) ||
		(o->in_rel == NULL && o->out_rel == NULL);
	e.skip_wal = (o->op == PCT_OP_REKEY && same_key(o->in_wal, o->out_wal)) ||
		(o->in_wal == NULL && o->out_wal == NULL);
	e.batch_max = o->mode == PCT_RESILIENCE_JOURNAL ? BATCH_JOURNAL : BATCH_CHECKSUM;
	{
		/* test hook: smaller batches give interruption tests more steps */
		const char *kb = getenv("PCT_BATCH_KB");

		if (kb != NULL && atol(kb) >= PAGE / 1024 &&
			(size_t) atol(kb) * 1024 < e.batch_max)
			e.batch_max = (size_t) atol(kb) * 1024 / PAGE * PAGE;
	}
	e.file_lsn = calloc(fm->nfiles ? fm->nfiles : 1, sizeof(uint64_t));
	e.zonebuf = malloc(HOTZONE_MAX);
	if (!e.file_lsn || !e.zonebuf)
	{
		free_engine(&e);
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	}
	e.max_zones = zones_within_file_limit();
	if ((rc = make_workers(&e)) != PCT_OK)
		goto done;

	memset(&info, 0, sizeof(info));
	info.op = o->op;
	info.mode = o->mode;
	info.method = o->method;
	identities(o, info.old_id, info.new_id);
	fingerprint(&e, info.fingerprint);
	for (size_t i = 0; i < fm->nfiles; i++)
		if (!skip_file(&e, &fm->files[i]))
			info.total_bytes += fm->files[i].size;

	/* 1, 2: plan; create or check the journal */
	if ((rc = pct_journal_exists(pgdata, &exists)) != PCT_OK)
		goto done;
	if (exists)
	{
		if ((rc = pct_journal_open(pgdata, &e.j)) != PCT_OK)
			goto done;
		if (e.j->info.op != info.op || e.j->info.mode != info.mode ||
			e.j->info.method != info.method ||
			memcmp(e.j->info.old_id, info.old_id, 32) != 0 ||
			memcmp(e.j->info.new_id, info.new_id, 32) != 0)
		{
			rc = pct_fail(PCT_ERR_STATE, NULL,
						  "Rerun the interrupted command with the same options.",
						  "the journal describes a different operation: an interrupted %s (%s)",
						  pct_op_str(e.j->info.op), pct_op_command(e.j->info.op));
			goto done;
		}
		if (memcmp(e.j->info.fingerprint, info.fingerprint, 32) != 0)
		{
			rc = pct_fail(PCT_ERR_STATE, NULL,
						  "Files were added, removed or resized while the operation was interrupted; restore from a backup.",
						  "the files of the cluster differ from those the interrupted %s started with",
						  pct_op_str(o->op));
			goto done;
		}
		if ((rc = plan_lsns(&e, e.j->info.unlogged_base, &unext)) != PCT_OK)
			goto done;
		if (unext != e.j->info.unlogged_next)
		{
			rc = pct_fail(PCT_ERR_STATE, NULL, NULL,
						  "the unlogged relations differ from those the interrupted %s planned for",
						  pct_op_str(o->op));
			goto done;
		}
		memcpy(e.total, e.j->counters, sizeof(e.total));
		file = e.j->info.done_file;
		offset = e.j->info.done_offset;
		/* 3: finish or roll back unfinished batches */
		if (!e.j->info.data_complete && !o->prepare_only &&
			(rc = resume_batches(&e, &file, &offset)) != PCT_OK)
			goto done;
	}
	else
	{
		struct stat st;

		info.unlogged_base = ctl->unlogged_lsn < PCT_UNLOGGED_LSN_MIN ?
			PCT_UNLOGGED_LSN_MIN : ctl->unlogged_lsn;
		if ((rc = plan_lsns(&e, info.unlogged_base, &info.unlogged_next)) != PCT_OK)
			goto done;
		if (stat(pgdata, &st) != 0)
		{
			rc = pct_syserr("could not stat \"%s\"", pgdata);
			goto done;
		}
		if ((rc = pct_journal_create(pgdata, &info, area_size(o->mode),
									 (st.st_mode & S_IRGRP) ? PCT_FILE_MODE_GROUP : PCT_FILE_MODE,
									 &e.j)) != PCT_OK)
			goto done;
	}
	if (o->prepare_only)
	{
		res->unlogged_next = e.j->info.unlogged_next;
		goto done;
	}
	if ((rc = alloc_batches(&e)) != PCT_OK)
		goto done;

	/*
	 * 4: the batches.  Journal mode: batch n is recorded and written while
	 * batch n + 1 is transformed (transform crew) and batch n - 1 is synced
	 * (sync crew).  Checksum mode in two passes over each batch: the
	 * workers hash batch n + 1 (pass 1) while batch n is synced, and after
	 * recording it write it (pass 2) while batch n - 1 is synced.  Batch n
	 * uses slot n % 3 and buffer set n % 2.  The crews' threads live until
	 * the loop ends (creating threads per batch cost a tenth of the CPU
	 * time).
	 */
	{
		uint64_t	n = 0;
		bool		two_pass = o->mode == PCT_RESILIENCE_CHECKSUM;
		bool		more = !e.j->info.data_complete &&
			plan_batch(&e, &e.batches[0], 0, 0, &file, &offset);

		if (more)
		{
			crew_init(&tc, &e, e.ncrew, true);
			if (!two_pass)
				crew_init(&wc, &e, IO_THREADS, false);
			crew_init(&sc, &e, IO_THREADS, false);
			if ((rc = crew_run(&tc, &e.batches[0], two_pass ? hash_zone : read_zone)) != PCT_OK)
				more = false;
		}
		while (more)
		{
			batch	   *b = &e.batches[n % 3];
			batch	   *prev = &e.batches[(n + 2) % 3];
			batch	   *next = &e.batches[(n + 1) % 3];
			bool		prev_syncing = sc.busy,
						has_next;
			uint64_t	counts[PCT_BATCH_NCOUNTS];
			pct_progress p;
			double		t1 = now(),
						t2;

			/* a: journal mode: transform the next batch meanwhile */
			has_next = !two_pass &&
				plan_batch(&e, next, (int) ((n + 1) % 2), n + 1, &file, &offset);
			if (has_next)
				crew_start(&tc, next, read_zone);

			/* b: the syncing batch stays unfinished in the journal */
			e.j->info.done_file = prev_syncing ? prev->zones[0].file : b->zones[0].file;
			e.j->info.done_offset = prev_syncing ? prev->zones[0].offset : b->zones[0].offset;
			store_counters(&e);
			for (int k = 0; k < PCT_BATCH_NCOUNTS; k++)
				counts[k] = atomic_load(&b->cnt[k]);
			if ((rc = pct_journal_begin_batch(e.j, prev_syncing, b->zones, b->nzones,
											  b->hashes, (uint32_t) (b->bytes / SECTOR),
											  counts, b->old, b->old ? b->bytes : 0,
											  b->record)) != PCT_OK)
				break;
			t2 = now();
			prof[1] += t2 - t1;
			t1 = t2;

			/* c */
			if ((rc = two_pass ? crew_run(&tc, b, rewrite_zone) :
				 crew_run(&wc, b, write_zone)) != PCT_OK)
				break;
			t2 = now();
			prof[2] += t2 - t1;
			t1 = t2;

			/* d: batch n - 1 must be durable before batch n syncs, and
			 * before batch n + 1 is recorded over its journal area */
			if (crew_wait(&sc))
			{
				if ((rc = e.err) != PCT_OK)
					break;
				batch_durable(&e, prev);
			}
			t2 = now();
			prof[3] += t2 - t1;
			t1 = t2;
			crew_start(&sc, b, sync_zone);
			crew_wait(&tc);
			prof[0] += now() - t1;
			if ((rc = e.err) != PCT_OK)
				break;

			/* e */
			p.done_bytes = e.j->info.done_bytes;
			p.total_bytes = e.j->info.total_bytes;
			p.elapsed = now() - t0;
			if (o->progress && !o->progress(o->progress_arg, &p))
			{
				/* stop after batch n; the transformed next one is dropped */
				if (crew_wait(&sc) && (rc = e.err) == PCT_OK)
				{
					batch_durable(&e, b);
					store_counters(&e);
					rc = pct_journal_set_progress(e.j, b->end_file, b->end_offset,
												  e.j->info.done_bytes, false);
				}
				if (rc == PCT_OK)
					rc = pct_fail(PCT_ERR_STOPPED, NULL,
								  "Run the same command again to continue.",
								  "%s stopped at a safe point", pct_op_str(o->op));
				break;
			}
			/* f: checksum mode: pass 1 over the next batch while this one
			 * syncs */
			if (two_pass &&
				(has_next = plan_batch(&e, next, (int) ((n + 1) % 2), n + 1, &file, &offset)) &&
				(rc = crew_run(&tc, next, hash_zone)) != PCT_OK)
				break;
			more = has_next;
			if (more)
				n++;
		}
		/* 5: the last batch's sync, then the journal says all is done */
		crew_wait(&tc);
		if (crew_wait(&sc) && rc == PCT_OK && (rc = e.err) == PCT_OK)
			batch_durable(&e, &e.batches[n % 3]);
		crew_destroy(&tc);
		crew_destroy(&wc);
		crew_destroy(&sc);
	}
	if (rc == PCT_OK)
		rc = e.err;
	for (int i = 0; i < 3; i++)
		close_fds(&e.batches[i]);
	if (getenv("PCT_PROFILE"))
		for (int i = 0; i < 4; i++)
			fprintf(stderr, "profile: %s %.3f s\n", prof_names[i], prof[i]);
	if (rc == PCT_OK && !e.j->info.data_complete)
	{
		store_counters(&e);
		rc = pct_journal_set_progress(e.j, fm->nfiles, 0, e.j->info.done_bytes, true);
	}
	if (rc == PCT_OK)
	{
		res->pages_rewritten = e.j->counters[CNT_PAGES];
		res->wal_pages_rewritten = e.j->counters[CNT_WAL_PAGES];
		res->lsns_replaced = e.j->counters[CNT_LSNS];
		res->checksum_failures = e.j->counters[CNT_CSFAIL];
		res->torn_sectors = e.j->counters[CNT_TORN];
		res->unlogged_next = e.j->info.unlogged_next;
	}
done:
	free_engine(&e);
	return rc;
}
