/*
 * check_pagecipher.c
 *	  Unit tests of pagecipher.c and checksum.c (FORMAT 3).
 *
 * Known answers are computed here by a separate route: AES-ECB of each
 * counter block (OpenSSL EVP, no CTR mode), the counter incremented by hand
 * as a 128-bit big-endian integer, XOR.  That route is itself anchored to
 * the CTR vectors of NIST SP 800-38A (F.5.1, F.5.3, F.5.5).  The checksum
 * is compared with the checksums PostgreSQL wrote on real pages of a
 * cluster made by `initdb -k`, and a page encrypted and re-checksummed here
 * is accepted by the stock `pg_checksums --check`.  A micro-benchmark prints
 * MB/s (never asserted).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "lib/pct_internal.h"
#include "unit.h"

#define PAGE PCT_BLCKSZ

/* ---- the reference route ---- */

/* ctr += 1 as a 128-bit big-endian integer (mod 2^128). */
static void
ref_inc(uint8_t ctr[16])
{
	for (int i = 15; i >= 0; i--)
		if (++ctr[i] != 0)
			break;
}

/* Keystream blocks 0..nblocks-1 from counter iv: AES-ECB of each block. */
static void
ref_keystream(const uint8_t *key, int keylen, const uint8_t iv[16],
			  uint8_t *ks, size_t nblocks)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *ecb = keylen == 16 ? EVP_aes_128_ecb() :
		keylen == 24 ? EVP_aes_192_ecb() : EVP_aes_256_ecb();
	uint8_t		ctr[16];
	int			outl;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, ecb, NULL, key, NULL), 1);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	memcpy(ctr, iv, 16);
	for (size_t b = 0; b < nblocks; b++)
	{
		ck_assert_int_eq(EVP_EncryptUpdate(ctx, ks + 16 * b, &outl, ctr, 16), 1);
		ck_assert_int_eq(outl, 16);
		ref_inc(ctr);
	}
	EVP_CIPHER_CTX_free(ctx);
}

/* data ^= CTR keystream from iv, by the reference route. */
static void
ref_ctr(const uint8_t *key, int keylen, const uint8_t iv[16], uint8_t *data,
		size_t len)
{
	size_t		nblocks = (len + 15) / 16;
	uint8_t    *ks = malloc(nblocks * 16 + 1);

	ck_assert_ptr_nonnull(ks);
	ref_keystream(key, keylen, iv, ks, nblocks);
	for (size_t i = 0; i < len; i++)
		data[i] ^= ks[i];
	free(ks);
}

static void
unhex(const char *hex, uint8_t *out, size_t len)
{
	ck_assert_int_eq(unit_unhex(hex, out, len), (int) len);
}

/* Deterministic test keys and page contents. */
static void
fill(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t	x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++)
	{
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t) x;
	}
}

/* A plausible non-new page: header fields set, body patterned. */
static void
make_page(uint8_t *page, uint64_t lsn, uint32_t seed)
{
	fill(page, PAGE, seed);
	pct_page_set_lsn(page, lsn);
	page[PCT_PAGE_OFF_UPPER] = 0x40;	/* pd_upper = 0x1f40 */
	page[PCT_PAGE_OFF_UPPER + 1] = 0x1f;
}

static const int keylens[3] = {16, 24, 32};

/* ---- NIST SP 800-38A: anchor both routes ---- */

static const char *const nist_plain =
"6bc1bee22e409f96e93d7e117393172a" "ae2d8a571e03ac9c9eb76fac45af8e51"
"30c81c46a35ce411e5fbc1191a0a52ef" "f69f2445df4f9b17ad2b417be66c3710";
static const char *const nist_ctr = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
static const struct
{
	const char *key;
	const char *cipher;
}			nist[3] = {
	{"2b7e151628aed2a6abf7158809cf4f3c",
		"874d6191b620e3261bef6864990db6ce" "9806f66b7970fdff8617187bb9fffdff"
	"5ae4df3edbd5d35e5b4f09020db03eab" "1e031dda2fbe03d1792170a0f3009cee"},
	{"8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
		"1abc932417521ca24f2b0459fe7e6e0b" "090339ec0aa6faefd5ccc2c6f4ce8e94"
	"1e36b26bd1ebc670d1bd1d665620abf7" "4f78a7f6d29809585a97daec58c6b050"},
	{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
		"601ec313775789a5b7a7f504bbf3d228" "f443e3ca4d62b59aca84e990cacaf5c5"
	"2b0930daa23de94ce87017ba2d84988d" "dfc9c58db67aada613c2dd08457941a6"},
};

