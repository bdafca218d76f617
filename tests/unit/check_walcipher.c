/*
 * check_walcipher.c
 *	  Unit tests of walcipher.c (FORMAT 4).
 *
 * Known answers are computed here by a separate route: the IV is built
 * from the FORMAT text, the keystream is AES-ECB of each counter block
 * (OpenSSL EVP, no CTR mode) with the counter incremented by hand as a
 * 128-bit big-endian integer, and byte i of the page (i >= header length)
 * is XORed with keystream byte i.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "unit.h"

#define WPAGE PCT_XLOG_BLCKSZ

static const int keylens[3] = {16, 24, 32};

/* ---- the reference route ---- */

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

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

/* A WAL page in use: patterned, with the header fields set. */
static void
make_wal_page(uint8_t *page, uint16_t info, uint32_t tli, uint64_t pageaddr,
			  uint32_t seed)
{
	fill(page, WPAGE, seed);
	put_le16(page + 0, PCT_WAL_MAGIC_PG15);
	put_le16(page + 2, info);
	put_le32(page + 4, tli);
	put_le64(page + 8, pageaddr);
}

/* The IV from the FORMAT text: pageaddr BE, tli BE, 4 zero bytes. */
static void
ref_iv(uint64_t pageaddr, uint32_t tli, uint8_t iv[16])
{
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t) (pageaddr >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		iv[8 + i] = (uint8_t) (tli >> (24 - 8 * i));
	memset(iv + 12, 0, 4);
}

/* ---- tests ---- */

START_TEST(in_use_and_header_len)
{
	uint8_t		page[WPAGE];

	memset(page, 0, sizeof(page));
	ck_assert(!pct_wal_page_in_use(page, PCT_WAL_MAGIC_PG15));
	page[0] = 0x10;
	page[1] = 0xD1;				/* 0xD110 little-endian */
	ck_assert(pct_wal_page_in_use(page, PCT_WAL_MAGIC_PG15));
	ck_assert(!pct_wal_page_in_use(page, 0xD10D));	/* PostgreSQL 14 */
	page[0] = 0xD1;
	page[1] = 0x10;				/* big-endian is not it */
	ck_assert(!pct_wal_page_in_use(page, PCT_WAL_MAGIC_PG15));

	put_le16(page + 2, 0x0000);
	ck_assert_int_eq(pct_wal_header_len(page), 24);
	put_le16(page + 2, 0x0002);
	ck_assert_int_eq(pct_wal_header_len(page), 40);
	put_le16(page + 2, 0x0007);	/* CONTRECORD | LONG | BKP_REMOVABLE */
	ck_assert_int_eq(pct_wal_header_len(page), 40);
	put_le16(page + 2, 0x0005);	/* CONTRECORD | BKP_REMOVABLE */
	ck_assert_int_eq(pct_wal_header_len(page), 24);
	put_le16(page + 2, 0x0200);	/* 0x02 in the high byte is not it */
	ck_assert_int_eq(pct_wal_header_len(page), 24);
}
END_TEST

START_TEST(iv_layout)
{
	uint8_t		page[WPAGE];
	uint8_t		iv[16];
	static const uint8_t expect[16] = {
		0x00, 0x00, 0x00, 0x0a, 0x01, 0x23, 0x40, 0x00,
		0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00
	};
	static const uint8_t expect2[16] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x20, 0x00,
		0xa1, 0xb2, 0xc3, 0xd4, 0x00, 0x00, 0x00, 0x00
	};

	make_wal_page(page, 0, 3, UINT64_C(0x0000000A01234000), 1);
	/* the header as stored: pageaddr at 8 little-endian, tli at 4 */
	ck_assert_mem_eq(page + 8, "\x00\x40\x23\x01\x0a\x00\x00\x00", 8);
	ck_assert_mem_eq(page + 4, "\x03\x00\x00\x00", 4);
	memset(iv, 0x55, sizeof(iv));
	pct_wal_iv(page, iv);
	ck_assert_mem_eq(iv, expect, 16);

	make_wal_page(page, 2, 0xa1b2c3d4, UINT64_C(0x0102030405062000), 2);
	memset(iv, 0x55, sizeof(iv));
	pct_wal_iv(page, iv);
	ck_assert_mem_eq(iv, expect2, 16);
}
END_TEST

/*
 * Encrypt pages with short and long headers under all key lengths and
 * compare with the reference: header untouched, byte i XORed with
 * keystream byte i.
 */
