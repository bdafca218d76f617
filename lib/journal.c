/*
 * journal.c
 *	  The operation journal pg_cryptokeys/operation.journal (FORMAT 5).
 *
 * Owns: the journal's file layout, its integrity, and the 64-bit sector
 * hash.  The engine (engine.c) decides what goes into it.
 *
 * Layout (little-endian):
 *	[0, 4096)		header slot 0
 *	[4096, 8192)	header slot 1
 *	[8192, +A)		batch record area 0
 *	[8192+A, +A)	batch record area 1
 *	[8192+2A, +A)	batch record area 2
 * Header number h is written to slot h % 2 and batch number b to area
 * b % 3, so a torn write can only damage the slot or area being written,
 * never the newest valid one.  A reader takes the valid header (magic,
 * version, hash) with the highest number.  It names up to two unfinished
 * batches, b and b - 1 (the engine writes batch b while b - 1 is still
 * being synced).  Three areas, not two: the header on disk may still
 * name b - 1 as unfinished while b + 1 is being recorded, so b + 1 must not
 * land in b - 1's area; it takes b - 2's, which no durable header names.
 * The newest record must match the hash the header holds, or that batch
 * never began: its data is written only after header and record are
 * durable.  The older one was durable before the newer was
 * recorded, so a mismatch there is damage.  The header also keeps the
 * operation's running counts, so that a resumed run reports them all.
 *
 * The file is preallocated at creation (posix_fallocate) so that running
 * out of space cannot interrupt an operation half way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pct_internal.h"

#define JOURNAL_MAGIC	"PCTJRNL1"
#define BATCH_MAGIC		"PCTBATCH"
/* 2: sector hashes by pct_sector_hash (version 1 used pct_hash64) */
#define JOURNAL_VERSION 2
#define SLOT_SIZE		4096

/* Header fields, at fixed offsets in a slot. */
#define H_MAGIC			0		/* 8 bytes */
#define H_VERSION		8		/* u32 */
#define H_OP			12		/* u32 */
#define H_MODE			16		/* u32 */
#define H_METHOD		20		/* u32 */
#define H_OLD_ID		24		/* 32 bytes */
#define H_NEW_ID		56		/* 32 bytes */
#define H_FINGERPRINT	88		/* 32 bytes */
#define H_TOTAL			120		/* u64 */
#define H_UNLOGGED_BASE 128		/* u64 */
#define H_UNLOGGED_NEXT 136		/* u64 */
#define H_SEQ			144		/* u64 header number */
#define H_DONE_FILE		152		/* u64 */
#define H_DONE_OFFSET	160		/* u64 */
#define H_DONE_BYTES	168		/* u64 */
#define H_COMPLETE		176		/* u32 */
#define H_AREA_SIZE		180		/* u32 */
#define H_BATCH_ACTIVE	184		/* u32 */
#define H_BATCH_LEN		188		/* u32 record length */
#define H_BATCH_SEQ		192		/* u64 */
#define H_BATCH_HASH	200		/* u64 */
#define H_PREV_ACTIVE	208		/* u32: batch_seq - 1 unfinished too */
#define H_PREV_LEN		212		/* u32 */
#define H_PREV_HASH		216		/* u64 */
#define H_COUNTERS		224		/* 5 x u64: pages, WAL pages, LSNs,
								 * checksum failures, torn sectors */
#define H_HASH			264		/* u64 over bytes [0, 264) */
#define H_END			272

/* Batch record: fixed part, then zones, hashes, and (journal mode) the old
 * data from the next 4096-byte boundary. */
#define B_MAGIC			0
#define B_SEQ			8
#define B_NZONES		16
#define B_NSECTORS		20
#define B_HAS_DATA		24
#define B_COUNTS		32		/* 4 x u64: this batch's pages, WAL pages,
								 * LSNs replaced, checksum failures */
#define B_FIXED			64
#define ZONE_SIZE		16		/* u32 file, u32 len, u64 offset */

/* ---- the sector hash ---- */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL

