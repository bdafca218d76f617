/*
 * check_lock.c
 *	  Unit tests of lock.c: taking, refusing, stale take-over, and the
 *	  OFD-lock test that does not trust PIDs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

static char *pgdata;
static char lockpath[4096];

static void
setup(void)
{
	pgdata = unit_mkdtemp();
	snprintf(lockpath, sizeof(lockpath), "%s/pg_cryptokeys", pgdata);
	ck_assert_int_eq(mkdir(lockpath, 0700), 0);
	snprintf(lockpath, sizeof(lockpath), "%s/pg_cryptokeys/pg_alterckey.pid", pgdata);
	unit_capture_log();
}

static void
teardown(void)
{
	unit_rmtree(pgdata);
	free(pgdata);
}

/* PID of a process that has exited and been reaped. */
static pid_t
dead_pid(void)
{
	pid_t		pid = fork();

	if (pid == 0)
		_exit(0);
	ck_assert_int_gt(pid, 0);
	waitpid(pid, NULL, 0);
	return pid;
}

START_TEST(take_and_release)
{
	pct_lock	lk;
	pid_t		other;
	pct_lock_status st;
	pid_t		pid;
	char		buf[64];
	struct stat sb;
	size_t		n;

	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_OK);
	n = unit_read_file(lockpath, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	snprintf(buf + 32, 32, "%d\n", (int) getpid());
	ck_assert_str_eq(buf, buf + 32);
	ck_assert_int_eq(stat(lockpath, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	/* no temp file is left beside it */
	snprintf(buf, sizeof(buf), ".%d.tmp", (int) getpid());
	{
		char		tmp[4200];

		snprintf(tmp, sizeof(tmp), "%s%s", lockpath, buf);
		ck_assert_int_ne(access(tmp, F_OK), 0);
	}
	ck_assert_int_eq(pct_lock_inspect(pgdata, &st, &pid), PCT_OK);
	ck_assert_int_eq(st, PCT_LOCK_HELD);
	ck_assert_int_eq(pid, getpid());
	ck_assert_int_eq(pct_lock_release(&lk), PCT_OK);
	ck_assert_int_ne(access(lockpath, F_OK), 0);
	ck_assert_int_eq(pct_lock_inspect(pgdata, &st, &pid), PCT_OK);
	ck_assert_int_eq(st, PCT_LOCK_FREE);
}
END_TEST

START_TEST(held_by_live_process)
{
	pct_lock	lk;
	pid_t		other = 0,
				child;
	int			status;

	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_OK);
	child = fork();
	if (child == 0)
	{
		pct_lock	lk2;
		pid_t		o = 0;

		unit_capture_log();
		/* even with take_stale, a running holder is never taken over */
		if (pct_lock_acquire(pgdata, true, &lk2, &o) != PCT_ERR_BUSY)
			_exit(1);
		if (o != getppid())
			_exit(2);
		if (strstr(unit_last_error(), "is held by process") == NULL)
			_exit(3);
		_exit(0);
	}
	waitpid(child, &status, 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(pct_lock_release(&lk), PCT_OK);
}
END_TEST

START_TEST(stale_lock_taken_over)
{
	pct_lock	lk;
	pid_t		other = 0,
				child;
	pct_lock_status st;
	pid_t		pid;
	int			status;

	/* a holder that dies without releasing */
	child = fork();
	if (child == 0)
	{
		pct_lock	lk2;
		pid_t		o;

		_exit(pct_lock_acquire(pgdata, true, &lk2, &o) == PCT_OK ? 0 : 1);
	}
	waitpid(child, &status, 0);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(access(lockpath, F_OK), 0);
	ck_assert_int_eq(pct_lock_inspect(pgdata, &st, &pid), PCT_OK);
	ck_assert_int_eq(st, PCT_LOCK_STALE);
	ck_assert_int_eq(pid, child);
	/* refused without take_stale, nothing changed */
	ck_assert_int_eq(pct_lock_acquire(pgdata, false, &lk, &other), PCT_ERR_STATE);
	ck_assert_int_eq(other, child);
	ck_assert_int_eq(pct_lock_inspect(pgdata, &st, &pid), PCT_OK);
	ck_assert_int_eq(pid, child);
	/* taken over with a warning */
	unit_capture_log();
	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_OK);
	ck_assert_int_eq(other, child);
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "removed stale lock file of process"));
	ck_assert_int_eq(pct_lock_inspect(pgdata, &st, &pid), PCT_OK);
	ck_assert_int_eq(pid, getpid());
	ck_assert_int_eq(pct_lock_release(&lk), PCT_OK);
}
END_TEST

