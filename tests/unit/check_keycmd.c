/*
 * check_keycmd.c
 *	  Unit tests of the cluster key command (lib/keycmd.c, FORMAT 1.1) and
 *	  of the sample key commands in share/.
 *
 * Owns: substitution, parsing and running tests (exit status, signals,
 * time-out, output limits, secrecy of the output in messages, wiping of the
 * KEK), and pseudo-terminal tests of share/pct-kek-passphrase and
 * share/pct-kek-hex-prompt (the prompt is read and the answer typed from
 * the master side of a pty whose slave is passed as %R).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "unit.h"

/* A key in mixed case and its bytes. */
#define KEY_HEX "00112233445566778899aabbccddeeff0123456789ABCDEFfedcba9876543210"
static const uint8_t key_bytes[PCT_KEK_LEN] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10
};

/* Secret-looking output that must never reach a message. */
#define SECRET_WORD "S3CRETpassphraseXYZ"
#define SECRET_HEX "5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5"
/*
 * Commands printing the key or the secrets above: the text is split in the
 * command, so that a message naming the command cannot contain it whole.
 */
#define KEY_HALF1 "00112233445566778899aabbccddeeff"
#define KEY_HALF2 "0123456789ABCDEFfedcba9876543210"
#define SAY_KEY "printf '%s%s\\n' " KEY_HALF1 " " KEY_HALF2
#define SAY_SECRET_WORD "printf '%s%s\\n' S3CRET passphraseXYZ"
#define SECRET_HALF1 "5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5e"
#define SECRET_HALF2 "c5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec5"
#define SAY_SECRET_HEX "printf '%s%s\\n' " SECRET_HALF1 " " SECRET_HALF2

static pct_keycmd
keycmd(const char *command)
{
	pct_keycmd	kc;

	memset(&kc, 0, sizeof(kc));
	kc.command = command;
	kc.keydir = "/data/pg_cryptokeys/live";
	kc.prompt = NULL;
	kc.terminal_fd = -1;
	kc.timeout_secs = 0;
	return kc;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Run a command (no terminal); kek is pre-filled with 0xAA. */
static pct_rc
run(const char *command, int timeout, uint8_t kek[PCT_KEK_LEN])
{
	pct_keycmd	kc = keycmd(command);

	kc.timeout_secs = timeout;
	memset(kek, 0xAA, PCT_KEK_LEN);
	unit_capture_log();
	return pct_keycmd_run(&kc, kek);
}

/* Expand and compare. */
static void
expect_expand(const pct_keycmd *kc, const char *want)
{
	char	   *out = NULL;

	unit_capture_log();
	ck_assert_int_eq(pct_keycmd_expand(kc, &out), PCT_OK);
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, want);
	free(out);
}

/* A command succeeds and yields key_bytes. */
static void
expect_key(const char *command)
{
	uint8_t		kek[PCT_KEK_LEN];
	pct_rc		rc = run(command, 0, kek);

	ck_assert_msg(rc == PCT_OK, "command <%s> failed: %s", command,
				  unit_last_error());
	ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
	/* Not even a debug message may carry the key. */
	ck_assert_ptr_null(strstr(unit_all_log(), KEY_HEX));
}

/*
 * A command fails with PCT_ERR_COMMAND, the messages contain `want` (NULL:
 * no check), the KEK is wiped, and nothing of the output appears.
 */
static void
expect_fail(const char *command, int timeout, const char *want)
{
	uint8_t		kek[PCT_KEK_LEN];
	pct_rc		rc = run(command, timeout, kek);
	const char *log = unit_all_log();

	ck_assert_msg(rc == PCT_ERR_COMMAND, "command <%s>: rc %d, want %d",
				  command, (int) rc, (int) PCT_ERR_COMMAND);
	ck_assert_msg(all_zero(kek, PCT_KEK_LEN), "kek not wiped after <%s>",
				  command);
	ck_assert_msg(unit_last_error()[0] != '\0', "no error reported");
	if (want != NULL)
		ck_assert_msg(strstr(log, want) != NULL,
					  "command <%s>: \"%s\" not in log: %s", command, want,
					  log);
	ck_assert_msg(strstr(log, SECRET_WORD) == NULL &&
				  strstr(log, SECRET_HEX) == NULL &&
				  strstr(log, KEY_HEX) == NULL &&
				  strstr(log, "ddeeff0123456789") == NULL,
				  "output of <%s> echoed: %s", command, log);
}

/* ---------------------------------------------------------------------
 * Substitutions
 * --------------------------------------------------------------------- */

START_TEST(test_expand_all)
{
	pct_keycmd	kc = keycmd("a %d b \"%p\" c %R d %% e %x f %%d g %q%");

	kc.keydir = "/data/pg_cryptokeys/new";
	kc.prompt = "Key for new:";
	kc.terminal_fd = 7;
	expect_expand(&kc, "a /data/pg_cryptokeys/new b \"Key for new:\" c 7 "
				  "d % e %x f %d g %q%");
}
END_TEST

