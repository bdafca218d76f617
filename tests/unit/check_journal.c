/*
 * check_journal.c
 *	  Unit tests of journal.c: layout round trip, alternating header slots
 *	  and record areas, torn writes, the sector hash.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "lib/pct_internal.h"

static char *pgdata;
static char jpath[4096];

static void
setup(void)
{
	char		p[4096];

	pgdata = unit_mkdtemp();
	snprintf(p, sizeof(p), "%s/pg_cryptokeys", pgdata);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(jpath, sizeof(jpath), "%s/pg_cryptokeys/%s", pgdata, PCT_JOURNAL_FILE);
	unit_capture_log();
	pct_set_sync(false);
}

static void
teardown(void)
{
	unit_rmtree(pgdata);
	free(pgdata);
}

static pct_journal_info
sample_info(void)
{
	pct_journal_info in;

	memset(&in, 0, sizeof(in));
	in.op = PCT_OP_ENCRYPT;
	in.mode = PCT_RESILIENCE_CHECKSUM;
	in.method = PCT_METHOD_AES192;
	memset(in.new_id, 0xAB, 32);
	memset(in.fingerprint, 0x5C, 32);
	in.total_bytes = 123456789;
	in.unlogged_base = 1000;
	in.unlogged_next = 1007;
	return in;
}

#define AREA 65536

static void
record_batch2(pct_journal *j, bool prev_unfinished, uint32_t file,
			  uint64_t seed)
{
	pct_jzone	z[1] = {{file, 8192, 0}};
	uint64_t	h[4] = {seed, seed + 1, seed + 2, seed + 3};
	uint8_t    *scratch = malloc(AREA);

	uint64_t	counts[PCT_BATCH_NCOUNTS] = {seed, 0, 0, 0};

	ck_assert_int_eq(pct_journal_begin_batch(j, prev_unfinished, z, 1, h, 2, counts, NULL, 0, scratch), PCT_OK);
	free(scratch);
}

static void
record_batch(pct_journal *j, uint32_t file, uint64_t seed, const uint8_t *data,
			 size_t datalen)
{
	pct_jzone	z[2] = {{file, 8192, 0}, {file + 1, 8192, 16384}};
	uint64_t	h[8];
	uint8_t    *scratch = malloc(AREA);

	for (int i = 0; i < 8; i++)
		h[i] = seed + (uint64_t) i;
	uint64_t	counts[PCT_BATCH_NCOUNTS] = {7, 8, 9, 10};

	ck_assert_int_eq(pct_journal_begin_batch(j, false, z, 2, h, 4, counts, data, datalen, scratch), PCT_OK);
	free(scratch);
}

START_TEST(round_trip_and_progress)
{
	pct_journal_info in = sample_info(),
				out;
	pct_journal *j;
	pct_jbatch	bb[2];
	int			nb;
	bool		exists;

	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	pct_journal_close(j);
	ck_assert_int_eq(pct_journal_exists(pgdata, &exists), PCT_OK);
	ck_assert(exists);
	ck_assert_int_eq(pct_journal_peek(pgdata, &out), PCT_OK);
	ck_assert_int_eq(out.op, PCT_OP_ENCRYPT);
	ck_assert_int_eq(out.method, PCT_METHOD_AES192);
	ck_assert_mem_eq(out.new_id, in.new_id, 32);
	ck_assert_mem_eq(out.fingerprint, in.fingerprint, 32);
	ck_assert_uint_eq(out.unlogged_next, 1007);
	ck_assert(!out.data_complete);

	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	record_batch(j, 3, 100, NULL, 0);
	pct_journal_close(j);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 1);
	ck_assert_uint_eq(bb[0].nzones, 2);
	ck_assert_uint_eq(bb[0].zones[1].file, 4);
	ck_assert_uint_eq(bb[0].zones[1].offset, 16384);
	ck_assert_uint_eq(bb[0].nsectors, 4);
	ck_assert_uint_eq(pct_get_u64(bb[0].hashes + 8 * 5), 105);
	/* the batch's own counts travel with its record */
	ck_assert_uint_eq(bb[0].counts[0], 7);
	ck_assert_uint_eq(bb[0].counts[3], 10);
	ck_assert_ptr_null(bb[0].olddata);
	free(bb[0].zones);
	ck_assert_int_eq(pct_journal_set_progress(j, 9, 8192, 777, true), PCT_OK);
	pct_journal_close(j);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 0);
	ck_assert(j->info.data_complete);
	ck_assert_uint_eq(j->info.done_file, 9);
	ck_assert_uint_eq(j->info.done_bytes, 777);
	pct_journal_close(j);
	ck_assert_int_eq(pct_journal_remove(pgdata), PCT_OK);
	ck_assert_int_eq(pct_journal_exists(pgdata, &exists), PCT_OK);
	ck_assert(!exists);
}
END_TEST