START_TEST(ofd_lock_beats_pid)
{
	pct_lock	lk;
	pid_t		other,
				child,
				dead = dead_pid();
	int			pfd[2],
				status;
	char		c;
	pct_lock_status st;
	pid_t		pid;

	/* A holder is running, but its lock file names a dead PID (as after
	 * PID confusion): the OFD lock still says held. */
	ck_assert_int_eq(pipe(pfd), 0);
	child = fork();
	if (child == 0)
	{
		pct_lock	lk2;
		pid_t		o;
		char		buf[32];
		FILE	   *f;

		close(pfd[1]);
		if (pct_lock_acquire(pgdata, true, &lk2, &o) != PCT_OK)
			_exit(1);
		f = fopen(lockpath, "w");
		snprintf(buf, sizeof(buf), "%d\n", (int) dead);
		fputs(buf, f);
		fclose(f);
		if (read(pfd[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(pfd[0]);
	/* wait until the child rewrote the file */
	for (int i = 0; i < 500; i++)
	{
		if (pct_lock_inspect(pgdata, &st, &pid) == PCT_OK && pid == dead)
			break;
		usleep(10000);
	}
	ck_assert_int_eq(pid, dead);
	ck_assert_int_eq(st, PCT_LOCK_HELD);
	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_ERR_BUSY);
	ck_assert_int_eq(write(pfd[1], "x", 1), 1);
	close(pfd[1]);
	waitpid(child, &status, 0);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* now the holder is gone: stale */
	ck_assert_int_eq(pct_lock_inspect(pgdata, &st, &pid), PCT_OK);
	ck_assert_int_eq(st, PCT_LOCK_STALE);
}
END_TEST

START_TEST(foreign_lock_files)
{
	pct_lock	lk;
	pid_t		other;
	char		buf[32];

	/* a live PID without an OFD lock (another tool): held */
	snprintf(buf, sizeof(buf), "%d\n", (int) getppid());
	unit_write_file(lockpath, buf, strlen(buf), 0600);
	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_ERR_BUSY);
	ck_assert_int_eq(other, getppid());
	/* no PID at all: refused, not taken over */
	unit_write_file(lockpath, "", 0, 0600);
	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_ERR_BUSY);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "holds no process ID"));
	unit_write_file(lockpath, "12abc\n", 6, 0600);
	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_ERR_BUSY);
	ck_assert_uint_eq(unit_read_file(lockpath, buf, sizeof(buf)), 6);
}
END_TEST

START_TEST(group_mode)
{
	pct_lock	lk;
	pid_t		other;
	struct stat sb;

	chmod(pgdata, 0750);
	umask(0077);				/* the mode must not depend on the umask */
	ck_assert_int_eq(pct_lock_acquire(pgdata, true, &lk, &other), PCT_OK);
	ck_assert_int_eq(stat(lockpath, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0640);
	ck_assert_int_eq(pct_lock_release(&lk), PCT_OK);
}
END_TEST

static Suite *
lock_suite(void)
{
	Suite	   *s = suite_create("lock");
	TCase	   *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, take_and_release);
	tcase_add_test(tc, held_by_live_process);
	tcase_add_test(tc, stale_lock_taken_over);
	tcase_add_test(tc, ofd_lock_beats_pid);
	tcase_add_test(tc, foreign_lock_files);
	tcase_add_test(tc, group_mode);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(lock_suite)
