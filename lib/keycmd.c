/*
 * keycmd.c
 *	  The cluster key command (FORMAT.md section 1.1).
 *
 * Owns: expanding the substitutions of cluster_key_command (%d %p %R %%),
 * running it through /bin/sh with an optional time-out, collecting what it
 * prints in locked memory, and parsing the cluster key (KEK) from the first
 * line.  What the command prints is secret: it is never echoed in a
 * message (only its length is), and it is wiped once parsed.
 *
 * Theory of operation of pct_keycmd_run():
 *	1. Expand the command (pct_keycmd_expand); check the terminal fd.
 *	2. Create two close-on-exec pipes: one for the command's standard output,
 *	   one on which the child reports a failure to start the shell (it sees
 *	   end-of-file when execve() succeeds).  Fork.
 *	3. Child: restore default SIGPIPE/SIGCHLD and an empty signal mask, move
 *	   to a process group of its own (see below), make the output pipe its
 *	   standard output, clear FD_CLOEXEC on the terminal fd so that %R stays
 *	   usable, and execve("/bin/sh", {"sh", "-c", command}).  Standard input
 *	   and standard error are inherited.  Only async-signal-safe calls.
 *	4. Parent: wait for the start report, then read the output until
 *	   end-of-file into a secure buffer of at most KEYCMD_MAX_OUTPUT bytes,
 *	   with poll() against the deadline when a time-out is set.
 *	5. Reap the shell with waitpid() (against the deadline too).  On a
 *	   time-out or too much output, SIGKILL the command first.
 *	6. Judge, in this order: time-out, too much output, killed by a signal,
 *	   non-zero exit status, empty output, then parse the first line.
 *	7. Wipe the output; on any failure wipe the caller's KEK as well.
 *
 * Process groups: with a time-out, the command runs in a process group of
 * its own so that the time-out kills everything it started.  The exception
 * is a tool running in the foreground of its controlling terminal: there
 * the command stays in the tool's process group, as with popen(), because
 * a background process group is stopped (SIGTTIN/SIGTTOU) as soon as it
 * reads the terminal or changes its modes, which interactive commands do
 * (through %R or /dev/tty).  In that case a time-out kills the shell only;
 * anything it left running loses its reader and is not waited for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pct_internal.h"

/* Most output accepted from a command; more is an error. */
#define KEYCMD_MAX_OUTPUT	65536

/* What the child reports on the start pipe when it cannot start the shell. */
typedef struct start_report
{
	int			step;			/* START_* */
	int			err;			/* errno */
} start_report;

#define START_SETPGID	1
#define START_STDOUT	2
#define START_TERMINAL	3
#define START_EXEC		4

/* How reading the output ended. */
typedef enum read_end
{
	READ_EOF,
	READ_TIMEOUT,
	READ_TOO_MUCH,
	READ_ERROR
} read_end;

/* Why a first line is not a key. */
typedef enum parse_result
{
	PARSE_OK,
	PARSE_EMPTY,				/* the first line is empty or white space */
	PARSE_LENGTH,				/* not 64 characters */
	PARSE_NOT_HEX				/* 64 characters, not all hexadecimal */
} parse_result;

/* ----------------------------------------------------------------------
 * Substitutions
 * ---------------------------------------------------------------------- */

/* Does the command use substitution c (%c not preceded by an escaping %)? */
static bool
uses_subst(const char *cmd, char c)
{
	const char *p;

	for (p = cmd; *p != '\0'; p++)
	{
		if (*p != '%' || p[1] == '\0')
			continue;
		p++;
		if (*p == c)
			return true;
	}
	return false;
}

/*
 * Copy cmd with its substitutions into out (when not NULL); returns the
 * length of the result.  %d, %p, %R are replaced by dir, prompt and fd, %%
 * by %, any other %x and a trailing % are kept as they are.
 */
static size_t
expand_into(const char *cmd, const char *dir, const char *prompt,
			const char *fd, char *out)
{
	size_t		n = 0;
	const char *p;

	for (p = cmd; *p != '\0'; p++)
	{
		const char *rep = NULL;
		size_t		replen;
		char		keep[2];

		if (*p != '%' || p[1] == '\0')
		{
			if (out != NULL)
				out[n] = *p;
			n++;
			continue;
		}
		p++;
		switch (*p)
		{
			case 'd':
				rep = dir;
				break;
			case 'p':
				rep = prompt;
				break;
			case 'R':
				rep = fd;
				break;
			case '%':
				rep = "%";
				break;
			default:
				break;
		}
		if (rep != NULL)
			replen = strlen(rep);
		else
		{
			keep[0] = '%';
			keep[1] = *p;
			rep = keep;
			replen = 2;
		}
		if (out != NULL)
			memcpy(out + n, rep, replen);
		n += replen;
	}
	if (out != NULL)
		out[n] = '\0';
	return n;
}

