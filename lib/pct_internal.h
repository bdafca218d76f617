/*
 * pct_internal.h
 *	  Helpers shared by the modules of libpgcrypttools; not installed.
 *
 * Owns: message reporting (log.c), path building, little-endian access.
 */
#ifndef PCT_INTERNAL_H
#define PCT_INTERNAL_H

#include <stdarg.h>
#include <string.h>

#include "pg_cryptokeys.h"

#if defined(__GNUC__)
#define PCT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PCT_PRINTF(f, a)
#endif

/* Report a message with optional detail and hint lines (NULL for none). */
void		pct_report(pct_level level, const char *detail, const char *hint,
					   const char *fmt,...) PCT_PRINTF(4, 5);

/* Report an error and return rc. */
pct_rc		pct_fail(pct_rc rc, const char *detail, const char *hint,
					 const char *fmt,...) PCT_PRINTF(4, 5);

/* Report "<message>: <strerror(errno)>" as an error; returns PCT_ERR_SYS
 * (PCT_ERR_NOMEM for ENOMEM).  errno is read before anything else. */
pct_rc		pct_syserr(const char *fmt,...) PCT_PRINTF(1, 2);

/* snprintf into a PCT_MAXPATH buffer; PCT_ERR_ARG (reported) when the
 * result does not fit. */
pct_rc		pct_path(char *buf, const char *fmt,...) PCT_PRINTF(2, 3);

/*
 * RFC 5649 AES key wrap with padding (enc) or unwrap (!enc) under a KEK of
 * keklen bytes (16, 24, 32); in at most 1024 bytes.  PCT_ERR_KEY when the
 * integrity check fails.  Reports nothing (callers word the error).
 */
pct_rc		pct_kwp(bool enc, const uint8_t *kek, int keklen, const uint8_t *in,
					int inlen, uint8_t *out, int outmax, int *outlen);

/* Is fsync on (not -N/--no-sync)? */
bool		pct_sync_enabled(void);

/* pread/pwrite the whole range, retrying short transfers; an early end of
 * file is an error (PCT_ERR_STATE). */
pct_rc		pct_pread_all(int fd, void *buf, size_t len, off_t off,
						  const char *path);
pct_rc		pct_pwrite_all(int fd, const void *buf, size_t len, off_t off,
						   const char *path);

/* Fast 64-bit hash of the journal (sectors, records, headers). */
uint64_t	pct_hash64(const void *data, size_t len);
/* The hash of a PCT_SECTOR_SIZE sector that the journal records (AVX2
 * where the CPU has it), and the portable code that gives the same. */
uint64_t	pct_sector_hash(const uint8_t *sector);
uint64_t	pct_sector_hash_portable(const uint8_t *sector);

/* checksum.c: PostgreSQL's page checksum compiled for the x86-64 baseline
 * only (pct_page_checksum picks the best copy for the CPU); for tests.
 * Same contract as pct_page_checksum, but the page must be 4-byte aligned. */
uint16_t	pct_page_checksum_baseline(uint8_t *page, uint32_t blkno);

/* ---- journal.c, used by engine.c ---- */

/* One hotzone: a run of pages of one file. */
typedef struct pct_jzone
{
	uint32_t	file;			/* index in the file map */
	uint32_t	len;			/* bytes */
	uint64_t	offset;
} pct_jzone;

/* Counts kept in the journal header for the batches that are durable:
 * pages, WAL pages, LSNs replaced, checksum failures, torn sectors (see
 * pct_engine_result); each batch record keeps the first four of its own. */
#define PCT_JOURNAL_NCOUNTERS 5
/* Batch record areas of the journal (batch b uses area b % 3). */
#define PCT_JOURNAL_AREAS	3
#define PCT_BATCH_NCOUNTS	4

typedef struct pct_journal
{
	int			fd;
	char		path[PCT_MAXPATH];
	pct_journal_info info;
	uint64_t	seq;			/* newest header number */
	uint32_t	area_size;
	bool		batch_active;
	uint32_t	batch_len;
	uint64_t	batch_seq;
	uint64_t	batch_hash;
	uint8_t    *record;			/* the newest batch's record, when valid */
	bool		prev_active;	/* batch_seq - 1 is unfinished too */
	uint32_t	prev_len;
	uint64_t	prev_hash;
	uint8_t    *prev_record;
	uint64_t	counters[PCT_JOURNAL_NCOUNTERS];	/* running totals */
} pct_journal;

/* The active batch of an opened journal. */
typedef struct pct_jbatch
{
	bool		active;
	uint32_t	nzones;
	pct_jzone  *zones;			/* malloc'd */
	uint32_t	nsectors;
	const uint8_t *hashes;		/* 2 * nsectors u64 LE: old, new */
	const uint8_t *olddata;		/* journal mode: the zones' old bytes */
	size_t		datalen;
	uint64_t	counts[PCT_BATCH_NCOUNTS];	/* the batch's own counts */
} pct_jbatch;

pct_rc		pct_journal_create(const char *pgdata, const pct_journal_info *info,
							   uint32_t area_size, mode_t mode,
							   pct_journal **j);
pct_rc		pct_journal_open(const char *pgdata, pct_journal **j);
void		pct_journal_close(pct_journal *j);
/* Bytes a batch record takes; where in it the old data starts. */
uint32_t	pct_journal_record_size(uint32_t nzones, uint32_t nsectors,
									size_t datalen);
size_t		pct_journal_data_offset(uint32_t nzones, uint32_t nsectors);
/*
 * Record a batch (hashes: old, new per sector) and make it and a header
 * naming it durable; scratch holds the record (pct_journal_record_size
 * bytes).  The old data (journal mode) may already be in scratch at
 * pct_journal_data_offset: then olddata points there.  With
 * prev_unfinished, the batch recorded before stays unfinished in the
 * header (its data is not durable yet); otherwise it is done.  Whatever
 * batch came before that must be durable: its area is reused.  The caller
 * sets info.done_* (start of the oldest unfinished batch) and counters.
 */
pct_rc		pct_journal_begin_batch(pct_journal *j, bool prev_unfinished,
									const pct_jzone *zones, uint32_t nzones,
									const uint64_t *hashes, uint32_t nsectors,
									const uint64_t counts[PCT_BATCH_NCOUNTS],
									const uint8_t *olddata, size_t datalen,
									uint8_t *scratch);
/* Durably record that everything before (file, offset) is done. */
pct_rc		pct_journal_set_progress(pct_journal *j, uint64_t done_file,
									 uint64_t done_offset, uint64_t done_bytes,
									 bool complete);
/* Decode the unfinished batches, oldest first (*n is 0, 1 or 2); free
 * each b[i].zones. */
pct_rc		pct_journal_get_batches(const pct_journal *j, pct_jbatch b[2],
									int *n);

/* Little-endian loads and stores. */
static inline uint32_t
pct_get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 |
		(uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static inline uint64_t
pct_get_u64(const uint8_t *p)
{
	return (uint64_t) pct_get_u32(p) | (uint64_t) pct_get_u32(p + 4) << 32;
}

static inline void
pct_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static inline void
pct_put_u64(uint8_t *p, uint64_t v)
{
	pct_put_u32(p, (uint32_t) v);
	pct_put_u32(p + 4, (uint32_t) (v >> 32));
}

#endif							/* PCT_INTERNAL_H */