START_TEST(test_expand_each)
{
	pct_keycmd	kc = keycmd("%d");

	expect_expand(&kc, "/data/pg_cryptokeys/live");
	kc.command = "%p";
	expect_expand(&kc, PCT_KEYCMD_DEFAULT_PROMPT);
	kc.prompt = "";
	expect_expand(&kc, "");
	kc.command = "x%Ry";
	kc.terminal_fd = 0;
	expect_expand(&kc, "x0y");
	kc.terminal_fd = 123;
	expect_expand(&kc, "x123y");
	kc.command = "%%";
	expect_expand(&kc, "%");
	kc.command = "%%%%%";
	expect_expand(&kc, "%%%");
	kc.command = "%";
	expect_expand(&kc, "%");
	kc.command = "trailing %";
	expect_expand(&kc, "trailing %");
	kc.command = "%D %P %r %0 %- %\"";
	expect_expand(&kc, "%D %P %r %0 %- %\"");
	kc.command = "no substitutions";
	expect_expand(&kc, "no substitutions");
	kc.command = "%d%d%p%p";
	kc.keydir = "/k";
	kc.prompt = "P";
	expect_expand(&kc, "/k/kPP");
}
END_TEST

START_TEST(test_expand_R_without_terminal)
{
	pct_keycmd	kc = keycmd("cmd \"%p\" %R");
	char	   *out = (char *) 1;

	unit_capture_log();
	ck_assert_int_eq(pct_keycmd_expand(&kc, &out), PCT_ERR_ARG);
	ck_assert_ptr_null(out);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "%R"));
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "cmd \"%p\" %R"));
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "-R/--authprompt"));

	/* An escaped %R is no use of the terminal. */
	kc.command = "echo %%R";
	expect_expand(&kc, "echo %R");
}
END_TEST

START_TEST(test_expand_bad_args)
{
	pct_keycmd	kc = keycmd("x %d");
	char	   *out = NULL;

	unit_capture_log();
	kc.keydir = NULL;
	ck_assert_int_eq(pct_keycmd_expand(&kc, &out), PCT_ERR_ARG);
	ck_assert_ptr_null(out);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "%d"));
	kc.keydir = "relative/dir";
	ck_assert_int_eq(pct_keycmd_expand(&kc, &out), PCT_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "absolute"));
	/* Without %d the key directory does not matter. */
	kc.command = "x";
	expect_expand(&kc, "x");
	kc.command = "";
	ck_assert_int_eq(pct_keycmd_expand(&kc, &out), PCT_ERR_ARG);
	kc.command = NULL;
	ck_assert_int_eq(pct_keycmd_expand(&kc, &out), PCT_ERR_ARG);
}
END_TEST

/* ---------------------------------------------------------------------
 * Parsing
 * --------------------------------------------------------------------- */

static pct_rc
parse(const char *text, size_t len, uint8_t kek[PCT_KEK_LEN])
{
	memset(kek, 0xAA, PCT_KEK_LEN);
	unit_capture_log();
	return pct_kek_parse(text, len, kek);
}

START_TEST(test_parse_good)
{
	static const char *const good[] = {
		KEY_HEX,
		KEY_HEX "\n",
		KEY_HEX "\r\n",
		"  \t" KEY_HEX " \t\r\n",
		KEY_HEX "\nsecond line\n",
		KEY_HEX "\r\n" SECRET_WORD,
		"\v\f" KEY_HEX "\r",
	};
	uint8_t		kek[PCT_KEK_LEN];
	char		buf[256];
	size_t		i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		ck_assert_msg(parse(good[i], strlen(good[i]), kek) == PCT_OK,
					  "case %zu", i);
		ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
	}
	/* All upper and all lower case. */
	for (i = 0; i < 2; i++)
	{
		size_t		j;

		snprintf(buf, sizeof(buf), "%s", KEY_HEX);
		for (j = 0; buf[j]; j++)
			buf[j] = (char) (i ? toupper((unsigned char) buf[j]) :
							 tolower((unsigned char) buf[j]));
		ck_assert_int_eq(parse(buf, strlen(buf), kek), PCT_OK);
		ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
	}
	/* len is honoured: text after it is not looked at. */
	snprintf(buf, sizeof(buf), "%sXYZ", KEY_HEX);
	ck_assert_int_eq(parse(buf, PCT_KEK_HEX_LEN, kek), PCT_OK);
	ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
}
END_TEST