START_TEST(journal_mode_data)
{
	pct_journal_info in = sample_info();
	pct_journal *j;
	pct_jbatch	bb[2];
	int			nb;
	uint8_t		data[16384];

	in.mode = PCT_RESILIENCE_JOURNAL;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t) (i * 7);
	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	record_batch(j, 0, 1, data, sizeof(data));
	pct_journal_close(j);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 1);
	ck_assert_uint_eq(bb[0].datalen, sizeof(data));
	ck_assert_mem_eq(bb[0].olddata, data, sizeof(data));
	free(bb[0].zones);
	pct_journal_close(j);
}
END_TEST

/* The engine builds the old data in place in the record buffer, at
 * pct_journal_data_offset (4 KiB aligned, after the zones and hashes): the
 * record read back holds it there, and the same bytes as a copied one. */
START_TEST(journal_mode_data_in_place)
{
	pct_journal_info in = sample_info();
	pct_journal *j;
	pct_jbatch	bb[2];
	int			nb;
	pct_jzone	z[2] = {{0, 8192, 0}, {1, 8192, 16384}};
	uint64_t	h[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint64_t	counts[PCT_BATCH_NCOUNTS] = {7, 8, 9, 10};
	uint8_t    *scratch = malloc(AREA);
	size_t		off = pct_journal_data_offset(2, 4);

	ck_assert_uint_eq(off % 4096, 0);
	ck_assert_uint_ge(off, 64 + 2 * 16 + 4 * 16);
	ck_assert_uint_eq(pct_journal_record_size(2, 4, 16384), off + 16384);
	in.mode = PCT_RESILIENCE_JOURNAL;
	for (size_t i = 0; i < 16384; i++)
		scratch[off + i] = (uint8_t) (i * 11 + 3);
	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_begin_batch(j, false, z, 2, h, 4, counts,
											 scratch + off, 16384, scratch), PCT_OK);
	pct_journal_close(j);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 1);
	ck_assert_uint_eq(bb[0].datalen, 16384);
	for (size_t i = 0; i < 16384; i++)
		ck_assert_uint_eq(bb[0].olddata[i], (uint8_t) (i * 11 + 3));
	ck_assert_uint_eq(pct_get_u64(bb[0].hashes + 8 * 7), 8);
	free(bb[0].zones);
	pct_journal_close(j);
	free(scratch);
}
END_TEST

static void
corrupt(off_t off, size_t len)
{
	int			fd = open(jpath, O_RDWR);
	uint8_t		junk[4096];

	memset(junk, 0xEE, sizeof(junk));
	ck_assert_int_eq(pwrite(fd, junk, len, off), (ssize_t) len);
	close(fd);
}

START_TEST(torn_header_falls_back)
{
	pct_journal_info in = sample_info();
	pct_journal *j;
	pct_jbatch	bb[2];
	int			nb;
	uint64_t	seq;

	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	record_batch(j, 0, 10, NULL, 0);	/* batch 1 */
	ck_assert_int_eq(pct_journal_set_progress(j, 2, 0, 16384, false), PCT_OK);
	record_batch(j, 5, 20, NULL, 0);	/* batch 2, other area */
	seq = j->seq;
	pct_journal_close(j);
	/* tear the newest header: the previous one (progress, no batch) rules */
	corrupt((off_t) (seq % 2) * 4096 + 100, 10);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_uint_eq(j->seq, seq - 1);
	ck_assert_uint_eq(j->info.done_file, 2);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 0);
	pct_journal_close(j);
	/* both torn: refused */
	corrupt((off_t) ((seq - 1) % 2) * 4096 + 100, 10);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "no valid header"));
}
END_TEST