START_TEST(nist_vectors)
{
	int			k = _i;
	int			keylen = keylens[k];
	uint8_t		key[32],
				iv[16],
				plain[64],
				expect[64],
				buf[64];
	pct_cipher *c;

	unhex(nist[k].key, key, (size_t) keylen);
	unhex(nist_ctr, iv, 16);
	unhex(nist_plain, plain, 64);
	unhex(nist[k].cipher, expect, 64);

	/* the reference route */
	memcpy(buf, plain, 64);
	ref_ctr(key, keylen, iv, buf, 64);
	ck_assert_mem_eq(buf, expect, 64);

	/* the library */
	ck_assert_int_eq(pct_cipher_new(key, keylen, &c), PCT_OK);
	memcpy(buf, plain, 64);
	ck_assert_int_eq(pct_cipher_ctr(c, iv, buf, 64), PCT_OK);
	ck_assert_mem_eq(buf, expect, 64);
	/* decrypting is the same operation */
	ck_assert_int_eq(pct_cipher_ctr(c, iv, buf, 64), PCT_OK);
	ck_assert_mem_eq(buf, plain, 64);
	pct_cipher_free(c);
}
END_TEST

START_TEST(cipher_bad_args)
{
	uint8_t		key[32] = {0};
	pct_cipher *c = (pct_cipher *) &c;

	unit_capture_log();
	ck_assert_int_eq(pct_cipher_new(key, 20, &c), PCT_ERR_ARG);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(pct_cipher_new(key, 0, &c), PCT_ERR_ARG);
	ck_assert_int_eq(pct_cipher_new(NULL, 16, &c), PCT_ERR_ARG);
	ck_assert_ptr_null(c);
	ck_assert_str_eq(unit_last_error(), "no data key given");
	pct_cipher_free(NULL);
}
END_TEST

/*
 * The counter carries through all 128 bits: IVs whose low 32, 64 and 96
 * bits are about to wrap, and the all-ones IV (wraps to zero), against the
 * hand-incremented reference.  OpenSSL's optimised CTR increments a 32-bit
 * counter and carries into the upper 96 bits separately; this proves the
 * result is the full 128-bit increment that FORMAT 3 and 4 specify.
 */
START_TEST(counter_carry)
{
	static const char *const ivs[] = {
		"0123456789abcdef" "fffffffffffffff0",	/* 64-bit boundary */
		"00000000000000ff" "ffffffffffffffe0",	/* carries into byte 7 */
		"0123456789abcdef" "01234567fffffff8",	/* 32-bit boundary */
		"01234567ffffffff" "fffffffffffffffc",	/* 96-bit boundary */
		"ffffffffffffffff" "fffffffffffffffe",	/* 128-bit wrap to 0 */
	};
	uint8_t		key[32],
				iv[16],
				plain[64 * 16],
				a[64 * 16],
				b[64 * 16];

	for (int k = 0; k < 3; k++)
	{
		pct_cipher *c;

		fill(key, sizeof(key), 100 + (uint32_t) k);
		ck_assert_int_eq(pct_cipher_new(key, keylens[k], &c), PCT_OK);
		for (size_t v = 0; v < sizeof(ivs) / sizeof(ivs[0]); v++)
		{
			uint8_t		ks[16],
						ctr[16];

			unhex(ivs[v], iv, 16);
			fill(plain, sizeof(plain), (uint32_t) v);
			memcpy(a, plain, sizeof(a));
			memcpy(b, plain, sizeof(b));
			ck_assert_int_eq(pct_cipher_ctr(c, iv, a, sizeof(a)), PCT_OK);
			ref_ctr(key, keylens[k], iv, b, sizeof(b));
			ck_assert_msg(memcmp(a, b, sizeof(a)) == 0,
						  "keylen %d iv %s: CTR differs from the 128-bit reference",
						  keylens[k], ivs[v]);

			/* Spot-check one block past the carry by hand: block 16 of
			 * the 64-bit case is the counter (high+1) || 0. */
			if (v == 0)
			{
				memset(ctr, 0, 16);
				unhex("0123456789abcdf0" "0000000000000000", ctr, 16);
				ref_keystream(key, keylens[k], ctr, ks, 1);
				for (int i = 0; i < 16; i++)
					ck_assert_uint_eq(a[16 * 16 + i], plain[16 * 16 + i] ^ ks[i]);
			}
		}
		pct_cipher_free(c);
	}
}
END_TEST

