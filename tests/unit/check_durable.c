/*
 * check_durable.c
 *	  Unit tests of durable.c: durable new files, renames, removal, small
 *	  file reads, and the fault-injection hook.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "lib/pct_internal.h"

static char *dir;

static void
setup(void)
{
	dir = unit_mkdtemp();
	unit_capture_log();
	pct_set_sync(true);
}

static void
teardown(void)
{
	unit_rmtree(dir);
	free(dir);
}

START_TEST(write_is_atomic_and_exact)
{
	char		p[4096],
				buf[64];
	struct stat st;

	snprintf(p, sizeof(p), "%s/f", dir);
	umask(0);					/* the mode must not depend on the umask */
	ck_assert_int_eq(pct_durable_write(p, "hello", 5, 0640), PCT_OK);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	ck_assert_uint_eq(unit_read_file(p, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	/* replacing keeps no temp file behind */
	ck_assert_int_eq(pct_durable_write(p, "bye", 3, 0600), PCT_OK);
	ck_assert_uint_eq(unit_read_file(p, buf, sizeof(buf)), 3);
	snprintf(buf, sizeof(buf), "%s/f.tmp.%d", dir, (int) getpid());
	ck_assert_int_ne(access(buf, F_OK), 0);
	/* a directory that does not exist: an error naming the temp file */
	snprintf(p, sizeof(p), "%s/nodir/f", dir);
	ck_assert_int_eq(pct_durable_write(p, "x", 1, 0600), PCT_ERR_SYS);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "could not create file"));
}
END_TEST

START_TEST(rename_remove_rmtree)
{
	char		a[4096],
				b[4096],
				sub[4096],
				link[4096],
				outside[4096];

	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	ck_assert_int_eq(pct_durable_mkdir(a, 0700), PCT_OK);
	snprintf(sub, sizeof(sub), "%s/a/x", dir);
	unit_write_file(sub, "1", 1, 0600);
	ck_assert_int_eq(pct_durable_rename(a, b), PCT_OK);
	ck_assert_int_ne(access(a, F_OK), 0);
	snprintf(sub, sizeof(sub), "%s/b/x", dir);
	ck_assert_int_eq(access(sub, F_OK), 0);
	/* rmtree removes symlinks, never what they point at */
	snprintf(outside, sizeof(outside), "%s/keep", dir);
	unit_write_file(outside, "k", 1, 0600);
	snprintf(link, sizeof(link), "%s/b/link", dir);
	ck_assert_int_eq(symlink(outside, link), 0);
	snprintf(sub, sizeof(sub), "%s/b/deeper", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_int_eq(pct_durable_rmtree(b), PCT_OK);
	ck_assert_int_ne(access(b, F_OK), 0);
	ck_assert_int_eq(access(outside, F_OK), 0);
	ck_assert_int_eq(pct_durable_remove(outside), PCT_OK);
	ck_assert_int_ne(access(outside, F_OK), 0);
	ck_assert_int_eq(pct_durable_remove(outside), PCT_ERR_SYS);
	ck_assert_int_eq(pct_durable_rename(a, b), PCT_ERR_SYS);
}
END_TEST

START_TEST(read_file_limits)
{
	char		p[4096],
				buf[16];
	size_t		len;

	snprintf(p, sizeof(p), "%s/r", dir);
	unit_write_file(p, "0123456789", 10, 0600);
	ck_assert_int_eq(pct_read_file(p, buf, 10, &len), PCT_OK);
	ck_assert_uint_eq(len, 10);
	/* one byte more than allowed is an error, not a silent cut */
	ck_assert_int_eq(pct_read_file(p, buf, 9, &len), PCT_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "larger than 9 bytes"));
	/* symlinks are not followed */
	snprintf(buf, sizeof(buf), "l");
	{
		char		l[4096];

		snprintf(l, sizeof(l), "%s/l", dir);
		ck_assert_int_eq(symlink(p, l), 0);
		ck_assert_int_eq(pct_read_file(l, buf, 10, &len), PCT_ERR_SYS);
	}
}
END_TEST

START_TEST(fault_hook_stops_after_step)
{
	pid_t		pid;
	int			status;
	char		p[4096];

	snprintf(p, sizeof(p), "%s/step", dir);
	pid = fork();
	if (pid == 0)
	{
		setenv("PCT_FAULT_STEP", "2", 1);
		pct_durable_step("one");
		unit_write_file(p, "1", 1, 0600);
		pct_durable_step("two");
		/* never reached */
		unit_write_file(p, "3", 1, 0600);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), PCT_FAULT_EXIT);
	{
		char		buf[4];

		ck_assert_uint_eq(unit_read_file(p, buf, sizeof(buf)), 1);
		ck_assert_int_eq(buf[0], '1');
	}
	/* without the hook, steps only count */
	unsetenv("PCT_FAULT_STEP");
	{
		int			a = pct_durable_step("x"),
					b = pct_durable_step("y");

		ck_assert_int_eq(b, a + 1);
	}
}
END_TEST

START_TEST(no_sync_mode)
{
	char		p[4096];

	pct_set_sync(false);
	ck_assert(!pct_sync_enabled());
	snprintf(p, sizeof(p), "%s/n", dir);
	ck_assert_int_eq(pct_durable_write(p, "n", 1, 0600), PCT_OK);
	/* fsync of a missing path is not even tried without sync */
	ck_assert_int_eq(pct_fsync_path("/nonexistent/x", false), PCT_OK);
	pct_set_sync(true);
	ck_assert_int_eq(pct_fsync_path("/nonexistent/x", false), PCT_ERR_SYS);
}
END_TEST

static Suite *
durable_suite(void)
{
	Suite	   *s = suite_create("durable");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, write_is_atomic_and_exact);
	tcase_add_test(tc, rename_remove_rmtree);
	tcase_add_test(tc, read_file_limits);
	tcase_add_test(tc, fault_hook_stops_after_step);
	tcase_add_test(tc, no_sync_mode);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(durable_suite)