START_TEST(test_parse_bad)
{
	static const struct
	{
		const char *text;
		const char *detail;
	}			bad[] = {
		{"", "empty"},
		{"   \t \r\n", "empty"},
		{"\n" KEY_HEX "\n", "empty"},
		{"0011223344556677", "16 characters"},
		{KEY_HEX "0", "65 characters"},
		{KEY_HEX "0\n", "65 characters"},
		{"0" KEY_HEX, "65 characters"},
		{"bad\n" KEY_HEX "\n", "3 characters"},
		{"00112233445566778899aabbccddeeff 0123456789ABCDEFfedcba987654321",
		"not all of them hexadecimal"},
		{"g0112233445566778899aabbccddeeff0123456789ABCDEFfedcba9876543210",
		"not all of them hexadecimal"},
		{"0x112233445566778899aabbccddeeff0123456789ABCDEFfedcba9876543210",
		"not all of them hexadecimal"},
		{"00112233445566778899aabbccddeeff0123456789ABCDEFfedcba987654321:",
		"not all of them hexadecimal"},
		{"00112233445566778899aabbccddeeff0123456789ABCDEFfedcba987654321/",
		"not all of them hexadecimal"},
		{"@0112233445566778899aabbccddeeff0123456789ABCDEFfedcba9876543210",
		"not all of them hexadecimal"},
		{"`0112233445566778899aabbccddeeff0123456789ABCDEFfedcba9876543210",
		"not all of them hexadecimal"},
		{KEY_HEX "\rjunk", "69 characters"},
		{SECRET_WORD, "19 characters"},
	};
	uint8_t		kek[PCT_KEK_LEN];
	char		withnul[PCT_KEK_HEX_LEN];
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		ck_assert_msg(parse(bad[i].text, strlen(bad[i].text), kek) ==
					  PCT_ERR_COMMAND, "case %zu accepted", i);
		ck_assert_msg(all_zero(kek, PCT_KEK_LEN), "case %zu: kek not wiped",
					  i);
		ck_assert_msg(strstr(unit_all_log(), bad[i].detail) != NULL,
					  "case %zu: \"%s\" not in: %s", i, bad[i].detail,
					  unit_all_log());
		ck_assert_ptr_null(strstr(unit_all_log(), "0011223344"));
		ck_assert_ptr_null(strstr(unit_all_log(), SECRET_WORD));
	}
	/* A NUL byte inside the digits. */
	memcpy(withnul, KEY_HEX, sizeof(withnul));
	withnul[10] = '\0';
	ck_assert_int_eq(parse(withnul, sizeof(withnul), kek), PCT_ERR_COMMAND);
	ck_assert(all_zero(kek, PCT_KEK_LEN));
}
END_TEST

/* ---------------------------------------------------------------------
 * Running: success
 * --------------------------------------------------------------------- */

START_TEST(test_run_good)
{
	expect_key("echo " KEY_HEX);
	expect_key("printf '%s\\n' " KEY_HEX);
	expect_key("printf '%s' " KEY_HEX);		/* no newline */
	expect_key("printf '%s\\r\\n' " KEY_HEX);	/* CRLF */
	expect_key("printf '  \\t%s \\t\\r\\n' " KEY_HEX);
	expect_key("printf '%s\\nsecond line\\n' " KEY_HEX);
	expect_key("echo " KEY_HEX " | tr a-f A-F");
	expect_key("echo " KEY_HEX " | tr A-F a-f");
	/* The command's own messages on stderr do not matter. */
	expect_key("echo 'check_keycmd: this message on stderr is expected' >&2; "
			   "echo " KEY_HEX);
	/* The %d substitution reaches the shell. */
	expect_key("test '%d' = /data/pg_cryptokeys/live && echo " KEY_HEX);
	/* %% and unknown %x reach the shell unchanged. */
	expect_key("test '%%x%y' = '%x%y' && echo " KEY_HEX);
}
END_TEST

START_TEST(test_run_prompt_and_timeout_ok)
{
	pct_keycmd	kc = keycmd("test \"%p\" = 'Key for live:' && echo " KEY_HEX);
	uint8_t		kek[PCT_KEK_LEN];

	kc.prompt = "Key for live:";
	kc.timeout_secs = 5;
	unit_capture_log();
	ck_assert_int_eq(pct_keycmd_run(&kc, kek), PCT_OK);
	ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
}
END_TEST