/*
 * Odd lengths, and a call after a call that stopped in the middle of a
 * block: each call starts afresh at its IV.
 */
START_TEST(cipher_lengths)
{
	static const size_t lens[] = {0, 1, 5, 15, 16, 17, 31, 33, 8176, 8191};
	uint8_t		key[32],
				iv[16],
				a[8192],
				b[8192];
	pct_cipher *c;

	fill(key, sizeof(key), 7);
	ck_assert_int_eq(pct_cipher_new(key, 32, &c), PCT_OK);
	for (size_t n = 0; n < sizeof(lens) / sizeof(lens[0]); n++)
	{
		fill(iv, 16, 1000 + (uint32_t) n);
		fill(a, lens[n] + 1, 2000 + (uint32_t) n);
		memcpy(b, a, lens[n] + 1);
		ck_assert_int_eq(pct_cipher_ctr(c, iv, a, lens[n]), PCT_OK);
		ref_ctr(key, 32, iv, b, lens[n]);
		ck_assert_mem_eq(a, b, lens[n] + 1);	/* and nothing past len */
	}
	pct_cipher_free(c);
}
END_TEST

/* ---- FORMAT 3: header fields and IV ---- */

START_TEST(lsn_layout)
{
	uint8_t		page[PAGE];
	static const uint8_t expect[8] = {0x0a, 0, 0, 0, 0x34, 0x12, 0, 0};

	memset(page, 0, sizeof(page));
	pct_page_set_lsn(page, UINT64_C(0x0000000A00001234));
	ck_assert_mem_eq(page, expect, 8);
	ck_assert_uint_eq(pct_page_get_lsn(page), UINT64_C(0x0000000A00001234));

	/* high word first, each little-endian */
	page[0] = 0x78; page[1] = 0x56; page[2] = 0x34; page[3] = 0x12;
	page[4] = 0xf0; page[5] = 0xde; page[6] = 0xbc; page[7] = 0x9a;
	ck_assert_uint_eq(pct_page_get_lsn(page), UINT64_C(0x123456789abcdef0));

	pct_page_set_checksum(page, 0xbeef);
	ck_assert_uint_eq(page[8], 0xef);
	ck_assert_uint_eq(page[9], 0xbe);
	ck_assert_uint_eq(pct_page_get_checksum(page), 0xbeef);
	ck_assert_mem_eq(page, "\x78\x56\x34\x12\xf0\xde\xbc\x9a", 8);

	ck_assert(pct_page_is_new(page));
	page[PCT_PAGE_OFF_UPPER + 1] = 0x01;
	ck_assert(!pct_page_is_new(page));
	page[PCT_PAGE_OFF_UPPER + 1] = 0;
	page[PCT_PAGE_OFF_UPPER] = 0x01;
	ck_assert(!pct_page_is_new(page));
}
END_TEST

START_TEST(iv_layout)
{
	uint8_t		page[PAGE];
	uint8_t		iv[16];
	static const uint8_t logged[16] = {
		0x0a, 0x00, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00,
		0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00
	};
	static const uint8_t unlogged[16] = {
		0x0a, 0x00, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00,
		0x04, 0x03, 0x02, 0x01, 0x80, 0x00, 0x00, 0x00
	};
	static const uint8_t maxed[16] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xfe, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00
	};

	make_page(page, UINT64_C(0x0000000A00001234), 1);
	memset(iv, 0x55, sizeof(iv));
	pct_page_iv(page, 0x01020304, false, iv);
	ck_assert_mem_eq(iv, logged, 16);
	memset(iv, 0x55, sizeof(iv));
	pct_page_iv(page, 0x01020304, true, iv);
	ck_assert_mem_eq(iv, unlogged, 16);

	/* Segment 3 block 5 with RELSEG_SIZE 131072 is block 393221. */
	pct_page_iv(page, 3 * 131072 + 5, false, iv);
	ck_assert_mem_eq(iv + 8, "\x05\x00\x06\x00", 4);

	make_page(page, UINT64_MAX, 2);
	pct_page_iv(page, 0xfffffffe, true, iv);
	ck_assert_mem_eq(iv, maxed, 16);
}
END_TEST