pct_rc
pct_keycmd_expand(const pct_keycmd *kc, char **out)
{
	const char *prompt;
	char		fdbuf[16] = "";
	size_t		len;
	char	   *res;

	*out = NULL;
	if (kc->command == NULL || kc->command[0] == '\0')
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"no cluster key command was given");
	if (uses_subst(kc->command, 'd'))
	{
		if (kc->keydir == NULL)
			return pct_fail(PCT_ERR_ARG, NULL, NULL,
							"cluster key command \"%s\" uses %%d but no key directory was given",
							kc->command);
		if (kc->keydir[0] != '/')
			return pct_fail(PCT_ERR_ARG, NULL, NULL,
							"key directory \"%s\" is not an absolute path",
							kc->keydir);
	}
	if (uses_subst(kc->command, 'R'))
	{
		if (kc->terminal_fd < 0)
			return pct_fail(PCT_ERR_ARG, NULL, "Use -R/--authprompt.",
							"cluster key command \"%s\" uses %%R but no terminal was given",
							kc->command);
		snprintf(fdbuf, sizeof(fdbuf), "%d", kc->terminal_fd);
	}
	prompt = kc->prompt != NULL ? kc->prompt : PCT_KEYCMD_DEFAULT_PROMPT;

	len = expand_into(kc->command, kc->keydir, prompt, fdbuf, NULL);
	res = malloc(len + 1);
	if (res == NULL)
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	expand_into(kc->command, kc->keydir, prompt, fdbuf, res);
	*out = res;
	return PCT_OK;
}

/* ----------------------------------------------------------------------
 * Parsing the key
 * ---------------------------------------------------------------------- */

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
		c == '\f';
}

/*
 * Decode the first line of text into kek.  The line length after trimming
 * goes to *linelen.  Decoding does not branch on the digits' values.  kek
 * is wiped unless PARSE_OK.
 */
static parse_result
parse_first_line(const char *text, size_t len, uint8_t kek[PCT_KEK_LEN],
				 size_t *linelen)
{
	const unsigned char *s = (const unsigned char *) text;
	const unsigned char *nl = memchr(s, '\n', len);
	size_t		start = 0,
				end = nl != NULL ? (size_t) (nl - s) : len;
	unsigned	bad = 0;
	size_t		i;

	while (start < end && is_space(s[start]))
		start++;
	while (end > start && is_space(s[end - 1]))
		end--;
	*linelen = end - start;
	if (end == start)
	{
		pct_wipe(kek, PCT_KEK_LEN);
		return PARSE_EMPTY;
	}
	if (end - start != PCT_KEK_HEX_LEN)
	{
		pct_wipe(kek, PCT_KEK_LEN);
		return PARSE_LENGTH;
	}
	for (i = 0; i < PCT_KEK_HEX_LEN; i++)
	{
		unsigned	c = s[start + i];
		unsigned	lc = c | 0x20;
		unsigned	isdig = (c - '0') < 10u;
		unsigned	isalpha = (lc - 'a') < 6u;
		unsigned	v = isdig * (c - '0') + isalpha * (lc - 'a' + 10);

		bad |= (isdig | isalpha) ^ 1u;
		if (i % 2 == 0)
			kek[i / 2] = (uint8_t) (v << 4);
		else
			kek[i / 2] |= (uint8_t) (v & 0x0f);
	}
	if (bad)
	{
		pct_wipe(kek, PCT_KEK_LEN);
		return PARSE_NOT_HEX;
	}
	return PARSE_OK;
}

/* The detail line of a parse failure (never quoting the text). */
static const char *
parse_detail(parse_result r, size_t linelen, char *buf, size_t bufsize)
{
	switch (r)
	{
		case PARSE_OK:
			break;
		case PARSE_EMPTY:
			return "The first line is empty.";
		case PARSE_LENGTH:
			snprintf(buf, bufsize,
					 "It has %zu characters after removing surrounding white space.",
					 linelen);
			return buf;
		case PARSE_NOT_HEX:
			snprintf(buf, bufsize,
					 "It has %d characters, not all of them hexadecimal digits.",
					 PCT_KEK_HEX_LEN);
			return buf;
	}
	return NULL;
}