START_TEST(torn_record_means_not_begun)
{
	pct_journal_info in = sample_info();
	pct_journal *j;
	pct_jbatch	bb[2];
	int			nb;
	uint64_t	bseq;

	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	record_batch(j, 0, 10, NULL, 0);
	record_batch(j, 7, 30, NULL, 0);
	bseq = j->batch_seq;
	pct_journal_close(j);
	/* the record of the newest batch is damaged: it never began */
	corrupt(2 * 4096 + (off_t) (bseq % PCT_JOURNAL_AREAS) * AREA + 40, 8);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 0);
	pct_journal_close(j);
}
END_TEST

START_TEST(previous_area_untouched)
{
	pct_journal_info in = sample_info();
	pct_journal *j;
	pct_jbatch	bb[2];
	int			nb;
	uint64_t	seq;

	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	record_batch(j, 1, 10, NULL, 0);	/* batch 1: area 1 */
	seq = j->seq;
	/* batch 2 is being written to area 0 when the crash comes: its header
	 * (the next slot) is torn; batch 1 must still be intact */
	record_batch(j, 8, 50, NULL, 0);
	pct_journal_close(j);
	corrupt((off_t) ((seq + 1) % 2) * 4096, 64);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 1);
	ck_assert_uint_eq(bb[0].zones[0].file, 1);
	ck_assert_uint_eq(pct_get_u64(bb[0].hashes), 10);
	free(bb[0].zones);
	pct_journal_close(j);
}
END_TEST

START_TEST(hash_properties)
{
	uint8_t		a[4096],
				c[4096];

	memset(a, 0, sizeof(a));
	memcpy(c, a, sizeof(a));
	ck_assert_uint_eq(pct_hash64(a, sizeof(a)), pct_hash64(c, sizeof(c)));
	/* every single-bit change in a sector changes the hash */
	for (int bit = 0; bit < 4096 * 8; bit += 97)
	{
		c[bit / 8] ^= (uint8_t) (1 << (bit % 8));
		ck_assert_uint_ne(pct_hash64(a, sizeof(a)), pct_hash64(c, sizeof(c)));
		c[bit / 8] ^= (uint8_t) (1 << (bit % 8));
	}
	/* length matters, and tails shorter than 32 bytes count */
	ck_assert_uint_ne(pct_hash64(a, 4095), pct_hash64(a, 4096));
	ck_assert_uint_ne(pct_hash64("abc", 3), pct_hash64("abd", 3));
}
END_TEST

/* The journal's sector hash: the AVX2 code (where the CPU has it) and the
 * portable code agree; a fixed value (the journal format depends on it);
 * every single-bit change, and swapping two 64-byte stripes, changes it. */
START_TEST(sector_hash_properties)
{
	uint8_t		a[4096],
				c[4096];
	uint64_t	x = 88172645463325252ULL;

	for (int i = 0; i < 4096; i++)
		a[i] = (uint8_t) (i * 31 + 7);
	ck_assert_uint_eq(pct_sector_hash(a), 0xef22038ef0e31e68ULL);
	ck_assert_uint_eq(pct_sector_hash_portable(a), 0xef22038ef0e31e68ULL);
	memset(c, 0, sizeof(c));
	ck_assert_uint_eq(pct_sector_hash(c), 0x431a56a73d9ec66cULL);
	for (int n = 0; n < 2000; n++)
	{
		for (int i = 0; i < 4096; i++)
		{
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			c[i] = (uint8_t) x;
		}
		if (n % 4 == 0)			/* words whose halves are zero */
			memset(c + (n % 64) * 64, 0, 64);
		ck_assert_uint_eq(pct_sector_hash(c), pct_sector_hash_portable(c));
	}
	memcpy(c, a, sizeof(a));
	for (int bit = 0; bit < 4096 * 8; bit += 13)
	{
		c[bit / 8] ^= (uint8_t) (1 << (bit % 8));
		ck_assert_uint_ne(pct_sector_hash(a), pct_sector_hash(c));
		c[bit / 8] ^= (uint8_t) (1 << (bit % 8));
	}
	memcpy(c, a + 64, 64);
	memcpy(c + 64, a, 64);
	ck_assert_uint_ne(pct_sector_hash(a), pct_sector_hash(c));
}
END_TEST

/* A journal of another format version (both headers whole) is refused
 * with a message naming both versions, not called damaged. */