/* Expected ciphertext of a page by the reference route. */
static void
ref_page(const uint8_t *key, int keylen, const uint8_t *plain, uint32_t blkno,
		 bool unlogged, uint8_t *out)
{
	uint8_t		iv[16];

	/* The IV is built here from the FORMAT text, not by pct_page_iv. */
	memcpy(iv, plain, 8);
	iv[8] = (uint8_t) blkno;
	iv[9] = (uint8_t) (blkno >> 8);
	iv[10] = (uint8_t) (blkno >> 16);
	iv[11] = (uint8_t) (blkno >> 24);
	iv[12] = unlogged ? 0x80 : 0;
	iv[13] = iv[14] = iv[15] = 0;
	memcpy(out, plain, PAGE);
	ref_ctr(key, keylen, iv, out + 16, PAGE - 16);
}

START_TEST(page_known_answer)
{
	static const struct
	{
		uint64_t	lsn;
		uint32_t	blkno;
		bool		unlogged;
	}			cases[] = {
		{UINT64_C(0x0000000A00001234), 0, false},
		{UINT64_C(0x0000000A00001234), 0, true},
		{UINT64_C(0x0000000001000028), 1, false},
		{UINT64_C(0x000003E8), 131072 + 17, true},	/* fake unlogged LSN */
		{UINT64_C(0x00000001), 42, false},	/* GiST build LSN */
		{UINT64_C(0xFFFFFFFFFFFFFFFF), 0xFFFFFFFE, true},
	};
	int			k = _i;
	int			keylen = keylens[k];
	uint8_t		key[32];
	uint8_t    *plain = malloc(PAGE),
			   *page = malloc(PAGE),
			   *expect = malloc(PAGE);
	pct_cipher *c;

	ck_assert(plain && page && expect);
	fill(key, sizeof(key), 300 + (uint32_t) k);
	ck_assert_int_eq(pct_cipher_new(key, keylen, &c), PCT_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		make_page(plain, cases[i].lsn, 400 + (uint32_t) i);
		ref_page(key, keylen, plain, cases[i].blkno, cases[i].unlogged, expect);
		memcpy(page, plain, PAGE);
		ck_assert_int_eq(pct_page_crypt(c, page, cases[i].blkno,
										cases[i].unlogged), PCT_OK);
		ck_assert_msg(memcmp(page, expect, PAGE) == 0,
					  "keylen %d case %zu: ciphertext differs", keylen, i);
		/* the clear header is untouched */
		ck_assert_mem_eq(page, plain, PCT_PAGE_CLEAR_LEN);
		/* and the body did change */
		ck_assert(memcmp(page + 16, plain + 16, PAGE - 16) != 0);
		/* round trip */
		ck_assert_int_eq(pct_page_crypt(c, page, cases[i].blkno,
										cases[i].unlogged), PCT_OK);
		ck_assert_mem_eq(page, plain, PAGE);
	}

	/* Every IV ingredient matters: another block, the unlogged flag or
	 * the LSN gives another ciphertext. */
	make_page(plain, 0x1234, 9);
	memcpy(page, plain, PAGE);
	memcpy(expect, plain, PAGE);
	ck_assert_int_eq(pct_page_crypt(c, page, 7, false), PCT_OK);
	ck_assert_int_eq(pct_page_crypt(c, expect, 7, true), PCT_OK);
	ck_assert(memcmp(page + 16, expect + 16, PAGE - 16) != 0);
	memcpy(expect, plain, PAGE);
	ck_assert_int_eq(pct_page_crypt(c, expect, 8, false), PCT_OK);
	ck_assert(memcmp(page + 16, expect + 16, PAGE - 16) != 0);
	memcpy(expect, plain, PAGE);
	pct_page_set_lsn(expect, 0x1235);
	ck_assert_int_eq(pct_page_crypt(c, expect, 7, false), PCT_OK);
	ck_assert(memcmp(page + 16, expect + 16, PAGE - 16) != 0);

	pct_cipher_free(c);
	free(plain);
	free(page);
	free(expect);
}
END_TEST

/* Keystream block 0 covers page bytes 16..31: check bytes 16 and 31 and
 * 32 by hand against single ECB blocks. */
