/*
 * check_secmem.c
 *	  Unit tests of secmem.c and log.c: secure allocations, wiping,
 *	  constant-time comparison, core dumps off; the log callback and the
 *	  result texts.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "unit.h"
#include "lib/pct_internal.h"

START_TEST(alloc_wipe_registry)
{
	uint8_t    *p = pct_secure_alloc(100);
	uint8_t    *q = pct_secure_alloc(5000);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(q);
	/* page-aligned and zeroed */
	ck_assert_int_eq((uintptr_t) p % 4096, 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(p[i], 0);
	memset(p, 0xAA, 100);
	memset(q, 0xBB, 5000);
	/* every live allocation is wiped in one call (the tools' atexit) */
	pct_secure_wipe_all();
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(p[i], 0);
	for (int i = 0; i < 5000; i++)
		ck_assert_int_eq(q[i], 0);
	pct_secure_free(p, 100);
	memset(q, 0xCC, 10);
	pct_secure_free(q, 5000);
	/* freed memory is no longer tracked: wiping all again is harmless */
	pct_secure_wipe_all();
	pct_secure_free(NULL, 10);
}
END_TEST

START_TEST(wipe_and_compare)
{
	uint8_t		a[32],
				b[32];

	memset(a, 7, sizeof(a));
	memcpy(b, a, sizeof(b));
	ck_assert(pct_ct_equal(a, b, sizeof(a)));
	b[31] ^= 1;
	ck_assert(!pct_ct_equal(a, b, sizeof(a)));
	b[31] ^= 1;
	b[0] ^= 0x80;
	ck_assert(!pct_ct_equal(a, b, sizeof(a)));
	pct_wipe(a, sizeof(a));
	for (size_t i = 0; i < sizeof(a); i++)
		ck_assert_int_eq(a[i], 0);
}
END_TEST

START_TEST(core_dumps_off)
{
	struct rlimit rl;

	ck_assert_int_eq(pct_disable_core_dumps(), PCT_OK);
	ck_assert_int_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	ck_assert_uint_eq(rl.rlim_cur, 0);
	ck_assert_int_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
}
END_TEST

START_TEST(log_callback_and_texts)
{
	unit_capture_log();
	ck_assert_int_eq(pct_fail(PCT_ERR_STATE, "the detail", "the hint",
							  "thing %d failed", 42), PCT_ERR_STATE);
	ck_assert_str_eq(unit_last_error(), "thing 42 failed");
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "the detail"));
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "the hint"));
	errno = ENOENT;
	ck_assert_int_eq(pct_syserr("could not open \"%s\"", "x"), PCT_ERR_SYS);
	ck_assert_str_eq(unit_last_error(), "could not open \"x\": No such file or directory");
	errno = ENOMEM;
	ck_assert_int_eq(pct_syserr("alloc"), PCT_ERR_NOMEM);
	/* paths that do not fit are refused, not cut */
	{
		char		buf[PCT_MAXPATH],
					big[PCT_MAXPATH + 10];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ck_assert_int_eq(pct_path(buf, "%s", big), PCT_ERR_ARG);
		ck_assert_int_eq(pct_path(buf, "%s/%s", "a", "b"), PCT_OK);
		ck_assert_str_eq(buf, "a/b");
	}
	for (int rc = PCT_OK; rc <= PCT_ERR_STOPPED; rc++)
		ck_assert_str_ne(pct_rc_str((pct_rc) rc), "unknown error");
	ck_assert_str_eq(pct_rc_str(PCT_ERR_KEY), "wrong cluster key or damaged key file");
	/* without a callback nothing happens */
	pct_set_log(NULL, NULL);
	pct_report(PCT_LOG_ERROR, NULL, NULL, "dropped");
}
END_TEST

static Suite *
secmem_suite(void)
{
	Suite	   *s = suite_create("secmem and log");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, alloc_wipe_registry);
	tcase_add_test(tc, wipe_and_compare);
	tcase_add_test(tc, core_dumps_off);
	tcase_add_test(tc, log_callback_and_texts);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(secmem_suite)