/* The terminal fd stays open across exec even when it is close-on-exec. */
START_TEST(test_run_terminal_fd_inherited)
{
	char	   *dir = unit_mkdtemp();
	char		path[4096];
	char		buf[64];
	pct_keycmd	kc = keycmd("echo fd-works >&%R && echo " KEY_HEX);
	uint8_t		kek[PCT_KEK_LEN];
	size_t		n;
	int			fd;

	snprintf(path, sizeof(path), "%s/out", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	kc.terminal_fd = fd;
	unit_capture_log();
	ck_assert_int_eq(pct_keycmd_run(&kc, kek), PCT_OK);
	ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
	/* Still close-on-exec in this process. */
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	n = unit_read_file(path, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "fd-works\n");
	unit_rmtree(dir);
	free(dir);
}
END_TEST

/* Our pipe ends are not inherited: only fd 1 refers to the output pipe. */
START_TEST(test_run_no_fd_leak)
{
	expect_key("p=$(readlink /proc/$$/fd/1); n=0; "
			   "for f in /proc/$$/fd/*; do "
			   "  [ \"$(readlink \"$f\")\" = \"$p\" ] && n=$((n+1)); "
			   "done; "
			   "[ $n -eq 1 ] && echo " KEY_HEX);
}
END_TEST

/* ---------------------------------------------------------------------
 * Running: failures
 * --------------------------------------------------------------------- */

START_TEST(test_run_exit_status)
{
	expect_fail("exit 3", 0, "exited with status 3");
	expect_fail(SAY_KEY "; exit 2", 0, "exited with status 2");
	expect_fail(SAY_SECRET_WORD "; exit 1", 0, "exited with status 1");
	expect_fail("false", 0, "status 1");
	/* The message names the command. */
	expect_fail("exit 42", 0, "cluster key command \"exit 42\"");
}
END_TEST

START_TEST(test_run_not_found)
{
	expect_fail("/nonexistent/pct-no-such-command 2>/dev/null", 0,
				"exited with status 127");
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "could not find"));
	expect_fail("pct-no-such-command-anywhere 2>/dev/null", 0, "127");
}
END_TEST

START_TEST(test_run_signal)
{
	char		want[64];

	expect_fail("kill -9 $$", 0, "terminated by signal 9");
	snprintf(want, sizeof(want), "signal 9: %s", strsignal(SIGKILL));
	ck_assert_ptr_nonnull(strstr(unit_last_error(), want));
	expect_fail(SAY_SECRET_HEX "; kill -TERM $$", 0,
				"terminated by signal 15");
}
END_TEST

START_TEST(test_run_bad_output)
{
	/* Empty output. */
	expect_fail("true", 0, "printed nothing");
	expect_fail(":", 0, "printed nothing");
	/* Only white space. */
	expect_fail("printf '   \\n'", 0, "first line is empty");
	expect_fail("printf '\\r\\n'", 0, "first line is empty");
	expect_fail("echo", 0, "first line is empty");
	/* Short, long. */
	expect_fail("echo 0011223344556677", 0, "16 characters");
	expect_fail("printf '%s%s\\n' " KEY_HALF1 " 0123456789ABCDEFfedcba987654321",
				0, "63 characters");
	expect_fail("printf '%s%s0\\n' " SECRET_HALF1 " " SECRET_HALF2, 0,
				"65 characters");
	/* Not hexadecimal. */
	expect_fail("printf '%s%sZ\\n' " SECRET_HALF1 " c5ec5ec5ec5ec5ec5ec5ec5ec5ec5ec",
				0, "not all of them hexadecimal");
	expect_fail(SAY_SECRET_WORD, 0, "19 characters");
	/* The first line counts, even when the second is good. */
	expect_fail("printf 'bad\\n%s%s\\n' " KEY_HALF1 " " KEY_HALF2, 0,
				"3 characters");
	expect_fail("printf '\\n%s%s\\n' " KEY_HALF1 " " KEY_HALF2, 0,
				"first line is empty");
	expect_fail("printf '%s%s\\n%s%s\\n' S3CRET passphraseXYZ "
				KEY_HALF1 " " KEY_HALF2, 0,
				"19 characters");
	/* The message names the command, says "64 hexadecimal digits". */
	expect_fail("echo abc", 0, "\"echo abc\" is not 64 hexadecimal digits");
}
END_TEST

START_TEST(test_run_timeout)
{
	int64_t		t0 = now_ms();
	int64_t		took;

	expect_fail("sleep 10", 1, "timed out after 1 second");
	took = now_ms() - t0;
	ck_assert_msg(took < 3000, "time-out took %lld ms", (long long) took);
	ck_assert_msg(took >= 900, "time-out after %lld ms", (long long) took);

	/* Output before the time-out is not echoed either. */
	t0 = now_ms();
	expect_fail(SAY_SECRET_HEX "; sleep 10; echo done", 1, "timed out");
	took = now_ms() - t0;
	ck_assert_msg(took < 3000, "time-out took %lld ms", (long long) took);

	/* The deadline also covers a command that closed its stdout. */
	t0 = now_ms();
	expect_fail("exec >&-; sleep 10", 1, "timed out");
	took = now_ms() - t0;
	ck_assert_msg(took < 3000, "time-out took %lld ms", (long long) took);

	/* Plural. */
	expect_fail("sleep 10", 2, "timed out after 2 seconds");
}
END_TEST