pct_rc
pct_kek_parse(const char *text, size_t len, uint8_t kek[PCT_KEK_LEN])
{
	size_t		linelen;
	char		detail[128];
	parse_result r;

	r = parse_first_line(text, len, kek, &linelen);
	if (r == PARSE_OK)
		return PCT_OK;
	return pct_fail(PCT_ERR_COMMAND,
					parse_detail(r, linelen, detail, sizeof(detail)), NULL,
					"cluster key is not %d hexadecimal digits",
					PCT_KEK_HEX_LEN);
}

/* ----------------------------------------------------------------------
 * Running the command
 * ---------------------------------------------------------------------- */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1: no deadline) as a poll() time-out. */
static int
ms_left(int64_t deadline)
{
	int64_t		left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int) left;
}

/*
 * Is this process in the foreground process group of its controlling
 * terminal?  Then the command must stay in our process group (see the
 * header comment).
 */
static bool
in_terminal_foreground(void)
{
	int			fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	pid_t		fg;

	if (fd < 0)
		return false;
	fg = tcgetpgrp(fd);
	close(fd);
	return fg != -1 && fg == getpgrp();
}

/* In the child: report a failed start step to the parent and exit. */
static void
child_fail(int report_fd, int step)
{
	start_report rep;
	ssize_t		n;

	rep.step = step;
	rep.err = errno;
	do
		n = write(report_fd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	_exit(127);
}

/* In the child after fork(): only async-signal-safe calls. */
static void
child_exec(int out_w, int report_w, int terminal_fd, bool own_group,
		   char *const argv[])
{
	struct sigaction sa;
	sigset_t	none;
	int			flags;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	(void) sigaction(SIGPIPE, &sa, NULL);
	(void) sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);

	if (own_group && setpgid(0, 0) != 0)
		child_fail(report_w, START_SETPGID);

	if (out_w == STDOUT_FILENO)
	{
		flags = fcntl(out_w, F_GETFD);
		if (flags < 0 || fcntl(out_w, F_SETFD, flags & ~FD_CLOEXEC) != 0)
			child_fail(report_w, START_STDOUT);
	}
	else if (dup2(out_w, STDOUT_FILENO) < 0)
		child_fail(report_w, START_STDOUT);

	if (terminal_fd >= 0)
	{
		flags = fcntl(terminal_fd, F_GETFD);
		if (flags < 0 ||
			fcntl(terminal_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
			child_fail(report_w, START_TERMINAL);
	}

	execve(PCT_KEYCMD_SHELL, argv, environ);
	child_fail(report_w, START_EXEC);
}

/*
 * Wait for the child's start report: PCT_OK when execve() succeeded (the
 * pipe reached end-of-file), else an error naming the failed step.
 */
static pct_rc
wait_started(int report_r, const char *cmd)
{
	start_report rep;
	size_t		got = 0;
	const char *what;

	while (got < sizeof(rep))
	{
		ssize_t		n = read(report_r, (char *) &rep + got, sizeof(rep) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
							"could not run cluster key command \"%s\": could not read from pipe: %s",
							cmd, strerror(errno));
		if (n == 0)
			break;
		got += (size_t) n;
	}
	if (got == 0)
		return PCT_OK;
	if (got < sizeof(rep))
		return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
						"could not run cluster key command \"%s\"", cmd);
	switch (rep.step)
	{
		case START_SETPGID:
			what = "could not create a process group";
			break;
		case START_STDOUT:
			what = "could not redirect standard output";
			break;
		case START_TERMINAL:
			what = "could not pass on the terminal file descriptor";
			break;
		default:
			what = "could not execute \"" PCT_KEYCMD_SHELL "\"";
			break;
	}
	return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
					"could not run cluster key command \"%s\": %s: %s",
					cmd, what, strerror(rep.err));
}

/*
 * Read the command's output until end-of-file, the deadline (-1: none) or
 * more than max bytes.  buf holds max + 1 bytes.  errno is kept for
 * READ_ERROR.
 */
