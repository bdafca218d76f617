/*
 * walcipher.c
 *	  The WAL page transform (FORMAT 4).
 *
 * Owns: telling a WAL page in use from one that is not, the clear header
 * length, the IV of a WAL page, and encrypting/decrypting a page in place.
 *
 * Keystream block k covers page bytes 16k..16k+15 whatever the header
 * length, so the first encrypted byte (24 or 40) is in the middle of a
 * keystream block.  pct_wal_crypt_page:
 *	1. builds the IV from the page's clear header;
 *	2. starts the counter at the block holding the first encrypted byte
 *	   (IV + hdr/16, 128-bit big-endian addition);
 *	3. saves the header bytes of that block, XORs from the block's start
 *	   to the end of the page in one pass, and puts the saved bytes back,
 *	   so that the header ends up exactly as it was.
 */
#include "pct_internal.h"

static inline uint16_t
get_u16(const uint8_t *p)
{
	return (uint16_t) (p[0] | p[1] << 8);
}

static inline void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

/* ctr += n, ctr a 128-bit big-endian integer (mod 2^128). */
static void
counter_add(uint8_t ctr[16], uint32_t n)
{
	uint64_t	carry = n;

	for (int i = 15; i >= 0 && carry != 0; i--)
	{
		carry += ctr[i];
		ctr[i] = (uint8_t) carry;
		carry >>= 8;
	}
}

bool
pct_wal_page_in_use(const uint8_t *page, uint16_t magic)
{
	return get_u16(page + PCT_WAL_OFF_MAGIC) == magic;
}

int
pct_wal_header_len(const uint8_t *page)
{
	return (get_u16(page + PCT_WAL_OFF_INFO) & PCT_WAL_XLP_LONG_HEADER) ?
		PCT_WAL_LONG_HEADER_LEN : PCT_WAL_SHORT_HEADER_LEN;
}

void
pct_wal_iv(const uint8_t *page, uint8_t iv[16])
{
	uint64_t	pageaddr = pct_get_u64(page + PCT_WAL_OFF_PAGEADDR);

	put_be32(iv, (uint32_t) (pageaddr >> 32));
	put_be32(iv + 4, (uint32_t) pageaddr);
	put_be32(iv + 8, pct_get_u32(page + PCT_WAL_OFF_TLI));
	put_be32(iv + 12, 0);
}

pct_rc
pct_wal_crypt_page(pct_cipher *c, uint8_t *page, uint16_t magic,
				   bool *in_use)
{
	uint8_t		iv[16];
	uint8_t		saved[16];
	size_t		hdr,
				start;
	pct_rc		rc;

	if (!pct_wal_page_in_use(page, magic))
	{
		if (in_use != NULL)
			*in_use = false;
		return PCT_OK;
	}
	if (in_use != NULL)
		*in_use = true;

	hdr = (size_t) pct_wal_header_len(page);
	start = hdr & ~(size_t) 15;
	pct_wal_iv(page, iv);
	counter_add(iv, (uint32_t) (start / 16));

	memcpy(saved, page + start, hdr - start);
	rc = pct_cipher_ctr(c, iv, page + start, PCT_XLOG_BLCKSZ - start);
	memcpy(page + start, saved, hdr - start);
	return rc;
}

uint16_t
pct_wal_magic(int major)
{
	switch (major)
	{
		case 13:
			return 0xD106;
		case 14:
			return 0xD10D;
		case 15:
			return PCT_WAL_MAGIC_PG15;
		case 16:
			return 0xD113;
	}
	return 0;
}