START_TEST(page_keystream_alignment)
{
	uint8_t		key[16],
				iv[16],
				ks[32];
	uint8_t    *plain = malloc(PAGE),
			   *page = malloc(PAGE);
	pct_cipher *c;

	ck_assert(plain && page);
	fill(key, sizeof(key), 11);
	make_page(plain, UINT64_C(0x0000000A00001234), 12);
	memcpy(page, plain, PAGE);
	ck_assert_int_eq(pct_cipher_new(key, 16, &c), PCT_OK);
	ck_assert_int_eq(pct_page_crypt(c, page, 0x01020304, true), PCT_OK);
	unhex("0a000000341200000403020180000000", iv, 16);
	ref_keystream(key, 16, iv, ks, 2);
	ck_assert_uint_eq(page[16], plain[16] ^ ks[0]);
	ck_assert_uint_eq(page[31], plain[31] ^ ks[15]);
	ck_assert_uint_eq(page[32], plain[32] ^ ks[16]);
	ck_assert_mem_eq(page, plain, 16);
	pct_cipher_free(c);
	free(plain);
	free(page);
}
END_TEST

START_TEST(new_page_untouched)
{
	uint8_t		key[32];
	uint8_t    *plain = malloc(PAGE),
			   *page = malloc(PAGE);
	pct_cipher *c;

	ck_assert(plain && page);
	fill(key, sizeof(key), 13);
	ck_assert_int_eq(pct_cipher_new(key, 32, &c), PCT_OK);

	/* all zeros */
	memset(page, 0, PAGE);
	ck_assert_int_eq(pct_page_crypt(c, page, 3, false), PCT_OK);
	for (int i = 0; i < PAGE; i++)
		ck_assert_uint_eq(page[i], 0);

	/* garbage with pd_upper == 0 is "new" too and left exactly as is */
	fill(plain, PAGE, 14);
	plain[PCT_PAGE_OFF_UPPER] = plain[PCT_PAGE_OFF_UPPER + 1] = 0;
	memcpy(page, plain, PAGE);
	ck_assert_int_eq(pct_page_crypt(c, page, 3, true), PCT_OK);
	ck_assert_mem_eq(page, plain, PAGE);

	pct_cipher_free(c);
	free(plain);
	free(page);
}
END_TEST

/* ---- checksum: PostgreSQL's algorithm on real pages ---- */

static char *
pg_bindir(void)
{
	FILE	   *f = popen("pg_config --bindir", "r");
	char		buf[1024];
	char	   *nl;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	ck_assert_int_eq(pclose(f), 0);
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	return strdup(buf);
}

static int
run(const char *cmd)
{
	int			st = system(cmd);

	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static size_t
read_all(const char *path, uint8_t **out)
{
	struct stat sb;
	int			fd;
	uint8_t    *buf;

	fd = open(path, O_RDONLY);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_gt(sb.st_size, 0);
	buf = malloc((size_t) sb.st_size);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t) sb.st_size), sb.st_size);
	close(fd);
	*out = buf;
	return (size_t) sb.st_size;
}

/* A cluster made by initdb -k for each test; a failing test leaves it
 * behind for inspection (Check skips the teardown). */
static char *cluster;
static char *bindir;

static void
cluster_setup(void)
{
	char		cmd[8192];

	ck_assert_msg(geteuid() != 0,
				  "this test runs initdb, which refuses to run as root: run the "
				  "suite as an unprivileged user (make check does, via "
				  "scripts/unprivileged.sh; or runuser -u pgcrypttools -- ...)");
	bindir = pg_bindir();
	cluster = unit_mkdtemp();
	snprintf(cmd, sizeof(cmd),
			 "'%s/initdb' -k -N -A trust -U postgres -E UTF8 --locale=C "
			 "-D '%s/data' >'%s/initdb.log' 2>&1",
			 bindir, cluster, cluster);
	ck_assert_msg(run(cmd) == 0, "initdb -k failed; see %s/initdb.log", cluster);
}

static void
cluster_teardown(void)
{
	if (cluster)
		unit_rmtree(cluster);
	free(cluster);
	free(bindir);
	cluster = bindir = NULL;
}

