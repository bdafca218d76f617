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

/* Longest path the library builds (PostgreSQL's MAXPGPATH). */
#define PCT_MAXPATH 1024

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
