/*
 * keyfile.c
 *	  Wrapping and unwrapping of single data-key files (FORMAT 1.2, 1.3).
 *
 * Owns: the two key-file generations.  Generation 1 is AES-256-GCM with the
 * first 16 bytes of the file (key id, counter) as IV; generation 2 is
 * RFC 5649 key wrap with padding.  Both wrap the same 36-byte plaintext (a
 * length and 32 key bytes), which a rewrap keeps exactly.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pct_internal.h"

const char *
pct_keyfile_name(int generation, int id)
{
	if (generation == PCT_GEN1)
		return id == PCT_KEY_RELATION ? PCT_GEN1_FILE_RELATION : PCT_GEN1_FILE_WAL;
	return id == PCT_KEY_RELATION ? PCT_GEN2_FILE_RELATION : PCT_GEN2_FILE_WAL;
}

/*
 * Key length in bytes from the plaintext's length field: generation 2
 * stores bytes; generation 1 files written by that server store bits, and
 * a byte count is accepted too.
 */
static int
plain_keylen(int generation, const uint8_t *plain)
{
	uint32_t	v = pct_get_u32(plain + PCT_KEY_PLAIN_LEN_OFF);

	if (v == 16 || v == 24 || v == 32)
		return (int) v;
	if (generation == PCT_GEN1 && (v == 128 || v == 192 || v == 256))
		return (int) (v / 8);
	return 0;
}

static pct_rc
gen1_unwrap(const char *name, int id, const uint8_t *file, size_t len,
			const uint8_t kek[PCT_KEK_LEN], pct_datakey *dk)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t		tag[PCT_GEN1_TAG_LEN];
	int			outl = 0,
				finl = 0;
	pct_rc		rc = PCT_ERR_KEY;

	if (len < PCT_GEN1_FILE_LEN)
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"key file \"%s\" is damaged: %zu bytes, expected %d",
						name, len, PCT_GEN1_FILE_LEN);
	if (pct_get_u64(file + PCT_GEN1_OFF_ID) != (uint64_t) id)
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"key file \"%s\" is damaged: it holds key id %llu, expected %d",
						name,
						(unsigned long long) pct_get_u64(file + PCT_GEN1_OFF_ID),
						id);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	memcpy(tag, file + PCT_GEN1_OFF_TAG, sizeof(tag));
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, PCT_GEN1_IV_LEN,
							NULL) == 1 &&
		EVP_DecryptInit_ex(ctx, NULL, NULL, kek, file) == 1 &&
		EVP_DecryptUpdate(ctx, dk->plain, &outl, file + PCT_GEN1_OFF_CIPHER,
						  PCT_KEY_PLAIN_LEN) == 1 &&
		outl == PCT_KEY_PLAIN_LEN &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, PCT_GEN1_TAG_LEN,
							tag) == 1 &&
		EVP_DecryptFinal_ex(ctx, dk->plain + outl, &finl) == 1)
		rc = PCT_OK;
	EVP_CIPHER_CTX_free(ctx);
	if (rc != PCT_OK)
	{
		pct_wipe(dk->plain, sizeof(dk->plain));
		return rc;
	}
	dk->counter = pct_get_u64(file + PCT_GEN1_OFF_COUNTER);
	return PCT_OK;
}

static pct_rc
gen1_wrap(const pct_datakey *dk, const uint8_t kek[PCT_KEK_LEN], uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	int			outl = 0,
				finl = 0;
	pct_rc		rc = PCT_ERR_SYS;

	memset(out, 0, PCT_GEN1_FILE_LEN);
	pct_put_u64(out + PCT_GEN1_OFF_ID, (uint64_t) dk->id);
	pct_put_u64(out + PCT_GEN1_OFF_COUNTER, dk->counter);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, PCT_GEN1_IV_LEN,
							NULL) == 1 &&
		EVP_EncryptInit_ex(ctx, NULL, NULL, kek, out) == 1 &&
		EVP_EncryptUpdate(ctx, out + PCT_GEN1_OFF_CIPHER, &outl, dk->plain,
						  PCT_KEY_PLAIN_LEN) == 1 &&
		outl == PCT_KEY_PLAIN_LEN &&
		EVP_EncryptFinal_ex(ctx, out + PCT_GEN1_OFF_CIPHER + outl, &finl) == 1 &&
		finl == 0 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, PCT_GEN1_TAG_LEN,
							out + PCT_GEN1_OFF_TAG) == 1)
		rc = PCT_OK;
	EVP_CIPHER_CTX_free(ctx);
	if (rc != PCT_OK)
		return pct_fail(rc, NULL, NULL, "could not wrap key with AES-256-GCM");
	return PCT_OK;
}