static read_end
read_output(int fd, char *buf, size_t max, size_t *len, int64_t deadline)
{
	*len = 0;
	for (;;)
	{
		struct pollfd pfd;
		ssize_t		n;
		int			r;

		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (deadline >= 0 && ms_left(deadline) == 0)
			return READ_TIMEOUT;
		r = poll(&pfd, 1, ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return READ_ERROR;
		if (r == 0)
			continue;			/* the deadline is checked above */
		n = read(fd, buf + *len, max + 1 - *len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return READ_ERROR;
		if (n == 0)
			return READ_EOF;
		*len += (size_t) n;
		if (*len > max)
			return READ_TOO_MUCH;
	}
}

/* waitpid() until it reports pid, retrying on EINTR. */
static pid_t
wait_blocking(pid_t pid, int *status)
{
	pid_t		r;

	do
		r = waitpid(pid, status, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

/*
 * Reap the shell.  With a deadline (>= 0), kill the command (target: pid
 * or -pgid) when it passes and set *timed_out.  Returns the waitpid()
 * result.
 */
static pid_t
reap(pid_t pid, pid_t target, int64_t deadline, int *status, bool *timed_out)
{
	long		step_us = 1000;

	if (deadline < 0)
		return wait_blocking(pid, status);
	for (;;)
	{
		pid_t		r = waitpid(pid, status, WNOHANG);
		int			left;
		struct timespec ts;

		if (r != 0 && !(r < 0 && errno == EINTR))
			return r;
		if (r < 0)
			continue;
		left = ms_left(deadline);
		if (left == 0)
		{
			*timed_out = true;
			(void) kill(target, SIGKILL);
			return wait_blocking(pid, status);
		}
		if ((int64_t) step_us / 1000 > left)
			step_us = (long) left * 1000;
		ts.tv_sec = 0;
		ts.tv_nsec = step_us * 1000;
		(void) nanosleep(&ts, NULL);
		if (step_us < 50000)
			step_us *= 2;
	}
}

/*
 * Fork and exec the command; read its output into buf (max + 1 bytes) and
 * reap it.  Sets *status, *len, *end and *timed_out; reports and returns
 * an error only when the command could not be run or waited for.
 */
static pct_rc
run_command(const pct_keycmd *kc, char *expanded, char *buf,
			size_t max, size_t *len, int *status, read_end *end,
			bool *timed_out)
{
	const char *cmd = kc->command;
	int			out[2],
				rep[2];
	char	   *argv[4];
	bool		own_group;
	pid_t		pid,
				target,
				r;
	int64_t		deadline = -1;
	pct_rc		rc;
	int			save_errno;

	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = expanded;
	argv[3] = NULL;
	own_group = kc->timeout_secs > 0 && !in_terminal_foreground();

	if (pipe2(out, O_CLOEXEC) != 0)
		return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
						"could not run cluster key command \"%s\": could not create pipe: %s",
						cmd, strerror(errno));
	if (pipe2(rep, O_CLOEXEC) != 0)
	{
		save_errno = errno;
		close(out[0]);
		close(out[1]);
		return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
						"could not run cluster key command \"%s\": could not create pipe: %s",
						cmd, strerror(save_errno));
	}

	pid = fork();
	if (pid == 0)
		child_exec(out[1], rep[1], kc->terminal_fd, own_group, argv);
	save_errno = errno;
	close(out[1]);
	close(rep[1]);
	if (pid < 0)
	{
		close(out[0]);
		close(rep[0]);
		return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
						"could not run cluster key command \"%s\": could not fork: %s",
						cmd, strerror(save_errno));
	}
	/* Also from here, so that a kill cannot precede the child's setpgid. */
	if (own_group)
		(void) setpgid(pid, pid);
	target = own_group ? -pid : pid;

	rc = wait_started(rep[0], cmd);
	close(rep[0]);
	if (rc != PCT_OK)
	{
		close(out[0]);
		(void) wait_blocking(pid, status);
		return rc;
	}

	if (kc->timeout_secs > 0)
		deadline = now_ms() + (int64_t) kc->timeout_secs * 1000;
	*end = read_output(out[0], buf, max, len, deadline);
	save_errno = errno;
	if (*end != READ_EOF)
		(void) kill(target, SIGKILL);
	close(out[0]);
	if (*end == READ_TIMEOUT)
		*timed_out = true;

	r = reap(pid, target, *end == READ_EOF ? deadline : -1, status,
			 timed_out);
	if (*end == READ_ERROR)
		return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
						"could not read from cluster key command \"%s\": %s",
						cmd, strerror(save_errno));
	if (r < 0)
		return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
						"could not wait for cluster key command \"%s\": %s",
						cmd, strerror(errno));
	return PCT_OK;
}