START_TEST(known_answer)
{
	static const struct
	{
		uint16_t	info;
		uint32_t	tli;
		uint64_t	pageaddr;
	}			cases[] = {
		{0x0002, 1, UINT64_C(0x0000000001000000)},	/* first page of a segment */
		{0x0000, 1, UINT64_C(0x0000000001002000)},
		{0x0001, 2, UINT64_C(0x00000003FF7FE000)},	/* contrecord */
		{0x0006, 7, UINT64_C(0x0000000500000000)},	/* long + removable */
		{0x0000, 0xFFFFFFFF, UINT64_C(0xFFFFFFFFFFFFE000)},
	};
	int			k = _i;
	int			keylen = keylens[k];
	uint8_t		key[32],
				iv[16];
	uint8_t    *plain = malloc(WPAGE),
			   *page = malloc(WPAGE),
			   *ks = malloc(WPAGE);
	pct_cipher *c;

	ck_assert(plain && page && ks);
	fill(key, sizeof(key), 200 + (uint32_t) k);
	ck_assert_int_eq(pct_cipher_new(key, keylen, &c), PCT_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		int			hdr = (cases[i].info & 0x0002) ? 40 : 24;
		bool		in_use = false;

		make_wal_page(plain, cases[i].info, cases[i].tli, cases[i].pageaddr,
					  300 + (uint32_t) i);
		ref_iv(cases[i].pageaddr, cases[i].tli, iv);
		ref_keystream(key, keylen, iv, ks, WPAGE / 16);

		memcpy(page, plain, WPAGE);
		ck_assert_int_eq(pct_wal_crypt_page(c, page, PCT_WAL_MAGIC_PG15,
											&in_use), PCT_OK);
		ck_assert(in_use);
		ck_assert_int_eq(pct_wal_header_len(page), hdr);
		/* the header stays clear */
		ck_assert_mem_eq(page, plain, (size_t) hdr);
		/* every other byte i is XORed with keystream byte i */
		for (int b = hdr; b < WPAGE; b++)
			if (page[b] != (plain[b] ^ ks[b]))
				ck_abort_msg("keylen %d case %zu: byte %d differs", keylen, i, b);

		/* round trip */
		ck_assert_int_eq(pct_wal_crypt_page(c, page, PCT_WAL_MAGIC_PG15,
											NULL), PCT_OK);
		ck_assert_mem_eq(page, plain, WPAGE);
	}
	pct_cipher_free(c);
	free(plain);
	free(page);
	free(ks);
}
END_TEST

/*
 * Keystream alignment spelled out: byte 24 of a short-header page is XORed
 * with byte 8 of keystream block 1 (counter IV+1); byte 40 of a long-header
 * page with byte 8 of block 2 (IV+2); byte 39 is clear.
 */
START_TEST(keystream_alignment)
{
	uint8_t		key[16],
				iv[16],
				ctr[16],
				ks[16];
	uint8_t    *plain = malloc(WPAGE),
			   *page = malloc(WPAGE);
	pct_cipher *c;

	ck_assert(plain && page);
	fill(key, sizeof(key), 5);
	ck_assert_int_eq(pct_cipher_new(key, 16, &c), PCT_OK);

	/* short header */
	make_wal_page(plain, 0, 1, UINT64_C(0x0000000001002000), 6);
	memcpy(page, plain, WPAGE);
	ck_assert_int_eq(pct_wal_crypt_page(c, page, PCT_WAL_MAGIC_PG15, NULL),
					 PCT_OK);
	ref_iv(UINT64_C(0x0000000001002000), 1, iv);
	memcpy(ctr, iv, 16);
	ref_inc(ctr);				/* block 1 */
	ck_assert_mem_eq(ctr, "\x00\x00\x00\x00\x01\x00\x20\x00"
					 "\x00\x00\x00\x01\x00\x00\x00\x01", 16);
	ref_keystream(key, 16, ctr, ks, 1);
	ck_assert_mem_eq(page, plain, 24);
	ck_assert_uint_eq(page[24], plain[24] ^ ks[8]);
	ck_assert_uint_eq(page[31], plain[31] ^ ks[15]);

	/* long header */
	make_wal_page(plain, 2, 1, UINT64_C(0x0000000001000000), 7);
	memcpy(page, plain, WPAGE);
	ck_assert_int_eq(pct_wal_crypt_page(c, page, PCT_WAL_MAGIC_PG15, NULL),
					 PCT_OK);
	ref_iv(UINT64_C(0x0000000001000000), 1, iv);
	memcpy(ctr, iv, 16);
	ref_inc(ctr);
	ref_inc(ctr);				/* block 2 */
	ref_keystream(key, 16, ctr, ks, 1);
	ck_assert_mem_eq(page, plain, 40);
	ck_assert_uint_eq(page[40], plain[40] ^ ks[8]);
	ck_assert_uint_eq(page[47], plain[47] ^ ks[15]);

	pct_cipher_free(c);
	free(plain);
	free(page);
}
END_TEST

/* Pages not in use (zeros, preallocated, another version's magic, our
 * magic asked of another version) are left exactly as they are. */