/*
 * Without a controlling terminal, a time-out kills the command's whole
 * process group, including what the shell started.  Run in a child in a
 * new session (no controlling terminal) that is a subreaper, so that it
 * can see how the orphaned grandchild died.  Exit codes: 0 good, others
 * name the failed step.
 */
static int
group_kill_child(const char *pidfile)
{
	char		cmd[4096];
	char		buf[64];
	uint8_t		kek[PCT_KEK_LEN];
	pct_keycmd	kc;
	pid_t		grandchild,
				r;
	int			status = 0;
	int64_t		deadline;
	ssize_t		n;
	int			fd;

	if (setsid() < 0)
		return 10;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
		return 11;
	snprintf(cmd, sizeof(cmd),
			 "sleep 30 & echo $! > '%s'; wait", pidfile);
	kc = keycmd(cmd);
	kc.timeout_secs = 1;
	pct_set_log(NULL, NULL);
	if (pct_keycmd_run(&kc, kek) != PCT_ERR_COMMAND)
		return 12;
	fd = open(pidfile, O_RDONLY);
	if (fd < 0)
		return 13;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 14;
	buf[n] = '\0';
	grandchild = (pid_t) atol(buf);
	if (grandchild <= 0)
		return 15;
	deadline = now_ms() + 5000;
	for (;;)
	{
		r = waitpid(grandchild, &status, WNOHANG);
		if (r == grandchild)
			break;
		if (r < 0 || now_ms() > deadline)
		{
			kill(grandchild, SIGKILL);
			return 16;
		}
		usleep(10000);
	}
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return 17;
	return 0;
}

START_TEST(test_run_timeout_kills_group)
{
	char	   *dir = unit_mkdtemp();
	char		pidfile[1024];
	pid_t		pid;
	int			status;

	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	/* Nothing on the heap across fork(): valgrind checks the child too. */
	free(dir);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(group_kill_child(pidfile));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
				  "group kill child failed: status %d", status);
	unlink(pidfile);
	*strrchr(pidfile, '/') = '\0';
	unit_rmtree(pidfile);
}
END_TEST

START_TEST(test_run_too_much)
{
	char		cmd[256];
	uint8_t		kek[PCT_KEK_LEN];
	int64_t		t0 = now_ms();

	/* Endless output, no time-out: the command is killed. */
	expect_fail("while :; do " SAY_SECRET_WORD "; done", 0, "printed too much");
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "65536 bytes"));
	expect_fail(SAY_KEY "; head -c 1000000 /dev/zero", 0,
				"printed too much");
	expect_fail(SAY_KEY "; cat /dev/zero", 5, "printed too much");
	ck_assert_int_lt(now_ms() - t0, 4000);

	/* Exactly 65536 bytes are accepted, one more is too much. */
	snprintf(cmd, sizeof(cmd), "%s; head -c %d /dev/zero", SAY_KEY,
			 65536 - PCT_KEK_HEX_LEN - 1);
	ck_assert_int_eq(run(cmd, 0, kek), PCT_OK);
	ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
	snprintf(cmd, sizeof(cmd), "%s; head -c %d /dev/zero", SAY_KEY,
			 65536 - PCT_KEK_HEX_LEN);
	expect_fail(cmd, 0, "printed too much");
}
END_TEST

START_TEST(test_run_arg_errors)
{
	char	   *dir = unit_mkdtemp();
	char		cmd[4096];
	char		marker[1024];
	uint8_t		kek[PCT_KEK_LEN];
	pct_keycmd	kc;
	struct stat st;

	/* %R without a terminal: refused before anything runs. */
	snprintf(marker, sizeof(marker), "%s/ran", dir);
	snprintf(cmd, sizeof(cmd), "touch '%s'; echo %s %%R", marker, KEY_HEX);
	memset(kek, 0xAA, sizeof(kek));
	unit_capture_log();
	kc = keycmd(cmd);
	ck_assert_int_eq(pct_keycmd_run(&kc, kek), PCT_ERR_ARG);
	ck_assert(all_zero(kek, PCT_KEK_LEN));
	ck_assert_int_ne(stat(marker, &st), 0);
	ck_assert_ptr_nonnull(strstr(unit_all_log(), "-R/--authprompt"));

	/* A terminal fd that is not open. */
	memset(kek, 0xAA, sizeof(kek));
	kc = keycmd("echo " KEY_HEX);
	kc.terminal_fd = 999;
	ck_assert_int_eq(pct_keycmd_run(&kc, kek), PCT_ERR_ARG);
	ck_assert(all_zero(kek, PCT_KEK_LEN));
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "999"));

	/* Negative time-out. */
	memset(kek, 0xAA, sizeof(kek));
	kc = keycmd("echo " KEY_HEX);
	kc.timeout_secs = -1;
	ck_assert_int_eq(pct_keycmd_run(&kc, kek), PCT_ERR_ARG);
	ck_assert(all_zero(kek, PCT_KEK_LEN));

	/* No command. */
	memset(kek, 0xAA, sizeof(kek));
	kc = keycmd("");
	ck_assert_int_eq(pct_keycmd_run(&kc, kek), PCT_ERR_ARG);
	ck_assert(all_zero(kek, PCT_KEK_LEN));

	unit_rmtree(dir);
	free(dir);
}
END_TEST