static inline uint64_t
rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t
mix_round(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

/* Final mixing: every input bit reaches every output bit. */
static inline uint64_t
avalanche(uint64_t h)
{
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

/*
 * A fast non-cryptographic 64-bit hash (four multiply-rotate lanes and a
 * final avalanche).  It tells old, new and torn sectors apart; nobody is
 * trying to forge collisions in one's own data directory.
 */
uint64_t
pct_hash64(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t	v0 = P1 + P2,
				v1 = P2,
				v2 = 0,
				v3 = (uint64_t) 0 - P1,
				h;
	size_t		i = 0;

	for (; i + 32 <= len; i += 32)
	{
		v0 = mix_round(v0, pct_get_u64(p + i));
		v1 = mix_round(v1, pct_get_u64(p + i + 8));
		v2 = mix_round(v2, pct_get_u64(p + i + 16));
		v3 = mix_round(v3, pct_get_u64(p + i + 24));
	}
	h = rotl64(v0, 1) + rotl64(v1, 7) + rotl64(v2, 12) + rotl64(v3, 18);
	h = (h ^ mix_round(0, v0)) * P1 + P4;
	h = (h ^ mix_round(0, v1)) * P1 + P4;
	h = (h ^ mix_round(0, v2)) * P1 + P4;
	h = (h ^ mix_round(0, v3)) * P1 + P4;
	h += (uint64_t) len;
	for (; i + 8 <= len; i += 8)
		h = rotl64(h ^ mix_round(0, pct_get_u64(p + i)), 27) * P1 + P4;
	for (; i < len; i++)
		h = rotl64(h ^ (p[i] * P3), 11) * P1;
	return avalanche(h);
}

/*
 * The hash of one 4 KiB sector in the journal: eight 64-bit lanes over 64
 * stripes of 64 bytes; each lane adds the product of the two 32-bit halves
 * of its word xor a key that differs by lane and stripe, plus the word of
 * its neighbour lane (so a zero product still counts the data); a final
 * avalanche mixes the lanes.  Every bit of every word reaches the result,
 * and the stripe keys make it depend on where the bytes are.  Like
 * pct_hash64 it only has to tell old, new and torn sectors apart.  With
 * AVX2 the eight lanes are two vector registers (about 40 GB/s here,
 * twice pct_hash64); the portable code computes the same value.
 */
#define SH_STEP 0x9E3779B97F4A7C15ULL
static const uint64_t sh_keys[8] = {
	0x1B873593A3B7C2E1ULL, 0x85EBCA6BC2B2AE35ULL, 0x27D4EB2F165667C5ULL,
	0x94D049BB133111EBULL, 0xBF58476D1CE4E5B9ULL, 0xD6E8FEB86659FD93ULL,
	0xCC9E2D51E6546B64ULL, 0x9FB21C651E98DF25ULL
};

static uint64_t
sector_final(const uint64_t acc[8])
{
	uint64_t	h = (uint64_t) PCT_SECTOR_SIZE * P1;

	for (int l = 0; l < 8; l++)
	{
		uint64_t	a = acc[l];

		a ^= a >> 29;
		a *= P2;
		h ^= a;
		h = rotl64(h, 27) * P1 + P4;
	}
	return avalanche(h);
}

uint64_t
pct_sector_hash_portable(const uint8_t *sector)
{
	uint64_t	acc[8];

	for (int l = 0; l < 8; l++)
		acc[l] = P3 * (uint64_t) (l + 1);
	for (int s = 0; s < PCT_SECTOR_SIZE / 64; s++)
	{
		uint64_t	d[8];

		for (int l = 0; l < 8; l++)
			d[l] = pct_get_u64(sector + 64 * s + 8 * l);
		for (int l = 0; l < 8; l++)
		{
			uint64_t	dk = d[l] ^ (sh_keys[l] + (uint64_t) s * SH_STEP);

			acc[l] += (dk & 0xFFFFFFFFu) * (dk >> 32) + d[l ^ 1];
		}
	}
	return sector_final(acc);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2")))
static uint64_t
sector_hash_avx2(const uint8_t *sector)
{
	__m256i		a0 = _mm256_set_epi64x((long long) (P3 * 4), (long long) (P3 * 3),
									   (long long) (P3 * 2), (long long) P3);
	__m256i		a1 = _mm256_set_epi64x((long long) (P3 * 8), (long long) (P3 * 7),
									   (long long) (P3 * 6), (long long) (P3 * 5));
	__m256i		k0 = _mm256_loadu_si256((const __m256i *) sh_keys);
	__m256i		k1 = _mm256_loadu_si256((const __m256i *) (sh_keys + 4));
	__m256i		step = _mm256_set1_epi64x((long long) SH_STEP);
	uint64_t	acc[8];

	for (int s = 0; s < PCT_SECTOR_SIZE / 64; s++)
	{
		__m256i		d0 = _mm256_loadu_si256((const __m256i *) (sector + 64 * s));
		__m256i		d1 = _mm256_loadu_si256((const __m256i *) (sector + 64 * s + 32));
		__m256i		x0 = _mm256_xor_si256(d0, k0);
		__m256i		x1 = _mm256_xor_si256(d1, k1);

		/* low half times high half, plus the neighbour lane's word */
		a0 = _mm256_add_epi64(a0, _mm256_add_epi64(
			_mm256_mul_epu32(x0, _mm256_srli_epi64(x0, 32)),
			_mm256_shuffle_epi32(d0, _MM_SHUFFLE(1, 0, 3, 2))));
		a1 = _mm256_add_epi64(a1, _mm256_add_epi64(
			_mm256_mul_epu32(x1, _mm256_srli_epi64(x1, 32)),
			_mm256_shuffle_epi32(d1, _MM_SHUFFLE(1, 0, 3, 2))));
		k0 = _mm256_add_epi64(k0, step);
		k1 = _mm256_add_epi64(k1, step);
	}
	_mm256_storeu_si256((__m256i *) acc, a0);
	_mm256_storeu_si256((__m256i *) (acc + 4), a1);
	return sector_final(acc);
}
#endif

uint64_t
pct_sector_hash(const uint8_t *sector)
{
#if defined(__x86_64__) && defined(__GNUC__)
	static atomic_int avx2 = -1;	/* every thread finds the same */
	int			has = atomic_load_explicit(&avx2, memory_order_relaxed);

	if (has < 0)
	{
		has = __builtin_cpu_supports("avx2") ? 1 : 0;
		atomic_store_explicit(&avx2, has, memory_order_relaxed);
	}
	if (has)
		return sector_hash_avx2(sector);
#endif
	return pct_sector_hash_portable(sector);
}

/* ---- key identities, texts ---- */

void
pct_key_identity(const pct_datakey *dk, uint8_t id[32])
{
	static const char label[] = "pgcrypttools data key identity v1";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 32;
	uint8_t		b[2] = {(uint8_t) dk->id, (uint8_t) dk->keylen};

	memset(id, 0, 32);
	if (md == NULL)
		return;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
		EVP_DigestUpdate(md, label, sizeof(label)) != 1 ||
		EVP_DigestUpdate(md, b, 2) != 1 ||
		EVP_DigestUpdate(md, PCT_DATAKEY_BYTES(dk), (size_t) dk->keylen) != 1 ||
		EVP_DigestFinal_ex(md, id, &n) != 1)
		memset(id, 0, 32);
	EVP_MD_CTX_free(md);
}

const char *
pct_op_str(pct_op op)
{
	switch (op)
	{
		case PCT_OP_ENCRYPT:
			return "encryption";
		case PCT_OP_DECRYPT:
			return "decryption";
		case PCT_OP_REKEY:
			return "data key rotation";
	}
	return "unknown operation";
}

const char *
pct_op_command(pct_op op)
{
	switch (op)
	{
		case PCT_OP_ENCRYPT:
			return "pg_encrypt_cluster";
		case PCT_OP_DECRYPT:
			return "pg_encrypt_cluster --decrypt";
		case PCT_OP_REKEY:
			return "pg_rekey_data";
	}
	return "?";
}

/* ---- header ---- */

static void
encode_header(const pct_journal *j, uint8_t *slot)
{
	const pct_journal_info *in = &j->info;

	memset(slot, 0, SLOT_SIZE);
	memcpy(slot + H_MAGIC, JOURNAL_MAGIC, 8);
	pct_put_u32(slot + H_VERSION, JOURNAL_VERSION);
	pct_put_u32(slot + H_OP, (uint32_t) in->op);
	pct_put_u32(slot + H_MODE, (uint32_t) in->mode);
	pct_put_u32(slot + H_METHOD, in->method);
	memcpy(slot + H_OLD_ID, in->old_id, 32);
	memcpy(slot + H_NEW_ID, in->new_id, 32);
	memcpy(slot + H_FINGERPRINT, in->fingerprint, 32);
	pct_put_u64(slot + H_TOTAL, in->total_bytes);
	pct_put_u64(slot + H_UNLOGGED_BASE, in->unlogged_base);
	pct_put_u64(slot + H_UNLOGGED_NEXT, in->unlogged_next);
	pct_put_u64(slot + H_SEQ, j->seq);
	pct_put_u64(slot + H_DONE_FILE, in->done_file);
	pct_put_u64(slot + H_DONE_OFFSET, in->done_offset);
	pct_put_u64(slot + H_DONE_BYTES, in->done_bytes);
	pct_put_u32(slot + H_COMPLETE, in->data_complete ? 1 : 0);
	pct_put_u32(slot + H_AREA_SIZE, j->area_size);
	pct_put_u32(slot + H_BATCH_ACTIVE, j->batch_active ? 1 : 0);
	pct_put_u32(slot + H_BATCH_LEN, j->batch_len);
	pct_put_u64(slot + H_BATCH_SEQ, j->batch_seq);
	pct_put_u64(slot + H_BATCH_HASH, j->batch_hash);
	pct_put_u32(slot + H_PREV_ACTIVE, j->prev_active ? 1 : 0);
	pct_put_u32(slot + H_PREV_LEN, j->prev_len);
	pct_put_u64(slot + H_PREV_HASH, j->prev_hash);
	for (int i = 0; i < PCT_JOURNAL_NCOUNTERS; i++)
		pct_put_u64(slot + H_COUNTERS + 8 * i, j->counters[i]);
	pct_put_u64(slot + H_HASH, pct_hash64(slot, H_HASH));
}

/* A header slot that is whole; *version tells which format it has. */
static bool
intact_header(const uint8_t *slot, uint32_t *version)
{
	*version = pct_get_u32(slot + H_VERSION);
	return memcmp(slot + H_MAGIC, JOURNAL_MAGIC, 8) == 0 &&
		pct_get_u64(slot + H_HASH) == pct_hash64(slot, H_HASH);
}

static bool
decode_header(const uint8_t *slot, pct_journal *j)
{
	pct_journal_info *in = &j->info;
	uint32_t	version;

	if (!intact_header(slot, &version) || version != JOURNAL_VERSION)
		return false;
	memset(in, 0, sizeof(*in));
	in->op = (pct_op) pct_get_u32(slot + H_OP);
	in->mode = (pct_resilience) pct_get_u32(slot + H_MODE);
	in->method = pct_get_u32(slot + H_METHOD);
	memcpy(in->old_id, slot + H_OLD_ID, 32);
	memcpy(in->new_id, slot + H_NEW_ID, 32);
	memcpy(in->fingerprint, slot + H_FINGERPRINT, 32);
	in->total_bytes = pct_get_u64(slot + H_TOTAL);
	in->unlogged_base = pct_get_u64(slot + H_UNLOGGED_BASE);
	in->unlogged_next = pct_get_u64(slot + H_UNLOGGED_NEXT);
	j->seq = pct_get_u64(slot + H_SEQ);
	in->done_file = pct_get_u64(slot + H_DONE_FILE);
	in->done_offset = pct_get_u64(slot + H_DONE_OFFSET);
	in->done_bytes = pct_get_u64(slot + H_DONE_BYTES);
	in->data_complete = pct_get_u32(slot + H_COMPLETE) != 0;
	j->area_size = pct_get_u32(slot + H_AREA_SIZE);
	j->batch_active = pct_get_u32(slot + H_BATCH_ACTIVE) != 0;
	j->batch_len = pct_get_u32(slot + H_BATCH_LEN);
	j->batch_seq = pct_get_u64(slot + H_BATCH_SEQ);
	j->batch_hash = pct_get_u64(slot + H_BATCH_HASH);
	j->prev_active = pct_get_u32(slot + H_PREV_ACTIVE) != 0;
	j->prev_len = pct_get_u32(slot + H_PREV_LEN);
	j->prev_hash = pct_get_u64(slot + H_PREV_HASH);
	for (int i = 0; i < PCT_JOURNAL_NCOUNTERS; i++)
		j->counters[i] = pct_get_u64(slot + H_COUNTERS + 8 * i);
	return true;
}

static pct_rc
pwrite_all(int fd, const void *buf, size_t len, off_t off, const char *path)
{
	const uint8_t *p = buf;

	while (len > 0)
	{
		ssize_t		n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			if (n == 0)
				errno = ENOSPC;
			return pct_syserr("could not write file \"%s\"", path);
		}
		p += n;
		off += n;
		len -= (size_t) n;
	}
	return PCT_OK;
}

pct_rc
pct_pread_all(int fd, void *buf, size_t len, off_t off, const char *path)
{
	uint8_t    *p = buf;

	while (len > 0)
	{
		ssize_t		n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pct_syserr("could not read file \"%s\"", path);
		if (n == 0)
			return pct_fail(PCT_ERR_STATE, NULL, NULL,
							"could not read file \"%s\": unexpected end of file at offset %lld",
							path, (long long) off);
		p += n;
		off += n;
		len -= (size_t) n;
	}
	return PCT_OK;
}

pct_rc
pct_pwrite_all(int fd, const void *buf, size_t len, off_t off, const char *path)
{
	return pwrite_all(fd, buf, len, off, path);
}

static pct_rc
journal_path(const char *pgdata, char *path)
{
	return pct_path(path, "%s/%s/%s", pgdata, PCT_KEYDIR, PCT_JOURNAL_FILE);
}

/* Write header number j->seq + 1 to its slot (not synced). */
static pct_rc
write_header(pct_journal *j)
{
	uint8_t		slot[SLOT_SIZE];

	j->seq++;
	encode_header(j, slot);
	return pwrite_all(j->fd, slot, SLOT_SIZE, (off_t) (j->seq % 2) * SLOT_SIZE,
					  j->path);
}

static pct_rc
sync_journal(pct_journal *j)
{
	if (pct_sync_enabled() && fdatasync(j->fd) != 0)
		return pct_syserr("could not fsync file \"%s\"", j->path);
	return PCT_OK;
}

pct_rc
pct_journal_create(const char *pgdata, const pct_journal_info *info,
				   uint32_t area_size, mode_t mode, pct_journal **out)
{
	pct_journal *j;
	pct_rc		rc;
	int			err;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	j->fd = -1;
	if ((rc = journal_path(pgdata, j->path)) != PCT_OK)
		goto fail;
	j->fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (j->fd < 0)
	{
		rc = pct_syserr("could not create file \"%s\"", j->path);
		goto fail;
	}
	j->info = *info;
	j->area_size = area_size;
	err = posix_fallocate(j->fd, 0, (off_t) 2 * SLOT_SIZE + PCT_JOURNAL_AREAS * (off_t) area_size);
	if (err != 0)
	{
		errno = err;
		rc = pct_syserr("could not allocate space for file \"%s\"", j->path);
		unlink(j->path);
		goto fail;
	}
	if ((rc = write_header(j)) != PCT_OK || (rc = sync_journal(j)) != PCT_OK ||
		(rc = pct_fsync_parent(j->path)) != PCT_OK)
	{
		unlink(j->path);
		goto fail;
	}
	pct_durable_step("journal created");
	*out = j;
	return PCT_OK;
fail:
	if (j->fd >= 0)
		close(j->fd);
	free(j);
	return rc;
}

/* Read both slots; keep the valid one with the highest number. */
static pct_rc
read_best_header(pct_journal *j)
{
	uint8_t		slot[SLOT_SIZE];
	pct_journal best;
	bool		found = false;
	uint32_t	other = 0;

	memset(&best, 0, sizeof(best));
	for (int s = 0; s < 2; s++)
	{
		pct_journal cand;
		pct_rc		rc;

		memset(&cand, 0, sizeof(cand));
		if ((rc = pct_pread_all(j->fd, slot, SLOT_SIZE, (off_t) s * SLOT_SIZE,
								j->path)) != PCT_OK)
			return rc;
		if (decode_header(slot, &cand) && (!found || cand.seq > best.seq))
		{
			best = cand;
			found = true;
		}
		else
		{
			uint32_t	version;

			if (intact_header(slot, &version) && version != JOURNAL_VERSION)
				other = version;
		}
	}
	if (!found && other != 0)
		return pct_fail(PCT_ERR_FORMAT, NULL,
						"Finish the interrupted operation with the pgcrypttools version that started it.",
						"journal \"%s\" has format version %u; this version of pgcrypttools reads version %u",
						j->path, other, JOURNAL_VERSION);
	if (!found)
		return pct_fail(PCT_ERR_FORMAT, NULL,
						"Restore the data directory from a backup.",
						"journal \"%s\" is damaged: no valid header", j->path);
	j->info = best.info;
	j->seq = best.seq;
	j->area_size = best.area_size;
	j->batch_active = best.batch_active;
	j->batch_len = best.batch_len;
	j->batch_seq = best.batch_seq;
	j->batch_hash = best.batch_hash;
	j->prev_active = best.prev_active;
	j->prev_len = best.prev_len;
	j->prev_hash = best.prev_hash;
	memcpy(j->counters, best.counters, sizeof(j->counters));
	return PCT_OK;
}

static off_t
area_offset(const pct_journal *j, uint64_t batch_seq)
{
	return (off_t) 2 * SLOT_SIZE + (off_t) (batch_seq % PCT_JOURNAL_AREAS) * j->area_size;
}

/* Read batch record number seq and check it; PCT_ERR_FORMAT (unreported)
 * when it does not verify. */
static pct_rc
load_record(pct_journal *j, uint64_t seq, uint32_t len, uint64_t hash,
			uint8_t **out)
{
	uint8_t    *rec;

	*out = NULL;
	if (len < B_FIXED || len > j->area_size || (rec = malloc(len)) == NULL)
		return PCT_ERR_FORMAT;
	if (pct_pread_all(j->fd, rec, len, area_offset(j, seq), j->path) != PCT_OK ||
		pct_hash64(rec, len) != hash ||
		memcmp(rec + B_MAGIC, BATCH_MAGIC, 8) != 0 ||
		pct_get_u64(rec + B_SEQ) != seq)
	{
		free(rec);
		return PCT_ERR_FORMAT;
	}
	*out = rec;
	return PCT_OK;
}

pct_rc
pct_journal_open(const char *pgdata, pct_journal **out)
{
	pct_journal *j;
	pct_rc		rc;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	if ((rc = journal_path(pgdata, j->path)) != PCT_OK)
	{
		free(j);
		return rc;
	}
	j->fd = open(j->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (j->fd < 0)
	{
		rc = pct_syserr("could not open file \"%s\"", j->path);
		free(j);
		return rc;
	}
	if ((rc = read_best_header(j)) != PCT_OK)
	{
		pct_journal_close(j);
		return rc;
	}
	/* The newest batch's record must verify, or that batch never began. */
	if (j->batch_active &&
		load_record(j, j->batch_seq, j->batch_len, j->batch_hash, &j->record) != PCT_OK)
		j->batch_active = false;
	/* The older one was durable before the newest was recorded. */
	if (j->prev_active &&
		load_record(j, j->batch_seq - 1, j->prev_len, j->prev_hash,
					&j->prev_record) != PCT_OK)
	{
		rc = pct_fail(PCT_ERR_FORMAT, NULL,
					  "Restore the data directory from a backup.",
					  "journal \"%s\" is damaged: the record of an unfinished batch does not verify",
					  j->path);
		pct_journal_close(j);
		return rc;
	}
	*out = j;
	return PCT_OK;
}

void
pct_journal_close(pct_journal *j)
{
	if (j == NULL)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->record);
	free(j->prev_record);
	free(j);
}

size_t
pct_journal_data_offset(uint32_t nzones, uint32_t nsectors)
{
	size_t		n = B_FIXED + (size_t) nzones * ZONE_SIZE + (size_t) nsectors * 16;

	return (n + 4095) / 4096 * 4096;
}

uint32_t
pct_journal_record_size(uint32_t nzones, uint32_t nsectors, size_t datalen)
{
	if (datalen > 0)
		return (uint32_t) (pct_journal_data_offset(nzones, nsectors) + datalen);
	return (uint32_t) (B_FIXED + (size_t) nzones * ZONE_SIZE + (size_t) nsectors * 16);
}

pct_rc
pct_journal_begin_batch(pct_journal *j, bool prev_unfinished,
						const pct_jzone *zones, uint32_t nzones,
						const uint64_t *hashes, uint32_t nsectors,
						const uint64_t counts[PCT_BATCH_NCOUNTS],
						const uint8_t *olddata, size_t datalen,
						uint8_t *scratch)
{
	uint32_t	len = pct_journal_record_size(nzones, nsectors, datalen);
	uint8_t    *p = scratch;
	pct_rc		rc;

	if (len > j->area_size)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"journal batch of %u bytes exceeds its area", len);
	memset(p, 0, B_FIXED);
	memcpy(p + B_MAGIC, BATCH_MAGIC, 8);
	pct_put_u64(p + B_SEQ, j->batch_seq + 1);
	pct_put_u32(p + B_NZONES, nzones);
	pct_put_u32(p + B_NSECTORS, nsectors);
	pct_put_u32(p + B_HAS_DATA, datalen > 0);
	for (int i = 0; i < PCT_BATCH_NCOUNTS; i++)
		pct_put_u64(p + B_COUNTS + 8 * i, counts[i]);
	p += B_FIXED;
	for (uint32_t i = 0; i < nzones; i++, p += ZONE_SIZE)
	{
		pct_put_u32(p, zones[i].file);
		pct_put_u32(p + 4, zones[i].len);
		pct_put_u64(p + 8, zones[i].offset);
	}
	for (uint32_t i = 0; i < 2 * nsectors; i++, p += 8)
		pct_put_u64(p, hashes[i]);
	if (datalen > 0)
	{
		size_t		fixed = (size_t) (p - scratch);
		size_t		pad = (fixed + 4095) / 4096 * 4096 - fixed;

		memset(p, 0, pad);
		p += pad;
		if (olddata != p)		/* else the caller built it in place */
			memcpy(p, olddata, datalen);
	}
	/* the batch recorded last stays unfinished until its data is durable */
	j->prev_active = prev_unfinished && j->batch_active;
	j->prev_len = j->batch_len;
	j->prev_hash = j->batch_hash;
	j->batch_seq++;
	j->batch_len = len;
	j->batch_hash = pct_hash64(scratch, len);
	j->batch_active = true;
	if ((rc = pwrite_all(j->fd, scratch, len, area_offset(j, j->batch_seq),
						 j->path)) != PCT_OK ||
		(rc = write_header(j)) != PCT_OK ||
		(rc = sync_journal(j)) != PCT_OK)
		return rc;
	pct_durable_step("journal batch recorded");
	return PCT_OK;
}

