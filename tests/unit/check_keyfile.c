/*
 * check_keyfile.c
 *	  Unit tests of keyfile.c: RFC 5649 known answers, the key vectors of
 *	  both generations made by the original server code, and malformed
 *	  files.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "lib/pct_internal.h"

/* RFC 5649 section 6: 192-bit KEK, 20- and 7-byte keys. */
static const char *rfc_kek = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";
static const struct
{
	const char *key;
	const char *wrapped;
}			rfc_cases[] = {
	{"c37b7e6492584340bed12207808941155068f738",
	"138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
	{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
};

START_TEST(rfc5649_known_answers)
{
	for (size_t i = 0; i < sizeof(rfc_cases) / sizeof(rfc_cases[0]); i++)
	{
		uint8_t		kek[24],
					key[64],
					want[64],
					out[64],
					back[64];
		int			klen = unit_unhex(rfc_cases[i].key, key, sizeof(key));
		int			wlen = unit_unhex(rfc_cases[i].wrapped, want, sizeof(want));
		int			n = 0;

		ck_assert_int_eq(unit_unhex(rfc_kek, kek, sizeof(kek)), 24);
		ck_assert_int_eq(pct_kwp(true, kek, 24, key, klen, out, sizeof(out), &n), PCT_OK);
		ck_assert_int_eq(n, wlen);
		ck_assert_mem_eq(out, want, (size_t) wlen);
		ck_assert_int_eq(pct_kwp(false, kek, 24, want, wlen, back, sizeof(back), &n), PCT_OK);
		ck_assert_int_eq(n, klen);
		ck_assert_mem_eq(back, key, (size_t) klen);
		/* one flipped bit fails the integrity check */
		want[3] ^= 0x10;
		ck_assert_int_eq(pct_kwp(false, kek, 24, want, wlen, back, sizeof(back), &n), PCT_ERR_KEY);
		/* so does the wrong KEK */
		want[3] ^= 0x10;
		kek[0] ^= 1;
		ck_assert_int_eq(pct_kwp(false, kek, 24, want, wlen, back, sizeof(back), &n), PCT_ERR_KEY);
	}
}
END_TEST

/* Names of the positive vector sets (b_*, c1_*). */
static int
vector_sets(char names[][64], int max)
{
	DIR		   *d = opendir(unit_vectors());
	struct dirent *de;
	int			n = 0;

	ck_assert_msg(d != NULL, "cannot open vectors at %s", unit_vectors());
	while ((de = readdir(d)) != NULL && n < max)
		if (strncmp(de->d_name, "b_", 2) == 0 || strncmp(de->d_name, "c1_", 3) == 0)
			ck_assert(snprintf(names[n++], 64, "%s", de->d_name) < 64);
	closedir(d);
	return n;
}

static size_t
read_vector_file(const char *set, int gen, int id, uint8_t *buf, size_t max)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%s/pg_cryptokeys/live/%s", unit_vectors(),
			 set, pct_keyfile_name(gen, id));
	return unit_read_file(path, buf, max);
}

START_TEST(vectors_unwrap_and_rewrap_exactly)
{
	char		sets[32][64];
	int			nsets = vector_sets(sets, 32);

	ck_assert_int_ge(nsets, 8);
	for (int s = 0; s < nsets; s++)
	{
		int			gen = sets[s][0] == 'b' ? PCT_GEN2 : PCT_GEN1;
		uint8_t		kek[PCT_KEK_LEN];

		unit_vector_kek(sets[s], kek);
		for (int id = 0; id < PCT_NUM_KEYS; id++)
		{
			uint8_t		file[256],
						out[PCT_GEN1_FILE_LEN],
						dek[PCT_MAX_KEY_LEN];
			size_t		len = read_vector_file(sets[s], gen, id, file, sizeof(file)),
						outlen = 0;
			int			deklen = unit_vector_dek(sets[s], id, dek);
			pct_datakey dk;

			ck_assert_msg(pct_keyfile_unwrap(NULL, gen, id, file, len, kek, &dk) == PCT_OK,
						  "%s key %d does not unwrap", sets[s], id);
			ck_assert_int_eq(dk.generation, gen);
			ck_assert_int_eq(dk.id, id);
			ck_assert_int_eq(dk.keylen, deklen);
			ck_assert_mem_eq(PCT_DATAKEY_BYTES(&dk), dek, (size_t) deklen);
			/* wrapping the same plaintext (same counter) gives the file */
			ck_assert_int_eq(pct_keyfile_wrap(&dk, kek, out, &outlen), PCT_OK);
			ck_assert_uint_eq(outlen, gen == PCT_GEN1 ? 72 : 48);
			ck_assert_msg(memcmp(out, file, outlen) == 0,
						  "%s key %d: rewrap differs from the original file", sets[s], id);
		}
	}
}
END_TEST