/* Running many commands leaks no file descriptors. */
START_TEST(test_run_no_fd_leak_in_caller)
{
	uint8_t		kek[PCT_KEK_LEN];
	int			before,
				after,
				i;

	before = dup(0);
	ck_assert_int_ge(before, 0);
	close(before);
	for (i = 0; i < 20; i++)
	{
		(void) run(i % 2 ? "echo " KEY_HEX : "exit 1", i % 3, kek);
	}
	(void) run("yes", 0, kek);
	(void) run("sleep 5", 1, kek);
	after = dup(0);
	ck_assert_int_ge(after, 0);
	close(after);
	ck_assert_int_eq(before, after);
}
END_TEST

/* ---------------------------------------------------------------------
 * share/pct-kek-file
 * --------------------------------------------------------------------- */

static void
file_cmd(char *cmd, size_t size, const char *path)
{
	snprintf(cmd, size, "'%s/share/pct-kek-file' '%s' 2>/dev/null",
			 unit_top(), path);
}

START_TEST(test_sample_file)
{
	char	   *dir = unit_mkdtemp();
	char		path[4096],
				link[4096],
				cmd[8192];
	uint8_t		kek[PCT_KEK_LEN];
	pct_rc		rc;

	snprintf(path, sizeof(path), "%s/kek", dir);
	file_cmd(cmd, sizeof(cmd), path);

	/* Good: 0600, 0400, CRLF and white space, trailing lines. */
	unit_write_file(path, KEY_HEX "\n", strlen(KEY_HEX) + 1, 0600);
	rc = run(cmd, 10, kek);
	ck_assert_msg(rc == PCT_OK, "%s", unit_last_error());
	ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
	unit_write_file(path, " " KEY_HEX " \r\nmore\n", strlen(KEY_HEX) + 9,
					0400);
	rc = run(cmd, 10, kek);
	ck_assert_msg(rc == PCT_OK, "%s", unit_last_error());
	ck_assert_mem_eq(kek, key_bytes, PCT_KEK_LEN);
	chmod(path, 0600);

	/* Group or world access refused. */
	chmod(path, 0644);
	expect_fail(cmd, 10, "exited with status 1");
	chmod(path, 0640);
	expect_fail(cmd, 10, "exited with status 1");
	chmod(path, 0604);
	expect_fail(cmd, 10, "exited with status 1");
	chmod(path, 0700);
	expect_fail(cmd, 10, "exited with status 1");
	chmod(path, 0600);

	/* Wrong content refused, never echoed. */
	unit_write_file(path, SECRET_WORD "\n", strlen(SECRET_WORD) + 1, 0600);
	expect_fail(cmd, 10, "exited with status 1");
	unit_write_file(path, SECRET_HEX "0\n", strlen(SECRET_HEX) + 2, 0600);
	expect_fail(cmd, 10, "exited with status 1");
	unit_write_file(path, "\n" KEY_HEX "\n", strlen(KEY_HEX) + 2, 0600);
	expect_fail(cmd, 10, "exited with status 1");
	unit_write_file(path, "", 0, 0600);
	expect_fail(cmd, 10, "exited with status 1");

	/* A symbolic link to a good file is refused. */
	unit_write_file(path, KEY_HEX "\n", strlen(KEY_HEX) + 1, 0600);
	snprintf(link, sizeof(link), "%s/link", dir);
	ck_assert_int_eq(symlink(path, link), 0);
	file_cmd(cmd, sizeof(cmd), link);
	expect_fail(cmd, 10, "exited with status 1");

	/* Not a regular file; missing file. */
	file_cmd(cmd, sizeof(cmd), dir);
	expect_fail(cmd, 10, "exited with status 1");
	snprintf(link, sizeof(link), "%s/missing", dir);
	file_cmd(cmd, sizeof(cmd), link);
	expect_fail(cmd, 10, "exited with status 1");

	/* Owned by another user (only root can arrange that). */
	if (geteuid() == 0)
	{
		file_cmd(cmd, sizeof(cmd), path);
		ck_assert_int_eq(chown(path, 1, 1), 0);
		expect_fail(cmd, 10, "exited with status 1");
	}

	unit_rmtree(dir);
	free(dir);
}
END_TEST

/* ---------------------------------------------------------------------
 * share/pct-kek-passphrase and share/pct-kek-hex-prompt through a pty
 * --------------------------------------------------------------------- */

