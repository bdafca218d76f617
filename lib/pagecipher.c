/*
 * pagecipher.c
 *	  AES-CTR under a data key, and the relation page transform (FORMAT 3).
 *
 * Owns: pct_cipher (one OpenSSL EVP AES-CTR context per data key and
 * thread), the IV of a relation page, encrypting/decrypting a page in
 * place, and the page header fields the bulk engine reads and writes
 * (pd_lsn, pd_checksum).  The checksum algorithm itself is PostgreSQL's and
 * lives in checksum.c.
 *
 * Theory of operation of the hot path (pct_cipher_ctr):
 *	1. pct_cipher_new() sets the cipher and key schedule once; the context
 *	   then lives as long as the pct_cipher.
 *	2. Each call resets only the IV (EVP_EncryptInit_ex with everything else
 *	   NULL), which also discards any partial-block state of the previous
 *	   call, and XORs the data in place with EVP_EncryptUpdate.  Nothing is
 *	   allocated per call.
 *	3. OpenSSL's CTR mode treats the whole 16-byte IV as one 128-bit
 *	   big-endian counter incremented per block, carrying through all 128
 *	   bits, which is what FORMAT 3 and 4 require (the unit tests prove it
 *	   across the 32-, 64- and 96-bit boundaries).
 *
 * The pct_cipher struct is in secure memory.  The expanded key schedule is
 * inside the EVP context, which OpenSSL allocates on its own heap and
 * cleanses when the context is freed.
 */
#include <limits.h>

#include <openssl/evp.h>

#include "pct_internal.h"

struct pct_cipher
{
	EVP_CIPHER_CTX *ctx;		/* key schedule set once; IV per call */
	int			keylen;			/* bytes: 16, 24 or 32 */
};

pct_rc
pct_cipher_new(const uint8_t *key, int keylen, pct_cipher **out)
{
	const char *name;
	EVP_CIPHER *cipher;
	pct_cipher *c;

	if (out == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"no place to return the cipher");
	*out = NULL;
	switch (keylen)
	{
		case 16:
			name = "AES-128-CTR";
			break;
		case 24:
			name = "AES-192-CTR";
			break;
		case 32:
			name = "AES-256-CTR";
			break;
		default:
			return pct_fail(PCT_ERR_ARG, NULL, NULL,
							"invalid data key length %d bytes", keylen);
	}
	if (key == NULL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "no data key given");

	c = pct_secure_alloc(sizeof(*c));
	if (c == NULL)
		return PCT_ERR_NOMEM;	/* reported by pct_secure_alloc */
	c->keylen = keylen;
	c->ctx = EVP_CIPHER_CTX_new();
	if (c->ctx == NULL)
	{
		pct_secure_free(c, sizeof(*c));
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	}

	/* Fetch explicitly (no implicit fetch later); the context keeps its
	 * own reference, so ours is dropped at once. */
	cipher = EVP_CIPHER_fetch(NULL, name, NULL);
	if (cipher == NULL ||
		EVP_EncryptInit_ex(c->ctx, cipher, NULL, key, NULL) != 1)
	{
		EVP_CIPHER_free(cipher);
		pct_cipher_free(c);
		return pct_fail(PCT_ERR_SYS, NULL, NULL,
						"could not set up %s", name);
	}
	EVP_CIPHER_free(cipher);
	*out = c;
	return PCT_OK;
}

void
pct_cipher_free(pct_cipher *c)
{
	if (c == NULL)
		return;
	/* EVP_CIPHER_CTX_free cleanses the key schedule. */
	EVP_CIPHER_CTX_free(c->ctx);
	pct_secure_free(c, sizeof(*c));
}

pct_rc
pct_cipher_ctr(pct_cipher *c, const uint8_t iv[16], uint8_t *data, size_t len)
{
	/* The largest multiple of 16 an int holds; chunks of it keep the
	 * keystream contiguous across EVP_EncryptUpdate calls anyway. */
	const size_t chunk_max = (size_t) INT_MAX & ~(size_t) 15;
	int			outl;

	if (c == NULL || iv == NULL || (data == NULL && len > 0))
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"invalid arguments to AES-CTR");
	if (EVP_EncryptInit_ex(c->ctx, NULL, NULL, NULL, iv) != 1)
		return pct_fail(PCT_ERR_SYS, NULL, NULL,
						"could not set the AES-CTR counter");
	while (len > 0)
	{
		size_t		n = len < chunk_max ? len : chunk_max;

		if (EVP_EncryptUpdate(c->ctx, data, &outl, data, (int) n) != 1 ||
			outl != (int) n)
			return pct_fail(PCT_ERR_SYS, NULL, NULL,
							"AES-CTR encryption failed");
		data += n;
		len -= n;
	}
	return PCT_OK;
}

uint64_t
pct_page_get_lsn(const uint8_t *page)
{
	/* PageXLogRecPtr: xlogid (high word) then xrecoff, each u32 LE. */
	return (uint64_t) pct_get_u32(page + PCT_PAGE_OFF_LSN) << 32 |
		pct_get_u32(page + PCT_PAGE_OFF_LSN + 4);
}

void
pct_page_set_lsn(uint8_t *page, uint64_t lsn)
{
	pct_put_u32(page + PCT_PAGE_OFF_LSN, (uint32_t) (lsn >> 32));
	pct_put_u32(page + PCT_PAGE_OFF_LSN + 4, (uint32_t) lsn);
}

static inline uint16_t
get_u16(const uint8_t *p)
{
	return (uint16_t) (p[0] | p[1] << 8);
}

bool
pct_page_is_new(const uint8_t *page)
{
	return get_u16(page + PCT_PAGE_OFF_UPPER) == 0;
}

uint16_t
pct_page_get_checksum(const uint8_t *page)
{
	return get_u16(page + PCT_PAGE_OFF_CHECKSUM);
}

void
pct_page_set_checksum(uint8_t *page, uint16_t sum)
{
	page[PCT_PAGE_OFF_CHECKSUM] = (uint8_t) sum;
	page[PCT_PAGE_OFF_CHECKSUM + 1] = (uint8_t) (sum >> 8);
}

void
pct_page_iv(const uint8_t *page, uint32_t blkno, bool unlogged,
			uint8_t iv[16])
{
	/* 0..7: the stored pd_lsn bytes as they are, not the 64-bit value. */
	memcpy(iv, page + PCT_PAGE_OFF_LSN, 8);
	pct_put_u32(iv + PCT_PAGE_IV_OFF_BLOCK, blkno);
	iv[PCT_PAGE_IV_OFF_FLAGS] = unlogged ? PCT_PAGE_IV_UNLOGGED : 0;
	iv[13] = iv[14] = iv[15] = 0;
}

pct_rc
pct_page_crypt(pct_cipher *c, uint8_t *page, uint32_t blkno, bool unlogged)
{
	uint8_t		iv[16];

	if (pct_page_is_new(page))
		return PCT_OK;
	pct_page_iv(page, blkno, unlogged, iv);
	/* Keystream block 0 covers page bytes 16..31. */
	return pct_cipher_ctr(c, iv, page + PCT_PAGE_CLEAR_LEN,
						  PCT_BLCKSZ - PCT_PAGE_CLEAR_LEN);
}