START_TEST(other_version_refused)
{
	pct_journal_info in = sample_info(),
				out;
	pct_journal *j;
	int			fd;

	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	pct_journal_close(j);
	fd = open(jpath, O_RDWR);
	ck_assert_int_ge(fd, 0);
	for (int slot = 0; slot < 2; slot++)
	{
		uint8_t		h[4096];

		ck_assert_int_eq(pread(fd, h, sizeof(h), slot * 4096), 4096);
		if (memcmp(h, "PCTJRNL1", 8) != 0)
			continue;			/* the slot not written yet */
		pct_put_u32(h + 8, 1);	/* version */
		pct_put_u64(h + 264, pct_hash64(h, 264));	/* the header's hash */
		ck_assert_int_eq(pwrite(fd, h, sizeof(h), slot * 4096), 4096);
	}
	close(fd);
	unit_capture_log();
	ck_assert_int_eq(pct_journal_peek(pgdata, &out), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "has format version 1; this version of pgcrypttools reads version 2"));
	ck_assert_ptr_null(strstr(unit_all_log(), "damaged"));
}
END_TEST

START_TEST(space_is_preallocated)
{
	pct_journal_info in = sample_info();
	pct_journal *j;
	struct stat st;

	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0640, &j), PCT_OK);
	pct_journal_close(j);
	ck_assert_int_eq(stat(jpath, &st), 0);
	ck_assert_int_eq(st.st_size, 2 * 4096 + PCT_JOURNAL_AREAS * AREA);
	ck_assert_int_ge((long long) st.st_blocks * 512, 2 * 4096 + PCT_JOURNAL_AREAS * AREA);
	/* a second create refuses to overwrite */
	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_ERR_SYS);
}
END_TEST

START_TEST(two_unfinished_batches)
{
	pct_journal_info in = sample_info();
	pct_journal *j;
	pct_jbatch	bb[2];
	int			nb;
	uint64_t	bseq;

	ck_assert_int_eq(pct_journal_create(pgdata, &in, AREA, 0600, &j), PCT_OK);
	record_batch2(j, false, 1, 100);	/* batch 1 */
	record_batch2(j, true, 2, 200);		/* batch 2 while 1 still syncs */
	j->counters[3] = 42;
	record_batch2(j, true, 3, 300);		/* batch 3: 1 done, 2 syncing */
	bseq = j->batch_seq;
	pct_journal_close(j);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_uint_eq(j->counters[3], 42);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 2);
	/* oldest first */
	ck_assert_uint_eq(bb[0].zones[0].file, 2);
	ck_assert_uint_eq(pct_get_u64(bb[0].hashes), 200);
	ck_assert_uint_eq(bb[0].counts[0], 200);
	ck_assert_uint_eq(bb[1].zones[0].file, 3);
	free(bb[0].zones);
	free(bb[1].zones);
	pct_journal_close(j);
	/* a kill while the next batch's record was half written: it goes to
	 * the area of batch bseq - 2, which the header no longer names */
	corrupt(2 * 4096 + (off_t) ((bseq + 1) % PCT_JOURNAL_AREAS) * AREA + 40, 8);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 2);
	free(bb[0].zones);
	free(bb[1].zones);
	pct_journal_close(j);
	/* the newest record torn: only the older remains, it never began */
	corrupt(2 * 4096 + (off_t) (bseq % PCT_JOURNAL_AREAS) * AREA + 40, 8);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_OK);
	ck_assert_int_eq(pct_journal_get_batches(j, bb, &nb), PCT_OK);
	ck_assert_int_eq(nb, 1);
	ck_assert_uint_eq(bb[0].zones[0].file, 2);
	free(bb[0].zones);
	pct_journal_close(j);
	/* the older record damaged: that is damage, refused */
	corrupt(2 * 4096 + (off_t) ((bseq - 1) % PCT_JOURNAL_AREAS) * AREA + 40, 8);
	ck_assert_int_eq(pct_journal_open(pgdata, &j), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "does not verify"));
}
END_TEST

static Suite *
journal_suite(void)
{
	Suite	   *s = suite_create("journal");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip_and_progress);
	tcase_add_test(tc, journal_mode_data);
	tcase_add_test(tc, journal_mode_data_in_place);
	tcase_add_test(tc, torn_header_falls_back);
	tcase_add_test(tc, torn_record_means_not_begun);
	tcase_add_test(tc, previous_area_untouched);
	tcase_add_test(tc, two_unfinished_batches);
	tcase_add_test(tc, hash_properties);
	tcase_add_test(tc, sector_hash_properties);
	tcase_add_test(tc, other_version_refused);
	tcase_add_test(tc, space_is_preallocated);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(journal_suite)