START_TEST(negative_vectors_fail)
{
	static const char *sets[] = {"negative/b_bitflip", "negative/b_wrong_kek",
	"negative/c1_tag_bitflip", "negative/c1_wrong_kek"};

	for (size_t s = 0; s < 4; s++)
	{
		int			gen = strstr(sets[s], "/b_") ? PCT_GEN2 : PCT_GEN1;
		uint8_t		kek[PCT_KEK_LEN],
					file[256];
		bool		any_failed = false;

		unit_vector_kek(sets[s], kek);
		for (int id = 0; id < PCT_NUM_KEYS; id++)
		{
			size_t		len = read_vector_file(sets[s], gen, id, file, sizeof(file));
			pct_datakey dk;
			pct_rc		rc;

			unit_capture_log();
			rc = pct_keyfile_unwrap("k", gen, id, file, len, kek, &dk);
			if (rc != PCT_OK)
			{
				any_failed = true;
				ck_assert_int_eq(rc, PCT_ERR_KEY);
				ck_assert_ptr_nonnull(strstr(unit_last_error(),
											 "wrong cluster key or damaged key file"));
				/* nothing of the key is left behind */
				for (size_t i = 0; i < sizeof(dk.plain); i++)
					ck_assert_int_eq(dk.plain[i], 0);
			}
		}
		ck_assert_msg(any_failed, "%s unwrapped", sets[s]);
	}
}
END_TEST

START_TEST(gen1_counter_padding_and_lengths)
{
	uint8_t		kek[PCT_KEK_LEN],
				file[256],
				out[PCT_GEN1_FILE_LEN];
	size_t		len,
				outlen;
	pct_datakey dk,
				dk2;

	unit_vector_kek("c1_aes128", kek);
	len = read_vector_file("c1_aes128", PCT_GEN1, 1, file, sizeof(file));
	ck_assert_int_eq(pct_keyfile_unwrap(NULL, PCT_GEN1, 1, file, len, kek, &dk), PCT_OK);
	ck_assert_uint_eq(dk.counter, 1);
	/* bits in the length field, as that server wrote it */
	ck_assert_uint_eq(pct_get_u32(dk.plain), 128);
	ck_assert_int_eq(dk.keylen, 16);

	/* rewrap with counter + 1: counter stored, padding zero, plaintext kept */
	dk.counter++;
	ck_assert_int_eq(pct_keyfile_wrap(&dk, kek, out, &outlen), PCT_OK);
	ck_assert_uint_eq(pct_get_u64(out + 8), 2);
	ck_assert_uint_eq(pct_get_u64(out), 1);
	ck_assert_uint_eq(pct_get_u32(out + 68), 0);
	ck_assert_int_eq(pct_keyfile_unwrap(NULL, PCT_GEN1, 1, out, outlen, kek, &dk2), PCT_OK);
	ck_assert_mem_eq(dk2.plain, dk.plain, PCT_KEY_PLAIN_LEN);
	ck_assert_uint_eq(dk2.counter, 2);

	/* padding is not authenticated: readers ignore it */
	out[69] = 0xAB;
	ck_assert_int_eq(pct_keyfile_unwrap(NULL, PCT_GEN1, 1, out, outlen, kek, &dk2), PCT_OK);
	/* bytes past 72 are ignored */
	memcpy(file, out, 72);
	memset(file + 72, 0x5A, 20);
	ck_assert_int_eq(pct_keyfile_unwrap(NULL, PCT_GEN1, 1, file, 92, kek, &dk2), PCT_OK);
	/* the counter and id are the IV: changing one fails the tag */
	out[8] ^= 1;
	unit_capture_log();
	ck_assert_int_eq(pct_keyfile_unwrap(NULL, PCT_GEN1, 1, out, outlen, kek, &dk2), PCT_ERR_KEY);
	out[8] ^= 1;
	/* short file, wrong id */
	ck_assert_int_eq(pct_keyfile_unwrap("f", PCT_GEN1, 1, out, 71, kek, &dk2), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "71 bytes"));
	ck_assert_int_eq(pct_keyfile_unwrap("f", PCT_GEN1, 0, out, outlen, kek, &dk2), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "key id"));

	/* a byte count in the length field is accepted too */
	pct_put_u32(dk.plain, 16);
	ck_assert_int_eq(pct_keyfile_wrap(&dk, kek, out, &outlen), PCT_OK);
	ck_assert_int_eq(pct_keyfile_unwrap(NULL, PCT_GEN1, 1, out, outlen, kek, &dk2), PCT_OK);
	ck_assert_int_eq(dk2.keylen, 16);
	/* anything else is damage */
	pct_put_u32(dk.plain, 100);
	ck_assert_int_eq(pct_keyfile_wrap(&dk, kek, out, &outlen), PCT_OK);
	ck_assert_int_eq(pct_keyfile_unwrap("f", PCT_GEN1, 1, out, outlen, kek, &dk2), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "invalid key length 100"));
}
END_TEST

