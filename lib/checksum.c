/*
 * checksum.c
 *	  PostgreSQL's data page checksum, compiled from PostgreSQL's own source.
 *
 * Owns: pct_page_checksum only.  storage/checksum_impl.h is the server's
 * implementation, shipped precisely so that programs outside the server
 * (pg_checksums, pg_upgrade, ...) can include it; it defines
 * pg_checksum_page(), which this file wraps.  The Makefile compiles this
 * unit alone with -O3 and the server headers, so that the inner FNV loop
 * is unrolled and vectorised as in the server.
 *
 * Rules of this unit:
 *	- postgres_fe.h comes first, as in every PostgreSQL frontend file.
 *	- pg_checksum_page is renamed (macro below) so that the library exports
 *	  only pct_ symbols; PostgreSQL's declaration in storage/checksum.h and
 *	  its definition are renamed alike.
 *	- port.h redirects printf-family and strerror-family calls to
 *	  libpgport, which the library does not link; so nothing here calls
 *	  libc beyond memcpy.
 *	- pg_cryptokeys.h comes after the PostgreSQL headers; it defines only
 *	  PCT_/pct_ names, and the static assertions below check that its
 *	  layout facts agree with the server's.
 */
#define pg_checksum_page pct_pg_checksum_page
#include "postgres_fe.h"
#include "storage/checksum.h"
#include "storage/checksum_impl.h"

#include "pg_cryptokeys.h"
#include "pct_internal.h"

StaticAssertDecl(BLCKSZ == PCT_BLCKSZ, "BLCKSZ differs from PCT_BLCKSZ");
StaticAssertDecl(offsetof(PageHeaderData, pd_lsn) == PCT_PAGE_OFF_LSN,
				 "pd_lsn offset");
StaticAssertDecl(offsetof(PageHeaderData, pd_checksum) == PCT_PAGE_OFF_CHECKSUM,
				 "pd_checksum offset");
StaticAssertDecl(offsetof(PageHeaderData, pd_flags) == PCT_PAGE_OFF_FLAGS,
				 "pd_flags offset");
StaticAssertDecl(offsetof(PageHeaderData, pd_lower) == PCT_PAGE_OFF_LOWER,
				 "pd_lower offset");
StaticAssertDecl(offsetof(PageHeaderData, pd_upper) == PCT_PAGE_OFF_UPPER,
				 "pd_upper offset");
StaticAssertDecl(offsetof(PageHeaderData, pd_special) == PCT_PAGE_CLEAR_LEN,
				 "the clear part of a page is pd_lsn..pd_upper");
StaticAssertDecl(_Alignof(PGChecksummablePage) <= sizeof(uint32),
				 "a 4-byte aligned page is aligned enough");

/*
 * pg_checksum_page() wants a writable, 4-byte aligned page: it sets
 * pd_checksum to zero while it hashes the page and puts the old value back
 * before it returns (PostgreSQL 15, storage/checksum_impl.h).  Our API
 * takes a const page, and keeps that promise as seen by the caller: on
 * return the page holds exactly what it held before.  In between, the two
 * pd_checksum bytes are zero, so the page must be in writable memory and no
 * other thread may read it during the call (the bulk engine owns each
 * buffer in one worker).  A page that is not 4-byte aligned is hashed in an
 * aligned copy instead.
 */
/*
 * The FNV lanes of pg_checksum_block vectorise far better with AVX2 (8 x 32
 * bit multiplies per instruction) than with the x86-64 baseline: measured
 * here, about 30 GB/s against 10.  target_clones compiles this wrapper
 * twice, flatten pulls PostgreSQL's code into each copy, and the loader
 * picks the copy the CPU supports (an ifunc).  The arithmetic is the same
 * integer arithmetic in both, so the result is too (a unit test compares
 * them).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PCT_CHECKSUM_CLONES __attribute__((target_clones("avx2", "default"), flatten))
#else
#define PCT_CHECKSUM_CLONES __attribute__((flatten))
#endif

PCT_CHECKSUM_CLONES
static uint16
checksum_page(char *page, BlockNumber blkno)
{
	return pg_checksum_page(page, blkno);
}

/* The baseline x86-64 code alone, whatever the CPU: for the unit test
 * that the clones agree. */
__attribute__((flatten))
uint16_t
pct_page_checksum_baseline(uint8_t *page, uint32_t blkno)
{
	return pg_checksum_page((char *) page, (BlockNumber) blkno);
}

uint16_t
pct_page_checksum(const uint8_t *page, uint32_t blkno)
{
	if (((uintptr_t) page & (sizeof(uint32) - 1)) != 0)
	{
		PGChecksummablePage copy;

		memcpy(&copy, page, BLCKSZ);
		return checksum_page((char *) &copy, (BlockNumber) blkno);
	}
	return checksum_page((char *) (uintptr_t) page, (BlockNumber) blkno);
}