pct_rc
pct_journal_set_progress(pct_journal *j, uint64_t done_file,
						 uint64_t done_offset, uint64_t done_bytes,
						 bool complete)
{
	pct_rc		rc;

	j->info.done_file = done_file;
	j->info.done_offset = done_offset;
	j->info.done_bytes = done_bytes;
	j->info.data_complete = complete;
	j->batch_active = false;
	j->prev_active = false;
	if ((rc = write_header(j)) != PCT_OK || (rc = sync_journal(j)) != PCT_OK)
		return rc;
	pct_durable_step(complete ? "journal: data complete" : "journal progress");
	return PCT_OK;
}

/* Decode one batch record. */
static pct_rc
decode_batch(const pct_journal *j, const uint8_t *rec, uint32_t reclen,
			 pct_jbatch *b)
{
	const uint8_t *p = rec;

	memset(b, 0, sizeof(*b));
	b->nzones = pct_get_u32(p + B_NZONES);
	b->nsectors = pct_get_u32(p + B_NSECTORS);
	for (int i = 0; i < PCT_BATCH_NCOUNTS; i++)
		b->counts[i] = pct_get_u64(p + B_COUNTS + 8 * i);
	if (b->nzones > reclen / ZONE_SIZE ||
		pct_journal_record_size(b->nzones, b->nsectors, 0) > reclen)
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"journal \"%s\" holds a malformed batch", j->path);
	b->zones = calloc(b->nzones ? b->nzones : 1, sizeof(pct_jzone));
	if (b->zones == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	p += B_FIXED;
	for (uint32_t i = 0; i < b->nzones; i++, p += ZONE_SIZE)
	{
		b->zones[i].file = pct_get_u32(p);
		b->zones[i].len = pct_get_u32(p + 4);
		b->zones[i].offset = pct_get_u64(p + 8);
		b->datalen += b->zones[i].len;
	}
	b->hashes = p;
	if (pct_get_u32(rec + B_HAS_DATA))
	{
		size_t		fixed = B_FIXED + (size_t) b->nzones * ZONE_SIZE +
			(size_t) b->nsectors * 16;

		fixed = (fixed + 4095) / 4096 * 4096;
		if (fixed + b->datalen != reclen)
		{
			free(b->zones);
			b->zones = NULL;
			return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
							"journal \"%s\" holds a malformed batch", j->path);
		}
		b->olddata = rec + fixed;
	}
	else
		b->datalen = 0;
	b->active = true;
	return PCT_OK;
}