/* One RFC 5649 operation (AES key wrap with padding); see pct_internal.h. */
pct_rc
pct_kwp(bool enc, const uint8_t *kek, int keklen, const uint8_t *in,
		int inlen, uint8_t *out, int outmax, int *outlen)
{
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *ctx;
	uint8_t		buf[1024 + 16];
	int			l1 = 0,
				l2 = 0;
	pct_rc		rc = PCT_ERR_KEY;

	cipher = keklen == 16 ? EVP_aes_128_wrap_pad() :
		keklen == 24 ? EVP_aes_192_wrap_pad() :
		keklen == 32 ? EVP_aes_256_wrap_pad() : NULL;
	if (cipher == NULL || inlen <= 0 || inlen > 1024)
		return PCT_ERR_ARG;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return PCT_ERR_NOMEM;
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	/* The wrap ciphers produce the whole result in one update call. */
	if (EVP_CipherInit_ex(ctx, cipher, NULL, kek, NULL, enc ? 1 : 0) == 1 &&
		EVP_CipherUpdate(ctx, buf, &l1, in, inlen) == 1 &&
		l1 > 0 && l1 <= outmax &&
		EVP_CipherFinal_ex(ctx, buf + l1, &l2) == 1 && l2 == 0)
	{
		memcpy(out, buf, (size_t) l1);
		*outlen = l1;
		rc = PCT_OK;
	}
	EVP_CIPHER_CTX_free(ctx);
	pct_wipe(buf, sizeof(buf));
	return rc;
}

static pct_rc
gen2_unwrap(const char *name, const uint8_t *file, size_t len,
			const uint8_t kek[PCT_KEK_LEN], pct_datakey *dk)
{
	int			n = 0;

	if (len != PCT_GEN2_FILE_LEN)
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"key file \"%s\" is damaged: %zu bytes, expected %d",
						name, len, PCT_GEN2_FILE_LEN);
	if (pct_kwp(false, kek, PCT_KEK_LEN, file, (int) len, dk->plain,
				PCT_KEY_PLAIN_LEN, &n) != PCT_OK || n != PCT_KEY_PLAIN_LEN)
	{
		pct_wipe(dk->plain, sizeof(dk->plain));
		return PCT_ERR_KEY;
	}
	dk->counter = 0;
	return PCT_OK;
}

pct_rc
pct_keyfile_unwrap(const char *name, int generation, int id,
				   const uint8_t *file, size_t len,
				   const uint8_t kek[PCT_KEK_LEN], pct_datakey *dk)
{
	pct_rc		rc;

	if (name == NULL)
		name = pct_keyfile_name(generation, id);
	memset(dk, 0, sizeof(*dk));
	if (id != PCT_KEY_RELATION && id != PCT_KEY_WAL)
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "invalid key id %d", id);
	if (generation == PCT_GEN1)
		rc = gen1_unwrap(name, id, file, len, kek, dk);
	else if (generation == PCT_GEN2)
		rc = gen2_unwrap(name, file, len, kek, dk);
	else
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"invalid key file generation %d", generation);
	if (rc == PCT_ERR_KEY)
		return pct_fail(rc, NULL,
						"Check that the cluster key command prints the key of this cluster.",
						"could not unwrap key file \"%s\": wrong cluster key or damaged key file",
						name);
	if (rc != PCT_OK)
		return rc;
	dk->generation = generation;
	dk->id = id;
	dk->keylen = plain_keylen(generation, dk->plain);
	if (dk->keylen == 0)
	{
		uint32_t	v = pct_get_u32(dk->plain);

		pct_wipe(dk, sizeof(*dk));
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"key file \"%s\" holds an invalid key length %u",
						name, v);
	}
	return PCT_OK;
}

pct_rc
pct_keyfile_wrap(const pct_datakey *dk, const uint8_t kek[PCT_KEK_LEN],
				 uint8_t *out, size_t *outlen)
{
	int			n = 0;

	if (dk->generation == PCT_GEN1)
	{
		pct_rc		rc = gen1_wrap(dk, kek, out);

		*outlen = rc == PCT_OK ? PCT_GEN1_FILE_LEN : 0;
		return rc;
	}
	if (dk->generation != PCT_GEN2)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"invalid key file generation %d", dk->generation);
	if (pct_kwp(true, kek, PCT_KEK_LEN, dk->plain, PCT_KEY_PLAIN_LEN, out,
				PCT_GEN2_FILE_LEN, &n) != PCT_OK || n != PCT_GEN2_FILE_LEN)
		return pct_fail(PCT_ERR_SYS, NULL, NULL,
						"could not wrap key with AES-256 key wrap");
	*outlen = PCT_GEN2_FILE_LEN;
	return PCT_OK;
}

pct_rc
pct_datakey_generate(int id, int keylen, pct_datakey *dk)
{
	if (keylen != 16 && keylen != 24 && keylen != 32)
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "invalid key length %d",
						keylen);
	memset(dk, 0, sizeof(*dk));
	dk->generation = PCT_GEN2;
	dk->id = id;
	dk->keylen = keylen;
	pct_put_u32(dk->plain + PCT_KEY_PLAIN_LEN_OFF, (uint32_t) keylen);
	if (RAND_bytes(dk->plain + PCT_KEY_PLAIN_KEY_OFF, keylen) != 1)
	{
		pct_wipe(dk, sizeof(*dk));
		return pct_fail(PCT_ERR_SYS, NULL, NULL,
						"could not generate a random key");
	}
	return PCT_OK;
}