/* Report how the command ended when that was not "exit 0". */
static pct_rc
report_status(const char *cmd, int status)
{
	if (WIFEXITED(status))
	{
		int			code = WEXITSTATUS(status);
		const char *detail = NULL;

		if (code == 127)
			detail = "The shell could not find the command.";
		else if (code == 126)
			detail = "The shell could not execute the command.";
		return pct_fail(PCT_ERR_COMMAND, detail, NULL,
						"cluster key command \"%s\" exited with status %d",
						cmd, code);
	}
	if (WIFSIGNALED(status))
		return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
						"cluster key command \"%s\" was terminated by signal %d: %s",
						cmd, WTERMSIG(status), strsignal(WTERMSIG(status)));
	return pct_fail(PCT_ERR_COMMAND, NULL, NULL,
					"cluster key command \"%s\" exited with unrecognized status %d",
					cmd, status);
}

pct_rc
pct_keycmd_run(const pct_keycmd *kc, uint8_t kek[PCT_KEK_LEN])
{
	char	   *expanded = NULL;
	char	   *buf = NULL;
	size_t		len = 0,
				linelen;
	int			status = 0;
	read_end	end = READ_EOF;
	bool		timed_out = false;
	parse_result pr;
	char		detail[128];
	pct_rc		rc;

	if (kc->timeout_secs < 0)
	{
		rc = pct_fail(PCT_ERR_ARG, NULL, NULL,
					  "invalid time-out for the cluster key command: %d",
					  kc->timeout_secs);
		goto out;
	}
	if (kc->terminal_fd >= 0 && fcntl(kc->terminal_fd, F_GETFD) < 0)
	{
		rc = pct_fail(PCT_ERR_ARG, NULL, NULL,
					  "terminal file descriptor %d is not open: %s",
					  kc->terminal_fd, strerror(errno));
		goto out;
	}
	if (kc->terminal_fd == STDOUT_FILENO)
	{
		rc = pct_fail(PCT_ERR_ARG, NULL, NULL,
					  "terminal file descriptor must not be standard output");
		goto out;
	}
	rc = pct_keycmd_expand(kc, &expanded);
	if (rc != PCT_OK)
		goto out;
	buf = pct_secure_alloc(KEYCMD_MAX_OUTPUT + 1);
	if (buf == NULL)
	{
		rc = PCT_ERR_NOMEM;
		goto out;
	}

	rc = run_command(kc, expanded, buf, KEYCMD_MAX_OUTPUT, &len, &status,
					 &end, &timed_out);
	if (rc != PCT_OK)
		goto out;

	rc = PCT_ERR_COMMAND;
	if (timed_out)
		pct_fail(rc, "The command was killed.", NULL,
				 "cluster key command \"%s\" timed out after %d second%s",
				 kc->command, kc->timeout_secs,
				 kc->timeout_secs == 1 ? "" : "s");
	else if (end == READ_TOO_MUCH)
	{
		snprintf(detail, sizeof(detail), "It printed more than %d bytes.",
				 KEYCMD_MAX_OUTPUT);
		pct_fail(rc, detail, NULL,
				 "cluster key command \"%s\" printed too much", kc->command);
	}
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		report_status(kc->command, status);
	else if (len == 0)
		pct_fail(rc, NULL, NULL,
				 "cluster key command \"%s\" printed nothing", kc->command);
	else if ((pr = parse_first_line(buf, len, kek, &linelen)) != PARSE_OK)
		pct_fail(rc, parse_detail(pr, linelen, detail, sizeof(detail)), NULL,
				 "first line printed by cluster key command \"%s\" is not %d hexadecimal digits",
				 kc->command, PCT_KEK_HEX_LEN);
	else
		rc = PCT_OK;

out:
	if (buf != NULL)
		pct_secure_free(buf, KEYCMD_MAX_OUTPUT + 1);
	if (expanded != NULL)
	{
		pct_wipe(expanded, strlen(expanded));
		free(expanded);
	}
	if (rc != PCT_OK)
		pct_wipe(kek, PCT_KEK_LEN);
	return rc;
}