pct_rc
pct_journal_get_batches(const pct_journal *j, pct_jbatch b[2], int *n)
{
	pct_rc		rc = PCT_OK;

	*n = 0;
	memset(b, 0, 2 * sizeof(pct_jbatch));
	if (j->prev_active && j->prev_record)
	{
		if ((rc = decode_batch(j, j->prev_record, j->prev_len, &b[*n])) != PCT_OK)
			return rc;
		(*n)++;
	}
	if (j->batch_active && j->record)
	{
		if ((rc = decode_batch(j, j->record, j->batch_len, &b[*n])) != PCT_OK)
		{
			if (*n > 0)
				free(b[0].zones);
			*n = 0;
			return rc;
		}
		(*n)++;
	}
	return PCT_OK;
}

pct_rc
pct_journal_exists(const char *pgdata, bool *exists)
{
	char		path[PCT_MAXPATH];
	struct stat st;
	pct_rc		rc;

	*exists = false;
	if ((rc = journal_path(pgdata, path)) != PCT_OK)
		return rc;
	if (lstat(path, &st) == 0)
		*exists = true;
	else if (errno != ENOENT)
		return pct_syserr("could not stat \"%s\"", path);
	return PCT_OK;
}

pct_rc
pct_journal_peek(const char *pgdata, pct_journal_info *info)
{
	pct_journal *j = NULL;
	pct_rc		rc = pct_journal_open(pgdata, &j);

	if (rc != PCT_OK || j == NULL)
		return rc != PCT_OK ? rc : PCT_ERR_STATE;
	*info = j->info;
	pct_journal_close(j);
	return PCT_OK;
}

pct_rc
pct_journal_remove(const char *pgdata)
{
	char		path[PCT_MAXPATH];
	pct_rc		rc;

	if ((rc = journal_path(pgdata, path)) != PCT_OK ||
		(rc = pct_durable_remove(path)) != PCT_OK)
		return rc;
	pct_durable_step("journal removed");
	return PCT_OK;
}