/* Check every non-new block of a relation file; returns blocks checked. */
static int
check_file_checksums(const char *rel)
{
	char		path[4096];
	uint8_t    *buf,
			   *copy,
			   *odd;
	size_t		len;
	int			checked = 0;

	snprintf(path, sizeof(path), "%s/data/%s", cluster, rel);
	len = read_all(path, &buf);
	ck_assert_uint_eq(len % PAGE, 0);
	copy = malloc(PAGE);
	odd = malloc(PAGE + 1);
	ck_assert(copy && odd);
	for (size_t b = 0; b < len / PAGE; b++)
	{
		uint8_t    *page = buf + b * PAGE;
		uint16_t	stored = pct_page_get_checksum(page);

		if (pct_page_is_new(page))
			continue;
		ck_assert_uint_ne(stored, 0);	/* checksums are on */
		memcpy(copy, page, PAGE);
		ck_assert_msg(pct_page_checksum(page, (uint32_t) b) == stored,
					  "%s block %zu: computed %u, stored %u", rel, b,
					  pct_page_checksum(page, (uint32_t) b), stored);
		/* the page is as it was (pd_checksum restored) */
		ck_assert_mem_eq(page, copy, PAGE);
		/* an unaligned page gives the same result */
		memcpy(odd + 1, page, PAGE);
		ck_assert_uint_eq(pct_page_checksum(odd + 1, (uint32_t) b), stored);
		/* the block number is mixed in */
		ck_assert_uint_ne(pct_page_checksum(page, (uint32_t) b + 1), stored);
		/* the copy compiled for the x86-64 baseline agrees with the one
		 * picked for this CPU (AVX2 where there is one) */
		ck_assert_uint_eq(pct_page_checksum_baseline(page, (uint32_t) b), stored);
		checked++;
	}
	free(buf);
	free(copy);
	free(odd);
	return checked;
}

START_TEST(checksum_real_pages)
{
	int			n;

	/* pg_class (filenode 1259 in template1 after initdb), pg_attribute,
	 * and the shared pg_database */
	n = check_file_checksums("base/1/1259");
	ck_assert_int_gt(n, 0);
	n += check_file_checksums("base/1/1249");
	n += check_file_checksums("global/1262");
	ck_assert_int_gt(n, 10);
}
END_TEST

/*
 * Encrypt every block of pg_class in template1, store PostgreSQL's checksum
 * of the ciphertext, and let the stock pg_checksums verify the cluster
 * offline; a flipped byte without a new checksum must then be caught.
 */
START_TEST(checksum_pg_checksums_accepts)
{
	char		path[4096],
				cmd[8192];
	uint8_t    *buf;
	size_t		len;
	uint8_t		key[32];
	pct_cipher *c;
	int			crypted = 0;

	snprintf(path, sizeof(path), "%s/data/base/1/1259", cluster);
	len = read_all(path, &buf);
	fill(key, sizeof(key), 77);
	ck_assert_int_eq(pct_cipher_new(key, 32, &c), PCT_OK);
	for (size_t b = 0; b < len / PAGE; b++)
	{
		uint8_t    *page = buf + b * PAGE;

		if (pct_page_is_new(page))
			continue;
		ck_assert_int_eq(pct_page_crypt(c, page, (uint32_t) b, false), PCT_OK);
		pct_page_set_checksum(page, pct_page_checksum(page, (uint32_t) b));
		crypted++;
	}
	pct_cipher_free(c);
	ck_assert_int_gt(crypted, 0);
	unit_write_file(path, buf, len, 0600);

	snprintf(cmd, sizeof(cmd),
			 "'%s/pg_checksums' --check -D '%s/data' >'%s/pg_checksums.log' 2>&1",
			 bindir, cluster, cluster);
	ck_assert_msg(run(cmd) == 0, "pg_checksums --check failed on ciphertext; "
				  "see %s/pg_checksums.log", cluster);

	/* negative control */
	buf[PAGE / 2] ^= 0x01;
	unit_write_file(path, buf, len, 0600);
	ck_assert_msg(run(cmd) == 1, "pg_checksums did not catch a flipped byte");
	free(buf);
}
END_TEST

/* ---- micro-benchmark (printed, never asserted) ---- */

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * Each measurement runs over the whole size ROUNDS times and the best
 * round is printed (the machine may be shared).  Pages cycle through a
 * 1 MiB buffer, the bulk engine's I/O size, so the data stays in cache
 * and the numbers are of the computation alone.  The checksum is also
 * timed on an unaligned buffer, which takes the aligned-copy path.
 */