#define PTY_PROMPT "Test passphrase for pct:"

/*
 * The typist, in a child process: read the master until the prompt
 * appears, type `typed`, then keep reading until the slave side is closed
 * (EIO) or 15 s pass; send everything read (the transcript) to out.
 */
static void
typist(int master, const char *typed, int out)
{
	char		buf[8192];
	size_t		len = 0;
	bool		sent = false;
	int64_t		deadline = now_ms() + 15000;

	buf[0] = '\0';
	while (now_ms() < deadline)
	{
		struct pollfd pfd = {master, POLLIN, 0};
		ssize_t		n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(master, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t) n;
		buf[len] = '\0';
		if (!sent && strstr(buf, PTY_PROMPT) != NULL)
		{
			if (write(master, typed, strlen(typed)) != (ssize_t) strlen(typed))
				break;
			sent = true;
		}
		if (len + 1 >= sizeof(buf))
			break;
	}
	if (write(out, buf, len) != (ssize_t) len)
		_exit(2);
}

typedef struct pty_outcome
{
	pct_rc		rc;
	uint8_t		kek[PCT_KEK_LEN];
	char		transcript[8192];
	bool		echo_restored;
} pty_outcome;

/*
 * Run the sample script `name` as `<top>/share/NAME "%p" %R` with the slave
 * of a new pty as the terminal, typing `typed` once the prompt appears.
 */