START_TEST(not_in_use_untouched)
{
	uint8_t		key[32];
	uint8_t    *plain = malloc(WPAGE),
			   *page = malloc(WPAGE);
	pct_cipher *c;
	bool		in_use = true;

	ck_assert(plain && page);
	fill(key, sizeof(key), 8);
	ck_assert_int_eq(pct_cipher_new(key, 32, &c), PCT_OK);

	memset(page, 0, WPAGE);
	ck_assert_int_eq(pct_wal_crypt_page(c, page, PCT_WAL_MAGIC_PG15, &in_use),
					 PCT_OK);
	ck_assert(!in_use);
	for (int i = 0; i < WPAGE; i++)
		ck_assert_uint_eq(page[i], 0);

	make_wal_page(plain, 2, 1, 0x1000000, 9);
	put_le16(plain, 0xD10D);	/* PostgreSQL 14 */
	memcpy(page, plain, WPAGE);
	in_use = true;
	ck_assert_int_eq(pct_wal_crypt_page(c, page, PCT_WAL_MAGIC_PG15, &in_use),
					 PCT_OK);
	ck_assert(!in_use);
	ck_assert_mem_eq(page, plain, WPAGE);

	make_wal_page(plain, 0, 1, 0x1002000, 10);
	memcpy(page, plain, WPAGE);
	in_use = true;
	ck_assert_int_eq(pct_wal_crypt_page(c, page, 0xD10D, &in_use), PCT_OK);
	ck_assert(!in_use);
	ck_assert_mem_eq(page, plain, WPAGE);

	/* NULL in_use is allowed */
	ck_assert_int_eq(pct_wal_crypt_page(c, page, 0xD10D, NULL), PCT_OK);
	ck_assert_mem_eq(page, plain, WPAGE);

	pct_cipher_free(c);
	free(plain);
	free(page);
}
END_TEST

/* The IV comes from the page itself: a page copied to another place (a
 * recycled or archived segment) decrypts the same; another tli or page
 * address gives another ciphertext. */
START_TEST(iv_from_header)
{
	uint8_t		key[24];
	uint8_t    *plain = malloc(WPAGE),
			   *a = malloc(WPAGE),
			   *b = malloc(WPAGE);
	pct_cipher *c;

	ck_assert(plain && a && b);
	fill(key, sizeof(key), 11);
	ck_assert_int_eq(pct_cipher_new(key, 24, &c), PCT_OK);
	make_wal_page(plain, 0, 1, 0x1002000, 12);

	memcpy(a, plain, WPAGE);
	ck_assert_int_eq(pct_wal_crypt_page(c, a, PCT_WAL_MAGIC_PG15, NULL), PCT_OK);
	memcpy(b, plain, WPAGE);
	put_le32(b + 4, 2);			/* another timeline */
	ck_assert_int_eq(pct_wal_crypt_page(c, b, PCT_WAL_MAGIC_PG15, NULL), PCT_OK);
	ck_assert(memcmp(a + 24, b + 24, WPAGE - 24) != 0);
	memcpy(b, plain, WPAGE);
	put_le64(b + 8, 0x1004000);	/* another page address */
	ck_assert_int_eq(pct_wal_crypt_page(c, b, PCT_WAL_MAGIC_PG15, NULL), PCT_OK);
	ck_assert(memcmp(a + 24, b + 24, WPAGE - 24) != 0);

	/* a fresh cipher object (another worker) decrypts it */
	pct_cipher_free(c);
	ck_assert_int_eq(pct_cipher_new(key, 24, &c), PCT_OK);
	ck_assert_int_eq(pct_wal_crypt_page(c, a, PCT_WAL_MAGIC_PG15, NULL), PCT_OK);
	ck_assert_mem_eq(a, plain, WPAGE);

	pct_cipher_free(c);
	free(plain);
	free(a);
	free(b);
}
END_TEST

START_TEST(magic_per_version)
{
	/* PostgreSQL 15's XLOG_PAGE_MAGIC (access/xlog_internal.h) */
	ck_assert_uint_eq(pct_wal_magic(15), 0xD110);
	ck_assert_uint_eq(pct_wal_magic(15), PCT_WAL_MAGIC_PG15);
	ck_assert_uint_eq(pct_wal_magic(13), 0xD106);
	ck_assert_uint_eq(pct_wal_magic(16), 0xD113);
	/* other versions are not supported */
	ck_assert_uint_eq(pct_wal_magic(12), 0);
	ck_assert_uint_eq(pct_wal_magic(17), 0);
}
END_TEST

static Suite *
walcipher_suite(void)
{
	Suite	   *s = suite_create("walcipher");
	TCase	   *tc = tcase_create("wal");

	tcase_add_test(tc, magic_per_version);
	tcase_add_test(tc, in_use_and_header_len);
	tcase_add_test(tc, iv_layout);
	tcase_add_loop_test(tc, known_answer, 0, 3);
	tcase_add_test(tc, keystream_alignment);
	tcase_add_test(tc, not_in_use_untouched);
	tcase_add_test(tc, iv_from_header);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(walcipher_suite)