START_TEST(gen2_format_and_generate)
{
	uint8_t		kek[PCT_KEK_LEN],
				out[PCT_GEN1_FILE_LEN];
	size_t		outlen;
	pct_datakey dk,
				dk2;
	int			lens[] = {16, 24, 32};

	memset(kek, 0x42, sizeof(kek));
	for (int i = 0; i < 3; i++)
	{
		ck_assert_int_eq(pct_datakey_generate(PCT_KEY_WAL, lens[i], &dk), PCT_OK);
		ck_assert_int_eq(dk.keylen, lens[i]);
		ck_assert_uint_eq(pct_get_u32(dk.plain), (uint32_t) lens[i]);
		/* unused key bytes are zero */
		for (int b = 4 + lens[i]; b < PCT_KEY_PLAIN_LEN; b++)
			ck_assert_int_eq(dk.plain[b], 0);
		ck_assert_int_eq(pct_keyfile_wrap(&dk, kek, out, &outlen), PCT_OK);
		ck_assert_uint_eq(outlen, 48);
		ck_assert_int_eq(pct_keyfile_unwrap(NULL, PCT_GEN2, PCT_KEY_WAL, out, outlen, kek, &dk2), PCT_OK);
		ck_assert_mem_eq(dk2.plain, dk.plain, PCT_KEY_PLAIN_LEN);
	}
	/* two keys differ (CSPRNG) */
	ck_assert_int_eq(pct_datakey_generate(0, 32, &dk2), PCT_OK);
	ck_assert_mem_ne(dk2.plain + 4, dk.plain + 4, 32);
	unit_capture_log();
	ck_assert_int_eq(pct_datakey_generate(0, 20, &dk2), PCT_ERR_ARG);
	/* exactly 48 bytes */
	ck_assert_int_eq(pct_keyfile_unwrap("f", PCT_GEN2, 0, out, 47, kek, &dk2), PCT_ERR_FORMAT);
	ck_assert_int_eq(pct_keyfile_unwrap("f", PCT_GEN2, 0, out, 49, kek, &dk2), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "49 bytes, expected 48"));
	/* a generation-2 length is in bytes: bits are damage */
	pct_put_u32(dk.plain, 256);
	ck_assert_int_eq(pct_keyfile_wrap(&dk, kek, out, &outlen), PCT_OK);
	ck_assert_int_eq(pct_keyfile_unwrap("f", PCT_GEN2, 0, out, outlen, kek, &dk2), PCT_ERR_FORMAT);
	ck_assert_str_eq(pct_keyfile_name(PCT_GEN2, 0), "relation.wkey");
	ck_assert_str_eq(pct_keyfile_name(PCT_GEN1, 1), "1");
}
END_TEST

static Suite *
keyfile_suite(void)
{
	Suite	   *s = suite_create("keyfile");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, rfc5649_known_answers);
	tcase_add_test(tc, vectors_unwrap_and_rewrap_exactly);
	tcase_add_test(tc, negative_vectors_fail);
	tcase_add_test(tc, gen1_counter_padding_and_lengths);
	tcase_add_test(tc, gen2_format_and_generate);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(keyfile_suite)