static void
pty_run(const char *name, const char *typed, pty_outcome *res)
{
	char		cmd[4096];
	const char *slave_name;
	pct_keycmd	kc;
	struct termios tio;
	int			master,
				slave,
				tp[2],
				status;
	pid_t		pid;
	size_t		len = 0;
	ssize_t		n;

	memset(res, 0, sizeof(*res));
	master = posix_openpt(O_RDWR | O_NOCTTY);
	ck_assert_msg(master >= 0, "posix_openpt: %s", strerror(errno));
	ck_assert_int_eq(fcntl(master, F_SETFD, FD_CLOEXEC), 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	slave_name = ptsname(master);
	ck_assert_ptr_nonnull(slave_name);
	slave = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_msg(slave >= 0, "open %s: %s", slave_name, strerror(errno));
	/* A fresh pty echoes: the script must turn that off. */
	ck_assert_int_eq(tcgetattr(slave, &tio), 0);
	ck_assert(tio.c_lflag & ECHO);
	ck_assert_int_eq(pipe2(tp, O_CLOEXEC), 0);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
	{
		close(slave);
		close(tp[0]);
		typist(master, typed, tp[1]);
		_exit(0);
	}
	close(tp[1]);

	snprintf(cmd, sizeof(cmd), "'%s/share/%s' \"%%p\" %%R 2>/dev/null",
			 unit_top(), name);
	kc = keycmd(cmd);
	kc.prompt = PTY_PROMPT;
	kc.terminal_fd = slave;
	kc.timeout_secs = 20;
	memset(res->kek, 0xAA, PCT_KEK_LEN);
	unit_capture_log();
	res->rc = pct_keycmd_run(&kc, res->kek);

	ck_assert_int_eq(tcgetattr(slave, &tio), 0);
	res->echo_restored = (tio.c_lflag & ECHO) != 0;
	close(slave);				/* the typist now sees EIO */

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	while ((n = read(tp[0], res->transcript + len,
					 sizeof(res->transcript) - 1 - len)) > 0)
		len += (size_t) n;
	res->transcript[len] = '\0';
	close(tp[0]);
	close(master);
}

static void
sha256(const char *text, uint8_t out[PCT_KEK_LEN])
{
	unsigned int outlen = 0;

	ck_assert_int_eq(EVP_Digest(text, strlen(text), out, &outlen,
								EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(outlen, PCT_KEK_LEN);
}

START_TEST(test_sample_passphrase)
{
	static const char *const phrases[] = {
		"correct horse battery staple",
		"  spaces around, a \\backslash\\ and 'quotes' \"too\"  ",
		"x",
	};
	static pty_outcome outcome; /* not on the heap: valgrind checks the
								 * typist too */
	pty_outcome *res = &outcome;
	uint8_t		want[PCT_KEK_LEN];
	char		typed[256];
	size_t		i;

	for (i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
	{
		snprintf(typed, sizeof(typed), "%s\n", phrases[i]);
		pty_run("pct-kek-passphrase", typed, res);
		ck_assert_msg(res->rc == PCT_OK, "phrase %zu: %s (transcript: %s)",
					  i, unit_last_error(), res->transcript);
		/* The KEK is SHA-256 of the bytes typed, without the newline. */
		sha256(phrases[i], want);
		ck_assert_mem_eq(res->kek, want, PCT_KEK_LEN);
		/* Prompted on the terminal, passphrase not echoed, echo back on. */
		ck_assert_ptr_nonnull(strstr(res->transcript, PTY_PROMPT));
		if (strlen(phrases[i]) > 1)
			ck_assert_msg(strstr(res->transcript, phrases[i]) == NULL,
						  "passphrase echoed: %s", res->transcript);
		ck_assert(res->echo_restored);
	}

	/* Empty passphrase refused. */
	pty_run("pct-kek-passphrase", "\n", res);
	ck_assert_int_eq(res->rc, PCT_ERR_COMMAND);
	ck_assert_ptr_nonnull(strstr(unit_last_error(), "exited with status 1"));
	ck_assert(all_zero(res->kek, PCT_KEK_LEN));
	ck_assert(res->echo_restored);
}
END_TEST

START_TEST(test_sample_passphrase_no_terminal)
{
	char		cmd[4096];

	/* Given a fd that is not a terminal (a pipe would do; use stdout of
	 * the command itself, fd 1), the script refuses. */
	snprintf(cmd, sizeof(cmd),
			 "'%s/share/pct-kek-passphrase' prompt 1 2>/dev/null",
			 unit_top());
	expect_fail(cmd, 10, "exited with status 1");
	snprintf(cmd, sizeof(cmd),
			 "'%s/share/pct-kek-hex-prompt' prompt x 2>/dev/null",
			 unit_top());
	expect_fail(cmd, 10, "exited with status 1");
}
END_TEST

START_TEST(test_sample_hex_prompt)
{
	static pty_outcome outcome;
	pty_outcome *res = &outcome;

	pty_run("pct-kek-hex-prompt", "  " KEY_HEX " \n", res);
	ck_assert_msg(res->rc == PCT_OK, "%s (transcript: %s)",
				  unit_last_error(), res->transcript);
	ck_assert_mem_eq(res->kek, key_bytes, PCT_KEK_LEN);
	ck_assert_ptr_nonnull(strstr(res->transcript, PTY_PROMPT));
	ck_assert_msg(strstr(res->transcript, "0011223344") == NULL,
				  "key echoed: %s", res->transcript);
	ck_assert(res->echo_restored);

	/* 63 digits, 65 digits, non-hex: refused, not echoed. */
	pty_run("pct-kek-hex-prompt",
			"00112233445566778899aabbccddeeff0123456789ABCDEFfedcba987654321\n",
			res);
	ck_assert_int_eq(res->rc, PCT_ERR_COMMAND);
	ck_assert(all_zero(res->kek, PCT_KEK_LEN));
	ck_assert_ptr_null(strstr(res->transcript, "0011223344"));
	ck_assert(res->echo_restored);
	pty_run("pct-kek-hex-prompt", SECRET_HEX "0\n", res);
	ck_assert_int_eq(res->rc, PCT_ERR_COMMAND);
	ck_assert_ptr_null(strstr(res->transcript, "5ec5ec5ec5"));
	pty_run("pct-kek-hex-prompt", SECRET_WORD "\n", res);
	ck_assert_int_eq(res->rc, PCT_ERR_COMMAND);
	ck_assert_ptr_null(strstr(res->transcript, SECRET_WORD));
	ck_assert_ptr_null(strstr(unit_all_log(), SECRET_WORD));
}
END_TEST

static Suite *
keycmd_suite(void)
{
	Suite	   *s = suite_create("keycmd");
	TCase	   *tc;

	tc = tcase_create("expand");
	tcase_add_test(tc, test_expand_all);
	tcase_add_test(tc, test_expand_each);
	tcase_add_test(tc, test_expand_R_without_terminal);
	tcase_add_test(tc, test_expand_bad_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_good);
	tcase_add_test(tc, test_parse_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("run");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_run_good);
	tcase_add_test(tc, test_run_prompt_and_timeout_ok);
	tcase_add_test(tc, test_run_terminal_fd_inherited);
	tcase_add_test(tc, test_run_no_fd_leak);
	tcase_add_test(tc, test_run_exit_status);
	tcase_add_test(tc, test_run_not_found);
	tcase_add_test(tc, test_run_signal);
	tcase_add_test(tc, test_run_bad_output);
	tcase_add_test(tc, test_run_timeout);
	tcase_add_test(tc, test_run_timeout_kills_group);
	tcase_add_test(tc, test_run_too_much);
	tcase_add_test(tc, test_run_arg_errors);
	tcase_add_test(tc, test_run_no_fd_leak_in_caller);
	suite_add_tcase(s, tc);

	tc = tcase_create("samples");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sample_file);
	tcase_add_test(tc, test_sample_passphrase);
	tcase_add_test(tc, test_sample_passphrase_no_terminal);
	tcase_add_test(tc, test_sample_hex_prompt);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(keycmd_suite)