#define ROUNDS 3

typedef enum
{
	BENCH_CRYPT,
	BENCH_CHECKSUM
} bench_kind;

static double
bench_best(bench_kind kind, pct_cipher *c, uint8_t *buf, size_t bufpages,
		   size_t npages)
{
	double		best = 1e30;
	bool		failed = false;
	volatile uint32_t sink = 0;

	for (int r = 0; r < ROUNDS; r++)
	{
		double		t0 = now_sec(),
					t;

		/* No ck_assert in the loop: in fork mode each one that passes
		 * writes a mark to the parent, which would dominate the timing. */
		if (kind == BENCH_CRYPT)
			for (size_t i = 0; i < npages; i++)
				failed |= pct_page_crypt(c, buf + (i % bufpages) * PAGE,
										 (uint32_t) i, false) != PCT_OK;
		else
			for (size_t i = 0; i < npages; i++)
				sink += pct_page_checksum(buf + (i % bufpages) * PAGE,
										  (uint32_t) i);
		t = now_sec() - t0;
		if (t < best)
			best = t;
	}
	ck_assert(!failed);
	(void) sink;
	return best;
}

START_TEST(benchmark)
{
	const char *env = getenv("PCT_BENCH_MB");
	size_t		mb = env ? (size_t) strtoul(env, NULL, 10) :
		RUNNING_ON_VALGRIND ? 4 : 256;
	const size_t bufpages = 128;	/* 1 MiB */
	size_t		npages = mb * 1024 * 1024 / PAGE;
	uint8_t    *buf = aligned_alloc(64, bufpages * PAGE + 64);
	uint8_t		key[32];
	double		t;

	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_gt(npages, 0);
	for (size_t p = 0; p < bufpages; p++)
		make_page(buf + p * PAGE, 0x1000000 + p, (uint32_t) p);

	for (int k = 0; k < 3; k++)
	{
		pct_cipher *c;

		fill(key, sizeof(key), 500 + (uint32_t) k);
		ck_assert_int_eq(pct_cipher_new(key, keylens[k], &c), PCT_OK);
		t = bench_best(BENCH_CRYPT, c, buf, bufpages, npages);
		printf("bench: pct_page_crypt AES-%d: %zu MiB in %.3f s = %.0f MB/s "
			   "(best of %d)\n", keylens[k] * 8, mb, t,
			   (double) npages * PAGE / 1e6 / t, ROUNDS);
		pct_cipher_free(c);
	}
	t = bench_best(BENCH_CHECKSUM, NULL, buf, bufpages, npages);
	printf("bench: pct_page_checksum: %zu MiB in %.3f s = %.0f MB/s "
		   "(best of %d)\n", mb, t, (double) npages * PAGE / 1e6 / t, ROUNDS);
	memmove(buf + 1, buf, bufpages * PAGE);
	t = bench_best(BENCH_CHECKSUM, NULL, buf + 1, bufpages, npages);
	printf("bench: pct_page_checksum, unaligned pages (copy path): %zu MiB "
		   "in %.3f s = %.0f MB/s (best of %d)\n", mb, t,
		   (double) npages * PAGE / 1e6 / t, ROUNDS);
	free(buf);
}
END_TEST

static Suite *
pagecipher_suite(void)
{
	Suite	   *s = suite_create("pagecipher");
	TCase	   *tc;

	tc = tcase_create("cipher");
	tcase_add_loop_test(tc, nist_vectors, 0, 3);
	tcase_add_test(tc, cipher_bad_args);
	tcase_add_test(tc, counter_carry);
	tcase_add_test(tc, cipher_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("page");
	tcase_add_test(tc, lsn_layout);
	tcase_add_test(tc, iv_layout);
	tcase_add_loop_test(tc, page_known_answer, 0, 3);
	tcase_add_test(tc, page_keystream_alignment);
	tcase_add_test(tc, new_page_untouched);
	suite_add_tcase(s, tc);

	tc = tcase_create("checksum");
	tcase_add_checked_fixture(tc, cluster_setup, cluster_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, checksum_real_pages);
	tcase_add_test(tc, checksum_pg_checksums_accepts);
	suite_add_tcase(s, tc);

	tc = tcase_create("benchmark");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, benchmark);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(pagecipher_suite)
